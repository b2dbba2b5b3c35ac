//! `probe sp`: the checks against a settlement processor's HTTP API (spec
//! `conformance.md#probe-sp`, `aep2.md#sp-enqueue`).

use super::http::{self, HttpError, Request, Response, Target};
use super::{
    Cases, Deployment, Outcome, Signed, Terms, Want, corrupt_signature, finish, fresh_nonce, got_of, increment, served,
    sign, unix_now, unreachable,
};
use crate::report::Report;
use crate::{Error, exit};
use aep2::lane::{Lane, LaneRevocation, SignedLane, sign_lane};
use aep2::{
    AccountId, Domain, EnvelopeForm, PayerKey, Reason, Receipt, ReceiptExpectations, SpId, Stage, U256,
    sign_lane_mandate,
};
use serde_json::{Value as J, json};
use std::time::{Duration, Instant};

/// A body well above the 8192-byte envelope limit (`aep2.md#sp-enqueue`).
const OVERSIZED_BODY_BYTES: usize = 64 * 1024 + 1;
/// Seconds a probe mandate outlives the SP's settlement window.
const DEADLINE_MARGIN: u64 = 120;
/// How far in the past the expired mandate's deadline lies.
const EXPIRED_BY: u64 = 3600;
/// The amount `insufficient-funds` asks for when the SP publishes no balance: far above any
/// test deposit, far below 2^256.
const UNFUNDED_AMOUNT: &str = "1000000000000000000000000000000000000";

/// A `probe sp` run.
#[derive(Clone, Debug)]
pub struct SpProbe {
    /// The SP's base URL (`http://host:port`).
    pub url: String,
    /// The payer's key; its account must hold at least `amount` of `asset` at the SP.
    pub key: PayerKey,
    /// The deployment signed for.
    pub deployment: Deployment,
    /// The network (`eip155:<chainId>` or a CAIP-2 Solana network).
    pub network: String,
    /// The token the payer's account holds.
    pub asset: AccountId,
    /// The payee named in the probe's mandates.
    pub payee: AccountId,
    /// The amount of the valid mandate (and of each refused one).
    pub amount: U256,
    /// Time limit of each exchange.
    pub timeout: Duration,
}

struct Probe<'a> {
    p: &'a SpProbe,
    base: Target,
    domain: Domain,
}

impl Probe<'_> {
    fn get(&self, path: &str) -> Result<Response, HttpError> {
        http::send(&self.base.with_path(path), &Request::new("GET"), self.p.timeout)
    }

    fn post(&self, content_type: &str, body: impl Into<Vec<u8>>) -> Result<Response, HttpError> {
        let req = Request::new("POST").header("Content-Type", content_type).body(body);
        http::send(&self.base.with_path("/enqueue"), &req, self.p.timeout)
    }

    fn enqueue(&self, s: &Signed) -> Result<Response, HttpError> {
        self.post("application/json", s.text())
    }

    /// `POST /enqueue` as the submission `id` (`aep2.md#sp-submission-id`).
    fn enqueue_as(&self, s: &Signed, id: &str) -> Result<Response, HttpError> {
        let req = Request::new("POST")
            .header("Content-Type", "application/json")
            .header("AEP2-Submission-Id", id)
            .body(s.text());
        http::send(&self.base.with_path("/enqueue"), &req, self.p.timeout)
    }

    fn terms(&self, window: u64) -> Terms {
        Terms {
            payee: self.p.payee,
            asset: self.p.asset,
            amount: self.p.amount,
            nonce: fresh_nonce(),
            deadline: unix_now().saturating_add(window).saturating_add(DEADLINE_MARGIN),
            reference: aep2::hash::sha256(format!("aep2-probe-sp {}", fresh_nonce()).as_bytes()),
        }
    }

    fn signed(&self, window: u64, adjust: impl FnOnce(&mut Terms)) -> Result<Signed, String> {
        let mut t = self.terms(window);
        adjust(&mut t);
        sign(&self.p.key, &self.domain, &t)
    }

    /// Signs adjusted valid terms, enqueues them, and judges the refusal.
    fn refused(&self, window: u64, want: Want, adjust: impl FnOnce(&mut Terms)) -> Outcome {
        match self.signed(window, adjust) {
            Ok(s) => super::judge_refusal(&self.enqueue(&s), want),
            Err(e) => Outcome::failed(None, e),
        }
    }
}

/// What `/health` said.
struct Health {
    sp: SpId,
    window: u64,
}

fn read_health(r: &Response, profile: aep2::Profile) -> Result<Health, String> {
    if r.status != 200 {
        return Err(format!("expected 200, got {}; body: {}", r.status, r.excerpt()));
    }
    let v: J = serde_json::from_slice(&r.body).map_err(|e| format!("body is not JSON: {e}; body: {}", r.excerpt()))?;
    if v.get("status").and_then(J::as_str) != Some("ok") {
        return Err(format!("status is not \"ok\": {}", r.excerpt()));
    }
    let mut ids: Vec<&str> = Vec::new();
    if let Some(list) = v.get("sps").and_then(J::as_array) {
        ids.extend(list.iter().filter_map(J::as_str));
    }
    if let Some(one) = v.get("sp").and_then(J::as_str) {
        ids.push(one);
    }
    let wanted = |id: &SpId| match profile {
        aep2::Profile::Eip712 => matches!(id, SpId::Evm(_)),
        _ => matches!(id, SpId::Ed25519(_)),
    };
    let sp = ids
        .iter()
        .filter_map(|t| SpId::parse(t).ok())
        .find(wanted)
        .ok_or_else(|| format!("no {profile} SP id in sp/sps: {}", r.excerpt()))?;
    let window = v
        .get("settlementWindow")
        .and_then(J::as_u64)
        .ok_or_else(|| "settlementWindow is not a non-negative integer".to_owned())?;
    Ok(Health { sp, window })
}

/// The receipt of a successful enqueue, checked: `mandateId`, signature by `sp`, digest,
/// domain and the deadline rule.
fn check_enqueued(r: &Response, s: &Signed, sp: &SpId) -> Result<J, String> {
    if r.status != 200 {
        return Err(format!(
            "expected 200 with a receipt; got {} with reason {}, body: {}",
            r.status,
            super::reason_of(r).as_deref().unwrap_or("none"),
            r.excerpt()
        ));
    }
    let v: J = serde_json::from_slice(&r.body).map_err(|e| format!("body is not JSON: {e}"))?;
    if v.get("success").and_then(J::as_bool) != Some(true) {
        return Err(format!("success is not true: {}", r.excerpt()));
    }
    let id = v.get("mandateId").and_then(J::as_str).unwrap_or("");
    if !id.eq_ignore_ascii_case(&s.mandate_id()) {
        return Err(format!("mandateId {id:?}, the probe sent {}", s.mandate_id()));
    }
    let receipt_json = v.get("receipt").ok_or("no receipt")?.clone();
    let parsed = aep2::json::parse(&receipt_json.to_string(), &aep2::json::Limits::AEP2)
        .and_then(|j| Receipt::from_json(&j))
        .map_err(|e| format!("the receipt does not parse: {e}"))?;
    parsed
        .verify(&ReceiptExpectations {
            sp: Some(sp),
            mandate: Some((&s.envelope.mandate, &s.digest)),
            domain: Some(&s.domain),
            lane: None,
        })
        .map_err(|e| format!("the receipt does not verify: {e}"))?;
    let deadline = s.envelope.mandate.deadline();
    if parsed.enqueue_deadline > deadline {
        return Err(format!(
            "enqueueDeadline {} is after the mandate's deadline {deadline}",
            parsed.enqueue_deadline
        ));
    }
    Ok(receipt_json)
}

/// Runs every SP check against `p.url` and returns the report. Fails only on unusable options
/// (exit 2) or when `/health` gets no answer at all (exit 3).
pub fn probe_sp(p: &SpProbe) -> Result<Report, Error> {
    let usage = |e: String| Error::new(exit::USAGE, e);
    let base = Target::parse(&p.url).map_err(usage)?;
    if !matches!(base.path.as_str(), "/" | "") {
        return Err(usage(format!("{}: give the SP's base URL, without a path", p.url)));
    }
    let domain = p.deployment.domain_for(&p.network).map_err(usage)?;
    let fits = matches!(
        (&p.key, &domain),
        (PayerKey::Secp256k1(_), Domain::Eip712(_)) | (PayerKey::Ed25519(_), Domain::Ed25519(_))
    );
    if !fits {
        return Err(usage("the payer key does not fit the profile".into()));
    }
    let began = Instant::now();
    let started = unix_now();
    let probe = Probe { p, base, domain };
    let mut cases = Cases::new("probe_sp", "probe/sp");
    let selection = json!({
        "probe": "sp",
        "url": p.url,
        "payer": p.key.signer(),
        "profile": p.deployment.profile().as_str(),
        "network": p.network,
        "asset": p.asset.to_string(),
    });

    // health
    let t = Instant::now();
    let answer = probe.get("/health");
    if let Err(e @ HttpError::Unreachable(_)) = &answer {
        return Err(unreachable(&p.url, e));
    }
    let health = match &answer {
        Ok(r) => match read_health(r, p.deployment.profile()) {
            Ok(h) => {
                let msg = format!("SP {} with a {} s settlement window", h.sp, h.window);
                cases.record(
                    "health",
                    &["aep2.md#sp-enqueue"],
                    served(),
                    t,
                    Outcome::passed(Some(got_of(&answer)), msg),
                );
                Some(h)
            }
            Err(e) => {
                cases.record(
                    "health",
                    &["aep2.md#sp-enqueue"],
                    served(),
                    t,
                    Outcome::failed(Some(got_of(&answer)), e),
                );
                None
            }
        },
        Err(e) => {
            cases.record(
                "health",
                &["aep2.md#sp-enqueue"],
                served(),
                t,
                Outcome::no_answer(e, "200 from /health"),
            );
            None
        }
    };
    let Some(health) = health else {
        for name in ENQUEUE_CHECKS {
            cases.record(
                name,
                &[],
                served(),
                Instant::now(),
                Outcome::skipped("health did not pass: no SP id to trust"),
            );
        }
        return Ok(finish(cases, selection, started, began));
    };
    let window = health.window;

    // enqueue-valid
    let t = Instant::now();
    let mut first: Option<(Signed, J)> = None;
    let outcome = match probe.signed(window, |_| {}) {
        Err(e) => Outcome::failed(None, e),
        Ok(s) => {
            let answer = probe.enqueue(&s);
            match &answer {
                Err(e) => Outcome::no_answer(e, "200 with a receipt"),
                Ok(r) => match check_enqueued(r, &s, &health.sp) {
                    Ok(receipt) => {
                        first = Some((s, receipt));
                        Outcome::passed(
                            Some(got_of(&answer)),
                            "receipt verifies; enqueueDeadline within the deadline",
                        )
                    }
                    Err(e) => Outcome::failed(Some(got_of(&answer)), e),
                },
            }
        }
    };
    cases.record(
        "enqueue-valid",
        &[
            "aep2.md#sp-enqueue",
            "aep2.md#receipts",
            "aep2.md#receipt-deadline-rule",
        ],
        served(),
        t,
        outcome,
    );

    // idempotent
    let t = Instant::now();
    let outcome = match &first {
        None => Outcome::skipped("no mandate was accepted (enqueue-valid did not pass)"),
        Some((s, receipt)) => {
            let answer = probe.enqueue(s);
            match &answer {
                Err(e) => Outcome::no_answer(e, "200 with the same receipt"),
                Ok(r) => match check_enqueued(r, s, &health.sp) {
                    Ok(again) if serde_json::to_string(&again).ok() == serde_json::to_string(receipt).ok() => {
                        Outcome::passed(Some(got_of(&answer)), "the same receipt, byte for byte")
                    }
                    Ok(again) => Outcome::failed(
                        Some(got_of(&answer)),
                        format!("a different receipt the second time: {again} after {receipt}"),
                    ),
                    Err(e) => Outcome::failed(Some(got_of(&answer)), e),
                },
            }
        }
    };
    cases.record("idempotent", &["aep2.md#sp-enqueue"], served(), t, outcome);

    // nonce-reuse: another mandate (another ref) with the accepted mandate's nonce.
    let t = Instant::now();
    let want = Want::Code(Reason::NonceReused);
    let outcome = match &first {
        None => Outcome::skipped("no mandate was accepted (enqueue-valid did not pass)"),
        Some((s, _)) => {
            let nonce = match &s.envelope.mandate {
                aep2::Mandate::Eip712(m) => m.nonce.to_u64(),
                aep2::Mandate::Ed25519(m) => Some(m.nonce),
                aep2::Mandate::SolanaMvp(m) => Some(m.nonce),
            };
            match nonce {
                Some(n) => probe.refused(window, want, |t| t.nonce = n),
                None => Outcome::failed(None, "the accepted nonce does not fit 64 bits"),
            }
        }
    };
    cases.record(
        "nonce-reuse",
        &["aep2.md#replay", "aep2.md#sp-enqueue"],
        want.expectation(),
        t,
        outcome,
    );

    // insufficient-funds
    let t = Instant::now();
    let want = Want::Code(Reason::InsufficientFunds);
    let (amount, how) = match available(&probe) {
        Some(a) => (increment(&a), format!("available {a} + 1")),
        None => (
            U256::parse_decimal(UNFUNDED_AMOUNT).ok(),
            "no balance published".to_owned(),
        ),
    };
    let outcome = match amount {
        None => Outcome::skipped(format!("no larger amount exists ({how})")),
        Some(a) => {
            let mut o = probe.refused(window, want, |t| t.amount = a);
            o.message = format!("{} (asked {how})", o.message);
            o
        }
    };
    cases.record(
        "insufficient-funds",
        &["aep2.md#sp-funds"],
        want.expectation(),
        t,
        outcome,
    );

    // malformed-body
    let t = Instant::now();
    let want = Want::Code(Reason::JsonInvalid);
    let outcome = super::judge_refusal(&probe.post("application/json", "{\"mandate\": "), want);
    cases.record(
        "malformed-body",
        &["aep2.md#json-rules", "aep2.md#sp-enqueue"],
        want.expectation(),
        t,
        outcome,
    );

    // oversized-body: a JSON object padded with spaces, announced with Expect: 100-continue.
    let t = Instant::now();
    let want = Want::CodeOrHttp(Reason::HeaderTooLarge);
    let mut body = vec![b' '; OVERSIZED_BODY_BYTES];
    body[0] = b'{';
    body[OVERSIZED_BODY_BYTES - 1] = b'}';
    let mut req = Request::new("POST")
        .header("Content-Type", "application/json")
        .body(body);
    req.expect_continue = true;
    let outcome = super::judge_refusal(&http::send(&probe.base.with_path("/enqueue"), &req, p.timeout), want);
    cases.record(
        "oversized-body",
        &["aep2.md#limits", "aep2.md#sp-enqueue"],
        want.expectation(),
        t,
        outcome,
    );

    // wrong-content-type: a valid, unused envelope as text/plain.
    let t = Instant::now();
    let want = Want::Code(Reason::ContentTypeUnsupported);
    let outcome = match probe.signed(window, |_| {}) {
        Ok(s) => super::judge_refusal(&probe.post("text/plain", s.text()), want),
        Err(e) => Outcome::failed(None, e),
    };
    cases.record(
        "wrong-content-type",
        &["aep2.md#sp-enqueue"],
        want.expectation(),
        t,
        outcome,
    );

    // bad-signature
    let t = Instant::now();
    let want = Want::Stage(Reason::SignatureInvalid, Stage::Signature);
    let outcome = match probe.signed(window, |_| {}) {
        Ok(s) => super::judge_refusal(&probe.enqueue(&corrupt_signature(&s)), want),
        Err(e) => Outcome::failed(None, e),
    };
    cases.record(
        "bad-signature",
        &["aep2.md#verification-order"],
        want.expectation(),
        t,
        outcome,
    );

    // expired
    let t = Instant::now();
    let want = Want::Code(Reason::Expired);
    let outcome = probe.refused(window, want, |t| t.deadline = unix_now().saturating_sub(EXPIRED_BY));
    cases.record("expired", &["aep2.md#mandate-fields"], want.expectation(), t, outcome);

    // submission-id: a new mandate submitted as A, again as A, then as B.
    let t = Instant::now();
    let outcome = match probe.signed(window, |_| {}) {
        Err(e) => Outcome::failed(None, e),
        Ok(s) => submission_rule(&probe, &s, &health.sp),
    };
    cases.record(
        "submission-id",
        &["aep2.md#sp-submission-id"],
        Want::Code(Reason::MandateReplayed).expectation(),
        t,
        outcome,
    );

    // The stateful lane rules (`aep2.md#lane-settlement`), with lanes the payer grants to agents
    // of the probe's own making.
    let lanes = Lanes {
        probe: &probe,
        sp: &health.sp,
        window,
    };
    for (name, refs, want, check) in LANE_CHECKS {
        let t = Instant::now();
        let outcome = check(&lanes);
        cases.record(name, refs, want.expectation(), t, outcome);
    }

    Ok(finish(cases, selection, started, began))
}

/// A lane check: its name, spec references, the refusal it ends with, and the check.
type LaneCheck = (&'static str, &'static [&'static str], Want, fn(&Lanes<'_>) -> Outcome);

/// The lane checks, in run order (`conformance.md#probe-sp`).
const LANE_CHECKS: [LaneCheck; 4] = [
    (
        "lane-cumulative",
        &["aep2.md#lane-settlement", "aep2.md#lane-receipt"],
        Want::Code(Reason::LaneTotalExceeded),
        lane_cumulative,
    ),
    (
        "lane-ancestors",
        &["aep2.md#lane-settlement"],
        Want::Code(Reason::LaneTotalExceeded),
        lane_ancestors,
    ),
    (
        "lane-revocation",
        &["aep2.md#lane-revocation"],
        Want::Code(Reason::LaneRevoked),
        lane_revocation,
    ),
    (
        "lane-window",
        &["aep2.md#lane-settlement", "aep2.md#lane-object"],
        Want::Code(Reason::LanePeriodExceeded),
        lane_window,
    ),
];

/// What the lane checks share.
struct Lanes<'a> {
    probe: &'a Probe<'a>,
    sp: &'a SpId,
    window: u64,
}

/// A step of a lane check that did not go as required: the check's outcome.
type Step<T> = Result<T, Outcome>;

impl Lanes<'_> {
    fn amount(&self) -> U256 {
        self.probe.p.amount
    }

    /// `n` times the amount (the lane checks take an amount below 2^64 / 10).
    fn times(&self, n: u64) -> Step<U256> {
        self.amount()
            .to_u64()
            .and_then(|a| a.checked_mul(n))
            .map(U256::from_u64)
            .ok_or_else(|| Outcome::failed(None, "the lane checks need an --amount below 2^64 / 10"))
    }

    /// A fresh key of the probe's profile for an agent.
    fn agent(&self, label: &str) -> Step<PayerKey> {
        let seed = aep2::hash::sha256(format!("aep2-probe-sp lane {label} {}", fresh_nonce()).as_bytes());
        match self.probe.p.key {
            PayerKey::Secp256k1(_) => aep2::crypto::secp256k1::SecretKey::from_bytes(&seed)
                .map(PayerKey::Secp256k1)
                .ok_or_else(|| Outcome::failed(None, "agent key")),
            PayerKey::Ed25519(_) => Ok(PayerKey::Ed25519(seed)),
        }
    }

    /// A lane granted by `grantor` to `agent` (a root lane of the payer, or a sub-lane of the
    /// last link of `parents`), valid from `valid_from` until well after every probe deadline.
    fn grant(
        &self,
        parents: &[SignedLane],
        grantor: &PayerKey,
        agent: &PayerKey,
        edit: impl FnOnce(&mut Lane),
    ) -> Step<Vec<SignedLane>> {
        let account = |k: &PayerKey| {
            AccountId::parse(&k.signer()).map_err(|e| Outcome::failed(None, format!("lane account: {e}")))
        };
        let now = unix_now();
        let mut lane = Lane {
            profile: self.probe.domain.profile(),
            owner: account(&self.probe.p.key)?,
            agent: account(agent)?,
            token: self.probe.p.asset,
            per_payment: self.amount(),
            total: self.times(2)?,
            max_payments: 0,
            period: 0,
            allowance: U256::ZERO,
            payees: Vec::new(),
            valid_from: now.saturating_sub(60),
            valid_until: now.saturating_add(self.window).saturating_add(4 * DEADLINE_MARGIN),
            purpose: "aep2-probe".into(),
            parent: [0; 32],
            salt: aep2::hash::sha256(format!("aep2-probe-sp salt {}", fresh_nonce()).as_bytes()),
        };
        if let Some(p) = parents.last() {
            lane.parent = p
                .lane
                .digest(&self.probe.domain)
                .map_err(|e| Outcome::failed(None, format!("lane id: {e}")))?
                .id;
            lane.valid_from = p.lane.valid_from;
            lane.valid_until = p.lane.valid_until;
            lane.period = p.lane.period;
            lane.allowance = p.lane.allowance;
        }
        edit(&mut lane);
        let signed = sign_lane(&lane, parents.last(), &self.probe.domain, grantor)
            .map_err(|e| Outcome::failed(None, format!("granting the lane: {e}")))?;
        let mut chain = parents.to_vec();
        chain.push(signed);
        Ok(chain)
    }

    fn id(&self, chain: &[SignedLane]) -> [u8; 32] {
        chain
            .last()
            .and_then(|l| l.lane.digest(&self.probe.domain).ok())
            .map_or([0; 32], |d| d.id)
    }

    /// A mandate of the amount to `payee` under `chain`, signed by its leaf's `agent`.
    fn mandate(&self, chain: &[SignedLane], agent: &PayerKey, payee: AccountId) -> Step<Signed> {
        let probe = self.probe;
        let mut t = probe.terms(self.window);
        t.payee = payee;
        // The owner's mandate, then signed again under the lane by the agent.
        let plain = sign(&probe.p.key, &probe.domain, &t).map_err(|e| Outcome::failed(None, e))?;
        let (envelope, digest) = sign_lane_mandate(
            &plain.envelope.mandate,
            &probe.domain,
            agent,
            EnvelopeForm::Native,
            chain,
        )
        .map_err(|e| Outcome::failed(None, format!("signing under the lane: {e}")))?;
        Ok(Signed {
            envelope,
            digest,
            domain: probe.domain.clone(),
        })
    }

    /// Enqueues `s`, which must be accepted with a receipt stating the leaf of `chain` and
    /// `remaining`. An SP that refuses it with `lanes_unsupported` skips the check.
    fn accepted(&self, s: &Signed, chain: &[SignedLane], remaining: Option<U256>) -> Step<J> {
        let answer = self.probe.enqueue(s);
        if let Ok(r) = &answer
            && super::reason_of(r).as_deref() == Some(Reason::LanesUnsupported.code())
        {
            return Err(Outcome::skipped(
                "the SP does not enforce lanes: it refuses them with lanes_unsupported",
            ));
        }
        let receipt = match &answer {
            Err(e) => return Err(Outcome::no_answer(e, "200 with a receipt")),
            Ok(r) => check_enqueued(r, s, self.sp).map_err(|e| Outcome::failed(Some(got_of(&answer)), e))?,
        };
        let leaf = aep2::codec::hex_encode_0x(&self.id(chain));
        let stated = receipt.get("lane").cloned().unwrap_or(J::Null);
        if stated.get("id").and_then(J::as_str) != Some(leaf.as_str()) {
            return Err(Outcome::failed(
                Some(got_of(&answer)),
                format!("the receipt's lane is {stated}, the mandate's leaf lane is {leaf}"),
            ));
        }
        if let Some(want) = remaining {
            let got = stated.get("remaining").and_then(J::as_str).unwrap_or("");
            if got != want.to_string() {
                return Err(Outcome::failed(
                    Some(got_of(&answer)),
                    format!("the receipt states {got} remaining, {want} remain"),
                ));
            }
        }
        Ok(receipt)
    }

    /// Enqueues `s`, which must be refused with `want`.
    fn refused(&self, s: &Signed, want: Want) -> Step<()> {
        let o = super::judge_refusal(&self.probe.enqueue(s), want);
        if o.status == crate::report::Status::Passed {
            Ok(())
        } else {
            Err(o)
        }
    }

    /// `POST /v1/lanes/revoke` of the last link of `chain`, signed by `revoker`.
    fn revoke(&self, chain: &[SignedLane], revoker: &PayerKey) -> Step<Result<Response, HttpError>> {
        let rev = LaneRevocation::sign(&self.probe.domain, self.id(chain), unix_now(), revoker)
            .map_err(|e| Outcome::failed(None, format!("signing the revocation: {e}")))?;
        let body = aep2::json::Object::new().with("revocation", rev.to_json()).with(
            "lanes",
            aep2::json::Value::Array(chain.iter().map(SignedLane::to_json).collect()),
        );
        let req = Request::new("POST")
            .header("Content-Type", "application/json")
            .body(aep2::json::to_compact(&aep2::json::Value::Object(body)));
        Ok(http::send(
            &self.probe.base.with_path("/v1/lanes/revoke"),
            &req,
            self.probe.p.timeout,
        ))
    }

    /// Another payee than the probe's.
    fn other_payee(&self) -> AccountId {
        let bytes = aep2::hash::sha256(b"aep2-probe-sp other payee");
        match self.probe.p.payee {
            AccountId::Evm(_) => {
                let mut a = [0u8; 20];
                a.copy_from_slice(&bytes[..20]);
                AccountId::Evm(aep2::EvmAddress(a))
            }
            AccountId::Base58(_) => AccountId::Base58(aep2::Base58Key(bytes)),
        }
    }
}

fn outcome_of(r: Step<String>) -> Outcome {
    match r {
        Ok(message) => Outcome::passed(None, message),
        Err(o) => o,
    }
}

/// `lane-cumulative`: a lane of twice the amount pays two payees once each, and then neither:
/// the total counts across payees.
fn lane_cumulative(l: &Lanes<'_>) -> Outcome {
    outcome_of((|| {
        let agent = l.agent("agent")?;
        let chain = l.grant(&[], &l.probe.p.key, &agent, |_| {})?;
        let a = l.mandate(&chain, &agent, l.probe.p.payee)?;
        l.accepted(&a, &chain, Some(l.amount()))?;
        let b = l.mandate(&chain, &agent, l.other_payee())?;
        l.accepted(&b, &chain, Some(U256::ZERO))?;
        let c = l.mandate(&chain, &agent, l.probe.p.payee)?;
        l.refused(&c, Want::Code(Reason::LaneTotalExceeded))?;
        Ok("a total of 2 payments paid one payment at each of two payees, then lane_total_exceeded; the receipts stated what remained".into())
    })())
}

/// `lane-ancestors`: two sub-lanes of 2 payments each under a root of 3: the third payment uses
/// up the root, and the fourth is refused although its own sub-lane has one left.
fn lane_ancestors(l: &Lanes<'_>) -> Outcome {
    outcome_of((|| {
        let agent = l.agent("agent")?;
        let (one, two) = (l.agent("sub-1")?, l.agent("sub-2")?);
        let three = l.times(3)?;
        let root = l.grant(&[], &l.probe.p.key, &agent, |lane| lane.total = three)?;
        let sub1 = l.grant(&root, &agent, &one, |_| {})?;
        let sub2 = l.grant(&root, &agent, &two, |_| {})?;
        l.accepted(&l.mandate(&sub1, &one, l.probe.p.payee)?, &sub1, Some(l.amount()))?;
        l.accepted(&l.mandate(&sub1, &one, l.probe.p.payee)?, &sub1, Some(U256::ZERO))?;
        // Its own lane has 2, the root 1 left: the receipt states the least.
        l.accepted(&l.mandate(&sub2, &two, l.probe.p.payee)?, &sub2, Some(U256::ZERO))?;
        l.refused(
            &l.mandate(&sub2, &two, l.probe.p.payee)?,
            Want::Code(Reason::LaneTotalExceeded),
        )?;
        Ok("a sub-agent's payments counted against the root: the root's total of 3 ended a sibling's budget of 2 after 1".into())
    })())
}

/// `lane-revocation`: a sub-lane's own agent cannot revoke it; the owner revokes the root, the
/// sub-lane is refused, a second revocation gives the first `revokedAt`, and a retry of an
/// accepted payment still gets its receipt.
fn lane_revocation(l: &Lanes<'_>) -> Outcome {
    outcome_of((|| {
        let agent = l.agent("agent")?;
        let sub_agent = l.agent("sub")?;
        let three = l.times(3)?;
        let root = l.grant(&[], &l.probe.p.key, &agent, |lane| lane.total = three)?;
        let sub = l.grant(&root, &agent, &sub_agent, |_| {})?;
        let first = l.mandate(&sub, &sub_agent, l.probe.p.payee)?;
        let receipt = l.accepted(&first, &sub, None)?;
        let refusal = l.revoke(&sub, &sub_agent)?;
        let o = super::judge_refusal(&refusal, Want::Code(Reason::LaneRevokerInvalid));
        if o.status != crate::report::Status::Passed {
            return Err(Outcome::failed(
                o.got,
                format!("the sub-lane's own agent revoking it: {}", o.message),
            ));
        }
        let revoked_at = |answer: &Result<Response, HttpError>| -> Step<J> {
            match answer {
                Ok(r) if r.status == 200 => serde_json::from_slice::<J>(&r.body)
                    .ok()
                    .filter(|v| v.get("revoked") == Some(&J::Bool(true)))
                    .and_then(|v| v.get("revokedAt").cloned())
                    .ok_or_else(|| Outcome::failed(Some(got_of(answer)), "want {revoked: true, revokedAt}")),
                Ok(r) => Err(Outcome::failed(
                    Some(got_of(answer)),
                    format!("the owner's revocation: want 200, got {}", r.status),
                )),
                Err(e) => Err(Outcome::no_answer(e, "200 revoked")),
            }
        };
        let at = revoked_at(&l.revoke(&root, &l.probe.p.key)?)?;
        let again = revoked_at(&l.revoke(&root, &l.probe.p.key)?)?;
        if again != at {
            return Err(Outcome::failed(
                None,
                format!("revoked again: revokedAt {again}, first {at}"),
            ));
        }
        l.refused(
            &l.mandate(&sub, &sub_agent, l.probe.p.payee)?,
            Want::Code(Reason::LaneRevoked),
        )?;
        let retry = l.probe.enqueue(&first);
        match &retry {
            Ok(r) => match check_enqueued(r, &first, l.sp) {
                Ok(same) if same == receipt => {}
                Ok(_) => return Err(Outcome::failed(Some(got_of(&retry)), "a retry got another receipt")),
                Err(e) => {
                    return Err(Outcome::failed(
                        Some(got_of(&retry)),
                        format!("a retry of the accepted payment: {e}"),
                    ));
                }
            },
            Err(e) => return Err(Outcome::no_answer(e, "200 with the stored receipt")),
        }
        Ok("refused from the lane's own agent (lane_revoker_invalid); the owner's revocation of the root revoked the sub-lane, idempotently; the accepted payment's retry kept its receipt".into())
    })())
}

/// Seconds of the allowance window of `lane-window`.
const PROBE_PERIOD: u64 = 4;

/// `lane-window`: an allowance of one payment per 4-second window: the second payment in a window
/// is refused, and the next window (from `validFrom + period`, waited for with a second of
/// margin for the clocks) pays again.
fn lane_window(l: &Lanes<'_>) -> Outcome {
    outcome_of((|| {
        let agent = l.agent("agent")?;
        let ten = l.times(10)?;
        let from = unix_now().saturating_sub(1);
        let chain = l.grant(&[], &l.probe.p.key, &agent, |lane| {
            lane.total = ten;
            lane.valid_from = from;
            lane.period = PROBE_PERIOD;
            lane.allowance = l.amount();
        })?;
        l.accepted(&l.mandate(&chain, &agent, l.probe.p.payee)?, &chain, None)?;
        l.refused(
            &l.mandate(&chain, &agent, l.probe.p.payee)?,
            Want::Code(Reason::LanePeriodExceeded),
        )?;
        let next = from + PROBE_PERIOD + 1;
        let wait = next.saturating_sub(unix_now());
        std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(200));
        l.accepted(&l.mandate(&chain, &agent, l.probe.p.payee)?, &chain, None)?;
        Ok(format!(
            "one payment per {PROBE_PERIOD} s window: the second refused (lane_period_exceeded), the next window paid again"
        ))
    })())
}

/// The submission rule (`aep2.md#sp-submission-id`): the first submission stores the mandate
/// (`fresh`, held for its id); the same id gets the same receipt (not `fresh`); another id is
/// `mandate_replayed` with `409`.
fn submission_rule(probe: &Probe<'_>, s: &Signed, sp: &SpId) -> Outcome {
    let (a, b) = (
        format!("0x{:032x}", u128::from(fresh_nonce())),
        format!("0x{:032x}", u128::from(fresh_nonce()) + 1),
    );
    let field = |r: &Response, name: &str| -> Option<J> {
        serde_json::from_slice::<J>(&r.body)
            .ok()
            .and_then(|v| v.get(name).cloned())
    };
    let first = probe.enqueue_as(s, &a);
    let receipt = match &first {
        Err(e) => return Outcome::no_answer(e, "200 with a receipt"),
        Ok(r) => match check_enqueued(r, s, sp) {
            Err(e) => return Outcome::failed(Some(got_of(&first)), e),
            Ok(receipt) => {
                if field(r, "fresh") != Some(J::Bool(true)) || field(r, "submissionId") != Some(J::String(a.clone())) {
                    let e = format!(
                        "first submission: want fresh true and submissionId {a}; body {}",
                        r.excerpt()
                    );
                    return Outcome::failed(Some(got_of(&first)), e);
                }
                receipt
            }
        },
    };
    let again = probe.enqueue_as(s, &a);
    match &again {
        Err(e) => return Outcome::no_answer(e, "200 with the same receipt"),
        Ok(r) => match check_enqueued(r, s, sp) {
            Ok(same) if same == receipt && field(r, "fresh") == Some(J::Bool(false)) => {}
            Ok(_) => {
                let e = format!(
                    "the same submission again: want the same receipt and fresh false; body {}",
                    r.excerpt()
                );
                return Outcome::failed(Some(got_of(&again)), e);
            }
            Err(e) => return Outcome::failed(Some(got_of(&again)), e),
        },
    }
    let other = probe.enqueue_as(s, &b);
    match &other {
        Ok(r) if r.status == 409 && super::reason_of(r).as_deref() == Some("mandate_replayed") => Outcome::passed(
            Some(got_of(&other)),
            "stored once as the first submission, its receipt again for the same id, 409 mandate_replayed for another",
        ),
        Ok(r) => Outcome::failed(
            Some(got_of(&other)),
            format!("another submission id: want 409 mandate_replayed; body {}", r.excerpt()),
        ),
        Err(e) => Outcome::no_answer(e, "409 mandate_replayed"),
    }
}

/// The checks after `health`, in run order.
const ENQUEUE_CHECKS: [&str; 14] = [
    "enqueue-valid",
    "idempotent",
    "nonce-reuse",
    "insufficient-funds",
    "malformed-body",
    "oversized-body",
    "wrong-content-type",
    "bad-signature",
    "expired",
    "submission-id",
    "lane-cumulative",
    "lane-ancestors",
    "lane-revocation",
    "lane-window",
];

/// The payer's available balance of the asset on the probed domain, from `GET /v1/accounts`
/// (`None` when the SP does not publish it).
fn available(probe: &Probe<'_>) -> Option<U256> {
    let path = format!("/v1/accounts?payer={}&token={}", probe.p.key.signer(), probe.p.asset);
    let r = probe.get(&path).ok().filter(|r| r.status == 200)?;
    let v: J = serde_json::from_slice(&r.body).ok()?;
    let domain = crate_domain_key(&probe.domain);
    v.get("accounts")?
        .as_array()?
        .iter()
        .filter(|a| {
            domain
                .as_deref()
                .is_none_or(|d| a.get("domain").and_then(J::as_str) == Some(d))
        })
        .find_map(|a| {
            a.get("available")
                .and_then(J::as_str)
                .and_then(|s| U256::parse_decimal(s).ok())
        })
}

/// The SP ledger's name of a deployment (`aep2.md#sp-funds`), to pick the probed domain's row.
fn crate_domain_key(d: &Domain) -> Option<String> {
    match d {
        Domain::Eip712(e) => Some(format!("eip712:{}:{}", e.chain_id, e.verifying_contract.to_checksum())),
        Domain::Ed25519(e) => Some(format!("ed25519:{}:{}", e.network, e.wallet)),
        Domain::SolanaMvp => None,
    }
}
