//! The HTTP service (spec `aep2.md#sp-enqueue`): routes, error bodies, and the limits that keep
//! one client from holding the service (body size, content type, header and body timeouts,
//! connection count).

use crate::config::{Config, HttpLimits};
use crate::ledger::{Ledger, LedgerOptions};
use crate::{Processor, RequestDescriptor, account_display, unix_now};
use aep2::codec::{hex_decode_0x, hex_encode_0x};
use aep2::{AccountId, Error, Reason};
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value as J, json};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a graceful shutdown waits for open connections before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// The acceptance rule and the ledger.
    pub processor: Processor,
    /// The HTTP limits.
    pub limits: HttpLimits,
    /// The operator's bearer token for `GET /v1/audit`; `None`: the route is not served.
    pub audit_token: Option<String>,
}

/// The HTTP status for a rejection (spec `aep2.md#sp-enqueue`).
pub fn status_for(reason: Reason) -> StatusCode {
    match reason {
        Reason::HeaderTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Reason::ContentTypeUnsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Reason::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        Reason::RouteUnknown | Reason::MandateUnknown | Reason::LaneUnknown => StatusCode::NOT_FOUND,
        Reason::Unauthorized => StatusCode::UNAUTHORIZED,
        Reason::InsufficientFunds
        | Reason::LaneTotalExceeded
        | Reason::LanePaymentsExhausted
        | Reason::LanePeriodExceeded => StatusCode::PAYMENT_REQUIRED,
        Reason::LaneRevoked | Reason::LaneRevokerInvalid => StatusCode::FORBIDDEN,
        Reason::NonceReused | Reason::MandateReplayed => StatusCode::CONFLICT,
        Reason::ReplayStoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The error body `{"success": false, "error": <code>, "stage": <stage>, "message": <detail>}`.
pub fn error_response(e: &Error) -> Response {
    error_with_status(status_for(e.reason()), e)
}

fn error_with_status(status: StatusCode, e: &Error) -> Response {
    json_response(status, error_json(e))
}

fn error_json(e: &Error) -> String {
    json!({
        "success": false,
        "error": e.code(),
        "stage": e.stage().as_str(),
        "message": if e.detail().is_empty() { e.code() } else { e.detail() },
    })
    .to_string()
}

/// The SP's [`RejectionBody`]: the error body of [`error_response`], for the rejections the
/// server loop makes itself ([`serve_router`]).
pub fn rejection_body(_status: StatusCode, e: &Error) -> Vec<u8> {
    error_json(e).into_bytes()
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The router: `POST /enqueue`, `GET /health`, `GET /v1/mandates/{id}`, `GET /v1/accounts`,
/// `POST /v1/lanes/revoke`, `GET /v1/lanes/{id}`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/enqueue", any(enqueue))
        .route("/v1/lanes/revoke", any(revoke_lane))
        .route("/v1/lanes/{id}", any(lane))
        .route("/health", any(health))
        .route("/v1/mandates/{id}", any(mandate))
        .route("/v1/accounts", any(accounts))
        .route("/v1/audit", any(audit))
        .fallback(unknown_route)
        .with_state(state)
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> Response {
    route_unknown(StatusCode::NOT_FOUND, &method, uri.path())
}

fn route_unknown(status: StatusCode, method: &Method, path: &str) -> Response {
    let shown: String = path.chars().take(200).collect();
    error_with_status(
        status,
        &Error::new(Reason::RouteUnknown, format!("no operation {method} {shown}")),
    )
}

/// `None` if `method` is the operation's, else the `405` answer.
fn only(method: &Method, allowed: Method, path: &str) -> Option<Response> {
    (*method != allowed).then(|| route_unknown(StatusCode::METHOD_NOT_ALLOWED, method, path))
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(Ok(ct)) = headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

async fn enqueue(State(st): State<Arc<AppState>>, req: Request) -> Response {
    if let Some(r) = only(req.method(), Method::POST, "/enqueue") {
        return r;
    }
    // The submission id is read after the content type and the declared size, as before.
    let head = |h: &HeaderMap| Ok((submission_of(h)?, described_of(h)?));
    let ((submission, described), body) = match read_body(&st, req, head).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = unix_now();
    let worker = st.clone();
    // SQLite commits fsync: run them off the async worker threads.
    let outcome = tokio::task::spawn_blocking(move || {
        worker
            .processor
            .enqueue_described(&body, submission, described.as_ref(), now)
    })
    .await;
    match outcome {
        Ok(Ok(done)) => {
            let body = enqueue_answer(&done);
            json_response(StatusCode::OK, body)
        }
        Ok(Err(e)) => error_response(&e),
        Err(join) => error_response(&Error::new(
            Reason::ReplayStoreUnavailable,
            format!("enqueue worker failed: {join}"),
        )),
    }
}

/// `POST /v1/lanes/revoke` (spec `aep2.md#lane-revocation`): the limits of `/enqueue`, then
/// [`Processor::revoke`].
async fn revoke_lane(State(st): State<Arc<AppState>>, req: Request) -> Response {
    if let Some(r) = only(req.method(), Method::POST, "/v1/lanes/revoke") {
        return r;
    }
    let ((), body) = match read_body(&st, req, |_| Ok(())).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = unix_now();
    let worker = st.clone();
    match tokio::task::spawn_blocking(move || worker.processor.revoke(&body, now)).await {
        Ok(Ok((id, at))) => json_response(
            StatusCode::OK,
            json!({"success": true, "lane": hex_encode_0x(&id), "revoked": true, "revokedAt": at}).to_string(),
        ),
        Ok(Err(e)) => error_response(&e),
        Err(join) => error_response(&Error::new(Reason::ReplayStoreUnavailable, join.to_string())),
    }
}

/// `GET /v1/lanes/{laneId}`: a stored lane's counters (spec `aep2.md#lane-settlement`).
async fn lane(State(st): State<Arc<AppState>>, method: Method, id: Result<Path<String>, PathRejection>) -> Response {
    if let Some(r) = only(&method, Method::GET, "/v1/lanes/{laneId}") {
        return r;
    }
    let id = id.map(|Path(id)| id).unwrap_or_default();
    let Some(key) = hex_decode_0x(&id).and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
        return error_response(&Error::new(
            Reason::FieldType,
            "the lane id must be 0x followed by 64 hex digits",
        ));
    };
    let now = unix_now();
    let worker = st.clone();
    let found = match tokio::task::spawn_blocking(move || worker.processor.ledger().lane(&key, now)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return error_response(&e),
        Err(join) => return error_response(&Error::new(Reason::ReplayStoreUnavailable, join.to_string())),
    };
    let Some(l) = found else {
        return error_response(&Error::new(Reason::LaneUnknown, format!("no lane {id}")));
    };
    json_response(
        StatusCode::OK,
        json!({ "success": true, "lane": lane_json(&l) }).to_string(),
    )
}

/// The `lane` object of `GET /v1/lanes/{laneId}`.
pub fn lane_json(l: &crate::LaneState) -> J {
    let k = &l.link;
    let revocation: J = l
        .revocation
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(J::Null);
    json!({
        "id": hex_encode_0x(&k.id),
        "parent": hex_encode_0x(&k.parent),
        "domain": k.domain,
        "owner": k.owner,
        "agent": k.agent,
        "token": k.token,
        "total": k.total.to_string(),
        "spent": l.spent.to_string(),
        "remaining": l.remaining.to_string(),
        "maxPayments": k.max_payments,
        "payments": l.payments,
        "period": k.period,
        "allowance": k.allowance.to_string(),
        "validFrom": k.valid_from,
        "windowIndex": l.window_index,
        "windowSpent": l.window_spent.to_string(),
        "revoked": l.chain_revoked_at.is_some(),
        "revokedAt": l.chain_revoked_at,
        "revocation": revocation,
    })
}

/// Reads a JSON request body under the envelope limits of `/enqueue` (content type, declared
/// size, then `head`'s own header check, then the size and timeout of the body); `Err` is the
/// answer to send.
async fn read_body<T>(
    st: &AppState,
    req: Request,
    head: impl FnOnce(&HeaderMap) -> Result<T, Error>,
) -> Result<(T, axum::body::Bytes), Response> {
    let limit = st.limits.max_body_bytes;
    if !is_json(req.headers()) {
        return Err(error_response(&Error::new(
            Reason::ContentTypeUnsupported,
            "Content-Type must be application/json",
        )));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(error_response(&Error::new(
            Reason::HeaderTooLarge,
            format!("body of {} bytes, limit {limit}", declared.unwrap_or(0)),
        )));
    }
    let t = head(req.headers()).map_err(|e| error_response(&e))?;
    let read = Limited::new(req.into_body(), limit).collect();
    match tokio::time::timeout(st.limits.body_timeout, read).await {
        Err(_) => Err(error_response(&Error::new(
            Reason::RequestTimeout,
            format!("body not received within {} ms", st.limits.body_timeout.as_millis()),
        ))),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(error_response(&Error::new(
            Reason::HeaderTooLarge,
            format!("body over {limit} bytes"),
        ))),
        Ok(Err(e)) => Err(error_response(&Error::new(
            Reason::JsonInvalid,
            format!("reading the body: {e}"),
        ))),
        Ok(Ok(collected)) => Ok((t, collected.to_bytes())),
    }
}

/// The `200` body of `POST /enqueue` (`sp-enqueue-response.schema.json`): the stored receipt
/// text verbatim (a re-submission gets the same bytes), the mandate id, its status, whether this
/// request stored it, and the submission id it is held for.
pub fn enqueue_answer(done: &crate::Enqueued) -> String {
    let m = &done.mandate;
    let submission = m.submission_id.map_or_else(
        || "null".to_owned(),
        |id| format!("\"{}\"", crate::format_submission_id(&id)),
    );
    format!(
        "{{\"success\":true,\"receipt\":{},\"mandateId\":\"{}\",\"status\":\"{}\",\"fresh\":{},\"submissionId\":{submission}}}",
        m.receipt,
        hex_encode_0x(&m.mandate_id),
        m.status.as_str(),
        done.fresh,
    )
}

/// The payee's request descriptor, if it sent one (at most once, well formed: else `field_type`).
fn described_of(headers: &HeaderMap) -> Result<Option<RequestDescriptor>, Error> {
    let mut values = headers.get_all(crate::audit::REQUEST_HEADER).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::new(Reason::FieldType, "aep2-request sent more than once"));
    }
    let text = first
        .to_str()
        .map_err(|_| Error::new(Reason::FieldType, "aep2-request is not visible ASCII"))?;
    RequestDescriptor::parse(text).map(Some)
}

/// `GET /v1/audit` (spec `aep2.md#sp-audit`): one page of the audit trail.
async fn audit(
    State(st): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // The trail names every payer, agent, payee and purpose: the operator's only.
    let Some(token) = st.audit_token.as_deref() else {
        return route_unknown(StatusCode::NOT_FOUND, &method, "/v1/audit");
    };
    if let Some(r) = only(&method, Method::GET, "/v1/audit") {
        return r;
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
        return error_response(&Error::new(
            Reason::Unauthorized,
            "GET /v1/audit needs the operator's Authorization: Bearer token",
        ));
    }
    let (query, format) = match crate::audit::parse_audit_query(query.as_deref()) {
        Ok(q) => q,
        Err(e) => return error_response(&e),
    };
    let worker = st.clone();
    let page = tokio::task::spawn_blocking(move || worker.processor.ledger().audit_page(&query)).await;
    let page = match page {
        Ok(Ok(page)) => page,
        Ok(Err(e)) => return error_response(&e),
        Err(join) => return error_response(&Error::new(Reason::ReplayStoreUnavailable, join.to_string())),
    };
    let (content_type, body, next) = crate::audit::render_page(&page, query.limit, format);
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if format != crate::audit::PageFormat::Json
        && let Some(v) = next.and_then(|n| header::HeaderValue::from_str(&n).ok())
    {
        resp.headers_mut().insert(crate::audit::NEXT_CURSOR_HEADER, v);
    }
    resp
}

/// Compares without an early exit, so the time taken does not tell how much of a token matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The payee's submission id, if it sent one (at most once, well formed: else `field_type`).
fn submission_of(headers: &HeaderMap) -> Result<Option<[u8; 16]>, Error> {
    let mut values = headers.get_all(crate::SUBMISSION_ID_HEADER).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::new(
            Reason::FieldType,
            format!("{} given more than once", crate::SUBMISSION_ID_HEADER),
        ));
    }
    crate::parse_submission_id(first.to_str().unwrap_or("")).map(Some)
}

async fn health(State(st): State<Arc<AppState>>, method: Method) -> Response {
    if let Some(r) = only(&method, Method::GET, "/health") {
        return r;
    }
    let worker = st.clone();
    let counts = match tokio::task::spawn_blocking(move || worker.processor.ledger().counts()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return error_response(&e),
        Err(join) => return error_response(&Error::new(Reason::ReplayStoreUnavailable, join.to_string())),
    };
    let ids: Vec<String> = st.processor.sp_ids().iter().map(ToString::to_string).collect();
    let body = json!({
        "status": "ok",
        "sp": ids.first(),
        "sps": ids,
        "settlementWindow": st.processor.settlement_window(),
        "queueLength": counts.accepted,
        "settled": counts.settled,
        "failed": counts.failed,
    });
    json_response(StatusCode::OK, body.to_string())
}

async fn mandate(State(st): State<Arc<AppState>>, method: Method, id: Result<Path<String>, PathRejection>) -> Response {
    if let Some(r) = only(&method, Method::GET, "/v1/mandates/{id}") {
        return r;
    }
    // An id that does not even decode as a path segment (`%FF`) gets the JSON error body too.
    let id = id.map(|Path(id)| id).unwrap_or_default();
    let Some(key) = hex_decode_0x(&id).and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
        return error_response(&Error::new(
            Reason::FieldType,
            "the mandate id must be 0x followed by 64 hex digits",
        ));
    };
    let worker = st.clone();
    let found = match tokio::task::spawn_blocking(move || worker.processor.ledger().mandate(&key)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return error_response(&e),
        Err(join) => return error_response(&Error::new(Reason::ReplayStoreUnavailable, join.to_string())),
    };
    let Some(m) = found else {
        return error_response(&Error::new(Reason::MandateUnknown, format!("no mandate {id}")));
    };
    let receipt: J = serde_json::from_str(&m.receipt).unwrap_or(J::Null);
    let body = json!({
        "success": true,
        "mandate": {
            "mandateId": hex_encode_0x(&m.mandate_id),
            "status": m.status.as_str(),
            "profile": m.profile,
            "domain": m.account.domain,
            "payer": m.account.payer,
            "token": m.account.token,
            "payee": m.payee,
            "amount": m.amount.to_string(),
            "nonce": m.nonce,
            "deadline": m.deadline,
            "ref": m.reference,
            "enqueueDeadline": m.enqueue_deadline,
            "acceptedAt": m.accepted_at,
            "receipt": receipt,
        }
    });
    json_response(StatusCode::OK, body.to_string())
}

async fn accounts(State(st): State<Arc<AppState>>, method: Method, RawQuery(query): RawQuery) -> Response {
    if let Some(r) = only(&method, Method::GET, "/v1/accounts") {
        return r;
    }
    let (mut payer, mut token) = (None, None);
    for pair in query.as_deref().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "payer" => payer = Some(v.to_owned()),
            "token" => token = Some(v.to_owned()),
            _ => {
                return error_response(&Error::new(
                    Reason::UnknownField,
                    "query parameters are payer and token",
                ));
            }
        }
    }
    let Some(payer) = payer else {
        return error_response(&Error::new(Reason::MissingField, "query parameter payer is required"));
    };
    let normal = |text: &str, what: &str| {
        AccountId::parse(text)
            .map(|a| account_display(&a))
            .map_err(|e| e.at(what))
    };
    let payer = match normal(&payer, "payer") {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let token = match token.as_deref().map(|t| normal(t, "token")).transpose() {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    let worker = st.clone();
    let rows = tokio::task::spawn_blocking(move || worker.processor.ledger().accounts(&payer, token.as_deref())).await;
    let rows = match rows {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return error_response(&e),
        Err(join) => return error_response(&Error::new(Reason::ReplayStoreUnavailable, join.to_string())),
    };
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
    json_response(StatusCode::OK, json!({ "success": true, "accounts": list }).to_string())
}

/// A bound, not yet serving, settlement processor.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    state: Arc<AppState>,
}

/// Opens the ledger, applies the configured deposits, and binds the listener.
///
/// Errors are human-readable strings (configuration, database, bind failures).
pub async fn bind(config: &Config) -> Result<Bound, String> {
    let location = config.database.clone();
    let options = LedgerOptions {
        pool_size: config.database_pool_size,
        ..LedgerOptions::default()
    };
    let deposits = config.deposits.clone();
    let ledger = tokio::task::spawn_blocking(move || -> Result<Ledger, String> {
        let ledger = Ledger::open(&location, &options).map_err(|e| e.to_string())?;
        let now = unix_now();
        for d in &deposits {
            if ledger.deposit(d, now).map_err(|e| e.to_string())? == crate::DepositOutcome::Conflict {
                return Err(format!("deposit {:?} conflicts with a stored deposit of that id", d.id));
            }
        }
        Ok(ledger)
    })
    .await
    .map_err(|e| e.to_string())??;
    let processor = Processor::new(config, ledger)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", config.listen))?;
    Ok(Bound {
        listener,
        state: Arc::new(AppState {
            processor,
            limits: config.http,
            audit_token: config.audit_token.clone(),
        }),
    })
}

impl Bound {
    /// The bound address (with the real port when the configuration asked for port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, String> {
        self.listener.local_addr().map_err(|e| e.to_string())
    }

    /// The shared state (for reporting the SP identities).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting and waits up to 10 s for open
    /// connections to finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        let app = router(self.state.clone());
        serve_router(
            self.listener,
            app,
            self.state.limits,
            SHUTDOWN_GRACE,
            rejection_body,
            shutdown,
        )
        .await
    }
}

/// The largest request head the server loop reads ([`serve_router`]): the request line, the
/// header fields and the empty line that ends them, 64 KiB. A longer head is answered
/// `431 header_too_large`.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The most header fields a request may have ([`serve_router`]); more is answered
/// `431 header_too_large`. This is hyper's default, which the loop keeps rather than sets:
/// setting it moves hyper's per-request header array from the stack to the heap. The HTTP tests
/// pin it, so a hyper release that changes it fails them.
pub const MAX_HEADER_FIELDS: usize = 100;

/// Writes the body of a rejection the server loop makes itself, before the request reaches the
/// app ([`serve_router`]), for the answer's status and reason code; it is sent as
/// `content-type: application/json`. The SP's is [`rejection_body`]; the payee's is its MVP
/// error body.
pub type RejectionBody = fn(StatusCode, &Error) -> Vec<u8>;

/// Serves `app` on `listener` until `shutdown` completes, hardened the same way for every AEP2
/// service:
///
/// - at most `limits.max_connections` connections at once (past that, new ones wait in the
///   kernel's accept queue instead of each costing a task and buffers);
/// - a request head (request line, header fields, the empty line) of at most
///   [`MAX_HEAD_BYTES`] (65 536 bytes) and [`MAX_HEADER_FIELDS`] (100) header fields, else
///   `431 header_too_large`;
/// - a request that is not well-formed HTTP/1.1, `400 http_request_invalid`: an invalid byte
///   (NUL, another control byte) in the request line or a header field, a malformed header line,
///   a missing or unsupported HTTP version (HTTP/0.9's `GET /`, `HTTP/1.2`, `HTTP/2.0`), a
///   `Content-Length` that is not one decimal number below 2^64 (or two different ones), a
///   `Transfer-Encoding` that does not end in `chunked` (or any, in HTTP/1.0);
/// - the head read within `limits.header_timeout`: a client that has not sent it by then is
///   disconnected without an answer, as is a connection that opens with the HTTP/2 preface
///   (an HTTP/2 client could not read an HTTP/1.1 answer);
/// - on shutdown, no new connections and up to `grace` for open ones to finish.
///
/// hyper refuses those requests itself, before `app` sees them, with a response head and no body.
/// The loop gives each such answer hyper's status, `content-type: application/json`,
/// `connection: close` and the body `rejection` writes for the reason code. It recognises them
/// by the exchanges on the connection, not by their bytes alone, so the responses of `app` pass
/// unchanged, byte for byte (the connection adapter's documentation in the source says how,
/// and why it does not parse request heads itself).
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    grace: Duration,
    rejection: RejectionBody,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = slots.clone().acquire_owned() => p.map_err(|e| e.to_string())?,
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                // Out of file descriptors and similar: back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let exchanges = Arc::new(own_answers::Exchanges::default());
        let counted = exchanges.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            // Counted when hyper hands the request over, before any byte of its response exists.
            counted.dispatch();
            let counted = counted.clone();
            async move {
                let response = tower::ServiceExt::oneshot(app, req.map(Body::new)).await?;
                Ok::<_, Infallible>(response.map(|body| own_answers::Tracked::new(body, counted)))
            }
        });
        let io = own_answers::Rewriter::new(stream, exchanges, rejection);
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            // `max_buf_size` alone bounds only a head still incomplete when the buffer fills;
            // `max_header_size` bounds every head, however it arrives.
            .max_buf_size(MAX_HEAD_BYTES)
            .max_header_size(MAX_HEAD_BYTES)
            // One flat buffer per write, so a head reaches the adapter in one `poll_write`.
            .writev(false)
            .serve_connection(TokioIo::new(io), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {}
    }
    Ok(())
}

/// The contracts an embedded chain ([`crate::config::ChainSource::Embedded`]) was given at
/// start-up, for payees and payers to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddedDeployment {
    /// The chain id.
    pub chain_id: u64,
    /// The debit wallet (the domain's `verifyingContract`).
    pub wallet: aep2::EvmAddress,
    /// The test token the funded payers deposited.
    pub token: aep2::EvmAddress,
}

/// Runs the service on a new multi-threaded runtime until SIGTERM or Ctrl-C. `on_bound` is called
/// once the listener is bound, with its address, the SP identities and, on an embedded chain,
/// its contracts (the CLI prints them).
pub fn run_blocking(
    config: &Config,
    on_bound: impl FnOnce(SocketAddr, &[String], Option<&EmbeddedDeployment>),
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let Some(chain_config) = &config.chain else {
            let bound = bind(config).await?;
            let ids = sp_ids(&bound);
            on_bound(bound.local_addr()?, &ids, None);
            return bound.serve(shutdown_signal()).await;
        };
        let key = aep2_evm::TxKey::from_bytes(&chain_config.tx_key).ok_or("chain.txKey is not a secp256k1 key")?;
        match &chain_config.source {
            crate::config::ChainSource::Rpc { url, wallet } => {
                let chain = aep2_evm::Rpc::connect(url)
                    .await
                    .map_err(|e| format!("chain.rpcUrl: {e}"))?;
                let domain = aep2::Domain::Eip712(aep2::Eip712Domain {
                    chain_id: aep2_evm::Chain::chain_id(&chain),
                    verifying_contract: *wallet,
                });
                if !config.domains.contains(&domain) {
                    return Err(format!(
                        "chain: the wallet {wallet} on chain {} is not one of the configured domains",
                        aep2_evm::Chain::chain_id(&chain)
                    ));
                }
                let bound = bind(config).await?;
                let ids = sp_ids(&bound);
                on_bound(bound.local_addr()?, &ids, None);
                serve_and_settle(bound, &chain, *wallet, key, chain_config).await
            }
            crate::config::ChainSource::Embedded(spec) => {
                let chain = aep2_evm::Embedded::new(spec.chain_id, crate::unix_now()).following_wall_clock();
                // Withdrawals wait out every promise a receipt made before the request.
                let delay = (3 * 3600).max(
                    config
                        .settlement_window
                        .saturating_add(2 * chain_config.settlement.margin),
                );
                let deployment = deploy_embedded(&chain, &key, delay, &spec.fund)
                    .await
                    .map_err(|e| format!("chain.embedded: {e}"))?;
                let domain = aep2::Domain::Eip712(aep2::Eip712Domain {
                    chain_id: spec.chain_id,
                    verifying_contract: deployment.wallet,
                });
                let mut config = config.clone();
                if !config.domains.contains(&domain) {
                    config.domains.push(domain.clone());
                }
                let bound = bind(&config).await?;
                // The chain of an earlier run is gone: a ledger that settled on it would no
                // longer match any chain.
                let ledger = bound.state.processor.ledger();
                let key_of = crate::domain_key(&domain);
                if ledger.chain_cursor(&key_of).map_err(|e| e.to_string())?.is_some()
                    || !ledger
                        .batches(Some(&key_of), None)
                        .map_err(|e| e.to_string())?
                        .is_empty()
                {
                    return Err(format!(
                        "chain.embedded: the ledger {} already settled on an embedded chain, which lived only in \
                         that process; use a new database",
                        config.database.display()
                    ));
                }
                let ids = sp_ids(&bound);
                on_bound(bound.local_addr()?, &ids, Some(&deployment));
                serve_and_settle(bound, &chain, deployment.wallet, key, chain_config).await
            }
        }
    })
}

fn sp_ids(bound: &Bound) -> Vec<String> {
    bound.state.processor.sp_ids().iter().map(ToString::to_string).collect()
}

/// Deploys the debit wallet and a test token on an embedded chain, authorises the SP's
/// transaction key and funds each payer: minted, approved and deposited from its own key.
async fn deploy_embedded(
    chain: &aep2_evm::Embedded,
    sp: &aep2_evm::TxKey,
    withdrawal_delay: u64,
    fund: &[([u8; 32], aep2::U256)],
) -> Result<EmbeddedDeployment, String> {
    use aep2_evm::contract;
    let e = |err: aep2_evm::ChainError| err.to_string();
    let deployer = aep2_evm::TxKey::from_label("aep2 serve sp: embedded chain deployer");
    let wallet = contract::deploy_wallet(chain, &deployer, withdrawal_delay)
        .await
        .map_err(e)?;
    let token = contract::deploy_token(chain, &deployer, "USDC").await.map_err(e)?;
    let w = contract::Wallet { address: wallet };
    w.set_settlement_processor(chain, &deployer, sp.address(), true)
        .await
        .map_err(e)?;
    for (i, (secret, amount)) in fund.iter().enumerate() {
        let payer =
            aep2_evm::TxKey::from_bytes(secret).ok_or_else(|| format!("fund[{i}].key is not a secp256k1 key"))?;
        let amount = alloy::primitives::U256::from_be_bytes(amount.0);
        contract::mint(chain, &deployer, token, payer.address(), amount)
            .await
            .map_err(e)?;
        w.deposit(chain, &payer, token, amount).await.map_err(e)?;
    }
    Ok(EmbeddedDeployment {
        chain_id: aep2_evm::Chain::chain_id(chain),
        wallet: aep2::EvmAddress(wallet.0.0),
        token: aep2::EvmAddress(token.0.0),
    })
}

/// Serves until SIGTERM or Ctrl-C with the settlement worker beside the service; either ending
/// stops the other.
async fn serve_and_settle<C: aep2_evm::Chain>(
    bound: Bound,
    chain: &C,
    wallet: aep2::EvmAddress,
    key: aep2_evm::TxKey,
    chain_config: &crate::config::ChainConfig,
) -> Result<(), String> {
    let state = bound.state.clone();
    let settler = crate::settlement::Settler::new(
        chain,
        state.processor.ledger(),
        alloy::primitives::Address::from(wallet.0),
        key,
        chain_config.settlement.clone(),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop = Arc::new(stop);
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = on_signal.send(true);
    });
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let serve = async {
        let served = bound.serve(until(stopped.clone())).await;
        // However the service ended, the worker stops with it.
        let _ = stop.send(true);
        served
    };
    let (served, ()) = tokio::join!(serve, settler.run(until(stopped.clone())));
    served
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Gives hyper's own rejections a JSON body: the connection adapter of [`serve_router`].
///
/// hyper answers a request head it cannot parse by writing a response head of its own, `400`,
/// `414` or `431` with `content-length: 0`, and closing the connection; nothing reports the
/// error before the head is written (the connection's error comes after the flush). [`Rewriter`]
/// sits between hyper and the socket and replaces that head with one of the same status,
/// `content-type: application/json`, the right `content-length`, `connection: close`, and the
/// body of the loop's [`RejectionBody`].
///
/// **Which writes are hyper's own.** Not judged by the bytes alone, since a response body may
/// contain anything, including text that looks like a response head at the start of a write. The
/// service wrapper counts the requests dispatched to the app ([`Exchanges::dispatch`]) and the
/// response bodies hyper is done with ([`Tracked`], counted when hyper drops it, which it does
/// once it has encoded the whole response, before it flushes). hyper flushes the IO only when its
/// write buffer is empty. So if at a flush every dispatched response is finished, and no request
/// is dispatched between that flush and the next write, that write starts a message hyper makes
/// without the app: an automatic error head (hyper's `on_error`), nothing else. Only such a write
/// is looked at, and it is replaced only if it is one complete head, ending the write, with a
/// status line `HTTP/1.x 400|413|414|431|501|505`, `content-length: 0` and no
/// `transfer-encoding` or `content-type`. A response of the app is never inspected, whatever its
/// status; the cost on the hot path is one comparison per write and two counter updates per
/// request.
///
/// **One write.** hyper is built with `writev(false)` and [`Rewriter`] reports no vectored
/// writes, so hyper writes each buffered message (its head, and a small body with it) with
/// `poll_write` from one flat buffer: the head reaches the adapter whole, in the write that
/// starts it. The replaced write is reported consumed in full; the replacement is then written
/// before anything else, in `poll_write`, `poll_flush` and `poll_shutdown`, however little the
/// socket takes at a time.
///
/// **Why not parse request heads before hyper does.** That is a second HTTP/1.1 parser that must
/// agree with hyper's on every byte: where a head ends, which bytes are invalid, how each body
/// is framed so that the next head on a keep-alive connection is found, what counts toward the
/// size limit. Each disagreement either lets hyper's bare answer through or refuses a request
/// hyper would serve, and the bytes would be parsed twice on the hot path. Rewriting hyper's own
/// answer keeps one parser and one decision (hyper's status), and depends only on how hyper
/// writes: that an automatic answer is a bodiless head written when no response is unfinished.
/// The HTTP tests check each case end to end, so a hyper release that writes otherwise fails
/// them rather than silently sending bare answers.
mod own_answers {
    use super::{Body, Error, Reason, RejectionBody, StatusCode};
    use axum::body::Bytes;
    use hyper::body::{Body as HttpBody, Frame, SizeHint};
    use std::io;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::task::{Context, Poll, ready};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// The exchanges on one connection: requests handed to the app, and responses finished.
    #[derive(Debug, Default)]
    pub(super) struct Exchanges {
        dispatched: AtomicU64,
        finished: AtomicU64,
    }

    impl Exchanges {
        /// A request was handed to the app.
        pub(super) fn dispatch(&self) {
            self.dispatched.fetch_add(1, Ordering::Relaxed);
        }

        fn dispatched(&self) -> u64 {
            self.dispatched.load(Ordering::Relaxed)
        }

        /// `Some(n)` if all `n` requests dispatched so far have finished responses.
        fn idle(&self) -> Option<u64> {
            let n = self.dispatched();
            (self.finished.load(Ordering::Relaxed) == n).then_some(n)
        }
    }

    /// A response body of the app that counts itself finished when hyper drops it.
    pub(super) struct Tracked {
        body: Body,
        exchanges: Arc<Exchanges>,
    }

    impl Tracked {
        pub(super) fn new(body: Body, exchanges: Arc<Exchanges>) -> Tracked {
            Tracked { body, exchanges }
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.exchanges.finished.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl HttpBody for Tracked {
        type Data = Bytes;
        type Error = axum::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
            Pin::new(&mut self.body).poll_frame(cx)
        }

        fn is_end_stream(&self) -> bool {
            self.body.is_end_stream()
        }

        fn size_hint(&self) -> SizeHint {
            self.body.size_hint()
        }
    }

    /// The IO between hyper and the socket `io` (see the module documentation).
    pub(super) struct Rewriter<S> {
        io: S,
        exchanges: Arc<Exchanges>,
        /// `Some(n)`: at the last flush hyper's buffer was empty and the `n` requests dispatched
        /// so far had finished responses. The next write is hyper's own if no request was
        /// dispatched since. A fresh connection starts so, at `Some(0)`.
        idle_at: Option<u64>,
        /// The replacement answer and how many of its bytes are written.
        pending: Option<(Vec<u8>, usize)>,
        rejection: RejectionBody,
    }

    impl<S> Rewriter<S> {
        pub(super) fn new(io: S, exchanges: Arc<Exchanges>, rejection: RejectionBody) -> Rewriter<S> {
            Rewriter {
                io,
                exchanges,
                idle_at: Some(0),
                pending: None,
                rejection,
            }
        }
    }

    impl<S: AsyncWrite + Unpin> Rewriter<S> {
        /// Writes what is left of the replacement answer.
        fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            while let Some((bytes, done)) = &mut self.pending {
                let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*done..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *done += n;
                if *done == bytes.len() {
                    self.pending = None;
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Rewriter<S> {
        fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Rewriter<S> {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            ready!(this.poll_pending(cx))?;
            if let Some(n) = this.idle_at.take()
                && n == this.exchanges.dispatched()
                && let Some(answer) = replacement(buf, this.rejection)
            {
                this.pending = Some((answer, 0));
                // Started now if the socket takes it; hyper's flush, which follows, finishes it.
                if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                    return Poll::Ready(Err(e));
                }
                return Poll::Ready(Ok(buf.len()));
            }
            Pin::new(&mut this.io).poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            ready!(this.poll_pending(cx))?;
            // hyper flushes the IO only with its own buffer empty: everything it encoded so far
            // is written, so the next write starts a new message or continues an unfinished
            // response, which the counts tell apart.
            this.idle_at = this.exchanges.idle();
            Pin::new(&mut this.io).poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            ready!(this.poll_pending(cx))?;
            Pin::new(&mut this.io).poll_shutdown(cx)
        }

        fn is_write_vectored(&self) -> bool {
            false
        }
    }

    /// The reason code and message for a status hyper answers with itself.
    fn rejection_for(status: StatusCode) -> Option<Error> {
        let (reason, detail) = match status.as_u16() {
            431 => (
                Reason::HeaderTooLarge,
                format!(
                    "the request head is longer than {} bytes or has more than {} header fields",
                    super::MAX_HEAD_BYTES,
                    super::MAX_HEADER_FIELDS
                ),
            ),
            414 => (Reason::HeaderTooLarge, "the request target is too long".to_owned()),
            413 => (Reason::HeaderTooLarge, "the request is too large".to_owned()),
            400 => (
                Reason::HttpRequestInvalid,
                "not a well-formed HTTP/1.1 request (request line, header syntax, or framing: \
                 Content-Length, Transfer-Encoding)"
                    .to_owned(),
            ),
            501 => (
                Reason::HttpRequestInvalid,
                "the request needs a feature the server does not implement".to_owned(),
            ),
            505 => (
                Reason::HttpRequestInvalid,
                "the HTTP version is not supported (HTTP/1.1 and HTTP/1.0 are)".to_owned(),
            ),
            _ => return None,
        };
        Some(Error::new(reason, detail))
    }

    /// The answer replacing `buf`, if `buf` is exactly one bodiless error head as hyper writes
    /// it: `HTTP/1.x <status> <phrase>`, header lines with `content-length: 0`, the empty line.
    pub(super) fn replacement(buf: &[u8], rejection: RejectionBody) -> Option<Vec<u8>> {
        let rest = buf
            .strip_prefix(b"HTTP/1.1 ")
            .or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?;
        let status = StatusCode::from_bytes(rest.get(..3)?).ok()?;
        if !matches!(rest.get(3), Some(b' ' | b'\r')) {
            return None;
        }
        let error = rejection_for(status)?;
        // Without the final CRLF, every line (the status line first) ends in CRLF; an empty line
        // before the end would mean a body follows the head in this write.
        let head = buf.strip_suffix(b"\r\n\r\n")?;
        let mut lines = buf[..head.len() + 2].split_inclusive(|&b| b == b'\n');
        let status_line = lines.next()?;
        let mut kept = Vec::new();
        let mut bodiless = false;
        for line in lines {
            let line = line.strip_suffix(b"\r\n")?;
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                if value != b"0" {
                    return None;
                }
                bodiless = true;
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") || name.eq_ignore_ascii_case(b"content-type") {
                return None;
            } else if !name.eq_ignore_ascii_case(b"connection") {
                kept.push(line);
            }
        }
        if !bodiless {
            return None;
        }
        let body = rejection(status, &error);
        let length = body.len().to_string();
        let mut out = Vec::with_capacity(buf.len() + body.len() + 64);
        out.extend_from_slice(status_line);
        out.extend_from_slice(b"content-type: application/json\r\ncontent-length: ");
        out.extend_from_slice(length.as_bytes());
        out.extend_from_slice(b"\r\nconnection: close\r\n");
        for line in kept {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        Some(out)
    }

    #[cfg(test)]
    mod tests {
        #![allow(clippy::unwrap_used)] // test code: a panic is the failure report

        use super::*;
        use tokio::io::AsyncWriteExt;

        const HYPER_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 20:06:24 GMT\r\n\r\n";

        fn body(status: StatusCode, e: &Error) -> Vec<u8> {
            format!("{{\"status\":{},\"code\":\"{}\"}}", status.as_u16(), e.code()).into_bytes()
        }

        fn expected_431() -> Vec<u8> {
            let json = b"{\"status\":431,\"code\":\"header_too_large\"}";
            let mut out = format!(
                "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\ndate: Tue, 01 Dec 2026 20:06:24 GMT\r\n\r\n",
                json.len()
            )
            .into_bytes();
            out.extend_from_slice(json);
            out
        }

        #[test]
        fn replaces_exactly_hyper_s_bodiless_error_heads() {
            assert_eq!(replacement(HYPER_431, body).unwrap(), expected_431());
            let bad = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
            let out = String::from_utf8(replacement(bad, body).unwrap()).unwrap();
            assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
            assert!(
                out.ends_with("\r\n\r\n{\"status\":400,\"code\":\"http_request_invalid\"}"),
                "{out}"
            );
            for other in [
                &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n",
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
                b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n",
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n",
                b"HTTP/1.1 400 Bad Request\r\ndate: x\r\n\r\n",
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
                b"HTTP/1.1 4000 Bad Request\r\ncontent-length: 0\r\n\r\n",
                b"HTTP/2 400\r\ncontent-length: 0\r\n\r\n",
                b"",
            ] {
                assert_eq!(replacement(other, body), None, "{}", String::from_utf8_lossy(other));
            }
        }

        /// A socket that takes at most 5 bytes a write and is not ready every other call.
        #[derive(Default)]
        struct Slow {
            out: Vec<u8>,
            ready: bool,
        }

        impl AsyncWrite for Slow {
            fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                self.ready = !self.ready;
                if !self.ready {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                let n = buf.len().min(5);
                self.out.extend_from_slice(&buf[..n]);
                Poll::Ready(Ok(n))
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }

        #[tokio::test]
        async fn writes_the_replacement_whole_through_short_writes() {
            let exchanges = Arc::new(Exchanges::default());
            let mut io = Rewriter::new(Slow::default(), exchanges, body);
            io.write_all(HYPER_431).await.unwrap();
            io.flush().await.unwrap();
            io.shutdown().await.unwrap();
            assert_eq!(io.io.out, expected_431());
        }

        #[tokio::test]
        async fn leaves_writes_alone_while_a_response_is_unfinished_or_after_a_dispatch() {
            // A response body of the app that happens to look like hyper's head.
            let exchanges = Arc::new(Exchanges::default());
            let mut io = Rewriter::new(Slow::default(), exchanges.clone(), body);
            exchanges.dispatch();
            io.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 124\r\n\r\n")
                .await
                .unwrap();
            io.flush().await.unwrap();
            io.write_all(HYPER_431).await.unwrap();
            io.flush().await.unwrap();
            // Finished, flushed, then the next request dispatched: its response is the app's.
            let tracked = Tracked::new(Body::empty(), exchanges.clone());
            drop(tracked);
            io.flush().await.unwrap();
            exchanges.dispatch();
            io.write_all(HYPER_431).await.unwrap();
            let mut want = b"HTTP/1.1 200 OK\r\ncontent-length: 124\r\n\r\n".to_vec();
            want.extend_from_slice(HYPER_431);
            want.extend_from_slice(HYPER_431);
            assert_eq!(io.io.out, want);
            // Finished and flushed with nothing dispatched since: hyper's own answer.
            drop(Tracked::new(Body::empty(), exchanges.clone()));
            io.flush().await.unwrap();
            io.write_all(HYPER_431).await.unwrap();
            io.flush().await.unwrap();
            want.extend_from_slice(&expected_431());
            assert_eq!(io.io.out, want);
        }
    }
}
