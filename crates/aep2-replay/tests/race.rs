//! Concurrency: many threads, and several processes, race to record the same mandates; every
//! mandate must be accepted exactly once in total, and every refusal must carry the right code.
//! Each race runs on SQLite and, when `AEP2_TEST_POSTGRES` names a server, on Postgres through
//! several handles (separate pools, as separate payee processes have); the payment race serves
//! each mandate once, and the purge race with clocks apart never accepts a mandate twice.
//!
//! The process race re-executes this test binary (`std::env::current_exe`) as child processes
//! that run the ignored test `race_child` with [`CHILD_ENV`] set; each child prints one line per
//! attempt and the parent tallies them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aep2::Reason;
use aep2_replay::db::Location;
use aep2_replay::{Begun, MemoryStore, PaymentStore, Presentation, ReplayStore, SqliteOptions, SqliteStore};
use common::{NOW, TempDir, key, open_postgres, postgres_url};
use std::collections::BTreeMap;
use std::fs::File;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Set (to the database path or Postgres URL) in a child process of the process race.
const CHILD_ENV: &str = "AEP2_REPLAY_RACE_CHILD";
/// The child's index (selects its key orders and mandate variants).
const CHILD_INDEX_ENV: &str = "AEP2_REPLAY_RACE_INDEX";
/// Unix milliseconds at which the children start hammering (so that they overlap).
const CHILD_START_ENV: &str = "AEP2_REPLAY_RACE_START";

/// Keys raced over, in every race.
const KEYS: u32 = 300;
/// Child processes in the process race, threads in each, connections (stores) in each.
const PROCESSES: usize = 3;
const THREADS_PER_PROCESS: usize = 4;
const STORES_PER_PROCESS: usize = 2;
/// No race may run longer than this; a thread past it stops and the test fails.
const TIME_LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Attempt {
    key: u32,
    variant: u8,
    /// `None` for accepted, else the reason code.
    outcome: Option<Reason>,
}

/// The order in which racer `racer` visits the keys: rotated by a racer-specific offset and
/// reversed for odd racers, so racers collide on the same keys at different times.
fn order(racer: usize) -> Vec<u32> {
    let offset = (racer as u32).wrapping_mul(KEYS / 7 + 13) % KEYS;
    let mut keys: Vec<u32> = (0..KEYS).map(|i| (i + offset) % KEYS).collect();
    if racer % 2 == 1 {
        keys.reverse();
    }
    keys
}

/// Runs `threads` racers over all keys against `stores` (racer `t` uses `stores[t % len]`).
/// Racer `t` presents mandate variant `(first_racer + t) % 2` of each key, so about half the
/// refusals are `mandate_replayed` (same mandate) and half `nonce_reused` (other mandate, same
/// nonce key).
fn race(stores: &[Arc<dyn ReplayStore>], threads: usize, first_racer: usize, start: Instant) -> Vec<Attempt> {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(&stores[t % stores.len()]);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let racer = first_racer + t;
                let variant = (racer % 2) as u8;
                barrier.wait();
                let mut attempts = Vec::with_capacity(KEYS as usize);
                for k in order(racer) {
                    if start.elapsed() > TIME_LIMIT {
                        break;
                    }
                    let outcome = store.check_and_insert(&key(k, variant, NOW + 3600), NOW).err();
                    attempts.push(Attempt {
                        key: k,
                        variant,
                        outcome: outcome.map(|e| e.reason()),
                    });
                }
                attempts
            })
        })
        .collect();
    handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
}

/// Checks a race's attempts: every key accepted exactly once, every refusal of the accepted
/// mandate `mandate_replayed`, every refusal of the other mandate `nonce_reused`. Returns
/// (accepted, replayed, nonce reused, unavailable).
fn tally(attempts: &[Attempt], racers: usize) -> (usize, usize, usize, usize) {
    assert_eq!(
        attempts.len(),
        racers * KEYS as usize,
        "every racer attempted every key within the time limit"
    );
    let mut winner: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for a in attempts.iter().filter(|a| a.outcome.is_none()) {
        winner.entry(a.key).or_default().push(a.variant);
    }
    for k in 0..KEYS {
        let w = winner.get(&k).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(w.len(), 1, "key {k} accepted {} times (variants {w:?})", w.len());
    }
    let (mut replayed, mut reused, mut unavailable) = (0, 0, 0);
    for a in attempts {
        let accepted_variant = winner[&a.key][0];
        match a.outcome {
            None => {}
            Some(Reason::MandateReplayed) if a.variant == accepted_variant => replayed += 1,
            Some(Reason::NonceReused) if a.variant != accepted_variant => reused += 1,
            // Fail closed under contention is allowed (not recorded, not accepted) but counted.
            Some(Reason::ReplayStoreUnavailable) => unavailable += 1,
            Some(other) => panic!("{a:?}: wrong code {other} (accepted variant {accepted_variant})"),
        }
    }
    (winner.len(), replayed, reused, unavailable)
}

fn check_final_state(store: &dyn ReplayStore) {
    assert_eq!(store.len().unwrap(), KEYS as usize, "exactly one entry per key");
}

#[test]
fn threads_race_on_one_memory_store() {
    let store: Arc<dyn ReplayStore> = Arc::new(MemoryStore::new(KEYS as usize));
    let threads = 8;
    let attempts = race(&[Arc::clone(&store)], threads, 0, Instant::now());
    let (accepted, replayed, reused, unavailable) = tally(&attempts, threads);
    eprintln!(
        "memory, {threads} threads x {KEYS} keys: {accepted} accepted, {replayed} mandate_replayed, {reused} nonce_reused, {unavailable} unavailable"
    );
    assert_eq!(accepted, KEYS as usize);
    assert_eq!(unavailable, 0, "capacity is exactly KEYS: no key needs more");
    check_final_state(&*store);
}

#[test]
fn threads_race_on_one_sqlite_file_through_one_and_many_connections() {
    let dir = TempDir::new("threads");
    let threads = 8;
    // Half the threads share one store (one connection behind its mutex); the others each
    // open their own connection to the same file and meet the first half only at SQLite's lock.
    let shared: Arc<dyn ReplayStore> = Arc::new(SqliteStore::open(dir.db()).unwrap());
    let stores: Vec<Arc<dyn ReplayStore>> = (0..threads)
        .map(|t| {
            if t % 2 == 0 {
                Arc::clone(&shared)
            } else {
                Arc::new(SqliteStore::open(dir.db()).unwrap()) as Arc<dyn ReplayStore>
            }
        })
        .collect();
    let started = Instant::now();
    let attempts = race(&stores, threads, 0, started);
    let (accepted, replayed, reused, unavailable) = tally(&attempts, threads);
    eprintln!(
        "sqlite, {threads} threads (5 connections) x {KEYS} keys in {:?}: {accepted} accepted, {replayed} mandate_replayed, {reused} nonce_reused, {unavailable} unavailable",
        started.elapsed()
    );
    assert_eq!(accepted, KEYS as usize);
    check_final_state(&*shared);
}

#[test]
fn threads_race_on_one_postgres_schema_through_two_handles() {
    let Some(url) = postgres_url("threads") else { return };
    let threads = 8;
    // Two handles, each with its own pool, are two payee processes; their threads meet only at
    // the unique keys (no store-wide lock is taken).
    let a: Arc<dyn ReplayStore> = Arc::new(open_postgres(&url, 0));
    let b: Arc<dyn ReplayStore> = Arc::new(open_postgres(&url, 0));
    let started = Instant::now();
    let attempts = race(&[Arc::clone(&a), b], threads, 0, started);
    let (accepted, replayed, reused, unavailable) = tally(&attempts, threads);
    eprintln!(
        "postgres, {threads} threads (2 handles) x {KEYS} keys in {:?}: {accepted} accepted, {replayed} mandate_replayed, {reused} nonce_reused, {unavailable} unavailable",
        started.elapsed()
    );
    assert_eq!(accepted, KEYS as usize);
    check_final_state(&*a);
}

/// Every payment store as pairs of handles on one database (two payee processes); the memory
/// store is one handle twice.
fn payment_store_pairs(dir: &TempDir, retention: u64) -> Vec<(&'static str, [Arc<dyn PaymentStore>; 2])> {
    let memory: Arc<dyn PaymentStore> = Arc::new(MemoryStore::new(10 * KEYS as usize).with_retention(retention));
    let file = dir.path().join(format!("pair-{retention}.sqlite"));
    let opts = SqliteOptions {
        retention,
        ..SqliteOptions::default()
    };
    let sqlite = || Arc::new(SqliteStore::open_with(&file, &opts).unwrap()) as Arc<dyn PaymentStore>;
    let mut pairs = vec![
        ("memory", [Arc::clone(&memory), memory]),
        ("sqlite", [sqlite(), sqlite()]),
    ];
    if let Some(url) = postgres_url("pairs") {
        let pg = || Arc::new(open_postgres(&url, retention)) as Arc<dyn PaymentStore>;
        pairs.push(("postgres", [pg(), pg()]));
    }
    pairs
}

/// Racers present every mandate concurrently through both handles, as a payee does: `begin`,
/// then `served`, then `delivered`. Every mandate is served exactly once, and every other
/// presentation is refused with `payment_in_progress` or `mandate_replayed` (the same mandate)
/// or `nonce_reused` (another mandate with its nonce key).
#[test]
fn payments_race_through_two_handles_and_each_mandate_is_served_once() {
    let dir = TempDir::new("payments");
    let threads = 8;
    for (name, pair) in payment_store_pairs(&dir, 0) {
        let barrier = Arc::new(Barrier::new(threads));
        let started = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = Arc::clone(&pair[t % 2]);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let variant = (t % 2) as u8;
                    barrier.wait();
                    let mut outcomes = Vec::new();
                    for k in order(t) {
                        let mut token = [t as u8; 16];
                        token[1..5].copy_from_slice(&k.to_be_bytes());
                        let p = Presentation {
                            request: [k as u8; 32],
                            submission_id: token,
                            token,
                            lease: 60,
                        };
                        let outcome = match store.begin(&key(k, variant, NOW + 3600), &p, NOW) {
                            Ok(Begun::Fresh(claim)) => {
                                let served = store.served(&claim, "{}", NOW + 60, NOW).unwrap();
                                assert!(served, "{name}: a fresh claim could not record its serve");
                                assert!(store.delivered(&claim, NOW).unwrap(), "{name}");
                                None
                            }
                            Ok(other) => panic!("{name}: key {k}: resumed {other:?} though every claim is live"),
                            Err(e) => Some(e.reason()),
                        };
                        outcomes.push((k, variant, outcome));
                    }
                    outcomes
                })
            })
            .collect();
        let outcomes: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let mut served: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        for (k, v, _) in outcomes.iter().filter(|o| o.2.is_none()) {
            served.entry(*k).or_default().push(*v);
        }
        for k in 0..KEYS {
            let s = served.get(&k).map(Vec::as_slice).unwrap_or(&[]);
            assert_eq!(s.len(), 1, "{name}: key {k} served {} times", s.len());
        }
        let mut unavailable = 0;
        for (k, v, outcome) in &outcomes {
            let winner = served[k][0];
            match outcome {
                None => {}
                Some(Reason::PaymentInProgress | Reason::MandateReplayed) if *v == winner => {}
                Some(Reason::NonceReused) if *v != winner => {}
                Some(Reason::ReplayStoreUnavailable) => unavailable += 1,
                Some(other) => panic!("{name}: key {k} variant {v}: {other} (served variant {winner})"),
            }
        }
        eprintln!(
            "{name}: {threads} threads x {KEYS} payments through two handles in {:?}: {} served, {unavailable} unavailable",
            started.elapsed(),
            served.len()
        );
        let store = &pair[0];
        assert_eq!(store.len().unwrap(), KEYS as usize, "{name}");
        assert_eq!(store.unfinished().unwrap(), 0, "{name}");
        for k in 0..KEYS {
            let variant = served[&k][0];
            let r = store.lookup(&key(k, variant, 0).mandate_id).unwrap().unwrap();
            assert_eq!(r.state, aep2_replay::PaymentState::Served, "{name}: key {k}");
            assert_eq!(r.claimed_until, 0, "{name}: key {k} delivered");
        }
    }
}

/// Purges and presentations race, through two handles whose clocks disagree: one handle purges
/// with a clock running ahead, one step at a time past every deadline, while racers present,
/// with a clock behind (to which every mandate is still valid), both the mandates accepted
/// before and new ones with deadlines in the purged range, by `check_and_insert` and `begin`.
/// Nothing accepted before is accepted again, and no new mandate more than once.
#[test]
fn purges_racing_presentations_with_clocks_apart_never_accept_a_mandate_twice() {
    const SPAN: u32 = 200;
    let dir = TempDir::new("purge-race");
    for (name, pair) in payment_store_pairs(&dir, 5) {
        // Accepted before the race: keys 0..SPAN, deadlines NOW .. NOW + SPAN.
        for k in 0..SPAN {
            pair[k as usize % 2]
                .check_and_insert(&key(k, 0, NOW + u64::from(k)), NOW)
                .unwrap();
        }
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let barrier = Arc::new(Barrier::new(4));
        let purger = {
            let (store, done, barrier) = (Arc::clone(&pair[0]), Arc::clone(&done), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let mut purged = 0;
                // The purger's clock is ahead: at its step j everything with a deadline below
                // NOW + j (retention 5) goes.
                for j in 0..=u64::from(SPAN) + 1 {
                    purged += store.purge(NOW + j + 5).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                purged
            })
        };
        let racers: Vec<_> = (0..3usize)
            .map(|r| {
                let (store, done, barrier) = (Arc::clone(&pair[(r + 1) % 2]), Arc::clone(&done), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut accepted: Vec<(u32, u8)> = Vec::new();
                    let mut refusals: BTreeMap<&'static str, usize> = BTreeMap::new();
                    let mut round = 0u32;
                    loop {
                        let last = done.load(std::sync::atomic::Ordering::SeqCst);
                        for k in order(r).into_iter().filter(|k| *k < SPAN) {
                            // The old mandate, another with its nonce key, and a new one (key
                            // SPAN + k) with the same deadline: all valid by the racer's clock.
                            let deadline = NOW + u64::from(k);
                            for (n, variant) in [(k, 0), (k, 1), (SPAN + k, (r % 2) as u8)] {
                                let rk = key(n, variant, deadline);
                                let outcome = if (k + round).is_multiple_of(2) {
                                    store.check_and_insert(&rk, NOW)
                                } else {
                                    let p = Presentation {
                                        request: [1; 32],
                                        submission_id: [r as u8; 16],
                                        token: [r as u8; 16],
                                        lease: 60,
                                    };
                                    store.begin(&rk, &p, NOW).map(|b| match b {
                                        Begun::Fresh(_) => {}
                                        Begun::Resumed { .. } => panic!("resumed {rk:?}: every claim is live"),
                                    })
                                };
                                match outcome {
                                    Ok(()) => accepted.push((n, variant)),
                                    Err(e) => *refusals.entry(e.reason().code()).or_default() += 1,
                                }
                            }
                        }
                        round += 1;
                        if last {
                            return (accepted, refusals, round);
                        }
                    }
                })
            })
            .collect();
        let purged = purger.join().unwrap();
        let mut accepted: BTreeMap<u32, usize> = BTreeMap::new();
        let mut refusals: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut rounds = 0;
        for h in racers {
            let (mine, refused, round) = h.join().unwrap();
            for (n, _) in mine {
                *accepted.entry(n).or_default() += 1;
            }
            for (code, count) in refused {
                *refusals.entry(code).or_default() += count;
            }
            rounds += round;
        }
        eprintln!(
            "{name}: purge race: {purged} purged, {} new mandates accepted, {rounds} rounds, refusals {refusals:?}",
            accepted.len()
        );
        for (n, times) in &accepted {
            assert!(
                *n >= SPAN,
                "{name}: mandate {n}, accepted before the race, was accepted again"
            );
            assert_eq!(*times, 1, "{name}: mandate {n} accepted {times} times");
        }
        assert!(
            refusals.get("expired").copied().unwrap_or(0) > 0,
            "{name}: the race reached purged keys"
        );
        assert!(!refusals.contains_key("replay_store_unavailable") || name != "memory");
    }
}

/// Payee processes starting together all open a database that does not exist yet. Switching a
/// new file to WAL makes SQLite answer `SQLITE_BUSY` at once, without the busy handler, to all
/// but one of them; the store must wait and retry rather than fail.
#[test]
fn simultaneous_first_opens_of_a_new_file_all_succeed() {
    let dir = TempDir::new("opens");
    let threads = 8;
    for round in 0..50 {
        let db = dir.path().join(format!("round-{round}.sqlite"));
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (db, barrier) = (db.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || -> Result<bool, String> {
                    barrier.wait();
                    let store = SqliteStore::open(&db).map_err(|e| format!("round {round} thread {t}: {e}"))?;
                    Ok(store.check_and_insert(&key(0, (t % 2) as u8, NOW + 60), NOW).is_ok())
                })
            })
            .collect();
        let accepted = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .filter(|&ok| ok)
            .count();
        assert_eq!(accepted, 1, "round {round}");
    }
}

#[test]
fn processes_race_on_one_sqlite_file() {
    let dir = TempDir::new("processes");
    let db = dir.db(); // not created yet: the children also race to create it
    processes_race(&dir, db.to_str().unwrap());
}

#[test]
fn processes_race_on_one_postgres_schema() {
    let Some(url) = postgres_url("processes") else { return };
    let dir = TempDir::new("pg-processes");
    // The schema does not exist yet: the children also race to create it.
    processes_race(&dir, &url);
}

/// Opens the store at `location` (a SQLite path or a Postgres URL).
fn open_at(location: &str) -> Arc<dyn ReplayStore> {
    match Location::parse(location) {
        Location::Postgres(url) => Arc::new(open_postgres(&url, 0)),
        Location::Sqlite(path) => Arc::new(SqliteStore::open(path).unwrap()),
    }
}

/// [`PROCESSES`] child processes, each with [`STORES_PER_PROCESS`] stores on `location`, race.
fn processes_race(dir: &TempDir, location: &str) {
    let exe = std::env::current_exe().unwrap();
    let start_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 1000;
    let started = Instant::now();
    let mut children = Vec::new();
    for p in 0..PROCESSES {
        let out = dir.path().join(format!("child-{p}.out"));
        let err = dir.path().join(format!("child-{p}.err"));
        let child = Command::new(&exe)
            .args(["race_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, location)
            .env(CHILD_INDEX_ENV, p.to_string())
            .env(CHILD_START_ENV, start_ms.to_string())
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        children.push((child, out, err));
    }
    // Wait for every child, bounded in time; a child still running then is killed.
    let mut statuses = [None; PROCESSES];
    while statuses.iter().any(Option::is_none) {
        for (p, (child, _, _)) in children.iter_mut().enumerate() {
            if statuses[p].is_none() {
                statuses[p] = child.try_wait().unwrap();
            }
        }
        if started.elapsed() > TIME_LIMIT + Duration::from_secs(30) {
            for (child, _, _) in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
            panic!("child processes did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut attempts = Vec::new();
    for (p, (_, out, err)) in children.iter().enumerate() {
        let stdout = std::fs::read_to_string(out).unwrap();
        let stderr = std::fs::read_to_string(err).unwrap();
        let status = statuses[p].unwrap();
        assert!(status.success(), "child {p} failed ({status}):\n{stdout}\n{stderr}");
        let mine: Vec<Attempt> = stdout.lines().filter_map(parse_attempt).collect();
        assert_eq!(
            mine.len(),
            THREADS_PER_PROCESS * KEYS as usize,
            "child {p} reported every attempt:\n{stdout}\n{stderr}"
        );
        let accepted = mine.iter().filter(|a| a.outcome.is_none()).count();
        eprintln!("child {p}: {accepted} accepted");
        attempts.extend(mine);
    }
    let (accepted, replayed, reused, unavailable) = tally(&attempts, PROCESSES * THREADS_PER_PROCESS);
    eprintln!(
        "{}, {PROCESSES} processes x {THREADS_PER_PROCESS} threads ({STORES_PER_PROCESS} stores each) x {KEYS} keys in {:?}: {accepted} accepted, {replayed} mandate_replayed, {reused} nonce_reused, {unavailable} unavailable",
        Location::parse(location).display(),
        started.elapsed()
    );
    assert_eq!(accepted, KEYS as usize);
    check_final_state(&*open_at(location));
}

/// The child role of [`processes_race`]; does nothing unless [`CHILD_ENV`] is set (ignored so
/// that a plain `cargo test` does not list it as a pass).
#[test]
#[ignore = "child process of processes_race_on_one_sqlite_file and processes_race_on_one_postgres_schema"]
fn race_child() {
    let Ok(location) = std::env::var(CHILD_ENV) else {
        return;
    };
    let index: usize = std::env::var(CHILD_INDEX_ENV).unwrap().parse().unwrap();
    let start_ms: u128 = std::env::var(CHILD_START_ENV).unwrap().parse().unwrap();
    // Start together: the children also race to create the database (SQLite: and switch it to
    // WAL; Postgres: its schema and tables).
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    if let Some(wait) = start_ms.checked_sub(now_ms) {
        std::thread::sleep(Duration::from_millis(wait.min(5000) as u64));
    }
    let stores: Vec<Arc<dyn ReplayStore>> = (0..STORES_PER_PROCESS).map(|_| open_at(&location)).collect();
    let attempts = race(
        &stores,
        THREADS_PER_PROCESS,
        index * THREADS_PER_PROCESS,
        Instant::now(),
    );
    // A leading newline: libtest may have printed "test race_child ... " without one.
    let mut out = String::from("\n");
    for a in &attempts {
        let outcome = a.outcome.map_or("accepted", Reason::code);
        out.push_str(&format!("attempt {} {} {outcome}\n", a.key, a.variant));
    }
    print!("{out}");
}

fn parse_attempt(line: &str) -> Option<Attempt> {
    let mut parts = line.strip_prefix("attempt ")?.split(' ');
    let key = parts.next()?.parse().ok()?;
    let variant = parts.next()?.parse().ok()?;
    let outcome = match parts.next()? {
        "accepted" => None,
        code => Some(Reason::from_code(code).unwrap_or_else(|| panic!("unknown code in {line:?}"))),
    };
    Some(Attempt { key, variant, outcome })
}
