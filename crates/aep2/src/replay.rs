//! What replay protection records for an accepted mandate (spec `aep2.md#replay`).
//!
//! A mandate is accepted at most once under two keys: its mandate id (the same signed mandate
//! presented again) and its nonce key (a *different* mandate reusing the payer's nonce, which
//! the debit wallet would refuse to settle). Stores live elsewhere; the keys are defined here,
//! once, so every store and every implementation derives the same bytes.

use crate::hash::sha256;
use crate::mandate::Mandate;
use crate::profile::Domain;
use crate::uint::U256;
use crate::verify::Verified;

/// Domain tag of the nonce key.
pub const NONCE_KEY_TAG: &[u8] = b"AEP2/nonce/v1\0";

/// The keys a replay store records for one accepted mandate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    /// The mandate id (EIP-712 digest, or SHA-256 of the Ed25519 signing input).
    pub mandate_id: [u8; 32],
    /// SHA-256 of the tag, the domain, payer, token and nonce: the debit wallet's
    /// "nonce used" slot, scoped to the wallet deployment it lives in.
    pub nonce_key: [u8; 32],
    /// The mandate's deadline: after it (plus any tolerated clock skew) the mandate cannot be
    /// accepted again anyway, so the entry may be dropped.
    pub deadline: u64,
}

impl ReplayKey {
    /// The replay keys of a verified mandate.
    pub fn of(v: &Verified) -> ReplayKey {
        let mut pre = Vec::with_capacity(160);
        pre.extend_from_slice(NONCE_KEY_TAG);
        match &v.domain {
            Domain::Eip712(d) => {
                pre.push(1);
                pre.extend_from_slice(&d.chain_id.to_be_bytes());
                pre.extend_from_slice(&d.verifying_contract.0);
            }
            Domain::Ed25519(d) => {
                pre.push(2);
                pre.extend_from_slice(&(d.network.len() as u64).to_be_bytes());
                pre.extend_from_slice(d.network.as_bytes());
                pre.extend_from_slice(&d.wallet.0);
            }
            Domain::SolanaMvp => pre.push(3),
        }
        match v.mandate() {
            Mandate::Eip712(m) => {
                pre.extend_from_slice(&m.owner.0);
                pre.extend_from_slice(&m.token.0);
                pre.extend_from_slice(&m.nonce.0);
            }
            Mandate::Ed25519(m) => {
                pre.extend_from_slice(&m.payer.0);
                pre.extend_from_slice(&m.token.0);
                pre.extend_from_slice(&U256::from_u64(m.nonce).0);
            }
            Mandate::SolanaMvp(m) => {
                pre.extend_from_slice(&m.payer.0);
                pre.extend_from_slice(&m.token.0);
                pre.extend_from_slice(&U256::from_u64(m.nonce).0);
            }
        }
        ReplayKey {
            mandate_id: v.digest.id,
            nonce_key: sha256(&pre),
            deadline: v.mandate().deadline(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::secp256k1::SecretKey;
    use crate::{Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, PayerKey, Verifier, sign_mandate};

    fn verified(nonce: u64, amount: u64, chain_id: u64) -> Verified {
        let key = SecretKey::from_bytes(&[0x11; 32]).unwrap();
        let domain = Domain::Eip712(Eip712Domain {
            chain_id,
            verifying_contract: EvmAddress([0x22; 20]),
        });
        let m = Mandate::Eip712(EvmMandate {
            owner: key.address(),
            token: EvmAddress([0x33; 20]),
            payee: EvmAddress([0x44; 20]),
            amount: U256::from_u64(amount),
            nonce: U256::from_u64(nonce),
            deadline: 100,
            reference: [0; 32],
        });
        let (sm, _) = sign_mandate(&m, &domain, &PayerKey::Secp256k1(key), EnvelopeForm::Mvp).unwrap();
        Verifier::new(domain).verify_header(&sm.encode(), None).unwrap()
    }

    #[test]
    fn nonce_key_is_per_payer_token_nonce_and_domain() {
        let a = ReplayKey::of(&verified(1, 10, 1));
        let same_nonce_other_amount = ReplayKey::of(&verified(1, 20, 1));
        assert_ne!(a.mandate_id, same_nonce_other_amount.mandate_id);
        assert_eq!(a.nonce_key, same_nonce_other_amount.nonce_key);
        assert_ne!(a.nonce_key, ReplayKey::of(&verified(2, 10, 1)).nonce_key);
        assert_ne!(
            a.nonce_key,
            ReplayKey::of(&verified(1, 10, 2)).nonce_key,
            "another chain is another wallet"
        );
        assert_eq!(a.deadline, 100);
    }
}
