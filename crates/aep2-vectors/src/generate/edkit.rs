//! Builders for `ed25519` and `solana-mvp` mandates shared by the topics.

use super::ed_seed;
use crate::model::Context;
use aep2::codec::base58_encode;
use aep2::crypto::ed25519;
use aep2::hash::sha256;
use aep2::{
    Base58Key, Domain, Ed25519Domain, Ed25519Mandate, EnvelopeForm, Mandate, SignedMandate, SolanaMvpMandate,
    mandate_digest,
};
use serde_json::json;

/// Solana devnet as a CAIP-2 id.
pub(crate) const NETWORK: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
/// The FluxA MVP's Solana debit-wallet program id.
pub(crate) const PROGRAM: &str = "AnZDD6eXMV3xfhLqXWi6DUp8ebJwYCYfce8sYawVgdan";
/// USDC mint on Solana devnet (as in the MVP).
pub(crate) const MINT: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";

pub(crate) fn key(s: &str) -> Base58Key {
    Base58Key::parse(s).unwrap_or_default()
}

/// The vectors' native Ed25519 domain.
pub(crate) fn ed_domain() -> Ed25519Domain {
    Ed25519Domain {
        network: NETWORK.into(),
        wallet: key(PROGRAM),
    }
}

/// Context for the native ed25519 profile.
pub(crate) fn ed_context(now: Option<u64>) -> Context {
    Context {
        profile: Some("ed25519".into()),
        domain: Some(json!({ "network": NETWORK, "wallet": PROGRAM })),
        now,
        ..Context::default()
    }
}

/// Context for the solana-mvp profile (no domain).
pub(crate) fn sol_context(now: Option<u64>) -> Context {
    Context {
        profile: Some("solana-mvp".into()),
        now,
        ..Context::default()
    }
}

/// The public key of a labelled seed.
pub(crate) fn pubkey(label: &str) -> Base58Key {
    Base58Key(ed25519::public_key_from_seed(&ed_seed(label)))
}

/// A native mandate from payer `label`.
pub(crate) fn ed_mandate(label: &str, i: u64, deadline: u64) -> Ed25519Mandate {
    Ed25519Mandate {
        payer: pubkey(label),
        token: key(MINT),
        payee: pubkey("merchant-a"),
        amount: 750 * (i + 1),
        nonce: 987_654_321 + i,
        deadline,
        reference: sha256(format!("aep2-vectors/call/{i}").as_bytes()),
    }
}

/// A solana-mvp mandate from payer `label`.
pub(crate) fn sol_mandate(label: &str, i: u64, deadline: u64) -> SolanaMvpMandate {
    SolanaMvpMandate {
        payer: pubkey(label),
        token: key(MINT),
        payee: pubkey("merchant-a"),
        amount: 750 * (i + 1),
        nonce: 987_654_321 + i,
        deadline,
        reference: format!("api-call-{}", 1_800_000_000_000 + i),
    }
}

/// Signs `m` under `domain` with the seed of `signer_label` (which need not be the payer:
/// negative vectors sign with the wrong key) and wraps it in `form`.
pub(crate) fn sign_with(m: &Mandate, domain: &Domain, signer_label: &str, form: EnvelopeForm) -> SignedMandate {
    let msg = match mandate_digest(m, domain) {
        Ok(d) => d.signed_bytes(),
        Err(_) => Vec::new(),
    };
    SignedMandate {
        form,
        mandate: m.clone(),
        domain: (form == EnvelopeForm::Native).then(|| domain.clone()),
        signature: base58_encode(&ed25519::sign(&ed_seed(signer_label), &msg)),
        lanes: Vec::new(),
    }
}

/// The signed bytes of `m` under `domain` (tests compare hand-built bytes against it).
#[cfg(test)]
pub(crate) fn signed_bytes(m: &Mandate, domain: &Domain) -> Vec<u8> {
    mandate_digest(m, domain).map(|d| d.signed_bytes()).unwrap_or_default()
}
