//! The settlement worker (spec `aep2.md#settlement-worker`): it keeps the promise of every
//! receipt by settling the accepted `eip712` mandates of one debit-wallet deployment in batches,
//! on any [`Chain`].
//!
//! One [`Settler::tick`] reads the chain once and moves the ledger forward:
//! 1. the funds the chain reports up to the last confirmed block (deposits, withdrawal requests,
//!    withdrawals), applied with the block cursor in one ledger transaction;
//!    At most [`MAX_SCAN_BLOCKS`] blocks are read per tick, from `from_block` (the wallet's
//!    deployment) on, so a first start on a long chain catches up in bounded steps;
//! 2. the batch in flight, if any: confirmed (each mandate settled or failed, from the batch's
//!    events) once one of its transactions has the configured confirmations; abandoned, its
//!    mandates back in the queue, if it reverted or its SP nonce went to another transaction;
//!    replaced by a transaction with higher fees at the same nonce once its latest has waited
//!    `bump_after` (at most [`MAX_ATTEMPTS`] in all); otherwise its latest transaction is
//!    broadcast again (idempotent);
//! 3. with none in flight, the mandates that can no longer settle (their deadline is before the
//!    chain's latest block) fail as `expired` without being sent; then a new batch when one is
//!    due: full (`max_items`), old (`max_age`), or a promise close (`enqueueDeadline − margin`).
//!    The batch, its mandates and its signed transaction are recorded before the transaction is
//!    sent; so is every replacement.
//!
//! A crash at any point leaves the ledger at a step boundary; the next tick asks the chain what
//! happened and continues. A mandate is never reported settled before its transaction is
//! confirmed, and never settled twice (the ledger assigns it to one batch at a time; the
//! contract's nonce guard is the last line).

use crate::ledger::{AccountKey, BatchState, FundsEvent, ItemOutcome, Ledger, NewBatch, StoredBatch, TxAttempt};
use aep2::json::parse;
use aep2::{Error, EvmAddress, Profile, Reason, SignedMandate};
use aep2_evm::contract::{AEP2DebitWallet, AnyItem, BatchOutcome, SkipReason, Wallet, decode};
use aep2_evm::{Chain, ChainError, Fees, SignedTx, TxKey, TxReceipt, TxRequest};
use alloy::primitives::{Address, B256, Bytes, keccak256};
use std::time::Duration;

/// Settings of the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementOptions {
    /// The most mandates one batch takes (at most [`aep2_evm::contract::MAX_BATCH_ITEMS`]).
    pub max_items: usize,
    /// A batch is sent once its oldest mandate has waited this long (seconds).
    pub max_age: u64,
    /// A batch is sent at the latest this long before its earliest `enqueueDeadline` (seconds).
    pub margin: u64,
    /// Blocks a transaction (and a funds event) needs, its own included, before it counts.
    pub confirmations: u64,
    /// Pause between ticks of [`Settler::run`].
    pub poll: Duration,
    /// A batch whose SP nonce was taken while its receipt cannot be found is abandoned only
    /// this long after its latest transaction was recorded (seconds): nodes report the nonce
    /// before the receipt.
    pub abandon_after: u64,
    /// A batch transaction not included after this long (seconds) is replaced by one with
    /// higher fees at the same nonce (a fee rise left it below the base fee).
    pub bump_after: u64,
    /// The first block with events of the wallet (its deployment): funds are read from there.
    pub from_block: u64,
}

/// The most transactions one batch is sent as: the first and its replacements.
pub const MAX_ATTEMPTS: usize = 16;

/// The most blocks one tick reads funds events from.
pub const MAX_SCAN_BLOCKS: u64 = 50_000;

/// The most transactions of abandoned batches searched for a mandate settled unnoticed.
const MAX_EARLIER_ATTEMPTS: usize = 256;

impl Default for SettlementOptions {
    fn default() -> Self {
        SettlementOptions {
            max_items: 100,
            max_age: 30,
            margin: 60,
            confirmations: 1,
            poll: Duration::from_millis(500),
            abandon_after: 30,
            bump_after: 30,
            from_block: 0,
        }
    }
}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Funds events applied.
    pub funds_events: usize,
    /// The batch confirmed, with its outcome.
    pub confirmed: Option<[u8; 32]>,
    /// The batch abandoned.
    pub abandoned: Option<[u8; 32]>,
    /// The batch sent (new, or again).
    pub sent: Option<[u8; 32]>,
    /// The batch whose transaction was replaced by one with higher fees.
    pub bumped: Option<[u8; 32]>,
    /// Mandates failed as `expired` without being sent.
    pub expired: usize,
    /// Whether a batch is still in flight after the tick.
    pub in_flight: bool,
}

/// Why a tick stopped early. Nothing is lost: the next tick starts over from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleError {
    /// The chain could not be read or written.
    Chain(ChainError),
    /// The ledger could not be read or written.
    Ledger(Error),
}

impl std::fmt::Display for SettleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettleError::Chain(e) => write!(f, "settlement: {e}"),
            SettleError::Ledger(e) => write!(f, "settlement: ledger: {e}"),
        }
    }
}

impl std::error::Error for SettleError {}

impl From<ChainError> for SettleError {
    fn from(e: ChainError) -> Self {
        SettleError::Chain(e)
    }
}

impl From<Error> for SettleError {
    fn from(e: Error) -> Self {
        SettleError::Ledger(e)
    }
}

/// The settlement worker of one deployment.
pub struct Settler<'a, C: Chain> {
    chain: &'a C,
    ledger: &'a Ledger,
    wallet: Wallet,
    domain: String,
    sp: TxKey,
    options: SettlementOptions,
    /// The most items the next batch takes: halved after a batch whose transaction reverted
    /// (so one item that no gas estimate covers cannot hold the queue), doubled after one that
    /// did not.
    cap: std::sync::atomic::AtomicUsize,
}

fn evm_display(a: Address) -> String {
    EvmAddress(a.0.0).to_checksum()
}

impl<'a, C: Chain> Settler<'a, C> {
    /// A worker settling, with the SP's transaction key `sp`, the mandates the ledger holds for
    /// the deployment `wallet` on `chain`.
    pub fn new(chain: &'a C, ledger: &'a Ledger, wallet: Address, sp: TxKey, options: SettlementOptions) -> Self {
        let domain = crate::domain_key(&aep2::Domain::Eip712(aep2::Eip712Domain {
            chain_id: chain.chain_id(),
            verifying_contract: EvmAddress(wallet.0.0),
        }));
        Settler {
            chain,
            ledger,
            wallet: Wallet { address: wallet },
            domain,
            sp,
            options,
            cap: std::sync::atomic::AtomicUsize::new(aep2_evm::contract::MAX_BATCH_ITEMS),
        }
    }

    /// Adjusts the batch cap to how a batch of `items` ended.
    fn adapt(&self, items: u64, reverted: bool) {
        use std::sync::atomic::Ordering;
        let max = aep2_evm::contract::MAX_BATCH_ITEMS;
        let cap = self.cap.load(Ordering::Relaxed);
        let next = if reverted {
            usize::try_from(items / 2).unwrap_or(1).clamp(1, max)
        } else {
            cap.saturating_mul(2).min(max)
        };
        self.cap.store(next, Ordering::Relaxed);
    }

    /// The most items the next batch takes (see [`Settler::tick`]).
    pub fn batch_cap(&self) -> usize {
        self.cap.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The ledger's name of the deployment.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The ledger it settles from.
    pub fn ledger(&self) -> &'a Ledger {
        self.ledger
    }

    /// The debit wallet it settles through.
    pub fn wallet(&self) -> Address {
        self.wallet.address
    }

    /// One round (see the module docs), at `now` (unix seconds).
    pub async fn tick(&self, now: u64) -> Result<Tick, SettleError> {
        let mut out = Tick::default();
        let head = self.chain.head().await?;
        // The last block whose contents count: it has the configured confirmations.
        let Some(safe) = (head.number + 1).checked_sub(self.options.confirmations.max(1)) else {
            return Ok(out);
        };
        out.funds_events = self.read_funds(safe, head.number, now).await?;
        let open = self.ledger.batches(Some(&self.domain), Some(BatchState::Signed))?;
        if let Some(batch) = open.first() {
            self.progress(batch, safe, now, &mut out).await?;
            out.in_flight = out.confirmed.is_none() && out.abandoned.is_none();
            return Ok(out);
        }
        // The head is the confirmed block only with one confirmation; with more, the contract
        // answers `expired` for such a mandate in its batch.
        if self.options.confirmations <= 1 {
            out.expired = self.fail_expired(head.timestamp, now).await?;
        }
        if let Some(batch) = self.form(now).await? {
            out.sent = Some(batch);
            out.in_flight = true;
        }
        Ok(out)
    }

    /// Ticks until `stop` resolves, logging (and retrying after) failures.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if let Err(e) = self.tick(now).await {
                eprintln!("aep2 sp: {e} (retrying)");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.options.poll) => {}
            }
        }
    }

    async fn read_funds(&self, safe: u64, head: u64, now: u64) -> Result<usize, SettleError> {
        let from = self
            .ledger
            .chain_cursor(&self.domain)?
            .unwrap_or(self.options.from_block);
        let to = safe.min(from.saturating_add(MAX_SCAN_BLOCKS - 1));
        let logs = if from <= to {
            self.chain.logs(self.wallet.address, from, to).await?
        } else {
            Vec::new()
        };
        let account = |owner: Address, token: Address| AccountKey {
            domain: self.domain.clone(),
            payer: evm_display(owner),
            token: evm_display(token),
        };
        let id = |l: &aep2_evm::Log| format!("chain:{}:{}", l.tx, l.index);
        let mut events = Vec::new();
        for l in &logs {
            if let Some(e) = decode::<AEP2DebitWallet::Deposited>(l) {
                events.push(FundsEvent::Deposit {
                    id: id(l),
                    account: account(e.owner, e.token),
                    amount: aep2::U256(e.amount.to_be_bytes()),
                });
            } else if let Some(e) = decode::<AEP2DebitWallet::WithdrawalRequested>(l) {
                events.push(FundsEvent::WithdrawalRequested {
                    account: account(e.owner, e.token),
                    amount: aep2::U256(e.amount.to_be_bytes()),
                });
            } else if let Some(e) = decode::<AEP2DebitWallet::WithdrawalCancelled>(l) {
                events.push(FundsEvent::WithdrawalCancelled {
                    account: account(e.owner, e.token),
                });
            } else if let Some(e) = decode::<AEP2DebitWallet::Withdrawn>(l) {
                events.push(FundsEvent::Withdrawn {
                    id: id(l),
                    account: account(e.owner, e.token),
                    amount: aep2::U256(e.amount.to_be_bytes()),
                });
            }
        }
        if from <= to {
            self.ledger.apply_funds_events(&self.domain, &events, to + 1, now)?;
        }
        // A withdrawal request stops new acceptance from its own block, confirmed or not
        // (once the confirmed blocks are read: the look-ahead spans the confirmations only).
        if to >= safe && head > safe {
            for l in self.chain.logs(self.wallet.address, safe + 1, head).await? {
                if let Some(e) = decode::<AEP2DebitWallet::WithdrawalRequested>(&l) {
                    let amount = aep2::U256(e.amount.to_be_bytes());
                    self.ledger.raise_withdrawing(&account(e.owner, e.token), &amount)?;
                }
            }
        }
        Ok(events.len())
    }

    async fn progress(&self, batch: &StoredBatch, safe: u64, now: u64, out: &mut Tick) -> Result<(), SettleError> {
        let mut attempts = self.ledger.batch_attempts(&batch.batch_id)?;
        if attempts.is_empty() {
            attempts.push(TxAttempt {
                tx_hash: batch.tx_hash,
                raw_tx: batch.raw_tx.clone(),
                fees: (0, 0),
                created_at: batch.created_at,
            });
        }
        let Some(latest) = attempts.last().cloned() else {
            return Ok(());
        };
        match self.included(&attempts).await? {
            Some(r) if r.block > safe => Ok(()),
            Some(r) if !r.success => {
                self.ledger.abandon_batch(&batch.batch_id, now)?;
                self.adapt(batch.items, true);
                out.abandoned = Some(batch.batch_id);
                Ok(())
            }
            Some(r) => {
                let (hash, block, gas) = (r.hash, r.block, r.gas_used);
                let outcome = BatchOutcome::of(self.wallet.address, r);
                let mut outcomes: Vec<([u8; 32], ItemOutcome)> = outcome
                    .settled
                    .iter()
                    .map(|d| (d.0, ItemOutcome::Settled { tx: hash.0, block }))
                    .collect();
                let mut earlier: Option<Vec<(B256, B256, u64)>> = None;
                for (digest, reason) in &outcome.skipped {
                    // A skip reason this build does not know is a contract it was not built for.
                    let code = reason.and_then(SkipReason::code).ok_or_else(|| {
                        ChainError::Malformed(format!("batch {hash}: a skip reason this build does not know"))
                    })?;
                    // A used nonce may be this very mandate, settled by an earlier batch whose
                    // inclusion the worker missed (a lagging node, a reorg): then it is settled.
                    if *reason == Some(SkipReason::NonceUsed) {
                        if earlier.is_none() {
                            earlier = Some(self.settled_unnoticed(&outcome.skipped).await?);
                        }
                        let found = earlier.iter().flatten().find(|(d, _, _)| d == digest);
                        if let Some((_, tx, b)) = found {
                            outcomes.push((digest.0, ItemOutcome::Settled { tx: tx.0, block: *b }));
                            continue;
                        }
                    }
                    outcomes.push((digest.0, ItemOutcome::Failed(code.code().to_owned())));
                }
                self.ledger
                    .confirm_batch(&batch.batch_id, &hash.0, block, gas, &outcomes, now)?;
                self.adapt(batch.items, false);
                out.confirmed = Some(batch.batch_id);
                Ok(())
            }
            None => {
                let next = self.chain.nonce(self.sp.address()).await?;
                if next > batch.sp_nonce {
                    // The nonce moved: either one of its transactions was included (nodes may
                    // report the nonce before the receipt: wait `abandon_after` for it), or
                    // another transaction took the nonce and none of these can be included.
                    if now < latest.created_at.saturating_add(self.options.abandon_after)
                        || self.included(&attempts).await?.is_some()
                    {
                        return Ok(());
                    }
                    self.ledger.abandon_batch(&batch.batch_id, now)?;
                    out.abandoned = Some(batch.batch_id);
                    return Ok(());
                }
                let tx = if now >= latest.created_at.saturating_add(self.options.bump_after)
                    && attempts.len() < MAX_ATTEMPTS
                {
                    let bumped = self.replacement(batch, &latest).await?;
                    self.ledger.record_attempt(
                        &batch.batch_id,
                        &TxAttempt {
                            tx_hash: bumped.hash.0,
                            raw_tx: bumped.raw.to_vec(),
                            fees: (bumped.fees.max_fee_per_gas, bumped.fees.max_priority_fee_per_gas),
                            created_at: now,
                        },
                    )?;
                    out.bumped = Some(batch.batch_id);
                    bumped
                } else {
                    SignedTx {
                        hash: B256::from(latest.tx_hash),
                        from: self.sp.address(),
                        nonce: batch.sp_nonce,
                        raw: Bytes::from(latest.raw_tx.clone()),
                        fees: Fees {
                            max_fee_per_gas: latest.fees.0,
                            max_priority_fee_per_gas: latest.fees.1,
                        },
                    }
                };
                match self.chain.broadcast(&tx).await {
                    Ok(()) => {
                        out.sent = Some(batch.batch_id);
                        Ok(())
                    }
                    // "nonce too low", "replacement underpriced" and the like: the next tick
                    // looks at the chain again.
                    Err(ChainError::Refused(_)) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Fails as `expired`, unsent, the waiting mandates whose deadline is before the confirmed
    /// chain time `chain_time` and whose nonce is unused (spec `aep2.md#settlement-states`): no
    /// later block can settle them. A used nonce is left to a batch, whose skip tells whether
    /// this mandate or another one used it.
    async fn fail_expired(&self, chain_time: u64, now: u64) -> Result<usize, SettleError> {
        let mut ids = Vec::new();
        for id in self.ledger.expired_queue(&self.domain, chain_time)? {
            let Some(m) = self.ledger.mandate(&id)? else { continue };
            let address = |text: &str| {
                EvmAddress::parse(text)
                    .map(|a| Address::from(a.0))
                    .map_err(SettleError::Ledger)
            };
            let nonce: alloy::primitives::U256 = m.nonce.parse().map_err(|_| {
                SettleError::Ledger(Error::new(
                    Reason::ReplayStoreUnavailable,
                    "stored nonce is not decimal",
                ))
            })?;
            let used = self
                .wallet
                .nonce_used(
                    self.chain,
                    address(&m.account.payer)?,
                    address(&m.account.token)?,
                    nonce,
                )
                .await?;
            if !used {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Ok(0);
        }
        Ok(self.ledger.fail_expired(&ids, now)?)
    }

    /// The receipt of whichever of a batch's transactions was included (at most one can be:
    /// they share a nonce).
    async fn included(&self, attempts: &[TxAttempt]) -> Result<Option<TxReceipt>, SettleError> {
        for a in attempts.iter().rev() {
            if let Some(r) = self.chain.receipt(B256::from(a.tx_hash)).await? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// The batch's transaction again, at the same nonce, with fees above `latest`'s.
    async fn replacement(&self, batch: &StoredBatch, latest: &TxAttempt) -> Result<SignedTx, SettleError> {
        let ids = self.ledger.batch_mandates(&batch.batch_id)?;
        let mut items = Vec::with_capacity(ids.len());
        for id in &ids {
            let m = self.ledger.mandate(id)?.ok_or_else(|| {
                Error::new(
                    Reason::ReplayStoreUnavailable,
                    "a batch's mandate is missing from the ledger",
                )
            })?;
            items.push(item_of(&m.envelope)?);
        }
        let request = TxRequest {
            to: Some(self.wallet.address),
            gas: Wallet::any_batch_gas(&items),
            data: Wallet::settle_any_calldata(B256::from(batch.batch_id), items),
            nonce: batch.sp_nonce,
            value: alloy::primitives::U256::ZERO,
            min_fees: Fees {
                max_fee_per_gas: latest.fees.0,
                max_priority_fee_per_gas: latest.fees.1,
            }
            .bumped(),
        };
        Ok(self.chain.sign(&self.sp, request).await?)
    }

    /// Mandates among `skipped` that a transaction of an abandoned batch settled without the
    /// worker noticing: (digest, transaction, block). Only the SP's own transactions since the
    /// earliest of them was accepted are searched, receipt by receipt, not the chain's history.
    async fn settled_unnoticed(
        &self,
        skipped: &[(B256, Option<SkipReason>)],
    ) -> Result<Vec<(B256, B256, u64)>, SettleError> {
        let mut since = u64::MAX;
        for (digest, _) in skipped {
            if let Some(m) = self.ledger.mandate(&digest.0)? {
                since = since.min(m.accepted_at);
            }
        }
        let mut out = Vec::new();
        if since == u64::MAX {
            return Ok(out);
        }
        for hash in self
            .ledger
            .abandoned_attempts(&self.domain, since, MAX_EARLIER_ATTEMPTS)?
        {
            let Some(r) = self.chain.receipt(B256::from(hash)).await? else {
                continue;
            };
            if !r.success {
                continue;
            }
            let (tx, block) = (r.hash, r.block);
            for d in BatchOutcome::of(self.wallet.address, r).settled {
                out.push((d, tx, block));
            }
        }
        Ok(out)
    }

    /// Every `MandateSettled` of the deployment from `from_block` up to block `safe`: (digest,
    /// transaction, block).
    async fn settled_events(&self, safe: u64) -> Result<Vec<(B256, B256, u64)>, SettleError> {
        Ok(self
            .chain
            .logs(self.wallet.address, self.options.from_block, safe)
            .await?
            .iter()
            .filter_map(|l| decode::<AEP2DebitWallet::MandateSettled>(l).map(|e| (e.digest, l.tx, l.block)))
            .collect())
    }

    async fn form(&self, now: u64) -> Result<Option<[u8; 32]>, SettleError> {
        let full = self.options.max_items.clamp(1, aep2_evm::contract::MAX_BATCH_ITEMS);
        let limit = full.min(self.batch_cap());
        let queue = self.ledger.settlement_queue(&self.domain, limit)?;
        let Some(first) = queue.first() else { return Ok(None) };
        let oldest = queue.iter().map(|q| q.accepted_at).min().unwrap_or(now);
        let due = queue.len() >= limit
            || oldest.saturating_add(self.options.max_age) <= now
            || first.enqueue_deadline.saturating_sub(self.options.margin) <= now;
        if !due {
            return Ok(None);
        }
        let mut items = Vec::with_capacity(queue.len());
        let mut ids = Vec::with_capacity(queue.len());
        let mut gas = aep2_evm::contract::BATCH_BASE_GAS;
        for q in &queue {
            let item = item_of(&q.envelope)?;
            // Lane items take more gas: the batch stays under the per-transaction cap, the rest
            // waits for the next one.
            gas = gas.saturating_add(item.gas());
            if gas > aep2_evm::embedded::TX_GAS_CAP && !items.is_empty() {
                break;
            }
            items.push(item);
            ids.push(q.mandate_id);
        }
        let nonce = self.chain.nonce(self.sp.address()).await?;
        let mut seed = Vec::with_capacity(28 + 32 * ids.len());
        seed.extend_from_slice(self.sp.address().as_slice());
        seed.extend_from_slice(&nonce.to_be_bytes());
        for id in &ids {
            seed.extend_from_slice(id);
        }
        let batch_id = keccak256(&seed);
        // After reverted batches down to one item: all the gas a transaction may have, so that
        // an item the estimate does not cover settles (or is skipped) rather than reverting again.
        let gas = if limit == 1 && full > 1 {
            aep2_evm::embedded::TX_GAS_CAP
        } else {
            Wallet::any_batch_gas(&items)
        };
        let data = Wallet::settle_any_calldata(batch_id, items);
        let request = TxRequest {
            to: Some(self.wallet.address),
            data,
            nonce,
            gas,
            value: alloy::primitives::U256::ZERO,
            min_fees: Fees::default(),
        };
        let signed = self.chain.sign(&self.sp, request).await?;
        self.ledger.record_batch(&NewBatch {
            batch_id: batch_id.0,
            domain: self.domain.clone(),
            mandates: ids,
            sp_nonce: nonce,
            tx_hash: signed.hash.0,
            raw_tx: signed.raw.to_vec(),
            fees: (signed.fees.max_fee_per_gas, signed.fees.max_priority_fee_per_gas),
            now,
        })?;
        match self.chain.broadcast(&signed).await {
            Ok(()) | Err(ChainError::Refused(_)) => Ok(Some(batch_id.0)),
            Err(e) => Err(e.into()),
        }
    }
}

/// The batch item of an accepted `eip712` envelope (as the ledger stores it): a plain item, or a
/// lane item when the envelope has `lanes` (settled through `settleLanes`).
fn item_of(envelope: &str) -> Result<AnyItem, Error> {
    let value = parse(envelope, &aep2::json::Limits::AEP2)?;
    let sm = SignedMandate::from_json(&value, Profile::Eip712)?;
    AnyItem::of(&sm)
}

/// One difference between the ledger and the chain ([`reconcile`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// What differs: `mandate_state` or `account_balance`.
    pub kind: &'static str,
    /// The mandate id (`0x…`) or the account (`<payer>/<token>`).
    pub subject: String,
    /// What the ledger says.
    pub ledger: String,
    /// What the chain says.
    pub chain: String,
}

/// What [`reconcile`] compared, and what differed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Mandates of the deployment compared.
    pub mandates: usize,
    /// Accounts of the deployment compared.
    pub accounts: usize,
    /// The differences (none when ledger and chain agree).
    pub differences: Vec<Difference>,
}

/// Compares the ledger with the chain for the deployment `wallet` (spec
/// `aep2.md#settlement-reconcile`): every mandate's state against its `MandateSettled` event and
/// `nonceUsed`, every account's balance against `balanceOf`. Read-only on both sides.
///
/// Events are read from `from_block` (the wallet's deployment) to the latest block.
pub async fn reconcile<C: Chain>(
    chain: &C,
    ledger: &Ledger,
    wallet: Address,
    from_block: u64,
) -> Result<Reconciliation, SettleError> {
    let settler = Settler::new(
        chain,
        ledger,
        wallet,
        TxKey::from_label("reconcile"),
        SettlementOptions {
            from_block,
            ..SettlementOptions::default()
        },
    );
    let domain = settler.domain().to_owned();
    let head = chain.head().await?.number;
    let settled: std::collections::HashMap<B256, B256> = settler
        .settled_events(head)
        .await?
        .into_iter()
        .map(|(d, tx, _)| (d, tx))
        .collect();
    let w = Wallet { address: wallet };
    let mut out = Reconciliation::default();
    let parse_address = |text: &str| -> Result<Address, SettleError> {
        EvmAddress::parse(text)
            .map(|a| Address::from(a.0))
            .map_err(SettleError::Ledger)
    };
    for m in ledger.mandates()?.iter().filter(|m| m.account.domain == domain) {
        out.mandates += 1;
        let id = B256::from(m.mandate_id);
        let owner = parse_address(&m.account.payer)?;
        let token = parse_address(&m.account.token)?;
        let nonce: alloy::primitives::U256 = m.nonce.parse().map_err(|_| {
            SettleError::Ledger(Error::new(
                Reason::ReplayStoreUnavailable,
                "stored nonce is not decimal",
            ))
        })?;
        let used = w.nonce_used(chain, owner, token, nonce).await?;
        let on_chain = match (settled.get(&id), used) {
            (Some(tx), _) => format!("settled in {tx}"),
            (None, true) => "nonce used by another mandate".to_owned(),
            (None, false) => "not settled".to_owned(),
        };
        let agrees = match m.status {
            crate::Status::Settled => settled.get(&id).map(|tx| tx.0) == m.settlement.tx,
            crate::Status::Accepted | crate::Status::Failed => !settled.contains_key(&id),
        };
        if !agrees {
            let ledger_says = match (m.status, m.settlement.tx) {
                (crate::Status::Settled, Some(tx)) => format!("settled in {}", B256::from(tx)),
                (status, _) => status.as_str().to_owned(),
            };
            out.differences.push(Difference {
                kind: "mandate_state",
                subject: id.to_string(),
                ledger: ledger_says,
                chain: on_chain,
            });
        }
    }
    for a in ledger.domain_accounts(&domain)? {
        out.accounts += 1;
        let owner = parse_address(&a.account.payer)?;
        let token = parse_address(&a.account.token)?;
        let onchain = w.balance(chain, owner, token).await?;
        if aep2::U256(onchain.to_be_bytes()) != a.balance {
            out.differences.push(Difference {
                kind: "account_balance",
                subject: format!("{}/{}", a.account.payer, a.account.token),
                ledger: a.balance.to_string(),
                chain: onchain.to_string(),
            });
        }
    }
    Ok(out)
}
