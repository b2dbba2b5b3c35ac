//! The SQLite backend of [`super::Db`]: one connection behind a mutex, opened by
//! [`crate::sqlite_file`] (WAL, `synchronous=FULL`, the polling busy handler), with group commit
//! (whose writer syncs the log itself, see [`SqliteDb::new`]).

use super::{Mode, Row, Tx, TxInner, Value};
use crate::sqlite_file::{self, FileKind};
use aep2::Error;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The most calls one commit answers: bounds how long a group holds SQLite's write lock (other
/// processes wait for it) and the latency of its first call.
pub const MAX_GROUP: usize = 64;

/// Group commit: concurrent writing calls of one process share one `BEGIN IMMEDIATE`
/// transaction, each in its own `SAVEPOINT`, and one `COMMIT` (one fsync); each call is answered
/// only once that commit is durable, so no guarantee is weakened: a call's answer never precedes
/// its own durable commit, and a failed commit fails every call of the group.
///
/// There is no writer thread: each call runs its own closure on its own thread while it holds
/// the writer's mutex (so closures need not be `Send`). A call that finishes while others wait
/// for the mutex leaves the transaction open for them and waits for the commit; the call that
/// finds nobody waiting (or fills the group) commits it and wakes the rest. Every taker of the
/// mutex either joins the open group or, outside a write, commits it first, so an open group is
/// always closed by someone.
pub(crate) struct SqliteDb {
    writer: Mutex<Writer>,
    /// Committed-data reads of a file database, off the writer's mutex (an open group's writes
    /// are invisible to it). `None` in memory, where a second connection would be another
    /// database: reads then take the writer, after closing any open group.
    reader: Option<Mutex<Connection>>,
    /// Calls waiting for the writer's mutex: while any waits, an open group is left open.
    waiting: AtomicUsize,
    /// The write-ahead log a grouped writer syncs after its commits: `Some` exactly when calls
    /// share commits (file databases; in memory there is no fsync to share).
    wal: Option<PathBuf>,
    commits: AtomicU64,
    grouped_calls: AtomicU64,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb")
            .field("wal", &self.wal)
            .finish_non_exhaustive()
    }
}

struct Writer {
    conn: Connection,
    group: Option<Group>,
}

/// The open transaction of a group.
struct Group {
    outcome: Arc<Outcome>,
    members: usize,
}

/// The result of a group's commit, for the calls waiting for it.
#[derive(Default)]
struct Outcome {
    done: Mutex<Option<Result<(), Error>>>,
    cv: Condvar,
}

impl Outcome {
    fn set(&self, r: Result<(), Error>) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        self.cv.notify_all();
    }

    fn wait(&self) -> Result<(), Error> {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(r) = &*done {
                return r.clone();
            }
            done = self.cv.wait(done).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Writer {
    /// Commits the open group, if any, and tells its members.
    /// Commits the open group, if any: its outcome (to set once the commit is durable) and the
    /// commit's result.
    fn commit(&mut self, name: &str) -> Option<(Arc<Outcome>, Result<(), Error>)> {
        let g = self.group.take()?;
        let r = self
            .conn
            .execute_batch("COMMIT")
            .map_err(|e| fail(name, "group commit", &e));
        if r.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        Some((g.outcome, r))
    }
}

impl SqliteDb {
    pub(super) fn open(path: &Path, busy_timeout: Duration, kind: &FileKind) -> Result<SqliteDb, Error> {
        let conn = sqlite_file::open(path, busy_timeout, kind)?;
        let reader = sqlite_file::open(path, busy_timeout, kind)?;
        SqliteDb::new(conn, Some(reader), true, kind.name)
    }

    pub(super) fn open_in_memory(kind: &FileKind) -> Result<SqliteDb, Error> {
        let conn = sqlite_file::open_in_memory(Duration::from_secs(5), kind)?;
        SqliteDb::new(conn, None, false, kind.name)
    }

    /// A database over `conn` (the writer) and, for a file, `reader` (committed-data reads);
    /// `grouped` enables group commit (file databases).
    ///
    /// A grouped writer commits with `synchronous=NORMAL` and then syncs the write-ahead log
    /// itself, after releasing the writer ([`SqliteDb::sync_wal`]): `FULL` is exactly `NORMAL`
    /// plus that sync of the log after each commit (checkpoints sync in both), so every answer
    /// still follows a sync that covers its commit, while the next group runs its statements
    /// during this one's sync instead of waiting for it.
    pub(crate) fn new(
        conn: Connection,
        reader: Option<Connection>,
        grouped: bool,
        name: &str,
    ) -> Result<SqliteDb, Error> {
        let wal = match conn.path() {
            Some(p) if grouped && !p.is_empty() => {
                conn.pragma_update(None, "synchronous", "NORMAL")
                    .map_err(|e| fail(name, "set synchronous=NORMAL", &e))?;
                Some(PathBuf::from(format!("{p}-wal")))
            }
            _ => None,
        };
        Ok(SqliteDb {
            writer: Mutex::new(Writer { conn, group: None }),
            reader: reader.map(Mutex::new),
            waiting: AtomicUsize::new(0),
            wal,
            commits: AtomicU64::new(0),
            grouped_calls: AtomicU64::new(0),
        })
    }

    /// Makes every commit so far durable: syncs the write-ahead log (its commits' frames were
    /// written before the commit returned; an fsync of the file flushes them whichever
    /// descriptor it goes through). The file exists while this process holds its connections.
    fn sync_wal(&self, name: &str) -> Result<(), Error> {
        let Some(wal) = &self.wal else { return Ok(()) };
        std::fs::File::open(wal)
            .and_then(|f| f.sync_data())
            .map_err(|e| crate::db::unavailable(name, "sync the write-ahead log", e))
    }

    /// Commits an open group with the writer held, syncs, and tells its members.
    fn close_held(&self, w: &mut Writer, name: &str) {
        if let Some((outcome, r)) = w.commit(name) {
            outcome.set(r.and_then(|()| self.sync_wal(name)));
        }
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        w
    }

    /// The writer outside any group: an open group is committed first.
    fn writer_alone(&self, name: &str) -> MutexGuard<'_, Writer> {
        let mut w = self.writer();
        self.close_held(&mut w, name);
        if !w.conn.is_autocommit() {
            let _ = w.conn.execute_batch("ROLLBACK");
        }
        w
    }

    /// Runs `f` on the writer outside any group; what it commits is synced before this returns.
    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let value = f(&mut self.writer_alone("database").conn);
        // Best effort for a `T` that is not a `Result`: a failed sync fails the next write's.
        let _ = self.sync_wal("database");
        value
    }

    /// `(commits, calls)` of the writing transactions so far: `calls / commits` is the mean
    /// group size.
    pub(super) fn group_stats(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.grouped_calls.load(Ordering::Relaxed),
        )
    }

    pub(super) fn run<T>(
        &self,
        name: &'static str,
        mode: Mode,
        what: &str,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.run_conn(name, mode, what, |conn| {
            f(&mut Tx {
                name,
                what,
                inner: TxInner::Sqlite(conn),
            })
        })
    }

    /// [`SqliteDb::run`] with the closure given the raw connection, inside the transaction (for
    /// stores written on rusqlite directly, such as the payee's [`crate::SqliteStore`]).
    pub(crate) fn run_conn<T>(
        &self,
        name: &'static str,
        mode: Mode,
        what: &str,
        mut f: impl FnMut(&Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if mode == Mode::Read {
            return match &self.reader {
                Some(reader) => {
                    let mut conn = reader.lock().unwrap_or_else(PoisonError::into_inner);
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    one(&mut conn, name, TransactionBehavior::Deferred, what, f)
                }
                None => one(
                    &mut self.writer_alone(name).conn,
                    name,
                    TransactionBehavior::Deferred,
                    what,
                    f,
                ),
            };
        }
        if self.wal.is_none() {
            self.commits.fetch_add(1, Ordering::Relaxed);
            self.grouped_calls.fetch_add(1, Ordering::Relaxed);
            // Taking the write lock up front matters under WAL: a transaction that starts as a
            // reader and later writes fails with SQLITE_BUSY_SNAPSHOT without waiting.
            return one(
                &mut self.writer_alone(name).conn,
                name,
                TransactionBehavior::Immediate,
                what,
                f,
            );
        }
        let mut guard = self.writer();
        let w: &mut Writer = &mut guard;
        if w.group.is_none() {
            if !w.conn.is_autocommit() {
                let _ = w.conn.execute_batch("ROLLBACK");
            }
            w.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| fail(name, &format!("{what}: begin"), &e))?;
            self.commits.fetch_add(1, Ordering::Relaxed);
            w.group = Some(Group {
                outcome: Arc::default(),
                members: 0,
            });
        }
        self.grouped_calls.fetch_add(1, Ordering::Relaxed);
        let value = match w.conn.execute_batch("SAVEPOINT call") {
            Ok(()) => {
                let conn = &w.conn;
                let run = catch_unwind(AssertUnwindSafe(|| f(conn)));
                let value = match run {
                    Ok(value) => value,
                    Err(panic) => {
                        // Roll the group back and tell its members, instead of leaving them to
                        // wait for a commit that would never come.
                        let _ = w.conn.execute_batch("ROLLBACK");
                        if let Some(g) = w.group.take() {
                            g.outcome.set(Err(Error::new(
                                aep2::Reason::ReplayStoreUnavailable,
                                format!("{name}: {what}: a call of the group panicked; the group was rolled back"),
                            )));
                        }
                        drop(guard);
                        resume_unwind(panic);
                    }
                };
                let end = if value.is_ok() {
                    "RELEASE call"
                } else {
                    "ROLLBACK TO call; RELEASE call"
                };
                match w.conn.execute_batch(end) {
                    Ok(()) => value,
                    Err(e) => Err(fail(name, &format!("{what}: end the savepoint"), &e)),
                }
            }
            Err(e) => Err(fail(name, &format!("{what}: savepoint"), &e)),
        };
        if w.conn.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, a full disk): every
            // member of the group has lost its work.
            if let Some(g) = w.group.take() {
                g.outcome.set(Err(Error::new(
                    aep2::Reason::ReplayStoreUnavailable,
                    format!("{name}: {what}: the group's transaction was rolled back"),
                )));
            }
            return Err(value.err().unwrap_or_else(|| {
                Error::new(
                    aep2::Reason::ReplayStoreUnavailable,
                    format!("{name}: {what}: rolled back"),
                )
            }));
        }
        let outcome = match &mut w.group {
            Some(g) => {
                g.members += 1;
                Arc::clone(&g.outcome)
            }
            None => {
                return Err(Error::new(
                    aep2::Reason::ReplayStoreUnavailable,
                    format!("{name}: {what}: no group"),
                ));
            }
        };
        let full = w.group.as_ref().is_some_and(|g| g.members >= MAX_GROUP);
        if full || self.waiting.load(Ordering::SeqCst) == 0 {
            let committed = w.commit(name);
            // The next group may run its statements while this one's log is synced.
            drop(guard);
            if let Some((outcome, r)) = committed {
                let r = r.and_then(|()| self.sync_wal(name));
                outcome.set(r.clone());
                r?;
            }
        } else {
            drop(guard);
            outcome.wait()?;
        }
        value
    }
}

/// One transaction on `conn`, alone.
fn one<T>(
    conn: &mut Connection,
    name: &'static str,
    behavior: TransactionBehavior,
    what: &str,
    mut f: impl FnMut(&Connection) -> Result<T, Error>,
) -> Result<T, Error> {
    let tx = conn
        .transaction_with_behavior(behavior)
        .map_err(|e| fail(name, &format!("{what}: begin"), &e))?;
    let value = f(&tx)?;
    tx.commit().map_err(|e| fail(name, &format!("{what}: commit"), &e))?;
    Ok(value)
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::Blob(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
        })
    }
}

pub(super) fn execute(conn: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<u64> {
    let n = conn
        .prepare_cached(sql)?
        .execute(rusqlite::params_from_iter(params.iter()))?;
    Ok(n as u64)
}

pub(super) fn query(conn: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let n = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::Int(v),
                // Real columns exist in no AEP2 schema; keep the value visible if one appears.
                ValueRef::Real(v) => Value::Text(v.to_string()),
                ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
                ValueRef::Blob(v) => Value::Blob(v.to_vec()),
            });
        }
        out.push(Row(values));
    }
    Ok(out)
}

pub(super) fn fail(name: &str, what: &str, e: &rusqlite::Error) -> Error {
    sqlite_file::unavailable(name, what, e)
}
