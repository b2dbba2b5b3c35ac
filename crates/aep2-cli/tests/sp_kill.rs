//! `aep2 serve sp` as a process: two processes racing on one ledger, and a SIGKILL in the middle
//! of a burst of submissions followed by a restart on the same database; `aep2 sp deposit` and
//! `accounts`. Each on a SQLite file and, when `AEP2_TEST_POSTGRES` is set, a Postgres ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::json::to_compact;
use aep2::{Domain, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, Mandate, PayerKey, U256, sign_mandate};
use aep2_sp::{Ledger, LedgerOptions, Location};
use common::{BIN, CONTRACT, TOKEN, key, now};
use serde_json::Value as J;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BALANCE: u64 = 30_000;
const AMOUNT: u64 = 500;

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("sp-proc", name)
}

/// The `database` values the tests run on: a file next to the configuration, and a new Postgres
/// schema when a server is configured.
fn databases(name: &str) -> Vec<String> {
    let mut out = vec!["ledger.db".to_owned()];
    if let Some(Location::Postgres(url)) = aep2_replay::db::testing::postgres(name) {
        out.push(url);
    }
    out
}

/// Where a configured `database` is, for a configuration in `dir`.
fn location(dir: &Path, database: &str) -> Location {
    match Location::parse(database) {
        Location::Sqlite(file) => Location::Sqlite(dir.join(file)),
        url => url,
    }
}

/// Writes the config (one funded payer, the ledger at `database`) into `dir` and returns its path.
fn write_config(dir: &Path, payer: &str, database: &str) -> PathBuf {
    let sp_key = aep2::codec::hex_encode_0x(&aep2::hash::sha256(b"proc-sp"));
    let cfg = serde_json::json!({
        "listen": "127.0.0.1:0",
        "database": database,
        "keys": { "secp256k1": sp_key },
        "domains": [{ "profile": "eip712", "domain": { "chainId": 84532, "verifyingContract": CONTRACT } }],
        "settlementWindow": 300,
        "clockSkew": 5,
        "deposits": [{ "id": "initial", "payer": key(payer).address().to_checksum(), "token": TOKEN, "amount": BALANCE.to_string() }],
    });
    let path = dir.join("sp.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

struct Sp {
    child: Child,
    addr: String,
}

impl Sp {
    fn start(config: &Path) -> Sp {
        let mut child = Command::new(BIN)
            .args(["serve", "sp", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn aep2 serve sp");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: J = serde_json::from_str(&line).unwrap_or_else(|e| panic!("start line {line:?}: {e}"));
        Sp {
            addr: v["listening"].as_str().unwrap().to_owned(),
            child,
        }
    }

    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap().success();
        assert!(ok);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "clean shutdown on SIGTERM: {status:?}");
    }
}

/// One request over a fresh connection; an `Err` is a transport failure.
fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> std::io::Result<(u16, J)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: sp\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let (_, b) = out.split_once("\r\n\r\n").ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let v = serde_json::from_str(b).map_err(|_| std::io::ErrorKind::InvalidData)?;
    Ok((status, v))
}

/// `n` signed MVP envelopes of `AMOUNT` from `payer`: (envelope JSON, mandate id).
fn envelopes(payer: &str, n: u64) -> Vec<(String, String)> {
    let k = key(payer);
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse(CONTRACT).unwrap(),
    });
    let deadline = now() + 3600;
    (0..n)
        .map(|nonce| {
            let m = Mandate::Eip712(EvmMandate {
                owner: k.address(),
                token: EvmAddress::parse(TOKEN).unwrap(),
                payee: EvmAddress([0x44; 20]),
                amount: U256::from_u64(AMOUNT),
                nonce: U256::from_u64(nonce),
                deadline,
                reference: [3; 32],
            });
            let (sm, d) = sign_mandate(&m, &domain, &PayerKey::Secp256k1(k.clone()), EnvelopeForm::Mvp).unwrap();
            (to_compact(&sm.to_json()), aep2::codec::hex_encode_0x(&d.id))
        })
        .collect()
}

/// Checks the ledger: invariants hold, no nonce twice, total within the balance; returns the
/// stored receipts by mandate id.
fn audit(db: &Location) -> BTreeMap<String, String> {
    let ledger = Ledger::open(db, &LedgerOptions::default()).unwrap();
    assert_eq!(ledger.audit().unwrap(), Vec::<String>::new());
    let stored = ledger.mandates().unwrap();
    let mut nonces = BTreeSet::new();
    let mut total = 0;
    let mut out = BTreeMap::new();
    for m in stored {
        assert!(nonces.insert(m.nonce.clone()), "nonce {} stored twice", m.nonce);
        total += m.amount.to_u64().unwrap();
        assert!(
            out.insert(aep2::codec::hex_encode_0x(&m.mandate_id), m.receipt)
                .is_none()
        );
    }
    assert!(total <= BALANCE, "accepted {total} > balance {BALANCE}");
    out
}

#[test]
fn sigkill_mid_burst_loses_no_receipted_mandate() {
    for (i, database) in databases("sp-kill").iter().enumerate() {
        eprintln!("sp-kill: on {}", location(Path::new("."), database).display());
        sigkill_mid_burst(&temp_dir(&format!("kill-{i}")), database);
    }
}

fn sigkill_mid_burst(dir: &Path, database: &str) {
    let config = write_config(dir, "kill-payer", database);
    let sp = Sp::start(&config);
    let envs = Arc::new(envelopes("kill-payer", 100));
    let receipts: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let transport_errors = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let (envs, receipts, errors, addr) = (
                envs.clone(),
                receipts.clone(),
                transport_errors.clone(),
                sp.addr.clone(),
            );
            std::thread::spawn(move || {
                // Each mandate is sent by two threads, so duplicates race as well.
                for i in (0..envs.len()).filter(|i| i % 6 == t || (i + 1) % 6 == t) {
                    let (env, id) = &envs[i];
                    match http(&addr, "POST", "/enqueue", Some(env)) {
                        Ok((200, v)) => {
                            let r = v["receipt"].to_string();
                            let mut map = receipts.lock().unwrap();
                            if let Some(prev) = map.insert(id.clone(), r.clone()) {
                                assert_eq!(prev, r, "two receipts for {id}");
                            }
                        }
                        Ok((402 | 409, _)) => {}
                        Ok((status, v)) => panic!("unexpected {status} {v}"),
                        Err(_) => {
                            errors.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    let t = Instant::now();
    while receipts.lock().unwrap().len() < 15 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut child = sp.child;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for th in threads {
        th.join().unwrap();
    }
    let receipts = receipts.lock().unwrap().clone();
    assert!(receipts.len() >= 15, "the burst produced receipts before the kill");
    assert!(
        transport_errors.load(Ordering::SeqCst) > 0,
        "the kill landed in the middle of the burst (some requests failed)"
    );
    // After a restart on the same database, every receipted mandate is there with that receipt.
    let sp = Sp::start(&config);
    for (id, receipt) in &receipts {
        let (status, v) = http(&sp.addr, "GET", &format!("/v1/mandates/{id}"), None).unwrap();
        assert_eq!(status, 200, "{id} lost");
        assert_eq!(v["mandate"]["receipt"].to_string(), *receipt);
    }
    // Re-sending them returns the same receipts; the rest of the burst can be finished.
    for (env, id) in envs.iter() {
        match http(&sp.addr, "POST", "/enqueue", Some(env)).unwrap() {
            (200, v) => {
                if let Some(r) = receipts.get(id) {
                    assert_eq!(v["receipt"].to_string(), *r);
                }
            }
            (status, v) => assert_eq!((status, v["error"].as_str()), (402, Some("insufficient_funds"))),
        }
    }
    sp.terminate();
    let stored = audit(&location(dir, database));
    for (id, receipt) in &receipts {
        assert_eq!(stored.get(id), Some(receipt));
    }
    assert_eq!(stored.len() as u64, BALANCE / AMOUNT, "the balance is used up exactly");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_processes_on_one_ledger_accept_each_mandate_once() {
    for (i, database) in databases("sp-two").iter().enumerate() {
        eprintln!("sp-two: on {}", location(Path::new("."), database).display());
        two_processes(&temp_dir(&format!("two-{i}")), database);
    }
}

fn two_processes(dir: &Path, database: &str) {
    let config = write_config(dir, "two-payer", database);
    let (a, b) = (Sp::start(&config), Sp::start(&config));
    let envs = Arc::new(envelopes("two-payer", 80));
    let seen: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>> = Arc::default();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let addrs = [a.addr.clone(), b.addr.clone()];
            let (envs, seen) = (envs.clone(), seen.clone());
            std::thread::spawn(move || {
                let n = envs.len();
                for i in 0..n {
                    let (env, id) = &envs[(i * (2 * t + 1) + 13 * t) % n];
                    let (status, v) = http(&addrs[(i + t) % 2], "POST", "/enqueue", Some(env)).unwrap();
                    match status {
                        200 => {
                            seen.lock()
                                .unwrap()
                                .entry(id.clone())
                                .or_default()
                                .insert(v["receipt"].to_string());
                        }
                        402 => assert_eq!(v["error"], "insufficient_funds"),
                        _ => panic!("unexpected {status} {v}"),
                    }
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    a.terminate();
    b.terminate();
    let seen = seen.lock().unwrap();
    let stored = audit(&location(dir, database));
    assert_eq!(stored.len() as u64, BALANCE / AMOUNT);
    assert_eq!(seen.len(), stored.len(), "a receipt exactly for each stored mandate");
    for (id, receipts) in seen.iter() {
        assert_eq!(receipts.len(), 1, "{id}: one receipt, byte-identical on every answer");
        assert_eq!(stored.get(id), receipts.iter().next());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn deposit_command_funds_once_per_id() {
    for (i, database) in databases("sp-deposit").iter().enumerate() {
        let dir = temp_dir(&format!("deposit-{i}"));
        let db = match location(&dir, database) {
            Location::Sqlite(file) => file.into_os_string(),
            Location::Postgres(url) => url.into(),
        };
        eprintln!("sp-deposit: on {db:?}");
        deposit_command(&dir, &db);
    }
}

fn deposit_command(dir: &Path, db: &std::ffi::OsStr) {
    let payer = key("dep-payer").address().to_checksum();
    let run = |amount: &str| {
        let out = Command::new(BIN)
            .args(["sp", "deposit", "--database"])
            .arg(db)
            .args([
                "--id",
                "x1",
                "--profile",
                "eip712",
                "--chain-id",
                "84532",
                "--verifying-contract",
                CONTRACT,
            ])
            .args(["--payer", &payer, "--token", TOKEN, "--amount", amount])
            .output()
            .unwrap();
        let v: J = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    let (code, v) = run("700");
    assert_eq!(
        (code, v["deposit"].as_str(), v["balance"].as_str()),
        (Some(0), Some("applied"), Some("700"))
    );
    let (code, v) = run("700");
    assert_eq!(
        (code, v["deposit"].as_str(), v["balance"].as_str()),
        (Some(0), Some("already_applied"), Some("700"))
    );
    let (code, v) = run("800");
    assert_eq!(
        (code, v["deposit"].as_str(), v["balance"].as_str()),
        (Some(1), Some("conflict"), Some("700"))
    );
    let out = Command::new(BIN)
        .args(["sp", "accounts", "--database"])
        .arg(db)
        .args(["--payer", &payer])
        .output()
        .unwrap();
    let v: J = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["accounts"][0]["available"], "700");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_postgres_url_that_cannot_be_reached_is_a_database_error_that_never_prints_its_password() {
    let url = "postgres://aep2:pw-never-shown@127.0.0.1:1/postgres";
    let payer = key("url-payer").address().to_checksum();
    let out = Command::new(BIN)
        .args(["sp", "accounts", "--database", url, "--payer", &payer])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("replay_store_unavailable") || stderr.contains("SP ledger"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-never-shown"), "{stderr}");
    // The same through the service's --database override.
    let dir = temp_dir("url");
    let config = write_config(&dir, "url-payer", "ledger.db");
    let out = Command::new(BIN)
        .args(["serve", "sp", "--config"])
        .arg(&config)
        .args(["--database", url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("pw-never-shown"), "{stderr}");
    assert!(
        !dir.join("ledger.db").exists(),
        "the URL, not the configured file, was opened"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
