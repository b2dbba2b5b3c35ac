//! The payment state (spec `aep2.md#payee-payment-state`) on every store (memory, SQLite, and
//! Postgres when `AEP2_TEST_POSTGRES` names a server): the state machine,
//! claims and leases, resumption only for the same request, final states, and the upgrade of a
//! version-2 replay database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aep2::Reason;
use aep2_replay::{
    Begun, MemoryStore, PaymentState, PaymentStore, Presentation, ReplayStore, SqliteOptions, SqliteStore,
};
use common::{NOW, TempDir, key, postgres_store};

fn stores(dir: &TempDir) -> Vec<(&'static str, Box<dyn PaymentStore>)> {
    let mut all: Vec<(&'static str, Box<dyn PaymentStore>)> = vec![
        ("memory", Box::new(MemoryStore::new(1000))),
        (
            "sqlite-file",
            Box::new(SqliteStore::open_with(dir.path().join("p.sqlite"), &SqliteOptions::default()).unwrap()),
        ),
    ];
    if let Some(pg) = postgres_store("payment", 0) {
        all.push(("postgres", Box::new(pg)));
    }
    all
}

fn presentation(request: u8, token: u8) -> Presentation {
    Presentation {
        request: [request; 32],
        submission_id: [token ^ 0x55; 16],
        token: [token; 16],
        lease: 10,
    }
}

fn code<T>(r: Result<T, aep2::Error>) -> Option<Reason> {
    r.err().map(|e| e.reason())
}

#[test]
fn a_mandate_goes_received_receipted_served_once() {
    let dir = TempDir::new("machine");
    for (name, s) in stores(&dir) {
        let k = key(1, 0, NOW + 600);
        let first = s.begin(&k, &presentation(1, 1), NOW).unwrap();
        let Begun::Fresh(claim) = first else {
            panic!("{name}: {first:?}")
        };
        let r = s.lookup(&k.mandate_id).unwrap().unwrap();
        assert_eq!(
            (r.state, r.submission_id),
            (PaymentState::Received, [1 ^ 0x55; 16]),
            "{name}"
        );
        assert_eq!(s.unfinished().unwrap(), 1, "{name}");
        // A second presentation while the claim is live: in progress, nothing changes.
        assert_eq!(
            code(s.begin(&k, &presentation(1, 2), NOW + 1)),
            Some(Reason::PaymentInProgress),
            "{name}"
        );
        assert!(s.served(&claim, "{\"r\":1}", NOW + 10, NOW).unwrap(), "{name}");
        let r = s.lookup(&k.mandate_id).unwrap().unwrap();
        assert_eq!(
            (r.state, r.receipt.as_deref()),
            (PaymentState::Served, Some("{\"r\":1}")),
            "{name}"
        );
        // Being delivered: a duplicate is a replay, not a second serve.
        assert_eq!(
            code(s.begin(&k, &presentation(1, 2), NOW + 1)),
            Some(Reason::MandateReplayed),
            "{name}"
        );
        assert_eq!(s.unfinished().unwrap(), 0, "{name}");
        assert!(s.delivered(&claim, NOW).unwrap(), "{name}");
        assert!(
            !s.served(&claim, "{\"r\":1}", NOW + 10, NOW).unwrap(),
            "{name}: served twice"
        );
        assert_eq!(s.unfinished().unwrap(), 0, "{name}");
        // Final: replayed for everyone, whatever the lease.
        assert_eq!(
            code(s.begin(&k, &presentation(1, 3), NOW + 100)),
            Some(Reason::MandateReplayed),
            "{name}"
        );
        // Another mandate with the same nonce key.
        let other = key(1, 1, NOW + 600);
        assert_eq!(
            code(s.begin(&other, &presentation(1, 4), NOW)),
            Some(Reason::NonceReused),
            "{name}"
        );
    }
}

#[test]
fn an_unfinished_mandate_is_resumed_once_and_only_for_its_request() {
    let dir = TempDir::new("resume");
    for (name, s) in stores(&dir) {
        let k = key(3, 3, NOW + 600);
        let Begun::Fresh(a) = s.begin(&k, &presentation(7, 1), NOW).unwrap() else {
            panic!()
        };
        // The SP was unreachable: released, state unchanged.
        assert!(s.release(&a, NOW).unwrap(), "{name}");
        // Another request: refused, nothing changes.
        assert_eq!(
            code(s.begin(&k, &presentation(8, 2), NOW)),
            Some(Reason::RequestMismatch),
            "{name}"
        );
        // The same request: resumed with the stored submission id.
        let b = s.begin(&k, &presentation(7, 3), NOW).unwrap();
        let Begun::Resumed { claim: b, record } = b else {
            panic!("{name}")
        };
        assert_eq!(
            (record.state, record.submission_id),
            (PaymentState::Received, [1 ^ 0x55; 16]),
            "{name}"
        );
        // The first presentation's claim is no longer current: its transitions do nothing.
        assert!(!s.receipted(&a, "{}", NOW).unwrap(), "{name}");
        assert!(s.receipted(&b, "{\"r\":2}", NOW).unwrap(), "{name}");
        // b crashes before serving: after its lease, c takes over with the stored receipt.
        assert_eq!(
            code(s.begin(&k, &presentation(7, 4), NOW + 5)),
            Some(Reason::PaymentInProgress),
            "{name}"
        );
        let c = s.begin(&k, &presentation(7, 4), NOW + 11).unwrap();
        let Begun::Resumed { claim: c, record } = c else {
            panic!("{name}")
        };
        assert_eq!(record.receipt.as_deref(), Some("{\"r\":2}"), "{name}");
        // b wakes up: it cannot record the serve; c can, once.
        assert!(!s.served(&b, "{\"r\":2}", NOW + 22, NOW + 12).unwrap(), "{name}");
        assert!(s.served(&c, "{\"r\":2}", NOW + 22, NOW + 12).unwrap(), "{name}");
        assert_eq!(
            s.lookup(&k.mandate_id).unwrap().unwrap().state,
            PaymentState::Served,
            "{name}"
        );
        assert!(!s.delivered(&b, NOW + 13).unwrap(), "{name}");
        assert!(s.delivered(&c, NOW + 13).unwrap(), "{name}");
        let again = s.begin(&k, &presentation(7, 5), NOW + 100);
        assert_eq!(code(again), Some(Reason::MandateReplayed), "{name}");
    }
}

#[test]
fn a_serve_whose_delivery_never_ended_is_taken_over_after_the_lease() {
    let dir = TempDir::new("delivery");
    for (name, s) in stores(&dir) {
        let k = key(11, 1, NOW + 600);
        let Begun::Fresh(a) = s.begin(&k, &presentation(2, 1), NOW).unwrap() else {
            panic!()
        };
        assert!(s.served(&a, "{\"r\":3}", NOW + 10, NOW).unwrap(), "{name}");
        // The instance dies before the delivery ends. Within the lease: a replay.
        let early = s.begin(&k, &presentation(2, 2), NOW + 9);
        assert_eq!(code(early), Some(Reason::MandateReplayed), "{name}");
        // With another request, never.
        let other = s.begin(&k, &presentation(3, 2), NOW + 11);
        assert_eq!(code(other), Some(Reason::MandateReplayed), "{name}");
        // After it, the payer's retry is served again, with the stored receipt.
        let Begun::Resumed { claim: b, record } = s.begin(&k, &presentation(2, 3), NOW + 11).unwrap() else {
            panic!("{name}")
        };
        assert_eq!(record.state, PaymentState::Served, "{name}");
        assert_eq!(record.receipt.as_deref(), Some("{\"r\":3}"), "{name}");
        assert!(
            !s.delivered(&a, NOW + 11).unwrap(),
            "{name}: the dead holder's claim is gone"
        );
        assert!(s.served(&b, "{\"r\":3}", NOW + 21, NOW + 11).unwrap(), "{name}");
        assert!(s.delivered(&b, NOW + 11).unwrap(), "{name}");
        let after = s.begin(&k, &presentation(2, 4), NOW + 100);
        assert_eq!(code(after), Some(Reason::MandateReplayed), "{name}");
    }
}

#[test]
fn a_refused_mandate_is_final_and_plain_replay_records_are_final() {
    let dir = TempDir::new("failed");
    for (name, s) in stores(&dir) {
        let k = key(4, 4, NOW + 600);
        let Begun::Fresh(a) = s.begin(&k, &presentation(1, 1), NOW).unwrap() else {
            panic!()
        };
        assert!(s.failed(&a, "insufficient_funds", NOW).unwrap(), "{name}");
        let r = s.lookup(&k.mandate_id).unwrap().unwrap();
        assert_eq!(
            (r.state, r.failure.as_deref()),
            (PaymentState::Failed, Some("insufficient_funds")),
            "{name}"
        );
        assert_eq!(
            code(s.begin(&k, &presentation(1, 2), NOW + 100)),
            Some(Reason::MandateReplayed),
            "{name}"
        );
        let plain = key(5, 5, NOW + 600);
        s.check_and_insert(&plain, NOW).unwrap();
        assert_eq!(
            code(s.begin(&plain, &presentation(1, 3), NOW)),
            Some(Reason::MandateReplayed),
            "{name}"
        );
    }
}

#[test]
fn unfinished_records_outlive_the_purge_of_final_ones() {
    let dir = TempDir::new("purge");
    for (name, s) in stores(&dir) {
        let owed = key(6, 6, NOW + 10);
        let done = key(7, 7, NOW + 10);
        let Begun::Fresh(_) = s.begin(&owed, &presentation(1, 1), NOW).unwrap() else {
            panic!()
        };
        s.check_and_insert(&done, NOW).unwrap();
        // Served and delivered: final, purged like a plain record.
        let shipped = key(8, 8, NOW + 10);
        let Begun::Fresh(c) = s.begin(&shipped, &presentation(1, 3), NOW).unwrap() else {
            panic!()
        };
        assert!(s.served(&c, "{}", NOW + 10, NOW).unwrap(), "{name}");
        assert!(s.delivered(&c, NOW).unwrap(), "{name}");
        // Past the deadlines: the final ones go, the unfinished one stays for the grace period.
        assert_eq!(s.purge(NOW + 100).unwrap(), 2, "{name}");
        assert!(s.lookup(&shipped.mandate_id).unwrap().is_none(), "{name}");
        assert!(s.lookup(&owed.mandate_id).unwrap().is_some(), "{name}");
        let resumed = s.begin(&owed, &presentation(1, 2), NOW + 100).unwrap();
        assert!(matches!(resumed, Begun::Resumed { .. }), "{name}");
        assert_eq!(
            s.purge(NOW + 10 + aep2_replay::payment::UNFINISHED_GRACE + 1).unwrap(),
            1,
            "{name}"
        );
        assert!(s.lookup(&owed.mandate_id).unwrap().is_none(), "{name}");
    }
}

#[test]
fn a_version_2_replay_database_is_upgraded_in_place() {
    let dir = TempDir::new("upgrade");
    let path = dir.path().join("v2.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE replay (mandate_id BLOB NOT NULL PRIMARY KEY CHECK (length(mandate_id) = 32),
                 nonce_key BLOB NOT NULL UNIQUE CHECK (length(nonce_key) = 32),
                 deadline INTEGER NOT NULL CHECK (deadline >= 0)) STRICT, WITHOUT ROWID;
             CREATE INDEX replay_deadline ON replay (deadline);
             CREATE TABLE meta (name TEXT NOT NULL PRIMARY KEY, value INTEGER NOT NULL) STRICT;
             INSERT INTO meta (name, value) VALUES ('purged_below', 0);
             PRAGMA application_id = 1095061554; PRAGMA user_version = 2;",
        )
        .unwrap();
        let k = key(9, 9, NOW + 600);
        conn.execute(
            "INSERT INTO replay (mandate_id, nonce_key, deadline) VALUES (?1, ?2, ?3)",
            rusqlite::params![k.mandate_id, k.nonce_key, 1_800_000_600i64],
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let k = key(9, 9, NOW + 600);
    // The old record is final: it was accepted and handed to the route.
    assert_eq!(s.lookup(&k.mandate_id).unwrap().unwrap().state, PaymentState::Served);
    assert_eq!(
        code(s.begin(&k, &presentation(1, 1), NOW)),
        Some(Reason::MandateReplayed)
    );
    let fresh = key(10, 10, NOW + 600);
    assert!(matches!(
        s.begin(&fresh, &presentation(1, 2), NOW).unwrap(),
        Begun::Fresh(_)
    ));
}

#[test]
fn a_taken_over_serve_given_up_undelivered_is_owed_again() {
    let dir = TempDir::new("given-up");
    for (name, s) in stores(&dir) {
        let k = key(12, 1, NOW + 600);
        let Begun::Fresh(a) = s.begin(&k, &presentation(4, 1), NOW).unwrap() else {
            panic!()
        };
        assert!(s.served(&a, "{}", NOW + 10, NOW).unwrap(), "{name}");
        // A dies mid-delivery; B takes over after the lease, and its route fails (5xx).
        let Begun::Resumed { claim: b, .. } = s.begin(&k, &presentation(4, 2), NOW + 11).unwrap() else {
            panic!("{name}")
        };
        assert!(s.release(&b, NOW + 11).unwrap(), "{name}");
        let r = s.lookup(&k.mandate_id).unwrap().unwrap();
        assert_eq!(r.state, PaymentState::Receipted, "{name}");
        // The payer's next presentation is served.
        let Begun::Resumed { claim: c, record } = s.begin(&k, &presentation(4, 3), NOW + 12).unwrap() else {
            panic!("{name}")
        };
        assert_eq!(record.receipt.as_deref(), Some("{}"), "{name}");
        assert!(s.served(&c, "{}", NOW + 22, NOW + 12).unwrap(), "{name}");
        assert!(s.delivered(&c, NOW + 12).unwrap(), "{name}");
        let after = s.begin(&k, &presentation(4, 4), NOW + 100);
        assert_eq!(code(after), Some(Reason::MandateReplayed), "{name}");
    }
}

#[test]
fn a_delivered_serve_is_final_for_its_own_claim_too() {
    let dir = TempDir::new("delivered-final");
    for (name, s) in stores(&dir) {
        let k = key(13, 1, NOW + 600);
        let Begun::Fresh(a) = s.begin(&k, &presentation(5, 1), NOW).unwrap() else {
            panic!("{name}")
        };
        assert!(s.served(&a, "{}", NOW + 10, NOW).unwrap(), "{name}");
        assert!(s.delivered(&a, NOW).unwrap(), "{name}");
        // The claim ended with the delivery: nothing it names changes the record any more.
        assert!(!s.release(&a, NOW).unwrap(), "{name}: release after delivery");
        assert!(!s.receipted(&a, "{}", NOW).unwrap(), "{name}");
        assert!(!s.failed(&a, "insufficient_funds", NOW).unwrap(), "{name}");
        assert!(!s.served(&a, "{}", NOW + 10, NOW).unwrap(), "{name}");
        let r = s.lookup(&k.mandate_id).unwrap().unwrap();
        assert_eq!((r.state, r.claimed_until), (PaymentState::Served, 0), "{name}");
        assert_eq!(s.unfinished().unwrap(), 0, "{name}");
        assert_eq!(
            code(s.begin(&k, &presentation(5, 2), NOW + 100)),
            Some(Reason::MandateReplayed),
            "{name}"
        );
    }
}
