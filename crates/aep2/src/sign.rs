//! Mandate signing for wallet vendors (spec `aep2.md#profiles`).
//!
//! Output is byte-identical to the FluxA MVP's libraries for the same key and mandate:
//! ethers v6 `signTypedData` (RFC 6979, low s, v ∈ {27, 28}) and tweetnacl
//! `sign.detached` (RFC 8032).

use crate::address::Base58Key;
use crate::codec::{base58_encode, hex_encode_0x};
use crate::crypto::{ed25519, secp256k1};
use crate::digest::{MandateDigest, SigningInput, mandate_digest};
use crate::envelope::{EnvelopeForm, SignedMandate};
use crate::error::{Error, Result};
use crate::lane::{SignedLane, check_chain_policy, check_chain_signatures, lane_mandate_digest};
use crate::mandate::Mandate;
use crate::profile::{Domain, Profile};
use crate::reason::Reason;

/// A payer's signing key.
#[derive(Clone, Debug)]
pub enum PayerKey {
    /// secp256k1 private key (`eip712`).
    Secp256k1(secp256k1::SecretKey),
    /// Ed25519 32-byte seed (`ed25519`, `solana-mvp`).
    Ed25519([u8; 32]),
}

impl PayerKey {
    /// The signer identity as it appears in a mandate (`owner` or `payer`).
    pub fn signer(&self) -> String {
        match self {
            PayerKey::Secp256k1(k) => k.address().to_checksum(),
            PayerKey::Ed25519(seed) => Base58Key(ed25519::public_key_from_seed(seed)).to_string(),
        }
    }

    /// Signs a signing input, returning the signature in the profile's wire encoding.
    ///
    /// Errors with `profile_mismatch` when the key type does not fit the input.
    pub fn sign_input(&self, input: &SigningInput) -> Result<String> {
        match (self, input) {
            (PayerKey::Secp256k1(k), SigningInput::Eip712(parts)) => Ok(hex_encode_0x(&k.sign_prehash(&parts.digest))),
            (PayerKey::Ed25519(seed), SigningInput::Message(msg)) => Ok(base58_encode(&ed25519::sign(seed, msg))),
            _ => Err(Error::new(
                Reason::ProfileMismatch,
                "key type does not match the profile",
            )),
        }
    }
}

/// Signs `mandate` under `domain` and wraps it in an envelope of `form`.
///
/// The key must be the mandate's signer: a wallet that signs for someone else's account
/// produces a mandate every verifier rejects, so this refuses with `signature_invalid`.
/// solana-mvp mandates only travel in the MVP form.
pub fn sign_mandate(
    mandate: &Mandate,
    domain: &Domain,
    key: &PayerKey,
    form: EnvelopeForm,
) -> Result<(SignedMandate, MandateDigest)> {
    if key.signer() != mandate.signer() {
        return Err(Error::new(
            Reason::SignatureInvalid,
            format!(
                "key belongs to {}, mandate signer is {}",
                key.signer(),
                mandate.signer()
            ),
        ));
    }
    if form == EnvelopeForm::Native && domain.profile() == Profile::SolanaMvp {
        return Err(Error::new(
            Reason::UnsupportedProfile,
            "solana-mvp mandates travel only in the MVP envelope",
        ));
    }
    let digest = mandate_digest(mandate, domain)?;
    let signature = key.sign_input(&digest.input)?;
    let signed = SignedMandate {
        form,
        mandate: mandate.clone(),
        domain: (form == EnvelopeForm::Native).then(|| domain.clone()),
        signature,
        lanes: Vec::new(),
    };
    Ok((signed, digest))
}

/// Signs `mandate` under the lane chain `lanes` (root first) with the leaf agent's key and
/// wraps it, with the chain, in an envelope of `form` (spec `aep2.md#lane-mandate`).
///
/// Refuses what every verifier would reject whatever the time: a key that is not the leaf's
/// agent's (`signature_invalid`), a mandate for another owner (`lane_agent_mismatch`), a broken
/// or wider chain, a mandate outside the lane's asset, cap, payees or end, and a header over the
/// limit (`header_too_large`).
pub fn sign_lane_mandate(
    mandate: &Mandate,
    domain: &Domain,
    key: &PayerKey,
    form: EnvelopeForm,
    lanes: &[SignedLane],
) -> Result<(SignedMandate, MandateDigest)> {
    let Some(leaf) = lanes.last() else {
        return Err(Error::new(Reason::LaneDepthExceeded, "no lane to sign under"));
    };
    if domain.profile() == Profile::SolanaMvp {
        return Err(Error::new(
            Reason::UnsupportedProfile,
            "solana-mvp mandates have no lanes",
        ));
    }
    if key.signer() != leaf.lane.agent.to_string() {
        return Err(Error::new(
            Reason::SignatureInvalid,
            format!(
                "key belongs to {}, the leaf lane's agent is {}",
                key.signer(),
                leaf.lane.agent
            ),
        ));
    }
    let ids = check_chain_signatures(lanes, domain)?;
    check_chain_policy(lanes, mandate, None)?;
    let digest = lane_mandate_digest(mandate, domain, ids.last().unwrap_or(&[0; 32]))?;
    let signature = key.sign_input(&digest.input)?;
    let signed = SignedMandate {
        form,
        mandate: mandate.clone(),
        domain: (form == EnvelopeForm::Native).then(|| domain.clone()),
        signature,
        lanes: lanes.to_vec(),
    };
    let header = signed.encode().len();
    if header > crate::envelope::MAX_HEADER_BYTES {
        return Err(Error::new(
            Reason::HeaderTooLarge,
            format!(
                "the header would be {header} bytes, limit {}",
                crate::envelope::MAX_HEADER_BYTES
            ),
        ));
    }
    Ok((signed, digest))
}
