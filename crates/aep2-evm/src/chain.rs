//! One interface to an EVM chain, whatever runs it: the embedded EVM ([`crate::Embedded`]) or
//! a node over JSON-RPC ([`crate::Rpc`]). It is the few operations settlement needs, with the
//! node's failures kept apart from a transaction's outcome, so a caller never mistakes an
//! unreachable node, a refused transaction or a revert for success.

use aep2::crypto::secp256k1::SecretKey;
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use std::future::Future;

/// A transaction key: signs the transactions an account sends (the SP's settlement key, a
/// depositor's key in tests and the demo).
#[derive(Clone)]
pub struct TxKey {
    secret: [u8; 32],
    address: Address,
}

impl TxKey {
    /// The key of a 32-byte secp256k1 secret.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<TxKey> {
        let key = SecretKey::from_bytes(bytes)?;
        Some(TxKey {
            secret: *bytes,
            address: Address::from(key.address().0),
        })
    }

    /// A key derived from a label, for tests and the demo (never for funds that matter).
    pub fn from_label(label: &str) -> TxKey {
        let mut seed = keccak256(format!("aep2-evm/test-key/{label}").as_bytes()).0;
        loop {
            if let Some(k) = TxKey::from_bytes(&seed) {
                return k;
            }
            seed = keccak256(seed).0;
        }
    }

    /// The account the key controls.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The secret's 32 bytes (for the JSON-RPC signer).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret
    }
}

impl std::fmt::Debug for TxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxKey")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// EIP-1559 fees, wei per gas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fees {
    /// The most the sender pays per gas, base fee included.
    pub max_fee_per_gas: u128,
    /// The most of it that goes to the block's producer.
    pub max_priority_fee_per_gas: u128,
}

impl Fees {
    /// Fees a node takes as a replacement of a pending transaction with these: both raised by a
    /// fifth, at least by one wei (nodes ask for at least a tenth more on each).
    pub fn bumped(self) -> Fees {
        let up = |v: u128| v.saturating_add((v / 5).max(1));
        Fees {
            max_fee_per_gas: up(self.max_fee_per_gas),
            max_priority_fee_per_gas: up(self.max_priority_fee_per_gas),
        }
    }

    /// Each of the two fees at least the other's.
    pub fn at_least(self, floor: Fees) -> Fees {
        Fees {
            max_fee_per_gas: self.max_fee_per_gas.max(floor.max_fee_per_gas),
            max_priority_fee_per_gas: self.max_priority_fee_per_gas.max(floor.max_priority_fee_per_gas),
        }
    }
}

/// A transaction to sign: a call (`to`) or a contract creation (`to: None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRequest {
    /// The called contract; `None` creates one from `data`.
    pub to: Option<Address>,
    /// Calldata, or init code for a creation.
    pub data: Bytes,
    /// The sender's nonce the transaction takes.
    pub nonce: u64,
    /// The gas limit.
    pub gas: u64,
    /// Wei sent with it (funding an account's gas; zero for every contract call here).
    pub value: U256,
    /// The least fees it pays: the chain's own estimate when higher (a replacement of a stuck
    /// transaction asks for more than the one it replaces).
    pub min_fees: Fees,
}

/// A signed transaction: its hash is known before it is sent, so a sender can record it first
/// and, after a crash, look it up instead of sending the same work twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTx {
    /// The transaction hash.
    pub hash: B256,
    /// The sender.
    pub from: Address,
    /// The sender's nonce it takes.
    pub nonce: u64,
    /// The bytes to broadcast (the node's raw transaction, or the embedded EVM's own encoding).
    pub raw: Bytes,
    /// The fees it pays (zero on the embedded chain, which charges none).
    pub fees: Fees,
}

/// One event a transaction emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// The emitting contract.
    pub address: Address,
    /// `topics[0]` is the event signature's hash.
    pub topics: Vec<B256>,
    /// The ABI-encoded non-indexed fields.
    pub data: Bytes,
    /// The block it was included in.
    pub block: u64,
    /// The transaction that emitted it.
    pub tx: B256,
    /// Its position among the logs `address` emitted in its transaction: with `tx`, an id of
    /// the event that every backend gives alike (whatever else the transaction emitted, and
    /// whichever block a reorganisation moves it to).
    pub index: u64,
}

/// Numbers logs given in chain order by their position among their contract's logs in their
/// transaction ([`Log::index`]).
pub(crate) fn number_per_contract(logs: &mut [Log]) {
    let mut seen: std::collections::HashMap<(B256, Address), u64> = std::collections::HashMap::new();
    for l in logs {
        let n = seen.entry((l.tx, l.address)).or_insert(0);
        l.index = *n;
        *n += 1;
    }
}

/// What a mined transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxReceipt {
    /// The transaction hash.
    pub hash: B256,
    /// The block that includes it.
    pub block: u64,
    /// Whether it succeeded (status 1) or reverted (status 0).
    pub success: bool,
    /// Gas used.
    pub gas_used: u64,
    /// The contract a creation made.
    pub contract: Option<Address>,
    /// The events it emitted (none when it reverted).
    pub logs: Vec<Log>,
}

/// The head of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The latest block's number.
    pub number: u64,
    /// The latest block's timestamp, unix seconds.
    pub timestamp: u64,
}

/// Why a chain operation did not complete. None of these is an outcome of the transaction
/// itself: a mined transaction's revert is [`TxReceipt::success`] `false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    /// The node could not be reached or did not answer in time: nothing is known, retry.
    Unavailable(String),
    /// The node refused the transaction (nonce too low, replacement underpriced, gas above the
    /// block limit, …): it was not included.
    Refused(String),
    /// A read-only call reverted, with the revert data.
    CallReverted(Bytes),
    /// The node answered something that cannot be read.
    Malformed(String),
}

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainError::Unavailable(m) => write!(f, "chain unavailable: {m}"),
            ChainError::Refused(m) => write!(f, "transaction refused: {m}"),
            ChainError::CallReverted(d) => write!(f, "call reverted: {d}"),
            ChainError::Malformed(m) => write!(f, "unreadable answer from the chain: {m}"),
        }
    }
}

impl std::error::Error for ChainError {}

/// Shorthand for chain results.
pub type ChainResult<T> = Result<T, ChainError>;

/// The operations settlement needs from a chain.
pub trait Chain: Send + Sync {
    /// The chain id (EIP-155), part of every mandate's EIP-712 domain.
    fn chain_id(&self) -> u64;

    /// The latest block.
    fn head(&self) -> impl Future<Output = ChainResult<Head>> + Send;

    /// The number of transactions `who` has had included (its next nonce).
    fn nonce(&self, who: Address) -> impl Future<Output = ChainResult<u64>> + Send;

    /// The runtime code at `who` (empty: no contract).
    fn code(&self, who: Address) -> impl Future<Output = ChainResult<Bytes>> + Send;

    /// A read-only call against the latest block.
    fn call(&self, to: Address, data: Bytes) -> impl Future<Output = ChainResult<Bytes>> + Send;

    /// Signs a transaction, filling in the fees; sends nothing.
    fn sign(&self, key: &TxKey, tx: TxRequest) -> impl Future<Output = ChainResult<SignedTx>> + Send;

    /// Sends a signed transaction. Sending one the node already has is not an error.
    fn broadcast(&self, tx: &SignedTx) -> impl Future<Output = ChainResult<()>> + Send;

    /// The receipt of a transaction, once it is included; `None` while it is not.
    fn receipt(&self, hash: B256) -> impl Future<Output = ChainResult<Option<TxReceipt>>> + Send;

    /// The events `address` emitted in blocks `from..=to`.
    fn logs(&self, address: Address, from: u64, to: u64) -> impl Future<Output = ChainResult<Vec<Log>>> + Send;
}
