//! AEP2 settlement on an EVM: one [`Chain`] interface with two backends, the embedded EVM
//! ([`Embedded`], revm in process: the default, for tests and the demo) and any node over
//! JSON-RPC ([`Rpc`], through alloy).

pub mod chain;
pub mod contract;
pub mod devnet;
pub mod embedded;
pub mod rpc;

pub use chain::{Chain, ChainError, ChainResult, Fees, Head, Log, SignedTx, TxKey, TxReceipt, TxRequest};
pub use embedded::Embedded;
pub use rpc::Rpc;
