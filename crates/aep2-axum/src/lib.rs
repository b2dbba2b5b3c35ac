//! # aep2-axum
//!
//! AEP2 for paid HTTP services built on axum (spec `aep2.md#x402-payee-processing`):
//!
//! - [`PaidLayer`]: a tower `Layer` a merchant adds to an axum route with a price. Without a
//!   payment it answers `402` with x402 v2 `PAYMENT-REQUIRED` and the FluxA MVP 402 body; with
//!   one it verifies the mandate under the merchant's [`PayeePolicy`] (or, in Order Mode, against
//!   the quote it issued, [`QuoteBook`]), binds it to the request when configured, records it in
//!   a replay store ([`aep2_replay`]), forwards it to the settlement processor ([`Settlement`],
//!   implemented by [`aep2_sp::SpClient`]), verifies the receipt, calls the route and attaches
//!   `PAYMENT-RESPONSE`. Every rejection is a status and a JSON body naming the reason code.
//! - [`Checkout`]: the stateful tail shared by every binding: the durable payment state (replay
//!   record, submission id, receipt, served), settlement, the receipt check.
//! - [`mcp`]: paid MCP tools over rmcp (`aep2_mcp::paid`) on a [`Checkout`], and rmcp's
//!   Streamable HTTP server as an axum route.
//! - [`payee`]: the demo payee service behind `aep2 serve payee`: paid HTTP routes (Intent and
//!   Order Mode), a paid MCP endpoint and a paid A2A endpoint.
//! - [`agent`]: the payer's side (sign a mandate for the terms of a `402`, a tool call or an A2A
//!   message) and a small loopback HTTP client, used by `aep2 demo`, the tests and the benchmark.
//!
//! ```no_run
//! use aep2::{Domain, Eip712Domain, EvmAddress, PayeePolicy, SpId, U256, Verifier};
//! use aep2_axum::{Checkout, PaidLayer, Paywall};
//! use aep2_replay::{SqliteOptions, SqliteStore};
//! use aep2_sp::SpClient;
//! use axum::{Router, routing::get};
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let domain = Domain::Eip712(Eip712Domain {
//!     chain_id: 84532,
//!     verifying_contract: EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912")?,
//! });
//! let me = EvmAddress::parse("0xaAD167617dF02Dd30208722c88d9027a2fDD8812")?;
//! let usdc = EvmAddress::parse("0x036CbD53842c5426634e7929541eC2318f3dCF7e")?;
//! let policy = PayeePolicy::new(me.into(), usdc.into(), U256::from_u64(1000))
//!     .with_clock_skew(5)
//!     .with_settlement_window(310)
//!     .with_max_horizon(3600);
//! let checkout = Arc::new(Checkout::new(
//!     Arc::new(SqliteStore::open_with("replay.db", &SqliteOptions { retention: 5, ..Default::default() })?),
//!     Arc::new(SpClient::new("http://127.0.0.1:8402")?),
//!     SpId::parse("0x405B10be927D3BF157196C995d8131c6A097673c")?,
//! ));
//! let paywall = Paywall::intent(Arc::new(Verifier::new(domain)), policy, checkout).with_request_binding(true);
//! let app: Router = Router::new().route("/report", get(|| async { "paid content" }).layer(PaidLayer::new(paywall)));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

pub mod a2a;
pub mod agent;
mod checkout;
mod cors;
mod layer;
pub mod mcp;
pub mod payee;
mod quotes;

pub use checkout::{Checkout, DEFAULT_CLAIM_LEASE, Settlement, SettlementFuture, Taken};
pub use cors::{ALLOWED_REQUEST_HEADERS, Cors, CorsService, DEFAULT_MAX_AGE, EXPOSED_RESPONSE_HEADERS, InvalidOrigin};
pub use layer::{
    Clock, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_HEADER_BYTES, MvpPrice, Paid, PaidLayer, PaidService, Paywall, Pricing,
    QuoteTerms, status_for, system_clock,
};
pub use quotes::{QuoteBook, QuoteEntry};

#[doc(no_inline)]
pub use aep2::PayeePolicy;
/// The axum version the layer is built for (so a merchant's router and the layer agree).
pub use axum;
