//! Probes of live services (spec `conformance.md#probes`): a battery of named checks against a
//! running payee (`probe payee`) or settlement processor (`probe sp`), signing with a payer key
//! the user supplies, written as cases of the conformance report.
//!
//! A probe learns what it can from the service (the payee's `PAYMENT-REQUIRED`, the SP's
//! `/health` and `/v1/accounts`) and derives every faulty payment from a valid one, so that a
//! refusal can only come from the one field that is wrong. Every exchange is one HTTP/1.1
//! request on its own connection with a deadline and a bounded answer ([`http`]), so a
//! misbehaving service costs a check, never the run.
//!
//! ```no_run
//! use aep2_conformance::probe::{Deployment, PayeeProbe, parse_payer_key, probe_payee};
//! use aep2::{EvmAddress, Profile};
//! let key = parse_payer_key(Profile::Eip712, "0x4c0883a69102937d6231471b5dbb6204fe512961708279f8b1a3a7e0c3f8b5a3")?;
//! let contract = EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912").map_err(|e| e.to_string())?;
//! let probe = PayeeProbe::new("http://127.0.0.1:8402/paid/intent", key, Deployment::Eip712 { verifying_contract: contract });
//! let report = probe_payee(&probe).map_err(|e| e.message)?;
//! assert_eq!(report.footer.exit_code, 0);
//! # Ok::<(), String>(())
//! ```

pub mod http;
mod payee;
mod sp;

pub use payee::{Binding, DEFAULT_SP_STALL, PayeeProbe, probe_payee};
pub use sp::{SpProbe, probe_sp};

use crate::report::{CaseRecord, Counts, Expectation, Footer, Header, Report, Status, VectorSet};
use crate::{Error, exit};
use aep2::crypto::secp256k1::SecretKey;
use aep2::{
    AccountId, Base58Key, Domain, Ed25519Domain, Ed25519Mandate, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate,
    Mandate, MandateDigest, PayerKey, Profile, Reason, SignedMandate, Stage, U256, sign_mandate,
};
use http::{HttpError, Response};
use serde_json::{Value as J, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Exit code of a probe whose service cannot be reached at all (its first request gets no
/// answer): the same number as the runner's adapter fault, since in both cases the thing under
/// test never spoke.
pub const EXIT_UNREACHABLE: i32 = exit::ADAPTER;

/// Default time limit of one exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the payer's debit wallet lives: what a probe needs besides the network to build the
/// signing domain (an x402 `network` names the chain, not the wallet contract).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deployment {
    /// `eip712`: the chain id comes from the network (`eip155:<id>`).
    Eip712 {
        /// The debit-wallet contract.
        verifying_contract: EvmAddress,
    },
    /// `ed25519` (native): the network is the domain's CAIP-2 network.
    Ed25519 {
        /// The wallet program.
        wallet: Base58Key,
    },
    /// The deployment the payee announces in its 402 (`extra.domain`, `aep2.md#x402-payment-required`),
    /// signed for with this profile. Payee probes only: a settlement processor announces none.
    Announced(Profile),
}

impl Deployment {
    /// The profile signed for.
    pub fn profile(&self) -> Profile {
        match self {
            Deployment::Eip712 { .. } => Profile::Eip712,
            Deployment::Ed25519 { .. } => Profile::Ed25519,
            Deployment::Announced(profile) => *profile,
        }
    }

    /// The signing domain on `network` (`eip155:<chainId>` or a CAIP-2 Solana network).
    pub fn domain_for(&self, network: &str) -> Result<Domain, String> {
        match self {
            Deployment::Eip712 { verifying_contract } => {
                let id = network
                    .strip_prefix("eip155:")
                    .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| format!("network {network:?} is not eip155:<chain id>"))?;
                Ok(Domain::Eip712(Eip712Domain {
                    chain_id: id,
                    verifying_contract: *verifying_contract,
                }))
            }
            Deployment::Ed25519 { wallet } => {
                aep2::profile::check_caip2(network).map_err(|e| e.to_string())?;
                Ok(Domain::Ed25519(Ed25519Domain {
                    network: network.to_owned(),
                    wallet: *wallet,
                }))
            }
            Deployment::Announced(_) => Err("the deployment is announced by the payee, not configured".into()),
        }
    }
}

/// Parses a payer key given as 64 hex digits (`0x` optional): a secp256k1 secret key for
/// `eip712`, an Ed25519 seed for `ed25519`.
pub fn parse_payer_key(profile: Profile, hex: &str) -> Result<PayerKey, String> {
    let digits = hex.trim().strip_prefix("0x").unwrap_or(hex.trim());
    let bad = || "the payer key must be 64 hex digits".to_owned();
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(digits.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    match profile {
        Profile::Eip712 => SecretKey::from_bytes(&bytes)
            .map(PayerKey::Secp256k1)
            .ok_or_else(|| "not a valid secp256k1 secret key".to_owned()),
        Profile::Ed25519 => Ok(PayerKey::Ed25519(bytes)),
        Profile::SolanaMvp => Err("probes sign eip712 or ed25519 mandates".into()),
    }
}

/// Unix seconds now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

static NONCE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A nonce no earlier probe of this payer used: the wall clock in nanoseconds plus a counter,
/// so repeated probes against the same services never collide.
pub(crate) fn fresh_nonce() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX >> 1))
        .unwrap_or(0);
    nanos.wrapping_add(NONCE_COUNTER.fetch_add(1, Ordering::Relaxed)) >> 1
}

/// The fields of one mandate a probe signs.
#[derive(Clone, Debug)]
pub(crate) struct Terms {
    pub payee: AccountId,
    pub asset: AccountId,
    pub amount: U256,
    pub nonce: u64,
    pub deadline: u64,
    pub reference: [u8; 32],
}

/// A signed mandate and what the checks need to judge its answers.
#[derive(Clone, Debug)]
pub(crate) struct Signed {
    pub envelope: SignedMandate,
    pub digest: MandateDigest,
    pub domain: Domain,
}

impl Signed {
    pub fn json(&self) -> aep2::json::Value {
        self.envelope.to_json()
    }

    pub fn text(&self) -> String {
        aep2::json::to_compact(&self.envelope.to_json())
    }

    pub fn mandate_id(&self) -> String {
        aep2::codec::hex_encode_0x(&self.digest.id)
    }
}

/// Builds and signs a native envelope (the domain travels with it, so a mandate for another
/// chain is told apart by the domain rather than by a failing signature).
pub(crate) fn sign(key: &PayerKey, domain: &Domain, t: &Terms) -> Result<Signed, String> {
    let mandate = mandate_of(key, domain, t)?;
    let (envelope, digest) =
        sign_mandate(&mandate, domain, key, EnvelopeForm::Native).map_err(|e| format!("signing: {e}"))?;
    Ok(Signed {
        envelope,
        digest,
        domain: domain.clone(),
    })
}

/// The mandate of `t` debiting the account of `key` on `domain`.
pub(crate) fn mandate_of(key: &PayerKey, domain: &Domain, t: &Terms) -> Result<Mandate, String> {
    Ok(match (key, domain) {
        (PayerKey::Secp256k1(k), Domain::Eip712(_)) => {
            let (AccountId::Evm(payee), AccountId::Evm(token)) = (t.payee, t.asset) else {
                return Err("eip712 payee and asset must be EVM addresses".into());
            };
            Mandate::Eip712(EvmMandate {
                owner: k.address(),
                token,
                payee,
                amount: t.amount,
                nonce: U256::from_u64(t.nonce),
                deadline: t.deadline,
                reference: t.reference,
            })
        }
        (PayerKey::Ed25519(seed), Domain::Ed25519(_)) => {
            let (AccountId::Base58(payee), AccountId::Base58(token)) = (t.payee, t.asset) else {
                return Err("ed25519 payee and asset must be base58 keys".into());
            };
            Mandate::Ed25519(Ed25519Mandate {
                payer: Base58Key(aep2::crypto::ed25519::public_key_from_seed(seed)),
                token,
                payee,
                amount: t
                    .amount
                    .to_u64()
                    .ok_or_else(|| "ed25519 amounts are at most 2^64-1".to_owned())?,
                nonce: t.nonce,
                deadline: t.deadline,
                reference: t.reference,
            })
        }
        _ => return Err("the payer key does not fit the domain's profile".into()),
    })
}

/// The same domain on another chain (`eip712`: the next chain id) or network (`ed25519`).
pub(crate) fn other_chain(domain: &Domain) -> Domain {
    match domain {
        Domain::Eip712(d) => Domain::Eip712(Eip712Domain {
            chain_id: d.chain_id.wrapping_add(1).max(1),
            verifying_contract: d.verifying_contract,
        }),
        Domain::Ed25519(d) => {
            let ns = d.network.split(':').next().unwrap_or("solana");
            let other = if d.network.ends_with(":aep2-probe-other") {
                format!("{ns}:aep2-probe-other2")
            } else {
                format!("{ns}:aep2-probe-other")
            };
            Domain::Ed25519(Ed25519Domain {
                network: other,
                wallet: d.wallet,
            })
        }
        Domain::SolanaMvp => Domain::SolanaMvp,
    }
}

/// An identifier of the same kind that differs in its last byte.
pub(crate) fn other_account(a: &AccountId) -> AccountId {
    match a {
        AccountId::Evm(x) => {
            let mut b = x.0;
            b[19] ^= 0x01;
            AccountId::Evm(EvmAddress(b))
        }
        AccountId::Base58(k) => {
            let mut b = k.0;
            b[31] ^= 0x01;
            AccountId::Base58(Base58Key(b))
        }
    }
}

/// The envelope with one signature character changed to another of the same alphabet (hex and
/// base58 both contain `1` and `2`), so the encoding stays valid and only the value is wrong.
pub(crate) fn corrupt_signature(s: &Signed) -> Signed {
    let mut out = s.clone();
    let sig = &mut out.envelope.signature;
    let at = sig.len() / 2;
    if let Some(c) = sig.get(at..=at) {
        let with = if c == "1" { "2" } else { "1" };
        sig.replace_range(at..=at, with);
    }
    out
}

/// `n - 1` for a positive decimal integer (`None` for zero or bad text).
pub(crate) fn decrement(n: &U256) -> Option<U256> {
    let mut digits: Vec<u8> = n.to_string().into_bytes();
    if digits.iter().all(|&d| d == b'0') {
        return None;
    }
    for d in digits.iter_mut().rev() {
        if *d == b'0' {
            *d = b'9';
        } else {
            *d -= 1;
            break;
        }
    }
    let text = String::from_utf8(digits).ok()?;
    let trimmed = text.trim_start_matches('0');
    U256::parse_decimal(if trimmed.is_empty() { "0" } else { trimmed }).ok()
}

/// `n + 1` for a decimal integer below 2^256 - 1.
pub(crate) fn increment(n: &U256) -> Option<U256> {
    let mut digits: Vec<u8> = n.to_string().into_bytes();
    let mut carry = true;
    for d in digits.iter_mut().rev() {
        if !carry {
            break;
        }
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            carry = false;
        }
    }
    if carry {
        digits.insert(0, b'1');
    }
    U256::parse_decimal(&String::from_utf8(digits).ok()?).ok()
}

/// The reason code of a refusal: the body's `reason` (payee bodies), else its `error` when that
/// is a registry code (SP bodies), else the `error` of a `PAYMENT-REQUIRED` header.
pub(crate) fn reason_of(resp: &Response) -> Option<String> {
    let body: Option<J> = serde_json::from_slice(&resp.body).ok();
    let member = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name))
            .and_then(J::as_str)
            .map(str::to_owned)
    };
    if let Some(r) = member("reason").filter(|r| Reason::from_code(r).is_some()) {
        return Some(r);
    }
    if let Some(r) = member("error").filter(|r| Reason::from_code(r).is_some()) {
        return Some(r);
    }
    resp.header(aep2_x402::PAYMENT_REQUIRED)
        .and_then(|h| aep2_x402::PaymentRequired::decode(h).ok())
        .and_then(|p| p.error)
}

/// What came back, as a case's `got`.
pub(crate) fn got_of(answer: &Result<Response, HttpError>) -> J {
    match answer {
        Ok(r) => {
            let mut g = json!({ "status": r.status, "body": r.excerpt() });
            if let Some(code) = reason_of(r) {
                g["code"] = J::String(code);
            }
            g
        }
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// Which refusals a check accepts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Want {
    /// Exactly this code.
    Code(Reason),
    /// Any code of this stage (the first is the one shown as expected).
    Stage(Reason, Stage),
    /// This code, or a 413/431 without a reason (a refusal by the HTTP layer in front).
    CodeOrHttp(Reason),
    /// Any of these codes (the first is the one shown as expected).
    AnyOf(&'static [Reason]),
}

impl Want {
    fn shown(self) -> Reason {
        match self {
            Want::Code(r) | Want::Stage(r, _) | Want::CodeOrHttp(r) => r,
            Want::AnyOf(rs) => rs.first().copied().unwrap_or(Reason::PaymentMissing),
        }
    }

    fn describe(self) -> String {
        match self {
            Want::Code(r) => format!("a 4xx with reason {}", r.code()),
            Want::Stage(r, s) => format!("a 4xx with a {} reason ({}, …)", s.as_str(), r.code()),
            Want::CodeOrHttp(r) => format!("a 4xx with reason {} (or a bare 413/431)", r.code()),
            Want::AnyOf(rs) => {
                let names: Vec<&str> = rs.iter().map(|r| r.code()).collect();
                format!("a 4xx with reason {}", names.join(" or "))
            }
        }
    }

    pub fn expectation(self) -> Expectation {
        let r = self.shown();
        Expectation {
            result: "invalid".into(),
            code: Some(r.code().into()),
            stage: Some(r.stage().as_str().into()),
            compat: None,
        }
    }
}

/// The expectation of a check that must succeed.
pub(crate) fn served() -> Expectation {
    Expectation {
        result: "valid".into(),
        code: None,
        stage: None,
        compat: None,
    }
}

/// The outcome of one check.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub status: Status,
    pub got: Option<J>,
    pub message: String,
}

impl Outcome {
    pub fn passed(got: Option<J>, message: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Passed,
            got,
            message: message.into(),
        }
    }

    pub fn failed(got: Option<J>, message: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Failed,
            got,
            message: message.into(),
        }
    }

    pub fn skipped(message: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Skipped,
            got: None,
            message: message.into(),
        }
    }

    /// A transport failure: `timed_out` for a deadline, `failed` otherwise.
    pub fn no_answer(e: &HttpError, what: &str) -> Outcome {
        let status = match e {
            HttpError::Timeout(_) => Status::TimedOut,
            _ => Status::Failed,
        };
        Outcome {
            status,
            got: Some(json!({ "error": e.to_string() })),
            message: format!("expected {what}; got no answer: {e}"),
        }
    }
}

/// Judges the answer to a payment that must be refused: a 4xx (never a 5xx, never served) with
/// a reason code `want` accepts.
pub(crate) fn judge_refusal(answer: &Result<Response, HttpError>, want: Want) -> Outcome {
    let expected = want.describe();
    let resp = match answer {
        Ok(r) => r,
        Err(e) => return Outcome::no_answer(e, &expected),
    };
    let got = Some(got_of(answer));
    let code = reason_of(resp);
    let shown = code.as_deref().unwrap_or("none");
    let excerpt = resp.excerpt();
    if !(400..500).contains(&resp.status) {
        let what = match resp.status {
            200..=299 => "the request was served".to_owned(),
            500..=599 => "a server error".to_owned(),
            s => format!("status {s}"),
        };
        return Outcome::failed(
            got,
            format!(
                "expected {expected}; got {} ({what}), reason {shown}, body: {excerpt}",
                resp.status
            ),
        );
    }
    let ok = match (want, code.as_deref().and_then(Reason::from_code)) {
        (Want::Code(r) | Want::CodeOrHttp(r), Some(c)) => c == r,
        (Want::Stage(_, s), Some(c)) => c.stage() == s,
        (Want::AnyOf(rs), Some(c)) => rs.contains(&c),
        (Want::CodeOrHttp(_), None) => matches!(resp.status, 413 | 431),
        (_, None) => false,
    };
    if ok {
        Outcome::passed(got, format!("refused with {} and reason {shown}", resp.status))
    } else {
        Outcome::failed(
            got,
            format!(
                "expected {expected}; got {} with reason {shown}, body: {excerpt}",
                resp.status
            ),
        )
    }
}

/// Collects a probe's cases.
pub(crate) struct Cases {
    kind: &'static str,
    prefix: &'static str,
    pub cases: Vec<CaseRecord>,
}

impl Cases {
    pub fn new(kind: &'static str, prefix: &'static str) -> Cases {
        Cases {
            kind,
            prefix,
            cases: Vec::new(),
        }
    }

    /// Records check `name` (`<prefix>/<name>`), timed from `began`.
    pub fn record(&mut self, name: &str, spec_refs: &[&str], expected: Expectation, began: Instant, o: Outcome) {
        self.cases.push(CaseRecord {
            id: format!("{}/{name}", self.prefix),
            kind: self.kind.into(),
            tags: vec!["probe".into(), self.kind.into()],
            spec_refs: spec_refs.iter().map(|s| (*s).to_owned()).collect(),
            expected,
            got: o.got,
            status: o.status,
            duration_us: u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX),
            message: (!o.message.is_empty()).then_some(o.message),
            stderr: None,
            expected_failure: None,
            warning: None,
        });
    }
}

/// Wraps the cases into a report: no adapter, an empty vector set, the probe's target in
/// `selection`; exit code 1 when a check did not pass (skips excepted), else 0.
pub(crate) fn finish(cases: Cases, selection: J, started: u64, began: Instant) -> Report {
    let counts = Counts::of(&cases.cases);
    let failing = cases.cases.iter().any(|c| c.status.is_failure());
    let header = Header {
        suite: env!("CARGO_PKG_NAME").into(),
        suite_version: env!("CARGO_PKG_VERSION").into(),
        protocol_version: crate::protocol::PROTOCOL_VERSION,
        vectors: VectorSet {
            dir: String::new(),
            sha256: aep2::codec::hex_encode_0x(&aep2::hash::sha256(b""))[2..].to_owned(),
            spec_version: "1".into(),
            files: Vec::new(),
            cases: 0,
        },
        adapter: None,
        mode: "strict".into(),
        selection,
        expected_failures: None,
        started,
    };
    let footer = Footer {
        total: cases.cases.len(),
        counts,
        stopped_early: None,
        restarts: 0,
        duration_us: u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX),
        warnings: Vec::new(),
        exit_code: if failing { exit::FAILURES } else { exit::OK },
    };
    Report {
        header,
        cases: cases.cases,
        footer,
    }
}

/// The error of a probe whose service never answered.
pub(crate) fn unreachable(url: &str, e: &HttpError) -> Error {
    Error::new(EXIT_UNREACHABLE, format!("{url}: the service cannot be reached ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        let n = |s: &str| U256::parse_decimal(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decrement(&n("1000")), Some(n("999")));
        assert_eq!(decrement(&n("1")), Some(n("0")));
        assert_eq!(decrement(&n("0")), None);
        assert_eq!(increment(&n("999")), Some(n("1000")));
        assert_eq!(increment(&n("0")), Some(n("1")));
    }

    #[test]
    fn keys() {
        let hex = "0x4c0883a69102937d6231471b5dbb6204fe512961708279f8b1a3a7e0c3f8b5a3";
        assert!(matches!(
            parse_payer_key(Profile::Eip712, hex),
            Ok(PayerKey::Secp256k1(_))
        ));
        assert!(matches!(
            parse_payer_key(Profile::Ed25519, &hex[2..]),
            Ok(PayerKey::Ed25519(_))
        ));
        assert!(parse_payer_key(Profile::Eip712, "0x12").is_err());
        assert!(parse_payer_key(Profile::Eip712, &"0".repeat(64)).is_err());
    }

    #[test]
    fn domains() {
        let d = Deployment::Eip712 {
            verifying_contract: EvmAddress([1; 20]),
        };
        let Ok(Domain::Eip712(e)) = d.domain_for("eip155:84532") else {
            panic!("eip155 network")
        };
        assert_eq!(e.chain_id, 84532);
        assert!(d.domain_for("solana:abc").is_err());
        let Domain::Eip712(o) = other_chain(&Domain::Eip712(e)) else {
            panic!("same profile")
        };
        assert_eq!(o.chain_id, 84533);
    }
}
