//! Paid MCP tools over rmcp for axum payees: [`McpCheckout`], the [`Payments`] backend of
//! `aep2_mcp::paid` on a [`Checkout`] (the payee's durable payment state, shared with its other
//! paid endpoints), and [`streamable_http`], rmcp's Streamable HTTP server as an axum route that
//! marks a paid answer delivered only once its body is handed over.
//!
//! The route serves statelessly with JSON responses (spec `aep2.md#mcp-lifecycle`): every
//! request stands alone, so a payment never depends on a session, and a `GET` is answered `405`
//! with `Allow: POST` (no server-initiated stream), as the Streamable HTTP transport allows.

use crate::checkout::{Checkout, Taken};
use crate::layer::{Clock, system_clock};
use aep2::{Error, Verifier};
use aep2_mcp::ToolCall;
use aep2_mcp::paid::{Accepted, PaymentFuture, Payments, Price};
use aep2_x402::PaymentResponse;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use rmcp::ServerHandler;
use rmcp::model::Extensions;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

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
            let taken = self.checkout.take(&v, request, policy.check(&v, now), now).await?;
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
    if any_host { config.disable_allowed_hosts() } else { config }
}

/// rmcp's Streamable HTTP server for `server` as an axum handler (mount it with
/// `axum::routing::any`): each request gets a clone of `server`, and a served paid answer's body
/// is wrapped by [`Checkout::deliver`], so that its serve becomes final once it is handed over.
pub fn streamable_http<S>(
    server: S,
    checkout: Arc<Checkout>,
    config: StreamableHttpServerConfig,
) -> impl Fn(Request) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>> + Clone + Send + Sync + 'static
where
    S: ServerHandler + Clone,
{
    let service = StreamableHttpService::new(move || Ok(server.clone()), Arc::new(NeverSessionManager::default()), config);
    move |mut req: Request| {
        let service = service.clone();
        let checkout = checkout.clone();
        Box::pin(async move {
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
