//! `aep2-conformance`: runs the AEP2 vectors against an implementation through its adapter.

use aep2_conformance::adapter::resolve_command;
use aep2_conformance::expected::ExpectedFailures;
use aep2_conformance::report::{Format, Report};
use aep2_conformance::select::Selection;
use aep2_conformance::suite::{self, Suite};
use aep2_conformance::{Error, Mode, RunOptions, exit, run};
use clap::{Parser, Subcommand};

mod probe_cli;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const AFTER_HELP: &str = "\
Exit status:
  0  every required case passed (skipped cases are not required unless --require-all)
  1  conformance failures: a case failed or errored and is not an expected failure
  2  usage or configuration error: bad flags, unreadable files, an adapter that cannot be
     started, an expected-failures list naming ids that do not exist
  3  adapter protocol error or crash: a crash, a hang, a malformed answer, a failed handshake
  4  vectors invalid: a vector file fails its schema, the model, its counts or id uniqueness

Adapter protocol: spec/conformance.md. Reference adapter: --adapter reference.";

#[derive(Parser)]
#[command(name = "aep2-conformance", version, about = "AEP2 conformance suite runner", after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the vectors against an adapter (or list the selected cases with --list).
    #[command(after_help = AFTER_HELP)]
    Run(Box<RunArgs>),
    /// Re-render a saved JSON Lines report; exits with the run's exit code.
    #[command(after_help = AFTER_HELP)]
    Report {
        /// The report written by `run --report`.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "terminal")]
        format: Format,
    },
    /// Serve the adapter protocol on stdin/stdout with the reference implementation (what
    /// `--adapter reference` starts).
    ReferenceAdapter,
    /// Serve the adapter protocol with the settlement contract executed on the embedded EVM
    /// (what `--adapter evm` starts): the eip712 `verify_mandate` cases it decides, verdict only.
    EvmAdapter,
    /// Probe a running payee or settlement processor (spec/conformance.md#probes).
    #[command(subcommand)]
    Probe(probe_cli::ProbeCmd),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The adapter command, split like a shell would (no expansion), or `reference` for the
    /// reference adapter built next to this binary.
    #[arg(long, required_unless_present = "list")]
    adapter: Option<String>,
    /// Vector directory (default: the repository's `vectors/`).
    #[arg(long)]
    vectors: Option<PathBuf>,
    /// Select cases whose id starts with this prefix (repeatable).
    #[arg(long = "id", value_name = "PREFIX")]
    ids: Vec<String>,
    /// Select cases carrying this flag (repeatable).
    #[arg(long = "tag", value_name = "FLAG")]
    tags: Vec<String>,
    /// Select cases of this signature profile: eip712, ed25519, solana-mvp (repeatable).
    #[arg(long = "profile", value_name = "PROFILE")]
    profiles: Vec<String>,
    /// Select cases of this kind (repeatable).
    #[arg(long = "kind", value_name = "KIND")]
    kinds: Vec<String>,
    /// Judging mode: strict (normative) or compat (acceptable results allowed).
    #[arg(long, value_enum, default_value = "strict")]
    mode: Mode,
    /// Print the selected cases (id, kind, profile, flags) without running them.
    #[arg(long)]
    list: bool,
    /// Longest wait for one answer, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Longest wait for the adapter's start answer, milliseconds.
    #[arg(long, default_value_t = 60_000)]
    start_timeout_ms: u64,
    /// Stop at the first failure.
    #[arg(long)]
    fail_fast: bool,
    /// Stop after N failures.
    #[arg(long, value_name = "N")]
    max_fail: Option<usize>,
    /// Validate every message the adapter sends against spec/schemas/conformance/.
    #[arg(long)]
    validate_protocol: bool,
    /// Expected-failures list (JSON, see conformance/expected-failures/).
    #[arg(long, value_name = "FILE")]
    expected_failures: Option<PathBuf>,
    /// Write the JSON Lines report to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "terminal")]
    format: Format,
    /// Count skipped cases as failures.
    #[arg(long)]
    require_all: bool,
    /// Most adapter restarts before the run stops.
    #[arg(long, default_value_t = 20)]
    max_restarts: u32,
}

fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::new(exit::USAGE, format!("stdout: {e}")))
}

fn run_command(a: RunArgs) -> Result<i32, Error> {
    let dir = a.vectors.clone().unwrap_or_else(suite::default_dir);
    let suite = Suite::load(&dir)?;
    let selection = Selection {
        ids: a.ids,
        tags: a.tags,
        profiles: a.profiles,
        kinds: a.kinds,
    };
    if a.list {
        let mut text = String::new();
        for (g, t) in suite.cases().filter(|(g, t)| selection.matches(g, t)) {
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                t.id,
                g.kind.as_str(),
                g.context.profile.as_deref().unwrap_or("-"),
                t.flags.join(",")
            ));
        }
        print(&text)?;
        return Ok(exit::OK);
    }
    let adapter = resolve_command(a.adapter.as_deref().unwrap_or_default())?;
    let expected_failures = match &a.expected_failures {
        Some(p) => Some((p.display().to_string(), ExpectedFailures::load(p, &suite)?)),
        None => None,
    };
    let options = RunOptions {
        adapter,
        mode: a.mode,
        selection,
        timeout: Duration::from_millis(a.timeout_ms),
        start_timeout: Duration::from_millis(a.start_timeout_ms),
        max_fail: if a.fail_fast { Some(1) } else { a.max_fail },
        validate_protocol: a.validate_protocol,
        require_all: a.require_all,
        max_restarts: a.max_restarts,
        expected_failures,
    };
    let report = run(&suite, &options)?;
    if let Some(path) = &a.report {
        std::fs::write(path, report.to_jsonl())
            .map_err(|e| Error::new(exit::USAGE, format!("report {}: {e}", path.display())))?;
    }
    for w in &report.footer.warnings {
        eprintln!("warning: {w}");
    }
    print(&report.render(a.format))?;
    Ok(report.footer.exit_code)
}

fn report_command(file: PathBuf, format: Format) -> Result<i32, Error> {
    let size = std::fs::metadata(&file)
        .map_err(|e| Error::new(exit::USAGE, format!("{}: {e}", file.display())))?
        .len();
    if size > aep2_conformance::report::MAX_REPORT_BYTES {
        return Err(Error::new(exit::USAGE, format!("{}: report too large", file.display())));
    }
    let text =
        std::fs::read_to_string(&file).map_err(|e| Error::new(exit::USAGE, format!("{}: {e}", file.display())))?;
    let report = Report::from_jsonl(&text)?;
    print(&report.render(format))?;
    Ok(report.footer.exit_code)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Cmd::Run(a) => run_command(*a),
        Cmd::Report { file, format } => report_command(file, format),
        Cmd::Probe(p) => probe_cli::run(p),
        Cmd::ReferenceAdapter => {
            return aep2_conformance::reference::serve(std::io::stdin().lock(), std::io::stdout().lock());
        }
        Cmd::EvmAdapter => {
            return aep2_conformance::evm::serve(std::io::stdin().lock(), std::io::stdout().lock());
        }
    };
    let code = outcome.unwrap_or_else(|e| {
        eprintln!("aep2-conformance: {e}");
        e.exit_code
    });
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
