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
    // Every header is decoded on every verification, so the canonical form is read by a
    // table here; whatever this rejects is handed to the `base64` crate, which rejects it
    // too (a test checks the two agree) and describes the fault in its own words.
    if let Some(bytes) = base64_decode_canonical(text.as_bytes()) {
        return Ok(bytes);
    }
    STANDARD
        .decode(text)
        .map_err(|e| Error::new(Reason::Base64Invalid, e.to_string()))
}

/// The value of each base64 symbol; 0xff for every other byte (`=` included).
const B64_VALUE: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Canonical padded base64 to bytes; `None` for anything else.
fn base64_decode_canonical(t: &[u8]) -> Option<Vec<u8>> {
    if !t.len().is_multiple_of(4) {
        return None;
    }
    let Some((body, last)) = t.split_last_chunk::<4>() else {
        return Some(Vec::new());
    };
    let v = |c: u8| u32::from(B64_VALUE[usize::from(c)]);
    let (a, b) = (v(last[0]), v(last[1]));
    // The last quad first: its padding fixes the length, so the body is written into place.
    let (tail, tail_len) = match (last[2], last[3]) {
        (b'=', b'=') => {
            // One byte: the second symbol's low four bits are padding and must be zero.
            if (a | b) > 63 || b & 0x0f != 0 {
                return None;
            }
            ((a << 18) | (b << 12), 1)
        }
        (c, b'=') => {
            // Two bytes: the third symbol's low two bits must be zero.
            let c = v(c);
            if (a | b | c) > 63 || c & 0x03 != 0 {
                return None;
            }
            ((a << 18) | (b << 12) | (c << 6), 2)
        }
        (c, d) => {
            let (c, d) = (v(c), v(d));
            if (a | b | c | d) > 63 {
                return None;
            }
            ((a << 18) | (b << 12) | (c << 6) | d, 3)
        }
    };
    let body_len = body.len() / 4 * 3;
    let mut out = vec![0u8; body_len + tail_len];
    // Eight symbols (six bytes) at a time, then the odd quad if there is one. A symbol is
    // below 64 and the marker is 0xff, so one test of the OR of the values covers them all.
    let mut outs = out[..body_len].chunks_exact_mut(6);
    let mut ins = body.chunks_exact(8);
    for (o, q) in (&mut outs).zip(&mut ins) {
        let mut n = 0u64;
        let mut seen = 0u32;
        for &c in q {
            let x = v(c);
            seen |= x;
            n = (n << 6) | u64::from(x);
        }
        if seen > 63 {
            return None;
        }
        o.copy_from_slice(&n.to_be_bytes()[2..]);
    }
    if let [a, b, c, d] = *ins.remainder() {
        let (a, b, c, d) = (v(a), v(b), v(c), v(d));
        if (a | b | c | d) > 63 {
            return None;
        }
        let n = (a << 18) | (b << 12) | (c << 6) | d;
        outs.into_remainder().copy_from_slice(&n.to_be_bytes()[1..]);
    }
    out[body_len..].copy_from_slice(&tail.to_be_bytes()[1..1 + tail_len]);
    Some(out)
}

/// Encodes standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The value of each hex digit of either case; 0xff for every other byte. A table because
/// addresses, refs and signatures are decoded on every verification.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    let (h, l) = (HEX_VALUE[usize::from(hi)], HEX_VALUE[usize::from(lo)]);
    // Both are below 16 exactly when neither is the 0xff marker.
    ((h | l) < 16).then_some((h << 4) | l)
}

/// Decodes `0x`-prefixed hex of either letter case into bytes; `None` on any malformation.
pub fn hex_decode_0x(text: &str) -> Option<Vec<u8>> {
    let digits = text.strip_prefix("0x")?.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() / 2);
    for p in digits.chunks_exact(2) {
        out.push(hex_byte(p[0], p[1])?);
    }
    Some(out)
}

/// Decodes `0x`-prefixed hex of either letter case that is exactly `N` bytes long; `None`
/// otherwise. The same texts as [`hex_decode_0x`] with a length check, without allocating.
pub fn hex_decode_0x_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.strip_prefix("0x")?.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, p) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *o = hex_byte(p[0], p[1])?;
    }
    Some(out)
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

const B58_ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// 58^5, the largest power of 58 below 2^32: five digits are moved per limb operation.
const B58_CHUNK: u64 = 58 * 58 * 58 * 58 * 58;

fn b58_digit(c: u8) -> Option<u64> {
    let v = match c {
        b'1'..=b'9' => c - b'1',
        b'A'..=b'H' => c - b'A' + 9,
        b'J'..=b'N' => c - b'J' + 17,
        b'P'..=b'Z' => c - b'P' + 22,
        b'a'..=b'k' => c - b'a' + 33,
        b'm'..=b'z' => c - b'm' + 44,
        _ => return None,
    };
    Some(u64::from(v))
}

/// Decodes base58 (Bitcoin alphabet) to exactly `N` bytes; `None` otherwise.
///
/// Base58 has one encoding per byte string, so a fixed decoded length makes the text canonical.
/// Digits are folded in five at a time into 32-bit limbs: keys and signatures are decoded on
/// every verification, and the textbook byte-at-a-time loop costs more than the hashing.
pub fn base58_decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let t = text.as_bytes();
    // Base58 needs at most ceil(N * log(256)/log(58)) characters; longer is never N bytes.
    if t.is_empty() || t.len() > N * 138 / 100 + 1 {
        return None;
    }
    let zeros = t.iter().take_while(|&&c| c == b'1').count();
    // Little-endian 32-bit limbs of the number; room for N bytes plus one limb of overflow.
    let mut limbs = vec![0u32; N / 4 + 2];
    for chunk in t[zeros..].chunks(5) {
        let mut value = 0u64;
        let mut scale = 1u64;
        for &c in chunk {
            value = value * 58 + b58_digit(c)?;
            scale *= 58;
        }
        let mut carry = value;
        for limb in limbs.iter_mut() {
            let x = u64::from(*limb) * scale + carry;
            *limb = x as u32;
            carry = x >> 32;
        }
        if carry != 0 {
            return None;
        }
    }
    let mut be: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    let significant = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    be.drain(..significant);
    if zeros + be.len() != N {
        return None;
    }
    let mut out = [0u8; N];
    out[zeros..].copy_from_slice(&be);
    Some(out)
}

/// Whether `text` is non-empty and uses only the base58 alphabet.
pub fn is_base58(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|c| b58_digit(c).is_some())
}

/// Encodes bytes as base58 (Bitcoin alphabet).
pub fn base58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    let rest = &bytes[zeros..];
    // Big-endian 32-bit limbs, the first one padded on the left.
    let mut limbs: Vec<u32> = Vec::with_capacity(rest.len() / 4 + 1);
    let head = rest.len() % 4;
    if head != 0 {
        limbs.push(rest[..head].iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)));
    }
    limbs.extend(
        rest[head..]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
    );
    let mut digits: Vec<u8> = Vec::with_capacity(rest.len() * 138 / 100 + 5);
    let mut start = 0;
    while start < limbs.len() {
        let mut rem = 0u64;
        for limb in &mut limbs[start..] {
            let x = (rem << 32) | u64::from(*limb);
            *limb = (x / B58_CHUNK) as u32;
            rem = x % B58_CHUNK;
        }
        while start < limbs.len() && limbs[start] == 0 {
            start += 1;
        }
        for _ in 0..5 {
            digits.push((rem % 58) as u8);
            rem /= 58;
        }
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(digits.iter().rev().map(|&d| char::from(B58_ALPHABET[usize::from(d)])));
    out
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

    /// The table decoder accepts exactly what the `base64` crate's canonical STANDARD engine
    /// accepts, with the same bytes: every text of up to 8 characters over an alphabet with
    /// every kind of symbol (trailing-bit edges, padding, an invalid byte), and random ones.
    #[test]
    fn base64_table_decoder_agrees_with_the_crate() {
        let symbols = b"AQgw/+=a-\n";
        let check = |t: &[u8]| {
            let text = std::str::from_utf8(t).unwrap();
            assert_eq!(base64_decode_canonical(t), STANDARD.decode(text).ok(), "{text:?}");
        };
        // Every text of up to 4 such characters, alone and after each kind of first quad.
        let mut quads: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=4 {
            let mut next = Vec::new();
            for q in quads.iter().filter(|q| q.len() == len - 1) {
                for &c in symbols {
                    let mut n = q.clone();
                    n.push(c);
                    next.push(n);
                }
            }
            quads.extend(next);
        }
        for first in [&b""[..], b"QUJD", b"QQ==", b"QUI=", b"QU-D", b"===="] {
            for q in &quads {
                check(&[first, q].concat());
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..300usize {
            let mut bytes = Vec::with_capacity(len);
            while bytes.len() < len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(x as u8);
            }
            let text = STANDARD.encode(&bytes);
            assert_eq!(base64_decode(&text).unwrap(), bytes);
            // Each symbol in turn replaced by another, and the padding dropped.
            for i in 0..text.len() {
                let mut t = text.clone().into_bytes();
                t[i] = symbols[(x as usize + i) % symbols.len()];
                check(&t);
            }
            check(text.trim_end_matches('=').as_bytes());
        }
    }

    #[test]
    fn hex_and_base58() {
        assert_eq!(hex_decode_0x("0xAbcd"), Some(vec![0xab, 0xcd]));
        assert_eq!(hex_decode_0x("0Xab"), None);
        assert_eq!(hex_decode_0x("0xabc"), None);
        assert_eq!(hex_decode_0x("0xzz"), None);
        assert_eq!(hex_encode_0x(&[0, 255]), "0x00ff");
        assert_eq!(hex_decode_0x_array::<2>("0xAbcd"), Some([0xab, 0xcd]));
        for bad in [
            "0Xabcd",
            "0xabc",
            "0xabcdef",
            "0xab",
            "0xzzzz",
            "0xab\u{e9}",
            "abcd",
            "0x0g00",
        ] {
            assert_eq!(hex_decode_0x_array::<2>(bad), None, "{bad:?}");
        }
        // Every character in both digit positions, against the definition.
        for c in 0..=255u8 {
            let ch = char::from(c);
            let d = ch.to_digit(16).map(|d| d as u8);
            for (text, want) in [(format!("0x0{ch}"), d), (format!("0x{ch}0"), d.map(|d| d << 4))] {
                assert_eq!(hex_decode_0x(&text).map(|v| v[0]), want, "{text:?}");
                assert_eq!(hex_decode_0x_array::<1>(&text).map(|a| a[0]), want, "{text:?}");
            }
        }
        let k = [7u8; 32];
        assert_eq!(base58_decode::<32>(&base58_encode(&k)), Some(k));
        assert_eq!(base58_decode::<32>(&base58_encode(&[7u8; 31])), None);
        assert_eq!(base58_decode::<32>("0OIl"), None);
        assert_eq!(base58_decode::<32>(""), None);
    }

    #[test]
    fn base58_agrees_with_bs58() {
        // Deterministic inputs of every length up to 100 bytes, with and without leading zeros.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..100usize {
            for zeros in [0usize, 1, 3] {
                let mut v = vec![0u8; zeros.min(len)];
                while v.len() < len {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    v.push(x as u8);
                }
                let ours = base58_encode(&v);
                assert_eq!(ours, bs58::encode(&v).into_string(), "{v:?}");
                if len == 32 {
                    assert_eq!(base58_decode::<32>(&ours).map(|a| a.to_vec()), Some(v.clone()));
                }
                if len == 64 {
                    assert_eq!(base58_decode::<64>(&ours).map(|a| a.to_vec()), Some(v.clone()));
                }
            }
        }
        assert_eq!(base58_encode(&[0xff; 32]), bs58::encode([0xff; 32]).into_string());
        assert_eq!(
            base58_decode::<32>(&bs58::encode([0xffu8; 32]).into_string()),
            Some([0xff; 32])
        );
        // 2^256 needs 33 bytes: one more than the limit for a 32-byte decode.
        let mut big = vec![1u8];
        big.extend([0u8; 32]);
        assert_eq!(base58_decode::<32>(&bs58::encode(&big).into_string()), None);
    }
}
