//! `ed25519.json`: the Ed25519 validation criteria shared by the `ed25519` and `solana-mvp`
//! profiles (spec `aep2.md#ed25519-verification-rules`): RFC 8032 known answers, the
//! ed25519-speccheck edge cases, every point class for `A` and `R`, the scalar range, weak-key
//! forgeries, and both mandate profiles end to end.
//!
//! Expectations are written here by hand from the rule order (lengths, key `A`, scalar `S`,
//! commitment `R`, cofactorless equation). Signed bytes of valid mandates are built here from
//! the spec text (JCS for `ed25519`, the fixed MVP text with hand-escaped `ref` for
//! `solana-mvp`), not taken from the reference implementation, so a divergence in either shows
//! up as a failing vector. Forged signatures are built with curve arithmetic; every scalar and
//! every grinding loop starts from a fixed label, so the output is byte-stable.

use super::edkit;
use super::eip712::NOW;
use super::{Case, Exp, FileBuilder, ed_seed, header_input, header_of, header_of_text, with_mandate_field};
use crate::model::{Kind, VectorFile};
use aep2::codec::{base58_encode, hex_decode_0x, hex_encode_0x};
use aep2::crypto::ed25519;
use aep2::json::{Object, Value};
use aep2::{
    Base58Key, Domain, Ed25519Domain, Ed25519Mandate, EnvelopeForm, Mandate, Reason, SignedMandate, SolanaMvpMandate,
};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use serde_json::{Value as J, json};
use sha2::{Digest as _, Sha512};
use std::path::Path;

const RULES: &str = "aep2.md#ed25519-verification-rules";
const RFC_VERIFY: &str = "rfc8032#section-5.1.7";
const RFC_DECODE: &str = "rfc8032#section-5.1.3";
const RFC_SIGN: &str = "rfc8032#section-5.1.6";
const RFC_VECTORS: &str = "rfc8032#section-7.1";
const PROFILE_ED: &str = "aep2.md#profile-ed25519";
const SIGNING_INPUT: &str = "aep2.md#ed25519-signing-input";
const PROFILE_SOL: &str = "aep2.md#profile-solana-mvp";
const ENV_NATIVE: &str = "aep2.md#envelope-native";
const ENV_MVP: &str = "aep2.md#envelope-mvp";
const TYPES: &str = "aep2.md#mandate-json-types";
const FIELDS: &str = "aep2.md#mandate-fields";
const SECURITY: &str = "aep2.md#security-considerations";

/// L, the prime order of the basepoint, little-endian.
const L_BYTES: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// The encoding of the identity point (x = 0, y = 1).
const IDENTITY: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
};

/// Solana mainnet-beta as a CAIP-2 id (a network the vectors' mandates are not signed for).
const MAINNET: &str = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";

/// The 12 ed25519-speccheck cases with the AEP2 strict verdict: (reason, flags, compat
/// acceptable, upstream table columns, comment). Upstream's `cases.json` records no verdicts;
/// its generator's table (README) records whether the cofactored and cofactorless equations
/// hold (V) or not (X), quoted as the upstream result.
type SpeccheckRow = (Reason, &'static [&'static str], bool, &'static str, &'static str);
const SPECCHECK: [SpeccheckRow; 12] = [
    (
        Reason::KeySmallOrder,
        &["small_order_key", "small_order_r"],
        false,
        "S = 0, small A, small R; cofactored V, cofactorless V (small A and R)",
        "S = 0, A and R both of small order (order 8): both equations hold for this message, but A is a weak key, rejected before anything else",
    ),
    (
        Reason::KeySmallOrder,
        &["small_order_key", "mixed_order_r"],
        false,
        "0 < S < L, small A, mixed R; cofactored V, cofactorless V (small A only)",
        "small-order A (order 8) with a mixed-order R: the key rule rejects it first",
    ),
    (
        Reason::KeyMixedOrder,
        &["mixed_order_key", "small_order_r"],
        false,
        "0 < S < L, mixed A, small R; cofactored V, cofactorless V (small R only)",
        "mixed-order A with a small-order R: key_mixed_order; not acceptable in compat either, because R is of small order, which compat still rejects",
    ),
    (
        Reason::KeyMixedOrder,
        &["mixed_order_key", "mixed_order_r", "cofactorless_holds"],
        true,
        "0 < S < L, mixed A, mixed R; cofactored V, cofactorless V (succeeds unless full-order is checked)",
        "mixed-order A and R, both equations hold: only the torsion rules reject it, so compat (which skips them) may accept it; a cofactored ZIP-215 verifier accepts",
    ),
    (
        Reason::KeyMixedOrder,
        &["mixed_order_key", "mixed_order_r", "cofactored_only"],
        true,
        "0 < S < L, mixed A, mixed R; cofactored V, cofactorless X",
        "mixed-order A and R, the cofactored equation holds and the cofactorless one does not: cofactored (ZIP-215) verifiers accept, cofactorless ones reject; only the torsion rules object, so compat may go either way",
    ),
    (
        Reason::KeyMixedOrder,
        &["mixed_order_key", "cofactored_only"],
        true,
        "0 < S < L, mixed A, L-order R; cofactored V* (fails iff 8h is pre-reduced), cofactorless X",
        "mixed-order A, prime-order R: the cofactored equation holds when k is reduced mod L and the cofactor applied afterwards, as ZIP-215 does ([8]([S]B - R - [k]A) = 0), and fails if 8k is pre-reduced; only the torsion of A objects, so compat may accept",
    ),
    (
        Reason::SignatureScalarOutOfRange,
        &["s_out_of_range"],
        false,
        "S > L, L-order A and R; cofactored V, cofactorless V",
        "L <= S < 2^253 (S - L is the valid scalar): a range check on the top three bits only (as in ref10) misses it; a full S < L comparison rejects it",
    ),
    (
        Reason::SignatureScalarOutOfRange,
        &["s_out_of_range"],
        false,
        "S >> L, L-order A and R; cofactored V, cofactorless V",
        "S far above L (bit 253 set): out of range",
    ),
    (
        Reason::KeyMixedOrder,
        &["mixed_order_key", "non_canonical_r"],
        false,
        "0 < S < L, mixed A, small* R; cofactored V, cofactorless V (non-canonical R, reduced for hash)",
        "mixed-order A; R is the order-2 point encoded with x = 0 and the sign bit set (non-canonical), k computed over the canonical R: the key rule decides first; not acceptable in compat (R is non-canonical and small order)",
    ),
    (
        Reason::KeyMixedOrder,
        &["mixed_order_key", "non_canonical_r"],
        false,
        "0 < S < L, mixed A, small* R; cofactored V, cofactorless V (non-canonical R, not reduced for hash)",
        "as the previous case, with k computed over the non-canonical R bytes as received: the key rule decides first; not acceptable in compat",
    ),
    (
        Reason::KeyNonCanonical,
        &["non_canonical_key", "mixed_order_r"],
        false,
        "0 < S < L, small* A, mixed R; cofactored V, cofactorless V (non-canonical A, reduced for hash)",
        "A is the order-2 point encoded with x = 0 and the sign bit set (non-canonical, and small order), k computed over the canonical A: non-canonical is checked before small order",
    ),
    (
        Reason::KeyNonCanonical,
        &["non_canonical_key", "mixed_order_r"],
        false,
        "0 < S < L, small* A, mixed R; cofactored V, cofactorless V (non-canonical A, not reduced for hash)",
        "as the previous case, with k computed over the non-canonical A bytes as received",
    ),
];

pub(crate) fn generate(repo_root: &Path) -> Result<VectorFile, String> {
    let mut f = FileBuilder::new(
        "ed25519",
        &[
            "Ed25519 validation criteria shared by the ed25519 and solana-mvp profiles (spec aep2.md#ed25519-verification-rules): strict single-signature verification, checked in the order lengths, public key A, scalar S, commitment R, cofactorless equation [S]B = R + [k]A with k = SHA-512(R || A || M) mod L over the bytes as received.",
            "ed25519_raw cases give publicKey, message and signature as lowercase hex without 0x; verify_mandate cases give a base64 header verified under the group's profile, domain and now.",
            "compatResult \"acceptable\" marks inputs whose only defect is a torsion component on A or R and which a cofactored (ZIP-215) verifier accepts; under the compat profile accepting and rejecting them both conform.",
            "speccheck cases are ed25519-speccheck cases.json (novifinancial/ed25519-speccheck@65519336); upstreamResult quotes the upstream generator's table (S, A, R classes and whether the cofactored / cofactorless equations hold: V yes, X no), not a verdict.",
        ],
    );
    notes(&mut f);

    let rfc = load(repo_root, "rfc8032-7.1.json")?;
    let speccheck = load(repo_root, "ed25519-speccheck-cases.json")?;
    let points = load(repo_root, "small-order-points.json")?;
    let pts = Points::read(&points)?;

    rfc8032(&mut f, &rfc)?;
    speccheck_group(&mut f, &speccheck)?;
    points_group(&mut f, &pts)?;
    weak_key_forgery(&mut f, &pts)?;
    native(&mut f, &pts)?;
    solana_mvp(&mut f)?;
    raw_lengths(&mut f, &rfc)?;
    Ok(f.finish())
}

fn notes(f: &mut FileBuilder) {
    f.note(
        "valid",
        "BASIC",
        "A well-formed input with a valid signature.",
        &[RULES],
    );
    f.note(
        "small_order_key",
        "WEAK_PARAMS",
        "Public key A of small order ([8]A = identity): a weak key; one signature verifies for many messages.",
        &[RULES],
    );
    f.note(
        "mixed_order_key",
        "EDGE_CASE",
        "Public key A with a torsion component (neither small order nor torsion-free); honest keys never have one, and cofactored and cofactorless verifiers disagree on them.",
        &[RULES],
    );
    f.note(
        "non_canonical_key",
        "EDGE_CASE",
        "Public key A in a non-canonical encoding (y >= p, or x = 0 with the sign bit set): a second text for the same point.",
        &[RULES, RFC_DECODE],
    );
    f.note(
        "invalid_key",
        "EDGE_CASE",
        "Public key bytes that decode to no curve point.",
        &[RULES, RFC_DECODE],
    );
    f.note(
        "small_order_r",
        "EDGE_CASE",
        "Commitment R of small order, including the identity.",
        &[RULES],
    );
    f.note(
        "mixed_order_r",
        "EDGE_CASE",
        "Commitment R with a torsion component.",
        &[RULES],
    );
    f.note(
        "non_canonical_r",
        "SIGNATURE_MALLEABILITY",
        "Commitment R in a non-canonical encoding: a second signature text for the same point.",
        &[RULES, RFC_DECODE],
    );
    f.note(
        "invalid_r",
        "EDGE_CASE",
        "Commitment R bytes that decode to no curve point.",
        &[RULES, RFC_DECODE],
    );
    f.note(
        "s_out_of_range",
        "SIGNATURE_MALLEABILITY",
        "Scalar S >= L: S + L verifies wherever S does, so accepting it makes signatures malleable.",
        &[RULES, RFC_VERIFY],
    );
    f.note(
        "s_boundary",
        "EDGE_CASE",
        "S = L - 1, the largest scalar in range: rule 3 passes and the equation decides.",
        &[RULES, RFC_VERIFY],
    );
    f.note(
        "cofactored_only",
        "EDGE_CASE",
        "The cofactored equation [8][S]B = [8]R + [8][k]A holds but the cofactorless one does not.",
        &[RULES, RFC_VERIFY],
    );
    f.note(
        "cofactorless_holds",
        "EDGE_CASE",
        "The cofactorless equation [S]B = R + [k]A holds: only the point rules reject the input.",
        &[RULES],
    );
    f.note(
        "rule_order",
        "EDGE_CASE",
        "Several rules fail; the first in the normative order (key, then S, then R, then the equation) names the reason.",
        &[RULES],
    );
    f.note(
        "weak_key_forgery",
        "AUTH_BYPASS",
        "Payer key of small order with R = identity and S = 0: the cofactorless equation holds for every message (identity key) or a fixed fraction of messages (order 2 or 8), so a lenient verifier (e.g. ed25519-dalek verify, tweetnacl) accepts a mandate nobody signed.",
        &[RULES, SECURITY],
    );
    f.note(
        "modified_message",
        "MODIFIED_PARAMETER",
        "The message or a signed field changed after signing.",
        &[RULES],
    );
    f.note(
        "wrong_key",
        "MODIFIED_PARAMETER",
        "Signed with a key other than the one verified against.",
        &[RULES],
    );
    f.note(
        "wrong_primitive",
        "WRONG_PRIMITIVE",
        "Signed over other bytes than the profile's signing input (no tag, another key order, another domain).",
        &[SIGNING_INPUT],
    );
    f.note(
        "signature_encoding",
        "EDGE_CASE",
        "Signature text that is not base58, or not of exactly 64 bytes.",
        &[RULES],
    );
    f.note(
        "field_encoding",
        "EDGE_CASE",
        "A mandate member outside its type or range, or an unknown member.",
        &[TYPES, FIELDS],
    );
    f.note(
        "ref_escaping",
        "EDGE_CASE",
        "solana-mvp ref containing characters JSON.stringify escapes (quote, backslash, control characters) or writes literally (non-ASCII, U+2028, DEL).",
        &[PROFILE_SOL],
    );
    f.note(
        "member_order",
        "EDGE_CASE",
        "Mandate members received in another order or with other escapes; the signed bytes do not change.",
        &[PROFILE_SOL, SIGNING_INPUT],
    );
    f.note("range", "EDGE_CASE", "A value at the edge of its range.", &[FIELDS]);
    f.note(
        "lengths",
        "EDGE_CASE",
        "An ed25519_raw key or signature of the wrong byte length (conformance.md#inputs).",
        &[RULES],
    );
    f.note(
        "check_order",
        "DEFINED",
        "The input fails two checks; the first in the listed order decides the code.",
        &[RULES],
    );
}

// ---------------------------------------------------------------------------------------------
// Group 1: RFC 8032 known answers

fn rfc8032(f: &mut FileBuilder, rfc: &J) -> Result<(), String> {
    let g = f.group("rfc8032", Kind::Ed25519Raw, Default::default());
    let vectors = items(rfc, "vectors")?;
    if vectors.len() != 5 {
        return Err(format!("rfc8032-7.1.json: expected 5 vectors, found {}", vectors.len()));
    }
    for v in vectors {
        let name = text(v, "name")?;
        let pk = unhex(text(v, "public_key")?)?;
        let msg = unhex(text(v, "message")?)?;
        let sig = unhex(text(v, "signature")?)?;
        f.case(
            g,
            Case::new(
                format!("RFC 8032 section 7.1 {name} ({}-byte message)", msg.len()),
                raw(&pk, &msg, &sig),
                Exp::Valid,
            )
            .flags(&["valid"])
            .refs(&[RFC_VECTORS, RFC_VERIFY, RULES])
            .source("RFC 8032", name, Some("valid")),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Group 2: ed25519-speccheck

fn speccheck_group(f: &mut FileBuilder, cases: &J) -> Result<(), String> {
    let g = f.group("speccheck", Kind::Ed25519Raw, Default::default());
    let list = cases.as_array().ok_or("ed25519-speccheck-cases.json: not an array")?;
    if list.len() != SPECCHECK.len() {
        return Err(format!(
            "ed25519-speccheck-cases.json: expected 12 cases, found {}",
            list.len()
        ));
    }
    for (i, (c, (reason, flags, compat, upstream, comment))) in list.iter().zip(SPECCHECK.iter()).enumerate() {
        let pk = unhex(text(c, "pub_key")?)?;
        let msg = unhex(text(c, "message")?)?;
        let sig = unhex(text(c, "signature")?)?;
        let mut case = Case::new(
            format!("speccheck {i}: {comment}"),
            raw(&pk, &msg, &sig),
            Exp::Invalid(*reason),
        )
        .flags(flags)
        .refs(&[RULES, RFC_VERIFY])
        .source("ed25519-speccheck", i.to_string(), Some(upstream));
        if *compat {
            case = case.compat_acceptable();
        }
        f.case(g, case);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Group 3: point and scalar classes

/// One encoding from `small-order-points.json`.
struct Enc {
    bytes: [u8; 32],
    hex: String,
    what: String,
}

/// The classes of `small-order-points.json`.
struct Points {
    small: Vec<(Enc, u64)>,
    non_canonical_small: Vec<Enc>,
    non_canonical_mixed: Vec<Enc>,
    mixed: Vec<Enc>,
    undecodable: Vec<Enc>,
}

impl Points {
    /// Reads the classes. The file records the reasons each entry must produce; they are
    /// compared with the reasons written here per class, so a misfiled entry is an error.
    fn read(v: &J) -> Result<Points, String> {
        let class = |key: &str, key_reason: Reason, r_reason: Reason| -> Result<Vec<(Enc, &J)>, String> {
            let mut out = Vec::new();
            for e in items(v, key)? {
                let hex = text(e, "encoding")?.to_owned();
                if text(e, "expected_key_reason")? != key_reason.code()
                    || text(e, "expected_r_reason")? != r_reason.code()
                {
                    return Err(format!(
                        "small-order-points.json: {key} entry {hex} lists other reasons than its class"
                    ));
                }
                let what = match (
                    e.get("why").and_then(J::as_str),
                    e.get("canonical_encoding").and_then(J::as_str),
                ) {
                    (Some(why), Some(c)) => format!("{why}; canonical encoding {c}"),
                    _ => e.get("derivation").and_then(J::as_str).unwrap_or("").to_owned(),
                };
                out.push((
                    Enc {
                        bytes: unhex32(&hex)?,
                        hex,
                        what,
                    },
                    e,
                ));
            }
            Ok(out)
        };
        let small = class("small_order", Reason::KeySmallOrder, Reason::SignaturePointSmallOrder)?
            .into_iter()
            .map(|(enc, e)| {
                e.get("order")
                    .and_then(J::as_u64)
                    .map(|o| (enc, o))
                    .ok_or("small_order entry without order")
            })
            .collect::<Result<Vec<_>, _>>()?;
        let strip = |v: Vec<(Enc, &J)>| v.into_iter().map(|(e, _)| e).collect::<Vec<_>>();
        let pts = Points {
            small,
            non_canonical_small: strip(class(
                "non_canonical_small_order",
                Reason::KeyNonCanonical,
                Reason::SignaturePointNonCanonical,
            )?),
            non_canonical_mixed: strip(class(
                "non_canonical_mixed_order",
                Reason::KeyNonCanonical,
                Reason::SignaturePointNonCanonical,
            )?),
            mixed: strip(class(
                "mixed_order",
                Reason::KeyMixedOrder,
                Reason::SignaturePointMixedOrder,
            )?),
            undecodable: strip(class("undecodable", Reason::KeyInvalid, Reason::SignaturePointInvalid)?),
        };
        if pts.small.len() != 8
            || pts.non_canonical_small.len() != 6
            || pts.mixed.len() < 3
            || pts.undecodable.is_empty()
        {
            return Err("small-order-points.json: unexpected class sizes".into());
        }
        Ok(pts)
    }

    /// The first small-order point of the given order, as a point.
    fn torsion(&self, order: u64) -> Result<(EdwardsPoint, &Enc), String> {
        let (enc, _) = self
            .small
            .iter()
            .find(|(_, o)| *o == order)
            .ok_or_else(|| format!("no small-order point of order {order}"))?;
        Ok((decompress(&enc.bytes)?, enc))
    }
}

fn points_group(f: &mut FileBuilder, pts: &Points) -> Result<(), String> {
    let g = f.group("points", Kind::Ed25519Raw, Default::default());
    let inv = Exp::Invalid;
    let seed = ed_seed("ed25519/points/baseline");
    let a = secret_scalar(&seed);
    let pk = ed25519::public_key_from_seed(&seed);
    if EdwardsPoint::mul_base(&a).compress().to_bytes() != pk {
        return Err("the clamped secret scalar does not give the public key".into());
    }
    let msg = b"AEP2 ed25519 vectors: point rules".to_vec();
    let sig = ed25519::sign(&seed, &msg);
    let (r0, s0) = split(&sig);

    f.case(
        g,
        Case::new(
            "baseline: an honest key, message and RFC 8032 signature",
            raw(&pk, &msg, &sig),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[RULES, RFC_SIGN, RFC_VERIFY]),
    );

    // --- the public key A
    for (e, order) in &pts.small {
        f.case(
            g,
            Case::new(
                format!(
                    "A = {}: a small-order point (order {order}); the baseline signature",
                    e.hex
                ),
                raw(&e.bytes, &msg, &sig),
                inv(Reason::KeySmallOrder),
            )
            .flags(&["small_order_key"])
            .refs(&[RULES]),
        );
    }
    for e in &pts.non_canonical_small {
        f.case(
            g,
            Case::new(
                format!("A = {}: non-canonical encoding of a small-order point ({}); non-canonical is checked before small order", e.hex, e.what),
                raw(&e.bytes, &msg, &sig),
                inv(Reason::KeyNonCanonical),
            )
            .flags(&["non_canonical_key", "small_order_key", "rule_order"])
            .refs(&[RULES, RFC_DECODE]),
        );
    }
    for e in pts.non_canonical_mixed.iter().take(2) {
        f.case(
            g,
            Case::new(
                format!(
                    "A = {}: non-canonical encoding of a mixed-order point ({})",
                    e.hex, e.what
                ),
                raw(&e.bytes, &msg, &sig),
                inv(Reason::KeyNonCanonical),
            )
            .flags(&["non_canonical_key", "mixed_order_key", "rule_order"])
            .refs(&[RULES, RFC_DECODE]),
        );
    }
    for e in &pts.undecodable {
        f.case(
            g,
            Case::new(
                format!("A = {}: y is not the y-coordinate of any curve point", e.hex),
                raw(&e.bytes, &msg, &sig),
                inv(Reason::KeyInvalid),
            )
            .flags(&["invalid_key"])
            .refs(&[RULES, RFC_DECODE]),
        );
    }
    let mut y_p2 = [0xffu8; 32];
    y_p2[0] = 0xef;
    y_p2[31] = 0x7f;
    f.case(
        g,
        Case::new(
            format!("A = {}: y = p + 2 (>= p), which reduces to y = 2, on no point: decoding fails before canonicity is examined", hex(&y_p2)),
            raw(&y_p2, &msg, &sig),
            inv(Reason::KeyInvalid),
        )
        .flags(&["invalid_key", "rule_order"])
        .refs(&[RULES, RFC_DECODE]),
    );
    for e in pts.mixed.iter().take(3) {
        f.case(
            g,
            Case::new(
                format!(
                    "A = {} = {}: mixed order; the baseline signature (no equation holds, so invalid under compat too)",
                    e.hex, e.what
                ),
                raw(&e.bytes, &msg, &sig),
                inv(Reason::KeyMixedOrder),
            )
            .flags(&["mixed_order_key"])
            .refs(&[RULES]),
        );
    }
    // A' = [a']B + T8. With 8 | k, [k]T8 vanishes, so S = r + k·a' satisfies the cofactorless
    // equation (and the cofactored one): only the torsion check rejects.
    let (t8, t8_enc) = pts.torsion(8)?;
    let a_m = label_scalar("ed25519/points/mixed-key/a");
    let key_m = (EdwardsPoint::mul_base(&a_m) + t8).compress().to_bytes();
    let r_m = label_scalar("ed25519/points/mixed-key/r");
    let r_m_enc = EdwardsPoint::mul_base(&r_m).compress().to_bytes();
    let (msg_m, k_m) = grind(
        |i| format!("AEP2 ed25519 vectors: mixed-order key, message {i}").into_bytes(),
        |m| {
            let k = challenge(&r_m_enc, &key_m, m);
            (k.as_bytes()[0] & 7 == 0).then_some(k)
        },
    )?;
    let s_m = r_m + k_m * a_m;
    f.case(
        g,
        Case::new(
            format!(
                "A = [a]B + T with T = {} of order 8; message ground so that 8 divides k, S = r + k*a: the cofactorless and cofactored equations both hold, only the torsion rule rejects; a cofactored (ZIP-215) verifier accepts",
                t8_enc.hex
            ),
            raw(&key_m, &msg_m, &sig_of(&r_m_enc, &s_m.to_bytes())),
            inv(Reason::KeyMixedOrder),
        )
        .flags(&["mixed_order_key", "cofactorless_holds"])
        .refs(&[RULES])
        .compat_acceptable(),
    );

    // --- the commitment R (valid key)
    let k_id = challenge(&IDENTITY, &pk, &msg);
    let s_id = k_id * a;
    f.case(
        g,
        Case::new(
            "R = identity and S = k*a (computable only with the secret a, and revealing it as S/k): the cofactorless equation [S]B = R + [k]A holds, yet R is of small order",
            raw(&pk, &msg, &sig_of(&IDENTITY, &s_id.to_bytes())),
            inv(Reason::SignaturePointSmallOrder),
        )
        .flags(&["small_order_r", "cofactorless_holds"])
        .refs(&[RULES]),
    );
    for (e, order) in pts.small.iter().filter(|(e, _)| e.bytes != IDENTITY) {
        f.case(
            g,
            Case::new(
                format!("R = {}: a small-order point (order {order}) with the baseline S; the equation fails too, the point rule names the fault", e.hex),
                raw(&pk, &msg, &sig_of(&e.bytes, &s0)),
                inv(Reason::SignaturePointSmallOrder),
            )
            .flags(&["small_order_r"])
            .refs(&[RULES]),
        );
    }
    for e in pts
        .non_canonical_small
        .iter()
        .chain(pts.non_canonical_mixed.iter().take(2))
    {
        f.case(
            g,
            Case::new(
                format!("R = {}: non-canonical encoding ({})", e.hex, e.what),
                raw(&pk, &msg, &sig_of(&e.bytes, &s0)),
                inv(Reason::SignaturePointNonCanonical),
            )
            .flags(&["non_canonical_r"])
            .refs(&[RULES, RFC_DECODE]),
        );
    }
    for e in &pts.undecodable {
        f.case(
            g,
            Case::new(
                format!("R = {}: decodes to no point", e.hex),
                raw(&pk, &msg, &sig_of(&e.bytes, &s0)),
                inv(Reason::SignaturePointInvalid),
            )
            .flags(&["invalid_r"])
            .refs(&[RULES, RFC_DECODE]),
        );
    }
    f.case(
        g,
        Case::new(
            "R = y = p + 2 (>= p, reduces to y = 2, on no point): not decodable",
            raw(&pk, &msg, &sig_of(&y_p2, &s0)),
            inv(Reason::SignaturePointInvalid),
        )
        .flags(&["invalid_r", "rule_order"])
        .refs(&[RULES, RFC_DECODE]),
    );
    // R = [r]B + T, S = r + k·a: the cofactorless equation fails by T, the cofactored one holds.
    for order in [8u64, 4, 2] {
        let (t, t_enc) = pts.torsion(order)?;
        let r = label_scalar(&format!("ed25519/points/mixed-r/{order}"));
        let r_enc = (EdwardsPoint::mul_base(&r) + t).compress().to_bytes();
        let s = r + challenge(&r_enc, &pk, &msg) * a;
        f.case(
            g,
            Case::new(
                format!(
                    "R = [r]B + T with T = {} of order {order}, S = r + k*a: the cofactorless equation is off by T, the cofactored one holds; a cofactored (ZIP-215) verifier accepts",
                    t_enc.hex
                ),
                raw(&pk, &msg, &sig_of(&r_enc, &s.to_bytes())),
                inv(Reason::SignaturePointMixedOrder),
            )
            .flags(&["mixed_order_r", "cofactored_only"])
            .refs(&[RULES])
            .compat_acceptable(),
        );
    }
    for e in pts.mixed.iter().take(3) {
        f.case(
            g,
            Case::new(
                format!(
                    "R = {} = {}: mixed order with the baseline S (no equation holds, so invalid under compat too)",
                    e.hex, e.what
                ),
                raw(&pk, &msg, &sig_of(&e.bytes, &s0)),
                inv(Reason::SignaturePointMixedOrder),
            )
            .flags(&["mixed_order_r"])
            .refs(&[RULES]),
        );
    }

    // --- the scalar S
    let s_plus_l = add_le(&s0, &L_BYTES);
    f.case(
        g,
        Case::new(
            "S + L instead of S: reduces to the valid scalar, so a lenient verifier accepts a second signature",
            raw(&pk, &msg, &sig_of(&r0, &s_plus_l)),
            inv(Reason::SignatureScalarOutOfRange),
        )
        .flags(&["s_out_of_range"])
        .refs(&[RULES, RFC_VERIFY]),
    );
    let mut s_top = s0;
    s_top[31] |= 0x80;
    f.case(
        g,
        Case::new(
            "S with bit 255 set (S + 2^255)",
            raw(&pk, &msg, &sig_of(&r0, &s_top)),
            inv(Reason::SignatureScalarOutOfRange),
        )
        .flags(&["s_out_of_range"])
        .refs(&[RULES, RFC_VERIFY]),
    );
    f.case(
        g,
        Case::new(
            "S = L exactly",
            raw(&pk, &msg, &sig_of(&r0, &L_BYTES)),
            inv(Reason::SignatureScalarOutOfRange),
        )
        .flags(&["s_out_of_range"])
        .refs(&[RULES, RFC_VERIFY]),
    );
    let mut l_minus_1 = L_BYTES;
    l_minus_1[0] -= 1;
    f.case(
        g,
        Case::new(
            "S = L - 1: in range, so the equation decides (and fails)",
            raw(&pk, &msg, &sig_of(&r0, &l_minus_1)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["s_boundary"])
        .refs(&[RULES, RFC_VERIFY]),
    );

    // --- rule order
    let undecodable = &pts.undecodable[0].bytes;
    f.case(
        g,
        Case::new(
            "A, S and R all bad (A and R undecodable, S = 2^256 - 1): the key is checked first",
            raw(undecodable, &msg, &sig_of(undecodable, &[0xff; 32])),
            inv(Reason::KeyInvalid),
        )
        .flags(&["rule_order", "invalid_key", "s_out_of_range", "invalid_r"])
        .refs(&[RULES]),
    );
    f.case(
        g,
        Case::new(
            "valid A; S >= L and R undecodable: S is checked before R",
            raw(&pk, &msg, &sig_of(undecodable, &s_plus_l)),
            inv(Reason::SignatureScalarOutOfRange),
        )
        .flags(&["rule_order", "s_out_of_range", "invalid_r"])
        .refs(&[RULES]),
    );

    // --- the equation
    let mut flipped = msg.clone();
    flipped[0] ^= 0x01;
    f.case(
        g,
        Case::new(
            "message with its lowest bit flipped",
            raw(&pk, &flipped, &sig),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["modified_message"])
        .refs(&[RULES, RFC_VERIFY]),
    );
    let other = ed25519::public_key_from_seed(&ed_seed("ed25519/points/other"));
    f.case(
        g,
        Case::new(
            "another honest key than the signer's",
            raw(&other, &msg, &sig),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_key"])
        .refs(&[RULES, RFC_VERIFY]),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Group 4: weak-key forgeries

fn weak_key_forgery(f: &mut FileBuilder, pts: &Points) -> Result<(), String> {
    let forged = sig_of(&IDENTITY, &[0u8; 32]);
    let forged_text = base58_encode(&forged);
    let identity = Base58Key(IDENTITY);

    let g = f.group("weak-key-forgery", Kind::VerifyMandate, edkit::sol_context(Some(NOW)));
    let mut m1 = edkit::sol_mandate("alice", 0, NOW + 600);
    m1.payer = identity;
    let mut m2 = edkit::sol_mandate("alice", 1, NOW + 600);
    m2.payer = identity;
    m2.amount = u64::MAX;
    m2.payee = edkit::pubkey("mallory");
    for (m, what) in [
        (m1, "a 750-unit mandate"),
        (m2, "a different mandate (amount 2^64 - 1 to another payee)"),
    ] {
        let h = mvp_envelope(&m, &forged_text).encode();
        f.case(
            g,
            Case::new(
                format!(
                    "payer = identity point (0100...00), payerSig = R identity, S = 0 over {what}: [0]B = identity + [k]identity holds for every message, so a lenient cofactorless verifier accepts this one signature on any mandate of this payer; the weak key is rejected"
                ),
                header_input(&h),
                Exp::Invalid(Reason::KeySmallOrder),
            )
            .flags(&["weak_key_forgery", "small_order_key"])
            .refs(&[RULES, PROFILE_SOL, SECURITY]),
        );
    }
    // Order-2 and order-8 weak keys: R = identity, S = 0 verifies (cofactorless) exactly when
    // [k]A = identity, i.e. for half (order 2) or an eighth (order 8) of all messages. The
    // nonce is ground from a fixed start until that holds.
    for order in [2u64, 8] {
        let (_, t) = pts.torsion(order)?;
        let payer = Base58Key(t.bytes);
        let base = edkit::sol_mandate("alice", 2, NOW + 600);
        let (m, _) = grind(
            |i| SolanaMvpMandate {
                payer,
                nonce: base.nonce + u64::from(i),
                ..base.clone()
            },
            |m| {
                let text = mvp_text(m, &m.reference);
                (u64::from(challenge(&IDENTITY, &t.bytes, text.as_bytes()).as_bytes()[0]) % order == 0).then_some(())
            },
        )?;
        f.case(
            g,
            Case::new(
                format!(
                    "payer = {} (order {order}), payerSig = R identity, S = 0; nonce chosen so that {order} divides k: the cofactorless equation holds (as it does for 1/{order} of all mandates); the weak key is rejected",
                    t.hex
                ),
                header_input(&mvp_envelope(&m, &forged_text).encode()),
                Exp::Invalid(Reason::KeySmallOrder),
            )
            .flags(&["weak_key_forgery", "small_order_key"])
            .refs(&[RULES, PROFILE_SOL, SECURITY]),
        );
    }

    // The native profile has the same hole: the domain and tag change M, not the forgery.
    let g = f.group(
        "weak-key-forgery-native",
        Kind::VerifyMandate,
        edkit::ed_context(Some(NOW)),
    );
    for i in 0..2u64 {
        let mut m = edkit::ed_mandate("alice", i, NOW + 600);
        m.payer = identity;
        if i == 1 {
            m.amount = u64::MAX;
            m.payee = edkit::pubkey("mallory");
        }
        let h = native_envelope(&m, &edkit::ed_domain(), &forged_text).encode();
        f.case(
            g,
            Case::new(
                format!(
                    "native envelope, payer = identity point, signature R identity, S = 0 (mandate {}): a lenient cofactorless verifier accepts it for any mandate; the weak key is rejected",
                    i + 1
                ),
                header_input(&h),
                Exp::Invalid(Reason::KeySmallOrder),
            )
            .flags(&["weak_key_forgery", "small_order_key"])
            .refs(&[RULES, PROFILE_ED, SECURITY]),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Group 5: the native ed25519 profile

fn native(f: &mut FileBuilder, pts: &Points) -> Result<(), String> {
    let g = f.group("native", Kind::VerifyMandate, edkit::ed_context(Some(NOW)));
    let inv = Exp::Invalid;
    let d = edkit::ed_domain();
    let signed = |m: &Ed25519Mandate, d: &Ed25519Domain, signer: &str| -> String {
        base58_encode(&ed25519::sign(&ed_seed(signer), &native_signed_bytes(m, d)))
    };

    let base = edkit::ed_mandate("alice", 0, NOW + 600);
    let good = native_envelope(&base, &d, &signed(&base, &d, "alice"));
    f.case(
        g,
        Case::new("native envelope, valid", header_input(&good.encode()), Exp::Valid)
            .flags(&["valid"])
            .refs(&[PROFILE_ED, SIGNING_INPUT, ENV_NATIVE]),
    );
    let mut m = edkit::ed_mandate("bob", 1, NOW + 600);
    m.amount = 1;
    m.nonce = 0;
    f.case(
        g,
        Case::new(
            "native envelope, amount 1 and nonce 0",
            header_input(&native_envelope(&m, &d, &signed(&m, &d, "bob")).encode()),
            Exp::Valid,
        )
        .flags(&["valid", "range"])
        .refs(&[PROFILE_ED, FIELDS]),
    );
    let mut m = edkit::ed_mandate("alice", 2, NOW + 600);
    m.amount = u64::MAX;
    m.nonce = u64::MAX;
    f.case(
        g,
        Case::new(
            "native envelope, amount and nonce 2^64 - 1",
            header_input(&native_envelope(&m, &d, &signed(&m, &d, "alice")).encode()),
            Exp::Valid,
        )
        .flags(&["valid", "range"])
        .refs(&[PROFILE_ED, FIELDS]),
    );
    let mut m = edkit::ed_mandate("alice", 3, NOW);
    m.reference = [0u8; 32];
    f.case(
        g,
        Case::new(
            "native envelope, deadline equal to now (inclusive) and an all-zero ref",
            header_input(&native_envelope(&m, &d, &signed(&m, &d, "alice")).encode()),
            Exp::Valid,
        )
        .flags(&["valid", "range"])
        .refs(&[PROFILE_ED, FIELDS]),
    );
    let mvp_good = SignedMandate {
        form: EnvelopeForm::Mvp,
        domain: None,
        ..good.clone()
    };
    f.case(
        g,
        Case::new(
            "MVP-form envelope {mandate, payerSig} of the same mandate: the verifier supplies the profile and domain",
            header_input(&mvp_good.encode()),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[PROFILE_ED, ENV_MVP]),
    );
    let m = edkit::ed_mandate("bob", 4, NOW + 600);
    let env = SignedMandate {
        form: EnvelopeForm::Mvp,
        mandate: Mandate::Ed25519(m.clone()),
        domain: None,
        signature: signed(&m, &d, "bob"),
        lanes: Vec::new(),
    };
    f.case(
        g,
        Case::new(
            "MVP-form envelope, another payer",
            header_input(&env.encode()),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[PROFILE_ED, ENV_MVP]),
    );

    // --- signature checks
    f.case(
        g,
        Case::new(
            "signed by a key other than the payer's",
            header_input(&native_envelope(&base, &d, &signed(&base, &d, "bob")).encode()),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_key"])
        .refs(&[RULES]),
    );
    let other_net = Ed25519Domain {
        network: MAINNET.into(),
        ..d.clone()
    };
    let env = SignedMandate {
        signature: signed(&base, &other_net, "alice"),
        ..mvp_good.clone()
    };
    f.case(
        g,
        Case::new(
            "MVP-form envelope signed for another network (mainnet): the verifier's domain is in the signed bytes",
            header_input(&env.encode()),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_primitive"])
        .refs(&[SIGNING_INPUT]),
    );
    let jcs_only = &native_signed_bytes(&base, &d)[24..];
    let env = SignedMandate {
        signature: base58_encode(&ed25519::sign(&ed_seed("alice"), jcs_only)),
        ..good.clone()
    };
    f.case(
        g,
        Case::new(
            "signed over the JCS text without the \"AEP2/ed25519/mandate/v1\" tag and zero byte",
            header_input(&env.encode()),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_primitive"])
        .refs(&[SIGNING_INPUT]),
    );
    let env_json = good.to_json();
    let s = |x: String| Some(Value::String(x));
    let tampered: [(&str, Option<Value>); 7] = [
        ("payer", s(edkit::pubkey("bob").to_string())),
        ("token", s(edkit::pubkey("another-mint").to_string())),
        ("payee", s(edkit::pubkey("mallory").to_string())),
        ("amount", s((base.amount + 1).to_string())),
        ("nonce", s((base.nonce + 1).to_string())),
        ("deadline", Some(Value::from_u64(base.deadline + 1))),
        ("ref", s(hex_encode_0x(&[0x42; 32]))),
    ];
    for (field, value) in tampered {
        f.case(
            g,
            Case::new(
                format!("{field} changed after signing"),
                header_input(&header_of(&with_mandate_field(&env_json, field, value))),
                inv(Reason::SignatureInvalid),
            )
            .flags(&["modified_message"])
            .refs(&[SIGNING_INPUT, RULES]),
        );
    }
    let good_sig = ed25519::sign(&ed_seed("alice"), &native_signed_bytes(&base, &d));
    let (r, s_bytes) = split(&good_sig);
    let env = SignedMandate {
        signature: base58_encode(&sig_of(&r, &add_le(&s_bytes, &L_BYTES))),
        ..good.clone()
    };
    f.case(
        g,
        Case::new(
            "the valid signature with S + L",
            header_input(&env.encode()),
            inv(Reason::SignatureScalarOutOfRange),
        )
        .flags(&["s_out_of_range"])
        .refs(&[RULES]),
    );
    for (bad, what) in [('0', "0 (zero)"), ('l', "l (lowercase L)")] {
        let text: String = std::iter::once(bad).chain(good.signature.chars().skip(1)).collect();
        let env = SignedMandate {
            signature: text,
            ..good.clone()
        };
        f.case(
            g,
            Case::new(
                format!("signature text with a character outside the base58 alphabet: {what}"),
                header_input(&env.encode()),
                inv(Reason::SignatureEncoding),
            )
            .flags(&["signature_encoding"])
            .refs(&[RULES]),
        );
    }
    for (len, what) in [
        (63usize, "63 bytes (last byte dropped)"),
        (65, "65 bytes (a zero byte appended)"),
    ] {
        let mut bytes = good_sig.to_vec();
        bytes.resize(len, 0);
        let env = SignedMandate {
            signature: base58_encode(&bytes),
            ..good.clone()
        };
        f.case(
            g,
            Case::new(
                format!("signature of {what}"),
                header_input(&env.encode()),
                inv(Reason::SignatureLength),
            )
            .flags(&["signature_encoding"])
            .refs(&[RULES]),
        );
    }
    let (_, t8) = pts.torsion(8)?;
    let mut m = base.clone();
    m.payer = Base58Key(t8.bytes);
    let env = native_envelope(&m, &d, &signed(&m, &d, "alice"));
    f.case(
        g,
        Case::new(
            format!(
                "payer = {} (a small-order point) with a well-formed 64-byte signature",
                t8.hex
            ),
            header_input(&env.encode()),
            inv(Reason::KeySmallOrder),
        )
        .flags(&["small_order_key"])
        .refs(&[RULES]),
    );

    // --- schema stage
    let field_cases: [(&str, &str, Option<Value>, Reason, &'static str); 3] = [
        (
            "payer of 31 bytes (base58)",
            "payer",
            s(base58_encode(&[0x11; 31])),
            Reason::AddressInvalid,
            "field_encoding",
        ),
        (
            "amount 2^64",
            "amount",
            s("18446744073709551616".into()),
            Reason::UintOutOfRange,
            "range",
        ),
        (
            "ref in upper-case hex",
            "ref",
            s(format!("0x{}", hex(&base.reference).to_uppercase())),
            Reason::RefInvalid,
            "field_encoding",
        ),
    ];
    for (comment, field, value, reason, flag) in field_cases {
        f.case(
            g,
            Case::new(
                comment,
                header_input(&header_of(&with_mandate_field(&env_json, field, value))),
                inv(reason),
            )
            .flags(&[flag])
            .refs(&[FIELDS, TYPES]),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Group 6: the solana-mvp profile

fn solana_mvp(f: &mut FileBuilder) -> Result<(), String> {
    let g = f.group("solana-mvp", Kind::VerifyMandate, edkit::sol_context(Some(NOW)));
    let inv = Exp::Invalid;
    let sign_text = |signer: &str, text: &str| base58_encode(&ed25519::sign(&ed_seed(signer), text.as_bytes()));

    let base = edkit::sol_mandate("alice", 0, NOW + 600);
    let good = mvp_envelope(&base, &sign_text("alice", &mvp_text(&base, &base.reference)));
    f.case(
        g,
        Case::new("valid MVP mandate", header_input(&good.encode()), Exp::Valid)
            .flags(&["valid"])
            .refs(&[PROFILE_SOL, ENV_MVP]),
    );

    // (ref, ref as JSON.stringify writes it, comment)
    let refs: [(&str, &str, &str); 6] = [
        (
            "say \"hi\" / bye",
            "say \\\"hi\\\" / bye",
            "ref with double quotes (escaped \\\") and a slash (written as is)",
        ),
        ("C:\\temp\\x", "C:\\\\temp\\\\x", "ref with backslashes (escaped \\\\)"),
        (
            "tab\there\n\u{1}\u{1f}\u{7f}",
            "tab\\there\\n\\u0001\\u001f\u{7f}",
            "ref with control characters: TAB and LF as \\t and \\n, U+0001 and U+001F as \\u0001 and \\u001f (lowercase hex), DEL written as is",
        ),
        (
            "café ☕ 東京\u{2028}",
            "café ☕ 東京\u{2028}",
            "ref with non-ASCII characters and U+2028, all written as UTF-8",
        ),
        (
            "ref-0123456789abcdef0123456789ab",
            "ref-0123456789abcdef0123456789ab",
            "ref of exactly 32 bytes (the maximum)",
        ),
        (
            "éééééééééé0123456789ab",
            "éééééééééé0123456789ab",
            "ref of 22 characters and exactly 32 UTF-8 bytes: the limit counts bytes",
        ),
    ];
    let mut quoted = None;
    for (i, (reference, escaped, comment)) in refs.iter().enumerate() {
        let mut m = edkit::sol_mandate("alice", 10 + i as u64, NOW + 600);
        m.reference = (*reference).to_owned();
        if m.reference.len() > 32 {
            return Err(format!("ref {reference:?} is longer than 32 bytes"));
        }
        let env = mvp_envelope(&m, &sign_text("alice", &mvp_text(&m, escaped)));
        f.case(
            g,
            Case::new(comment.to_string(), header_input(&env.encode()), Exp::Valid)
                .flags(&["valid", "ref_escaping"])
                .refs(&[PROFILE_SOL]),
        );
        if i == 0 {
            quoted = Some((m, env.signature));
        }
    }
    let (m, sig) = quoted.ok_or("no quoted ref")?;
    let text = format!(
        r#"{{ "mandate" : {{"ref":"say \u0022hi\u0022 \/ bye","deadline":{},"nonce":"{}","amount":"{}","payee":"{}","token":"{}","payer":"{}"}}, "payerSig":"{sig}"}}"#,
        m.deadline, m.nonce, m.amount, m.payee, m.token, m.payer
    );
    f.case(
        g,
        Case::new(
            "the quoted-ref mandate received with members reversed, whitespace, and the ref written with \\u0022 and \\/ escapes: the signed text is rebuilt, so it is still valid",
            header_input(&header_of_text(&text)),
            Exp::Valid,
        )
        .flags(&["valid", "member_order", "ref_escaping"])
        .refs(&[PROFILE_SOL]),
    );
    let env_json = good.to_json();
    f.case(
        g,
        Case::new(
            "the valid mandate received with its members in reverse order: the signed bytes always use the fixed MVP order",
            header_input(&header_of(&reverse_mandate(&env_json))),
            Exp::Valid,
        )
        .flags(&["valid", "member_order"])
        .refs(&[PROFILE_SOL]),
    );

    // --- signature checks
    let sorted = format!(
        r#"{{"amount":"{}","deadline":{},"nonce":"{}","payee":"{}","payer":"{}","ref":"{}","token":"{}"}}"#,
        base.amount, base.deadline, base.nonce, base.payee, base.payer, base.reference, base.token
    );
    let sorted_mandate = aep2::json::parse(&sorted, &aep2::json::Limits::AEP2).map_err(|e| e.to_string())?;
    let text = aep2::json::to_compact(&Value::Object(
        Object::new()
            .with("mandate", sorted_mandate)
            .with("payerSig", Value::String(sign_text("alice", &sorted))),
    ));
    f.case(
        g,
        Case::new(
            "the wallet signed the mandate text with its members sorted by name (and sent it in that order): the verifier checks the signature over the fixed MVP order",
            header_input(&header_of_text(&text)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_primitive", "member_order"])
        .refs(&[PROFILE_SOL]),
    );
    let sig = ed25519::sign(&ed_seed("alice"), mvp_text(&base, &base.reference).as_bytes());
    let (r, s_bytes) = split(&sig);
    let env = SignedMandate {
        signature: base58_encode(&sig_of(&r, &add_le(&s_bytes, &L_BYTES))),
        ..good.clone()
    };
    f.case(
        g,
        Case::new(
            "the valid signature with S + L",
            header_input(&env.encode()),
            inv(Reason::SignatureScalarOutOfRange),
        )
        .flags(&["s_out_of_range"])
        .refs(&[RULES]),
    );
    let env = mvp_envelope(&base, &sign_text("bob", &mvp_text(&base, &base.reference)));
    f.case(
        g,
        Case::new(
            "signed by a key other than the payer's",
            header_input(&env.encode()),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_key"])
        .refs(&[RULES]),
    );
    let s = |x: String| Some(Value::String(x));
    f.case(
        g,
        Case::new(
            "payee changed after signing",
            header_input(&header_of(&with_mandate_field(
                &env_json,
                "payee",
                s(edkit::pubkey("mallory").to_string()),
            ))),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["modified_message"])
        .refs(&[PROFILE_SOL, RULES]),
    );

    // --- schema stage
    let field_cases: [(&str, &str, Option<Value>, Reason); 5] = [
        (
            "ref of 33 ASCII bytes",
            "ref",
            s("ref-0123456789abcdef0123456789abc".into()),
            Reason::RefInvalid,
        ),
        (
            "ref of 22 characters but 33 UTF-8 bytes",
            "ref",
            s("ééééééééééé0123456789a".into()),
            Reason::RefInvalid,
        ),
        ("empty ref", "ref", s(String::new()), Reason::RefInvalid),
        (
            "unknown member \"memo\" in the mandate",
            "memo",
            s("coffee".into()),
            Reason::UnknownField,
        ),
        (
            "amount as a JSON number",
            "amount",
            Some(Value::Number(base.amount.to_string())),
            Reason::FieldType,
        ),
    ];
    for (comment, field, value, reason) in field_cases {
        f.case(
            g,
            Case::new(
                comment,
                header_input(&header_of(&with_mandate_field(&env_json, field, value))),
                inv(reason),
            )
            .flags(&["field_encoding"])
            .refs(&[PROFILE_SOL, TYPES]),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The native signed bytes, built from the spec text: tag, zero byte, JCS with the members
/// sorted by name (domain: network, wallet; mandate: amount, deadline, nonce, payee, payer,
/// ref, token). No value needs escaping.
fn native_signed_bytes(m: &Ed25519Mandate, d: &Ed25519Domain) -> Vec<u8> {
    let jcs = format!(
        r#"{{"domain":{{"network":"{}","wallet":"{}"}},"mandate":{{"amount":"{}","deadline":{},"nonce":"{}","payee":"{}","payer":"{}","ref":"{}","token":"{}"}}}}"#,
        d.network,
        d.wallet,
        m.amount,
        m.deadline,
        m.nonce,
        m.payee,
        m.payer,
        hex_encode_0x(&m.reference),
        m.token
    );
    let mut out = b"AEP2/ed25519/mandate/v1".to_vec();
    out.push(0);
    out.extend_from_slice(jcs.as_bytes());
    out
}

/// The solana-mvp signed text in the fixed MVP order, with `ref` already escaped by hand.
fn mvp_text(m: &SolanaMvpMandate, ref_escaped: &str) -> String {
    format!(
        r#"{{"payer":"{}","token":"{}","payee":"{}","amount":"{}","nonce":"{}","deadline":{},"ref":"{ref_escaped}"}}"#,
        m.payer, m.token, m.payee, m.amount, m.nonce, m.deadline
    )
}

fn native_envelope(m: &Ed25519Mandate, d: &Ed25519Domain, signature: &str) -> SignedMandate {
    SignedMandate {
        form: EnvelopeForm::Native,
        mandate: Mandate::Ed25519(m.clone()),
        domain: Some(Domain::Ed25519(d.clone())),
        signature: signature.to_owned(),
        lanes: Vec::new(),
    }
}

fn mvp_envelope(m: &SolanaMvpMandate, signature: &str) -> SignedMandate {
    SignedMandate {
        form: EnvelopeForm::Mvp,
        mandate: Mandate::SolanaMvp(m.clone()),
        domain: None,
        signature: signature.to_owned(),
        lanes: Vec::new(),
    }
}

fn reverse_mandate(env: &Value) -> Value {
    let Value::Object(top) = env else {
        return env.clone();
    };
    let mut top = top.clone();
    if let Some(Value::Object(m)) = top.get("mandate") {
        let mut rev = Object::new();
        let members: Vec<(String, Value)> = m.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
        for (k, v) in members.into_iter().rev() {
            rev.insert(k, v);
        }
        top.insert("mandate", Value::Object(rev));
    }
    Value::Object(top)
}

/// Tries `make(0)`, `make(1)`, … until `accept` returns a value (at most 4096 tries).
fn grind<T, U>(make: impl Fn(u32) -> T, accept: impl Fn(&T) -> Option<U>) -> Result<(T, U), String> {
    for i in 0..4096u32 {
        let candidate = make(i);
        if let Some(u) = accept(&candidate) {
            return Ok((candidate, u));
        }
    }
    Err("grinding found no candidate".into())
}

/// `k = SHA-512(R ‖ A ‖ M) mod L`.
fn challenge(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
    let wide: [u8; 64] = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(msg)
        .finalize()
        .into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// The secret scalar of an RFC 8032 seed (SHA-512, first half, clamped), reduced mod L.
fn secret_scalar(seed: &[u8; 32]) -> Scalar {
    let h: [u8; 64] = Sha512::digest(seed).into();
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    Scalar::from_bytes_mod_order(a)
}

/// A scalar derived from a public label.
fn label_scalar(label: &str) -> Scalar {
    let wide: [u8; 64] = Sha512::digest(format!("aep2-vectors/ed25519-scalar/{label}").as_bytes()).into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn decompress(bytes: &[u8; 32]) -> Result<EdwardsPoint, String> {
    CompressedEdwardsY(*bytes)
        .decompress()
        .ok_or_else(|| format!("{} is not a point", hex(bytes)))
}

fn split(sig: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    s.copy_from_slice(&sig[32..]);
    (r, s)
}

fn sig_of(r: &[u8; 32], s: &[u8; 32]) -> [u8; 64] {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(r);
    sig[32..].copy_from_slice(s);
    sig
}

/// Little-endian addition (the inputs here are below 2^254, so nothing carries out).
fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = (v & 0xff) as u8;
        carry = v >> 8;
    }
    out
}

/// Lowercase hex without a prefix.
fn hex(bytes: &[u8]) -> String {
    hex_encode_0x(bytes)[2..].to_owned()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    hex_decode_0x(&format!("0x{s}")).ok_or_else(|| format!("{s:?} is not hex"))
}

fn unhex32(s: &str) -> Result<[u8; 32], String> {
    unhex(s)?.try_into().map_err(|_| format!("{s:?} is not 32 bytes"))
}

// ---------------------------------------------------------------------------------------------
// Group: byte lengths of an ed25519_raw triple (conformance.md#inputs)

fn raw_lengths(f: &mut FileBuilder, rfc: &J) -> Result<(), String> {
    let g = f.group("raw-lengths", Kind::Ed25519Raw, Default::default());
    let first = items(rfc, "vectors")?.first().ok_or("rfc8032-7.1.json: no vectors")?;
    let pk = unhex(text(first, "public_key")?)?;
    let msg = unhex(text(first, "message")?)?;
    let sig = unhex(text(first, "signature")?)?;
    let lengths = "conformance.md#inputs";
    let inv = Exp::Invalid;
    f.case(
        g,
        Case::new(
            "RFC 8032 TEST 1 with the public key cut to 31 bytes: a key that is not 32 bytes is address_invalid",
            raw(&pk[..31], &msg, &sig),
            inv(Reason::AddressInvalid),
        )
        .flags(&["lengths"])
        .refs(&[lengths, RULES]),
    );
    let mut long_key = pk.clone();
    long_key.push(0);
    f.case(
        g,
        Case::new(
            "RFC 8032 TEST 1 with a 33-byte public key and the signature cut to 63 bytes: the key's length is checked first",
            raw(&long_key, &msg, &sig[..63]),
            inv(Reason::AddressInvalid),
        )
        .flags(&["lengths", "check_order"])
        .refs(&[lengths, RULES]),
    );
    Ok(())
}

fn raw(pk: &[u8], msg: &[u8], sig: &[u8]) -> J {
    json!({ "publicKey": hex(pk), "message": hex(msg), "signature": hex(sig) })
}

fn load(repo_root: &Path, name: &str) -> Result<J, String> {
    let path = repo_root.join("crates/aep2-vectors/data").join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn items<'a>(v: &'a J, key: &str) -> Result<&'a Vec<J>, String> {
    v.get(key)
        .and_then(J::as_array)
        .ok_or_else(|| format!("data: {key} is not an array"))
}

fn text<'a>(v: &'a J, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(J::as_str)
        .ok_or_else(|| format!("data: {key} is not a string"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::check::{answer, judge};
    use curve25519_dalek::traits::IsIdentity as _;

    fn repo_root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn bytes_of(t: &crate::model::TestCase, k: &str) -> Vec<u8> {
        unhex(t.input[k].as_str().unwrap()).unwrap()
    }

    /// Whether the only defect of a raw triple is a torsion component on A or R (both decode,
    /// are canonical and not of small order, S < L), and whether then the cofactored equation
    /// `[8]([S]B - R - [k]A) = identity` holds, as a ZIP-215 verifier computes it.
    fn torsion_only_and_cofactored(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        let (r_bytes, s_bytes) = split(sig);
        let good_point = |b: &[u8; 32]| {
            CompressedEdwardsY(*b)
                .decompress()
                .filter(|p| p.compress().to_bytes() == *b && !p.is_small_order())
        };
        let (Some(a), Some(r)) = (good_point(pk), good_point(&r_bytes)) else {
            return false;
        };
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        if a.is_torsion_free() && r.is_torsion_free() {
            return false;
        }
        let k = challenge(&r_bytes, pk, msg);
        let r_prime = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-a, &s);
        (r - r_prime).mul_by_cofactor().is_identity()
    }

    /// A lenient cofactorless verifier (no key, R or S checks), as ed25519-dalek's `verify`.
    fn lenient_verify(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        let (r_bytes, s_bytes) = split(sig);
        let Some(a) = CompressedEdwardsY(*pk).decompress() else {
            return false;
        };
        let s = Scalar::from_bytes_mod_order(s_bytes);
        let k = challenge(&r_bytes, pk, msg);
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-a, &s)
            .compress()
            .to_bytes()
            == r_bytes
    }

    #[test]
    fn ed25519_topic_matches_reference() {
        let file = generate(&repo_root()).unwrap();
        assert_eq!(file.topic, "ed25519");
        let mut failures = Vec::new();
        for (g, t) in file.cases() {
            let a = answer(g, t).unwrap();
            if let Err(e) = judge(t, &a) {
                failures.push(e);
            }
        }
        assert!(
            failures.is_empty(),
            "{} disagreements:\n{}",
            failures.len(),
            failures.join("\n")
        );
        let groups: Vec<&str> = file.test_groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(
            groups,
            [
                "rfc8032",
                "speccheck",
                "points",
                "weak-key-forgery",
                "weak-key-forgery-native",
                "native",
                "solana-mvp",
                "raw-lengths"
            ]
        );
        for (_, t) in file.cases() {
            for flag in &t.flags {
                assert!(file.notes.contains_key(flag), "{}: flag {flag} has no note", t.id);
            }
        }
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(
            generate(&repo_root()).unwrap().to_text(),
            generate(&repo_root()).unwrap().to_text()
        );
    }

    /// `compatResult: acceptable` exactly on the raw cases whose only defect is torsion and
    /// that a cofactored verifier accepts.
    #[test]
    fn compat_acceptable_iff_torsion_only_and_cofactored_accepts() {
        let file = generate(&repo_root()).unwrap();
        let mut acceptable = 0;
        for (g, t) in file.cases() {
            if g.kind != Kind::Ed25519Raw {
                assert!(t.compat_result.is_none(), "{}", t.id);
                continue;
            }
            // Triples of the wrong lengths are refused before any curve arithmetic.
            let (Ok(pk), Ok(sig)) = (
                <[u8; 32]>::try_from(bytes_of(t, "publicKey")),
                <[u8; 64]>::try_from(bytes_of(t, "signature")),
            ) else {
                assert!(t.compat_result.is_none(), "{}", t.id);
                continue;
            };
            let expect = torsion_only_and_cofactored(&pk, &bytes_of(t, "message"), &sig);
            assert_eq!(t.compat_result.is_some(), expect, "{}: {}", t.id, t.comment);
            acceptable += usize::from(expect);
        }
        assert_eq!(acceptable, 3 + 1 + 3);
    }

    /// The forgeries really are accepted by a lenient cofactorless verifier.
    #[test]
    fn weak_key_forgeries_fool_a_lenient_verifier() {
        let file = generate(&repo_root()).unwrap();
        let mut n = 0;
        for (g, t) in file.cases().filter(|(g, _)| g.group.starts_with("weak-key-forgery")) {
            let domain = crate::check::context_domain(&g.context).unwrap();
            let sm = SignedMandate::decode(t.input["header"].as_str().unwrap(), domain.profile()).unwrap();
            let msg = edkit::signed_bytes(&sm.mandate, &domain);
            let payer = match &sm.mandate {
                Mandate::Ed25519(m) => m.payer.0,
                Mandate::SolanaMvp(m) => m.payer.0,
                Mandate::Eip712(_) => unreachable!(),
            };
            let sig: [u8; 64] = aep2::codec::base58_decode(&sm.signature).unwrap();
            assert!(lenient_verify(&payer, &msg, &sig), "{}", t.id);
            n += 1;
        }
        assert_eq!(n, 6);
    }

    #[test]
    fn speccheck_scalars_are_where_the_comments_say() {
        let cases = load(&repo_root(), "ed25519-speccheck-cases.json").unwrap();
        let s_of = |i: usize| -> [u8; 32] {
            let sig: [u8; 64] = unhex(text(&cases[i], "signature").unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            split(&sig).1
        };
        // Case 6: L <= S < 2^253; case 7: S >= 2^253 but bit 255 clear.
        assert!(Option::<Scalar>::from(Scalar::from_canonical_bytes(s_of(6))).is_none());
        assert_eq!(s_of(6)[31] & 0xe0, 0);
        assert_ne!(s_of(7)[31] & 0xe0, 0);
        assert_eq!(s_of(7)[31] & 0x80, 0);
    }
}
