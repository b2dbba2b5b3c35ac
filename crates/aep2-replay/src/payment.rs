//! The payee's durable payment state (spec `aep2.md#payee-payment-state`): what happened to each
//! mandate after the replay check took it, so that a charge is matched by exactly one served
//! request across instances sharing the store, restarts and settlement-processor stalls.
//!
//! ```text
//!   begin ─▶ received ─────────── serve (with the receipt) ──────────▶ served
//!               │  └──receipt, route failed──▶ receipted ──serve──▶ served
//!               └──SP refused──▶ failed
//! ```
//!
//! `received` and `receipted` are *unfinished*: the payer may be charged (the SP may hold the
//! mandate) but has not been served. Presented again with the request it was taken for, an
//! unfinished mandate is taken over ([`Begun::Resumed`]) and served once. `served` is recorded
//! before the response is delivered and keeps the claim until the delivery is over
//! ([`PaymentStore::delivered`]): a served mandate whose claim ran out undelivered (the instance
//! died while delivering) is taken over too. `failed`, and `served` once delivered, are final: a
//! further presentation is `mandate_replayed`. Every transition after `begin`
//! names the [`Claim`] that took the record, and only the current holder's transitions apply, so of
//! any number of presentations (threads, processes, instances after a crash) exactly one can mark
//! the mandate served.

use crate::{ReplayKey, ReplayStore};
use aep2::{Error, Reason};

/// Where a taken mandate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentState {
    /// Recorded, with a submission id, before it was forwarded to the SP: the SP may or may not
    /// hold it.
    Received,
    /// The SP's verified receipt is stored and serving is still owed (the route failed after the
    /// receipt arrived): the next presentation serves without forwarding.
    Receipted,
    /// Served (final).
    Served,
    /// The SP refused it (final; the mandate is burned at this payee).
    Failed,
}

impl PaymentState {
    /// Stable name: `received`, `receipted`, `served`, `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentState::Received => "received",
            PaymentState::Receipted => "receipted",
            PaymentState::Served => "served",
            PaymentState::Failed => "failed",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<PaymentState> {
        [
            PaymentState::Received,
            PaymentState::Receipted,
            PaymentState::Served,
            PaymentState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Whether the payer may be charged and is still owed the service.
    pub const fn is_unfinished(self) -> bool {
        matches!(self, PaymentState::Received | PaymentState::Receipted)
    }
}

/// A mandate's payment record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRecord {
    /// The state.
    pub state: PaymentState,
    /// The hash of the request (HTTP request, MCP tool call, A2A message or task) the mandate was
    /// taken for: a later presentation resumes it only with the same request.
    pub request: [u8; 32],
    /// The submission id sent with every forwarding of this mandate to the SP.
    pub submission_id: [u8; 16],
    /// The SP's receipt (compact JSON) once `receipted`.
    pub receipt: Option<String>,
    /// The SP's reason code once `failed`.
    pub failure: Option<String>,
    /// When the mandate was first taken (unix seconds).
    pub first_seen: u64,
    /// Until when (unix seconds) the current claim holds; 0 when released.
    pub claimed_until: u64,
}

/// The right to move one record forward: the mandate id and a random token chosen by the
/// presentation that took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Claim {
    /// The mandate id.
    pub mandate_id: [u8; 32],
    /// The presentation's token.
    pub token: [u8; 16],
}

/// What a presentation brings to [`PaymentStore::begin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presentation {
    /// The hash of the request the mandate is presented with.
    pub request: [u8; 32],
    /// The submission id to record if the mandate is new (random, chosen by the caller).
    pub submission_id: [u8; 16],
    /// The claim token of this presentation (random, chosen by the caller).
    pub token: [u8; 16],
    /// How long (seconds) the claim holds before another presentation may take the record over.
    pub lease: u64,
}

/// The outcome of [`PaymentStore::begin`] that lets the presentation go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Begun {
    /// The mandate was new: recorded as `received` with the presentation's submission id.
    Fresh(Claim),
    /// An unfinished record was taken over: forward it with its stored submission id (or, if
    /// the receipt is stored, serve without forwarding).
    Resumed {
        /// The claim now held.
        claim: Claim,
        /// The record as it was when taken.
        record: PaymentRecord,
    },
}

impl Begun {
    /// The claim held.
    pub fn claim(&self) -> &Claim {
        match self {
            Begun::Fresh(c) | Begun::Resumed { claim: c, .. } => c,
        }
    }
}

/// A [`ReplayStore`] that also keeps each taken mandate's payment state.
///
/// Records made by [`ReplayStore::check_and_insert`] are final (`served`): a plain replay check
/// has no serving to resume. Guarantees, for every implementation:
///
/// - [`begin`](PaymentStore::begin) is one atomic step, like `check_and_insert`: of concurrent
///   presentations of one mandate at most one gets a claim.
/// - A transition applies only while the caller's claim is the record's current one; otherwise it
///   changes nothing and reports so (`Ok(false)`), so a presentation whose claim was taken over
///   after its lease ran out can never mark a second serve.
/// - Unfinished records are kept until their deadline plus the retention plus
///   [`UNFINISHED_GRACE`], final ones until their deadline plus the retention.
pub trait PaymentStore: ReplayStore {
    /// Takes the mandate for this presentation at `now`:
    ///
    /// - new: records both replay keys, state `received`, the request and the submission id →
    ///   [`Begun::Fresh`];
    /// - unfinished, with no live claim, taken for the same request → [`Begun::Resumed`];
    /// - unfinished with a live claim: `payment_in_progress` (the detail says for how long);
    /// - unfinished, taken for another request: `request_mismatch` (nothing changes);
    /// - `served` with a claim that ran out (undelivered), for the same request → [`Begun::Resumed`];
    /// - final, or `served` and being delivered: `mandate_replayed`; another mandate with the
    ///   nonce key: `nonce_reused`;
    /// - `expired` and `replay_store_unavailable` as for [`ReplayStore::check_and_insert`].
    fn begin(&self, key: &ReplayKey, p: &Presentation, now: u64) -> Result<Begun, Error>;

    /// The record of `mandate_id`, if any.
    fn lookup(&self, mandate_id: &[u8; 32]) -> Result<Option<PaymentRecord>, Error>;

    /// `received` → `receipted` with the SP's receipt (compact JSON). `Ok(false)`: the claim is
    /// no longer current, nothing changed.
    fn receipted(&self, claim: &Claim, receipt: &str, now: u64) -> Result<bool, Error>;

    /// `received`, `receipted` (or `served`, taken over undelivered) → `served`, storing `receipt`
    /// (the verified receipt the serve was made for) in the same step, and holding the claim until
    /// `until` for the delivery. `Ok(false)`: the claim is no longer current (or the record is
    /// failed), nothing changed: the caller must not deliver the service.
    fn served(&self, claim: &Claim, receipt: &str, until: u64, now: u64) -> Result<bool, Error>;

    /// The delivery of a `served` mandate is over: the claim is given up and the record is final.
    /// `Ok(false)`: the claim is no longer current.
    fn delivered(&self, claim: &Claim, now: u64) -> Result<bool, Error>;

    /// `received` → `failed` with the SP's reason code. `Ok(false)`: the claim is no longer current.
    fn failed(&self, claim: &Claim, reason: &str, now: u64) -> Result<bool, Error>;

    /// Gives up the claim, so that the next presentation may take the record at once. The state
    /// stays, but for a `served` record (taken over after a delivery that never ended): given up
    /// undelivered, it is owed again and goes back to `receipted`. `Ok(false)`: the claim was no
    /// longer current.
    fn release(&self, claim: &Claim, now: u64) -> Result<bool, Error>;

    /// How many records are unfinished (`received`, `receipted`).
    fn unfinished(&self) -> Result<usize, Error>;
}

/// What a presentation of an existing record may do (the rule of [`PaymentStore::begin`] for a
/// record that exists), shared by every implementation.
pub(crate) fn may_take(
    record: &PaymentRecord,
    holder: Option<[u8; 16]>,
    request: &[u8; 32],
    now: u64,
) -> Result<(), Error> {
    let live = holder.is_some() && record.claimed_until > now;
    match record.state {
        PaymentState::Failed => Err(replayed(record.state)),
        // Delivered, or being delivered: the route ran and its answer went (or is going) out.
        PaymentState::Served if holder.is_none() || live => Err(replayed(record.state)),
        // Served, but the delivering presentation's claim ran out: it died before the delivery
        // was over, so the payer may not have the answer.
        PaymentState::Served if record.request != *request => Err(replayed(record.state)),
        _ if record.request != *request => Err(other_request()),
        _ if live => Err(in_progress(record.claimed_until, now)),
        _ => Ok(()),
    }
}

/// Whether a record is owed a serve or a delivery (kept through [`UNFINISHED_GRACE`]).
pub(crate) fn owed(state: PaymentState, holder: Option<[u8; 16]>) -> bool {
    state.is_unfinished() || (state == PaymentState::Served && holder.is_some())
}

/// Seconds an unfinished record is kept beyond a final one (one day): a payer that was charged
/// and not served keeps the right to be served after the mandate's deadline, for that long.
pub const UNFINISHED_GRACE: u64 = 86_400;

/// The `payment_in_progress` error for a claim live until `claimed_until`.
pub(crate) fn in_progress(claimed_until: u64, now: u64) -> Error {
    Error::new(
        Reason::PaymentInProgress,
        format!(
            "another presentation of this mandate is being processed; present it again in {} s",
            claimed_until.saturating_sub(now).max(1)
        ),
    )
}

/// The `request_mismatch` error of a resumption with another request.
pub(crate) fn other_request() -> Error {
    Error::new(
        Reason::RequestMismatch,
        "this mandate was taken for another request; present it with that request",
    )
}

/// The `mandate_replayed` error of a final record.
pub(crate) fn replayed(state: PaymentState) -> Error {
    let what = match state {
        PaymentState::Failed => "refused by the settlement processor",
        _ => "served",
    };
    Error::new(Reason::MandateReplayed, format!("mandate id already recorded ({what})"))
}

impl<S: PaymentStore + ?Sized> PaymentStore for std::sync::Arc<S> {
    fn begin(&self, key: &ReplayKey, p: &Presentation, now: u64) -> Result<Begun, Error> {
        (**self).begin(key, p, now)
    }
    fn lookup(&self, mandate_id: &[u8; 32]) -> Result<Option<PaymentRecord>, Error> {
        (**self).lookup(mandate_id)
    }
    fn receipted(&self, claim: &Claim, receipt: &str, now: u64) -> Result<bool, Error> {
        (**self).receipted(claim, receipt, now)
    }
    fn served(&self, claim: &Claim, receipt: &str, until: u64, now: u64) -> Result<bool, Error> {
        (**self).served(claim, receipt, until, now)
    }
    fn delivered(&self, claim: &Claim, now: u64) -> Result<bool, Error> {
        (**self).delivered(claim, now)
    }
    fn failed(&self, claim: &Claim, reason: &str, now: u64) -> Result<bool, Error> {
        (**self).failed(claim, reason, now)
    }
    fn release(&self, claim: &Claim, now: u64) -> Result<bool, Error> {
        (**self).release(claim, now)
    }
    fn unfinished(&self) -> Result<usize, Error> {
        (**self).unfinished()
    }
}
