//! The bounded in-memory store.

use crate::payment::{self, Begun, Claim, PaymentRecord, PaymentState, PaymentStore, Presentation, UNFINISHED_GRACE};
use crate::{ReplayKey, ReplayStore, check_not_expired, check_not_forgotten, cutoff};
use aep2::{Error, Reason};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A bounded, in-process replay store.
///
/// Holds at most `capacity` mandates (about 200 bytes each, allocated as they arrive). When it
/// is full, [`check_and_insert`](ReplayStore::check_and_insert) first purges the entries that
/// are purgeable at `now`; if it is still full the call fails with
/// [`Reason::ReplayStoreUnavailable`]. Live entries are never evicted: evicting one would let its
/// mandate be accepted a second time. Choose the capacity from the payee's peak acceptance rate
/// times how long an entry lives: the policy's maximum horizon plus the retention.
///
/// Lookups and inserts are hash-map operations (O(1) on average, plus O(log d) for the expiry
/// index over d distinct deadlines); [`purge`](ReplayStore::purge) visits only the entries it
/// removes. One mutex guards the state, held for a few hash operations per call.
///
/// State is lost when the process exits, and two processes each with a `MemoryStore` do not
/// see each other's entries: for payees with more than one process, or that must not accept a
/// mandate again after a restart, use [`SqliteStore`](crate::SqliteStore) (processes on one host)
/// or [`PostgresStore`](crate::PostgresStore) (any number of hosts).
#[derive(Debug)]
pub struct MemoryStore {
    capacity: usize,
    retention: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Mandate id → the recorded mandate.
    ids: HashMap<[u8; 32], Entry>,
    /// The nonce keys of the recorded mandates (one per entry of `ids`).
    nonces: HashSet<[u8; 32]>,
    /// Deadline → the mandate ids with that deadline: the expiry index.
    expiry: BTreeMap<u64, Vec<[u8; 32]>>,
    /// The highest purge cutoff used: entries with a deadline below it may have been forgotten,
    /// so such keys are refused whatever clock a later call brings.
    purged_below: u64,
}

/// A recorded mandate.
#[derive(Debug)]
struct Entry {
    nonce_key: [u8; 32],
    deadline: u64,
    /// The payment state, with the current claim token; `None` for a plain replay record (final).
    payment: Option<(PaymentRecord, Option<[u8; 16]>)>,
}

impl Entry {
    fn unfinished(&self) -> bool {
        self.payment.as_ref().is_some_and(|(r, t)| payment::owed(r.state, *t))
    }
}

impl State {
    fn purge(&mut self, cutoff: u64) -> usize {
        self.purged_below = self.purged_below.max(cutoff);
        let mut removed = 0;
        let mut kept = Vec::new();
        while let Some(first) = self.expiry.first_entry() {
            if *first.key() >= cutoff {
                break;
            }
            for id in first.remove() {
                let Some(entry) = self.ids.get(&id) else { continue };
                let grace_end = entry.deadline.saturating_add(UNFINISHED_GRACE);
                if entry.unfinished() && grace_end >= cutoff {
                    // Owed a serve: kept through the grace period, indexed again at its end.
                    kept.push((grace_end, id));
                    continue;
                }
                if let Some(entry) = self.ids.remove(&id) {
                    self.nonces.remove(&entry.nonce_key);
                    removed += 1;
                }
            }
        }
        for (at, id) in kept {
            self.expiry.entry(at).or_default().push(id);
        }
        removed
    }

    /// Applies `f` to the payment record of `claim` if the claim is current.
    fn with_claim(&mut self, claim: &Claim, f: impl FnOnce(&mut PaymentRecord, &mut Option<[u8; 16]>) -> bool) -> bool {
        match self.ids.get_mut(&claim.mandate_id).and_then(|e| e.payment.as_mut()) {
            Some((record, token)) if *token == Some(claim.token) => f(record, token),
            _ => false,
        }
    }
}

impl MemoryStore {
    /// An empty store holding at most `capacity` mandates, with retention 0.
    pub fn new(capacity: usize) -> MemoryStore {
        MemoryStore {
            capacity,
            retention: 0,
            state: Mutex::new(State::default()),
        }
    }

    /// Sets the retention: entries are kept until `deadline + retention` has passed (use the
    /// clock skew the payee tolerates on deadlines).
    #[must_use]
    pub fn with_retention(mut self, retention_secs: u64) -> MemoryStore {
        self.retention = retention_secs;
        self
    }

    /// The maximum number of mandates held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The retention in seconds.
    pub fn retention(&self) -> u64 {
        self.retention
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing between lock and unlock can panic short of an allocation failure (which
        // aborts), and every update leaves the maps consistent before the next one starts, so
        // a poisoned lock still guards a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryStore {
    /// Records `key` as new (the replay check) with `payment` state; see `check_and_insert`.
    fn insert(
        &self,
        state: &mut State,
        key: &ReplayKey,
        now: u64,
        payment: Option<(PaymentRecord, Option<[u8; 16]>)>,
    ) -> Result<(), Error> {
        if state.nonces.contains(&key.nonce_key) {
            return Err(Error::new(
                Reason::NonceReused,
                "another mandate with this nonce key is already recorded",
            ));
        }
        check_not_forgotten(key, state.purged_below)?;
        if state.ids.len() >= self.capacity {
            state.purge(cutoff(now, self.retention));
            if state.ids.len() >= self.capacity {
                return Err(Error::new(
                    Reason::ReplayStoreUnavailable,
                    format!("memory store full: {} live mandates (capacity)", self.capacity),
                ));
            }
        }
        // Reserve everything first so that a failed allocation records nothing.
        let State {
            ids, nonces, expiry, ..
        } = state;
        let unavailable = |_| Error::new(Reason::ReplayStoreUnavailable, "memory store: allocation failed");
        ids.try_reserve(1).map_err(unavailable)?;
        nonces.try_reserve(1).map_err(unavailable)?;
        let slot = expiry.entry(key.deadline).or_default();
        slot.try_reserve(1).map_err(unavailable)?;
        slot.push(key.mandate_id);
        ids.insert(
            key.mandate_id,
            Entry {
                nonce_key: key.nonce_key,
                deadline: key.deadline,
                payment,
            },
        );
        nonces.insert(key.nonce_key);
        Ok(())
    }
}

impl ReplayStore for MemoryStore {
    fn check_and_insert(&self, key: &ReplayKey, now: u64) -> Result<(), Error> {
        check_not_expired(key, now, self.retention)?;
        let mut state = self.state();
        if state.ids.contains_key(&key.mandate_id) {
            return Err(Error::new(Reason::MandateReplayed, "mandate id already recorded"));
        }
        self.insert(&mut state, key, now, None)
    }

    fn purge(&self, now: u64) -> Result<usize, Error> {
        Ok(self.state().purge(cutoff(now, self.retention)))
    }

    fn len(&self) -> Result<usize, Error> {
        Ok(self.state().ids.len())
    }
}

impl PaymentStore for MemoryStore {
    fn begin(&self, key: &ReplayKey, p: &Presentation, now: u64) -> Result<Begun, Error> {
        let claim = Claim {
            mandate_id: key.mandate_id,
            token: p.token,
        };
        let mut state = self.state();
        if let Some(entry) = state.ids.get_mut(&key.mandate_id) {
            let Some((record, token)) = entry.payment.as_mut() else {
                return Err(payment::replayed(PaymentState::Served));
            };
            payment::may_take(record, *token, &p.request, now)?;
            let taken = record.clone();
            *token = Some(p.token);
            record.claimed_until = now.saturating_add(p.lease);
            return Ok(Begun::Resumed { claim, record: taken });
        }
        check_not_expired(key, now, self.retention)?;
        let record = PaymentRecord {
            state: PaymentState::Received,
            request: p.request,
            submission_id: p.submission_id,
            receipt: None,
            failure: None,
            first_seen: now,
            claimed_until: now.saturating_add(p.lease),
        };
        self.insert(&mut state, key, now, Some((record, Some(p.token))))?;
        Ok(Begun::Fresh(claim))
    }

    fn lookup(&self, mandate_id: &[u8; 32]) -> Result<Option<PaymentRecord>, Error> {
        let state = self.state();
        Ok(state.ids.get(mandate_id).map(|e| match &e.payment {
            Some((r, _)) => r.clone(),
            None => PaymentRecord {
                state: PaymentState::Served,
                request: [0; 32],
                submission_id: [0; 16],
                receipt: None,
                failure: None,
                first_seen: 0,
                claimed_until: 0,
            },
        }))
    }

    fn receipted(&self, claim: &Claim, receipt: &str, _now: u64) -> Result<bool, Error> {
        Ok(self.state().with_claim(claim, |r, _| {
            if r.state != PaymentState::Received {
                return r.state == PaymentState::Receipted;
            }
            r.state = PaymentState::Receipted;
            r.receipt = Some(receipt.to_owned());
            true
        }))
    }

    fn served(&self, claim: &Claim, receipt: &str, until: u64, _now: u64) -> Result<bool, Error> {
        Ok(self.state().with_claim(claim, |r, _| {
            if r.state == PaymentState::Failed {
                return false;
            }
            r.state = PaymentState::Served;
            r.receipt = Some(receipt.to_owned());
            r.claimed_until = until;
            true
        }))
    }

    fn delivered(&self, claim: &Claim, _now: u64) -> Result<bool, Error> {
        Ok(self.state().with_claim(claim, |r, token| {
            if r.state != PaymentState::Served {
                return false;
            }
            r.claimed_until = 0;
            *token = None;
            true
        }))
    }

    fn failed(&self, claim: &Claim, reason: &str, _now: u64) -> Result<bool, Error> {
        Ok(self.state().with_claim(claim, |r, token| {
            if r.state != PaymentState::Received {
                return false;
            }
            r.state = PaymentState::Failed;
            r.failure = Some(reason.to_owned());
            r.claimed_until = 0;
            *token = None;
            true
        }))
    }

    fn release(&self, claim: &Claim, _now: u64) -> Result<bool, Error> {
        Ok(self.state().with_claim(claim, |r, token| {
            // A serve taken over and given up undelivered is owed again.
            if r.state == PaymentState::Served {
                r.state = PaymentState::Receipted;
            }
            r.claimed_until = 0;
            *token = None;
            true
        }))
    }

    fn unfinished(&self) -> Result<usize, Error> {
        let owed = |e: &&Entry| e.payment.as_ref().is_some_and(|(r, _)| r.state.is_unfinished());
        Ok(self.state().ids.values().filter(owed).count())
    }
}
