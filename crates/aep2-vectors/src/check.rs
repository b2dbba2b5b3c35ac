//! Runs vector cases through the reference implementation and judges the answers.

use crate::model::{Context, Kind, TestCase, TestGroup};
use aep2::codec::{hex_decode_0x, hex_encode_0x};
use aep2::crypto::{ed25519, secp256k1::SecretKey};
use aep2::digest::SigningInput;
use aep2::json::{Limits, Value, parse};
use aep2::{
    AccountId, Domain, EnvelopeForm, Error, Mandate, OrderOptions, PayeePolicy, PayerKey, PaymentRequest, PriceMode,
    Profile, Receipt, ReceiptExpectations, Report, SpId, U256, Verifier, sign_mandate,
};
use serde_json::Value as J;
use std::collections::BTreeMap;

/// What an implementation answered for one case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// `valid` or `invalid`.
    pub result: String,
    /// Reason code when invalid.
    pub reason: Option<String>,
    /// Stage of the reason.
    pub stage: Option<String>,
    /// `sign_mandate`: the signature produced.
    pub signature: Option<String>,
    /// `sign_mandate`: the header produced.
    pub header: Option<String>,
    /// Intermediate values the implementation computed.
    pub intermediates: BTreeMap<String, String>,
}

impl Answer {
    fn from_result(r: &Result<(), Error>) -> Answer {
        match r {
            Ok(()) => Answer {
                result: "valid".into(),
                ..Answer::default()
            },
            Err(e) => Answer {
                result: "invalid".into(),
                reason: Some(e.code().into()),
                stage: Some(e.stage().as_str().into()),
                ..Answer::default()
            },
        }
    }
}

fn to_aep2_json(v: &J) -> Result<Value, String> {
    parse(&v.to_string(), &Limits::AEP2).map_err(|e| format!("context JSON: {e}"))
}

/// The verifier domain a group's context describes.
pub fn context_domain(ctx: &Context) -> Result<Domain, String> {
    let profile = Profile::parse(ctx.profile.as_deref().unwrap_or("")).map_err(|e| e.to_string())?;
    match (profile, &ctx.domain) {
        (Profile::SolanaMvp, _) => Ok(Domain::SolanaMvp),
        (p, Some(d)) => Domain::from_json(p, &to_aep2_json(d)?).map_err(|e| e.to_string()),
        (p, None) => Err(format!("context for {p} needs a domain")),
    }
}

/// The payee policy a group's context describes.
pub fn context_policy(ctx: &Context) -> Result<PayeePolicy, String> {
    let p = ctx.policy.as_ref().ok_or("context needs a policy")?;
    let id = |what: &str, text: &str| AccountId::parse(text).map_err(|e| format!("policy.{what}: {e}"));
    let request_hash = match &p.request_hash {
        Some(h) => Some(
            hex_decode_0x(h)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or("policy.requestHash must be 0x + 64 hex digits")?,
        ),
        None => None,
    };
    Ok(PayeePolicy {
        payee: id("payee", &p.payee)?,
        asset: id("asset", &p.asset)?,
        price: U256::parse_decimal(&p.price).map_err(|e| format!("policy.price: {e}"))?,
        price_mode: PriceMode::parse(&p.price_mode).ok_or("policy.priceMode must be exact or at-least")?,
        clock_skew: p.clock_skew,
        settlement_window: p.settlement_window,
        max_horizon: p.max_horizon,
        request_hash,
    })
}

fn input_str<'a>(t: &'a TestCase, k: &str) -> Result<&'a str, String> {
    t.input
        .get(k)
        .and_then(J::as_str)
        .ok_or_else(|| format!("{}: input.{k} missing", t.id))
}

/// Intermediate values of a mandate verification report, as vectors record them.
pub fn report_intermediates(report: &Report) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(d) = &report.digest {
        m.insert("digest".into(), d.display());
        m.insert("mandateId".into(), hex_encode_0x(&d.id));
        m.insert("signingBytes".into(), hex_encode_0x(&d.signed_bytes()));
        if let SigningInput::Eip712(p) = &d.input {
            m.insert("typeHash".into(), hex_encode_0x(&aep2::eip712::mandate_typehash()));
            m.insert("domainSeparator".into(), hex_encode_0x(&p.domain_separator));
            m.insert("structHash".into(), hex_encode_0x(&p.struct_hash));
        }
    }
    // The replay keys' bytes (spec aep2.md#replay), so stores shared between implementations
    // can be checked to derive the same nonce key.
    if let (Some(signed), Some(digest), Some(domain)) = (&report.signed, &report.digest, &report.domain) {
        let v = aep2::Verified {
            signed: signed.clone(),
            digest: digest.clone(),
            domain: domain.clone(),
        };
        m.insert("nonceKey".into(), hex_encode_0x(&aep2::ReplayKey::of(&v).nonce_key));
        m.insert("signer".into(), v.signer());
    }
    if let Some(signed) = &report.signed {
        m.insert("form".into(), signed.form.as_str().into());
    }
    if let Some(r) = &report.recovered {
        m.insert("recovered".into(), r.to_checksum());
    }
    m
}

/// Answers one case with the reference implementation.
pub fn answer(group: &TestGroup, t: &TestCase) -> Result<Answer, String> {
    match group.kind {
        Kind::VerifyMandate => {
            let verifier = Verifier::new(context_domain(&group.context)?);
            let report = verifier.check_header(input_str(t, "header")?, group.context.now);
            let intermediates = report_intermediates(&report);
            let mut a = Answer::from_result(&report.verdict);
            a.intermediates = intermediates;
            Ok(a)
        }
        Kind::VerifyPolicy => {
            let verifier = Verifier::new(context_domain(&group.context)?);
            let policy = context_policy(&group.context)?;
            let now = group.context.now.ok_or("verify_policy context needs now")?;
            let report = policy.check_header(&verifier, input_str(t, "header")?, now);
            let mut a = Answer::from_result(&report.verdict);
            a.intermediates = report_intermediates(&report);
            Ok(a)
        }
        Kind::VerifyOrder => {
            let verifier = Verifier::new(context_domain(&group.context)?);
            let now = group.context.now.ok_or("verify_order context needs now")?;
            // Built the way a merchant builds them, so the vectors also judge the builders.
            let options = OrderOptions::default()
                .with_clock_skew(group.context.clock_skew.ok_or("verify_order context needs clockSkew")?)
                .with_max_horizon(
                    group
                        .context
                        .max_horizon
                        .ok_or("verify_order context needs maxHorizon")?,
                );
            let quote = t
                .input
                .get("quote")
                .ok_or_else(|| format!("{}: input.quote missing", t.id))?;
            // The quote is checked first: a malformed quote judges no mandate.
            let quote = match parse(&quote.to_string(), &Limits::AEP2).and_then(|v| PaymentRequest::from_json(&v)) {
                Ok(q) => q,
                Err(e) => return Ok(Answer::from_result(&Err(e))),
            };
            let report = quote.check_header(&verifier, input_str(t, "header")?, now, options);
            let mut a = Answer::from_result(&report.verdict);
            a.intermediates = report_intermediates(&report);
            a.intermediates.insert("quoteHash".into(), hex_encode_0x(&quote.hash()));
            Ok(a)
        }
        Kind::ExtractX402 => {
            let verifier = Verifier::new(context_domain(&group.context)?);
            let headers = t
                .input
                .get("headers")
                .and_then(J::as_object)
                .ok_or_else(|| format!("{}: input.headers missing", t.id))?;
            let mut pairs = Vec::new();
            for (name, value) in headers {
                let value = value
                    .as_str()
                    .ok_or_else(|| format!("{}: header {name} is not a string", t.id))?;
                pairs.push((name.as_str(), value));
            }
            let (carrier, report) = aep2_x402::check_headers(pairs, &verifier, group.context.now);
            let mut a = Answer::from_result(&report.verdict);
            a.intermediates = report_intermediates(&report);
            if let Some(c) = carrier {
                a.intermediates.insert("carrier".into(), c.as_str().into());
            }
            Ok(a)
        }
        Kind::HttpRequestHash => {
            let body = hex_decode_0x(&format!("0x{}", input_str(t, "body")?))
                .ok_or_else(|| format!("{}: input.body is not hex", t.id))?;
            let (method, url) = (input_str(t, "method")?, input_str(t, "url")?);
            let mut a = Answer::from_result(&aep2_x402::request_hash(method, url, &body).map(|_| ()));
            if let (Ok(d), Ok(h)) = (
                aep2_x402::request_descriptor(method, url, &body),
                aep2_x402::request_hash(method, url, &body),
            ) {
                a.intermediates.insert("descriptor".into(), d);
                a.intermediates.insert("requestHash".into(), hex_encode_0x(&h));
            }
            Ok(a)
        }
        Kind::ExtractA2a => {
            let verifier = Verifier::new(context_domain(&group.context)?);
            let text = input_str(t, "a2aMessage")?;
            let now = group.context.now.ok_or("extract_a2a context needs now")?;
            let (message, report) = if let Some(q) = t.input.get("quote") {
                let o = t
                    .input
                    .get("orderOptions")
                    .ok_or_else(|| format!("{}: Order Mode needs input.orderOptions", t.id))?;
                let seconds = |k: &str| {
                    o.get(k)
                        .and_then(J::as_u64)
                        .ok_or_else(|| format!("{}: orderOptions.{k} missing", t.id))
                };
                let options = OrderOptions::default()
                    .with_clock_skew(seconds("clockSkew")?)
                    .with_max_horizon(seconds("maxHorizon")?);
                let quote =
                    PaymentRequest::from_json(&to_aep2_json(q)?).map_err(|e| format!("{}: quote: {e}", t.id))?;
                aep2_a2a::check_order_reply(text, &verifier, &quote, now, options)
            } else if let Some(p) = t.input.get("payeePolicy") {
                let ctx = Context {
                    policy: Some(serde_json::from_value(p.clone()).map_err(|e| format!("{}: payeePolicy: {e}", t.id))?),
                    ..Context::default()
                };
                let policy = context_policy(&ctx)?;
                if policy.request_hash.is_some() {
                    return Err(format!(
                        "{}: the A2A request hash comes from the message, not the policy",
                        t.id
                    ));
                }
                aep2_a2a::check_intent(text, &verifier, &policy, aep2_a2a::RequestBinding::Required, now)
            } else {
                aep2_a2a::check_message(text, &verifier, Some(now))
            };
            let mut a = Answer::from_result(&report.verdict);
            a.intermediates = report_intermediates(&report);
            if let Some(m) = message {
                a.intermediates.insert("a2aVersion".into(), m.version.as_str().into());
                if let Ok(h) = m.request_hash() {
                    a.intermediates.insert("requestHash".into(), hex_encode_0x(&h));
                }
            }
            Ok(a)
        }
        Kind::A2aRequestHash => {
            let text = input_str(t, "a2aMessage")?;
            let mut a = Answer::from_result(&aep2_a2a::request_hash(text).map(|_| ()));
            if let (Ok(d), Ok(h)) = (aep2_a2a::request_descriptor(text), aep2_a2a::request_hash(text)) {
                a.intermediates.insert("descriptor".into(), d);
                a.intermediates.insert("requestHash".into(), hex_encode_0x(&h));
            }
            Ok(a)
        }
        Kind::ExtractMcp => {
            let verifier = Verifier::new(context_domain(&group.context)?);
            let now = group.context.now.ok_or("extract_mcp context needs now")?;
            let call = match aep2_mcp::ToolCall::parse(input_str(t, "request")?) {
                Ok(c) => c,
                Err(e) => return Ok(Answer::from_result(&Err(e))),
            };
            // The quote is the payee's own input: a malformed one is a broken vector, not a verdict.
            let quote = match t.input.get("quote") {
                Some(q) => {
                    Some(PaymentRequest::from_json(&to_aep2_json(q)?).map_err(|e| format!("{}: quote: {e}", t.id))?)
                }
                None => None,
            };
            let (carrier, mut report) = match &quote {
                Some(q) => aep2_mcp::check_call_for_quote(&call, &verifier, q, now, OrderOptions::default()),
                None => aep2_mcp::check_call(&call, &verifier, Some(now)),
            };
            let binding = t.input.get("requestBinding").and_then(J::as_bool).unwrap_or(false);
            if binding && report.verdict.is_ok() {
                report.verdict = report
                    .clone()
                    .into_result()
                    .and_then(|v| aep2_mcp::check_request_binding(&call, &v));
            }
            let mut a = Answer::from_result(&report.verdict);
            a.intermediates = report_intermediates(&report);
            if let Some(c) = carrier {
                a.intermediates.insert("carrier".into(), c.as_str().into());
            }
            if let Ok(h) = call.request_hash() {
                a.intermediates.insert("requestHash".into(), hex_encode_0x(&h));
            }
            if let Some(q) = &quote {
                a.intermediates.insert("quoteHash".into(), hex_encode_0x(&q.hash()));
            }
            Ok(a)
        }
        Kind::McpRequestHash => {
            let name = input_str(t, "name")?;
            let arguments = match t.input.get("arguments") {
                Some(J::String(text)) => match parse(text, &aep2_mcp::MESSAGE_LIMITS) {
                    Ok(v) => Some(v),
                    Err(e) => return Ok(Answer::from_result(&Err(e))),
                },
                Some(_) => return Err(format!("{}: input.arguments must be JSON text", t.id)),
                None => None,
            };
            let mut a = Answer::from_result(&aep2_mcp::request_hash(name, arguments.as_ref()).map(|_| ()));
            if let (Ok(d), Ok(h)) = (
                aep2_mcp::request_descriptor(name, arguments.as_ref()),
                aep2_mcp::request_hash(name, arguments.as_ref()),
            ) {
                a.intermediates.insert("descriptor".into(), d);
                a.intermediates.insert("requestHash".into(), hex_encode_0x(&h));
            }
            Ok(a)
        }
        Kind::VerifyReceipt => {
            // The mandate comes first, already verified (aep2.md#receipts): core verification
            // without a time; a header that fails gives its code and the receipt is not read.
            let mandate = match t.input.get("mandateHeader").and_then(J::as_str) {
                Some(h) => match Verifier::new(context_domain(&group.context)?).verify_header(h, None) {
                    Ok(v) => Some(v),
                    Err(e) => return Ok(Answer::from_result(&Err(e))),
                },
                None => None,
            };
            let receipt = match t.input.get("receipt").map(to_aep2_json).transpose()? {
                Some(v) => Receipt::from_json(&v),
                None => return Err(format!("{}: input.receipt missing", t.id)),
            };
            let receipt = match receipt {
                Ok(r) => r,
                Err(e) => return Ok(Answer::from_result(&Err(e))),
            };
            let sp = group
                .context
                .sp
                .as_deref()
                .map(SpId::parse)
                .transpose()
                .map_err(|e| e.to_string())?;
            let domain = match &group.context.domain {
                Some(_) => Some(context_domain(&group.context)?),
                None => None,
            };
            let leaf = mandate.as_ref().and_then(aep2::Verified::leaf_lane);
            let expect = ReceiptExpectations {
                sp: sp.as_ref(),
                mandate: mandate.as_ref().map(|v| (v.mandate(), &v.digest)),
                domain: domain.as_ref(),
                lane: leaf.as_ref(),
            };
            let mut a = Answer::from_result(&receipt.verify(&expect));
            a.intermediates
                .insert("receiptKind".into(), receipt.kind.as_str().into());
            Ok(a)
        }
        Kind::SignMandate => {
            let domain = context_domain(&group.context)?;
            let mandate_json = t
                .input
                .get("mandate")
                .ok_or_else(|| format!("{}: input.mandate missing", t.id))?;
            let mandate =
                Mandate::from_json(domain.profile(), &to_aep2_json(mandate_json)?).map_err(|e| e.to_string())?;
            let key = key_from_hex(domain.profile(), input_str(t, "key")?)?;
            let form = match group.context.form.as_deref() {
                Some("native") => EnvelopeForm::Native,
                _ => EnvelopeForm::Mvp,
            };
            match sign_mandate(&mandate, &domain, &key, form) {
                Ok((signed, digest)) => Ok(Answer {
                    result: "valid".into(),
                    signature: Some(signed.signature.clone()),
                    header: Some(signed.encode()),
                    intermediates: BTreeMap::from([("digest".to_owned(), digest.display())]),
                    ..Answer::default()
                }),
                Err(e) => Ok(Answer::from_result(&Err(e))),
            }
        }
        Kind::Ed25519Raw => {
            let bytes = |k: &str| -> Result<Vec<u8>, String> {
                hex_decode_0x(&format!("0x{}", input_str(t, k)?))
                    .ok_or_else(|| format!("{}: input.{k} is not hex", t.id))
            };
            let (key, msg, sig) = (bytes("publicKey")?, bytes("message")?, bytes("signature")?);
            let verdict = match (
                <[u8; 32]>::try_from(key.as_slice()),
                <[u8; 64]>::try_from(sig.as_slice()),
            ) {
                (Ok(k), Ok(s)) => ed25519::verify_bytes(&k, &msg, &s).map_err(Error::from),
                (Err(_), _) => Err(Error::new(aep2::Reason::AddressInvalid, "key is not 32 bytes")),
                (_, Err(_)) => Err(Error::new(aep2::Reason::SignatureLength, "signature is not 64 bytes")),
            };
            Ok(Answer::from_result(&verdict))
        }
    }
}

/// Parses a payer key given as 0x hex: a secp256k1 secret for eip712, an Ed25519 seed otherwise.
pub fn key_from_hex(profile: Profile, hex: &str) -> Result<PayerKey, String> {
    let k: [u8; 32] = hex_decode_0x(hex)
        .and_then(|b| b.try_into().ok())
        .ok_or("key must be 0x + 64 hex digits")?;
    match profile {
        Profile::Eip712 => SecretKey::from_bytes(&k)
            .map(PayerKey::Secp256k1)
            .ok_or_else(|| "invalid secp256k1 key".into()),
        _ => Ok(PayerKey::Ed25519(k)),
    }
}

/// What [`judge_with`] compares besides the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judging {
    /// Compare the reason code and its stage. Off for implementations that report verdicts only.
    pub reason: bool,
    /// Compare a `sign_mandate` case's signature and header byte for byte. Off when the caller
    /// checks a produced signature by verifying it (a signer need not be deterministic).
    pub signature: bool,
    /// Require every intermediate the case records. Off: only the intermediates the answer
    /// reports are compared, since other implementations need not expose them all.
    pub all_intermediates: bool,
}

impl Judging {
    /// Everything, as the reference implementation is held to its own vectors.
    pub const FULL: Judging = Judging {
        reason: true,
        signature: true,
        all_intermediates: true,
    };
}

/// Compares an answer with a case's expectation: verdict and reason code (and stage) must
/// match; for signing, the signature and header must match; recorded intermediates must
/// equal the ones computed.
pub fn judge(t: &TestCase, a: &Answer) -> Result<(), String> {
    judge_with(t, a, Judging::FULL)
}

/// [`judge`] with a choice of what is compared ([`Judging`]); the verdict always is.
pub fn judge_with(t: &TestCase, a: &Answer, j: Judging) -> Result<(), String> {
    let e = &t.expected;
    let mut problems = Vec::new();
    if e.result != a.result {
        problems.push(format!("result: expected {}, got {}", e.result, a.result));
    }
    if j.reason && e.reason != a.reason {
        problems.push(format!("reason: expected {:?}, got {:?}", e.reason, a.reason));
    }
    if j.reason && e.stage != a.stage {
        problems.push(format!("stage: expected {:?}, got {:?}", e.stage, a.stage));
    }
    if j.signature && e.signature.is_some() && e.signature != a.signature {
        problems.push(format!("signature: expected {:?}, got {:?}", e.signature, a.signature));
    }
    if j.signature && e.header.is_some() && e.header != a.header {
        problems.push(format!("header: expected {:?}, got {:?}", e.header, a.header));
    }
    for (k, want) in t.intermediates.iter().flatten() {
        match a.intermediates.get(k) {
            Some(got) if got == want => {}
            None if !j.all_intermediates => {}
            got => problems.push(format!("intermediate {k}: expected {want}, got {got:?}")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", t.id, problems.join("; ")))
    }
}
