//! What the process tests share: the binary, the deployment, keys, the clock and scratch folders.

use aep2::crypto::secp256k1::SecretKey;
use std::path::PathBuf;

/// The `aep2` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_aep2");
/// The debit-wallet deployment the tests sign for (chain 84532).
pub const CONTRACT: &str = "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912";
/// The token of every price and deposit.
pub const TOKEN: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

/// The secp256k1 key derived from `label`.
pub fn key(label: &str) -> SecretKey {
    SecretKey::from_bytes(&aep2::hash::sha256(label.as_bytes())).unwrap()
}

/// Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh, empty scratch folder named after the test binary's `prefix`, this process and `name`.
pub fn temp_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aep2-{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
