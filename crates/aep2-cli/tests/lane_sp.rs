//! Spending lanes at a running settlement processor (spec `aep2.md#lane-settlement`):
//! `aep2 lane status` and `aep2 lane revoke` against `aep2 serve sp`, and the race: many
//! concurrent payments under one lane tree, at two payees in front of two SP processes that share
//! one ledger file, never exceed any cap of any chain, and the counters equal the sum of what was
//! accepted. The race prints one line of figures to stderr.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::crypto::secp256k1::SecretKey;
use aep2::lane::{Lane, SignedLane, sign_lane};
use aep2::{AccountId, EnvelopeForm, EvmAddress, EvmMandate, Mandate, PayeePolicy, PayerKey, U256, sign_lane_mandate};
use aep2_x402::{PAYMENT_RESPONSE, PAYMENT_SIGNATURE, PaymentRequirements};
use common::{BIN, CONTRACT, HOST, Proc, Resp, TOKEN, domain, http, key, now, token};
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const PRICE: u64 = 1000;
const BALANCE: u64 = 1_000_000;
const OWNER: &str = "lane-sp-owner";

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("lane-sp", name)
}

fn sp_key() -> SecretKey {
    key("lane-sp-sp")
}

/// Writes an SP configuration (the owner funded with `BALANCE`, ledger `ledger.db` beside it).
fn sp_config(dir: &Path) -> PathBuf {
    let cfg = serde_json::json!({
        "listen": "127.0.0.1:0",
        "database": "ledger.db",
        "keys": { "secp256k1": aep2::codec::hex_encode_0x(&aep2::hash::sha256(b"lane-sp-sp")) },
        "domains": [{ "profile": "eip712", "domain": { "chainId": 84532, "verifyingContract": CONTRACT } }],
        "settlementWindow": 300,
        "clockSkew": 5,
        "deposits": [{ "id": "initial", "payer": key(OWNER).address().to_checksum(), "token": TOKEN, "amount": BALANCE.to_string() }],
    });
    let path = dir.join("sp.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

fn start_sp(config: &Path, log: &Path) -> Proc {
    let args = vec![
        "serve".into(),
        "sp".into(),
        "--config".into(),
        config.display().to_string(),
    ];
    Proc::spawn(&args, log)
}

fn start_payee(sp: &Proc, payee: EvmAddress, log: &Path) -> Proc {
    let mut args: Vec<String> = [
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
    .collect();
    args.extend([
        "--payee".to_owned(),
        payee.to_checksum(),
        "--price".to_owned(),
        PRICE.to_string(),
        "--sp-url".to_owned(),
        format!("http://{}", sp.addr),
        "--sp".to_owned(),
        sp_key().address().to_checksum(),
    ]);
    Proc::spawn(&args, log)
}

impl Resp {
    /// A served paid response: 200 with `PAYMENT-RESPONSE`.
    fn served(&self) -> bool {
        self.status == 200 && self.header(PAYMENT_RESPONSE).is_some()
    }
}

fn acct(label: &str) -> AccountId {
    AccountId::Evm(key(label).address())
}

fn lane(agent: &str, total: u64, max_payments: u64, allowance: u64, salt: u8) -> Lane {
    // One start for every lane of the run: a sub-lane granted a second later must not end a
    // second after its parent (lane_attenuation_invalid).
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| now() - 60);
    Lane {
        profile: aep2::Profile::Eip712,
        owner: acct(OWNER),
        agent: acct(agent),
        token: AccountId::Evm(token()),
        per_payment: U256::from_u64(PRICE),
        total: U256::from_u64(total),
        max_payments,
        period: 86_400,
        allowance: U256::from_u64(allowance),
        payees: Vec::new(),
        valid_from: start,
        valid_until: start + 86_400,
        purpose: "race".into(),
        parent: [0; 32],
        salt: [salt; 32],
    }
}

fn grant(mut l: Lane, parents: &[SignedLane], grantor: &str) -> Vec<SignedLane> {
    let parent = parents.last();
    if let Some(p) = parent {
        l.parent = p.lane.digest(&domain()).unwrap().id;
    }
    let mut chain = parents.to_vec();
    chain.push(sign_lane(&l, parent, &domain(), &PayerKey::Secp256k1(key(grantor))).unwrap());
    chain
}

fn lane_id(chain: &[SignedLane]) -> String {
    aep2::codec::hex_encode_0x(&chain.last().unwrap().lane.digest(&domain()).unwrap().id)
}

fn terms(pay_to: EvmAddress) -> PaymentRequirements {
    let policy = PayeePolicy::new(pay_to.into(), token().into(), U256::from_u64(PRICE)).with_settlement_window(310);
    PaymentRequirements::for_policy(&policy, &domain(), 60)
}

/// The `PAYMENT-SIGNATURE` of a payment of `PRICE` to `payee` under `chain`, bound to
/// `GET /paid/intent`, signed by the leaf's agent `agent`.
fn payment(chain: &[SignedLane], agent: &str, payee: EvmAddress, nonce: u64) -> String {
    let url = format!("http://{HOST}/paid/intent");
    let m = Mandate::Eip712(EvmMandate {
        owner: key(OWNER).address(),
        token: token(),
        payee,
        amount: U256::from_u64(PRICE),
        nonce: U256::from_u64(nonce),
        deadline: now() + 900,
        reference: aep2_x402::request_hash("GET", &url, b"").unwrap(),
    });
    let (sm, _) = sign_lane_mandate(
        &m,
        &domain(),
        &PayerKey::Secp256k1(key(agent)),
        EnvelopeForm::Native,
        chain,
    )
    .unwrap();
    aep2_x402::payment_signature(&terms(payee), &sm.to_json())
}

/// `GET /v1/lanes/{id}` at `sp`: the lane object.
fn lane_state(sp: &Proc, id: &str) -> J {
    let r = http(&sp.addr, "GET", &format!("/v1/lanes/{id}"), &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["lane"].clone()
}

fn n(v: &J) -> u64 {
    v.as_str().map_or_else(|| v.as_u64().unwrap(), |s| s.parse().unwrap())
}

#[test]
fn concurrent_lane_payments_at_two_payees_and_two_sps_never_exceed_a_cap() {
    let dir = temp_dir("race");
    let config = sp_config(&dir);
    let sp1 = start_sp(&config, &dir.join("sp1.log"));
    let sp2 = start_sp(&config, &dir.join("sp2.log"));
    let (payee_a, payee_b) = (EvmAddress([0x44; 20]), EvmAddress([0x66; 20]));
    let pa = start_payee(&sp1, payee_a, &dir.join("payee-a.log"));
    let pb = start_payee(&sp2, payee_b, &dir.join("payee-b.log"));
    // Root: 40 payments' worth, at most 35 payments, 30 per day; two sub-lanes with caps of their
    // own (a total of 6, a count of 5), below the root's, so that a sub-lane's own cap and the
    // root's allowance both bind.
    let root = grant(lane("race-agent", 40 * PRICE, 35, 30 * PRICE, 1), &[], OWNER);
    let sub1 = grant(lane("race-sub-1", 6 * PRICE, 35, 30 * PRICE, 2), &root, "race-agent");
    let sub2 = grant(lane("race-sub-2", 40 * PRICE, 5, 30 * PRICE, 3), &root, "race-agent");
    let lanes: [(&[SignedLane], &str); 3] = [(&root, "race-agent"), (&sub1, "race-sub-1"), (&sub2, "race-sub-2")];
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 16;
    // Signed up front, so the race is all HTTP.
    let mut work = Vec::new();
    for t in 0..THREADS {
        let mut mine = Vec::new();
        for i in 0..PER_THREAD {
            let nonce = t * 1_000 + i;
            let which = usize::try_from((t + i) % 3).unwrap();
            let (chain, agent) = lanes[which];
            let (addr, payee) = if (t + i) % 2 == 0 {
                (pa.addr.clone(), payee_a)
            } else {
                (pb.addr.clone(), payee_b)
            };
            mine.push((which, addr, payment(chain, agent, payee, nonce)));
        }
        work.push(mine);
    }
    let tally: Arc<Mutex<BTreeMap<(usize, String), u64>>> = Arc::default();
    let started = Instant::now();
    let barrier = Arc::new(std::sync::Barrier::new(usize::try_from(THREADS).unwrap()));
    let handles: Vec<_> = work
        .into_iter()
        .map(|mine| {
            let (tally, barrier) = (tally.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for (which, addr, header) in mine {
                    let r = http(&addr, "GET", "/paid/intent", &[(PAYMENT_SIGNATURE, &header)], b"").unwrap();
                    let outcome = if r.served() {
                        "served".to_owned()
                    } else {
                        r.reason().unwrap_or_default()
                    };
                    *tally.lock().unwrap().entry((which, outcome)).or_default() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = started.elapsed();
    let tally = tally.lock().unwrap().clone();
    let served = |which: usize| tally.get(&(which, "served".to_owned())).copied().unwrap_or(0);
    let (s0, s1, s2) = (served(0), served(1), served(2));
    let total_served = s0 + s1 + s2;
    // Every refusal is a lane cap (nothing else may fail).
    for (_, outcome) in tally.keys() {
        assert!(
            [
                "served",
                "lane_total_exceeded",
                "lane_payments_exhausted",
                "lane_period_exceeded"
            ]
            .contains(&outcome.as_str()),
            "unexpected outcome {outcome}: {tally:?}"
        );
    }
    // No cap of any chain exceeded, and the counters are the sums of what was accepted.
    let r = lane_state(&sp1, &lane_id(&root));
    let a = lane_state(&sp2, &lane_id(&sub1));
    let b = lane_state(&sp2, &lane_id(&sub2));
    assert_eq!(n(&r["spent"]), total_served * PRICE, "{r}");
    assert_eq!(n(&r["payments"]), total_served, "{r}");
    assert_eq!(n(&r["windowSpent"]), total_served * PRICE, "{r}");
    assert_eq!((n(&a["spent"]), n(&a["payments"])), (s1 * PRICE, s1), "{a}");
    assert_eq!((n(&b["spent"]), n(&b["payments"])), (s2 * PRICE, s2), "{b}");
    assert!(total_served * PRICE <= 40 * PRICE && total_served <= 35 && total_served * PRICE <= 30 * PRICE);
    assert!(s1 <= 6 && s2 <= 5, "{tally:?}");
    // The root alone gets 42 attempts, more than the 30 − 11 it may still need: its allowance is
    // always reached.
    assert_eq!(total_served, 30, "{tally:?}");
    // The ledger file agrees: one mandate per served payment, reserved once.
    let ledger = aep2_sp::Ledger::open(dir.join("ledger.db"), &aep2_sp::LedgerOptions::default()).unwrap();
    assert_eq!(ledger.counts().unwrap().accepted, total_served);
    assert_eq!(ledger.audit().unwrap(), Vec::<String>::new());
    let balance = ledger
        .accounts(&key(OWNER).address().to_checksum(), None)
        .unwrap()
        .remove(0);
    assert_eq!(balance.reserved, U256::from_u64(total_served * PRICE));
    eprintln!(
        "lane race: {} attempts over {THREADS} threads at 2 payees and 2 SP processes on one ledger, {total_served} accepted \
         (root {s0}, sub1 {s1}, sub2 {s2}); caps root total 40 / count 35 / allowance 30, sub1 total 6, sub2 count 5; \
         {} ms; outcomes {tally:?}",
        THREADS * PER_THREAD,
        elapsed.as_millis()
    );
    drop((pa, pb));
    sp1.terminate();
    sp2.terminate();
}

fn aep2(args: &[&str]) -> (i32, J, String) {
    let out = Command::new(BIN).args(args).output().expect("run aep2");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout).unwrap_or(J::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn hex_key(label: &str) -> String {
    aep2::codec::hex_encode_0x(&aep2::hash::sha256(label.as_bytes()))
}

#[test]
fn lane_status_and_lane_revoke_against_a_running_sp() {
    let dir = temp_dir("cli");
    let sp = start_sp(&sp_config(&dir), &dir.join("sp.log"));
    let url = format!("http://{}", sp.addr);
    let from = (now() - 60).to_string();
    let until = (now() + 86_400).to_string();
    let grant = |k: &str, agent: &str, total: &str, parent: Option<&Path>| {
        let parent_arg = parent.map(|p| format!("@{}", p.display()));
        let mut args = vec![
            "lane",
            "grant",
            "--profile",
            "eip712",
            "--chain-id",
            "84532",
            "--verifying-contract",
            CONTRACT,
            "--key",
            k,
            "--agent",
            agent,
            "--asset",
            TOKEN,
            "--per-payment",
            "1000",
            "--total",
            total,
            "--valid-from",
            &from,
            "--valid-until",
            &until,
        ];
        if let Some(p) = &parent_arg {
            args.extend(["--parent", p.as_str()]);
        }
        let (code, file, err) = aep2(&args);
        assert_eq!(code, 0, "{err}");
        file
    };
    let owner_key = hex_key(OWNER);
    let agent = key("cli-agent").address().to_checksum();
    let sub_agent = key("cli-sub").address().to_checksum();
    let root = grant(&owner_key, &agent, "5000", None);
    assert_eq!(root["domain"]["chainId"], 84532, "{root}");
    let root_file = dir.join("root.json");
    std::fs::write(&root_file, root.to_string()).unwrap();
    let sub = grant(&hex_key("cli-agent"), &sub_agent, "3000", Some(&root_file));
    let sub_file = dir.join("sub.json");
    std::fs::write(&sub_file, sub.to_string()).unwrap();
    let at = |p: &Path| format!("@{}", p.display());

    // Not yet seen by the SP: nothing spent, the least total of the chain remains.
    let (code, s, err) = aep2(&["lane", "status", "--sp-url", &url, "--lane", &at(&sub_file)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (&s["spent"], &s["remaining"], &s["payments"], &s["revoked"], &s["known"]),
        (
            &J::from("0"),
            &J::from("3000"),
            &J::from(0),
            &J::from(false),
            &J::from(false)
        ),
        "{s}"
    );
    // One payment under the sub-lane, enqueued directly.
    let chain = aep2::lane::parse_chain(
        aep2::Profile::Eip712,
        &aep2::json::parse(
            &serde_json::json!([sub["parents"][0], {"lane": sub["lane"], "signature": sub["signature"]}]).to_string(),
            &aep2::json::Limits::AEP2,
        )
        .unwrap(),
    )
    .unwrap();
    // One deadline for every mandate, so that a retry is the same mandate.
    let deadline = now() + 900;
    let enqueue = |nonce: u64| {
        let m = Mandate::Eip712(EvmMandate {
            owner: key(OWNER).address(),
            token: token(),
            payee: EvmAddress([0x44; 20]),
            amount: U256::from_u64(700),
            nonce: U256::from_u64(nonce),
            deadline,
            reference: [1; 32],
        });
        let (sm, _) = sign_lane_mandate(
            &m,
            &domain(),
            &PayerKey::Secp256k1(key("cli-sub")),
            EnvelopeForm::Native,
            &chain,
        )
        .unwrap();
        http(
            &sp.addr,
            "POST",
            "/enqueue",
            &[],
            aep2::json::to_compact(&sm.to_json()).as_bytes(),
        )
        .unwrap()
    };
    let r = enqueue(1);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["receipt"]["lane"]["remaining"], "2300", "{}", r.body);
    let (code, s, _) = aep2(&["lane", "status", "--sp-url", &url, "--lane", &at(&sub_file)]);
    assert_eq!(code, 0);
    assert_eq!(
        (&s["spent"], &s["remaining"], &s["payments"], &s["known"]),
        (&J::from("700"), &J::from("2300"), &J::from(1), &J::from(true)),
        "{s}"
    );
    let (_, s, _) = aep2(&["lane", "status", "--sp-url", &url, "--lane", &at(&root_file)]);
    assert_eq!(
        (&s["spent"], &s["remaining"]),
        (&J::from("700"), &J::from("4300")),
        "{s}"
    );

    // The sub-lane's own agent cannot revoke it, nor can it revoke its parent.
    let (code, refused, _) = aep2(&[
        "lane",
        "revoke",
        "--sp-url",
        &url,
        "--key",
        &hex_key("cli-sub"),
        "--lane",
        &at(&sub_file),
    ]);
    assert_eq!(
        (code, &refused["code"]),
        (1, &J::from("lane_revoker_invalid")),
        "{refused}"
    );
    let (code, refused, _) = aep2(&[
        "lane",
        "revoke",
        "--sp-url",
        &url,
        "--key",
        &hex_key("cli-agent"),
        "--lane",
        &at(&root_file),
    ]);
    assert_eq!(
        (code, &refused["code"]),
        (1, &J::from("lane_revoker_invalid")),
        "{refused}"
    );
    // Its grantor can; again is the same answer.
    let (code, first, err) = aep2(&[
        "lane",
        "revoke",
        "--sp-url",
        &url,
        "--key",
        &hex_key("cli-agent"),
        "--lane",
        &at(&sub_file),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (&first["success"], &first["revoked"], &first["lane"]),
        (&J::from(true), &J::from(true), &sub["id"]),
        "{first}"
    );
    let (code, again, _) = aep2(&[
        "lane",
        "revoke",
        "--sp-url",
        &url,
        "--key",
        &owner_key,
        "--lane",
        &at(&sub_file),
    ]);
    assert_eq!(code, 0);
    assert_eq!(again["revokedAt"], first["revokedAt"]);
    let (_, s, _) = aep2(&["lane", "status", "--sp-url", &url, "--lane", &at(&sub_file)]);
    assert_eq!(
        (&s["revoked"], &s["revokedAt"]),
        (&J::from(true), &first["revokedAt"]),
        "{s}"
    );
    // The next payment is refused; a retry of the accepted one still gets its receipt.
    let r = enqueue(2);
    assert_eq!(
        (r.status, r.reason()),
        (403, Some("lane_revoked".to_owned())),
        "{}",
        r.body
    );
    let r = enqueue(1);
    assert_eq!((r.status, &r.json()["fresh"]), (200, &J::from(false)), "{}", r.body);
    sp.terminate();
}
