//! The durable SQLite store.

use crate::sqlite_file::{self, FileKind, to_sql_int};
use crate::{ReplayKey, ReplayStore, check_not_expired, check_not_forgotten, cutoff};
use aep2::{Error, Reason};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The schema. Keys are the raw 32-byte values; `deadline` is unix seconds, clamped to
/// `i64::MAX` (SQLite integers are signed; a clamped entry is only ever kept longer).
const SCHEMA: &str = "
CREATE TABLE replay (
    mandate_id BLOB NOT NULL PRIMARY KEY CHECK (length(mandate_id) = 32),
    nonce_key BLOB NOT NULL UNIQUE CHECK (length(nonce_key) = 32),
    deadline INTEGER NOT NULL CHECK (deadline >= 0)
) STRICT, WITHOUT ROWID;
CREATE INDEX replay_deadline ON replay (deadline);
CREATE TABLE meta (
    name TEXT NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO meta (name, value) VALUES ('purged_below', 0);
";

/// What a replay database file is.
const KIND: FileKind = FileKind {
    name: "replay database",
    application_id: SqliteStore::APPLICATION_ID,
    schema_version: SqliteStore::SCHEMA_VERSION,
    schema: SCHEMA,
};

const INSERT: &str = "INSERT INTO replay (mandate_id, nonce_key, deadline) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
const HAS_ID: &str = "SELECT 1 FROM replay WHERE mandate_id = ?1";
const HAS_NONCE: &str = "SELECT 1 FROM replay WHERE nonce_key = ?1";
/// Purges in batches so that other processes never wait long for the write lock.
const PURGE_BATCH: &str =
    "DELETE FROM replay WHERE mandate_id IN (SELECT mandate_id FROM replay WHERE deadline < ?1 LIMIT ?2)";
const PURGE_BATCH_SIZE: usize = 10_000;
/// The purge high-water mark: entries with a deadline below it may have been deleted.
const PURGED_BELOW: &str = "SELECT value FROM meta WHERE name = 'purged_below'";
const RAISE_PURGED_BELOW: &str = "UPDATE meta SET value = max(value, ?1) WHERE name = 'purged_below'";

/// Settings of a [`SqliteStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How long a call waits for another connection (thread or process) to release the write
    /// lock before failing with `replay_store_unavailable`. Default 5 s.
    pub busy_timeout: Duration,
    /// Seconds an entry is kept after its deadline (see the crate docs). Default 0.
    pub retention: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            retention: 0,
        }
    }
}

/// A durable replay store in a SQLite database file, safe to share across threads and processes.
///
/// **Atomicity.** Each [`check_and_insert`](ReplayStore::check_and_insert) runs in one
/// `BEGIN IMMEDIATE` transaction: it takes the database's single write lock first, then
/// inserts the row, which the `PRIMARY KEY (mandate_id)` and `UNIQUE (nonce_key)` constraints
/// refuse if either key is present, and on a refusal reads which key it was, still inside the
/// transaction. Any number of connections, in this process or others, are serialised by that
/// lock, so of two payee processes presented the same mandate exactly one commits. Taking the
/// write lock up front matters under WAL: a transaction that starts as a reader and later
/// writes fails with `SQLITE_BUSY_SNAPSHOT` without waiting when another writer got in first.
///
/// **Durability.** The database runs in WAL mode with `synchronous=FULL`: every commit appends
/// to the write-ahead log and fsyncs it before `check_and_insert` returns `Ok`, so an accepted
/// mandate stays recorded through a process crash, an OS crash or a power cut (if the storage
/// honours fsync). With `synchronous=NORMAL` the log is synced only at checkpoints and a power
/// cut could forget the last acceptances, letting those mandates be accepted again.
///
/// **Threads.** One connection behind a mutex: SQLite admits one writer per database at a time
/// and every `check_and_insert` writes, so more connections in the same process would only wait
/// for each other through the busy handler's sleep-and-retry instead of a mutex hand-off, and
/// each commit is one fsync either way. Several `SqliteStore`s (or processes) on one file are
/// equally correct; they contend through SQLite's file locks, waiting up to
/// [`SqliteOptions::busy_timeout`].
///
/// **Scope.** All processes must be on one host with a local filesystem: WAL coordinates
/// through a shared-memory file next to the database (`<file>-shm`), which network
/// filesystems do not support. The database must be used only through this type (its
/// `application_id` and `user_version` are checked on open). Call
/// [`purge`](ReplayStore::purge) periodically (e.g. every minute) to bound the file's size.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    retention: u64,
}

impl SqliteStore {
    /// The `PRAGMA application_id` that marks a replay database: "AEP2" in ASCII.
    pub const APPLICATION_ID: i32 = 0x4145_5032;

    /// The `PRAGMA user_version` of the schema this build creates and reads.
    pub const SCHEMA_VERSION: i32 = 2;

    /// Opens (creating if needed) the replay database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, Error> {
        SqliteStore::open_with(path, &SqliteOptions::default())
    }

    /// Opens (creating if needed) the replay database at `path`.
    ///
    /// Fails with `replay_store_unavailable` if the file cannot be opened or created, is not a
    /// SQLite database, is a SQLite database of something else, or cannot use WAL.
    pub fn open_with(path: impl AsRef<Path>, options: &SqliteOptions) -> Result<SqliteStore, Error> {
        let conn = sqlite_file::open(path.as_ref(), options.busy_timeout, &KIND)?;
        Ok(SqliteStore::with(conn, options))
    }

    /// A private in-memory database with default options (for tests: not durable, not shared
    /// with any other connection).
    pub fn open_in_memory() -> Result<SqliteStore, Error> {
        SqliteStore::open_in_memory_with(&SqliteOptions::default())
    }

    /// A private in-memory database (for tests: not durable, not shared with any other
    /// connection).
    pub fn open_in_memory_with(options: &SqliteOptions) -> Result<SqliteStore, Error> {
        let conn = sqlite_file::open_in_memory(options.busy_timeout, &KIND)?;
        Ok(SqliteStore::with(conn, options))
    }

    fn with(conn: Connection, options: &SqliteOptions) -> SqliteStore {
        SqliteStore {
            conn: Mutex::new(conn),
            retention: options.retention,
        }
    }

    /// The retention in seconds.
    pub fn retention(&self) -> u64 {
        self.retention
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held unwound through the transaction's drop, which rolls
        // it back; the connection is usable (and a transaction left open is rolled back below).
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if !conn.is_autocommit() {
            // Best effort: if this fails, the next BEGIN fails and the caller gets an error.
            let _ = conn.execute_batch("ROLLBACK");
        }
        conn
    }
}

impl ReplayStore for SqliteStore {
    fn check_and_insert(&self, key: &ReplayKey, now: u64) -> Result<(), Error> {
        check_not_expired(key, now, self.retention)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| unavailable("begin", &e))?;
        // Read under the write lock, so no purge can move it before this insert commits.
        let purged_below: i64 = tx
            .prepare_cached(PURGED_BELOW)
            .and_then(|mut s| s.query_row([], |row| row.get(0)))
            .map_err(|e| unavailable("read the purge horizon", &e))?;
        let inserted = tx
            .prepare_cached(INSERT)
            .and_then(|mut s| s.execute(params![key.mandate_id, key.nonce_key, to_sql_int(key.deadline)]))
            .map_err(|e| unavailable("insert", &e))?;
        if inserted == 1 {
            if to_sql_int(key.deadline) < purged_below {
                // Dropping `tx` rolls the insert back.
                return check_not_forgotten(key, u64::try_from(purged_below).unwrap_or(u64::MAX));
            }
            return tx.commit().map_err(|e| unavailable("commit", &e));
        }
        // A uniqueness constraint refused the row: find out which, in the same transaction.
        // Dropping `tx` rolls back (nothing was written).
        let exists = |sql: &str, k: &[u8; 32]| {
            tx.prepare_cached(sql)
                .and_then(|mut s| s.query_row([k], |_| Ok(())).optional())
                .map(|row| row.is_some())
                .map_err(|e| unavailable("look up the conflicting key", &e))
        };
        if exists(HAS_ID, &key.mandate_id)? {
            Err(Error::new(Reason::MandateReplayed, "mandate id already recorded"))
        } else if exists(HAS_NONCE, &key.nonce_key)? {
            Err(Error::new(
                Reason::NonceReused,
                "another mandate with this nonce key is already recorded",
            ))
        } else {
            Err(Error::new(
                Reason::ReplayStoreUnavailable,
                "insert refused without a conflicting key",
            ))
        }
    }

    fn purge(&self, now: u64) -> Result<usize, Error> {
        let cutoff = to_sql_int(cutoff(now, self.retention));
        let batch = i64::try_from(PURGE_BATCH_SIZE).unwrap_or(i64::MAX);
        let mut total = 0;
        loop {
            // One transaction per batch: the high-water mark rises with the deletions it covers,
            // and the connection (and the write lock) is released between batches.
            let mut conn = self.conn();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| unavailable("purge: begin", &e))?;
            let removed = tx
                .prepare_cached(RAISE_PURGED_BELOW)
                .and_then(|mut s| s.execute([cutoff]))
                .and_then(|_| tx.prepare_cached(PURGE_BATCH)?.execute(params![cutoff, batch]))
                .map_err(|e| unavailable("purge", &e))?;
            tx.commit().map_err(|e| unavailable("purge: commit", &e))?;
            total += removed;
            if removed < PURGE_BATCH_SIZE {
                return Ok(total);
            }
        }
    }

    fn len(&self) -> Result<usize, Error> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM replay", [], |row| row.get(0))
            .map_err(|e| unavailable("count", &e))?;
        usize::try_from(n).map_err(|_| Error::new(Reason::ReplayStoreUnavailable, "count out of range"))
    }
}

/// Maps a SQLite failure to `replay_store_unavailable`, naming the step and the cause.
fn unavailable(step: &str, e: &rusqlite::Error) -> Error {
    sqlite_file::unavailable(KIND.name, step, e)
}
