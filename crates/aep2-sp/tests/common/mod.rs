//! Shared fixtures: a fixed EVM deployment, label-derived keys, signed envelopes, temp files, and
//! the ledger backends every ledger-level test runs on (SQLite always; Postgres when
//! `AEP2_TEST_POSTGRES` names a server, and always in CI).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2::crypto::secp256k1::SecretKey;
use aep2::json::to_compact;
use aep2::{
    AccountId, Domain, Ed25519Domain, Ed25519Mandate, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, Mandate,
    PayerKey, SpKey, U256, sign_mandate,
};
use aep2_replay::db::{Backend, Db, DbOptions, Kind, testing};
use aep2_replay::sqlite_file::FileKind;
use aep2_sp::{Config, Deposit, Ledger, LedgerOptions, Location};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

pub const NOW: u64 = 1_700_000_000;

pub fn evm_domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912").unwrap(),
    })
}

pub fn ed_domain() -> Domain {
    Domain::Ed25519(Ed25519Domain {
        network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".into(),
        wallet: aep2::Base58Key([9; 32]),
    })
}

pub fn secp(label: &str) -> SecretKey {
    SecretKey::from_bytes(&aep2::hash::sha256(label.as_bytes())).unwrap()
}

pub fn seed(label: &str) -> [u8; 32] {
    aep2::hash::sha256(label.as_bytes())
}

pub fn token() -> EvmAddress {
    EvmAddress::parse("0x036CbD53842c5426634e7929541eC2318f3dCF7e").unwrap()
}

pub fn payee() -> EvmAddress {
    EvmAddress([0x22; 20])
}

/// A signed MVP (or native) EVM envelope as JSON text, with its mandate id.
pub fn evm_envelope(payer: &str, nonce: u64, amount: u64, deadline: u64, form: EnvelopeForm) -> (String, String) {
    let key = secp(payer);
    let m = Mandate::Eip712(EvmMandate {
        owner: key.address(),
        token: token(),
        payee: payee(),
        amount: U256::from_u64(amount),
        nonce: U256::from_u64(nonce),
        deadline,
        reference: [7; 32],
    });
    let (sm, digest) = sign_mandate(&m, &evm_domain(), &PayerKey::Secp256k1(key), form).unwrap();
    (to_compact(&sm.to_json()), aep2::codec::hex_encode_0x(&digest.id))
}

/// A signed native ed25519 envelope.
pub fn ed_envelope(payer: &str, nonce: u64, amount: u64, deadline: u64) -> (String, String) {
    let s = seed(payer);
    let m = Mandate::Ed25519(Ed25519Mandate {
        payer: aep2::Base58Key(aep2::crypto::ed25519::public_key_from_seed(&s)),
        token: aep2::Base58Key([5; 32]),
        payee: aep2::Base58Key([6; 32]),
        amount,
        nonce,
        deadline,
        reference: [1; 32],
    });
    let (sm, digest) = sign_mandate(&m, &ed_domain(), &PayerKey::Ed25519(s), EnvelopeForm::Native).unwrap();
    (to_compact(&sm.to_json()), aep2::codec::hex_encode_0x(&digest.id))
}

pub fn evm_deposit(id: &str, payer: &str, amount: u64) -> Deposit {
    let account = aep2_sp::config::account_key(
        &evm_domain(),
        &AccountId::Evm(secp(payer).address()),
        &AccountId::Evm(token()),
    )
    .unwrap();
    Deposit {
        id: id.into(),
        account,
        amount: U256::from_u64(amount),
    }
}

pub fn ed_deposit(id: &str, payer: &str, amount: u64) -> Deposit {
    let pk = aep2::Base58Key(aep2::crypto::ed25519::public_key_from_seed(&seed(payer)));
    let account = aep2_sp::config::account_key(
        &ed_domain(),
        &AccountId::Base58(pk),
        &AccountId::Base58(aep2::Base58Key([5; 32])),
    )
    .unwrap();
    Deposit {
        id: id.into(),
        account,
        amount: U256::from_u64(amount),
    }
}

pub fn config(db: impl Into<Location>) -> Config {
    let mut c = Config::new(db, vec![evm_domain(), ed_domain()]);
    c.secp256k1_key = Some(SpKey::Secp256k1(secp("test-sp")));
    c.ed25519_key = Some(SpKey::Ed25519(seed("test-sol-sp")));
    c.settlement_window = 300;
    c.clock_skew = 5;
    c
}

/// A fresh path under the system temp dir (the directory is created; nothing is cleaned up on
/// failure so that a failing run can be inspected).
pub fn temp_db(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "aep2-sp-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    // A process id can come back (a container's pids are few): never reuse an earlier run's file.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ledger.db")
}

/// Sends raw `request` bytes on a new connection and reads until the server closes it (5 s limit).
pub async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .unwrap();
    out
}

/// The backends the ledger suites run on: SQLite, and Postgres when configured (see
/// [`testing::postgres`]: in CI a missing server fails the run instead of skipping it).
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    if testing::postgres("probe").is_some() {
        out.push(Backend::Postgres);
    }
    out
}

/// A fresh, empty ledger location on `backend`: a new SQLite file, or a new Postgres schema.
pub fn location(backend: Backend, name: &str) -> Location {
    match backend {
        Backend::Sqlite => Location::Sqlite(temp_db(name)),
        Backend::Postgres => testing::postgres(name).expect("a Postgres server is configured"),
    }
}

/// Runs `body` once on each backend of [`backends`], saying which on standard error (shown
/// with a failure).
pub fn on_each_backend(name: &str, mut body: impl FnMut(Backend)) {
    for backend in backends() {
        eprintln!("{name}: on {backend:?}");
        body(backend);
    }
}

/// Opens the ledger at `location` (a new handle: its own connection or pool, like another process).
pub fn open(location: &Location) -> Ledger {
    Ledger::open(location, &LedgerOptions::default()).expect("open the ledger")
}

/// The ledger's database opened as a plain store, on either backend: for tests that change
/// what the ledger stored behind its back (planted differences).
pub fn raw_ledger(location: &Location) -> Db {
    const RAW: Kind = Kind {
        sqlite: FileKind {
            name: "SP ledger (raw)",
            application_id: Ledger::APPLICATION_ID,
            schema_version: Ledger::SCHEMA_VERSION,
            schema: "",
            migrations: &[],
        },
        pg_namespace: "aep2_ledger",
        pg_schema: "",
        pg_migrations: &[],
    };
    Db::open(location, &DbOptions::default(), &RAW).expect("open the ledger's database")
}
