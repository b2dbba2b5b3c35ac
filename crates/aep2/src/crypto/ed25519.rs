//! Strict Ed25519 (RFC 8032) for the `ed25519` and `solana-mvp` profiles
//! (spec `aep2.md#ed25519-verification-rules`).
//!
//! Plain RFC 8032 leaves edge cases open, and libraries disagree on them: weak (small-order)
//! keys, non-canonical point encodings, S ≥ L, points with a torsion component, cofactored
//! against cofactorless equations. A mandate moves money, so wallet, merchant and facilitator
//! must reach the same verdict on every input, and a rejection must say which rule failed.
//! Verification therefore checks these rules itself, in this order, and the first failure
//! is the result:
//!
//! 1. Lengths (32-byte key, 64-byte signature) are enforced by the types; the caller maps
//!    wrong lengths to `address_invalid` / `signature_length`.
//! 2. Public key A ([`Ed25519PublicKey::validate`]): decodes to a curve point
//!    ([`Reason::KeyInvalid`]), re-encodes to exactly the same bytes
//!    ([`Reason::KeyNonCanonical`]), is not of small order ([`Reason::KeySmallOrder`]),
//!    and lies in the prime-order subgroup ([`Reason::KeyMixedOrder`]).
//! 3. Scalar S < L ([`Reason::SignatureScalarOutOfRange`]); otherwise S + L would be a second
//!    valid signature on the same message.
//! 4. Commitment R: the same four point rules as A, with the `signature_point_*` codes.
//! 5. The cofactorless equation `[S]B = R + [k]A` with `k = SHA-512(R ‖ A ‖ M) mod L` over
//!    the bytes as received, checked by recomputing `R' = [S]B − [k]A` and comparing its
//!    encoding with the received R bytes ([`Reason::SignatureInvalid`]).
//!
//! Because A and R are both torsion-free after rules 2 and 4, the cofactored, cofactorless and
//! batch equations all agree on every input that reaches rule 5, so no implementation choice
//! left open by RFC 8032 can change a verdict. Honest signers (including this module's
//! [`sign`], `ed25519-dalek` and tweetnacl) never produce inputs that rules 2–4 reject.
//!
//! Verification is variable-time: it only ever handles public data. Signing is
//! `ed25519-dalek`'s RFC 8032 signing.

use core::fmt;
use core::hash::{Hash, Hasher};
use std::collections::{HashMap, VecDeque};

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity as _;
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest as _, Sha512};

use crate::reason::Reason;

/// Length in bytes of an encoded Ed25519 public key.
pub const PUBLIC_KEY_LENGTH: usize = 32;

/// Length in bytes of an Ed25519 signature (R ‖ S).
pub const SIGNATURE_LENGTH: usize = 64;

/// Length in bytes of an Ed25519 secret seed (RFC 8032 "private key").
pub const SEED_LENGTH: usize = 32;

/// A public key that passed the key rules (decodable, canonical, not small order, torsion-free).
///
/// Holding one proves rule 2 was checked, so [`verify`] can skip it; validation costs a
/// scalar multiplication (the torsion check), which is why keys are validated once and reused
/// (see [`KeyCache`]). Equality and hashing use the 32 encoded bytes, which determine the point.
#[derive(Clone, Copy)]
pub struct Ed25519PublicKey {
    bytes: [u8; PUBLIC_KEY_LENGTH],
    point: EdwardsPoint,
}

impl Ed25519PublicKey {
    /// Applies the key rules to an encoded public key A.
    ///
    /// Errors, in check order: [`Reason::KeyInvalid`] (no curve point has this encoding),
    /// [`Reason::KeyNonCanonical`] (the point's canonical encoding differs from `bytes`),
    /// [`Reason::KeySmallOrder`] (a weak key: a "signature" would verify for any message),
    /// [`Reason::KeyMixedOrder`] (the point has a torsion component no honest key has).
    pub fn validate(bytes: &[u8; PUBLIC_KEY_LENGTH]) -> Result<Self, Reason> {
        let point = decode_strict(bytes).map_err(PointDefect::key_reason)?;
        Ok(Self { bytes: *bytes, point })
    }

    /// The key's 32-byte encoding, exactly as validated (and hashed into `k`).
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LENGTH] {
        &self.bytes
    }
}

impl PartialEq for Ed25519PublicKey {
    fn eq(&self, other: &Self) -> bool {
        // A validated key's encoding is canonical, so equal bytes <=> equal points.
        self.bytes == other.bytes
    }
}

impl Eq for Ed25519PublicKey {}

impl Hash for Ed25519PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519PublicKey(")?;
        for b in &self.bytes {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// Verifies `sig` over `msg` for an already validated key (rules 3–5).
///
/// Errors, in check order: [`Reason::SignatureScalarOutOfRange`] (S ≥ L),
/// [`Reason::SignaturePointInvalid`], [`Reason::SignaturePointNonCanonical`],
/// [`Reason::SignaturePointSmallOrder`], [`Reason::SignaturePointMixedOrder`] (R fails the
/// point rules), [`Reason::SignatureInvalid`] (the equation does not hold).
pub fn verify(key: &Ed25519PublicKey, msg: &[u8], sig: &[u8; SIGNATURE_LENGTH]) -> Result<(), Reason> {
    let (r_bytes, s_bytes) = split_signature(sig);

    // Rule 3: S must be the canonical (reduced) scalar, else S + L is a second signature.
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or(Reason::SignatureScalarOutOfRange)?;

    // Rules 4 and 5, ordered for speed with identical verdicts. R' = [S]B - [k]A is
    // computed first. If its encoding equals the received R bytes, R is canonical (it is a
    // compressor's output) and torsion-free (A and B are), so of rule 4 only "small order"
    // can still apply, and the only torsion-free small-order point is the identity. If the
    // encodings differ, rule 4 runs in full so the rejection names the right fault; only
    // then is the cost of the torsion check paid, and only on a signature that fails anyway.
    let k = challenge(&r_bytes, &key.bytes, msg);
    let minus_a = -key.point;
    let r_prime = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &minus_a, &s);
    if r_prime.compress().to_bytes() == r_bytes {
        if r_prime.is_identity() {
            return Err(Reason::SignaturePointSmallOrder);
        }
        return Ok(());
    }
    decode_strict(&r_bytes).map_err(PointDefect::signature_reason)?;
    Err(Reason::SignatureInvalid)
}

/// Validates an encoded key (rule 2) and then verifies `sig` over `msg` (rules 3–5).
///
/// Use [`KeyCache`] and [`verify`] instead when the same keys recur.
pub fn verify_bytes(key: &[u8; PUBLIC_KEY_LENGTH], msg: &[u8], sig: &[u8; SIGNATURE_LENGTH]) -> Result<(), Reason> {
    let key = Ed25519PublicKey::validate(key)?;
    verify(&key, msg, sig)
}

/// Signs `msg` with the 32-byte secret seed (RFC 8032 §5.1.6, deterministic).
///
/// Byte-identical to tweetnacl's `sign.detached` and Solana wallets for the same seed, so
/// vectors produced here match what real payers send.
pub fn sign(seed: &[u8; SEED_LENGTH], msg: &[u8]) -> [u8; SIGNATURE_LENGTH] {
    SigningKey::from_bytes(seed).sign(msg).to_bytes()
}

/// The public key A of a 32-byte secret seed (RFC 8032 §5.1.5).
///
/// The result always passes [`Ed25519PublicKey::validate`]: the clamped secret scalar is a
/// non-zero multiple of the cofactor, so A is a non-identity point of the prime-order subgroup.
pub fn public_key_from_seed(seed: &[u8; SEED_LENGTH]) -> [u8; PUBLIC_KEY_LENGTH] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// Bounded cache of validated keys.
///
/// Validation costs a torsion check (a full scalar multiplication), and merchants see the same
/// payers repeatedly. Only successes are cached; a failing key is re-checked each time, which
/// keeps attacker-chosen garbage from evicting real payers. When full, the oldest entry is
/// evicted (FIFO), so the cache never holds more than `capacity` keys.
#[derive(Debug)]
pub struct KeyCache {
    capacity: usize,
    keys: HashMap<[u8; PUBLIC_KEY_LENGTH], Ed25519PublicKey>,
    order: VecDeque<[u8; PUBLIC_KEY_LENGTH]>,
}

impl KeyCache {
    /// An empty cache holding at most `capacity` keys (0 disables caching).
    ///
    /// Storage grows on demand, so a large capacity costs nothing up front.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            keys: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Returns the cached validated key, or validates `bytes` (rule 2) and caches the success.
    pub fn get_or_validate(&mut self, bytes: &[u8; PUBLIC_KEY_LENGTH]) -> Result<Ed25519PublicKey, Reason> {
        if let Some(key) = self.get(bytes) {
            return Ok(key);
        }
        let key = Ed25519PublicKey::validate(bytes)?;
        self.insert(key);
        Ok(key)
    }

    /// The cached key for `bytes`, if any.
    ///
    /// With [`KeyCache::insert`] this lets a shared cache validate outside its lock, so one
    /// slow validation of a new key does not stall verifications of known keys.
    pub fn get(&self, bytes: &[u8; PUBLIC_KEY_LENGTH]) -> Option<Ed25519PublicKey> {
        self.keys.get(bytes).copied()
    }

    /// Caches a validated key, evicting the oldest entries beyond capacity.
    pub fn insert(&mut self, key: Ed25519PublicKey) {
        if self.capacity == 0 || self.keys.contains_key(&key.bytes) {
            return;
        }
        while self.keys.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.keys.remove(&oldest);
                }
                None => break,
            }
        }
        self.keys.insert(key.bytes, key);
        self.order.push_back(key.bytes);
    }

    /// The maximum number of keys the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of keys currently cached.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the cache holds no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Which point rule an encoding failed; mapped to the key or signature reason codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PointDefect {
    Undecodable,
    NonCanonical,
    SmallOrder,
    MixedOrder,
}

impl PointDefect {
    fn key_reason(self) -> Reason {
        match self {
            PointDefect::Undecodable => Reason::KeyInvalid,
            PointDefect::NonCanonical => Reason::KeyNonCanonical,
            PointDefect::SmallOrder => Reason::KeySmallOrder,
            PointDefect::MixedOrder => Reason::KeyMixedOrder,
        }
    }

    fn signature_reason(self) -> Reason {
        match self {
            PointDefect::Undecodable => Reason::SignaturePointInvalid,
            PointDefect::NonCanonical => Reason::SignaturePointNonCanonical,
            PointDefect::SmallOrder => Reason::SignaturePointSmallOrder,
            PointDefect::MixedOrder => Reason::SignaturePointMixedOrder,
        }
    }
}

/// Decodes a point and applies the four point rules in order.
///
/// The re-encoding comparison catches every alternative encoding (y ≥ p, and x = 0 with the
/// sign bit set), whatever leniency the decoder has. Small order is checked before torsion
/// because every non-identity small-order point also fails the torsion check, and the more
/// specific code is the useful one.
fn decode_strict(bytes: &[u8; 32]) -> Result<EdwardsPoint, PointDefect> {
    let point = CompressedEdwardsY(*bytes)
        .decompress()
        .ok_or(PointDefect::Undecodable)?;
    if point.compress().as_bytes() != bytes {
        return Err(PointDefect::NonCanonical);
    }
    if point.is_small_order() {
        return Err(PointDefect::SmallOrder);
    }
    if !point.is_torsion_free() {
        return Err(PointDefect::MixedOrder);
    }
    Ok(point)
}

/// `k = SHA-512(R ‖ A ‖ M) mod L`, over the bytes as received.
fn challenge(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
    let wide: [u8; 64] = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(msg)
        .finalize()
        .into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn split_signature(sig: &[u8; SIGNATURE_LENGTH]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    s.copy_from_slice(&sig[32..]);
    (r, s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};

    fn hex_vec(s: &str) -> Vec<u8> {
        assert!(s.len().is_multiple_of(2), "odd hex length");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        hex_vec(s).try_into().unwrap()
    }

    /// RFC 8032 §7.1: (seed, public key, message, signature).
    const RFC8032: &[(&str, &str, &str, &str)] = &[
        // TEST 1
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        // TEST 2
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        // TEST 3
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
        // TEST SHA(abc): the message is SHA-512("abc").
        (
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
        ),
    ];

    /// L, the prime order of the basepoint, little-endian.
    const L_BYTES: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    ];

    fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(a[i]) + u16::from(b[i]) + carry;
            out[i] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0);
        out
    }

    fn sig_from(r: &[u8; 32], s: &[u8; 32]) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(r);
        sig[32..].copy_from_slice(s);
        sig
    }

    /// A deterministic torsion-free point: `[SHA-512(label) mod L]B`.
    fn prime_order_point(label: &[u8]) -> EdwardsPoint {
        let wide: [u8; 64] = Sha512::digest(label).into();
        EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order_wide(&wide))
    }

    fn rfc_test_1() -> ([u8; 32], [u8; 32], [u8; 64]) {
        let (seed, pk, _, sig) = RFC8032[0];
        (hex(seed), hex(pk), hex(sig))
    }

    #[test]
    fn rfc8032_known_answers() {
        for (seed, pk, msg, sig) in RFC8032 {
            let seed: [u8; 32] = hex(seed);
            let pk: [u8; 32] = hex(pk);
            let msg = hex_vec(msg);
            let sig: [u8; 64] = hex(sig);
            assert_eq!(public_key_from_seed(&seed), pk);
            assert_eq!(sign(&seed, &msg), sig);
            assert_eq!(verify_bytes(&pk, &msg, &sig), Ok(()));
            let key = Ed25519PublicKey::validate(&pk).unwrap();
            assert_eq!(key.as_bytes(), &pk);
            assert_eq!(verify(&key, &msg, &sig), Ok(()));
        }
    }

    #[test]
    fn sha_abc_message_is_sha512_of_abc() {
        let digest: [u8; 64] = Sha512::digest(b"abc").into();
        assert_eq!(digest.to_vec(), hex_vec(RFC8032[3].2));
    }

    #[test]
    fn flipped_message_bits_fail() {
        let (seed, pk, msg, sig) = RFC8032[2];
        let (pk, msg, sig): ([u8; 32], Vec<u8>, [u8; 64]) = (hex(pk), hex_vec(msg), hex(sig));
        assert_eq!(public_key_from_seed(&hex(seed)), pk);
        for bit in 0..msg.len() * 8 {
            let mut m = msg.clone();
            m[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(verify_bytes(&pk, &m, &sig), Err(Reason::SignatureInvalid), "bit {bit}");
        }
        let mut longer = msg.clone();
        longer.push(0);
        assert_eq!(verify_bytes(&pk, &longer, &sig), Err(Reason::SignatureInvalid));
    }

    #[test]
    fn flipped_signature_or_key_bits_fail() {
        // A sample of positions (low, high and sign bits of R, S and A): unoptimised curve
        // arithmetic is slow, and every position takes the same code path.
        let (_, pk, sig) = rfc_test_1();
        for bit in [0, 1, 7, 8, 100, 254, 255, 256, 257, 300, 400, 503, 508, 511] {
            let mut s = sig;
            s[bit / 8] ^= 1 << (bit % 8);
            assert!(verify_bytes(&pk, b"", &s).is_err(), "signature bit {bit}");
        }
        for bit in [0, 1, 8, 128, 254, 255] {
            let mut k = pk;
            k[bit / 8] ^= 1 << (bit % 8);
            assert!(verify_bytes(&k, b"", &sig).is_err(), "key bit {bit}");
        }
    }

    #[test]
    fn small_order_keys_rejected() {
        for (i, t) in EIGHT_TORSION.iter().enumerate() {
            let enc = t.compress().to_bytes();
            assert_eq!(
                Ed25519PublicKey::validate(&enc),
                Err(Reason::KeySmallOrder),
                "torsion {i}"
            );
        }
        // Why it matters: with A = R = identity and S = 0 the cofactorless equation holds for
        // every message, so a weak key "signs" everything.
        let identity = EIGHT_TORSION[0].compress().to_bytes();
        let forged = sig_from(&identity, &[0u8; 32]);
        assert_eq!(
            verify_bytes(&identity, b"pay 1000000", &forged),
            Err(Reason::KeySmallOrder)
        );
    }

    #[test]
    fn small_order_r_rejected() {
        let (_, pk, _) = rfc_test_1();
        for (i, t) in EIGHT_TORSION.iter().enumerate() {
            let sig = sig_from(&t.compress().to_bytes(), &[1u8; 32]);
            assert_eq!(
                verify_bytes(&pk, b"", &sig),
                Err(Reason::SignaturePointSmallOrder),
                "torsion {i}"
            );
        }
    }

    /// The six alternative encodings of small-order points (C2SP/CCTV ed25519 README), plus
    /// y + p encodings of mixed-order points (y = 3), with sign bit clear and set.
    const NON_CANONICAL: &[&str] = &[
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "0100000000000000000000000000000000000000000000000000000000000080",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ];

    #[test]
    fn non_canonical_encodings_rejected() {
        let (_, pk, _) = rfc_test_1();
        for enc in NON_CANONICAL {
            let enc: [u8; 32] = hex(enc);
            assert_eq!(Ed25519PublicKey::validate(&enc), Err(Reason::KeyNonCanonical));
            let sig = sig_from(&enc, &[1u8; 32]);
            assert_eq!(verify_bytes(&pk, b"", &sig), Err(Reason::SignaturePointNonCanonical));
        }
        // The basepoint with the sign bit flipped is -B: a different, canonical point.
        let mut minus_b = ED25519_BASEPOINT_POINT.compress().to_bytes();
        minus_b[31] ^= 0x80;
        assert!(Ed25519PublicKey::validate(&minus_b).is_ok());
    }

    #[test]
    fn undecodable_encodings_rejected() {
        let (_, pk, _) = rfc_test_1();
        // y = 2 is not the y-coordinate of any curve point (nor is y = 2 + p).
        let mut y2 = [0u8; 32];
        y2[0] = 2;
        assert_eq!(Ed25519PublicKey::validate(&y2), Err(Reason::KeyInvalid));
        let sig = sig_from(&y2, &[1u8; 32]);
        assert_eq!(verify_bytes(&pk, b"", &sig), Err(Reason::SignaturePointInvalid));
    }

    #[test]
    fn mixed_order_points_rejected() {
        let (seed, pk, _) = rfc_test_1();
        let p = prime_order_point(b"aep2 mixed-order test");
        for t in &EIGHT_TORSION[1..] {
            let enc = (p + t).compress().to_bytes();
            assert_eq!(Ed25519PublicKey::validate(&enc), Err(Reason::KeyMixedOrder));
        }
        // A genuine signature's R plus a torsion point: R is mixed order.
        let good = sign(&seed, b"m");
        let (r, s) = split_signature(&good);
        let r = CompressedEdwardsY(r).decompress().unwrap();
        let bad_r = (r + EIGHT_TORSION[4]).compress().to_bytes();
        assert_eq!(
            verify_bytes(&pk, b"m", &sig_from(&bad_r, &s)),
            Err(Reason::SignaturePointMixedOrder)
        );
    }

    #[test]
    fn mixed_order_key_satisfying_the_equation_is_still_rejected() {
        // A' = [a]B + T2 with T2 of order 2. When k is even, [k]T2 vanishes and the
        // cofactorless equation holds for S = r + k·a: only the torsion check rejects
        // (the situation of speccheck case 3).
        let a = Scalar::from_bytes_mod_order_wide(&Sha512::digest(b"aep2 secret a").into());
        let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(b"aep2 nonce r").into());
        let a_mixed = (EdwardsPoint::mul_base(&a) + EIGHT_TORSION[4]).compress().to_bytes();
        let r_enc = EdwardsPoint::mul_base(&r).compress().to_bytes();
        let mut checked = 0;
        for i in 0u32..32 {
            let msg = i.to_le_bytes();
            let k = challenge(&r_enc, &a_mixed, &msg);
            if k.as_bytes()[0] & 1 == 1 {
                continue;
            }
            let s = r + k * a;
            let a_point = CompressedEdwardsY(a_mixed).decompress().unwrap();
            let r_prime = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-a_point, &s);
            assert_eq!(r_prime.compress().to_bytes(), r_enc, "equation holds");
            let sig = sig_from(&r_enc, &s.to_bytes());
            assert_eq!(verify_bytes(&a_mixed, &msg, &sig), Err(Reason::KeyMixedOrder));
            checked += 1;
        }
        assert!(checked > 0);
    }

    #[test]
    fn s_out_of_range_rejected() {
        let (_, pk, sig) = rfc_test_1();
        let r: [u8; 32] = sig[..32].try_into().unwrap();
        let s: [u8; 32] = sig[32..].try_into().unwrap();
        let s_plus_l = add_le(&s, &L_BYTES);
        // S + L reduces to S, so without rule 3 it would verify: a second signature.
        assert_eq!(Scalar::from_bytes_mod_order(s_plus_l), Scalar::from_bytes_mod_order(s));
        assert_eq!(
            verify_bytes(&pk, b"", &sig_from(&r, &s_plus_l)),
            Err(Reason::SignatureScalarOutOfRange)
        );
        assert_eq!(
            verify_bytes(&pk, b"", &sig_from(&r, &L_BYTES)),
            Err(Reason::SignatureScalarOutOfRange)
        );
        assert_eq!(
            verify_bytes(&pk, b"", &sig_from(&r, &[0xff; 32])),
            Err(Reason::SignatureScalarOutOfRange)
        );
        // L - 1 is in range (the equation then fails).
        let mut l_minus_1 = L_BYTES;
        l_minus_1[0] -= 1;
        assert_eq!(
            verify_bytes(&pk, b"", &sig_from(&r, &l_minus_1)),
            Err(Reason::SignatureInvalid)
        );
    }

    #[test]
    fn check_order_is_key_then_s_then_r_then_equation() {
        let (_, pk, _) = rfc_test_1();
        let mut y2 = [0u8; 32];
        y2[0] = 2;
        let bad_everything = sig_from(&y2, &[0xff; 32]);
        assert_eq!(verify_bytes(&y2, b"", &bad_everything), Err(Reason::KeyInvalid));
        assert_eq!(
            verify_bytes(&pk, b"", &bad_everything),
            Err(Reason::SignatureScalarOutOfRange)
        );
        let bad_r = sig_from(&y2, &[0u8; 32]);
        assert_eq!(verify_bytes(&pk, b"", &bad_r), Err(Reason::SignaturePointInvalid));
    }

    #[test]
    fn honest_signatures_verify_and_agree_with_dalek_verify_strict() {
        use ed25519_dalek::Verifier as _;
        for i in 0u8..8 {
            let seed = [i; 32];
            let msg = [i; 100];
            let msg = &msg[..usize::from(i) * 3];
            let sig = sign(&seed, msg);
            let pk = public_key_from_seed(&seed);
            assert_eq!(verify_bytes(&pk, msg, &sig), Ok(()));
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).unwrap();
            let dsig = ed25519_dalek::Signature::from_bytes(&sig);
            assert!(vk.verify_strict(msg, &dsig).is_ok());
            assert!(vk.verify(msg, &dsig).is_ok());
        }
    }

    /// ed25519-speccheck `cases.json` (novifinancial/ed25519-speccheck@65519336) with the
    /// reason our rules give; the key is checked first, so it decides most cases.
    const SPECCHECK: &[(&str, &str, &str, Reason)] = &[
        (
            "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000",
            Reason::KeySmallOrder,
        ),
        (
            "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
            Reason::KeySmallOrder,
        ),
        (
            "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
            Reason::KeyMixedOrder,
        ),
        (
            "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
            Reason::KeyMixedOrder,
        ),
        (
            "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
            Reason::KeyMixedOrder,
        ),
        (
            "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
            Reason::KeyMixedOrder,
        ),
        (
            "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
            "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
            "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514",
            Reason::SignatureScalarOutOfRange,
        ),
        (
            "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
            "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
            "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22",
            Reason::SignatureScalarOutOfRange,
        ),
        (
            "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f",
            Reason::KeyMixedOrder,
        ),
        (
            "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908",
            Reason::KeyMixedOrder,
        ),
        (
            "e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
            Reason::KeyNonCanonical,
        ),
        (
            "39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
            Reason::KeyNonCanonical,
        ),
    ];

    #[test]
    fn speccheck_cases_all_rejected_with_specific_codes() {
        for (i, (msg, pk, sig, want)) in SPECCHECK.iter().enumerate() {
            let got = verify_bytes(&hex(pk), &hex_vec(msg), &hex(sig));
            assert_eq!(got, Err(*want), "speccheck case {i}");
        }
    }

    #[test]
    fn key_cache_is_bounded() {
        let mut cache = KeyCache::new(4);
        assert!(cache.is_empty());
        assert_eq!(cache.capacity(), 4);
        let keys: Vec<[u8; 32]> = (0u8..10).map(|i| public_key_from_seed(&[i; 32])).collect();
        for (n, k) in keys.iter().enumerate() {
            let got = cache.get_or_validate(k).unwrap();
            assert_eq!(got.as_bytes(), k);
            assert_eq!(cache.len(), (n + 1).min(4));
            // A hit returns the same key without growing the cache.
            assert_eq!(cache.get_or_validate(k).unwrap(), got);
            assert_eq!(cache.len(), (n + 1).min(4));
        }
        // Failures are reported and not cached.
        let weak = EIGHT_TORSION[1].compress().to_bytes();
        assert_eq!(cache.get_or_validate(&weak), Err(Reason::KeySmallOrder));
        assert_eq!(cache.len(), 4);
        // An evicted key is validated again and still accepted.
        assert_eq!(cache.get_or_validate(&keys[0]).unwrap().as_bytes(), &keys[0]);
        assert_eq!(cache.len(), 4);

        let mut off = KeyCache::new(0);
        assert!(off.get_or_validate(&keys[1]).is_ok());
        assert!(off.is_empty());

        // A huge capacity allocates nothing up front.
        let mut big = KeyCache::new(usize::MAX);
        assert!(big.get_or_validate(&keys[2]).is_ok());
        assert_eq!(big.len(), 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A deterministic sweep of hash-derived keys and signatures; every one must be
        // rejected with some reason and none may panic.
        for i in 0u32..64 {
            let wide: [u8; 64] = Sha512::digest(i.to_le_bytes()).into();
            let more: [u8; 64] = Sha512::digest(wide).into();
            let key: [u8; 32] = wide[..32].try_into().unwrap();
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&wide[32..]);
            sig[32..].copy_from_slice(&more[..32]);
            if i % 2 == 0 {
                sig[63] &= 0x0f; // make S often in range so R and the equation are exercised
            }
            assert!(verify_bytes(&key, &more, &sig).is_err());
        }
    }

    #[test]
    fn debug_shows_hex() {
        let (_, pk, _) = rfc_test_1();
        let key = Ed25519PublicKey::validate(&pk).unwrap();
        assert_eq!(
            format!("{key:?}"),
            "Ed25519PublicKey(d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a)"
        );
    }
}
