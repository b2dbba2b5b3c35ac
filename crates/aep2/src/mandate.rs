//! Payment mandates: one type per profile, strict JSON parsing and canonical JSON output
//! (spec `aep2.md#mandate`, `aep2.md#mandate-fields`, `aep2.md#mandate-json-types`).

use crate::address::{Base58Key, EvmAddress};
use crate::codec::{hex_decode_0x_array, hex_encode_0x};
use crate::error::{Error, Result};
use crate::json::{Object, Value};
use crate::profile::Profile;
use crate::reason::Reason;
use crate::schema::Fields;
use crate::uint::{U256, parse_decimal_u64, parse_json_integer};

/// The longest `ref` a solana-mvp mandate may carry: the MVP program copies `ref` into a
/// 32-byte array, so longer refs would be truncated on chain and could collide.
pub const SOLANA_MVP_MAX_REF_BYTES: usize = 32;

/// An `eip712` mandate: the FluxA MVP's EVM mandate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EvmMandate {
    /// The payer: the debit-wallet account that signs and is debited.
    pub owner: EvmAddress,
    /// The ERC-20 token debited.
    pub token: EvmAddress,
    /// Who is paid.
    pub payee: EvmAddress,
    /// Amount in the token's smallest unit; at least 1.
    pub amount: U256,
    /// Replay nonce, unique per (owner, token).
    pub nonce: U256,
    /// Last unix second at which the mandate may be settled (inclusive).
    pub deadline: u64,
    /// 32-byte business reference (hash of the order or call).
    pub reference: [u8; 32],
}

/// An `ed25519` (native) mandate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ed25519Mandate {
    /// The payer's Ed25519 public key; it signs the mandate.
    pub payer: Base58Key,
    /// The token (e.g. SPL mint) debited.
    pub token: Base58Key,
    /// Who is paid.
    pub payee: Base58Key,
    /// Amount in the token's smallest unit; 1 ..= 2^64 − 1.
    pub amount: u64,
    /// Replay nonce.
    pub nonce: u64,
    /// Last unix second at which the mandate may be settled (inclusive).
    pub deadline: u64,
    /// 32-byte business reference.
    pub reference: [u8; 32],
}

/// A `solana-mvp` mandate: the FluxA MVP's Solana mandate, kept for interoperability.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SolanaMvpMandate {
    /// The payer's Ed25519 public key.
    pub payer: Base58Key,
    /// The SPL mint debited.
    pub token: Base58Key,
    /// Who is paid.
    pub payee: Base58Key,
    /// Amount in the mint's smallest unit; 1 ..= 2^64 − 1.
    pub amount: u64,
    /// Replay nonce.
    pub nonce: u64,
    /// Last unix second at which the mandate may be settled (inclusive).
    pub deadline: u64,
    /// Free-form reference, 1 ..= 32 UTF-8 bytes.
    pub reference: String,
}

/// A mandate of any profile.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mandate {
    /// `eip712`
    Eip712(EvmMandate),
    /// `ed25519`
    Ed25519(Ed25519Mandate),
    /// `solana-mvp`
    SolanaMvp(SolanaMvpMandate),
}

const EVM_FIELDS: [&str; 7] = ["owner", "token", "payee", "amount", "nonce", "deadline", "ref"];
const ED_FIELDS: [&str; 7] = ["payer", "token", "payee", "amount", "nonce", "deadline", "ref"];

fn ref32(text: &str) -> Result<[u8; 32]> {
    // Byte-wise: a string slice at a fixed offset would split a multi-byte character.
    let b = text.as_bytes();
    let lower_hex = |c: &u8| c.is_ascii_digit() || (b'a'..=b'f').contains(c);
    match hex_decode_0x_array::<32>(text) {
        Some(r) if b[2..].iter().all(lower_hex) => Ok(r),
        _ => Err(Error::new(
            Reason::RefInvalid,
            format!("{text:?} is not 0x followed by 64 lowercase hex digits"),
        )),
    }
}

fn amount_nonzero<T: PartialEq + Default>(v: T) -> Result<T> {
    if v == T::default() {
        Err(Error::new(Reason::AmountZero, "amount must be at least 1"))
    } else {
        Ok(v)
    }
}

fn field<T>(name: &str, r: Result<T>) -> Result<T> {
    r.map_err(|e| e.at(&format!("mandate.{name}")))
}

impl Mandate {
    /// Parses the `mandate` object of an envelope for `profile`, checking members in the
    /// normative order (unknown, missing, then each field in definition order).
    pub fn from_json(profile: Profile, v: &Value) -> Result<Mandate> {
        match profile {
            Profile::Eip712 => {
                let f = Fields::new(v, "mandate", &EVM_FIELDS)?;
                let owner = field("owner", f.string("owner").and_then(EvmAddress::parse))?;
                let token = field("token", f.string("token").and_then(EvmAddress::parse))?;
                let payee = field("payee", f.string("payee").and_then(EvmAddress::parse))?;
                let amount = field(
                    "amount",
                    f.string("amount")
                        .and_then(U256::parse_decimal)
                        .and_then(amount_nonzero),
                )?;
                let nonce = field("nonce", f.string("nonce").and_then(U256::parse_decimal))?;
                let deadline = field("deadline", f.number("deadline").and_then(parse_json_integer))?;
                let reference = field("ref", f.string("ref").and_then(ref32))?;
                Ok(Mandate::Eip712(EvmMandate {
                    owner,
                    token,
                    payee,
                    amount,
                    nonce,
                    deadline,
                    reference,
                }))
            }
            Profile::Ed25519 | Profile::SolanaMvp => {
                let f = Fields::new(v, "mandate", &ED_FIELDS)?;
                let payer = field("payer", f.string("payer").and_then(Base58Key::parse))?;
                let token = field("token", f.string("token").and_then(Base58Key::parse))?;
                let payee = field("payee", f.string("payee").and_then(Base58Key::parse))?;
                let amount = field(
                    "amount",
                    f.string("amount").and_then(parse_decimal_u64).and_then(amount_nonzero),
                )?;
                let nonce = field("nonce", f.string("nonce").and_then(parse_decimal_u64))?;
                let deadline = field("deadline", f.number("deadline").and_then(parse_json_integer))?;
                if profile == Profile::Ed25519 {
                    let reference = field("ref", f.string("ref").and_then(ref32))?;
                    Ok(Mandate::Ed25519(Ed25519Mandate {
                        payer,
                        token,
                        payee,
                        amount,
                        nonce,
                        deadline,
                        reference,
                    }))
                } else {
                    let reference = field("ref", f.string("ref").and_then(solana_ref))?.to_owned();
                    Ok(Mandate::SolanaMvp(SolanaMvpMandate {
                        payer,
                        token,
                        payee,
                        amount,
                        nonce,
                        deadline,
                        reference,
                    }))
                }
            }
        }
    }

    /// The mandate's JSON object, members in definition order, values in canonical text
    /// (EIP-55 addresses, decimal strings, lowercase hex). For solana-mvp this order is the
    /// MVP's key order, so compact output is exactly the MVP's signed text.
    pub fn to_json(&self) -> Object {
        let s = Value::String;
        let (signer, token, payee, amount, nonce, deadline, reference) = match self {
            Mandate::Eip712(m) => (
                ("owner", m.owner.to_checksum()),
                m.token.to_checksum(),
                m.payee.to_checksum(),
                m.amount.to_string(),
                m.nonce.to_string(),
                m.deadline,
                hex_encode_0x(&m.reference),
            ),
            Mandate::Ed25519(m) => (
                ("payer", m.payer.to_string()),
                m.token.to_string(),
                m.payee.to_string(),
                m.amount.to_string(),
                m.nonce.to_string(),
                m.deadline,
                hex_encode_0x(&m.reference),
            ),
            Mandate::SolanaMvp(m) => (
                ("payer", m.payer.to_string()),
                m.token.to_string(),
                m.payee.to_string(),
                m.amount.to_string(),
                m.nonce.to_string(),
                m.deadline,
                m.reference.clone(),
            ),
        };
        Object::new()
            .with(signer.0, s(signer.1))
            .with("token", s(token))
            .with("payee", s(payee))
            .with("amount", s(amount))
            .with("nonce", s(nonce))
            .with("deadline", Value::from_u64(deadline))
            .with("ref", s(reference))
    }

    /// The profile of this mandate.
    pub fn profile(&self) -> Profile {
        match self {
            Mandate::Eip712(_) => Profile::Eip712,
            Mandate::Ed25519(_) => Profile::Ed25519,
            Mandate::SolanaMvp(_) => Profile::SolanaMvp,
        }
    }

    /// The deadline (unix seconds, inclusive).
    pub fn deadline(&self) -> u64 {
        match self {
            Mandate::Eip712(m) => m.deadline,
            Mandate::Ed25519(m) => m.deadline,
            Mandate::SolanaMvp(m) => m.deadline,
        }
    }

    /// The signer (owner or payer) in its display form.
    pub fn signer(&self) -> String {
        match self {
            Mandate::Eip712(m) => m.owner.to_checksum(),
            Mandate::Ed25519(m) => m.payer.to_string(),
            Mandate::SolanaMvp(m) => m.payer.to_string(),
        }
    }

    /// The payee in its display form.
    pub fn payee(&self) -> String {
        match self {
            Mandate::Eip712(m) => m.payee.to_checksum(),
            Mandate::Ed25519(m) => m.payee.to_string(),
            Mandate::SolanaMvp(m) => m.payee.to_string(),
        }
    }

    /// The amount as a decimal string.
    pub fn amount(&self) -> String {
        match self {
            Mandate::Eip712(m) => m.amount.to_string(),
            Mandate::Ed25519(m) => m.amount.to_string(),
            Mandate::SolanaMvp(m) => m.amount.to_string(),
        }
    }
}

fn solana_ref(text: &str) -> Result<&str> {
    if text.is_empty() || text.len() > SOLANA_MVP_MAX_REF_BYTES {
        return Err(Error::new(
            Reason::RefInvalid,
            format!(
                "solana-mvp ref must be 1..={SOLANA_MVP_MAX_REF_BYTES} UTF-8 bytes, found {}",
                text.len()
            ),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_with_multibyte_characters_is_rejected_not_a_panic() {
        let text = format!("aé{}", "a".repeat(63));
        assert_eq!(text.len(), 66);
        assert_eq!(ref32(&text).unwrap_err().reason(), Reason::RefInvalid);
        assert_eq!(
            ref32(&format!("0x{}", "é".repeat(32))).unwrap_err().reason(),
            Reason::RefInvalid
        );
        assert!(ref32(&format!("0x{}", "ab".repeat(32))).is_ok());
    }
}
