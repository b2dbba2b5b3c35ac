//! The ledger's settlement state (spec `aep2.md#settlement-worker`): batches and their signed
//! transactions, each mandate's batch and outcome, and the funds the chain reports (deposits,
//! withdrawal requests, withdrawals) with the block the ledger has read up to.
//!
//! Every step is one [`aep2_replay::db::Db::write`] transaction (serialised with every other
//! write of the ledger), so a crash leaves either the state before it or after it. A batch is
//! recorded, with its signed transaction, before the transaction is broadcast: after a crash the
//! worker finds it and asks the chain what became of it.

use super::{
    AccountKey, Ledger, account_and_amount, add, blob_u256, read_account, read_withdrawing, stored_u64, sub,
    write_account,
};
use aep2::uint::U256;
use aep2::{Error, Reason};
use aep2_replay::db::{Row, Tx};
use aep2_replay::params;

/// A mandate waiting for a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedMandate {
    /// The mandate id (for `eip712`, the EIP-712 digest the contract reports).
    pub mandate_id: [u8; 32],
    /// The envelope as accepted, compact JSON.
    pub envelope: String,
    /// The receipt's promise: settled by then.
    pub enqueue_deadline: u64,
    /// When it was accepted.
    pub accepted_at: u64,
}

/// A batch to record before its transaction is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBatch {
    /// The batch id (the contract's `batchId`).
    pub batch_id: [u8; 32],
    /// The deployment ([`crate::domain_key`]).
    pub domain: String,
    /// Its mandates, in item order.
    pub mandates: Vec<[u8; 32]>,
    /// The SP transaction nonce the transaction takes.
    pub sp_nonce: u64,
    /// The signed transaction's hash.
    pub tx_hash: [u8; 32],
    /// The signed transaction.
    pub raw_tx: Vec<u8>,
    /// Its fees.
    pub fees: (u128, u128),
    /// Now (unix seconds).
    pub now: u64,
}

/// One transaction sent for a batch: the first, or a replacement at the same nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxAttempt {
    /// Its hash.
    pub tx_hash: [u8; 32],
    /// The signed transaction.
    pub raw_tx: Vec<u8>,
    /// `maxFeePerGas`, `maxPriorityFeePerGas` (wei; zero when the chain charges none or the
    /// attempt predates schema 4).
    pub fees: (u128, u128),
    /// When it was recorded.
    pub created_at: u64,
}

/// Where a batch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchState {
    /// Signed and recorded; sent or about to be; not yet confirmed.
    Signed,
    /// Included and confirmed; its mandates are settled or failed.
    Confirmed,
    /// Not included (its nonce went to another transaction, or it reverted); its mandates went
    /// back to the queue.
    Abandoned,
}

impl BatchState {
    /// Stable name: `signed`, `confirmed`, `abandoned`.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Signed => "signed",
            BatchState::Confirmed => "confirmed",
            BatchState::Abandoned => "abandoned",
        }
    }

    fn parse(s: &str) -> Option<BatchState> {
        [BatchState::Signed, BatchState::Confirmed, BatchState::Abandoned]
            .into_iter()
            .find(|b| b.as_str() == s)
    }
}

/// A batch as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBatch {
    /// The batch id.
    pub batch_id: [u8; 32],
    /// The deployment.
    pub domain: String,
    /// Its state.
    pub state: BatchState,
    /// The SP transaction nonce.
    pub sp_nonce: u64,
    /// The latest transaction's hash (once confirmed: the included one's).
    pub tx_hash: [u8; 32],
    /// The latest signed transaction (once confirmed: the included one).
    pub raw_tx: Vec<u8>,
    /// The number of mandates.
    pub items: u64,
    /// When it was recorded.
    pub created_at: u64,
    /// The block that includes it (confirmed).
    pub block: Option<u64>,
    /// Gas it used (confirmed).
    pub gas_used: Option<u64>,
    /// Mandates settled (confirmed).
    pub settled: Option<u64>,
    /// Mandates skipped (confirmed).
    pub skipped: Option<u64>,
}

/// What the contract did with one mandate of a confirmed batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// `MandateSettled`: the payer's balance paid it, in this transaction and block (the
    /// batch's own, or an earlier one's when the batch found its nonce used).
    Settled {
        /// The transaction that emitted `MandateSettled`.
        tx: [u8; 32],
        /// Its block.
        block: u64,
    },
    /// `MandateSkipped`, with the spec reason code of the contract's reason.
    Failed(String),
}

/// A change of funds the chain reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FundsEvent {
    /// `Deposited`: credited once per id (`chain:<tx>:<log index>`).
    Deposit {
        /// The deposit id.
        id: String,
        /// The account.
        account: AccountKey,
        /// The amount.
        amount: U256,
    },
    /// `WithdrawalRequested`: the amount is unavailable for new mandates from now on (it
    /// replaces an earlier request).
    WithdrawalRequested {
        /// The account.
        account: AccountKey,
        /// The amount requested.
        amount: U256,
    },
    /// `WithdrawalCancelled`: nothing is requested any more.
    WithdrawalCancelled {
        /// The account.
        account: AccountKey,
    },
    /// `Withdrawn`: the amount left the wallet; debited once per id.
    Withdrawn {
        /// The withdrawal id (`chain:<tx>:<log index>`).
        id: String,
        /// The account.
        account: AccountKey,
        /// The amount paid out.
        amount: U256,
    },
}

const BATCH_COLUMNS: &str =
    "batch_id, domain, state, sp_nonce, tx_hash, raw_tx, items, created_at, block, gas_used, settled, skipped";

fn row_to_batch(r: &Row) -> Result<StoredBatch, Error> {
    let bad = |what: &str| Error::new(Reason::ReplayStoreUnavailable, format!("stored batch: {what}"));
    let opt = |i: usize| -> Result<Option<u64>, Error> { Ok(r.opt_int(i)?.and_then(|v| u64::try_from(v).ok())) };
    Ok(StoredBatch {
        batch_id: r.blob(0)?.try_into().map_err(|_| bad("id is not 32 bytes"))?,
        domain: r.text(1)?.to_owned(),
        state: BatchState::parse(r.text(2)?).ok_or_else(|| bad("unknown state"))?,
        sp_nonce: stored_u64(r, 3)?,
        tx_hash: r.blob(4)?.try_into().map_err(|_| bad("hash is not 32 bytes"))?,
        raw_tx: r.blob(5)?.to_vec(),
        items: stored_u64(r, 6)?,
        created_at: stored_u64(r, 7)?,
        block: opt(8)?,
        gas_used: opt(9)?,
        settled: opt(10)?,
        skipped: opt(11)?,
    })
}

/// Column `i` as a 32-byte id (`what` names it in the error).
fn id32(r: &Row, i: usize, what: &str) -> Result<[u8; 32], Error> {
    r.blob(i)?
        .try_into()
        .map_err(|_| Error::new(Reason::ReplayStoreUnavailable, format!("stored {what} is not 32 bytes")))
}

/// `limit` as a SQL integer.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl Ledger {
    /// Up to `limit` accepted mandates of `domain` that wait for a batch, the earliest promise
    /// first.
    pub fn settlement_queue(&self, domain: &str, limit: usize) -> Result<Vec<QueuedMandate>, Error> {
        let rows = self.db.read("settlement queue", |tx| {
            tx.query(
                "SELECT mandate_id, envelope, enqueue_deadline, accepted_at FROM mandates \
                 WHERE status = 'accepted' AND batch_id IS NULL AND domain = ?1 \
                 ORDER BY enqueue_deadline, accepted_at, mandate_id LIMIT ?2",
                params![domain, sql_limit(limit)],
            )
        })?;
        rows.iter()
            .map(|r| {
                Ok(QueuedMandate {
                    mandate_id: id32(r, 0, "mandate id")?,
                    envelope: r.text(1)?.to_owned(),
                    enqueue_deadline: stored_u64(r, 2)?,
                    accepted_at: stored_u64(r, 3)?,
                })
            })
            .collect()
    }

    /// Up to 1000 mandates of `domain` waiting for a batch whose deadline is before
    /// `chain_time`. A mandate accepted before a batch that was abandoned is left out: that
    /// batch may have settled it unnoticed, which the contract's answer to a later batch
    /// (`nonce_used`) reveals.
    pub fn expired_queue(&self, domain: &str, chain_time: u64) -> Result<Vec<[u8; 32]>, Error> {
        let rows = self.db.read("expired queue", |tx| {
            tx.query(
                "SELECT mandate_id FROM mandates \
                 WHERE status = 'accepted' AND batch_id IS NULL AND domain = ?1 AND deadline < ?2 \
                 AND accepted_at > coalesce((SELECT max(t.created_at) FROM batch_txs t \
                     JOIN batches b ON b.batch_id = t.batch_id \
                     WHERE b.domain = ?1 AND b.state = 'abandoned'), -1) \
                 ORDER BY deadline LIMIT 1000",
                params![domain, chain_time],
            )
        })?;
        rows.iter().map(|r| id32(r, 0, "mandate id")).collect()
    }

    /// Fails the mandates `ids` as `expired`, releasing their reservations, in one transaction;
    /// a mandate no longer waiting for a batch is left as it is. Returns how many failed.
    pub fn fail_expired(&self, ids: &[[u8; 32]], now: u64) -> Result<usize, Error> {
        self.db.write("fail expired", |tx| {
            let mut failed = 0;
            for id in ids {
                let Some(row) = tx.query_opt(
                    "SELECT domain, payer, token, amount FROM mandates \
                     WHERE mandate_id = ?1 AND status = 'accepted' AND batch_id IS NULL",
                    params![id],
                )?
                else {
                    continue;
                };
                let (account, amount) = account_and_amount(&row)?;
                let amount = blob_u256(&amount)?;
                let (balance, reserved) = read_account(tx, &account)?;
                let reserved = sub(&reserved, &amount).ok_or_else(|| {
                    Error::new(Reason::ReplayStoreUnavailable, "fail expired: reservation below amount")
                })?;
                write_account(tx, &account, &balance, &reserved)?;
                super::release_lanes(tx, id)?;
                tx.execute(
                    "UPDATE mandates SET status = 'failed', failure = 'expired', updated_at = ?2 WHERE mandate_id = ?1",
                    params![id, now],
                )?;
                failed += 1;
            }
            Ok(failed)
        })
    }

    /// Records a batch and assigns its mandates to it, before its transaction is sent. Fails
    /// (`replay_store_unavailable`) and records nothing if any mandate is not waiting.
    pub fn record_batch(&self, b: &NewBatch) -> Result<(), Error> {
        self.db.write("record batch", |tx| {
            tx.execute(
                "INSERT INTO batches (batch_id, domain, state, sp_nonce, tx_hash, raw_tx, items, created_at, updated_at) \
                 VALUES (?1, ?2, 'signed', ?3, ?4, ?5, ?6, ?7, ?7)",
                params![
                    b.batch_id,
                    &b.domain,
                    b.sp_nonce,
                    b.tx_hash,
                    b.raw_tx.as_slice(),
                    b.mandates.len() as u64,
                    b.now
                ],
            )?;
            insert_attempt(
                tx,
                &b.batch_id,
                &TxAttempt {
                    tx_hash: b.tx_hash,
                    raw_tx: b.raw_tx.clone(),
                    fees: b.fees,
                    created_at: b.now,
                },
            )?;
            for id in &b.mandates {
                let n = tx.execute(
                    "UPDATE mandates SET batch_id = ?2, updated_at = ?3 \
                     WHERE mandate_id = ?1 AND status = 'accepted' AND batch_id IS NULL AND domain = ?4",
                    params![id, b.batch_id, b.now, &b.domain],
                )?;
                if n != 1 {
                    return Err(Error::new(
                        Reason::ReplayStoreUnavailable,
                        "record batch: a mandate is no longer waiting for a batch",
                    ));
                }
            }
            Ok(())
        })
    }

    /// The batches of `domain` in a state (every batch when `state` is `None`), oldest first.
    pub fn batches(&self, domain: Option<&str>, state: Option<BatchState>) -> Result<Vec<StoredBatch>, Error> {
        let rows = self.db.read("batches", |tx| {
            // The casts give Postgres the parameters' type where `IS NULL` alone does not.
            tx.query(
                &format!(
                    "SELECT {BATCH_COLUMNS} FROM batches WHERE (CAST(?1 AS TEXT) IS NULL OR domain = ?1) \
                     AND (CAST(?2 AS TEXT) IS NULL OR state = ?2) ORDER BY created_at, sp_nonce"
                ),
                params![domain, state.map(BatchState::as_str)],
            )
        })?;
        rows.iter().map(row_to_batch).collect()
    }

    /// The mandate ids of a batch, in no particular order.
    pub fn batch_mandates(&self, batch_id: &[u8; 32]) -> Result<Vec<[u8; 32]>, Error> {
        let rows = self.db.read("batch mandates", |tx| {
            tx.query("SELECT mandate_id FROM mandates WHERE batch_id = ?1", params![batch_id])
        })?;
        rows.iter().map(|r| id32(r, 0, "mandate id")).collect()
    }

    /// The transactions sent for a batch, the first first.
    pub fn batch_attempts(&self, batch_id: &[u8; 32]) -> Result<Vec<TxAttempt>, Error> {
        let rows = self.db.read("batch attempts", |tx| {
            tx.query(
                "SELECT tx_hash, raw_tx, max_fee, priority_fee, created_at FROM batch_txs \
                 WHERE batch_id = ?1 ORDER BY created_at, rowid",
                params![batch_id],
            )
        })?;
        rows.iter().map(row_to_attempt).collect()
    }

    /// Records a replacement transaction of a batch still in flight, before it is sent; it
    /// becomes the batch's latest. Fails if the batch is not in flight.
    pub fn record_attempt(&self, batch_id: &[u8; 32], attempt: &TxAttempt) -> Result<(), Error> {
        self.db.write("record attempt", |tx| {
            let n = tx.execute(
                "UPDATE batches SET tx_hash = ?2, raw_tx = ?3, updated_at = ?4 WHERE batch_id = ?1 AND state = 'signed'",
                params![batch_id, attempt.tx_hash, attempt.raw_tx.as_slice(), attempt.created_at],
            )?;
            if n != 1 {
                return Err(Error::new(
                    Reason::ReplayStoreUnavailable,
                    "record attempt: the batch is not in flight",
                ));
            }
            insert_attempt(tx, batch_id, attempt)
        })
    }

    /// The transactions of `domain`'s abandoned batches recorded at or after `since`, newest
    /// first, at most `limit`: where a mandate may have been settled unnoticed.
    pub fn abandoned_attempts(&self, domain: &str, since: u64, limit: usize) -> Result<Vec<[u8; 32]>, Error> {
        let rows = self.db.read("abandoned attempts", |tx| {
            tx.query(
                "SELECT t.tx_hash FROM batch_txs t JOIN batches b ON b.batch_id = t.batch_id \
                 WHERE b.domain = ?1 AND b.state = 'abandoned' AND t.created_at >= ?2 \
                 ORDER BY t.created_at DESC, t.rowid DESC LIMIT ?3",
                params![domain, since, sql_limit(limit)],
            )
        })?;
        rows.iter().map(|r| id32(r, 0, "hash")).collect()
    }

    /// Records a confirmed batch, included by its transaction `included` (one of its
    /// attempts): each of its mandates settled (the balance and the reservation
    /// both fall by its amount) or failed (the reservation is released), in one transaction.
    /// Every mandate of the batch must have an outcome. Confirming a batch twice changes
    /// nothing.
    pub fn confirm_batch(
        &self,
        batch_id: &[u8; 32],
        included: &[u8; 32],
        block: u64,
        gas_used: u64,
        outcomes: &[([u8; 32], ItemOutcome)],
        now: u64,
    ) -> Result<(), Error> {
        self.db.write("confirm batch", |tx| {
            confirm_in(tx, batch_id, included, block, gas_used, outcomes, now)
        })
    }

    /// Marks a batch abandoned and puts its mandates back in the queue (a later batch takes
    /// them; the contract's nonce guard settles none twice).
    pub fn abandon_batch(&self, batch_id: &[u8; 32], now: u64) -> Result<(), Error> {
        self.db.write("abandon batch", |tx| {
            tx.execute(
                "UPDATE mandates SET batch_id = NULL, updated_at = ?2 WHERE batch_id = ?1 AND status = 'accepted'",
                params![batch_id, now],
            )?;
            tx.execute(
                "UPDATE batches SET state = 'abandoned', updated_at = ?2 WHERE batch_id = ?1 AND state = 'signed'",
                params![batch_id, now],
            )?;
            Ok(())
        })
    }

    /// The first block of `domain` the ledger has not read funds events from (`None`: none read).
    pub fn chain_cursor(&self, domain: &str) -> Result<Option<u64>, Error> {
        let row = self.db.read("chain cursor", |tx| {
            tx.query_opt("SELECT next_block FROM chain_cursor WHERE domain = ?1", params![domain])
        })?;
        Ok(match row {
            Some(r) => u64::try_from(r.int(0)?).ok(),
            None => None,
        })
    }

    /// Applies the funds events of blocks up to `next_block − 1` and moves the cursor to
    /// `next_block`, in one transaction (so a crash neither loses nor repeats an event).
    pub fn apply_funds_events(
        &self,
        domain: &str,
        events: &[FundsEvent],
        next_block: u64,
        now: u64,
    ) -> Result<(), Error> {
        self.db.write("funds events", |tx| {
            for event in events {
                match event {
                    FundsEvent::Deposit { id, account, amount } => {
                        if !record_movement(tx, Movement::Deposit, id, account, amount, now)? {
                            continue;
                        }
                        let (balance, reserved) = read_account(tx, account)?;
                        let balance = add(&balance, amount)
                            .ok_or_else(|| Error::new(Reason::UintOutOfRange, "balance would exceed 2^256 - 1"))?;
                        write_account(tx, account, &balance, &reserved)?;
                    }
                    FundsEvent::WithdrawalRequested { account, amount } => set_withdrawing(tx, account, amount)?,
                    FundsEvent::WithdrawalCancelled { account } => set_withdrawing(tx, account, &U256::ZERO)?,
                    FundsEvent::Withdrawn { id, account, amount } => {
                        if !record_movement(tx, Movement::Withdrawal, id, account, amount, now)? {
                            continue;
                        }
                        let (balance, reserved) = read_account(tx, account)?;
                        // The contract pays at most the balance; the ledger's balance is the chain's.
                        let balance = sub(&balance, amount).unwrap_or(U256::ZERO);
                        write_account(tx, account, &balance, &reserved)?;
                        set_withdrawing(tx, account, &U256::ZERO)?;
                    }
                }
            }
            tx.execute(
                "INSERT INTO chain_cursor (domain, next_block) VALUES (?1, ?2) \
                 ON CONFLICT (domain) DO UPDATE SET next_block = excluded.next_block",
                params![domain, next_block],
            )?;
            Ok(())
        })
    }

    /// Raises an account's requested withdrawal to at least `amount` at once, before the request
    /// is confirmed (spec `aep2.md#settlement-withdrawal`: new acceptance stops from the block of
    /// the request); lowering waits for confirmation.
    pub fn raise_withdrawing(&self, account: &AccountKey, amount: &U256) -> Result<(), Error> {
        self.db.write("raise withdrawal", |tx| {
            if read_withdrawing(tx, account)? < *amount {
                set_withdrawing(tx, account, amount)?;
            }
            Ok(())
        })
    }
}

/// The body of [`Ledger::confirm_batch`], in its transaction.
fn confirm_in(
    tx: &mut Tx<'_>,
    batch_id: &[u8; 32],
    included: &[u8; 32],
    block: u64,
    gas_used: u64,
    outcomes: &[([u8; 32], ItemOutcome)],
    now: u64,
) -> Result<(), Error> {
    let Some(row) = tx.query_opt(
        "SELECT state, tx_hash FROM batches WHERE batch_id = ?1",
        params![batch_id],
    )?
    else {
        return Err(Error::new(
            Reason::ReplayStoreUnavailable,
            "confirm batch: unknown batch",
        ));
    };
    if row.text(0)? == BatchState::Confirmed.as_str() {
        return Ok(());
    }
    let assigned = tx
        .query_one(
            "SELECT count(*) FROM mandates WHERE batch_id = ?1 AND status = 'accepted'",
            params![batch_id],
        )?
        .int(0)?;
    if usize::try_from(assigned).ok() != Some(outcomes.len()) {
        return Err(Error::new(
            Reason::ReplayStoreUnavailable,
            format!(
                "confirm batch: {} outcomes for {assigned} mandates (the chain's events do not match the batch)",
                outcomes.len()
            ),
        ));
    }
    let (mut settled, mut skipped) = (0u64, 0u64);
    for (id, outcome) in outcomes {
        let Some(row) = tx.query_opt(
            "SELECT domain, payer, token, amount FROM mandates \
             WHERE mandate_id = ?1 AND batch_id = ?2 AND status = 'accepted'",
            params![id, batch_id],
        )?
        else {
            return Err(Error::new(
                Reason::ReplayStoreUnavailable,
                "confirm batch: an outcome for a mandate not in the batch",
            ));
        };
        let (account, amount) = account_and_amount(&row)?;
        let amount = blob_u256(&amount)?;
        let (balance, reserved) = read_account(tx, &account)?;
        let reserved = sub(&reserved, &amount).ok_or_else(|| {
            Error::new(
                Reason::ReplayStoreUnavailable,
                "confirm batch: reservation below amount",
            )
        })?;
        let (status, failure, balance) = match outcome {
            ItemOutcome::Settled { .. } => {
                settled += 1;
                let balance = sub(&balance, &amount)
                    .ok_or_else(|| Error::new(Reason::ReplayStoreUnavailable, "confirm batch: balance below amount"))?;
                ("settled", None, balance)
            }
            ItemOutcome::Failed(code) => {
                skipped += 1;
                super::release_lanes(tx, id)?;
                ("failed", Some(code.as_str()), balance)
            }
        };
        write_account(tx, &account, &balance, &reserved)?;
        let (settled_tx, settled_block) = match outcome {
            ItemOutcome::Settled { tx, block } => (Some(*tx), Some(*block)),
            ItemOutcome::Failed(_) => (None, None),
        };
        tx.execute(
            "UPDATE mandates SET status = ?2, failure = ?3, settled_tx = ?4, settled_block = ?5, updated_at = ?6 \
             WHERE mandate_id = ?1",
            params![id, status, failure, settled_tx, settled_block, now],
        )?;
    }
    tx.execute(
        "UPDATE batches SET state = 'confirmed', block = ?2, gas_used = ?3, settled = ?4, skipped = ?5, \
         updated_at = ?6, tx_hash = ?7, \
         raw_tx = coalesce((SELECT raw_tx FROM batch_txs WHERE tx_hash = ?7 AND batch_id = ?1), raw_tx) \
         WHERE batch_id = ?1",
        params![batch_id, block, gas_used, settled, skipped, now, included],
    )?;
    Ok(())
}

fn insert_attempt(tx: &mut Tx<'_>, batch_id: &[u8; 32], a: &TxAttempt) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO batch_txs (tx_hash, batch_id, raw_tx, max_fee, priority_fee, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tx_hash) DO NOTHING",
        params![
            a.tx_hash,
            batch_id,
            a.raw_tx.as_slice(),
            a.fees.0.to_string(),
            a.fees.1.to_string(),
            a.created_at
        ],
    )
    .map(|_| ())
}

fn row_to_attempt(r: &Row) -> Result<TxAttempt, Error> {
    let bad = |what: &str| {
        Error::new(
            Reason::ReplayStoreUnavailable,
            format!("stored batch transaction: {what}"),
        )
    };
    Ok(TxAttempt {
        tx_hash: r.blob(0)?.try_into().map_err(|_| bad("hash is not 32 bytes"))?,
        raw_tx: r.blob(1)?.to_vec(),
        fees: (
            r.text(2)?.parse().map_err(|_| bad("fee is not decimal"))?,
            r.text(3)?.parse().map_err(|_| bad("fee is not decimal"))?,
        ),
        created_at: stored_u64(r, 4)?,
    })
}

/// A chain movement of funds, recorded once per event id.
#[derive(Clone, Copy)]
enum Movement {
    Deposit,
    Withdrawal,
}

/// Records a movement under its id; `false` (and nothing written) if that id is recorded.
fn record_movement(
    tx: &mut Tx<'_>,
    kind: Movement,
    id: &str,
    account: &AccountKey,
    amount: &U256,
    now: u64,
) -> Result<bool, Error> {
    let (seen, insert) = match kind {
        Movement::Deposit => (
            "SELECT 1 FROM deposits WHERE id = ?1",
            "INSERT INTO deposits (id, domain, payer, token, amount, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        ),
        Movement::Withdrawal => (
            "SELECT 1 FROM withdrawals WHERE id = ?1",
            "INSERT INTO withdrawals (id, domain, payer, token, amount, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        ),
    };
    if tx.query_opt(seen, params![id])?.is_some() {
        return Ok(false);
    }
    tx.execute(
        insert,
        params![
            id,
            &account.domain,
            &account.payer,
            &account.token,
            amount.0.as_slice(),
            now
        ],
    )?;
    Ok(true)
}

fn set_withdrawing(tx: &mut Tx<'_>, k: &AccountKey, amount: &U256) -> Result<(), Error> {
    let (balance, reserved) = read_account(tx, k)?;
    write_account(tx, k, &balance, &reserved)?;
    tx.execute(
        "UPDATE accounts SET withdrawing = ?4 WHERE domain = ?1 AND payer = ?2 AND token = ?3",
        params![&k.domain, &k.payer, &k.token, amount.0.as_slice()],
    )
    .map(|_| ())
}
