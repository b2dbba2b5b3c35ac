//! `aep2 serve payee` and `aep2 serve sp` as processes: every charge is served exactly once.
//!
//! A method a route does not serve is refused before any charge; an SP stall leaves mandates
//! unfinished, and the same mandate presented again (at another instance sharing the store, or
//! after a restart) is served once; a SIGKILL in the middle of a burst loses no serve and makes
//! no second one; one mandate at two payees is served once; a request-bound mandate does not pay
//! on the unbound route; the payee's deadline boundary leaves the SP its margin.
//!
//! Every count comes from the SP (`GET /v1/mandates/{id}`, `GET /v1/accounts`) and from the 200
//! responses the client read. Each test prints one line of figures to stderr.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::crypto::secp256k1::SecretKey;
use aep2::{EvmAddress, PayeePolicy, SignedMandate, U256, mandate_digest};
use aep2_axum::agent::Payer;
use aep2_x402::{PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, PaymentRequirements, X_PAYMENT_MANDATE};
use common::{CONTRACT, HOST, Proc, Resp, TOKEN, domain, http, key, now, signal, token};
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const PRICE: u64 = 1000;
const BALANCE: u64 = 1_000_000;
/// A comfortable deadline (the payee's window is 310 s, its horizon 3600 s).
const LIFETIME: u64 = 900;

/// The `--payee` of every payee.
fn payee() -> EvmAddress {
    EvmAddress([0x44; 20])
}

/// The `--mvp-payee` (account of the unbound route).
fn mvp_payee() -> EvmAddress {
    EvmAddress([0x55; 20])
}

fn sp_key() -> SecretKey {
    key("exactly-once-sp")
}

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("exactly-once", name)
}

/// A settlement processor with one funded payer (`BALANCE`), window 300 s, skew 5 s.
struct Sp {
    proc: Proc,
    payer: SecretKey,
}

impl Sp {
    fn start(dir: &Path, payer: &str) -> Sp {
        Sp::start_on(dir, payer, "ledger.db", "sp")
    }

    /// An SP on the ledger `database` (a file beside the configuration, or a `postgres://`
    /// URL), its configuration and log named after `name`.
    fn start_on(dir: &Path, payer: &str, database: &str, name: &str) -> Sp {
        let payer = key(payer);
        let cfg = serde_json::json!({
            "listen": "127.0.0.1:0",
            "database": database,
            "keys": { "secp256k1": aep2::codec::hex_encode_0x(&aep2::hash::sha256(b"exactly-once-sp")) },
            "domains": [{ "profile": "eip712", "domain": { "chainId": 84532, "verifyingContract": CONTRACT } }],
            "settlementWindow": 300,
            "clockSkew": 5,
            "deposits": [{ "id": "initial", "payer": payer.address().to_checksum(), "token": TOKEN, "amount": BALANCE.to_string() }],
        });
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, cfg.to_string()).unwrap();
        let args = vec![
            "serve".into(),
            "sp".into(),
            "--config".into(),
            path.display().to_string(),
        ];
        Sp {
            proc: Proc::spawn(&args, &dir.join(format!("{name}.log"))),
            payer,
        }
    }

    fn addr(&self) -> &str {
        &self.proc.addr
    }

    /// SIGSTOP: the SP accepts connections (the kernel does) but answers nothing.
    fn stall(&self) {
        signal(self.proc.pid(), "-STOP");
    }

    fn resume(&self) {
        signal(self.proc.pid(), "-CONT");
    }

    /// The SP's record of mandate `id`, or `None` for `404 mandate_unknown`.
    fn mandate(&self, id: &str) -> Option<J> {
        let r = http(self.addr(), "GET", &format!("/v1/mandates/{id}"), &[], b"").unwrap();
        match r.status {
            200 => Some(r.json()["mandate"].clone()),
            404 => {
                assert_eq!(r.reason().as_deref(), Some("mandate_unknown"), "{}", r.body);
                None
            }
            s => panic!("GET /v1/mandates/{id}: {s} {}", r.body),
        }
    }

    /// How many of `ids` the SP holds (charged).
    fn charged<'a>(&self, ids: impl IntoIterator<Item = &'a String>) -> usize {
        ids.into_iter().filter(|id| self.mandate(id).is_some()).count()
    }

    /// The payer's account: (balance, reserved, available).
    fn account(&self) -> (u64, u64, u64) {
        self.account_of(&self.payer)
    }

    /// `payer`'s account: (balance, reserved, available).
    fn account_of(&self, payer: &SecretKey) -> (u64, u64, u64) {
        let path = format!("/v1/accounts?payer={}", payer.address().to_checksum());
        let r = http(self.addr(), "GET", &path, &[], b"").unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let a = &r.json()["accounts"][0];
        let n = |k: &str| a[k].as_str().unwrap().parse::<u64>().unwrap();
        (n("balance"), n("reserved"), n("available"))
    }

    fn reserved(&self) -> u64 {
        self.account().1
    }
}

/// Where a payee keeps its payment state.
#[derive(Clone)]
enum Store {
    /// `--replay-db FILE`.
    File(PathBuf),
    /// `--data-dir DIR`.
    Dir(PathBuf),
    /// `--memory-store`.
    Memory,
    /// `--replay-db postgres://…`.
    Postgres(String),
}

/// Starts `aep2 serve payee` in front of `sp`, logging to `log`.
fn start_payee(sp: &Sp, store: &Store, extra: &[&str], log: &Path) -> Proc {
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
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend([
        "--payee".to_owned(),
        payee().to_checksum(),
        "--price".to_owned(),
        PRICE.to_string(),
        "--sp-url".to_owned(),
        format!("http://{}", sp.addr()),
        "--sp".to_owned(),
        sp_key().address().to_checksum(),
    ]);
    match store {
        Store::File(p) => args.extend(["--replay-db".to_owned(), p.display().to_string()]),
        Store::Dir(p) => args.extend(["--data-dir".to_owned(), p.display().to_string()]),
        Store::Memory => args.push("--memory-store".to_owned()),
        Store::Postgres(url) => args.extend(["--replay-db".to_owned(), url.clone()]),
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Proc::spawn(&args, log)
}

/// `(status, reason)` of a response, `"served"` for a served one.
type Outcome = (u16, String);

impl Resp {
    /// A served paid response: 200, the report body with `paidBy`, and `PAYMENT-RESPONSE`.
    fn served(&self) -> bool {
        let v = self.json();
        self.status == 200 && v["symbol"] == "ETH" && v["paidBy"].is_string() && self.header(PAYMENT_RESPONSE).is_some()
    }

    /// `(status, reason)`, for assertions and tallies.
    fn outcome(&self) -> Outcome {
        let reason = if self.served() {
            "served".to_owned()
        } else {
            self.reason().unwrap_or_default()
        };
        (self.status, reason)
    }
}

/// The payee's Intent Mode terms (for `PAYMENT-SIGNATURE`'s `accepted`).
fn terms(pay_to: EvmAddress) -> PaymentRequirements {
    let policy = PayeePolicy::new(pay_to.into(), token().into(), U256::from_u64(PRICE)).with_settlement_window(310);
    PaymentRequirements::for_policy(&policy, &domain(), 60)
}

fn url(path: &str) -> String {
    format!("http://{HOST}{path}")
}

fn id_of(signed: &SignedMandate) -> String {
    aep2::codec::hex_encode_0x(&mandate_digest(&signed.mandate, &domain()).unwrap().id)
}

/// A signed mandate and its `PAYMENT-SIGNATURE` header.
#[derive(Clone)]
struct Paid {
    id: String,
    header: String,
    signed: SignedMandate,
}

impl Paid {
    fn of(signed: SignedMandate, accepted: &PaymentRequirements) -> Paid {
        Paid {
            id: id_of(&signed),
            header: aep2_x402::payment_signature(accepted, &signed.to_json()),
            signed,
        }
    }

    fn nonce(&self) -> u64 {
        match &self.signed.mandate {
            aep2::Mandate::Eip712(m) => m.nonce.to_u64().unwrap(),
            _ => unreachable!(),
        }
    }
}

/// A mandate at the price to `--payee`, bound to `method path body`, with `deadline`.
fn bound(payer: &Payer, method: &str, path: &str, body: &[u8], deadline: u64) -> Paid {
    let hash = aep2_x402::request_hash(method, &url(path), body).unwrap();
    let signed = payer
        .sign(payee(), token(), U256::from_u64(PRICE), deadline, hash)
        .unwrap();
    Paid::of(signed, &terms(payee()))
}

/// `GET /paid/intent` with the mandate of `paid` (transport errors returned).
fn get_intent(addr: &str, paid: &Paid) -> std::io::Result<Resp> {
    http(addr, "GET", "/paid/intent", &[(PAYMENT_SIGNATURE, &paid.header)], b"")
}

/// `GET /paid/intent` until it is not `payment_in_progress` (at most `tries` times, waiting the
/// `Retry-After` capped at 3 s).
fn get_intent_settled(addr: &str, paid: &Paid, tries: usize) -> Resp {
    let mut last = None;
    for _ in 0..tries {
        let r = get_intent(addr, paid).unwrap();
        if r.reason().as_deref() != Some("payment_in_progress") {
            return r;
        }
        let wait = r
            .header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1)
            .min(3);
        std::thread::sleep(Duration::from_millis(wait * 1000 + 100));
        last = Some(r);
    }
    last.unwrap()
}

fn payer(sp: &Sp) -> Payer {
    Payer::new(sp.payer.clone(), domain(), 1)
}

fn unserved(addr: &str) -> u64 {
    let r = http(addr, "GET", "/health", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["unserved"].as_u64().unwrap()
}

#[test]
fn wrong_method_is_refused_before_charging() {
    let dir = temp_dir("method");
    let sp = Sp::start(&dir, "method-payer");
    let p = start_payee(&sp, &Store::Dir(dir.join("data")), &[], &dir.join("payee.log"));
    let payer = payer(&sp);
    let deadline = now() + LIFETIME;

    // Order Mode: the quote for GET /paid/order, and a mandate for it.
    let first = http(&p.addr, "GET", "/paid/order", &[], b"").unwrap();
    assert_eq!(first.outcome(), (402, "payment_missing".into()), "{}", first.body);
    let required = aep2_x402::PaymentRequired::decode(first.header(PAYMENT_REQUIRED).unwrap()).unwrap();
    let offer = required.accepts[0].clone();
    let quote = aep2::PaymentRequest::from_json(offer.extra.as_ref().unwrap().get("quote").unwrap()).unwrap();
    let order = Paid::of(payer.sign_for(&offer, quote.hash(), deadline).unwrap(), &offer);
    // Intent Mode: the mandate for GET /paid/intent, and mandates bound to the refused methods.
    let get = bound(&payer, "GET", "/paid/intent", b"", deadline);
    let put = bound(&payer, "PUT", "/paid/intent", b"{}", deadline);
    let delete = bound(&payer, "DELETE", "/paid/intent", b"", deadline);
    let patch = bound(&payer, "PATCH", "/paid/intent", b"{}", deadline);

    let mut attempts = 0;
    let mut refuse = |method: &str, path: &str, paid: &Paid, body: &[u8], allow: &[&str]| {
        attempts += 1;
        let r = http(&p.addr, method, path, &[(PAYMENT_SIGNATURE, &paid.header)], body).unwrap();
        let got = r.header("allow").unwrap_or_else(|| panic!("{method} {path}: no Allow"));
        let mut got: Vec<&str> = got.split(',').map(str::trim).collect();
        got.sort_unstable();
        let mut want = allow.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{method} {path}: Allow");
        assert!(r.header(PAYMENT_RESPONSE).is_none(), "{method} {path}");
        if method == "OPTIONS" {
            assert_eq!(r.status, 204, "{method} {path}: {}", r.body);
        } else {
            assert_eq!(
                r.outcome(),
                (405, "route_unknown".into()),
                "{method} {path}: {}",
                r.body
            );
        }
    };
    let order_allow = ["GET", "OPTIONS"];
    for m in ["POST", "PUT", "DELETE", "PATCH", "FOO", "OPTIONS"] {
        let body: &[u8] = if matches!(m, "POST" | "PUT" | "PATCH") {
            b"{}"
        } else {
            b""
        };
        refuse(m, "/paid/order", &order, body, &order_allow);
    }
    let intent_allow = ["GET", "POST", "OPTIONS"];
    refuse("PUT", "/paid/intent", &put, b"{}", &intent_allow);
    refuse("DELETE", "/paid/intent", &delete, b"", &intent_allow);
    refuse("PATCH", "/paid/intent", &patch, b"{}", &intent_allow);
    // The GET mandate presented with the wrong methods too, before it is spent.
    refuse("PUT", "/paid/intent", &get, b"{}", &intent_allow);
    refuse("DELETE", "/paid/intent", &get, b"", &intent_allow);
    refuse("PATCH", "/paid/intent", &get, b"{}", &intent_allow);
    refuse("OPTIONS", "/paid/intent", &get, b"", &intent_allow);

    // Nothing charged, nothing recorded unfinished.
    let all = [&order, &get, &put, &delete, &patch];
    let charged_refused = sp.charged(all.iter().map(|p| &p.id));
    let reserved_refused = sp.reserved();
    let unserved_refused = unserved(&p.addr);
    assert_eq!(charged_refused, 0, "a refused method charged nothing");
    assert_eq!(reserved_refused, 0);
    assert_eq!(unserved_refused, 0, "nothing recorded at the payee");

    // The same mandates with the right method are served.
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    let mut count = |r: &Resp, id: &str| {
        if r.served() {
            *served.entry(id.to_owned()).or_default() += 1;
        }
    };
    let r = http(
        &p.addr,
        "GET",
        "/paid/order",
        &[(PAYMENT_SIGNATURE, &order.header)],
        b"",
    )
    .unwrap();
    assert!(r.served(), "order mandate served: {} {}", r.status, r.body);
    count(&r, &order.id);
    let r = get_intent(&p.addr, &get).unwrap();
    assert!(r.served(), "GET mandate served: {} {}", r.status, r.body);
    count(&r, &get.id);
    // The method-bound ones re-signed for GET with the same nonce: served, so neither the payee
    // nor the SP recorded the originals (either would refuse the nonce as reused).
    let mut resigned = Vec::new();
    for original in [&put, &delete, &patch] {
        let hash = aep2_x402::request_hash("GET", &url("/paid/intent"), b"").unwrap();
        let signed = payer
            .sign_with_nonce(
                payee(),
                token(),
                U256::from_u64(PRICE),
                deadline,
                hash,
                original.nonce(),
            )
            .unwrap();
        let again = Paid::of(signed, &terms(payee()));
        assert_ne!(again.id, original.id);
        let r = get_intent(&p.addr, &again).unwrap();
        assert!(r.served(), "re-signed mandate served: {} {}", r.status, r.body);
        count(&r, &again.id);
        assert!(sp.mandate(&original.id).is_none(), "the original was never recorded");
        resigned.push(again);
    }
    // Each once: presented again, replayed.
    let r = get_intent(&p.addr, &get).unwrap();
    assert_eq!(r.outcome(), (402, "mandate_replayed".into()), "{}", r.body);
    let spent: Vec<String> = [&order.id, &get.id]
        .into_iter()
        .cloned()
        .chain(resigned.iter().map(|p| p.id.clone()))
        .collect();
    let charged = sp.charged(&spent);
    let reserved = sp.reserved();
    let double = served.values().filter(|n| **n > 1).count();
    let served_total: usize = served.values().sum();
    eprintln!(
        "wrong_method: attempts {attempts} charged {charged_refused} served 0 unserved_at_payee {unserved_refused} | then right method: charged {charged} served {served_total} double_served {double} reserved {reserved}"
    );
    assert_eq!(charged, 5);
    assert_eq!(served_total, 5);
    assert_eq!(double, 0);
    assert_eq!(reserved, 5 * PRICE);
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sp_stall_then_retry_at_second_instance_and_after_restart() {
    sp_stall_then_retry("stall", |dir| Store::File(dir.join("payee.db")));
}

/// The same with the instances sharing a Postgres store (when `AEP2_TEST_POSTGRES` is set).
#[test]
fn sp_stall_then_retry_at_second_instance_and_after_restart_on_postgres() {
    let Some(url) = postgres("stall") else { return };
    sp_stall_then_retry("stall-pg", |_| Store::Postgres(url));
}

/// A fresh Postgres schema's URL, or `None` (said on stderr) when the test server is not set.
fn postgres(tag: &str) -> Option<String> {
    match aep2_replay::db::testing::postgres(tag) {
        Some(aep2_replay::db::Location::Postgres(url)) => Some(url),
        _ => {
            eprintln!("not run: {} is not set", aep2_replay::db::testing::ENV);
            None
        }
    }
}

fn sp_stall_then_retry(name: &str, store: impl FnOnce(&Path) -> Store) {
    let dir = temp_dir(name);
    let sp = Sp::start(&dir, "stall-payer");
    let db = store(&dir);
    let a = start_payee(&sp, &db, &[], &dir.join("a.log"));
    let b = start_payee(&sp, &db, &[], &dir.join("b.log"));
    let payer = payer(&sp);
    let deadline = now() + LIFETIME;
    let mandates: Vec<Paid> = (0..10)
        .map(|_| bound(&payer, "GET", "/paid/intent", b"", deadline))
        .collect();

    sp.stall();
    let t = Instant::now();
    let threads: Vec<_> = mandates
        .iter()
        .cloned()
        .map(|m| {
            let addr = a.addr.clone();
            std::thread::spawn(move || get_intent(&addr, &m).unwrap())
        })
        .collect();
    let stalled: Vec<Resp> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let stall_secs = t.elapsed().as_secs_f64();
    sp.resume();
    for r in &stalled {
        assert_eq!(r.outcome(), (503, "settlement_unavailable".into()), "{}", r.body);
        assert!(r.header(PAYMENT_RESPONSE).is_none());
    }
    assert!(stall_secs >= 4.5, "the payee waited for the SP ({stall_secs:.1} s)");
    let unserved_a = unserved(&a.addr);
    assert_eq!(unserved_a, 10, "all ten recorded unfinished");
    // The stalled SP may still process the submissions it had read: charged, not yet served.
    std::thread::sleep(Duration::from_millis(500));
    let charged_by_stall = sp.charged(mandates.iter().map(|m| &m.id));

    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    let mut tally = |r: &Resp, m: &Paid| {
        if r.served() {
            *served.entry(m.id.clone()).or_default() += 1;
        }
    };
    for m in &mandates[..5] {
        let r = get_intent(&b.addr, m).unwrap();
        assert!(r.served(), "retry at B: {} {}", r.status, r.body);
        tally(&r, m);
    }
    a.terminate();
    let a = start_payee(&sp, &db, &[], &dir.join("a.log"));
    assert_eq!(unserved(&a.addr), 5, "the restarted A sees the five left");
    for m in &mandates[5..] {
        let r = get_intent(&a.addr, m).unwrap();
        assert!(r.served(), "retry at restarted A: {} {}", r.status, r.body);
        tally(&r, m);
    }
    let mut replayed = 0;
    for (i, m) in mandates.iter().enumerate() {
        let at = if i % 2 == 0 { &a.addr } else { &b.addr };
        let r = get_intent(at, m).unwrap();
        tally(&r, m);
        if r.outcome() == (402, "mandate_replayed".into()) {
            replayed += 1;
        }
    }
    let charged = sp.charged(mandates.iter().map(|m| &m.id));
    let reserved = sp.reserved();
    let served_total: usize = served.values().sum();
    let double = served.values().filter(|n| **n > 1).count();
    let unserved_end = unserved(&a.addr);
    eprintln!(
        "sp_stall({name}): attempts 10 stalled_503 {} (in {stall_secs:.1} s) charged_by_stalled_sp {charged_by_stall} retried_at_B 5 retried_at_restarted_A 5 served {served_total} double_served {double} charged {charged} reserved {reserved} replayed_on_second_retry {replayed} unserved_at_end {unserved_end}",
        stalled.len()
    );
    assert_eq!(served.len(), 10, "each mandate served");
    assert_eq!(served_total, 10);
    assert_eq!(double, 0);
    assert_eq!(charged, 10);
    assert_eq!(reserved, 10 * PRICE);
    assert_eq!(replayed, 10);
    assert_eq!(unserved_end, 0);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn payee_sigkill_mid_burst_then_retries() {
    payee_sigkill_mid_burst("burst", |dir| Store::File(dir.join("payee.db")));
}

/// The same with the payee's store in Postgres (when `AEP2_TEST_POSTGRES` is set): the killed
/// process's connections go, its open transactions roll back, and what it committed stays.
#[test]
fn payee_sigkill_mid_burst_then_retries_on_postgres() {
    let Some(url) = postgres("burst") else { return };
    payee_sigkill_mid_burst("burst-pg", |_| Store::Postgres(url));
}

fn payee_sigkill_mid_burst(name: &str, store: impl FnOnce(&Path) -> Store) {
    const N: usize = 300;
    const THREADS: usize = 8;
    const LEASE: u64 = 2;
    let dir = temp_dir(name);
    let sp = Sp::start(&dir, "burst-payer");
    let db = store(&dir);
    let lease = LEASE.to_string();
    let extra = ["--claim-lease", lease.as_str()];
    let p = start_payee(&sp, &db, &extra, &dir.join("payee.log"));
    let payer = payer(&sp);
    let deadline = now() + LIFETIME;
    let mandates: Arc<Vec<Paid>> = Arc::new(
        (0..N)
            .map(|_| bound(&payer, "GET", "/paid/intent", b"", deadline))
            .collect(),
    );
    // Per mandate: 200s read, and the last outcome (None: a transport failure).
    let served = Arc::new(Mutex::new(vec![0usize; N]));
    let last: Arc<Mutex<Vec<Option<Outcome>>>> = Arc::new(Mutex::new(vec![None; N]));
    let errors: Arc<Mutex<Vec<Option<String>>>> = Arc::new(Mutex::new(vec![None; N]));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (mandates, served, last, errors, addr) = (
                mandates.clone(),
                served.clone(),
                last.clone(),
                errors.clone(),
                p.addr.clone(),
            );
            std::thread::spawn(move || {
                for i in (t..N).step_by(THREADS) {
                    let r = get_intent(&addr, &mandates[i]);
                    if let Ok(r) = &r
                        && r.served()
                    {
                        served.lock().unwrap()[i] += 1;
                    }
                    if let Err(e) = &r {
                        errors.lock().unwrap()[i] = Some(e.to_string());
                    }
                    last.lock().unwrap()[i] = r.ok().map(|r| r.outcome());
                }
            })
        })
        .collect();
    let t = Instant::now();
    while served.lock().unwrap().iter().sum::<usize>() < N / 3 && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(2));
    }
    p.kill(); // SIGKILL
    let killed_after = served.lock().unwrap().iter().sum::<usize>();
    for th in threads {
        th.join().unwrap();
    }
    let burst_secs = t.elapsed().as_secs_f64();
    let last = last.lock().unwrap().clone();
    let transport_failures = last.iter().filter(|o| o.is_none()).count();
    let served_in_burst = served.lock().unwrap().iter().sum::<usize>();
    for (i, o) in last.iter().enumerate() {
        if let Some(o) = o {
            assert_eq!(o.1, "served", "burst answer for #{i}: {o:?}");
        }
    }
    assert!(killed_after >= N / 3, "the burst was under way before the kill");
    assert!(transport_failures > 0, "the kill landed in the middle of the burst");
    let charged_at_kill = sp.charged(mandates.iter().map(|m| &m.id));
    // The serves the kill caught after their response went out and before the delivery mark
    // (spec aep2.md#payee-payment-state, "What remains", second window): the client has its 200,
    // the store still holds the claim. A replay of one of these after the lease is served again.
    let caught: Vec<usize> = {
        let store: Box<dyn aep2_replay::PaymentStore> = match &db {
            Store::File(path) => Box::new(aep2_replay::SqliteStore::open(path).unwrap()),
            Store::Postgres(url) => Box::new(aep2_replay::PostgresStore::open(url).unwrap()),
            _ => unreachable!("a durable store"),
        };
        (0..N)
            .filter(|&i| served.lock().unwrap()[i] == 1)
            .filter(|&i| {
                let id = aep2::codec::hex_decode_0x(&mandates[i].id).unwrap();
                let record = store.lookup(&id.try_into().unwrap()).unwrap();
                record.is_some_and(|r| r.state == aep2_replay::PaymentState::Served && r.claimed_until > 0)
            })
            .collect()
    };
    assert!(
        caught.len() <= THREADS,
        "at most one serve per connection in flight: {caught:?}"
    );

    // Restart on the same store, wait out the lease, retry every mandate not served.
    let p = start_payee(&sp, &db, &extra, &dir.join("payee.log"));
    let unserved_after_restart = unserved(&p.addr);
    std::thread::sleep(Duration::from_millis(LEASE * 1000 + 1500));
    let mut retried = 0;
    let mut retry_outcomes: BTreeMap<(u16, String), usize> = BTreeMap::new();
    let mut lost: Vec<usize> = Vec::new();
    let mut retry_last: Vec<Option<String>> = vec![None; N];
    for i in 0..N {
        if served.lock().unwrap()[i] > 0 {
            continue;
        }
        retried += 1;
        let r = get_intent_settled(&p.addr, &mandates[i], 5);
        retry_last[i] = Some(format!("{} {}", r.status, r.body));
        if r.served() {
            served.lock().unwrap()[i] += 1;
        } else {
            lost.push(i);
        }
        *retry_outcomes.entry(r.outcome()).or_default() += 1;
    }
    // Everything served is replayed from now on, but for the serves caught mid-delivery.
    let sample: Vec<usize> = (0..N).step_by(37).filter(|i| !caught.contains(i)).collect();
    for &i in &sample {
        let r = get_intent(&p.addr, &mandates[i]).unwrap();
        if r.served() {
            served.lock().unwrap()[i] += 1;
        }
        assert_eq!(r.outcome(), (402, "mandate_replayed".into()), "#{i}: {}", r.body);
    }
    let served = served.lock().unwrap().clone();
    let mut charged = 0;
    let mut charged_unserved = Vec::new();
    let mut served_uncharged = Vec::new();
    for (i, m) in mandates.iter().enumerate() {
        let c = sp.mandate(&m.id).is_some();
        charged += usize::from(c);
        if c && served[i] != 1 {
            charged_unserved.push(i);
        }
        if !c && served[i] != 0 {
            served_uncharged.push(i);
        }
    }
    let served_total: usize = served.iter().sum();
    let double = served.iter().filter(|n| **n > 1).count();
    let reserved = sp.reserved();
    let unserved_end = unserved(&p.addr);
    eprintln!(
        "sigkill_burst({name}): attempts {N} threads {THREADS} served_before_kill {killed_after} served_in_burst {served_in_burst} transport_failures {transport_failures} (burst {burst_secs:.1} s) charged_at_kill {charged_at_kill} caught_mid_delivery {} unserved_after_restart {unserved_after_restart} retried {retried} retry_outcomes {retry_outcomes:?} charged {charged} served {served_total} double_served {double} charged_not_served {} served_not_charged {} reserved {reserved} unserved_at_end {unserved_end}",
        caught.len(),
        charged_unserved.len(),
        served_uncharged.len()
    );
    let errors = errors.lock().unwrap().clone();
    for &i in &charged_unserved {
        eprintln!(
            "sigkill_burst: #{i} charged, not served: burst attempt {:?}, retry after restart {:?}",
            errors[i], retry_last[i]
        );
    }
    assert_eq!(double, 0, "no mandate served twice");
    assert_eq!(served_uncharged, Vec::<usize>::new(), "nothing served without a charge");
    // A serve the kill caught before its response went out holds its claim without a delivery
    // mark, and the retry after the lease is served (spec aep2.md#payee-payment-state, rule 4).
    assert_eq!(
        charged_unserved,
        Vec::<usize>::new(),
        "every charged mandate served exactly once (not served on retry: {lost:?})"
    );
    assert_eq!(reserved, charged as u64 * PRICE);
    assert_eq!(charged, N, "every retried mandate was charged and served");
    assert_eq!(unserved_end, 0);
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `paid` `n` times at once, alternating between `addrs`; returns per-target outcomes.
fn race(addrs: &[&str], paid: &Paid, n: usize) -> Vec<(usize, (u16, String), bool)> {
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (addr, paid, barrier) = (addrs[i % addrs.len()].to_owned(), paid.clone(), barrier.clone());
            let target = i % addrs.len();
            std::thread::spawn(move || {
                barrier.wait();
                let r = get_intent(&addr, &paid).unwrap();
                if r.reason().as_deref() == Some("payment_in_progress") {
                    assert!(r.header("retry-after").is_some(), "payment_in_progress has Retry-After");
                }
                (target, r.outcome(), r.served())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn tally(outcomes: &[(usize, (u16, String), bool)]) -> BTreeMap<(usize, u16, String), usize> {
    let mut m = BTreeMap::new();
    for (t, (s, r), _) in outcomes {
        *m.entry((*t, *s, r.clone())).or_default() += 1;
    }
    m
}

#[test]
fn same_mandate_at_two_payees() {
    let dir = temp_dir("two");
    let sp = Sp::start(&dir, "two-payer");
    let payer = payer(&sp);
    let deadline = now() + LIFETIME;
    let allowed = |o: &(u16, String)| {
        matches!(
            (o.0, o.1.as_str()),
            (200, "served") | (402, "mandate_replayed") | (503, "payment_in_progress")
        )
    };

    let mut unexpected: BTreeMap<String, usize> = BTreeMap::new();
    // (a) One store shared by A and B.
    let shared = Store::File(dir.join("shared.db"));
    let a = start_payee(&sp, &shared, &[], &dir.join("a.log"));
    let b = start_payee(&sp, &shared, &[], &dir.join("b.log"));
    let m1 = bound(&payer, "GET", "/paid/intent", b"", deadline);
    let out = race(&[&a.addr, &b.addr], &m1, 16);
    let served_a = out.iter().filter(|o| o.2).count();
    let tally_a = tally(&out);
    let charged_a = sp.charged([&m1.id]);
    let reserved_a = sp.reserved();
    eprintln!(
        "same_mandate(a shared store): attempts 16 served {served_a} charged {charged_a} reserved {reserved_a} outcomes {tally_a:?}"
    );
    // Checked at the end, so that every case's figures are printed first.
    for o in out.iter().filter(|o| !allowed(&o.1)) {
        *unexpected.entry(format!("shared store: {:?}", o.1)).or_default() += 1;
    }
    assert_eq!(served_a, 1, "exactly one serve");
    assert_eq!(charged_a, 1);
    assert_eq!(reserved_a, PRICE);

    // (b) Separate stores: only the SP's submission-id check stands between them.
    let c = start_payee(&sp, &Store::File(dir.join("c.db")), &[], &dir.join("c.log"));
    let d = start_payee(&sp, &Store::File(dir.join("d.db")), &[], &dir.join("d.log"));
    let m2 = bound(&payer, "GET", "/paid/intent", b"", deadline);
    let out = race(&[&c.addr, &d.addr], &m2, 16);
    let served_b = out.iter().filter(|o| o.2).count();
    let tally_b = tally(&out);
    let winner = out.iter().find(|o| o.2).map(|o| o.0);
    let loser_replayed = out
        .iter()
        .filter(|o| Some(o.0) != winner && o.1.1 == "mandate_replayed")
        .count();
    // Afterwards both refuse it.
    let again: Vec<(u16, String)> = [&c.addr, &d.addr]
        .iter()
        .map(|addr| get_intent_settled(addr, &m2, 5).outcome())
        .collect();
    let charged_b = sp.charged([&m2.id]);
    let reserved_b = sp.reserved();
    eprintln!(
        "same_mandate(b separate stores): attempts 16 served {served_b} charged {charged_b} reserved {reserved_b} loser_mandate_replayed {loser_replayed} outcomes {tally_b:?} again {again:?}"
    );
    // Checked at the end, so that every case's figures are printed first.
    for o in out.iter().filter(|o| !allowed(&o.1)) {
        *unexpected.entry(format!("separate stores: {:?}", o.1)).or_default() += 1;
    }
    assert_eq!(served_b, 1, "exactly one serve");
    assert!(loser_replayed >= 1, "the other payee answers mandate_replayed");
    for o in &again {
        assert_eq!(*o, (402, "mandate_replayed".into()));
    }
    assert_eq!(charged_b, 1);
    assert_eq!(reserved_b, 2 * PRICE);

    // (c) A memory-store payee, restarted: its state is gone, the SP's check is not.
    let e = start_payee(&sp, &Store::Memory, &[], &dir.join("e.log"));
    let m3 = bound(&payer, "GET", "/paid/intent", b"", deadline);
    let first = get_intent(&e.addr, &m3).unwrap();
    assert!(first.served(), "{} {}", first.status, first.body);
    e.terminate();
    let e = start_payee(&sp, &Store::Memory, &[], &dir.join("e.log"));
    let after = get_intent(&e.addr, &m3).unwrap();
    let charged_c = sp.charged([&m3.id]);
    let reserved_c = sp.reserved();
    let served_c = usize::from(first.served()) + usize::from(after.served());
    eprintln!(
        "same_mandate(c memory store restarted): attempts 2 served {served_c} charged {charged_c} reserved {reserved_c} after_restart {:?}",
        after.outcome()
    );
    assert_eq!(after.outcome(), (402, "mandate_replayed".into()), "{}", after.body);
    assert_eq!(served_c, 1);
    assert_eq!(charged_c, 1);
    assert_eq!(reserved_c, 3 * PRICE);
    assert_eq!(
        unexpected,
        BTreeMap::new(),
        "answers other than 200 served, 402 mandate_replayed, 503 payment_in_progress"
    );
    drop((a, b, c, d, e));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two payee processes given one Postgres store (`--replay-db postgres://…`, when
/// `AEP2_TEST_POSTGRES` names a server): one mandate raced at both is served and charged once, and
/// presented again afterwards it is refused at both, also after both restart.
#[test]
fn same_mandate_at_two_payees_sharing_postgres() {
    let Some(url) = postgres("two_payees") else { return };
    let dir = temp_dir("two-pg");
    let sp = Sp::start(&dir, "two-pg-payer");
    let payer = payer(&sp);
    let store = Store::Postgres(url);
    let a = start_payee(&sp, &store, &[], &dir.join("a.log"));
    let b = start_payee(&sp, &store, &[], &dir.join("b.log"));
    let m = bound(&payer, "GET", "/paid/intent", b"", now() + LIFETIME);
    let out = race(&[&a.addr, &b.addr], &m, 16);
    let served = out.iter().filter(|o| o.2).count();
    let outcomes = tally(&out);
    let again: Vec<(u16, String)> = [&a.addr, &b.addr]
        .iter()
        .map(|addr| get_intent_settled(addr, &m, 5).outcome())
        .collect();
    let charged = sp.charged([&m.id]);
    eprintln!(
        "same_mandate(postgres): attempts 16 served {served} charged {charged} outcomes {outcomes:?} again {again:?}"
    );
    for o in &out {
        assert!(
            matches!(
                (o.1.0, o.1.1.as_str()),
                (200, "served") | (402, "mandate_replayed") | (503, "payment_in_progress")
            ),
            "{o:?}"
        );
    }
    assert_eq!(served, 1, "exactly one serve");
    assert_eq!(charged, 1);
    for o in &again {
        assert_eq!(*o, (402, "mandate_replayed".into()));
    }
    // The state is in the database, not in the processes.
    a.terminate();
    b.terminate();
    let c = start_payee(&sp, &store, &[], &dir.join("c.log"));
    assert_eq!(
        get_intent(&c.addr, &m).unwrap().outcome(),
        (402, "mandate_replayed".into())
    );
    assert_eq!(sp.charged([&m.id]), 1);
    assert_eq!(sp.reserved(), PRICE);
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn request_bound_mandate_cannot_be_spent_on_the_unbound_route() {
    let dir = temp_dir("unbound");
    let sp = Sp::start(&dir, "unbound-payer");
    let mvp = mvp_payee().to_checksum();
    let p = start_payee(
        &sp,
        &Store::Dir(dir.join("data")),
        &["--mvp-payee", &mvp],
        &dir.join("payee.log"),
    );
    let payer = payer(&sp);
    let deadline = now() + LIFETIME;
    let intent = bound(&payer, "GET", "/paid/intent", b"", deadline);
    // At the unbound route, in both carriers: refused, not charged.
    let envelope = intent.signed.encode();
    let at_mvp = http(&p.addr, "GET", "/paid/mvp", &[(X_PAYMENT_MANDATE, &envelope)], b"").unwrap();
    let at_mvp_x402 = http(&p.addr, "GET", "/paid/mvp", &[(PAYMENT_SIGNATURE, &intent.header)], b"").unwrap();
    let charged_after_mvp = sp.charged([&intent.id]);
    assert_eq!(at_mvp.outcome(), (402, "payee_mismatch".into()), "{}", at_mvp.body);
    assert_eq!(
        at_mvp_x402.outcome(),
        (402, "payee_mismatch".into()),
        "{}",
        at_mvp_x402.body
    );
    assert_eq!(charged_after_mvp, 0);
    // At its own route: served.
    let at_intent = get_intent(&p.addr, &intent).unwrap();
    assert!(at_intent.served(), "{} {}", at_intent.status, at_intent.body);

    // A mandate made for /paid/mvp (to the MVP payee, any ref) is served there, and only there.
    let signed = payer
        .sign(mvp_payee(), token(), U256::from_u64(PRICE), deadline, [7; 32])
        .unwrap();
    let for_mvp = Paid::of(signed, &terms(mvp_payee()));
    let mvp_at_intent = get_intent(&p.addr, &for_mvp).unwrap();
    let charged_mvp_at_intent = sp.charged([&for_mvp.id]);
    assert_eq!(mvp_at_intent.status, 402, "{}", mvp_at_intent.body);
    assert_eq!(charged_mvp_at_intent, 0);
    let served_mvp = http(
        &p.addr,
        "GET",
        "/paid/mvp",
        &[(X_PAYMENT_MANDATE, &for_mvp.signed.encode())],
        b"",
    )
    .unwrap();
    assert!(served_mvp.served(), "{} {}", served_mvp.status, served_mvp.body);
    assert_eq!(served_mvp.json()["payment"]["status"], "enqueued");
    let charged = sp.charged([&intent.id, &for_mvp.id]);
    let reserved = sp.reserved();
    let payee_of = |id: &str| sp.mandate(id).unwrap()["payee"].as_str().unwrap().to_ascii_lowercase();
    eprintln!(
        "unbound_route: attempts 5 refused_at_mvp {:?}/{:?} charged_before_intent {charged_after_mvp} mvp_mandate_at_intent {:?} served 2 charged {charged} reserved {reserved}",
        at_mvp.outcome(),
        at_mvp_x402.outcome(),
        mvp_at_intent.outcome()
    );
    assert_eq!(charged, 2);
    assert_eq!(reserved, 2 * PRICE);
    assert_eq!(payee_of(&intent.id), payee().to_checksum().to_ascii_lowercase());
    assert_eq!(payee_of(&for_mvp.id), mvp.to_ascii_lowercase());
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits for the start of the next second and returns it: a request sent now reaches the payee
/// within the same second (a second of tolerance for the clock tick).
fn fresh_second() -> u64 {
    let start = now();
    let t = Instant::now();
    while now() == start && t.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(1));
    }
    now()
}

#[test]
fn deadline_boundary_leaves_a_margin() {
    let dir = temp_dir("deadline");
    let sp = Sp::start(&dir, "deadline-payer");
    let p = start_payee(&sp, &Store::Dir(dir.join("data")), &[], &dir.join("payee.log"));
    let payer = payer(&sp);

    // One second short of the payee's boundary (window 310 − skew 5): refused, not charged.
    let t = fresh_second();
    let short = bound(&payer, "GET", "/paid/intent", b"", t + 304);
    let r_short = get_intent(&p.addr, &short).unwrap();
    assert_eq!(r_short.outcome(), (402, "deadline_too_soon".into()), "{}", r_short.body);

    // Exactly at the boundary: accepted by the payee, and by the SP (window 300).
    let t = fresh_second();
    let edge = bound(&payer, "GET", "/paid/intent", b"", t + 305);
    let r_edge = get_intent(&p.addr, &edge).unwrap();
    let edge_secs = now() - t;
    assert!(r_edge.served(), "deadline now+305: {} {}", r_edge.status, r_edge.body);

    // At the boundary, reaching the SP 3 s after the payee's check (the SP stalled meanwhile):
    // the forwarding margin still covers it.
    let t = fresh_second();
    let late = bound(&payer, "GET", "/paid/intent", b"", t + 305);
    sp.stall();
    let (addr, m) = (p.addr.clone(), late.clone());
    let th = std::thread::spawn(move || get_intent(&addr, &m).unwrap());
    std::thread::sleep(Duration::from_secs(3));
    sp.resume();
    let r_late = th.join().unwrap();
    assert!(
        r_late.served(),
        "deadline now+305, SP 3 s late: {} {}",
        r_late.status,
        r_late.body
    );
    let rec = sp.mandate(&late.id).expect("charged");
    let accepted_at = rec["acceptedAt"].as_u64().unwrap();
    let enqueue_deadline = rec["enqueueDeadline"].as_u64().unwrap();

    let charged_short = sp.charged([&short.id]);
    let charged = sp.charged([&edge.id, &late.id]);
    let reserved = sp.reserved();
    eprintln!(
        "deadline_boundary: attempts 3 now+304 {:?} charged {charged_short} | now+305 {:?} (in {edge_secs} s) | now+305 with SP {} s late {:?} enqueueDeadline = deadline - {} | charged {charged} reserved {reserved}",
        r_short.outcome(),
        r_edge.outcome(),
        accepted_at - t,
        r_late.outcome(),
        (t + 305) - enqueue_deadline
    );
    assert_eq!(charged_short, 0);
    assert!(
        accepted_at >= t + 3,
        "the SP took it at least 3 s after the payee's check"
    );
    assert!(enqueue_deadline <= t + 305);
    assert_eq!(charged, 2);
    assert_eq!(reserved, 2 * PRICE);
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The fleet (spec `aep2.md#store-guarantees`): two SP processes and three payee processes on
/// one Postgres server (the ledger in one schema, the payees' payment state in another).
/// (a) The same mandate sent at once to all three payees is served once and charged once; (b)
/// distinct mandates beyond a balance (funded with `aep2 sp deposit --database postgres://…`) are
/// never over-committed; (c) a SIGKILL of an SP and of a payee in the middle of a burst loses
/// nothing: after restarts every charged mandate is served exactly once.
#[test]
fn postgres_fleet_two_sps_three_payees() {
    const N: usize = 240;
    const THREADS: usize = 6;
    const POOR: u64 = 30;
    let (Some(ledger), Some(payee_db)) = (postgres("fleet_ledger"), postgres("fleet_payee")) else {
        eprintln!("postgres_fleet: skipped: {} is not set", aep2_replay::db::testing::ENV);
        return;
    };
    let dir = temp_dir("fleet");
    let sp1 = Sp::start_on(&dir, "fleet-payer", &ledger, "sp1");
    let sp2 = Sp::start_on(&dir, "fleet-payer", &ledger, "sp2");
    let poor = key("fleet-poor");
    let deposit = std::process::Command::new(common::BIN)
        .args([
            "sp",
            "deposit",
            "--database",
            &ledger,
            "--id",
            "poor",
            "--profile",
            "eip712",
            "--chain-id",
            "84532",
            "--verifying-contract",
            CONTRACT,
            "--payer",
            &poor.address().to_checksum(),
            "--token",
            TOKEN,
            "--amount",
            &(POOR * PRICE).to_string(),
        ])
        .output()
        .unwrap();
    assert!(deposit.status.success(), "{}", String::from_utf8_lossy(&deposit.stderr));
    let store = Store::Postgres(payee_db);
    let extra = ["--claim-lease", "2"];
    let mut payees = vec![
        start_payee(&sp1, &store, &extra, &dir.join("p0.log")),
        start_payee(&sp2, &store, &extra, &dir.join("p1.log")),
        start_payee(&sp1, &store, &extra, &dir.join("p2.log")),
    ];
    let addrs: Vec<String> = payees.iter().map(|p| p.addr.clone()).collect();
    let addr_refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let payer = payer(&sp1);
    let deadline = now() + LIFETIME;
    let allowed = |o: &(u16, String)| {
        matches!(
            (o.0, o.1.as_str()),
            (200, "served") | (402, "mandate_replayed") | (503, "payment_in_progress")
        )
    };

    // (a) The same mandate, twelve presentations at once across the three payees, ten times.
    let t = Instant::now();
    let mut same_served = Vec::new();
    let mut same_charged = 0;
    let mut unexpected = Vec::new();
    for _ in 0..10 {
        let m = bound(&payer, "GET", "/paid/intent", b"", deadline);
        let out = race(&addr_refs, &m, 12);
        same_served.push(out.iter().filter(|o| o.2).count());
        same_charged += sp2.charged([&m.id]);
        unexpected.extend(out.iter().filter(|o| !allowed(&o.1)).map(|o| o.1.clone()));
    }
    let same_secs = t.elapsed().as_secs_f64();

    // (b) Twice as many distinct mandates as the poor payer's balance covers, all at once.
    let poor_payer = Payer::new(poor.clone(), domain(), 1);
    let beyond: Arc<Vec<Paid>> = Arc::new(
        (0..2 * POOR as usize)
            .map(|_| bound(&poor_payer, "GET", "/paid/intent", b"", deadline))
            .collect(),
    );
    let t = Instant::now();
    let outcomes: Vec<(bool, Outcome)> = {
        let barrier = Arc::new(Barrier::new(beyond.len()));
        let threads: Vec<_> = (0..beyond.len())
            .map(|i| {
                let (beyond, barrier, addr) = (beyond.clone(), barrier.clone(), addrs[i % 3].clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let r = get_intent(&addr, &beyond[i]).unwrap();
                    (r.served(), r.outcome())
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    };
    let beyond_secs = t.elapsed().as_secs_f64();
    let beyond_served = outcomes.iter().filter(|o| o.0).count();
    let mut beyond_tally: BTreeMap<Outcome, usize> = BTreeMap::new();
    for (_, o) in &outcomes {
        *beyond_tally.entry(o.clone()).or_default() += 1;
    }
    let beyond_charged = sp1.charged(beyond.iter().map(|m| &m.id));
    let poor_account = sp2.account_of(&poor);

    // (c) A burst of distinct mandates; SIGKILL SP 1 and payee 2 a third of the way through.
    let mandates: Arc<Vec<Paid>> = Arc::new(
        (0..N)
            .map(|_| bound(&payer, "GET", "/paid/intent", b"", deadline))
            .collect(),
    );
    let served = Arc::new(Mutex::new(vec![0usize; N]));
    let last: Arc<Mutex<Vec<Option<Outcome>>>> = Arc::new(Mutex::new(vec![None; N]));
    let t = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|th| {
            let (mandates, served, last, addr) =
                (mandates.clone(), served.clone(), last.clone(), addrs[th % 3].clone());
            std::thread::spawn(move || {
                for i in (th..N).step_by(THREADS) {
                    let r = get_intent(&addr, &mandates[i]);
                    if let Ok(r) = &r
                        && r.served()
                    {
                        served.lock().unwrap()[i] += 1;
                    }
                    last.lock().unwrap()[i] = r.ok().map(|r| r.outcome());
                }
            })
        })
        .collect();
    while served.lock().unwrap().iter().sum::<usize>() < N / 3 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut sp1 = sp1;
    sp1.proc.child.kill().unwrap();
    sp1.proc.child.wait().unwrap();
    payees.pop().unwrap().kill();
    let served_at_kill = served.lock().unwrap().iter().sum::<usize>();
    for th in threads {
        th.join().unwrap();
    }
    let burst_secs = t.elapsed().as_secs_f64();
    let not_answered = last
        .lock()
        .unwrap()
        .iter()
        .filter(|o| !matches!(o, Some((200, _))))
        .count();
    // Restart SP 1 on the same ledger, and the payees that used it on the same store.
    let sp1 = Sp::start_on(&dir, "fleet-payer", &ledger, "sp1-restarted");
    payees.remove(0).terminate();
    let payees = [
        start_payee(&sp1, &store, &extra, &dir.join("p0-restarted.log")),
        payees.pop().unwrap(),
        start_payee(&sp1, &store, &extra, &dir.join("p2-restarted.log")),
    ];
    std::thread::sleep(Duration::from_millis(3500));
    let mut retried = 0;
    let mut retry_outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
    for i in 0..N {
        if served.lock().unwrap()[i] > 0 {
            continue;
        }
        retried += 1;
        // At another payee than the first attempt's: the store is shared.
        let r = get_intent_settled(&payees[(i + 1) % 3].addr, &mandates[i], 5);
        if r.served() {
            served.lock().unwrap()[i] += 1;
        }
        *retry_outcomes.entry(r.outcome()).or_default() += 1;
    }
    let served = served.lock().unwrap().clone();
    let mut charged = 0;
    let (mut charged_unserved, mut served_uncharged) = (Vec::new(), Vec::new());
    for (i, m) in mandates.iter().enumerate() {
        let c = sp2.mandate(&m.id).is_some();
        charged += usize::from(c);
        if c && served[i] != 1 {
            charged_unserved.push(i);
        }
        if !c && served[i] != 0 {
            served_uncharged.push(i);
        }
    }
    let double = served.iter().filter(|n| **n > 1).count();
    let reserved = sp1.reserved();
    let unserved_end: u64 = payees.iter().map(|p| unserved(&p.addr)).sum();
    eprintln!(
        "postgres_fleet: sps 2 payees 3 | same mandate: 10 mandates x 12 presentations served {same_served:?} charged {same_charged} ({same_secs:.2} s) | beyond balance: {} mandates for {POOR} served {beyond_served} charged {beyond_charged} outcomes {beyond_tally:?} account {poor_account:?} ({beyond_secs:.2} s) | sigkill: {N} mandates {THREADS} threads served_at_kill {served_at_kill} not_answered_in_burst {not_answered} (burst {burst_secs:.1} s) retried {retried} retry_outcomes {retry_outcomes:?} charged {charged} double_served {double} charged_not_served {} served_not_charged {} reserved {reserved} unserved_at_end {unserved_end}",
        beyond.len(),
        charged_unserved.len(),
        served_uncharged.len()
    );
    assert_eq!(same_served, vec![1; 10], "each mandate served once across the fleet");
    assert_eq!(same_charged, 10);
    assert_eq!(
        unexpected,
        Vec::<Outcome>::new(),
        "answers other than served, replayed, in progress"
    );
    assert_eq!(beyond_served, POOR as usize, "exactly the balance's worth served");
    assert_eq!(beyond_charged, POOR as usize);
    assert_eq!(poor_account, (POOR * PRICE, POOR * PRICE, 0), "never over-committed");
    for (s, o) in &outcomes {
        assert!(
            *s || *o == (402, "insufficient_funds".to_owned()),
            "beyond the balance: {o:?}"
        );
    }
    assert!(
        served_at_kill >= N / 3 && not_answered > 0,
        "the kills landed in the middle of the burst"
    );
    assert_eq!(double, 0, "no mandate served twice");
    assert_eq!(served_uncharged, Vec::<usize>::new(), "nothing served without a charge");
    assert_eq!(
        charged_unserved,
        Vec::<usize>::new(),
        "every charged mandate served exactly once"
    );
    assert_eq!(charged, N, "every mandate charged and served after the restarts");
    assert_eq!(reserved, (10 + N as u64) * PRICE);
    assert_eq!(unserved_end, 0);
    drop((payees, sp1, sp2));
    let _ = std::fs::remove_dir_all(&dir);
}
