//! Strict mandate verification for merchants (spec `aep2.md#verification-order`).
//!
//! Stages run in the normative order decode → schema → signature → policy and stop at the
//! first fault, so every conforming verifier reports the same code for the same input.
//! The payee policy ([`crate::policy`]: payee, asset, price, deadline window, request binding)
//! and replay protection ([`crate::replay`] keys, stored by the `aep2-replay` crate) layer on top
//! of [`Verified`].

use crate::address::EvmAddress;
use crate::codec::base58_decode;
use crate::crypto::ed25519::{Ed25519PublicKey, KeyCache};
use crate::crypto::secp256k1;
use crate::digest::{MandateDigest, SigningInput, mandate_digest};
use crate::envelope::{SignedMandate, decode_header};
use crate::error::{Error, Result};
use crate::json::Value;
use crate::lane::{check_chain_policy, check_chain_signatures, lane_mandate_digest};
use crate::mandate::Mandate;
use crate::policy::AccountId;
use crate::profile::Domain;
use crate::reason::Reason;
use std::sync::{Mutex, PoisonError};

/// How many validated Ed25519 keys a verifier remembers.
pub const KEY_CACHE_CAPACITY: usize = 4096;

/// A successfully verified mandate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The mandate and how it travelled.
    pub signed: SignedMandate,
    /// Its signing input, id and digest.
    pub digest: MandateDigest,
    /// The domain it was verified under (the verifier's; a native envelope's equals it).
    pub domain: Domain,
}

impl Verified {
    /// The verified signer in display form: the mandate's owner or payer, or under a lane the
    /// leaf lane's agent.
    pub fn signer(&self) -> String {
        match self.signed.lanes.last() {
            Some(leaf) => leaf.lane.agent.to_string(),
            None => self.signed.mandate.signer(),
        }
    }

    /// The mandate.
    pub fn mandate(&self) -> &Mandate {
        &self.signed.mandate
    }

    /// The id of the leaf lane it is signed under (`None` for a plain mandate): what its
    /// receipt's `lane` must name ([`crate::ReceiptExpectations::lane`]).
    pub fn leaf_lane(&self) -> Option<[u8; 32]> {
        self.signed
            .lanes
            .last()
            .and_then(|leaf| leaf.lane.digest(&self.domain).ok())
            .map(|d| d.id)
    }
}

/// Everything a verification found out, also on failure: vectors and `aep2 inspect` show the
/// digest and the recovered address of a rejected mandate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The schema-checked envelope, if decoding and schema checks passed.
    pub signed: Option<SignedMandate>,
    /// The signing input, if the envelope was readable.
    pub digest: Option<MandateDigest>,
    /// The address recovered from a secp256k1 signature (even if it is not the owner).
    pub recovered: Option<EvmAddress>,
    /// The domain the signature was checked under.
    pub domain: Option<Domain>,
    /// The verdict.
    pub verdict: Result<()>,
}

impl Report {
    /// A report for a verification that stopped before the signature stage.
    pub fn failed(signed: Option<SignedMandate>, error: Error) -> Report {
        Report {
            signed,
            digest: None,
            recovered: None,
            domain: None,
            verdict: Err(error),
        }
    }

    /// Converts to a plain result.
    pub fn into_result(self) -> Result<Verified> {
        self.verdict?;
        match (self.signed, self.digest, self.domain) {
            (Some(signed), Some(digest), Some(domain)) => Ok(Verified { signed, digest, domain }),
            _ => Err(Error::new(Reason::JsonInvalid, "incomplete report")),
        }
    }
}

/// A mandate verifier bound to the domain it accepts mandates for.
///
/// Cheap to share across threads; it caches validated Ed25519 keys because key validation
/// (the torsion check) costs as much as a signature check and merchants see the same payers
/// repeatedly.
#[derive(Debug)]
pub struct Verifier {
    expected: Domain,
    keys: Mutex<KeyCache>,
}

impl Verifier {
    /// A verifier for mandates signed under `expected`.
    pub fn new(expected: Domain) -> Verifier {
        Verifier {
            expected,
            keys: Mutex::new(KeyCache::new(KEY_CACHE_CAPACITY)),
        }
    }

    /// The domain this verifier accepts.
    pub fn expected(&self) -> &Domain {
        &self.expected
    }

    /// Verifies a header value (base64 envelope). `now` (unix seconds) enables the deadline
    /// check; `None` skips it.
    pub fn verify_header(&self, header: &str, now: Option<u64>) -> Result<Verified> {
        self.check_header(header, now).into_result()
    }

    /// Like [`Verifier::verify_header`], returning the full [`Report`].
    pub fn check_header(&self, header: &str, now: Option<u64>) -> Report {
        match decode_header(header) {
            Ok(v) => self.check_value(&v, now),
            Err(e) => Report::failed(None, e),
        }
    }

    /// Verifies an already-decoded envelope JSON value.
    pub fn check_value(&self, v: &Value, now: Option<u64>) -> Report {
        match SignedMandate::from_json(v, self.expected.profile()) {
            Ok(sm) => self.check_signed(sm, now),
            Err(e) => Report::failed(None, e),
        }
    }

    /// Signature and policy stages for a schema-checked envelope.
    pub fn check_signed(&self, sm: SignedMandate, now: Option<u64>) -> Report {
        // A native envelope is verified over the domain it claims, so a mandate validly signed
        // for another deployment is reported as `domain_mismatch` rather than a bad signature.
        let domain = sm.domain.clone().unwrap_or_else(|| self.expected.clone());
        let digest = if sm.lanes.is_empty() {
            mandate_digest(&sm.mandate, &domain)
        } else {
            // The chain first: its links' signatures are checked before the mandate's, which
            // binds the leaf's id (spec `aep2.md#lane-verification`).
            check_chain_signatures(&sm.lanes, &domain)
                .and_then(|ids| lane_mandate_digest(&sm.mandate, &domain, ids.last().unwrap_or(&[0; 32])))
        };
        let digest = match digest {
            Ok(d) => d,
            Err(e) => return Report::failed(Some(sm), e),
        };
        let mut recovered = None;
        let verdict = self
            .check_signature(&sm, &digest, &mut recovered)
            .and_then(|()| self.check_policy(&sm, now));
        Report {
            signed: Some(sm),
            digest: Some(digest),
            recovered,
            domain: Some(domain),
            verdict,
        }
    }

    fn check_signature(
        &self,
        sm: &SignedMandate,
        digest: &MandateDigest,
        recovered: &mut Option<EvmAddress>,
    ) -> Result<()> {
        // Under a lane the declared signer is the leaf's agent, otherwise the owner (payer).
        let agent = sm.lanes.last().map(|leaf| &leaf.lane.agent);
        match (&sm.mandate, &digest.input) {
            (Mandate::Eip712(m), SigningInput::Eip712(parts)) => {
                let expected = match agent {
                    Some(AccountId::Evm(a)) => *a,
                    Some(AccountId::Base58(_)) => {
                        return Err(Error::new(Reason::ProfileMismatch, "an eip712 lane has EVM accounts"));
                    }
                    None => m.owner,
                };
                let sig = secp256k1::parse_signature(&sm.signature)?;
                let signer = secp256k1::recover(&parts.digest, &sig)?;
                *recovered = Some(signer);
                if signer != expected {
                    let role = if agent.is_some() {
                        "leaf lane's agent"
                    } else {
                        "mandate owner"
                    };
                    return Err(Error::new(
                        Reason::SignatureInvalid,
                        format!("signature recovers to {signer}, the {role} is {expected}"),
                    ));
                }
                Ok(())
            }
            (Mandate::Ed25519(m), SigningInput::Message(msg)) => {
                let key = match agent {
                    Some(AccountId::Base58(k)) => k.0,
                    Some(AccountId::Evm(_)) => {
                        return Err(Error::new(
                            Reason::ProfileMismatch,
                            "an ed25519 lane has base58 accounts",
                        ));
                    }
                    None => m.payer.0,
                };
                self.check_ed25519(&key, msg, &sm.signature)
            }
            (Mandate::SolanaMvp(m), SigningInput::Message(msg)) => self.check_ed25519(&m.payer.0, msg, &sm.signature),
            _ => Err(Error::new(
                Reason::ProfileMismatch,
                "signing input does not match the mandate's profile",
            )),
        }
    }

    fn check_ed25519(&self, key: &[u8; 32], msg: &[u8], sig_text: &str) -> Result<()> {
        let sig = parse_ed25519_signature(sig_text)?;
        let cached = self.keys.lock().unwrap_or_else(PoisonError::into_inner).get(key);
        let key = match cached {
            Some(k) => k,
            None => {
                // Validated without holding the lock: the torsion check is the slow part.
                let k = Ed25519PublicKey::validate(key).map_err(|r| Error::new(r, "payer key"))?;
                self.keys.lock().unwrap_or_else(PoisonError::into_inner).insert(k);
                k
            }
        };
        crate::crypto::ed25519::verify(&key, msg, &sig).map_err(|r| Error::new(r, "payer signature"))
    }

    fn check_policy(&self, sm: &SignedMandate, now: Option<u64>) -> Result<()> {
        if let Some(claimed) = &sm.domain
            && *claimed != self.expected
        {
            return Err(Error::new(
                Reason::DomainMismatch,
                "the envelope is signed for another domain",
            ));
        }
        if let Some(now) = now {
            let deadline = sm.mandate.deadline();
            if now > deadline {
                return Err(Error::new(
                    Reason::Expired,
                    format!("deadline {deadline} is before now ({now})"),
                ));
            }
        }
        if !sm.lanes.is_empty() {
            check_chain_policy(&sm.lanes, &sm.mandate, now)?;
        }
        Ok(())
    }
}

/// Decodes an Ed25519 signature's wire form (base58 of exactly 64 bytes).
pub fn parse_ed25519_signature(text: &str) -> Result<[u8; 64]> {
    if !crate::codec::is_base58(text) {
        return Err(Error::new(Reason::SignatureEncoding, "signature is not base58"));
    }
    base58_decode::<64>(text).ok_or_else(|| Error::new(Reason::SignatureLength, "signature is not 64 bytes"))
}
