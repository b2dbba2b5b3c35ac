//! The HTTP service (spec `aep2.md#sp-enqueue`): routes, error bodies, and the limits that keep
//! one client from holding the service (body size, content type, header and body timeouts,
//! connection count).

use crate::config::{Config, HttpLimits};
use crate::ledger::{Ledger, LedgerOptions};
use crate::{Processor, account_display, unix_now};
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
}

/// The HTTP status for a rejection (spec `aep2.md#sp-enqueue`).
pub fn status_for(reason: Reason) -> StatusCode {
    match reason {
        Reason::HeaderTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Reason::ContentTypeUnsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Reason::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        Reason::RouteUnknown | Reason::MandateUnknown => StatusCode::NOT_FOUND,
        Reason::InsufficientFunds => StatusCode::PAYMENT_REQUIRED,
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
    let body = json!({
        "success": false,
        "error": e.code(),
        "stage": e.stage().as_str(),
        "message": if e.detail().is_empty() { e.code() } else { e.detail() },
    });
    json_response(status, body.to_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The router: `POST /enqueue`, `GET /health`, `GET /v1/mandates/{id}`, `GET /v1/accounts`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/enqueue", any(enqueue))
        .route("/health", any(health))
        .route("/v1/mandates/{id}", any(mandate))
        .route("/v1/accounts", any(accounts))
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
    let limit = st.limits.max_body_bytes;
    if !is_json(req.headers()) {
        return error_response(&Error::new(
            Reason::ContentTypeUnsupported,
            "Content-Type must be application/json",
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return error_response(&Error::new(
            Reason::HeaderTooLarge,
            format!("body of {} bytes, limit {limit}", declared.unwrap_or(0)),
        ));
    }
    let read = Limited::new(req.into_body(), limit).collect();
    let body = match tokio::time::timeout(st.limits.body_timeout, read).await {
        Err(_) => {
            return error_response(&Error::new(
                Reason::RequestTimeout,
                format!("body not received within {} ms", st.limits.body_timeout.as_millis()),
            ));
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return error_response(&Error::new(Reason::HeaderTooLarge, format!("body over {limit} bytes")));
        }
        Ok(Err(e)) => {
            return error_response(&Error::new(Reason::JsonInvalid, format!("reading the body: {e}")));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let now = unix_now();
    let worker = st.clone();
    // SQLite commits fsync: run them off the async worker threads.
    let outcome = tokio::task::spawn_blocking(move || worker.processor.enqueue(&body, now)).await;
    match outcome {
        Ok(Ok(done)) => {
            let m = &done.mandate;
            // The stored receipt text goes out verbatim: a re-submission gets the same bytes.
            let body = format!(
                "{{\"success\":true,\"receipt\":{},\"mandateId\":\"{}\",\"status\":\"{}\"}}",
                m.receipt,
                hex_encode_0x(&m.mandate_id),
                m.status.as_str()
            );
            json_response(StatusCode::OK, body)
        }
        Ok(Err(e)) => error_response(&e),
        Err(join) => error_response(&Error::new(
            Reason::ReplayStoreUnavailable,
            format!("enqueue worker failed: {join}"),
        )),
    }
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
    let path = config.database.clone();
    let deposits = config.deposits.clone();
    let ledger = tokio::task::spawn_blocking(move || -> Result<Ledger, String> {
        let ledger = Ledger::open(&path, &LedgerOptions::default()).map_err(|e| e.to_string())?;
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
        serve_router(self.listener, app, self.state.limits, SHUTDOWN_GRACE, shutdown).await
    }
}

/// Serves `app` on `listener` until `shutdown` completes, hardened the same way for every AEP2
/// service: at most `limits.max_connections` connections at once (past that, new ones wait in
/// the kernel's accept queue instead of each costing a task and buffers), a request head of at
/// most 64 KiB read within `limits.header_timeout`, and on shutdown no new connections and up to
/// `grace` for open ones to finish.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    grace: Duration,
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
        let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            async move { tower::ServiceExt::oneshot(app, req.map(Body::new)).await }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(stream), service);
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

/// Runs the service on a new multi-threaded runtime until SIGTERM or Ctrl-C. `on_bound` is called
/// once the listener is bound, with its address and the SP identities (the CLI prints them).
pub fn run_blocking(config: &Config, on_bound: impl FnOnce(SocketAddr, &[String])) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let bound = bind(config).await?;
        let ids: Vec<String> = bound.state.processor.sp_ids().iter().map(ToString::to_string).collect();
        on_bound(bound.local_addr()?, &ids);
        bound.serve(shutdown_signal()).await
    })
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
