//! Paid MCP tools over rmcp for axum payees: [`McpCheckout`], the [`Payments`] backend of
//! `aep2_mcp::paid` on a [`Checkout`] (the payee's durable payment state, shared with its other
//! paid endpoints), and [`streamable_http`], rmcp's Streamable HTTP server as an axum route that
//! marks a paid answer delivered only once its body is handed over.
//!
//! The route serves statelessly with JSON responses (spec `aep2.md#mcp-lifecycle`): every
//! request stands alone, so a payment never depends on a session, and a `GET` is answered `405`
//! with `Allow: POST` (no server-initiated stream), as the Streamable HTTP transport allows.

use crate::checkout::{Checkout, Taken};
use crate::layer::{Clock, read_body, system_clock};
use aep2::json::{self, Value};
use aep2::{Error, Reason, Verifier};
use aep2_mcp::ToolCall;
use aep2_mcp::paid::{Accepted, PaymentFuture, Payments, Price};
use aep2_sp::RequestDescriptor;
use aep2_x402::PaymentResponse;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::ServerHandler;
use rmcp::model::Extensions;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// The request headers of MCP's Streamable HTTP transport (lowercase), for a CORS allowlist:
/// the protocol version, the session id, 2026-07-28's method and name headers, SSE resumption.
pub const MCP_REQUEST_HEADERS: [&str; 5] = [
    "mcp-protocol-version",
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];

/// The [`Payments`] backend of a payee: core verification, the tool's policy bound to the call's
/// request hash, then [`Checkout::take`] (replay record, settlement, receipt check) and
/// [`Checkout::served`].
#[derive(Clone)]
pub struct McpCheckout {
    verifier: Arc<Verifier>,
    checkout: Arc<Checkout>,
    clock: Clock,
}

impl std::fmt::Debug for McpCheckout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpCheckout")
            .field("checkout", &self.checkout)
            .finish_non_exhaustive()
    }
}

impl McpCheckout {
    /// Payments verified by `verifier` and taken by `checkout`, on the system clock.
    pub fn new(verifier: Arc<Verifier>, checkout: Arc<Checkout>) -> McpCheckout {
        McpCheckout {
            verifier,
            checkout,
            clock: system_clock(),
        }
    }

    /// Another clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> McpCheckout {
        self.clock = clock;
        self
    }

    /// The checkout.
    pub fn checkout(&self) -> &Arc<Checkout> {
        &self.checkout
    }
}

/// Where [`streamable_http`] collects the payment served by a request, to mark it delivered
/// with the response body.
#[derive(Clone, Default)]
struct DeliverySlot(Arc<Mutex<Option<Taken>>>);

impl Payments for McpCheckout {
    type Ticket = Taken;

    fn accept<'a>(&'a self, call: &'a ToolCall, price: &'a Price) -> PaymentFuture<'a, Result<Accepted<Taken>, Error>> {
        Box::pin(async move {
            let now = (self.clock)();
            // The payment record's request: the call's own hash, the same for a retried call.
            let request = call.request_hash()?;
            let policy = price.policy.clone().with_request_hash(request);
            let (carrier, report) = aep2_mcp::check_call(call, &self.verifier, None);
            let v = report.into_result()?;
            let arguments = call.arguments.clone().map(aep2::json::Value::Object);
            let described = RequestDescriptor::mcp(&call.name, arguments.as_ref(), request);
            let taken = self.checkout.take(&v, &described, policy.check(&v, now), now).await?;
            Ok(Accepted {
                carrier: carrier.unwrap_or(aep2_mcp::Carrier::Mandate),
                response: PaymentResponse::accepted(&v, Some(&taken.receipt)),
                ticket: taken,
            })
        })
    }

    fn served<'a>(&'a self, taken: Taken, extensions: &'a Extensions) -> PaymentFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.checkout.served(&taken, (self.clock)()).await?;
            let slot = extensions
                .get::<axum::http::request::Parts>()
                .and_then(|p| p.extensions.get::<DeliverySlot>());
            match slot {
                Some(slot) => {
                    if let Ok(mut s) = slot.0.lock() {
                        *s = Some(taken);
                    }
                }
                None => self.checkout.delivered_now(&taken),
            }
            Ok(())
        })
    }

    fn unserved(&self, taken: Taken) -> PaymentFuture<'_, ()> {
        Box::pin(async move { self.checkout.unserved(&taken, (self.clock)()).await })
    }
}

/// The Streamable HTTP configuration of a paid MCP endpoint: stateless, JSON responses, POST
/// bodies up to `max_body_bytes`, `Host` checked against loopback names unless `any_host`.
pub fn http_config(max_body_bytes: usize, any_host: bool) -> StreamableHttpServerConfig {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(max_body_bytes);
    if any_host {
        config.disable_allowed_hosts()
    } else {
        config
    }
}

/// The pre-checks of [`streamable_http`]: body size and the time to send it.
#[derive(Clone, Copy, Debug)]
pub struct McpHttpLimits {
    /// Largest POST body read (larger: `413`, `header_too_large`).
    pub max_body_bytes: usize,
    /// Time allowed to send the body (`408`, `request_timeout`).
    pub body_timeout: Duration,
}

impl Default for McpHttpLimits {
    /// The binding's message limit ([`aep2_mcp::MAX_MESSAGE_BYTES`]) and 5 s.
    fn default() -> McpHttpLimits {
        McpHttpLimits {
            max_body_bytes: aep2_mcp::MAX_MESSAGE_BYTES,
            body_timeout: Duration::from_secs(5),
        }
    }
}

fn rejection(status: StatusCode, e: &Error) -> Response {
    let body = aep2_x402::MvpBody::rejection_with_status(e, status.as_u16(), None).to_text();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A JSON-RPC error answering a POST the MCP server cannot take: `status`, the request's id when
/// it has a usable one.
fn rpc_rejection(status: StatusCode, id: Option<&Value>, e: &Error) -> Response {
    let body = json::to_compact(&aep2_mcp::jsonrpc_error(id, e));
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Reads and checks a POST before rmcp sees it, so that every refusal names a reason code and
/// keeps the request id: `415` unless JSON; the body within `limits`; strict JSON within the MCP
/// binding's message limits (`400` and `-32700`); a message rmcp's model cannot read is
/// `-32600`; a `tools/call` is read by [`ToolCall::parse`] (spec `aep2.md#mcp-tool-call`:
/// `-32600`/`-32602`/`-32700` with its id). Clients that name no `Accept` (plain JSON-RPC) are
/// answered as if they accepted JSON.
async fn precheck(req: Request, limits: McpHttpLimits) -> Result<Request, Response> {
    if req.method() != Method::POST {
        return Ok(req);
    }
    let json_ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"));
    if !json_ct {
        return Err(rejection(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &Error::new(Reason::ContentTypeUnsupported, "Content-Type must be application/json"),
        ));
    }
    let (mut parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, limits.max_body_bytes, limits.body_timeout)
        .await
        .map_err(|(status, e)| crate::layer::closing(rejection(status, &e)))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        rpc_rejection(
            StatusCode::BAD_REQUEST,
            None,
            &Error::new(Reason::Utf8Invalid, "the body is not UTF-8"),
        )
    })?;
    let message =
        json::parse(text, &aep2_mcp::MESSAGE_LIMITS).map_err(|e| rpc_rejection(StatusCode::BAD_REQUEST, None, &e))?;
    let id = match &message {
        Value::Object(o) => o
            .get("id")
            .filter(|v| matches!(v, Value::String(_) | Value::Number(_)))
            .cloned(),
        _ => None,
    };
    if serde_json::from_str::<rmcp::model::ClientJsonRpcMessage>(text).is_err() {
        let e = Error::new(Reason::McpRequestInvalid, "not a JSON-RPC 2.0 MCP message");
        let status = if id.is_some() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        return Err(rpc_rejection(status, id.as_ref(), &e));
    }
    let is_call =
        matches!(&message, Value::Object(o) if o.get("method") == Some(&Value::String(aep2_mcp::TOOLS_CALL.into())));
    if is_call && let Err(e) = ToolCall::parse(text) {
        return Err(rpc_rejection(StatusCode::OK, id.as_ref(), &e));
    }
    let accepts_both = parts
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if !(accepts_both.contains("application/json") && accepts_both.contains("text/event-stream")) {
        parts.headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// rmcp's Streamable HTTP server for `server` as an axum handler (mount it with
/// `axum::routing::any`): each request gets a clone of `server`; a POST is first checked as
/// `precheck` says (limits, strict JSON, the tool call under this crate's binding); a served
/// paid answer's body is wrapped by [`Checkout::deliver`], so that its serve becomes final once
/// it is handed over.
pub fn streamable_http<S>(
    server: S,
    checkout: Arc<Checkout>,
    config: StreamableHttpServerConfig,
    limits: McpHttpLimits,
) -> impl Fn(Request) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>> + Clone + Send + Sync + 'static
where
    S: ServerHandler + Clone,
{
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    move |req: Request| {
        let service = service.clone();
        let checkout = checkout.clone();
        Box::pin(async move {
            let mut req = match precheck(req, limits).await {
                Ok(r) => r,
                Err(refused) => return refused,
            };
            let slot = DeliverySlot::default();
            req.extensions_mut().insert(slot.clone());
            let response = match service.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let (parts, body) = response.into_parts();
            let body = Body::new(body);
            let taken = slot.0.lock().ok().and_then(|mut s| s.take());
            match taken {
                Some(taken) => Response::from_parts(parts, checkout.deliver(&taken, body)),
                None => Response::from_parts(parts, body),
            }
        })
    }
}
