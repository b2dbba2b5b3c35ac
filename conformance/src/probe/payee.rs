//! `probe payee`: the checks against a paid HTTP resource (spec `conformance.md#probe-payee`).

use super::http::{self, HttpError, Request, Response, Target};
use super::{
    Cases, Deployment, Outcome, Signed, Terms, Want, corrupt_signature, decrement, finish, fresh_nonce, got_of,
    other_account, other_chain, reason_of, served, sign, unix_now, unreachable,
};
use crate::report::Report;
use crate::{Error, exit};
use aep2::json::Value;
use aep2::{
    AccountId, Domain, PayerKey, PaymentRequest, Profile, Reason, Receipt, ReceiptExpectations, SpId, Stage, U256,
};
use aep2_x402::{
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, PaymentRequired, PaymentRequirements, PaymentResponse,
};
use serde_json::json;
use std::time::{Duration, Instant};

/// Size of the oversized payment header: above both the envelope limit (8192 bytes,
/// `aep2.md#limits`) and a typical 16 KiB header budget, below common HTTP servers' 64 KiB
/// request-head limits, so the payee itself is the one to refuse it.
const OVERSIZED_HEADER_BYTES: usize = 20_000;
/// Seconds a probe mandate outlives the settlement window.
const DEADLINE_MARGIN: u64 = 120;
/// How far in the past the expired mandate's deadline lies (well beyond any clock skew).
const EXPIRED_BY: u64 = 3600;

/// Whether the `request-binding` check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Binding {
    /// Run it; a payee that serves a mandate bound to another request does not bind, and the
    /// check is skipped with that reason (Order Mode payees always bind).
    Auto,
    /// The payee must bind mandates to requests: serving the mis-bound mandate fails the check.
    Required,
    /// Skip the check.
    Off,
}

/// A `probe payee` run.
#[derive(Clone, Debug)]
pub struct PayeeProbe {
    /// The paid resource (`http://host:port/path`); probed with `GET` and no body.
    pub url: String,
    /// The payer's key; its account must be funded at the payee's SP.
    pub key: PayerKey,
    /// The debit-wallet deployment signed for (the chain comes from the 402).
    pub deployment: Deployment,
    /// The SP whose receipts are trusted; without it a receipt only has to be validly signed by
    /// the SP it names.
    pub sp: Option<SpId>,
    /// The `request-binding` check.
    pub binding: Binding,
    /// Time limit of each exchange.
    pub timeout: Duration,
}

impl PayeeProbe {
    /// A probe with binding `auto`, no trusted SP and the default timeout.
    pub fn new(url: &str, key: PayerKey, deployment: Deployment) -> PayeeProbe {
        PayeeProbe {
            url: url.to_owned(),
            key,
            deployment,
            sp: None,
            binding: Binding::Auto,
            timeout: super::DEFAULT_TIMEOUT,
        }
    }
}

/// What the payee asks for, read from its `PAYMENT-REQUIRED`.
#[derive(Clone, Debug)]
struct Offer {
    accepted: PaymentRequirements,
    domain: Domain,
    payee: AccountId,
    asset: AccountId,
    price: U256,
    window: u64,
    /// The resource URL the payee states (the URL of its request hash).
    url: String,
    /// Order Mode: the quote of this 402.
    quote: Option<PaymentRequest>,
}

impl Offer {
    /// The `ref` of a mandate for `url`: the quote's hash in Order Mode, else the request hash
    /// of `GET url` with no body.
    fn reference(&self, url: &str) -> Result<[u8; 32], String> {
        match &self.quote {
            Some(q) => Ok(q.hash()),
            None => aep2_x402::request_hash("GET", url, b"").map_err(|e| format!("request hash of {url}: {e}")),
        }
    }

    fn terms(&self, url: &str) -> Result<Terms, String> {
        Ok(Terms {
            payee: self.payee,
            asset: self.asset,
            amount: self.price,
            nonce: fresh_nonce(),
            deadline: unix_now().saturating_add(self.window).saturating_add(DEADLINE_MARGIN),
            reference: self.reference(url)?,
        })
    }
}

/// Reads the payee's terms from a 402, or says what is wrong with it.
fn read_offer(resp: &Response, p: &PayeeProbe, fallback_url: &str) -> Result<Offer, String> {
    if resp.status != 402 {
        return Err(format!(
            "expected status 402, got {}; body: {}",
            resp.status,
            resp.excerpt()
        ));
    }
    let header = resp
        .header(PAYMENT_REQUIRED)
        .ok_or_else(|| format!("the 402 has no {PAYMENT_REQUIRED} header; body: {}", resp.excerpt()))?;
    let required = PaymentRequired::decode(header).map_err(|e| format!("{PAYMENT_REQUIRED} does not decode: {e}"))?;
    let mut last = format!("{PAYMENT_REQUIRED} offers no aep2 entry");
    for accepted in required.accepts.iter().filter(|a| a.scheme == aep2_x402::SCHEME) {
        match offer_of(accepted, p) {
            Ok(mut offer) => {
                offer.url = if required.resource.url.is_empty() {
                    fallback_url.to_owned()
                } else {
                    required.resource.url.clone()
                };
                return Ok(offer);
            }
            Err(e) => last = format!("aep2 entry for {}: {e}", accepted.network),
        }
    }
    Err(last)
}

fn offer_of(a: &PaymentRequirements, p: &PayeeProbe) -> Result<Offer, String> {
    let profile = p.deployment.profile();
    let announced = a
        .domain(profile)
        .transpose()
        .map_err(|e| format!("extra.domain: {e}"))?;
    let domain = match (&p.deployment, announced) {
        (Deployment::Announced(_), Some(d)) => d,
        (Deployment::Announced(_), None) => {
            return Err("no extra.domain names the deployment; give --verifying-contract or --wallet".into());
        }
        (configured, announced) => {
            let domain = configured.domain_for(&a.network)?;
            if announced.is_some_and(|d| d != domain) {
                return Err("extra.domain names another deployment than the one probed".into());
            }
            domain
        }
    };
    if aep2_x402::network_of(&domain) != a.network {
        return Err(format!("extra.domain is not on the entry's network {}", a.network));
    }
    let id = |text: &str, what: &str| AccountId::parse(text).map_err(|e| format!("{what} {text:?}: {e}"));
    let payee = id(&a.pay_to, "payTo")?;
    let asset = id(&a.asset, "asset")?;
    let price = U256::parse_decimal(&a.amount).map_err(|e| format!("amount {:?}: {e}", a.amount))?;
    if price.is_zero() {
        return Err("amount is 0".into());
    }
    let extra = a.extra.as_ref();
    let window = match extra.and_then(|e| e.get("settlementWindow")) {
        None => 300,
        Some(Value::Number(n)) => aep2::uint::parse_json_integer(n).map_err(|e| format!("settlementWindow: {e}"))?,
        Some(_) => return Err("settlementWindow must be an integer".into()),
    };
    let quote = a.quote().transpose().map_err(|e| format!("extra.quote: {e}"))?;
    if let Some(q) = &quote {
        if q.domain != domain {
            return Err("the quote's domain is not the deployment probed".into());
        }
        if q.payee != payee || q.asset != asset || q.amount != price {
            return Err("the quote disagrees with payTo, asset or amount".into());
        }
    }
    Ok(Offer {
        accepted: a.clone(),
        domain,
        payee,
        asset,
        price,
        window,
        url: String::new(),
        quote,
    })
}

struct Probe<'a> {
    p: &'a PayeeProbe,
    target: Target,
}

impl Probe<'_> {
    fn send(&self, req: &Request) -> Result<Response, HttpError> {
        http::send(&self.target, req, self.p.timeout)
    }

    fn send_to(&self, target: &Target, req: &Request) -> Result<Response, HttpError> {
        http::send(target, req, self.p.timeout)
    }

    /// The terms to pay now: the first 402's in Intent Mode, a fresh quote in Order Mode (a
    /// quote is paid once).
    fn offer(&self, first: &Offer) -> Result<Offer, Outcome> {
        if first.quote.is_none() {
            return Ok(first.clone());
        }
        let answer = self.send(&Request::new("GET"));
        match &answer {
            Ok(r) => read_offer(r, self.p, &self.target.url())
                .map_err(|e| Outcome::failed(Some(got_of(&answer)), format!("a fresh quote: {e}"))),
            Err(e) => Err(Outcome::no_answer(e, "a 402 with a fresh quote")),
        }
    }

    fn pay(&self, offer: &Offer, s: &Signed) -> Request {
        Request::new("GET").header(
            PAYMENT_SIGNATURE,
            &aep2_x402::payment_signature(&offer.accepted, &s.json()),
        )
    }

    /// Signs `adjust`ed valid terms and sends them; the answer must be a refusal `want` accepts.
    fn refused(&self, first: &Offer, want: Want, adjust: impl FnOnce(&mut Terms, &mut Domain)) -> Outcome {
        let offer = match self.offer(first) {
            Ok(o) => o,
            Err(o) => return o,
        };
        let mut terms = match offer.terms(&offer.url) {
            Ok(t) => t,
            Err(e) => return Outcome::failed(None, e),
        };
        let mut domain = offer.domain.clone();
        adjust(&mut terms, &mut domain);
        match sign(&self.p.key, &domain, &terms) {
            Ok(s) => super::judge_refusal(&self.send(&self.pay(&offer, &s)), want),
            Err(e) => Outcome::failed(None, e),
        }
    }
}

/// A payment that was served: the mandate, the request and the `PAYMENT-RESPONSE`.
struct ServedPayment {
    signed: Signed,
    request: Request,
    response: Result<PaymentResponse, String>,
}

/// Runs every payee check against `p.url` and returns the report. Fails only when the URL is
/// unusable (exit 2) or nothing answers the first request (exit 3).
pub fn probe_payee(p: &PayeeProbe) -> Result<Report, Error> {
    let target = Target::parse(&p.url).map_err(|e| Error::new(exit::USAGE, e))?;
    let fits = matches!(
        (&p.key, p.deployment.profile()),
        (PayerKey::Secp256k1(_), Profile::Eip712) | (PayerKey::Ed25519(_), Profile::Ed25519)
    );
    if !fits {
        return Err(Error::new(exit::USAGE, "the payer key does not fit the profile"));
    }
    let began = Instant::now();
    let started = unix_now();
    let probe = Probe {
        p,
        target: target.clone(),
    };
    let mut cases = Cases::new("probe_payee", "probe/payee");

    // no-payment-402
    let t = Instant::now();
    let first = probe.send(&Request::new("GET"));
    if let Err(e @ HttpError::Unreachable(_)) = &first {
        return Err(unreachable(&p.url, e));
    }
    let offer = match &first {
        Ok(r) => match read_offer(r, p, &target.url()) {
            Ok(offer) => {
                let code = reason_of(r);
                if code.as_deref() == Some(Reason::PaymentMissing.code()) {
                    cases.record(
                        "no-payment-402",
                        &["aep2.md#x402-payee-processing", "aep2.md#x402-carriers"],
                        Want::Code(Reason::PaymentMissing).expectation(),
                        t,
                        Outcome::passed(
                            Some(got_of(&first)),
                            format!(
                                "402 asking {} of {} to {} on {}",
                                offer.price, offer.asset, offer.payee, offer.accepted.network
                            ),
                        ),
                    );
                } else {
                    cases.record(
                        "no-payment-402",
                        &["aep2.md#x402-payee-processing", "aep2.md#x402-carriers"],
                        Want::Code(Reason::PaymentMissing).expectation(),
                        t,
                        Outcome::failed(
                            Some(got_of(&first)),
                            format!(
                                "a well-formed 402, but its reason is {} instead of payment_missing",
                                code.as_deref().unwrap_or("none")
                            ),
                        ),
                    );
                }
                Some(offer)
            }
            Err(e) => {
                cases.record(
                    "no-payment-402",
                    &["aep2.md#x402-payee-processing", "aep2.md#x402-carriers"],
                    Want::Code(Reason::PaymentMissing).expectation(),
                    t,
                    Outcome::failed(Some(got_of(&first)), e),
                );
                None
            }
        },
        Err(e) => {
            cases.record(
                "no-payment-402",
                &["aep2.md#x402-payee-processing"],
                Want::Code(Reason::PaymentMissing).expectation(),
                t,
                Outcome::no_answer(e, "a 402 with PAYMENT-REQUIRED"),
            );
            None
        }
    };

    let Some(offer) = offer else {
        for name in PAID_CHECKS {
            cases.record(
                name,
                &[],
                served(),
                Instant::now(),
                Outcome::skipped("no usable payment terms: no-payment-402 did not pass"),
            );
        }
        return Ok(finish(cases, selection(p), started, began));
    };

    // valid-served
    let t = Instant::now();
    let mut payment: Option<ServedPayment> = None;
    let outcome = match probe.offer(&offer) {
        Err(o) => o,
        Ok(o) => match o.terms(&o.url).and_then(|terms| sign(&p.key, &o.domain, &terms)) {
            Err(e) => Outcome::failed(None, e),
            Ok(signed) => {
                let request = probe.pay(&o, &signed);
                let answer = probe.send(&request);
                let outcome = judge_served(&answer, &signed);
                if let Ok(r) = &answer
                    && (200..300).contains(&r.status)
                {
                    let response = r
                        .header(PAYMENT_RESPONSE)
                        .ok_or_else(|| format!("no {PAYMENT_RESPONSE} header"))
                        .and_then(|h| PaymentResponse::decode(h).map_err(|e| e.to_string()));
                    payment = Some(ServedPayment {
                        signed,
                        request,
                        response,
                    });
                }
                outcome
            }
        },
    };
    cases.record(
        "valid-served",
        &["aep2.md#x402-payee-processing", "aep2.md#verification-order"],
        served(),
        t,
        outcome,
    );

    // receipt-verifies, receipt-deadline-rule
    let t = Instant::now();
    let receipt = payment.as_ref().map(|pay| receipt_of(pay, p.sp.as_ref()));
    let (verifies, rule) = match &receipt {
        None => (
            Outcome::skipped("no payment was served (valid-served did not pass)"),
            Outcome::skipped("no payment was served (valid-served did not pass)"),
        ),
        Some(Err(e)) => (
            Outcome::failed(None, e.clone()),
            Outcome::failed(None, format!("no receipt to check: {e}")),
        ),
        Some(Ok((r, verified, signed))) => {
            let got = Some(json!({ "sp": r.sp.to_string(), "enqueueDeadline": r.enqueue_deadline }));
            let verifies = match verified {
                Ok(()) => Outcome::passed(got.clone(), format!("receipt signed by {}", r.sp)),
                Err(e) => Outcome::failed(got.clone(), format!("the receipt does not verify: {e}")),
            };
            let deadline = signed.envelope.mandate.deadline();
            let rule = if r.enqueue_deadline <= deadline {
                Outcome::passed(
                    got,
                    format!("enqueueDeadline {} ≤ mandate deadline {deadline}", r.enqueue_deadline),
                )
            } else {
                Outcome::failed(
                    got,
                    format!(
                        "enqueueDeadline {} is after the mandate's deadline {deadline}",
                        r.enqueue_deadline
                    ),
                )
            };
            (verifies, rule)
        }
    };
    cases.record("receipt-verifies", &["aep2.md#receipts"], served(), t, verifies);
    cases.record(
        "receipt-deadline-rule",
        &["aep2.md#receipt-deadline-rule"],
        served(),
        t,
        rule,
    );

    // replay-refused: the very request that was served, again.
    let t = Instant::now();
    // Also in Order Mode: the mandate that paid a quote, presented again, is a replay (aep2.md#replay),
    // whatever else the payee knows about the quote.
    const REPLAYED: &[Reason] = &[Reason::MandateReplayed, Reason::NonceReused];
    let want = Want::AnyOf(REPLAYED);
    let outcome = match &payment {
        None => Outcome::skipped("no payment was served (valid-served did not pass)"),
        Some(pay) => super::judge_refusal(&probe.send(&pay.request), want),
    };
    cases.record("replay-refused", &["aep2.md#replay"], want.expectation(), t, outcome);

    // under-payment
    let t = Instant::now();
    let want = Want::Code(Reason::AmountInsufficient);
    let outcome = match decrement(&offer.price).filter(|a| !a.is_zero()) {
        None => Outcome::skipped("the price is 1: no smaller positive amount exists"),
        Some(less) => probe.refused(&offer, want, |t, _| t.amount = less),
    };
    cases.record(
        "under-payment",
        &["aep2.md#policy-amount"],
        want.expectation(),
        t,
        outcome,
    );

    let simple: [(&str, &str, Want, Adjust); 3] = [
        (
            "wrong-payee",
            "aep2.md#policy-payee",
            Want::Code(Reason::PayeeMismatch),
            Box::new(|t: &mut Terms, _: &mut Domain| t.payee = other_account(&t.payee)),
        ),
        (
            "wrong-asset",
            "aep2.md#policy-payee",
            Want::Code(Reason::AssetMismatch),
            Box::new(|t: &mut Terms, _: &mut Domain| t.asset = other_account(&t.asset)),
        ),
        (
            "wrong-chain",
            "aep2.md#envelope-native",
            Want::Code(Reason::DomainMismatch),
            Box::new(|_: &mut Terms, d: &mut Domain| *d = other_chain(d)),
        ),
    ];
    for (name, anchor, want, adjust) in simple {
        let t = Instant::now();
        let outcome = probe.refused(&offer, want, adjust);
        cases.record(name, &[anchor], want.expectation(), t, outcome);
    }

    // expired
    let t = Instant::now();
    let want = Want::Code(Reason::Expired);
    let outcome = probe.refused(&offer, want, |t, _| t.deadline = unix_now().saturating_sub(EXPIRED_BY));
    cases.record("expired", &["aep2.md#mandate-fields"], want.expectation(), t, outcome);

    // bad-signature
    let t = Instant::now();
    let want = Want::Stage(Reason::SignatureInvalid, Stage::Signature);
    let outcome = match probe.offer(&offer) {
        Err(o) => o,
        Ok(o) => match o.terms(&o.url).and_then(|terms| sign(&p.key, &o.domain, &terms)) {
            Err(e) => Outcome::failed(None, e),
            Ok(s) => super::judge_refusal(&probe.send(&probe.pay(&o, &corrupt_signature(&s))), want),
        },
    };
    cases.record(
        "bad-signature",
        &["aep2.md#verification-order"],
        want.expectation(),
        t,
        outcome,
    );

    // request-binding
    let t = Instant::now();
    let want = Want::Code(Reason::RequestMismatch);
    let outcome = request_binding(&probe, &offer, want);
    cases.record(
        "request-binding",
        &["aep2.md#request-binding"],
        want.expectation(),
        t,
        outcome,
    );

    // malformed-header: printable, but not base64.
    let t = Instant::now();
    let want = Want::Code(Reason::Base64Invalid);
    let req = Request::new("GET").header(PAYMENT_SIGNATURE, "%%not*base64%%");
    let outcome = super::judge_refusal(&probe.send(&req), want);
    cases.record(
        "malformed-header",
        &["aep2.md#decoding-rules"],
        want.expectation(),
        t,
        outcome,
    );

    // oversized-header
    let t = Instant::now();
    let want = Want::CodeOrHttp(Reason::HeaderTooLarge);
    let req = Request::new("GET").header(PAYMENT_SIGNATURE, &"A".repeat(OVERSIZED_HEADER_BYTES));
    let outcome = super::judge_refusal(&probe.send(&req), want);
    cases.record("oversized-header", &["aep2.md#limits"], want.expectation(), t, outcome);

    Ok(finish(cases, selection(p), started, began))
}

/// A change to valid terms.
type Adjust = Box<dyn FnOnce(&mut Terms, &mut Domain)>;

/// The checks that need the payee's terms, in run order.
const PAID_CHECKS: [&str; 13] = [
    "valid-served",
    "receipt-verifies",
    "receipt-deadline-rule",
    "replay-refused",
    "under-payment",
    "wrong-payee",
    "wrong-asset",
    "wrong-chain",
    "expired",
    "bad-signature",
    "request-binding",
    "malformed-header",
    "oversized-header",
];

fn selection(p: &PayeeProbe) -> serde_json::Value {
    json!({
        "probe": "payee",
        "url": p.url,
        "payer": p.key.signer(),
        "profile": p.deployment.profile().as_str(),
        "binding": format!("{:?}", p.binding).to_lowercase(),
        "sp": p.sp.map(|s| s.to_string()),
    })
}

fn judge_served(answer: &Result<Response, HttpError>, signed: &Signed) -> Outcome {
    let r = match answer {
        Ok(r) => r,
        Err(e) => return Outcome::no_answer(e, "a 2xx answer with PAYMENT-RESPONSE"),
    };
    let got = Some(got_of(answer));
    if !(200..300).contains(&r.status) {
        return Outcome::failed(
            got,
            format!(
                "expected a 2xx with {PAYMENT_RESPONSE}; got {} with reason {}, body: {}",
                r.status,
                reason_of(r).as_deref().unwrap_or("none"),
                r.excerpt()
            ),
        );
    }
    let Some(h) = r.header(PAYMENT_RESPONSE) else {
        return Outcome::failed(
            got,
            format!("served ({}) without a {PAYMENT_RESPONSE} header", r.status),
        );
    };
    match PaymentResponse::decode(h) {
        Err(e) => Outcome::failed(got, format!("{PAYMENT_RESPONSE} does not decode: {e}")),
        Ok(pr) if !pr.mandate_id.eq_ignore_ascii_case(&signed.mandate_id()) => Outcome::failed(
            got,
            format!(
                "{PAYMENT_RESPONSE} names mandate {}, the probe sent {}",
                pr.mandate_id,
                signed.mandate_id()
            ),
        ),
        Ok(_) => Outcome::passed(got, format!("served ({}) mandate {}", r.status, signed.mandate_id())),
    }
}

type Checked<'a> = (Receipt, aep2::Result<()>, &'a Signed);

fn receipt_of<'a>(pay: &'a ServedPayment, sp: Option<&SpId>) -> Result<Checked<'a>, String> {
    let response = pay
        .response
        .as_ref()
        .map_err(|e| format!("no usable {PAYMENT_RESPONSE}: {e}"))?;
    let json = response
        .receipt
        .as_ref()
        .ok_or_else(|| format!("{PAYMENT_RESPONSE} carries no receipt"))?;
    let receipt = Receipt::from_json(json).map_err(|e| format!("the receipt does not parse: {e}"))?;
    let s = &pay.signed;
    let verified = receipt.verify(&ReceiptExpectations {
        sp,
        mandate: Some((&s.envelope.mandate, &s.digest)),
        domain: Some(&s.domain),
    });
    Ok((receipt, verified, s))
}

fn request_binding(probe: &Probe<'_>, offer: &Offer, want: Want) -> Outcome {
    if probe.p.binding == Binding::Off {
        return Outcome::skipped("turned off (--binding off)");
    }
    let other_path = {
        let path = &probe.target.path;
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}aep2-probe=another-request")
    };
    let fresh = match probe.offer(offer) {
        Ok(o) => o,
        Err(o) => return o,
    };
    // Intent Mode: a mandate bound to the other request, sent with this one. Order Mode: the
    // quote of this request, paid from the other one.
    let (bound_url, send_to) = if fresh.quote.is_some() {
        (fresh.url.clone(), probe.target.with_path(&other_path))
    } else {
        let sep = if fresh.url.contains('?') { '&' } else { '?' };
        (
            format!("{}{sep}aep2-probe=another-request", fresh.url),
            probe.target.clone(),
        )
    };
    let signed = match fresh
        .terms(&bound_url)
        .and_then(|t| sign(&probe.p.key, &fresh.domain, &t))
    {
        Ok(s) => s,
        Err(e) => return Outcome::failed(None, e),
    };
    let answer = probe.send_to(&send_to, &probe.pay(&fresh, &signed));
    if let Ok(r) = &answer
        && (200..300).contains(&r.status)
        && probe.p.binding == Binding::Auto
        && fresh.quote.is_none()
    {
        return Outcome::skipped(format!(
            "the payee served ({}) a mandate bound to another request: it does not require request binding",
            r.status
        ));
    }
    super::judge_refusal(&answer, want)
}
