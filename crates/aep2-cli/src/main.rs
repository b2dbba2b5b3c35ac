//! `aep2`: sign, verify and inspect AEP2 mandates and receipts, and generate or check the
//! test vectors. Output is JSON on stdout so tools can script against it.

use aep2::codec::{hex_decode_0x, hex_encode_0x};
use aep2::crypto::{ed25519, secp256k1::SecretKey};
use aep2::envelope::decode_header;
use aep2::json::{Limits, parse, to_compact};
use aep2::{
    Base58Key, Domain, Ed25519Domain, Eip712Domain, EnvelopeForm, EvmAddress, Mandate, PayerKey, Profile, Reason,
    Receipt, ReceiptExpectations, ReceiptKind, SpId, SpKey, Verifier, sign_mandate,
};
use aep2_vectors::check::{answer, judge, report_intermediates};
use aep2_vectors::generate::{diff_against, write_all};
use aep2_vectors::peer_signed::check_fixtures;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value as J, json};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::LazyLock;

mod demo;
mod lane;
mod payee;

static AFTER_HELP: LazyLock<String> = LazyLock::new(|| {
    let mut s = String::from(
        "Exit status:\n  0  valid (or the command succeeded)\n  1  invalid: the mandate, receipt or vector check failed\n  2  usage error: bad flags, unreadable input, missing domain\n\nReason codes (spec/aep2.md#reason-codes), by stage:\n",
    );
    for r in Reason::ALL {
        s.push_str(&format!("  {:<32} {}\n", r.code(), r.stage()));
    }
    s
});

#[derive(Parser)]
#[command(name = "aep2", version, about = "AEP2 (Agent Embedded Payment Protocol) reference tool", after_help = AFTER_HELP.as_str())]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a payer or settlement-processor key and print it with its address/public key.
    #[command(after_help = AFTER_HELP.as_str())]
    Keygen(KeygenArgs),
    /// Sign a mandate (JSON) and print the header, signature, digest and signer.
    #[command(after_help = AFTER_HELP.as_str())]
    Sign(SignArgs),
    /// Verify a mandate header; prints exactly one JSON object {valid, code, digest, signer, ...}.
    #[command(after_help = AFTER_HELP.as_str())]
    Verify(VerifyArgs),
    /// Decode a header or envelope: pretty JSON, form, digest, signing bytes, signer, verdict.
    #[command(after_help = AFTER_HELP.as_str())]
    Inspect(InspectArgs),
    /// Sign or verify settlement-processor receipts.
    #[command(subcommand, after_help = AFTER_HELP.as_str())]
    Receipt(ReceiptCmd),
    /// Generate or check the test vectors.
    #[command(subcommand, after_help = AFTER_HELP.as_str())]
    Vectors(VectorsCmd),
    /// Verify the peer-signed interop fixtures (ethers v6, tweetnacl) and print each verdict.
    #[command(after_help = AFTER_HELP.as_str())]
    Interop(InteropArgs),
    /// Run a service: `serve sp` is the settlement processor (POST /enqueue, GET /health), `serve
    /// payee` the demo payee behind the aep2-axum middleware.
    #[command(subcommand, after_help = AFTER_HELP.as_str())]
    Serve(ServeCmd),
    /// Operate a settlement processor's ledger directly: fund payers, show accounts.
    #[command(subcommand, after_help = AFTER_HELP.as_str())]
    Sp(SpCmd),
    /// Spending lanes: grant an agent a bounded budget, or a sub-agent a narrower one.
    #[command(subcommand, after_help = AFTER_HELP.as_str())]
    Lane(lane::LaneCmd),
    /// Run the whole protocol on loopback: an SP and a payee in-process, a funded agent paying
    /// over x402 (Intent and Order Mode), MCP and A2A, three rejections, and the receipt trail.
    /// Exit 0 if every step behaved as the spec says, 1 if one did not, 2 if it could not start.
    #[command(after_help = AFTER_HELP.as_str())]
    Demo(demo::DemoArgs),
}

#[derive(Subcommand)]
enum ServeCmd {
    /// The settlement processor: prints one JSON line {listening, sp} once bound (with a chain
    /// "embedded" in the config also {chain: {chainId, wallet, token}}, the contracts it deployed),
    /// serves until SIGTERM or Ctrl-C. With "chain" in the config the settlement worker settles
    /// accepted eip712 mandates there: on a node ({rpcUrl, wallet, txKey, fromBlock?}) or on an
    /// in-process EVM for tests ({embedded: {chainId?, fund: [{key, amount}]}}). Exit 0 on a clean
    /// shutdown, 2 on a configuration, database, chain or bind error.
    #[command(after_help = AFTER_HELP.as_str())]
    Sp(ServeSpArgs),
    /// The demo payee: paid routes /paid/intent (request-bound, GET and POST), /paid/mvp (MVP
    /// clients, unbound; only with --mvp-payee), /paid/order (Order Mode, GET), /free, /mcp
    /// (MCP Streamable HTTP on rmcp, stateless: the paid tool get_weather, its price in
    /// tools/list; protocol versions 2025-06-18, 2025-11-25, 2026-07-28; --mcp-stdio serves
    /// the same tool over stdio instead), POST /a2a (A2A v1.0 SendMessage/GetTask, v0.3
    /// message/send/tasks/get; card at /.well-known/agent-card.json, naming --public-origin or the
    /// listen address), GET /health; every paid request
    /// forwarded to the SP and answered with its receipt, and served once per charge: payment
    /// state is durable (a SQLite file in --data-dir unless told otherwise) and a mandate left
    /// unserved by an SP stall or a crash is served when presented again, at any instance
    /// sharing the database. Prints one JSON line {listening, payee, sp} once bound, serves until
    /// SIGTERM or Ctrl-C. Exit 0 on a clean shutdown, 2 on a configuration, database or bind
    /// error. Rejections are answered with 400/402/404/405/408/413/415/431/503 and
    /// {"error", "message", "reason": <code>}; a method a route does not serve is refused (405,
    /// Allow) before any payment is read.
    #[command(after_help = AFTER_HELP.as_str())]
    Payee(Box<payee::ServePayeeArgs>),
}

#[derive(Args)]
struct ServeSpArgs {
    /// The JSON configuration file (listen, database, databasePoolSize, keys, domains, settlementWindow, clockSkew,
    /// deposits, depositsFile, http, chain); see the aep2-sp crate docs and spec §6.5 and §6.7.
    #[arg(long)]
    config: PathBuf,
    /// Override the configured listen address (e.g. 127.0.0.1:0).
    #[arg(long)]
    listen: Option<String>,
    /// Override the configured ledger: a SQLite file or a postgres:// URL.
    #[arg(long)]
    database: Option<PathBuf>,
}

#[derive(Subcommand)]
enum SpCmd {
    /// Credit a payer's account once per --id. Exit 0 applied or already applied, 1 the id was
    /// used for a different deposit, 2 usage or database error.
    #[command(after_help = AFTER_HELP.as_str())]
    Deposit(SpDepositArgs),
    /// Print a payer's accounts: balance, reserved, available.
    #[command(after_help = AFTER_HELP.as_str())]
    Accounts(SpAccountsArgs),
    /// Compare the ledger with the chain (spec aep2.md#settlement-reconcile): every mandate of
    /// the deployment against its settlement event and nonce, every account against the
    /// contract's balance. Prints {ok, mandates, accounts, differences: [{kind, subject, ledger,
    /// chain}]}. Exit 0 when they agree, 1 when something differs, 2 usage, database or chain error.
    #[command(after_help = AFTER_HELP.as_str())]
    Reconcile(SpReconcileArgs),
    /// Write the audit trail (spec aep2.md#sp-audit): one record per stored mandate, oldest
    /// first, as JSON Lines or CSV on standard output, read a page at a time. Exit 0 written, 2
    /// usage or database error.
    #[command(after_help = AFTER_HELP.as_str())]
    Export(SpExportArgs),
}

#[derive(Args)]
struct SpExportArgs {
    /// The ledger: a SQLite file or a postgres:// URL.
    #[arg(long)]
    database: PathBuf,
    /// jsonl (one JSON object per line) or csv (RFC 4180, a header line first).
    #[arg(long, value_parser = ["jsonl", "csv"])]
    format: String,
    /// Only payments under this lane (0x + 64 hex) or any of its sub-lanes.
    #[arg(long, value_name = "ID")]
    lane: Option<String>,
    /// Only records accepted at or after this unix time.
    #[arg(long, value_name = "UNIX")]
    since: Option<u64>,
}

#[derive(Args)]
struct SpReconcileArgs {
    /// The ledger: a SQLite file or a postgres:// URL.
    #[arg(long)]
    database: PathBuf,
    /// The node (JSON-RPC over HTTP) the debit wallet runs on.
    #[arg(long, value_name = "URL")]
    rpc_url: String,
    /// The debit wallet's address.
    #[arg(long, value_name = "ADDRESS")]
    wallet: String,
    /// The block the wallet was deployed in: events are read from there (default 0).
    #[arg(long, value_name = "BLOCK", default_value_t = 0)]
    from_block: u64,
}

#[derive(Args)]
struct SpDepositArgs {
    /// The ledger: a SQLite file (created if missing) or a postgres:// URL.
    #[arg(long)]
    database: PathBuf,
    /// The deposit's id: applying the same id again changes nothing.
    #[arg(long)]
    id: String,
    #[command(flatten)]
    domain: DomainArgs,
    /// The payer (EVM address for eip712, base58 key otherwise).
    #[arg(long)]
    payer: String,
    /// The token (EVM address or base58 mint).
    #[arg(long)]
    token: String,
    /// The amount in token base units (decimal).
    #[arg(long)]
    amount: String,
}

#[derive(Args)]
struct SpAccountsArgs {
    /// The ledger: a SQLite file or a postgres:// URL.
    #[arg(long)]
    database: PathBuf,
    /// The payer.
    #[arg(long)]
    payer: String,
    /// Only this token.
    #[arg(long)]
    token: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Eip712,
    Ed25519,
    SolanaMvp,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Profile {
        match p {
            ProfileArg::Eip712 => Profile::Eip712,
            ProfileArg::Ed25519 => Profile::Ed25519,
            ProfileArg::SolanaMvp => Profile::SolanaMvp,
        }
    }
}

/// The domain flags shared by every command that verifies or signs.
#[derive(Args, Clone)]
struct DomainParams {
    /// eip712: the EIP-155 chain id of the debit wallet.
    #[arg(long)]
    chain_id: Option<u64>,
    /// eip712: the debit-wallet contract address (0x, EIP-55 or single-case).
    #[arg(long)]
    verifying_contract: Option<String>,
    /// ed25519: the CAIP-2 network id (e.g. solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1).
    #[arg(long)]
    network: Option<String>,
    /// ed25519: the debit-wallet program id (base58).
    #[arg(long)]
    wallet: Option<String>,
}

impl DomainParams {
    fn domain(&self, profile: ProfileArg) -> Result<Domain, String> {
        match Profile::from(profile) {
            Profile::Eip712 => {
                let chain_id = self.chain_id.ok_or("--profile eip712 needs --chain-id")?;
                if chain_id == 0 || chain_id > aep2::uint::MAX_JSON_INTEGER {
                    return Err("--chain-id must be in 1..=2^53-1".into());
                }
                let vc = self
                    .verifying_contract
                    .as_deref()
                    .ok_or("--profile eip712 needs --verifying-contract")?;
                let verifying_contract = EvmAddress::parse(vc).map_err(|e| format!("--verifying-contract: {e}"))?;
                Ok(Domain::Eip712(Eip712Domain {
                    chain_id,
                    verifying_contract,
                }))
            }
            Profile::Ed25519 => {
                let network = self.network.clone().ok_or("--profile ed25519 needs --network")?;
                aep2::profile::check_caip2(&network).map_err(|e| format!("--network: {e}"))?;
                let wallet = Base58Key::parse(self.wallet.as_deref().ok_or("--profile ed25519 needs --wallet")?)
                    .map_err(|e| format!("--wallet: {e}"))?;
                Ok(Domain::Ed25519(Ed25519Domain { network, wallet }))
            }
            Profile::SolanaMvp => Ok(Domain::SolanaMvp),
        }
    }
}

/// A required profile with its domain.
#[derive(Args)]
struct DomainArgs {
    /// Signature profile.
    #[arg(long, value_enum)]
    profile: ProfileArg,
    #[command(flatten)]
    params: DomainParams,
}

impl DomainArgs {
    fn domain(&self) -> Result<Domain, String> {
        self.params.domain(self.profile)
    }
}

/// An optional profile with its domain.
#[derive(Args)]
struct OptionalDomainArgs {
    /// Signature profile (enables the checks that need the mandate's domain).
    #[arg(long, value_enum)]
    profile: Option<ProfileArg>,
    #[command(flatten)]
    params: DomainParams,
}

impl OptionalDomainArgs {
    fn domain(&self) -> Result<Option<Domain>, String> {
        self.profile.map(|p| self.params.domain(p)).transpose()
    }
}

#[derive(Args)]
struct KeygenArgs {
    /// Key type: eip712 (secp256k1) or ed25519/solana-mvp (Ed25519 seed).
    #[arg(long, value_enum)]
    profile: ProfileArg,
    /// Derive the key from a public label instead of the OS random source (test keys only!).
    #[arg(long)]
    from_label: Option<String>,
}

#[derive(Args)]
struct SignArgs {
    #[command(flatten)]
    domain: DomainArgs,
    /// Payer key: 0x + 64 hex digits (secp256k1 secret for eip712, Ed25519 seed otherwise).
    #[arg(long)]
    key: String,
    /// The mandate JSON: inline text, @FILE, or - for stdin.
    #[arg(long)]
    mandate: String,
    /// Envelope form: mvp ({mandate, payerSig}) or native (names profile and domain).
    #[arg(long, value_enum, default_value = "mvp")]
    form: FormArg,
    /// Sign under a spending lane: the lane file of `aep2 lane grant` (@FILE, inline or -);
    /// --key is then the leaf lane's agent's key and the envelope carries the chain.
    #[arg(long)]
    lane: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormArg {
    Mvp,
    Native,
}

#[derive(Args)]
struct VerifyArgs {
    /// The header value (base64 envelope), or - to read it from stdin.
    #[arg(long)]
    header: String,
    #[command(flatten)]
    domain: DomainArgs,
    /// Verification time in unix seconds (default: the system clock).
    #[arg(long)]
    now: Option<u64>,
}

#[derive(Args)]
struct InspectArgs {
    /// The header value (base64 envelope), or - to read it from stdin.
    #[arg(long)]
    header: String,
    /// Also verify under a profile and domain.
    #[command(flatten)]
    domain: OptionalDomainArgs,
    /// Verification time in unix seconds (default: the system clock).
    #[arg(long)]
    now: Option<u64>,
}

#[derive(Subcommand)]
enum ReceiptCmd {
    /// Sign a receipt for a mandate header as a settlement processor.
    #[command(after_help = AFTER_HELP.as_str())]
    Sign(ReceiptSignArgs),
    /// Verify a receipt's signature, and optionally its SP, mandate digest and deadline rule.
    #[command(after_help = AFTER_HELP.as_str())]
    Verify(ReceiptVerifyArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    MvpEvm,
    MvpSolana,
    Native,
}

#[derive(Args)]
struct ReceiptSignArgs {
    /// Receipt form.
    #[arg(long, value_enum)]
    kind: KindArg,
    /// SP key: 0x + 64 hex digits (secp256k1 secret for mvp-evm or an eip712 native receipt, Ed25519 seed otherwise).
    #[arg(long)]
    key: String,
    /// The mandate header the receipt is for (verified first), or -.
    #[arg(long)]
    header: String,
    #[command(flatten)]
    domain: DomainArgs,
    /// The settlement promise, unix seconds. Must not exceed the mandate's deadline.
    #[arg(long)]
    enqueue_deadline: u64,
    /// Verification time of the mandate in unix seconds (default: the system clock).
    #[arg(long)]
    now: Option<u64>,
}

#[derive(Args)]
struct ReceiptVerifyArgs {
    /// The receipt JSON: inline text, @FILE, or - for stdin.
    #[arg(long)]
    receipt: String,
    /// The expected settlement processor (0x address or base58 key).
    #[arg(long)]
    sp: Option<String>,
    /// The mandate header the receipt is for (enables digest and deadline checks).
    #[arg(long)]
    header: Option<String>,
    /// The mandate's profile and domain (required with --header).
    #[command(flatten)]
    domain: OptionalDomainArgs,
}

#[derive(Subcommand)]
enum VectorsCmd {
    /// Regenerate every vector file from the fixed seeds.
    #[command(after_help = AFTER_HELP.as_str())]
    Generate(VectorsDirArgs),
    /// Run every vector through this implementation and check the files regenerate without diff.
    #[command(after_help = AFTER_HELP.as_str())]
    Check(VectorsDirArgs),
}

#[derive(Args)]
struct VectorsDirArgs {
    /// Repository root (holds spec/, vectors/, crates/); default: found from the current directory.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Vector directory (default: `<root>/vectors`).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Args)]
struct InteropArgs {
    /// The fixture file (default: vectors/peer-signed/peer-signed.json under the repository root).
    file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Keygen(a) => keygen(&a),
        Cmd::Sign(a) => sign(&a),
        Cmd::Lane(c) => lane::run(&c),
        Cmd::Verify(a) => verify(&a),
        Cmd::Inspect(a) => inspect(&a),
        Cmd::Receipt(ReceiptCmd::Sign(a)) => receipt_sign(&a),
        Cmd::Receipt(ReceiptCmd::Verify(a)) => receipt_verify(&a),
        Cmd::Vectors(VectorsCmd::Generate(a)) => vectors_generate(&a),
        Cmd::Vectors(VectorsCmd::Check(a)) => vectors_check(&a),
        Cmd::Interop(a) => interop(&a),
        Cmd::Serve(ServeCmd::Sp(a)) => serve_sp(&a),
        Cmd::Sp(SpCmd::Deposit(a)) => sp_deposit(&a),
        Cmd::Sp(SpCmd::Accounts(a)) => sp_accounts(&a),
        Cmd::Sp(SpCmd::Reconcile(a)) => sp_reconcile(&a),
        Cmd::Sp(SpCmd::Export(a)) => sp_export(&a),
        Cmd::Serve(ServeCmd::Payee(a)) => payee::serve_payee(&a),
        Cmd::Demo(a) => demo::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("aep2: {msg}");
            ExitCode::from(2)
        }
    }
}

type Outcome = Result<ExitCode, String>;

fn print(v: &J) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn verdict_exit(valid: bool) -> ExitCode {
    if valid { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Reads an argument that is inline text, `@FILE`, or `-` (stdin), as bytes.
///
/// From stdin or a file exactly one trailing line break is removed (what `echo` and editors
/// add); nothing else is trimmed, because whitespace inside a header is itself a fault the
/// verifier must see. Input is capped just above every AEP2 size limit.
fn read_arg_bytes(arg: &str) -> Result<Vec<u8>, String> {
    const CAP: u64 = 1 << 20;
    let mut bytes = Vec::new();
    let from_stream = if arg == "-" {
        std::io::stdin()
            .take(CAP)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("stdin: {e}"))?;
        true
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::File::open(path)
            .and_then(|f| f.take(CAP).read_to_end(&mut bytes))
            .map_err(|e| format!("{path}: {e}"))?;
        true
    } else {
        bytes.extend_from_slice(arg.as_bytes());
        false
    };
    if from_stream {
        if bytes.ends_with(b"\r\n") {
            bytes.truncate(bytes.len() - 2);
        } else if bytes.ends_with(b"\n") {
            bytes.truncate(bytes.len() - 1);
        }
    }
    Ok(bytes)
}

/// Like [`read_arg_bytes`] for arguments that must be text (mandate JSON, keys).
fn read_arg(arg: &str) -> Result<String, String> {
    String::from_utf8(read_arg_bytes(arg)?).map_err(|_| format!("{arg}: not UTF-8 text"))
}

/// A header argument as text; bytes that are not UTF-8 cannot be base64 (`base64_invalid`).
fn header_arg(arg: &str) -> Result<Result<String, aep2::Error>, String> {
    Ok(String::from_utf8(read_arg_bytes(arg)?)
        .map_err(|_| aep2::Error::new(Reason::Base64Invalid, "header bytes are not base64 text")))
}

fn verdict_json(verdict: &Result<(), aep2::Error>) -> (bool, J, J, J) {
    match verdict {
        Ok(()) => (true, J::Null, J::Null, J::Null),
        Err(e) => (false, json!(e.code()), json!(e.stage().as_str()), json!(e.to_string())),
    }
}

fn now_or_clock(now: Option<u64>) -> u64 {
    now.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

fn key32(hex: &str, what: &str) -> Result<[u8; 32], String> {
    hex_decode_0x(hex)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{what} must be 0x followed by 64 hex digits"))
}

fn random32() -> Result<[u8; 32], String> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("random source: {e}"))?;
    Ok(b)
}

fn keygen(a: &KeygenArgs) -> Outcome {
    let profile = Profile::from(a.profile);
    let mut material = match &a.from_label {
        Some(label) => aep2::hash::sha256(format!("aep2-keygen/{label}").as_bytes()),
        None => random32()?,
    };
    let out = match profile {
        Profile::Eip712 => {
            let key = loop {
                if let Some(k) = SecretKey::from_bytes(&material) {
                    break k;
                }
                material = aep2::hash::sha256(&material);
            };
            json!({ "profile": profile.as_str(), "key": hex_encode_0x(&material), "address": key.address().to_checksum() })
        }
        _ => json!({
            "profile": profile.as_str(),
            "key": hex_encode_0x(&material),
            "publicKey": Base58Key(ed25519::public_key_from_seed(&material)).to_string(),
        }),
    };
    print(&out);
    Ok(ExitCode::SUCCESS)
}

fn payer_key(profile: Profile, hex: &str) -> Result<PayerKey, String> {
    let k = key32(hex, "--key")?;
    match profile {
        Profile::Eip712 => SecretKey::from_bytes(&k)
            .map(PayerKey::Secp256k1)
            .ok_or_else(|| "--key is not a valid secp256k1 secret".into()),
        _ => Ok(PayerKey::Ed25519(k)),
    }
}

fn sign(a: &SignArgs) -> Outcome {
    let domain = a.domain.domain()?;
    let text = read_arg(&a.mandate)?;
    let value = parse(&text, &Limits::AEP2).map_err(|e| format!("--mandate: {e}"))?;
    let mandate = Mandate::from_json(domain.profile(), &value).map_err(|e| format!("--mandate: {e}"))?;
    let key = payer_key(domain.profile(), &a.key)?;
    let form = match a.form {
        FormArg::Mvp => EnvelopeForm::Mvp,
        FormArg::Native => EnvelopeForm::Native,
    };
    let (signed, digest) = match &a.lane {
        None => sign_mandate(&mandate, &domain, &key, form).map_err(|e| e.to_string())?,
        Some(file) => {
            let chain = lane::load_chain(file, domain.profile())?;
            match aep2::sign_lane_mandate(&mandate, &domain, &key, form, &chain) {
                Ok(x) => x,
                // What every verifier would reject is refused like a verdict: exit 1, the code.
                Err(e) => {
                    print(&json!({ "code": e.code(), "stage": e.stage().as_str(), "message": e.to_string() }));
                    return Ok(ExitCode::from(1));
                }
            }
        }
    };
    let mut out = json!({
        "header": signed.encode(),
        "signature": signed.signature,
        "digest": digest.display(),
        "signer": key.signer(),
        "profile": domain.profile().as_str(),
        "form": form.as_str(),
    });
    if !signed.lanes.is_empty() {
        out["lanes"] = json!(lane_ids(&signed, &domain));
    }
    print(&out);
    Ok(ExitCode::SUCCESS)
}

/// The lane ids of an envelope's chain, root first.
fn lane_ids(s: &aep2::SignedMandate, domain: &Domain) -> Vec<String> {
    s.lanes
        .iter()
        .filter_map(|l| l.lane.digest(domain).ok().map(|d| hex_encode_0x(&d.id)))
        .collect()
}

fn verify(a: &VerifyArgs) -> Outcome {
    let domain = a.domain.domain()?;
    let verifier = Verifier::new(domain.clone());
    let report = match header_arg(&a.header)? {
        Ok(header) => verifier.check_header(&header, Some(now_or_clock(a.now))),
        Err(e) => aep2::Report::failed(None, e),
    };
    let (valid, code, stage, message) = verdict_json(&report.verdict);
    // `signer` is the verified signer when valid; when invalid it is the address the
    // signature recovers to (eip712) or null, never the unverified claim.
    let signer = if valid {
        report.signed.as_ref().map(|s| match s.lanes.last() {
            Some(leaf) => leaf.lane.agent.to_string(),
            None => s.mandate.signer(),
        })
    } else {
        report.recovered.map(|a| a.to_checksum())
    };
    let digest = report.digest.as_ref().map(|d| d.display());
    let mandate_id = report.digest.as_ref().map(|d| hex_encode_0x(&d.id));
    let mut out = json!({ "valid": valid, "code": code, "digest": digest, "signer": signer, "mandateId": mandate_id,
                "profile": domain.profile().as_str(), "stage": stage, "message": message });
    // Under a lane, the chain's ids (root first) and purposes, once its signatures held.
    if let Some(s) = report
        .signed
        .as_ref()
        .filter(|s| !s.lanes.is_empty() && report.digest.is_some())
    {
        // The ids under the domain the chain was verified under (a native envelope's own).
        out["lanes"] = json!(lane_ids(s, report.domain.as_ref().unwrap_or(&domain)));
        out["purposes"] = json!(s.lanes.iter().map(|l| l.lane.purpose.clone()).collect::<Vec<_>>());
    }
    println!("{out}");
    Ok(verdict_exit(valid))
}

fn inspect(a: &InspectArgs) -> Outcome {
    use aep2::json::{Object, Value, to_pretty};
    let text = |s: String| Value::String(s);
    let mut out = Object::new();
    let decoded = header_arg(&a.header)?.and_then(|h| decode_header(&h).map(|v| (h, v)));
    let (header, value) = match decoded {
        Ok(x) => x,
        Err(e) => {
            let err = Object::new()
                .with("code", text(e.code().into()))
                .with("message", text(e.to_string()));
            println!(
                "{}",
                to_pretty(&Value::Object(out.with("decodeError", Value::Object(err))))
            );
            return Ok(ExitCode::from(1));
        }
    };
    let native = matches!(&value, Value::Object(o) if o.get("aep2").is_some());
    out.insert("form", text(if native { "native" } else { "mvp" }.into()));
    out.insert("envelope", value);
    let Some(domain) = a.domain.domain()? else {
        println!("{}", to_pretty(&Value::Object(out)));
        return Ok(ExitCode::SUCCESS);
    };
    let report = Verifier::new(domain).check_header(&header, Some(now_or_clock(a.now)));
    for (k, v) in report_intermediates(&report) {
        out.insert(k, text(v));
    }
    if let Some(s) = &report.signed {
        out.insert("claimedSigner", text(s.mandate.signer()));
    }
    let mut verdict = Object::new().with("valid", Value::Bool(report.verdict.is_ok()));
    if let Err(e) = &report.verdict {
        verdict.insert("code", text(e.code().into()));
        verdict.insert("stage", text(e.stage().as_str().into()));
        verdict.insert("message", text(e.to_string()));
    }
    out.insert("verdict", Value::Object(verdict));
    println!("{}", to_pretty(&Value::Object(out)));
    Ok(verdict_exit(report.verdict.is_ok()))
}

fn receipt_sign(a: &ReceiptSignArgs) -> Outcome {
    let domain = a.domain.domain()?;
    let header = read_arg(&a.header)?;
    let verified = Verifier::new(domain.clone())
        .verify_header(&header, Some(now_or_clock(a.now)))
        .map_err(|e| format!("--header: {e}"))?;
    if a.enqueue_deadline > verified.mandate().deadline() {
        return Err(format!(
            "--enqueue-deadline {} is after the mandate deadline {} (spec aep2.md#receipt-deadline-rule)",
            a.enqueue_deadline,
            verified.mandate().deadline()
        ));
    }
    let k = key32(&a.key, "--key")?;
    let (kind, key) = match a.kind {
        KindArg::MvpEvm => (
            ReceiptKind::MvpEvm,
            SpKey::Secp256k1(SecretKey::from_bytes(&k).ok_or("--key is not a secp256k1 secret")?),
        ),
        KindArg::MvpSolana => (ReceiptKind::MvpSolana, SpKey::Ed25519(k)),
        KindArg::Native => match domain.profile() {
            Profile::Eip712 => (
                ReceiptKind::Native,
                SpKey::Secp256k1(SecretKey::from_bytes(&k).ok_or("--key is not a secp256k1 secret")?),
            ),
            _ => (ReceiptKind::Native, SpKey::Ed25519(k)),
        },
    };
    let receipt = key
        .sign_receipt(kind, &verified.digest, a.enqueue_deadline, Some(&domain))
        .map_err(|e| e.to_string())?;
    let text = to_compact(&receipt.to_json());
    print(&serde_json::from_str::<J>(&text).unwrap_or(J::Null));
    Ok(ExitCode::SUCCESS)
}

fn receipt_verify(a: &ReceiptVerifyArgs) -> Outcome {
    let bytes = read_arg_bytes(&a.receipt)?;
    let receipt = match aep2::envelope::decode_json_bytes(&bytes).and_then(|v| Receipt::from_json(&v)) {
        Ok(r) => r,
        Err(e) => {
            let (valid, code, stage, message) = verdict_json(&Err(e));
            println!(
                "{}",
                json!({ "valid": valid, "code": code, "stage": stage, "message": message })
            );
            return Ok(ExitCode::from(1));
        }
    };
    let sp =
        a.sp.as_deref()
            .map(SpId::parse)
            .transpose()
            .map_err(|e| format!("--sp: {e}"))?;
    let domain = a.domain.domain()?;
    let verified = match &a.header {
        Some(h) => {
            let d = domain.clone().ok_or("--header needs --profile and its domain flags")?;
            let header = read_arg(h)?;
            Some(
                Verifier::new(d)
                    .verify_header(&header, None)
                    .map_err(|e| format!("--header: {e}"))?,
            )
        }
        None => None,
    };
    let leaf = verified.as_ref().and_then(aep2::Verified::leaf_lane);
    let expect = ReceiptExpectations {
        sp: sp.as_ref(),
        mandate: verified.as_ref().map(|v| (v.mandate(), &v.digest)),
        domain: domain.as_ref().filter(|d| d.profile() != Profile::SolanaMvp),
        lane: leaf.as_ref(),
    };
    // Say what was checked: a receipt checked without its SP proves only that someone signed it.
    let mut checks = vec!["signature"];
    if expect.sp.is_some() {
        checks.push("sp");
    }
    if expect.domain.is_some() && receipt.kind == ReceiptKind::Native {
        checks.push("domain");
    }
    if expect.mandate.is_some() {
        checks.extend(["mandate-digest", "deadline-rule"]);
    }
    let verdict = receipt.verify(&expect);
    let (valid, code, stage, message) = verdict_json(&verdict);
    println!(
        "{}",
        json!({ "valid": valid, "code": code, "kind": receipt.kind.as_str(), "sp": receipt.sp.to_string(),
                "mandateDigest": receipt.mandate_digest, "checks": checks, "stage": stage, "message": message })
    );
    Ok(verdict_exit(valid))
}

/// The repository root: the given path, or the first ancestor of the current directory that
/// holds `spec/aep2.md`.
fn repo_root(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let mut dir = std::env::current_dir().map_err(|e| e.to_string())?;
    loop {
        if dir.join("spec/aep2.md").is_file() {
            return Ok(dir);
        }
        if !dir.pop() {
            return Err("cannot find the repository root (a directory with spec/aep2.md); pass --root".into());
        }
    }
}

fn vectors_generate(a: &VectorsDirArgs) -> Outcome {
    let root = repo_root(a.root.as_deref())?;
    let dir = a.dir.clone().unwrap_or_else(|| root.join("vectors"));
    for path in write_all(&root, &dir)? {
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn vectors_check(a: &VectorsDirArgs) -> Outcome {
    let root = repo_root(a.root.as_deref())?;
    let dir = a.dir.clone().unwrap_or_else(|| root.join("vectors"));
    let mut failures = 0usize;
    let mut total = 0usize;
    let mut summary = serde_json::Map::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: aep2_vectors::model::VectorFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a vector file: {e}", path.display()))?;
        let mut passed = 0usize;
        for (group, case) in file.cases() {
            total += 1;
            match answer(group, case).and_then(|a| judge(case, &a)) {
                Ok(()) => passed += 1,
                Err(e) => {
                    failures += 1;
                    eprintln!("FAIL {e}");
                }
            }
        }
        summary.insert(
            file.topic.clone(),
            json!({ "tests": file.number_of_tests, "passed": passed }),
        );
    }
    let differing = if a.dir.is_none() {
        diff_against(&root, &dir)?
    } else {
        Vec::new()
    };
    for d in &differing {
        eprintln!("DIFF {d} differs from a fresh generation");
    }
    print(&json!({ "total": total, "failed": failures, "regenerationDiff": differing, "topics": summary }));
    Ok(verdict_exit(failures == 0 && differing.is_empty()))
}

fn interop(a: &InteropArgs) -> Outcome {
    let path = match &a.file {
        Some(p) => p.clone(),
        None => repo_root(None)?.join("vectors/peer-signed/peer-signed.json"),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: J = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let outcomes = check_fixtures(&doc)?;
    println!(
        "Peer-signed fixtures: {} (ethers v6 EIP-712, tweetnacl Ed25519)\n",
        path.display()
    );
    println!("{:<28} {:<8} {:<30} checks", "case", "expect", "aep2 verdict");
    let mut bad = 0;
    for o in &outcomes {
        let passed = o.checks.iter().filter(|c| c.ok).count();
        println!(
            "{:<28} {:<8} {:<30} {}/{} {}",
            o.id,
            o.expect,
            o.got,
            passed,
            o.checks.len(),
            if o.ok() { "ok" } else { "MISMATCH" }
        );
        for c in o.checks.iter().filter(|c| !c.ok) {
            println!("    failed: {} ({})", c.name, c.detail);
        }
        if !o.ok() {
            bad += 1;
        }
    }
    let checks: usize = outcomes.iter().map(|o| o.checks.len()).sum();
    println!(
        "\n{} cases, {} checks: {} cases ok, {} mismatched",
        outcomes.len(),
        checks,
        outcomes.len() - bad,
        bad
    );
    println!(
        "(valid cases also check: digest = ethers/MVP digest, re-signing reproduces the peer signature byte for byte,\n receipt signature verifies, and the MVP receipt's enqueueDeadline > deadline is rejected per spec)"
    );
    Ok(verdict_exit(bad == 0))
}

fn serve_sp(a: &ServeSpArgs) -> Outcome {
    let mut config = aep2_sp::Config::load(&a.config)?;
    if let Some(l) = &a.listen {
        config.listen = l.parse().map_err(|e| format!("--listen {l:?}: {e}"))?;
    }
    if let Some(d) = &a.database {
        config.database = ledger_location(d);
    }
    aep2_sp::service::run_blocking(&config, |addr, sps, embedded| {
        // One line, flushed, so that a supervisor (or a test) can read the bound port.
        let mut line = json!({ "listening": addr.to_string(), "sp": sps });
        if let Some(d) = embedded {
            line["chain"] = json!({
                "chainId": d.chain_id,
                "wallet": d.wallet.to_checksum(),
                "token": d.token.to_checksum(),
            });
        }
        println!("{line}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A `--database` value: a `postgres://` URL, or else a SQLite file (any path, UTF-8 or not).
fn ledger_location(value: &Path) -> aep2_sp::Location {
    match value.to_str() {
        Some(url) if aep2_sp::Location::is_postgres_url(url) => aep2_sp::Location::Postgres(url.to_owned()),
        _ => aep2_sp::Location::Sqlite(value.to_path_buf()),
    }
}

/// Opens the `--database` ledger; a failure names it without a URL's password.
fn open_ledger(value: &Path) -> Result<aep2_sp::Ledger, String> {
    aep2_sp::Ledger::open(ledger_location(value), &aep2_sp::LedgerOptions::default()).map_err(|e| e.to_string())
}

fn sp_deposit(a: &SpDepositArgs) -> Outcome {
    let domain = a.domain.domain()?;
    let payer = aep2::AccountId::parse(&a.payer).map_err(|e| format!("--payer: {e}"))?;
    let token = aep2::AccountId::parse(&a.token).map_err(|e| format!("--token: {e}"))?;
    let amount = aep2::U256::parse_decimal(&a.amount).map_err(|e| format!("--amount: {e}"))?;
    if a.id.is_empty() || a.id.len() > 256 {
        return Err("--id must be 1 to 256 bytes".into());
    }
    let account = aep2_sp::config::account_key(&domain, &payer, &token)?;
    let ledger = open_ledger(&a.database)?;
    let deposit = aep2_sp::Deposit {
        id: a.id.clone(),
        account: account.clone(),
        amount,
    };
    let outcome = ledger
        .deposit(&deposit, now_or_clock(None))
        .map_err(|e| e.to_string())?;
    let balance = ledger.balance(&account).map_err(|e| e.to_string())?;
    let name = match outcome {
        aep2_sp::DepositOutcome::Applied => "applied",
        aep2_sp::DepositOutcome::AlreadyApplied => "already_applied",
        aep2_sp::DepositOutcome::Conflict => "conflict",
    };
    print(&json!({
        "deposit": name,
        "id": a.id,
        "domain": account.domain,
        "payer": account.payer,
        "token": account.token,
        "balance": balance.balance.to_string(),
        "reserved": balance.reserved.to_string(),
        "available": balance.available().to_string(),
    }));
    Ok(verdict_exit(outcome != aep2_sp::DepositOutcome::Conflict))
}

fn sp_reconcile(a: &SpReconcileArgs) -> Outcome {
    let wallet = aep2::EvmAddress::parse(&a.wallet).map_err(|e| format!("--wallet: {e}"))?;
    let ledger = open_ledger(&a.database)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let r = rt.block_on(async {
        let chain = aep2_evm::Rpc::connect(&a.rpc_url)
            .await
            .map_err(|e| format!("--rpc-url: {e}"))?;
        aep2_sp::settlement::reconcile(
            &chain,
            &ledger,
            alloy::primitives::Address::from(wallet.0),
            a.from_block,
        )
        .await
        .map_err(|e| e.to_string())
    })?;
    let differences: Vec<J> = r
        .differences
        .iter()
        .map(|d| json!({ "kind": d.kind, "subject": d.subject, "ledger": d.ledger, "chain": d.chain }))
        .collect();
    print(&json!({
        "ok": differences.is_empty(),
        "mandates": r.mandates,
        "accounts": r.accounts,
        "differences": differences,
    }));
    Ok(if r.differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn sp_accounts(a: &SpAccountsArgs) -> Outcome {
    let payer = aep2::AccountId::parse(&a.payer).map_err(|e| format!("--payer: {e}"))?;
    let token = a
        .token
        .as_deref()
        .map(|t| aep2::AccountId::parse(t).map_err(|e| format!("--token: {e}")))
        .transpose()?;
    let ledger = open_ledger(&a.database)?;
    let rows = ledger
        .accounts(&payer.to_string(), token.map(|t| t.to_string()).as_deref())
        .map_err(|e| e.to_string())?;
    let list: Vec<J> = rows
        .iter()
        .map(|b| {
            json!({
                "domain": b.account.domain,
                "payer": b.account.payer,
                "token": b.account.token,
                "balance": b.balance.to_string(),
                "reserved": b.reserved.to_string(),
                "available": b.available().to_string(),
            })
        })
        .collect();
    print(&json!({ "accounts": list }));
    Ok(ExitCode::SUCCESS)
}

fn sp_export(a: &SpExportArgs) -> Outcome {
    use aep2_sp::audit::{AuditQuery, csv_header};
    use std::io::Write as _;
    let lane = a
        .lane
        .as_deref()
        .map(|t| {
            let lower = t.len() == 66
                && t.starts_with("0x")
                && t[2..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            lower
                .then(|| aep2::codec::hex_decode_0x(t).and_then(|b| <[u8; 32]>::try_from(b).ok()))
                .flatten()
                .ok_or("--lane must be 0x followed by 64 lowercase hex digits")
        })
        .transpose()?;
    let ledger = open_ledger(&a.database)?;
    let csv = a.format == "csv";
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let write_err = |e: std::io::Error| format!("standard output: {e}");
    if csv {
        out.write_all(csv_header().as_bytes()).map_err(write_err)?;
    }
    let mut query = AuditQuery {
        lane,
        since: a.since,
        ..AuditQuery::default()
    };
    loop {
        let page = ledger.audit_page(&query).map_err(|e| e.to_string())?;
        for r in &page {
            let line = if csv { r.to_csv() } else { r.to_jsonl() };
            out.write_all(line.as_bytes()).map_err(write_err)?;
        }
        match page.last() {
            Some(last) if page.len() == query.limit => query.after = Some(last.cursor()),
            _ => break,
        }
    }
    out.flush().map_err(write_err)?;
    Ok(ExitCode::SUCCESS)
}
