//! # aep2-mcp
//!
//! The MCP (Model Context Protocol) binding of AEP2 (spec `aep2.md#binding-mcp`): pure functions
//! over JSON-RPC message text and [`aep2::json::Value`]s, no transport; `paid` (feature `rmcp`) puts them
//! on the official MCP SDK.
//!
//! - [`ToolCall::parse`]: a JSON-RPC 2.0 `tools/call` request, read strictly within
//!   [`MESSAGE_LIMITS`] (`aep2.md#mcp-tool-call`). Its errors are protocol errors, answered with
//!   [`jsonrpc_error`].
//! - [`extract`]: the mandate from `params._meta`, under [`MANDATE_KEY`] (`dev.aep2/mandate`,
//!   the envelope object or its base64 header text) or [`X402_PAYMENT_KEY`] (`x402/payment`, an
//!   x402 v2 `PaymentPayload` of scheme `aep2`); exactly one of them (`aep2.md#mcp-carriers`).
//! - [`check_call`], [`verify_call`], [`verify_call_for_quote`]: tool call → [`Verified`] under
//!   a [`PayeePolicy`] or an Order Mode [`PaymentRequest`]. Their errors are payment failures,
//!   answered with [`payment_required_result`] (a tool result with `isError: true`).
//! - [`attach_payment_response`]: the accepted payment's `PaymentResponse` in the result's
//!   `_meta` (`aep2.md#mcp-results`).
//! - [`request_hash`] / [`ToolCall::request_hash`]: the tool-call descriptor
//!   `JCS({"arguments", "name"})` and its hash for request binding (`aep2.md#mcp-request-hash`).
//! - `paid` (feature `rmcp`): paid tools on the official MCP Rust SDK, `rmcp`.

use aep2::codec::base64_encode;
use aep2::envelope::{decode_header, decode_json_bytes};
use aep2::json::{self, Limits, Object, Value};
use aep2::uint::parse_json_integer;
use aep2::{
    Error, Mandate, OrderOptions, PayeePolicy, PaymentRequest, Reason, Report, Result, Stage, Verified, Verifier,
};
use aep2_x402::{PaymentRequired, PaymentRequirements, PaymentResponse, ResourceInfo};

/// `params._meta` key of the native carrier: the AEP2 envelope (object, or base64 header text).
pub const MANDATE_KEY: &str = "dev.aep2/mandate";
/// Result `_meta` key answering [`MANDATE_KEY`]: the accepted payment's `PaymentResponse`.
pub const PAYMENT_RESPONSE_KEY: &str = "dev.aep2/payment-response";
/// Result `_meta` key of a payment-required or payment-failure result: the reason code.
pub const REASON_KEY: &str = "dev.aep2/reason";
/// `params._meta` key of the x402 MCP convention: an x402 v2 `PaymentPayload` object.
pub const X402_PAYMENT_KEY: &str = "x402/payment";
/// Result `_meta` key answering [`X402_PAYMENT_KEY`]: the x402 settlement response.
pub const X402_PAYMENT_RESPONSE_KEY: &str = "x402/payment-response";
/// The only method this binding reads.
pub const TOOLS_CALL: &str = "tools/call";
/// Domain-separation tag of the tool-call hash: `AEP2/mcp-tool-call/v1` and one zero byte.
pub const MCP_TOOL_CALL_TAG: &[u8] = b"AEP2/mcp-tool-call/v1\0";
/// Longest accepted JSON-RPC message text, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 65_536;
/// Longest accepted tool name, in UTF-8 bytes.
pub const MAX_TOOL_NAME_BYTES: usize = 128;
/// The JSON limits of a whole `tools/call` message. Tool arguments are the caller's data and
/// need more room than a mandate; the payment objects inside `_meta` are checked again under
/// the AEP2 limits ([`Limits::AEP2`]).
pub const MESSAGE_LIMITS: Limits = Limits {
    max_depth: 16,
    max_string_bytes: 16_384,
    max_members: 256,
    max_number_len: 64,
};

/// Which `params._meta` key carried the payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carrier {
    /// [`MANDATE_KEY`]: the AEP2 envelope itself.
    Mandate,
    /// [`X402_PAYMENT_KEY`]: an x402 v2 `PaymentPayload` whose `payload` is the envelope.
    X402Payment,
}

impl Carrier {
    /// The `params._meta` key.
    pub const fn key(self) -> &'static str {
        match self {
            Carrier::Mandate => MANDATE_KEY,
            Carrier::X402Payment => X402_PAYMENT_KEY,
        }
    }

    /// The result `_meta` key of the payment response answering this carrier.
    pub const fn response_key(self) -> &'static str {
        match self {
            Carrier::Mandate => PAYMENT_RESPONSE_KEY,
            Carrier::X402Payment => X402_PAYMENT_RESPONSE_KEY,
        }
    }

    /// Stable name used in vectors: `aep2-mandate` or `x402-payment`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Carrier::Mandate => "aep2-mandate",
            Carrier::X402Payment => "x402-payment",
        }
    }
}

/// A JSON-RPC 2.0 `tools/call` request (`aep2.md#mcp-tool-call`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// The JSON-RPC `id`: a string or an integer number.
    pub id: Value,
    /// `params.name`: 1 ..= [`MAX_TOOL_NAME_BYTES`] bytes.
    pub name: String,
    /// `params.arguments`, when present.
    pub arguments: Option<Object>,
    /// `params._meta`, when present.
    pub meta: Option<Object>,
    /// Other `params` members (for example a 2025-11-25 `task`), kept in order; they are not
    /// part of the request descriptor.
    pub other: Object,
}

fn request_invalid(what: impl Into<String>) -> Error {
    Error::new(Reason::McpRequestInvalid, what.into())
}

fn params_invalid(what: impl Into<String>) -> Error {
    Error::new(Reason::McpParamsInvalid, what.into())
}

fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

impl ToolCall {
    /// A call of tool `name` with `arguments`, without payment (the payer's side).
    pub fn new(id: Value, name: impl Into<String>, arguments: Option<Object>) -> ToolCall {
        ToolCall {
            id,
            name: name.into(),
            arguments,
            meta: None,
            other: Object::new(),
        }
    }

    /// Parses message text: at most [`MAX_MESSAGE_BYTES`] (`header_too_large`), strict JSON
    /// within [`MESSAGE_LIMITS`] (`json_invalid`, `json_duplicate_key`, `json_limit_exceeded`),
    /// then [`ToolCall::from_json`].
    pub fn parse(text: &str) -> Result<ToolCall> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(Error::new(
                Reason::HeaderTooLarge,
                format!("message of {} bytes, limit {MAX_MESSAGE_BYTES}", text.len()),
            ));
        }
        ToolCall::from_json(&json::parse(text, &MESSAGE_LIMITS)?)
    }

    /// Reads a parsed message, in order: an object with exactly `jsonrpc`, `id`, `method` and
    /// `params`; `jsonrpc` = `"2.0"`; `id` a string or an integer; `method` = `tools/call`;
    /// `params` an object (all `mcp_request_invalid`); then `params.name` a string of 1 ..=
    /// [`MAX_TOOL_NAME_BYTES`] bytes, `arguments` and `_meta`, when present, objects (all
    /// `mcp_params_invalid`).
    pub fn from_json(v: &Value) -> Result<ToolCall> {
        let Value::Object(o) = v else {
            return Err(request_invalid(format!("message is {}, not an object", v.type_name())));
        };
        const MEMBERS: [&str; 4] = ["jsonrpc", "id", "method", "params"];
        if let Some((name, _)) = o.iter().find(|(n, _)| !MEMBERS.contains(n)) {
            return Err(request_invalid(format!("unknown member {name:?}")));
        }
        if let Some(name) = MEMBERS.iter().find(|n| o.get(n).is_none()) {
            return Err(request_invalid(format!("missing member {name:?}")));
        }
        if o.get("jsonrpc") != Some(&s("2.0")) {
            return Err(request_invalid("jsonrpc must be \"2.0\""));
        }
        let id = match o.get("id") {
            Some(Value::String(t)) => s(t.as_str()),
            Some(Value::Number(n)) if parse_json_integer(n.trim_start_matches('-')).is_ok() => Value::Number(n.clone()),
            _ => return Err(request_invalid("id must be a string or an integer")),
        };
        match o.get("method") {
            Some(Value::String(m)) if m == TOOLS_CALL => {}
            _ => return Err(request_invalid("method must be \"tools/call\"")),
        }
        let Some(Value::Object(params)) = o.get("params") else {
            return Err(request_invalid("params must be an object"));
        };
        let name = match params.get("name") {
            Some(Value::String(n)) => n.clone(),
            Some(other) => return Err(params_invalid(format!("name is {}, not a string", other.type_name()))),
            None => return Err(params_invalid("name is missing")),
        };
        check_name(&name).map_err(params_invalid)?;
        let object = |member: &str| -> Result<Option<Object>> {
            match params.get(member) {
                None => Ok(None),
                Some(Value::Object(x)) => Ok(Some(x.clone())),
                Some(other) => Err(params_invalid(format!(
                    "{member} is {}, not an object",
                    other.type_name()
                ))),
            }
        };
        let mut other = Object::new();
        for (k, v) in params
            .iter()
            .filter(|(k, _)| !matches!(*k, "name" | "arguments" | "_meta"))
        {
            other.insert(k, v.clone());
        }
        Ok(ToolCall {
            id,
            name,
            arguments: object("arguments")?,
            meta: object("_meta")?,
            other,
        })
    }

    /// The message as JSON (`params` members `name`, `arguments`, `_meta`, then the others).
    pub fn to_json(&self) -> Value {
        let mut params = Object::new().with("name", s(self.name.as_str()));
        if let Some(a) = &self.arguments {
            params.insert("arguments", Value::Object(a.clone()));
        }
        if let Some(m) = &self.meta {
            params.insert("_meta", Value::Object(m.clone()));
        }
        for (k, v) in self.other.iter() {
            params.insert(k, v.clone());
        }
        Value::Object(
            Object::new()
                .with("jsonrpc", s("2.0"))
                .with("id", self.id.clone())
                .with("method", s(TOOLS_CALL))
                .with("params", Value::Object(params)),
        )
    }

    /// The message text (compact JSON).
    pub fn to_text(&self) -> String {
        json::to_compact(&self.to_json())
    }

    fn meta_mut(&mut self) -> &mut Object {
        self.meta.get_or_insert_with(Object::new)
    }

    /// The payer's side: puts the envelope JSON (`SignedMandate::to_json`) under
    /// [`MANDATE_KEY`], replacing any x402 payment so the call carries exactly one.
    #[must_use]
    pub fn with_mandate(mut self, envelope: &Value) -> ToolCall {
        let meta = self.meta_mut();
        meta.remove(X402_PAYMENT_KEY);
        meta.insert(MANDATE_KEY, envelope.clone());
        self
    }

    /// The payer's side, x402 MCP convention: an x402 v2 `PaymentPayload`
    /// `{x402Version: 2, accepted, payload: envelope}` under [`X402_PAYMENT_KEY`], replacing any
    /// native mandate.
    #[must_use]
    pub fn with_x402_payment(mut self, accepted: &PaymentRequirements, envelope: &Value) -> ToolCall {
        let payload = Object::new()
            .with("x402Version", Value::from_u64(2))
            .with("accepted", Value::Object(accepted.to_json()))
            .with("payload", envelope.clone());
        let meta = self.meta_mut();
        meta.remove(MANDATE_KEY);
        meta.insert(X402_PAYMENT_KEY, Value::Object(payload));
        self
    }

    /// The tool-call descriptor `JCS({"arguments", "name"})` ([`request_descriptor`]).
    pub fn descriptor(&self) -> Result<String> {
        let args = self.arguments.clone().map(Value::Object);
        request_descriptor(&self.name, args.as_ref())
    }

    /// The tool-call hash ([`request_hash`]): the `ref` a payer signs for this call and the
    /// expected request hash of [`PayeePolicy::with_request_hash`].
    pub fn request_hash(&self) -> Result<[u8; 32]> {
        let args = self.arguments.clone().map(Value::Object);
        request_hash(&self.name, args.as_ref())
    }

    /// The x402 resource URL of the tool: `mcp://tool/<name>`, the name percent-encoded
    /// outside `A–Z a–z 0–9 - . _ ~`.
    pub fn resource_url(&self) -> String {
        let mut url = String::from("mcp://tool/");
        for b in self.name.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                url.push(char::from(b));
            } else {
                url.push_str(&format!("%{b:02X}"));
            }
        }
        url
    }
}

fn check_name(name: &str) -> core::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_TOOL_NAME_BYTES {
        Err(format!(
            "tool name of {} bytes, expected 1..={MAX_TOOL_NAME_BYTES}",
            name.len()
        ))
    } else {
        Ok(())
    }
}

/// The canonical tool-call descriptor `{"arguments": A, "name": N}` as JCS text
/// (`aep2.md#mcp-request-hash`): `N` the tool name (1 ..= [`MAX_TOOL_NAME_BYTES`] bytes), `A`
/// the arguments object, `{}` when absent. Numbers take their RFC 8785 form (`1.50` → `1.5`)
/// and members are sorted by UTF-16 code units, so every encoding of the same call gives one
/// text. Errors: `request_descriptor_invalid` (bad name, arguments not an object).
pub fn request_descriptor(name: &str, arguments: Option<&Value>) -> Result<String> {
    check_name(name).map_err(|e| Error::new(Reason::RequestDescriptorInvalid, e))?;
    let arguments = match arguments {
        None => Value::Object(Object::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            return Err(Error::new(
                Reason::RequestDescriptorInvalid,
                format!("arguments is {}, not an object", other.type_name()),
            ));
        }
    };
    let o = Object::new().with("arguments", arguments).with("name", s(name));
    Ok(json::to_canonical(&Value::Object(o)))
}

/// `SHA-256("AEP2/mcp-tool-call/v1" ‖ 0x00 ‖ request_descriptor(name, arguments))`.
pub fn request_hash(name: &str, arguments: Option<&Value>) -> Result<[u8; 32]> {
    let descriptor = request_descriptor(name, arguments)?;
    Ok(aep2::hash::sha256(&[MCP_TOOL_CALL_TAG, descriptor.as_bytes()].concat()))
}

/// What [`extract`] found: the carrier, the network an x402 payload names, and the envelope
/// JSON (not yet schema-checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// The `_meta` key it came in.
    pub carrier: Carrier,
    /// `accepted.network` of an x402 payload; `None` for [`MANDATE_KEY`].
    pub network: Option<String>,
    /// The AEP2 envelope.
    pub envelope: Value,
}

/// An object received inside a larger message, held to the AEP2 size and JSON limits: its
/// compact text must be what an envelope header could carry.
fn bounded(v: &Value) -> Result<Value> {
    decode_json_bytes(json::to_compact(v).as_bytes())
}

fn string<'v>(obj: &'v Object, what: &str, name: &str) -> Result<&'v str> {
    match obj.get(name) {
        Some(Value::String(t)) => Ok(t),
        Some(other) => Err(Error::new(
            Reason::FieldType,
            format!("{what}.{name} must be a string, found {}", other.type_name()),
        )),
        None => Err(Error::new(Reason::MissingField, format!("{what}.{name}"))),
    }
}

/// Extracts the envelope from `params._meta` (`aep2.md#mcp-carriers`).
///
/// Exactly one of [`MANDATE_KEY`] and [`X402_PAYMENT_KEY`] must be present: neither (or no
/// `_meta`) is `payment_missing`, both are `payment_ambiguous`. [`MANDATE_KEY`] holds the
/// envelope object, or a string decoded as an `X-Payment-Mandate` header (`aep2.md#decoding-rules`);
/// any other JSON type is `field_type`. [`X402_PAYMENT_KEY`] holds an x402 v2 `PaymentPayload`
/// object checked as `aep2.md#x402-payload` checks its decoded header: `field_type`,
/// `unknown_field`, `missing_field`, `x402_version_unsupported`, `x402_scheme_unsupported`.
/// Either object must, written compactly, fit the envelope limits (`header_too_large`,
/// `json_limit_exceeded`).
pub fn extract(call: &ToolCall) -> Result<Extracted> {
    let meta = call.meta.as_ref();
    let native = meta.and_then(|m| m.get(MANDATE_KEY));
    let x402 = meta.and_then(|m| m.get(X402_PAYMENT_KEY));
    match (native, x402) {
        (None, None) => Err(Error::new(
            Reason::PaymentMissing,
            format!("params._meta has neither {MANDATE_KEY:?} nor {X402_PAYMENT_KEY:?}"),
        )),
        (Some(_), Some(_)) => Err(Error::new(
            Reason::PaymentAmbiguous,
            format!("params._meta has both {MANDATE_KEY:?} and {X402_PAYMENT_KEY:?}"),
        )),
        (Some(v), None) => {
            let envelope = match v {
                Value::Object(_) => bounded(v)?,
                Value::String(header) => decode_header(header)?,
                other => {
                    return Err(Error::new(
                        Reason::FieldType,
                        format!(
                            "{MANDATE_KEY} must be an object or a string, found {}",
                            other.type_name()
                        ),
                    ));
                }
            };
            Ok(Extracted {
                carrier: Carrier::Mandate,
                network: None,
                envelope,
            })
        }
        (None, Some(v)) => {
            if !matches!(v, Value::Object(_)) {
                return Err(Error::new(
                    Reason::FieldType,
                    format!("{X402_PAYMENT_KEY} must be an object, found {}", v.type_name()),
                ));
            }
            let (network, envelope) = aep2_x402::read_payload_v2(&bounded(v)?)?;
            Ok(Extracted {
                carrier: Carrier::X402Payment,
                network: Some(network),
                envelope,
            })
        }
    }
}

/// Extraction, the network check and core verification at `now`, as one [`Report`] (with the
/// carrier once extraction succeeded). An x402 payload naming a network other than
/// [`aep2_x402::network_of`] the verifier's domain is `x402_network_mismatch`.
pub fn check_call(call: &ToolCall, verifier: &Verifier, now: Option<u64>) -> (Option<Carrier>, Report) {
    let extracted = match extract(call) {
        Ok(e) => e,
        Err(e) => return (None, Report::failed(None, e)),
    };
    let report = aep2_x402::check_payload(extracted.network.as_deref(), &extracted.envelope, verifier, now);
    (Some(extracted.carrier), report)
}

/// Tool call → verified, policy-checked mandate (Intent Mode): [`check_call`] at
/// [`PayeePolicy::core_time`], then [`PayeePolicy::check`] at `now`. For request binding give
/// the policy [`ToolCall::request_hash`]. Replay is the caller's next step.
pub fn verify_call(
    call: &ToolCall,
    verifier: &Verifier,
    policy: &PayeePolicy,
    now: u64,
) -> Result<(Carrier, Verified)> {
    let (carrier, report) = check_call(call, verifier, Some(policy.core_time(now)));
    let v = report.into_result()?;
    policy.check(&v, now)?;
    Ok((carrier.unwrap_or(Carrier::Mandate), v))
}

/// Like [`verify_call_for_quote`], returning the core [`Report`] with the quote's verdict
/// folded in.
pub fn check_call_for_quote(
    call: &ToolCall,
    verifier: &Verifier,
    quote: &PaymentRequest,
    now: u64,
    options: OrderOptions,
) -> (Option<Carrier>, Report) {
    if let Err(e) = quote.check_verifier(verifier) {
        return (None, Report::failed(None, e));
    }
    let (carrier, mut report) = check_call(call, verifier, Some(now.saturating_sub(options.clock_skew)));
    if report.verdict.is_ok()
        && let (Some(signed), Some(digest), Some(domain)) = (&report.signed, &report.digest, &report.domain)
    {
        let v = Verified {
            signed: signed.clone(),
            digest: digest.clone(),
            domain: domain.clone(),
        };
        report.verdict = quote.check(&v, now, options);
    }
    (carrier, report)
}

/// Tool call → mandate accepted against the payee's own Order Mode quote (never a copy sent
/// with the call, `aep2.md#payment-request-acceptance`): the quote's verifier check, core
/// verification at `now − clock_skew`, then [`PaymentRequest::check`].
pub fn verify_call_for_quote(
    call: &ToolCall,
    verifier: &Verifier,
    quote: &PaymentRequest,
    now: u64,
    options: OrderOptions,
) -> Result<(Carrier, Verified)> {
    let (carrier, report) = check_call_for_quote(call, verifier, quote, now, options);
    let v = report.into_result()?;
    Ok((carrier.unwrap_or(Carrier::Mandate), v))
}

/// Request binding to this call alone (`aep2.md#request-binding`): `ref` must be
/// [`ToolCall::request_hash`] (`request_mismatch`); a `solana-mvp` mandate cannot be bound and
/// is `request_mismatch`. This is the last check of a policy configured with the call's hash.
pub fn check_request_binding(call: &ToolCall, v: &Verified) -> Result<()> {
    let expected = call.request_hash()?;
    let reference = match v.mandate() {
        Mandate::Eip712(m) => Some(m.reference),
        Mandate::Ed25519(m) => Some(m.reference),
        Mandate::SolanaMvp(_) => None,
    };
    match reference {
        Some(r) if r == expected => Ok(()),
        Some(_) => Err(Error::new(
            Reason::RequestMismatch,
            "ref is not the hash of this tool call",
        )),
        None => Err(Error::new(
            Reason::RequestMismatch,
            "a solana-mvp mandate cannot be bound to a tool call",
        )),
    }
}

/// The JSON-RPC error code for an error of [`ToolCall::parse`] (`aep2.md#mcp-tool-call`):
/// `-32700` (parse error) for the decode stage, `-32600` (invalid request) for
/// `mcp_request_invalid`, `-32602` (invalid params) for `mcp_params_invalid`. `None` for every
/// other code: payment faults are tool results ([`payment_required_result`]), never protocol
/// errors.
pub fn jsonrpc_error_code(reason: Reason) -> Option<i64> {
    match reason {
        Reason::McpRequestInvalid => Some(-32600),
        Reason::McpParamsInvalid => Some(-32602),
        Reason::PaymentMissing | Reason::PaymentAmbiguous => None,
        r if r.stage() == Stage::Decode => Some(-32700),
        _ => None,
    }
}

/// A JSON-RPC error response for a message [`ToolCall::parse`] rejected: `error.code` from
/// [`jsonrpc_error_code`] (`-32600` for a code without one), `error.message` the reason code,
/// `error.data.reason` the reason code again. `id` is `null` when the request's id is unknown.
pub fn jsonrpc_error(id: Option<&Value>, e: &Error) -> Value {
    let code = jsonrpc_error_code(e.reason()).unwrap_or(-32600);
    Value::Object(
        Object::new()
            .with("jsonrpc", s("2.0"))
            .with("id", id.cloned().unwrap_or(Value::Null))
            .with(
                "error",
                Value::Object(
                    Object::new()
                        .with("code", Value::Number(code.to_string()))
                        .with("message", s(e.code()))
                        .with("data", Value::Object(Object::new().with("reason", s(e.code())))),
                ),
            ),
    )
}

/// A JSON-RPC success response carrying `result`.
pub fn jsonrpc_result(id: &Value, result: Value) -> Value {
    Value::Object(
        Object::new()
            .with("jsonrpc", s("2.0"))
            .with("id", id.clone())
            .with("result", result),
    )
}

fn text_item(text: String) -> Value {
    Value::Object(Object::new().with("type", s("text")).with("text", s(text)))
}

/// The `CallToolResult` that asks for payment or reports a payment failure
/// (`aep2.md#mcp-results`): `isError: true`; `structuredContent` the x402 v2 `PaymentRequired`
/// (`resource.url` [`ToolCall::resource_url`], `error` the reason code, `accepts` the payee's
/// terms: [`PaymentRequirements::for_policy`] or, in Order Mode,
/// [`PaymentRequirements::for_quote`]; at least one entry for the result to be valid under
/// `aep2.md#mcp-results`); `content[0]` the same object as JSON text, `content[1]`
/// a sentence for the model; `_meta[`[`REASON_KEY`]`]` the reason code.
pub fn payment_required_result(call: &ToolCall, accepts: Vec<PaymentRequirements>, error: &Error) -> Value {
    let required = PaymentRequired {
        error: Some(error.code().to_owned()),
        resource: ResourceInfo {
            url: call.resource_url(),
            description: None,
            mime_type: None,
        },
        accepts,
    };
    let structured = required.to_json();
    let terms: Vec<String> = required
        .accepts
        .iter()
        .map(|a| format!("{} of asset {} to {} on {}", a.amount, a.asset, a.pay_to, a.network))
        .collect();
    let detail = if error.detail().is_empty() {
        String::new()
    } else {
        format!(" ({})", error.detail())
    };
    let sentence = format!(
        "Payment required to call tool {:?}: {}{detail}. Pay {} with an AEP2 mandate in params._meta[\"{MANDATE_KEY}\"] (or an x402 payment of scheme aep2 in params._meta[\"{X402_PAYMENT_KEY}\"]) and call again.",
        call.name,
        error.code(),
        if terms.is_empty() {
            "the payee's price".to_owned()
        } else {
            terms.join(" or ")
        },
    );
    Value::Object(
        Object::new()
            .with(
                "content",
                Value::Array(vec![text_item(json::to_compact(&structured)), text_item(sentence)]),
            )
            .with("structuredContent", structured)
            .with("isError", Value::Bool(true))
            .with("_meta", Value::Object(Object::new().with(REASON_KEY, s(error.code())))),
    )
}

/// Reads a payment-required result (the payer's side): `isError` must be `true`; the
/// `PaymentRequired` is `structuredContent`, or else the JSON text of `content[0]`, read under
/// the x402 rules (`aep2.md#x402-payment-required`). Errors: `field_type` (not such a result)
/// and the codes of `PaymentRequired` decoding.
pub fn read_payment_required(result: &Value) -> Result<PaymentRequired> {
    let Value::Object(o) = result else {
        return Err(Error::new(Reason::FieldType, "result must be an object"));
    };
    if o.get("isError") != Some(&Value::Bool(true)) {
        return Err(Error::new(
            Reason::FieldType,
            "not an error result (isError is not true)",
        ));
    }
    let structured = match o.get("structuredContent") {
        Some(v) => v.clone(),
        None => {
            let text = match o.get("content") {
                Some(Value::Array(items)) => match items.first() {
                    Some(Value::Object(item)) => string(item, "content[0]", "text")?.to_owned(),
                    _ => return Err(Error::new(Reason::FieldType, "content[0] must be an object")),
                },
                _ => return Err(Error::new(Reason::FieldType, "content must be an array")),
            };
            decode_json_bytes(text.as_bytes())?
        }
    };
    PaymentRequired::decode(&base64_encode(json::to_compact(&structured).as_bytes()))
}

/// Adds the accepted payment's `PaymentResponse` to a tool's `CallToolResult` under the
/// `_meta` key answering the carrier ([`Carrier::response_key`]), keeping the result's other
/// `_meta` members.
pub fn attach_payment_response(result: &mut Object, carrier: Carrier, response: &PaymentResponse) {
    let mut meta = match result.remove("_meta") {
        Some(Value::Object(m)) => m,
        _ => Object::new(),
    };
    meta.insert(carrier.response_key(), response.to_json());
    result.insert("_meta", Value::Object(meta));
}

/// A successful `CallToolResult` with text content and the payment response
/// ([`attach_payment_response`]).
pub fn paid_text_result(text: impl Into<String>, carrier: Carrier, response: &PaymentResponse) -> Value {
    let mut o = Object::new()
        .with("content", Value::Array(vec![text_item(text.into())]))
        .with("isError", Value::Bool(false));
    attach_payment_response(&mut o, carrier, response);
    Value::Object(o)
}

#[doc(hidden)]
pub mod fuzzing;

#[cfg(feature = "rmcp")]
pub mod paid;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn resource_urls_are_percent_encoded() {
        let c = ToolCall::new(Value::from_u64(1), "get weather/é", None);
        assert_eq!(c.resource_url(), "mcp://tool/get%20weather%2F%C3%A9");
    }

    #[test]
    fn jsonrpc_codes() {
        assert_eq!(jsonrpc_error_code(Reason::JsonInvalid), Some(-32700));
        assert_eq!(jsonrpc_error_code(Reason::HeaderTooLarge), Some(-32700));
        assert_eq!(jsonrpc_error_code(Reason::McpRequestInvalid), Some(-32600));
        assert_eq!(jsonrpc_error_code(Reason::McpParamsInvalid), Some(-32602));
        assert_eq!(jsonrpc_error_code(Reason::PaymentMissing), None);
        assert_eq!(jsonrpc_error_code(Reason::SignatureInvalid), None);
    }

    #[test]
    fn ids_are_strings_or_integers() {
        let msg = |id: &str| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"t"}}}}"#);
        for ok in ["1", "-7", "0", "\"abc\""] {
            assert!(ToolCall::parse(&msg(ok)).is_ok(), "{ok}");
        }
        for bad in ["null", "1.5", "1e3", "true", "{}"] {
            assert_eq!(
                ToolCall::parse(&msg(bad)).unwrap_err().reason(),
                Reason::McpRequestInvalid,
                "{bad}"
            );
        }
    }
}
