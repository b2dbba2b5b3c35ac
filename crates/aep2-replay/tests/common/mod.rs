//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aep2::ReplayKey;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fixed "now" for tests (unix seconds).
pub const NOW: u64 = 1_800_000_000;

/// A fresh directory under the system temp dir, removed (with everything in it) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let name = format!(
            "aep2-replay-{label}-{}-{nanos}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("replay.sqlite")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Key number `n`: mandate id variant `variant` of nonce key `n` (variants share the nonce key,
/// as two different mandates with the same payer, token and nonce would).
pub fn key(n: u32, variant: u8, deadline: u64) -> ReplayKey {
    let mut mandate_id = [0xA1; 32];
    mandate_id[0] = variant;
    mandate_id[1..5].copy_from_slice(&n.to_be_bytes());
    let mut nonce_key = [0xB2; 32];
    nonce_key[1..5].copy_from_slice(&n.to_be_bytes());
    ReplayKey {
        mandate_id,
        nonce_key,
        deadline,
    }
}

/// The URL of a fresh Postgres schema on the test server ([`aep2_replay::db::testing::postgres`]),
/// or `None` when `AEP2_TEST_POSTGRES` is not set (CI fails instead).
pub fn postgres_url(tag: &str) -> Option<String> {
    let Some(location) = aep2_replay::db::testing::postgres(tag) else {
        eprintln!(
            "{tag}: Postgres not tested: {} is not set",
            aep2_replay::db::testing::ENV
        );
        return None;
    };
    match location {
        aep2_replay::db::Location::Postgres(url) => Some(url),
        other => panic!("testing::postgres gave {other:?}"),
    }
}

/// A [`aep2_replay::PostgresStore`] on `url` with `retention`.
pub fn open_postgres(url: &str, retention: u64) -> aep2_replay::PostgresStore {
    let options = aep2_replay::PostgresStoreOptions {
        retention,
        ..aep2_replay::PostgresStoreOptions::default()
    };
    aep2_replay::PostgresStore::open_with(url, &options).expect("open the Postgres store")
}

/// A store in a fresh Postgres schema, when the test server is configured.
pub fn postgres_store(tag: &str, retention: u64) -> Option<aep2_replay::PostgresStore> {
    postgres_url(tag).map(|url| open_postgres(&url, retention))
}
