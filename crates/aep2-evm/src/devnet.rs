//! Development chains for tests and benchmarks: every settlement scenario runs on the embedded
//! EVM and on anvil, through [`TestChain`] (funding accounts, moving time, placing code).
//!
//! anvil comes from the pinned npm package (`crates/aep2-evm/contracts`: `npm ci`). Without it
//! [`Anvil::start`] returns `None` with a message, unless `AEP2_REQUIRE_ANVIL=1` (CI) makes that a
//! panic. Test code: it panics where a test should fail.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use crate::{Chain, ChainError, Embedded, Rpc, TxKey};
use alloy::primitives::{Address, Bytes, U256};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The vectors' chain (Base Sepolia) and deployment.
pub const CHAIN_ID: u64 = 84532;
/// The `verifyingContract` of the vectors.
pub const VECTOR_WALLET: &str = "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912";
/// The time the chains start at (before the vectors' deadlines).
pub const GENESIS: u64 = 1_800_000_000;

/// anvil's first dev account (well known; holds 10 000 ETH on every anvil).
const ANVIL_KEY: [u8; 32] = [
    0xac, 0x09, 0x74, 0xbe, 0xc3, 0x9a, 0x17, 0xe3, 0x6b, 0xa4, 0xa6, 0xb4, 0xd2, 0x38, 0xff, 0x94, 0x4b, 0xac, 0xb4,
    0x78, 0xcb, 0xed, 0x5e, 0xfc, 0xae, 0x78, 0x4d, 0x7b, 0xf4, 0xf2, 0xff, 0x80,
];

/// The anvil binary of the npm package, if installed.
pub fn anvil_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("AEP2_ANVIL") {
        return Some(PathBuf::from(p));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts/node_modules/@foundry-rs");
    let p = root.join("anvil-linux-amd64/bin/anvil");
    p.exists().then_some(p)
}

/// A running anvil on a free loopback port, stopped on drop.
pub struct Anvil {
    child: Child,
    /// Its JSON-RPC URL.
    pub url: String,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Anvil {
    /// Starts anvil with the vectors' chain id at `GENESIS`; `None` when it is not installed
    /// and not required.
    pub fn start() -> Option<Anvil> {
        Anvil::start_at(Some(GENESIS))
    }

    /// Starts anvil with the vectors' chain id, its first block at `timestamp` (the wall clock
    /// when `None`).
    pub fn start_at(timestamp: Option<u64>) -> Option<Anvil> {
        let Some(bin) = anvil_binary() else {
            assert!(
                std::env::var("AEP2_REQUIRE_ANVIL").is_err(),
                "AEP2_REQUIRE_ANVIL is set but anvil is not installed (cd crates/aep2-evm/contracts && npm ci)"
            );
            eprintln!("anvil not installed (cd crates/aep2-evm/contracts && npm ci): skipping the anvil half");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut args = vec![
            "--host".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            port.to_string(),
            "--chain-id".to_owned(),
            CHAIN_ID.to_string(),
            "--silent".to_owned(),
        ];
        if let Some(t) = timestamp {
            args.extend(["--timestamp".to_owned(), t.to_string()]);
        }
        let child = Command::new(bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "anvil did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Anvil { child, url })
    }
}

/// What a scenario needs beyond the [`Chain`]: funding accounts, moving time, placing code.
pub trait TestChain: Chain {
    /// A key that can pay for transactions.
    fn deployer(&self) -> TxKey;
    /// Lets `who` pay for transactions.
    fn fund(&self, who: Address) -> impl std::future::Future<Output = ()> + Send;
    /// Moves the next block's time forward.
    fn advance(&self, seconds: u64) -> impl std::future::Future<Output = ()> + Send;
    /// Sets the next block's timestamp.
    fn set_time(&self, timestamp: u64) -> impl std::future::Future<Output = ()> + Send;
    /// Puts runtime code at an address.
    fn set_code(&self, who: Address, code: Bytes) -> impl std::future::Future<Output = ()> + Send;
    /// A name for messages.
    fn name(&self) -> &'static str;
}

impl TestChain for Embedded {
    fn deployer(&self) -> TxKey {
        TxKey::from_label("deployer")
    }
    async fn fund(&self, _who: Address) {}
    async fn advance(&self, seconds: u64) {
        Embedded::advance(self, seconds);
    }
    async fn set_time(&self, timestamp: u64) {
        Embedded::set_time(self, timestamp);
    }
    async fn set_code(&self, who: Address, code: Bytes) {
        Embedded::set_code(self, who, code);
    }
    fn name(&self) -> &'static str {
        "embedded"
    }
}

impl TestChain for Rpc {
    fn deployer(&self) -> TxKey {
        TxKey::from_bytes(&ANVIL_KEY).unwrap()
    }
    async fn fund(&self, who: Address) {
        let wei = U256::from(10u64).pow(U256::from(21u64));
        self.raw("anvil_setBalance", serde_json::json!([who, wei]))
            .await
            .unwrap();
    }
    async fn advance(&self, seconds: u64) {
        self.raw("evm_increaseTime", serde_json::json!([seconds]))
            .await
            .unwrap();
    }
    async fn set_time(&self, timestamp: u64) {
        self.raw("evm_setNextBlockTimestamp", serde_json::json!([timestamp]))
            .await
            .unwrap();
    }
    async fn set_code(&self, who: Address, code: Bytes) {
        self.raw("anvil_setCode", serde_json::json!([who, code])).await.unwrap();
    }
    fn name(&self) -> &'static str {
        "anvil"
    }
}

/// The embedded chain of the tests.
pub fn embedded() -> Embedded {
    Embedded::new(CHAIN_ID, GENESIS)
}

/// Connects to an anvil.
pub async fn rpc(anvil: &Anvil) -> Rpc {
    let started = Instant::now();
    loop {
        match Rpc::connect(&anvil.url).await {
            Ok(r) => return r,
            Err(ChainError::Unavailable(_)) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("anvil: {e}"),
        }
    }
}

/// A current-thread runtime for one test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs an async scenario `fn(&impl TestChain)` on the embedded EVM, then on anvil when it is
/// installed (see [`Anvil::start`]): `on_both_chains!(scenario)`.
#[macro_export]
macro_rules! on_both_chains {
    ($scenario:ident) => {{
        let rt = $crate::devnet::runtime();
        rt.block_on($scenario(&$crate::devnet::embedded()));
        if let Some(anvil) = $crate::devnet::Anvil::start() {
            rt.block_on(async {
                let chain = $crate::devnet::rpc(&anvil).await;
                $scenario(&chain).await
            });
        }
    }};
}
