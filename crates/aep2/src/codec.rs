//! Byte encodings used on the wire: strict base64, `0x` hex and base58
//! (spec `aep2.md#decoding-rules`).

use crate::error::{Error, Result};
use crate::reason::Reason;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Decodes standard base64 (RFC 4648 §4) in its one canonical form: `+/` alphabet, padding
/// required, zero trailing bits, no whitespace. Lenient decoders let several texts stand for
/// one payload, which breaks any cache or log keyed on header text.
pub fn base64_decode(text: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(text)
        .map_err(|e| Error::new(Reason::Base64Invalid, e.to_string()))
}

/// Encodes standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes `0x`-prefixed hex of either letter case into bytes; `None` on any malformation.
pub fn hex_decode_0x(text: &str) -> Option<Vec<u8>> {
    let digits = text.strip_prefix("0x")?.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

/// Encodes bytes as lowercase `0x` hex.
pub fn hex_encode_0x(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// Decodes base58 (Bitcoin alphabet) to exactly `N` bytes; `None` otherwise.
///
/// Base58 has one encoding per byte string, so a fixed decoded length makes the text canonical.
pub fn base58_decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    // Base58 needs at most ceil(N * log(256)/log(58)) characters; anything longer is not
    // worth decoding.
    if text.is_empty() || text.len() > N * 138 / 100 + 1 {
        return None;
    }
    let mut out = [0u8; N];
    match bs58::decode(text).onto(&mut out[..]) {
        Ok(n) if n == N => Some(out),
        _ => None,
    }
}

/// Encodes bytes as base58 (Bitcoin alphabet).
pub fn base58_encode(bytes: &[u8]) -> String {
    bs58::encode(bytes).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_canonical_only() {
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        for bad in ["aGk", "aGl=", "aG k=", "aGk=\n", "a-_=", "aGk==", "aGk=aGk="] {
            assert_eq!(
                base64_decode(bad).unwrap_err().reason(),
                Reason::Base64Invalid,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hex_and_base58() {
        assert_eq!(hex_decode_0x("0xAbcd"), Some(vec![0xab, 0xcd]));
        assert_eq!(hex_decode_0x("0Xab"), None);
        assert_eq!(hex_decode_0x("0xabc"), None);
        assert_eq!(hex_decode_0x("0xzz"), None);
        assert_eq!(hex_encode_0x(&[0, 255]), "0x00ff");
        let k = [7u8; 32];
        assert_eq!(base58_decode::<32>(&base58_encode(&k)), Some(k));
        assert_eq!(base58_decode::<32>(&base58_encode(&[7u8; 31])), None);
        assert_eq!(base58_decode::<32>("0OIl"), None);
        assert_eq!(base58_decode::<32>(""), None);
    }
}
