//! `aep2 serve payee`: the demo payee service of `aep2-axum` (paid HTTP routes in Intent and
//! Order Mode, a paid MCP tool, a paid A2A agent) in front of a settlement processor.

use aep2::{AccountId, SpId, U256};
use aep2_axum::payee::{PayeeConfig, ReplayConfig};
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
    /// The replay database (SQLite, durable; share it between instances of this payee).
    /// Without it an in-memory store is used (one instance only, lost on restart).
    #[arg(long)]
    pub(crate) replay_db: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// Settlement window in seconds (at least the SP's window plus --clock-skew).
    #[arg(long, default_value_t = 305)]
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
    if let Some(p) = &a.replay_db {
        config.replay = ReplayConfig::Sqlite(p.clone());
    }
    if config.settlement_window > config.max_horizon + config.clock_skew {
        return Err("--settlement-window exceeds --max-horizon plus --clock-skew: no mandate could pass".into());
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
