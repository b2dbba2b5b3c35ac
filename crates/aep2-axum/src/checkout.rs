//! The stateful tail of accepting a payment (spec `aep2.md#x402-payee-processing`, steps 4 and
//! 5): the replay store, the settlement processor, the receipt check, and the mandates whose
//! settlement is still open because the SP could not be reached.

use aep2::json::to_compact;
use aep2::{Error, Reason, Receipt, ReceiptExpectations, ReplayKey, SpId, Stage, Verified};
use aep2_replay::ReplayStore;
use aep2_sp::{SpClient, SpClientError};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

/// How many mandates awaiting settlement a [`Checkout`] remembers by default.
pub const PENDING_CAPACITY: usize = 10_000;

/// The future of [`Settlement::enqueue`].
pub type SettlementFuture<'a> = Pin<Box<dyn Future<Output = Result<Receipt, SpClientError>> + Send + 'a>>;

/// Where a payee forwards accepted mandates: a settlement processor's `POST /enqueue`
/// (spec `aep2.md#sp-enqueue`). [`SpClient`] implements it; a merchant can plug another client.
///
/// The receipt returned is checked by [`Checkout`] (signature, SP, mandate digest, deadline rule),
/// so an implementation only has to carry it.
pub trait Settlement: Send + Sync {
    /// Enqueues the envelope (its compact JSON text, MVP or native form) and returns the receipt.
    /// [`SpClientError::Rejected`] means the SP refused the mandate; [`SpClientError::Unavailable`]
    /// and [`SpClientError::Protocol`] that no answer about it was obtained.
    fn enqueue<'a>(&'a self, envelope_json: &'a str) -> SettlementFuture<'a>;
}

impl Settlement for SpClient {
    fn enqueue<'a>(&'a self, envelope_json: &'a str) -> SettlementFuture<'a> {
        Box::pin(SpClient::enqueue(self, envelope_json))
    }
}

/// Replay, settlement and the receipt check, shared by every paid endpoint of a payee (all of them
/// must share one replay store, spec `aep2.md#replay` rule 5).
///
/// [`Checkout::accept`] runs after the stateless checks have passed. Its outcomes:
///
/// - `Ok(receipt)`: the mandate is recorded, the SP promised settlement, the receipt verifies
///   against the trusted SP and the mandate. Serve the request.
/// - `mandate_replayed`, `nonce_reused`, `expired`, `replay_store_unavailable` from the replay
///   store: nothing was recorded (or the mandate was accepted before).
/// - the SP's own code (`insufficient_funds`, …): the SP refused; the mandate stays recorded,
///   i.e. it is **burned** at this payee.
/// - `settlement_unavailable`: no valid receipt could be obtained. The mandate is remembered as
///   awaiting settlement (bounded), and presenting the same mandate again forwards it again
///   instead of failing as a replay; of concurrent presentations only one does.
pub struct Checkout {
    replay: Arc<dyn ReplayStore>,
    settlement: Arc<dyn Settlement>,
    sp: SpId,
    clock_skew: u64,
    pending: Mutex<HashMap<[u8; 32], u64>>,
    pending_capacity: usize,
}

impl fmt::Debug for Checkout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkout")
            .field("sp", &self.sp.to_string())
            .field("clock_skew", &self.clock_skew)
            .field("pending", &self.pending_len())
            .finish_non_exhaustive()
    }
}

impl Checkout {
    /// A checkout recording in `replay`, forwarding to `settlement`, and accepting only receipts
    /// signed by `sp`.
    pub fn new(replay: Arc<dyn ReplayStore>, settlement: Arc<dyn Settlement>, sp: SpId) -> Checkout {
        Checkout {
            replay,
            settlement,
            sp,
            clock_skew: 0,
            pending: Mutex::new(HashMap::new()),
            pending_capacity: PENDING_CAPACITY,
        }
    }

    /// The clock skew of the payee's policies: entries awaiting settlement are dropped after the
    /// mandate's deadline plus this many seconds.
    #[must_use]
    pub fn with_clock_skew(mut self, seconds: u64) -> Checkout {
        self.clock_skew = seconds;
        self
    }

    /// How many mandates awaiting settlement are remembered (default [`PENDING_CAPACITY`]).
    #[must_use]
    pub fn with_pending_capacity(mut self, capacity: usize) -> Checkout {
        self.pending_capacity = capacity;
        self
    }

    /// The settlement processor whose receipts are accepted.
    pub fn sp(&self) -> &SpId {
        &self.sp
    }

    /// The replay store.
    pub fn replay(&self) -> &Arc<dyn ReplayStore> {
        &self.replay
    }

    /// How many mandates are awaiting settlement.
    pub fn pending_len(&self) -> usize {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Records `v` (unless it is awaiting settlement from an earlier presentation), forwards it
    /// to the SP and verifies the receipt. See the type's documentation for the outcomes.
    pub async fn accept(&self, v: &Verified, now: u64) -> Result<Receipt, Error> {
        let id = v.digest.id;
        let retry = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
            .is_some();
        if !retry {
            self.record(v, now).await?;
        }
        let envelope = to_compact(&v.signed.to_json());
        let outcome = self.settlement.enqueue(&envelope).await;
        let receipt = match outcome {
            Ok(receipt) => receipt,
            // The SP could not store it, or refused the request rather than the mandate (this payee
            // decoded the envelope itself, so a decode-stage answer — timeout, size, content type,
            // route — is about the exchange): as unreachable, it may succeed when presented again.
            Err(SpClientError::Rejected { status, error })
                if status >= 500
                    || error.reason() == Reason::ReplayStoreUnavailable
                    || error.reason().stage() == Stage::Decode =>
            {
                return Err(self.unavailable(v, now, format!("the settlement processor could not take it: {error}")));
            }
            Err(SpClientError::Rejected { error, .. }) => return Err(error),
            Err(e) => return Err(self.unavailable(v, now, e.to_string())),
        };
        let expect = ReceiptExpectations {
            sp: Some(&self.sp),
            mandate: Some((v.mandate(), &v.digest)),
            domain: Some(&v.domain),
        };
        if let Err(e) = receipt.verify(&expect) {
            return Err(self.unavailable(v, now, format!("the settlement processor's receipt is invalid: {e}")));
        }
        Ok(receipt)
    }

    async fn record(&self, v: &Verified, now: u64) -> Result<(), Error> {
        let key = ReplayKey::of(v);
        let store = self.replay.clone();
        // SQLite commits fsync: keep them off the async worker threads.
        tokio::task::spawn_blocking(move || store.check_and_insert(&key, now))
            .await
            .map_err(|e| Error::new(Reason::ReplayStoreUnavailable, format!("replay worker failed: {e}")))?
    }

    fn unavailable(&self, v: &Verified, now: u64, detail: String) -> Error {
        let deadline = v.mandate().deadline();
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() >= self.pending_capacity {
            let skew = self.clock_skew;
            pending.retain(|_, d| d.saturating_add(skew) >= now);
        }
        let remembered = pending.len() < self.pending_capacity;
        if remembered {
            pending.insert(v.digest.id, deadline);
        }
        let retry = if remembered {
            "present the same mandate again later"
        } else {
            "too many mandates await settlement; this one is not remembered"
        };
        Error::new(Reason::SettlementUnavailable, format!("{detail}; {retry}"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::agent::Payer;
    use aep2::crypto::secp256k1::SecretKey;
    use aep2::{Domain, Eip712Domain, EvmAddress, U256, Verifier};
    use aep2_replay::MemoryStore;

    /// An SP that answers each enqueue with the next scripted refusal.
    struct Scripted(Mutex<Vec<SpClientError>>);

    impl Settlement for Scripted {
        fn enqueue<'a>(&'a self, _envelope_json: &'a str) -> SettlementFuture<'a> {
            let next = self.0.lock().unwrap().remove(0);
            Box::pin(async move { Err(next) })
        }
    }

    fn rejected(status: u16, reason: Reason) -> SpClientError {
        SpClientError::Rejected {
            status,
            error: Error::new(reason, "scripted"),
        }
    }

    #[tokio::test]
    async fn refusals_of_the_exchange_keep_the_mandate_refusals_of_the_mandate_burn_it() {
        let domain = Domain::Eip712(Eip712Domain {
            chain_id: 84532,
            verifying_contract: EvmAddress([0x91; 20]),
        });
        let payer = Payer::new(SecretKey::from_bytes(&[7; 32]).unwrap(), domain.clone(), 1);
        let signed = payer
            .sign(
                EvmAddress([1; 20]),
                EvmAddress([2; 20]),
                U256::from_u64(5),
                2_000_000_000,
                [0; 32],
            )
            .unwrap();
        let v = Verifier::new(domain).verify_header(&signed.encode(), None).unwrap();
        let script = vec![
            rejected(408, Reason::RequestTimeout),
            rejected(503, Reason::ReplayStoreUnavailable),
            rejected(502, Reason::JsonInvalid),
            rejected(402, Reason::InsufficientFunds),
        ];
        let checkout = Checkout::new(
            Arc::new(MemoryStore::new(100)),
            Arc::new(Scripted(Mutex::new(script))),
            SpId::Evm(EvmAddress([3; 20])),
        );
        // Each exchange fault: 503, and the same mandate may be presented again.
        for _ in 0..3 {
            let e = checkout.accept(&v, 1_000).await.unwrap_err();
            assert_eq!(e.reason(), Reason::SettlementUnavailable, "{e}");
        }
        // A refusal of the mandate itself is passed on, and the mandate is burned.
        let e = checkout.accept(&v, 1_000).await.unwrap_err();
        assert_eq!(e.reason(), Reason::InsufficientFunds);
        let e = checkout.accept(&v, 1_000).await.unwrap_err();
        assert_eq!(e.reason(), Reason::MandateReplayed);
    }
}
