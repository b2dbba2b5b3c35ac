//! Unsigned integers as AEP2 carries them: canonical decimal strings and JSON integers
//! (spec `aep2.md#mandate-json-types`).

use crate::error::{Error, Result};
use crate::reason::Reason;
use core::fmt;

/// A 256-bit unsigned integer stored as 32 big-endian bytes (the EIP-712 word encoding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct U256(pub [u8; 32]);

/// The largest integer a JSON number may carry in AEP2 (2^53 − 1): beyond it ECMAScript
/// parsers silently round, so two peers would read different values.
pub const MAX_JSON_INTEGER: u64 = (1 << 53) - 1;

impl U256 {
    /// Zero.
    pub const ZERO: U256 = U256([0; 32]);

    /// Widens a `u64`.
    pub fn from_u64(n: u64) -> U256 {
        let mut b = [0u8; 32];
        b[24..].copy_from_slice(&n.to_be_bytes());
        U256(b)
    }

    /// The value as `u64`, if it fits.
    pub fn to_u64(&self) -> Option<u64> {
        if self.0[..24].iter().any(|&b| b != 0) {
            return None;
        }
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.0[24..]);
        Some(u64::from_be_bytes(w))
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    /// Parses a canonical decimal string: digits only, no sign, no leading zero (except "0").
    ///
    /// Errors: `uint_invalid` for the format, `uint_out_of_range` above 2^256 − 1.
    pub fn parse_decimal(s: &str) -> Result<U256> {
        check_canonical_decimal(s)?;
        // Up to 19 digits at a time into 64-bit limbs: a nonce is some 40 digits, and the
        // digit-by-digit byte loop cost as much as the whole JSON parse. The value only grows
        // as digits are appended, so a carry out of any step means the final value is out of
        // range, exactly when the digit-by-digit loop would have overflowed.
        let b = s.as_bytes();
        // Little-endian limbs.
        let mut acc = [0u64; 4];
        let head = b.len() % 19;
        let chunks = core::iter::once(&b[..head])
            .filter(|c| !c.is_empty())
            .chain(b[head..].chunks_exact(19));
        for chunk in chunks {
            let mut value = 0u64;
            let mut scale = 1u64;
            for &d in chunk {
                value = value * 10 + u64::from(d - b'0');
                scale *= 10;
            }
            let mut carry = u128::from(value);
            for limb in acc.iter_mut() {
                let x = u128::from(*limb) * u128::from(scale) + carry;
                *limb = x as u64;
                carry = x >> 64;
            }
            if carry != 0 {
                return Err(Error::new(Reason::UintOutOfRange, "value exceeds 2^256 - 1"));
            }
        }
        let mut out = [0u8; 32];
        for (i, limb) in acc.iter().enumerate() {
            out[24 - 8 * i..32 - 8 * i].copy_from_slice(&limb.to_be_bytes());
        }
        Ok(U256(out))
    }
}

impl fmt::Display for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut n = self.0;
        let mut digits = Vec::with_capacity(78);
        loop {
            let mut rem = 0u16;
            for limb in n.iter_mut() {
                let v = (rem << 8) | u16::from(*limb);
                *limb = (v / 10) as u8;
                rem = v % 10;
            }
            digits.push(b'0' + rem as u8);
            if n.iter().all(|&b| b == 0) {
                break;
            }
        }
        digits.reverse();
        f.write_str(&String::from_utf8_lossy(&digits))
    }
}

fn check_canonical_decimal(s: &str) -> Result<()> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(Error::new(Reason::UintInvalid, "empty integer string"));
    }
    if !b.iter().all(u8::is_ascii_digit) {
        return Err(Error::new(
            Reason::UintInvalid,
            format!("{s:?} is not a plain decimal integer"),
        ));
    }
    if b.len() > 1 && b[0] == b'0' {
        return Err(Error::new(Reason::UintInvalid, format!("{s:?} has a leading zero")));
    }
    if b.len() > 78 {
        return Err(Error::new(Reason::UintOutOfRange, "more than 78 digits"));
    }
    Ok(())
}

/// Parses a canonical decimal string into a `u64` (ed25519 profiles carry u64 amounts and
/// nonces because the Solana program takes u64).
pub fn parse_decimal_u64(s: &str) -> Result<u64> {
    U256::parse_decimal(s)?
        .to_u64()
        .ok_or_else(|| Error::new(Reason::UintOutOfRange, format!("{s} exceeds 2^64 - 1")))
}

/// Parses a JSON number token that must be a plain non-negative integer ≤ 2^53 − 1.
///
/// Fractions, exponents and signs are `uint_invalid` even when numerically integral
/// (`1.0`, `1e3`), because peers disagree on whether they equal the integer.
pub fn parse_json_integer(token: &str) -> Result<u64> {
    if token.starts_with('-') || token.contains(['.', 'e', 'E']) {
        return Err(Error::new(
            Reason::UintInvalid,
            format!("{token} is not a plain non-negative integer"),
        ));
    }
    let v = U256::parse_decimal(token)?;
    match v.to_u64() {
        Some(n) if n <= MAX_JSON_INTEGER => Ok(n),
        _ => Err(Error::new(Reason::UintOutOfRange, format!("{token} exceeds 2^53 - 1"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trip_and_bounds() {
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(U256::parse_decimal(max).unwrap().0, [0xff; 32]);
        assert_eq!(U256::parse_decimal(max).unwrap().to_string(), max);
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert_eq!(U256::parse_decimal(over).unwrap_err().reason(), Reason::UintOutOfRange);
        assert_eq!(U256::parse_decimal("0").unwrap(), U256::ZERO);
        assert_eq!(U256::parse_decimal("1000").unwrap(), U256::from_u64(1000));
        for bad in ["", "01", "+1", "-1", "0x3e8", " 1", "1 ", "1e3", "1.0"] {
            assert_eq!(
                U256::parse_decimal(bad).unwrap_err().reason(),
                Reason::UintInvalid,
                "{bad:?}"
            );
        }
        assert_eq!(parse_decimal_u64("18446744073709551615").unwrap(), u64::MAX);
        assert_eq!(
            parse_decimal_u64("18446744073709551616").unwrap_err().reason(),
            Reason::UintOutOfRange
        );
    }

    /// The chunked parse against the digit-by-digit definition, at every length and around
    /// the chunk and range edges.
    #[test]
    fn chunked_parse_matches_digit_by_digit() {
        fn reference(s: &str) -> Option<[u8; 32]> {
            let mut acc = [0u8; 32];
            for d in s.bytes() {
                let mut carry = u16::from(d - b'0');
                for limb in acc.iter_mut().rev() {
                    let v = u16::from(*limb) * 10 + carry;
                    *limb = (v & 0xff) as u8;
                    carry = v >> 8;
                }
                if carry != 0 {
                    return None;
                }
            }
            Some(acc)
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 1..=78usize {
            for lead in [b'1', b'9', b'5'] {
                for fill in [None, Some(b'0'), Some(b'9')] {
                    let mut t = vec![lead];
                    while t.len() < len {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        t.push(fill.unwrap_or(b'0' + (x % 10) as u8));
                    }
                    let t = String::from_utf8(t).unwrap();
                    match reference(&t) {
                        Some(want) => assert_eq!(U256::parse_decimal(&t).unwrap().0, want, "{t}"),
                        None => assert_eq!(
                            U256::parse_decimal(&t).unwrap_err().reason(),
                            Reason::UintOutOfRange,
                            "{t}"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn json_integers() {
        assert_eq!(parse_json_integer("9007199254740991").unwrap(), MAX_JSON_INTEGER);
        assert_eq!(
            parse_json_integer("9007199254740992").unwrap_err().reason(),
            Reason::UintOutOfRange
        );
        for bad in ["-1", "1.0", "1e3", "-0"] {
            assert_eq!(
                parse_json_integer(bad).unwrap_err().reason(),
                Reason::UintInvalid,
                "{bad}"
            );
        }
    }
}
