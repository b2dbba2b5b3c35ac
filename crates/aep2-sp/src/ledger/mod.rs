//! The durable ledger (spec `aep2.md#sp-funds`): deposits, per-account balances and
//! reservations, and every accepted mandate with its receipt and status, in one database: a
//! SQLite file or a Postgres schema, through the store layer ([`aep2_replay::db`]).
//!
//! **Atomicity.** [`Ledger::enqueue`] runs one [`Db::write`] transaction, serialised with every
//! other writing transaction of the ledger (SQLite: `BEGIN IMMEDIATE`, the file's single write
//! lock; Postgres: `READ COMMITTED` and the ledger's transaction-scoped advisory lock, both
//! taken before the first read), that in order: returns the stored row if the mandate id is
//! present (idempotent re-submission), refuses a different mandate with the same nonce key
//! (`nonce_reused`), applies the lane rules, refuses an amount above `balance − reserved`
//! (`insufficient_funds`), inserts the mandate and raises the reservation. Any number of
//! connections, threads, processes or hosts are serialised by that lock, so concurrent
//! submissions can neither accept a mandate twice nor reserve more than a balance. The rules
//! are written once, as portable SQL and Rust run inside the transaction; only the schema
//! differs per backend.
//!
//! **Durability.** SQLite: WAL, group commit, the log synced before any answer (spec
//! `aep2.md#store-guarantees`); Postgres: `synchronous_commit = on`. A
//! commit is durable before `enqueue` returns, and the service shows a receipt only after that,
//! so every receipt it ever sent survives a crash.
//!
//! **Amounts** are `U256`, stored as 32-byte big-endian blobs (`BLOB`, `BYTEA`: database
//! integers have 64 bits), and added and compared in Rust inside the transaction: no precision
//! is ever lost.

use aep2::uint::U256;
use aep2::{Error, Reason};
use aep2_replay::db::{Db, DbOptions, Kind, Location, PostgresOptions, Row, Tx};
use aep2_replay::params;
use aep2_replay::sqlite_file::FileKind;
use std::time::Duration;

mod audit;
mod settlement;

pub use settlement::{BatchState, FundsEvent, ItemOutcome, NewBatch, QueuedMandate, StoredBatch, TxAttempt};

/// The settlement tables (schema version 3), in the fresh schema and in the migration from 2.
macro_rules! settlement_tables {
    () => {
        "
CREATE INDEX mandates_batch ON mandates (batch_id) WHERE batch_id IS NOT NULL;
CREATE TABLE batches (
    batch_id BLOB NOT NULL PRIMARY KEY CHECK (length(batch_id) = 32),
    domain TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('signed', 'confirmed', 'abandoned')),
    sp_nonce INTEGER NOT NULL,
    tx_hash BLOB NOT NULL CHECK (length(tx_hash) = 32),
    raw_tx BLOB NOT NULL,
    items INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    block INTEGER,
    gas_used INTEGER,
    settled INTEGER,
    skipped INTEGER
) STRICT;
CREATE INDEX batches_state ON batches (domain, state);
CREATE TABLE withdrawals (
    id TEXT NOT NULL PRIMARY KEY,
    domain TEXT NOT NULL,
    payer TEXT NOT NULL,
    token TEXT NOT NULL,
    amount BLOB NOT NULL CHECK (length(amount) = 32),
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE chain_cursor (
    domain TEXT NOT NULL PRIMARY KEY,
    next_block INTEGER NOT NULL
) STRICT;
"
    };
}

/// The transactions sent for each batch (schema version 4): a stuck one is replaced by one with
/// higher fees at the same nonce, and any of them may be the one included.
macro_rules! attempt_table {
    () => {
        "
CREATE TABLE batch_txs (
    tx_hash BLOB NOT NULL PRIMARY KEY CHECK (length(tx_hash) = 32),
    batch_id BLOB NOT NULL REFERENCES batches (batch_id),
    raw_tx BLOB NOT NULL,
    max_fee TEXT NOT NULL,
    priority_fee TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX batch_txs_batch ON batch_txs (batch_id, created_at);
"
    };
}

/// The spending-lane counters (schema version 5, spec `aep2.md#lane-settlement`): one row per
/// lane seen in an accepted mandate's chain or a revocation's, and the index of a lane's mandates.
macro_rules! lane_tables {
    () => {
        "
CREATE TABLE lanes (
    lane_id BLOB NOT NULL PRIMARY KEY CHECK (length(lane_id) = 32),
    domain TEXT NOT NULL,
    parent BLOB NOT NULL CHECK (length(parent) = 32),
    owner TEXT NOT NULL,
    agent TEXT NOT NULL,
    token TEXT NOT NULL,
    lane TEXT NOT NULL,
    total BLOB NOT NULL CHECK (length(total) = 32),
    spent BLOB NOT NULL CHECK (length(spent) = 32),
    max_payments INTEGER NOT NULL,
    payments INTEGER NOT NULL,
    period INTEGER NOT NULL,
    allowance BLOB NOT NULL CHECK (length(allowance) = 32),
    valid_from INTEGER NOT NULL,
    window_index INTEGER NOT NULL,
    window_spent BLOB NOT NULL CHECK (length(window_spent) = 32),
    revoked_at INTEGER,
    revocation TEXT,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX lanes_parent ON lanes (parent);
CREATE INDEX mandates_lane ON mandates (lane_id, accepted_at);
CREATE UNIQUE INDEX mandates_seq ON mandates (seq);
CREATE TABLE mandate_lanes (
    lane_id BLOB NOT NULL CHECK (length(lane_id) = 32),
    seq INTEGER NOT NULL,
    PRIMARY KEY (lane_id, seq)
) STRICT, WITHOUT ROWID;
"
    };
}

const SCHEMA: &str = concat!(
    "
CREATE TABLE accounts (
    domain TEXT NOT NULL,
    payer TEXT NOT NULL,
    token TEXT NOT NULL,
    balance BLOB NOT NULL CHECK (length(balance) = 32),
    reserved BLOB NOT NULL CHECK (length(reserved) = 32),
    withdrawing BLOB NOT NULL DEFAULT X'0000000000000000000000000000000000000000000000000000000000000000'
        CHECK (length(withdrawing) = 32),
    PRIMARY KEY (domain, payer, token)
) STRICT, WITHOUT ROWID;
CREATE TABLE deposits (
    id TEXT NOT NULL PRIMARY KEY,
    domain TEXT NOT NULL,
    payer TEXT NOT NULL,
    token TEXT NOT NULL,
    amount BLOB NOT NULL CHECK (length(amount) = 32),
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE mandates (
    mandate_id BLOB NOT NULL PRIMARY KEY CHECK (length(mandate_id) = 32),
    nonce_key BLOB NOT NULL UNIQUE CHECK (length(nonce_key) = 32),
    profile TEXT NOT NULL,
    domain TEXT NOT NULL,
    payer TEXT NOT NULL,
    token TEXT NOT NULL,
    payee TEXT NOT NULL,
    amount BLOB NOT NULL CHECK (length(amount) = 32),
    nonce TEXT NOT NULL,
    deadline INTEGER NOT NULL,
    ref TEXT NOT NULL,
    envelope TEXT NOT NULL,
    receipt TEXT NOT NULL,
    enqueue_deadline INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'settled', 'failed')),
    accepted_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    submission_id BLOB CHECK (submission_id IS NULL OR length(submission_id) = 16),
    batch_id BLOB CHECK (batch_id IS NULL OR length(batch_id) = 32),
    settled_tx BLOB CHECK (settled_tx IS NULL OR length(settled_tx) = 32),
    settled_block INTEGER,
    failure TEXT,
    lane_id BLOB CHECK (lane_id IS NULL OR length(lane_id) = 32),
    request TEXT,
    seq INTEGER
) STRICT;
CREATE INDEX mandates_status ON mandates (status, accepted_at);
CREATE INDEX mandates_account ON mandates (domain, payer, token);
",
    settlement_tables!(),
    attempt_table!(),
    lane_tables!()
);

/// Version 1 to 2: the payee's submission id (spec `aep2.md#sp-enqueue`, *Submission id*).
const MIGRATE_1_TO_2: &str =
    "ALTER TABLE mandates ADD COLUMN submission_id BLOB CHECK (submission_id IS NULL OR length(submission_id) = 16);";

/// Version 2 to 3: settlement (spec `aep2.md#settlement`): a mandate's batch, transaction,
/// block and failure; batches; chain withdrawals and the chain cursor.
const MIGRATE_2_TO_3: &str = concat!(
    "
ALTER TABLE accounts ADD COLUMN withdrawing BLOB NOT NULL
    DEFAULT X'0000000000000000000000000000000000000000000000000000000000000000' CHECK (length(withdrawing) = 32);
ALTER TABLE mandates ADD COLUMN batch_id BLOB CHECK (batch_id IS NULL OR length(batch_id) = 32);
ALTER TABLE mandates ADD COLUMN settled_tx BLOB CHECK (settled_tx IS NULL OR length(settled_tx) = 32);
ALTER TABLE mandates ADD COLUMN settled_block INTEGER;
ALTER TABLE mandates ADD COLUMN failure TEXT;
",
    settlement_tables!()
);

/// Version 3 to 4: every transaction of a batch (fee bumping, spec `aep2.md#settlement-node-errors`).
const MIGRATE_3_TO_4: &str = concat!(
    attempt_table!(),
    "INSERT INTO batch_txs (tx_hash, batch_id, raw_tx, max_fee, priority_fee, created_at) \
     SELECT tx_hash, batch_id, raw_tx, '0', '0', created_at FROM batches;"
);

/// Version 4 to 5: spending lanes (spec `aep2.md#lane-settlement`): the lane counters, a
/// mandate's leaf lane, and the audit trail's request descriptor, storage sequence number (in
/// storage order for the mandates already stored) and index of every lane's payments.
const MIGRATE_4_TO_5: &str = concat!(
    "
ALTER TABLE mandates ADD COLUMN lane_id BLOB CHECK (lane_id IS NULL OR length(lane_id) = 32);
ALTER TABLE mandates ADD COLUMN request TEXT;
ALTER TABLE mandates ADD COLUMN seq INTEGER;
UPDATE mandates SET seq = rowid;
",
    lane_tables!()
);

/// The Postgres ledger (schema version 5): the tables and constraints of the SQLite schema in
/// Postgres types (`BYTEA`, `BIGINT`). Account keys compare bytewise (`COLLATE "C"`), as in
/// SQLite, so accounts list in the same order. `batch_txs.rowid` stands for SQLite's implicit
/// row id: the order attempts were recorded in.
const PG_SCHEMA: &str = r#"
CREATE TABLE accounts (
    domain TEXT COLLATE "C" NOT NULL,
    payer TEXT COLLATE "C" NOT NULL,
    token TEXT COLLATE "C" NOT NULL,
    balance BYTEA NOT NULL CHECK (length(balance) = 32),
    reserved BYTEA NOT NULL CHECK (length(reserved) = 32),
    withdrawing BYTEA NOT NULL DEFAULT decode(repeat('00', 32), 'hex') CHECK (length(withdrawing) = 32),
    PRIMARY KEY (domain, payer, token)
);
CREATE TABLE deposits (
    id TEXT NOT NULL PRIMARY KEY,
    domain TEXT NOT NULL,
    payer TEXT NOT NULL,
    token TEXT NOT NULL,
    amount BYTEA NOT NULL CHECK (length(amount) = 32),
    created_at BIGINT NOT NULL
);
CREATE TABLE mandates (
    mandate_id BYTEA NOT NULL PRIMARY KEY CHECK (length(mandate_id) = 32),
    nonce_key BYTEA NOT NULL UNIQUE CHECK (length(nonce_key) = 32),
    profile TEXT NOT NULL,
    domain TEXT NOT NULL,
    payer TEXT NOT NULL,
    token TEXT NOT NULL,
    payee TEXT NOT NULL,
    amount BYTEA NOT NULL CHECK (length(amount) = 32),
    nonce TEXT NOT NULL,
    deadline BIGINT NOT NULL,
    ref TEXT NOT NULL,
    envelope TEXT NOT NULL,
    receipt TEXT NOT NULL,
    enqueue_deadline BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'settled', 'failed')),
    accepted_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    submission_id BYTEA CHECK (submission_id IS NULL OR length(submission_id) = 16),
    batch_id BYTEA CHECK (batch_id IS NULL OR length(batch_id) = 32),
    settled_tx BYTEA CHECK (settled_tx IS NULL OR length(settled_tx) = 32),
    settled_block BIGINT,
    failure TEXT,
    lane_id BYTEA CHECK (lane_id IS NULL OR length(lane_id) = 32),
    request TEXT,
    seq BIGINT
);
CREATE INDEX mandates_status ON mandates (status, accepted_at);
CREATE INDEX mandates_account ON mandates (domain, payer, token);
CREATE INDEX mandates_batch ON mandates (batch_id) WHERE batch_id IS NOT NULL;
CREATE TABLE batches (
    batch_id BYTEA NOT NULL PRIMARY KEY CHECK (length(batch_id) = 32),
    domain TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('signed', 'confirmed', 'abandoned')),
    sp_nonce BIGINT NOT NULL,
    tx_hash BYTEA NOT NULL CHECK (length(tx_hash) = 32),
    raw_tx BYTEA NOT NULL,
    items BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    block BIGINT,
    gas_used BIGINT,
    settled BIGINT,
    skipped BIGINT
);
CREATE INDEX batches_state ON batches (domain, state);
CREATE TABLE withdrawals (
    id TEXT NOT NULL PRIMARY KEY,
    domain TEXT NOT NULL,
    payer TEXT NOT NULL,
    token TEXT NOT NULL,
    amount BYTEA NOT NULL CHECK (length(amount) = 32),
    created_at BIGINT NOT NULL
);
CREATE TABLE chain_cursor (
    domain TEXT NOT NULL PRIMARY KEY,
    next_block BIGINT NOT NULL
);
CREATE TABLE batch_txs (
    tx_hash BYTEA NOT NULL PRIMARY KEY CHECK (length(tx_hash) = 32),
    batch_id BYTEA NOT NULL REFERENCES batches (batch_id),
    raw_tx BYTEA NOT NULL,
    max_fee TEXT NOT NULL,
    priority_fee TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    rowid BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX batch_txs_batch ON batch_txs (batch_id, created_at);
CREATE TABLE lanes (
    lane_id BYTEA NOT NULL PRIMARY KEY CHECK (length(lane_id) = 32),
    domain TEXT NOT NULL,
    parent BYTEA NOT NULL CHECK (length(parent) = 32),
    owner TEXT NOT NULL,
    agent TEXT NOT NULL,
    token TEXT NOT NULL,
    lane TEXT NOT NULL,
    total BYTEA NOT NULL CHECK (length(total) = 32),
    spent BYTEA NOT NULL CHECK (length(spent) = 32),
    max_payments BIGINT NOT NULL,
    payments BIGINT NOT NULL,
    period BIGINT NOT NULL,
    allowance BYTEA NOT NULL CHECK (length(allowance) = 32),
    valid_from BIGINT NOT NULL,
    window_index BIGINT NOT NULL,
    window_spent BYTEA NOT NULL CHECK (length(window_spent) = 32),
    revoked_at BIGINT,
    revocation TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX lanes_parent ON lanes (parent);
CREATE INDEX mandates_lane ON mandates (lane_id, accepted_at);
CREATE UNIQUE INDEX mandates_seq ON mandates (seq);
CREATE TABLE mandate_lanes (
    lane_id BYTEA NOT NULL CHECK (length(lane_id) = 32),
    seq BIGINT NOT NULL,
    PRIMARY KEY (lane_id, seq)
);
"#;

/// What a ledger is, on either backend.
const KIND: Kind = Kind {
    sqlite: FileKind {
        name: "SP ledger",
        application_id: Ledger::APPLICATION_ID,
        schema_version: Ledger::SCHEMA_VERSION,
        schema: SCHEMA,
        migrations: &[
            (1, MIGRATE_1_TO_2),
            (2, MIGRATE_2_TO_3),
            (3, MIGRATE_3_TO_4),
            (4, MIGRATE_4_TO_5),
        ],
    },
    pg_namespace: "aep2_ledger",
    pg_schema: PG_SCHEMA,
    // No Postgres ledger predates version 5.
    pg_migrations: &[],
};

const MANDATE_COLUMNS: &str = "mandate_id, profile, domain, payer, token, payee, amount, nonce, deadline, ref, \
     envelope, receipt, enqueue_deadline, status, accepted_at, submission_id, batch_id, settled_tx, settled_block, failure, \
     lane_id, request";

/// How many SQLite commits carried how many writing calls: `requests / commits` is the mean
/// group size (for tests and benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommits {
    /// Transactions committed (or attempted).
    pub commits: u64,
    /// Writing calls those transactions carried.
    pub requests: u64,
}

/// Settings of a [`Ledger`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerOptions {
    /// How long a call waits for another connection (thread, process or host) to release the
    /// write lock (Postgres: also for a pooled connection) before failing with
    /// `replay_store_unavailable`. Default 5 s.
    pub busy_timeout: Duration,
    /// Postgres: the connections this process keeps to the server (default 8). Ignored for
    /// SQLite.
    pub pool_size: usize,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            busy_timeout: Duration::from_secs(5),
            pool_size: PostgresOptions::default().pool_size,
        }
    }
}

impl LedgerOptions {
    fn db(&self) -> DbOptions {
        DbOptions {
            busy_timeout: self.busy_timeout,
            postgres: PostgresOptions {
                pool_size: self.pool_size,
            },
        }
    }
}

/// A funded account: a payer's balance of one token in one debit-wallet deployment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey {
    /// The deployment ([`crate::domain_key`]): `eip712:<chainId>:<contract>`,
    /// `ed25519:<network>:<wallet>` or `solana-mvp`.
    pub domain: String,
    /// The payer in display form (EIP-55 address or base58 key).
    pub payer: String,
    /// The token in display form.
    pub token: String,
}

/// A credit to an account, applied once per `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deposit {
    /// The caller's id for this deposit; applying the same id again changes nothing.
    pub id: String,
    /// The account credited.
    pub account: AccountKey,
    /// The amount credited (token base units).
    pub amount: U256,
}

/// What [`Ledger::deposit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepositOutcome {
    /// The deposit was new and is now part of the balance.
    Applied,
    /// The same deposit (id, account and amount) was applied before; nothing changed.
    AlreadyApplied,
    /// The id was used before for a different account or amount; nothing changed.
    Conflict,
}

/// An account's funds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balance {
    /// The account.
    pub account: AccountKey,
    /// The sum of its deposits.
    pub balance: U256,
    /// The sum of the amounts of its accepted mandates.
    pub reserved: U256,
}

impl Balance {
    /// `balance − reserved` (never negative: the ledger keeps `reserved ≤ balance`).
    pub fn available(&self) -> U256 {
        sub(&self.balance, &self.reserved).unwrap_or(U256::ZERO)
    }
}

/// A stored mandate's settlement status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Verified, funded, reserved and receipted; waiting for settlement.
    Accepted,
    /// Settled on chain (reserved for a settlement worker).
    Settled,
    /// Settlement failed (reserved for a settlement worker).
    Failed,
}

impl Status {
    /// Stable name: `accepted`, `settled`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Settled => "settled",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        [Status::Accepted, Status::Settled, Status::Failed]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// A mandate to record, with the receipt to store for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMandate {
    /// The mandate id (spec `aep2.md#profiles`): the idempotency key.
    pub mandate_id: [u8; 32],
    /// The nonce key (spec `aep2.md#replay`): one mandate per payer, token, nonce and deployment.
    pub nonce_key: [u8; 32],
    /// The profile name.
    pub profile: String,
    /// The account debited.
    pub account: AccountKey,
    /// The payee in display form.
    pub payee: String,
    /// The amount reserved.
    pub amount: U256,
    /// The nonce in decimal.
    pub nonce: String,
    /// The mandate's deadline (unix seconds).
    pub deadline: u64,
    /// The mandate's `ref` as on the wire.
    pub reference: String,
    /// The envelope, compact JSON.
    pub envelope: String,
    /// The signed receipt, compact JSON: returned byte for byte on every re-submission.
    pub receipt: String,
    /// The receipt's `enqueueDeadline`.
    pub enqueue_deadline: u64,
    /// Acceptance time (unix seconds).
    pub now: u64,
    /// The submitting payee's submission id, if it sent one.
    pub submission_id: Option<[u8; 16]>,
    /// The lane chain it is signed under, root first (empty for a plain mandate): its total,
    /// count and allowance are charged against every link in the transaction that stores it.
    pub lanes: Vec<LaneLink>,
    /// The request descriptor it paid for, as recorded for the audit trail (`None`: not
    /// recorded).
    pub request: Option<String>,
}

/// One link of a lane chain as the ledger records and counts it (spec `aep2.md#lane-settlement`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneLink {
    /// The lane id.
    pub id: [u8; 32],
    /// The deployment ([`crate::domain_key`]).
    pub domain: String,
    /// The parent lane's id; zero for a root lane.
    pub parent: [u8; 32],
    /// The owner in display form.
    pub owner: String,
    /// The agent in display form.
    pub agent: String,
    /// The token in display form.
    pub token: String,
    /// The signed lane, compact JSON.
    pub signed: String,
    /// The lane's `total`.
    pub total: U256,
    /// Its `maxPayments` (0: no limit).
    pub max_payments: u64,
    /// Its `period` (0: no allowance).
    pub period: u64,
    /// Its `allowance`.
    pub allowance: U256,
    /// Its `validFrom`: the start of its window 0.
    pub valid_from: u64,
}

impl LaneLink {
    /// The index of the window `now` falls in (`(now − validFrom) / period`; 0 without a period).
    pub fn window_at(&self, now: u64) -> u64 {
        window_index(now, self.valid_from, self.period)
    }
}

fn window_index(now: u64, valid_from: u64, period: u64) -> u64 {
    now.saturating_sub(valid_from).checked_div(period).unwrap_or(0)
}

/// A stored lane's counters, as `GET /v1/lanes/{id}` reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneState {
    /// The lane as recorded.
    pub link: LaneLink,
    /// What its mandates and its sub-lanes' have debited (accepted or settled).
    pub spent: U256,
    /// How many mandates under it and its sub-lanes count.
    pub payments: u64,
    /// The window of `now` (the one the report is for).
    pub window_index: u64,
    /// What has been debited in that window.
    pub window_spent: U256,
    /// When it was revoked, if it was (its own revocation, not an ancestor's).
    pub revoked_at: Option<u64>,
    /// When it or an ancestor was revoked, the earliest, if any.
    pub chain_revoked_at: Option<u64>,
    /// The signed revocation, compact JSON, if it was revoked.
    pub revocation: Option<String>,
    /// What can still be spent under it, ancestors included: the least `total − spent` over it
    /// and its stored ancestors.
    pub remaining: U256,
}

/// A mandate as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMandate {
    /// The mandate id.
    pub mandate_id: [u8; 32],
    /// The profile name.
    pub profile: String,
    /// The account debited.
    pub account: AccountKey,
    /// The payee.
    pub payee: String,
    /// The amount.
    pub amount: U256,
    /// The nonce in decimal.
    pub nonce: String,
    /// The mandate's deadline.
    pub deadline: u64,
    /// The mandate's `ref`.
    pub reference: String,
    /// The envelope, compact JSON.
    pub envelope: String,
    /// The receipt, compact JSON, exactly as first issued.
    pub receipt: String,
    /// The receipt's `enqueueDeadline`.
    pub enqueue_deadline: u64,
    /// The settlement status.
    pub status: Status,
    /// When it was accepted (unix seconds).
    pub accepted_at: u64,
    /// The submission id it is held for: the first one any submission brought.
    pub submission_id: Option<[u8; 16]>,
    /// Where its settlement stands (spec `aep2.md#settlement-worker`).
    pub settlement: Settlement,
    /// The id of the leaf lane it is signed under, if any.
    pub lane: Option<[u8; 32]>,
    /// The request descriptor recorded for it, if any.
    pub request: Option<String>,
}

/// A mandate's settlement: batched (`batch`), then settled (`tx`, `block`) or failed
/// (`failure`, the spec reason code the contract gave).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settlement {
    /// The batch it was last put in; `None` while it waits for one.
    pub batch: Option<[u8; 32]>,
    /// The transaction that settled it.
    pub tx: Option<[u8; 32]>,
    /// The block that includes that transaction.
    pub block: Option<u64>,
    /// Why settlement refused it (status `failed`).
    pub failure: Option<String>,
}

/// The result of [`Ledger::enqueue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The stored mandate (for a re-submission: as first stored, with its first receipt).
    pub mandate: StoredMandate,
    /// `true` if this call stored it, `false` if it was stored before.
    pub fresh: bool,
}

/// Counts of stored mandates by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Status `accepted` (the settlement queue).
    pub accepted: u64,
    /// Status `settled`.
    pub settled: u64,
    /// Status `failed`.
    pub failed: u64,
}

/// The SP's durable ledger in a SQLite file or a Postgres schema, safe to share across threads,
/// processes and (Postgres) hosts (see the module docs for atomicity and durability).
#[derive(Debug)]
pub struct Ledger {
    db: Db,
}

impl Ledger {
    /// The `PRAGMA application_id` that marks an SP ledger: "AEPs" in ASCII.
    pub const APPLICATION_ID: i32 = 0x4145_5073;
    /// The `PRAGMA user_version` of the schema this build creates and reads.
    pub const SCHEMA_VERSION: i32 = 5;

    /// Opens (creating if needed) the ledger at `location`: a SQLite file path, or a
    /// `postgres://` URL (its tables in the schema `aep2_ledger` unless the URL's `schema=`
    /// names another).
    ///
    /// Fails with `replay_store_unavailable` if the database cannot be opened, reached or
    /// created, is not a ledger of this schema version, or (SQLite) cannot use WAL.
    pub fn open(location: impl Into<Location>, options: &LedgerOptions) -> Result<Ledger, Error> {
        let db = Db::open(&location.into(), &options.db(), &KIND)?;
        Ok(Ledger { db })
    }

    /// A private in-memory ledger (tests: not durable, not shared).
    pub fn open_in_memory() -> Result<Ledger, Error> {
        Ok(Ledger {
            db: Db::open_in_memory(&KIND)?,
        })
    }

    /// The engine the ledger runs on.
    pub fn backend(&self) -> aep2_replay::db::Backend {
        self.db.backend()
    }

    /// SQLite: how many commits the ledger's writing calls took so far (group commit, spec
    /// `aep2.md#store-guarantees`); `None` on Postgres.
    pub fn group_commits(&self) -> Option<GroupCommits> {
        self.db
            .group_stats()
            .map(|(commits, requests)| GroupCommits { commits, requests })
    }

    /// Credits `deposit.amount` to its account, once per id.
    ///
    /// Errors: `uint_out_of_range` if the balance would exceed 2^256 − 1;
    /// `replay_store_unavailable` on a storage failure.
    pub fn deposit(&self, deposit: &Deposit, now: u64) -> Result<DepositOutcome, Error> {
        self.db.write("deposit", |tx| {
            let existing = tx
                .query_opt(
                    "SELECT domain, payer, token, amount FROM deposits WHERE id = ?1",
                    params![&deposit.id],
                )?
                .map(|r| account_and_amount(&r))
                .transpose()?;
            if let Some((account, amount)) = existing {
                let same = account == deposit.account && amount.as_slice() == deposit.amount.0.as_slice();
                return Ok(if same {
                    DepositOutcome::AlreadyApplied
                } else {
                    DepositOutcome::Conflict
                });
            }
            let (balance, reserved) = read_account(tx, &deposit.account)?;
            let balance = add(&balance, &deposit.amount)
                .ok_or_else(|| Error::new(Reason::UintOutOfRange, "balance would exceed 2^256 - 1"))?;
            write_account(tx, &deposit.account, &balance, &reserved)?;
            tx.execute(
                "INSERT INTO deposits (id, domain, payer, token, amount, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    &deposit.id,
                    &deposit.account.domain,
                    &deposit.account.payer,
                    &deposit.account.token,
                    deposit.amount.0.as_slice(),
                    now
                ],
            )?;
            Ok(DepositOutcome::Applied)
        })
    }

    /// Records a mandate and reserves its amount, or returns the mandate stored before under
    /// the same id (see the module docs for the order of checks).
    ///
    /// Errors: `nonce_reused`, the lane codes of [`Ledger::enqueue_with`], `insufficient_funds`,
    /// `replay_store_unavailable`.
    pub fn enqueue(&self, m: &NewMandate) -> Result<Enqueued, Error> {
        self.enqueue_with(m, |_| Ok(m.receipt.clone()))
    }

    /// [`Ledger::enqueue`] with the receipt signed inside the transaction, once the lane
    /// counters are known: `receipt` gets what remains under the chain after this payment (the
    /// least `total − spent` over its links; `None` for a plain mandate), and its text is stored
    /// instead of `m.receipt`. It may be called more than once (Postgres runs a transaction
    /// again after a serialization failure): it must have no effect but its answer.
    ///
    /// The lane rules, after the nonce and before the funds (spec `aep2.md#lane-settlement`):
    /// `lane_revoked` if any link is revoked; then for each link, root first,
    /// `lane_payments_exhausted`, `lane_total_exceeded`, `lane_period_exceeded` (in the link's
    /// own window of `m.now`). On acceptance every link's counters grow by the payment.
    pub fn enqueue_with(
        &self,
        m: &NewMandate,
        mut receipt: impl FnMut(Option<&U256>) -> Result<String, Error>,
    ) -> Result<Enqueued, Error> {
        self.db.write("enqueue", |tx| enqueue_in(tx, m, &mut receipt))
    }

    /// The stored mandate with this id, if any.
    pub fn mandate(&self, mandate_id: &[u8; 32]) -> Result<Option<StoredMandate>, Error> {
        self.db
            .read("look up the mandate id", |tx| select_mandate(tx, mandate_id))
    }

    /// A re-submission of a stored mandate: the stored mandate if the submission id matches (see
    /// [`Ledger::enqueue`]), `None` if the mandate is not stored.
    ///
    /// Most submissions are new, and a read finds that without waiting for a commit (the
    /// enqueue's own transaction checks again). A stored mandate is taken in a write, which
    /// records the submission id and, like every write, answers only once what it read is
    /// durable: a receipt is never returned for a mandate whose commit is still being synced.
    ///
    /// Errors: `mandate_replayed` when the mandate is held for another submission id;
    /// `replay_store_unavailable`.
    pub fn resubmission(
        &self,
        mandate_id: &[u8; 32],
        submission_id: Option<[u8; 16]>,
        now: u64,
    ) -> Result<Option<StoredMandate>, Error> {
        let stored = self.db.read("look up the mandate id", |tx| {
            Ok(tx
                .query_opt("SELECT 1 FROM mandates WHERE mandate_id = ?1", params![mandate_id])?
                .is_some())
        })?;
        if !stored {
            return Ok(None);
        }
        self.db.write("resubmission", |tx| {
            let Some(stored) = select_mandate(tx, mandate_id)? else {
                return Ok(None);
            };
            match_submission(tx, stored, submission_id, now).map(Some)
        })
    }

    /// Every stored mandate, oldest first (for audits and tests; the ledger is not paginated).
    pub fn mandates(&self) -> Result<Vec<StoredMandate>, Error> {
        self.db.read("list mandates", |tx| {
            tx.query(
                &format!("SELECT {MANDATE_COLUMNS} FROM mandates ORDER BY accepted_at, mandate_id"),
                params![],
            )?
            .iter()
            .map(row_to_mandate)
            .collect()
        })
    }

    /// The accounts of `payer` (optionally only of `token`), in key order.
    pub fn accounts(&self, payer: &str, token: Option<&str>) -> Result<Vec<Balance>, Error> {
        self.select_accounts(None, Some(payer), token)
    }

    /// Every account of a deployment ([`crate::domain_key`]).
    pub fn domain_accounts(&self, domain: &str) -> Result<Vec<Balance>, Error> {
        self.select_accounts(Some(domain), None, None)
    }

    fn select_accounts(
        &self,
        domain: Option<&str>,
        payer: Option<&str>,
        token: Option<&str>,
    ) -> Result<Vec<Balance>, Error> {
        self.db.read("read accounts", |tx| {
            // The casts give Postgres the parameters' type where `IS NULL` alone does not.
            let rows = tx.query(
                "SELECT domain, payer, token, balance, reserved FROM accounts \
                 WHERE (CAST(?1 AS TEXT) IS NULL OR domain = ?1) AND (CAST(?2 AS TEXT) IS NULL OR payer = ?2) \
                 AND (CAST(?3 AS TEXT) IS NULL OR token = ?3) \
                 ORDER BY domain, payer, token",
                params![domain, payer, token],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(Balance {
                        account: account_at(r, 0)?,
                        balance: blob_u256(r.blob(3)?)?,
                        reserved: blob_u256(r.blob(4)?)?,
                    })
                })
                .collect()
        })
    }

    /// One account's funds (zero if it has never been funded).
    pub fn balance(&self, account: &AccountKey) -> Result<Balance, Error> {
        let (balance, reserved) = self.db.read("read account", |tx| read_account(tx, account))?;
        Ok(Balance {
            account: account.clone(),
            balance,
            reserved,
        })
    }

    /// Counts of stored mandates by status.
    pub fn counts(&self) -> Result<Counts, Error> {
        let rows = self.db.read("count", |tx| {
            tx.query("SELECT status, count(*) FROM mandates GROUP BY status", params![])
        })?;
        let mut c = Counts::default();
        for row in rows {
            let n = row.uint(1)?;
            match Status::parse(row.text(0)?) {
                Some(Status::Accepted) => c.accepted = n,
                Some(Status::Settled) => c.settled = n,
                Some(Status::Failed) => c.failed = n,
                None => {}
            }
        }
        Ok(c)
    }

    /// Checks the ledger's invariants in one read transaction: for every account,
    /// `reserved == Σ amount of its accepted mandates` and `reserved ≤ balance`, and
    /// `balance == Σ its deposits − Σ its settled mandates − Σ its withdrawals`; for every lane,
    /// `spent` and `payments` are the sum and the count of the accepted and settled mandates under
    /// it and its sub-lanes, `spent ≤ total` and `payments ≤ maxPayments` (when set). Returns a description of each violation (empty if sound).
    pub fn audit(&self) -> Result<Vec<String>, Error> {
        self.db.read("audit", audit_in)
    }

    /// Records a revocation of the last link of `chain` (root first; the caller has verified the
    /// chain and the revocation, spec `aep2.md#lane-revocation`), in one transaction: unseen links
    /// are recorded, and the lane is revoked as of `now` unless it already is. Returns when it
    /// was revoked (the first time, for a repeated revocation) and whether this call did it.
    ///
    /// Errors: `replay_store_unavailable`.
    pub fn revoke_lane(&self, chain: &[LaneLink], revocation: &str, now: u64) -> Result<(u64, bool), Error> {
        let Some(leaf) = chain.last() else {
            return Err(Error::new(Reason::LaneDepthExceeded, "the lane chain is empty"));
        };
        self.db.write("revoke", |tx| {
            for l in chain {
                insert_lane(tx, l, now)?;
            }
            let c = read_counters(tx, &leaf.id)?
                .ok_or_else(|| Error::new(Reason::ReplayStoreUnavailable, "a lane row vanished"))?;
            if let Some(at) = c.revoked_at {
                return Ok((at, false));
            }
            tx.execute(
                "UPDATE lanes SET revoked_at = ?2, revocation = ?3 WHERE lane_id = ?1",
                params![leaf.id, now, revocation],
            )?;
            Ok((now, true))
        })
    }

    /// The stored lane `id` with its counters as of `now` (the window of `now`), and what can
    /// still be spent under it, ancestors included; `None` if it was never seen.
    pub fn lane(&self, id: &[u8; 32], now: u64) -> Result<Option<LaneState>, Error> {
        self.db.read("lane", |tx| {
            let Some((link, revocation)) = read_link(tx, id)? else {
                return Ok(None);
            };
            let Some(c) = read_counters(tx, id)? else {
                return Ok(None);
            };
            let (window_index, window_spent) = c.window_spent_at(now);
            let mut remaining = c.remaining();
            let mut chain_revoked_at = c.revoked_at;
            let mut parent = link.parent;
            for _ in 1..aep2::lane::MAX_LANE_DEPTH {
                if parent == [0; 32] {
                    break;
                }
                let Some(p) = read_counters(tx, &parent)? else { break };
                remaining = remaining.min(p.remaining());
                chain_revoked_at = match (chain_revoked_at, p.revoked_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                parent = read_link(tx, &parent)?.map_or([0; 32], |(l, _)| l.parent);
            }
            Ok(Some(LaneState {
                link,
                spent: c.spent,
                payments: c.payments,
                window_index,
                window_spent,
                revoked_at: c.revoked_at,
                chain_revoked_at,
                revocation,
                remaining,
            }))
        })
    }

    /// The mandates under the lane `id` (as their leaf), oldest first.
    pub fn lane_mandates(&self, id: &[u8; 32]) -> Result<Vec<StoredMandate>, Error> {
        self.db.read("list lane mandates", |tx| {
            tx.query(
                &format!("SELECT {MANDATE_COLUMNS} FROM mandates WHERE lane_id = ?1 ORDER BY accepted_at, mandate_id"),
                params![id],
            )?
            .iter()
            .map(row_to_mandate)
            .collect()
        })
    }
}

/// The rules of [`Ledger::enqueue_with`], in their order, inside its transaction.
fn enqueue_in(
    tx: &mut Tx<'_>,
    m: &NewMandate,
    receipt: &mut impl FnMut(Option<&U256>) -> Result<String, Error>,
) -> Result<Enqueued, Error> {
    if let Some(stored) = select_mandate(tx, &m.mandate_id)? {
        let stored = match_submission(tx, stored, m.submission_id, m.now)?;
        return Ok(Enqueued {
            mandate: stored,
            fresh: false,
        });
    }
    let nonce_used = tx.query_opt("SELECT 1 FROM mandates WHERE nonce_key = ?1", params![m.nonce_key])?;
    if nonce_used.is_some() {
        return Err(Error::new(
            Reason::NonceReused,
            format!(
                "another mandate with nonce {} of this payer and token is stored",
                m.nonce
            ),
        ));
    }
    let charged = charge_lanes(tx, &m.lanes, &m.amount, m.now)?;
    let (balance, reserved) = read_account(tx, &m.account)?;
    // A requested withdrawal is unavailable from the moment it is seen (spec
    // `aep2.md#settlement-withdrawal`): the funds may leave once its delay has passed.
    let withdrawing = read_withdrawing(tx, &m.account)?;
    let available = sub(&balance, &reserved)
        .and_then(|a| sub(&a, &withdrawing))
        .unwrap_or(U256::ZERO);
    if m.amount > available {
        return Err(Error::new(
            Reason::InsufficientFunds,
            format!("amount {} exceeds the available {available}", m.amount),
        ));
    }
    // Cannot overflow: reserved + amount <= balance.
    let reserved = add(&reserved, &m.amount).unwrap_or(balance);
    write_account(tx, &m.account, &balance, &reserved)?;
    let remaining = match &charged {
        Some(c) => {
            write_lane_counters(tx, c)?;
            c.iter().map(|(_, counters)| counters.remaining()).min()
        }
        None => None,
    };
    let receipt_text = receipt(remaining.as_ref())?;
    let lane_id = m.lanes.last().map(|l| l.id);
    // `seq` is the next number: every write of the ledger holds its lock, so none runs between.
    tx.execute(
        "INSERT INTO mandates (mandate_id, nonce_key, profile, domain, payer, token, payee, amount, nonce, \
         deadline, ref, envelope, receipt, enqueue_deadline, status, accepted_at, updated_at, submission_id, \
         lane_id, request, seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'accepted', ?15, ?15, ?16, ?17, ?18, \
         (SELECT coalesce(max(seq), 0) + 1 FROM mandates))",
        params![
            m.mandate_id,
            m.nonce_key,
            &m.profile,
            &m.account.domain,
            &m.account.payer,
            &m.account.token,
            &m.payee,
            m.amount.0.as_slice(),
            &m.nonce,
            m.deadline,
            &m.reference,
            &m.envelope,
            &receipt_text,
            m.enqueue_deadline,
            m.now,
            m.submission_id,
            lane_id,
            m.request.as_deref(),
        ],
    )?;
    // The audit trail's index: the payment is under every link of its chain.
    for l in &m.lanes {
        tx.execute(
            "INSERT INTO mandate_lanes (lane_id, seq) SELECT ?1, seq FROM mandates WHERE mandate_id = ?2",
            params![l.id, m.mandate_id],
        )?;
    }
    Ok(Enqueued {
        mandate: StoredMandate {
            mandate_id: m.mandate_id,
            profile: m.profile.clone(),
            account: m.account.clone(),
            payee: m.payee.clone(),
            amount: m.amount,
            nonce: m.nonce.clone(),
            deadline: m.deadline,
            reference: m.reference.clone(),
            envelope: m.envelope.clone(),
            receipt: receipt_text,
            enqueue_deadline: m.enqueue_deadline,
            status: Status::Accepted,
            accepted_at: m.now,
            submission_id: m.submission_id,
            settlement: Settlement::default(),
            lane: lane_id,
            request: m.request.clone(),
        },
        fresh: true,
    })
}

/// The checks of [`Ledger::audit`], in its read transaction.
fn audit_in(tx: &mut Tx<'_>) -> Result<Vec<String>, Error> {
    let mut problems = Vec::new();
    let mut sums = |sql: &str| -> Result<std::collections::BTreeMap<AccountKey, U256>, Error> {
        let mut out = std::collections::BTreeMap::new();
        for row in tx.query(sql, params![])? {
            let (k, amount) = account_and_amount(&row)?;
            let entry: &mut U256 = out.entry(k).or_insert(U256::ZERO);
            *entry = add(entry, &blob_u256(&amount)?)
                .ok_or_else(|| Error::new(Reason::UintOutOfRange, "audit: sum exceeds 2^256 - 1"))?;
        }
        Ok(out)
    };
    let reserved_sums = sums("SELECT domain, payer, token, amount FROM mandates WHERE status = 'accepted'")?;
    let deposit_sums = sums("SELECT domain, payer, token, amount FROM deposits")?;
    let settled_sums = sums("SELECT domain, payer, token, amount FROM mandates WHERE status = 'settled'")?;
    let withdrawn_sums = sums("SELECT domain, payer, token, amount FROM withdrawals")?;
    let accounts = sums("SELECT domain, payer, token, reserved FROM accounts")?;
    let balances = sums("SELECT domain, payer, token, balance FROM accounts")?;
    for (k, reserved) in &accounts {
        let want = reserved_sums.get(k).copied().unwrap_or(U256::ZERO);
        if *reserved != want {
            problems.push(format!("{k:?}: reserved {reserved}, accepted mandates sum to {want}"));
        }
        let balance = balances.get(k).copied().unwrap_or(U256::ZERO);
        if *reserved > balance {
            problems.push(format!("{k:?}: reserved {reserved} exceeds balance {balance}"));
        }
        let deposited = deposit_sums.get(k).copied().unwrap_or(U256::ZERO);
        let debited = add(
            &settled_sums.get(k).copied().unwrap_or(U256::ZERO),
            &withdrawn_sums.get(k).copied().unwrap_or(U256::ZERO),
        );
        if debited.and_then(|d| sub(&deposited, &d)) != Some(balance) {
            problems.push(format!(
                "{k:?}: balance {balance}, deposits {deposited} less settled mandates and withdrawals"
            ));
        }
    }
    problems.extend(audit_lanes(tx)?);
    for k in reserved_sums.keys() {
        if !accounts.contains_key(k) {
            problems.push(format!(
                "{k:?}: mandates reserved against an account that does not exist"
            ));
        }
    }
    Ok(problems)
}
/// A lane row's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LaneCounters {
    total: U256,
    spent: U256,
    max_payments: u64,
    payments: u64,
    period: u64,
    allowance: U256,
    valid_from: u64,
    window_index: u64,
    window_spent: U256,
    revoked_at: Option<u64>,
}

impl LaneCounters {
    fn remaining(&self) -> U256 {
        sub(&self.total, &self.spent).unwrap_or(U256::ZERO)
    }

    /// The window spend as of `now`: restarted at 0 in a window later than the stored one. A
    /// `now` in an earlier window (a clock behind another instance's, or stepped back) counts in
    /// the stored window: windows only move forward, so clocks that disagree cannot reset an
    /// allowance back and forth.
    fn window_spent_at(&self, now: u64) -> (u64, U256) {
        let k = window_index(now, self.valid_from, self.period);
        if k > self.window_index {
            (k, U256::ZERO)
        } else {
            (self.window_index, self.window_spent)
        }
    }
}

/// Inserts the link's row if the lane has not been seen (counters at zero).
fn insert_lane(tx: &mut Tx<'_>, l: &LaneLink, now: u64) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO lanes (lane_id, domain, parent, owner, agent, token, lane, total, spent, max_payments, \
         payments, period, allowance, valid_from, window_index, window_spent, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11, ?12, ?13, 0, ?9, ?14) \
         ON CONFLICT (lane_id) DO NOTHING",
        params![
            l.id,
            &l.domain,
            l.parent,
            &l.owner,
            &l.agent,
            &l.token,
            &l.signed,
            l.total.0.as_slice(),
            U256::ZERO.0.as_slice(),
            l.max_payments,
            l.period,
            l.allowance.0.as_slice(),
            l.valid_from,
            now,
        ],
    )
    .map(|_| ())
}

const LANE_COLUMNS: &str = "total, spent, max_payments, payments, period, allowance, valid_from, window_index, \
     window_spent, revoked_at";

/// Every link's id and counters after a payment, root first.
type Charged = Vec<([u8; 32], LaneCounters)>;

/// A stored integer that only a foreign writer could make negative reads as 0.
fn stored_u64(r: &Row, i: usize) -> Result<u64, Error> {
    Ok(u64::try_from(r.int(i)?).unwrap_or(0))
}

fn read_counters(tx: &mut Tx<'_>, id: &[u8; 32]) -> Result<Option<LaneCounters>, Error> {
    let Some(r) = tx.query_opt(
        &format!("SELECT {LANE_COLUMNS} FROM lanes WHERE lane_id = ?1"),
        params![id],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(LaneCounters {
        total: blob_u256(r.blob(0)?)?,
        spent: blob_u256(r.blob(1)?)?,
        max_payments: stored_u64(&r, 2)?,
        payments: stored_u64(&r, 3)?,
        period: stored_u64(&r, 4)?,
        allowance: blob_u256(r.blob(5)?)?,
        valid_from: stored_u64(&r, 6)?,
        window_index: stored_u64(&r, 7)?,
        window_spent: blob_u256(r.blob(8)?)?,
        revoked_at: r.opt_int(9)?.map(|v| u64::try_from(v).unwrap_or(0)),
    }))
}

fn write_lane_counters(tx: &mut Tx<'_>, charged: &[([u8; 32], LaneCounters)]) -> Result<(), Error> {
    for (id, c) in charged {
        tx.execute(
            "UPDATE lanes SET spent = ?2, payments = ?3, window_index = ?4, window_spent = ?5 WHERE lane_id = ?1",
            params![
                id,
                c.spent.0.as_slice(),
                c.payments,
                c.window_index,
                c.window_spent.0.as_slice()
            ],
        )?;
    }
    Ok(())
}
/// The most a lane's counter holds on chain (its `spent` is a `uint192` there, spec
/// `aep2.md#lane-onchain`, *Storage*): the SP refuses what the contract would.
const MAX_LANE_SPENT: U256 = {
    let mut b = [0xff; 32];
    let mut i = 0;
    while i < 8 {
        b[i] = 0;
        i += 1;
    }
    U256(b)
};

/// The lane rules of an enqueue (spec `aep2.md#lane-settlement`): records unseen links, refuses
/// (`lane_revoked`; then `lane_total_exceeded` of any link, `lane_payments_exhausted` of any link,
/// `lane_period_exceeded` of any link, each root first), and returns every link's counters after the payment, unwritten
/// (`None` for a plain mandate).
fn charge_lanes(tx: &mut Tx<'_>, links: &[LaneLink], amount: &U256, now: u64) -> Result<Option<Charged>, Error> {
    if links.is_empty() {
        return Ok(None);
    }
    let mut rows = Vec::with_capacity(links.len());
    for l in links {
        insert_lane(tx, l, now)?;
        let c = read_counters(tx, &l.id)?
            .ok_or_else(|| Error::new(Reason::ReplayStoreUnavailable, "a lane row vanished"))?;
        rows.push((l.id, c));
    }
    if let Some((i, (id, c))) = rows.iter().enumerate().find(|(_, (_, c))| c.revoked_at.is_some()) {
        return Err(Error::new(
            Reason::LaneRevoked,
            format!(
                "link {i} ({}) was revoked at {}",
                aep2::codec::hex_encode_0x(id),
                c.revoked_at.unwrap_or(0)
            ),
        ));
    }
    // The contract's order (spec `aep2.md#lane-onchain` check 9): every link's total, then every
    // link's count; the allowance, which only the SP keeps, last.
    for (i, (_, c)) in rows.iter().enumerate() {
        if add(&c.spent, amount).is_none_or(|s| s > c.total || s > MAX_LANE_SPENT) {
            return Err(Error::new(
                Reason::LaneTotalExceeded,
                format!(
                    "amount {amount} above link {i}'s remaining {} of its total {}",
                    c.remaining(),
                    c.total
                ),
            ));
        }
    }
    for (i, (_, c)) in rows.iter().enumerate() {
        if c.max_payments > 0 && c.payments >= c.max_payments {
            return Err(Error::new(
                Reason::LanePaymentsExhausted,
                format!("link {i} has had its {} payments", c.max_payments),
            ));
        }
    }
    let mut windows = Vec::with_capacity(rows.len());
    for (i, (_, c)) in rows.iter().enumerate() {
        let (k, window_spent) = c.window_spent_at(now);
        let window_spent = if c.period > 0 {
            add(&window_spent, amount)
                .filter(|s| *s <= c.allowance)
                .ok_or_else(|| {
                    Error::new(
                        Reason::LanePeriodExceeded,
                        format!(
                            "amount {amount} above link {i}'s allowance {} less the {window_spent} spent in window {k}",
                            c.allowance
                        ),
                    )
                })?
        } else {
            window_spent
        };
        windows.push((k, window_spent));
    }
    for ((_, c), (k, window_spent)) in rows.iter_mut().zip(windows) {
        // Checked above: the sum is at most the total.
        c.spent = add(&c.spent, amount).unwrap_or(c.total);
        c.payments = c.payments.saturating_add(1);
        c.window_index = k;
        c.window_spent = window_spent;
    }
    Ok(Some(rows))
}

/// Gives back to every link of a failed lane mandate's chain what its acceptance charged (spec
/// `aep2.md#lane-settlement`, *Release*): its amount from `spent`, one payment, and its amount
/// from the window spend if the link is still in the window the mandate was accepted in.
/// A plain mandate changes nothing.
pub(crate) fn release_lanes(tx: &mut Tx<'_>, mandate_id: &[u8; 32]) -> Result<(), Error> {
    let Some(row) = tx.query_opt(
        "SELECT lane_id, amount, accepted_at FROM mandates WHERE mandate_id = ?1",
        params![mandate_id],
    )?
    else {
        return Ok(());
    };
    let Some(leaf) = row.opt_blob(0)? else {
        return Ok(());
    };
    let amount = blob_u256(row.blob(1)?)?;
    let accepted_at = stored_u64(&row, 2)?;
    let mut id = <[u8; 32]>::try_from(leaf)
        .map_err(|_| Error::new(Reason::ReplayStoreUnavailable, "stored lane id is not 32 bytes"))?;
    // Leaf to root, through the recorded parents (at most the chain's depth).
    for _ in 0..aep2::lane::MAX_LANE_DEPTH {
        let Some(mut c) = read_counters(tx, &id)? else { break };
        c.spent = sub(&c.spent, &amount).unwrap_or(U256::ZERO);
        c.payments = c.payments.saturating_sub(1);
        if c.period > 0 && window_index(accepted_at, c.valid_from, c.period) == c.window_index {
            c.window_spent = sub(&c.window_spent, &amount).unwrap_or(U256::ZERO);
        }
        write_lane_counters(tx, &[(id, c)])?;
        let parent = tx.query_one("SELECT parent FROM lanes WHERE lane_id = ?1", params![id])?;
        match <[u8; 32]>::try_from(parent.blob(0)?) {
            Ok(p) if p != [0; 32] => id = p,
            _ => break,
        }
    }
    Ok(())
}

fn read_link(tx: &mut Tx<'_>, id: &[u8; 32]) -> Result<Option<(LaneLink, Option<String>)>, Error> {
    let Some(r) = tx.query_opt(
        "SELECT domain, parent, owner, agent, token, lane, total, max_payments, period, allowance, valid_from, \
         revocation FROM lanes WHERE lane_id = ?1",
        params![id],
    )?
    else {
        return Ok(None);
    };
    Ok(Some((
        LaneLink {
            id: *id,
            domain: r.text(0)?.to_owned(),
            parent: <[u8; 32]>::try_from(r.blob(1)?)
                .map_err(|_| Error::new(Reason::ReplayStoreUnavailable, "stored parent is not 32 bytes"))?,
            owner: r.text(2)?.to_owned(),
            agent: r.text(3)?.to_owned(),
            token: r.text(4)?.to_owned(),
            signed: r.text(5)?.to_owned(),
            total: blob_u256(r.blob(6)?)?,
            max_payments: stored_u64(&r, 7)?,
            period: stored_u64(&r, 8)?,
            allowance: blob_u256(r.blob(9)?)?,
            valid_from: stored_u64(&r, 10)?,
        },
        r.opt_text(11)?.map(str::to_owned),
    )))
}

/// The lane part of [`Ledger::audit`].
fn audit_lanes(tx: &mut Tx<'_>) -> Result<Vec<String>, Error> {
    let rows = tx.query(
        "SELECT lane_id, amount FROM mandates WHERE lane_id IS NOT NULL AND status != 'failed'",
        params![],
    )?;
    let mut want: std::collections::BTreeMap<[u8; 32], (U256, u64)> = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    for row in rows {
        let amount = blob_u256(row.blob(1)?)?;
        let Ok(mut id) = <[u8; 32]>::try_from(row.blob(0)?) else {
            problems.push("a mandate's lane id is not 32 bytes".to_owned());
            continue;
        };
        for _ in 0..aep2::lane::MAX_LANE_DEPTH {
            let Some((link, _)) = read_link(tx, &id)? else {
                problems.push(format!(
                    "mandates under lane {} which is not stored",
                    aep2::codec::hex_encode_0x(&id)
                ));
                break;
            };
            let e = want.entry(id).or_insert((U256::ZERO, 0));
            e.0 = add(&e.0, &amount).unwrap_or(e.0);
            e.1 += 1;
            if link.parent == [0; 32] {
                break;
            }
            id = link.parent;
        }
    }
    for row in tx.query("SELECT lane_id FROM lanes", params![])? {
        let Ok(id) = <[u8; 32]>::try_from(row.blob(0)?) else {
            continue;
        };
        let Some(c) = read_counters(tx, &id)? else { continue };
        let shown = aep2::codec::hex_encode_0x(&id);
        let (spent, payments) = want.get(&id).copied().unwrap_or((U256::ZERO, 0));
        if (c.spent, c.payments) != (spent, payments) {
            problems.push(format!(
                "lane {shown}: spent {} in {} payments, its mandates sum to {spent} in {payments}",
                c.spent, c.payments
            ));
        }
        if c.spent > c.total
            || (c.max_payments > 0 && c.payments > c.max_payments)
            || (c.period > 0 && c.window_spent > c.allowance)
        {
            problems.push(format!("lane {shown}: a cap is exceeded"));
        }
    }
    Ok(problems)
}

/// The submission rule (spec `aep2.md#sp-enqueue`, *Submission id*): a stored mandate is held for
/// the first submission id any submission brought; a re-submission with that id, or with none,
/// gets it; one with another id is `mandate_replayed`, because another payee instance (with a
/// store of its own) has it and may serve it.
fn match_submission(
    tx: &mut Tx<'_>,
    mut stored: StoredMandate,
    submission_id: Option<[u8; 16]>,
    now: u64,
) -> Result<StoredMandate, Error> {
    match (stored.submission_id, submission_id) {
        (Some(held), Some(asked)) if held != asked => Err(Error::new(
            Reason::MandateReplayed,
            "this mandate was submitted with another submission id: another payee instance holds it",
        )),
        (None, Some(asked)) => {
            tx.execute(
                "UPDATE mandates SET submission_id = ?2, updated_at = ?3 WHERE mandate_id = ?1",
                params![stored.mandate_id, asked, now],
            )?;
            stored.submission_id = Some(asked);
            Ok(stored)
        }
        _ => Ok(stored),
    }
}

fn select_mandate(tx: &mut Tx<'_>, mandate_id: &[u8; 32]) -> Result<Option<StoredMandate>, Error> {
    tx.query_opt(
        &format!("SELECT {MANDATE_COLUMNS} FROM mandates WHERE mandate_id = ?1"),
        params![mandate_id],
    )?
    .map(|r| row_to_mandate(&r))
    .transpose()
}

/// Reads a row of [`MANDATE_COLUMNS`]; a malformed stored value (which only a foreign writer
/// could produce) is `replay_store_unavailable`.
fn row_to_mandate(r: &Row) -> Result<StoredMandate, Error> {
    let hash32 = |b: Option<&[u8]>| b.and_then(|b| <[u8; 32]>::try_from(b).ok());
    let status = r.text(13)?;
    Ok(StoredMandate {
        mandate_id: r
            .blob(0)?
            .try_into()
            .map_err(|_| Error::new(Reason::ReplayStoreUnavailable, "stored mandate id is not 32 bytes"))?,
        profile: r.text(1)?.to_owned(),
        account: account_at(r, 2)?,
        payee: r.text(5)?.to_owned(),
        amount: blob_u256(r.blob(6)?)?,
        nonce: r.text(7)?.to_owned(),
        deadline: stored_u64(r, 8)?,
        reference: r.text(9)?.to_owned(),
        envelope: r.text(10)?.to_owned(),
        receipt: r.text(11)?.to_owned(),
        enqueue_deadline: stored_u64(r, 12)?,
        status: Status::parse(status)
            .ok_or_else(|| Error::new(Reason::ReplayStoreUnavailable, format!("unknown status {status:?}")))?,
        accepted_at: stored_u64(r, 14)?,
        submission_id: r.opt_blob(15)?.and_then(|b| <[u8; 16]>::try_from(b).ok()),
        settlement: Settlement {
            batch: hash32(r.opt_blob(16)?),
            tx: hash32(r.opt_blob(17)?),
            block: r.opt_int(18)?.and_then(|b| u64::try_from(b).ok()),
            failure: r.opt_text(19)?.map(str::to_owned),
        },
        lane: hash32(r.opt_blob(20)?),
        request: r.opt_text(21)?.map(str::to_owned),
    })
}

fn read_account(tx: &mut Tx<'_>, k: &AccountKey) -> Result<(U256, U256), Error> {
    let row = tx.query_opt(
        "SELECT balance, reserved FROM accounts WHERE domain = ?1 AND payer = ?2 AND token = ?3",
        params![&k.domain, &k.payer, &k.token],
    )?;
    match row {
        Some(r) => Ok((blob_u256(r.blob(0)?)?, blob_u256(r.blob(1)?)?)),
        None => Ok((U256::ZERO, U256::ZERO)),
    }
}

fn read_withdrawing(tx: &mut Tx<'_>, k: &AccountKey) -> Result<U256, Error> {
    let row = tx.query_opt(
        "SELECT withdrawing FROM accounts WHERE domain = ?1 AND payer = ?2 AND token = ?3",
        params![&k.domain, &k.payer, &k.token],
    )?;
    row.map_or(Ok(U256::ZERO), |r| blob_u256(r.blob(0)?))
}

fn write_account(tx: &mut Tx<'_>, k: &AccountKey, balance: &U256, reserved: &U256) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO accounts (domain, payer, token, balance, reserved) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (domain, payer, token) DO UPDATE SET balance = excluded.balance, reserved = excluded.reserved",
        params![
            &k.domain,
            &k.payer,
            &k.token,
            balance.0.as_slice(),
            reserved.0.as_slice()
        ],
    )
    .map(|_| ())
}

fn blob_u256(b: &[u8]) -> Result<U256, Error> {
    b.try_into()
        .map(U256)
        .map_err(|_| Error::new(Reason::ReplayStoreUnavailable, "stored amount is not 32 bytes"))
}

/// Columns `i` to `i + 2` of a row, `domain, payer, token`: an account.
fn account_at(r: &Row, i: usize) -> Result<AccountKey, Error> {
    Ok(AccountKey {
        domain: r.text(i)?.to_owned(),
        payer: r.text(i + 1)?.to_owned(),
        token: r.text(i + 2)?.to_owned(),
    })
}

/// Columns 0 to 3 of a row, `domain, payer, token, amount`: an account and an amount blob.
fn account_and_amount(r: &Row) -> Result<(AccountKey, Vec<u8>), Error> {
    Ok((account_at(r, 0)?, r.blob(3)?.to_vec()))
}

/// `a + b`, or `None` on overflow past 2^256 − 1.
pub fn add(a: &U256, b: &U256) -> Option<U256> {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let v = u16::from(a.0[i]) + u16::from(b.0[i]) + carry;
        out[i] = (v & 0xff) as u8;
        carry = v >> 8;
    }
    (carry == 0).then_some(U256(out))
}

/// `a − b`, or `None` if `b > a`.
pub fn sub(a: &U256, b: &U256) -> Option<U256> {
    if b > a {
        return None;
    }
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut v = i16::from(a.0[i]) - i16::from(b.0[i]) - borrow;
        borrow = 0;
        if v < 0 {
            v += 256;
            borrow = 1;
        }
        out[i] = v as u8;
    }
    Some(U256(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new ledger on each backend: in memory, and a fresh Postgres schema when configured.
    fn ledgers(tag: &str) -> Vec<Ledger> {
        let mut out = vec![Ledger::open_in_memory().unwrap_or_else(|e| panic!("{e}"))];
        if let Some(pg) = aep2_replay::db::testing::postgres(tag) {
            out.push(Ledger::open(pg, &LedgerOptions::default()).unwrap_or_else(|e| panic!("{e}")));
        }
        out
    }

    fn account() -> AccountKey {
        AccountKey {
            domain: "eip712:1:0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912".into(),
            payer: "0x00000000000000000000000000000000000000aA".into(),
            token: "0x00000000000000000000000000000000000000bB".into(),
        }
    }

    fn mandate(id: u8, nonce: u8, amount: u64, lanes: Vec<LaneLink>) -> NewMandate {
        NewMandate {
            mandate_id: [id; 32],
            nonce_key: [nonce; 32],
            profile: "eip712".into(),
            account: account(),
            payee: "0x0000000000000000000000000000000000000022".into(),
            amount: U256::from_u64(amount),
            nonce: nonce.to_string(),
            deadline: 2_000,
            reference: "0x00".into(),
            envelope: "{}".into(),
            receipt: format!("receipt {id}"),
            enqueue_deadline: 1_300,
            now: 1_000,
            submission_id: None,
            lanes,
            request: None,
        }
    }

    fn link(total: u64) -> LaneLink {
        LaneLink {
            id: [0x1a; 32],
            domain: account().domain,
            parent: [0; 32],
            owner: account().payer,
            agent: "0x0000000000000000000000000000000000000033".into(),
            token: account().token,
            signed: "{}".into(),
            total: U256::from_u64(total),
            max_payments: 0,
            period: 0,
            allowance: U256::ZERO,
            valid_from: 0,
        }
    }

    #[test]
    fn the_rules_apply_in_their_order_on_every_backend() {
        for ledger in ledgers("rules") {
            let code = |m: &NewMandate| ledger.enqueue(m).map(|e| e.fresh).map_err(|e| e.code());
            let deposit = Deposit {
                id: "d".into(),
                account: account(),
                amount: U256::from_u64(100),
            };
            assert_eq!(ledger.deposit(&deposit, 1_000).ok(), Some(DepositOutcome::Applied));
            assert_eq!(code(&mandate(1, 1, 60, vec![link(1_000)])), Ok(true));
            let revoked = ledger.revoke_lane(&[link(1_000)], "{}", 1_001).map(|(_, did)| did);
            assert_eq!(revoked.ok(), Some(true));
            // 1. The same mandate again: its stored answer, whatever changed since.
            assert_eq!(code(&mandate(1, 1, 60, vec![link(1_000)])), Ok(false));
            // 2. Another mandate with its nonce, revoked lane and beyond the funds: nonce_reused.
            assert_eq!(code(&mandate(2, 1, 500, vec![link(1_000)])), Err("nonce_reused"));
            // 3. A new nonce, a revoked lane and beyond the funds: the lane first.
            assert_eq!(code(&mandate(3, 3, 500, vec![link(1_000)])), Err("lane_revoked"));
            // 4. Then the funds: 40 are left.
            assert_eq!(code(&mandate(4, 4, 41, Vec::new())), Err("insufficient_funds"));
            assert_eq!(code(&mandate(5, 5, 40, Vec::new())), Ok(true));
            // A refusal stores nothing; the stored receipt is the first one.
            assert_eq!(ledger.counts().map(|c| c.accepted).ok(), Some(2));
            let first = ledger.mandate(&[1; 32]).ok().flatten().map(|m| m.receipt);
            assert_eq!(first.as_deref(), Some("receipt 1"));
            assert_eq!(ledger.audit().ok(), Some(Vec::new()));
        }
    }

    #[test]
    fn u256_add_sub_carry_and_borrow() {
        let max = U256([0xff; 32]);
        assert_eq!(add(&max, &U256::from_u64(1)), None);
        assert_eq!(add(&U256::from_u64(255), &U256::from_u64(1)), Some(U256::from_u64(256)));
        assert_eq!(sub(&U256::from_u64(256), &U256::from_u64(1)), Some(U256::from_u64(255)));
        assert_eq!(sub(&U256::from_u64(1), &U256::from_u64(2)), None);
        let big = U256::parse_decimal("340282366920938463463374607431768211456").unwrap_or_default();
        assert_eq!(
            sub(&big, &U256::from_u64(1)).map(|v| v.to_string()).as_deref(),
            Some("340282366920938463463374607431768211455")
        );
        assert_eq!(sub(&max, &max), Some(U256::ZERO));
    }
}
