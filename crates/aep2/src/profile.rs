//! Signature profiles and their domains (spec `aep2.md#profiles`).

use crate::address::{Base58Key, EvmAddress};
use crate::error::{Error, Result};
use crate::json::{Object, Value};
use crate::reason::Reason;
use crate::schema::Fields;
use crate::uint::parse_json_integer;
use core::fmt;

/// A signature profile: which curve, which mandate shape, which signed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// secp256k1 EIP-712, byte-compatible with the FluxA MVP debit wallet.
    Eip712,
    /// Ed25519 over a domain-separated RFC 8785 encoding (native AEP2).
    Ed25519,
    /// The FluxA MVP's Solana format: Ed25519 over the MVP's JSON text.
    SolanaMvp,
}

impl Profile {
    /// All profiles.
    pub const ALL: [Profile; 3] = [Profile::Eip712, Profile::Ed25519, Profile::SolanaMvp];

    /// The profile's wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Profile::Eip712 => "eip712",
            Profile::Ed25519 => "ed25519",
            Profile::SolanaMvp => "solana-mvp",
        }
    }

    /// Parses a wire name (`unsupported_profile` otherwise).
    pub fn parse(name: &str) -> Result<Profile> {
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| Error::new(Reason::UnsupportedProfile, format!("unknown profile {name:?}")))
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The EIP-712 domain of a debit wallet deployment. Name and version are fixed by the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Eip712Domain {
    /// EIP-155 chain id of the chain the wallet lives on.
    pub chain_id: u64,
    /// The debit-wallet contract.
    pub verifying_contract: EvmAddress,
}

/// The domain of a native Ed25519 mandate: which network and which wallet program.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ed25519Domain {
    /// CAIP-2 network id, e.g. `solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1`.
    pub network: String,
    /// The debit-wallet program or account id.
    pub wallet: Base58Key,
}

/// What a mandate is signed for: a profile together with its domain.
///
/// Verifiers pass the domain they expect; native envelopes also carry the one they claim.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    /// An EIP-712 deployment.
    Eip712(Eip712Domain),
    /// A native Ed25519 deployment.
    Ed25519(Ed25519Domain),
    /// The MVP Solana format, which signs no domain at all.
    SolanaMvp,
}

impl Domain {
    /// The profile this domain belongs to.
    pub fn profile(&self) -> Profile {
        match self {
            Domain::Eip712(_) => Profile::Eip712,
            Domain::Ed25519(_) => Profile::Ed25519,
            Domain::SolanaMvp => Profile::SolanaMvp,
        }
    }

    /// The domain as the JSON object of a native envelope (`None` for solana-mvp).
    pub fn to_json(&self) -> Option<Object> {
        match self {
            Domain::Eip712(d) => Some(
                Object::new()
                    .with("chainId", Value::from_u64(d.chain_id))
                    .with("verifyingContract", Value::String(d.verifying_contract.to_checksum())),
            ),
            Domain::Ed25519(d) => Some(
                Object::new()
                    .with("network", Value::String(d.network.clone()))
                    .with("wallet", Value::String(d.wallet.to_string())),
            ),
            Domain::SolanaMvp => None,
        }
    }

    /// Parses the `domain` object of a native envelope for `profile`.
    ///
    /// Every malformation inside the domain is `domain_invalid`: the domain is one unit, and a
    /// verifier that cannot read it cannot compare it.
    pub fn from_json(profile: Profile, v: &Value) -> Result<Domain> {
        let inner = || -> Result<Domain> {
            match profile {
                Profile::Eip712 => {
                    let f = Fields::new(v, "domain", &["chainId", "verifyingContract"])?;
                    let chain_id = parse_json_integer(f.number("chainId")?)?;
                    if chain_id == 0 {
                        return Err(Error::new(Reason::UintOutOfRange, "chainId must be at least 1"));
                    }
                    let verifying_contract = EvmAddress::parse(f.string("verifyingContract")?)?;
                    Ok(Domain::Eip712(Eip712Domain {
                        chain_id,
                        verifying_contract,
                    }))
                }
                Profile::Ed25519 => {
                    let f = Fields::new(v, "domain", &["network", "wallet"])?;
                    let network = f.string("network")?;
                    check_caip2(network)?;
                    let wallet = Base58Key::parse(f.string("wallet")?)?;
                    Ok(Domain::Ed25519(Ed25519Domain {
                        network: network.to_owned(),
                        wallet,
                    }))
                }
                Profile::SolanaMvp => Err(Error::new(
                    Reason::UnsupportedProfile,
                    "solana-mvp has no native envelope",
                )),
            }
        };
        inner().map_err(|e| {
            if e.reason() == Reason::UnsupportedProfile {
                e
            } else {
                Error::new(Reason::DomainInvalid, format!("domain: {e}"))
            }
        })
    }
}

/// Checks a CAIP-2 chain id: `namespace:reference`, namespace `[-a-z0-9]{3,8}`,
/// reference `[-_a-zA-Z0-9]{1,32}`.
pub fn check_caip2(s: &str) -> Result<()> {
    let ok = match s.split_once(':') {
        Some((ns, r)) => {
            (3..=8).contains(&ns.len())
                && ns
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && (1..=32).contains(&r.len())
                && r.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            Reason::DomainInvalid,
            format!("{s:?} is not a CAIP-2 network id"),
        ))
    }
}
