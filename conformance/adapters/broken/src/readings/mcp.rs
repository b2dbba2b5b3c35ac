//! Reading variants of MCP (`aep2.md#mcp-tool-call`, `#mcp-carriers`, `#mcp-order-mode`, `#mcp-request-hash`).
//!
//! Each reading runs `judge`, a full `extract_mcp` pipeline built from the project's parts
//! (`aep2_mcp::ToolCall`, `aep2_x402::read_payload_v2`, core verification, the quote's
//! checks) with one `Knobs` setting changed, and answers only where its verdict differs from
//! the same pipeline read as the spec says; everywhere else the reference answers.

use super::x402;
use super::{invalid, valid};
use aep2::envelope::{decode_header, decode_json_bytes};
use aep2::json::{self, Limits, Value};
use aep2::{OrderOptions, PaymentRequest, Reason, Verifier};
use aep2_conformance::protocol::CaseInput;
use aep2_mcp::{MANDATE_KEY, MAX_MESSAGE_BYTES, MAX_TOOL_NAME_BYTES, MESSAGE_LIMITS, ToolCall, X402_PAYMENT_KEY};
use aep2_vectors::check::{Answer, context_domain};
use aep2_vectors::model::Context;
use serde_json::Value as J;

/// One other reading of a choice point of this area (`conformance/README.md`, "Choice points
/// of the spec").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// §12.2 steps 1–2: the message is parsed first and its size checked after (a message over
    /// 65536 bytes that is not JSON is `json_invalid`); the spec checks the size first.
    JsonBeforeSize,
    /// §12.2 steps 3–4: `params` (name, `arguments`, `_meta`) is checked before the JSON-RPC
    /// members; the spec checks `jsonrpc`, `id`, `method` first.
    ParamsBeforeRpc,
    /// §12.3 steps 2–3: each present carrier's JSON type is checked before the count, so a
    /// non-object carrier next to another is `field_type`; the spec says `payment_ambiguous`.
    TypeBeforeAmbiguity,
    /// §12.3 step 2: with both carriers `dev.aep2/mandate` is preferred and `x402/payment`
    /// ignored; the spec has no precedence (`payment_ambiguous`).
    PreferNativeCarrier,
    /// §12.3 steps 4–5: the `PaymentPayload`'s checks of step 4 run before the limits of step 5
    /// (the whole object is still held to them, afterwards); the spec applies the limits as
    /// soon as the value is known to be an object, as decoding precedes a header's checks.
    LimitsAfterPayload,
    /// §12.3 step 5: only the envelope in `payload` is held to the envelope limits (after the
    /// checks of step 4), not the whole `PaymentPayload` the spec holds to them.
    LimitsOnEnvelope,
    /// §12.5, §9.4 check 0: the quote is checked before the message is read (§12.2); the spec
    /// reads the message first (its faults are JSON-RPC errors, whatever the payment).
    QuoteBeforeMessage,
    /// §12.5, §9.4 check 0: the quote is checked after the carriers (§12.3), just before core
    /// verification; the spec checks it between §12.2 and §12.3.
    QuoteAfterCarriers,
    /// `conformance.md#inputs`: an MCP quote's clock skew, which the case does not state, is
    /// taken as the reference payee's default (5 s) instead of 0.
    OrderSkewDefault,
    /// `conformance.md#inputs`: an MCP quote's maximum horizon, which the case does not state,
    /// is taken as the reference payee's default (3600 s) instead of 86400.
    OrderHorizonDefault,
    /// §12.2 message limits: the nesting depth is counted from the arguments (the arguments
    /// object is depth 1 and may nest 16 deep; the rest of the message likewise), not from
    /// the message object.
    DepthFromArguments,
    /// §12.6: the arguments of a tool-call hash read alone (`mcp_request_hash`) are counted as
    /// inside a message (the arguments object at depth 3, so 14 levels remain); the spec
    /// counts them from the arguments object, depth 1.
    HashDepthAsInMessage,
    /// §12.5 step 3, §9.4 "where the quote comes from": the mandate is judged against the quote
    /// echoed in `accepted.extra.quote` when the retry carries one, not the payee's own.
    EchoedQuote,
    /// §12.2 step 3: an `id` that is an integral number written with a fraction or exponent
    /// (`7.0`, `7e0`) is read as that integer, as generic JSON libraries do; the spec requires a
    /// JSON integer token (`mcp_request_invalid`).
    IdIntegralNumber,
    /// §12.2 step 4, §12.6: the tool name's limit of 128 counted in characters, not UTF-8 bytes.
    NameLimitInCharacters,
}

impl Reading {
    /// Every reading, in the order of the README's table.
    pub const ALL: &'static [Reading] = &[
        Reading::JsonBeforeSize,
        Reading::ParamsBeforeRpc,
        Reading::TypeBeforeAmbiguity,
        Reading::PreferNativeCarrier,
        Reading::LimitsAfterPayload,
        Reading::LimitsOnEnvelope,
        Reading::QuoteBeforeMessage,
        Reading::QuoteAfterCarriers,
        Reading::OrderSkewDefault,
        Reading::OrderHorizonDefault,
        Reading::DepthFromArguments,
        Reading::HashDepthAsInMessage,
        Reading::EchoedQuote,
        Reading::IdIntegralNumber,
        Reading::NameLimitInCharacters,
    ];

    /// The choice point's id in `conformance/README.md`, which is also the `--variant` name.
    pub fn id(self) -> &'static str {
        match self {
            Reading::JsonBeforeSize => "CP-mcp-order-size-json",
            Reading::ParamsBeforeRpc => "CP-mcp-order-rpc-params",
            Reading::TypeBeforeAmbiguity => "CP-mcp-order-ambiguous-type",
            Reading::PreferNativeCarrier => "CP-mcp-precedence",
            Reading::LimitsAfterPayload => "CP-mcp-limits-placement",
            Reading::LimitsOnEnvelope => "CP-mcp-limits-object",
            Reading::QuoteBeforeMessage => "CP-mcp-quote-placement",
            Reading::QuoteAfterCarriers => "CP-mcp-quote-before-carriers",
            Reading::OrderSkewDefault => "CP-mcp-order-defaults",
            Reading::OrderHorizonDefault => "CP-mcp-order-default-horizon",
            Reading::DepthFromArguments => "CP-mcp-depth-origin",
            Reading::HashDepthAsInMessage => "CP-mcp-hash-depth-origin",
            Reading::EchoedQuote => "CP-order-quote-source",
            Reading::IdIntegralNumber => "CP-mcp-id-integer-form",
            Reading::NameLimitInCharacters => "CP-mcp-name-bytes",
        }
    }
}

/// The answer of `reading` to a case it governs; `None` for every other case.
pub fn answer(reading: Reading, case: &CaseInput) -> Option<Result<Answer, String>> {
    match case.kind.as_str() {
        "extract_mcp" => {
            let mut k = Knobs::default();
            match reading {
                Reading::JsonBeforeSize => k.json_before_size = true,
                Reading::ParamsBeforeRpc => k.params_before_rpc = true,
                Reading::TypeBeforeAmbiguity => k.type_before_ambiguity = true,
                Reading::PreferNativeCarrier => k.prefer_native = true,
                Reading::LimitsAfterPayload => k.limits_after_payload = true,
                Reading::LimitsOnEnvelope => k.limits_on_envelope = true,
                Reading::QuoteBeforeMessage => k.quote_before_message = true,
                Reading::QuoteAfterCarriers => k.quote_after_carriers = true,
                Reading::OrderSkewDefault => k.clock_skew = 5,
                Reading::OrderHorizonDefault => k.max_horizon = 3600,
                Reading::DepthFromArguments => k.depth_from_arguments = true,
                Reading::EchoedQuote => k.echoed_quote = true,
                Reading::HashDepthAsInMessage | Reading::NameLimitInCharacters => return None,
                Reading::IdIntegralNumber => return integral_id(case),
            }
            judge(case, k)
        }
        "mcp_request_hash" if reading == Reading::HashDepthAsInMessage => hash_depth_in_message(case),
        "mcp_request_hash" if reading == Reading::NameLimitInCharacters => name_in_characters(case),
        _ => None,
    }
}

/// The settings of the `extract_mcp` pipeline; [`Knobs::default`] reads every step as the
/// spec does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Knobs {
    json_before_size: bool,
    params_before_rpc: bool,
    type_before_ambiguity: bool,
    prefer_native: bool,
    limits_after_payload: bool,
    limits_on_envelope: bool,
    quote_before_message: bool,
    quote_after_carriers: bool,
    clock_skew: u64,
    max_horizon: u64,
    depth_from_arguments: bool,
    echoed_quote: bool,
    /// A reading of the x402 `PaymentPayload`'s checks (`aep2.md#x402-payload`), which
    /// `x402/payment` is checked by.
    pub(crate) x402: Option<x402::Reading>,
}

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs {
            json_before_size: false,
            params_before_rpc: false,
            type_before_ambiguity: false,
            prefer_native: false,
            limits_after_payload: false,
            limits_on_envelope: false,
            quote_before_message: false,
            quote_after_carriers: false,
            clock_skew: 0,
            max_horizon: aep2::policy::DEFAULT_MAX_HORIZON,
            depth_from_arguments: false,
            echoed_quote: false,
            x402: None,
        }
    }
}

/// The pipeline's verdict under `knobs`, as an answer where it differs from the verdict read as
/// the spec says (`None` otherwise: the reference answers, with its intermediates).
pub(crate) fn judge(case: &CaseInput, knobs: Knobs) -> Option<Result<Answer, String>> {
    let spec = match pipeline(case, Knobs::default()) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    match pipeline(case, knobs) {
        Ok(other) if other == spec => None,
        Ok(Ok(())) => Some(Ok(valid())),
        Ok(Err(r)) => Some(Ok(invalid(r))),
        Err(e) => Some(Err(e)),
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.iter().map(|(_, x)| depth(x)).max().unwrap_or(0),
        _ => 0,
    }
}

fn bounded(v: &Value) -> Result<Value, Reason> {
    decode_json_bytes(json::to_compact(v).as_bytes()).map_err(|e| e.reason())
}

/// `extract_mcp` read with `k`: §12.2, check 0 of §9.4, §12.3, then the envelope, the quote or
/// request binding. The outer error is a broken case; the inner verdict is the answer.
fn pipeline(case: &CaseInput, k: Knobs) -> Result<Result<(), Reason>, String> {
    let ctx: Context = serde_json::from_value(case.context.clone()).map_err(|e| format!("context: {e}"))?;
    let domain = context_domain(&ctx)?;
    let expected_network = aep2_x402::network_of(&domain);
    let verifier = Verifier::new(domain);
    let now = ctx.now.ok_or("extract_mcp context needs now")?;
    let text = case
        .input
        .get("request")
        .and_then(J::as_str)
        .ok_or("input.request missing")?;
    let quote = match case.input.get("quote") {
        Some(q) => Some(
            json::parse(&q.to_string(), &Limits::AEP2)
                .and_then(|v| PaymentRequest::from_json(&v))
                .map_err(|e| format!("quote: {e}"))?,
        ),
        None => None,
    };
    let binding = case.input.get("requestBinding").and_then(J::as_bool).unwrap_or(false);
    let check0 = || {
        quote
            .as_ref()
            .map_or(Ok(()), |q| q.check_verifier(&verifier).map_err(|e| e.reason()))
    };
    Ok((|| {
        if k.quote_before_message {
            check0()?;
        }
        // §12.2 steps 1 and 2.
        let size = || {
            if text.len() > MAX_MESSAGE_BYTES {
                Err(Reason::HeaderTooLarge)
            } else {
                Ok(())
            }
        };
        if !k.json_before_size {
            size()?;
        }
        let limits = if k.depth_from_arguments {
            Limits {
                max_depth: MESSAGE_LIMITS.max_depth + 2,
                ..MESSAGE_LIMITS
            }
        } else {
            MESSAGE_LIMITS
        };
        let message = json::parse(text, &limits).map_err(|e| e.reason())?;
        if k.json_before_size {
            size()?;
        }
        if k.depth_from_arguments {
            // The arguments object counts as depth 1, and so does the message without them.
            let mut rest = message.clone();
            let mut arguments_depth = 0;
            if let Value::Object(o) = &mut rest
                && let Some(Value::Object(p)) = o.get("params")
            {
                let mut p = p.clone();
                arguments_depth = p.remove("arguments").as_ref().map_or(0, depth);
                o.insert("params", Value::Object(p));
            }
            if depth(&rest) > MESSAGE_LIMITS.max_depth || arguments_depth > MESSAGE_LIMITS.max_depth {
                return Err(Reason::JsonLimitExceeded);
            }
        }
        // §12.2 steps 3 and 4.
        if k.params_before_rpc
            && let Value::Object(o) = &message
            && let Some(Value::Object(p)) = o.get("params")
        {
            let name_ok =
                matches!(p.get("name"), Some(Value::String(n)) if !n.is_empty() && n.len() <= MAX_TOOL_NAME_BYTES);
            let object_or_absent = |m: &str| matches!(p.get(m), None | Some(Value::Object(_)));
            if !name_ok || !object_or_absent("arguments") || !object_or_absent("_meta") {
                return Err(Reason::McpParamsInvalid);
            }
        }
        let call = ToolCall::from_json(&message).map_err(|e| e.reason())?;
        if !k.quote_before_message && !k.quote_after_carriers {
            check0()?;
        }
        // What follows the carriers: the network, check 0 when it runs late, core
        // verification, and the quote's checks or request binding.
        let rest = |network: Option<&str>, envelope: &Value, payload: Option<&Value>| -> Result<(), Reason> {
            if let Some(n) = network
                && n != expected_network
            {
                return Err(Reason::X402NetworkMismatch);
            }
            if k.quote_after_carriers {
                check0()?;
            }
            let core_time = if quote.is_some() {
                now.saturating_sub(k.clock_skew)
            } else {
                now
            };
            let v = verifier
                .check_value(envelope, Some(core_time))
                .into_result()
                .map_err(|e| e.reason())?;
            if let Some(q) = &quote {
                let echoed = payload
                    .filter(|_| k.echoed_quote)
                    .and_then(|p| match p {
                        Value::Object(o) => o.get("accepted"),
                        _ => None,
                    })
                    .and_then(|a| match a {
                        Value::Object(o) => o.get("extra"),
                        _ => None,
                    })
                    .and_then(|x| match x {
                        Value::Object(o) => o.get("quote"),
                        _ => None,
                    })
                    .and_then(|q| PaymentRequest::from_json(q).ok());
                let options = OrderOptions::default()
                    .with_clock_skew(k.clock_skew)
                    .with_max_horizon(k.max_horizon);
                echoed
                    .as_ref()
                    .unwrap_or(q)
                    .check(&v, now, options)
                    .map_err(|e| e.reason())?;
            }
            if binding {
                aep2_mcp::check_request_binding(&call, &v).map_err(|e| e.reason())?;
            }
            Ok(())
        };
        // §12.3.
        let meta = call.meta.as_ref();
        let native = meta.and_then(|m| m.get(MANDATE_KEY));
        let x402_payment = meta.and_then(|m| m.get(X402_PAYMENT_KEY));
        if k.type_before_ambiguity {
            if native.is_some_and(|v| !matches!(v, Value::Object(_) | Value::String(_))) {
                return Err(Reason::FieldType);
            }
            if x402_payment.is_some_and(|v| !matches!(v, Value::Object(_))) {
                return Err(Reason::FieldType);
            }
        }
        match (native, x402_payment) {
            (None, None) => Err(Reason::PaymentMissing),
            (Some(_), Some(_)) if !k.prefer_native => Err(Reason::PaymentAmbiguous),
            (Some(v), _) => {
                let envelope = match v {
                    Value::Object(_) => bounded(v)?,
                    Value::String(header) => decode_header(header).map_err(|e| e.reason())?,
                    _ => return Err(Reason::FieldType),
                };
                rest(None, &envelope, None)
            }
            (None, Some(v)) => {
                if !matches!(v, Value::Object(_)) {
                    return Err(Reason::FieldType);
                }
                if k.limits_after_payload || k.limits_on_envelope {
                    let (network, envelope) = aep2_x402::read_payload_v2(v).map_err(|e| e.reason())?;
                    let envelope = if k.limits_on_envelope {
                        bounded(&envelope)?
                    } else {
                        bounded(v)?;
                        envelope
                    };
                    return rest(Some(&network), &envelope, Some(v));
                }
                let payload = bounded(v)?;
                match k.x402 {
                    Some(r) => x402::payload_steps(Some(r), &payload, x402::Form::V2, &expected_network, &|envelope| {
                        rest(None, envelope, Some(&payload))
                    }),
                    None => {
                        let (network, envelope) = aep2_x402::read_payload_v2(&payload).map_err(|e| e.reason())?;
                        rest(Some(&network), &envelope, Some(&payload))
                    }
                }
            }
        }
    })())
}

/// [`Reading::HashDepthAsInMessage`]: the arguments parsed with the depth left below the
/// arguments object of a message (depth 3 of 16).
/// [`Reading::IdIntegralNumber`]: the message with an integral non-integer `id` token written
/// as the integer, then read as the spec says.
fn integral_id(case: &CaseInput) -> Option<Result<Answer, String>> {
    let text = case.input.get("request")?.as_str()?;
    let mut message: J = serde_json::from_str(text).ok()?;
    let id = message.get("id")?.as_number()?.clone();
    if id.is_i64() || id.is_u64() {
        return None;
    }
    let n = id.as_f64()?;
    if n.fract() != 0.0 || n.abs() > 9_007_199_254_740_991.0 {
        return None;
    }
    // Integral and inside the exactly representable range, so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let integer = n as i64;
    message["id"] = J::from(integer);
    let mut rewritten = case.clone();
    rewritten.input["request"] = J::String(message.to_string());
    Some(super::reference(&rewritten))
}

/// [`Reading::NameLimitInCharacters`]: a name of at most 128 characters is accepted however
/// many bytes it has (the hash itself is not reported).
fn name_in_characters(case: &CaseInput) -> Option<Result<Answer, String>> {
    let name = case.input.get("name")?.as_str()?;
    (name.len() > MAX_TOOL_NAME_BYTES && name.chars().count() <= MAX_TOOL_NAME_BYTES).then(|| Ok(valid()))
}

fn hash_depth_in_message(case: &CaseInput) -> Option<Result<Answer, String>> {
    let Some(J::String(text)) = case.input.get("arguments") else {
        return None;
    };
    let limits = Limits {
        max_depth: MESSAGE_LIMITS.max_depth - 2,
        ..MESSAGE_LIMITS
    };
    match (json::parse(text, &limits), json::parse(text, &MESSAGE_LIMITS)) {
        (Err(e), Ok(_)) => Some(Ok(invalid(e.reason()))),
        _ => None,
    }
}
