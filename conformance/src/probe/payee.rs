//! `probe payee`: the checks against a paid HTTP resource (spec `conformance.md#probe-payee`).

use super::http::{self, HttpError, Request, Response, Target};
use super::{
    Cases, Deployment, Outcome, Signed, Terms, Want, corrupt_signature, decrement, finish, fresh_nonce, got_of,
    other_account, other_chain, reason_of, served, sign, unix_now, unreachable,
};
use crate::report::{Report, Status};
use crate::{Error, exit};
use aep2::json::Value;
use aep2::{
    AccountId, Domain, PayerKey, PaymentRequest, Profile, Reason, Receipt, ReceiptExpectations, SpId, Stage, U256,
};
use aep2_x402::{
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, PaymentRequired, PaymentRequirements, PaymentResponse,
};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Size of the oversized payment header: above both the envelope limit (8192 bytes,
/// `aep2.md#limits`) and a typical 16 KiB header budget, below common HTTP servers' 64 KiB
/// request-head limits, so the payee itself is the one to refuse it.
const OVERSIZED_HEADER_BYTES: usize = 20_000;
/// Seconds a probe mandate outlives the settlement window.
const DEADLINE_MARGIN: u64 = 120;
/// How far in the past the expired mandate's deadline lies (well beyond any clock skew).
const EXPIRED_BY: u64 = 3600;
/// Default of [`PayeeProbe::sp_stall`]: above the project's payee's SP timeout (5 s).
pub const DEFAULT_SP_STALL: Duration = Duration::from_secs(6);
/// Methods tried, in order, as one the probed route does not serve (`wrong-method-not-charged`).
const OTHER_METHODS: [&str; 3] = ["DELETE", "PUT", "PATCH"];
/// Statuses that refuse a method before any payment is read.
const METHOD_REFUSALS: [u16; 3] = [405, 404, 501];
/// Codes of a served mandate presented again (aep2.md#replay).
const REPLAYED: &[Reason] = &[Reason::MandateReplayed, Reason::NonceReused];
/// How often `retry-after-503` presents the mandate again while the payee answers
/// `payment_in_progress`, and the longest `Retry-After` it honours.
const IN_PROGRESS_TRIES: usize = 3;
const MAX_RETRY_AFTER: u64 = 15;

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
    /// The `request-binding` check (`binding-not-bypassed` follows it: skipped when it is off or
    /// found that the payee does not bind).
    pub binding: Binding,
    /// Time limit of each exchange.
    pub timeout: Duration,
    /// An unbound paid route of the same payee (`http://host:port/paid/mvp`), for
    /// `binding-not-bypassed`; without it that check is skipped.
    pub unbound_url: Option<String>,
    /// The process id of the payee's settlement processor on this machine, for `retry-after-503`:
    /// the probe stops it (`kill -STOP`) during one payment and resumes it (`kill -CONT`); without
    /// it that check is skipped.
    pub sp_pid: Option<u32>,
    /// The longest the SP stays stopped (it is resumed as soon as the payee answers): more than the
    /// payee's SP timeout. Default [`DEFAULT_SP_STALL`].
    pub sp_stall: Duration,
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
            unbound_url: None,
            sp_pid: None,
            sp_stall: DEFAULT_SP_STALL,
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
    let unbound = p
        .unbound_url
        .as_deref()
        .map(Target::parse)
        .transpose()
        .map_err(|e| Error::new(exit::USAGE, format!("unbound URL: {e}")))?;
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
    let binds = outcome.status != Status::Skipped;
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

    // wrong-method-not-charged
    let t = Instant::now();
    let outcome = wrong_method(&probe, &offer);
    cases.record(
        "wrong-method-not-charged",
        &["aep2.md#x402-payee-processing"],
        served(),
        t,
        outcome,
    );

    // binding-not-bypassed
    let t = Instant::now();
    let outcome = match &unbound {
        None => Outcome::skipped("needs --unbound-url: an unbound paid route of the same payee"),
        Some(_) if p.binding == Binding::Off => Outcome::skipped("turned off (--binding off)"),
        Some(_) if !binds => Outcome::skipped("the probed route does not bind requests (request-binding was skipped)"),
        Some(u) => binding_not_bypassed(&probe, &offer, u),
    };
    cases.record(
        "binding-not-bypassed",
        &["aep2.md#request-binding", "aep2.md#x402-payee-processing"],
        served(),
        t,
        outcome,
    );

    // retry-after-503: last, as it stops the payee's SP for a while.
    let t = Instant::now();
    let outcome = match p.sp_pid {
        None => Outcome::skipped("needs --sp-pid: the process id of the payee's settlement processor"),
        Some(pid) => retry_after_503(&probe, &offer, pid),
    };
    cases.record(
        "retry-after-503",
        &["aep2.md#payee-payment-state", "aep2.md#x402-payee-processing"],
        served(),
        t,
        outcome,
    );

    Ok(finish(cases, selection(p), started, began))
}

/// A change to valid terms.
type Adjust = Box<dyn FnOnce(&mut Terms, &mut Domain)>;

/// The checks that need the payee's terms, in run order.
const PAID_CHECKS: [&str; 16] = [
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
    "wrong-method-not-charged",
    "binding-not-bypassed",
    "retry-after-503",
];

fn selection(p: &PayeeProbe) -> serde_json::Value {
    json!({
        "probe": "payee",
        "url": p.url,
        "payer": p.key.signer(),
        "profile": p.deployment.profile().as_str(),
        "binding": format!("{:?}", p.binding).to_lowercase(),
        "sp": p.sp.map(|s| s.to_string()),
        "unboundUrl": p.unbound_url,
        "spPid": p.sp_pid,
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
        lane: None,
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

/// The methods of an `Allow` header, upper-cased.
fn allowed(resp: &Response) -> Option<Vec<String>> {
    resp.header("allow").map(|v| {
        v.split(',')
            .map(|m| m.trim().to_ascii_uppercase())
            .filter(|m| !m.is_empty())
            .collect()
    })
}

/// The first of [`OTHER_METHODS`] that `allow` does not name (`DELETE` when nothing is known).
fn other_method(allow: Option<&[String]>) -> Option<&'static str> {
    OTHER_METHODS
        .iter()
        .copied()
        .find(|m| !allow.is_some_and(|a| a.iter().any(|x| x == m)))
}

/// Signs the valid payment of a fresh offer (a fresh quote in Order Mode) for the probed request.
fn valid_payment(probe: &Probe<'_>, offer: &Offer) -> Result<(Offer, Signed, Request), Outcome> {
    let fresh = probe.offer(offer)?;
    let signed = fresh
        .terms(&fresh.url)
        .and_then(|t| sign(&probe.p.key, &fresh.domain, &t))
        .map_err(|e| Outcome::failed(None, e))?;
    let request = probe.pay(&fresh, &signed);
    Ok((fresh, signed, request))
}

/// `wrong-method-not-charged`: `OPTIONS` gets no payment terms; the valid mandate of the probed
/// request, sent with a method the route does not serve, is refused before any payment is read
/// (`405`, or `404`/`501`) and not charged; the same mandate with the right method is then served.
fn wrong_method(probe: &Probe<'_>, offer: &Offer) -> Outcome {
    let options = probe.send(&Request::new("OPTIONS"));
    let o = match &options {
        Ok(r) => r,
        Err(e) => return Outcome::no_answer(e, "an answer to OPTIONS without payment terms"),
    };
    if o.status == 402 || o.header(PAYMENT_REQUIRED).is_some() || o.status >= 500 {
        let what = if o.status >= 500 {
            format!("a server error ({})", o.status)
        } else if o.header(PAYMENT_REQUIRED).is_some() {
            format!("payment terms ({} with {PAYMENT_REQUIRED})", o.status)
        } else {
            "payment terms (402)".to_owned()
        };
        return Outcome::failed(
            Some(got_of(&options)),
            format!(
                "OPTIONS must be answered without payment terms (e.g. 204 with Allow); got {what}, body: {}",
                o.excerpt()
            ),
        );
    }
    let allow = allowed(o);
    let shown_allow = o.header("allow").unwrap_or("none").to_owned();
    let Some(method) = other_method(allow.as_deref()) else {
        return Outcome::skipped(format!(
            "the route allows every method tried ({}; Allow: {shown_allow})",
            OTHER_METHODS.join(", ")
        ));
    };
    let (_, signed, pay) = match valid_payment(probe, offer) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let mut wrong = pay.clone();
    wrong.method = method.to_owned();
    let answer = probe.send(&wrong);
    let r = match &answer {
        Ok(r) => r,
        Err(e) => return Outcome::no_answer(e, &format!("405 to {method} with a valid mandate")),
    };
    let got = Some(got_of(&answer));
    let code = reason_of(r);
    let code = code.as_deref().unwrap_or("none");
    let charged = r.header(PAYMENT_RESPONSE).is_some();
    if (200..300).contains(&r.status) && allow.is_none() && !charged {
        return Outcome::skipped(format!(
            "the route serves {method} ({}) and OPTIONS named no Allow: no method it does not serve is known",
            r.status
        ));
    }
    if (200..300).contains(&r.status) || charged {
        let served = if (200..300).contains(&r.status) {
            "served"
        } else {
            "answered"
        };
        let taken = if charged { " and charged (PAYMENT-RESPONSE)" } else { "" };
        return Outcome::failed(
            got,
            format!(
                "{method}, a method the route does not serve (Allow: {shown_allow}), was {served} ({}){taken} \
                 with a mandate for GET; body: {}",
                r.status,
                r.excerpt()
            ),
        );
    }
    if !METHOD_REFUSALS.contains(&r.status) {
        return Outcome::failed(
            got,
            format!(
                "expected 405 (or 404/501) to {method} before any payment is read; got {} with reason {code}, body: {}",
                r.status,
                r.excerpt()
            ),
        );
    }
    let refused = format!("{method} with a valid mandate → {} ({code}), not charged", r.status);
    let again = probe.send(&pay);
    let outcome = judge_served(&again, &signed);
    if outcome.status != Status::Passed {
        return Outcome::failed(
            outcome.got,
            format!("{refused}; but the same mandate with GET then: {}", outcome.message),
        );
    }
    let status = again.as_ref().map(|r| r.status).unwrap_or(0);
    Outcome::passed(
        outcome.got,
        format!(
            "OPTIONS → {} (Allow: {shown_allow}); {refused}; the same mandate with GET → served ({status})",
            o.status
        ),
    )
}

/// The `payTo` of the first aep2 entry of a 402's `PAYMENT-REQUIRED`.
fn pay_to(resp: &Response) -> Option<String> {
    let required = PaymentRequired::decode(resp.header(PAYMENT_REQUIRED)?).ok()?;
    required
        .accepts
        .iter()
        .find(|a| a.scheme == aep2_x402::SCHEME)
        .map(|a| a.pay_to.clone())
}

/// `binding-not-bypassed`: the valid mandate of the probed request, presented at an unbound route
/// of the same payee, is refused there (a 4xx, not charged) and then served at its own request.
fn binding_not_bypassed(probe: &Probe<'_>, offer: &Offer, unbound: &Target) -> Outcome {
    let url = unbound.url();
    let terms = probe.send_to(unbound, &Request::new("GET"));
    let t = match &terms {
        Ok(r) => r,
        Err(e) => return Outcome::no_answer(e, &format!("a 402 from the unbound URL {url}")),
    };
    if t.status != 402 {
        return Outcome::failed(
            Some(got_of(&terms)),
            format!(
                "the unbound URL {url} is not a paid resource: expected 402 without payment, got {}, body: {}",
                t.status,
                t.excerpt()
            ),
        );
    }
    let unbound_payee = pay_to(t).unwrap_or_else(|| "an account not announced".to_owned());
    let (fresh, signed, pay) = match valid_payment(probe, offer) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let accounts = format!("it pays {unbound_payee}, the probed route {}", fresh.payee);
    let same = AccountId::parse(&unbound_payee).is_ok_and(|a| a == fresh.payee);
    let answer = probe.send_to(unbound, &pay);
    let r = match &answer {
        Ok(r) => r,
        Err(e) => return Outcome::no_answer(e, &format!("a refusal at the unbound URL {url}")),
    };
    let got = Some(got_of(&answer));
    let code = reason_of(r);
    let code = code.as_deref().unwrap_or("none");
    if (200..300).contains(&r.status) || r.header(PAYMENT_RESPONSE).is_some() {
        let hint = if same {
            " (the unbound route takes the bound route's own account: any mandate made for a bound request pays there)"
        } else {
            ""
        };
        return Outcome::failed(
            got,
            format!(
                "a mandate bound to GET {} was {} ({}){} at the unbound URL {url}{hint}; {accounts}; body: {}",
                fresh.url,
                if (200..300).contains(&r.status) {
                    "served"
                } else {
                    "answered"
                },
                r.status,
                if r.header(PAYMENT_RESPONSE).is_some() {
                    " and charged (PAYMENT-RESPONSE)"
                } else {
                    ""
                },
                r.excerpt()
            ),
        );
    }
    if !(400..500).contains(&r.status) {
        return Outcome::failed(
            got,
            format!(
                "expected a 4xx refusal at the unbound URL {url}; got {} with reason {code}, body: {}",
                r.status,
                r.excerpt()
            ),
        );
    }
    let refused = format!("refused at the unbound URL {url} ({} {code}; {accounts})", r.status);
    let here = probe.send(&pay);
    let outcome = judge_served(&here, &signed);
    if outcome.status != Status::Passed {
        return Outcome::failed(
            outcome.got,
            format!(
                "{refused}, but then not served at the request it is bound to: {}",
                outcome.message
            ),
        );
    }
    let status = here.as_ref().map(|r| r.status).unwrap_or(0);
    Outcome::passed(
        outcome.got,
        format!("{refused}, then served ({status}) at the request it is bound to"),
    )
}

/// Sends `SIGSTOP` or `SIGCONT` (`kill -STOP|-CONT pid`).
fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let out = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("kill -{sig} {pid}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kill -{sig} {pid}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A process stopped with `SIGSTOP`: resumed with `SIGCONT` by [`Stopped::resume`], on drop, or
/// by a watchdog once `limit` has passed, whichever comes first.
struct Stopped {
    pid: u32,
    resumed: Arc<AtomicBool>,
    done: Option<mpsc::Sender<()>>,
    watchdog: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Stopped {
    fn stop(pid: u32, limit: Duration) -> Result<Stopped, String> {
        signal(pid, "STOP")?;
        let resumed = Arc::new(AtomicBool::new(false));
        let (done, wait) = mpsc::channel::<()>();
        let flag = resumed.clone();
        let watchdog = std::thread::spawn(move || {
            // Woken early by resume() or drop (a message or a closed channel), else at the limit.
            let _ = wait.recv_timeout(limit);
            // Marked before the signal: an answer seen while unmarked came while it was stopped.
            flag.store(true, Ordering::SeqCst);
            signal(pid, "CONT")
        });
        Ok(Stopped {
            pid,
            resumed,
            done: Some(done),
            watchdog: Some(watchdog),
        })
    }

    /// Whether the process may have been resumed already.
    fn resumed(&self) -> bool {
        self.resumed.load(Ordering::SeqCst)
    }

    fn finish(&mut self) -> Result<(), String> {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
        match self.watchdog.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => signal(self.pid, "CONT"),
            None => Ok(()),
        }
    }

    fn resume(mut self) -> Result<(), String> {
        self.finish()
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Judges the answer to the payment sent while the SP was stopped: `Ok` for `503
/// settlement_unavailable`, else the check's outcome.
fn judge_stalled(
    answer: &Result<Response, HttpError>,
    while_stopped: bool,
    pid: u32,
    stall: Duration,
) -> Result<(), Outcome> {
    let expected = "503 settlement_unavailable while the SP was stopped";
    let r = match answer {
        Ok(r) => r,
        Err(e) => return Err(Outcome::no_answer(e, expected)),
    };
    let got = Some(got_of(answer));
    let code = reason_of(r);
    if r.status == 503 && code.as_deref() == Some(Reason::SettlementUnavailable.code()) {
        return Ok(());
    }
    if (200..300).contains(&r.status) {
        if while_stopped {
            return Err(Outcome::failed(
                got,
                format!(
                    "served ({}) while the SP (pid {pid}) was stopped: a payee must not serve without its SP's \
                     receipt (is {pid} the payee's SP?)",
                    r.status
                ),
            ));
        }
        return Err(Outcome::skipped(format!(
            "the payee waited out the {} s stall and was served once the SP resumed: give --sp-stall-seconds \
             above its SP timeout",
            stall.as_secs()
        )));
    }
    Err(Outcome::failed(
        got,
        format!(
            "expected {expected}; got {} with reason {}, body: {}",
            r.status,
            code.as_deref().unwrap_or("none"),
            r.excerpt()
        ),
    ))
}

/// Presents `pay` again, waiting out `payment_in_progress` (`Retry-After`, at most
/// [`MAX_RETRY_AFTER`] s) a few times.
fn present_again(probe: &Probe<'_>, pay: &Request) -> Result<Response, HttpError> {
    let mut answer = probe.send(pay);
    for _ in 1..IN_PROGRESS_TRIES {
        let wait = match &answer {
            Ok(r) if reason_of(r).as_deref() == Some(Reason::PaymentInProgress.code()) => r
                .header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(1)
                .clamp(1, MAX_RETRY_AFTER),
            _ => break,
        };
        std::thread::sleep(Duration::from_secs(wait));
        answer = probe.send(pay);
    }
    answer
}

/// `retry-after-503`: one payment while the payee's SP is stopped is `503 settlement_unavailable`;
/// the same mandate presented again once the SP runs is served, with a receipt; once more it is a
/// replay.
fn retry_after_503(probe: &Probe<'_>, offer: &Offer, pid: u32) -> Outcome {
    let stall = probe.p.sp_stall.max(Duration::from_secs(1));
    let (_, signed, pay) = match valid_payment(probe, offer) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let stopped = match Stopped::stop(pid, stall) {
        Ok(s) => s,
        Err(e) => return Outcome::failed(None, format!("cannot stop the SP process: {e}")),
    };
    let began = Instant::now();
    let answer = http::send(&probe.target, &pay, stall + probe.p.timeout);
    let while_stopped = !stopped.resumed();
    let waited = began.elapsed();
    if let Err(e) = stopped.resume() {
        return Outcome::failed(
            Some(got_of(&answer)),
            format!("cannot resume the SP process ({e}): resume it by hand, kill -CONT {pid}"),
        );
    }
    if let Err(o) = judge_stalled(&answer, while_stopped, pid, stall) {
        return o;
    }
    let first = format!(
        "503 settlement_unavailable after {:.1} s with the SP (pid {pid}) stopped",
        waited.as_secs_f64()
    );
    let retried = present_again(probe, &pay);
    let outcome = judge_served(&retried, &signed);
    if outcome.status != Status::Passed {
        return Outcome::failed(
            outcome.got,
            format!("{first}; the same mandate presented again: {}", outcome.message),
        );
    }
    let Ok(r) = &retried else {
        return outcome;
    };
    let payment = ServedPayment {
        signed: signed.clone(),
        request: pay.clone(),
        response: r
            .header(PAYMENT_RESPONSE)
            .ok_or_else(|| format!("no {PAYMENT_RESPONSE} header"))
            .and_then(|h| PaymentResponse::decode(h).map_err(|e| e.to_string())),
    };
    let receipt = match receipt_of(&payment, probe.p.sp.as_ref()) {
        Ok((receipt, Ok(()), _)) => receipt,
        Ok((_, Err(e), _)) => {
            return Outcome::failed(
                outcome.got,
                format!("{first}; presented again it was served, but the receipt does not verify: {e}"),
            );
        }
        Err(e) => {
            return Outcome::failed(outcome.got, format!("{first}; presented again it was served, but {e}"));
        }
    };
    let served = format!(
        "presented again: served ({}) with a receipt of {}",
        r.status, receipt.sp
    );
    let again = probe.send(&payment.request);
    let replay = super::judge_refusal(&again, Want::AnyOf(REPLAYED));
    if replay.status != Status::Passed {
        return Outcome::failed(
            replay.got,
            format!("{first}; {served}; presented once more: {}", replay.message),
        );
    }
    Outcome::passed(replay.got, format!("{first}; {served}; once more: {}", replay.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Result<Response, HttpError> {
        Ok(Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn the_wrong_method_is_one_allow_does_not_name() {
        let allow = |v: &str| allowed(&resp(204, &[("Allow", v)], "").unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            allow("GET, post ,OPTIONS"),
            Some(vec!["GET".to_owned(), "POST".to_owned(), "OPTIONS".to_owned()])
        );
        assert_eq!(other_method(None), Some("DELETE"));
        assert_eq!(other_method(allow("GET, DELETE").as_deref()), Some("PUT"));
        assert_eq!(other_method(allow("DELETE, PUT, PATCH").as_deref()), None);
    }

    #[test]
    fn a_payment_during_the_stall_must_be_503_settlement_unavailable() {
        let stall = Duration::from_secs(6);
        let unavailable = resp(503, &[], r#"{"reason":"settlement_unavailable"}"#);
        assert!(judge_stalled(&unavailable, true, 7, stall).is_ok());
        // Served while the SP was stopped: no receipt of that SP can be behind it.
        let served = resp(200, &[], "{}");
        let Err(o) = judge_stalled(&served, true, 7, stall) else {
            panic!("served during the stall passed")
        };
        assert_eq!(o.status, Status::Failed);
        assert!(o.message.contains("while the SP (pid 7) was stopped"), "{}", o.message);
        // Served after the watchdog resumed the SP: the stall was too short to tell.
        let Err(o) = judge_stalled(&served, false, 7, stall) else {
            panic!("served after the stall passed")
        };
        assert_eq!(o.status, Status::Skipped);
        // Another refusal, or a 503 with another code, fails.
        for other in [
            resp(402, &[], r#"{"reason":"mandate_replayed"}"#),
            resp(503, &[], r#"{"reason":"replay_store_unavailable"}"#),
            resp(500, &[], "boom"),
        ] {
            let Err(o) = judge_stalled(&other, true, 7, stall) else {
                panic!("{other:?} passed")
            };
            assert_eq!(o.status, Status::Failed, "{other:?}");
        }
        let Err(o) = judge_stalled(&Err(HttpError::Timeout("x".into())), true, 7, stall) else {
            panic!("no answer passed")
        };
        assert_eq!(o.status, Status::TimedOut);
    }

    #[test]
    fn a_stopped_process_is_resumed_by_the_watchdog_and_on_drop() {
        // Our own child, stopped and resumed by its pid.
        let Ok(mut child) = std::process::Command::new("sleep").arg("30").spawn() else {
            return; // no `sleep` here: nothing to stop
        };
        let pid = child.id();
        let state = || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let stopped = Stopped::stop(pid, Duration::from_millis(300)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!stopped.resumed());
        let t = Instant::now();
        while !state().contains(") T ") && t.elapsed() < Duration::from_millis(250) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(state().contains(") T ") || state().is_empty(), "stopped: {}", state());
        std::thread::sleep(Duration::from_millis(600));
        assert!(stopped.resumed(), "the watchdog resumes at the limit");
        assert_eq!(stopped.resume(), Ok(()));
        let dropped = Stopped::stop(pid, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
        drop(dropped);
        assert!(!state().contains(") T "), "resumed on drop: {}", state());
        let _ = child.kill();
        let _ = child.wait();
    }
}
