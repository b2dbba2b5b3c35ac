//! `aep2-conformance probe payee|sp`: flags, and the report written like a run's.

use aep2::{AccountId, Base58Key, EvmAddress, Profile, SpId, U256};
use aep2_conformance::probe::{self, Binding, Deployment, PayeeProbe, SpProbe};
use aep2_conformance::report::{Format, Report};
use aep2_conformance::{Error, exit};
use clap::Subcommand;
use std::path::PathBuf;
use std::time::Duration;

pub const PROBE_AFTER_HELP: &str = "\
Exit status:
  0  every check passed (skipped checks are not required)
  1  a check failed or timed out
  2  usage error: bad flags, a key that does not fit the profile, an unwritable report
  3  the service is unreachable: its first request got no answer at all

Checks and what each requires: spec/conformance.md#probes.";

/// The probe subcommands.
#[derive(Subcommand)]
pub enum ProbeCmd {
    /// Probe a paid HTTP resource: its 402, a valid payment and the receipt, replay, payments that
    /// must be refused, a method it does not serve, and (given --unbound-url, --sp-pid) binding
    /// across routes and the retry after a 503.
    #[command(after_help = PROBE_AFTER_HELP)]
    Payee(Box<PayeeArgs>),
    /// Probe a settlement processor's HTTP API: /health, /enqueue (receipts, idempotence, nonce
    /// reuse, funds, malformed and oversized bodies, content type, signature, expiry).
    #[command(after_help = PROBE_AFTER_HELP)]
    Sp(Box<SpArgs>),
}

/// Flags every probe takes.
#[derive(clap::Args)]
pub struct Common {
    /// The payer's key, 64 hex digits (0x optional): secp256k1 for eip712, an Ed25519 seed for
    /// ed25519. Its account must be funded at the settlement processor.
    #[arg(long, value_name = "HEX")]
    payer_key: String,
    /// Signature profile of the probe's mandates: eip712 or ed25519.
    #[arg(long, default_value = "eip712")]
    profile: String,
    /// eip712: the debit-wallet contract of the domain signed for (`probe payee`: default, the
    /// deployment the 402 announces in `extra.domain`).
    #[arg(long, value_name = "ADDRESS")]
    verifying_contract: Option<String>,
    /// ed25519: the wallet program of the domain signed for, base58 (`probe payee`: default, the
    /// deployment the 402 announces).
    #[arg(long, value_name = "BASE58")]
    wallet: Option<String>,
    /// Time limit of each exchange, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Write the JSON Lines report to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "terminal")]
    format: Format,
}

/// `probe payee`.
#[derive(clap::Args)]
pub struct PayeeArgs {
    /// The paid resource, http://host:port/path (probed with GET).
    #[arg(long)]
    url: String,
    /// The SP whose receipts are trusted (EVM address or base58 key); without it a receipt only
    /// has to be validly signed by the SP it names.
    #[arg(long, value_name = "ID")]
    sp_id: Option<String>,
    /// The request-binding check: auto (skipped when the payee serves a mis-bound mandate),
    /// required, or off.
    #[arg(long, value_enum, default_value = "auto")]
    binding: Binding,
    /// An unbound paid route of the same payee (http://host:port/paid/mvp), for the
    /// binding-not-bypassed check: a mandate bound to --url must be refused there, and is then
    /// served at --url. Without it the check is skipped.
    #[arg(long, value_name = "URL")]
    unbound_url: Option<String>,
    /// The process id of the payee's settlement processor on this machine, for the
    /// retry-after-503 check: the probe stops it (kill -STOP) during one payment, expects 503
    /// settlement_unavailable, resumes it (kill -CONT) and presents the same mandate again.
    /// Without it the check is skipped.
    #[arg(long, value_name = "PID")]
    sp_pid: Option<u32>,
    /// The longest the SP stays stopped, seconds (it is resumed as soon as the payee answers):
    /// more than the payee's SP timeout (the project's payee: 5 s).
    #[arg(long, value_name = "SECONDS", default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=300))]
    sp_stall_seconds: u64,
    #[command(flatten)]
    common: Common,
}

/// `probe sp`.
#[derive(clap::Args)]
pub struct SpArgs {
    /// The settlement processor's base URL, http://host:port.
    #[arg(long)]
    url: String,
    /// The network of the domain: eip155:<chainId>, or a CAIP-2 Solana network for ed25519.
    #[arg(long)]
    network: String,
    /// The token the payer's account holds at the SP.
    #[arg(long, value_name = "ID")]
    asset: String,
    /// The payee the probe's mandates name (default: an address of 0x11 bytes, or a key of 0x11
    /// bytes for ed25519).
    #[arg(long, value_name = "ID")]
    payee: Option<String>,
    /// The amount of the valid mandate, in the token's smallest unit.
    #[arg(long, default_value = "1")]
    amount: String,
    #[command(flatten)]
    common: Common,
}

fn usage(e: impl std::fmt::Display) -> Error {
    Error::new(exit::USAGE, e.to_string())
}

fn deployment(c: &Common, announced: bool) -> Result<(aep2::PayerKey, Deployment), Error> {
    let profile = Profile::parse(&c.profile).map_err(usage)?;
    let key = probe::parse_payer_key(profile, &c.payer_key).map_err(|e| usage(format!("--payer-key: {e}")))?;
    if announced && c.verifying_contract.is_none() && c.wallet.is_none() && profile != Profile::SolanaMvp {
        return Ok((key, Deployment::Announced(profile)));
    }
    let deployment = match profile {
        Profile::Eip712 => Deployment::Eip712 {
            verifying_contract: EvmAddress::parse(
                c.verifying_contract
                    .as_deref()
                    .ok_or_else(|| usage("--verifying-contract is required for eip712"))?,
            )
            .map_err(|e| usage(format!("--verifying-contract: {e}")))?,
        },
        Profile::Ed25519 => Deployment::Ed25519 {
            wallet: Base58Key::parse(
                c.wallet
                    .as_deref()
                    .ok_or_else(|| usage("--wallet is required for ed25519"))?,
            )
            .map_err(|e| usage(format!("--wallet: {e}")))?,
        },
        Profile::SolanaMvp => return Err(usage("probes sign eip712 or ed25519 mandates")),
    };
    Ok((key, deployment))
}

fn account(text: &str, what: &str) -> Result<AccountId, Error> {
    AccountId::parse(text).map_err(|e| usage(format!("{what}: {e}")))
}

/// Runs a probe and prints its report; returns the exit code.
pub fn run(cmd: ProbeCmd) -> Result<i32, Error> {
    let (report, common) = match cmd {
        ProbeCmd::Payee(a) => {
            let (key, deployment) = deployment(&a.common, true)?;
            let mut p = PayeeProbe::new(&a.url, key, deployment);
            p.sp = a
                .sp_id
                .as_deref()
                .map(|t| SpId::parse(t).map_err(|e| usage(format!("--sp-id: {e}"))))
                .transpose()?;
            p.binding = a.binding;
            p.unbound_url = a.unbound_url.clone();
            p.sp_pid = a.sp_pid;
            p.sp_stall = Duration::from_secs(a.sp_stall_seconds);
            p.timeout = Duration::from_millis(a.common.timeout_ms);
            (probe::probe_payee(&p)?, a.common)
        }
        ProbeCmd::Sp(a) => {
            let (key, deployment) = deployment(&a.common, false)?;
            let payee = match &a.payee {
                Some(t) => account(t, "--payee")?,
                None => match deployment.profile() {
                    Profile::Eip712 => AccountId::Evm(EvmAddress([0x11; 20])),
                    _ => AccountId::Base58(Base58Key([0x11; 32])),
                },
            };
            let p = SpProbe {
                url: a.url.clone(),
                key,
                deployment,
                network: a.network.clone(),
                asset: account(&a.asset, "--asset")?,
                payee,
                amount: U256::parse_decimal(&a.amount).map_err(|e| usage(format!("--amount: {e}")))?,
                timeout: Duration::from_millis(a.common.timeout_ms),
            };
            (probe::probe_sp(&p)?, a.common)
        }
    };
    write(&report, &common)
}

fn write(report: &Report, c: &Common) -> Result<i32, Error> {
    if let Some(path) = &c.report {
        std::fs::write(path, report.to_jsonl())
            .map_err(|e| Error::new(exit::USAGE, format!("report {}: {e}", path.display())))?;
    }
    super::print(&report.render(c.format))?;
    Ok(report.footer.exit_code)
}
