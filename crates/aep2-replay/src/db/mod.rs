//! The store layer every durable AEP2 store is written against (spec `aep2.md#store-guarantees`):
//! one database, SQLite (a file, the embedded default) or Postgres (a server shared by a fleet),
//! reached through [`Db::write`] and [`Db::read`] transactions of portable SQL.
//!
//! A store's rules (what the SP ledger checks before it reserves, what the payee's replay store
//! refuses) are written once, as SQL run in a [`Tx`]; only the schema differs per backend. What
//! each backend guarantees, and how:
//!
//! | | SQLite | Postgres |
//! |---|---|---|
//! | [`Db::write`] | `BEGIN IMMEDIATE`: the file's single write lock | `READ COMMITTED` and the store's transaction-scoped advisory lock, taken before the first read |
//! | [`Db::write_keyed`] | the same | `READ COMMITTED`, no store lock: only for statements a unique key makes safe |
//! | [`Db::read`] | a deferred transaction (one snapshot) | `REPEATABLE READ READ ONLY` (one snapshot) |
//! | durability | WAL; every commit synced before its answer (group commit: one sync per group) | `synchronous_commit = on` for the session |
//! | conflicts | waits for the lock up to the busy timeout | serialization failures and deadlocks are retried, at most [`RETRIES`] times |
//!
//! So every writing transaction of one store runs as if alone, on either backend: a rule that
//! reads, checks and writes is atomic by construction, not by care in each statement.
//!
//! SQL is written in SQLite's dialect with `?N` parameters and only what both engines accept
//! (`ON CONFLICT … DO NOTHING`, `coalesce`, `length` on blobs); the Postgres backend rewrites the
//! parameters to `$N`. Integers are 64-bit (`BIGINT` in Postgres), blobs are `BYTEA`.

mod postgres;
pub(crate) mod sqlite;

use aep2::{Error, Reason};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use postgres::PostgresOptions;

/// How many times a Postgres transaction that failed with a serialization failure or a deadlock
/// is run again before the call fails with `replay_store_unavailable`.
pub const RETRIES: u32 = 8;

/// Where a store lives: a SQLite file, or a Postgres database named by a `postgres://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A Postgres connection URL (`postgres://` or `postgresql://`), as libpq reads it, plus
    /// an optional `schema=NAME` parameter of ours naming the Postgres schema the store's tables
    /// live in (default: the store's own, such as `aep2_ledger`).
    Postgres(String),
}

impl Location {
    /// Reads a command-line or configuration value: a `postgres://` or `postgresql://` URL is
    /// Postgres, anything else a SQLite path.
    pub fn parse(value: &str) -> Location {
        if Self::is_postgres_url(value) {
            Location::Postgres(value.to_owned())
        } else {
            Location::Sqlite(PathBuf::from(value))
        }
    }

    /// Whether `value` is a Postgres URL.
    pub fn is_postgres_url(value: &str) -> bool {
        value.starts_with("postgres://") || value.starts_with("postgresql://")
    }

    /// The file, for a SQLite location.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// A form fit for logs and messages: a URL's password is replaced by `***`.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => postgres::redact(url),
        }
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Location {
        Location::Sqlite(p.to_path_buf())
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Location {
        Location::Sqlite(p)
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Location {
        Location::Sqlite(p.clone())
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Location {
        l.clone()
    }
}

/// A command-line or configuration value: see [`Location::parse`].
impl From<&str> for Location {
    fn from(v: &str) -> Location {
        Location::parse(v)
    }
}

/// A command-line or configuration value: see [`Location::parse`].
impl From<String> for Location {
    fn from(v: String) -> Location {
        Location::parse(&v)
    }
}

/// What a store is, on both backends: its name in messages, its SQLite file marks and schema,
/// and its Postgres schema (a namespace of its own) with its migrations.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    /// The SQLite side: name, `application_id`, `user_version`, schema and migrations.
    pub sqlite: crate::sqlite_file::FileKind,
    /// The Postgres schema (namespace) the tables live in unless the URL names another.
    pub pg_namespace: &'static str,
    /// The Postgres tables, created once in a new namespace.
    pub pg_schema: &'static str,
    /// Upgrades of older Postgres namespaces: `(version, sql)` as for SQLite.
    pub pg_migrations: &'static [(i32, &'static str)],
}

impl Kind {
    /// The name in messages.
    pub fn name(&self) -> &'static str {
        self.sqlite.name
    }
}

/// Which engine a [`Db`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// Postgres.
    Postgres,
}

/// A value bound to a parameter or read from a column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(i64::from(v))
    }
}
/// Unsigned integers clamp at `i64::MAX` (see [`crate::sqlite_file::to_sql_int`]).
impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(crate::sqlite_file::to_sql_int(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Blob(v.to_vec())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}
impl<const N: usize> From<[u8; N]> for Value {
    fn from(v: [u8; N]) -> Value {
        Value::Blob(v.to_vec())
    }
}
impl<const N: usize> From<&[u8; N]> for Value {
    fn from(v: &[u8; N]) -> Value {
        Value::Blob(v.to_vec())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<&Value> for Value {
    fn from(v: &Value) -> Value {
        v.clone()
    }
}

/// Builds a `&[Value]` parameter list: `params![a, b, c]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::db::Value] };
    ($($v:expr),+ $(,)?) => { &[$($crate::db::Value::from($v)),+] as &[$crate::db::Value] };
}

/// One result row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value, Error> {
        self.0.get(i).ok_or_else(|| corrupt(format!("no column {i}")))
    }

    /// Column `i` as an integer.
    pub fn int(&self, i: usize) -> Result<i64, Error> {
        match self.at(i)? {
            Value::Int(v) => Ok(*v),
            other => Err(corrupt(format!("column {i} is {other:?}, not an integer"))),
        }
    }

    /// Column `i` as a non-negative integer.
    pub fn uint(&self, i: usize) -> Result<u64, Error> {
        u64::try_from(self.int(i)?).map_err(|_| corrupt(format!("column {i} is negative")))
    }

    /// Column `i` as an integer, or `None` for `NULL`.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, Error> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    /// Column `i` as a non-negative integer, or `None` for `NULL`.
    pub fn opt_uint(&self, i: usize) -> Result<Option<u64>, Error> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.uint(i).map(Some),
        }
    }

    /// Column `i` as text.
    pub fn text(&self, i: usize) -> Result<&str, Error> {
        match self.at(i)? {
            Value::Text(v) => Ok(v),
            other => Err(corrupt(format!("column {i} is {other:?}, not text"))),
        }
    }

    /// Column `i` as text, or `None` for `NULL`.
    pub fn opt_text(&self, i: usize) -> Result<Option<&str>, Error> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    /// Column `i` as bytes.
    pub fn blob(&self, i: usize) -> Result<&[u8], Error> {
        match self.at(i)? {
            Value::Blob(v) => Ok(v),
            other => Err(corrupt(format!("column {i} is {other:?}, not bytes"))),
        }
    }

    /// Column `i` as bytes, or `None` for `NULL`.
    pub fn opt_blob(&self, i: usize) -> Result<Option<&[u8]>, Error> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.blob(i).map(Some),
        }
    }

    /// Column `i` as exactly `N` bytes.
    pub fn array<const N: usize>(&self, i: usize) -> Result<[u8; N], Error> {
        let b = self.blob(i)?;
        b.try_into()
            .map_err(|_| corrupt(format!("column {i} has {} bytes, not {N}", b.len())))
    }

    /// Column `i` as exactly `N` bytes, or `None` for `NULL`.
    pub fn opt_array<const N: usize>(&self, i: usize) -> Result<Option<[u8; N]>, Error> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.array(i).map(Some),
        }
    }
}

/// A stored value that this build cannot read: the database was changed behind the store's back.
fn corrupt(what: String) -> Error {
    Error::new(
        Reason::ReplayStoreUnavailable,
        format!("unexpected stored value: {what}"),
    )
}

/// Settings of a [`Db`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbOptions {
    /// SQLite: how long a transaction waits for the write lock; Postgres: how long one waits for
    /// a connection from the pool and for the store lock (`lock_timeout`). Default 5 s.
    pub busy_timeout: Duration,
    /// Postgres settings.
    pub postgres: PostgresOptions,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            busy_timeout: Duration::from_secs(5),
            postgres: PostgresOptions::default(),
        }
    }
}

/// A store's database: SQLite or Postgres. `Send + Sync`; share it behind an `Arc`.
#[derive(Debug)]
pub struct Db {
    name: &'static str,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Sqlite(sqlite::SqliteDb),
    Postgres(postgres::PgDb),
}

/// How a transaction isolates itself (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Serialised with every other `Locked` transaction of the store.
    Locked,
    /// Concurrent; unique keys decide.
    Keyed,
    /// One snapshot, no writes.
    Read,
}

impl Db {
    /// Opens (creating or upgrading the schema if needed) the store `kind` at `location`.
    ///
    /// Fails with `replay_store_unavailable` when the database cannot be reached, holds another
    /// kind of store, or a schema version this build does not read.
    pub fn open(location: &Location, options: &DbOptions, kind: &Kind) -> Result<Db, Error> {
        let inner = match location {
            Location::Sqlite(path) => Inner::Sqlite(sqlite::SqliteDb::open(path, options.busy_timeout, &kind.sqlite)?),
            Location::Postgres(url) => Inner::Postgres(postgres::PgDb::open(url, options, kind)?),
        };
        Ok(Db {
            name: kind.name(),
            inner,
        })
    }

    /// A private in-memory SQLite database (tests: not durable, not shared).
    pub fn open_in_memory(kind: &Kind) -> Result<Db, Error> {
        Ok(Db {
            name: kind.name(),
            inner: Inner::Sqlite(sqlite::SqliteDb::open_in_memory(&kind.sqlite)?),
        })
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs `f` in a writing transaction serialised with every other [`Db::write`] of the store
    /// (across threads, processes and hosts), and commits if it returns `Ok`; an `Err` rolls
    /// back. The answer is given only after the commit is durable.
    ///
    /// `f` may run more than once on Postgres (after a serialization failure): it must have no
    /// effect outside the transaction but its return value.
    pub fn write<T>(&self, what: &str, f: impl FnMut(&mut Tx<'_>) -> Result<T, Error>) -> Result<T, Error> {
        self.run(Mode::Locked, what, f)
    }

    /// [`Db::write`] without the store lock on Postgres: for transactions whose every conflict
    /// a unique key or a row lock decides (an `INSERT … ON CONFLICT`, an `UPDATE` of one row).
    pub fn write_keyed<T>(&self, what: &str, f: impl FnMut(&mut Tx<'_>) -> Result<T, Error>) -> Result<T, Error> {
        self.run(Mode::Keyed, what, f)
    }

    /// Runs `f` in a read-only transaction: one consistent snapshot of committed data.
    pub fn read<T>(&self, what: &str, f: impl FnMut(&mut Tx<'_>) -> Result<T, Error>) -> Result<T, Error> {
        self.run(Mode::Read, what, f)
    }

    fn run<T>(&self, mode: Mode, what: &str, f: impl FnMut(&mut Tx<'_>) -> Result<T, Error>) -> Result<T, Error> {
        match &self.inner {
            Inner::Sqlite(db) => db.run(self.name, mode, what, f),
            Inner::Postgres(db) => db.run(self.name, mode, what, f),
        }
    }

    /// SQLite only: `(commits, calls)` of the writing transactions so far (`calls / commits` is
    /// the mean group-commit size); `None` on Postgres.
    pub fn group_stats(&self) -> Option<(u64, u64)> {
        match &self.inner {
            Inner::Sqlite(db) => Some(db.group_stats()),
            Inner::Postgres(_) => None,
        }
    }

    /// SQLite only: runs `f` on the connection outside any transaction (pragmas, checkpoints).
    /// `None` on Postgres.
    pub fn with_sqlite<T>(&self, f: impl FnOnce(&mut rusqlite::Connection) -> T) -> Option<T> {
        match &self.inner {
            Inner::Sqlite(db) => Some(db.with_conn(f)),
            Inner::Postgres(_) => None,
        }
    }
}

/// A transaction of a [`Db`]: statements in SQLite's dialect with `?N` parameters.
pub struct Tx<'a> {
    name: &'static str,
    what: &'a str,
    inner: TxInner<'a>,
}

enum TxInner<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a mut postgres::PgTx),
}

impl Tx<'_> {
    /// The engine.
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs a statement and returns how many rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => sqlite::execute(tx, sql, params).map_err(|e| sqlite::fail(self.name, self.what, &e)),
            TxInner::Postgres(tx) => tx.execute(sql, params).map_err(|e| tx.fail(self.name, self.what, &e)),
        }
    }

    /// Runs a query and returns every row.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => sqlite::query(tx, sql, params).map_err(|e| sqlite::fail(self.name, self.what, &e)),
            TxInner::Postgres(tx) => tx.query(sql, params).map_err(|e| tx.fail(self.name, self.what, &e)),
        }
    }

    /// Runs a query and returns its first row, if any.
    pub fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, Error> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs a query that returns exactly one row.
    pub fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row, Error> {
        self.query_opt(sql, params)?
            .ok_or_else(|| corrupt(format!("{}: {}: no row from {sql}", self.name, self.what)))
    }
}

/// `replay_store_unavailable` for a failure of `name` at `what`.
pub(crate) fn unavailable(name: &str, what: &str, cause: impl std::fmt::Display) -> Error {
    Error::new(Reason::ReplayStoreUnavailable, format!("{name}: {what}: {cause}"))
}

/// Test support: the Postgres server the store suites run against.
pub mod testing {
    use super::Location;

    /// The variable naming the Postgres server of the test suites: a `postgres://` URL of a
    /// database the tests may create schemas in.
    pub const ENV: &str = "AEP2_TEST_POSTGRES";

    /// Set (to anything) where a missing [`ENV`] must fail the tests rather than skip Postgres.
    pub const REQUIRE: &str = "AEP2_REQUIRE_POSTGRES";

    /// A fresh, empty Postgres location (a schema of its own, named after `tag` and a random
    /// suffix) on the server named by [`ENV`]; `None` when it is not set.
    ///
    /// # Panics
    /// When [`ENV`] is not set but [`REQUIRE`] is (CI sets it): CI must run every store test on
    /// both backends, so a missing server fails the run instead of skipping half of it.
    pub fn postgres(tag: &str) -> Option<Location> {
        let Ok(url) = std::env::var(ENV) else {
            assert!(
                std::env::var_os(REQUIRE).is_none(),
                "{ENV} is not set but {REQUIRE} is: the store suites must run against Postgres"
            );
            return None;
        };
        let mut suffix = [0u8; 6];
        getrandom_fill(&mut suffix);
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let tag: String = tag
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let sep = if url.contains('?') { '&' } else { '?' };
        Some(Location::Postgres(format!("{url}{sep}schema=t_{tag}_{hex}")))
    }

    fn getrandom_fill(out: &mut [u8]) {
        use std::hash::{BuildHasher, Hasher};
        // Random enough to keep concurrent test runs apart; not a secret.
        for chunk in out.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            let v = h.finish().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("postgres://u@h/db"),
            Location::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            Location::parse("postgresql://h/db"),
            Location::Postgres("postgresql://h/db".into())
        );
        assert_eq!(Location::parse("ledger.db"), Location::Sqlite("ledger.db".into()));
        assert_eq!(
            Location::parse("postgres://u:secret@h/db").display(),
            "postgres://u:***@h/db"
        );
    }
}
