//! Concurrency: many threads, and several processes, race to record the same mandates; every
//! mandate must be accepted exactly once in total, and every refusal must carry the right code.
//!
//! The process race re-executes this test binary (`std::env::current_exe`) as child processes
//! that run the ignored test `race_child` with [`CHILD_ENV`] set; each child prints one line per
//! attempt and the parent tallies them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aep2::Reason;
use aep2_replay::{MemoryStore, ReplayStore, SqliteStore};
use common::{NOW, TempDir, key};
use std::collections::BTreeMap;
use std::fs::File;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Set (to the database path) in a child process of the process race.
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
    let exe = std::env::current_exe().unwrap();
    let start_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 1000;
    let started = Instant::now();
    let mut children = Vec::new();
    for p in 0..PROCESSES {
        let out = dir.path().join(format!("child-{p}.out"));
        let err = dir.path().join(format!("child-{p}.err"));
        let child = Command::new(&exe)
            .args(["race_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &db)
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
        "sqlite, {PROCESSES} processes x {THREADS_PER_PROCESS} threads ({STORES_PER_PROCESS} connections each) x {KEYS} keys in {:?}: {accepted} accepted, {replayed} mandate_replayed, {reused} nonce_reused, {unavailable} unavailable",
        started.elapsed()
    );
    assert_eq!(accepted, KEYS as usize);
    check_final_state(&SqliteStore::open(&db).unwrap());
}

/// The child role of [`processes_race_on_one_sqlite_file`]; does nothing unless [`CHILD_ENV`]
/// is set (ignored so that a plain `cargo test` does not list it as a pass).
#[test]
#[ignore = "child process of processes_race_on_one_sqlite_file"]
fn race_child() {
    let Some(db) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let index: usize = std::env::var(CHILD_INDEX_ENV).unwrap().parse().unwrap();
    let start_ms: u128 = std::env::var(CHILD_START_ENV).unwrap().parse().unwrap();
    // Start together: the children also race to create the database and switch it to WAL.
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    if let Some(wait) = start_ms.checked_sub(now_ms) {
        std::thread::sleep(Duration::from_millis(wait.min(5000) as u64));
    }
    let stores: Vec<Arc<dyn ReplayStore>> = (0..STORES_PER_PROCESS)
        .map(|_| Arc::new(SqliteStore::open(&db).unwrap()) as Arc<dyn ReplayStore>)
        .collect();
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
