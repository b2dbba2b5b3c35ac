//! A real settlement processor and the real payee service on loopback, and a funded payer.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2::crypto::secp256k1::SecretKey;
use aep2::{AccountId, Domain, Eip712Domain, EvmAddress, PayeePolicy, SpKey, U256};
use aep2_axum::agent::{HttpClient, Payer, Reply};
use aep2_axum::payee::{PayeeConfig, ReplayConfig};
use aep2_x402::PaymentRequirements;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

pub const PRICE: u64 = 1000;

pub fn domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912").unwrap(),
    })
}

pub fn usdc() -> EvmAddress {
    EvmAddress::parse("0x036CbD53842c5426634e7929541eC2318f3dCF7e").unwrap()
}

pub fn payee() -> EvmAddress {
    EvmAddress::parse("0xaAD167617dF02Dd30208722c88d9027a2fDD8812").unwrap()
}

/// The account of the unbound `/paid/mvp` route (distinct from [`payee`]).
pub fn mvp_payee() -> EvmAddress {
    EvmAddress::parse("0x2222222222222222222222222222222222222222").unwrap()
}

pub fn key(label: &str) -> SecretKey {
    SecretKey::from_bytes(&aep2::hash::sha256(label.as_bytes())).unwrap()
}

pub fn sp_key() -> SpKey {
    SpKey::Secp256k1(key("axum-test-sp"))
}

pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "aep2-axum-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn unix_now() -> u64 {
    aep2_sp::unix_now()
}

/// A running SP; dropping it stops it.
pub struct Sp {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Sp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A free loopback address for a service a test starts later (an SP that is down at first).
/// Its port is below Linux's ephemeral range (32768–60999), where a port is handed out neither
/// to a listener on port 0 nor to an outgoing connection, so a parallel test cannot take it
/// between now and then, as it could an ephemeral port found by binding port 0.
pub fn reserved_addr() -> SocketAddr {
    // Each call of this process starts at another port, so two tests never probe the same one.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = std::process::id()
        .wrapping_mul(131)
        .wrapping_add(NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst).wrapping_mul(997));
    (0..12_000u32)
        .map(|i| 20_000 + (start.wrapping_add(i) % 12_000) as u16)
        .find_map(|port| {
            std::net::TcpListener::bind(("127.0.0.1", port))
                .ok()
                .and_then(|l| l.local_addr().ok())
        })
        .expect("a free port in 20000..32000")
}

/// Starts the real SP on `listen` with a fresh ledger in `dir`, funding each payer with `amount`.
pub async fn start_sp(dir: &std::path::Path, listen: SocketAddr, funded: &[(&SecretKey, u64)]) -> Sp {
    let mut config = aep2_sp::Config::new(dir.join("ledger.db"), vec![domain()]);
    config.secp256k1_key = Some(sp_key());
    config.settlement_window = 300;
    config.listen = listen;
    let bound = aep2_sp::service::bind(&config).await.unwrap();
    for (i, (k, amount)) in funded.iter().enumerate() {
        let account =
            aep2_sp::config::account_key(&domain(), &AccountId::Evm(k.address()), &AccountId::Evm(usdc())).unwrap();
        let d = aep2_sp::Deposit {
            id: format!("deposit-{i}"),
            account,
            amount: U256::from_u64(*amount),
        };
        bound.state().processor.ledger().deposit(&d, unix_now()).unwrap();
    }
    let addr = bound.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(bound.serve(async {
        let _ = stopped.await;
    }));
    Sp { addr, stop: Some(stop) }
}

/// The payee service in front of an SP, and a funded payer.
pub struct Env {
    pub sp: Option<Sp>,
    pub base: String,
    pub payer: Payer,
    pub http: HttpClient,
    pub dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub fn payee_config(sp_addr: SocketAddr, dir: &std::path::Path) -> PayeeConfig {
    let mut c = PayeeConfig::new(
        domain(),
        payee().into(),
        usdc().into(),
        U256::from_u64(PRICE),
        &format!("http://{sp_addr}"),
        sp_key().id(),
    );
    c.replay = ReplayConfig::Sqlite(dir.join("replay.db"));
    c.mvp_payee = Some(mvp_payee().into());
    c
}

pub async fn start_payee(config: &PayeeConfig) -> (String, oneshot::Sender<()>) {
    let bound = aep2_axum::payee::bind(config).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(bound.serve(async {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), stop)
}

/// An SP, a payee with default settings (body timeout shortened to 1 s), a payer funded with
/// 1 000 000.
pub async fn env(name: &str) -> Env {
    env_with(name, |_| {}).await
}

pub async fn env_with(name: &str, adjust: impl FnOnce(&mut PayeeConfig)) -> Env {
    let dir = temp_dir(name);
    let payer_key = key(&format!("payer-{name}"));
    let sp = start_sp(&dir, "127.0.0.1:0".parse().unwrap(), &[(&payer_key, 1_000_000)]).await;
    let mut config = payee_config(sp.addr, &dir);
    config.http.body_timeout = Duration::from_secs(1);
    adjust(&mut config);
    let (base, stop) = start_payee(&config).await;
    Env {
        sp: Some(sp),
        base,
        payer: Payer::new(payer_key, domain(), 1),
        http: HttpClient::new(),
        dir,
        stop: Some(stop),
    }
}

/// The payee's Intent Mode terms as the payer knows them.
pub fn terms() -> PaymentRequirements {
    let policy = PayeePolicy::new(payee().into(), usdc().into(), U256::from_u64(PRICE)).with_settlement_window(300);
    PaymentRequirements::for_policy(&policy, &domain(), 60)
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.http.send("GET", &self.url(path), headers, b"").await.unwrap()
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.http.send("POST", &self.url(path), headers, body).await.unwrap()
    }

    /// A `PAYMENT-SIGNATURE` for `GET path`, bound to that request, at the price.
    pub fn intent_header(&self, path: &str) -> (String, aep2::SignedMandate) {
        let hash = aep2_x402::request_hash("GET", &self.url(path), b"").unwrap();
        let signed = self.payer.sign_for(&terms(), hash, unix_now() + 600).unwrap();
        (aep2_x402::payment_signature(&terms(), &signed.to_json()), signed)
    }
}
