//! Behaviour of every store (memory, SQLite, and Postgres when `AEP2_TEST_POSTGRES` names a
//! server): acceptance, the two rejection codes, expiry and purge, capacity, persistence, bad
//! files and schemas, busy databases and held row locks, and one end-to-end mandate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aep2::{Reason, ReplayKey};
use aep2_replay::{MemoryStore, ReplayStore, SqliteOptions, SqliteStore};
use common::{NOW, TempDir, key, open_postgres, postgres_store, postgres_url};
use std::time::{Duration, Instant};

fn reason(r: Result<(), aep2::Error>) -> Option<Reason> {
    r.err().map(|e| e.reason())
}

/// Every store kind, fresh, with the given retention. The SQLite one lives in `dir`.
fn stores(dir: &TempDir, retention: u64) -> Vec<(&'static str, Box<dyn ReplayStore>)> {
    let file = dir.path().join(format!("r{retention}.sqlite"));
    let opts = SqliteOptions {
        retention,
        ..SqliteOptions::default()
    };
    let mut all: Vec<(&'static str, Box<dyn ReplayStore>)> = vec![
        ("memory", Box::new(MemoryStore::new(1000).with_retention(retention))),
        ("sqlite-file", Box::new(SqliteStore::open_with(file, &opts).unwrap())),
        (
            "sqlite-memory",
            Box::new(SqliteStore::open_in_memory_with(&opts).unwrap()),
        ),
    ];
    if let Some(pg) = postgres_store("stores", retention) {
        all.push(("postgres", Box::new(pg)));
    }
    all
}

#[test]
fn accepts_once_then_reports_which_key_was_seen() {
    let dir = TempDir::new("once");
    for (name, store) in stores(&dir, 0) {
        let a = key(1, 0, NOW + 600);
        assert!(store.is_empty().unwrap(), "{name}");
        assert_eq!(reason(store.check_and_insert(&a, NOW)), None, "{name}");
        assert_eq!(store.len().unwrap(), 1, "{name}");

        // The same mandate again.
        let err = store.check_and_insert(&a, NOW).unwrap_err();
        assert_eq!(err.reason(), Reason::MandateReplayed, "{name}");
        assert_eq!(err.code(), "mandate_replayed");
        // A different mandate with the same nonce key.
        let other = key(1, 1, NOW + 600);
        let err = store.check_and_insert(&other, NOW).unwrap_err();
        assert_eq!(err.reason(), Reason::NonceReused, "{name}");
        assert_eq!(err.code(), "nonce_reused");
        // The mandate id wins when both are present, whatever the rest of the key says.
        let same_id_other_nonce = ReplayKey {
            nonce_key: [9; 32],
            deadline: NOW + 5,
            ..a
        };
        assert_eq!(
            reason(store.check_and_insert(&same_id_other_nonce, NOW)),
            Some(Reason::MandateReplayed),
            "{name}"
        );
        // Rejections recorded nothing: the unrelated nonce key [9; 32] is still free.
        assert_eq!(store.len().unwrap(), 1, "{name}");
        let fresh = ReplayKey {
            mandate_id: [8; 32],
            nonce_key: [9; 32],
            deadline: NOW,
        };
        assert_eq!(reason(store.check_and_insert(&fresh, NOW)), None, "{name}");
        assert_eq!(reason(store.check_and_insert(&other, NOW)), Some(Reason::NonceReused));
        assert_eq!(store.len().unwrap(), 2, "{name}");
    }
}

#[test]
fn purge_drops_exactly_the_entries_past_deadline_plus_retention() {
    let dir = TempDir::new("purge");
    for retention in [0, 30] {
        for (name, store) in stores(&dir, retention) {
            // Deadlines NOW - 1 .. NOW + 3, inserted while still live.
            for (n, deadline) in (NOW - 1..=NOW + 3).enumerate() {
                store.check_and_insert(&key(n as u32, 0, deadline), NOW - 1).unwrap();
            }
            assert_eq!(store.len().unwrap(), 5);
            // At NOW + retention nothing has deadline + retention < now except NOW - 1.
            assert_eq!(store.purge(NOW + retention).unwrap(), 1, "{name} r{retention}");
            assert_eq!(
                store.purge(NOW + retention).unwrap(),
                0,
                "{name} r{retention}: idempotent"
            );
            // deadline == now - retention is still live (the deadline is inclusive).
            assert_eq!(
                reason(store.check_and_insert(&key(1, 0, NOW), NOW + retention)),
                Some(Reason::MandateReplayed),
                "{name} r{retention}"
            );
            assert_eq!(store.purge(NOW + retention + 2).unwrap(), 2, "{name} r{retention}");
            assert_eq!(store.len().unwrap(), 2, "{name} r{retention}");
            assert_eq!(store.purge(u64::MAX).unwrap(), 2, "{name} r{retention}");
            assert!(store.is_empty().unwrap(), "{name} r{retention}");
        }
    }
}

#[test]
fn a_key_already_purgeable_is_refused_so_purging_never_reopens_replay() {
    let dir = TempDir::new("expired");
    for (name, store) in stores(&dir, 10) {
        let k = key(7, 0, NOW);
        store.check_and_insert(&k, NOW + 10).unwrap(); // NOW + 10 <= NOW + retention: live
        assert_eq!(store.purge(NOW + 11).unwrap(), 1, "{name}");
        // Purged; presenting it again at that time (or later) is refused, not accepted.
        let err = store.check_and_insert(&k, NOW + 11).unwrap_err();
        assert_eq!(err.reason(), Reason::Expired, "{name}");
        assert!(err.detail().contains("retention"), "{name}: {err}");
        assert!(store.is_empty().unwrap(), "{name}: nothing recorded");
    }
}

#[test]
fn extreme_deadlines_and_clocks_do_not_panic_or_purge_early() {
    let dir = TempDir::new("extreme");
    for (name, store) in stores(&dir, u64::MAX) {
        let far = key(1, 0, u64::MAX);
        let zero = key(2, 0, 0);
        store.check_and_insert(&far, u64::MAX).unwrap();
        store.check_and_insert(&zero, u64::MAX).unwrap(); // retention u64::MAX: never purgeable
        assert_eq!(store.purge(u64::MAX).unwrap(), 0, "{name}");
        assert_eq!(
            reason(store.check_and_insert(&far, 0)),
            Some(Reason::MandateReplayed),
            "{name}"
        );
        assert_eq!(store.len().unwrap(), 2, "{name}");
    }
    for (name, store) in stores(&dir, 0) {
        // Deadlines above i64::MAX are clamped in SQLite; they stay until the end of time.
        store.check_and_insert(&key(3, 0, u64::MAX), 0).unwrap();
        store.check_and_insert(&key(4, 0, i64::MAX as u64 + 1), 0).unwrap();
        assert_eq!(store.purge(i64::MAX as u64).unwrap(), 0, "{name}");
        assert_eq!(store.len().unwrap(), 2, "{name}");
    }
}

#[test]
fn memory_store_full_of_live_entries_fails_closed_and_keeps_them_all() {
    let store = MemoryStore::new(3);
    for n in 0..3 {
        store.check_and_insert(&key(n, 0, NOW + 100), NOW).unwrap();
    }
    let err = store.check_and_insert(&key(3, 0, NOW + 100), NOW).unwrap_err();
    assert_eq!(err.reason(), Reason::ReplayStoreUnavailable);
    assert_eq!(err.code(), "replay_store_unavailable");
    assert!(err.detail().contains("full"), "{err}");
    // No live entry was evicted to make room.
    assert_eq!(store.len().unwrap(), 3);
    for n in 0..3 {
        assert_eq!(
            reason(store.check_and_insert(&key(n, 0, NOW + 100), NOW)),
            Some(Reason::MandateReplayed)
        );
    }
    // A replay is still reported as a replay, not as "full".
    assert_eq!(
        reason(store.check_and_insert(&key(0, 1, NOW + 100), NOW)),
        Some(Reason::NonceReused)
    );
    // The refused key was not recorded: once entries expire it is accepted.
    store.check_and_insert(&key(3, 0, NOW + 200), NOW + 101).unwrap();
    assert_eq!(
        store.len().unwrap(),
        1,
        "the three expired entries were purged to make room"
    );
}

#[test]
fn memory_store_when_full_purges_expired_entries_only() {
    let store = MemoryStore::new(4).with_retention(5);
    store.check_and_insert(&key(0, 0, NOW), NOW).unwrap();
    store.check_and_insert(&key(1, 0, NOW + 1), NOW).unwrap();
    store.check_and_insert(&key(2, 0, NOW + 50), NOW).unwrap();
    store.check_and_insert(&key(3, 0, NOW + 50), NOW).unwrap();
    // At NOW + 6 only key 0 (NOW + 5 < NOW + 6) is purgeable.
    store.check_and_insert(&key(4, 0, NOW + 50), NOW + 6).unwrap();
    assert_eq!(store.len().unwrap(), 4);
    assert_eq!(
        reason(store.check_and_insert(&key(1, 0, NOW + 1), NOW + 6)),
        Some(Reason::MandateReplayed)
    );
    assert_eq!(
        reason(store.check_and_insert(&key(5, 0, NOW + 50), NOW + 6)),
        Some(Reason::ReplayStoreUnavailable)
    );
    assert_eq!(
        MemoryStore::new(0)
            .check_and_insert(&key(0, 0, NOW), NOW)
            .unwrap_err()
            .code(),
        "replay_store_unavailable"
    );
}

#[test]
fn memory_store_stays_bounded_under_churn() {
    let store = MemoryStore::new(100);
    // 10 000 mandates, each with a 50-second deadline, one per second: at most ~51 live.
    for n in 0..10_000u32 {
        let now = NOW + u64::from(n);
        store.check_and_insert(&key(n, 0, now + 50), now).unwrap();
        assert!(store.len().unwrap() <= 100);
    }
}

#[test]
fn sqlite_entries_persist_across_reopen() {
    let dir = TempDir::new("reopen");
    {
        let store = SqliteStore::open(dir.db()).unwrap();
        for n in 0..10 {
            store.check_and_insert(&key(n, 0, NOW + 60), NOW).unwrap();
        }
    }
    let store = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(store.len().unwrap(), 10);
    for n in 0..10 {
        assert_eq!(
            reason(store.check_and_insert(&key(n, 0, NOW + 60), NOW)),
            Some(Reason::MandateReplayed)
        );
        assert_eq!(
            reason(store.check_and_insert(&key(n, 1, NOW + 60), NOW)),
            Some(Reason::NonceReused)
        );
    }
    // What the file says about itself.
    let raw = rusqlite::Connection::open(dir.db()).unwrap();
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let app: i64 = raw.query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap();
    assert_eq!(app, i64::from(SqliteStore::APPLICATION_ID));
    let version: i64 = raw.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, i64::from(SqliteStore::SCHEMA_VERSION));
}

#[test]
fn sqlite_refuses_files_that_are_not_replay_databases() {
    let dir = TempDir::new("badfile");
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = SqliteStore::open(&garbage).unwrap_err();
    assert_eq!(err.reason(), Reason::ReplayStoreUnavailable);
    assert!(err.detail().contains("not a SQLite database"), "{err}");

    let foreign = dir.path().join("foreign.sqlite");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        .unwrap();
    let err = SqliteStore::open(&foreign).unwrap_err();
    assert_eq!(err.code(), "replay_store_unavailable");
    assert!(err.detail().contains("not an AEP2 replay database"), "{err}");

    let future = dir.path().join("future.sqlite");
    drop(SqliteStore::open(&future).unwrap());
    rusqlite::Connection::open(&future)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = SqliteStore::open(&future).unwrap_err();
    assert_eq!(err.code(), "replay_store_unavailable");
    assert!(err.detail().contains("schema version 99"), "{err}");

    let err = SqliteStore::open(dir.path().join("no/such/dir/replay.sqlite")).unwrap_err();
    assert_eq!(err.code(), "replay_store_unavailable");
    let err = SqliteStore::open(dir.path()).unwrap_err(); // a directory
    assert_eq!(err.code(), "replay_store_unavailable");
}

#[test]
fn sqlite_busy_past_the_timeout_fails_closed_and_records_nothing() {
    let dir = TempDir::new("busy");
    let opts = SqliteOptions {
        busy_timeout: Duration::from_millis(200),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.db(), &opts).unwrap();
    // Another connection (as another process would) holds the write lock.
    let mut other = rusqlite::Connection::open(dir.db()).unwrap();
    let tx = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let started = Instant::now();
    let err = store.check_and_insert(&key(1, 0, NOW + 60), NOW).unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.reason(), Reason::ReplayStoreUnavailable);
    assert!(err.detail().contains("busy"), "{err}");
    assert!(waited >= Duration::from_millis(150), "waited only {waited:?}");
    assert_eq!(store.purge(u64::MAX).unwrap_err().code(), "replay_store_unavailable");
    // Readers are not blocked under WAL.
    assert_eq!(store.len().unwrap(), 0);
    drop(tx);
    // Once the lock is released the same key is accepted: the failed call recorded nothing.
    store.check_and_insert(&key(1, 0, NOW + 60), NOW).unwrap();
}

#[test]
fn sqlite_options_out_of_range_do_not_panic() {
    let dir = TempDir::new("opts");
    let opts = SqliteOptions {
        busy_timeout: Duration::MAX,
        retention: u64::MAX,
    };
    let store = SqliteStore::open_with(dir.db(), &opts).unwrap();
    assert_eq!(store.retention(), u64::MAX);
    store.check_and_insert(&key(1, 0, 0), u64::MAX).unwrap();
}

/// A real mandate: signed with aep2, verified, keyed, and refused on its second presentation.
#[test]
fn end_to_end_signed_mandate_is_accepted_once() {
    use aep2::crypto::secp256k1::SecretKey;
    use aep2::{Domain, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, Mandate, PayerKey, U256, Verifier};

    let payer = SecretKey::from_bytes(&[0x11; 32]).unwrap();
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912").unwrap(),
    });
    let mandate = |amount: u64| {
        Mandate::Eip712(EvmMandate {
            owner: payer.address(),
            token: EvmAddress::parse("0x036CbD53842c5426634e7929541eC2318f3dCF7e").unwrap(),
            payee: EvmAddress::parse("0xaAD167617dF02Dd30208722c88d9027a2fDD8812").unwrap(),
            amount: U256::from_u64(amount),
            nonce: U256::from_u64(42),
            deadline: NOW + 600,
            reference: aep2::hash::keccak256(b"order-42"),
        })
    };
    let header = |amount| {
        let key = PayerKey::Secp256k1(payer.clone());
        let (signed, _) = aep2::sign_mandate(&mandate(amount), &domain, &key, EnvelopeForm::Mvp).unwrap();
        signed.encode()
    };
    let verifier = Verifier::new(domain.clone());
    let dir = TempDir::new("e2e");
    let mut stores: Vec<Box<dyn ReplayStore>> = vec![
        Box::new(MemoryStore::new(10)),
        Box::new(SqliteStore::open(dir.db()).unwrap()),
    ];
    if let Some(pg) = postgres_store("e2e", 0) {
        stores.push(Box::new(pg));
    }
    for store in &stores {
        // The merchant path: verify (with the clock, so expired mandates never reach the
        // store), then record, then serve.
        let present = |h: &str| {
            let verified = verifier.verify_header(h, Some(NOW))?;
            store.check_and_insert(&ReplayKey::of(&verified), NOW)
        };
        let first = header(1000);
        assert_eq!(present(&first), Ok(()));
        assert_eq!(present(&first).unwrap_err().code(), "mandate_replayed");
        // The payer signs a second mandate with the same nonce (a different amount).
        assert_eq!(present(&header(2000)).unwrap_err().code(), "nonce_reused");
        assert_eq!(store.len().unwrap(), 1);
    }
}

/// A purge run by one instance whose clock is ahead must not let another instance, or the same
/// one after its clock steps back, accept a forgotten mandate again: the purge leaves a
/// high-water mark below which keys are refused.
#[test]
fn purge_with_a_clock_ahead_never_reopens_replay() {
    let dir = TempDir::new("clock-skew");
    let opts = SqliteOptions {
        retention: 30,
        ..SqliteOptions::default()
    };
    let a = SqliteStore::open_with(dir.db(), &opts).unwrap();
    let b = SqliteStore::open_with(dir.db(), &opts).unwrap();
    let k = key(1, 0, NOW + 10);
    b.check_and_insert(&k, NOW).unwrap();
    // A's clock runs 5 s ahead of B's: at B's NOW + 38 it purges at NOW + 43.
    assert_eq!(a.purge(NOW + 43).unwrap(), 1);
    // B still considers the mandate acceptable by its own clock (deadline + 30 >= NOW + 38).
    assert_eq!(reason(b.check_and_insert(&k, NOW + 38)), Some(Reason::Expired));
    // The same holds after reopening: the mark is durable.
    drop((a, b));
    let c = SqliteStore::open_with(dir.db(), &opts).unwrap();
    assert_eq!(reason(c.check_and_insert(&k, NOW + 38)), Some(Reason::Expired));
    // A key above the mark is unaffected.
    c.check_and_insert(&key(2, 0, NOW + 600), NOW + 38).unwrap();

    // The memory store, purging when full at a clock that jumped ahead and came back.
    let m = MemoryStore::new(1);
    m.check_and_insert(&k, NOW).unwrap();
    m.check_and_insert(&key(3, 0, NOW + 5000), NOW + 1000).unwrap(); // full: purges k at NOW + 1000
    assert_eq!(m.len().unwrap(), 1);
    assert_eq!(reason(m.check_and_insert(&k, NOW)), Some(Reason::Expired));
}

/// The same on Postgres: two handles on one schema are two payee processes, one of them with a
/// clock ahead; the horizon is in the database, so it holds for every handle and after reopening.
#[test]
fn postgres_purge_with_a_clock_ahead_never_reopens_replay() {
    let Some(url) = postgres_url("clock_skew") else { return };
    let a = open_postgres(&url, 30);
    let b = open_postgres(&url, 30);
    let k = key(1, 0, NOW + 10);
    b.check_and_insert(&k, NOW).unwrap();
    assert_eq!(a.purge(NOW + 43).unwrap(), 1);
    assert_eq!(reason(b.check_and_insert(&k, NOW + 38)), Some(Reason::Expired));
    // Another mandate with the purged nonce key, as B's clock sees it: refused too.
    assert_eq!(
        reason(b.check_and_insert(&key(1, 1, NOW + 10), NOW + 38)),
        Some(Reason::Expired)
    );
    drop((a, b));
    let c = open_postgres(&url, 30);
    assert_eq!(reason(c.check_and_insert(&k, NOW + 38)), Some(Reason::Expired));
    c.check_and_insert(&key(2, 0, NOW + 600), NOW + 38).unwrap();
    assert_eq!(c.len().unwrap(), 1);
}

#[test]
fn postgres_entries_persist_across_reopen_and_handles_share_them() {
    let Some(url) = postgres_url("reopen") else { return };
    {
        let store = open_postgres(&url, 0);
        for n in 0..10 {
            store.check_and_insert(&key(n, 0, NOW + 60), NOW).unwrap();
        }
    }
    let store = open_postgres(&url, 0);
    let other = open_postgres(&url, 0);
    assert_eq!(store.len().unwrap(), 10);
    for n in 0..10 {
        assert_eq!(
            reason(store.check_and_insert(&key(n, 0, NOW + 60), NOW)),
            Some(Reason::MandateReplayed)
        );
        assert_eq!(
            reason(other.check_and_insert(&key(n, 1, NOW + 60), NOW)),
            Some(Reason::NonceReused)
        );
    }
    other.check_and_insert(&key(10, 0, NOW + 60), NOW).unwrap();
    assert_eq!(store.len().unwrap(), 11);
}

#[test]
fn postgres_refuses_schemas_of_other_stores_urls_that_are_not_postgres_and_absent_servers() {
    use aep2_replay::db::{Db, DbOptions, Kind, Location};
    use aep2_replay::{PostgresStore, PostgresStoreOptions};
    let err = PostgresStore::open("replay.sqlite").unwrap_err();
    assert_eq!(err.code(), "replay_store_unavailable");
    assert!(err.detail().contains("not a postgres:// URL"), "{err}");
    // Nothing listens on port 1: fails closed, fast, and the password is not in the message.
    let options = PostgresStoreOptions {
        db: DbOptions {
            busy_timeout: Duration::from_millis(500),
            ..DbOptions::default()
        },
        ..PostgresStoreOptions::default()
    };
    let err = PostgresStore::open_with("postgres://aep2:hunter2@127.0.0.1:1/postgres", &options).unwrap_err();
    assert_eq!(err.code(), "replay_store_unavailable");
    assert!(!err.detail().contains("hunter2"), "{err}");
    let Some(url) = postgres_url("foreign") else { return };
    // A schema that holds another AEP2 store.
    let other = Kind {
        sqlite: aep2_replay::sqlite_file::FileKind {
            name: "other store",
            application_id: 0x6f74_6872,
            schema_version: 1,
            schema: "",
            migrations: &[],
        },
        pg_namespace: "unused",
        pg_schema: "CREATE TABLE orders (id BIGINT PRIMARY KEY);",
        pg_migrations: &[],
    };
    drop(Db::open(&Location::parse(&url), &DbOptions::default(), &other).unwrap());
    let err = PostgresStore::open(&url).unwrap_err();
    assert_eq!(err.code(), "replay_store_unavailable");
    assert!(err.detail().contains("not an AEP2 replay database"), "{err}");
    // A replay store of a later version than this build reads.
    let Some(url) = postgres_url("future") else { return };
    drop(PostgresStore::open(&url).unwrap());
    Raw::connect(&url).run(&format!(
        "UPDATE {}.aep2_store SET version = 99",
        url.split_once("?schema=").unwrap().1
    ));
    let err = PostgresStore::open(&url).unwrap_err();
    assert_eq!(err.code(), "replay_store_unavailable");
    assert!(err.detail().contains("schema version 99"), "{err}");
}

/// Another payee holds the row of a mandate (its insert is not committed yet): a presentation of
/// the same mandate waits for it up to the busy timeout, then fails closed having recorded
/// nothing; a different mandate is not delayed at all, since no store-wide lock is taken.
#[test]
fn postgres_row_lock_held_past_the_timeout_fails_closed_and_records_nothing() {
    use aep2_replay::{PostgresStore, PostgresStoreOptions};
    let Some(url) = postgres_url("busy") else { return };
    let options = PostgresStoreOptions {
        db: aep2_replay::db::DbOptions {
            busy_timeout: Duration::from_millis(300),
            ..aep2_replay::db::DbOptions::default()
        },
        ..PostgresStoreOptions::default()
    };
    let store = PostgresStore::open_with(&url, &options).unwrap();
    let k = key(1, 0, NOW + 60);
    let raw = Raw::connect(&url);
    raw.run(&format!(
        "BEGIN; INSERT INTO {}.replay (mandate_id, nonce_key, deadline) VALUES ('{}', '{}', 1)",
        raw.schema,
        bytea(&k.mandate_id),
        bytea(&k.nonce_key)
    ));
    let started = Instant::now();
    let err = store.check_and_insert(&k, NOW).unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.reason(), Reason::ReplayStoreUnavailable, "{err}");
    assert!(waited >= Duration::from_millis(250), "waited only {waited:?}");
    // Other mandates go through meanwhile.
    let started = Instant::now();
    store.check_and_insert(&key(2, 0, NOW + 60), NOW).unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    raw.run("ROLLBACK");
    // The lock is gone and the failed call recorded nothing: the mandate is accepted once.
    store.check_and_insert(&k, NOW).unwrap();
    assert_eq!(reason(store.check_and_insert(&k, NOW)), Some(Reason::MandateReplayed));
}

/// A plain connection to the test server, as another process would hold one, with the store's
/// schema name.
struct Raw {
    client: Option<tokio_postgres::Client>,
    driver: Option<std::thread::JoinHandle<()>>,
    schema: String,
}

impl Raw {
    fn connect(url: &str) -> Raw {
        let (base, schema) = url.split_once("?schema=").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (client, connection) = rt
            .block_on(tokio_postgres::connect(base, tokio_postgres::NoTls))
            .unwrap();
        let driver = std::thread::spawn(move || {
            let _ = rt.block_on(connection);
        });
        Raw {
            client: Some(client),
            driver: Some(driver),
            schema: schema.to_owned(),
        }
    }

    fn run(&self, sql: &str) {
        futures_executor::block_on(self.client.as_ref().unwrap().batch_execute(sql)).unwrap();
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // Closing the client ends the connection task, and with it the driver thread.
        drop(self.client.take());
        if let Some(d) = self.driver.take() {
            let _ = d.join();
        }
    }
}

/// A `bytea` literal.
fn bytea(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("\\x{hex}")
}

/// The interleaving the Postgres store is built for: a purge (of another payee, whose clock is
/// ahead) has deleted a mandate's entry and raised the horizon but not committed yet, when the
/// mandate is presented again. The insert waits for the purge at the unique key; once the purge
/// commits, the insert goes through, and the horizon read after it refuses the mandate. Read
/// before the insert, the horizon would still be the old one and the mandate accepted twice.
#[test]
fn postgres_an_insert_that_waited_for_a_purge_is_refused_by_its_horizon() {
    use aep2_replay::PaymentStore;
    let Some(url) = postgres_url("purge_wait") else { return };
    let store = std::sync::Arc::new(open_postgres(&url, 0));
    let k = key(1, 0, NOW + 10);
    let j = key(2, 0, NOW + 10);
    store.check_and_insert(&k, NOW).unwrap();
    store.check_and_insert(&j, NOW).unwrap();
    let raw = Raw::connect(&url);
    raw.run(&format!(
        "BEGIN; UPDATE {s}.meta SET value = GREATEST(value, {h}) WHERE name = 'purged_below'; \
         DELETE FROM {s}.replay WHERE deadline < {h}",
        s = raw.schema,
        h = NOW + 20
    ));
    // Presented again, by a payee whose clock says the mandates are still valid: one by the plain
    // replay check, the other by the payment path.
    let again = {
        let store = std::sync::Arc::clone(&store);
        std::thread::spawn(move || store.check_and_insert(&k, NOW))
    };
    let begun = {
        let store = std::sync::Arc::clone(&store);
        std::thread::spawn(move || {
            let p = aep2_replay::Presentation {
                request: [1; 32],
                submission_id: [2; 16],
                token: [3; 16],
                lease: 10,
            };
            store.begin(&j, &p, NOW).map(|_| ())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !again.is_finished() && !begun.is_finished(),
        "both wait for the purge at the unique key"
    );
    raw.run("COMMIT");
    assert_eq!(reason(again.join().unwrap()), Some(Reason::Expired));
    assert_eq!(reason(begun.join().unwrap()), Some(Reason::Expired));
    assert!(store.is_empty().unwrap(), "nothing recorded");
}
