//! The stock A2A client, `@a2a-js/sdk`, against `aep2 serve payee` and `aep2 serve sp` on
//! loopback, over A2A v1.0 and v0.3: discovery from the well-known card, Intent Mode (the
//! mandate in the message metadata, spec §11.5), the same paid message again (its stored
//! result, no second charge), Order Mode (input-required with the quote, then the paid reply,
//! §11.6), polling with `GetTask` / `tasks/get`, and task-not-found.
//!
//! The client program is `crates/aep2-a2a/clients/js/client.mjs` (pinned by its
//! package-lock.json, installed with `npm ci` there). This test signs every mandate and checks
//! every receipt; the client only carries them. Without the Node modules the test prints a notice
//! and passes, unless `AEP2_REQUIRE_CLIENTS=1` (CI), which makes their absence a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::json::{self as ajson, Limits};
use aep2::{Domain, Eip712Domain, EvmAddress, PaymentRequest, SignedMandate, U256};
use aep2_axum::agent::{Payer, check_receipt};
use aep2_x402::PaymentRequirements;
use common::{CONTRACT, Proc, TOKEN, key, now};
use serde_json::{Value as J, json};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const PRICE: u64 = 1000;
const BALANCE: u64 = 1_000_000;

fn domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse(CONTRACT).unwrap(),
    })
}

fn payee() -> EvmAddress {
    EvmAddress([0x66; 20])
}

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../aep2-a2a/clients/js")
}

/// Whether the client can run; `false` (after a notice) to skip. A missing module with
/// `AEP2_REQUIRE_CLIENTS=1` is a failure.
fn client_available() -> bool {
    let required = std::env::var("AEP2_REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
    let module = client_dir().join("node_modules/@a2a-js/sdk/package.json");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if module.exists() && node {
        return true;
    }
    let why = if node {
        "its node modules are not installed"
    } else {
        "node is not on PATH"
    };
    assert!(
        !required,
        "AEP2_REQUIRE_CLIENTS=1 but the @a2a-js/sdk client cannot run: {why} (cd crates/aep2-a2a/clients/js && npm ci)"
    );
    eprintln!("notice: skipping the @a2a-js/sdk client test: {why} (cd crates/aep2-a2a/clients/js && npm ci)");
    false
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 exchange (Connection: close, no chunking: the services send lengths).
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&out[split + 4..]).into_owned(),
    }
}

fn aep2_value(v: &J) -> aep2::json::Value {
    ajson::parse(&v.to_string(), &Limits::AEP2).unwrap()
}

fn envelope_json(signed: &SignedMandate) -> J {
    serde_json::from_str(&ajson::to_compact(&signed.to_json())).unwrap()
}

/// What the client reported of one task: its state, AEP2 status, and the SP receipt if any.
fn task_of(event: &J) -> (String, String, String, Option<J>) {
    let task = &event["task"];
    let status = &task["status"];
    let meta = &status["message"]["metadata"];
    (
        task["id"].as_str().unwrap_or_default().to_owned(),
        status["state"].as_str().unwrap_or_default().to_owned(),
        meta["aep2.dev/status"].as_str().unwrap_or_default().to_owned(),
        meta["aep2.dev/receipt"].get("receipt").cloned(),
    )
}

#[test]
fn a2a_js_sdk_discovers_pays_in_both_modes_and_polls_over_v1_and_v03() {
    if !client_available() {
        return;
    }
    let dir = common::temp_dir("a2a-clients", "sdk");
    let payer_key = key("a2a-clients-payer");
    let sp_secret = aep2::hash::sha256(b"a2a-clients-sp");
    let sp_id = aep2::crypto::secp256k1::SecretKey::from_bytes(&sp_secret)
        .unwrap()
        .address();
    let cfg = json!({
        "listen": "127.0.0.1:0",
        "database": dir.join("ledger.db").display().to_string(),
        "keys": { "secp256k1": aep2::codec::hex_encode_0x(&sp_secret) },
        "domains": [{ "profile": "eip712", "domain": { "chainId": 84532, "verifyingContract": CONTRACT } }],
        "settlementWindow": 300,
        "clockSkew": 5,
        "deposits": [{ "id": "initial", "payer": payer_key.address().to_checksum(), "token": TOKEN, "amount": BALANCE.to_string() }],
    });
    std::fs::write(dir.join("sp.json"), cfg.to_string()).unwrap();
    let sp_proc = Proc::spawn(
        &[
            "serve".into(),
            "sp".into(),
            "--config".into(),
            dir.join("sp.json").display().to_string(),
        ],
        &dir.join("sp.log"),
    );
    let payee_args: Vec<String> = [
        "serve",
        "payee",
        "--profile",
        "eip712",
        "--chain-id",
        "84532",
        "--verifying-contract",
        CONTRACT,
        "--asset",
        TOKEN,
        "--listen",
        "127.0.0.1:0",
        "--memory-store",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        "--payee".into(),
        payee().to_checksum(),
        "--price".into(),
        PRICE.to_string(),
        "--sp-url".into(),
        format!("http://{}", sp_proc.addr),
        "--sp".into(),
        sp_id.to_checksum(),
    ])
    .collect();
    let agent = Proc::spawn(&payee_args, &dir.join("payee.log"));

    // The card, as a cache sees it: per version, cacheable, validated by its ETag.
    let v1 = http(
        &agent.addr,
        "GET",
        "/.well-known/agent-card.json",
        &[("A2A-Version", "1.0")],
        "",
    );
    assert_eq!(v1.status, 200, "{}", v1.body);
    assert_eq!(v1.header("cache-control"), Some("public, max-age=300"));
    assert!(v1.header("vary").is_some_and(|v| v.contains("A2A-Version")));
    let card: J = serde_json::from_str(&v1.body).unwrap();
    assert_eq!(
        card["supportedInterfaces"][0]["url"],
        format!("http://{}/a2a", agent.addr),
        "{card}"
    );
    assert_eq!(card["capabilities"]["extensions"][0]["required"], true, "{card}");
    let etag = v1.header("etag").unwrap().to_owned();
    let again = http(
        &agent.addr,
        "GET",
        "/.well-known/agent-card.json",
        &[("A2A-Version", "1.0"), ("If-None-Match", &etag)],
        "",
    );
    assert_eq!(again.status, 304);
    let old: J = serde_json::from_str(&http(&agent.addr, "GET", "/.well-known/agent-card.json", &[], "").body).unwrap();
    assert_eq!(
        (old["protocolVersion"].as_str(), old.get("supportedInterfaces")),
        (Some("0.3.0"), None),
        "{old}"
    );
    // Not activated, the required extension refuses before any payment is read; an unknown
    // method is -32601 with the request's id.
    let rpc = |method: &str, headers: &[(&str, &str)]| -> J {
        let body = json!({"jsonrpc": "2.0", "id": "r-7", "method": method, "params": {"id": "x"}}).to_string();
        let mut h = vec![("Content-Type", "application/json")];
        h.extend_from_slice(headers);
        serde_json::from_str(&http(&agent.addr, "POST", "/a2a", &h, &body).body).unwrap()
    };
    assert_eq!(rpc("GetTask", &[("A2A-Version", "1.0")])["error"]["code"], -32008);
    let unknown = rpc("tasks/cancel", &[("X-A2A-Extensions", aep2_a2a::EXTENSION_URI)]);
    assert_eq!(
        (unknown["error"]["code"].as_i64(), unknown["id"].as_str()),
        (Some(-32601), Some("r-7")),
        "{unknown}"
    );

    let payer = Payer::new(payer_key, domain(), 7_000);
    let deadline = now() + 900;
    let mut node = Command::new("node")
        .arg(client_dir().join("client.mjs"))
        .arg(format!("http://{}", agent.addr))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn node");
    let mut to_client = node.stdin.take().unwrap();
    let from_client = BufReader::new(node.stdout.take().unwrap());
    let mut signed: Vec<(String, String, SignedMandate)> = Vec::new();
    let mut results: Vec<J> = Vec::new();
    let mut cards: Vec<J> = Vec::new();
    let mut done = false;
    for line in from_client.lines() {
        let line = line.unwrap();
        let event: J = serde_json::from_str(&line).unwrap_or_else(|e| panic!("client line {line:?}: {e}"));
        let label = event["label"].as_str().unwrap_or_default().to_owned();
        match event["event"].as_str().unwrap() {
            "card" => cards.push(event),
            "sign-intent" => {
                // The request hash of the message the client is about to send (spec §11.8).
                let message = aep2_a2a::Message::from_json(&aep2_value(&event["message"])).unwrap();
                let terms = PaymentRequirements::for_policy(
                    &aep2::PayeePolicy::new(
                        payee().into(),
                        EvmAddress::parse(TOKEN).unwrap().into(),
                        U256::from_u64(PRICE),
                    )
                    .with_settlement_window(310),
                    &domain(),
                    60,
                );
                let s = payer
                    .sign_for(&terms, message.request_hash().unwrap(), deadline)
                    .unwrap();
                writeln!(to_client, "{}", json!({"envelope": envelope_json(&s)})).unwrap();
                signed.push((label, "intent".into(), s));
            }
            "sign-order" => {
                let offer = PaymentRequirements::from_json(&aep2_value(&event["requirements"][0])).unwrap();
                let quote = PaymentRequest::from_json(offer.extra.as_ref().unwrap().get("quote").unwrap()).unwrap();
                let s = payer.sign_for(&offer, quote.hash(), deadline).unwrap();
                writeln!(to_client, "{}", json!({"envelope": envelope_json(&s)})).unwrap();
                signed.push((label, "order".into(), s));
            }
            "result" => results.push(event),
            "done" => done = true,
            "error" => panic!("the client failed: {}", event["message"].as_str().unwrap_or_default()),
            other => panic!("unknown client event {other}"),
        }
    }
    let status = node.wait().unwrap();
    assert!(done && status.success(), "client exit {status:?}");

    // Discovery: one card per generation, each naming the AEP2 extension as required.
    let versions: Vec<&str> = cards.iter().map(|c| c["protocolVersion"].as_str().unwrap()).collect();
    assert_eq!(versions, ["1.0", "0.3"], "{cards:?}");
    for c in &cards {
        assert_eq!(c["extension"]["required"], true, "{c}");
        assert_eq!(c["extension"]["params"]["modes"], json!(["intent", "order"]), "{c}");
    }
    let sp = aep2::SpId::Evm(sp_id);
    let get = |label: &str, mode: &str| {
        results
            .iter()
            .find(|r| r["label"] == label && r["mode"] == mode)
            .unwrap_or_else(|| panic!("no {label} {mode} in {results:?}"))
    };
    let mandate = |label: &str, mode: &str| &signed.iter().find(|(l, m, _)| l == label && m == mode).unwrap().2;
    for label in ["v1", "v03"] {
        let (id, state, paid, receipt) = task_of(get(label, "intent"));
        assert_eq!(
            (state.as_str(), paid.as_str()),
            ("TASK_STATE_COMPLETED", "payment-completed"),
            "{label}"
        );
        check_receipt(
            &aep2_value(&receipt.clone().unwrap()),
            mandate(label, "intent"),
            &domain(),
            &sp,
        )
        .unwrap();
        // The same paid message again: the same task and receipt, not a rejection.
        let (id2, state2, _, receipt2) = task_of(get(label, "intent-again"));
        assert_eq!(
            (id2, state2, receipt2),
            (id, state, receipt),
            "{label}: the retried paid message"
        );

        let (quote_task, state, paid, _) = task_of(get(label, "order-quote"));
        assert_eq!(
            (state.as_str(), paid.as_str()),
            ("TASK_STATE_INPUT_REQUIRED", "payment-required"),
            "{label}"
        );
        let (order_task, state, paid, receipt) = task_of(get(label, "order-paid"));
        assert_eq!(order_task, quote_task);
        assert_eq!(
            (state.as_str(), paid.as_str()),
            ("TASK_STATE_COMPLETED", "payment-completed"),
            "{label}"
        );
        check_receipt(
            &aep2_value(&receipt.clone().unwrap()),
            mandate(label, "order"),
            &domain(),
            &sp,
        )
        .unwrap();
        let (polled, state, _, polled_receipt) = task_of(get(label, "polled"));
        assert_eq!(
            (polled, state, polled_receipt),
            (order_task, "TASK_STATE_COMPLETED".into(), receipt)
        );
        let unknown = get(label, "unknown-task");
        assert!(
            unknown["error"].as_str().is_some_and(|e| e.contains("TaskNotFound")),
            "{label}: {unknown}"
        );
    }

    // The SP holds exactly the four mandates, each charged once.
    let account = http(
        &sp_proc.addr,
        "GET",
        &format!("/v1/accounts?payer={}", payer.address().to_checksum()),
        &[],
        "",
    );
    let a: J = serde_json::from_str(&account.body).unwrap();
    let balance: u64 = a["accounts"][0]["balance"].as_str().unwrap().parse().unwrap();
    let available: u64 = a["accounts"][0]["available"].as_str().unwrap().parse().unwrap();
    assert_eq!((balance, available), (BALANCE, BALANCE - 4 * PRICE), "{a}");
    eprintln!(
        "a2a-js-sdk: 2 versions, 4 mandates charged once each, {} results",
        results.len()
    );
}
