//! The hash functions AEP2 uses, in one place (Keccak-256 is not SHA3-256: see tests).

use sha2::Digest as _;

/// Keccak-256 (the Ethereum hash, original Keccak padding).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    sha3::Keccak256::digest(data).into()
}

/// Keccak-256 over several parts without concatenating them first.
pub fn keccak256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = sha3::Keccak256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::hex_encode_0x;

    #[test]
    fn keccak_is_not_sha3() {
        assert_eq!(
            hex_encode_0x(&keccak256(b"")),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert_eq!(keccak256_parts(&[b"ab", b"c"]), keccak256(b"abc"));
        assert_eq!(
            hex_encode_0x(&sha256(b"abc")),
            "0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
