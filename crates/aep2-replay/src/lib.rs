//! # aep2-replay
//!
//! Replay protection for AEP2 payees and settlement processors (spec `aep2.md#replay`): a
//! [`ReplayStore`] records the two [`ReplayKey`]s of every accepted mandate (its mandate id and
//! its nonce key) and refuses any later mandate that repeats either, with a stable reason code.
//!
//! Three implementations:
//!
//! - [`SqliteStore`], the embedded default: a SQLite file (bundled SQLite, WAL journal,
//!   `synchronous=FULL`) that is durable and shared safely by any number of threads and
//!   processes on one host (a local filesystem). Two payee processes pointed at the same file
//!   never both accept the same mandate, whatever their clocks say.
//! - [`PostgresStore`]: the same in a Postgres database (`READ COMMITTED`,
//!   `synchronous_commit=on`), shared by a fleet of payee processes on any number of hosts. Its
//!   hot path takes no store-wide lock: unique keys and row locks decide, so payees wait for
//!   each other only over the same mandate.
//! - [`MemoryStore`]: a bounded in-process store for a single process, tests and caches.
//!
//! ```
//! use aep2::{ReplayKey, Reason};
//! use aep2_replay::{MemoryStore, ReplayStore};
//!
//! let store = MemoryStore::new(100_000);
//! let now = 1_800_000_000;
//! let key = ReplayKey { mandate_id: [1; 32], nonce_key: [2; 32], deadline: now + 600 };
//! store.check_and_insert(&key, now)?; // first presentation: recorded, serve the request
//! let again = store.check_and_insert(&key, now).unwrap_err();
//! assert_eq!(again.reason(), Reason::MandateReplayed);
//! assert_eq!(again.code(), "mandate_replayed");
//! # Ok::<(), aep2::Error>(())
//! ```
//!
//! ## Guarantees (every store)
//!
//! - **At most once.** [`ReplayStore::check_and_insert`] is one atomic step: of any number of
//!   concurrent calls with the same mandate id or the same nonce key, at most one returns `Ok`.
//!   The others fail with [`Reason::MandateReplayed`] (the mandate id is recorded; checked first)
//!   or [`Reason::NonceReused`] (another mandate with the same nonce key is recorded).
//! - **Fail closed.** When the store cannot record a key (I/O error, database busy past the
//!   timeout, capacity exhausted, a file that is not a replay database) the call fails with
//!   [`Reason::ReplayStoreUnavailable`]: a mandate that was not recorded must not be accepted.
//!   Only `Ok` means "recorded"; after an error the key may or may not be recorded (a failed
//!   commit whose data reached the disk), which can only make a later presentation fail, never
//!   let it be accepted twice.
//! - **Nothing partial.** A rejected call records nothing: the mandate id and nonce key of an
//!   accepted mandate are stored together or not at all, and a live entry is never evicted.
//! - **Never a panic** on any input: every failure is an [`aep2::Error`] with a registry code.
//!
//! ## Expiry and the clock
//!
//! An entry is kept until its mandate's deadline plus the store's *retention* (seconds, default
//! 0; set it to the clock skew the payee tolerates when it checks deadlines) has passed, i.e. it
//! may be purged at `now` when `deadline + retention < now`. By then the mandate can no longer be
//! accepted, so forgetting it cannot re-open a replay, **provided the payee's policy rejects
//! expired mandates before it consults the store** (`aep2::PayeePolicy` and
//! `aep2::Verifier::verify_header` with `Some(now)` do, with `expired`).
//!
//! Purging is judged by the clock of whoever purges, and processes sharing a file (or one process
//! whose clock steps back) may disagree about the time. So every purge also raises the store's
//! *purge horizon* (atomically with the deletions; durable in SQLite and Postgres), and a key whose deadline
//! lies below it is refused with [`Reason::Expired`]: the store can no longer vouch that such a
//! mandate was never accepted. A key that would be purgeable the moment it is recorded is
//! refused the same way. Clock disagreement can thus make a store refuse a still-valid mandate
//! (fail closed), never accept one twice.
//!
//! ## Which key
//!
//! Derive keys with [`ReplayKey::of`] from a verified mandate, after the payee's other policy
//! checks (payee, price, request binding) have passed, immediately before serving: a mandate
//! recorded and then refused for another reason would be burned.

pub mod db;
mod memory;
pub mod payment;
mod postgres;
mod sqlite;
pub mod sqlite_file;

pub use memory::MemoryStore;
pub use payment::{Begun, Claim, PaymentRecord, PaymentState, PaymentStore, Presentation};
pub use postgres::{PostgresStore, PostgresStoreOptions};
pub use sqlite::{SqliteOptions, SqliteStore};

pub use aep2::ReplayKey;
use aep2::{Error, Reason};

/// A replay-protection store: records accepted mandates and refuses repeats.
///
/// Implementations are shared across threads (`Send + Sync`); see the crate docs for the
/// guarantees every implementation gives.
pub trait ReplayStore: Send + Sync {
    /// Atomically checks that neither key of `key` is recorded and records both.
    ///
    /// `now` is the current time in unix seconds. Errors:
    /// [`Reason::MandateReplayed`] if the mandate id is recorded;
    /// else [`Reason::NonceReused`] if the nonce key is recorded;
    /// [`Reason::Expired`] if the key is already purgeable at `now` (the policy's expiry check
    /// should have rejected it);
    /// [`Reason::ReplayStoreUnavailable`] if the store could not record it.
    /// Only `Ok` means the mandate may be accepted.
    fn check_and_insert(&self, key: &ReplayKey, now: u64) -> Result<(), Error>;

    /// Removes the entries purgeable at `now` (`deadline + retention < now`) and returns how many.
    fn purge(&self, now: u64) -> Result<usize, Error>;

    /// The number of recorded mandates (expired ones not yet purged included).
    fn len(&self) -> Result<usize, Error>;

    /// Whether no mandate is recorded.
    fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }
}

impl<S: ReplayStore + ?Sized> ReplayStore for &S {
    fn check_and_insert(&self, key: &ReplayKey, now: u64) -> Result<(), Error> {
        (**self).check_and_insert(key, now)
    }
    fn purge(&self, now: u64) -> Result<usize, Error> {
        (**self).purge(now)
    }
    fn len(&self) -> Result<usize, Error> {
        (**self).len()
    }
}

impl<S: ReplayStore + ?Sized> ReplayStore for Box<S> {
    fn check_and_insert(&self, key: &ReplayKey, now: u64) -> Result<(), Error> {
        (**self).check_and_insert(key, now)
    }
    fn purge(&self, now: u64) -> Result<usize, Error> {
        (**self).purge(now)
    }
    fn len(&self) -> Result<usize, Error> {
        (**self).len()
    }
}

impl<S: ReplayStore + ?Sized> ReplayStore for std::sync::Arc<S> {
    fn check_and_insert(&self, key: &ReplayKey, now: u64) -> Result<(), Error> {
        (**self).check_and_insert(key, now)
    }
    fn purge(&self, now: u64) -> Result<usize, Error> {
        (**self).purge(now)
    }
    fn len(&self) -> Result<usize, Error> {
        (**self).len()
    }
}

/// The first deadline that is *not* purgeable at `now`: entries with `deadline < cutoff` may go.
///
/// `deadline + retention < now` ⇔ `deadline < now - retention` (no entry is purgeable while
/// `now <= retention`); written this way it cannot overflow.
pub(crate) fn cutoff(now: u64, retention: u64) -> u64 {
    now.saturating_sub(retention)
}

/// Refuses a key that would be purgeable as soon as it is recorded.
pub(crate) fn check_not_expired(key: &ReplayKey, now: u64, retention: u64) -> Result<(), Error> {
    if key.deadline < cutoff(now, retention) {
        return Err(Error::new(
            Reason::Expired,
            format!(
                "deadline {} plus retention {retention} s is before now ({now}): the replay store cannot hold it",
                key.deadline
            ),
        ));
    }
    Ok(())
}

/// Refuses a key whose deadline is below the store's purge high-water mark: an entry with that
/// deadline may already have been forgotten, so the store can no longer vouch that the mandate
/// was never accepted. This is what keeps [`ReplayStore::purge`] safe when instances sharing a
/// store disagree about the time, or a clock steps back.
pub(crate) fn check_not_forgotten(key: &ReplayKey, purged_below: u64) -> Result<(), Error> {
    if key.deadline < purged_below {
        return Err(Error::new(
            Reason::Expired,
            format!(
                "deadline {} is below the store's purge horizon {purged_below}: it may already have been forgotten",
                key.deadline
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_matches_the_purge_rule_without_overflow() {
        for (deadline, retention, now) in [
            (0u64, 0u64, 0u64),
            (10, 0, 10),
            (10, 0, 11),
            (10, 5, 15),
            (10, 5, 16),
            (u64::MAX, u64::MAX, u64::MAX),
            (u64::MAX - 1, 0, u64::MAX),
            (0, u64::MAX, u64::MAX),
            (3, 7, 2),
        ] {
            let purgeable = u128::from(deadline) + u128::from(retention) < u128::from(now);
            assert_eq!(
                deadline < cutoff(now, retention),
                purgeable,
                "{deadline} {retention} {now}"
            );
        }
    }
}

/// The README's Rust examples, compiled and run as doctests so the README cannot drift. They
/// live in this crate because it depends on every library the examples use.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
