//! # aep2-x402
//!
//! The x402 binding of AEP2 (spec `aep2.md#binding-x402`): pure functions over header maps,
//! strings and bytes, no HTTP framework.
//!
//! - [`extract`] / [`extract_mandate`]: the AEP2 envelope from the payment headers of a request
//!   (`PAYMENT-SIGNATURE` x402 v2, `X-PAYMENT` x402 v1, `X-Payment-Mandate` FluxA MVP), with
//!   the precedence rule of `aep2.md#x402-carriers` (exactly one carrier, else
//!   `payment_ambiguous`).
//! - [`verify_headers`] / [`verify_headers_for_quote`]: headers → [`Verified`] under a
//!   [`PayeePolicy`] or an Order Mode [`PaymentRequest`].
//! - [`PaymentRequired`] (`PAYMENT-REQUIRED`), [`PaymentRequirements`] (scheme `aep2`),
//!   [`PaymentResponse`] (`PAYMENT-RESPONSE`).
//! - [`MvpBody`]: the 402 body that FluxA MVP and x402 v1 clients both read
//!   ([`MvpBody::payment_required_for`], with [`PaymentRequirementsV1`] entries), and the error
//!   bodies ([`MvpBody::rejection_with_status`], the MVP codes of [`mvp_error_code_for`]).
//! - [`request_hash`]: the canonical HTTP request descriptor and its hash for request binding.
//! - [`http_status`]: the HTTP status a resource server answers a rejection with.

use aep2::codec::{base64_encode, hex_encode_0x};
use aep2::envelope::decode_header;
use aep2::json::{self, Object, Value};
use aep2::schema::Fields;
use aep2::uint::parse_json_integer;
use aep2::{
    Domain, Error, OrderOptions, PayeePolicy, PaymentRequest, Profile, Reason, Receipt, Report, Result, Stage,
    Verified, Verifier,
};

mod mvp;
mod v1;

pub use mvp::{MvpBody, mvp_error_code, mvp_error_code_for};
pub use v1::{PaymentRequiredV1, PaymentRequirementsV1};

/// The x402 scheme id of AEP2.
pub const SCHEME: &str = "aep2";
/// The x402 v2 request header carrying a `PaymentPayload`.
pub const PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
/// The x402 v1 request header carrying a `PaymentPayload`.
pub const X_PAYMENT: &str = "X-PAYMENT";
/// The FluxA MVP request header carrying the bare envelope.
pub const X_PAYMENT_MANDATE: &str = "X-Payment-Mandate";
/// The x402 v2 response header carrying `PaymentRequired` (status 402).
pub const PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
/// The x402 v2 response header carrying the settlement response.
pub const PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";
/// The network string of the domain-less `solana-mvp` profile (not a real chain: a
/// `solana-mvp` signature is valid on every cluster and program).
pub const SOLANA_MVP_NETWORK: &str = "aep2:solana-mvp";
/// Longest method token a request descriptor takes, in bytes.
pub const MAX_METHOD_BYTES: usize = 32;
/// Longest URL a request descriptor takes, in bytes: the request-line length RFC 9112 §3
/// recommends every HTTP recipient supports.
pub const MAX_URL_BYTES: usize = 8000;
/// Domain-separation tag of the HTTP request hash: `AEP2/http-request/v1` and one zero byte.
pub const HTTP_REQUEST_TAG: &[u8] = b"AEP2/http-request/v1\0";

/// Which request header carried the mandate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carrier {
    /// x402 v2 `PAYMENT-SIGNATURE`: base64 of a v2 `PaymentPayload`.
    PaymentSignature,
    /// x402 v1 `X-PAYMENT`: base64 of a v1 `PaymentPayload`.
    XPayment,
    /// FluxA MVP `X-Payment-Mandate`: base64 of the envelope itself.
    XPaymentMandate,
}

impl Carrier {
    /// All carriers, in the order their header names are documented.
    pub const ALL: [Carrier; 3] = [Carrier::PaymentSignature, Carrier::XPayment, Carrier::XPaymentMandate];

    /// The header name (compared case-insensitively on input).
    pub const fn header(self) -> &'static str {
        match self {
            Carrier::PaymentSignature => PAYMENT_SIGNATURE,
            Carrier::XPayment => X_PAYMENT,
            Carrier::XPaymentMandate => X_PAYMENT_MANDATE,
        }
    }

    /// Stable name used in vectors: `payment-signature`, `x-payment`, `x-payment-mandate`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Carrier::PaymentSignature => "payment-signature",
            Carrier::XPayment => "x-payment",
            Carrier::XPaymentMandate => "x-payment-mandate",
        }
    }
}

/// What [`extract`] found: the carrier, the network the x402 payload names (none for the MVP
/// header) and the envelope JSON (MVP or native form, not yet schema-checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// The header it came in.
    pub carrier: Carrier,
    /// `accepted.network` (v2) or `network` (v1).
    pub network: Option<String>,
    /// The AEP2 envelope.
    pub envelope: Value,
}

/// The x402 network string of a domain: `eip155:<chainId>` for `eip712`, the domain's CAIP-2
/// `network` for `ed25519`, [`SOLANA_MVP_NETWORK`] for `solana-mvp`.
pub fn network_of(domain: &Domain) -> String {
    match domain {
        Domain::Eip712(d) => format!("eip155:{}", d.chain_id),
        Domain::Ed25519(d) => d.network.clone(),
        Domain::SolanaMvp => SOLANA_MVP_NETWORK.to_owned(),
    }
}

/// Extracts the mandate envelope from a request's headers (name, value pairs; names compared
/// ASCII case-insensitively).
///
/// Precedence (`aep2.md#x402-carriers`): there is none. Exactly one of `PAYMENT-SIGNATURE`,
/// `X-PAYMENT` and `X-Payment-Mandate` must be present, exactly once; none is
/// `payment_missing`, more than one (or one twice) is `payment_ambiguous`. The value is
/// decoded as an envelope header (size, canonical base64, UTF-8, strict JSON within the AEP2
/// limits), then the x402 payload is checked: an object (`field_type`) with exactly its
/// members (`unknown_field`, `missing_field`), `x402Version` 2 or 1 as the header requires
/// (`x402_version_unsupported`), scheme `aep2` (`x402_scheme_unsupported`), `network` a
/// string, `payload` an object (`field_type`).
pub fn extract<'a, I>(headers: I) -> Result<Extracted>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut found: Option<(Carrier, &str)> = None;
    for (name, value) in headers {
        let Some(carrier) = Carrier::ALL.into_iter().find(|c| c.header().eq_ignore_ascii_case(name)) else {
            continue;
        };
        if let Some((first, _)) = found {
            return Err(Error::new(
                Reason::PaymentAmbiguous,
                format!("both {} and {} are present", first.header(), carrier.header()),
            ));
        }
        found = Some((carrier, value));
    }
    let Some((carrier, value)) = found else {
        return Err(Error::new(
            Reason::PaymentMissing,
            "no PAYMENT-SIGNATURE, X-PAYMENT or X-Payment-Mandate header",
        ));
    };
    let decoded = decode_header(value)?;
    match carrier {
        Carrier::XPaymentMandate => Ok(Extracted {
            carrier,
            network: None,
            envelope: decoded,
        }),
        Carrier::PaymentSignature => {
            let (network, envelope) = read_payload_v2(&decoded)?;
            Ok(Extracted {
                carrier,
                network: Some(network),
                envelope,
            })
        }
        Carrier::XPayment => {
            let obj = members(
                &decoded,
                "PaymentPayload",
                &["x402Version", "scheme", "network", "payload"],
                &[],
            )?;
            version(obj, 1)?;
            let network = scheme_and_network(obj)?;
            Ok(Extracted {
                carrier,
                network: Some(network),
                envelope: payload(obj)?,
            })
        }
    }
}

/// Reads an x402 v2 `PaymentPayload` of scheme `aep2` (`aep2.md#x402-payload`), wherever it
/// travels (the `PAYMENT-SIGNATURE` header here, MCP `_meta["x402/payment"]`): exactly its
/// members (`unknown_field`, `missing_field`, `field_type`), `x402Version` 2
/// (`x402_version_unsupported`), `accepted.scheme` `aep2` (`x402_scheme_unsupported`), and
/// `payload` an object. Returns `accepted.network` and the envelope.
pub fn read_payload_v2(decoded: &Value) -> Result<(String, Value)> {
    let obj = members(
        decoded,
        "PaymentPayload",
        &["x402Version", "accepted", "payload"],
        &["resource", "extensions"],
    )?;
    version(obj, 2)?;
    let accepted = members(
        field(obj, "accepted")?,
        "accepted",
        &["scheme", "network", "amount", "asset", "payTo", "maxTimeoutSeconds"],
        &["extra"],
    )?;
    let network = scheme_and_network(accepted)?;
    Ok((network, payload(obj)?))
}

/// [`extract`], returning the carrier and the envelope only.
pub fn extract_mandate<'a, I>(headers: I) -> Result<(Carrier, Value)>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    extract(headers).map(|e| (e.carrier, e.envelope))
}

/// The object `v` with the members `required`, any of `optional` and no others, checked in the
/// order every AEP2 object is (`aep2::schema`).
fn members<'v>(v: &'v Value, what: &'static str, required: &[&str], optional: &[&str]) -> Result<&'v Object> {
    Fields::with_optional(v, what, required, optional).map(|f| f.object())
}

fn field<'v>(obj: &'v Object, name: &str) -> Result<&'v Value> {
    obj.get(name)
        .ok_or_else(|| Error::new(Reason::MissingField, name.to_owned()))
}

fn string<'v>(obj: &'v Object, name: &str) -> Result<&'v str> {
    match field(obj, name)? {
        Value::String(s) => Ok(s),
        other => Err(Error::new(
            Reason::FieldType,
            format!("{name} must be a string, found {}", other.type_name()),
        )),
    }
}

fn integer(obj: &Object, name: &str) -> Result<u64> {
    match field(obj, name)? {
        Value::Number(n) => parse_json_integer(n).map_err(|e| e.at(name)),
        other => Err(Error::new(
            Reason::FieldType,
            format!("{name} must be a number, found {}", other.type_name()),
        )),
    }
}

fn version(obj: &Object, expected: u64) -> Result<()> {
    let v = match field(obj, "x402Version")? {
        Value::Number(n) => parse_json_integer(n).ok(),
        other => {
            return Err(Error::new(
                Reason::FieldType,
                format!("x402Version must be a number, found {}", other.type_name()),
            ));
        }
    };
    if v == Some(expected) {
        Ok(())
    } else {
        Err(Error::new(
            Reason::X402VersionUnsupported,
            format!("this header carries x402Version {expected}"),
        ))
    }
}

fn scheme_and_network(obj: &Object) -> Result<String> {
    let scheme = string(obj, "scheme")?;
    if scheme != SCHEME {
        return Err(Error::new(
            Reason::X402SchemeUnsupported,
            format!("scheme {scheme:?}, expected \"aep2\""),
        ));
    }
    Ok(string(obj, "network")?.to_owned())
}

fn payload(obj: &Object) -> Result<Value> {
    match field(obj, "payload")? {
        v @ Value::Object(_) => Ok(v.clone()),
        other => Err(Error::new(
            Reason::FieldType,
            format!("payload must be an object, found {}", other.type_name()),
        )),
    }
}

/// Extraction, the network check and core verification at `now`, as one [`Report`] (with the
/// carrier when extraction succeeded). A payload naming a network other than
/// [`network_of`] the verifier's domain is `x402_network_mismatch`.
pub fn check_headers<'a, I>(headers: I, verifier: &Verifier, now: Option<u64>) -> (Option<Carrier>, Report)
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let extracted = match extract(headers) {
        Ok(e) => e,
        Err(e) => return (None, Report::failed(None, e)),
    };
    (
        Some(extracted.carrier),
        check_payload(extracted.network.as_deref(), &extracted.envelope, verifier, now),
    )
}

/// The network check and core verification of an extracted payment (shared by every carrier
/// of an x402 payload: HTTP headers here, MCP `_meta` in `aep2-mcp`): a payload naming a
/// network other than [`network_of`] the verifier's domain is `x402_network_mismatch`.
pub fn check_payload(network: Option<&str>, envelope: &Value, verifier: &Verifier, now: Option<u64>) -> Report {
    if let Some(network) = network {
        let expected = network_of(verifier.expected());
        if network != expected {
            let e = Error::new(
                Reason::X402NetworkMismatch,
                format!("payload is for {network}, this payee accepts {expected}"),
            );
            return Report::failed(None, e);
        }
    }
    verifier.check_value(envelope, now)
}

/// Headers → verified, policy-checked mandate (Intent Mode): [`check_headers`] at
/// [`PayeePolicy::core_time`], then [`PayeePolicy::check`] at `now`. Replay is the caller's
/// next step.
pub fn verify_headers<'a, I>(
    headers: I,
    verifier: &Verifier,
    policy: &PayeePolicy,
    now: u64,
) -> Result<(Carrier, Verified)>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let (carrier, report) = check_headers(headers, verifier, Some(policy.core_time(now)));
    let v = report.into_result()?;
    policy.check(&v, now)?;
    Ok((carrier.unwrap_or(Carrier::PaymentSignature), v))
}

/// Headers → mandate accepted against the payee's own Order Mode quote (never the copy in
/// `accepted.extra.quote`, `aep2.md#payment-request-acceptance`).
pub fn verify_headers_for_quote<'a, I>(
    headers: I,
    verifier: &Verifier,
    quote: &PaymentRequest,
    now: u64,
    options: OrderOptions,
) -> Result<(Carrier, Verified)>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    quote.check_verifier(verifier)?;
    let (carrier, report) = check_headers(headers, verifier, Some(now.saturating_sub(options.clock_skew)));
    let v = report.into_result()?;
    quote.check(&v, now, options)?;
    Ok((carrier.unwrap_or(Carrier::PaymentSignature), v))
}

/// The HTTP status a resource server answers a rejection with (x402's mapping,
/// `aep2.md#x402-status`): 402 when no payment was sent or the payment does not pay (signature
/// and policy stages, and `x402_network_mismatch`), 400 for a malformed payment (decode and
/// schema stages, `payment_ambiguous`), 503 when the replay store is unavailable.
pub fn http_status(reason: Reason) -> u16 {
    match reason {
        Reason::PaymentMissing | Reason::X402NetworkMismatch => 402,
        Reason::ReplayStoreUnavailable => 503,
        r => match r.stage() {
            Stage::Decode | Stage::Schema => 400,
            Stage::Signature | Stage::Policy => 402,
        },
    }
}

fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

fn decode_object(header: &str, what: &str) -> Result<Object> {
    match decode_header(header)? {
        Value::Object(o) => Ok(o),
        other => Err(Error::new(
            Reason::FieldType,
            format!("{what} must be an object, found {}", other.type_name()),
        )),
    }
}

/// An x402 v2 `PaymentRequirements` entry (any scheme; [`PaymentRequirements::quote`] reads
/// the AEP2 quote of an `aep2` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequirements {
    /// `aep2` for AEP2 entries.
    pub scheme: String,
    /// CAIP-2 network ([`network_of`]).
    pub network: String,
    /// The price in the asset's smallest unit (decimal string).
    pub amount: String,
    /// The token (EVM address or base58 key).
    pub asset: String,
    /// The payee.
    pub pay_to: String,
    /// Seconds the payee waits for the payment.
    pub max_timeout_seconds: u64,
    /// Scheme-specific: for `aep2`, `quote` (Order Mode) and `settlementWindow`.
    pub extra: Option<Object>,
}

impl PaymentRequirements {
    /// Order Mode: the entry for a quote. `maxTimeoutSeconds` is the time left until the
    /// quote's expiry (0 once expired); `extra.quote` is the quote object.
    pub fn for_quote(quote: &PaymentRequest, now: u64) -> PaymentRequirements {
        PaymentRequirements {
            scheme: SCHEME.into(),
            network: network_of(&quote.domain),
            amount: quote.amount.to_string(),
            asset: quote.asset.to_string(),
            pay_to: quote.payee.to_string(),
            max_timeout_seconds: quote.expiry.saturating_sub(now),
            extra: Some(
                with_domain(Object::new(), &quote.domain)
                    .with("quote", Value::Object(quote.to_json()))
                    .with("settlementWindow", Value::from_u64(quote.settlement_window)),
            ),
        }
    }

    /// Intent Mode: the entry for a payee policy (no quote; the payer signs `ref` itself).
    pub fn for_policy(policy: &PayeePolicy, domain: &Domain, max_timeout_seconds: u64) -> PaymentRequirements {
        PaymentRequirements {
            scheme: SCHEME.into(),
            network: network_of(domain),
            amount: policy.price.to_string(),
            asset: policy.asset.to_string(),
            pay_to: policy.payee.to_string(),
            max_timeout_seconds,
            extra: Some(
                with_domain(Object::new(), domain).with("settlementWindow", Value::from_u64(policy.settlement_window)),
            ),
        }
    }

    /// The JSON object, members in the x402 order.
    pub fn to_json(&self) -> Object {
        let mut o = Object::new()
            .with("scheme", s(&self.scheme))
            .with("network", s(&self.network))
            .with("amount", s(&self.amount))
            .with("asset", s(&self.asset))
            .with("payTo", s(&self.pay_to))
            .with("maxTimeoutSeconds", Value::from_u64(self.max_timeout_seconds));
        if let Some(extra) = &self.extra {
            o.insert("extra", Value::Object(extra.clone()));
        }
        o
    }

    /// Reads an entry: the v2 member set (unknown members rejected), strings and an integer.
    pub fn from_json(v: &Value) -> Result<PaymentRequirements> {
        let o = members(
            v,
            "PaymentRequirements",
            &["scheme", "network", "amount", "asset", "payTo", "maxTimeoutSeconds"],
            &["extra"],
        )?;
        let extra = match o.get("extra") {
            None => None,
            Some(Value::Object(e)) => Some(e.clone()),
            Some(other) => {
                return Err(Error::new(
                    Reason::FieldType,
                    format!("extra must be an object, found {}", other.type_name()),
                ));
            }
        };
        Ok(PaymentRequirements {
            scheme: string(o, "scheme")?.to_owned(),
            network: string(o, "network")?.to_owned(),
            amount: string(o, "amount")?.to_owned(),
            asset: string(o, "asset")?.to_owned(),
            pay_to: string(o, "payTo")?.to_owned(),
            max_timeout_seconds: integer(o, "maxTimeoutSeconds")?,
            extra,
        })
    }

    /// The Order Mode quote in `extra.quote`, parsed under `aep2.md#payment-request-fields`
    /// (`None` when there is none). For the payer: the payee judges against its own copy.
    pub fn quote(&self) -> Option<Result<PaymentRequest>> {
        self.extra
            .as_ref()
            .and_then(|e| e.get("quote"))
            .map(PaymentRequest::from_json)
    }

    /// The domain an `aep2` entry names in `extra.domain`, read for `profile` (`None` when
    /// absent, as for `solana-mvp`): the deployment whose mandates the payee accepts.
    pub fn domain(&self, profile: Profile) -> Option<Result<Domain>> {
        self.extra
            .as_ref()
            .and_then(|e| e.get("domain"))
            .map(|d| Domain::from_json(profile, d))
    }
}

/// `extra` with the domain object of a native envelope under `domain` (none for `solana-mvp`),
/// so a payer learns the deployment from the 402 itself.
fn with_domain(extra: Object, domain: &Domain) -> Object {
    match domain.to_json() {
        Some(d) => extra.with("domain", Value::Object(d)),
        None => extra,
    }
}

/// x402 v2 `ResourceInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ResourceInfo {
    /// The resource URL.
    pub url: String,
    /// What it is.
    pub description: Option<String>,
    /// Its MIME type.
    pub mime_type: Option<String>,
}

/// x402 v2 `PaymentRequired`, the `PAYMENT-REQUIRED` header of a 402 response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequired {
    /// Human-readable reason (`error`).
    pub error: Option<String>,
    /// The resource.
    pub resource: ResourceInfo,
    /// The acceptable payments.
    pub accepts: Vec<PaymentRequirements>,
}

impl PaymentRequired {
    /// The JSON object (`x402Version: 2`).
    pub fn to_json(&self) -> Value {
        let mut o = Object::new().with("x402Version", Value::from_u64(2));
        if let Some(e) = &self.error {
            o.insert("error", s(e));
        }
        let mut r = Object::new().with("url", s(&self.resource.url));
        if let Some(d) = &self.resource.description {
            r.insert("description", s(d));
        }
        if let Some(m) = &self.resource.mime_type {
            r.insert("mimeType", s(m));
        }
        o.insert("resource", Value::Object(r));
        o.insert(
            "accepts",
            Value::Array(self.accepts.iter().map(|a| Value::Object(a.to_json())).collect()),
        );
        Value::Object(o)
    }

    /// The `PAYMENT-REQUIRED` header value: base64 of the compact JSON.
    pub fn encode(&self) -> String {
        base64_encode(json::to_compact(&self.to_json()).as_bytes())
    }

    /// Parses a `PAYMENT-REQUIRED` header value (strict decoding; `extensions` is accepted
    /// and ignored).
    pub fn decode(header: &str) -> Result<PaymentRequired> {
        let v = Value::Object(decode_object(header, "PaymentRequired")?);
        let o = members(
            &v,
            "PaymentRequired",
            &["x402Version", "resource", "accepts"],
            &["error", "extensions"],
        )?;
        version(o, 2)?;
        let error = match o.get("error") {
            Some(_) => Some(string(o, "error")?.to_owned()),
            None => None,
        };
        let r = members(
            field(o, "resource")?,
            "resource",
            &["url"],
            &["description", "mimeType"],
        )?;
        let opt = |name: &str| -> Result<Option<String>> {
            match r.get(name) {
                Some(_) => Ok(Some(string(r, name)?.to_owned())),
                None => Ok(None),
            }
        };
        let resource = ResourceInfo {
            url: string(r, "url")?.to_owned(),
            description: opt("description")?,
            mime_type: opt("mimeType")?,
        };
        let Value::Array(items) = field(o, "accepts")? else {
            return Err(Error::new(Reason::FieldType, "accepts must be an array"));
        };
        let accepts = items
            .iter()
            .map(PaymentRequirements::from_json)
            .collect::<Result<_>>()?;
        Ok(PaymentRequired {
            error,
            resource,
            accepts,
        })
    }
}

/// Builds a v2 `PaymentPayload` (`{x402Version: 2, accepted, payload}`) for the
/// `PAYMENT-SIGNATURE` header: base64 of its compact JSON. `envelope` is the JSON of the
/// signed envelope (`SignedMandate::to_json`).
pub fn payment_signature(accepted: &PaymentRequirements, envelope: &Value) -> String {
    let o = Object::new()
        .with("x402Version", Value::from_u64(2))
        .with("accepted", Value::Object(accepted.to_json()))
        .with("payload", envelope.clone());
    base64_encode(json::to_compact(&Value::Object(o)).as_bytes())
}

/// Builds a v1 `PaymentPayload` (`{x402Version: 1, scheme: "aep2", network, payload}`) for the
/// `X-PAYMENT` header.
pub fn x_payment(network: &str, envelope: &Value) -> String {
    let o = Object::new()
        .with("x402Version", Value::from_u64(1))
        .with("scheme", s(SCHEME))
        .with("network", s(network))
        .with("payload", envelope.clone());
    base64_encode(json::to_compact(&Value::Object(o)).as_bytes())
}

/// `PAYMENT-RESPONSE` `extra.status` of a payment accepted without an SP receipt attached.
pub const STATUS_ACCEPTED: &str = "accepted";
/// `PAYMENT-RESPONSE` `extra.status` of a payment whose SP receipt is attached: the SP signed a
/// promise to settle by the receipt's `enqueueDeadline`.
pub const STATUS_RECEIPTED: &str = "receipted";

/// The `PAYMENT-RESPONSE` of a served request (`aep2.md#x402-payment-response`), stating what
/// is true when the payee serves, as x402's `batch-settlement` scheme does (commit now, serve,
/// settle later): `{success: true, transaction: "", network, payer, amount, extra: {mandateId,
/// status, receipt?}}`.
///
/// - `success: true`: the payment was accepted for this request.
/// - `transaction: ""`: nothing is on chain yet.
/// - `extra.mandateId`: the commitment identifier (the mandate id).
/// - `extra.status`: [`STATUS_RECEIPTED`] when `extra.receipt` (the SP's signed promise to
///   settle by its `enqueueDeadline`) is attached, else [`STATUS_ACCEPTED`]
///   ([`PaymentResponse::status`]).
///
/// The payee never sends a later response: a payer learns settlement from the SP
/// (`GET /v1/mandates/{id}`) or the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentResponse {
    /// The network ([`network_of`]).
    pub network: String,
    /// The payer (signer) in display form.
    pub payer: String,
    /// The mandate's amount.
    pub amount: String,
    /// The mandate id, `0x` + 64 hex digits: the commitment identifier.
    pub mandate_id: String,
    /// The SP's receipt JSON, when the payee already has it.
    pub receipt: Option<Value>,
}

impl PaymentResponse {
    /// The response for a verified mandate, optionally with the SP's receipt (status
    /// `receipted` with one, `accepted` without).
    pub fn accepted(v: &Verified, receipt: Option<&Receipt>) -> PaymentResponse {
        PaymentResponse {
            network: network_of(&v.domain),
            payer: v.signer(),
            amount: v.mandate().amount(),
            mandate_id: hex_encode_0x(&v.digest.id),
            receipt: receipt.map(Receipt::to_json),
        }
    }

    /// `extra.status`: [`STATUS_RECEIPTED`] when a receipt is attached, else
    /// [`STATUS_ACCEPTED`].
    pub fn status(&self) -> &'static str {
        if self.receipt.is_some() {
            STATUS_RECEIPTED
        } else {
            STATUS_ACCEPTED
        }
    }

    /// The JSON object.
    pub fn to_json(&self) -> Value {
        let mut extra = Object::new()
            .with("mandateId", s(&self.mandate_id))
            .with("status", s(self.status()));
        if let Some(r) = &self.receipt {
            extra.insert("receipt", r.clone());
        }
        Value::Object(
            Object::new()
                .with("success", Value::Bool(true))
                .with("transaction", s(""))
                .with("network", s(&self.network))
                .with("payer", s(&self.payer))
                .with("amount", s(&self.amount))
                .with("extra", Value::Object(extra)),
        )
    }

    /// The `PAYMENT-RESPONSE` header value.
    pub fn encode(&self) -> String {
        base64_encode(json::to_compact(&self.to_json()).as_bytes())
    }

    /// Parses a `PAYMENT-RESPONSE` header value of an accepted AEP2 payment
    /// ([`PaymentResponse::from_json`] of the decoded object).
    pub fn decode(header: &str) -> Result<PaymentResponse> {
        PaymentResponse::from_json(&Value::Object(decode_object(header, "PAYMENT-RESPONSE")?))
    }

    /// Reads the JSON object of an accepted AEP2 payment, wherever it travels (the
    /// `PAYMENT-RESPONSE` header, MCP result `_meta`): exactly its members, `success` true,
    /// `transaction` empty, `extra.status` `receipted` with `extra.receipt` an object, or
    /// `accepted` without a receipt (`field_type` otherwise). The receipt is returned as JSON;
    /// verify it with `Receipt::from_json` and `Receipt::verify`.
    pub fn from_json(v: &Value) -> Result<PaymentResponse> {
        let o = members(
            v,
            "PAYMENT-RESPONSE",
            &["success", "transaction", "network", "payer", "amount", "extra"],
            &[],
        )?;
        if o.get("success") != Some(&Value::Bool(true)) {
            return Err(Error::new(Reason::FieldType, "success must be true"));
        }
        if !string(o, "transaction")?.is_empty() {
            return Err(Error::new(Reason::FieldType, "transaction must be empty"));
        }
        let e = members(field(o, "extra")?, "extra", &["mandateId", "status"], &["receipt"])?;
        let receipt = match e.get("receipt") {
            None => None,
            Some(r @ Value::Object(_)) => Some(r.clone()),
            Some(other) => {
                return Err(Error::new(
                    Reason::FieldType,
                    format!("extra.receipt must be an object, found {}", other.type_name()),
                ));
            }
        };
        let expected = if receipt.is_some() {
            STATUS_RECEIPTED
        } else {
            STATUS_ACCEPTED
        };
        let status = string(e, "status")?;
        if status != expected {
            return Err(Error::new(
                Reason::FieldType,
                format!(
                    "extra.status is {status:?}; a response with{} a receipt says {expected:?}",
                    if receipt.is_some() { "" } else { "out" }
                ),
            ));
        }
        Ok(PaymentResponse {
            network: string(o, "network")?.to_owned(),
            payer: string(o, "payer")?.to_owned(),
            amount: string(o, "amount")?.to_owned(),
            mandate_id: string(e, "mandateId")?.to_owned(),
            receipt,
        })
    }
}

/// The canonical HTTP request descriptor `{"bodySha256", "method", "url"}` as JCS text
/// (`aep2.md#x402-request-hash`).
///
/// - `method`: an RFC 9110 token of at most [`MAX_METHOD_BYTES`], uppercased (ASCII).
/// - `url`: at most [`MAX_URL_BYTES`] as sent.
/// - `url`: absolute `http` or `https` URL of printable ASCII (no spaces, no non-ASCII; send
///   IDNs as punycode and other bytes percent-encoded); scheme and host lowercased; no
///   userinfo; the default port (80, 443) and an empty port removed, another port written
///   without leading zeros; the fragment removed; an empty path written `/`; path and query
///   otherwise exactly as sent (no percent-decoding, no dot-segment removal, no reordering).
/// - `bodySha256`: lowercase hex (no `0x`) of SHA-256 of the body bytes as sent (after
///   transfer decoding, before content decoding); the empty body for none.
///
/// Errors: `request_descriptor_invalid`.
pub fn request_descriptor(method: &str, url: &str, body: &[u8]) -> Result<String> {
    let bad = |what: &str| Error::new(Reason::RequestDescriptorInvalid, what.to_owned());
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || method.len() > MAX_METHOD_BYTES || !method.bytes().all(tchar) {
        return Err(bad("method is not an HTTP token of at most 32 bytes"));
    }
    if url.len() > MAX_URL_BYTES {
        return Err(bad("url is longer than 8000 bytes"));
    }
    let url = canonical_url(url).ok_or_else(|| bad("url is not an absolute http(s) URL of printable ASCII"))?;
    let body_hash = hex_encode_0x(&aep2::hash::sha256(body));
    let o = Object::new()
        .with("method", s(method.to_ascii_uppercase()))
        .with("url", s(url))
        .with("bodySha256", s(&body_hash[2..]));
    Ok(json::to_canonical(&Value::Object(o)))
}

/// `SHA-256("AEP2/http-request/v1" ‖ 0x00 ‖ request_descriptor(method, url, body))`: the
/// expected request hash of `PayeePolicy::with_request_hash` and the `ref` a payer signs.
pub fn request_hash(method: &str, url: &str, body: &[u8]) -> Result<[u8; 32]> {
    let descriptor = request_descriptor(method, url, body)?;
    let mut input = HTTP_REQUEST_TAG.to_vec();
    input.extend_from_slice(descriptor.as_bytes());
    Ok(aep2::hash::sha256(&input))
}

fn canonical_url(url: &str) -> Option<String> {
    if url.is_empty() || !url.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return None;
    }
    let url = url.split('#').next().unwrap_or("");
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(split);
    if authority.contains('@') {
        return None;
    }
    // The port follows the last ':' outside an IPv6 literal.
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = p.trim_start_matches('0').parse().unwrap_or(0);
            if n == 0 || n > 65535 {
                return None;
            }
            let n = n.to_string();
            (n != default_port).then_some(n)
        }
        Some(_) => return None,
    };
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    if let Some(p) = port {
        out.push(':');
        out.push_str(&p);
    }
    if !path_query.starts_with('/') {
        out.push('/');
    }
    out.push_str(path_query);
    Some(out)
}

#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_canonicalise() {
        let c = |u: &str| canonical_url(u);
        assert_eq!(
            c("HTTPS://API.Example.com:443/v1/Quote?b=2&a=1#frag").as_deref(),
            Some("https://api.example.com/v1/Quote?b=2&a=1")
        );
        assert_eq!(c("http://h:080").as_deref(), Some("http://h/"));
        assert_eq!(c("http://h:8080?x").as_deref(), Some("http://h:8080/?x"));
        assert_eq!(c("http://[::1]:443/").as_deref(), Some("http://[::1]:443/"));
        assert_eq!(c("http://h:/p").as_deref(), Some("http://h/p"));
        for bad in [
            "ftp://h/",
            "//h/",
            "http://u@h/",
            "http://h/a b",
            "http://h:0/",
            "http://h:99999/",
            "http://:80/",
        ] {
            assert_eq!(c(bad), None, "{bad}");
        }
    }

    #[test]
    fn status_mapping() {
        assert_eq!(http_status(Reason::PaymentMissing), 402);
        assert_eq!(http_status(Reason::Base64Invalid), 400);
        assert_eq!(http_status(Reason::PaymentAmbiguous), 400);
        assert_eq!(http_status(Reason::SignatureInvalid), 402);
        assert_eq!(http_status(Reason::AmountInsufficient), 402);
        assert_eq!(http_status(Reason::ReplayStoreUnavailable), 503);
    }
}
