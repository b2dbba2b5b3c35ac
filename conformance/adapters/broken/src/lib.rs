//! Deliberately broken AEP2 verifiers behind the conformance adapter protocol (spec
//! `conformance.md`).
//!
//! Each [`Fault`] is a real lenient implementation of exactly one verification step, of the
//! kind that ships in practice: a signature normalised before recovery, a domain comparison
//! that forgets the chain, a policy that reads the payee from the mandate, a key check that
//! skips the order tests, a forgiving base64 decoder, a missing expiry check. Everything else
//! is built from the project's own parts (`aep2`'s decoders, schema checks, digests and
//! signature primitives), so the only divergence from the reference is the fault. The tests
//! in `tests/broken.rs` run the suite against each fault and assert that the failing cases are
//! exactly the ones the broken rule governs, which proves the vectors catch that leniency.
//!
//! The verifier answers `verify_mandate`, `verify_policy` and `ed25519_raw`; the runner skips
//! every other kind. A fault that no stateless vector can catch, such as skipping the replay
//! store, is deliberately absent: the live probes (`probe payee`) are where that is tested.

use aep2::codec::hex_decode_0x;
use aep2::crypto::secp256k1;
use aep2::envelope::{SignedMandate, decode_json_bytes};
use aep2::json::Value;
use aep2::{
    AccountId, Domain, Error, Mandate, MandateDigest, PayeePolicy, PriceMode, Reason, SigningInput, U256,
    mandate_digest,
};
use aep2_conformance::protocol::{
    Capabilities, CaseInput, CaseResult, Errored, Implementation, Line, PROTOCOL_VERSION, Request, RunResponse,
    StartResponse, read_line,
};
use aep2_vectors::check::{context_domain, context_policy};
use aep2_vectors::model::Context;
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use serde_json::Value as J;
use sha2::{Digest as _, Sha512};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

/// The case kinds a broken verifier answers.
pub const KINDS: &[&str] = &["verify_mandate", "verify_policy", "ed25519_raw"];

/// One broken rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// secp256k1: a signature with `n/2 < s < n` is replaced by its low-s twin (`n − s`, `v`
    /// flipped) before recovery, as "normalising" libraries do; breaks rule 3 of
    /// `aep2.md#eip712-signature-rules`.
    AcceptHighS,
    /// A native envelope's domain is compared with the verifier's without its chain
    /// (`chainId`, or the CAIP-2 `network`): only the contract or wallet must match; breaks
    /// `aep2.md#envelope-native`'s `domain_mismatch` check.
    IgnoreChainId,
    /// The payee policy takes the payee from the mandate instead of the merchant's own
    /// configuration, so the payee comparison can never fail (`aep2.md#policy-payee`).
    IgnorePayee,
    /// Ed25519 keys are decoded and checked for canonical encoding only: small-order and
    /// mixed-order keys pass (rule 2 of `aep2.md#ed25519-verification-rules`).
    AcceptSmallOrder,
    /// The header's base64 is decoded forgivingly: ASCII whitespace is skipped, padding is
    /// optional and non-zero trailing bits are ignored (`aep2.md#decoding-rules` step 2).
    LenientBase64,
    /// The deadline is never compared with `now`, neither by the core verifier nor by the
    /// policy (`aep2.md#mandate-fields` rule 4).
    IgnoreDeadline,
}

impl Fault {
    /// Every fault, in documentation order.
    pub const ALL: [Fault; 6] = [
        Fault::AcceptHighS,
        Fault::IgnoreChainId,
        Fault::IgnorePayee,
        Fault::AcceptSmallOrder,
        Fault::LenientBase64,
        Fault::IgnoreDeadline,
    ];

    /// The `--fault` name.
    pub fn name(self) -> &'static str {
        match self {
            Fault::AcceptHighS => "accept-high-s",
            Fault::IgnoreChainId => "ignore-chain-id",
            Fault::IgnorePayee => "ignore-payee",
            Fault::AcceptSmallOrder => "accept-small-order",
            Fault::LenientBase64 => "lenient-base64",
            Fault::IgnoreDeadline => "ignore-deadline",
        }
    }

    /// The fault of a `--fault` name.
    pub fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// The secp256k1 group order `n`, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc,
    0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// `⌊n/2⌋`, big-endian.
const HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e,
    0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// `a − b` for big-endian 256-bit values with `a ≥ b`.
fn sub_be(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = u8::try_from(d).unwrap_or(0);
    }
    out
}

/// The low-s twin of a 65-byte `r ‖ s ‖ v` signature whose `s` lies in `(n/2, n)`; any other
/// signature unchanged (there is no twin to map it to).
pub fn normalise_s(sig: [u8; 65]) -> [u8; 65] {
    let s: [u8; 32] = sig[32..64].try_into().unwrap_or([0; 32]);
    if s <= HALF_N || s >= N {
        return sig;
    }
    let mut out = sig;
    out[32..64].copy_from_slice(&sub_be(&N, &s));
    out[64] = match sig[64] {
        27 => 28,
        28 => 27,
        v => v,
    };
    out
}

/// Decodes base64 the forgiving way: whitespace skipped, padding optional, trailing bits
/// ignored. Anything the forgiving decoder still cannot read is `base64_invalid`.
pub fn lenient_base64(text: &str) -> Result<Vec<u8>, Error> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    engine
        .decode(compact)
        .map_err(|e| Error::new(Reason::Base64Invalid, e.to_string()))
}

/// Which point rule an encoded Ed25519 point fails.
#[derive(Clone, Copy)]
enum Defect {
    Undecodable,
    NonCanonical,
    SmallOrder,
    MixedOrder,
}

impl Defect {
    fn key(self) -> Reason {
        match self {
            Defect::Undecodable => Reason::KeyInvalid,
            Defect::NonCanonical => Reason::KeyNonCanonical,
            Defect::SmallOrder => Reason::KeySmallOrder,
            Defect::MixedOrder => Reason::KeyMixedOrder,
        }
    }

    fn commitment(self) -> Reason {
        match self {
            Defect::Undecodable => Reason::SignaturePointInvalid,
            Defect::NonCanonical => Reason::SignaturePointNonCanonical,
            Defect::SmallOrder => Reason::SignaturePointSmallOrder,
            Defect::MixedOrder => Reason::SignaturePointMixedOrder,
        }
    }
}

/// Applies the point rules to an encoded Ed25519 point, the order tests only if `check_order`.
fn decode_point(bytes: &[u8; 32], check_order: bool) -> Result<EdwardsPoint, Defect> {
    let point = CompressedEdwardsY(*bytes).decompress().ok_or(Defect::Undecodable)?;
    if point.compress().as_bytes() != bytes {
        return Err(Defect::NonCanonical);
    }
    if check_order && point.is_small_order() {
        return Err(Defect::SmallOrder);
    }
    if check_order && !point.is_torsion_free() {
        return Err(Defect::MixedOrder);
    }
    Ok(point)
}

/// Ed25519 verification in the order of `aep2.md#ed25519-verification-rules`, with the key's
/// order tests (rule 2) performed only when `check_key_order`.
pub fn ed25519_verify(key: &[u8; 32], msg: &[u8], sig: &[u8; 64], check_key_order: bool) -> Result<(), Reason> {
    let a = decode_point(key, check_key_order).map_err(Defect::key)?;
    let r_bytes: [u8; 32] = sig[..32].try_into().unwrap_or([0; 32]);
    let s_bytes: [u8; 32] = sig[32..].try_into().unwrap_or([0; 32]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or(Reason::SignatureScalarOutOfRange)?;
    decode_point(&r_bytes, true).map_err(Defect::commitment)?;
    let wide: [u8; 64] = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(key)
        .chain_update(msg)
        .finalize()
        .into();
    let k = Scalar::from_bytes_mod_order_wide(&wide);
    let r_prime = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-a, &s);
    if r_prime.compress().to_bytes() == r_bytes {
        Ok(())
    } else {
        Err(Reason::SignatureInvalid)
    }
}

/// A mandate verifier with one broken rule (or none).
#[derive(Clone, Copy, Debug)]
pub struct BrokenVerifier {
    fault: Option<Fault>,
}

impl BrokenVerifier {
    /// A verifier that breaks `fault`; `None` gives a correct verifier, which the tests use to
    /// show that the pipeline itself agrees with the reference.
    pub fn new(fault: Option<Fault>) -> BrokenVerifier {
        BrokenVerifier { fault }
    }

    fn broken(&self, f: Fault) -> bool {
        self.fault == Some(f)
    }

    fn decode(&self, header: &str) -> Result<Value, Error> {
        if !self.broken(Fault::LenientBase64) {
            return aep2::envelope::decode_header(header);
        }
        if header.len() > aep2::envelope::MAX_HEADER_BYTES {
            return Err(Error::new(Reason::HeaderTooLarge, "header too large"));
        }
        decode_json_bytes(&lenient_base64(header)?)
    }

    fn check_signature(&self, sm: &SignedMandate, digest: &MandateDigest) -> Result<(), Error> {
        match (&sm.mandate, &digest.input) {
            (Mandate::Eip712(m), SigningInput::Eip712(parts)) => {
                let mut sig = secp256k1::parse_signature(&sm.signature)?;
                if self.broken(Fault::AcceptHighS) {
                    sig = normalise_s(sig);
                }
                let signer = secp256k1::recover(&parts.digest, &sig)?;
                if signer != m.owner {
                    return Err(Error::new(
                        Reason::SignatureInvalid,
                        "signature recovers another address",
                    ));
                }
                Ok(())
            }
            (Mandate::Ed25519(m), SigningInput::Message(msg)) => self.check_ed25519(&m.payer.0, msg, &sm.signature),
            (Mandate::SolanaMvp(m), SigningInput::Message(msg)) => self.check_ed25519(&m.payer.0, msg, &sm.signature),
            _ => Err(Error::new(Reason::ProfileMismatch, "signing input of another profile")),
        }
    }

    fn check_ed25519(&self, key: &[u8; 32], msg: &[u8], text: &str) -> Result<(), Error> {
        let sig = aep2::verify::parse_ed25519_signature(text)?;
        ed25519_verify(key, msg, &sig, !self.broken(Fault::AcceptSmallOrder)).map_err(Error::from)
    }

    fn same_domain(&self, claimed: &Domain, expected: &Domain) -> bool {
        if !self.broken(Fault::IgnoreChainId) {
            return claimed == expected;
        }
        match (claimed, expected) {
            (Domain::Eip712(a), Domain::Eip712(b)) => a.verifying_contract == b.verifying_contract,
            (Domain::Ed25519(a), Domain::Ed25519(b)) => a.wallet == b.wallet,
            (a, b) => a == b,
        }
    }

    /// Core verification of a header: decode, schema, signature, domain, expiry (at `now`, if
    /// given), in the normative order.
    pub fn verify_header(&self, header: &str, expected: &Domain, now: Option<u64>) -> Result<SignedMandate, Error> {
        let value = self.decode(header)?;
        let sm = SignedMandate::from_json(&value, expected.profile())?;
        let domain = sm.domain.clone().unwrap_or_else(|| expected.clone());
        let digest = mandate_digest(&sm.mandate, &domain)?;
        self.check_signature(&sm, &digest)?;
        if let Some(claimed) = &sm.domain
            && !self.same_domain(claimed, expected)
        {
            return Err(Error::new(Reason::DomainMismatch, "signed for another domain"));
        }
        if let Some(now) = now
            && !self.broken(Fault::IgnoreDeadline)
            && now > sm.mandate.deadline()
        {
            return Err(Error::new(Reason::Expired, "deadline passed"));
        }
        Ok(sm)
    }

    /// Core verification at `now − clock_skew`, then the payee policy's checks at `now` in
    /// the order of `aep2.md#policy`.
    pub fn verify_policy(&self, header: &str, expected: &Domain, policy: &PayeePolicy, now: u64) -> Result<(), Error> {
        let sm = self.verify_header(header, expected, Some(policy.core_time(now)))?;
        let m = &sm.mandate;
        let (payee, token, amount, reference) = match m {
            Mandate::Eip712(m) => (
                AccountId::Evm(m.payee),
                AccountId::Evm(m.token),
                m.amount,
                Some(m.reference),
            ),
            Mandate::Ed25519(m) => (
                AccountId::Base58(m.payee),
                AccountId::Base58(m.token),
                U256::from_u64(m.amount),
                Some(m.reference),
            ),
            Mandate::SolanaMvp(m) => (
                AccountId::Base58(m.payee),
                AccountId::Base58(m.token),
                U256::from_u64(m.amount),
                None,
            ),
        };
        // The bug: the payee to compare with is read from the request's own mandate.
        let own_payee = if self.broken(Fault::IgnorePayee) {
            payee
        } else {
            policy.payee
        };
        let deadline = u128::from(m.deadline());
        let (now, skew) = (u128::from(now), u128::from(policy.clock_skew));
        let fail = |r: Reason| Err(Error::new(r, "payee policy"));
        if !self.broken(Fault::IgnoreDeadline) && now > deadline + skew {
            return fail(Reason::Expired);
        }
        if payee != own_payee {
            return fail(Reason::PayeeMismatch);
        }
        if token != policy.asset {
            return fail(Reason::AssetMismatch);
        }
        if amount < policy.price {
            return fail(Reason::AmountInsufficient);
        }
        if policy.price_mode == PriceMode::Exact && amount != policy.price {
            return fail(Reason::AmountNotExact);
        }
        if deadline < (now + u128::from(policy.settlement_window)).saturating_sub(skew) {
            return fail(Reason::DeadlineTooSoon);
        }
        if deadline > now + u128::from(policy.max_horizon) {
            return fail(Reason::DeadlineTooFar);
        }
        if let Some(expected) = &policy.request_hash
            && reference.as_ref() != Some(expected)
        {
            return fail(Reason::RequestMismatch);
        }
        Ok(())
    }

    /// Verifies a bare Ed25519 triple (`ed25519_raw`): lengths, then the Ed25519 rules.
    pub fn verify_raw(&self, key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| Error::new(Reason::AddressInvalid, "key is not 32 bytes"))?;
        let sig: [u8; 64] = sig
            .try_into()
            .map_err(|_| Error::new(Reason::SignatureLength, "signature is not 64 bytes"))?;
        ed25519_verify(&key, msg, &sig, !self.broken(Fault::AcceptSmallOrder)).map_err(Error::from)
    }

    /// Answers one case; `Err` is an adapter-side problem (a malformed case), not a verdict.
    pub fn answer(&self, case: &CaseInput) -> Result<Result<(), Error>, String> {
        let context: Context = serde_json::from_value(case.context.clone()).map_err(|e| format!("context: {e}"))?;
        let text = |k: &str| -> Result<&str, String> {
            case.input
                .get(k)
                .and_then(J::as_str)
                .ok_or_else(|| format!("input.{k} missing"))
        };
        match case.kind.as_str() {
            "verify_mandate" => {
                let domain = context_domain(&context)?;
                Ok(self.verify_header(text("header")?, &domain, context.now).map(|_| ()))
            }
            "verify_policy" => {
                let domain = context_domain(&context)?;
                let policy = context_policy(&context)?;
                let now = context.now.ok_or("verify_policy needs now")?;
                Ok(self.verify_policy(text("header")?, &domain, &policy, now))
            }
            "ed25519_raw" => {
                let bytes = |k: &str| -> Result<Vec<u8>, String> {
                    hex_decode_0x(&format!("0x{}", text(k)?)).ok_or_else(|| format!("input.{k} is not hex"))
                };
                Ok(self.verify_raw(&bytes("publicKey")?, &bytes("message")?, &bytes("signature")?))
            }
            other => Err(format!("kind {other} is not answered by this adapter")),
        }
    }

    fn hello(&self) -> StartResponse {
        StartResponse {
            version: PROTOCOL_VERSION,
            implementation: Implementation {
                name: format!("aep2-broken/{}", self.fault.map_or("none", Fault::name)),
                language: "rust".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                homepage: None,
                source: None,
                issues: None,
            },
            capabilities: Capabilities {
                kinds: KINDS.iter().map(|k| (*k).to_owned()).collect(),
                profiles: aep2_conformance::protocol::PROFILES
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
                reason_codes: true,
            },
            error_map: BTreeMap::new(),
        }
    }

    fn respond(&self, seq: u64, case: &CaseInput) -> RunResponse {
        let mut response = RunResponse {
            seq: J::from(seq),
            result: None,
            skipped: None,
            errored: None,
        };
        match self.answer(case) {
            Ok(verdict) => {
                response.result = Some(CaseResult {
                    verdict: if verdict.is_ok() { "valid" } else { "invalid" }.into(),
                    code: verdict.err().map(|e| e.code().to_owned()),
                    outputs: BTreeMap::new(),
                });
            }
            Err(message) => response.errored = Some(Errored { message, context: None }),
        }
        response
    }

    /// Speaks the adapter protocol on `input` / `output` until `stop` or end of input.
    pub fn serve(&self, mut input: impl BufRead, mut output: impl Write) -> ExitCode {
        loop {
            let line = match read_line(&mut input) {
                Ok(Line::Text(l)) => l,
                Ok(Line::Eof) => return ExitCode::SUCCESS,
                Ok(other) => {
                    eprintln!("aep2-broken-adapter: unreadable request line: {other:?}");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("aep2-broken-adapter: stdin: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let reply = match serde_json::from_str::<Request>(&line) {
                Ok(Request::Start { .. }) => serde_json::to_string(&self.hello()),
                Ok(Request::Run { seq, case }) => serde_json::to_string(&self.respond(seq, &case)),
                Ok(Request::Stop) => return ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("aep2-broken-adapter: bad request: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let sent = reply.map_err(std::io::Error::other).and_then(|r| {
                output.write_all(r.as_bytes())?;
                output.write_all(b"\n")?;
                output.flush()
            });
            if sent.is_err() {
                return ExitCode::FAILURE;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(Fault::parse(f.name()), Some(f));
        }
        assert_eq!(Fault::parse("accept-everything"), None);
    }

    #[test]
    fn high_s_maps_to_its_twin_only_inside_the_range() {
        let mut sig = [0u8; 65];
        sig[64] = 27;
        let mut one = [0u8; 32];
        one[31] = 1;
        sig[32..64].copy_from_slice(&sub_be(&N, &one));
        let low = normalise_s(sig);
        assert_eq!(low[63], 1);
        assert_eq!(low[64], 28);
        let mut at_n = sig;
        at_n[32..64].copy_from_slice(&N);
        assert_eq!(normalise_s(at_n), at_n);
        let mut half = sig;
        half[32..64].copy_from_slice(&HALF_N);
        assert_eq!(normalise_s(half), half);
    }

    #[test]
    fn lenient_base64_forgives_what_strict_refuses() {
        assert_eq!(lenient_base64("aGk").ok(), Some(b"hi".to_vec()));
        assert_eq!(lenient_base64(" aG\nk=").ok(), Some(b"hi".to_vec()));
        assert!(lenient_base64("a-k=").is_err());
        assert!(aep2::codec::base64_decode("aGk").is_err());
    }
}
