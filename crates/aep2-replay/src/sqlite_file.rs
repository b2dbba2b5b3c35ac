//! Durable SQLite files shared by threads and processes: how every AEP2 database (the replay
//! store here, the settlement processor's ledger) is opened, waits for the write lock, and
//! reports failure. One place, so the durability and locking rules cannot drift apart.
//!
//! A file is opened read-write (created if missing) in WAL mode with `synchronous=FULL` (every
//! commit is on disk when it returns), and is identified by its `application_id`: a file of
//! another kind or schema version is refused rather than written.

use aep2::{Error, Reason};
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use std::path::Path;
use std::time::{Duration, Instant};

/// What a database file is: its name in messages, its `PRAGMA application_id` and
/// `user_version`, and the SQL that creates its schema.
#[derive(Clone, Copy, Debug)]
pub struct FileKind {
    /// Name in error messages ("replay store", "ledger").
    pub name: &'static str,
    /// `PRAGMA application_id` marking files of this kind.
    pub application_id: i32,
    /// `PRAGMA user_version` of the schema this build creates and reads.
    pub schema_version: i32,
    /// The schema, run once on a new file.
    pub schema: &'static str,
    /// Upgrades of older files, in order: `(version, sql)` turns a file of `version` into one of
    /// `version + 1`. A file older than the first listed version is refused.
    pub migrations: &'static [(i32, &'static str)],
}

/// Opens (creating if needed) the database file at `path` for `kind`.
///
/// Fails with `replay_store_unavailable` if the file cannot be opened or created, is not a
/// SQLite database, is a database of another kind or schema version, or cannot use WAL.
pub fn open(path: &Path, busy_timeout: Duration, kind: &FileKind) -> Result<Connection, Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| unavailable(kind.name, "open", &e))?;
    set_busy_timeout(&mut conn, busy_timeout, kind.name)?;
    // Switching a new database to WAL needs an exclusive lock, and when another process is doing
    // the same SQLite reports SQLITE_BUSY at once instead of calling the busy handler (it would
    // deadlock): retry until the busy timeout. An existing WAL database stays WAL.
    let mode: String = retry_busy(busy_timeout, || {
        conn.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
    })
    .map_err(|e| unavailable(kind.name, "set journal_mode=WAL", &e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::new(
            Reason::ReplayStoreUnavailable,
            format!("{}: journal_mode is {mode}, WAL is required", path.display()),
        ));
    }
    init(conn, kind)
}

/// [`open`], with `synchronous=OFF`: its commits survive a crash of the process (they are in the
/// operating system's cache, and later `FULL` commits of other connections sync the log they
/// share) but not a power cut. Only for records whose loss is safe and whose delay is not.
pub fn open_unsynced(path: &Path, busy_timeout: Duration, kind: &FileKind) -> Result<Connection, Error> {
    let conn = open(path, busy_timeout, kind)?;
    conn.pragma_update(None, "synchronous", "OFF")
        .map_err(|e| unavailable(kind.name, "set synchronous=OFF", &e))?;
    Ok(conn)
}

/// A private in-memory database of `kind` (for tests: not durable, not shared).
pub fn open_in_memory(busy_timeout: Duration, kind: &FileKind) -> Result<Connection, Error> {
    let mut conn = Connection::open_in_memory().map_err(|e| unavailable(kind.name, "open in memory", &e))?;
    set_busy_timeout(&mut conn, busy_timeout, kind.name)?;
    init(conn, kind)
}

fn init(mut conn: Connection, kind: &FileKind) -> Result<Connection, Error> {
    let name = kind.name;
    // fullfsync matters on macOS only, where fsync alone does not flush the drive's cache.
    conn.pragma_update(None, "synchronous", "FULL")
        .and_then(|()| conn.pragma_update(None, "fullfsync", true))
        .map_err(|e| unavailable(name, "set synchronous=FULL", &e))?;
    // Create the schema or check it, under the write lock, so that processes opening a new file
    // at the same time create it once.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| unavailable(name, "open: begin", &e))?;
    let read = |sql: &str| tx.query_row(sql, [], |row| row.get::<_, i64>(0));
    let app = read("PRAGMA application_id").map_err(|e| unavailable(name, "read application_id", &e))?;
    let version = read("PRAGMA user_version").map_err(|e| unavailable(name, "read user_version", &e))?;
    let objects = read("SELECT count(*) FROM sqlite_schema").map_err(|e| unavailable(name, "read schema", &e))?;
    if app == i64::from(kind.application_id) {
        let mut at = version;
        // Upgrades run in the same write transaction as the check: all of them or none.
        for (from, sql) in kind.migrations {
            if at == i64::from(*from) {
                tx.execute_batch(sql)
                    .map_err(|e| unavailable(name, &format!("migrate from version {from}"), &e))?;
                at += 1;
            }
        }
        if at != i64::from(kind.schema_version) {
            return Err(Error::new(
                Reason::ReplayStoreUnavailable,
                format!(
                    "{name} schema version {version}; this build reads {}",
                    kind.schema_version
                ),
            ));
        }
        if at != version {
            tx.pragma_update(None, "user_version", kind.schema_version)
                .map_err(|e| unavailable(name, "migrate: set user_version", &e))?;
        }
    } else if app == 0 && objects == 0 {
        tx.execute_batch(kind.schema)
            .and_then(|()| tx.pragma_update(None, "application_id", kind.application_id))
            .and_then(|()| tx.pragma_update(None, "user_version", kind.schema_version))
            .map_err(|e| unavailable(name, "create schema", &e))?;
    } else {
        return Err(Error::new(
            Reason::ReplayStoreUnavailable,
            format!("not an AEP2 {name} (application_id {app:#x}, {objects} schema objects)"),
        ));
    }
    tx.commit().map_err(|e| unavailable(name, "open: commit", &e))?;
    Ok(conn)
}

/// SQLite integers are `i64`; larger values clamp, which only ever keeps an entry longer
/// (deadlines and purge cutoffs both clamp, so `deadline < cutoff` never turns true early).
pub fn to_sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Installs the busy handler: how a connection waits for the write lock that another
/// connection (in this process or another) holds.
///
/// SQLite's own `busy_timeout` handler sleeps 1, 2, 5, 10, … up to 100 ms between attempts. The
/// write lock is free only in the gap between two transactions of its holder, a few
/// microseconds when that holder is busy, so a connection that sleeps 100 ms at a time is
/// starved by a busy peer and fails after the timeout although the database is healthy. This
/// handler polls every 50 µs at first, backing off to 1.6 ms, until `timeout` has passed since
/// the first refusal of this lock request.
fn set_busy_timeout(conn: &mut Connection, timeout: Duration, name: &str) -> Result<(), Error> {
    let mut first_refusal = Instant::now();
    conn.busy_handler(Some(move |count: i32| {
        if count <= 0 {
            first_refusal = Instant::now();
        }
        let waited = first_refusal.elapsed();
        if waited >= timeout {
            return false;
        }
        let shift = count.clamp(0, 5).unsigned_abs();
        std::thread::sleep(Duration::from_micros(50 << shift).min(timeout - waited));
        true
    }))
    .map_err(|e| unavailable(name, "set the busy handler", &e))
}

/// Runs `op` until it succeeds, fails other than with `SQLITE_BUSY`, or `timeout` has passed;
/// for the statements that report `SQLITE_BUSY` without calling the busy handler.
pub fn retry_busy<T>(timeout: Duration, mut op: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        match op() {
            Err(e) if is_busy(&e) && start.elapsed() < timeout => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

/// Whether `e` is SQLite's "the lock is held" (`SQLITE_BUSY` or `SQLITE_LOCKED`).
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Maps a SQLite failure to `replay_store_unavailable`, naming the database, the step and the
/// cause: a database that cannot record a mandate must not let it be accepted.
pub fn unavailable(name: &str, step: &str, e: &rusqlite::Error) -> Error {
    let cause = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "database locked by another connection past the busy timeout: "
        }
        Some(ErrorCode::NotADatabase) => "not a SQLite database: ",
        Some(ErrorCode::DiskFull) => "disk full: ",
        Some(ErrorCode::ReadOnly) => "read-only: ",
        Some(ErrorCode::CannotOpen) => "cannot open the file: ",
        _ => "",
    };
    Error::new(Reason::ReplayStoreUnavailable, format!("{name}: {step}: {cause}{e}"))
}
