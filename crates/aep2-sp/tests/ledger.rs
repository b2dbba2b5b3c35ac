//! Ledger-level races: many threads, several connections (SQLite) or pools (Postgres) to one
//! database, the same and conflicting mandates for a payer whose balance covers only some of
//! them; deposits, amounts and submission ids. Each runs on every backend of
//! `common::backends`; the upgrades of old SQLite files are SQLite-only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::EnvelopeForm;
use aep2_replay::db::Backend;
use aep2_sp::{DepositOutcome, Ledger, LedgerOptions, Processor};
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier, Mutex};

/// Mandate id -> (receipts returned for it, how many calls stored it fresh).
type Seen = BTreeMap<String, (BTreeSet<String>, usize)>;

#[test]
fn concurrent_submissions_accept_each_mandate_once_and_never_overdraw() {
    on_each_backend("race", race);
}

fn race(backend: Backend) {
    const BALANCE: u64 = 10_000;
    let db = location(backend, "race");
    let cfg = config(&db);
    // Four processors, each with its own connection (SQLite) or pool (Postgres): the lock that
    // serialises them is the database's, exactly as between processes.
    let sps: Vec<Arc<Processor>> = (0..4)
        .map(|_| Arc::new(Processor::new(&cfg, open(&db)).unwrap()))
        .collect();
    assert_eq!(
        sps[0]
            .ledger()
            .deposit(&evm_deposit("d1", "race-payer", BALANCE), NOW)
            .unwrap(),
        DepositOutcome::Applied
    );
    // 40 mandates of 700 (28,000 demanded against 10,000), and 10 more that reuse nonces 0..10
    // with another amount: a different mandate with a used nonce.
    let deadline = NOW + 3600;
    let mut envelopes: Vec<(String, String, u64, u64)> = (0..40)
        .map(|n| {
            let (e, id) = evm_envelope("race-payer", n, 700, deadline, EnvelopeForm::Mvp);
            (e, id, n, 700)
        })
        .collect();
    envelopes.extend((0..10).map(|n| {
        let (e, id) = evm_envelope("race-payer", n, 300, deadline, EnvelopeForm::Mvp);
        (e, id, n, 300)
    }));
    let envelopes = Arc::new(envelopes);
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    // (mandate id) -> receipts seen, and how many calls stored it fresh.
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let rejections: Arc<Mutex<BTreeMap<&'static str, usize>>> = Arc::default();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (sp, envs, barrier, seen, rejections) = (
                sps[t % sps.len()].clone(),
                envelopes.clone(),
                barrier.clone(),
                seen.clone(),
                rejections.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                // Every thread submits every mandate, each in its own order.
                let n = envs.len();
                for i in 0..n {
                    let (env, id, _, _) = &envs[(i * (2 * t + 1) + 7 * t) % n];
                    match sp.enqueue(env.as_bytes(), NOW) {
                        Ok(done) => {
                            assert_eq!(aep2::codec::hex_encode_0x(&done.mandate.mandate_id), *id);
                            let mut s = seen.lock().unwrap();
                            let e = s.entry(id.clone()).or_default();
                            e.0.insert(done.mandate.receipt.clone());
                            e.1 += usize::from(done.fresh);
                        }
                        Err(e) => {
                            let code = e.code();
                            assert!(
                                code == "insufficient_funds" || code == "nonce_reused",
                                "unexpected rejection {e}"
                            );
                            *rejections.lock().unwrap().entry(code).or_default() += 1;
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    let ledger = open(&db);
    let stored = ledger.mandates().unwrap();
    let mut total = 0u64;
    let mut nonces = BTreeSet::new();
    for m in &stored {
        let id = aep2::codec::hex_encode_0x(&m.mandate_id);
        let (receipts, fresh) = seen.get(&id).expect("every stored mandate was answered with a receipt");
        assert_eq!(*fresh, 1, "{id} stored by exactly one call");
        assert_eq!(receipts.len(), 1, "{id}: every call got the same receipt bytes");
        assert!(receipts.contains(&m.receipt));
        assert!(nonces.insert(m.nonce.clone()), "nonce {} stored twice", m.nonce);
        total += m.amount.to_u64().unwrap();
    }
    assert_eq!(seen.len(), stored.len(), "no receipt for a mandate that is not stored");
    assert!(total <= BALANCE, "accepted {total} > balance {BALANCE}");
    // The balance is used up: what is left cannot pay for any mandate still unaccepted.
    let left = BALANCE - total;
    let unaccepted_min = envelopes
        .iter()
        .filter(|(_, id, n, _)| !seen.contains_key(id) && !nonces.contains(&n.to_string()))
        .map(|(_, _, _, a)| *a)
        .min();
    if let Some(min) = unaccepted_min {
        assert!(
            left < min,
            "{left} left, yet a mandate of {min} with a free nonce was refused"
        );
    }
    let balance = ledger.balance(&evm_deposit("d1", "race-payer", 0).account).unwrap();
    assert_eq!(
        balance.reserved.to_u64(),
        Some(total),
        "reservations equal accepted amounts"
    );
    assert_eq!(ledger.audit().unwrap(), Vec::<String>::new());
    let r = rejections.lock().unwrap();
    assert!(r.get("insufficient_funds").copied().unwrap_or(0) > 0);
    assert!(r.get("nonce_reused").copied().unwrap_or(0) > 0 || stored.iter().all(|m| m.amount.to_u64() == Some(700)));
}

#[test]
fn deposits_apply_once_per_id_and_conflicts_change_nothing() {
    on_each_backend("deposits", |backend| deposits(&open(&location(backend, "deposits"))));
    deposits(&Ledger::open_in_memory().unwrap());
}

fn deposits(ledger: &Ledger) {
    let d = evm_deposit("a", "dep-payer", 500);
    assert_eq!(ledger.deposit(&d, NOW).unwrap(), DepositOutcome::Applied);
    assert_eq!(ledger.deposit(&d, NOW).unwrap(), DepositOutcome::AlreadyApplied);
    assert_eq!(
        ledger.deposit(&evm_deposit("a", "dep-payer", 501), NOW).unwrap(),
        DepositOutcome::Conflict
    );
    assert_eq!(
        ledger.deposit(&evm_deposit("b", "dep-payer", 250), NOW).unwrap(),
        DepositOutcome::Applied
    );
    let b = ledger.balance(&d.account).unwrap();
    assert_eq!(b.balance.to_u64(), Some(750));
    assert_eq!(b.available().to_u64(), Some(750));
    assert_eq!(ledger.audit().unwrap(), Vec::<String>::new());
}

#[test]
fn u256_balances_beyond_64_bits_keep_every_unit() {
    on_each_backend("u256", |backend| u256_balances(&open(&location(backend, "u256"))));
}

fn u256_balances(ledger: &Ledger) {
    let mut d = evm_deposit("big", "big-payer", 0);
    d.amount = aep2::U256::parse_decimal("100000000000000000000000000000").unwrap();
    ledger.deposit(&d, NOW).unwrap();
    let mut d2 = evm_deposit("big2", "big-payer", 1);
    d2.amount = aep2::U256::from_u64(1);
    ledger.deposit(&d2, NOW).unwrap();
    let b = ledger.balance(&d.account).unwrap();
    assert_eq!(b.balance.to_string(), "100000000000000000000000000001");
    // The largest amount is stored and read back exactly; one unit more is uint_out_of_range.
    let mut max = evm_deposit("max", "max-payer", 0);
    max.amount = aep2::U256([0xff; 32]);
    ledger.deposit(&max, NOW).unwrap();
    assert_eq!(ledger.balance(&max.account).unwrap().balance, max.amount);
    let one = evm_deposit("one", "max-payer", 1);
    assert_eq!(ledger.deposit(&one, NOW).unwrap_err().code(), "uint_out_of_range");
    assert_eq!(ledger.balance(&max.account).unwrap().balance, max.amount);
}

#[test]
fn a_re_submission_returns_the_stored_receipt_even_after_expiry() {
    on_each_backend("late", |backend| {
        let db = location(backend, "late");
        late_resubmission(&Processor::new(&config(&db), open(&db)).unwrap());
    });
}

fn late_resubmission(sp: &Processor) {
    sp.ledger().deposit(&evm_deposit("d", "late-payer", 1000), NOW).unwrap();
    let (env, _) = evm_envelope("late-payer", 1, 100, NOW + 400, EnvelopeForm::Mvp);
    let first = sp.enqueue(env.as_bytes(), NOW).unwrap();
    assert!(first.fresh);
    assert_eq!(first.mandate.enqueue_deadline, NOW + 300);
    let again = sp.enqueue(env.as_bytes(), NOW + 10_000).unwrap();
    assert!(!again.fresh);
    assert_eq!(again.mandate.receipt, first.mandate.receipt);
    // A new mandate at that time is expired; one too close to its deadline is too soon.
    let (late, _) = evm_envelope("late-payer", 2, 100, NOW + 400, EnvelopeForm::Mvp);
    assert_eq!(sp.enqueue(late.as_bytes(), NOW + 406).unwrap_err().code(), "expired");
    assert_eq!(
        sp.enqueue(late.as_bytes(), NOW + 101).unwrap_err().code(),
        "deadline_too_soon"
    );
    // Exactly w before the deadline is accepted: enqueueDeadline == deadline.
    assert_eq!(
        sp.enqueue(late.as_bytes(), NOW + 100).unwrap().mandate.enqueue_deadline,
        NOW + 400
    );
}

#[test]
fn a_mandate_is_held_for_the_first_submission_id_it_was_brought_with() {
    on_each_backend("submission", |backend| {
        let db = location(backend, "submission");
        submission_ids(&Processor::new(&config(&db), open(&db)).unwrap());
    });
}

fn submission_ids(sp: &Processor) {
    sp.ledger()
        .deposit(&evm_deposit("d", "sub-payer", 10_000), NOW)
        .unwrap();
    let (a, _) = evm_envelope("sub-payer", 1, 100, NOW + 3600, EnvelopeForm::Mvp);
    let first = sp.enqueue_as(a.as_bytes(), Some([1; 16]), NOW).unwrap();
    assert!(first.fresh);
    assert_eq!(first.mandate.submission_id, Some([1; 16]));
    // The same submission (a retry of this payee), and a submitter without an id: the receipt.
    for again in [Some([1; 16]), None] {
        let r = sp.enqueue_as(a.as_bytes(), again, NOW + 1).unwrap();
        assert!(!r.fresh);
        assert_eq!(r.mandate.receipt, first.mandate.receipt);
    }
    // Another payee instance with a store of its own: it must not serve this charge.
    let other = sp.enqueue_as(a.as_bytes(), Some([2; 16]), NOW + 1).unwrap_err();
    assert_eq!(other.code(), "mandate_replayed");
    // A mandate first stored without an id (an MVP payee, a third party) is held for the first id brought.
    let (b, _) = evm_envelope("sub-payer", 2, 100, NOW + 3600, EnvelopeForm::Mvp);
    assert_eq!(sp.enqueue(b.as_bytes(), NOW).unwrap().mandate.submission_id, None);
    assert_eq!(
        sp.enqueue_as(b.as_bytes(), Some([3; 16]), NOW)
            .unwrap()
            .mandate
            .submission_id,
        Some([3; 16])
    );
    assert_eq!(
        sp.enqueue_as(b.as_bytes(), Some([4; 16]), NOW).unwrap_err().code(),
        "mandate_replayed"
    );
    // One reservation per mandate, whatever was asked.
    assert_eq!(sp.ledger().audit().unwrap(), Vec::<String>::new());
}

/// A mandate of `amount` for `payer`'s account, with id and nonce key derived from `n`.
fn record(account: &aep2_sp::AccountKey, n: u64, amount: u64) -> aep2_sp::ledger::NewMandate {
    let id = aep2::hash::sha256(format!("two-handles-{n}").as_bytes());
    aep2_sp::ledger::NewMandate {
        mandate_id: id,
        nonce_key: aep2::hash::sha256(&id),
        profile: "eip712".into(),
        account: account.clone(),
        payee: payee().to_checksum(),
        amount: aep2::U256::from_u64(amount),
        nonce: n.to_string(),
        deadline: NOW + 3_600,
        reference: aep2::codec::hex_encode_0x(&[3; 32]),
        envelope: "{}".into(),
        receipt: format!("{{\"n\":{n}}}"),
        enqueue_deadline: NOW + 300,
        now: NOW,
        submission_id: None,
        lanes: Vec::new(),
        request: None,
    }
}

#[test]
fn two_ledger_handles_on_one_database_are_serialised_and_never_overcommit() {
    on_each_backend("two-handles", two_handles);
}

/// Two handles on one database (two pools on Postgres: as two processes), 8 threads each
/// submitting all 120 mandates (of 1 to 120 units against 2,000) in its own order, and
/// depositing meanwhile, then once more from a third handle: each mandate is stored once, the
/// balance never over-committed, and the audit trail numbered 1, 2, 3, … in storage order.
fn two_handles(backend: Backend) {
    let db = location(backend, "two-handles");
    let handles = [Arc::new(open(&db)), Arc::new(open(&db))];
    let account = evm_deposit("seed", "two-handles-payer", 0).account;
    let mut seed = evm_deposit("seed", "two-handles-payer", 1_000);
    seed.account = account.clone();
    handles[0].deposit(&seed, NOW).unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let fresh: Arc<Mutex<BTreeMap<u64, usize>>> = Arc::default();
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (ledger, barrier, fresh, account) = (
                handles[(t % 2) as usize].clone(),
                barrier.clone(),
                fresh.clone(),
                account.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..120u64 {
                    let n = (i * (2 * t + 1) + 13 * t) % 120;
                    if t == 3 && i == 60 {
                        let mut more = evm_deposit("more", "two-handles-payer", 1_000);
                        more.account = account.clone();
                        ledger.deposit(&more, NOW).unwrap();
                    }
                    match ledger.enqueue(&record(&account, n, n + 1)) {
                        Ok(done) => {
                            assert_eq!(done.mandate.receipt, format!("{{\"n\":{n}}}"));
                            *fresh.lock().unwrap().entry(n).or_default() += usize::from(done.fresh);
                        }
                        Err(e) => assert_eq!(e.code(), "insufficient_funds", "{e}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // A mandate refused by every thread before the second deposit landed may be paid now: one
    // more pass, after which what is left pays for none still unaccepted.
    let ledger = open(&db);
    let mut fresh = fresh.lock().unwrap();
    for n in 0..120u64 {
        match ledger.enqueue(&record(&account, n, n + 1)) {
            Ok(done) => *fresh.entry(n).or_default() += usize::from(done.fresh),
            Err(e) => assert_eq!(e.code(), "insufficient_funds", "{e}"),
        }
    }
    let stored = ledger.mandates().unwrap();
    assert_eq!(fresh.len(), stored.len());
    assert!(
        fresh.values().all(|&f| f == 1),
        "each mandate stored by exactly one call"
    );
    let total: u64 = stored.iter().map(|m| m.amount.to_u64().unwrap()).sum();
    assert!(total <= 2_000, "accepted {total} > 2000");
    let b = ledger.balance(&account).unwrap();
    assert_eq!((b.balance.to_u64(), b.reserved.to_u64()), (Some(2_000), Some(total)));
    // What is left pays for no mandate still unaccepted.
    if let Some(min) = (0..120u64).filter(|n| !fresh.contains_key(n)).map(|n| n + 1).min() {
        assert!(
            2_000 - total < min,
            "{} left, yet a mandate of {min} was refused",
            2_000 - total
        );
    }
    assert_eq!(ledger.audit().unwrap(), Vec::<String>::new());
    // (The envelopes are placeholders the audit trail cannot render: read the numbers raw.)
    let seqs: Vec<u64> = raw_ledger(&db)
        .read("seq", |tx| {
            tx.query("SELECT seq FROM mandates ORDER BY seq", aep2_replay::params![])
        })
        .unwrap()
        .iter()
        .map(|r| r.uint(0).unwrap())
        .collect();
    assert_eq!(seqs, (1..=stored.len() as u64).collect::<Vec<_>>());
}

/// Undoes what versions 5 and 4 added (lanes, a batch's transactions), leaving a version-3 file.
const TO_VERSION_3: &str = concat!(
    "DROP INDEX mandates_lane; DROP INDEX lanes_parent; DROP INDEX mandates_seq; DROP TABLE lanes; \
     DROP TABLE mandate_lanes; ALTER TABLE mandates DROP COLUMN lane_id; ALTER TABLE mandates DROP COLUMN request; \
     ALTER TABLE mandates DROP COLUMN seq; ",
    "DROP INDEX batch_txs_batch; DROP TABLE batch_txs;"
);

/// Undoes what version 3 added (settlement) from a version-3 file, leaving a version-2 file.
const TO_VERSION_2: &str = "DROP INDEX mandates_batch; DROP TABLE batches; DROP TABLE withdrawals; \
     DROP TABLE chain_cursor; ALTER TABLE mandates DROP COLUMN batch_id; ALTER TABLE mandates DROP COLUMN settled_tx; \
     ALTER TABLE mandates DROP COLUMN settled_block; ALTER TABLE mandates DROP COLUMN failure; \
     ALTER TABLE accounts DROP COLUMN withdrawing;";

#[test]
fn a_version_2_ledger_is_upgraded_in_place_and_keeps_its_mandates() {
    let db = temp_db("upgrade-2");
    let (a, _) = evm_envelope("up2-payer", 1, 100, NOW + 3600, EnvelopeForm::Mvp);
    let id = {
        let sp = Processor::new(
            &config(db.clone()),
            Ledger::open(&db, &LedgerOptions::default()).unwrap(),
        )
        .unwrap();
        sp.ledger().deposit(&evm_deposit("d", "up2-payer", 1_000), NOW).unwrap();
        sp.enqueue(a.as_bytes(), NOW).unwrap().mandate.mandate_id
    };
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!("{TO_VERSION_3} {TO_VERSION_2} PRAGMA user_version = 2;"))
        .unwrap();
    drop(conn);
    let sp = Processor::new(
        &config(db.clone()),
        Ledger::open(&db, &LedgerOptions::default()).unwrap(),
    )
    .unwrap();
    let m = sp.ledger().mandate(&id).unwrap().unwrap();
    assert_eq!(m.status, aep2_sp::Status::Accepted);
    assert_eq!(m.settlement, aep2_sp::Settlement::default());
    assert_eq!(sp.ledger().audit().unwrap(), Vec::<String>::new());
    let version: i32 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, Ledger::SCHEMA_VERSION);
}

#[test]
fn a_version_1_ledger_is_upgraded_in_place() {
    let db = temp_db("upgrade");
    {
        let ledger = Ledger::open(&db, &LedgerOptions::default()).unwrap();
        drop(ledger);
        // Make it look like a version-1 file: without what versions 2 (submission_id) and 3
        // (settlement) added, user_version 1.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&format!(
            "{TO_VERSION_3} {TO_VERSION_2} ALTER TABLE mandates DROP COLUMN submission_id; PRAGMA user_version = 1;"
        ))
        .unwrap();
    }
    let sp = Processor::new(
        &config(db.clone()),
        Ledger::open(&db, &LedgerOptions::default()).unwrap(),
    )
    .unwrap();
    sp.ledger().deposit(&evm_deposit("d", "up-payer", 1_000), NOW).unwrap();
    let (a, _) = evm_envelope("up-payer", 1, 100, NOW + 3600, EnvelopeForm::Mvp);
    assert_eq!(
        sp.enqueue_as(a.as_bytes(), Some([9; 16]), NOW)
            .unwrap()
            .mandate
            .submission_id,
        Some([9; 16])
    );
}

#[test]
fn a_version_3_ledger_keeps_each_batch_transaction_as_its_first_attempt() {
    let db = temp_db("upgrade-3");
    let (a, _) = evm_envelope("up3-payer", 1, 100, NOW + 3600, EnvelopeForm::Mvp);
    let (domain, id) = {
        let sp = Processor::new(
            &config(db.clone()),
            Ledger::open(&db, &LedgerOptions::default()).unwrap(),
        )
        .unwrap();
        sp.ledger().deposit(&evm_deposit("d", "up3-payer", 1_000), NOW).unwrap();
        let m = sp.enqueue(a.as_bytes(), NOW).unwrap().mandate;
        (m.account.domain.clone(), m.mandate_id)
    };
    let ledger = Ledger::open(&db, &LedgerOptions::default()).unwrap();
    ledger
        .record_batch(&aep2_sp::NewBatch {
            batch_id: [3; 32],
            domain,
            mandates: vec![id],
            sp_nonce: 0,
            tx_hash: [4; 32],
            raw_tx: vec![5, 6],
            fees: (7, 8),
            now: NOW,
        })
        .unwrap();
    drop(ledger);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!("{TO_VERSION_3} PRAGMA user_version = 3;"))
        .unwrap();
    drop(conn);
    let ledger = Ledger::open(&db, &LedgerOptions::default()).unwrap();
    let attempts = ledger.batch_attempts(&[3; 32]).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].tx_hash, [4; 32]);
    assert_eq!(attempts[0].raw_tx, vec![5, 6]);
    // Version 3 did not keep fees: an unknown fee reads as zero, which any replacement exceeds.
    assert_eq!(attempts[0].fees, (0, 0));
}

#[test]
fn the_configured_database_is_a_file_relative_to_the_configuration_or_a_postgres_url() {
    let base = std::path::Path::new("/etc/aep2");
    let key = aep2::codec::hex_encode_0x(&aep2::hash::sha256(b"config-sp"));
    let parse = |db: &str| {
        let text = format!(
            r#"{{"database": "{db}", "keys": {{"secp256k1": "{key}"}}, "domains": [{{"profile": "eip712", "domain": {{"chainId": 1, "verifyingContract": "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"}}}}]}}"#
        );
        aep2_sp::Config::parse(&text, base).unwrap()
    };
    assert_eq!(
        parse("ledger.db").database,
        aep2_sp::Location::Sqlite(base.join("ledger.db"))
    );
    assert_eq!(parse("ledger.db").database_pool_size, 8);
    assert_eq!(
        parse("/var/lib/aep2/ledger.db").database,
        aep2_sp::Location::Sqlite("/var/lib/aep2/ledger.db".into())
    );
    // A URL names a server: it is not joined to the configuration's directory.
    for url in [
        "postgres://sp:s3cret@db.internal:5432/aep2",
        "postgresql://sp:s3cret@db.internal/aep2?schema=ledger_a&sslmode=disable",
    ] {
        let c = parse(url);
        assert_eq!(c.database, aep2_sp::Location::Postgres(url.into()));
        // Neither the configuration's Debug form nor the location's display shows the password.
        let shown = format!("{c:?} {}", c.database.display());
        assert!(
            !shown.contains("s3cret") && shown.contains("sp:***@db.internal"),
            "{shown}"
        );
    }
}
