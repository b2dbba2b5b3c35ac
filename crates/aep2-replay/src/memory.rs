//! The bounded in-memory store.

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
/// mandate again after a restart, use [`SqliteStore`](crate::SqliteStore).
#[derive(Debug)]
pub struct MemoryStore {
    capacity: usize,
    retention: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Mandate id → nonce key of every recorded mandate.
    ids: HashMap<[u8; 32], [u8; 32]>,
    /// The nonce keys of the recorded mandates (one per entry of `ids`).
    nonces: HashSet<[u8; 32]>,
    /// Deadline → the mandate ids with that deadline: the expiry index.
    expiry: BTreeMap<u64, Vec<[u8; 32]>>,
    /// The highest purge cutoff used: entries with a deadline below it may have been forgotten,
    /// so such keys are refused whatever clock a later call brings.
    purged_below: u64,
}

impl State {
    fn purge(&mut self, cutoff: u64) -> usize {
        self.purged_below = self.purged_below.max(cutoff);
        let mut removed = 0;
        while let Some(first) = self.expiry.first_entry() {
            if *first.key() >= cutoff {
                break;
            }
            for id in first.remove() {
                if let Some(nonce_key) = self.ids.remove(&id) {
                    self.nonces.remove(&nonce_key);
                    removed += 1;
                }
            }
        }
        removed
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

impl ReplayStore for MemoryStore {
    fn check_and_insert(&self, key: &ReplayKey, now: u64) -> Result<(), Error> {
        check_not_expired(key, now, self.retention)?;
        let mut state = self.state();
        if state.ids.contains_key(&key.mandate_id) {
            return Err(Error::new(Reason::MandateReplayed, "mandate id already recorded"));
        }
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
        } = &mut *state;
        let unavailable = |_| Error::new(Reason::ReplayStoreUnavailable, "memory store: allocation failed");
        ids.try_reserve(1).map_err(unavailable)?;
        nonces.try_reserve(1).map_err(unavailable)?;
        let slot = expiry.entry(key.deadline).or_default();
        slot.try_reserve(1).map_err(unavailable)?;
        slot.push(key.mandate_id);
        ids.insert(key.mandate_id, key.nonce_key);
        nonces.insert(key.nonce_key);
        Ok(())
    }

    fn purge(&self, now: u64) -> Result<usize, Error> {
        Ok(self.state().purge(cutoff(now, self.retention)))
    }

    fn len(&self) -> Result<usize, Error> {
        Ok(self.state().ids.len())
    }
}
