//! What gets signed for each profile, and the mandate's digest and id
//! (spec `aep2.md#eip712-encoding`, `aep2.md#ed25519-signing-input`, `aep2.md#profile-solana-mvp`).
//!
//! This is the only place signing bytes are built; signers, verifiers, receipts and vectors
//! all call it.

use crate::codec::{base58_encode, hex_encode_0x};
use crate::eip712::{self, Eip712Parts};
use crate::error::{Error, Result};
use crate::hash::sha256;
use crate::json::{Object, Value, to_canonical, to_compact};
use crate::mandate::Mandate;
use crate::profile::Domain;
use crate::reason::Reason;

/// Prefix of the native Ed25519 mandate signing input; the NUL ends it so no JSON text can
/// extend it.
pub const ED25519_MANDATE_TAG: &[u8] = b"AEP2/ed25519/mandate/v1\0";
/// Prefix of the native Ed25519 receipt signing input.
pub const ED25519_RECEIPT_TAG: &[u8] = b"AEP2/ed25519/receipt/v1\0";

/// The bytes a signer commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigningInput {
    /// secp256k1 signs `parts.digest` (the EIP-712 hash).
    Eip712(Eip712Parts),
    /// Ed25519 signs this message.
    Message(Vec<u8>),
}

/// A mandate's signing input together with its identifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MandateDigest {
    /// What the payer signs.
    pub input: SigningInput,
    /// The 32-byte mandate id: the EIP-712 digest, or SHA-256 of the Ed25519 message.
    /// Replay stores and native receipts key on it.
    pub id: [u8; 32],
    /// Whether the wire digest is the MVP's base58 text (solana-mvp).
    mvp_text: bool,
}

impl MandateDigest {
    /// A digest with this id and input (never the MVP's base58 text).
    pub(crate) fn of(id: [u8; 32], input: SigningInput) -> MandateDigest {
        MandateDigest {
            input,
            id,
            mvp_text: false,
        }
    }

    /// The Ed25519 message, or the 66-byte EIP-712 preimage `0x19 0x01 ‖ sep ‖ hash`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        match &self.input {
            SigningInput::Message(m) => m.clone(),
            SigningInput::Eip712(p) => [&[0x19u8, 0x01][..], &p.domain_separator, &p.struct_hash].concat(),
        }
    }

    /// The digest as shown on the wire: the 0x EIP-712 digest, the 0x id for ed25519, and the
    /// MVP's base58 of the signed text for solana-mvp (which MVP receipts sign).
    ///
    /// Computed on demand: the MVP form is base58 of a few hundred bytes, which would
    /// otherwise cost more than the signature check on every verification.
    pub fn display(&self) -> String {
        match (&self.input, self.mvp_text) {
            (SigningInput::Message(m), true) => base58_encode(m),
            _ => hex_encode_0x(&self.id),
        }
    }
}

/// Computes the signing input of `mandate` under `domain`.
///
/// Errors with `profile_mismatch` when the domain belongs to another profile.
pub fn mandate_digest(mandate: &Mandate, domain: &Domain) -> Result<MandateDigest> {
    match (mandate, domain) {
        (Mandate::Eip712(m), Domain::Eip712(d)) => {
            let parts = eip712::mandate_parts(m, d);
            Ok(MandateDigest {
                id: parts.digest,
                input: SigningInput::Eip712(parts),
                mvp_text: false,
            })
        }
        (Mandate::Ed25519(_), Domain::Ed25519(_)) => {
            let msg = ed25519_message(ED25519_MANDATE_TAG, domain, "mandate", mandate.to_json());
            let id = sha256(&msg);
            Ok(MandateDigest {
                id,
                input: SigningInput::Message(msg),
                mvp_text: false,
            })
        }
        (Mandate::SolanaMvp(_), Domain::SolanaMvp) => {
            let msg = to_compact(&Value::Object(mandate.to_json())).into_bytes();
            Ok(MandateDigest {
                id: sha256(&msg),
                input: SigningInput::Message(msg),
                mvp_text: true,
            })
        }
        _ => Err(Error::new(
            Reason::ProfileMismatch,
            format!(
                "a {} mandate cannot be signed under a {} domain",
                mandate.profile(),
                domain.profile()
            ),
        )),
    }
}

/// `tag ‖ JCS({"domain": <domain>, <name>: <body>})`: the native Ed25519 signing input.
pub fn ed25519_message(tag: &[u8], domain: &Domain, name: &str, body: Object) -> Vec<u8> {
    let mut top = Object::new();
    if let Some(d) = domain.to_json() {
        top.insert("domain", Value::Object(d));
    }
    top.insert(name, Value::Object(body));
    [tag, to_canonical(&Value::Object(top)).as_bytes()].concat()
}
