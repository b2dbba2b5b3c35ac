//! `aep2 serve payee`: the demo payee service of `aep2-axum` (paid HTTP routes in Intent and
//! Order Mode, a paid MCP tool, a paid A2A agent) in front of a settlement processor.

use aep2::{AccountId, SpId, U256};
use aep2_axum::payee::{PayeeConfig, ReplayConfig};
use aep2_replay::db::Location;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub(crate) struct ServePayeeArgs {
    #[command(flatten)]
    pub(crate) domain: crate::DomainArgs,
    /// This payee's account (EVM address for eip712, base58 key otherwise).
    #[arg(long)]
    pub(crate) payee: String,
    /// The asset of the price (token address or mint).
    #[arg(long)]
    pub(crate) asset: String,
    /// The price of every paid endpoint in the asset's smallest unit (exact).
    #[arg(long)]
    pub(crate) price: String,
    /// The settlement processor's base URL (http://host:port).
    #[arg(long)]
    pub(crate) sp_url: String,
    /// The settlement processor's identity (0x address or base58 key): only its receipts are accepted.
    #[arg(long)]
    pub(crate) sp: String,
    /// The payment database (durable: replay records and each mandate's payment state; share
    /// it between all instances of this payee): a SQLite file (instances on one host), or a
    /// postgres:// URL (instances on any number of hosts; tables in the schema aep2_payee, or
    /// the URL's schema=NAME). Default: payee.db in --data-dir.
    #[arg(long, conflicts_with = "memory_store")]
    pub(crate) replay_db: Option<PathBuf>,
    /// Directory of the default payment database (created if missing).
    #[arg(long, default_value = "aep2-payee-data")]
    pub(crate) data_dir: PathBuf,
    /// Keep payment state in memory instead (not durable: lost on restart, not shared with
    /// other instances; only the SP's submission-id check then prevents serving a charge twice).
    #[arg(long)]
    pub(crate) memory_store: bool,
    /// The account of the unbound route /paid/mvp (FluxA MVP clients, no request binding). It
    /// must differ from --payee, so that no mandate made for a request-bound route pays there.
    /// Without it /paid/mvp is not served.
    #[arg(long)]
    pub(crate) mvp_payee: Option<String>,
    /// Seconds a presentation holds a mandate before another may take it over (after a crash
    /// of the instance holding it, a retry is served once this has passed).
    #[arg(long, default_value_t = aep2_axum::DEFAULT_CLAIM_LEASE)]
    pub(crate) claim_lease: u64,
    /// An origin allowed by CORS (exact scheme://host[:port]); repeat for more. Preflights are
    /// answered with the payment headers allowed and PAYMENT-REQUIRED/PAYMENT-RESPONSE exposed.
    #[arg(long = "cors-origin")]
    pub(crate) cors_origins: Vec<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// Settlement window in seconds: at least the SP's window plus --clock-skew plus a
    /// forwarding margin of 5 s (the SP's default 300 s gives 310).
    #[arg(long, default_value_t = 310)]
    pub(crate) settlement_window: u64,
    /// Tolerated clock skew in seconds.
    #[arg(long, default_value_t = 5)]
    pub(crate) clock_skew: u64,
    /// Furthest accepted mandate deadline, in seconds from now.
    #[arg(long, default_value_t = 3600)]
    pub(crate) max_horizon: u64,
    /// Seconds an Order Mode quote stays open.
    #[arg(long, default_value_t = 120)]
    pub(crate) quote_ttl: u64,
    /// The origin clients address (e.g. https://api.example.com) when behind a proxy; it is part
    /// of the request hash. Default: http:// and the request's Host header.
    #[arg(long)]
    pub(crate) public_origin: Option<String>,
    /// Serve the paid MCP tools (get_weather, same price, payment database and SP) over stdio
    /// instead of HTTP, for a local agent that starts this command as its MCP server:
    /// newline-delimited JSON-RPC on stdin/stdout, until stdin closes. Nothing else is written
    /// to stdout; --listen is not used.
    #[arg(long)]
    pub(crate) mcp_stdio: bool,
}

pub(crate) fn serve_payee(a: &ServePayeeArgs) -> Result<ExitCode, String> {
    let domain = a.domain.domain()?;
    let payee = AccountId::parse(&a.payee).map_err(|e| format!("--payee: {e}"))?;
    let asset = AccountId::parse(&a.asset).map_err(|e| format!("--asset: {e}"))?;
    let price = U256::parse_decimal(&a.price).map_err(|e| format!("--price: {e}"))?;
    let sp = SpId::parse(&a.sp).map_err(|e| format!("--sp: {e}"))?;
    let mut config = PayeeConfig::new(domain, payee, asset, price, &a.sp_url, sp);
    config.listen = a.listen.parse().map_err(|e| format!("--listen {:?}: {e}", a.listen))?;
    config.settlement_window = a.settlement_window;
    config.clock_skew = a.clock_skew;
    config.max_horizon = a.max_horizon;
    config.quote_ttl = a.quote_ttl;
    config.public_origin = a.public_origin.clone();
    config.claim_lease = a.claim_lease;
    config.cors_origins = a.cors_origins.clone();
    if let Some(m) = &a.mvp_payee {
        let account = AccountId::parse(m).map_err(|e| format!("--mvp-payee: {e}"))?;
        if account == payee {
            return Err("--mvp-payee must differ from --payee: the unbound route would accept mandates made for the request-bound ones".into());
        }
        config.mvp_payee = Some(account);
    }
    config.replay = if a.memory_store {
        eprintln!("warning: --memory-store: payment state is lost on restart and not shared with other instances");
        ReplayConfig::Memory(100_000)
    } else if let Some(p) = &a.replay_db {
        // A path that is not UTF-8 cannot be a URL: it is a SQLite file.
        match p.to_str().map(Location::parse) {
            Some(Location::Postgres(url)) => ReplayConfig::Postgres(url),
            _ => ReplayConfig::Sqlite(p.clone()),
        }
    } else {
        std::fs::create_dir_all(&a.data_dir).map_err(|e| format!("--data-dir {}: {e}", a.data_dir.display()))?;
        ReplayConfig::Sqlite(a.data_dir.join("payee.db"))
    };
    if config.settlement_window > config.max_horizon + config.clock_skew {
        return Err("--settlement-window exceeds --max-horizon plus --clock-skew: no mandate could pass".into());
    }
    if a.mcp_stdio {
        aep2_axum::payee::run_mcp_stdio_blocking(&config)?;
        return Ok(ExitCode::SUCCESS);
    }
    aep2_axum::payee::run_blocking(&config, |addr| {
        // One line, flushed, so that a supervisor (or a test) can read the bound port.
        println!(
            "{}",
            json!({ "listening": addr.to_string(), "payee": a.payee, "sp": a.sp })
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
    })?;
    Ok(ExitCode::SUCCESS)
}
