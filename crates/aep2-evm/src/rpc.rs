//! A chain behind a node's JSON-RPC (anvil, geth, reth, a provider's endpoint), through the
//! alloy crates over plain HTTP. Transactions are EIP-1559, signed here with the sender's key;
//! the node only relays them, so a transaction's hash is known before it is sent.

use crate::chain::{Chain, ChainError, ChainResult, Fees, Head, Log, SignedTx, TxKey, TxReceipt, TxRequest};
use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::{BlockNumberOrTag, Encodable2718};
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, B256, Bytes, TxKind};
use alloy::providers::{Provider, ProviderBuilder, RootProvider};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportErrorKind};
use std::time::Duration;

/// How long one JSON-RPC request may take before the node counts as unavailable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The most blocks one `eth_getLogs` request spans (nodes cap the range).
pub const MAX_LOG_RANGE: u64 = 10_000;

/// A chain reached over JSON-RPC.
#[derive(Clone)]
pub struct Rpc {
    provider: RootProvider,
    chain_id: u64,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("chain_id", &self.chain_id)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> ChainError {
    ChainError::Unavailable(e.to_string())
}

/// A node's answer to a request: an error response is the node's word on it, anything else is
/// the transport failing.
fn classify(e: RpcError<TransportErrorKind>, refused: impl FnOnce(String, Option<Bytes>) -> ChainError) -> ChainError {
    match e {
        RpcError::ErrorResp(payload) => {
            let data = payload
                .data
                .as_ref()
                .and_then(|d| serde_json::from_str::<Bytes>(d.get()).ok());
            refused(payload.message.to_string(), data)
        }
        RpcError::DeserError { err, text } => ChainError::Malformed(format!("{err}: {text:.200}")),
        other => unavailable(other),
    }
}

async fn timed<T>(
    fut: impl std::future::Future<Output = Result<T, RpcError<TransportErrorKind>>>,
    refused: impl FnOnce(String, Option<Bytes>) -> ChainError,
) -> ChainResult<T> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(e, refused)),
        Err(_) => Err(ChainError::Unavailable("the node did not answer in time".into())),
    }
}

fn refused(message: String, _: Option<Bytes>) -> ChainError {
    ChainError::Refused(message)
}

fn malformed(message: String, _: Option<Bytes>) -> ChainError {
    ChainError::Malformed(message)
}

impl Rpc {
    /// Connects to the node at `url` (`http://…`) and reads its chain id.
    pub async fn connect(url: &str) -> ChainResult<Rpc> {
        let url = url
            .parse()
            .map_err(|e| ChainError::Unavailable(format!("not a URL: {url}: {e}")))?;
        let provider = ProviderBuilder::default().connect_http(url);
        let chain_id = timed(provider.get_chain_id().into_future(), malformed).await?;
        Ok(Rpc { provider, chain_id })
    }

    /// The provider, for tests that drive the node directly (anvil's time control).
    pub fn provider(&self) -> &RootProvider {
        &self.provider
    }

    /// Asks the node for a method it defines beyond the standard set (anvil's `evm_increaseTime`,
    /// `evm_mine`).
    pub async fn raw(&self, method: &'static str, params: serde_json::Value) -> ChainResult<serde_json::Value> {
        timed(
            self.provider.raw_request::<_, serde_json::Value>(method.into(), params),
            refused,
        )
        .await
    }
}

impl Chain for Rpc {
    fn chain_id(&self) -> u64 {
        self.chain_id
    }

    async fn head(&self) -> ChainResult<Head> {
        let block = timed(
            self.provider
                .get_block_by_number(BlockNumberOrTag::Latest)
                .into_future(),
            malformed,
        )
        .await?
        .ok_or_else(|| ChainError::Malformed("no latest block".into()))?;
        Ok(Head {
            number: block.header.number,
            timestamp: block.header.timestamp,
        })
    }

    async fn nonce(&self, who: Address) -> ChainResult<u64> {
        timed(
            self.provider
                .get_transaction_count(who)
                .block_id(BlockNumberOrTag::Latest.into())
                .into_future(),
            malformed,
        )
        .await
    }

    async fn code(&self, who: Address) -> ChainResult<Bytes> {
        timed(
            self.provider
                .get_code_at(who)
                .block_id(BlockNumberOrTag::Latest.into())
                .into_future(),
            malformed,
        )
        .await
    }

    async fn call(&self, to: Address, data: Bytes) -> ChainResult<Bytes> {
        let tx = TransactionRequest::default().to(to).input(data.into());
        timed(
            self.provider
                .call(tx)
                .block(BlockNumberOrTag::Latest.into())
                .into_future(),
            |message, data| match data {
                Some(d) => ChainError::CallReverted(d),
                None => ChainError::CallReverted(Bytes::from(message.into_bytes())),
            },
        )
        .await
    }

    async fn sign(&self, key: &TxKey, tx: TxRequest) -> ChainResult<SignedTx> {
        let estimate = timed(self.provider.estimate_eip1559_fees(), malformed).await?;
        let fees = Fees {
            max_fee_per_gas: estimate.max_fee_per_gas,
            max_priority_fee_per_gas: estimate.max_priority_fee_per_gas,
        }
        .at_least(tx.min_fees);
        let mut unsigned = TxEip1559 {
            chain_id: self.chain_id,
            nonce: tx.nonce,
            gas_limit: tx.gas,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas.min(fees.max_fee_per_gas),
            to: tx.to.map_or(TxKind::Create, TxKind::Call),
            value: tx.value,
            access_list: Default::default(),
            input: tx.data,
        };
        let signer = PrivateKeySigner::from_bytes(&B256::from(key.secret_bytes()))
            .map_err(|e| ChainError::Refused(format!("not a signing key: {e}")))?;
        let signature = signer
            .sign_transaction_sync(&mut unsigned)
            .map_err(|e| ChainError::Refused(format!("signing failed: {e}")))?;
        let envelope = TxEnvelope::from(unsigned.into_signed(signature));
        Ok(SignedTx {
            hash: *envelope.tx_hash(),
            from: key.address(),
            nonce: tx.nonce,
            raw: envelope.encoded_2718().into(),
            fees,
        })
    }

    async fn broadcast(&self, tx: &SignedTx) -> ChainResult<()> {
        match timed(self.provider.send_raw_transaction(&tx.raw), refused).await {
            Ok(_) => Ok(()),
            // The node has it already (a resend after a crash or a timeout): not an error.
            Err(ChainError::Refused(m)) if m.contains("already known") || m.contains("already imported") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn receipt(&self, hash: B256) -> ChainResult<Option<TxReceipt>> {
        let Some(r) = timed(self.provider.get_transaction_receipt(hash).into_future(), malformed).await? else {
            return Ok(None);
        };
        let Some(block) = r.block_number else { return Ok(None) };
        let mut logs: Vec<Log> = r
            .inner
            .logs()
            .iter()
            .map(|l| Log {
                address: l.address(),
                topics: l.topics().to_vec(),
                data: l.data().data.clone(),
                block,
                tx: hash,
                index: 0,
            })
            .collect();
        crate::chain::number_per_contract(&mut logs);
        Ok(Some(TxReceipt {
            hash,
            block,
            success: r.status(),
            gas_used: r.gas_used,
            contract: r.contract_address,
            logs,
        }))
    }

    async fn logs(&self, address: Address, from: u64, to: u64) -> ChainResult<Vec<Log>> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(MAX_LOG_RANGE - 1));
            let filter = Filter::new().address(address).from_block(start).to_block(end);
            for l in timed(self.provider.get_logs(&filter), malformed).await? {
                let (Some(block), Some(tx)) = (l.block_number, l.transaction_hash) else {
                    continue;
                };
                out.push(Log {
                    address: l.address(),
                    topics: l.topics().to_vec(),
                    data: l.data().data.clone(),
                    block,
                    tx,
                    index: 0,
                });
            }
            start = end.saturating_add(1);
            if end == u64::MAX {
                break;
            }
        }
        // Nodes number logs per block; the interface numbers them per contract and transaction.
        crate::chain::number_per_contract(&mut out);
        Ok(out)
    }
}
