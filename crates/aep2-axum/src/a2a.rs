//! A paid A2A agent on axum (spec `aep2.md#binding-a2a`, `aep2.md#a2a-transport`): the agent card
//! at the well-known paths, and one JSON-RPC endpoint answering `SendMessage` / `GetTask` (A2A
//! v1.0) and `message/send` / `tasks/get` (v0.3), each client in its own generation's shapes.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn demo(verifier: Arc<aep2::Verifier>, policy: aep2::PayeePolicy, terms: aep2_axum::QuoteTerms,
//! #         checkout: Arc<aep2_axum::Checkout>, card: aep2_a2a::AgentCard) {
//! use aep2_axum::a2a::A2aAgent;
//! let agent = A2aAgent::new(verifier, policy, terms, checkout, card, |message| {
//!     format!("{} parts received, here is the summary", message.parts.len())
//! });
//! let app: axum::Router = axum::Router::new().merge(agent.router());
//! # let _ = app; }
//! ```

use crate::checkout::{Checkout, Taken};
use crate::layer::{
    Clock, QuoteTerms, fresh_request_id, issue_quote, order_options, quote_key, read_body, system_clock,
};
use crate::quotes::{QuoteBook, QuoteEntry};
use aep2::json::{self, Object, Value};
use aep2::{Error, PayeePolicy, QuoteRef, Reason, Verified, Verifier};
use aep2_a2a::{A2aVersion, EXTENSION_URI, Part, Role, Task, TaskState, TaskStatus};
use aep2_sp::{PaidRequest, RequestDescriptor};
use aep2_x402::{MvpBody, PaymentRequirements};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use std::sync::Arc;
use std::time::Duration;

#[doc(no_inline)]
pub use aep2_a2a::{Accept, Aep2Extension, AgentCard, Message, Mode, Skill, TaskStore};

/// The JSON-RPC endpoint's path.
pub const RPC_PATH: &str = "/a2a";
/// The agent card's path (A2A v0.3 and v1.0).
pub const CARD_PATH: &str = "/.well-known/agent-card.json";
/// The card's path before A2A v0.3 (served the v0.3 card, for older clients).
pub const LEGACY_CARD_PATH: &str = "/.well-known/agent.json";
/// `Cache-Control` max-age of the card (s).
pub const CARD_MAX_AGE: u64 = 300;
/// Default bounds of the task store: tasks, and bytes of task JSON.
pub const DEFAULT_MAX_TASKS: usize = 10_000;
/// See [`DEFAULT_MAX_TASKS`].
pub const DEFAULT_MAX_TASK_BYTES: usize = 32 << 20;
/// Largest JSON-RPC body read: the message limit plus room for the envelope around it.
pub const MAX_RPC_BYTES: usize = aep2_a2a::MAX_MESSAGE_BYTES + 4096;

/// A2A's JSON-RPC error codes used here.
pub mod codes {
    /// Parse error.
    pub const PARSE_ERROR: i64 = -32700;
    /// Invalid request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Method not found.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid params.
    pub const INVALID_PARAMS: i64 = -32602;
    /// `TaskNotFoundError`.
    pub const TASK_NOT_FOUND: i64 = -32001;
    /// `UnsupportedOperationError` (a message to a task in a terminal state).
    pub const UNSUPPORTED_OPERATION: i64 = -32004;
    /// `ExtensionSupportRequiredError` (v1.0; used for v0.3 too, which has no code of its own).
    pub const EXTENSION_SUPPORT_REQUIRED: i64 = -32008;
    /// `VersionNotSupportedError`.
    pub const VERSION_NOT_SUPPORTED: i64 = -32009;
}

/// What the agent serves once paid: the text of its answer to a (paid) message.
pub type Serve = Arc<dyn Fn(&Message) -> String + Send + Sync>;

/// A paid A2A agent: Intent Mode (the mandate on the message) and Order Mode (an
/// `input-required` task with a quote first), over the shared [`Checkout`].
#[derive(Clone)]
pub struct A2aAgent {
    inner: Arc<Inner>,
}

struct Inner {
    verifier: Arc<Verifier>,
    policy: PayeePolicy,
    terms: QuoteTerms,
    checkout: Arc<Checkout>,
    card: AgentCard,
    serve: Serve,
    quotes: Arc<QuoteBook>,
    tasks: Arc<TaskStore>,
    clock: Clock,
    base_url: Option<String>,
    max_body: usize,
    body_timeout: Duration,
}

impl std::fmt::Debug for A2aAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("A2aAgent")
            .field("card", &self.inner.card.name)
            .field("tasks", &self.inner.tasks)
            .finish_non_exhaustive()
    }
}

impl A2aAgent {
    /// An agent charging `policy`'s price (Intent Mode, request binding required) or quoting
    /// under `terms` (Order Mode), with `card` as its card (its `url` is replaced by the served
    /// endpoint, see [`A2aAgent::with_base_url`]) and `serve` producing the paid answer.
    pub fn new(
        verifier: Arc<Verifier>,
        policy: PayeePolicy,
        terms: QuoteTerms,
        checkout: Arc<Checkout>,
        card: AgentCard,
        serve: impl Fn(&Message) -> String + Send + Sync + 'static,
    ) -> A2aAgent {
        A2aAgent {
            inner: Arc::new(Inner {
                verifier,
                policy,
                terms,
                checkout,
                card,
                serve: Arc::new(serve),
                quotes: Arc::new(QuoteBook::new(10_000, 60)),
                tasks: Arc::new(TaskStore::new(DEFAULT_MAX_TASKS, DEFAULT_MAX_TASK_BYTES)),
                clock: system_clock(),
                base_url: None,
                max_body: MAX_RPC_BYTES,
                body_timeout: Duration::from_secs(5),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> A2aAgent {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => f(inner),
            None => {
                // Shared already: configure a copy (the builder is used before serving).
                let i = &self.inner;
                let mut copy = Inner {
                    verifier: i.verifier.clone(),
                    policy: i.policy.clone(),
                    terms: i.terms.clone(),
                    checkout: i.checkout.clone(),
                    card: i.card.clone(),
                    serve: i.serve.clone(),
                    quotes: i.quotes.clone(),
                    tasks: i.tasks.clone(),
                    clock: i.clock.clone(),
                    base_url: i.base_url.clone(),
                    max_body: i.max_body,
                    body_timeout: i.body_timeout,
                };
                f(&mut copy);
                self.inner = Arc::new(copy);
            }
        }
        self
    }

    /// The origin clients reach the agent at (`https://agent.example.com`): the card's
    /// interfaces point to it plus [`RPC_PATH`]. Without it the card names `http://` + the
    /// request's `Host`.
    #[must_use]
    pub fn with_base_url(self, base: Option<String>) -> A2aAgent {
        self.edit(|i| i.base_url = base.map(|b| b.trim_end_matches('/').to_owned()))
    }

    /// Another clock (tests).
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> A2aAgent {
        self.edit(|i| i.clock = clock)
    }

    /// Another task store (its bounds).
    #[must_use]
    pub fn with_tasks(self, tasks: Arc<TaskStore>) -> A2aAgent {
        self.edit(|i| i.tasks = tasks)
    }

    /// Body limit (at most [`MAX_RPC_BYTES`]) and the time to receive the body.
    #[must_use]
    pub fn with_limits(self, max_body: usize, body_timeout: Duration) -> A2aAgent {
        self.edit(|i| {
            i.max_body = max_body.min(MAX_RPC_BYTES);
            i.body_timeout = body_timeout;
        })
    }

    /// The task store.
    pub fn tasks(&self) -> &Arc<TaskStore> {
        &self.inner.tasks
    }

    /// The routes: `POST` [`RPC_PATH`], `GET` [`CARD_PATH`] and [`LEGACY_CARD_PATH`].
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route(RPC_PATH, any(rpc))
            .route(CARD_PATH, any(card))
            .route(LEGACY_CARD_PATH, any(legacy_card))
            .with_state(self.inner.clone())
    }
}

fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json::to_compact(v),
    )
        .into_response()
}

fn http_error(status: StatusCode, e: &Error) -> Response {
    json_response(
        status,
        &MvpBody::rejection_with_status(e, status.as_u16(), None).to_json(),
    )
}

fn not_served(method: &Method, path: &str) -> Response {
    let mut r = http_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &Error::new(Reason::RouteUnknown, format!("no operation {method} {path}")),
    );
    let allow = if path == RPC_PATH { "POST" } else { "GET, HEAD" };
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// The A2A generation a request asks for by its `A2A-Version` header (A2A v1.0 §3.6: `Major.Minor`,
/// an absent or empty value meaning 0.3). `Err` holds the unsupported value.
fn requested_version(headers: &HeaderMap) -> Result<Option<A2aVersion>, String> {
    let Some(v) = headers.get("a2a-version") else {
        return Ok(None);
    };
    let text = v.to_str().map_err(|_| "a non-ASCII value".to_owned())?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let mut it = text.split('.');
    let major = it.next().and_then(|m| m.parse::<u32>().ok());
    let minor = it.next().and_then(|m| m.parse::<u32>().ok());
    match (major, minor) {
        (Some(0), Some(3)) => Ok(Some(A2aVersion::V0_3)),
        (Some(1), Some(_)) => Ok(Some(A2aVersion::V1_0)),
        _ => Err(text.chars().take(32).collect()),
    }
}

/// The base URL of the endpoint named in the card.
fn base_of(inner: &Inner, headers: &HeaderMap) -> String {
    match &inner.base_url {
        Some(b) => b.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty() && h.len() <= 255 && !h.contains(['/', ' ', '"', '\\']))
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    }
}

async fn card(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    // A2A v1.0 §3.6: no version means 0.3, so an old client gets the card it can read.
    let version = match requested_version(req.headers()) {
        Ok(v) => v.unwrap_or(A2aVersion::V0_3),
        Err(v) => {
            let mut r = http_error(
                StatusCode::BAD_REQUEST,
                &Error::new(
                    Reason::UnsupportedVersion,
                    format!("A2A-Version {v:?}: this agent speaks 1.0 and 0.3"),
                ),
            );
            r.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("A2A-Version"));
            return r;
        }
    };
    card_response(&inner, req, version, CARD_PATH)
}

async fn legacy_card(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    // The pre-0.3 path is only read by clients older than v1.0.
    card_response(&inner, req, A2aVersion::V0_3, LEGACY_CARD_PATH)
}

fn card_response(inner: &Inner, req: Request, version: A2aVersion, path: &str) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return not_served(req.method(), path);
    }
    let mut card = inner.card.clone();
    card.url = format!("{}{RPC_PATH}", base_of(inner, req.headers()));
    let body = json::to_compact(&match version {
        A2aVersion::V1_0 => card.to_json_v1(),
        A2aVersion::V0_3 => card.to_json_v0_3(),
    });
    let digest = aep2::hash::sha256(body.as_bytes());
    let etag = format!("W/\"{}\"", &aep2::codec::hex_encode_0x(&digest)[2..18]);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if req.method() == Method::HEAD {
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")]).into_response()
    } else {
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={CARD_MAX_AGE}"))
            .unwrap_or(HeaderValue::from_static("no-cache")),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // The body depends on the version header and, without a configured base, on Host.
    h.insert(header::VARY, HeaderValue::from_static("A2A-Version, Host"));
    resp
}

/// A JSON-RPC method of either generation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Send,
    Get,
}

fn method_of(name: &str) -> Option<(A2aVersion, Op)> {
    match name {
        "SendMessage" => Some((A2aVersion::V1_0, Op::Send)),
        "GetTask" => Some((A2aVersion::V1_0, Op::Get)),
        "message/send" => Some((A2aVersion::V0_3, Op::Send)),
        "tasks/get" => Some((A2aVersion::V0_3, Op::Get)),
        _ => None,
    }
}

/// A JSON-RPC error in the spelling of `version`: v1.0 puts the AEP2 reason code in a
/// `google.rpc.ErrorInfo` inside the `data` array, v0.3 in `data.reason`.
fn rpc_error(version: A2aVersion, id: Option<&Value>, code: i64, message: &str, reason: Option<Reason>) -> Value {
    let mut error = Object::new()
        .with("code", Value::Number(code.to_string()))
        .with("message", s(message));
    if let Some(r) = reason {
        let data = match version {
            A2aVersion::V1_0 => Value::Array(vec![Value::Object(
                Object::new()
                    .with("@type", s("type.googleapis.com/google.rpc.ErrorInfo"))
                    .with("reason", s(r.code().to_ascii_uppercase()))
                    .with("domain", s("aep2.dev"))
                    .with("metadata", Value::Object(Object::new().with("reason", s(r.code())))),
            )]),
            A2aVersion::V0_3 => Value::Object(Object::new().with("reason", s(r.code()))),
        };
        error.insert("data", data);
    }
    Value::Object(
        Object::new()
            .with("jsonrpc", s("2.0"))
            .with("id", id.cloned().unwrap_or(Value::Null))
            .with("error", Value::Object(error)),
    )
}

fn rpc_result(id: &Value, result: Value) -> Value {
    Value::Object(
        Object::new()
            .with("jsonrpc", s("2.0"))
            .with("id", id.clone())
            .with("result", result),
    )
}

/// The extension URIs a request activates: those it lists in `A2A-Extensions` (v1.0) or
/// `X-A2A-Extensions` (v0.3), comma-separated, that this agent supports.
fn activated(headers: &HeaderMap) -> bool {
    ["a2a-extensions", "x-a2a-extensions"].iter().any(|name| {
        headers
            .get_all(*name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|uri| uri.trim() == EXTENSION_URI)
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|e| {
            let e = e.trim();
            e.eq_ignore_ascii_case("application/json") || e.eq_ignore_ascii_case("application/a2a+json")
        })
}

/// What a `SendMessage` comes to.
enum Outcome {
    /// A task to store and answer; with the mandate taken when the answer is a serve.
    Fresh(Box<(Task, Option<Taken>)>),
    /// A task already stored (a paid message presented again): answered as it is.
    Stored(Box<Task>),
    /// A JSON-RPC error (code, message).
    Refused(i64, String),
}

async fn rpc(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    if req.method() != Method::POST {
        return not_served(req.method(), RPC_PATH);
    }
    if !is_json(req.headers()) {
        return http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &Error::new(Reason::ContentTypeUnsupported, "Content-Type must be application/json"),
        );
    }
    let (parts, body) = req.into_parts();
    let bytes = match read_body(&parts.headers, body, inner.max_body, inner.body_timeout).await {
        Ok(b) => b,
        Err((status, e)) => return crate::layer::closing(http_error(status, &e)),
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return http_error(
            StatusCode::BAD_REQUEST,
            &Error::new(Reason::Utf8Invalid, "the body is not UTF-8"),
        );
    };
    let header_version = requested_version(&parts.headers);
    let error_version = header_version.clone().ok().flatten().unwrap_or(A2aVersion::V0_3);
    let rpc = match json::parse(&text, &aep2_a2a::MESSAGE_LIMITS) {
        Ok(Value::Object(o)) => o,
        Ok(_) => {
            let v = rpc_error(
                error_version,
                None,
                codes::INVALID_REQUEST,
                "not a JSON-RPC request object",
                Some(Reason::JsonInvalid),
            );
            return json_response(StatusCode::OK, &v);
        }
        Err(e) => {
            let v = rpc_error(
                error_version,
                None,
                codes::PARSE_ERROR,
                &e.to_string(),
                Some(e.reason()),
            );
            return json_response(StatusCode::OK, &v);
        }
    };
    let id = rpc.get("id").cloned();
    if rpc.get("jsonrpc") != Some(&s("2.0")) || !matches!(id, Some(Value::String(_) | Value::Number(_))) {
        let v = rpc_error(
            error_version,
            id.as_ref(),
            codes::INVALID_REQUEST,
            "not a JSON-RPC 2.0 request with an id",
            Some(Reason::JsonInvalid),
        );
        return json_response(StatusCode::OK, &v);
    }
    let id = id.unwrap_or(Value::Null);
    let name = match rpc.get("method") {
        Some(Value::String(m)) => m.clone(),
        _ => {
            let v = rpc_error(
                error_version,
                Some(&id),
                codes::INVALID_REQUEST,
                "method must be a string",
                Some(Reason::JsonInvalid),
            );
            return json_response(StatusCode::OK, &v);
        }
    };
    let header_version = match header_version {
        Ok(v) => v,
        Err(v) => {
            let msg = format!("A2A-Version {v:?} is not supported: this agent speaks 1.0 and 0.3");
            let v = rpc_error(
                A2aVersion::V1_0,
                Some(&id),
                codes::VERSION_NOT_SUPPORTED,
                &msg,
                Some(Reason::UnsupportedVersion),
            );
            return json_response(StatusCode::OK, &v);
        }
    };
    let shown: String = name.chars().take(64).collect();
    let (version, op) = match method_of(&name) {
        // The method sets of the two generations are disjoint, so the method names the
        // generation; a version header, when sent, must agree with it.
        Some((v, op)) if header_version.is_none_or(|h| h == v) => (v, op),
        Some((v, _)) => {
            let asked = header_version.unwrap_or(A2aVersion::V0_3);
            let msg = format!(
                "{shown:?} is an A2A v{} method, the request asks for v{}",
                v.as_str(),
                asked.as_str()
            );
            let e = rpc_error(
                asked,
                Some(&id),
                codes::METHOD_NOT_FOUND,
                &msg,
                Some(Reason::RouteUnknown),
            );
            return json_response(StatusCode::OK, &e);
        }
        None => {
            let msg = format!(
                "method {shown:?} not found: this agent serves SendMessage, GetTask (v1.0), message/send, tasks/get (v0.3)"
            );
            let e = rpc_error(
                header_version.unwrap_or(error_version),
                Some(&id),
                codes::METHOD_NOT_FOUND,
                &msg,
                Some(Reason::RouteUnknown),
            );
            return json_response(StatusCode::OK, &e);
        }
    };
    let active = activated(&parts.headers);
    if inner.card.extension.required && !active {
        // Before any payment is read: nothing is charged for a request refused here.
        let msg = format!(
            "this agent requires the extension {EXTENSION_URI}: list it in the {} header",
            match version {
                A2aVersion::V1_0 => "A2A-Extensions",
                A2aVersion::V0_3 => "X-A2A-Extensions",
            }
        );
        let e = rpc_error(version, Some(&id), codes::EXTENSION_SUPPORT_REQUIRED, &msg, None);
        return json_response(StatusCode::OK, &e);
    }
    let params = match rpc.get("params") {
        Some(Value::Object(p)) => p.clone(),
        _ => {
            let e = rpc_error(
                version,
                Some(&id),
                codes::INVALID_PARAMS,
                "params must be an object",
                Some(Reason::A2aMessageInvalid),
            );
            return json_response(StatusCode::OK, &e);
        }
    };
    let (body, delivery) = match op {
        Op::Get => (get_task(&inner, version, &id, &params), None),
        Op::Send => match send_message(&inner, &params).await {
            Outcome::Fresh(fresh) => {
                let (task, taken) = *fresh;
                let answer = task_result(version, &id, &task);
                // A task over the byte bound on its own is not kept; it is still answered.
                let _kept = inner.tasks.put(task);
                (answer, taken)
            }
            Outcome::Stored(task) => (task_result(version, &id, &task), None),
            Outcome::Refused(code, msg) => {
                let reason = (code == codes::INVALID_PARAMS).then_some(Reason::A2aMessageInvalid);
                (rpc_error(version, Some(&id), code, &msg, reason), None)
            }
        },
    };
    let mut resp = json_response(StatusCode::OK, &body);
    if active {
        let name = match version {
            A2aVersion::V1_0 => "a2a-extensions",
            A2aVersion::V0_3 => "x-a2a-extensions",
        };
        resp.headers_mut().insert(name, HeaderValue::from_static(EXTENSION_URI));
    }
    match delivery {
        Some(taken) => {
            let (parts, body) = resp.into_parts();
            Response::from_parts(parts, inner.checkout.deliver(&taken, body))
        }
        None => resp,
    }
}

fn task_result(version: A2aVersion, id: &Value, task: &Task) -> Value {
    let t = task.to_json_for(version);
    match version {
        A2aVersion::V1_0 => rpc_result(id, Value::Object(Object::new().with("task", t))),
        A2aVersion::V0_3 => rpc_result(id, t),
    }
}

fn get_task(inner: &Inner, version: A2aVersion, id: &Value, params: &Object) -> Value {
    let task_id = match params.get("id") {
        Some(Value::String(t)) if !t.is_empty() => t,
        _ => {
            return rpc_error(
                version,
                Some(id),
                codes::INVALID_PARAMS,
                "params.id must be a non-empty string",
                Some(Reason::A2aMessageInvalid),
            );
        }
    };
    match inner.tasks.get(task_id) {
        Some(task) => {
            let t = task.to_json_for(version);
            rpc_result(id, t)
        }
        None => {
            let shown: String = task_id.chars().take(80).collect();
            rpc_error(
                version,
                Some(id),
                codes::TASK_NOT_FOUND,
                &format!("task {shown:?} not found"),
                None,
            )
        }
    }
}

fn agent_message(task_id: &str, text: String) -> Message {
    Message::new(
        Role::Agent,
        format!("msg-{}", fresh_request_id()),
        vec![Part::text(text)],
    )
    .with_task_id(task_id)
}

/// A fresh task id: 128 random bits, so that a task (and the answer a payer paid for) cannot be
/// fetched by guessing its id.
fn fresh_task_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No randomness: still unique, only guessable.
        return format!("task-{}", fresh_request_id());
    }
    format!("task-{}", &aep2::codec::hex_encode_0x(&b)[2..])
}

/// The hash under which the endpoint records a task's quote.
fn task_key(task_id: &str) -> [u8; 32] {
    aep2::hash::sha256(format!("a2a-task:{task_id}").as_bytes())
}

async fn send_message(inner: &Inner, params: &Object) -> Outcome {
    let Some(raw) = params.get("message") else {
        return Outcome::Refused(codes::INVALID_PARAMS, "params.message is required".into());
    };
    let now = (inner.clock)();
    let message = match Message::parse(&json::to_compact(raw)) {
        Ok(m) => m,
        // JSON that is not an A2A message (spec aep2.md#a2a-results): a rejected payment, so the
        // client agent reads the reason where it reads every other payment outcome.
        Err(e) if e.reason() == Reason::A2aMessageInvalid => {
            let task_id = fresh_task_id();
            let status = aep2_a2a::payment_rejected(
                agent_message(&task_id, format!("Payment rejected: {}", e.code())),
                &e,
                None,
            );
            let task = Task {
                context_id: format!("ctx-{task_id}"),
                id: task_id,
                status,
                paid: None,
            };
            return Outcome::Fresh(Box::new((task, None)));
        }
        Err(e) => return Outcome::Refused(codes::INVALID_PARAMS, e.to_string()),
    };
    let existing = message.task_id.as_deref().and_then(|t| inner.tasks.get(t));
    if let Some(task) = &existing
        && task.status.state.is_terminal()
    {
        // A2A: a finished task takes no more messages; but the message that paid it, presented
        // again (its answer was lost), gets that answer again — it is not charged twice.
        if let Some(stored) = repeat_of(inner, &message, task) {
            return Outcome::Stored(Box::new(stored));
        }
        return Outcome::Refused(
            codes::UNSUPPORTED_OPERATION,
            format!(
                "task {:?} is {}: it takes no further messages",
                task.id,
                task.status.state.v0_3()
            ),
        );
    }
    let task_id = message.task_id.clone().unwrap_or_else(fresh_task_id);
    let context_id = message
        .context_id
        .clone()
        .or_else(|| existing.as_ref().map(|t| t.context_id.clone()))
        .unwrap_or_else(|| format!("ctx-{task_id}"));
    let task = |status: TaskStatus, paid: Option<([u8; 32], [u8; 32])>| Task {
        id: task_id.clone(),
        context_id: context_id.clone(),
        status,
        paid,
    };
    match payment(inner, &message, &task_id, now).await {
        Paid::Served(served) => {
            let (status, taken, v, request) = *served;
            Outcome::Fresh(Box::new((task(status, Some((v.digest.id, request))), Some(taken))))
        }
        Paid::Unserved(status) => Outcome::Fresh(Box::new((task(status, None), None))),
        Paid::Again(stored) => Outcome::Stored(Box::new(stored)),
    }
}

/// The stored task this message paid, if `message` is the paying message presented again: the
/// same mandate for the same request.
fn repeat_of(inner: &Inner, message: &Message, task: &Task) -> Option<Task> {
    let (mandate, request) = task.paid?;
    let envelope = aep2_a2a::extract_mandate(message).ok()?;
    let v = inner.verifier.check_value(&envelope, None).into_result().ok()?;
    (v.digest.id == mandate && message.request_hash().ok()? == request).then(|| task.clone())
}

enum Paid {
    /// Paid and served: the status, the mandate taken, its verification and request hash.
    Served(Box<(TaskStatus, Taken, Verified, [u8; 32])>),
    /// Payment required, or rejected.
    Unserved(TaskStatus),
    /// The paying message again: its stored task.
    Again(Task),
}

/// The task status answering an A2A message (spec `aep2.md#a2a-intent`, `aep2.md#a2a-order`).
async fn payment(inner: &Inner, message: &Message, task_id: &str, now: u64) -> Paid {
    let policy = &inner.policy;
    let reject = |e: &Error, retry: Option<&[PaymentRequirements]>| {
        Paid::Unserved(aep2_a2a::payment_rejected(
            agent_message(task_id, format!("Payment rejected: {}", e.code())),
            e,
            retry,
        ))
    };
    // The payment record's request: the message's own hash, the same for a retried message.
    let request = match message.request_hash() {
        Ok(h) => h,
        Err(e) => return reject(&e, None),
    };
    let paid = PaidRequest::A2a {
        message_id: message.message_id.clone(),
    };
    let described = RequestDescriptor::new(paid, request);
    // A retried paid message whose answer was delivered: the stored task, if still held.
    let again = |v: &Verified| {
        inner
            .tasks
            .paid_by(&v.digest.id)
            .filter(|t| t.paid.is_some_and(|(_, r)| r == request))
    };
    let quoted = message
        .task_id
        .as_deref()
        .and_then(|t| inner.quotes.latest_for(&task_key(t)));
    if let Some(entry) = quoted {
        // Order Mode reply: judged against the quote recorded for this task, never a copy in the reply.
        let verified = aep2_a2a::extract_mandate(message)
            .and_then(|envelope| inner.verifier.check_value(&envelope, None).into_result());
        let requirements = [PaymentRequirements::for_quote(&entry.quote, now)];
        // While the quote is open the task stays payable: back to input-required with it.
        let retry = |key: &QuoteRef| {
            (entry.quote.expiry > now && inner.quotes.paid_by(key).is_none() && inner.quotes.claimed_by(key).is_none())
                .then_some(&requirements[..])
        };
        let v = match verified {
            Ok(v) => v,
            Err(e) => return reject(&e, retry(&entry.quote.mandate_ref())),
        };
        let key = quote_key(v.mandate());
        let mut verdict = entry.quote.check(&v, now, order_options(policy));
        if verdict.is_ok() && (key != entry.quote.mandate_ref() || !inner.quotes.claim(&key, v.digest.id)) {
            verdict = Err(Error::new(
                Reason::RequestMismatch,
                "the task's quote is paid, or being paid, by another mandate",
            ));
        }
        let claimed = verdict.is_ok();
        let taken = inner.checkout.take(&v, &described, verdict, now).await;
        if claimed {
            inner.quotes.conclude(&key, v.digest.id, &taken);
        }
        return match taken {
            Ok(taken) => served(inner, message, task_id, v, taken, request).await,
            Err(e) => match again(&v) {
                Some(task) if e.reason() == Reason::MandateReplayed => Paid::Again(task),
                _ => reject(&e, retry(&entry.quote.mandate_ref())),
            },
        };
    }
    match aep2_a2a::extract_mandate(message) {
        Err(e) if e.reason() == Reason::PaymentMissing => {
            // Order Mode: quote first, remembered under the task.
            let quote = match issue_quote(&inner.verifier, policy, &inner.terms, now) {
                Ok(mut q) => {
                    q.request_id = task_id.chars().take(64).collect();
                    match q.validated() {
                        Ok(q) => q,
                        Err(e) => return reject(&e, None),
                    }
                }
                Err(e) => return reject(&e, None),
            };
            let requirements = PaymentRequirements::for_quote(&quote, now);
            inner.quotes.insert(
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
            Paid::Unserved(aep2_a2a::payment_required(m, &[requirements]))
        }
        Err(e) => reject(&e, None),
        Ok(envelope) => {
            // Intent Mode, bound to this message: core verification, then the policy at `now`.
            let v = match inner.verifier.check_value(&envelope, None).into_result() {
                Ok(v) => v,
                Err(e) => return reject(&e, None),
            };
            let verdict = policy.clone().with_request_hash(request).check(&v, now);
            match inner.checkout.take(&v, &described, verdict, now).await {
                Ok(taken) => served(inner, message, task_id, v, taken, request).await,
                Err(e) => match again(&v) {
                    Some(task) if e.reason() == Reason::MandateReplayed => Paid::Again(task),
                    _ => reject(&e, None),
                },
            }
        }
    }
}

async fn served(inner: &Inner, message: &Message, task_id: &str, v: Verified, taken: Taken, request: [u8; 32]) -> Paid {
    let text = (inner.serve)(message);
    match inner.checkout.served(&taken, (inner.clock)()).await {
        Ok(()) => {
            let status = aep2_a2a::payment_accepted(
                agent_message(task_id, text),
                &v,
                Some(&taken.receipt),
                TaskState::Completed,
            );
            Paid::Served(Box::new((status, taken, v, request)))
        }
        Err(e) => Paid::Unserved(aep2_a2a::payment_rejected(
            agent_message(task_id, format!("Payment rejected: {}", e.code())),
            &e,
            None,
        )),
    }
}
