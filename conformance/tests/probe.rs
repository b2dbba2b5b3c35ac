//! The probes against the project's own settlement processor and payee (every check passes),
//! against a deliberately faulty payee (exactly its faults fail, by name), and against nothing.
//!
//! `retry-after-503` stops the payee's SP with SIGSTOP, so that SP runs as a process of its own:
//! this test binary run again with only [`child_sp_process`] selected ([`ChildSp`]).

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
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

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

/// The account of the payee's unbound `/paid/mvp` route (not [`payee`]).
fn mvp_payee() -> EvmAddress {
    EvmAddress([0x6e; 20])
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

/// The project SP's configuration for the probe tests, on a fresh ledger.
fn sp_config(name: &str) -> aep2_sp::Config {
    let mut config = aep2_sp::Config::new(temp_dir(name).join("ledger.db"), vec![domain()]);
    config.secp256k1_key = Some(sp_key());
    config.settlement_window = 300;
    config.listen = "127.0.0.1:0".parse().unwrap();
    config
}

/// The deposit that funds `payer` with `funds` of the probe's asset.
fn probe_deposit(payer: &SecretKey, funds: u64) -> aep2_sp::Deposit {
    let account =
        aep2_sp::config::account_key(&domain(), &AccountId::Evm(payer.address()), &AccountId::Evm(usdc())).unwrap();
    aep2_sp::Deposit {
        id: "probe-deposit".into(),
        account,
        amount: U256::from_u64(funds),
    }
}

/// The real SP on loopback with `payer` funded; it serves until the test's runtime ends.
async fn start_sp(name: &str, payer: &SecretKey, funds: u64) -> SocketAddr {
    let bound = aep2_sp::service::bind(&sp_config(name)).await.unwrap();
    bound
        .state()
        .processor
        .ledger()
        .deposit(&probe_deposit(payer, funds), aep2_sp::unix_now())
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
    c.mvp_payee = Some(mvp_payee().into());
    let bound = aep2_axum::payee::bind(&c).await.unwrap();
    let addr = bound.local_addr().unwrap();
    tokio::spawn(bound.serve(std::future::pending::<()>()));
    addr
}

/// Environment of the SP child process: its directory and the label of the payer it funds.
const CHILD_SP_DIR: &str = "AEP2_PROBE_CHILD_SP_DIR";
const CHILD_SP_PAYER: &str = "AEP2_PROBE_CHILD_SP_PAYER";

/// Not a check: the body of the SP child process [`ChildSp`] starts, which runs this test binary
/// again with only this test selected. Without the child's environment it returns at once.
#[test]
fn child_sp_process() {
    let (Ok(dir), Ok(payer)) = (std::env::var(CHILD_SP_DIR), std::env::var(CHILD_SP_PAYER)) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(start_sp("child-sp", &key(&payer), 1_000_000));
    let dir = PathBuf::from(dir);
    std::fs::write(dir.join("addr.tmp"), addr.to_string()).unwrap();
    std::fs::rename(dir.join("addr.tmp"), dir.join("addr")).unwrap();
    // The runtime's workers serve; this thread waits for the parent to close stdin (or to die).
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    std::process::exit(0);
}

/// The project's SP, funding `payer`, in a child process (killed on drop).
struct ChildSp {
    child: Child,
    addr: SocketAddr,
}

impl ChildSp {
    fn start(payer: &str) -> ChildSp {
        let dir = temp_dir("child-sp");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_sp_process", "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD_SP_DIR, &dir)
            .env(CHILD_SP_PAYER, payer)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(dir.join("addr")) {
                return ChildSp {
                    child,
                    addr: text.parse().unwrap(),
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the SP child process ended: {status}");
            }
            assert!(Instant::now() < deadline, "the SP child process did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildSp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

const PAYEE_CHECKS: [&str; 17] = [
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
    "wrong-method-not-charged",
    "binding-not-bypassed",
    "retry-after-503",
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
            "probe/sp/submission-id",
            "probe/sp/lane-cumulative",
            "probe/sp/lane-ancestor",
            "probe/sp/lane-revocation",
            "probe/sp/lane-period",
        ]
    );
    assert_eq!(report.footer.counts.passed, 15, "{}", not_passed(&report));
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

fn case<'a>(report: &'a Report, name: &str) -> &'a aep2_conformance::report::CaseRecord {
    report
        .cases
        .iter()
        .find(|c| c.id == format!("probe/payee/{name}"))
        .unwrap()
}

fn message<'a>(report: &'a Report, name: &str) -> &'a str {
    case(report, name).message.as_deref().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payee_probe_passes_against_the_project_payee() {
    let payer = key("probe-payee-payer");
    // The SP is a process of its own: retry-after-503 stops it during one payment.
    let sp = blocking(|| ChildSp::start("probe-payee-payer")).await;
    let payee_addr = start_payee("payee", sp.addr).await;
    let mut probe = PayeeProbe::new(
        &format!("http://{payee_addr}/paid/intent"),
        PayerKey::Secp256k1(payer.clone()),
        eip712(),
    );
    probe.sp = Some(sp_key().id());
    probe.binding = Binding::Required;
    probe.unbound_url = Some(format!("http://{payee_addr}/paid/mvp"));
    probe.sp_pid = Some(sp.pid());
    let intent = blocking({
        let probe = probe.clone();
        move || probe_payee(&probe)
    })
    .await
    .unwrap();
    let names: Vec<String> = intent.cases.iter().map(|c| c.id.clone()).collect();
    let want: Vec<String> = PAYEE_CHECKS.iter().map(|n| format!("probe/payee/{n}")).collect();
    assert_eq!(names, want);
    assert_eq!(intent.footer.counts.passed, 17, "{}", not_passed(&intent));
    assert_eq!(intent.footer.exit_code, 0);
    check_report_format(&intent);
    // What the three checks of the payee's payment handling saw.
    let wrong = message(&intent, "wrong-method-not-charged");
    assert!(wrong.contains("OPTIONS → 204 (Allow: GET, POST, OPTIONS)"), "{wrong}");
    assert!(
        wrong.contains("DELETE with a valid mandate → 405 (route_unknown)"),
        "{wrong}"
    );
    let bypass = message(&intent, "binding-not-bypassed");
    assert!(bypass.contains("402 payee_mismatch"), "{bypass}");
    assert!(bypass.contains(&mvp_payee().to_string()), "{bypass}");
    let retry = message(&intent, "retry-after-503");
    assert!(retry.contains("503 settlement_unavailable after"), "{retry}");
    assert!(
        retry.contains("once more: refused with 402 and reason mandate_replayed"),
        "{retry}"
    );

    // Order Mode: each payment pays a fresh quote; the quote binds the request. This probe is
    // given no deployment: it signs for the one the 402 announces in extra.domain.
    let mut order = probe.clone();
    order.url = format!("http://{payee_addr}/paid/order");
    order.binding = Binding::Auto;
    order.deployment = Deployment::Announced(aep2::Profile::Eip712);
    let order = blocking(move || probe_payee(&order)).await.unwrap();
    assert_eq!(order.footer.counts.passed, 17, "{}", not_passed(&order));

    // A probe configured for another deployment than the one announced finds no usable entry.
    let mut elsewhere = probe.clone();
    elsewhere.sp_pid = None;
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

    // The MVP route does not bind: auto mode skips request-binding, and with it
    // binding-not-bypassed; retry-after-503 is not asked for. It announces its own payee account,
    // and the probe signs for that one.
    probe.url = format!("http://{payee_addr}/paid/mvp");
    probe.binding = Binding::Auto;
    probe.sp_pid = None;
    let mvp = blocking(move || probe_payee(&probe)).await.unwrap();
    assert_eq!(
        ids_with(&mvp, Status::Skipped),
        payee_ids(&["request-binding", "binding-not-bypassed", "retry-after-503"]),
        "{}",
        not_passed(&mvp)
    );
    assert_eq!(mvp.footer.counts.passed, 14, "{}", not_passed(&mvp));
    assert_eq!(mvp.footer.exit_code, 0);
    assert!(message(&mvp, "request-binding").contains("does not require request binding"));
    assert!(message(&mvp, "binding-not-bypassed").contains("does not bind requests"));
    assert!(message(&mvp, "retry-after-503").contains("needs --sp-pid"));
    assert!(
        message(&mvp, "no-payment-402").contains(&mvp_payee().to_string()),
        "{}",
        message(&mvp, "no-payment-402")
    );
    drop(sp);
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
    // The faulty payee has no SP (it signs its own receipts); the SP it should forward to is
    // stopped all the same, and it serves regardless.
    let sp = blocking(|| ChildSp::start("probe-faulty-payer")).await;
    let mut probe = PayeeProbe::new(&format!("http://{addr}/paid"), PayerKey::Secp256k1(payer), eip712());
    probe.binding = Binding::Required;
    probe.unbound_url = Some(format!("http://{addr}/paid/mvp"));
    probe.sp_pid = Some(sp.pid());
    let report = blocking(move || probe_payee(&probe)).await.unwrap();
    drop(sp);
    let faults = payee_ids(&[
        "malformed-header",         // 500 instead of 400 base64_invalid
        "replay-refused",           // no replay store
        "wrong-payee",              // compares the mandate's payee with itself
        "receipt-verifies",         // enqueueDeadline after the mandate's deadline
        "receipt-deadline-rule",    // the same
        "request-binding",          // serves a mandate bound to another request
        "wrong-method-not-charged", // charges a DELETE that OPTIONS does not allow
        "binding-not-bypassed",     // its unbound /paid/mvp takes the same account
        "retry-after-503",          // serves while its SP is stopped (self-signed receipts)
    ]);
    assert_eq!(ids_with(&report, Status::Failed), faults, "{}", not_passed(&report));
    assert_eq!(
        report.footer.counts.passed,
        17 - faults.len(),
        "{}",
        not_passed(&report)
    );
    assert_eq!(report.footer.exit_code, 1);
    let has = |n: &str, text: &str| {
        let m = message(&report, n);
        assert!(m.contains(text), "{n}: {m}");
    };
    has("malformed-header", "got 500 (a server error)");
    has("wrong-payee", "the request was served");
    has("receipt-deadline-rule", "is after the mandate's deadline");
    has(
        "wrong-method-not-charged",
        "DELETE, a method the route does not serve (Allow: GET, OPTIONS), was served (200) and charged",
    );
    has(
        "binding-not-bypassed",
        "was served (200) and charged (PAYMENT-RESPONSE) at the unbound URL",
    );
    has("binding-not-bypassed", "takes the bound route's own account");
    has("retry-after-503", "served (200) while the SP (pid");
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
    assert_eq!(ids_with(&report, Status::Skipped).len(), 16);
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
    assert_eq!(report.footer.counts.passed, 15);

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

    // probe payee: a bad --unbound-url or --sp-stall-seconds is a usage error, before any exchange.
    let payee_args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["probe", "payee", "--url"].iter().map(|s| (*s).to_owned()).collect();
        args.extend([
            format!("http://127.0.0.1:{port}/paid"),
            "--payer-key".into(),
            secret.clone(),
        ]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    for extra in [
        &["--unbound-url", "https://example.com/paid/mvp"][..],
        &["--sp-pid", "1", "--sp-stall-seconds", "0"][..],
    ] {
        let args = payee_args(extra);
        let out = blocking(move || run_cli(args)).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
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
    assert_eq!(report.footer.counts.passed, 15, "{}", not_passed(&report));
}

/// How [`start_lane_faulty_sp`] treats lane mandates.
#[derive(Clone, Copy)]
enum LaneFault {
    /// Each one is judged by a fresh ledger: no cumulative state, no revocation.
    Forgets,
    /// Each one is refused with `lanes_unsupported`, as an SP that does not enforce lanes must.
    Unsupported,
}

/// The real SP, except for lane mandates at `POST /enqueue` (see [`LaneFault`]).
async fn start_lane_faulty_sp(name: &str, payer: &SecretKey, funds: u64, fault: LaneFault) -> SocketAddr {
    use axum::response::IntoResponse;
    let config = sp_config(name);
    let bound = aep2_sp::service::bind(&config).await.unwrap();
    let deposit = probe_deposit(payer, funds);
    let state = bound.state().clone();
    state.processor.ledger().deposit(&deposit, aep2_sp::unix_now()).unwrap();
    let real = aep2_sp::service::router(state.clone());
    let enqueue = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let (state, config, deposit) = (state.clone(), config.clone(), deposit.clone());
        async move {
            let now = aep2_sp::unix_now();
            let json = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !json {
                let e = aep2::Error::new(aep2::Reason::ContentTypeUnsupported, "not JSON");
                return aep2_sp::service::error_response(&e);
            }
            let submission = headers
                .get(aep2_sp::SUBMISSION_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| aep2_sp::parse_submission_id(v).ok());
            let lanes = std::str::from_utf8(&body).is_ok_and(|t| t.contains("\"lanes\""));
            let done = match (lanes, fault) {
                (false, _) => state.processor.enqueue_as(&body, submission, now),
                (true, LaneFault::Unsupported) => {
                    Err(aep2::Error::new(aep2::Reason::LanesUnsupported, "no lanes here"))
                }
                (true, LaneFault::Forgets) => {
                    let fresh = aep2_sp::Processor::new(&config, aep2_sp::Ledger::open_in_memory().unwrap()).unwrap();
                    fresh.ledger().deposit(&deposit, now).unwrap();
                    fresh.enqueue(&body, now)
                }
            };
            match done {
                Ok(d) => (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    aep2_sp::service::enqueue_answer(&d),
                )
                    .into_response(),
                Err(e) => aep2_sp::service::error_response(&e),
            }
        }
    };
    let app = axum::Router::new()
        .route("/enqueue", axum::routing::post(enqueue))
        .fallback_service(real);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn probe_of(sp: SocketAddr, payer: SecretKey) -> SpProbe {
    SpProbe {
        url: format!("http://{sp}"),
        key: PayerKey::Secp256k1(payer),
        deployment: eip712(),
        network: "eip155:84532".into(),
        asset: usdc().into(),
        payee: payee().into(),
        amount: U256::from_u64(7),
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_probe_fails_exactly_the_lane_checks_of_an_sp_that_keeps_no_lane_state() {
    let payer = key("probe-lane-faulty-payer");
    let sp = start_lane_faulty_sp("lane-forgets", &payer, 5000, LaneFault::Forgets).await;
    let report = blocking(move || probe_sp(&probe_of(sp, payer))).await.unwrap();
    let failed: BTreeSet<&str> = report
        .cases
        .iter()
        .filter(|c| c.status == Status::Failed)
        .map(|c| c.id.as_str())
        .collect();
    let lane_checks = ["lane-cumulative", "lane-ancestor", "lane-revocation", "lane-period"];
    let expected: BTreeSet<String> = lane_checks.iter().map(|n| format!("probe/sp/{n}")).collect();
    assert_eq!(
        failed,
        expected.iter().map(String::as_str).collect(),
        "{}",
        not_passed(&report)
    );
    assert_eq!(report.footer.counts.passed, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_probe_skips_the_lane_checks_of_an_sp_that_refuses_lanes_as_unsupported() {
    let payer = key("probe-lane-unsupported-payer");
    let sp = start_lane_faulty_sp("lane-unsupported", &payer, 5000, LaneFault::Unsupported).await;
    let report = blocking(move || probe_sp(&probe_of(sp, payer))).await.unwrap();
    assert_eq!(report.footer.counts.passed, 11, "{}", not_passed(&report));
    let skipped: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| c.status == Status::Skipped)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        skipped,
        [
            "probe/sp/lane-cumulative",
            "probe/sp/lane-ancestor",
            "probe/sp/lane-revocation",
            "probe/sp/lane-period"
        ]
    );
    assert_eq!(report.footer.exit_code, 0);
}
