//! The stateful tail of accepting a payment (spec `aep2.md#x402-payee-processing`, steps 4 to 6,
//! and `aep2.md#payee-payment-state`): the durable payment state, the settlement processor, the
//! receipt check, and recording the serve.

use aep2::json::to_compact;
use aep2::{Error, Reason, Receipt, ReceiptExpectations, ReplayKey, SpId, Stage, Verified};
use aep2_replay::{Begun, Claim, PaymentRecord, PaymentState, PaymentStore, Presentation};
use aep2_sp::{RequestDescriptor, SpClient, SpClientError};
use axum::body::Body;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// How long a presentation holds a mandate by default before another may take it over (s): the
/// SP exchange (5 s timeout) plus the time to serve.
pub const DEFAULT_CLAIM_LEASE: u64 = 15;

/// A served response body that reports the end of its delivery.
struct Delivery {
    inner: Body,
    ended: bool,
    release: Option<(Arc<Checkout>, Claim)>,
}

impl hyper::body::Body for Delivery {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = polled {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        // The server drops a body once it has taken all of it (it may not poll past the last
        // frame of a body of known length): handed over in full, or not.
        let complete = self.ended || hyper::body::Body::is_end_stream(&self.inner);
        if complete && let Some((checkout, claim)) = self.release.take() {
            checkout.on_delivered(claim);
        }
    }
}

/// The future of [`Settlement::enqueue`].
pub type SettlementFuture<'a> = Pin<Box<dyn Future<Output = Result<Receipt, SpClientError>> + Send + 'a>>;

/// Where a payee forwards accepted mandates: a settlement processor's `POST /enqueue`
/// (spec `aep2.md#sp-enqueue`). [`SpClient`] implements it; a merchant can plug another client.
///
/// The receipt returned is checked by [`Checkout`] (signature, SP, mandate digest, deadline rule),
/// so an implementation only has to carry it.
pub trait Settlement: Send + Sync {
    /// Enqueues the envelope (its compact JSON text, MVP or native form) as the submission
    /// `submission_id` and returns the receipt. [`SpClientError::Rejected`] means the SP refused
    /// the mandate (`mandate_replayed` when it holds it for another submission);
    /// [`SpClientError::Unavailable`] and [`SpClientError::Protocol`] that no answer about it was
    /// obtained.
    /// `request` describes what the mandate pays for, for the SP's audit trail.
    fn enqueue<'a>(
        &'a self,
        envelope_json: &'a str,
        submission_id: &'a [u8; 16],
        request: &'a RequestDescriptor,
    ) -> SettlementFuture<'a>;
}

impl Settlement for SpClient {
    fn enqueue<'a>(
        &'a self,
        envelope_json: &'a str,
        submission_id: &'a [u8; 16],
        request: &'a RequestDescriptor,
    ) -> SettlementFuture<'a> {
        Box::pin(async move {
            self.enqueue_described(envelope_json, Some(submission_id), Some(request))
                .await
                .map(|r| r.receipt)
        })
    }
}

/// A mandate taken for one request, with its verified receipt: serve the request, then
/// [`Checkout::served`] (or [`Checkout::unserved`] if serving failed).
#[derive(Clone, Debug)]
pub struct Taken {
    /// The SP's receipt, verified against the trusted SP and the mandate.
    pub receipt: Receipt,
    /// Whether an earlier presentation had taken the mandate (and left it unserved).
    pub resumed: bool,
    claim: Claim,
    /// The receipt as stored (compact JSON).
    receipt_text: String,
}

/// The durable payment state, settlement and the receipt check, shared by every paid endpoint of
/// a payee (all of them, and every instance of the payee, must share one store: spec
/// `aep2.md#replay` rule 5).
///
/// [`Checkout::take`] runs after the stateless checks. Its outcomes:
///
/// - `Ok(taken)`: the mandate is recorded, the SP promised settlement and the receipt verifies.
///   Serve the request, then call [`Checkout::served`]; deliver the response only if it says so.
/// - `mandate_replayed` (served, or refused by the SP, before), `nonce_reused`, `expired`,
///   `request_mismatch` (taken for another request), `payment_in_progress` (another presentation
///   holds it now), `replay_store_unavailable`: nothing changed.
/// - the SP's own code (`insufficient_funds`, `mandate_replayed` for a mandate another payee
///   instance submitted, …): the SP refused; the mandate is recorded as failed, i.e. **burned**.
/// - `settlement_unavailable`: no valid receipt could be obtained. The mandate stays recorded and
///   unfinished, so presenting the same mandate again — at any instance sharing the store, after
///   any restart — forwards it again with the same submission id.
pub struct Checkout {
    store: Arc<dyn PaymentStore>,
    settlement: Arc<dyn Settlement>,
    sp: SpId,
    lease: u64,
    /// Delivery marks not yet recorded, and their completion signal (for [`Checkout::drain`]).
    delivering: AtomicUsize,
    delivered: Notify,
}

impl fmt::Debug for Checkout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkout")
            .field("sp", &self.sp.to_string())
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// Runs a store call off the async worker threads (SQLite commits fsync).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(Reason::ReplayStoreUnavailable, format!("store worker failed: {e}")))?
}

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| Error::new(Reason::ReplayStoreUnavailable, format!("no randomness: {e}")))?;
    Ok(out)
}

impl Checkout {
    /// A checkout recording in `store`, forwarding to `settlement`, and accepting only receipts
    /// signed by `sp`.
    pub fn new(store: Arc<dyn PaymentStore>, settlement: Arc<dyn Settlement>, sp: SpId) -> Checkout {
        Checkout {
            store,
            settlement,
            sp,
            lease: DEFAULT_CLAIM_LEASE,
            delivering: AtomicUsize::new(0),
            delivered: Notify::new(),
        }
    }

    /// How long (s) a presentation holds a mandate before another may take it over (default
    /// [`DEFAULT_CLAIM_LEASE`]): after a crash, a retry is served once this has passed.
    #[must_use]
    pub fn with_claim_lease(mut self, seconds: u64) -> Checkout {
        self.lease = seconds.max(1);
        self
    }

    /// The claim lease in seconds.
    pub fn claim_lease(&self) -> u64 {
        self.lease
    }

    /// The settlement processor whose receipts are accepted.
    pub fn sp(&self) -> &SpId {
        &self.sp
    }

    /// The payment store.
    pub fn store(&self) -> &Arc<dyn PaymentStore> {
        &self.store
    }

    /// How many taken mandates are not served yet (the payer may be charged for them).
    pub async fn unfinished(&self) -> Result<usize, Error> {
        let store = self.store.clone();
        blocking(move || store.unfinished()).await
    }

    /// Takes `v` for the request `request` (its hash, and its description for the SP), given the verdict of the stateless
    /// checks at `now`: on `Ok`, see the type's documentation; on a policy-stage refusal, the
    /// mandate is still taken if the store holds it for this same request still owed a serve
    /// (unfinished) or a delivery (served, claim not given up) — it was judged when first taken,
    /// and time (the deadline, a quote's expiry) or another instance's quote book must not deny
    /// the payer the serve it may already be charged for. Any other refusal is returned unchanged.
    pub async fn take(
        &self,
        v: &Verified,
        request: &RequestDescriptor,
        verdict: Result<(), Error>,
        now: u64,
    ) -> Result<Taken, Error> {
        if let Err(e) = verdict {
            if e.reason().stage() != Stage::Policy {
                return Err(e);
            }
            let store = self.store.clone();
            let id = v.digest.id;
            // A store that cannot answer must not turn a resumable mandate into a final refusal.
            let record = blocking(move || store.lookup(&id)).await?;
            // Owed a serve or a delivery (the store decides whether it can be taken now).
            let owed = |r: &PaymentRecord| {
                r.request == request.hash
                    && (r.state.is_unfinished() || (r.state == PaymentState::Served && r.claimed_until > 0))
            };
            if !record.is_some_and(|r| owed(&r)) {
                return Err(e);
            }
        }
        self.accept(v, request, now).await
    }

    async fn accept(&self, v: &Verified, described: &RequestDescriptor, now: u64) -> Result<Taken, Error> {
        let request = described.hash;
        let key = ReplayKey::of(v);
        let presentation = Presentation {
            request,
            submission_id: random()?,
            token: random()?,
            lease: self.lease,
        };
        let store = self.store.clone();
        let begun = blocking(move || store.begin(&key, &presentation, now)).await?;
        let claim = *begun.claim();
        let (submission_id, stored_receipt, resumed) = match begun {
            Begun::Fresh(_) => (presentation.submission_id, None, false),
            Begun::Resumed { record, .. } => (record.submission_id, record.receipt, true),
        };
        if let Some(text) = stored_receipt {
            // Receipted before: the promise is stored; check it again rather than trust the store.
            let receipt = aep2::json::parse(&text, &aep2::json::Limits::AEP2)
                .and_then(|r| Receipt::from_json(&r))
                .and_then(|r| self.check_receipt(&r, v).map(|()| r));
            return match receipt {
                Ok(receipt) => Ok(Taken {
                    receipt,
                    resumed,
                    claim,
                    receipt_text: text,
                }),
                Err(e) => Err(self
                    .release(&claim, now, format!("the stored receipt is invalid: {e}"))
                    .await),
            };
        }
        let envelope = to_compact(&v.signed.to_json());
        let receipt = match self.settlement.enqueue(&envelope, &submission_id, described).await {
            Ok(receipt) => receipt,
            // The SP could not store it, or refused the request rather than the mandate (this payee
            // decoded the envelope itself, so a decode-stage answer — timeout, size, content type,
            // route — is about the exchange): unknown fate, forwarded again when presented again.
            Err(SpClientError::Rejected { status, error })
                if status >= 500
                    || error.reason() == Reason::ReplayStoreUnavailable
                    || error.reason().stage() == Stage::Decode =>
            {
                let detail = format!("the settlement processor could not take it: {error}");
                return Err(self.release(&claim, now, detail).await);
            }
            Err(SpClientError::Rejected { error, .. }) => {
                // Refused for good: burned here (a retry must not be forwarded again as new).
                let store = self.store.clone();
                let code = error.code().to_owned();
                let recorded = blocking(move || store.failed(&claim, &code, now)).await;
                return Err(match recorded {
                    Ok(_) => error,
                    Err(e) => e,
                });
            }
            Err(e) => return Err(self.release(&claim, now, e.to_string()).await),
        };
        if let Err(e) = self.check_receipt(&receipt, v) {
            let detail = format!("the settlement processor's receipt is invalid: {e}");
            return Err(self.release(&claim, now, detail).await);
        }
        // Not recorded yet: it is stored with the serve (one commit fewer per request), and if the
        // payee crashes before that, a retry forwards again and gets the same receipt.
        Ok(Taken {
            receipt_text: to_compact(&receipt.to_json()),
            receipt,
            resumed,
            claim,
        })
    }

    /// Records that the request of `taken` was served. Only `Ok` lets the caller deliver the
    /// response: `mandate_replayed` means another presentation took the mandate over (this one's
    /// lease ran out), any other error that the serve could not be recorded — in both cases
    /// delivering could serve the charge twice, and the mandate stays with the store's current
    /// holder.
    ///
    /// The claim is held on (for another lease) until the response has been handed over: wrap the
    /// response body with [`Checkout::deliver`].
    pub async fn served(&self, taken: &Taken, now: u64) -> Result<(), Error> {
        let store = self.store.clone();
        let claim = taken.claim;
        let receipt = taken.receipt_text.clone();
        let until = now.saturating_add(self.lease);
        if blocking(move || store.served(&claim, &receipt, until, now)).await? {
            return Ok(());
        }
        Err(Error::new(
            Reason::MandateReplayed,
            "another presentation of this mandate took it over and serves it",
        ))
    }

    /// Wraps the body of a served response so that the serve becomes final
    /// ([`PaymentStore::delivered`]) once the whole body has been handed to the connection. A body
    /// dropped before its end (the client went away, the process is stopping) keeps the claim:
    /// after its lease the payer's next presentation is served again.
    pub fn deliver(self: &Arc<Self>, taken: &Taken, body: Body) -> Body {
        Body::new(Delivery {
            inner: body,
            ended: false,
            release: Some((self.clone(), taken.claim)),
        })
    }

    /// Marks the serve of `taken` final now, for a transport whose writes this checkout cannot
    /// see (stdio: the answer goes to a pipe as soon as the handler returns). Over HTTP use
    /// [`Checkout::deliver`], which waits until the body is handed over.
    pub fn delivered_now(self: &Arc<Self>, taken: &Taken) {
        self.clone().on_delivered(taken.claim);
    }

    /// Gives the mandate of `taken` back unserved (the route failed), with its receipt recorded,
    /// so that the payer's next presentation of the same mandate is served without forwarding
    /// and without waiting for the lease.
    pub async fn unserved(&self, taken: &Taken, now: u64) {
        let store = self.store.clone();
        let claim = taken.claim;
        let receipt = taken.receipt_text.clone();
        let _ = blocking(move || store.receipted(&claim, &receipt, now)).await;
        let _ = self.release(&taken.claim, now, String::new()).await;
    }

    fn on_delivered(self: Arc<Self>, claim: Claim) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.delivering.fetch_add(1, Ordering::SeqCst);
        runtime.spawn(async move {
            // The server drops a body just before writing its last bytes, in the same poll: let
            // that write go first, so that a crash in between finds the claim still held.
            tokio::task::yield_now().await;
            let store = self.store.clone();
            let now = aep2_sp::unix_now();
            let _ = blocking(move || store.delivered(&claim, now)).await;
            if self.delivering.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.delivered.notify_waiters();
            }
        });
    }

    /// Waits (at most `limit`) until every delivery mark in flight is recorded: call it after the
    /// server has stopped, so that a clean shutdown leaves no delivered serve re-servable.
    pub async fn drain(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.delivering.load(Ordering::SeqCst) > 0 {
            let notified = self.delivered.notified();
            if self.delivering.load(Ordering::SeqCst) == 0 || tokio::time::timeout_at(deadline, notified).await.is_err()
            {
                return;
            }
        }
    }

    fn check_receipt(&self, receipt: &Receipt, v: &Verified) -> Result<(), Error> {
        // Under a lane the receipt must state the mandate's leaf lane (spec `aep2.md#lane-settlement`).
        let leaf = v.leaf_lane();
        let expect = ReceiptExpectations {
            sp: Some(&self.sp),
            mandate: Some((v.mandate(), &v.digest)),
            domain: Some(&v.domain),
            lane: leaf.as_ref(),
        };
        receipt.verify(&expect)
    }

    /// Releases the claim and returns `settlement_unavailable` with `detail`.
    async fn release(&self, claim: &Claim, now: u64, detail: String) -> Error {
        let store = self.store.clone();
        let claim = *claim;
        let released = blocking(move || store.release(&claim, now)).await;
        let retry = match released {
            Ok(_) => "present the same mandate again".to_owned(),
            Err(e) => format!("present the same mandate again in {} s ({e})", self.lease),
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
    use std::sync::Mutex;

    /// An SP that answers each enqueue with the next scripted refusal.
    struct Scripted(Mutex<Vec<SpClientError>>);

    impl Settlement for Scripted {
        fn enqueue<'a>(
            &'a self,
            _envelope_json: &'a str,
            _submission_id: &'a [u8; 16],
            _request: &'a RequestDescriptor,
        ) -> SettlementFuture<'a> {
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
        let store = Arc::new(MemoryStore::new(100));
        let checkout = Checkout::new(
            store.clone(),
            Arc::new(Scripted(Mutex::new(script))),
            SpId::Evm(EvmAddress([3; 20])),
        );
        let described = |hash| {
            let paid = aep2_sp::PaidRequest::A2a { message_id: "m".into() };
            RequestDescriptor::new(paid, hash)
        };
        let request = &described([9; 32]);
        // Each exchange fault: 503, and the same mandate may be presented again at once.
        for _ in 0..3 {
            let e = checkout.take(&v, request, Ok(()), 1_000).await.unwrap_err();
            assert_eq!(e.reason(), Reason::SettlementUnavailable, "{e}");
            let r = store.lookup(&v.digest.id).unwrap().unwrap();
            assert_eq!(r.state, PaymentState::Received);
        }
        // With another request it is not resumed.
        let e = checkout.take(&v, &described([8; 32]), Ok(()), 1_000).await.unwrap_err();
        assert_eq!(e.reason(), Reason::RequestMismatch);
        // A refusal of the mandate itself is passed on, and the mandate is burned.
        let e = checkout.take(&v, request, Ok(()), 1_000).await.unwrap_err();
        assert_eq!(e.reason(), Reason::InsufficientFunds);
        assert_eq!(store.lookup(&v.digest.id).unwrap().unwrap().state, PaymentState::Failed);
        let e = checkout.take(&v, request, Ok(()), 1_000).await.unwrap_err();
        assert_eq!(e.reason(), Reason::MandateReplayed);
    }
}
