//! `aep2 serve sp` with a chain in its config, on anvil: receipted mandates settle; SIGKILL in
//! the middle of settling and a restart lose nothing and settle nothing twice; `aep2 sp
//! reconcile` then reports no difference, and reports the one planted in the ledger. The anvil
//! test is skipped without the contracts' npm modules, unless `AEP2_REQUIRE_ANVIL=1`. And with
//! the embedded chain: `aep2 serve sp` deploys, funds and settles in process, and refuses to
//! reuse a ledger whose chain died with the earlier process, on a ledger file and, when
//! `AEP2_TEST_POSTGRES` is set, on a Postgres ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2::crypto::secp256k1::SecretKey;
use aep2::{Domain, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, Mandate, PayerKey, U256 as CoreU256};
use aep2_evm::contract::{self, Wallet};
use aep2_evm::devnet::{Anvil, TestChain, rpc, runtime};
use aep2_evm::{Chain, TxKey};
use aep2_sp::Location;
use alloy::primitives::{Address, U256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_aep2");

fn evm(a: Address) -> EvmAddress {
    EvmAddress(a.0.0)
}

fn temp_dir() -> PathBuf {
    let p = std::env::temp_dir().join(format!("aep2-cli-settlement-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Starts `aep2 serve sp` and returns it with its URL.
fn start_sp(config: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "sp", "--config", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (child, format!("http://{}", v["listening"].as_str().unwrap()))
}

/// Enqueues `n` mandates of `amount` from `payer` to `payee` (nonces from `first_nonce`) through
/// the SP's HTTP API, as payees forward them, retrying while the payer's deposit has not yet
/// reached the SP from the chain.
#[allow(clippy::too_many_arguments)] // test helper: every argument is one of the mandate's values
fn pay_through_sp(
    url: &str,
    payer: &TxKey,
    token: EvmAddress,
    domain: &Domain,
    n: u64,
    first_nonce: u64,
    amount: u64,
    payee: Address,
    now: u64,
) {
    let key = PayerKey::Secp256k1(SecretKey::from_bytes(&payer.secret_bytes()).unwrap());
    let client = aep2_sp::SpClient::new(url).unwrap();
    runtime().block_on(async {
        for i in 0..n {
            let m = EvmMandate {
                owner: evm(payer.address()),
                token,
                payee: evm(payee),
                amount: CoreU256::from_u64(amount),
                nonce: CoreU256::from_u64(first_nonce + i),
                deadline: now + 600,
                reference: [i as u8; 32],
            };
            let (sm, _) = aep2::sign_mandate(&Mandate::Eip712(m), domain, &key, EnvelopeForm::Mvp).unwrap();
            let started = Instant::now();
            loop {
                match client.enqueue(&aep2::json::to_compact(&sm.to_json())).await {
                    Ok(_) => break,
                    Err(e) => {
                        assert!(started.elapsed() < Duration::from_secs(10), "enqueue {i}: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    });
}

fn settled_count(db: &Location) -> u64 {
    let ledger = aep2_sp::Ledger::open(db, &aep2_sp::LedgerOptions::default()).unwrap();
    ledger.counts().unwrap().settled
}

#[test]
fn the_sp_settles_survives_sigkill_and_reconciles_with_the_chain() {
    let Some(anvil) = Anvil::start_at(None) else { return };
    let rt = runtime();
    let dir = temp_dir();
    let n = 40u64;
    let (wallet, token, payer) = rt.block_on(async {
        let chain = rpc(&anvil).await;
        let deployer = chain.deployer();
        let wallet = contract::deploy_wallet(&chain, &deployer, 3 * 3600).await.unwrap();
        let token = contract::deploy_token(&chain, &deployer, "USDC").await.unwrap();
        let sp_tx = TxKey::from_label("cli-sp-tx");
        let payer = TxKey::from_label("cli-payer");
        chain.fund(sp_tx.address()).await;
        chain.fund(payer.address()).await;
        let w = Wallet { address: wallet };
        w.set_settlement_processor(&chain, &deployer, sp_tx.address(), true)
            .await
            .unwrap();
        contract::mint(&chain, &deployer, token, payer.address(), U256::from(1_000_000u64))
            .await
            .unwrap();
        w.deposit(&chain, &payer, token, U256::from(1_000_000u64))
            .await
            .unwrap();
        (wallet, token, payer)
    });
    let db = dir.join("ledger.db");
    let ledger = Location::Sqlite(db.clone());
    let config = dir.join("sp.json");
    let sp_tx_hex = aep2::codec::hex_encode_0x(&TxKey::from_label("cli-sp-tx").secret_bytes());
    std::fs::write(
        &config,
        serde_json::json!({
            "database": "ledger.db",
            "keys": { "secp256k1": aep2::codec::hex_encode_0x(&[7u8; 32]) },
            "domains": [{ "profile": "eip712", "domain": { "chainId": 84532, "verifyingContract": evm(wallet).to_checksum() } }],
            "chain": {
                "rpcUrl": anvil.url,
                "wallet": evm(wallet).to_checksum(),
                "txKey": sp_tx_hex,
                "maxItems": 10,
                "maxAgeSeconds": 0,
                "pollMs": 50
            }
        })
        .to_string(),
    )
    .unwrap();
    let (mut sp, url) = start_sp(&config);

    // Pay: n mandates through the SP's HTTP API, as payees forward them.
    let now = aep2_sp::unix_now();
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: evm(wallet),
    });
    pay_through_sp(
        &url,
        &payer,
        evm(token),
        &domain,
        n,
        70_000,
        100,
        Address::repeat_byte(0x5a),
        now,
    );

    // SIGKILL as soon as the first batch has settled, then restart on the same ledger.
    let started = Instant::now();
    while settled_count(&ledger) == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "nothing settled");
        std::thread::sleep(Duration::from_millis(20));
    }
    sp.kill().unwrap();
    sp.wait().unwrap();
    let at_kill = settled_count(&ledger);
    let (mut sp, _) = start_sp(&config);
    let started = Instant::now();
    while settled_count(&ledger) < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} of {n} settled",
            settled_count(&ledger)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").args(["-TERM", &sp.id().to_string()]).status();
    sp.wait().unwrap();
    println!("{at_kill} of {n} settled at SIGKILL; all {n} after the restart");

    // Nothing twice: the wallet paid exactly n × 100, and the payee holds exactly that.
    rt.block_on(async {
        let chain = rpc(&anvil).await;
        let w = Wallet { address: wallet };
        assert_eq!(
            w.balance(&chain, payer.address(), token).await.unwrap(),
            U256::from(1_000_000 - 100 * n)
        );
        assert_eq!(
            contract::token_balance(&chain, token, Address::repeat_byte(0x5a))
                .await
                .unwrap(),
            U256::from(100 * n)
        );
        let _ = chain.chain_id();
    });

    // reconcile: no difference; then one planted in the ledger is reported.
    let reconcile = || {
        Command::new(BIN)
            .args([
                "sp",
                "reconcile",
                "--database",
                db.to_str().unwrap(),
                "--rpc-url",
                &anvil.url,
                "--wallet",
                &evm(wallet).to_checksum(),
            ])
            .output()
            .unwrap()
    };
    let out = reconcile();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["mandates"], n);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("UPDATE mandates SET status = 'failed', failure = 'expired' WHERE rowid = 1;")
        .unwrap();
    drop(conn);
    let out = reconcile();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{v}");
    let diffs = v["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{v}");
    assert_eq!(diffs[0]["kind"], "mandate_state");
    assert_eq!(diffs[0]["ledger"], "failed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `aep2 serve sp` and returns it with its first line.
fn start_sp_line(config: &Path) -> (Child, serde_json::Value) {
    let mut child = Command::new(BIN)
        .args(["serve", "sp", "--config", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (
        child,
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}")),
    )
}

#[test]
fn serve_sp_on_an_embedded_chain_funds_settles_and_refuses_a_used_ledger() {
    let mut databases = vec!["ledger.db".to_owned()];
    if let Some(Location::Postgres(url)) = aep2_replay::db::testing::postgres("cli-embedded") {
        databases.push(url);
    }
    for (i, database) in databases.iter().enumerate() {
        eprintln!("embedded: ledger {database}");
        serve_sp_on_an_embedded_chain(i, database);
    }
}

fn serve_sp_on_an_embedded_chain(i: usize, database: &str) {
    // Its own directory: `temp_dir()` belongs to the other test of this binary, running beside it.
    let dir = std::env::temp_dir().join(format!("aep2-cli-settlement-embedded-{}-{i}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ledger_at = match Location::parse(database) {
        Location::Sqlite(file) => Location::Sqlite(dir.join(file)),
        url => url,
    };
    let payer = TxKey::from_label("cli-embedded-payer");
    let config = dir.join("sp.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "database": database,
            "keys": { "secp256k1": aep2::codec::hex_encode_0x(&[7u8; 32]) },
            "domains": [],
            "chain": {
                "embedded": {
                    "chainId": 31337,
                    "fund": [{ "key": aep2::codec::hex_encode_0x(&payer.secret_bytes()), "amount": "1000000" }]
                },
                "maxItems": 5,
                "maxAgeSeconds": 0,
                "pollMs": 50
            }
        })
        .to_string(),
    )
    .unwrap();
    let (mut sp, line) = start_sp_line(&config);
    let url = format!("http://{}", line["listening"].as_str().unwrap());
    assert_eq!(line["chain"]["chainId"], 31337, "{line}");
    let wallet = EvmAddress::parse(line["chain"]["wallet"].as_str().unwrap()).unwrap();
    let token = EvmAddress::parse(line["chain"]["token"].as_str().unwrap()).unwrap();
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: 31337,
        verifying_contract: wallet,
    });
    let n = 12u64;
    let now = aep2_sp::unix_now();
    pay_through_sp(
        &url,
        &payer,
        token,
        &domain,
        n,
        90_000,
        250,
        Address::repeat_byte(0x5b),
        now,
    );
    let started = Instant::now();
    while settled_count(&ledger_at) < n {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {} of {n} settled",
            settled_count(&ledger_at)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ledger = aep2_sp::Ledger::open(&ledger_at, &aep2_sp::LedgerOptions::default()).unwrap();
    let batches = ledger.batches(None, Some(aep2_sp::BatchState::Confirmed)).unwrap();
    assert!(
        batches.len() >= 3,
        "{n} mandates in batches of at most 5: {}",
        batches.len()
    );
    let account = ledger
        .balance(&aep2_sp::AccountKey {
            domain: aep2_sp::domain_key(&domain),
            payer: evm(payer.address()).to_checksum(),
            token: token.to_checksum(),
        })
        .unwrap();
    assert_eq!(account.balance, CoreU256::from_u64(1_000_000 - 250 * n));
    drop(ledger);
    let _ = Command::new("kill").args(["-TERM", &sp.id().to_string()]).status();
    assert_eq!(sp.wait().unwrap().code(), Some(0));

    // The chain died with the process: the same ledger is refused, with the reason.
    let out = Command::new(BIN)
        .args(["serve", "sp", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already settled on an embedded chain"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
