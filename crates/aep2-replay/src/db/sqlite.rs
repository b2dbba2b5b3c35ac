//! The SQLite backend of [`super::Db`]: one connection behind a mutex, opened by
//! [`crate::sqlite_file`] (WAL, `synchronous=FULL`, the polling busy handler).

use super::{Mode, Row, Tx, TxInner, Value};
use crate::sqlite_file::{self, FileKind};
use aep2::Error;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

#[derive(Debug)]
pub(super) struct SqliteDb {
    conn: Mutex<Connection>,
}

impl SqliteDb {
    pub(super) fn open(path: &Path, busy_timeout: Duration, kind: &FileKind) -> Result<SqliteDb, Error> {
        let conn = sqlite_file::open(path, busy_timeout, kind)?;
        Ok(SqliteDb { conn: Mutex::new(conn) })
    }

    pub(super) fn open_in_memory(kind: &FileKind) -> Result<SqliteDb, Error> {
        let conn = sqlite_file::open_in_memory(Duration::from_secs(5), kind)?;
        Ok(SqliteDb { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held unwound through the transaction's drop (a rollback).
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        conn
    }

    pub(super) fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut self.conn())
    }

    pub(super) fn run<T>(
        &self,
        name: &'static str,
        mode: Mode,
        what: &str,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut conn = self.conn();
        let behavior = match mode {
            // Taking the write lock up front matters under WAL: a transaction that starts as a
            // reader and later writes fails with SQLITE_BUSY_SNAPSHOT without waiting.
            Mode::Locked | Mode::Keyed => TransactionBehavior::Immediate,
            Mode::Read => TransactionBehavior::Deferred,
        };
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(|e| fail(name, &format!("{what}: begin"), &e))?;
        let value = f(&mut Tx {
            name,
            what,
            inner: TxInner::Sqlite(&tx),
        })?;
        tx.commit().map_err(|e| fail(name, &format!("{what}: commit"), &e))?;
        Ok(value)
    }
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
