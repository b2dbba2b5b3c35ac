//! secp256k1 recoverable signatures, accepting exactly what OpenZeppelin 5 `ECDSA.recover`
//! accepts (spec `aep2.md#eip712-signature-rules`).
//!
//! The rules are checked here, in the spec's order, before any library call, and the library
//! only recovers the point ([`Backend`]: libsecp256k1 by default, k256 without the
//! `libsecp256k1` feature): k256 0.14's recovery no longer re-verifies, and neither library
//! nor ethers rejects every form the settlement contract rejects. A mandate accepted off chain but reverted on chain is a
//! payment the payee served and will never receive.

use crate::address::EvmAddress;
use crate::codec::{hex_decode_0x, hex_decode_0x_array};
use crate::error::{Error, Result};
use crate::hash::keccak256;
use crate::reason::Reason;
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};

/// The group order n.
pub const N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xBA, 0xAE, 0xDC,
    0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41,
];
/// ⌊n/2⌋: the largest `s` EIP-2 allows.
pub const HALF_N: [u8; 32] = [
    0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x5D, 0x57, 0x6E,
    0x73, 0x57, 0xA4, 0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0,
];

/// Decodes the wire form `0x` + 130 hex digits into the 65 bytes r ‖ s ‖ v.
///
/// Errors: `signature_encoding` (not 0x-hex), `signature_length` (any other byte length,
/// including 64-byte EIP-2098 compact signatures).
pub fn parse_signature(text: &str) -> Result<[u8; 65]> {
    if let Some(sig) = hex_decode_0x_array::<65>(text) {
        return Ok(sig);
    }
    // Only a rejected text pays for finding out which fault it has.
    let bytes =
        hex_decode_0x(text).ok_or_else(|| Error::new(Reason::SignatureEncoding, "signature is not 0x-prefixed hex"))?;
    Err(Error::new(
        Reason::SignatureLength,
        format!("signature is {} bytes, expected 65", bytes.len()),
    ))
}

/// The library that does the point recovery once the rules have passed. Everything else (the
/// rules, their order and reason codes, hashing the key to an address) is this module's own
/// code, shared by both, so both give the same verdict, code and address on every input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// RustCrypto's `k256`: pure Rust, always compiled in.
    K256,
    /// Bitcoin Core's libsecp256k1 through the `secp256k1` crate (C, about 1.7x faster);
    /// the default, behind the crate feature `libsecp256k1`.
    #[cfg(feature = "libsecp256k1")]
    Libsecp256k1,
}

impl Backend {
    /// The backend [`recover`] uses unless [`with_backend`] overrides it: libsecp256k1 when
    /// the `libsecp256k1` feature is on (the default), k256 otherwise.
    #[cfg(feature = "libsecp256k1")]
    pub const DEFAULT: Backend = Backend::Libsecp256k1;
    /// The backend [`recover`] uses unless [`with_backend`] overrides it: libsecp256k1 when
    /// the `libsecp256k1` feature is on (the default), k256 otherwise.
    #[cfg(not(feature = "libsecp256k1"))]
    pub const DEFAULT: Backend = Backend::K256;

    /// Every backend compiled in.
    pub const ALL: &'static [Backend] = &[
        Backend::K256,
        #[cfg(feature = "libsecp256k1")]
        Backend::Libsecp256k1,
    ];

    /// `k256` or `libsecp256k1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::K256 => "k256",
            #[cfg(feature = "libsecp256k1")]
            Backend::Libsecp256k1 => "libsecp256k1",
        }
    }
}

std::thread_local! {
    static OVERRIDE: core::cell::Cell<Option<Backend>> = const { core::cell::Cell::new(None) };
}

/// Runs `f` with every [`recover`] on this thread (and so every verification of mandates,
/// receipts and lanes) done by `backend`, then restores the previous choice. For
/// differential tests and benchmarks; production code has no reason to call it.
pub fn with_backend<R>(backend: Backend, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Backend>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(OVERRIDE.with(|o| o.replace(Some(backend))));
    f()
}

/// The backend [`recover`] uses on this thread now.
pub fn current_backend() -> Backend {
    OVERRIDE.with(|o| o.get()).unwrap_or(Backend::DEFAULT)
}

/// Recovers the signer of `prehash` from `sig` under the rules, in order: `v` ∈ {27, 28};
/// `s` ≤ n/2; `r`, `s` non-zero and `r` < n; a point with x = r exists. The point recovery
/// is done by [`current_backend`].
pub fn recover(prehash: &[u8; 32], sig: &[u8; 65]) -> Result<EvmAddress> {
    recover_with(current_backend(), prehash, sig)
}

/// [`recover`] with the point recovery done by `backend`.
pub fn recover_with(backend: Backend, prehash: &[u8; 32], sig: &[u8; 65]) -> Result<EvmAddress> {
    check_rules(sig)?;
    let point = match backend {
        Backend::K256 => recover_point_k256(prehash, sig),
        #[cfg(feature = "libsecp256k1")]
        Backend::Libsecp256k1 => recover_point_libsecp256k1(prehash, sig),
    }
    .ok_or_else(|| {
        Error::new(
            Reason::SignatureUnrecoverable,
            "no public key recovers from this signature",
        )
    })?;
    Ok(address_of_point(&point))
}

/// The spec's rules on the 65 bytes, in its order, with each fault's own code: `v` ∈ {27, 28}
/// (`signature_v_invalid`); `s` ≤ n/2 (`signature_high_s`); `r`, `s` non-zero and `r` < n
/// (`signature_scalar_out_of_range`). What passes is a well-formed recoverable signature for
/// either backend.
pub fn check_rules(sig: &[u8; 65]) -> Result<()> {
    let (r, s, v) = (&sig[..32], &sig[32..64], sig[64]);
    if v != 27 && v != 28 {
        return Err(Error::new(
            Reason::SignatureVInvalid,
            format!("v is {v}, expected 27 or 28"),
        ));
    }
    if s > &HALF_N[..] {
        return Err(Error::new(Reason::SignatureHighS, "s is above n/2"));
    }
    let zero = [0u8; 32];
    if r == zero || s == zero || r >= &N[..] {
        return Err(Error::new(
            Reason::SignatureScalarOutOfRange,
            "r or s is zero, or r >= n",
        ));
    }
    Ok(())
}

/// k256's recovery of the uncompressed point x ‖ y (rules already checked); `None` when no
/// point recovers.
fn recover_point_k256(prehash: &[u8; 32], sig: &[u8; 65]) -> Option<[u8; 64]> {
    let signature = Signature::from_slice(&sig[..64]).ok()?;
    let recid = RecoveryId::new(sig[64] == 28, false);
    let key = VerifyingKey::recover_from_prehash(prehash, &signature, recid).ok()?;
    let point = key.to_sec1_point(false);
    point.as_bytes().get(1..65)?.try_into().ok()
}

/// libsecp256k1's recovery of the uncompressed point x ‖ y (rules already checked); `None`
/// when no point recovers.
#[cfg(feature = "libsecp256k1")]
fn recover_point_libsecp256k1(prehash: &[u8; 32], sig: &[u8; 65]) -> Option<[u8; 64]> {
    use ::secp256k1 as lib;
    static CONTEXT: std::sync::OnceLock<lib::Secp256k1<lib::VerifyOnly>> = std::sync::OnceLock::new();
    let ctx = CONTEXT.get_or_init(lib::Secp256k1::verification_only);
    let recid = lib::ecdsa::RecoveryId::from_u8_masked(sig[64] - 27);
    let signature = lib::ecdsa::RecoverableSignature::from_compact(&sig[..64], recid).ok()?;
    let key = ctx
        .recover_ecdsa(lib::Message::from_digest(*prehash), &signature)
        .ok()?;
    let uncompressed = key.serialize_uncompressed();
    uncompressed.get(1..65)?.try_into().ok()
}

fn address_of_point(xy: &[u8; 64]) -> EvmAddress {
    let h = keccak256(xy);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h[12..]);
    EvmAddress(a)
}

/// The Ethereum address of a public key: the last 20 bytes of keccak256 of the uncompressed point.
pub fn address_of_key(key: &VerifyingKey) -> EvmAddress {
    let point = key.to_sec1_point(false);
    let h = keccak256(&point.as_bytes()[1..]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h[12..]);
    EvmAddress(a)
}

/// A secp256k1 private key held for signing mandates and receipts.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// Accepts a 32-byte scalar in 1 ..= n − 1; `None` otherwise.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<SecretKey> {
        SigningKey::from_slice(bytes).ok().map(SecretKey)
    }

    /// The key's Ethereum address.
    pub fn address(&self) -> EvmAddress {
        address_of_key(self.0.verifying_key())
    }

    /// Signs a 32-byte digest with RFC 6979 nonces and low s, returning r ‖ s ‖ v with
    /// v ∈ {27, 28}: the same bytes ethers v6 produces for the same key and digest.
    ///
    /// With the `libsecp256k1` feature libsecp256k1 signs (its RFC 6979 nonces and low-s
    /// normalisation give the same bytes; k256 finds the recovery id by trial recoveries, which
    /// costs more than the signature): [`SecretKey::sign_prehash_with`] picks one.
    pub fn sign_prehash(&self, prehash: &[u8; 32]) -> [u8; 65] {
        self.sign_prehash_with(Backend::DEFAULT, prehash)
    }

    /// [`SecretKey::sign_prehash`] by `backend` (for differential tests and benchmarks).
    pub fn sign_prehash_with(&self, backend: Backend, prehash: &[u8; 32]) -> [u8; 65] {
        match backend {
            Backend::K256 => {
                let (sig, recid) = self.0.sign_prehash_recoverable(prehash);
                let mut out = [0u8; 65];
                out[..64].copy_from_slice(&sig.to_bytes());
                out[64] = 27 + u8::from(recid.is_y_odd());
                out
            }
            #[cfg(feature = "libsecp256k1")]
            Backend::Libsecp256k1 => {
                use ::secp256k1 as lib;
                static CONTEXT: std::sync::OnceLock<lib::Secp256k1<lib::SignOnly>> = std::sync::OnceLock::new();
                let ctx = CONTEXT.get_or_init(lib::Secp256k1::signing_only);
                let bytes: [u8; 32] = self.0.to_bytes().into();
                let Ok(key) = lib::SecretKey::from_byte_array(bytes) else {
                    // Unreachable: both libraries take exactly the scalars 1 ..= n − 1.
                    return self.sign_prehash_with(Backend::K256, prehash);
                };
                let sig = ctx.sign_ecdsa_recoverable(lib::Message::from_digest(*prehash), &key);
                let (recid, compact) = sig.serialize_compact();
                let mut out = [0u8; 65];
                out[..64].copy_from_slice(&compact);
                out[64] = 27 + u8::from(i32::from(recid) & 1 == 1);
                out
            }
        }
    }
}

impl core::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SecretKey({})", self.address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::hex_encode_0x;

    fn hardhat0() -> SecretKey {
        let k = hex_decode_0x("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80").unwrap();
        SecretKey::from_bytes(&k.try_into().unwrap()).unwrap()
    }

    #[test]
    fn rfc6979_matches_ethers_known_answer() {
        // From the reference notes: the MVP mandate digest signed by Hardhat account #0.
        let digest: [u8; 32] = hex_decode_0x("0xacffc66c2eab7d0e63e893c1027af74f82090d2718062bdb0c174f653e2e43ca")
            .unwrap()
            .try_into()
            .unwrap();
        let key = hardhat0();
        assert_eq!(
            key.address().to_checksum(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        let sig = key.sign_prehash(&digest);
        assert_eq!(
            hex_encode_0x(&sig),
            "0xd7ff6c5d02ded4432ad3fc3f2f65503cdb27f41cbe39f61dba994f6e936c8b9f518fe0bb6aca24d678c6e63986679c5d20e8a6d1b82609291f9ea685587b3b7c1c"
        );
        assert_eq!(recover(&digest, &sig).unwrap(), key.address());
    }

    #[test]
    fn rules_in_order() {
        let digest = keccak256(b"x");
        let good = hardhat0().sign_prehash(&digest);
        let mut v0 = good;
        v0[64] -= 27;
        assert_eq!(recover(&digest, &v0).unwrap_err().reason(), Reason::SignatureVInvalid);
        let mut high = good;
        high[32..64].copy_from_slice(&N);
        assert_eq!(recover(&digest, &high).unwrap_err().reason(), Reason::SignatureHighS);
        let mut r0 = good;
        r0[..32].fill(0);
        assert_eq!(
            recover(&digest, &r0).unwrap_err().reason(),
            Reason::SignatureScalarOutOfRange
        );
        let mut flipped = good;
        flipped[64] = if good[64] == 27 { 28 } else { 27 };
        assert_ne!(recover(&digest, &flipped).ok(), Some(hardhat0().address()));
        assert_eq!(parse_signature("0x00").unwrap_err().reason(), Reason::SignatureLength);
        assert_eq!(parse_signature("00").unwrap_err().reason(), Reason::SignatureEncoding);
        assert_eq!(parse_signature("0x0").unwrap_err().reason(), Reason::SignatureEncoding);
        let text = hex_encode_0x(&good);
        assert_eq!(parse_signature(&text).unwrap(), good);
        assert_eq!(
            parse_signature(&text.to_uppercase().replacen("0X", "0x", 1)).unwrap(),
            good
        );
        let bad_digit = format!("{}g", &text[..text.len() - 1]);
        assert_eq!(
            parse_signature(&bad_digit).unwrap_err().reason(),
            Reason::SignatureEncoding
        );
        let long = format!("{text}00");
        assert_eq!(parse_signature(&long).unwrap_err().reason(), Reason::SignatureLength);
    }
}
