//! Concurrent enqueues give exactly the outcomes serial execution allows (spec
//! `aep2.md#store-guarantees`), on both backends; on SQLite they share commits (group commit).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::U256;
use aep2_replay::db::Backend;
use aep2_sp::ledger::{LaneLink, NewMandate};
use aep2_sp::{AccountKey, Ledger, LedgerOptions};
use common::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

fn mandate(account: &AccountKey, id: u64, nonce: u64, amount: u64) -> NewMandate {
    let mut mandate_id = [0; 32];
    mandate_id[..8].copy_from_slice(&id.to_be_bytes());
    let mut nonce_key = [0xee; 32];
    nonce_key[..8].copy_from_slice(&nonce.to_be_bytes());
    NewMandate {
        mandate_id,
        nonce_key,
        profile: "eip712".into(),
        account: account.clone(),
        payee: payee().to_checksum(),
        amount: U256::from_u64(amount),
        nonce: nonce.to_string(),
        deadline: NOW + 3_600,
        reference: aep2::codec::hex_encode_0x(&[3; 32]),
        envelope: "{}".into(),
        receipt: format!("{{\"receipt\":{id}}}"),
        enqueue_deadline: NOW + 300,
        now: NOW,
        submission_id: None,
        lanes: Vec::new(),
        request: None,
    }
}

fn funded(backend: Backend, name: &str, payer: &str, balance: u64) -> (Arc<Ledger>, AccountKey) {
    let ledger = open(&location(backend, name));
    let d = evm_deposit("d", payer, balance);
    ledger.deposit(&d, NOW).unwrap();
    (Arc::new(ledger), d.account)
}

/// Runs `calls` on `threads` threads started together; each call's result code ("fresh",
/// "stored" or the error code) by index.
fn race(
    ledger: &Arc<Ledger>,
    threads: usize,
    calls: Vec<NewMandate>,
    slow: Duration,
) -> Vec<(NewMandate, Result<aep2_sp::Enqueued, String>)> {
    let calls = Arc::new(calls);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (ledger, calls, next, out, barrier) = (
                ledger.clone(),
                calls.clone(),
                next.clone(),
                out.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(m) = calls.get(i) else { break };
                    let r = ledger.enqueue_with(m, |_| {
                        // Work inside the transaction (signing), long enough for the others to
                        // queue behind it.
                        std::thread::sleep(slow);
                        Ok(m.receipt.clone())
                    });
                    out.lock()
                        .unwrap()
                        .push((m.clone(), r.map_err(|e| e.code().to_string())));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    Arc::try_unwrap(out).unwrap().into_inner().unwrap()
}

fn codes(results: &[(NewMandate, Result<aep2_sp::Enqueued, String>)]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (_, r) in results {
        let c = match r {
            Ok(e) if e.fresh => "fresh".to_string(),
            Ok(_) => "stored".to_string(),
            Err(c) => c.clone(),
        };
        *m.entry(c).or_default() += 1;
    }
    m
}

#[test]
fn concurrent_distinct_mandates_share_commits_and_are_all_stored() {
    on_each_backend("group-distinct", |backend| {
        let (ledger, account) = funded(backend, "group-distinct", "group-payer", 1_000_000);
        let calls: Vec<_> = (0..96).map(|i| mandate(&account, i, i, 10)).collect();
        let before = ledger.group_commits();
        assert_eq!(before.is_some(), backend == Backend::Sqlite);
        // A reader racing the writers commits any open group before it reads.
        let reader = {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let c = ledger.counts().unwrap();
                    assert!(c.accepted <= 96);
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let results = race(&ledger, 12, calls, Duration::from_millis(2));
        reader.join().unwrap();
        assert_eq!(codes(&results), BTreeMap::from([("fresh".to_string(), 96)]));
        for (m, r) in &results {
            let stored = ledger.mandate(&m.mandate_id).unwrap().unwrap();
            assert_eq!(stored.receipt, r.as_ref().unwrap().mandate.receipt);
        }
        assert_eq!(ledger.counts().unwrap().accepted, 96);
        assert_eq!(ledger.balance(&account).unwrap().reserved, U256::from_u64(960));
        assert_eq!(ledger.audit().unwrap(), Vec::<String>::new());
        if let (Some(before), Some(after)) = (before, ledger.group_commits()) {
            let (commits, requests) = (after.commits - before.commits, after.requests - before.requests);
            // The reader's reads are not writes: only the 96 enqueues count.
            assert_eq!(requests, 96);
            // 12 threads, each holding the lock 2 ms: the others are always queued behind it.
            assert!(commits < requests / 2, "{commits} commits for {requests} enqueues");
        }
        // Reopened, everything answered is there.
        drop(ledger);
    });
}

#[test]
fn a_lone_enqueue_commits_at_once() {
    let backend = Backend::Sqlite;
    let (ledger, account) = funded(backend, "group-lone", "group-lone-payer", 100);
    let before = ledger.group_commits().unwrap();
    for i in 0..5 {
        ledger.enqueue(&mandate(&account, i, i, 1)).unwrap();
        let c = ledger.group_commits().unwrap();
        assert_eq!(
            (c.commits - before.commits, c.requests - before.requests),
            (i + 1, i + 1)
        );
    }
}

#[test]
fn one_mandate_submitted_concurrently_is_stored_once_with_one_receipt() {
    on_each_backend("group-dup", |backend| {
        let (ledger, account) = funded(backend, "group-dup", "group-dup-payer", 100);
        let calls: Vec<_> = (0..40)
            .map(|t| {
                let mut m = mandate(&account, 7, 7, 30);
                // Every caller would sign another receipt: the stored one must win.
                m.receipt = format!("{{\"caller\":{t}}}");
                m
            })
            .collect();
        let results = race(&ledger, 10, calls, Duration::from_millis(1));
        assert_eq!(
            codes(&results),
            BTreeMap::from([("fresh".to_string(), 1), ("stored".to_string(), 39)])
        );
        let stored = ledger
            .mandate(&mandate(&account, 7, 7, 30).mandate_id)
            .unwrap()
            .unwrap();
        for (_, r) in &results {
            assert_eq!(r.as_ref().unwrap().mandate.receipt, stored.receipt);
        }
        assert_eq!(ledger.balance(&account).unwrap().reserved, U256::from_u64(30));
        assert_eq!(ledger.audit().unwrap(), Vec::<String>::new());
    });
}

#[test]
fn concurrent_mandates_beyond_the_balance_and_reused_nonces_are_refused_as_serially() {
    on_each_backend("group-funds", |backend| {
        // 10 units of 7 fit in 70; 30 are tried, plus 10 other mandates reusing nonces 0..10.
        let (ledger, account) = funded(backend, "group-funds", "group-funds-payer", 70);
        let mut calls: Vec<_> = (0..30).map(|i| mandate(&account, i, i, 7)).collect();
        calls.extend((0..10).map(|n| mandate(&account, 1000 + n, n, 1)));
        let results = race(&ledger, 10, calls, Duration::from_millis(1));
        let c = codes(&results);
        assert_eq!(c.values().sum::<usize>(), 40);
        let fresh = c.get("fresh").copied().unwrap_or(0);
        let balance = ledger.balance(&account).unwrap();
        // Whatever was accepted is exactly what is reserved, never beyond the balance.
        let reserved: u64 = results
            .iter()
            .filter(|(_, r)| r.as_ref().is_ok_and(|e| e.fresh))
            .map(|(m, _)| m.amount.to_string().parse::<u64>().unwrap())
            .sum();
        assert_eq!(balance.reserved, U256::from_u64(reserved));
        assert!(reserved <= 70);
        // Each nonce 0..10 went to exactly one of its two mandates; nonces 10..30 to their own.
        for n in 0..30u64 {
            let winners = results
                .iter()
                .filter(|(m, r)| m.nonce == n.to_string() && r.as_ref().is_ok_and(|e| e.fresh))
                .count();
            let lost_nonce = results
                .iter()
                .filter(|(m, r)| m.nonce == n.to_string() && r.as_ref().is_err_and(|c| c == "nonce_reused"))
                .count();
            assert!(winners <= 1, "nonce {n} accepted {winners} times");
            assert!(
                lost_nonce <= usize::from(winners == 1),
                "nonce {n}: refusal without a winner"
            );
        }
        // Serially, the funds run out exactly: the remainder never fits another 7 while a 7 was
        // refused for funds.
        let funds_refused = c.get("insufficient_funds").copied().unwrap_or(0);
        assert!(funds_refused > 0);
        assert!(
            70 - reserved < 7,
            "{reserved} reserved but 7-unit mandates were refused"
        );
        assert_eq!(fresh + funds_refused + c.get("nonce_reused").copied().unwrap_or(0), 40);
        assert_eq!(ledger.audit().unwrap(), Vec::<String>::new());
    });
}

#[test]
fn lane_caps_hold_under_concurrency() {
    on_each_backend("group-lanes", |backend| {
        let (ledger, account) = funded(backend, "group-lanes", "group-lane-payer", 1_000_000);
        let link = LaneLink {
            id: [0x1a; 32],
            domain: account.domain.clone(),
            parent: [0; 32],
            owner: account.payer.clone(),
            agent: account.payer.clone(),
            token: account.token.clone(),
            signed: "{}".into(),
            total: U256::from_u64(1_000),
            max_payments: 5,
            period: 0,
            allowance: U256::ZERO,
            valid_from: NOW - 10,
        };
        let calls: Vec<_> = (0..24)
            .map(|i| {
                let mut m = mandate(&account, i, i, 10);
                m.lanes = vec![link.clone()];
                m
            })
            .collect();
        let results = race(&ledger, 8, calls, Duration::from_millis(1));
        assert_eq!(
            codes(&results),
            BTreeMap::from([("fresh".to_string(), 5), ("lane_payments_exhausted".to_string(), 19)])
        );
        let lane = ledger.lane(&link.id, NOW).unwrap().unwrap();
        assert_eq!((lane.payments, lane.spent), (5, U256::from_u64(50)));
        assert_eq!(ledger.balance(&account).unwrap().reserved, U256::from_u64(50));
        assert_eq!(ledger.audit().unwrap(), Vec::<String>::new());
    });
}

#[test]
fn two_ledger_handles_on_one_database_are_serialised() {
    // Two ledgers on one file (as two processes): each groups its own callers; SQLite's write
    // lock serialises the groups.
    on_each_backend("group-two", |backend| {
        let db = location(backend, "group-two");
        let a = Arc::new(Ledger::open(&db, &LedgerOptions::default()).unwrap());
        let b = Arc::new(Ledger::open(&db, &LedgerOptions::default()).unwrap());
        let d = evm_deposit("d", "group-two-payer", 100);
        a.deposit(&d, NOW).unwrap();
        let calls: Vec<_> = (0..30).map(|i| mandate(&d.account, i, i, 5)).collect();
        let (ca, cb) = (calls.clone(), calls);
        let (a2, b2) = (a.clone(), b.clone());
        let ta = std::thread::spawn(move || race(&a2, 6, ca, Duration::from_millis(1)));
        let tb = std::thread::spawn(move || race(&b2, 6, cb, Duration::from_millis(1)));
        let (ra, rb) = (ta.join().unwrap(), tb.join().unwrap());
        let mut all = ra;
        all.extend(rb);
        let c = codes(&all);
        // 20 of 5 fit in 100: each stored once, the other submission of each gets the stored one.
        assert_eq!(c.get("fresh"), Some(&20));
        assert_eq!(c.get("stored"), Some(&20));
        assert_eq!(c.get("insufficient_funds"), Some(&20));
        assert_eq!(a.balance(&d.account).unwrap().reserved, U256::from_u64(100));
        assert_eq!(b.audit().unwrap(), Vec::<String>::new());
    });
}

#[test]
fn a_panic_inside_the_group_fails_it_and_leaves_the_ledger_whole() {
    on_each_backend("group-panic", |backend| {
        // A receipt closure that panics aborts the whole group: nobody in it is answered with a
        // receipt, and the calls after it proceed on a clean ledger.
        let (ledger, account) = funded(backend, "group-panic", "group-panic-payer", 1_000);
        let ok = ledger.enqueue(&mandate(&account, 1, 1, 10)).unwrap();
        assert!(ok.fresh);
        let l2 = ledger.clone();
        let acc = account.clone();
        let r =
            std::thread::spawn(move || l2.enqueue_with(&mandate(&acc, 2, 2, 10), |_| panic!("signer failed"))).join();
        assert!(r.is_err());
        assert!(
            ledger
                .mandate(&mandate(&account, 2, 2, 10).mandate_id)
                .unwrap()
                .is_none()
        );
        assert!(ledger.enqueue(&mandate(&account, 3, 3, 10)).unwrap().fresh);
        assert_eq!(ledger.balance(&account).unwrap().reserved, U256::from_u64(20));
        assert_eq!(ledger.audit().unwrap(), Vec::<String>::new());
    });
}

#[test]
fn a_new_submission_commits_once_and_a_resubmission_answers_from_a_write() {
    let (ledger, account) = funded(Backend::Sqlite, "group-resubmit", "group-resubmit-payer", 100);
    let writes = || ledger.group_commits().unwrap().requests;
    let mut m = mandate(&account, 7, 7, 1);
    m.submission_id = Some([5; 16]);
    // The payee's path: the re-submission check, then the enqueue. Only the enqueue writes.
    let before = writes();
    assert!(
        ledger
            .resubmission(&m.mandate_id, m.submission_id, NOW)
            .unwrap()
            .is_none()
    );
    assert_eq!(writes(), before, "a check that finds nothing waits for no commit");
    assert!(ledger.enqueue(&m).unwrap().fresh);
    assert_eq!(writes(), before + 1);
    // A stored mandate is handed back from a writing transaction, with or without a submission
    // id, so the answer follows the sync covering what it read.
    for submission_id in [m.submission_id, None] {
        let before = writes();
        let stored = ledger.resubmission(&m.mandate_id, submission_id, NOW).unwrap().unwrap();
        assert_eq!(stored.receipt, m.receipt);
        assert_eq!(writes(), before + 1);
    }
    // Held for another submission: still refused.
    let other = ledger.resubmission(&m.mandate_id, Some([6; 16]), NOW).unwrap_err();
    assert_eq!(other.code(), "mandate_replayed");
}
