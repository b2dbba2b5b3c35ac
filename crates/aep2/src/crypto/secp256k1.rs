//! secp256k1 recoverable signatures, accepting exactly what OpenZeppelin 5 `ECDSA.recover`
//! accepts (spec `aep2.md#eip712-signature-rules`).
//!
//! The rules are checked here, in the spec's order, before any library call: k256 0.14's
//! recovery no longer re-verifies, and neither k256 nor ethers rejects every form the
//! settlement contract rejects. A mandate accepted off chain but reverted on chain is a
//! payment the payee served and will never receive.

use crate::address::EvmAddress;
use crate::codec::hex_decode_0x;
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
    let bytes =
        hex_decode_0x(text).ok_or_else(|| Error::new(Reason::SignatureEncoding, "signature is not 0x-prefixed hex"))?;
    <[u8; 65]>::try_from(bytes.as_slice()).map_err(|_| {
        Error::new(
            Reason::SignatureLength,
            format!("signature is {} bytes, expected 65", bytes.len()),
        )
    })
}

/// Recovers the signer of `prehash` from `sig` under the rules, in order: `v` ∈ {27, 28};
/// `s` ≤ n/2; `r`, `s` non-zero and `r` < n; a point with x = r exists.
pub fn recover(prehash: &[u8; 32], sig: &[u8; 65]) -> Result<EvmAddress> {
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
    let signature = Signature::from_slice(&sig[..64])
        .map_err(|_| Error::new(Reason::SignatureScalarOutOfRange, "r or s out of range"))?;
    let recid = RecoveryId::new(v == 28, false);
    let key = VerifyingKey::recover_from_prehash(prehash, &signature, recid).map_err(|_| {
        Error::new(
            Reason::SignatureUnrecoverable,
            "no public key recovers from this signature",
        )
    })?;
    Ok(address_of_key(&key))
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
    pub fn sign_prehash(&self, prehash: &[u8; 32]) -> [u8; 65] {
        let (sig, recid) = self.0.sign_prehash_recoverable(prehash);
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + u8::from(recid.is_y_odd());
        out
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
    }
}
