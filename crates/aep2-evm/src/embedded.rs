//! The embedded chain: an in-process EVM (revm) that mines every transaction in a block of its
//! own, at a timestamp the caller controls. It needs no node, so `cargo test` and `aep2 demo`
//! settle for real: the same bytecode, calldata and events as on any chain.
//!
//! A transaction's "signature" here is its sender: the embedded chain trusts the process it
//! runs in. Its hash is the Keccak-256 of its own encoding, so it is known before it is sent,
//! as on a real chain, and the crash-recovery paths of a sender are the same on both backends.

use crate::chain::{Chain, ChainError, ChainResult, Head, Log, SignedTx, TxKey, TxReceipt, TxRequest};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use revm::context::result::{ExecutionResult, Output};
use revm::context::{BlockEnv, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{MainnetContext, MainnetEvm};
use revm::primitives::TxKind;
use revm::state::AccountInfo;
use revm::{Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};
use std::collections::HashMap;
use std::sync::Mutex;

type Evm = MainnetEvm<MainnetContext<CacheDB<EmptyDB>>>;

/// Gas a block may hold: a batch of any size the contract is asked to settle fits.
pub const BLOCK_GAS_LIMIT: u64 = 60_000_000;

/// The most gas one transaction may use (EIP-7825, in force from the Osaka fork this EVM runs).
pub const TX_GAS_CAP: u64 = 1 << 24;

/// The largest transaction encoding the embedded chain accepts (a batch of several thousand
/// mandates; a node's limit is smaller).
pub const MAX_RAW_TX: usize = 4 << 20;

struct State {
    /// The world state; an EVM is built around it per transaction (revm's EVM is not `Send`,
    /// the database is).
    db: CacheDB<EmptyDB>,
    number: u64,
    timestamp: u64,
    /// The timestamp the next block gets at least (tests move time forward).
    next_timestamp: u64,
    receipts: HashMap<B256, TxReceipt>,
    logs: Vec<Log>,
}

/// An in-process EVM chain.
pub struct Embedded {
    chain_id: u64,
    state: Mutex<State>,
    wall_clock: bool,
}

impl Embedded {
    /// A new chain with genesis at `timestamp` (unix seconds).
    pub fn new(chain_id: u64, timestamp: u64) -> Embedded {
        Embedded {
            chain_id,
            state: Mutex::new(State {
                db: CacheDB::new(EmptyDB::default()),
                number: 0,
                timestamp,
                next_timestamp: timestamp,
                receipts: HashMap::new(),
                logs: Vec::new(),
            }),
            wall_clock: false,
        }
    }

    /// The same chain, whose blocks are never earlier than the system clock (a chain a service
    /// runs on, where time passes without a test moving it).
    pub fn following_wall_clock(mut self) -> Embedded {
        self.wall_clock = true;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent state (every step commits whole).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves the clock: the next block's timestamp is at least `now + seconds`.
    pub fn advance(&self, seconds: u64) {
        let mut s = self.lock();
        s.next_timestamp = s.next_timestamp.max(s.timestamp).saturating_add(seconds);
    }

    /// Sets the next block's timestamp (never before the latest block's).
    pub fn set_time(&self, timestamp: u64) {
        let mut s = self.lock();
        s.next_timestamp = timestamp.max(s.timestamp);
    }

    /// Gives `who` ether (the embedded chain charges no gas; this is for contracts that read
    /// balances).
    pub fn fund(&self, who: Address, wei: U256) {
        let mut s = self.lock();
        let mut info = Embedded::account(&s, who);
        info.balance = wei;
        s.db.insert_account_info(who, info);
    }

    /// Puts runtime `code` at `who` (tests: a deployment at a vector's `verifyingContract`).
    pub fn set_code(&self, who: Address, code: Bytes) {
        let mut s = self.lock();
        let mut info = Embedded::account(&s, who);
        info.code_hash = keccak256(&code);
        info.code = Some(revm::bytecode::Bytecode::new_raw(code));
        s.db.insert_account_info(who, info);
    }

    fn account(s: &State, who: Address) -> AccountInfo {
        s.db.cache
            .accounts
            .get(&who)
            .map(|a| a.info.clone())
            .unwrap_or_default()
    }

    /// Runs `f` on an EVM over the world state, in block `number` at `timestamp`.
    fn with_evm<R>(&self, s: &mut State, number: u64, timestamp: u64, f: impl FnOnce(&mut Evm) -> R) -> R {
        let db = std::mem::replace(&mut s.db, CacheDB::new(EmptyDB::default()));
        let chain_id = self.chain_id;
        let mut evm = Context::mainnet()
            .with_db(db)
            .modify_cfg_chained(|c| c.chain_id = chain_id)
            .modify_block_chained(|b: &mut BlockEnv| {
                b.number = U256::from(number);
                b.timestamp = U256::from(timestamp);
                b.gas_limit = BLOCK_GAS_LIMIT;
                b.basefee = 0;
            })
            .build_mainnet();
        let out = f(&mut evm);
        s.db = evm.ctx.journaled_state.database;
        out
    }
}

/// The embedded chain's transaction encoding: `from ‖ nonce ‖ gas ‖ value ‖ flag ‖ to ‖ data`.
fn encode(from: Address, tx: &TxRequest) -> Vec<u8> {
    let mut raw = Vec::with_capacity(89 + tx.data.len());
    raw.extend_from_slice(from.as_slice());
    raw.extend_from_slice(&tx.nonce.to_be_bytes());
    raw.extend_from_slice(&tx.gas.to_be_bytes());
    raw.extend_from_slice(&tx.value.to_be_bytes::<32>());
    match tx.to {
        Some(to) => {
            raw.push(1);
            raw.extend_from_slice(to.as_slice());
        }
        None => {
            raw.push(0);
            raw.extend_from_slice(&[0; 20]);
        }
    }
    raw.extend_from_slice(&tx.data);
    raw
}

fn decode(raw: &[u8]) -> ChainResult<(Address, TxRequest)> {
    if raw.len() < 89 || raw.len() > MAX_RAW_TX {
        return Err(ChainError::Refused("not an embedded-chain transaction".into()));
    }
    let from = Address::from_slice(&raw[..20]);
    let word = |at: usize| u64::from_be_bytes(raw[at..at + 8].try_into().unwrap_or([0; 8]));
    let to = match raw[68] {
        1 => Some(Address::from_slice(&raw[69..89])),
        0 => None,
        _ => return Err(ChainError::Refused("not an embedded-chain transaction".into())),
    };
    Ok((
        from,
        TxRequest {
            to,
            data: Bytes::copy_from_slice(&raw[89..]),
            nonce: word(20),
            gas: word(28),
            value: U256::from_be_slice(&raw[36..68]),
            min_fees: Default::default(),
        },
    ))
}

impl Chain for Embedded {
    fn chain_id(&self) -> u64 {
        self.chain_id
    }

    async fn head(&self) -> ChainResult<Head> {
        let s = self.lock();
        Ok(Head {
            number: s.number,
            timestamp: s.timestamp,
        })
    }

    async fn nonce(&self, who: Address) -> ChainResult<u64> {
        Ok(Embedded::account(&self.lock(), who).nonce)
    }

    async fn code(&self, who: Address) -> ChainResult<Bytes> {
        let s = self.lock();
        let info = Embedded::account(&s, who);
        let code = info
            .code
            .or_else(|| s.db.cache.contracts.get(&info.code_hash).cloned())
            .map(|c| c.original_bytes())
            .unwrap_or_default();
        Ok(code)
    }

    async fn call(&self, to: Address, data: Bytes) -> ChainResult<Bytes> {
        let mut s = self.lock();
        let (number, timestamp) = (s.number, s.timestamp);
        let tx = TxEnv {
            caller: Address::ZERO,
            gas_limit: TX_GAS_CAP,
            kind: TxKind::Call(to),
            data,
            nonce: Embedded::account(&s, Address::ZERO).nonce,
            chain_id: Some(self.chain_id),
            ..TxEnv::default()
        };
        // `transact` does not commit: a call changes nothing.
        let out = self
            .with_evm(&mut s, number, timestamp, |evm| evm.transact(tx))
            .map_err(|e| ChainError::Malformed(format!("call not executed: {e:?}")))?;
        match out.result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(ChainError::CallReverted(output)),
            ExecutionResult::Halt { reason, .. } => Err(ChainError::CallReverted(Bytes::from(
                format!("halted: {reason:?}").into_bytes(),
            ))),
        }
    }

    async fn sign(&self, key: &TxKey, tx: TxRequest) -> ChainResult<SignedTx> {
        let raw = encode(key.address(), &tx);
        Ok(SignedTx {
            hash: keccak256(&raw),
            from: key.address(),
            nonce: tx.nonce,
            raw: raw.into(),
            fees: Default::default(),
        })
    }

    async fn broadcast(&self, signed: &SignedTx) -> ChainResult<()> {
        let (from, tx) = decode(&signed.raw)?;
        let hash = keccak256(&signed.raw);
        let mut s = self.lock();
        if s.receipts.contains_key(&hash) {
            return Ok(());
        }
        let expected = Embedded::account(&s, from).nonce;
        if tx.nonce != expected {
            return Err(ChainError::Refused(format!(
                "nonce {} for {from}, expected {expected}",
                tx.nonce
            )));
        }
        if tx.gas > TX_GAS_CAP {
            return Err(ChainError::Refused("gas above the transaction gas cap".into()));
        }
        let wall = if self.wall_clock {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        } else {
            0
        };
        let (number, timestamp) = (s.number + 1, s.next_timestamp.max(s.timestamp).max(wall));
        let env = TxEnv {
            caller: from,
            gas_limit: tx.gas,
            kind: tx.to.map_or(TxKind::Create, TxKind::Call),
            data: tx.data,
            value: tx.value,
            nonce: tx.nonce,
            chain_id: Some(self.chain_id),
            ..TxEnv::default()
        };
        let result = self
            .with_evm(&mut s, number, timestamp, |evm| evm.transact_commit(env))
            .map_err(|e| ChainError::Refused(format!("{e:?}")))?;
        let (success, gas_used, contract, logs) = match result {
            ExecutionResult::Success { gas, logs, output, .. } => {
                let contract = match output {
                    Output::Create(_, address) => address,
                    Output::Call(_) => None,
                };
                (true, gas.tx_gas_used(), contract, logs)
            }
            ExecutionResult::Revert { gas, .. } | ExecutionResult::Halt { gas, .. } => {
                (false, gas.tx_gas_used(), None, Vec::new())
            }
        };
        let mut logs: Vec<Log> = logs
            .into_iter()
            .map(|l| Log {
                address: l.address,
                topics: l.data.topics().to_vec(),
                data: l.data.data.clone(),
                block: number,
                tx: hash,
                index: 0,
            })
            .collect();
        crate::chain::number_per_contract(&mut logs);
        s.number = number;
        s.timestamp = timestamp;
        s.logs.extend(logs.iter().cloned());
        s.receipts.insert(
            hash,
            TxReceipt {
                hash,
                block: number,
                success,
                gas_used,
                contract,
                logs,
            },
        );
        Ok(())
    }

    async fn receipt(&self, hash: B256) -> ChainResult<Option<TxReceipt>> {
        Ok(self.lock().receipts.get(&hash).cloned())
    }

    async fn logs(&self, address: Address, from: u64, to: u64) -> ChainResult<Vec<Log>> {
        Ok(self
            .lock()
            .logs
            .iter()
            .filter(|l| l.address == address && (from..=to).contains(&l.block))
            .cloned()
            .collect())
    }
}
