//! The payee's own record of the Order Mode quotes it issued (spec `aep2.md#payment-request-acceptance`:
//! a mandate is judged against the quote as the payee issued it, never a copy the client echoes).

use aep2::{Error, PaymentRequest, QuoteRef, Reason};
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

/// Forgets `key` (and its request's pointer to it); its slot in the insertion order goes stale.
fn forget(g: &mut Inner, key: &QuoteRef) {
    if let Some((e, _)) = g.map.remove(key)
        && g.latest.get(&e.request) == Some(key)
    {
        g.latest.remove(&e.request);
    }
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

    /// Records an issued quote: drops expired quotes, then, at capacity, the oldest *open* one.
    ///
    /// Quotes being paid, held for an open settlement or paid are never evicted for room (an
    /// unauthenticated flood of quote requests must not strand a payer whose settlement is
    /// open, nor turn a replay into `request_mismatch`); they leave when they expire. Only
    /// accepted mandates create them, so their number is bounded by what payers paid, and as a
    /// last resort by twice the capacity.
    pub fn insert(&self, entry: QuoteEntry, now: u64) {
        let key = entry.quote.mandate_ref();
        let mut g = self.lock();
        let grace = self.grace;
        let expired = |e: &QuoteEntry| e.quote.expiry.saturating_add(grace) < now;
        // Quotes are issued in expiry order for one lifetime, so expired ones gather at the
        // front; keys already forgotten are skipped there too.
        while let Some(front) = g.order.front().cloned() {
            match g.map.get(&front) {
                Some((e, _)) if !expired(e) => break,
                _ => {
                    g.order.pop_front();
                    forget(&mut g, &front);
                }
            }
        }
        if g.map.len() >= self.capacity {
            let victim = g
                .order
                .iter()
                .find(|k| matches!(g.map.get(*k), Some((_, State::Open))))
                .or_else(|| (g.map.len() >= 2 * self.capacity).then(|| g.order.front()).flatten())
                .cloned();
            if let Some(k) = victim {
                forget(&mut g, &k);
            }
        }
        g.latest.insert(entry.request, key.clone());
        if g.map.insert(key.clone(), (entry, State::Open)).is_none() {
            g.order.push_back(key);
        }
        // Forgotten keys leave stale slots in the queue; compact before it outgrows the map.
        if g.order.len() > 4 * self.capacity {
            let Inner { map, order, .. } = &mut *g;
            order.retain(|k| map.contains_key(k));
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

    /// Ends the claim of `mandate_id` by the outcome of taking it: paid on `Ok`; on a refusal that
    /// leaves the mandate owed (`settlement_unavailable`, `payment_in_progress`) held for it
    /// alone; otherwise reopened.
    pub fn conclude<T>(&self, key: &QuoteRef, mandate_id: [u8; 32], outcome: &Result<T, Error>) {
        match outcome {
            Ok(_) => self.paid(key),
            Err(e) => {
                let owed = matches!(e.reason(), Reason::SettlementUnavailable | Reason::PaymentInProgress);
                self.release(key, owed.then_some(mandate_id));
            }
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

    /// The mandate being accepted against the quote for `key` right now, if any.
    pub fn claimed_by(&self, key: &QuoteRef) -> Option<[u8; 32]> {
        match self.lock().map.get(key) {
            Some((_, State::Claimed(id))) => Some(*id),
            _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use aep2::{AccountId, Base58Key, Domain, SpId, U256};

    fn entry(id: u32, expiry: u64) -> QuoteEntry {
        QuoteEntry {
            quote: PaymentRequest {
                domain: Domain::SolanaMvp,
                request_id: format!("q-{id}"),
                payee: AccountId::Base58(Base58Key([1; 32])),
                asset: AccountId::Base58(Base58Key([2; 32])),
                amount: U256::from_u64(10),
                expiry,
                description: String::new(),
                settlement_processor: SpId::Ed25519(Base58Key([3; 32])),
                settlement_window: 60,
            },
            request: [id as u8; 32],
        }
    }

    #[test]
    fn a_flood_of_open_quotes_never_evicts_one_being_settled_or_paid() {
        let book = QuoteBook::new(4, 0);
        let now = 1000;
        let (held, paid) = (entry(1, now + 100), entry(2, now + 100));
        for e in [&held, &paid] {
            book.insert(e.clone(), now);
        }
        let (h, p) = (held.quote.mandate_ref(), paid.quote.mandate_ref());
        assert!(book.claim(&h, [7; 32]));
        book.release(&h, Some([7; 32])); // its settlement is open
        assert!(book.claim(&p, [8; 32]));
        book.paid(&p);
        for i in 10..1000 {
            book.insert(entry(i, now + 100), now);
        }
        assert!(book.len() <= 4, "open quotes make room for each other: {}", book.len());
        assert!(book.claim(&h, [7; 32]), "the held quote is still there for its mandate");
        assert_eq!(book.paid_by(&p), Some([8; 32]), "the paid quote still names its payer");
        // They leave when they expire.
        book.insert(entry(5000, now + 500), now + 101);
        assert_eq!(book.get(&h), None);
        assert_eq!(book.paid_by(&p), None);
    }
}
