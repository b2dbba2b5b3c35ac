//! The durable SQLite store.

use crate::db::Mode;
use crate::db::sqlite::SqliteDb;
use crate::payment::{self, Begun, Claim, PaymentRecord, PaymentState, PaymentStore, Presentation, UNFINISHED_GRACE};
use crate::sqlite_file::{self, FileKind, to_sql_int};
use crate::{ReplayKey, ReplayStore, check_not_expired, check_not_forgotten, cutoff};
use aep2::{Error, Reason};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The schema. Keys are the raw 32-byte values; `deadline` is unix seconds, clamped to
/// `i64::MAX` (SQLite integers are signed; a clamped entry is only ever kept longer).
const SCHEMA: &str = "
CREATE TABLE replay (
    mandate_id BLOB NOT NULL PRIMARY KEY CHECK (length(mandate_id) = 32),
    nonce_key BLOB NOT NULL UNIQUE CHECK (length(nonce_key) = 32),
    deadline INTEGER NOT NULL CHECK (deadline >= 0),
    state TEXT NOT NULL DEFAULT 'served' CHECK (state IN ('received', 'receipted', 'served', 'failed')),
    request BLOB CHECK (request IS NULL OR length(request) = 32),
    submission_id BLOB CHECK (submission_id IS NULL OR length(submission_id) = 16),
    receipt TEXT,
    failure TEXT,
    claim BLOB CHECK (claim IS NULL OR length(claim) = 16),
    claimed_until INTEGER NOT NULL DEFAULT 0,
    first_seen INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX replay_deadline ON replay (deadline);
CREATE INDEX replay_unfinished ON replay (state) WHERE state IN ('received', 'receipted');
CREATE TABLE meta (
    name TEXT NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO meta (name, value) VALUES ('purged_below', 0);
";

/// Version 2 (replay keys only) to 3 (payment state): existing records become final (`served`),
/// which is what they meant: accepted and handed to the route.
const MIGRATE_2_TO_3: &str = "
ALTER TABLE replay ADD COLUMN state TEXT NOT NULL DEFAULT 'served' CHECK (state IN ('received', 'receipted', 'served', 'failed'));
ALTER TABLE replay ADD COLUMN request BLOB CHECK (request IS NULL OR length(request) = 32);
ALTER TABLE replay ADD COLUMN submission_id BLOB CHECK (submission_id IS NULL OR length(submission_id) = 16);
ALTER TABLE replay ADD COLUMN receipt TEXT;
ALTER TABLE replay ADD COLUMN failure TEXT;
ALTER TABLE replay ADD COLUMN claim BLOB CHECK (claim IS NULL OR length(claim) = 16);
ALTER TABLE replay ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replay ADD COLUMN first_seen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replay ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX replay_unfinished ON replay (state) WHERE state IN ('received', 'receipted');
";

/// The delivery marks ([`PaymentStore::delivered`]), in a file of their own next to the store
/// (`<file>-delivered`): a mark must follow the delivery within microseconds, so it neither waits
/// for the store's write lock (held through every fsync of its commits) nor syncs. A mark names
/// the claim it ends, so a late mark of a presentation that lost its claim ends nothing.
const MARKS_SCHEMA: &str = "
CREATE TABLE delivered (
    mandate_id BLOB NOT NULL CHECK (length(mandate_id) = 32),
    claim BLOB NOT NULL CHECK (length(claim) = 16),
    PRIMARY KEY (mandate_id, claim)
) STRICT, WITHOUT ROWID;
";

/// What a delivery-marks file is.
const MARKS_KIND: FileKind = FileKind {
    name: "delivery marks",
    application_id: 0x4145_5064,
    schema_version: 1,
    schema: MARKS_SCHEMA,
    migrations: &[],
};

/// A mark, through the marks file's own connection (the store attached as `store`): only for
/// the claim that holds a served record.
const MARK: &str = "INSERT OR IGNORE INTO delivered (mandate_id, claim) SELECT ?1, ?2 WHERE EXISTS \
     (SELECT 1 FROM store.replay WHERE mandate_id = ?1 AND claim = ?2 AND state = 'served')";
/// The same through the store's connection (in-memory stores).
const MARK_HERE: &str = "INSERT OR IGNORE INTO marks.delivered (mandate_id, claim) SELECT ?1, ?2 WHERE EXISTS \
     (SELECT 1 FROM main.replay WHERE mandate_id = ?1 AND claim = ?2 AND state = 'served')";
const IS_MARKED: &str = "SELECT 1 FROM delivered WHERE mandate_id = ?1 AND claim = ?2";
const IS_MARKED_HERE: &str = "SELECT 1 FROM marks.delivered WHERE mandate_id = ?1 AND claim = ?2";
/// Marks to settle, through the marks connection, and the settling of one.
const MARKS_BATCH: &str = "SELECT mandate_id, claim FROM delivered LIMIT ?1";
const SETTLE_ONE: &str = "UPDATE replay SET claim = NULL, claimed_until = 0 \
     WHERE mandate_id = ?1 AND claim = ?2 AND state = 'served'";
const DROP_ONE: &str = "DELETE FROM delivered WHERE mandate_id = ?1 AND claim = ?2";
/// A marked record made final, and the marks no record needs any more (in-memory stores).
const SETTLE_MARKED: &str = "UPDATE replay SET claim = NULL, claimed_until = 0 WHERE claim IS NOT NULL \
     AND EXISTS (SELECT 1 FROM marks.delivered d WHERE d.mandate_id = replay.mandate_id AND d.claim = replay.claim)";
const DROP_MARKS: &str = "DELETE FROM marks.delivered WHERE NOT EXISTS (SELECT 1 FROM main.replay r \
     WHERE r.mandate_id = delivered.mandate_id AND r.claim = delivered.claim)";

/// What a replay database file is.
const KIND: FileKind = FileKind {
    name: "replay database",
    application_id: SqliteStore::APPLICATION_ID,
    schema_version: SqliteStore::SCHEMA_VERSION,
    schema: SCHEMA,
    migrations: &[(2, MIGRATE_2_TO_3)],
};

const INSERT: &str = "INSERT INTO replay (mandate_id, nonce_key, deadline) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
const HAS_ID: &str = "SELECT 1 FROM replay WHERE mandate_id = ?1";
const HAS_NONCE: &str = "SELECT 1 FROM replay WHERE nonce_key = ?1";
/// Purges in batches so that other processes never wait long for the write lock. Unfinished
/// records (owed a serve) stay [`UNFINISHED_GRACE`] longer.
const PURGE_BATCH: &str = "DELETE FROM replay WHERE mandate_id IN (SELECT mandate_id FROM replay \
     WHERE deadline < ?1 AND ((state NOT IN ('received', 'receipted') AND claim IS NULL) OR deadline < ?3) LIMIT ?2)";
const INSERT_PAYMENT: &str = "INSERT INTO replay (mandate_id, nonce_key, deadline, state, request, submission_id, \
     claim, claimed_until, first_seen, updated_at) VALUES (?1, ?2, ?3, 'received', ?4, ?5, ?6, ?7, ?8, ?8) \
     ON CONFLICT DO NOTHING";
const SELECT_PAYMENT: &str = "SELECT state, request, submission_id, receipt, failure, first_seen, claimed_until, claim \
     FROM replay WHERE mandate_id = ?1";
const TAKE: &str = "UPDATE replay SET claim = ?2, claimed_until = ?3, updated_at = ?4 WHERE mandate_id = ?1";
const SET_RECEIPTED: &str = "UPDATE replay SET state = 'receipted', receipt = ?3, updated_at = ?4 \
     WHERE mandate_id = ?1 AND claim = ?2 AND state = 'received'";
const SET_SERVED: &str = "UPDATE replay SET state = 'served', receipt = ?3, claimed_until = ?4, updated_at = ?5 \
     WHERE mandate_id = ?1 AND claim = ?2 AND state IN ('received', 'receipted', 'served')";
const SET_FAILED: &str = "UPDATE replay SET state = 'failed', failure = ?3, claim = NULL, claimed_until = 0, \
     updated_at = ?4 WHERE mandate_id = ?1 AND claim = ?2 AND state = 'received'";
/// A serve taken over and given up undelivered is owed again: it goes back to `receipted`.
const RELEASE: &str = "UPDATE replay SET state = CASE state WHEN 'served' THEN 'receipted' ELSE state END, \
     claim = NULL, claimed_until = 0, updated_at = ?3 WHERE mandate_id = ?1 AND claim = ?2";
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
/// **Durability.** The database runs in WAL mode and every commit (a group's, see *Threads*)
/// appends to the write-ahead log, which is fsynced before `check_and_insert` returns `Ok`, so an
/// accepted mandate stays recorded through a process crash, an OS crash or a power cut (if the
/// storage honours fsync). SQLite's own `synchronous=NORMAL` alone syncs the log only at
/// checkpoints, and a power cut could forget the last acceptances: the store syncs the log itself
/// after each commit, which is what `synchronous=FULL` adds.
///
/// **Threads.** One writing connection with group commit (spec `aep2.md#store-guarantees`):
/// the calls of this process that wait for it share one `BEGIN IMMEDIATE` transaction, each in a
/// savepoint of its own, and one `COMMIT` (one fsync) of up to 64 calls; each call returns only
/// after that commit, so `Ok` still means "durably recorded". Reads of committed data use a second
/// connection. Several `SqliteStore`s (or processes) on one file are equally correct; they contend
/// through SQLite's file locks, waiting up to [`SqliteOptions::busy_timeout`].
///
/// **Scope.** All processes must be on one host with a local filesystem: WAL coordinates
/// through a shared-memory file next to the database (`<file>-shm`), which network
/// filesystems do not support (for instances on several hosts, use
/// [`PostgresStore`](crate::PostgresStore)). The database must be used only through this type (its
/// `application_id` and `user_version` are checked on open). Call
/// [`purge`](ReplayStore::purge) periodically (e.g. every minute) to bound the file's size.
#[derive(Debug)]
pub struct SqliteStore {
    /// The store's connections: the writer, with group commit for a file (see
    /// [`crate::db`]), and a reader of committed data.
    db: SqliteDb,
    /// The delivery marks' own connection, without fsync (see [`MARKS_SCHEMA`]): losing a mark to
    /// a power cut only lets a replay of that mandate be served again after its lease. `None` for
    /// in-memory databases, which keep the marks through `conn`.
    unsynced: Option<Mutex<Connection>>,
    retention: u64,
}

impl SqliteStore {
    /// The `PRAGMA application_id` that marks a replay database: "AEP2" in ASCII.
    pub const APPLICATION_ID: i32 = 0x4145_5032;

    /// The `PRAGMA user_version` of the schema this build creates and reads.
    pub const SCHEMA_VERSION: i32 = 3;

    /// Opens (creating if needed) the replay database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, Error> {
        SqliteStore::open_with(path, &SqliteOptions::default())
    }

    /// Opens (creating if needed) the replay database at `path`.
    ///
    /// Fails with `replay_store_unavailable` if the file cannot be opened or created, is not a
    /// SQLite database, is a SQLite database of something else, or cannot use WAL.
    pub fn open_with(path: impl AsRef<Path>, options: &SqliteOptions) -> Result<SqliteStore, Error> {
        let path = path.as_ref();
        let conn = sqlite_file::open(path, options.busy_timeout, &KIND)?;
        let reader = sqlite_file::open(path, options.busy_timeout, &KIND)?;
        let mut marks_path = path.as_os_str().to_owned();
        marks_path.push("-delivered");
        let marks_path = std::path::PathBuf::from(marks_path);
        let marks = sqlite_file::open_unsynced(&marks_path, options.busy_timeout, &MARKS_KIND)?;
        let text = |p: &Path| {
            p.to_str().map(str::to_owned).ok_or_else(|| {
                Error::new(
                    Reason::ReplayStoreUnavailable,
                    format!("{}: not a UTF-8 path", p.display()),
                )
            })
        };
        // The marks connection reads the store (a WAL reader waits for no writer). The store's
        // connection does not attach the marks: its IMMEDIATE transactions would then hold the
        // marks' write lock too, and every mark would wait for the store's fsyncs.
        marks
            .execute("ATTACH DATABASE ?1 AS store", [text(path)?])
            .map_err(|e| unavailable("attach the store to the delivery marks", &e))?;
        Ok(SqliteStore {
            db: SqliteDb::new(conn, Some(reader), true, KIND.name)?,
            unsynced: Some(Mutex::new(marks)),
            retention: options.retention,
        })
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
        conn.execute_batch(&format!(
            "ATTACH DATABASE ':memory:' AS marks; {}",
            MARKS_SCHEMA.replace("CREATE TABLE delivered", "CREATE TABLE marks.delivered")
        ))
        .map_err(|e| unavailable("create the delivery marks", &e))?;
        Ok(SqliteStore {
            db: SqliteDb::new(conn, None, false, KIND.name)?,
            unsynced: None,
            retention: options.retention,
        })
    }

    /// The retention in seconds.
    pub fn retention(&self) -> u64 {
        self.retention
    }

    /// A writing transaction, grouped with concurrent ones into one commit (answered after it).
    fn write<T>(&self, what: &str, f: impl FnMut(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        self.db.run_conn(KIND.name, Mode::Locked, what, f)
    }

    /// A read of committed data.
    fn read<T>(&self, what: &str, f: impl FnMut(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        self.db.run_conn(KIND.name, Mode::Read, what, f)
    }
}

impl ReplayStore for SqliteStore {
    fn check_and_insert(&self, key: &ReplayKey, now: u64) -> Result<(), Error> {
        check_not_expired(key, now, self.retention)?;
        // An error return rolls the call's work back (its savepoint in the group).
        self.write("check and insert", |tx| {
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
                    return check_not_forgotten(key, u64::try_from(purged_below).unwrap_or(u64::MAX));
                }
                return Ok(());
            }
            // A uniqueness constraint refused the row: find out which, in the same transaction.
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
        })
    }

    fn purge(&self, now: u64) -> Result<usize, Error> {
        let cutoff_at = cutoff(now, self.retention);
        let cutoff = to_sql_int(cutoff_at);
        let unfinished_cutoff = to_sql_int(cutoff_at.saturating_sub(UNFINISHED_GRACE));
        let batch = i64::try_from(PURGE_BATCH_SIZE).unwrap_or(i64::MAX);
        // Marked deliveries become final here, so the marks stay few.
        self.db.with_conn(|conn| self.settle_marks(conn))?;
        let mut total = 0;
        loop {
            // One transaction per batch: the high-water mark rises with the deletions it covers,
            // and the connection (and the write lock) is released between batches.
            let removed = self.write("purge", |tx| {
                tx.prepare_cached(RAISE_PURGED_BELOW)
                    .and_then(|mut s| s.execute([cutoff]))
                    .and_then(|_| {
                        tx.prepare_cached(PURGE_BATCH)?
                            .execute(params![cutoff, batch, unfinished_cutoff])
                    })
                    .map_err(|e| unavailable("purge", &e))
            })?;
            total += removed;
            if removed < PURGE_BATCH_SIZE {
                return Ok(total);
            }
        }
    }

    fn len(&self) -> Result<usize, Error> {
        let n: i64 = self.read("count", |c| {
            c.query_row("SELECT count(*) FROM replay", [], |row| row.get(0))
                .map_err(|e| unavailable("count", &e))
        })?;
        usize::try_from(n).map_err(|_| Error::new(Reason::ReplayStoreUnavailable, "count out of range"))
    }
}

impl SqliteStore {
    /// Runs one claim-guarded update; `Ok(true)` if it changed the record.
    /// Runs one claim-guarded update on `conn` (`?1` the mandate id, `?2` the claim, then
    /// `rest`); `Ok(true)` if it changed the record.
    fn transition(conn: &Connection, sql: &str, claim: &Claim, rest: &[&dyn rusqlite::ToSql]) -> Result<bool, Error> {
        let mut all: Vec<&dyn rusqlite::ToSql> = vec![&claim.mandate_id, &claim.token];
        all.extend_from_slice(rest);
        let changed = conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(all.as_slice()))
            .map_err(|e| unavailable("record a payment transition", &e))?;
        Ok(changed == 1)
    }
}

/// A row of `SELECT_PAYMENT`, with the claim token.
type PaymentRow = (PaymentRecord, Option<[u8; 16]>);

fn read_payment(tx: &rusqlite::Connection, mandate_id: &[u8; 32]) -> Result<Option<PaymentRow>, Error> {
    let row = tx
        .prepare_cached(SELECT_PAYMENT)
        .and_then(|mut s| {
            s.query_row([mandate_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<Vec<u8>>>(1)?,
                    r.get::<_, Option<Vec<u8>>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<Vec<u8>>>(7)?,
                ))
            })
            .optional()
        })
        .map_err(|e| unavailable("read a payment record", &e))?;
    let Some((state, request, submission, receipt, failure, first_seen, claimed_until, claim)) = row else {
        return Ok(None);
    };
    let state = PaymentState::parse(&state).ok_or_else(|| {
        Error::new(
            Reason::ReplayStoreUnavailable,
            format!("unknown payment state {state:?}"),
        )
    })?;
    let fixed = |b: Option<Vec<u8>>| b.and_then(|b| <[u8; 16]>::try_from(b).ok());
    let record = PaymentRecord {
        state,
        request: request.and_then(|b| <[u8; 32]>::try_from(b).ok()).unwrap_or([0; 32]),
        submission_id: fixed(submission).unwrap_or([0; 16]),
        receipt,
        failure,
        first_seen: u64::try_from(first_seen).unwrap_or(0),
        claimed_until: u64::try_from(claimed_until).unwrap_or(0),
    };
    Ok(Some((record, fixed(claim))))
}

impl SqliteStore {
    /// Whether the delivery under `claim` is marked; `main` is the store's connection, held.
    fn is_marked(&self, main: &Connection, mandate_id: &[u8; 32], claim: &[u8; 16]) -> Result<bool, Error> {
        let query = |c: &Connection, sql: &str| {
            c.prepare_cached(sql)
                .and_then(|mut s| s.query_row(params![mandate_id, claim], |_| Ok(())).optional())
                .map(|row| row.is_some())
                .map_err(|e| unavailable("read the delivery marks", &e))
        };
        match &self.unsynced {
            Some(marks) => query(&marks.lock().unwrap_or_else(PoisonError::into_inner), IS_MARKED),
            None => query(main, IS_MARKED_HERE),
        }
    }

    /// The claim of a record, or `None` when the record is free or its delivery is marked (a
    /// served record whose mark ends its claim is final).
    fn unmarked(
        &self,
        main: &Connection,
        record: &PaymentRecord,
        mandate_id: &[u8; 32],
        token: Option<[u8; 16]>,
    ) -> Result<Option<[u8; 16]>, Error> {
        let Some(claim) = token else { return Ok(None) };
        if record.state != PaymentState::Served || !self.is_marked(main, mandate_id, &claim)? {
            return Ok(Some(claim));
        }
        Ok(None)
    }

    /// Makes every marked serve final in the store and forgets its mark.
    fn settle_marks(&self, main: &mut Connection) -> Result<(), Error> {
        let Some(marks) = &self.unsynced else {
            let tx = main
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| unavailable("purge: begin", &e))?;
            tx.execute_batch(&format!("{SETTLE_MARKED}; {DROP_MARKS};"))
                .map_err(|e| unavailable("purge: settle the delivery marks", &e))?;
            return tx.commit().map_err(|e| unavailable("purge: commit", &e));
        };
        let batch = i64::try_from(PURGE_BATCH_SIZE).unwrap_or(i64::MAX);
        loop {
            let read: Vec<(Vec<u8>, Vec<u8>)> = {
                let m = marks.lock().unwrap_or_else(PoisonError::into_inner);
                let mut s = m
                    .prepare_cached(MARKS_BATCH)
                    .map_err(|e| unavailable("purge: read the delivery marks", &e))?;
                let rows = s
                    .query_map([batch], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(|e| unavailable("purge: read the delivery marks", &e))?;
                rows.collect::<Result<_, _>>()
                    .map_err(|e| unavailable("purge: read the delivery marks", &e))?
            };
            if read.is_empty() {
                return Ok(());
            }
            // The store first: a crash before the marks go leaves marks that end nothing.
            let tx = main
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| unavailable("purge: begin", &e))?;
            for (id, claim) in &read {
                tx.prepare_cached(SETTLE_ONE)
                    .and_then(|mut s| s.execute(params![id, claim]))
                    .map_err(|e| unavailable("purge: settle a delivery", &e))?;
            }
            tx.commit().map_err(|e| unavailable("purge: commit", &e))?;
            let mut m = marks.lock().unwrap_or_else(PoisonError::into_inner);
            let mtx = m.transaction().map_err(|e| unavailable("purge: begin", &e))?;
            for (id, claim) in &read {
                mtx.prepare_cached(DROP_ONE)
                    .and_then(|mut s| s.execute(params![id, claim]))
                    .map_err(|e| unavailable("purge: drop a delivery mark", &e))?;
            }
            mtx.commit().map_err(|e| unavailable("purge: commit", &e))?;
            if read.len() < PURGE_BATCH_SIZE {
                return Ok(());
            }
        }
    }
}

impl PaymentStore for SqliteStore {
    fn begin(&self, key: &ReplayKey, p: &Presentation, now: u64) -> Result<Begun, Error> {
        let claim = Claim {
            mandate_id: key.mandate_id,
            token: p.token,
        };
        self.write("begin", |tx| {
            if let Some((record, token)) = read_payment(tx, &key.mandate_id)? {
                let token = self.unmarked(tx, &record, &key.mandate_id, token)?;
                payment::may_take(&record, token, &p.request, now)?;
                let until = now.saturating_add(p.lease);
                tx.prepare_cached(TAKE)
                    .and_then(|mut s| s.execute(params![key.mandate_id, p.token, to_sql_int(until), to_sql_int(now)]))
                    .map_err(|e| unavailable("take over a payment record", &e))?;
                return Ok(Begun::Resumed { claim, record });
            }
            check_not_expired(key, now, self.retention)?;
            let purged_below: i64 = tx
                .prepare_cached(PURGED_BELOW)
                .and_then(|mut s| s.query_row([], |row| row.get(0)))
                .map_err(|e| unavailable("read the purge horizon", &e))?;
            if to_sql_int(key.deadline) < purged_below {
                return check_not_forgotten(key, u64::try_from(purged_below).unwrap_or(u64::MAX))
                    .map(|()| Begun::Fresh(claim));
            }
            let inserted = tx
                .prepare_cached(INSERT_PAYMENT)
                .and_then(|mut s| {
                    s.execute(params![
                        key.mandate_id,
                        key.nonce_key,
                        to_sql_int(key.deadline),
                        p.request,
                        p.submission_id,
                        p.token,
                        to_sql_int(now.saturating_add(p.lease)),
                        to_sql_int(now)
                    ])
                })
                .map_err(|e| unavailable("insert", &e))?;
            if inserted == 1 {
                return Ok(Begun::Fresh(claim));
            }
            // The mandate id was absent, so the nonce key refused the row.
            Err(Error::new(
                Reason::NonceReused,
                "another mandate with this nonce key is already recorded",
            ))
        })
    }

    fn lookup(&self, mandate_id: &[u8; 32]) -> Result<Option<PaymentRecord>, Error> {
        self.read("look up", |conn| {
            let Some((mut record, token)) = read_payment(conn, mandate_id)? else {
                return Ok(None);
            };
            if self.unmarked(conn, &record, mandate_id, token)?.is_none() {
                record.claimed_until = 0;
            }
            Ok(Some(record))
        })
    }

    fn receipted(&self, claim: &Claim, receipt: &str, now: u64) -> Result<bool, Error> {
        self.write("receipted", |c| {
            SqliteStore::transition(c, SET_RECEIPTED, claim, &[&receipt, &to_sql_int(now)])
        })
    }

    fn served(&self, claim: &Claim, receipt: &str, until: u64, now: u64) -> Result<bool, Error> {
        self.write("served", |conn| {
            if self.is_marked(conn, &claim.mandate_id, &claim.token)? {
                return Ok(false);
            }
            let rest: [&dyn rusqlite::ToSql; 3] = [&receipt, &to_sql_int(until), &to_sql_int(now)];
            SqliteStore::transition(conn, SET_SERVED, claim, &rest)
        })
    }

    fn delivered(&self, claim: &Claim, _now: u64) -> Result<bool, Error> {
        match &self.unsynced {
            Some(marks) => {
                SqliteStore::transition(&marks.lock().unwrap_or_else(PoisonError::into_inner), MARK, claim, &[])
            }
            None => self.write("delivered", |c| SqliteStore::transition(c, MARK_HERE, claim, &[])),
        }
    }

    fn failed(&self, claim: &Claim, reason: &str, now: u64) -> Result<bool, Error> {
        self.write("failed", |c| {
            SqliteStore::transition(c, SET_FAILED, claim, &[&reason, &to_sql_int(now)])
        })
    }

    fn release(&self, claim: &Claim, now: u64) -> Result<bool, Error> {
        self.write("release", |conn| {
            // A marked delivery ended the claim (the record is final) though the store's row
            // still names it until the marks are settled: releasing it would make the serve owed
            // again.
            if self.is_marked(conn, &claim.mandate_id, &claim.token)? {
                return Ok(false);
            }
            SqliteStore::transition(conn, RELEASE, claim, &[&to_sql_int(now)])
        })
    }

    fn unfinished(&self) -> Result<usize, Error> {
        let n: i64 = self.read("count", |c| {
            c.query_row(
                "SELECT count(*) FROM replay WHERE state IN ('received', 'receipted')",
                [],
                |row| row.get(0),
            )
            .map_err(|e| unavailable("count", &e))
        })?;
        usize::try_from(n).map_err(|_| Error::new(Reason::ReplayStoreUnavailable, "count out of range"))
    }
}

/// Maps a SQLite failure to `replay_store_unavailable`, naming the step and the cause.
fn unavailable(step: &str, e: &rusqlite::Error) -> Error {
    sqlite_file::unavailable(KIND.name, step, e)
}
