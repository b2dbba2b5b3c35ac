//! The probes against the project's own settlement processor and payee (every check passes),
//! against a deliberately faulty payee (exactly its faults fail, by name), and against nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

#[path = "fixtures/faulty_payee.rs"]
mod faulty_payee;

use aep2::crypto::secp256k1::SecretKey;
use aep2::{AccountId, Domain, Eip712Domain, EvmAddress, PayerKey, SpKey, U256};
use aep2_axum::payee::{PayeeConfig, ReplayConfig};
use aep2_conformance::probe::{Binding, Deployment, EXIT_UNREACHABLE, PayeeProbe, SpProbe, probe_payee, probe_sp};
use aep2_conformance::report::{Report, Status};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const PRICE: u64 = 1000;

fn contract() -> EvmAddress {
    EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912").unwrap()
}

fn domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: contract(),
    })
}

fn usdc() -> EvmAddress {
    EvmAddress::parse("0x036CbD53842c5426634e7929541eC2318f3dCF7e").unwrap()
}

fn payee() -> EvmAddress {
    EvmAddress::parse("0xaAD167617dF02Dd30208722c88d9027a2fDD8812").unwrap()
}

fn key(label: &str) -> SecretKey {
    SecretKey::from_bytes(&aep2::hash::sha256(label.as_bytes())).unwrap()
}

fn sp_key() -> SpKey {
    SpKey::Secp256k1(key("probe-test-sp"))
}

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "aep2-probe-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The real SP on loopback with `payer` funded; it serves until the test's runtime ends.
async fn start_sp(name: &str, payer: &SecretKey, funds: u64) -> SocketAddr {
    let mut config = aep2_sp::Config::new(temp_dir(name).join("ledger.db"), vec![domain()]);
    config.secp256k1_key = Some(sp_key());
    config.settlement_window = 300;
    config.listen = "127.0.0.1:0".parse().unwrap();
    let bound = aep2_sp::service::bind(&config).await.unwrap();
    let account =
        aep2_sp::config::account_key(&domain(), &AccountId::Evm(payer.address()), &AccountId::Evm(usdc())).unwrap();
    let deposit = aep2_sp::Deposit {
        id: "probe-deposit".into(),
        account,
        amount: U256::from_u64(funds),
    };
    bound
        .state()
        .processor
        .ledger()
        .deposit(&deposit, aep2_sp::unix_now())
        .unwrap();
    let addr = bound.local_addr().unwrap();
    tokio::spawn(bound.serve(std::future::pending::<()>()));
    addr
}

/// The project's payee service in front of an SP at `sp`.
async fn start_payee(name: &str, sp: SocketAddr) -> SocketAddr {
    let mut c = PayeeConfig::new(
        domain(),
        payee().into(),
        usdc().into(),
        U256::from_u64(PRICE),
        &format!("http://{sp}"),
        sp_key().id(),
    );
    c.replay = ReplayConfig::Sqlite(temp_dir(name).join("replay.db"));
    let bound = aep2_axum::payee::bind(&c).await.unwrap();
    let addr = bound.local_addr().unwrap();
    tokio::spawn(bound.serve(std::future::pending::<()>()));
    addr
}

fn eip712() -> Deployment {
    Deployment::Eip712 {
        verifying_contract: contract(),
    }
}

fn ids_with(report: &Report, status: Status) -> BTreeSet<String> {
    report
        .cases
        .iter()
        .filter(|c| c.status == status)
        .map(|c| c.id.clone())
        .collect()
}

fn not_passed(report: &Report) -> String {
    report
        .cases
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| format!("{} {:?}: {}", c.id, c.status, c.message.as_deref().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every line of the report validates against the report-line schema and the report reads back.
fn check_report_format(report: &Report) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../spec/schemas/conformance/report-line.schema.json"
    );
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let text = report.to_jsonl();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
    }
    assert_eq!(&Report::from_jsonl(&text).unwrap(), report);
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

const PAYEE_CHECKS: [&str; 14] = [
    "no-payment-402",
    "valid-served",
    "receipt-verifies",
    "receipt-deadline-rule",
    "replay-refused",
    "under-payment",
    "wrong-payee",
    "wrong-asset",
    "wrong-chain",
    "expired",
    "bad-signature",
    "request-binding",
    "malformed-header",
    "oversized-header",
];

fn payee_ids(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| format!("probe/payee/{n}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_probe_passes_against_the_project_sp() {
    let payer = key("probe-sp-payer");
    let sp = start_sp("sp", &payer, 5000).await;
    let probe = SpProbe {
        url: format!("http://{sp}"),
        key: PayerKey::Secp256k1(payer),
        deployment: eip712(),
        network: "eip155:84532".into(),
        asset: usdc().into(),
        payee: payee().into(),
        amount: U256::from_u64(7),
        timeout: Duration::from_secs(10),
    };
    let report = blocking(move || probe_sp(&probe)).await.unwrap();
    let names: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        names,
        [
            "probe/sp/health",
            "probe/sp/enqueue-valid",
            "probe/sp/idempotent",
            "probe/sp/nonce-reuse",
            "probe/sp/insufficient-funds",
            "probe/sp/malformed-body",
            "probe/sp/oversized-body",
            "probe/sp/wrong-content-type",
            "probe/sp/bad-signature",
            "probe/sp/expired",
        ]
    );
    assert_eq!(report.footer.counts.passed, 10, "{}", not_passed(&report));
    assert_eq!(report.footer.exit_code, 0);
    assert!(report.cases.iter().all(|c| c.kind == "probe_sp"));
    // insufficient-funds asked for the published balance plus one: 5000 - 7 + 1.
    let funds = report
        .cases
        .iter()
        .find(|c| c.id == "probe/sp/insufficient-funds")
        .unwrap();
    assert!(
        funds.message.as_deref().unwrap().contains("available 4993 + 1"),
        "{funds:?}"
    );
    check_report_format(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payee_probe_passes_against_the_project_payee() {
    let payer = key("probe-payee-payer");
    let sp = start_sp("payee-sp", &payer, 1_000_000).await;
    let payee_addr = start_payee("payee", sp).await;
    let mut probe = PayeeProbe::new(
        &format!("http://{payee_addr}/paid/intent"),
        PayerKey::Secp256k1(payer.clone()),
        eip712(),
    );
    probe.sp = Some(sp_key().id());
    probe.binding = Binding::Required;
    let intent = blocking({
        let probe = probe.clone();
        move || probe_payee(&probe)
    })
    .await
    .unwrap();
    let names: Vec<String> = intent.cases.iter().map(|c| c.id.clone()).collect();
    let want: Vec<String> = PAYEE_CHECKS.iter().map(|n| format!("probe/payee/{n}")).collect();
    assert_eq!(names, want);
    assert_eq!(intent.footer.counts.passed, 14, "{}", not_passed(&intent));
    assert_eq!(intent.footer.exit_code, 0);
    check_report_format(&intent);

    // Order Mode: each payment pays a fresh quote; the quote binds the request. This probe is
    // given no deployment: it signs for the one the 402 announces in extra.domain.
    let mut order = probe.clone();
    order.url = format!("http://{payee_addr}/paid/order");
    order.binding = Binding::Auto;
    order.deployment = Deployment::Announced(aep2::Profile::Eip712);
    let order = blocking(move || probe_payee(&order)).await.unwrap();
    assert_eq!(order.footer.counts.passed, 14, "{}", not_passed(&order));

    // A probe configured for another deployment than the one announced finds no usable entry.
    let mut elsewhere = probe.clone();
    elsewhere.deployment = Deployment::Eip712 {
        verifying_contract: EvmAddress([0x22; 20]),
    };
    let elsewhere = blocking(move || probe_payee(&elsewhere)).await.unwrap();
    assert_eq!(
        ids_with(&elsewhere, Status::Failed),
        payee_ids(&["no-payment-402"]),
        "{}",
        not_passed(&elsewhere)
    );
    assert_eq!(elsewhere.footer.exit_code, 1);

    // The MVP route does not bind: auto mode skips that one check, with the reason.
    probe.url = format!("http://{payee_addr}/paid/mvp");
    probe.binding = Binding::Auto;
    let mvp = blocking(move || probe_payee(&probe)).await.unwrap();
    assert_eq!(
        ids_with(&mvp, Status::Skipped),
        payee_ids(&["request-binding"]),
        "{}",
        not_passed(&mvp)
    );
    assert_eq!(mvp.footer.counts.passed, 13, "{}", not_passed(&mvp));
    assert_eq!(mvp.footer.exit_code, 0);
    let skipped = mvp
        .cases
        .iter()
        .find(|c| c.id == "probe/payee/request-binding")
        .unwrap();
    assert!(
        skipped
            .message
            .as_deref()
            .unwrap()
            .contains("does not require request binding")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payee_probe_names_the_faults_of_a_faulty_payee() {
    let payer = key("probe-faulty-payer");
    let addr = faulty_payee::start(
        domain(),
        payee().into(),
        usdc().into(),
        PRICE,
        SpKey::Secp256k1(key("faulty-sp")),
    )
    .await;
    let mut probe = PayeeProbe::new(&format!("http://{addr}/paid"), PayerKey::Secp256k1(payer), eip712());
    probe.binding = Binding::Required;
    let report = blocking(move || probe_payee(&probe)).await.unwrap();
    let faults = payee_ids(&[
        "malformed-header",      // 500 instead of 400 base64_invalid
        "replay-refused",        // no replay store
        "wrong-payee",           // compares the mandate's payee with itself
        "receipt-verifies",      // enqueueDeadline after the mandate's deadline
        "receipt-deadline-rule", // the same
        "request-binding",       // serves a mandate bound to another request
    ]);
    assert_eq!(ids_with(&report, Status::Failed), faults, "{}", not_passed(&report));
    assert_eq!(
        report.footer.counts.passed,
        14 - faults.len(),
        "{}",
        not_passed(&report)
    );
    assert_eq!(report.footer.exit_code, 1);
    let case = |n: &str| {
        report
            .cases
            .iter()
            .find(|c| c.id == format!("probe/payee/{n}"))
            .unwrap()
    };
    assert!(
        case("malformed-header")
            .message
            .as_deref()
            .unwrap()
            .contains("got 500 (a server error)")
    );
    assert!(
        case("wrong-payee")
            .message
            .as_deref()
            .unwrap()
            .contains("the request was served")
    );
    assert!(
        case("receipt-deadline-rule")
            .message
            .as_deref()
            .unwrap()
            .contains("is after the mandate's deadline")
    );
    check_report_format(&report);
}

#[test]
fn unreachable_services_exit_3() {
    // A port that was just free: bind, read the number, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let probe = PayeeProbe::new(
        &format!("http://127.0.0.1:{port}/paid"),
        PayerKey::Secp256k1(key("x")),
        eip712(),
    );
    assert_eq!(probe_payee(&probe).unwrap_err().exit_code, EXIT_UNREACHABLE);
    let sp = SpProbe {
        url: format!("http://127.0.0.1:{port}"),
        key: PayerKey::Secp256k1(key("x")),
        deployment: eip712(),
        network: "eip155:84532".into(),
        asset: usdc().into(),
        payee: payee().into(),
        amount: U256::from_u64(1),
        timeout: Duration::from_secs(2),
    };
    assert_eq!(probe_sp(&sp).unwrap_err().exit_code, EXIT_UNREACHABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_service_costs_a_timeout_not_the_run() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut probe = PayeeProbe::new(&format!("http://{addr}/paid"), PayerKey::Secp256k1(key("x")), eip712());
    probe.timeout = Duration::from_millis(300);
    let report = blocking(move || probe_payee(&probe)).await.unwrap();
    assert_eq!(ids_with(&report, Status::TimedOut), payee_ids(&["no-payment-402"]));
    assert_eq!(ids_with(&report, Status::Skipped).len(), 13);
    assert_eq!(report.footer.exit_code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_probes_writes_the_report_and_exits_by_outcome() {
    let payer = key("probe-cli-payer");
    let sp = start_sp("cli", &payer, 100).await;
    let report_path = temp_dir("cli-report").join("sp.jsonl");
    let secret = aep2::codec::hex_encode_0x(&aep2::hash::sha256(b"probe-cli-payer"));
    let sp_args = |url: String, key: &str| -> Vec<String> {
        [
            "probe",
            "sp",
            "--url",
            &url,
            "--payer-key",
            key,
            "--verifying-contract",
            "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912",
            "--network",
            "eip155:84532",
            "--asset",
            "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "--format",
            "markdown",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let mut ok = sp_args(format!("http://{sp}"), &secret);
    ok.extend(["--report".to_owned(), report_path.display().to_string()]);
    let out = blocking(move || run_cli(ok)).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let report = Report::from_jsonl(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report.footer.counts.passed, 10);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = sp_args(format!("http://127.0.0.1:{port}"), &secret);
    let out = blocking(move || run_cli(gone)).await;
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));

    let bad_key = sp_args(format!("http://{sp}"), "0x1234");
    let out = blocking(move || run_cli(bad_key)).await;
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

fn run_cli(args: Vec<String>) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aep2-conformance"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_probe_passes_for_ed25519() {
    let ed = Domain::Ed25519(aep2::Ed25519Domain {
        network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".into(),
        wallet: aep2::Base58Key([9; 32]),
    });
    let seed = aep2::hash::sha256(b"probe-ed-payer");
    let payer = AccountId::Base58(aep2::Base58Key(aep2::crypto::ed25519::public_key_from_seed(&seed)));
    let mint = AccountId::Base58(aep2::Base58Key([5; 32]));
    let mut config = aep2_sp::Config::new(temp_dir("ed").join("ledger.db"), vec![ed.clone()]);
    config.ed25519_key = Some(SpKey::Ed25519(aep2::hash::sha256(b"probe-ed-sp")));
    config.listen = "127.0.0.1:0".parse().unwrap();
    let bound = aep2_sp::service::bind(&config).await.unwrap();
    let deposit = aep2_sp::Deposit {
        id: "ed-deposit".into(),
        account: aep2_sp::config::account_key(&ed, &payer, &mint).unwrap(),
        amount: U256::from_u64(50),
    };
    bound
        .state()
        .processor
        .ledger()
        .deposit(&deposit, aep2_sp::unix_now())
        .unwrap();
    let addr = bound.local_addr().unwrap();
    tokio::spawn(bound.serve(std::future::pending::<()>()));
    let probe = SpProbe {
        url: format!("http://{addr}"),
        key: PayerKey::Ed25519(seed),
        deployment: Deployment::Ed25519 {
            wallet: aep2::Base58Key([9; 32]),
        },
        network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".into(),
        asset: mint,
        payee: AccountId::Base58(aep2::Base58Key([6; 32])),
        amount: U256::from_u64(3),
        timeout: Duration::from_secs(10),
    };
    let report = blocking(move || probe_sp(&probe)).await.unwrap();
    assert_eq!(report.footer.counts.passed, 10, "{}", not_passed(&report));
}
