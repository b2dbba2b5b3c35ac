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
//! Each [`Variant`] reads one choice point of the spec (a check order, a boundary, a default, a
//! comparison) the other way; `tests/variants.rs` requires a vector to fail each one
//! (`conformance/README.md`, "Choice points of the spec").
//!
//! With a fault the verifier answers `verify_mandate`, `verify_policy`, `verify_order` and
//! `ed25519_raw` (the runner skips every other kind); a reading variant answers every kind, the
//! carriers, receipts and signing through [`readings`]. A fault that no stateless vector can catch, such as skipping the replay
//! store, is deliberately absent: the live probes (`probe payee`) are where that is tested.

pub mod readings;
mod schema;

use aep2::codec::hex_decode_0x;
use aep2::crypto::secp256k1;
use aep2::envelope::SignedMandate;
use aep2::json::{Limits, Value};
use aep2::{
    AccountId, Domain, Error, Mandate, MandateDigest, OrderOptions, PayeePolicy, PaymentRequest, PriceMode, QuoteRef,
    Reason, SigningInput, U256, mandate_digest,
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

/// The case kinds the faults (and the pipeline's variants) apply to; a reading variant answers
/// every kind of the protocol, the others as the reference does ([`readings`]).
pub const KINDS: &[&str] = &["verify_mandate", "verify_policy", "verify_order", "ed25519_raw"];

/// One broken rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// secp256k1: a signature with `n/2 < s < n` is replaced by its low-s twin (`n − s`, `v`
    /// flipped) before recovery, as "normalising" libraries do; breaks rule 3 of
    /// `aep2.md#eip712-signature-rules`.
    AcceptHighS,
    /// A native envelope's (or a quote's) domain is compared with the verifier's without its
    /// chain (`chainId`, or the CAIP-2 `network`): only the contract or wallet must match;
    /// breaks `aep2.md#envelope-native`'s `domain_mismatch` check (and check 0 of
    /// `aep2.md#payment-request-acceptance`).
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

/// One other reading of a choice point of the spec: the reference pipeline with exactly one
/// check order, boundary, default or comparison read the other way (`conformance/README.md`,
/// "Choice points of the spec"). Each variant is named after its choice point's id; the test
/// `tests/variants.rs` runs the suite against every one and requires a vector to fail it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// §5.3: the size limit is applied to the decoded bytes instead of the header text.
    DecodeSizeOnBytes,
    /// §5.3: base64 is decoded before the size check (size, then base64, read the other way).
    DecodeBase64BeforeSize,
    /// §5.3: the JSON is parsed (over a lossy UTF-8 reading) before the UTF-8 check.
    DecodeJsonBeforeUtf8,
    /// §5.3 step 4: limits are checked after a complete parse, not in the one pass.
    DecodeLimitsAfterParse,
    /// §5.3 step 4: a syntax error anywhere wins over an earlier duplicate member.
    DecodeDuplicatesAfterSyntax,
    /// §7: the native envelope's domain is compared before the signature is verified.
    CoreDomainBeforeSignature,
    /// §5.2: the signature is verified over the verifier's expected domain, not the claimed one.
    CoreSignatureOverExpectedDomain,
    /// §7: expiry is checked before the signature (right after the schema).
    CoreExpiryBeforeSignature,
    /// §7, §8 check 1/2: expiry is checked before the domain comparison.
    CoreExpiryBeforeDomain,
    /// §3.1 rule 4: `now == deadline` is expired.
    CoreExpiryExclusive,
    /// §8 checks 2/3: the payee is compared before expiry.
    PolicyOrder2x3,
    /// §8 checks 3/4: the asset is compared before the payee.
    PolicyOrder3x4,
    /// §8 checks 4/5: the amount is compared before the asset.
    PolicyOrder4x5,
    /// §8 checks 5/6: the settlement window is checked before the amount.
    PolicyOrder5x6,
    /// §8 checks 6/7: the horizon is checked before the settlement window.
    PolicyOrder6x7,
    /// §8 checks 7/8: request binding is checked before the horizon.
    PolicyOrder7x8,
    /// §8.3 rule 1: `now == deadline + s` is expired.
    PolicyExpiryExclusive,
    /// §8.3 rule 2: `deadline + s == now + w` is too soon.
    PolicyWindowExclusive,
    /// §8.3 rule 3: `deadline == now + h` is too far.
    PolicyHorizonExclusive,
    /// §8.3 rule 1: no clock skew on expiry (`now > deadline`).
    PolicySkewNotOnExpiry,
    /// §8.3 rule 2: no clock skew on the settlement window (`deadline < now + w`).
    PolicySkewNotOnWindow,
    /// §8.3 rule 3: the clock skew also widens the horizon (`deadline > now + h + s`).
    PolicySkewOnHorizon,
    /// §8 check 1: core verification at `now − s` wraps below zero instead of being exact.
    PolicyCoreTimeWraps,
    /// §8 check 6: the window check in IEEE 754 double arithmetic (JavaScript's `Number`), whose
    /// sums of inputs up to 2^53 − 1 round. (Saturating 64-bit arithmetic, the other inexact
    /// reading, is unobservable: every input is at most 2^53 − 1, so no sum reaches 2^64.)
    PolicyWindowDouble,
    /// §8.1: the payee compared as text, letter case significant.
    PolicyPayeeCaseSensitive,
    /// §8.1: the asset compared as text, letter case significant.
    PolicyAssetCaseSensitive,
    /// §8.1: an expected payee or asset of the other kind is not configured, so not compared.
    PolicyOtherKindSkipped,
    /// §8.2: under `exact`, an amount above the price is `amount_insufficient`.
    PolicyOverExactInsufficient,
    /// §8.2: `at-least` read as `exact`.
    PolicyAtLeastAsExact,
    /// §8.2: a price of 0 means "no price check".
    PolicyPriceZeroFree,
    /// §8.4: a `solana-mvp` mandate is not bound (its `ref` is not checked) when binding is required.
    PolicySolanaBindingSkipped,
    /// §9.4: check 0 (the quote) runs after core verification of the mandate.
    OrderQuoteAfterCore,
    /// §9.4 check 0: the quote's domain is compared before its profile.
    OrderDomainBeforeProfile,
    /// §9.4 checks 2/3: the quote's expiry before the mandate's.
    OrderOrder2x3,
    /// §9.4 checks 3/4: the payee before the quote's expiry.
    OrderOrder3x4,
    /// §9.4 check 3: `now == expiry + s` is closed.
    OrderExpiryExclusive,
    /// §9.4 check 3: no clock skew on the quote's expiry.
    OrderSkewNotOnExpiry,
    /// §9.3: a `solana-mvp` `ref` compared with the `requestId` ignoring case.
    OrderRequestIdCaseInsensitive,
    /// §9.3: a `solana-mvp` `ref` compared with the `requestId` after trimming trailing NULs
    /// (as the chain's zero padding would).
    OrderRequestIdNulTrimmed,
    /// §4.2.2: the scalar `S` is range-checked before the key `A`.
    Ed25519ScalarBeforeKey,
    /// §4.2.2: the commitment `R` is checked before the scalar `S`.
    Ed25519PointBeforeScalar,
    /// §5.3 / JSON rules: member names compared as written (escapes not decoded), so `"amount"`
    /// and `"\u0061mount"` are two members and the last one wins, as generic JSON libraries do.
    JsonDuplicateAsWritten,
    /// JSON rules: a lone surrogate escape is replaced by U+FFFD instead of rejected.
    JsonLoneSurrogateReplaced,
    /// §5: under the `solana-mvp` verifier every object is an MVP envelope, even one with `aep2`.
    SchemaKindByProfile,
    /// §3.2: a missing member is reported before an unknown one.
    SchemaMissingBeforeUnknown,
    /// §3.2: the faults of two mandate members are taken in document order, not definition order.
    SchemaDocumentOrder,
    /// §5.1: the mandate is checked before the envelope's member set.
    SchemaMandateBeforeEnvelope,
    /// §3.2: member by member (each defined member's presence and type, unknown members last)
    /// instead of the whole member set first.
    SchemaMemberByMember,
    /// §5.2 steps 2–3: the profile is checked before the version.
    NativeProfileBeforeVersion,
    /// §5.2 steps 3–4: the domain is read before the profile is checked.
    NativeDomainBeforeProfile,
    /// §5.2 steps 4–5: the mandate is read before the domain.
    NativeMandateBeforeDomain,
    /// §5.2 step 5: the signature's JSON type is checked before the mandate.
    NativeSignatureTypeBeforeMandate,
    /// §5.2 step 3: `solana-mvp` in a native envelope is a profile mismatch, not an unsupported
    /// profile.
    NativeSolanaMismatch,
    /// §7: the signature's format is checked before the mandate's schema.
    CoreSignatureBeforeSchema,
    /// §5.1: an MVP envelope whose signature does not verify under the verifier's domain is
    /// reported as `domain_mismatch` (as if the verifier knew it was signed for another domain).
    CoreMvpDomainMismatch,
    /// §7, `conformance.md#inputs`: without `now` the system clock is used for expiry.
    CoreAbsentNowClock,
    /// `conformance.md#inputs`: an `ed25519_raw` key that is not 32 bytes is `key_invalid`.
    Ed25519RawKeyInvalid,
    /// §8.2: a price above 2^64 − 1 is truncated to its low 64 bits for an Ed25519-profile
    /// mandate (whose amount is a u64).
    PolicyPriceTruncated,
    /// §9.4 checks 1–3: the quote's expiry is checked before core verification of the mandate.
    OrderQuoteExpiryBeforeCore,
    /// §9.4 check 0: the quote's `profile` text is compared with the verifier's before the quote
    /// is read (§9.1).
    OrderProfileBeforeParse,
    /// §9.1: one member set for every quote, `domain` optional: a `solana-mvp` quote's `domain`
    /// is ignored, and a quote without one cannot match the verifier's domain.
    OrderDomainOptional,
    /// A reading of the x402 carrier ([`readings::x402`]).
    X402(readings::x402::Reading),
    /// A reading of the MCP binding ([`readings::mcp`]).
    Mcp(readings::mcp::Reading),
    /// A reading of the A2A binding ([`readings::a2a`]).
    A2a(readings::a2a::Reading),
    /// A reading of receipt verification ([`readings::receipts`]).
    Receipt(readings::receipts::Reading),
    /// A reading of signing ([`readings::signing`]).
    Signing(readings::signing::Reading),
    /// A reading of the spending-lane rules ([`readings::lanes`]), applied inside the mandate
    /// pipeline.
    Lane(readings::lanes::Reading),
}

impl Variant {
    /// The variants of the mandate pipeline (`verify_mandate`, `verify_policy`, `verify_order`,
    /// `ed25519_raw`); [`Variant::all`] adds the other areas' readings.
    pub const PIPELINE: &'static [Variant] = &[
        Variant::DecodeSizeOnBytes,
        Variant::DecodeBase64BeforeSize,
        Variant::DecodeJsonBeforeUtf8,
        Variant::DecodeLimitsAfterParse,
        Variant::DecodeDuplicatesAfterSyntax,
        Variant::CoreDomainBeforeSignature,
        Variant::CoreSignatureOverExpectedDomain,
        Variant::CoreExpiryBeforeSignature,
        Variant::CoreExpiryBeforeDomain,
        Variant::CoreExpiryExclusive,
        Variant::PolicyOrder2x3,
        Variant::PolicyOrder3x4,
        Variant::PolicyOrder4x5,
        Variant::PolicyOrder5x6,
        Variant::PolicyOrder6x7,
        Variant::PolicyOrder7x8,
        Variant::PolicyExpiryExclusive,
        Variant::PolicyWindowExclusive,
        Variant::PolicyHorizonExclusive,
        Variant::PolicySkewNotOnExpiry,
        Variant::PolicySkewNotOnWindow,
        Variant::PolicySkewOnHorizon,
        Variant::PolicyCoreTimeWraps,
        Variant::PolicyWindowDouble,
        Variant::PolicyPayeeCaseSensitive,
        Variant::PolicyAssetCaseSensitive,
        Variant::PolicyOtherKindSkipped,
        Variant::PolicyOverExactInsufficient,
        Variant::PolicyAtLeastAsExact,
        Variant::PolicyPriceZeroFree,
        Variant::PolicySolanaBindingSkipped,
        Variant::OrderQuoteAfterCore,
        Variant::OrderDomainBeforeProfile,
        Variant::OrderOrder2x3,
        Variant::OrderOrder3x4,
        Variant::OrderExpiryExclusive,
        Variant::OrderSkewNotOnExpiry,
        Variant::OrderRequestIdCaseInsensitive,
        Variant::OrderRequestIdNulTrimmed,
        Variant::Ed25519ScalarBeforeKey,
        Variant::Ed25519PointBeforeScalar,
        Variant::JsonDuplicateAsWritten,
        Variant::JsonLoneSurrogateReplaced,
        Variant::SchemaKindByProfile,
        Variant::SchemaMissingBeforeUnknown,
        Variant::SchemaDocumentOrder,
        Variant::SchemaMandateBeforeEnvelope,
        Variant::SchemaMemberByMember,
        Variant::NativeProfileBeforeVersion,
        Variant::NativeDomainBeforeProfile,
        Variant::NativeMandateBeforeDomain,
        Variant::NativeSignatureTypeBeforeMandate,
        Variant::NativeSolanaMismatch,
        Variant::CoreSignatureBeforeSchema,
        Variant::CoreMvpDomainMismatch,
        Variant::CoreAbsentNowClock,
        Variant::Ed25519RawKeyInvalid,
        Variant::PolicyPriceTruncated,
        Variant::OrderQuoteExpiryBeforeCore,
        Variant::OrderProfileBeforeParse,
        Variant::OrderDomainOptional,
    ];

    /// The choice point's id in `conformance/README.md`, which is also the `--variant` name.
    pub fn id(self) -> &'static str {
        match self {
            Variant::DecodeSizeOnBytes => "CP-decode-size-unit",
            Variant::DecodeBase64BeforeSize => "CP-decode-order-size-base64",
            Variant::DecodeJsonBeforeUtf8 => "CP-decode-order-utf8-json",
            Variant::DecodeLimitsAfterParse => "CP-decode-json-limits-one-pass",
            Variant::DecodeDuplicatesAfterSyntax => "CP-decode-json-duplicate-one-pass",
            Variant::CoreDomainBeforeSignature => "CP-core-order-signature-domain",
            Variant::CoreSignatureOverExpectedDomain => "CP-core-signed-domain",
            Variant::CoreExpiryBeforeSignature => "CP-core-order-signature-expiry",
            Variant::CoreExpiryBeforeDomain => "CP-core-order-domain-expiry",
            Variant::CoreExpiryExclusive => "CP-core-expiry-inclusive",
            Variant::PolicyOrder2x3 => "CP-policy-order-2-3",
            Variant::PolicyOrder3x4 => "CP-policy-order-3-4",
            Variant::PolicyOrder4x5 => "CP-policy-order-4-5",
            Variant::PolicyOrder5x6 => "CP-policy-order-5-6",
            Variant::PolicyOrder6x7 => "CP-policy-order-6-7",
            Variant::PolicyOrder7x8 => "CP-policy-order-7-8",
            Variant::PolicyExpiryExclusive => "CP-policy-expiry-inclusive",
            Variant::PolicyWindowExclusive => "CP-policy-window-inclusive",
            Variant::PolicyHorizonExclusive => "CP-policy-horizon-inclusive",
            Variant::PolicySkewNotOnExpiry => "CP-policy-skew-expiry",
            Variant::PolicySkewNotOnWindow => "CP-policy-skew-window",
            Variant::PolicySkewOnHorizon => "CP-policy-skew-horizon",
            Variant::PolicyCoreTimeWraps => "CP-policy-core-time-below-skew",
            Variant::PolicyWindowDouble => "CP-policy-exact-arithmetic",
            Variant::PolicyPayeeCaseSensitive => "CP-policy-payee-compare",
            Variant::PolicyAssetCaseSensitive => "CP-policy-asset-compare",
            Variant::PolicyOtherKindSkipped => "CP-policy-other-kind-account",
            Variant::PolicyOverExactInsufficient => "CP-policy-exact-above-code",
            Variant::PolicyAtLeastAsExact => "CP-policy-at-least",
            Variant::PolicyPriceZeroFree => "CP-policy-price-zero",
            Variant::PolicySolanaBindingSkipped => "CP-policy-binding-solana-mvp",
            Variant::OrderQuoteAfterCore => "CP-order-order-0-1",
            Variant::OrderDomainBeforeProfile => "CP-order-check0-profile-domain",
            Variant::OrderOrder2x3 => "CP-order-order-2-3",
            Variant::OrderOrder3x4 => "CP-order-order-3-4",
            Variant::OrderExpiryExclusive => "CP-order-expiry-inclusive",
            Variant::OrderSkewNotOnExpiry => "CP-order-skew-expiry",
            Variant::OrderRequestIdCaseInsensitive => "CP-order-request-id-case",
            Variant::OrderRequestIdNulTrimmed => "CP-order-request-id-padding",
            Variant::Ed25519ScalarBeforeKey => "CP-ed25519-order-key-scalar",
            Variant::Ed25519PointBeforeScalar => "CP-ed25519-order-scalar-point",
            Variant::JsonDuplicateAsWritten => "CP-json-duplicate-unescaped",
            Variant::JsonLoneSurrogateReplaced => "CP-json-lone-surrogate",
            Variant::SchemaKindByProfile => "CP-schema-envelope-kind",
            Variant::SchemaMissingBeforeUnknown => "CP-schema-unknown-missing",
            Variant::SchemaDocumentOrder => "CP-schema-member-order",
            Variant::SchemaMandateBeforeEnvelope => "CP-schema-outer-inner",
            Variant::SchemaMemberByMember => "CP-schema-set-before-types",
            Variant::NativeProfileBeforeVersion => "CP-native-order-aep2-profile",
            Variant::NativeDomainBeforeProfile => "CP-native-order-profile-domain",
            Variant::NativeMandateBeforeDomain => "CP-native-order-domain-mandate",
            Variant::NativeSignatureTypeBeforeMandate => "CP-native-order-mandate-signature",
            Variant::NativeSolanaMismatch => "CP-native-unsupported-vs-mismatch",
            Variant::CoreSignatureBeforeSchema => "CP-core-order-schema-signature",
            Variant::CoreMvpDomainMismatch => "CP-core-mvp-other-domain-code",
            Variant::CoreAbsentNowClock => "CP-core-absent-now",
            Variant::Ed25519RawKeyInvalid => "CP-ed25519-raw-key-length",
            Variant::PolicyPriceTruncated => "CP-policy-price-above-u64",
            Variant::OrderQuoteExpiryBeforeCore => "CP-order-order-1-3",
            Variant::OrderProfileBeforeParse => "CP-order-check0-parse-verifier",
            Variant::OrderDomainOptional => "CP-order-member-set-by-profile",
            Variant::X402(r) => r.id(),
            Variant::Mcp(r) => r.id(),
            Variant::A2a(r) => r.id(),
            Variant::Receipt(r) => r.id(),
            Variant::Signing(r) => r.id(),
            Variant::Lane(r) => r.id(),
        }
    }

    /// Every variant: the mandate pipeline's, then each area's readings.
    pub fn all() -> Vec<Variant> {
        let mut out = Variant::PIPELINE.to_vec();
        out.extend(readings::all());
        out
    }

    /// The variant of a choice-point id.
    pub fn parse(id: &str) -> Option<Variant> {
        Variant::all().into_iter().find(|v| v.id() == id)
    }

    /// Whether no vector is known to fail this reading yet (a gap the README lists as "not
    /// pinned", waiting for a new vector). The variant test requires every other variant to be
    /// caught, and these to pass, so that this list stays exact.
    pub fn known_gap(self) -> bool {
        // Every variant is caught today; a new gap is listed as `matches!(self, Variant::…)`.
        let _ = self;
        false
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
    ed25519_verify_as(key, msg, sig, check_key_order, None)
}

/// [`ed25519_verify`] with the rule order a [`Variant`] reads.
fn ed25519_verify_as(
    key: &[u8; 32],
    msg: &[u8],
    sig: &[u8; 64],
    check_key_order: bool,
    variant: Option<Variant>,
) -> Result<(), Reason> {
    let r_bytes: [u8; 32] = sig[..32].try_into().unwrap_or([0; 32]);
    let s_bytes: [u8; 32] = sig[32..].try_into().unwrap_or([0; 32]);
    let scalar =
        || Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or(Reason::SignatureScalarOutOfRange);
    let point = || decode_point(&r_bytes, true).map_err(Defect::commitment);
    if variant == Some(Variant::Ed25519ScalarBeforeKey) {
        scalar()?;
    }
    let a = decode_point(key, check_key_order).map_err(Defect::key)?;
    if variant == Some(Variant::Ed25519PointBeforeScalar) {
        point()?;
    }
    let s = scalar()?;
    point()?;
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

/// A mandate verifier with one broken rule or one other reading (or neither).
#[derive(Clone, Copy, Debug)]
pub struct BrokenVerifier {
    fault: Option<Fault>,
    variant: Option<Variant>,
}

/// The fields of a mandate the policy compares.
struct Terms {
    payee: AccountId,
    token: AccountId,
    amount: U256,
    reference: Option<[u8; 32]>,
}

impl BrokenVerifier {
    /// A verifier that breaks `fault`; `None` gives a correct verifier, which the tests use to
    /// show that the pipeline itself agrees with the reference.
    pub fn new(fault: Option<Fault>) -> BrokenVerifier {
        BrokenVerifier { fault, variant: None }
    }

    /// A verifier that reads one choice point the other way.
    pub fn reading(variant: Variant) -> BrokenVerifier {
        BrokenVerifier {
            fault: None,
            variant: Some(variant),
        }
    }

    fn broken(&self, f: Fault) -> bool {
        self.fault == Some(f)
    }

    fn reads(&self, v: Variant) -> bool {
        self.variant == Some(v)
    }

    fn lane_reading(&self) -> Option<readings::lanes::Reading> {
        match self.variant {
            Some(Variant::Lane(r)) => Some(r),
            _ => None,
        }
    }

    fn decode(&self, header: &str) -> Result<Value, Error> {
        if self.broken(Fault::LenientBase64) {
            if header.len() > aep2::envelope::MAX_HEADER_BYTES {
                return Err(Error::new(Reason::HeaderTooLarge, "header too large"));
            }
            return self.decode_bytes(&lenient_base64(header)?);
        }
        let too_large = || Error::new(Reason::HeaderTooLarge, "header too large");
        if self.reads(Variant::DecodeSizeOnBytes) {
            return self.decode_bytes(&aep2::codec::base64_decode(header)?);
        }
        if self.reads(Variant::DecodeBase64BeforeSize) {
            let bytes = aep2::codec::base64_decode(header)?;
            if header.len() > aep2::envelope::MAX_HEADER_BYTES {
                return Err(too_large());
            }
            return self.decode_bytes(&bytes);
        }
        if header.len() > aep2::envelope::MAX_HEADER_BYTES {
            return Err(too_large());
        }
        self.decode_bytes(&aep2::codec::base64_decode(header)?)
    }

    /// Steps 1 (on bytes), 3 and 4 of `aep2.md#decoding-rules`.
    fn decode_bytes(&self, bytes: &[u8]) -> Result<Value, Error> {
        if bytes.len() > aep2::envelope::MAX_HEADER_BYTES {
            return Err(Error::new(Reason::HeaderTooLarge, "decoded bytes too large"));
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                if self.reads(Variant::DecodeJsonBeforeUtf8) {
                    self.parse_json(&String::from_utf8_lossy(bytes))?;
                }
                return Err(Error::new(Reason::Utf8Invalid, e.to_string()));
            }
        };
        self.parse_json(text)
    }

    fn parse_json(&self, text: &str) -> Result<Value, Error> {
        let parsed = aep2::json::parse(text, &Limits::AEP2);
        if let Err(e) = &parsed {
            if e.reason() == Reason::JsonDuplicateKey
                && self.reads(Variant::JsonDuplicateAsWritten)
                && !schema::duplicate_as_written(text)
            {
                // A generic library: the last of the members keeps its value.
                let last_wins: J =
                    serde_json::from_str(text).map_err(|e| Error::new(Reason::JsonInvalid, e.to_string()))?;
                return aep2::json::parse(&last_wins.to_string(), &Limits::AEP2);
            }
            if e.reason() == Reason::JsonInvalid
                && self.reads(Variant::JsonLoneSurrogateReplaced)
                && let Some(replaced) = schema::replace_lone_surrogates(text)
            {
                return aep2::json::parse(&replaced, &Limits::AEP2);
            }
            if e.reason() == Reason::JsonLimitExceeded && self.reads(Variant::DecodeLimitsAfterParse) {
                let unbounded = Limits {
                    max_depth: 256,
                    max_string_bytes: usize::MAX,
                    max_members: usize::MAX,
                    max_number_len: usize::MAX,
                };
                aep2::json::parse(text, &unbounded)?;
            }
            if e.reason() == Reason::JsonDuplicateKey
                && self.reads(Variant::DecodeDuplicatesAfterSyntax)
                && serde_json::from_str::<J>(text).is_err()
            {
                return Err(Error::new(Reason::JsonInvalid, "syntax error after a duplicate"));
            }
        }
        parsed
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
        ed25519_verify_as(key, msg, &sig, !self.broken(Fault::AcceptSmallOrder), self.variant).map_err(Error::from)
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

    fn check_domain(&self, sm: &SignedMandate, expected: &Domain) -> Result<(), Error> {
        match &sm.domain {
            Some(claimed) if !self.same_domain(claimed, expected) => {
                Err(Error::new(Reason::DomainMismatch, "signed for another domain"))
            }
            _ => Ok(()),
        }
    }

    fn check_expiry(&self, sm: &SignedMandate, now: Option<u64>) -> Result<(), Error> {
        let clock = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        let now = match now {
            Some(n) => n,
            None if self.reads(Variant::CoreAbsentNowClock) => clock(),
            None => return Ok(()),
        };
        let deadline = sm.mandate.deadline();
        let expired = if self.reads(Variant::CoreExpiryExclusive) {
            now >= deadline
        } else {
            now > deadline
        };
        if expired && !self.broken(Fault::IgnoreDeadline) {
            return Err(Error::new(Reason::Expired, "deadline passed"));
        }
        Ok(())
    }

    /// Core verification of a header: decode, schema, signature, domain, expiry (at `now`, if
    /// given), in the normative order.
    pub fn verify_header(&self, header: &str, expected: &Domain, now: Option<u64>) -> Result<SignedMandate, Error> {
        let mut value = self.decode(header)?;
        if let Some(v) = self.variant {
            schema::before_schema(v, &value, expected.profile())?;
        }
        if let Some(read) = readings::lanes::before_schema(self.lane_reading(), &value, expected.profile())? {
            value = read;
        }
        let sm = match SignedMandate::from_json(&value, expected.profile()) {
            Ok(sm) => sm,
            Err(e) => {
                if self.reads(Variant::CoreSignatureBeforeSchema) {
                    schema::signature_format(&value, expected.profile())?;
                }
                return Err(e);
            }
        };
        if !sm.lanes.is_empty() {
            return self.verify_under_lanes(sm, expected, now);
        }
        if self.reads(Variant::CoreExpiryBeforeSignature) {
            self.check_expiry(&sm, now)?;
        }
        if self.reads(Variant::CoreDomainBeforeSignature) {
            self.check_domain(&sm, expected)?;
        }
        let domain = match &sm.domain {
            Some(claimed) if !self.reads(Variant::CoreSignatureOverExpectedDomain) => claimed.clone(),
            _ => expected.clone(),
        };
        let digest = mandate_digest(&sm.mandate, &domain)?;
        match self.check_signature(&sm, &digest) {
            Err(e)
                if e.reason() == Reason::SignatureInvalid
                    && sm.form == aep2::EnvelopeForm::Mvp
                    && sm.mandate.profile() != aep2::Profile::SolanaMvp
                    && self.reads(Variant::CoreMvpDomainMismatch) =>
            {
                return Err(Error::new(Reason::DomainMismatch, "read as signed for another domain"));
            }
            r => r?,
        }
        if self.reads(Variant::CoreExpiryBeforeDomain) {
            self.check_expiry(&sm, now)?;
        }
        self.check_domain(&sm, expected)?;
        self.check_expiry(&sm, now)?;
        Ok(sm)
    }

    /// Signature and policy stages of a mandate under a chain of lanes
    /// (`aep2.md#lane-verification`), as the lane reading (if any) reads them.
    fn verify_under_lanes(
        &self,
        sm: SignedMandate,
        expected: &Domain,
        now: Option<u64>,
    ) -> Result<SignedMandate, Error> {
        let r = self.lane_reading();
        let domain = sm.domain.clone().unwrap_or_else(|| expected.clone());
        readings::lanes::signature_stage(r, &sm, &domain)?;
        if r == Some(readings::lanes::Reading::RulesBeforeCorePolicy) {
            readings::lanes::policy(r, &sm, now)?;
        }
        self.check_domain(&sm, expected)?;
        self.check_expiry(&sm, now)?;
        readings::lanes::policy(r, &sm, now)?;
        Ok(sm)
    }

    /// The time core verification runs at under a policy: `now − s`, exact (0 below it).
    fn core_time(&self, policy: &PayeePolicy, now: u64) -> u64 {
        if self.reads(Variant::PolicySkewNotOnExpiry) {
            now
        } else if self.reads(Variant::PolicyCoreTimeWraps) {
            now.wrapping_sub(policy.clock_skew)
        } else {
            policy.core_time(now)
        }
    }

    /// Core verification at `now − clock_skew`, then the payee policy's checks at `now` in
    /// the order of `aep2.md#policy`.
    pub fn verify_policy(&self, header: &str, expected: &Domain, policy: &PayeePolicy, now: u64) -> Result<(), Error> {
        // Check 2 replaces the core expiry rule; a reading that moves it runs core without it.
        let core_now = if self.reads(Variant::PolicyOrder2x3) {
            None
        } else {
            Some(self.core_time(policy, now))
        };
        let sm = self.verify_header(header, expected, core_now)?;
        let raw = self.decode(header)?;
        self.policy_checks(&sm, &raw, policy, now)
    }

    fn terms(m: &Mandate) -> Terms {
        match m {
            Mandate::Eip712(m) => Terms {
                payee: AccountId::Evm(m.payee),
                token: AccountId::Evm(m.token),
                amount: m.amount,
                reference: Some(m.reference),
            },
            Mandate::Ed25519(m) => Terms {
                payee: AccountId::Base58(m.payee),
                token: AccountId::Base58(m.token),
                amount: U256::from_u64(m.amount),
                reference: Some(m.reference),
            },
            Mandate::SolanaMvp(m) => Terms {
                payee: AccountId::Base58(m.payee),
                token: AccountId::Base58(m.token),
                amount: U256::from_u64(m.amount),
                reference: None,
            },
        }
    }

    /// Whether an account of the mandate (`field` of the header's mandate object, decoded as
    /// `got`) is the policy's `want`, as this verifier compares them.
    fn same_account(&self, raw: &Value, field: &str, got: &AccountId, want: &AccountId, as_text: bool) -> bool {
        let other_kind = matches!(
            (got, want),
            (AccountId::Evm(_), AccountId::Base58(_)) | (AccountId::Base58(_), AccountId::Evm(_))
        );
        if other_kind && self.reads(Variant::PolicyOtherKindSkipped) {
            return true;
        }
        if as_text {
            let text = match raw {
                Value::Object(o) => match o.get("mandate") {
                    Some(Value::Object(m)) => match m.get(field) {
                        Some(Value::String(s)) => Some(s.clone()),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            };
            return text.is_some_and(|t| t == want.to_string());
        }
        got == want
    }

    /// Checks 2 to 8 of `aep2.md#policy` on a mandate core verification accepted.
    fn policy_checks(&self, sm: &SignedMandate, raw: &Value, policy: &PayeePolicy, now: u64) -> Result<(), Error> {
        let m = &sm.mandate;
        let t = BrokenVerifier::terms(m);
        // The bug: the payee to compare with is read from the request's own mandate.
        let own_payee = if self.broken(Fault::IgnorePayee) {
            t.payee
        } else {
            policy.payee
        };
        let deadline = u128::from(m.deadline());
        let (now_w, skew) = (u128::from(now), u128::from(policy.clock_skew));
        let window = u128::from(policy.settlement_window);
        let horizon = u128::from(policy.max_horizon);
        let fail = |r: Reason| Err(Error::new(r, "payee policy"));
        let expired = || {
            if self.broken(Fault::IgnoreDeadline) {
                false
            } else if self.reads(Variant::PolicySkewNotOnExpiry) {
                now_w > deadline
            } else if self.reads(Variant::PolicyExpiryExclusive) {
                now_w >= deadline + skew
            } else {
                now_w > deadline + skew
            }
        };
        let payee_ok = || {
            self.same_account(
                raw,
                "payee",
                &t.payee,
                &own_payee,
                self.reads(Variant::PolicyPayeeCaseSensitive),
            )
        };
        let asset_ok = || {
            self.same_account(
                raw,
                "token",
                &t.token,
                &policy.asset,
                self.reads(Variant::PolicyAssetCaseSensitive),
            )
        };
        let amount = || -> Result<(), Error> {
            let price = match m {
                Mandate::Eip712(_) => policy.price,
                _ if self.reads(Variant::PolicyPriceTruncated) => {
                    let low: [u8; 8] = policy.price.0[24..].try_into().unwrap_or([0; 8]);
                    U256::from_u64(u64::from_be_bytes(low))
                }
                _ => policy.price,
            };
            if self.reads(Variant::PolicyPriceZeroFree) && price.is_zero() {
                return Ok(());
            }
            if t.amount < price {
                return fail(Reason::AmountInsufficient);
            }
            let exact = policy.price_mode == PriceMode::Exact || self.reads(Variant::PolicyAtLeastAsExact);
            if exact && t.amount != price {
                return fail(if self.reads(Variant::PolicyOverExactInsufficient) {
                    Reason::AmountInsufficient
                } else {
                    Reason::AmountNotExact
                });
            }
            Ok(())
        };
        let too_soon = || {
            if self.reads(Variant::PolicySkewNotOnWindow) {
                deadline < now_w + window
            } else if self.reads(Variant::PolicyWindowExclusive) {
                deadline + skew <= now_w + window
            } else if self.reads(Variant::PolicyWindowDouble) {
                // JavaScript `Number` arithmetic: every input is exact below 2^53, their sums round.
                let (d, s, n, w) = (
                    m.deadline() as f64,
                    policy.clock_skew as f64,
                    now as f64,
                    policy.settlement_window as f64,
                );
                d + s < n + w
            } else {
                deadline + skew < now_w + window
            }
        };
        let too_far = || {
            if self.reads(Variant::PolicySkewOnHorizon) {
                deadline > now_w + horizon + skew
            } else if self.reads(Variant::PolicyHorizonExclusive) {
                deadline >= now_w + horizon
            } else {
                deadline > now_w + horizon
            }
        };
        let bound = || match &policy.request_hash {
            Some(_) if self.reads(Variant::PolicySolanaBindingSkipped) && t.reference.is_none() => true,
            Some(expected) => t.reference.as_ref() == Some(expected),
            None => true,
        };
        if self.reads(Variant::PolicyOrder2x3) && !payee_ok() {
            return fail(Reason::PayeeMismatch);
        }
        if expired() {
            return fail(Reason::Expired);
        }
        if self.reads(Variant::PolicyOrder3x4) && !asset_ok() {
            return fail(Reason::AssetMismatch);
        }
        if !payee_ok() {
            return fail(Reason::PayeeMismatch);
        }
        if self.reads(Variant::PolicyOrder4x5) {
            amount()?;
        }
        if !asset_ok() {
            return fail(Reason::AssetMismatch);
        }
        if self.reads(Variant::PolicyOrder5x6) && too_soon() {
            return fail(Reason::DeadlineTooSoon);
        }
        amount()?;
        if self.reads(Variant::PolicyOrder6x7) && too_far() {
            return fail(Reason::DeadlineTooFar);
        }
        if too_soon() {
            return fail(Reason::DeadlineTooSoon);
        }
        if self.reads(Variant::PolicyOrder7x8) && !bound() {
            return fail(Reason::RequestMismatch);
        }
        if too_far() {
            return fail(Reason::DeadlineTooFar);
        }
        if !bound() {
            return fail(Reason::RequestMismatch);
        }
        Ok(())
    }

    /// Check 0 of `aep2.md#payment-request-acceptance`: the quote's profile and domain are the
    /// verifier's.
    fn check_quote_verifier(&self, quote: &PaymentRequest, expected: &Domain) -> Result<(), Error> {
        let profile = || {
            if quote.profile() != expected.profile() {
                Err(Error::new(Reason::ProfileMismatch, "quote for another profile"))
            } else {
                Ok(())
            }
        };
        let domain = || {
            if !self.same_domain(&quote.domain, expected) {
                Err(Error::new(Reason::DomainMismatch, "quote for another domain"))
            } else {
                Ok(())
            }
        };
        if self.reads(Variant::OrderDomainBeforeProfile) {
            domain()?;
        }
        profile()?;
        domain()
    }

    /// Accepts a header against a quote (`aep2.md#payment-request-acceptance`, checks 0 to 9).
    pub fn verify_order(
        &self,
        quote: &J,
        header: &str,
        expected: &Domain,
        now: u64,
        options: OrderOptions,
    ) -> Result<(), Error> {
        let parsed = || -> Result<PaymentRequest, Error> {
            if self.reads(Variant::OrderProfileBeforeParse)
                && let Some(p) = quote.get("profile").and_then(J::as_str)
                && p != expected.profile().as_str()
            {
                return Err(Error::new(Reason::ProfileMismatch, "quote for another profile"));
            }
            let mut quote = quote.clone();
            if self.reads(Variant::OrderDomainOptional)
                && let J::Object(o) = &mut quote
            {
                match o.get("profile").and_then(J::as_str) {
                    Some("solana-mvp") => {
                        o.remove("domain");
                    }
                    Some(_) if !o.contains_key("domain") => {
                        return Err(Error::new(Reason::DomainMismatch, "quote without a domain"));
                    }
                    _ => {}
                }
            }
            let quote =
                aep2::json::parse(&quote.to_string(), &Limits::AEP2).and_then(|v| PaymentRequest::from_json(&v))?;
            self.check_quote_verifier(&quote, expected)?;
            Ok(quote)
        };
        let skew = options.clock_skew;
        let core_time = if self.reads(Variant::OrderOrder2x3) {
            None
        } else if self.reads(Variant::PolicySkewNotOnExpiry) {
            Some(now)
        } else {
            Some(now.saturating_sub(skew))
        };
        let (quote, sm) = if self.reads(Variant::OrderQuoteAfterCore) {
            let sm = self.verify_header(header, expected, core_time)?;
            (parsed()?, sm)
        } else {
            let quote = parsed()?;
            if self.reads(Variant::OrderQuoteExpiryBeforeCore)
                && u128::from(now) > u128::from(quote.expiry) + u128::from(skew)
            {
                return Err(Error::new(Reason::QuoteExpired, "quote closed"));
            }
            (quote, self.verify_header(header, expected, core_time)?)
        };
        let raw = self.decode(header)?;
        let policy = quote.policy(options);
        let (now_w, skew_w) = (u128::from(now), u128::from(skew));
        let deadline = u128::from(sm.mandate.deadline());
        let expiry = u128::from(quote.expiry);
        let fail = |r: Reason| Err(Error::new(r, "quote"));
        let quote_closed = if self.reads(Variant::OrderSkewNotOnExpiry) {
            now_w > expiry
        } else if self.reads(Variant::OrderExpiryExclusive) {
            now_w >= expiry + skew_w
        } else {
            now_w > expiry + skew_w
        };
        let mandate_expired = !self.broken(Fault::IgnoreDeadline)
            && if self.reads(Variant::PolicySkewNotOnExpiry) {
                now_w > deadline
            } else {
                now_w > deadline + skew_w
            };
        if self.reads(Variant::OrderOrder2x3) && quote_closed {
            return fail(Reason::QuoteExpired);
        }
        if mandate_expired {
            return fail(Reason::Expired);
        }
        if self.reads(Variant::OrderOrder3x4) {
            let t = BrokenVerifier::terms(&sm.mandate);
            let own_payee = if self.broken(Fault::IgnorePayee) {
                t.payee
            } else {
                policy.payee
            };
            if t.payee != own_payee {
                return fail(Reason::PayeeMismatch);
            }
        }
        if quote_closed {
            return fail(Reason::QuoteExpired);
        }
        self.policy_checks(&sm, &raw, &policy, now)?;
        if let (Mandate::SolanaMvp(m), QuoteRef::RequestId(id)) = (&sm.mandate, quote.mandate_ref()) {
            let same = if self.reads(Variant::OrderRequestIdCaseInsensitive) {
                m.reference.eq_ignore_ascii_case(&id)
            } else if self.reads(Variant::OrderRequestIdNulTrimmed) {
                m.reference.trim_end_matches('\0') == id
            } else {
                m.reference == id
            };
            if !same {
                return fail(Reason::RequestMismatch);
            }
        }
        Ok(())
    }

    /// Verifies a bare Ed25519 triple (`ed25519_raw`): lengths, then the Ed25519 rules.
    pub fn verify_raw(&self, key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        let key: [u8; 32] = key.try_into().map_err(|_| {
            let code = if self.reads(Variant::Ed25519RawKeyInvalid) {
                Reason::KeyInvalid
            } else {
                Reason::AddressInvalid
            };
            Error::new(code, "key is not 32 bytes")
        })?;
        let sig: [u8; 64] = sig
            .try_into()
            .map_err(|_| Error::new(Reason::SignatureLength, "signature is not 64 bytes"))?;
        ed25519_verify_as(&key, msg, &sig, !self.broken(Fault::AcceptSmallOrder), self.variant).map_err(Error::from)
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
            "verify_order" => {
                let domain = context_domain(&context)?;
                let now = context.now.ok_or("verify_order needs now")?;
                let options = OrderOptions::default()
                    .with_clock_skew(context.clock_skew.ok_or("verify_order needs clockSkew")?)
                    .with_max_horizon(context.max_horizon.ok_or("verify_order needs maxHorizon")?);
                let quote = case.input.get("quote").ok_or("input.quote missing")?;
                Ok(self.verify_order(quote, text("header")?, &domain, now, options))
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
                name: format!(
                    "aep2-broken/{}",
                    self.variant
                        .map_or_else(|| self.fault.map_or("none", Fault::name), Variant::id)
                ),
                language: "rust".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                homepage: None,
                source: None,
                issues: None,
            },
            capabilities: Capabilities {
                kinds: if self.variant.is_some() {
                    aep2_conformance::protocol::CASE_KINDS
                } else {
                    KINDS
                }
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
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
        if let Some(variant) = self.variant {
            let area = readings::answer_as(variant, case);
            let beyond = !KINDS.contains(&case.kind.as_str());
            if area.is_some() || beyond {
                match area.unwrap_or_else(|| readings::reference(case)) {
                    Ok(a) => response.result = Some(aep2_conformance::protocol::result_of(a)),
                    Err(message) => response.errored = Some(Errored { message, context: None }),
                }
                return response;
            }
        }
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
