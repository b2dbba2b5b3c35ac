//! The project's contracts (`contracts/src`, compiled by `contracts/build.mjs` into
//! `contracts/artifacts`): their ABI as Rust types, their bytecode, and the calls settlement
//! makes, over any [`Chain`].
//!
//! Digests never come from these bindings: alloy's `sol!` writes the EIP-712 type of a field
//! named `ref` as `r#ref` (see `settlement-and-scale.md` §3), so the mandate digest is always the
//! core's ([`aep2::mandate_digest`]), and the tests hold the contract's `mandateDigest` equal to
//! it on every eip712 vector.

use crate::chain::{Chain, ChainError, ChainResult, Log, TxKey, TxReceipt, TxRequest};
use aep2::{AccountId, EvmMandate, Lane, Mandate, SignedLane, SignedMandate};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{SolCall, SolConstructor, SolEvent};
use std::time::Duration;

#[allow(missing_docs)]
mod abi {
    alloy::sol!(
        #[derive(Debug, PartialEq, Eq)]
        AEP2DebitWallet,
        "contracts/artifacts/AEP2DebitWallet.json"
    );
    alloy::sol!(
        #[derive(Debug, PartialEq, Eq)]
        TestToken,
        "contracts/artifacts/TestToken.json"
    );
}

pub use abi::AEP2DebitWallet;
pub use abi::TestToken;

/// Gas for a contract creation.
pub const DEPLOY_GAS: u64 = 6_000_000;
/// Gas for a deposit, an approval, a withdrawal step or an SP authorisation.
pub const CALL_GAS: u64 = 200_000;
/// Gas a batch may be given per item, on top of [`BATCH_BASE_GAS`] (a settled item costs about
/// half of it; see the contract's README).
pub const ITEM_GAS: u64 = 60_000;
/// Gas a lane item is given per link of its chain, on top of [`ITEM_GAS`]: a link at its largest
/// (eight payees, a 64-byte purpose, ~900 bytes of calldata) on its first use (a new counter slot)
/// costs about 65k, so 70k covers every link (spec `aep2.md#lane-onchain`, *Gas*).
pub const LINK_GAS: u64 = 70_000;
/// Gas of a batch beyond its items.
pub const BATCH_BASE_GAS: u64 = 100_000;
/// The most items one batch takes: its gas stays under the per-transaction cap of EIP-7825
/// (2^24), which nodes from the Osaka fork on enforce.
pub const MAX_BATCH_ITEMS: usize = ((crate::embedded::TX_GAS_CAP - BATCH_BASE_GAS) / ITEM_GAS) as usize;

/// How long [`send`] waits for a transaction to be included.
pub const INCLUSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Why `settle` skipped an item (the contract's `SkipReason`, whose values the ABI carries as a
/// `uint8`), or `None`: it settles. Each names the spec reason code the off-chain verifier gives
/// the same mandate ([`SkipReason::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SkipReason {
    /// Accepted: the item settles (or would).
    None = 0,
    /// `amount_zero`.
    AmountZero = 1,
    /// `uint_out_of_range`: a deadline above 2^53 − 1.
    DeadlineOutOfRange = 2,
    /// `signature_length`.
    SignatureLength = 3,
    /// `signature_v_invalid`.
    SignatureVInvalid = 4,
    /// `signature_high_s`.
    SignatureHighS = 5,
    /// `signature_scalar_out_of_range`.
    SignatureScalarOutOfRange = 6,
    /// `signature_unrecoverable`.
    SignatureUnrecoverable = 7,
    /// `signature_invalid`.
    SignatureInvalid = 8,
    /// `expired`.
    Expired = 9,
    /// `nonce_reused`.
    NonceUsed = 10,
    /// `insufficient_funds`.
    InsufficientFunds = 11,
    /// `lane_depth_exceeded`: a chain of no link or more than 3.
    LaneDepthExceeded = 12,
    /// `uint_out_of_range`: a link's `maxPayments`, `period`, `validFrom` or `validUntil` above
    /// 2^53 − 1.
    LaneValueOutOfRange = 13,
    /// `lane_invalid`.
    LaneInvalid = 14,
    /// `lane_chain_invalid`.
    LaneChainInvalid = 15,
    /// `lane_signature_invalid`.
    LaneSignatureInvalid = 16,
    /// `lane_attenuation_invalid`.
    LaneAttenuationInvalid = 17,
    /// `lane_agent_mismatch`.
    LaneAgentMismatch = 18,
    /// `lane_asset_mismatch`.
    LaneAssetMismatch = 19,
    /// `lane_not_yet_valid`.
    LaneNotYetValid = 20,
    /// `lane_expired`.
    LaneExpired = 21,
    /// `lane_payment_cap_exceeded`.
    LanePaymentCapExceeded = 22,
    /// `lane_payee_not_allowed`.
    LanePayeeNotAllowed = 23,
    /// `lane_total_exceeded`.
    LaneTotalExceeded = 24,
    /// `lane_payments_exhausted`.
    LanePaymentsExhausted = 25,
}

impl SkipReason {
    /// Every value, in the contract's order.
    pub const ALL: [SkipReason; 26] = [
        SkipReason::None,
        SkipReason::AmountZero,
        SkipReason::DeadlineOutOfRange,
        SkipReason::SignatureLength,
        SkipReason::SignatureVInvalid,
        SkipReason::SignatureHighS,
        SkipReason::SignatureScalarOutOfRange,
        SkipReason::SignatureUnrecoverable,
        SkipReason::SignatureInvalid,
        SkipReason::Expired,
        SkipReason::NonceUsed,
        SkipReason::InsufficientFunds,
        SkipReason::LaneDepthExceeded,
        SkipReason::LaneValueOutOfRange,
        SkipReason::LaneInvalid,
        SkipReason::LaneChainInvalid,
        SkipReason::LaneSignatureInvalid,
        SkipReason::LaneAttenuationInvalid,
        SkipReason::LaneAgentMismatch,
        SkipReason::LaneAssetMismatch,
        SkipReason::LaneNotYetValid,
        SkipReason::LaneExpired,
        SkipReason::LanePaymentCapExceeded,
        SkipReason::LanePayeeNotAllowed,
        SkipReason::LaneTotalExceeded,
        SkipReason::LanePaymentsExhausted,
    ];

    /// The reason of a `uint8` from the contract; `None` for a value this build does not know.
    pub fn from_u8(v: u8) -> Option<SkipReason> {
        SkipReason::ALL.get(usize::from(v)).copied()
    }

    /// The spec reason code (`aep2.md#reason-codes`); `None` for [`SkipReason::None`].
    pub fn code(self) -> Option<aep2::Reason> {
        use aep2::Reason as R;
        Some(match self {
            SkipReason::None => return None,
            SkipReason::AmountZero => R::AmountZero,
            SkipReason::DeadlineOutOfRange => R::UintOutOfRange,
            SkipReason::SignatureLength => R::SignatureLength,
            SkipReason::SignatureVInvalid => R::SignatureVInvalid,
            SkipReason::SignatureHighS => R::SignatureHighS,
            SkipReason::SignatureScalarOutOfRange => R::SignatureScalarOutOfRange,
            SkipReason::SignatureUnrecoverable => R::SignatureUnrecoverable,
            SkipReason::SignatureInvalid => R::SignatureInvalid,
            SkipReason::Expired => R::Expired,
            SkipReason::NonceUsed => R::NonceReused,
            SkipReason::InsufficientFunds => R::InsufficientFunds,
            SkipReason::LaneDepthExceeded => R::LaneDepthExceeded,
            SkipReason::LaneValueOutOfRange => R::UintOutOfRange,
            SkipReason::LaneInvalid => R::LaneInvalid,
            SkipReason::LaneChainInvalid => R::LaneChainInvalid,
            SkipReason::LaneSignatureInvalid => R::LaneSignatureInvalid,
            SkipReason::LaneAttenuationInvalid => R::LaneAttenuationInvalid,
            SkipReason::LaneAgentMismatch => R::LaneAgentMismatch,
            SkipReason::LaneAssetMismatch => R::LaneAssetMismatch,
            SkipReason::LaneNotYetValid => R::LaneNotYetValid,
            SkipReason::LaneExpired => R::LaneExpired,
            SkipReason::LanePaymentCapExceeded => R::LanePaymentCapExceeded,
            SkipReason::LanePayeeNotAllowed => R::LanePayeeNotAllowed,
            SkipReason::LaneTotalExceeded => R::LaneTotalExceeded,
            SkipReason::LanePaymentsExhausted => R::LanePaymentsExhausted,
        })
    }
}

fn skip_of(v: u8) -> ChainResult<SkipReason> {
    SkipReason::from_u8(v).ok_or_else(|| ChainError::Malformed(format!("unknown skip reason {v}")))
}

/// The ABI form of a core `eip712` mandate.
pub fn abi_mandate(m: &EvmMandate) -> AEP2DebitWallet::Mandate {
    AEP2DebitWallet::Mandate {
        owner: Address::from(m.owner.0),
        token: Address::from(m.token.0),
        payee: Address::from(m.payee.0),
        amount: U256::from_be_bytes(m.amount.0),
        nonce: U256::from_be_bytes(m.nonce.0),
        deadline: U256::from(m.deadline),
        r#ref: B256::from(m.reference),
    }
}

fn abi_address(a: &AccountId) -> Result<Address, aep2::Error> {
    match a {
        AccountId::Evm(e) => Ok(Address::from(e.0)),
        AccountId::Base58(_) => Err(aep2::Error::new(
            aep2::Reason::ProfileMismatch,
            "an eip712 lane has EVM accounts",
        )),
    }
}

/// The ABI form of a core `eip712` lane (`profile_mismatch` for a lane with base58 accounts).
pub fn abi_lane(l: &Lane) -> Result<AEP2DebitWallet::Lane, aep2::Error> {
    Ok(AEP2DebitWallet::Lane {
        owner: abi_address(&l.owner)?,
        agent: abi_address(&l.agent)?,
        token: abi_address(&l.token)?,
        perPayment: U256::from_be_bytes(l.per_payment.0),
        total: U256::from_be_bytes(l.total.0),
        maxPayments: U256::from(l.max_payments),
        period: U256::from(l.period),
        allowance: U256::from_be_bytes(l.allowance.0),
        payees: l.payees.iter().map(abi_address).collect::<Result<_, _>>()?,
        validFrom: U256::from(l.valid_from),
        validUntil: U256::from(l.valid_until),
        purpose: l.purpose.clone(),
        parent: B256::from(l.parent),
        salt: B256::from(l.salt),
    })
}

/// The ABI form of a signed lane: the signature text's bytes (`signature_encoding` when it is not
/// `0x` hex, which the contract cannot be given).
pub fn abi_signed_lane(l: &SignedLane) -> Result<AEP2DebitWallet::SignedLane, aep2::Error> {
    Ok(AEP2DebitWallet::SignedLane {
        lane: abi_lane(&l.lane)?,
        signature: hex_bytes(&l.signature)?,
    })
}

fn hex_bytes(text: &str) -> Result<Bytes, aep2::Error> {
    aep2::codec::hex_decode_0x(text)
        .map(Bytes::from)
        .ok_or_else(|| aep2::Error::new(aep2::Reason::SignatureEncoding, "a signature text is not hex"))
}

/// The plain batch item of an `eip712` envelope without lanes.
pub fn item(sm: &SignedMandate) -> Result<AEP2DebitWallet::Item, aep2::Error> {
    let Mandate::Eip712(m) = &sm.mandate else {
        return Err(aep2::Error::new(aep2::Reason::ProfileMismatch, "not an eip712 mandate"));
    };
    Ok(AEP2DebitWallet::Item {
        mandate: abi_mandate(m),
        signature: hex_bytes(&sm.signature)?,
    })
}

/// The lane batch item of an `eip712` envelope under lanes: the mandate, the leaf agent's
/// signature and the chain, root first.
pub fn lane_item(sm: &SignedMandate) -> Result<AEP2DebitWallet::LaneItem, aep2::Error> {
    let Mandate::Eip712(m) = &sm.mandate else {
        return Err(aep2::Error::new(aep2::Reason::ProfileMismatch, "not an eip712 mandate"));
    };
    Ok(AEP2DebitWallet::LaneItem {
        mandate: abi_mandate(m),
        signature: hex_bytes(&sm.signature)?,
        lanes: sm.lanes.iter().map(abi_signed_lane).collect::<Result<_, _>>()?,
    })
}

/// A batch item of either kind, as [`Wallet::settle_lanes`] takes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyItem {
    /// A mandate signed by its owner.
    Plain(AEP2DebitWallet::Item),
    /// A mandate under a lane chain.
    Lane(AEP2DebitWallet::LaneItem),
}

impl AnyItem {
    /// The item of an `eip712` envelope: [`AnyItem::Lane`] when it has lanes.
    pub fn of(sm: &SignedMandate) -> Result<AnyItem, aep2::Error> {
        if sm.lanes.is_empty() {
            item(sm).map(AnyItem::Plain)
        } else {
            lane_item(sm).map(AnyItem::Lane)
        }
    }

    /// The gas limit the item is given in a batch.
    pub fn gas(&self) -> u64 {
        match self {
            AnyItem::Plain(_) => ITEM_GAS,
            AnyItem::Lane(l) => lane_item_gas(l.lanes.len()),
        }
    }
}

/// The gas limit a lane item of `links` links is given in a batch (a settled one costs about
/// half of it; see the contract's README).
pub fn lane_item_gas(links: usize) -> u64 {
    ITEM_GAS.saturating_add(LINK_GAS.saturating_mul(links as u64))
}

/// Signs `data` to `to` at the sender's next nonce, sends it and waits for its receipt.
pub async fn send<C: Chain>(
    chain: &C,
    key: &TxKey,
    to: Option<Address>,
    data: Bytes,
    gas: u64,
) -> ChainResult<TxReceipt> {
    let nonce = chain.nonce(key.address()).await?;
    let value = U256::ZERO;
    let tx = chain
        .sign(
            key,
            TxRequest {
                to,
                data,
                nonce,
                gas,
                value,
                min_fees: Default::default(),
            },
        )
        .await?;
    chain.broadcast(&tx).await?;
    wait(chain, tx.hash, INCLUSION_TIMEOUT).await
}

/// Sends `wei` to `to` from `key` (an account's gas money on a real chain) and waits for it.
pub async fn transfer<C: Chain>(chain: &C, key: &TxKey, to: Address, wei: U256) -> ChainResult<TxReceipt> {
    let nonce = chain.nonce(key.address()).await?;
    let request = TxRequest {
        to: Some(to),
        data: Bytes::new(),
        nonce,
        gas: 21_000,
        value: wei,
        min_fees: Default::default(),
    };
    let tx = chain.sign(key, request).await?;
    chain.broadcast(&tx).await?;
    wait(chain, tx.hash, INCLUSION_TIMEOUT).await
}

/// Waits until `hash` is included (polling), at most `timeout`.
pub async fn wait<C: Chain>(chain: &C, hash: B256, timeout: Duration) -> ChainResult<TxReceipt> {
    let started = std::time::Instant::now();
    loop {
        if let Some(r) = chain.receipt(hash).await? {
            return Ok(r);
        }
        if started.elapsed() >= timeout {
            return Err(ChainError::Unavailable(format!(
                "{hash} not included within {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn reverted(what: &str, r: &TxReceipt) -> ChainError {
    ChainError::Refused(format!("{what} reverted (transaction {})", r.hash))
}

async fn create<C: Chain>(chain: &C, key: &TxKey, code: Vec<u8>, what: &str) -> ChainResult<Address> {
    let r = send(chain, key, None, code.into(), DEPLOY_GAS).await?;
    match (r.success, r.contract) {
        (true, Some(a)) => Ok(a),
        _ => Err(reverted(what, &r)),
    }
}

/// Deploys a test token (6 decimals, anyone may mint: for tests and the demo only).
pub async fn deploy_token<C: Chain>(chain: &C, key: &TxKey, symbol: &str) -> ChainResult<Address> {
    let mut code = TestToken::BYTECODE.to_vec();
    code.extend(
        TestToken::constructorCall {
            name_: format!("AEP2 test {symbol}"),
            symbol_: symbol.to_owned(),
            decimals_: 6,
        }
        .abi_encode(),
    );
    create(chain, key, code, "TestToken deployment").await
}

/// Deploys a debit wallet owned by `key`, whose withdrawals unlock `withdrawal_delay` seconds
/// after they are requested.
pub async fn deploy_wallet<C: Chain>(chain: &C, key: &TxKey, withdrawal_delay: u64) -> ChainResult<Address> {
    let mut code = AEP2DebitWallet::BYTECODE.to_vec();
    code.extend(
        AEP2DebitWallet::constructorCall {
            initialOwner: key.address(),
            withdrawalDelay_: U256::from(withdrawal_delay),
        }
        .abi_encode(),
    );
    create(chain, key, code, "AEP2DebitWallet deployment").await
}

/// One call of a contract as a transaction, which must succeed.
async fn transact<C: Chain, T: SolCall>(
    chain: &C,
    key: &TxKey,
    to: Address,
    call: T,
    what: &str,
) -> ChainResult<TxReceipt> {
    let r = send(chain, key, Some(to), call.abi_encode().into(), CALL_GAS).await?;
    if r.success { Ok(r) } else { Err(reverted(what, &r)) }
}

/// A read-only call of a contract, decoded.
async fn view<C: Chain, T: SolCall>(chain: &C, to: Address, call: T) -> ChainResult<T::Return> {
    let out = chain.call(to, call.abi_encode().into()).await?;
    T::abi_decode_returns(&out).map_err(|e| ChainError::Malformed(format!("{}: {e}", T::SIGNATURE)))
}

/// Mints test tokens to `to`.
pub async fn mint<C: Chain>(chain: &C, key: &TxKey, token: Address, to: Address, amount: U256) -> ChainResult<()> {
    transact(chain, key, token, TestToken::mintCall { to, amount }, "mint")
        .await
        .map(|_| ())
}

/// An account's ERC-20 balance.
pub async fn token_balance<C: Chain>(chain: &C, token: Address, who: Address) -> ChainResult<U256> {
    view(chain, token, TestToken::balanceOfCall { account: who }).await
}

/// A debit wallet at an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wallet {
    /// The contract's address.
    pub address: Address,
}

/// What one batch did, read from its receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The receipt of the batch transaction.
    pub receipt: TxReceipt,
    /// The digests settled, in item order.
    pub settled: Vec<B256>,
    /// The digests skipped and why, in item order (a reason this build does not know is
    /// `None` in the second place).
    pub skipped: Vec<(B256, Option<SkipReason>)>,
}

impl BatchOutcome {
    /// Reads a batch's outcome from its receipt's events (`MandateSettled`, `MandateSkipped`).
    pub fn of(wallet: Address, receipt: TxReceipt) -> BatchOutcome {
        let mut settled = Vec::new();
        let mut skipped = Vec::new();
        for l in receipt.logs.iter().filter(|l| l.address == wallet) {
            if let Some(e) = decode::<AEP2DebitWallet::MandateSettled>(l) {
                settled.push(e.digest);
            } else if let Some(e) = decode::<AEP2DebitWallet::MandateSkipped>(l) {
                skipped.push((e.digest, SkipReason::from_u8(e.reason)));
            }
        }
        BatchOutcome {
            receipt,
            settled,
            skipped,
        }
    }
}

/// A log decoded as event `E`, if it is one.
pub fn decode<E: SolEvent>(l: &Log) -> Option<E> {
    if l.topics.first() != Some(&E::SIGNATURE_HASH) {
        return None;
    }
    E::decode_raw_log(l.topics.iter().copied(), &l.data).ok()
}

impl Wallet {
    /// Authorises (or de-authorises) a settlement processor; `owner` is the wallet's owner.
    pub async fn set_settlement_processor<C: Chain>(
        &self,
        chain: &C,
        owner: &TxKey,
        sp: Address,
        authorised: bool,
    ) -> ChainResult<()> {
        let call = AEP2DebitWallet::setSettlementProcessorCall { sp, authorised };
        transact(chain, owner, self.address, call, "setSettlementProcessor")
            .await
            .map(|_| ())
    }

    /// Approves the wallet for `amount` of `token` and deposits it for `payer`'s key.
    pub async fn deposit<C: Chain>(
        &self,
        chain: &C,
        payer: &TxKey,
        token: Address,
        amount: U256,
    ) -> ChainResult<TxReceipt> {
        let approve = TestToken::approveCall {
            spender: self.address,
            value: amount,
        };
        transact(chain, payer, token, approve, "approve").await?;
        transact(
            chain,
            payer,
            self.address,
            AEP2DebitWallet::depositCall { token, amount },
            "deposit",
        )
        .await
    }

    /// Requests a withdrawal of `amount` of `token`.
    pub async fn request_withdrawal<C: Chain>(
        &self,
        chain: &C,
        owner: &TxKey,
        token: Address,
        amount: U256,
    ) -> ChainResult<TxReceipt> {
        let call = AEP2DebitWallet::requestWithdrawalCall { token, amount };
        transact(chain, owner, self.address, call, "requestWithdrawal").await
    }

    /// Withdraws a requested amount once it is unlocked.
    pub async fn withdraw<C: Chain>(&self, chain: &C, owner: &TxKey, token: Address) -> ChainResult<TxReceipt> {
        transact(
            chain,
            owner,
            self.address,
            AEP2DebitWallet::withdrawCall { token },
            "withdraw",
        )
        .await
    }

    /// The calldata of a batch.
    pub fn settle_calldata(batch_id: B256, items: Vec<AEP2DebitWallet::Item>) -> Bytes {
        AEP2DebitWallet::settleCall {
            batchId: batch_id,
            items,
        }
        .abi_encode()
        .into()
    }

    /// The calldata of a batch of plain and lane items (`settleLanes`; the plain items settle
    /// first). A batch without lane items is `settle`'s calldata, so its gas is a plain batch's.
    pub fn settle_any_calldata(batch_id: B256, items: Vec<AnyItem>) -> Bytes {
        let mut plain = Vec::new();
        let mut lanes = Vec::new();
        for i in items {
            match i {
                AnyItem::Plain(p) => plain.push(p),
                AnyItem::Lane(l) => lanes.push(l),
            }
        }
        if lanes.is_empty() {
            return Wallet::settle_calldata(batch_id, plain);
        }
        AEP2DebitWallet::settleLanesCall {
            batchId: batch_id,
            items: plain,
            laneItems: lanes,
        }
        .abi_encode()
        .into()
    }

    /// The gas limit a batch of these items is given.
    pub fn any_batch_gas(items: &[AnyItem]) -> u64 {
        items.iter().fold(BATCH_BASE_GAS, |g, i| g.saturating_add(i.gas()))
    }

    /// Settles a batch of plain and lane items and waits for it (tests, benchmarks, the demo).
    pub async fn settle_lanes<C: Chain>(
        &self,
        chain: &C,
        sp: &TxKey,
        batch_id: B256,
        items: Vec<AnyItem>,
    ) -> ChainResult<BatchOutcome> {
        // The per-item budgets cover each item's worst case; a large batch gets at most what a
        // transaction may have (a batch of 100 three-link items uses about 11M of it).
        let gas = Wallet::any_batch_gas(&items).min(crate::embedded::TX_GAS_CAP);
        let r = send(
            chain,
            sp,
            Some(self.address),
            Wallet::settle_any_calldata(batch_id, items),
            gas,
        )
        .await?;
        if !r.success {
            return Err(reverted("settleLanes", &r));
        }
        Ok(BatchOutcome::of(self.address, r))
    }

    /// What `settleLanes` would do with one lane item now.
    pub async fn verify_lane_mandate<C: Chain>(
        &self,
        chain: &C,
        item: AEP2DebitWallet::LaneItem,
    ) -> ChainResult<(B256, SkipReason)> {
        let call = AEP2DebitWallet::verifyLaneMandateCall {
            m: item.mandate,
            signature: item.signature,
            lanes: item.lanes,
        };
        let r = view(chain, self.address, call).await?;
        Ok((r.digest, skip_of(r.reason)?))
    }

    /// The contract's id of a lane.
    pub async fn lane_id<C: Chain>(&self, chain: &C, lane: AEP2DebitWallet::Lane) -> ChainResult<B256> {
        view(chain, self.address, AEP2DebitWallet::laneIdCall { lane }).await
    }

    /// The contract's digest of a mandate under the lane `lane`.
    pub async fn lane_mandate_digest<C: Chain>(
        &self,
        chain: &C,
        m: AEP2DebitWallet::Mandate,
        lane: B256,
    ) -> ChainResult<B256> {
        view(chain, self.address, AEP2DebitWallet::laneMandateDigestCall { m, lane }).await
    }

    /// What has settled under a lane, its sub-lanes included: (sum of amounts, mandates).
    pub async fn lane_spent<C: Chain>(&self, chain: &C, lane: B256) -> ChainResult<(U256, U256)> {
        let r = view(chain, self.address, AEP2DebitWallet::laneSpentCall { lane }).await?;
        Ok((r.spent, r.payments))
    }

    /// The gas limit a batch of `n` items is given.
    pub fn batch_gas(n: usize) -> u64 {
        BATCH_BASE_GAS.saturating_add(ITEM_GAS.saturating_mul(n as u64))
    }

    /// Settles a batch and waits for it (the worker signs and tracks its own transactions; this
    /// is for tests, benchmarks and the demo).
    pub async fn settle<C: Chain>(
        &self,
        chain: &C,
        sp: &TxKey,
        batch_id: B256,
        items: Vec<AEP2DebitWallet::Item>,
    ) -> ChainResult<BatchOutcome> {
        let gas = Wallet::batch_gas(items.len());
        let r = send(
            chain,
            sp,
            Some(self.address),
            Wallet::settle_calldata(batch_id, items),
            gas,
        )
        .await?;
        if !r.success {
            return Err(reverted("settle", &r));
        }
        Ok(BatchOutcome::of(self.address, r))
    }

    /// The owner's debitable balance of `token`.
    pub async fn balance<C: Chain>(&self, chain: &C, owner: Address, token: Address) -> ChainResult<U256> {
        view(
            chain,
            self.address,
            AEP2DebitWallet::balanceOfCall { owner_: owner, token },
        )
        .await
    }

    /// Whether the mandate with this nonce of `owner` and `token` has settled here.
    pub async fn nonce_used<C: Chain>(
        &self,
        chain: &C,
        owner: Address,
        token: Address,
        nonce: U256,
    ) -> ChainResult<bool> {
        view(
            chain,
            self.address,
            AEP2DebitWallet::nonceUsedCall {
                owner_: owner,
                token,
                nonce,
            },
        )
        .await
    }

    /// The contract's digest of a mandate.
    pub async fn mandate_digest<C: Chain>(&self, chain: &C, m: AEP2DebitWallet::Mandate) -> ChainResult<B256> {
        view(chain, self.address, AEP2DebitWallet::mandateDigestCall { m }).await
    }

    /// What `settle` would do with one item now.
    pub async fn verify<C: Chain>(
        &self,
        chain: &C,
        m: AEP2DebitWallet::Mandate,
        signature: Bytes,
    ) -> ChainResult<(B256, SkipReason)> {
        let r = view(chain, self.address, AEP2DebitWallet::verifyMandateCall { m, signature }).await?;
        Ok((r.digest, skip_of(r.reason)?))
    }
}
