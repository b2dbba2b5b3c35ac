//! Reading variants of the x402 carrier (`aep2.md#x402-carriers`, `#x402-payload`) and of the
//! HTTP request descriptor (`aep2.md#x402-request-hash`).
//!
//! The payload readings run the checks of `aep2.md#x402-payload` (`payload_steps`) in the
//! reading's order, on every carrier of a `PaymentPayload` (the x402 headers, and MCP's
//! `x402/payment` through [`super::mcp`]), and answer only where the verdict differs from the
//! spec's order; everywhere else the reference answers.

use super::{invalid, mcp, reference};
use aep2::envelope::decode_header;
use aep2::json::Value;
use aep2::schema::Fields;
use aep2::uint::parse_json_integer;
use aep2::{Reason, Verifier};
use aep2_conformance::protocol::CaseInput;
use aep2_vectors::check::{Answer, context_domain};
use aep2_vectors::model::Context;
use serde_json::Value as J;

/// One other reading of a choice point of this area (`conformance/README.md`, "Choice points
/// of the spec").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// §10.1 step 2: with several carriers one is preferred (`PAYMENT-SIGNATURE`, then
    /// `X-PAYMENT`, then `X-Payment-Mandate`; of a header sent twice, the first) and the others
    /// ignored; the spec has no precedence (`payment_ambiguous`).
    PreferOneCarrier,
    /// §10.1: every carrier present is decoded before their count is judged, so a carrier that
    /// does not decode gives its decode code; the spec decides ambiguity before decoding.
    DecodeBeforeAmbiguity,
    /// §10.3 checks 1–2: `x402Version` before the member set.
    Order1x2,
    /// §10.3 checks 2–3: `accepted`'s member set before `x402Version`.
    Order2x3,
    /// §10.3 checks 3–4: the scheme (and the network's type) before `accepted`'s member set.
    Order3x4,
    /// §10.3 checks 4–5: `payload`'s type before the scheme and the network's type.
    Order4x5,
    /// §10.3 checks 5–6: the network comparison before `payload`'s type.
    Order5x6,
    /// §10.3 checks 6–7: the envelope is verified and judged before the network comparison.
    Order6x7,
    /// §10.3 check 2: `x402Version` compared by numeric value (`2.0` and `2e0` are 2, as
    /// JavaScript's `JSON.parse` reads them); the spec requires the integer token.
    VersionByValue,
    /// §10.5: the 8000-byte limit applied to the canonical URL instead of the URL as sent.
    UrlLimitCanonical,
}

impl Reading {
    /// Every reading, in the order of the README's table.
    pub const ALL: &'static [Reading] = &[
        Reading::PreferOneCarrier,
        Reading::DecodeBeforeAmbiguity,
        Reading::Order1x2,
        Reading::Order2x3,
        Reading::Order3x4,
        Reading::Order4x5,
        Reading::Order5x6,
        Reading::Order6x7,
        Reading::VersionByValue,
        Reading::UrlLimitCanonical,
    ];

    /// The choice point's id in `conformance/README.md`, which is also the `--variant` name.
    pub fn id(self) -> &'static str {
        match self {
            Reading::PreferOneCarrier => "CP-x402-precedence",
            Reading::DecodeBeforeAmbiguity => "CP-x402-ambiguity-before-decode",
            Reading::Order1x2 => "CP-x402-order-1-2",
            Reading::Order2x3 => "CP-x402-order-2-3",
            Reading::Order3x4 => "CP-x402-order-3-4",
            Reading::Order4x5 => "CP-x402-order-4-5",
            Reading::Order5x6 => "CP-x402-order-5-6",
            Reading::Order6x7 => "CP-x402-order-6-7",
            Reading::VersionByValue => "CP-x402-version-number-form",
            Reading::UrlLimitCanonical => "CP-http-url-limit-as-sent",
        }
    }

    fn is_payload_reading(self) -> bool {
        !matches!(
            self,
            Reading::PreferOneCarrier | Reading::DecodeBeforeAmbiguity | Reading::UrlLimitCanonical
        )
    }
}

/// The answer of `reading` to a case it governs; `None` for every other case.
pub fn answer(reading: Reading, case: &CaseInput) -> Option<Result<Answer, String>> {
    match case.kind.as_str() {
        "extract_x402" => extract(reading, case),
        "extract_mcp" if reading.is_payload_reading() => {
            let mut knobs = mcp::Knobs::default();
            knobs.x402 = Some(reading);
            mcp::judge(case, knobs)
        }
        "http_request_hash" if reading == Reading::UrlLimitCanonical => url_limit_canonical(case),
        _ => None,
    }
}

/// The form of a `PaymentPayload`: v2 (`PAYMENT-SIGNATURE`, MCP `x402/payment`) or v1
/// (`X-PAYMENT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    V2,
    V1,
}

/// The checks of `aep2.md#x402-payload`, numbered as there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Members,
    Version,
    Accepted,
    Scheme,
    Payload,
    Network,
    Envelope,
}

const ORDER: [Step; 7] = [
    Step::Members,
    Step::Version,
    Step::Accepted,
    Step::Scheme,
    Step::Payload,
    Step::Network,
    Step::Envelope,
];

fn get<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    match v {
        Value::Object(o) => o.get(name),
        _ => None,
    }
}

/// One check on the decoded payload: its code when it fails, `None` when it passes or its
/// input is not there to judge (an earlier check of the spec's order reports that).
fn step(
    s: Step,
    decoded: &Value,
    form: Form,
    by_value: bool,
    expected_network: &str,
    envelope: &dyn Fn(&Value) -> Result<(), Reason>,
) -> Option<Reason> {
    // Where the scheme and the network are: `accepted` in v2, the payload itself in v1.
    let terms = match form {
        Form::V2 => get(decoded, "accepted").filter(|a| matches!(a, Value::Object(_))),
        Form::V1 => Some(decoded),
    };
    match s {
        Step::Members => {
            let r = match form {
                Form::V2 => Fields::with_optional(
                    decoded,
                    "PaymentPayload",
                    &["x402Version", "accepted", "payload"],
                    &["resource", "extensions"],
                ),
                Form::V1 => Fields::with_optional(
                    decoded,
                    "PaymentPayload",
                    &["x402Version", "scheme", "network", "payload"],
                    &[],
                ),
            };
            r.err().map(|e| e.reason())
        }
        Step::Version => {
            let expected: u32 = if form == Form::V2 { 2 } else { 1 };
            match get(decoded, "x402Version")? {
                Value::Number(n) => {
                    let ok = if by_value {
                        n.parse::<f64>().is_ok_and(|x| x == f64::from(expected))
                    } else {
                        parse_json_integer(n).is_ok_and(|x| x == u64::from(expected))
                    };
                    (!ok).then_some(Reason::X402VersionUnsupported)
                }
                _ => Some(Reason::FieldType),
            }
        }
        Step::Accepted => {
            if form == Form::V1 {
                return None;
            }
            let accepted = get(decoded, "accepted")?;
            Fields::with_optional(
                accepted,
                "accepted",
                &["scheme", "network", "amount", "asset", "payTo", "maxTimeoutSeconds"],
                &["extra"],
            )
            .err()
            .map(|e| e.reason())
        }
        Step::Scheme => {
            let terms = terms?;
            match get(terms, "scheme") {
                Some(Value::String(s)) if s == aep2_x402::SCHEME => {}
                Some(Value::String(_)) => return Some(Reason::X402SchemeUnsupported),
                Some(_) => return Some(Reason::FieldType),
                None => return None,
            }
            match get(terms, "network") {
                Some(Value::String(_)) | None => None,
                Some(_) => Some(Reason::FieldType),
            }
        }
        Step::Payload => match get(decoded, "payload")? {
            Value::Object(_) => None,
            _ => Some(Reason::FieldType),
        },
        Step::Network => match get(terms?, "network")? {
            Value::String(n) if n != expected_network => Some(Reason::X402NetworkMismatch),
            _ => None,
        },
        Step::Envelope => match get(decoded, "payload")? {
            p @ Value::Object(_) => envelope(p).err(),
            _ => None,
        },
    }
}

/// The verdict of the checks of `aep2.md#x402-payload` on a decoded `PaymentPayload`, in the
/// order `reading` gives them (`None`: the spec's), with `envelope` as check 7 (the envelope
/// verified and judged).
pub(crate) fn payload_steps(
    reading: Option<Reading>,
    decoded: &Value,
    form: Form,
    expected_network: &str,
    envelope: &dyn Fn(&Value) -> Result<(), Reason>,
) -> Result<(), Reason> {
    let mut order = ORDER;
    let swap = match reading {
        Some(Reading::Order1x2) => Some(0),
        Some(Reading::Order2x3) => Some(1),
        Some(Reading::Order3x4) => Some(2),
        Some(Reading::Order4x5) => Some(3),
        Some(Reading::Order5x6) => Some(4),
        Some(Reading::Order6x7) => Some(5),
        _ => None,
    };
    if let Some(i) = swap {
        order.swap(i, i + 1);
    }
    let by_value = reading == Some(Reading::VersionByValue);
    for s in order {
        if let Some(r) = step(s, decoded, form, by_value, expected_network, envelope) {
            return Err(r);
        }
    }
    Ok(())
}

const CARRIERS: [&str; 3] = [
    aep2_x402::PAYMENT_SIGNATURE,
    aep2_x402::X_PAYMENT,
    aep2_x402::X_PAYMENT_MANDATE,
];

fn carrier_of(name: &str) -> Option<usize> {
    CARRIERS.iter().position(|c| c.eq_ignore_ascii_case(name))
}

fn extract(reading: Reading, case: &CaseInput) -> Option<Result<Answer, String>> {
    let headers = case.input.get("headers").and_then(J::as_object)?;
    let present: Vec<(usize, &str, &str)> = headers
        .iter()
        .filter_map(|(name, value)| Some((carrier_of(name)?, name.as_str(), value.as_str()?)))
        .collect();
    match reading {
        Reading::PreferOneCarrier if present.len() > 1 => {
            let &(_, chosen, _) = present.iter().min_by_key(|(c, _, _)| *c)?;
            let mut input = case.input.clone();
            if let Some(J::Object(h)) = input.get_mut("headers") {
                h.retain(|name, _| carrier_of(name).is_none() || name == chosen);
            }
            let narrowed = CaseInput {
                kind: case.kind.clone(),
                context: case.context.clone(),
                input,
            };
            Some(reference(&narrowed))
        }
        Reading::DecodeBeforeAmbiguity if present.len() > 1 => present
            .iter()
            .find_map(|(_, _, value)| decode_header(value).err())
            .map(|e| Ok(invalid(e.reason()))),
        r if r.is_payload_reading() && present.len() == 1 => {
            let (carrier, _, value) = present[0];
            let form = match carrier {
                0 => Form::V2,
                1 => Form::V1,
                _ => return None,
            };
            let decoded = decode_header(value).ok()?;
            let ctx: Context = match serde_json::from_value(case.context.clone()) {
                Ok(c) => c,
                Err(e) => return Some(Err(format!("context: {e}"))),
            };
            let domain = match context_domain(&ctx) {
                Ok(d) => d,
                Err(e) => return Some(Err(e)),
            };
            let network = aep2_x402::network_of(&domain);
            let verifier = Verifier::new(domain);
            let envelope = |env: &Value| verifier.check_value(env, ctx.now).verdict.map_err(|e| e.reason());
            let spec = payload_steps(None, &decoded, form, &network, &envelope);
            let other = payload_steps(Some(r), &decoded, form, &network, &envelope);
            match other {
                _ if other == spec => None,
                Ok(()) => Some(Ok(super::valid())),
                Err(reason) => Some(Ok(invalid(reason))),
            }
        }
        _ => None,
    }
}

/// [`Reading::UrlLimitCanonical`]: a URL longer than the limit as sent is canonicalised first
/// (scheme and authority by the reference, path and query kept as sent, fragment dropped) and
/// the limit applied to the result.
fn url_limit_canonical(case: &CaseInput) -> Option<Result<Answer, String>> {
    let text = |k: &str| case.input.get(k).and_then(J::as_str);
    let (method, url) = (text("method")?, text("url")?);
    if url.len() <= aep2_x402::MAX_URL_BYTES || !url.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return None;
    }
    let no_fragment = url.split('#').next().unwrap_or("");
    let start = no_fragment.find("://")? + 3;
    let split = no_fragment[start..]
        .find(['/', '?'])
        .map_or(no_fragment.len(), |i| start + i);
    let (origin, path_query) = no_fragment.split_at(split);
    let descriptor = aep2_x402::request_descriptor(method, origin, b"").ok()?;
    let canonical_origin = serde_json::from_str::<J>(&descriptor)
        .ok()?
        .get("url")?
        .as_str()?
        .to_owned();
    let canonical = match path_query {
        "" => canonical_origin,
        p => format!("{}{p}", canonical_origin.trim_end_matches('/')),
    };
    if canonical.len() > aep2_x402::MAX_URL_BYTES {
        return None;
    }
    let mut input = case.input.clone();
    input["url"] = J::String(canonical);
    Some(reference(&CaseInput {
        kind: case.kind.clone(),
        context: case.context.clone(),
        input,
    }))
}
