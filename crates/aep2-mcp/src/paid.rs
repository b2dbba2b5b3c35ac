//! Paid tools on the official MCP Rust SDK, [`rmcp`] (feature `rmcp`).
//!
//! rmcp runs the MCP lifecycle (`initialize` and version negotiation, `ping`, notifications,
//! `resultType` for 2026-07-28, errors that keep the request id); [`PaidTools`] adds payment to
//! the two handler methods that need it, with the wire rules of this crate
//! (`aep2.md#binding-mcp`) as the only source:
//!
//! - [`PaidTools::list`]: each priced tool's `_meta[`[`ACCEPTS_KEY`]`]` holds the payment terms it
//!   accepts (`aep2.md#mcp-tool-list`).
//! - [`PaidTools::call`]: a priced tool's call is read as a [`ToolCall`] (the mandate in
//!   `params._meta`), verified and taken by the merchant's [`Payments`] backend, served, recorded
//!   as served, and answered with the payment response in the result's `_meta`; a missing or
//!   refused payment is the payment-required result ([`payment_required_result`]). Unpriced tools
//!   go straight to the merchant's handler.
//!
//! The backend holds the durable payment state (for an axum payee, `aep2-axum`'s `Checkout`):
//! [`Payments::accept`] verifies and takes the mandate for the call's request hash, and
//! [`Payments::served`] records the serve — only then does the result leave, so a paid call is
//! served once per charge.

use crate::{Carrier, ToolCall, attach_payment_response, jsonrpc_error_code, payment_required_result};
use aep2::json::{self, Object, Value};
use aep2::{Domain, Error, PayeePolicy, Reason};
use aep2_x402::{PaymentRequirements, PaymentResponse};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ErrorCode, ErrorData, Extensions, MetaObject,
    ProtocolVersion, ResultType, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use rmcp;

/// Tool `_meta` key in `tools/list`: the x402 v2 `PaymentRequirements` the tool accepts, an array.
pub const ACCEPTS_KEY: &str = "dev.aep2/accepts";

/// The MCP revisions a paid server negotiates (`aep2.md#mcp-lifecycle`), oldest first: return
/// them from `ServerHandler::supported_protocol_versions`. 2025-06-18 and 2025-11-25 start with
/// `initialize`; 2026-07-28 is stateless (each request names its version in `_meta`) and every
/// result carries `resultType`, which rmcp writes for that revision only.
pub const PROTOCOL_VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// A boxed future of a [`Payments`] method.
pub type PaymentFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one paid tool costs: the payee policy a mandate must pass, and the terms announced in
/// `tools/list` and in payment-required results.
#[derive(Clone, Debug)]
pub struct Price {
    /// The policy (payee, asset, amount, windows). Request binding to the call is added per call.
    pub policy: PayeePolicy,
    /// The announced terms; at least one.
    pub accepts: Vec<PaymentRequirements>,
}

impl Price {
    /// The price `policy` on `domain`, announced as one x402 requirement (scheme `aep2`) with
    /// `maxTimeoutSeconds` = `max_timeout`.
    pub fn new(policy: PayeePolicy, domain: &Domain, max_timeout: u64) -> Price {
        let accepts = vec![PaymentRequirements::for_policy(&policy, domain, max_timeout)];
        Price { policy, accepts }
    }
}

/// A payment taken for one call, to be served.
#[derive(Debug)]
pub struct Accepted<T> {
    /// The `_meta` key the payment came in (its response goes under the matching key).
    pub carrier: Carrier,
    /// The payment response (with the SP's receipt) attached to the served result.
    pub response: PaymentResponse,
    /// The backend's handle of the taken payment.
    pub ticket: T,
}

/// The payee's side of a paid call: verification, the durable payment state, settlement.
pub trait Payments: Send + Sync + 'static {
    /// The handle of a taken payment.
    type Ticket: Send + 'static;

    /// Verifies the payment of `call` under `price` (core verification, the policy bound to
    /// [`ToolCall::request_hash`]) and takes it: recorded for replay, accepted by the settlement
    /// processor. Any error is answered with the payment-required result naming its code.
    fn accept<'a>(
        &'a self,
        call: &'a ToolCall,
        price: &'a Price,
    ) -> PaymentFuture<'a, Result<Accepted<Self::Ticket>, Error>>;

    /// Records that the call of `ticket` was served. Only `Ok` lets the result go out (an error:
    /// another presentation took the payment over, or the store failed). `extensions` are the
    /// request's (over HTTP they hold the request's `http::request::Parts`), for a backend that
    /// marks the delivery once the response is written.
    fn served<'a>(&'a self, ticket: Self::Ticket, extensions: &'a Extensions) -> PaymentFuture<'a, Result<(), Error>>;

    /// Gives the payment back unserved (the tool failed), so that the same mandate presented
    /// again is served without a second charge.
    fn unserved(&self, ticket: Self::Ticket) -> PaymentFuture<'_, ()>;
}

/// Prices per tool name and the payment backend; call [`PaidTools::list`] and
/// [`PaidTools::call`] from the server's `list_tools` and `call_tool`.
pub struct PaidTools<P: Payments> {
    payments: Arc<P>,
    prices: BTreeMap<String, Price>,
}

impl<P: Payments> std::fmt::Debug for PaidTools<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaidTools")
            .field("prices", &self.prices)
            .finish_non_exhaustive()
    }
}

impl<P: Payments> Clone for PaidTools<P> {
    fn clone(&self) -> Self {
        PaidTools {
            payments: self.payments.clone(),
            prices: self.prices.clone(),
        }
    }
}

/// Converts between this crate's strict JSON and rmcp's `serde_json` values.
fn to_serde(v: &Value) -> serde_json::Value {
    serde_json::from_str(&json::to_compact(v)).unwrap_or(serde_json::Value::Null)
}

fn serde_object(o: Object) -> serde_json::Map<String, serde_json::Value> {
    match to_serde(&Value::Object(o)) {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// The protocol error answering a call [`ToolCall::parse`] refused: the JSON-RPC code of
/// [`jsonrpc_error_code`], the reason code as message and in `data.reason`. rmcp answers it
/// with the request's id.
pub fn protocol_error(e: &Error) -> ErrorData {
    let code = jsonrpc_error_code(e.reason()).unwrap_or(-32600);
    let data = serde_json::json!({ "reason": e.code(), "detail": e.detail() });
    ErrorData::new(ErrorCode(code as i32), e.code().to_owned(), Some(data))
}

/// The call as this crate's [`ToolCall`]: the request id, name, arguments and `_meta` (rmcp moves
/// `params._meta` into the request context), read by [`ToolCall::parse`] under its limits.
pub fn tool_call(request: &CallToolRequestParams, context: &RequestContext<RoleServer>) -> Result<ToolCall, Error> {
    let mut params = serde_json::Map::new();
    params.insert("name".into(), serde_json::Value::String(request.name.to_string()));
    if let Some(a) = &request.arguments {
        params.insert("arguments".into(), serde_json::Value::Object(a.clone()));
    }
    let meta: &serde_json::Map<String, serde_json::Value> = &context.meta;
    if !meta.is_empty() {
        params.insert("_meta".into(), serde_json::Value::Object(meta.clone()));
    }
    let id = serde_json::to_value(&context.id)
        .map_err(|e| Error::new(Reason::McpRequestInvalid, format!("request id: {e}")))?;
    let message = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": crate::TOOLS_CALL, "params": params});
    let text =
        serde_json::to_string(&message).map_err(|e| Error::new(Reason::McpRequestInvalid, format!("request: {e}")))?;
    ToolCall::parse(&text)
}

/// The payment-required result of `call` for `error`, as rmcp's type (`resultType: complete`).
pub fn payment_required(call: &ToolCall, price: &Price, error: &Error) -> CallToolResult {
    rmcp_result(&payment_required_result(call, price.accepts.clone(), error))
}

fn rmcp_result(v: &Value) -> CallToolResult {
    let mut result: CallToolResult = serde_json::from_value(to_serde(v)).unwrap_or_else(|_| CallToolResult::default());
    result.result_type = Some(ResultType::COMPLETE);
    result
}

/// Adds the payment response to a result's `_meta` under the carrier's key
/// ([`attach_payment_response`]), keeping its other members.
fn with_payment_response(result: &mut CallToolResult, carrier: Carrier, response: &PaymentResponse) {
    let mut holder = Object::new();
    attach_payment_response(&mut holder, carrier, response);
    if let Some(Value::Object(added)) = holder.remove("_meta") {
        let mut meta = result.meta.take().unwrap_or_else(|| MetaObject(serde_json::Map::new()));
        meta.0.extend(serde_object(added));
        result.meta = Some(meta);
    }
}

impl<P: Payments> PaidTools<P> {
    /// No priced tool yet, payments by `payments`.
    pub fn new(payments: P) -> PaidTools<P> {
        PaidTools {
            payments: Arc::new(payments),
            prices: BTreeMap::new(),
        }
    }

    /// Prices the tool `name`.
    #[must_use]
    pub fn with_price(mut self, name: impl Into<String>, price: Price) -> PaidTools<P> {
        self.prices.insert(name.into(), price);
        self
    }

    /// The price of tool `name`, if it is paid.
    pub fn price(&self, name: &str) -> Option<&Price> {
        self.prices.get(name)
    }

    /// The payment backend.
    pub fn payments(&self) -> &Arc<P> {
        &self.payments
    }

    /// The tool list with each priced tool's terms in `_meta[`[`ACCEPTS_KEY`]`]` (other `_meta`
    /// members kept).
    pub fn list(&self, tools: Vec<Tool>) -> Vec<Tool> {
        tools
            .into_iter()
            .map(|mut tool| {
                if let Some(price) = self.prices.get(tool.name.as_ref()) {
                    let accepts = price.accepts.iter().map(|a| Value::Object(a.to_json())).collect();
                    let mut meta = tool.meta.take().unwrap_or_else(|| MetaObject(serde_json::Map::new()));
                    meta.0.insert(ACCEPTS_KEY.to_owned(), to_serde(&Value::Array(accepts)));
                    tool.meta = Some(meta);
                }
                tool
            })
            .collect()
    }

    /// Serves a `tools/call`: an unpriced tool by `serve` alone; a priced one only once its
    /// payment is taken, and its result only once the serve is recorded (see the module docs).
    /// A tool result with `isError: true` is not a serve: it is returned with the payment
    /// response, and the payment is given back ([`Payments::unserved`]) so that the same mandate
    /// pays a retry without a second charge; a protocol error from `serve` likewise.
    pub async fn call<F, Fut>(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
        serve: F,
    ) -> Result<CallToolResponse, ErrorData>
    where
        F: FnOnce(CallToolRequestParams, RequestContext<RoleServer>) -> Fut,
        Fut: Future<Output = Result<CallToolResult, ErrorData>>,
    {
        let Some(price) = self.prices.get(request.name.as_ref()) else {
            return serve(request, context).await.map(CallToolResponse::from);
        };
        let call = tool_call(&request, &context).map_err(|e| protocol_error(&e))?;
        let accepted = match self.payments.accept(&call, price).await {
            Ok(a) => a,
            Err(e) => return Ok(payment_required(&call, price, &e).into()),
        };
        let extensions = context.extensions.clone();
        let mut result = match serve(request, context).await {
            Ok(r) if r.is_error != Some(true) => {
                if let Err(e) = self.payments.served(accepted.ticket, &extensions).await {
                    return Ok(payment_required(&call, price, &e).into());
                }
                r
            }
            // The tool failed: its own result, with the payment response (the mandate is
            // recorded, `aep2.md#mcp-results`), and the serve still owed to the same mandate.
            Ok(r) => {
                self.payments.unserved(accepted.ticket).await;
                r
            }
            Err(e) => {
                self.payments.unserved(accepted.ticket).await;
                return Err(e);
            }
        };
        with_payment_response(&mut result, accepted.carrier, &accepted.response);
        result.result_type = Some(ResultType::COMPLETE);
        Ok(result.into())
    }
}
