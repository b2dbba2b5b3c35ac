//! Account identifiers: EVM addresses (EIP-55) and 32-byte Ed25519/Solana keys in base58
//! (spec `aep2.md#mandate-json-types`).

use crate::codec::{base58_decode, base58_encode, hex_decode_0x_array, hex_encode_0x};
use crate::error::{Error, Result};
use crate::hash::keccak256;
use crate::reason::Reason;
use core::fmt;

/// A 20-byte EVM address. Compared as bytes; displayed in EIP-55 checksum form.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EvmAddress(pub [u8; 20]);

impl EvmAddress {
    /// Parses `0x` + 40 hex digits. All-lowercase and all-uppercase digits carry no checksum
    /// and are accepted; mixed case must match EIP-55, because a mixed-case address with a
    /// wrong checksum is almost always a typo that would send money elsewhere.
    pub fn parse(text: &str) -> Result<EvmAddress> {
        let Some(a) = hex_decode_0x_array::<20>(text) else {
            return Err(Error::new(
                Reason::AddressInvalid,
                format!("{text:?} is not 0x followed by 40 hex digits"),
            ));
        };
        let addr = EvmAddress(a);
        let digits = &text[2..];
        let has_lower = digits.bytes().any(|c| c.is_ascii_lowercase());
        let has_upper = digits.bytes().any(|c| c.is_ascii_uppercase());
        if has_lower && has_upper && !checksum_matches(&addr, text) {
            return Err(Error::new(
                Reason::AddressChecksum,
                format!("{text} fails its EIP-55 checksum"),
            ));
        }
        Ok(addr)
    }

    /// The EIP-55 mixed-case form.
    pub fn to_checksum(&self) -> String {
        let lower = hex_encode_0x(&self.0);
        let hash = keccak256(&lower.as_bytes()[2..]);
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower[2..].chars().enumerate() {
            let nib = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            out.push(if nib >= 8 { c.to_ascii_uppercase() } else { c });
        }
        out
    }

    /// The address as a left-padded 32-byte ABI word.
    pub fn to_word(&self) -> [u8; 32] {
        let mut w = [0u8; 32];
        w[12..].copy_from_slice(&self.0);
        w
    }
}

/// How many checksum forms each thread remembers. A merchant sees the same token and payee
/// in every mandate, so a handful of entries saves a Keccak per address on the hot path.
const CHECKSUM_MEMO: usize = 8;

type ChecksumMemo = ([Option<([u8; 20], [u8; 42])>; CHECKSUM_MEMO], usize);

thread_local! {
    static CHECKSUMS: std::cell::RefCell<ChecksumMemo> = const { std::cell::RefCell::new(([None; CHECKSUM_MEMO], 0)) };
}

/// Whether `text` is the EIP-55 form of `addr`. The memo stores the checksum text itself, so a
/// hit answers exactly what recomputing would.
fn checksum_matches(addr: &EvmAddress, text: &str) -> bool {
    CHECKSUMS.with(|memo| {
        let mut memo = memo.borrow_mut();
        if let Some((_, form)) = memo.0.iter().flatten().find(|(a, _)| *a == addr.0) {
            return form[..] == *text.as_bytes();
        }
        let checksum = addr.to_checksum();
        let mut form = [0u8; 42];
        form.copy_from_slice(checksum.as_bytes());
        let slot = memo.1;
        memo.0[slot] = Some((addr.0, form));
        memo.1 = (slot + 1) % CHECKSUM_MEMO;
        checksum == text
    })
}

impl fmt::Display for EvmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for EvmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EvmAddress({})", self.to_checksum())
    }
}

/// A 32-byte key or account id written in base58 (Solana public keys, mints, program ids).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Base58Key(pub [u8; 32]);

impl Base58Key {
    /// Parses base58 that decodes to exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Base58Key> {
        base58_decode::<32>(text).map(Base58Key).ok_or_else(|| {
            Error::new(
                Reason::AddressInvalid,
                format!("{text:?} is not base58 of exactly 32 bytes"),
            )
        })
    }
}

impl fmt::Display for Base58Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base58_encode(&self.0))
    }
}

impl fmt::Debug for Base58Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base58Key({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_spec_vectors() {
        for s in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let a = EvmAddress::parse(s).unwrap();
            assert_eq!(a.to_checksum(), s);
            assert_eq!(EvmAddress::parse(&s.to_lowercase()).unwrap(), a);
            assert_eq!(EvmAddress::parse(&format!("0x{}", s[2..].to_uppercase())).unwrap(), a);
        }
        let bad = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";
        assert_eq!(EvmAddress::parse(bad).unwrap_err().reason(), Reason::AddressChecksum);
        // Again: the second answer comes from the memo and must be the same.
        assert_eq!(EvmAddress::parse(bad).unwrap_err().reason(), Reason::AddressChecksum);
        let good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        assert!(EvmAddress::parse(good).is_ok() && EvmAddress::parse(good).is_ok());
        for s in [
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae",
            "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00",
            "0X5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        ] {
            assert_eq!(
                EvmAddress::parse(s).unwrap_err().reason(),
                Reason::AddressInvalid,
                "{s}"
            );
        }
    }
}
