//! The demo payee service behind `aep2 serve payee`: one price, one settlement processor, one
//! replay store, and paid endpoints over each host protocol.
//!
//! | route | what |
//! |---|---|
//! | `GET`/`POST /paid/intent` | Intent Mode over x402, request binding required (`ref` = the HTTP request hash) |
//! | `GET /paid/mvp` | Intent Mode without request binding, for FluxA MVP clients (`X-Payment-Mandate`); served only with its own payee account ([`PayeeConfig::mvp_payee`], spec `aep2.md#request-binding`) |
//! | `GET /paid/order` | Order Mode over x402: a `402` with a quote, then the quote-bound mandate |
//! | `GET /free` | the same content unpaid (the benchmark's baseline) |
//! | `POST /mcp` | MCP over Streamable HTTP (rmcp, stateless, JSON responses): the paid tool `get_weather` (mandate in `params._meta`, price in `tools/list`); `GET` is `405` (no server stream) |
//! | `POST /a2a` | A2A JSON-RPC `SendMessage` / `GetTask` (v1.0) and `message/send` / `tasks/get` (v0.3), each answered in its generation's shapes: Intent Mode with the mandate on the message, Order Mode through `input-required` ([`crate::a2a`]) |
//! | `GET /.well-known/agent-card.json` | the A2A agent card with the AEP2 extension (v1.0 card for `A2A-Version: 1.0`, else v0.3; also at `/.well-known/agent.json`, v0.3) |
//! | `GET /health` | `{"status": "ok", "payee", "sp", "price", …}` |
//!
//! Every paid endpoint shares one [`Checkout`] (one payment store, one SP). Connections are
//! bounded in number, in header size and in the time to send headers and body. A paid route
//! refuses what it cannot serve (another method: `405` with `Allow`; `OPTIONS`: `204`) before
//! any payment is read, and with [`PayeeConfig::cors_origins`] answers CORS preflights itself.

use crate::a2a::A2aAgent;
use crate::checkout::Checkout;
use crate::layer::{Clock, DEFAULT_MAX_HEADER_BYTES, MvpPrice, Paid, PaidLayer, Paywall, QuoteTerms, system_clock};
use crate::mcp::McpCheckout;
use crate::quotes::QuoteBook;
use aep2::json::{self, Object, Value};
use aep2::{AccountId, Domain, Error, PayeePolicy, Reason, SpId, U256, Verifier};
use aep2_a2a::{Aep2Extension, AgentCard, Message, Mode, Skill};
use aep2_mcp::paid::{PaidTools, Price};
use aep2_replay::db::Location;
use aep2_replay::{MemoryStore, PaymentStore, PostgresStore, PostgresStoreOptions, SqliteOptions, SqliteStore};
use aep2_sp::{HttpLimits, SpClient};
use aep2_x402::MvpBody;
use axum::Router;
use axum::extract::{Extension, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The paid MCP tool.
pub const TOOL_NAME: &str = "get_weather";
/// Largest JSON-RPC body read by `/mcp` and `/a2a`: the bindings' message limit plus room for
/// the JSON-RPC envelope around an A2A message.
pub const MAX_RPC_BYTES: usize = aep2_mcp::MAX_MESSAGE_BYTES + 4096;
/// Seconds a payee's settlement window keeps beyond the SP's window plus the clock skew, for the
/// time between its check and the SP's (spec `aep2.md#sp-enqueue` check 7).
pub const FORWARDING_MARGIN: u64 = 5;
/// How often the payee purges its store.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// How long a graceful shutdown waits for open connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where the payee records accepted mandates.
#[derive(Clone, PartialEq, Eq)]
pub enum ReplayConfig {
    /// A durable SQLite file (the default for a real payee; shared by all its instances on one
    /// host).
    Sqlite(PathBuf),
    /// A durable Postgres database at this `postgres://` (or `postgresql://`) URL, shared by
    /// instances on any number of hosts (tables in the schema `aep2_payee`, or the URL's
    /// `schema=NAME`).
    Postgres(String),
    /// A bounded in-process store of this many mandates (one instance only, lost on restart: a
    /// restarted payee relies on the SP's submission-id check alone not to serve twice).
    Memory(usize),
}

impl ReplayConfig {
    /// Where the store is, fit for logs: a URL's password is replaced by `***`.
    pub fn display(&self) -> String {
        match self {
            ReplayConfig::Sqlite(path) => path.display().to_string(),
            ReplayConfig::Postgres(url) => Location::Postgres(url.clone()).display(),
            ReplayConfig::Memory(n) => format!("memory ({n} mandates)"),
        }
    }
}

/// Written by hand so that a configuration printed with `{:?}` never shows a URL's password.
impl std::fmt::Debug for ReplayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayConfig::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            ReplayConfig::Postgres(_) => f.debug_tuple("Postgres").field(&self.display()).finish(),
            ReplayConfig::Memory(n) => f.debug_tuple("Memory").field(n).finish(),
        }
    }
}

/// The payee service's configuration.
#[derive(Clone, Debug)]
pub struct PayeeConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The debit-wallet deployment accepted.
    pub domain: Domain,
    /// This payee's account.
    pub payee: AccountId,
    /// The account of the unbound `/paid/mvp` route, which must differ from `payee`: a mandate
    /// made for a request-bound route then pays nothing there (spec `aep2.md#request-binding`).
    /// `None`: the route is not served.
    pub mvp_payee: Option<AccountId>,
    /// The asset of the price.
    pub asset: AccountId,
    /// The price of every paid endpoint, in the asset's smallest unit (exact).
    pub price: U256,
    /// Clock skew tolerated (s). Default 5.
    pub clock_skew: u64,
    /// Settlement window (s): at least the SP's window plus the clock skew plus the forwarding
    /// margin ([`FORWARDING_MARGIN`]). Default 310.
    pub settlement_window: u64,
    /// Furthest accepted deadline (s from now). Default 3600.
    pub max_horizon: u64,
    /// Seconds an Order Mode quote stays open. Default 120.
    pub quote_ttl: u64,
    /// The settlement processor's base URL (`http://host:port`).
    pub sp_url: String,
    /// The SP whose receipts are accepted.
    pub sp: SpId,
    /// The replay store.
    pub replay: ReplayConfig,
    /// The origin clients address (`https://api.example.com`), for request hashes behind a
    /// proxy; default `http://` + the `Host` header.
    pub public_origin: Option<String>,
    /// How the MVP 402 body states the price.
    pub mvp: MvpPrice,
    /// Seconds a presentation holds a mandate before another may take it over (after a crash).
    pub claim_lease: u64,
    /// Origins allowed by CORS (exact `scheme://host[:port]`); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Body size, header and body timeouts, connection count.
    pub http: HttpLimits,
}

impl PayeeConfig {
    /// A configuration with the defaults above, listening on `127.0.0.1:0` with an in-memory replay
    /// store of 100 000 mandates.
    pub fn new(domain: Domain, payee: AccountId, asset: AccountId, price: U256, sp_url: &str, sp: SpId) -> PayeeConfig {
        PayeeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            domain,
            payee,
            mvp_payee: None,
            asset,
            price,
            clock_skew: 5,
            // The SP's default window (300 s) plus the clock skew plus the forwarding margin
            // (aep2.md#sp-enqueue check 7).
            settlement_window: 300 + 5 + FORWARDING_MARGIN,
            max_horizon: 3600,
            quote_ttl: 120,
            sp_url: sp_url.to_owned(),
            sp,
            replay: ReplayConfig::Memory(100_000),
            public_origin: None,
            mvp: MvpPrice::default(),
            claim_lease: crate::DEFAULT_CLAIM_LEASE,
            cors_origins: Vec::new(),
            http: HttpLimits {
                max_body_bytes: MAX_RPC_BYTES,
                ..HttpLimits::default()
            },
        }
    }

    /// The payee policy of every paid endpoint (exact price).
    pub fn policy(&self) -> PayeePolicy {
        PayeePolicy::new(self.payee, self.asset, self.price)
            .with_clock_skew(self.clock_skew)
            .with_settlement_window(self.settlement_window)
            .with_max_horizon(self.max_horizon)
    }

    fn terms(&self, description: &str) -> QuoteTerms {
        QuoteTerms {
            description: description.to_owned(),
            ttl: self.quote_ttl,
            settlement_processor: self.sp,
        }
    }
}

/// What the handlers share.
struct Shared {
    config: PayeeConfig,
    checkout: Arc<Checkout>,
}

/// Opens the payment store and builds the [`Checkout`] for `config` (its SP client and SP).
pub fn checkout_for(config: &PayeeConfig) -> Result<Checkout, String> {
    let replay: Arc<dyn PaymentStore> = match &config.replay {
        ReplayConfig::Sqlite(path) => {
            let options = SqliteOptions {
                retention: config.clock_skew,
                ..SqliteOptions::default()
            };
            Arc::new(SqliteStore::open_with(path, &options).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        ReplayConfig::Postgres(url) => {
            let options = PostgresStoreOptions {
                retention: config.clock_skew,
                ..PostgresStoreOptions::default()
            };
            Arc::new(PostgresStore::open_with(url, &options).map_err(|e| format!("{}: {e}", config.replay.display()))?)
        }
        ReplayConfig::Memory(n) => Arc::new(MemoryStore::new(*n).with_retention(config.clock_skew)),
    };
    let sp = SpClient::new(&config.sp_url)
        .map_err(|e| e.to_string())?
        .with_timeout(Duration::from_secs(5));
    Ok(Checkout::new(replay, Arc::new(sp), config.sp).with_claim_lease(config.claim_lease))
}

/// The payee's router (see the module docs) with the system clock. Fails on a malformed CORS
/// origin.
pub fn router(config: &PayeeConfig, checkout: Arc<Checkout>) -> Result<Router, String> {
    router_with_clock(config, checkout, system_clock())
}

/// [`router`] with another clock (tests). Fails on a malformed CORS origin.
pub fn router_with_clock(config: &PayeeConfig, checkout: Arc<Checkout>, clock: Clock) -> Result<Router, String> {
    let mut cors = crate::Cors::new(&config.cors_origins, &[Method::GET, Method::POST])
        .map_err(|e| format!("CORS origin: {e}"))?
        .with_allowed_header(header::HeaderName::from_static("a2a-version"))
        .with_allowed_header(header::HeaderName::from_static("a2a-extensions"))
        .with_allowed_header(header::HeaderName::from_static("x-a2a-extensions"));
    // A browser MCP client sends the Streamable HTTP headers on every POST to /mcp.
    for name in crate::mcp::MCP_REQUEST_HEADERS {
        cors = cors.with_allowed_header(header::HeaderName::from_static(name));
    }
    let verifier = Arc::new(Verifier::new(config.domain.clone()));
    let policy = config.policy();
    let limits = |p: Paywall| {
        let p = p
            .with_limits(
                config.http.max_body_bytes,
                DEFAULT_MAX_HEADER_BYTES,
                config.http.body_timeout,
            )
            .with_mvp_price(config.mvp.clone())
            .with_clock(clock.clone());
        match &config.public_origin {
            Some(o) => p.with_public_origin(o.clone()),
            None => p,
        }
    };
    let intent = limits(
        Paywall::intent(verifier.clone(), policy.clone(), checkout.clone())
            .with_request_binding(true)
            .with_methods(&[Method::GET, Method::POST])
            .with_content_types(&["application/json"])
            .with_description("ETH/USD price report (Intent Mode, request-bound)"),
    );
    // Unbound, so under an account of its own: no mandate made for a bound route pays it.
    let mvp = config.mvp_payee.map(|account| {
        let mut unbound = policy.clone();
        unbound.payee = account;
        limits(
            Paywall::intent(verifier.clone(), unbound, checkout.clone())
                .with_description("ETH/USD price report (MVP clients, unbound)"),
        )
    });
    let book = Arc::new(QuoteBook::new(10_000, 60));
    let order = limits(
        Paywall::order(
            verifier.clone(),
            policy,
            config.terms("ETH/USD price report, one copy"),
            book,
            checkout.clone(),
        )
        .with_description("ETH/USD price report (Order Mode)"),
    );
    let agent = a2a_agent(config, verifier.clone(), checkout.clone(), clock.clone());
    let mcp_config = crate::mcp::http_config(
        config.http.max_body_bytes.min(MAX_RPC_BYTES),
        config.public_origin.is_some() || !config.listen.ip().is_loopback(),
    );
    let mcp_http = crate::mcp::streamable_http(
        WeatherServer::new(config, verifier.clone(), checkout.clone(), clock.clone()),
        checkout.clone(),
        mcp_config,
        crate::mcp::McpHttpLimits {
            max_body_bytes: config.http.max_body_bytes.min(MAX_RPC_BYTES),
            body_timeout: config.http.body_timeout,
        },
    );
    let shared = Arc::new(Shared {
        config: config.clone(),
        checkout,
    });
    // `any`: the paid layer sees every method and refuses those it does not serve itself, before
    // any payment is read (a method router's own 405 would come after the layer).
    let mut app = Router::new()
        .route("/paid/intent", any(report).layer(PaidLayer::new(intent)))
        .route("/paid/order", any(report).layer(PaidLayer::new(order)));
    if let Some(mvp) = mvp {
        app = app.route("/paid/mvp", any(report).layer(PaidLayer::new(mvp)));
    }
    Ok(app
        .route("/free", get(free_report))
        .route("/mcp", any(mcp_http))
        .merge(agent.router())
        .route("/health", any(health))
        .fallback(unknown_route)
        .with_state(shared)
        // Outermost, so that a preflight is answered before any route (or payment) sees it.
        .layer(cors))
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json::to_compact(v),
    )
        .into_response()
}

/// A transport-level rejection: the status and the MVP error body with the reason code.
fn error_response(status: StatusCode, e: &Error) -> Response {
    json_response(
        status,
        &MvpBody::rejection_with_status(e, status.as_u16(), None).to_json(),
    )
}

fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

fn report_body(paid: Option<&Paid>) -> Value {
    let mut o = Object::new()
        .with("symbol", s("ETH"))
        .with("currency", s("USD"))
        .with("price", s("3141.59"))
        .with("source", s("aep2 demo payee"));
    if let Some(p) = paid {
        o.insert("paidBy", s(p.verified.signer()));
        o.insert("amount", s(p.verified.mandate().amount()));
    }
    Value::Object(o)
}

async fn report(Extension(paid): Extension<Paid>) -> Response {
    json_response(StatusCode::OK, &report_body(Some(&paid)))
}

async fn free_report() -> Response {
    json_response(StatusCode::OK, &report_body(None))
}

async fn health(State(st): State<Arc<Shared>>, method: Method) -> Response {
    if method != Method::GET {
        return route_unknown(StatusCode::METHOD_NOT_ALLOWED, &method, "/health");
    }
    let c = &st.config;
    let unserved = match st.checkout.unfinished().await {
        Ok(n) => n,
        Err(e) => return error_response(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let body = Object::new()
        .with("status", s("ok"))
        .with("payee", s(c.payee.to_string()))
        .with("asset", s(c.asset.to_string()))
        .with("price", s(c.price.to_string()))
        .with("network", s(aep2_x402::network_of(&c.domain)))
        .with("sp", s(c.sp.to_string()))
        .with("settlementWindow", Value::from_u64(c.settlement_window))
        .with("unserved", Value::from_u64(unserved as u64));
    json_response(StatusCode::OK, &Value::Object(body))
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    route_unknown(StatusCode::NOT_FOUND, &method, uri.path())
}

fn route_unknown(status: StatusCode, method: &Method, path: &str) -> Response {
    let shown: String = path.chars().take(200).collect();
    error_response(
        status,
        &Error::new(Reason::RouteUnknown, format!("no operation {method} {shown}")),
    )
}

/// The payee's A2A agent: its card (the AEP2 extension required: nothing is served unpaid),
/// Intent and Order Mode at the payee's price, the summary as the paid answer.
fn a2a_agent(config: &PayeeConfig, verifier: Arc<Verifier>, checkout: Arc<Checkout>, clock: Clock) -> A2aAgent {
    let card = AgentCard {
        name: "AEP2 demo payee".into(),
        description: "Summarises reports; every answer is paid with an AEP2 mandate".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        // Replaced per request by the served endpoint.
        url: String::new(),
        extension: Aep2Extension {
            description: "Pays per task with AEP2 mandates (Intent Mode or Order Mode)".into(),
            required: true,
            accepts: vec![aep2_a2a::Accept {
                domain: config.domain.clone(),
                settlement_processor: config.sp,
            }],
            modes: vec![Mode::Intent, Mode::Order],
        },
        skills: vec![Skill {
            id: "summarise".into(),
            name: "Summarise a report".into(),
            description: format!(
                "A short summary of the report named in the message, for {} units",
                config.price
            ),
            tags: vec!["summary".into(), "paid".into()],
            examples: vec!["Summarise the Q3 EU solar report".into()],
        }],
        media_types: vec!["text/plain".into()],
    };
    // The card names the endpoint at the configured origin, else at the listen address (when
    // it is one a client can dial), else at the request's Host.
    let base = config.public_origin.clone().or_else(|| {
        let l = config.listen;
        (!l.ip().is_unspecified() && l.port() != 0).then(|| format!("http://{l}"))
    });
    A2aAgent::new(
        verifier,
        config.policy(),
        config.terms("Summary of the requested report"),
        checkout,
        card,
        served_text,
    )
    .with_base_url(base)
    .with_clock(clock)
    .with_limits(config.http.max_body_bytes, config.http.body_timeout)
}

fn served_text(message: &Message) -> String {
    let asked: Vec<&str> = message
        .parts
        .iter()
        .filter_map(|p| match &p.content {
            aep2_a2a::PartContent::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let asked: String = asked.join(" ").chars().take(80).collect();
    format!("Summary of {asked:?}: solar output in the EU rose 14% in Q3.")
}

/// A bound, not yet serving, payee.
pub struct BoundPayee {
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    checkout: Arc<Checkout>,
}

impl std::fmt::Debug for BoundPayee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundPayee")
            .field("listener", &self.listener)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Opens the replay store, builds the checkout and the router, and binds the listener.
pub async fn bind(config: &PayeeConfig) -> Result<BoundPayee, String> {
    let cfg = config.clone();
    let checkout = tokio::task::spawn_blocking(move || checkout_for(&cfg))
        .await
        .map_err(|e| e.to_string())??;
    bind_with(config, Arc::new(checkout), system_clock()).await
}

/// [`bind`] with a given checkout and clock.
pub async fn bind_with(config: &PayeeConfig, checkout: Arc<Checkout>, clock: Clock) -> Result<BoundPayee, String> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", config.listen))?;
    // The agent card names the address actually bound (port 0 picks one).
    let mut bound = config.clone();
    bound.listen = listener.local_addr().map_err(|e| e.to_string())?;
    Ok(BoundPayee {
        listener,
        app: router_with_clock(&bound, checkout.clone(), clock)?,
        limits: config.http,
        checkout,
    })
}

impl BoundPayee {
    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, String> {
        self.listener.local_addr().map_err(|e| e.to_string())
    }

    /// Serves until `shutdown` completes, then waits up to 5 s for open connections and up to
    /// 1 s for the delivery marks of the last responses.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        // Keeps the store bounded: records past their retention go (spec aep2.md#replay rule 3).
        // Every instance purges; instances sharing a store take turns (SQLite's write lock,
        // Postgres's store lock), and a purge failure only delays the next one.
        let store = self.checkout.store().clone();
        let purger = tokio::spawn(async move {
            let mut every = tokio::time::interval(PURGE_EVERY);
            loop {
                every.tick().await;
                let store = store.clone();
                let _ = tokio::task::spawn_blocking(move || store.purge(aep2_sp::unix_now())).await;
            }
        });
        let served = serve_router(self.listener, self.app, self.limits, shutdown).await;
        purger.abort();
        self.checkout.drain(Duration::from_secs(1)).await;
        served
    }
}

/// Serves `app` on `listener` with the connection limits of `limits` (header timeout, at most
/// `max_connections` at once, 64 KiB of request head) until `shutdown` completes, then waits up
/// to 5 s for open connections: the settlement processor's hardened serve loop.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    // The server loop's own rejections (a head over 64 KiB, a malformed request) get the MVP
    // error body, as the payee's other rejections do.
    let mvp_body: aep2_sp::service::RejectionBody = |status, e| {
        aep2_x402::MvpBody::rejection_with_status(e, status.as_u16(), None)
            .to_text()
            .into_bytes()
    };
    aep2_sp::service::serve_router(listener, app, limits, SHUTDOWN_GRACE, mvp_body, shutdown).await
}

/// Runs the payee on a new runtime until SIGTERM or Ctrl-C; `on_bound` gets the bound address.
pub fn run_blocking(config: &PayeeConfig, on_bound: impl FnOnce(SocketAddr)) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let bound = bind(config).await?;
        on_bound(bound.local_addr()?);
        bound.serve(aep2_sp::service::shutdown_signal()).await
    })
}

/// The demo payee's MCP server: the paid tool [`TOOL_NAME`] at the payee's price, over
/// `aep2_mcp::paid` (served by `/mcp`, and over stdio by `aep2 serve payee --mcp-stdio`).
#[derive(Clone, Debug)]
pub struct WeatherServer {
    paid: PaidTools<McpCheckout>,
}

impl WeatherServer {
    /// The tool priced by `config` (its policy, announced for 60 s), paid through `checkout`.
    pub fn new(config: &PayeeConfig, verifier: Arc<Verifier>, checkout: Arc<Checkout>, clock: Clock) -> WeatherServer {
        let price = Price::new(config.policy(), &config.domain, 60);
        let payments = McpCheckout::new(verifier, checkout).with_clock(clock);
        WeatherServer {
            paid: PaidTools::new(payments).with_price(TOOL_NAME, price),
        }
    }

    fn tool() -> Tool {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {"location": {"type": "string", "description": "a city"}},
            "required": ["location"],
        });
        let schema = match schema {
            serde_json::Value::Object(o) => o,
            _ => serde_json::Map::new(),
        };
        Tool::new(
            TOOL_NAME,
            "Current weather for a place (paid: see _meta[\"dev.aep2/accepts\"])",
            Arc::new(schema),
        )
    }
}

/// The tool itself, reached only once paid.
async fn weather(request: CallToolRequestParams) -> Result<CallToolResult, ErrorData> {
    if request.name != TOOL_NAME {
        return Err(ErrorData::invalid_params(
            format!("unknown tool {:?}; this server has {TOOL_NAME}", request.name),
            None,
        ));
    }
    let location = match request.arguments.as_ref().and_then(|a| a.get("location")) {
        Some(serde_json::Value::String(l)) => l.clone(),
        _ => "the requested place".to_owned(),
    };
    Ok(CallToolResult::success(vec![ContentBlock::text(format!(
        "Weather in {location}: 12 °C, clear sky"
    ))]))
}

impl ServerHandler for WeatherServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("aep2-demo-payee", env!("CARGO_PKG_VERSION")))
            .with_instructions("Paid tools: call without payment to get the terms, then pay with an AEP2 mandate in params._meta[\"dev.aep2/mandate\"].")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.paid.list(vec![WeatherServer::tool()]),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.paid.call(request, context, |r, _| weather(r)).await
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [rmcp::model::ProtocolVersion]> {
        std::borrow::Cow::Borrowed(&aep2_mcp::paid::PROTOCOL_VERSIONS)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        (name == TOOL_NAME).then(WeatherServer::tool)
    }
}

/// Serves the demo payee's paid tools over stdio (newline-delimited JSON-RPC on stdin/stdout)
/// until the client closes stdin: the same tool, price, payment store and SP as `/mcp`. Every
/// paid answer is marked delivered as soon as it is written.
pub fn run_mcp_stdio_blocking(config: &PayeeConfig) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let cfg = config.clone();
        let checkout = tokio::task::spawn_blocking(move || checkout_for(&cfg))
            .await
            .map_err(|e| e.to_string())??;
        let checkout = Arc::new(checkout);
        let verifier = Arc::new(Verifier::new(config.domain.clone()));
        let server = WeatherServer::new(config, verifier, checkout.clone(), system_clock());
        let running = rmcp::ServiceExt::serve(server, rmcp::transport::stdio())
            .await
            .map_err(|e| format!("mcp stdio: {e}"))?;
        let quit = running.waiting().await;
        checkout.drain(Duration::from_secs(1)).await;
        quit.map(|_| ()).map_err(|e| format!("mcp stdio: {e}"))
    })
}
