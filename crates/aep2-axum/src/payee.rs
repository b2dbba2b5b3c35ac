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
//! | `POST /a2a` | A2A JSON-RPC `message/send` (v0.3) or `SendMessage` (v1.0): Intent Mode with the mandate on the message, Order Mode through `input-required` |
//! | `GET /health` | `{"status": "ok", "payee", "sp", "price", …}` |
//!
//! Every paid endpoint shares one [`Checkout`] (one payment store, one SP). Connections are
//! bounded in number, in header size and in the time to send headers and body. A paid route
//! refuses what it cannot serve (another method: `405` with `Allow`; `OPTIONS`: `204`) before
//! any payment is read, and with [`PayeeConfig::cors_origins`] answers CORS preflights itself.

use crate::checkout::{Checkout, Taken};
use crate::layer::{
    Clock, DEFAULT_MAX_HEADER_BYTES, MvpPrice, Paid, PaidLayer, Paywall, QuoteTerms, issue_quote, order_options,
    quote_key, read_body, system_clock,
};
use crate::mcp::McpCheckout;
use crate::quotes::{QuoteBook, QuoteEntry};
use aep2::json::{self, Object, Value};
use aep2::{AccountId, Domain, Error, PayeePolicy, Reason, SpId, U256, Verifier};
use aep2_a2a::{Message, Part, Role, TaskState, TaskStatus};
use aep2_mcp::paid::{PaidTools, Price};
use aep2_replay::{MemoryStore, PaymentStore, SqliteOptions, SqliteStore};
use aep2_sp::{HttpLimits, SpClient};
use aep2_x402::{MvpBody, PaymentRequirements};
use axum::Router;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayConfig {
    /// A durable SQLite file (the default for a real payee; shared by all its instances).
    Sqlite(PathBuf),
    /// A bounded in-process store of this many mandates (one instance only, lost on restart: a
    /// restarted payee relies on the SP's submission-id check alone not to serve twice).
    Memory(usize),
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
    verifier: Arc<Verifier>,
    config: PayeeConfig,
    checkout: Arc<Checkout>,
    /// Quotes of the A2A endpoint, found by task.
    a2a_quotes: Arc<QuoteBook>,
    clock: Clock,
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
        .map_err(|e| format!("CORS origin: {e}"))?;
    // A browser MCP client sends the Streamable HTTP headers on every POST to /mcp.
    for name in crate::mcp::MCP_REQUEST_HEADERS {
        cors = cors.with_allowed_header(axum::http::HeaderName::from_static(name));
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
        verifier,
        config: config.clone(),
        checkout,
        a2a_quotes: Arc::new(QuoteBook::new(10_000, 60)),
        clock,
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
        .route("/a2a", any(a2a))
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

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
}

/// The body of a JSON-RPC `POST` as UTF-8 text, or the transport-level rejection.
async fn rpc_text(st: &Shared, req: Request, path: &str) -> Result<String, Response> {
    if req.method() != Method::POST {
        return Err(route_unknown(StatusCode::METHOD_NOT_ALLOWED, req.method(), path));
    }
    if !is_json(req.headers()) {
        return Err(error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &Error::new(Reason::ContentTypeUnsupported, "Content-Type must be application/json"),
        ));
    }
    let (parts, body) = req.into_parts();
    let limit = st.config.http.max_body_bytes.min(MAX_RPC_BYTES);
    let bytes = read_body(&parts.headers, body, limit, st.config.http.body_timeout)
        .await
        .map_err(|(status, e)| error_response(status, &e))?;
    String::from_utf8(bytes).map_err(|_| {
        error_response(
            StatusCode::BAD_REQUEST,
            &Error::new(Reason::Utf8Invalid, "the body is not UTF-8"),
        )
    })
}

fn rpc_ok(v: Value) -> Response {
    json_response(StatusCode::OK, &v)
}

/// A served answer whose serve becomes final once it is handed over ([`Checkout::deliver`]).
fn delivered(st: &Shared, taken: Option<Taken>, resp: Response) -> Response {
    match taken {
        Some(taken) => {
            let (parts, body) = resp.into_parts();
            Response::from_parts(parts, st.checkout.deliver(&taken, body))
        }
        None => resp,
    }
}

/// A JSON-RPC error response with the reason code in `error.data.reason`.
fn rpc_error(id: Option<&Value>, code: i64, e: &Error) -> Response {
    let error = Object::new()
        .with("code", Value::Number(code.to_string()))
        .with("message", s(e.to_string()))
        .with("data", Value::Object(Object::new().with("reason", s(e.code()))));
    let body = Object::new()
        .with("jsonrpc", s("2.0"))
        .with("id", id.cloned().unwrap_or(Value::Null))
        .with("error", Value::Object(error));
    rpc_ok(Value::Object(body))
}

/// The A2A generation a JSON-RPC method belongs to: `SendMessage` (v1.0) or `message/send` (v0.3).
#[derive(Clone, Copy, PartialEq, Eq)]
enum A2aMethod {
    V1,
    V03,
}

async fn a2a(State(st): State<Arc<Shared>>, req: Request) -> Response {
    let text = match rpc_text(&st, req, "/a2a").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let rpc = match json::parse(&text, &aep2_a2a::MESSAGE_LIMITS) {
        Ok(Value::Object(o)) => o,
        Ok(_) => {
            return rpc_error(
                None,
                -32600,
                &Error::new(Reason::JsonInvalid, "not a JSON-RPC request object"),
            );
        }
        Err(e) => return rpc_error(None, -32700, &e),
    };
    let id = rpc.get("id").cloned();
    let bad = |what: &str| Error::new(Reason::A2aMessageInvalid, what.to_owned());
    if rpc.get("jsonrpc") != Some(&s("2.0")) || !matches!(id, Some(Value::String(_) | Value::Number(_))) {
        return rpc_error(id.as_ref(), -32600, &bad("not a JSON-RPC 2.0 request with an id"));
    }
    let method = match rpc.get("method") {
        Some(Value::String(m)) if m == "SendMessage" => A2aMethod::V1,
        Some(Value::String(m)) if m == "message/send" => A2aMethod::V03,
        _ => return rpc_error(id.as_ref(), -32601, &bad("methods: SendMessage, message/send")),
    };
    let message_text = match rpc.get("params") {
        Some(Value::Object(p)) => match p.get("message") {
            Some(m) => json::to_compact(m),
            None => return rpc_error(id.as_ref(), -32602, &bad("params.message is required")),
        },
        _ => return rpc_error(id.as_ref(), -32602, &bad("params must be an object")),
    };
    let (task_id, context_id, (status, delivery)) = match Message::parse(&message_text) {
        Ok(message) => {
            let now = (st.clock)();
            let task_id = message
                .task_id
                .clone()
                .unwrap_or_else(|| format!("task-{}", crate::layer::fresh_request_id()));
            let context_id = message.context_id.clone().unwrap_or_else(|| format!("ctx-{task_id}"));
            let status = a2a_status(&st, &message, &task_id, now).await;
            (task_id, context_id, status)
        }
        // JSON that is not an A2A message (spec aep2.md#a2a-results): a rejected payment, so the
        // client agent reads the reason where it reads every other payment outcome.
        Err(e) if e.reason() == Reason::A2aMessageInvalid => {
            let task_id = format!("task-{}", crate::layer::fresh_request_id());
            let status = aep2_a2a::payment_rejected(
                agent_message(&task_id, format!("Payment rejected: {}", e.code())),
                &e,
                None,
            );
            (task_id.clone(), format!("ctx-{task_id}"), (status, None))
        }
        Err(e) => return rpc_error(id.as_ref(), -32602, &e),
    };
    let task = Object::new()
        .with("id", s(task_id))
        .with("contextId", s(context_id))
        .with("status", status.to_json());
    let result = match method {
        A2aMethod::V1 => Object::new().with("task", Value::Object(task)),
        A2aMethod::V03 => {
            let mut t = Object::new().with("kind", s("task"));
            for (k, v) in task.iter() {
                t.insert(k, v.clone());
            }
            t
        }
    };
    let body = Object::new()
        .with("jsonrpc", s("2.0"))
        .with("id", id.unwrap_or(Value::Null))
        .with("result", Value::Object(result));
    delivered(&st, delivery, rpc_ok(Value::Object(body)))
}

/// The hash under which the A2A endpoint records a task's quote.
fn task_key(task_id: &str) -> [u8; 32] {
    aep2::hash::sha256(format!("a2a-task:{task_id}").as_bytes())
}

fn agent_message(task_id: &str, text: String) -> Message {
    Message::new(
        Role::Agent,
        format!("msg-{}", crate::layer::fresh_request_id()),
        vec![Part::text(text)],
    )
    .with_task_id(task_id)
}

/// The task status answering an A2A message, and the mandate taken if the answer is a serve.
async fn a2a_status(st: &Shared, message: &Message, task_id: &str, now: u64) -> (TaskStatus, Option<Taken>) {
    let policy = st.config.policy();
    let reject = |e: &Error| {
        let status = aep2_a2a::payment_rejected(
            agent_message(task_id, format!("Payment rejected: {}", e.code())),
            e,
            None,
        );
        (status, None)
    };
    // The payment record's request: the message's own hash, the same for a retried reply.
    let request = match message.request_hash() {
        Ok(h) => h,
        Err(e) => return reject(&e),
    };
    let accepted = |v: &aep2::Verified, taken: &Taken| {
        aep2_a2a::payment_accepted(
            agent_message(task_id, served_text(message)),
            v,
            Some(&taken.receipt),
            TaskState::Completed,
        )
    };
    let quoted = message
        .task_id
        .as_deref()
        .and_then(|t| st.a2a_quotes.latest_for(&task_key(t)));
    if let Some(entry) = quoted {
        // Order Mode reply: judged against the quote recorded for this task, never a copy in the reply.
        let options = order_options(&policy);
        // The message is parsed already: extract from it rather than read the text again.
        let verified = aep2_a2a::extract_mandate(message)
            .and_then(|envelope| st.verifier.check_value(&envelope, None).into_result());
        let v = match verified {
            Ok(v) => v,
            Err(e) => return reject(&e),
        };
        let key = quote_key(v.mandate());
        let mut verdict = entry.quote.check(&v, now, options);
        if verdict.is_ok() && (key != entry.quote.mandate_ref() || !st.a2a_quotes.claim(&key, v.digest.id)) {
            verdict = Err(Error::new(
                Reason::RequestMismatch,
                "the task's quote is paid, or being paid, by another mandate",
            ));
        }
        let claimed = verdict.is_ok();
        let taken = st.checkout.take(&v, request, verdict, now).await;
        if claimed {
            st.a2a_quotes.conclude(&key, v.digest.id, &taken);
        }
        return match taken {
            Ok(taken) => match st.checkout.served(&taken, (st.clock)()).await {
                Ok(()) => (accepted(&v, &taken), Some(taken)),
                Err(e) => reject(&e),
            },
            Err(e) => reject(&e),
        };
    }
    match aep2_a2a::extract_mandate(message) {
        Err(e) if e.reason() == Reason::PaymentMissing => {
            // Order Mode: quote first, remembered under the task.
            let terms = st.config.terms("Summary of the requested report");
            let quote = match issue_quote(&st.verifier, &policy, &terms, now) {
                Ok(mut q) => {
                    q.request_id = task_id.chars().take(64).collect();
                    match q.validated() {
                        Ok(q) => q,
                        Err(e) => return reject(&e),
                    }
                }
                Err(e) => return reject(&e),
            };
            let requirements = PaymentRequirements::for_quote(&quote, now);
            st.a2a_quotes.insert(
                QuoteEntry {
                    quote,
                    request: task_key(task_id),
                },
                now,
            );
            let m = agent_message(
                task_id,
                format!(
                    "Payment required: {} of {} to {}",
                    requirements.amount, requirements.asset, requirements.pay_to
                ),
            );
            (aep2_a2a::payment_required(m, &[requirements]), None)
        }
        Err(e) => reject(&e),
        Ok(envelope) => {
            // Intent Mode, bound to this message: core verification, then the policy at `now`.
            let v = match st.verifier.check_value(&envelope, None).into_result() {
                Ok(v) => v,
                Err(e) => return reject(&e),
            };
            let verdict = policy.clone().with_request_hash(request).check(&v, now);
            match st.checkout.take(&v, request, verdict, now).await {
                Ok(taken) => match st.checkout.served(&taken, (st.clock)()).await {
                    Ok(()) => (accepted(&v, &taken), Some(taken)),
                    Err(e) => reject(&e),
                },
                Err(e) => reject(&e),
            }
        }
    }
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
    Ok(BoundPayee {
        listener,
        app: router_with_clock(config, checkout.clone(), clock)?,
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
