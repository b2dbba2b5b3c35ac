//! The payee's own record of the Order Mode quotes it issued (spec `aep2.md#payment-request-acceptance`:
//! a mandate is judged against the quote as the payee issued it, never a copy the client echoes).

use aep2::{PaymentRequest, QuoteRef};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A quote as issued, with the request it was issued for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteEntry {
    /// The quote.
    pub quote: PaymentRequest,
    /// The hash of the request that was quoted (`aep2_x402::request_hash` of its method, URL
    /// and body; for A2A the task it belongs to): a quote pays for that request only.
    pub request: [u8; 32],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No mandate is being accepted against it.
    Open,
    /// A mandate (this id) is being accepted against it right now.
    Claimed([u8; 32]),
    /// A mandate (this id) was accepted but its settlement is still open: only it may pay.
    Held([u8; 32]),
    /// Paid by this mandate: kept until it expires so a replay is named as one.
    Paid([u8; 32]),
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<QuoteRef, (QuoteEntry, State)>,
    /// Insertion order, for eviction and expiry; may hold keys already removed.
    order: VecDeque<QuoteRef>,
    /// The latest quote issued for each request (may name a key already removed).
    latest: HashMap<[u8; 32], QuoteRef>,
}

/// A bounded, expiring map from a quote's [`QuoteRef`] (its hash, the `ref` the payer signs; for
/// `solana-mvp` its request id) to the quote as issued.
///
/// Bounded: past `capacity` the oldest quote is forgotten, which can only make a payment for it
/// fail with `request_mismatch` (the payer asks for a new quote), never accept anything twice.
/// Expiring: a quote is dropped `grace` seconds after its expiry, so that until then a late
/// mandate is told `quote_expired` rather than `request_mismatch`.
///
/// One order, one payment: [`QuoteBook::claim`] lets one mandate at a time be accepted against a
/// quote, [`QuoteBook::paid`] closes it, [`QuoteBook::release`] reopens it (or keeps it for the
/// one mandate whose settlement is open).
#[derive(Debug)]
pub struct QuoteBook {
    inner: Mutex<Inner>,
    capacity: usize,
    grace: u64,
}

impl QuoteBook {
    /// A book of at most `capacity` quotes, each kept until `grace` seconds after its expiry.
    pub fn new(capacity: usize, grace: u64) -> QuoteBook {
        QuoteBook {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            grace,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an issued quote (dropping expired ones, then the oldest past the capacity).
    pub fn insert(&self, entry: QuoteEntry, now: u64) {
        let key = entry.quote.mandate_ref();
        let mut g = self.lock();
        let grace = self.grace;
        while let Some(front) = g.order.front().cloned() {
            let stale = match g.map.get(&front) {
                None => true,
                Some((e, _)) => e.quote.expiry.saturating_add(grace) < now || g.map.len() >= self.capacity,
            };
            if !stale {
                break;
            }
            g.order.pop_front();
            if let Some((e, _)) = g.map.remove(&front)
                && g.latest.get(&e.request) == Some(&front)
            {
                g.latest.remove(&e.request);
            }
        }
        g.latest.insert(entry.request, key.clone());
        if g.map.insert(key.clone(), (entry, State::Open)).is_none() {
            g.order.push_back(key);
        }
        // Claimed and paid keys leave stale slots behind; compact before the queue outgrows the map.
        if g.order.len() > 2 * self.capacity {
            let Inner { map, order, latest } = &mut *g;
            order.retain(|k| map.contains_key(k));
            latest.retain(|_, k| map.contains_key(k));
        }
    }

    /// The quote for `key`, if this payee issued it and has not forgotten it.
    pub fn get(&self, key: &QuoteRef) -> Option<QuoteEntry> {
        self.lock().map.get(key).map(|(e, _)| e.clone())
    }

    /// The latest quote issued for the request `request` (see [`QuoteEntry::request`]), if it
    /// is still remembered.
    pub fn latest_for(&self, request: &[u8; 32]) -> Option<QuoteEntry> {
        let g = self.lock();
        let key = g.latest.get(request)?;
        g.map.get(key).map(|(e, _)| e.clone())
    }

    /// Claims the quote for the mandate `mandate_id`: `true` if it is open (or held for this very
    /// mandate), `false` if it is unknown, paid, or being paid by another mandate.
    pub fn claim(&self, key: &QuoteRef, mandate_id: [u8; 32]) -> bool {
        let mut g = self.lock();
        match g.map.get_mut(key) {
            Some((_, state)) if matches!(*state, State::Open) || *state == State::Held(mandate_id) => {
                *state = State::Claimed(mandate_id);
                true
            }
            _ => false,
        }
    }

    /// Ends a claim that did not pay: reopens the quote, or with `hold` keeps it for that mandate
    /// only (its settlement is still open).
    pub fn release(&self, key: &QuoteRef, hold: Option<[u8; 32]>) {
        if let Some((_, state)) = self.lock().map.get_mut(key) {
            *state = hold.map_or(State::Open, State::Held);
        }
    }

    /// Closes a paid quote: no further mandate is accepted against it. The entry stays (until
    /// it expires or is evicted) so that the paying mandate, presented again, is told
    /// `mandate_replayed` rather than that the quote is unknown.
    pub fn paid(&self, key: &QuoteRef) {
        if let Some((_, state)) = self.lock().map.get_mut(key)
            && let State::Claimed(id) = *state
        {
            *state = State::Paid(id);
        }
    }

    /// The mandate that paid the quote for `key`, if it is paid and still remembered.
    pub fn paid_by(&self, key: &QuoteRef) -> Option<[u8; 32]> {
        match self.lock().map.get(key) {
            Some((_, State::Paid(id))) => Some(*id),
            _ => None,
        }
    }

    /// How many quotes are remembered.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no quote is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
