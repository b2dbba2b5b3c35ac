//! The Postgres backend of [`super::Db`]: a `deadpool-postgres` pool of `tokio-postgres`
//! connections driven by a private runtime, so the stores stay synchronous and callable from any
//! thread (a Tokio worker, `spawn_blocking`, a plain thread) like their SQLite backend.
//!
//! Each connection is opened with `search_path` set to the store's namespace,
//! `synchronous_commit = on` (a commit returns once its WAL record is flushed: the answer that
//! follows it survives a crash of the server) and `lock_timeout` set to the busy timeout.

use super::{DbOptions, Kind, Mode, RETRIES, Row, Tx, TxInner, Value, unavailable};
use aep2::{Error, Reason};
use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type};

/// Postgres settings of a [`super::Db`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections in the pool of one process (default 8). A fleet of `n` processes holds up to
    /// `n × pool_size` server connections.
    pub pool_size: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions { pool_size: 8 }
    }
}

pub(super) struct PgDb {
    /// Drives the pool's connections; `None` only while dropping.
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    namespace: String,
    /// The store lock of [`Mode::Locked`] transactions: a transaction-scoped advisory lock.
    lock_key: i64,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb")
            .field("namespace", &self.namespace)
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime: let it go instead.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// `url` with its password replaced by `***`, wherever libpq would read one: `user:pass@` in
/// the authority or a `password=` parameter.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Splits our `schema=NAME` parameter off a URL: `(url without it, NAME)`.
fn take_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("schema=") {
            Some(name) => {
                schema = Some(name.to_owned());
                false
            }
            None => !p.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, schema)
}

/// A namespace name we put into connection options unquoted: it must need no quoting.
fn check_namespace(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            Reason::ReplayStoreUnavailable,
            format!("Postgres schema name {name:?}: use 1 to 63 of a-z, 0-9 and _, not starting with a digit"),
        ))
    }
}

/// FNV-1a: a stable 64-bit advisory-lock key for a namespace (every process computes the same).
fn lock_key(namespace: &str, salt: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.bytes().chain(namespace.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// Rewrites SQLite's `?N` parameters to Postgres's `$N`, outside string literals.
fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    // The client's futures only talk to the connection tasks (on the private runtime) through
    // channels, so any thread can wait for them, Tokio's own included. Unconstrained: inside a
    // Tokio task whose cooperative budget is spent, a Tokio future (the pool's `JoinHandle`)
    // would otherwise answer "pending" and defer its wake-up until the task yields, which a
    // thread blocked here never does: a store used from async code (the settlement worker) hung
    // after about a hundred calls in one poll.
    futures_executor::block_on(tokio::task::unconstrained(f))
}

impl PgDb {
    pub(super) fn open(url: &str, options: &DbOptions, kind: &Kind) -> Result<PgDb, Error> {
        let name = kind.name();
        let shown = redact(url);
        let (url, schema) = take_schema(url);
        let namespace = schema.unwrap_or_else(|| kind.pg_namespace.to_owned());
        check_namespace(&namespace)?;
        let mut config = tokio_postgres::Config::from_str(&url)
            .map_err(|e| unavailable(name, &format!("read the URL {shown}"), e))?;
        let timeout_ms = options.busy_timeout.as_millis().max(1);
        let ours = format!(
            "-c search_path={namespace} -c synchronous_commit=on -c lock_timeout={timeout_ms} -c idle_in_transaction_session_timeout=60000"
        );
        let all = match config.get_options() {
            Some(theirs) => format!("{theirs} {ours}"),
            None => ours,
        };
        config.options(&all);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.busy_timeout);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("aep2-postgres")
            .enable_all()
            .build()
            .map_err(|e| unavailable(name, "start the Postgres runtime", e))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.postgres.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.busy_timeout))
            .create_timeout(Some(options.busy_timeout))
            .build()
            .map_err(|e| unavailable(name, "build the connection pool", e))?;
        let db = PgDb {
            rt: Some(rt),
            pool,
            lock_key: lock_key(&namespace, "aep2 store lock "),
            namespace,
        };
        db.init(kind, &shown)?;
        Ok(db)
    }

    fn client(&self, name: &str) -> Result<Object, Error> {
        let pool = self.pool.clone();
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| unavailable(name, "connect", "shut down"))?;
        block_on(rt.spawn(async move { pool.get().await }))
            .map_err(|e| unavailable(name, "connect", e))?
            .map_err(|e| match e {
                deadpool_postgres::PoolError::Backend(e) => unavailable(name, "connect", pg_cause(&e)),
                e => unavailable(name, "connect", e),
            })
    }

    /// Creates the namespace and its tables, or checks and upgrades them, once across every
    /// process opening the store at the same time (under a session advisory lock).
    fn init(&self, kind: &Kind, shown: &str) -> Result<(), Error> {
        let name = kind.name();
        // Name the server (without the password): a failure to connect is the first an operator sees.
        let client = self
            .client(name)
            .map_err(|e| Error::new(e.reason(), format!("{shown}: {}", e.detail())))?;
        let fail = |step: &str, e: tokio_postgres::Error| unavailable(name, &format!("{shown}: {step}"), pg_cause(&e));
        let key = lock_key(&self.namespace, "aep2 schema lock ");
        block_on(client.batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({key}); CREATE SCHEMA IF NOT EXISTS {ns}; \
             CREATE TABLE IF NOT EXISTS {ns}.aep2_store (kind TEXT NOT NULL PRIMARY KEY, application_id BIGINT NOT NULL, version BIGINT NOT NULL);",
            ns = self.namespace
        )))
        .map_err(|e| fail("create the namespace", e))?;
        let result = (|| {
            let rows = block_on(client.query("SELECT kind, application_id, version FROM aep2_store", &[]))
                .map_err(|e| fail("read the store mark", e))?;
            let tables: i64 = block_on(client.query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename <> 'aep2_store'",
                &[&self.namespace],
            ))
            .and_then(|r| r.try_get(0))
            .map_err(|e| fail("list the tables", e))?;
            let app = i64::from(kind.sqlite.application_id);
            let want = i64::from(kind.sqlite.schema_version);
            match rows.as_slice() {
                [] if tables == 0 => {
                    block_on(client.batch_execute(kind.pg_schema)).map_err(|e| fail("create the tables", e))?;
                    block_on(client.execute(
                        "INSERT INTO aep2_store (kind, application_id, version) VALUES ($1, $2, $3)",
                        &[&name, &app, &want],
                    ))
                    .map_err(|e| fail("mark the store", e))?;
                    Ok(())
                }
                [row] => {
                    let (k, a, v): (String, i64, i64) = (
                        row.try_get(0).map_err(|e| fail("read the store mark", e))?,
                        row.try_get(1).map_err(|e| fail("read the store mark", e))?,
                        row.try_get(2).map_err(|e| fail("read the store mark", e))?,
                    );
                    if a != app {
                        return Err(Error::new(
                            Reason::ReplayStoreUnavailable,
                            format!(
                                "{shown}: schema {} holds an AEP2 {k}, not an AEP2 {name}",
                                self.namespace
                            ),
                        ));
                    }
                    let mut at = v;
                    for (from, sql) in kind.pg_migrations {
                        if at == i64::from(*from) {
                            block_on(client.batch_execute(sql))
                                .map_err(|e| fail(&format!("migrate from version {from}"), e))?;
                            at += 1;
                        }
                    }
                    if at != want {
                        return Err(Error::new(
                            Reason::ReplayStoreUnavailable,
                            format!("{shown}: {name} schema version {v}; this build reads {want}"),
                        ));
                    }
                    if at != v {
                        block_on(client.execute("UPDATE aep2_store SET version = $1", &[&want]))
                            .map_err(|e| fail("migrate: set the version", e))?;
                    }
                    Ok(())
                }
                _ => Err(Error::new(
                    Reason::ReplayStoreUnavailable,
                    format!(
                        "{shown}: schema {} is not an AEP2 {name} ({tables} tables, {} store marks)",
                        self.namespace,
                        rows.len()
                    ),
                )),
            }
        })();
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = block_on(client.batch_execute(end)).map_err(|e| fail("open: commit", e));
        result.and(ended)
    }

    pub(super) fn run<T>(
        &self,
        name: &'static str,
        mode: Mode,
        what: &str,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let begin = match mode {
            // The lock comes before the first read, and READ COMMITTED gives every statement a
            // snapshot taken after it: each locked transaction sees all that the last committed.
            Mode::Locked => format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({})",
                self.lock_key
            ),
            Mode::Keyed => "BEGIN ISOLATION LEVEL READ COMMITTED".to_owned(),
            Mode::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".to_owned(),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = self.client(name)?;
            let mut tx = PgTx {
                client,
                conflict: false,
                open: false,
            };
            if let Err(e) = block_on(tx.client.batch_execute(&begin)) {
                let err = tx.fail(name, &format!("{what}: begin"), &e);
                if tx.conflict && attempt <= RETRIES {
                    continue;
                }
                return Err(err);
            }
            tx.open = true;
            let result = f(&mut Tx {
                name,
                what,
                inner: TxInner::Postgres(&mut tx),
            });
            tx.open = false;
            let result = match result {
                Ok(value) => match block_on(tx.client.batch_execute("COMMIT")) {
                    Ok(()) => return Ok(value),
                    Err(e) => Err(tx.fail(name, &format!("{what}: commit"), &e)),
                },
                Err(e) => {
                    // A failed ROLLBACK leaves the connection unusable: the pool's recycling
                    // check drops it.
                    let _ = block_on(tx.client.batch_execute("ROLLBACK"));
                    Err(e)
                }
            };
            if tx.conflict && attempt <= RETRIES {
                // Back off a little, growing, so that conflicting transactions spread out.
                std::thread::sleep(Duration::from_micros(200 << attempt.min(6)));
                continue;
            }
            return result;
        }
    }
}

/// A Postgres transaction in progress on one pooled connection.
pub(super) struct PgTx {
    client: Object,
    /// A statement failed with a serialization failure or a deadlock: the transaction is retried.
    conflict: bool,
    /// Between `BEGIN` and the `COMMIT` or `ROLLBACK`: dropped so (a panic in the closure), it is
    /// rolled back before the connection goes back to the pool, where the next `BEGIN` would
    /// otherwise run inside it and commit its writes.
    open: bool,
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if self.open {
            let _ = block_on(self.client.batch_execute("ROLLBACK"));
        }
    }
}

impl PgTx {
    fn params(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
        params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
    }

    pub(super) fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, tokio_postgres::Error> {
        let stmt = block_on(self.client.prepare_cached(&to_postgres(sql)))?;
        block_on(self.client.execute(&stmt, &Self::params(params)))
    }

    pub(super) fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, tokio_postgres::Error> {
        let stmt = block_on(self.client.prepare_cached(&to_postgres(sql)))?;
        let rows = block_on(self.client.query(&stmt, &Self::params(params)))?;
        rows.iter().map(row).collect()
    }

    pub(super) fn fail(&mut self, name: &str, what: &str, e: &tokio_postgres::Error) -> Error {
        if matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
        ) {
            self.conflict = true;
        }
        unavailable(name, what, pg_cause(e))
    }
}

/// The server's message when there is one (the driver's `Display` says only "db error").
fn pg_cause(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) if *db.code() == SqlState::LOCK_NOT_AVAILABLE => {
            format!("store lock not granted within the busy timeout ({})", db.message())
        }
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        // The driver's own text ("error connecting to server") leaves the cause to its source.
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

fn row(r: &tokio_postgres::Row) -> Result<Row, tokio_postgres::Error> {
    let mut values = Vec::with_capacity(r.len());
    for (i, c) in r.columns().iter().enumerate() {
        let t = c.type_();
        let v = if *t == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map(Value::Int)
        } else if *t == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?.map(|v| Value::Int(i64::from(v)))
        } else if *t == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?.map(|v| Value::Int(i64::from(v)))
        } else if *t == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?.map(|v| Value::Int(i64::from(v)))
        } else if *t == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob)
        } else {
            // TEXT and its kin; any other type fails here with the driver's own message.
            r.try_get::<_, Option<String>>(i)?.map(Value::Text)
        };
        values.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::BOOL => (*v != 0).to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT8 => v.to_sql(ty, out),
            Value::Text(v) if <&str as ToSql>::accepts(ty) => v.as_str().to_sql(ty, out),
            Value::Blob(v) if *ty == Type::BYTEA => v.as_slice().to_sql(ty, out),
            other => Err(format!("cannot bind {other:?} to a parameter of type {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_rewritten_outside_literals() {
        assert_eq!(
            to_postgres("SELECT ?1, '?2', ?12 WHERE x = '' AND y = ?3"),
            "SELECT $1, '?2', $12 WHERE x = '' AND y = $3"
        );
        assert_eq!(to_postgres("a ? b"), "a ? b");
    }

    #[test]
    fn our_schema_parameter_is_taken_off() {
        assert_eq!(
            take_schema("postgres://h/db?schema=x&sslmode=disable"),
            ("postgres://h/db?sslmode=disable".into(), Some("x".into()))
        );
        assert_eq!(
            take_schema("postgres://h/db?schema=x"),
            ("postgres://h/db".into(), Some("x".into()))
        );
        assert_eq!(take_schema("postgres://h/db"), ("postgres://h/db".into(), None));
        assert_eq!(
            redact("postgres://u:pw@h:5/db?password=pw&sslmode=disable"),
            "postgres://u:***@h:5/db?password=***&sslmode=disable"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert!(check_namespace("aep2_ledger").is_ok());
        assert!(check_namespace("Bad").is_err());
        assert!(check_namespace("a;drop").is_err());
        assert!(check_namespace("").is_err());
    }
}
