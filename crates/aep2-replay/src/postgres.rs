//! The Postgres store: the payee's replay records and payment state in a database shared by a
//! fleet of payee processes on any number of hosts.
//!
//! How it is made safe without a store-wide lock on the hot path: see [`PostgresStore`].

use crate::db::{Db, DbOptions, Kind, Location, Row, Tx, unavailable};
use crate::payment::{self, Begun, Claim, PaymentRecord, PaymentState, PaymentStore, Presentation, UNFINISHED_GRACE};
use crate::sqlite_file::FileKind;
use crate::{ReplayKey, ReplayStore, SqliteStore, check_not_expired, check_not_forgotten, cutoff, params};
use aep2::{Error, Reason};

/// The tables (in the store's namespace, `aep2_payee` unless the URL names another): the same
/// columns as the SQLite schema, delivery included (a delivered serve has no claim).
const SCHEMA: &str = "
CREATE TABLE replay (
    mandate_id BYTEA NOT NULL PRIMARY KEY CHECK (length(mandate_id) = 32),
    nonce_key BYTEA NOT NULL UNIQUE CHECK (length(nonce_key) = 32),
    deadline BIGINT NOT NULL CHECK (deadline >= 0),
    state TEXT NOT NULL DEFAULT 'served' CHECK (state IN ('received', 'receipted', 'served', 'failed')),
    request BYTEA CHECK (request IS NULL OR length(request) = 32),
    submission_id BYTEA CHECK (submission_id IS NULL OR length(submission_id) = 16),
    receipt TEXT,
    failure TEXT,
    claim BYTEA CHECK (claim IS NULL OR length(claim) = 16),
    claimed_until BIGINT NOT NULL DEFAULT 0,
    first_seen BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX replay_deadline ON replay (deadline);
CREATE INDEX replay_unfinished ON replay (state) WHERE state IN ('received', 'receipted');
CREATE TABLE meta (
    name TEXT NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (name, value) VALUES ('purged_below', 0);
";

/// What a payee store is: the replay database's name and `application_id` (so a schema can never
/// be taken for another AEP2 store), the Postgres tables' own version, namespace and tables. The
/// SQLite schema is not given: [`PostgresStore::open_with`] opens Postgres locations only.
const KIND: Kind = Kind {
    sqlite: FileKind {
        name: "replay database",
        application_id: SqliteStore::APPLICATION_ID,
        schema_version: PostgresStore::SCHEMA_VERSION,
        schema: "",
        migrations: &[],
    },
    pg_namespace: PostgresStore::NAMESPACE,
    pg_schema: SCHEMA,
    pg_migrations: &[],
};

const INSERT: &str = "INSERT INTO replay (mandate_id, nonce_key, deadline) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
const HAS_ID: &str = "SELECT 1 FROM replay WHERE mandate_id = ?1";
const HAS_NONCE: &str = "SELECT 1 FROM replay WHERE nonce_key = ?1";
const PURGED_BELOW: &str = "SELECT value FROM meta WHERE name = 'purged_below'";
const RAISE_PURGED_BELOW: &str = "UPDATE meta SET value = GREATEST(value, ?1) WHERE name = 'purged_below'";
/// Purges in batches (Postgres has no `DELETE … LIMIT`). Unfinished records, and serves still
/// being delivered, stay [`UNFINISHED_GRACE`] longer. The condition is repeated outside the
/// subquery so that a row changed since the subquery's snapshot is judged again as it now is.
const PURGE_BATCH: &str = "DELETE FROM replay WHERE mandate_id IN (SELECT mandate_id FROM replay \
     WHERE deadline < ?1 AND ((state NOT IN ('received', 'receipted') AND claim IS NULL) OR deadline < ?3) LIMIT ?2) \
     AND deadline < ?1 AND ((state NOT IN ('received', 'receipted') AND claim IS NULL) OR deadline < ?3)";
const PURGE_BATCH_SIZE: i64 = 10_000;
const INSERT_PAYMENT: &str = "INSERT INTO replay (mandate_id, nonce_key, deadline, state, request, submission_id, \
     claim, claimed_until, first_seen, updated_at) VALUES (?1, ?2, ?3, 'received', ?4, ?5, ?6, ?7, ?8, ?8) \
     ON CONFLICT DO NOTHING";
const SELECT_PAYMENT: &str = "SELECT state, request, submission_id, receipt, failure, first_seen, claimed_until, claim \
     FROM replay WHERE mandate_id = ?1";
/// The same, locking the row until the transaction ends: presentations of one mandate queue here.
const LOCK_PAYMENT: &str = "SELECT state, request, submission_id, receipt, failure, first_seen, claimed_until, claim \
     FROM replay WHERE mandate_id = ?1 FOR UPDATE";
const TAKE: &str = "UPDATE replay SET claim = ?2, claimed_until = ?3, updated_at = ?4 WHERE mandate_id = ?1";
const SET_RECEIPTED: &str = "UPDATE replay SET state = 'receipted', receipt = ?3, updated_at = ?4 \
     WHERE mandate_id = ?1 AND claim = ?2 AND state = 'received'";
const SET_SERVED: &str = "UPDATE replay SET state = 'served', receipt = ?3, claimed_until = ?4, updated_at = ?5 \
     WHERE mandate_id = ?1 AND claim = ?2 AND state IN ('received', 'receipted', 'served')";
/// The delivery is over: the claim goes, and a served record without a claim is final.
const SET_DELIVERED: &str = "UPDATE replay SET claim = NULL, claimed_until = 0, updated_at = ?3 \
     WHERE mandate_id = ?1 AND claim = ?2 AND state = 'served'";
const SET_FAILED: &str = "UPDATE replay SET state = 'failed', failure = ?3, claim = NULL, claimed_until = 0, \
     updated_at = ?4 WHERE mandate_id = ?1 AND claim = ?2 AND state = 'received'";
/// A serve taken over and given up undelivered is owed again: it goes back to `receipted`.
const RELEASE: &str = "UPDATE replay SET state = CASE state WHEN 'served' THEN 'receipted' ELSE state END, \
     claim = NULL, claimed_until = 0, updated_at = ?3 WHERE mandate_id = ?1 AND claim = ?2";
/// How often one call tries again when the row that refused its insert was purged before it
/// could be read (each try is a statement, not a new transaction).
const ATTEMPTS: usize = 3;

/// Settings of a [`PostgresStore`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostgresStoreOptions {
    /// Seconds an entry is kept after its deadline (see the crate docs). Default 0.
    pub retention: u64,
    /// The connection pool and its timeouts: how long a call waits for a connection and for a
    /// row lock held by another payee before failing with `replay_store_unavailable`.
    pub db: DbOptions,
}

/// A durable replay and payment store in Postgres, shared by any number of payee processes on
/// any number of hosts (spec `aep2.md#payee-payment-state`).
///
/// The same guarantees as [`SqliteStore`](crate::SqliteStore): of concurrent presentations of
/// one mandate, through any handles, at most one is accepted (`mandate_replayed` is checked
/// before `nonce_reused`); a call that cannot reach the server, or waits for a row lock past
/// the busy timeout, fails with `replay_store_unavailable` and records nothing.
///
/// Every statement runs through the store layer ([`crate::db`]) at `READ COMMITTED` with
/// `synchronous_commit = on`. The payee's hot path takes no store-wide lock: what makes it safe
/// is the two unique keys and row locks, so payees sharing one database only ever wait for each
/// other over the same mandate (or nonce key), never over different ones.
///
/// | operation | transaction | why it is safe |
/// |---|---|---|
/// | [`check_and_insert`](ReplayStore::check_and_insert), the insert of [`begin`](PaymentStore::begin) | [`Db::write_keyed`] | `INSERT … ON CONFLICT DO NOTHING`: the primary key (mandate id) and `UNIQUE (nonce_key)` admit one row per key; a concurrent inserter of the same key is waited for. The purge horizon is read *after* the insert, in a statement of its own (see below). |
/// | a taken-over record in [`begin`](PaymentStore::begin) | [`Db::write_keyed`] | `SELECT … FOR UPDATE` of the one row: concurrent presentations of a mandate queue on its row lock, and each reads the version the previous one committed. |
/// | `receipted`, `served`, `delivered`, `failed`, `release` | [`Db::write_keyed`] | one `UPDATE` of one row with a `WHERE mandate_id = ? AND claim = ? AND state …` guard, which `READ COMMITTED` re-evaluates on the latest version of a row it had to wait for. |
/// | [`purge`](ReplayStore::purge) | [`Db::write`] (the store lock) | rare and bulk: the fleet's purges run one at a time instead of fighting over the same rows; nothing on the hot path takes the lock, so it delays no payment. |
/// | `len`, `lookup`, `unfinished` | [`Db::read`] | one snapshot. |
///
/// **Purge versus insert.** A purge deletes entries and raises the horizon in one transaction.
/// For an insert of a key to succeed where a purge deleted the old entry, the unique check must
/// have found that deletion committed (it waits for an uncommitted deleter), so the purge
/// committed before the `INSERT` returned; the horizon read by the *next* statement, whose
/// snapshot is taken after that, then includes the purge's raise and refuses the key with
/// `expired`. (Reading the horizon in the `INSERT` itself, or before it, would not do: that
/// snapshot may predate the purge.) So no lock on the horizon row is needed on the hot path, and
/// disagreeing clocks can make the store refuse a mandate, never accept one twice.
///
/// The tables live in the Postgres schema [`PostgresStore::NAMESPACE`] (created on first open),
/// or the one named by a `schema=NAME` parameter of the URL; the schema must hold only this
/// store. Call [`purge`](ReplayStore::purge) periodically, from any payee.
#[derive(Debug)]
pub struct PostgresStore {
    db: Db,
    retention: u64,
}

impl PostgresStore {
    /// The Postgres schema the tables live in unless the URL names another.
    pub const NAMESPACE: &'static str = "aep2_payee";

    /// The version of the tables this build creates and reads (recorded in the schema's
    /// `aep2_store` mark; the Postgres tables are versioned on their own, apart from SQLite's).
    pub const SCHEMA_VERSION: i32 = 1;

    /// Opens (creating the schema and tables if needed) the store at a `postgres://` URL with
    /// default options.
    pub fn open(url: &str) -> Result<PostgresStore, Error> {
        PostgresStore::open_with(url, &PostgresStoreOptions::default())
    }

    /// Opens (creating the schema and tables if needed) the store at a `postgres://` or
    /// `postgresql://` URL.
    ///
    /// Fails with `replay_store_unavailable` if `url` is not a Postgres URL, the server cannot
    /// be reached, or the schema holds something else or a version this build does not read.
    pub fn open_with(url: &str, options: &PostgresStoreOptions) -> Result<PostgresStore, Error> {
        let location = Location::parse(url);
        if !matches!(location, Location::Postgres(_)) {
            return Err(Error::new(
                Reason::ReplayStoreUnavailable,
                format!(
                    "{}: not a postgres:// URL (a SQLite file is a SqliteStore)",
                    location.display()
                ),
            ));
        }
        Ok(PostgresStore {
            db: Db::open(&location, &options.db, &KIND)?,
            retention: options.retention,
        })
    }

    /// The retention in seconds.
    pub fn retention(&self) -> u64 {
        self.retention
    }

    /// Runs one claim-guarded `UPDATE` (`?1` the mandate id, `?2` the claim token, then `rest`);
    /// `Ok(true)` if it changed the record. Keyed: the guard, re-checked on the row's latest
    /// version after any wait for its lock, is the whole rule.
    fn transition(&self, what: &str, sql: &str, claim: &Claim, rest: &[crate::db::Value]) -> Result<bool, Error> {
        let mut all: Vec<crate::db::Value> = vec![claim.mandate_id.into(), claim.token.into()];
        all.extend_from_slice(rest);
        self.db.write_keyed(what, |tx| Ok(tx.execute(sql, &all)? == 1))
    }
}

/// The purge horizon, read in a statement of its own (see the module docs for why it must
/// follow the insert it judges).
fn horizon(tx: &mut Tx<'_>) -> Result<u64, Error> {
    tx.query_one(PURGED_BELOW, params![])?.uint(0)
}

fn replayed() -> Error {
    Error::new(Reason::MandateReplayed, "mandate id already recorded")
}

fn nonce_reused() -> Error {
    Error::new(
        Reason::NonceReused,
        "another mandate with this nonce key is already recorded",
    )
}

/// The row that refused an insert was purged before it could be read, every time.
fn vanished() -> Error {
    unavailable(
        KIND.name(),
        "insert",
        "refused by a key whose record was purged at the same time; present the mandate again",
    )
}

/// A row of `SELECT_PAYMENT`: the record and its claim token.
fn payment_row(row: &Row) -> Result<(PaymentRecord, Option<[u8; 16]>), Error> {
    let state = row.text(0)?;
    let state = PaymentState::parse(state).ok_or_else(|| {
        Error::new(
            Reason::ReplayStoreUnavailable,
            format!("unknown payment state {state:?}"),
        )
    })?;
    let record = PaymentRecord {
        state,
        // Plain replay records (made by check_and_insert) have no request or submission id.
        request: row.opt_array::<32>(1)?.unwrap_or([0; 32]),
        submission_id: row.opt_array::<16>(2)?.unwrap_or([0; 16]),
        receipt: row.opt_text(3)?.map(str::to_owned),
        failure: row.opt_text(4)?.map(str::to_owned),
        first_seen: row.uint(5)?,
        claimed_until: row.uint(6)?,
    };
    Ok((record, row.opt_array::<16>(7)?))
}

impl ReplayStore for PostgresStore {
    fn check_and_insert(&self, key: &ReplayKey, now: u64) -> Result<(), Error> {
        check_not_expired(key, now, self.retention)?;
        // Keyed: the unique keys decide, and a refusal is read after the insert waited for
        // (and saw committed) whatever refused it.
        self.db.write_keyed("check and insert", |tx| {
            for _ in 0..ATTEMPTS {
                if tx.execute(INSERT, params![key.mandate_id, key.nonce_key, key.deadline])? == 1 {
                    // An error rolls the insert back.
                    return check_not_forgotten(key, horizon(tx)?);
                }
                if tx.query_opt(HAS_ID, params![key.mandate_id])?.is_some() {
                    return Err(replayed());
                }
                if tx.query_opt(HAS_NONCE, params![key.nonce_key])?.is_some() {
                    return Err(nonce_reused());
                }
            }
            Err(vanished())
        })
    }

    fn purge(&self, now: u64) -> Result<usize, Error> {
        let cutoff_at = cutoff(now, self.retention);
        let unfinished_cutoff = cutoff_at.saturating_sub(UNFINISHED_GRACE);
        let mut total: usize = 0;
        loop {
            // One transaction per batch, under the store lock (see the module docs): the
            // horizon rises with the deletions it covers, first, so that it is never below a
            // deleted entry's deadline once they commit.
            let removed = self.db.write("purge", |tx| {
                tx.execute(RAISE_PURGED_BELOW, params![cutoff_at])?;
                tx.execute(PURGE_BATCH, params![cutoff_at, PURGE_BATCH_SIZE, unfinished_cutoff])
            })?;
            total = total.saturating_add(usize::try_from(removed).unwrap_or(usize::MAX));
            if removed < PURGE_BATCH_SIZE.unsigned_abs() {
                return Ok(total);
            }
        }
    }

    fn len(&self) -> Result<usize, Error> {
        let n = self.db.read("count", |tx| {
            tx.query_one("SELECT count(*) FROM replay", params![])?.uint(0)
        })?;
        usize::try_from(n).map_err(|_| Error::new(Reason::ReplayStoreUnavailable, "count out of range"))
    }
}

impl PaymentStore for PostgresStore {
    fn begin(&self, key: &ReplayKey, p: &Presentation, now: u64) -> Result<Begun, Error> {
        let claim = Claim {
            mandate_id: key.mandate_id,
            token: p.token,
        };
        let until = now.saturating_add(p.lease);
        // Keyed: a new mandate is decided by the unique keys, an existing one by its row lock.
        self.db.write_keyed("begin", |tx| {
            // An expired key may still resume its record, but is never inserted.
            let fresh = check_not_expired(key, now, self.retention);
            for _ in 0..ATTEMPTS {
                // Insert first: the common case (a new mandate) costs one statement.
                if fresh.is_ok()
                    && tx.execute(
                        INSERT_PAYMENT,
                        params![
                            key.mandate_id,
                            key.nonce_key,
                            key.deadline,
                            p.request,
                            p.submission_id,
                            p.token,
                            until,
                            now
                        ],
                    )? == 1
                {
                    check_not_forgotten(key, horizon(tx)?)?;
                    return Ok(Begun::Fresh(claim));
                }
                // The mandate id may be recorded: lock its row (waiting for a presentation that
                // holds it) and judge the version it committed.
                if let Some(row) = tx.query_opt(LOCK_PAYMENT, params![key.mandate_id])? {
                    let (record, token) = payment_row(&row)?;
                    payment::may_take(&record, token, &p.request, now)?;
                    tx.execute(TAKE, params![key.mandate_id, p.token, until, now])?;
                    return Ok(Begun::Resumed { claim, record });
                }
                fresh.clone()?;
                if tx.query_opt(HAS_NONCE, params![key.nonce_key])?.is_some() {
                    return Err(nonce_reused());
                }
                // Whatever refused the insert was purged meanwhile: try again.
            }
            Err(vanished())
        })
    }

    fn lookup(&self, mandate_id: &[u8; 32]) -> Result<Option<PaymentRecord>, Error> {
        self.db.read("look up a payment record", |tx| {
            tx.query_opt(SELECT_PAYMENT, params![mandate_id])?
                .map(|row| payment_row(&row).map(|(record, _)| record))
                .transpose()
        })
    }

    fn receipted(&self, claim: &Claim, receipt: &str, now: u64) -> Result<bool, Error> {
        self.transition("record the receipt", SET_RECEIPTED, claim, params![receipt, now])
    }

    fn served(&self, claim: &Claim, receipt: &str, until: u64, now: u64) -> Result<bool, Error> {
        self.transition("record the serve", SET_SERVED, claim, params![receipt, until, now])
    }

    fn delivered(&self, claim: &Claim, now: u64) -> Result<bool, Error> {
        // Durable like every other transition: on Postgres the mark is one single-row update,
        // with no store lock to wait for, so it needs no file of its own as in SQLite.
        self.transition("record the delivery", SET_DELIVERED, claim, params![now])
    }

    fn failed(&self, claim: &Claim, reason: &str, now: u64) -> Result<bool, Error> {
        self.transition("record the refusal", SET_FAILED, claim, params![reason, now])
    }

    fn release(&self, claim: &Claim, now: u64) -> Result<bool, Error> {
        self.transition("release the claim", RELEASE, claim, params![now])
    }

    fn unfinished(&self) -> Result<usize, Error> {
        let n = self.db.read("count the unfinished", |tx| {
            tx.query_one(
                "SELECT count(*) FROM replay WHERE state IN ('received', 'receipted')",
                params![],
            )?
            .uint(0)
        })?;
        usize::try_from(n).map_err(|_| Error::new(Reason::ReplayStoreUnavailable, "count out of range"))
    }
}
