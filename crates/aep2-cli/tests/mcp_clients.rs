//! The official MCP clients against `aep2 serve payee` and `aep2 serve sp` on loopback.
//!
//! - `wire`: the Streamable HTTP endpoint by hand: version negotiation (2025-06-18,
//!   2025-11-25, 2026-07-28), `202` for notifications, ids kept in errors, `ping`, `GET` → `405`,
//!   the price in `tools/list`, `resultType` on a 2026-07-28 result.
//! - `typescript_sdk`: `@modelcontextprotocol/sdk` (crates/aep2-mcp/clients/typescript) over
//!   Streamable HTTP and stdio (`--mcp-stdio`).
//! - `python_sdk`: `mcp` from PyPI (crates/aep2-mcp/clients/python) over Streamable HTTP in its
//!   2026-07-28 mode (`auto`: `server/discover`) and its handshake mode (`legacy`), and stdio.
//!
//! Each client connects, lists the tools, calls `get_weather` unpaid (payment-required result),
//! paid (result and receipt), replayed (`mandate_replayed`) and with a mandate bound to other
//! arguments (`request_mismatch`); the SP must then hold exactly the paid mandates. Without the
//! client's modules (`npm ci`, the venv `target/venv-mcp-rmcp`) a client test prints a notice
//! and passes, unless `AEP2_REQUIRE_CLIENTS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::json::{self, Limits};
use aep2::{Domain, Eip712Domain, EvmAddress, U256, mandate_digest};
use aep2_axum::agent::Payer;
use common::{BIN, CONTRACT, Proc, TOKEN, key, now};
use serde_json::{Value as J, json};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const PRICE: u64 = 1000;
const TOOL: &str = "get_weather";

fn domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse(CONTRACT).unwrap(),
    })
}

fn payee() -> EvmAddress {
    key("mcp-clients-payee").address()
}

fn sp_key() -> aep2::crypto::secp256k1::SecretKey {
    key("mcp-clients-sp")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An SP with one funded payer, and a payee in front of it, each with its own files in `dir`.
struct Services {
    sp: Proc,
    payee: Proc,
    payee_args: Vec<String>,
    payer: Payer,
}

impl Services {
    fn start(dir: &Path, payer_label: &str) -> Services {
        let payer = key(payer_label);
        let cfg = json!({
            "listen": "127.0.0.1:0",
            "database": dir.join("ledger.db").display().to_string(),
            "keys": { "secp256k1": aep2::codec::hex_encode_0x(&aep2::hash::sha256(b"mcp-clients-sp")) },
            "domains": [{ "profile": "eip712", "domain": { "chainId": 84532, "verifyingContract": CONTRACT } }],
            "settlementWindow": 300,
            "clockSkew": 5,
            "deposits": [{ "id": "initial", "payer": payer.address().to_checksum(), "token": TOKEN, "amount": "1000000" }],
        });
        let path = dir.join("sp.json");
        std::fs::write(&path, cfg.to_string()).unwrap();
        let sp = Proc::spawn(
            &[
                "serve".into(),
                "sp".into(),
                "--config".into(),
                path.display().to_string(),
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
            "--price",
            &PRICE.to_string(),
            "--payee",
            &payee().to_checksum(),
            "--sp-url",
            &format!("http://{}", sp.addr),
            "--sp",
            &sp_key().address().to_checksum(),
            "--replay-db",
            &dir.join("payee.db").display().to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let mut http_args = payee_args.clone();
        http_args.extend(["--listen".to_owned(), "127.0.0.1:0".to_owned()]);
        let payee = Proc::spawn(&http_args, &dir.join("payee.log"));
        Services {
            sp,
            payee,
            payee_args,
            payer: Payer::new(payer, domain(), 1),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/mcp", self.payee.addr)
    }

    /// The `aep2` command line of the same payee over stdio (same database, SP and price).
    fn stdio_args(&self) -> Vec<String> {
        let mut a = self.payee_args.clone();
        a.push("--mcp-stdio".to_owned());
        a
    }

    /// A mandate at the price, bound to `get_weather` with `arguments`: (envelope JSON, mandate id).
    fn mandate(&self, arguments: &J) -> (J, String) {
        let args = json::parse(&arguments.to_string(), &Limits::AEP2).unwrap();
        let hash = aep2_mcp::request_hash(TOOL, Some(&args)).unwrap();
        let signed = self
            .payer
            .sign(
                payee(),
                EvmAddress::parse(TOKEN).unwrap(),
                U256::from_u64(PRICE),
                now() + 900,
                hash,
            )
            .unwrap();
        let id = aep2::codec::hex_encode_0x(&mandate_digest(&signed.mandate, &domain()).unwrap().id);
        (serde_json::from_str(&json::to_compact(&signed.to_json())).unwrap(), id)
    }

    /// Whether the SP holds mandate `id` (it was charged).
    fn charged(&self, id: &str) -> bool {
        let (status, body) = http(&self.sp.addr, "GET", &format!("/v1/mandates/{id}"), &[], "");
        match status {
            200 => true,
            404 => false,
            s => panic!("GET /v1/mandates/{id}: {s} {body}"),
        }
    }

    /// One run of a client program: the arguments and two mandates, one of them to be refused.
    fn run(&self, name: &str, transport: &str, extra: J, place: &str) -> (J, [String; 2]) {
        let arguments = json!({ "location": place });
        let (paid, paid_id) = self.mandate(&arguments);
        let (mismatched, mismatched_id) = self.mandate(&json!({ "location": format!("not {place}") }));
        let mut run = json!({
            "name": name, "transport": transport, "tool": TOOL, "arguments": arguments,
            "paid": paid, "mismatched": mismatched, "url": self.url(),
        });
        if transport == "stdio" {
            run["command"] = json!(BIN);
            run["args"] = json!(self.stdio_args());
        }
        for (k, v) in extra.as_object().unwrap() {
            run[k] = v.clone();
        }
        (run, [paid_id, mismatched_id])
    }
}

/// `method path` with a JSON body on a fresh connection: (status, headers and body as text).
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

/// A JSON-RPC POST to `/mcp` as a Streamable HTTP client sends it: (status, whole response text,
/// the JSON body if there is one).
fn rpc(addr: &str, version: Option<&str>, message: &J) -> (u16, String, Option<J>) {
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    if let Some(v) = version {
        headers.push(("MCP-Protocol-Version", v));
    }
    // 2026-07-28 repeats the method and the tool name in headers (standard headers).
    let method = message["method"].as_str().unwrap_or("").to_owned();
    let name = message["params"]["name"].as_str().unwrap_or("").to_owned();
    if version == Some("2026-07-28") {
        headers.push(("Mcp-Method", &method));
        if !name.is_empty() {
            headers.push(("Mcp-Name", &name));
        }
    }
    let (status, text) = http(addr, "POST", "/mcp", &headers, &message.to_string());
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, text, serde_json::from_str(&body).ok())
}

fn initialize(version: &str) -> J {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "wire", "version": "0"}}})
}

/// The `_meta` a 2026-07-28 request carries instead of a handshake.
fn modern_meta() -> J {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "wire", "version": "0"},
    })
}

fn reason(result: &J) -> &str {
    result["_meta"]["dev.aep2/reason"].as_str().unwrap_or("")
}

#[test]
fn wire() {
    let dir = common::temp_dir("mcp-clients", "wire");
    let svc = Services::start(&dir, "mcp-wire-payer");
    let addr = svc.payee.addr.clone();
    // Version negotiation: each supported revision is agreed; an older one is answered with one
    // the server speaks.
    for v in ["2025-06-18", "2025-11-25"] {
        let (status, text, body) = rpc(&addr, None, &initialize(v));
        assert_eq!(status, 200, "{text}");
        let body = body.unwrap();
        assert_eq!(body["id"], 1);
        assert_eq!(body["result"]["protocolVersion"], v, "{body}");
        assert!(body["result"]["capabilities"]["tools"].is_object(), "{body}");
        assert!(
            body["result"].get("resultType").is_none(),
            "no resultType before 2026-07-28: {body}"
        );
    }
    let (_, text, body) = rpc(&addr, None, &initialize("2024-11-05"));
    let agreed = body.unwrap()["result"]["protocolVersion"].as_str().unwrap().to_owned();
    assert!(["2025-06-18", "2025-11-25"].contains(&agreed.as_str()), "{text}");
    // A notification: 202, no body.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, text, _) = rpc(&addr, Some("2025-11-25"), &note);
    assert_eq!(status, 202, "{text}");
    // ping, and errors that keep their id.
    let (_, text, body) = rpc(
        &addr,
        Some("2025-11-25"),
        &json!({"jsonrpc": "2.0", "id": "p-1", "method": "ping"}),
    );
    let body = body.unwrap_or_else(|| panic!("{text}"));
    assert_eq!(body["id"], "p-1");
    assert!(body["result"].is_object(), "{body}");
    let unknown = json!({"jsonrpc": "2.0", "id": "m-7", "method": "no/such/method"});
    let (_, text, body) = rpc(&addr, Some("2025-11-25"), &unknown);
    let body = body.unwrap_or_else(|| panic!("{text}"));
    assert_eq!(body["id"], "m-7", "{body}");
    assert_eq!(body["error"]["code"], -32601, "{body}");
    let bad_tool =
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "nope", "arguments": {}}});
    let (_, text, body) = rpc(&addr, Some("2025-11-25"), &bad_tool);
    let body = body.unwrap_or_else(|| panic!("{text}"));
    assert_eq!(body["id"], 9, "{body}");
    assert_eq!(body["error"]["code"], -32602, "{body}");
    // A tools/call is read under the binding's rules, and its errors keep the id.
    let empty_name = json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {"name": ""}});
    let (_, text, body) = rpc(&addr, Some("2025-11-25"), &empty_name);
    let body = body.unwrap_or_else(|| panic!("{text}"));
    assert_eq!(body["id"], 11, "{body}");
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert_eq!(body["error"]["data"]["reason"], "mcp_params_invalid", "{body}");
    let bad_params = json!({"jsonrpc": "2.0", "id": "b-1", "method": "tools/call", "params": "x"});
    let (_, text, body) = rpc(&addr, Some("2025-11-25"), &bad_params);
    let body = body.unwrap_or_else(|| panic!("{text}"));
    assert_eq!(body["id"], "b-1", "{body}");
    assert_eq!(body["error"]["code"], -32600, "{body}");
    // Not JSON: 400 and a parse error.
    let (status, text) = http(
        &addr,
        "POST",
        "/mcp",
        &[("Content-Type", "application/json")],
        "{not json",
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("-32700"), "{text}");
    // No server-initiated stream: GET is 405 with Allow.
    let (status, text) = http(&addr, "GET", "/mcp", &[("Accept", "text/event-stream")], "");
    assert_eq!(status, 405, "{text}");
    assert!(text.to_ascii_lowercase().contains("allow: post"), "{text}");
    // tools/list: the price and terms in the tool's _meta.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (_, text, body) = rpc(&addr, Some("2025-11-25"), &list);
    let body = body.unwrap_or_else(|| panic!("{text}"));
    let tool = &body["result"]["tools"][0];
    assert_eq!(tool["name"], TOOL);
    let accepts = &tool["_meta"]["dev.aep2/accepts"][0];
    assert_eq!(accepts["scheme"], "aep2", "{tool}");
    assert_eq!(accepts["amount"], PRICE.to_string(), "{tool}");
    assert_eq!(accepts["payTo"], payee().to_checksum(), "{tool}");
    // 2026-07-28, stateless: no handshake, the version in _meta; results carry resultType.
    let mut call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": TOOL, "arguments": {"location": "Oslo"}, "_meta": modern_meta()}});
    let (status, text, body) = rpc(&addr, Some("2026-07-28"), &call);
    assert_eq!(status, 200, "{text}");
    let body = body.unwrap_or_else(|| panic!("{text}"));
    assert_eq!(body["result"]["resultType"], "complete", "{body}");
    assert_eq!(reason(&body["result"]), "payment_missing", "{body}");
    let (paid_oslo, id) = svc.mandate(&json!({"location": "Oslo"}));
    call["params"]["_meta"]["dev.aep2/mandate"] = paid_oslo.clone();
    let (_, text, body) = rpc(&addr, Some("2026-07-28"), &call);
    let body = body.unwrap_or_else(|| panic!("{text}"));
    assert_eq!(body["result"]["resultType"], "complete", "{body}");
    assert_eq!(body["result"]["isError"], false, "{body}");
    let response = &body["result"]["_meta"]["dev.aep2/payment-response"];
    assert_eq!(response["extra"]["mandateId"], id, "{body}");
    assert_eq!(response["extra"]["status"], "receipted", "{body}");
    assert!(svc.charged(&id));

    // The x402 carrier: an x402 v2 PaymentPayload under x402/payment, answered under
    // x402/payment-response.
    let arguments = json!({"location": "Bergen"});
    let (envelope, x402_id) = svc.mandate(&arguments);
    let accepted: J = serde_json::from_str(&tool["_meta"]["dev.aep2/accepts"][0].to_string()).unwrap();
    let mut meta = modern_meta();
    meta["x402/payment"] = json!({"x402Version": 2, "accepted": accepted, "payload": envelope});
    let call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": TOOL, "arguments": arguments, "_meta": meta}});
    let (_, text, body) = rpc(&addr, Some("2026-07-28"), &call);
    let body = body.unwrap_or_else(|| panic!("{text}"));
    assert_eq!(body["result"]["isError"], false, "{body}");
    assert_eq!(
        body["result"]["_meta"]["x402/payment-response"]["extra"]["mandateId"], x402_id,
        "{body}"
    );
    assert!(
        body["result"]["_meta"].get("dev.aep2/payment-response").is_none(),
        "{body}"
    );

    // stdio shares the payment store: the mandate paid over HTTP is a replay there, and an
    // unpaid call asks for payment.
    let mut child = Command::new(BIN)
        .args(svc.stdio_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(dir.join("stdio.log")).unwrap()))
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |m: &J| writeln!(stdin, "{m}").unwrap();
    send(&initialize("2025-06-18"));
    let init: J = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
    send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let mut replay = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": TOOL, "arguments": {"location": "Oslo"}}});
    send(&replay);
    let unpaid: J = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(unpaid["id"], 5, "{unpaid}");
    assert_eq!(reason(&unpaid["result"]), "payment_missing", "{unpaid}");
    replay["id"] = json!(6);
    replay["params"]["_meta"] = json!({"dev.aep2/mandate": paid_oslo});
    send(&replay);
    let replayed: J = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(replayed["id"], 6, "{replayed}");
    assert_eq!(reason(&replayed["result"]), "mandate_replayed", "{replayed}");
    drop(stdin);
    assert!(child.wait().unwrap().success(), "stdio server exits when stdin closes");
}

/// The checks every client run must pass: its report line and the SP's record.
fn judge(svc: &Services, report: &J, ids: &[String; 2], versions: &[&str]) {
    let name = report["name"].as_str().unwrap();
    let version = report["protocolVersion"].as_str().unwrap_or("");
    assert!(
        versions.contains(&version),
        "{name}: negotiated {version:?}, expected one of {versions:?}"
    );
    let tools = report["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "{name}: {report}");
    assert_eq!(tools[0]["name"], TOOL);
    let accepts = &tools[0]["_meta"]["dev.aep2/accepts"][0];
    assert_eq!(accepts["amount"], PRICE.to_string(), "{name}: {}", tools[0]);
    assert_eq!(accepts["payTo"], payee().to_checksum(), "{name}: {}", tools[0]);
    let unpaid = &report["unpaid"];
    assert_eq!(unpaid["isError"], true, "{name}: {unpaid}");
    assert_eq!(reason(unpaid), "payment_missing", "{name}: {unpaid}");
    assert_eq!(
        unpaid["structuredContent"]["accepts"][0]["amount"],
        PRICE.to_string(),
        "{name}: {unpaid}"
    );
    let paid = &report["paid"];
    assert_eq!(paid["isError"], false, "{name}: {paid}");
    assert!(
        paid["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .starts_with("Weather in "),
        "{name}: {paid}"
    );
    let response = &paid["_meta"]["dev.aep2/payment-response"];
    assert_eq!(response["extra"]["mandateId"], ids[0].as_str(), "{name}: {paid}");
    let receipt =
        aep2::Receipt::from_json(&json::parse(&response["extra"]["receipt"].to_string(), &Limits::AEP2).unwrap())
            .unwrap_or_else(|e| panic!("{name}: receipt {e}: {paid}"));
    receipt
        .verify(&aep2::ReceiptExpectations {
            sp: Some(&aep2::SpId::Evm(sp_key().address())),
            mandate: None,
            domain: Some(&domain()),
            lane: None,
        })
        .unwrap_or_else(|e| panic!("{name}: receipt does not verify: {e}"));
    let replayed = &report["replayed"];
    assert_eq!(replayed["isError"], true, "{name}: {replayed}");
    assert_eq!(reason(replayed), "mandate_replayed", "{name}: {replayed}");
    assert!(
        replayed["_meta"].get("dev.aep2/payment-response").is_none(),
        "{name}: {replayed}"
    );
    let mismatched = &report["mismatched"];
    assert_eq!(mismatched["isError"], true, "{name}: {mismatched}");
    assert_eq!(reason(mismatched), "request_mismatch", "{name}: {mismatched}");
    assert_eq!(report["unknownTool"]["raised"], true, "{name}: {report}");
    assert_eq!(report["unknownTool"]["code"], -32602, "{name}: {report}");
    assert!(svc.charged(&ids[0]), "{name}: the paid mandate is charged");
    assert!(!svc.charged(&ids[1]), "{name}: the mismatched mandate is not charged");
}

/// Whether the client's modules are installed; when not, a notice (or, with
/// `AEP2_REQUIRE_CLIENTS=1`, a failure).
fn available(what: &str, path: &Path, install: &str) -> bool {
    if path.exists() {
        return true;
    }
    let required = std::env::var("AEP2_REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{what}: {} is missing and AEP2_REQUIRE_CLIENTS=1 ({install})",
        path.display()
    );
    eprintln!("notice: {what} skipped: {} is missing ({install})", path.display());
    false
}

/// Runs a client program on `runs` and returns its report lines.
fn drive(dir: &Path, mut command: Command, runs: &[J]) -> Vec<J> {
    let spec = dir.join("runs.json");
    std::fs::write(&spec, json!({ "runs": runs }).to_string()).unwrap();
    let out = command
        .arg(&spec)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the client program");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "client program failed ({}): {stdout}", out.status);
    let reports: Vec<J> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("report line {l:?}: {e}")))
        .collect();
    assert_eq!(reports.len(), runs.len(), "{stdout}");
    reports
}

#[test]
fn typescript_sdk() {
    let folder = workspace().join("crates/aep2-mcp/clients/typescript");
    let sdk = folder.join("node_modules/@modelcontextprotocol/sdk/package.json");
    if !available(
        "@modelcontextprotocol/sdk",
        &sdk,
        "cd crates/aep2-mcp/clients/typescript && npm ci",
    ) {
        return;
    }
    let version: J = serde_json::from_str(&std::fs::read_to_string(&sdk).unwrap()).unwrap();
    let dir = common::temp_dir("mcp-clients", "typescript");
    let svc = Services::start(&dir, "mcp-ts-payer");
    let (http_run, http_ids) = svc.run("ts-http", "http", json!({}), "Paris");
    let (stdio_run, stdio_ids) = svc.run("ts-stdio", "stdio", json!({}), "Lyon");
    let mut node = Command::new("node");
    node.arg(folder.join("mcp_client.mjs"));
    let reports = drive(&dir, node, &[http_run, stdio_run]);
    judge(&svc, &reports[0], &http_ids, &["2025-11-25"]);
    judge(&svc, &reports[1], &stdio_ids, &["", "2025-11-25"]);
    assert_eq!(reports[0]["pinged"], true);
    assert_eq!(reports[1]["pinged"], true);
    eprintln!(
        "@modelcontextprotocol/sdk {}: http and stdio passed",
        version["version"]
    );
}

#[test]
fn python_sdk() {
    let python = workspace().join("target/venv-mcp-rmcp/bin/python");
    let install = "python3 -m venv target/venv-mcp-rmcp && target/venv-mcp-rmcp/bin/pip install -r crates/aep2-mcp/clients/python/requirements.txt";
    if !available("mcp (Python)", &python, install) {
        return;
    }
    let dir = common::temp_dir("mcp-clients", "python");
    let svc = Services::start(&dir, "mcp-py-payer");
    let (modern, modern_ids) = svc.run("py-http-2026", "http", json!({"mode": "auto"}), "Rome");
    let (legacy, legacy_ids) = svc.run("py-http-legacy", "http", json!({"mode": "legacy"}), "Turin");
    let (stdio, stdio_ids) = svc.run("py-stdio", "stdio", json!({"mode": "legacy"}), "Milan");
    let mut py = Command::new(&python);
    py.arg(workspace().join("crates/aep2-mcp/clients/python/mcp_client.py"));
    let reports = drive(&dir, py, &[modern, legacy, stdio]);
    judge(&svc, &reports[0], &modern_ids, &["2026-07-28"]);
    judge(&svc, &reports[1], &legacy_ids, &["2025-11-25"]);
    judge(&svc, &reports[2], &stdio_ids, &["2025-11-25"]);
    // ping is answered up to 2025-11-25; 2026-07-28 removed it: method not found.
    assert_eq!(reports[0]["pinged"]["code"], -32601, "{}", reports[0]);
    assert!(reports[1..].iter().all(|r| r["pinged"] == true), "{reports:?}");
    eprintln!("mcp (Python): 2026-07-28 and 2025-11-25 over HTTP, stdio passed");
}
