//! Spending lanes (spec `aep2.md#lanes`): a budget an owner delegates to an agent, and the agent
//! to its sub-agents, signed link by link; mandates signed by the leaf's agent under it; and the
//! stateless rules every verifier checks offline.
//!
//! The cumulative limits (`total`, `maxPayments`, the periodic allowance) and revocation are
//! state that only the settlement processor can keep (spec `aep2.md#lane-settlement`).

use crate::address::{Base58Key, EvmAddress};
use crate::codec::{hex_decode_0x, hex_encode_0x};
use crate::crypto::{ed25519, secp256k1};
use crate::digest::{MandateDigest, SigningInput, ed25519_message};
use crate::eip712::{Eip712Parts, WALLET_DOMAIN_NAME, domain_separator};
use crate::error::{Error, Result};
use crate::hash::{keccak256, keccak256_parts, sha256};
use crate::json::{Object, Value};
use crate::mandate::Mandate;
use crate::policy::AccountId;
use crate::profile::{Domain, Profile};
use crate::reason::Reason;
use crate::schema::Fields;
use crate::sign::PayerKey;
use crate::uint::{U256, parse_decimal_u64, parse_json_integer};
use std::sync::LazyLock;

/// The most links a lane chain has (owner → agent → sub-agent → its sub-agent).
pub const MAX_LANE_DEPTH: usize = 3;
/// The most payees a lane lists.
pub const MAX_LANE_PAYEES: usize = 8;
/// The longest `purpose`, in bytes of UTF-8.
pub const MAX_PURPOSE_BYTES: usize = 64;

/// The lane's EIP-712 type.
pub const LANE_TYPE: &str = "Lane(address owner,address agent,address token,uint256 perPayment,uint256 total,\
uint256 maxPayments,uint256 period,uint256 allowance,address[] payees,uint256 validFrom,uint256 validUntil,\
string purpose,bytes32 parent,bytes32 salt)";
/// The EIP-712 type a leaf agent signs a mandate under: the mandate and the leaf lane's id.
pub const LANE_MANDATE_TYPE: &str = "LaneMandate(address owner,address token,address payee,uint256 amount,\
uint256 nonce,uint256 deadline,bytes32 ref,bytes32 lane)";
/// Prefix of the native Ed25519 lane signing input.
pub const ED25519_LANE_TAG: &[u8] = b"AEP2/ed25519/lane/v1\0";
/// Prefix of the native Ed25519 signing input of a mandate under a lane.
pub const ED25519_LANE_MANDATE_TAG: &[u8] = b"AEP2/ed25519/lane-mandate/v1\0";

static LANE_TYPEHASH: LazyLock<[u8; 32]> = LazyLock::new(|| keccak256(LANE_TYPE.as_bytes()));
static LANE_MANDATE_TYPEHASH: LazyLock<[u8; 32]> = LazyLock::new(|| keccak256(LANE_MANDATE_TYPE.as_bytes()));

/// The members of a lane, in definition order.
pub const LANE_FIELDS: [&str; 14] = [
    "owner",
    "agent",
    "token",
    "perPayment",
    "total",
    "maxPayments",
    "period",
    "allowance",
    "payees",
    "validFrom",
    "validUntil",
    "purpose",
    "parent",
    "salt",
];

/// A lane: what its agent may spend of its owner's funds (spec `aep2.md#lane-object`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    /// `eip712` or `ed25519`: the kind of its accounts and of its signature.
    pub profile: Profile,
    /// Whose funds.
    pub owner: AccountId,
    /// Who may sign under it.
    pub agent: AccountId,
    /// The only asset.
    pub token: AccountId,
    /// The most one mandate may debit.
    pub per_payment: U256,
    /// The most every mandate under it may debit together.
    pub total: U256,
    /// The most mandates under it; 0: no limit.
    pub max_payments: u64,
    /// The allowance window in seconds; 0: none.
    pub period: u64,
    /// The most debited per window (zero when `period` is 0).
    pub allowance: U256,
    /// The payees it may pay; empty: any.
    pub payees: Vec<AccountId>,
    /// The first second it may be used.
    pub valid_from: u64,
    /// The last second it may be used, and the latest deadline of a mandate under it.
    pub valid_until: u64,
    /// A label for people.
    pub purpose: String,
    /// The parent lane's id; zero for a root lane.
    pub parent: [u8; 32],
    /// Distinguishes otherwise equal grants.
    pub salt: [u8; 32],
}

/// A lane with its grantor's signature, as it travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedLane {
    /// The lane.
    pub lane: Lane,
    /// The grantor's signature text (`0x` hex or base58).
    pub signature: String,
}

fn at<T>(name: &str, r: Result<T>) -> Result<T> {
    r.map_err(|e| e.at(&format!("lane.{name}")))
}

fn bytes32(text: &str) -> Result<[u8; 32]> {
    let b = text.as_bytes();
    let lower_hex = |c: &u8| c.is_ascii_digit() || (b'a'..=b'f').contains(c);
    match hex_decode_0x(text) {
        Some(bytes) if b.len() == 66 && b[2..].iter().all(lower_hex) => {
            let mut r = [0u8; 32];
            r.copy_from_slice(&bytes);
            Ok(r)
        }
        _ => Err(Error::new(
            Reason::RefInvalid,
            format!("{text:?} is not 0x followed by 64 lowercase hex digits"),
        )),
    }
}

fn account(profile: Profile, text: &str) -> Result<AccountId> {
    match profile {
        Profile::Eip712 => EvmAddress::parse(text).map(AccountId::Evm),
        _ => Base58Key::parse(text).map(AccountId::Base58),
    }
}

fn amount(profile: Profile, text: &str) -> Result<U256> {
    match profile {
        Profile::Eip712 => U256::parse_decimal(text),
        _ => parse_decimal_u64(text).map(U256::from_u64),
    }
}

fn nonzero(v: U256) -> Result<U256> {
    if v.is_zero() {
        Err(Error::new(Reason::AmountZero, "must be at least 1"))
    } else {
        Ok(v)
    }
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(Reason::LaneInvalid, message)
}

impl Lane {
    /// Parses a lane object of `profile` (`eip712` or `ed25519`): member set, then each member's
    /// type and format in definition order, then the value rules (`lane_invalid`).
    pub fn from_json(profile: Profile, v: &Value) -> Result<Lane> {
        if profile == Profile::SolanaMvp {
            return Err(Error::new(Reason::UnsupportedProfile, "solana-mvp has no lanes"));
        }
        let f = Fields::new(v, "lane", &LANE_FIELDS)?;
        let acct = |name: &str| at(name, f.string(name).and_then(|t| account(profile, t)));
        let owner = acct("owner")?;
        let agent = acct("agent")?;
        let token = acct("token")?;
        let per_payment = at(
            "perPayment",
            f.string("perPayment")
                .and_then(|t| amount(profile, t))
                .and_then(nonzero),
        )?;
        let total = at(
            "total",
            f.string("total").and_then(|t| amount(profile, t)).and_then(nonzero),
        )?;
        let max_payments = at("maxPayments", f.number("maxPayments").and_then(parse_json_integer))?;
        let period = at("period", f.number("period").and_then(parse_json_integer))?;
        let allowance = at("allowance", f.string("allowance").and_then(|t| amount(profile, t)))?;
        let payees = match f.value("payees")? {
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(t) => at("payees", account(profile, t)),
                    other => Err(Error::new(
                        Reason::FieldType,
                        format!("lane.payees: an element must be a string, found {}", other.type_name()),
                    )),
                })
                .collect::<Result<Vec<_>>>()?,
            other => {
                return Err(Error::new(
                    Reason::FieldType,
                    format!("lane.payees must be an array, found {}", other.type_name()),
                ));
            }
        };
        let valid_from = at("validFrom", f.number("validFrom").and_then(parse_json_integer))?;
        let valid_until = at("validUntil", f.number("validUntil").and_then(parse_json_integer))?;
        let purpose = f.string("purpose")?.to_owned();
        let parent = at("parent", f.string("parent").and_then(bytes32))?;
        let salt = at("salt", f.string("salt").and_then(bytes32))?;
        let lane = Lane {
            profile,
            owner,
            agent,
            token,
            per_payment,
            total,
            max_payments,
            period,
            allowance,
            payees,
            valid_from,
            valid_until,
            purpose,
            parent,
            salt,
        };
        lane.check_values()?;
        Ok(lane)
    }

    /// The value rules of spec `aep2.md#lane-object`, in the order of its table.
    pub fn check_values(&self) -> Result<()> {
        if (self.period == 0) != self.allowance.is_zero() {
            return Err(invalid(
                "allowance must be \"0\" exactly when period is 0, and at least 1 otherwise",
            ));
        }
        if self.payees.len() > MAX_LANE_PAYEES {
            return Err(invalid(format!(
                "{} payees, at most {MAX_LANE_PAYEES}",
                self.payees.len()
            )));
        }
        for (i, p) in self.payees.iter().enumerate() {
            if self.payees[..i].contains(p) {
                return Err(invalid(format!("payee {p} is listed twice")));
            }
        }
        if self.valid_until < self.valid_from {
            return Err(invalid("validUntil is before validFrom"));
        }
        if self.purpose.len() > MAX_PURPOSE_BYTES {
            return Err(invalid(format!(
                "purpose is {} bytes, at most {MAX_PURPOSE_BYTES}",
                self.purpose.len()
            )));
        }
        // Characters JSON escapes would multiply the purpose's size on the wire.
        if self.purpose.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
            return Err(invalid("purpose has a control character, a quote or a backslash"));
        }
        Ok(())
    }

    /// The lane's JSON object, members in definition order, values in canonical text.
    pub fn to_json(&self) -> Object {
        let s = |t: String| Value::String(t);
        Object::new()
            .with("owner", s(self.owner.to_string()))
            .with("agent", s(self.agent.to_string()))
            .with("token", s(self.token.to_string()))
            .with("perPayment", s(self.per_payment.to_string()))
            .with("total", s(self.total.to_string()))
            .with("maxPayments", Value::from_u64(self.max_payments))
            .with("period", Value::from_u64(self.period))
            .with("allowance", s(self.allowance.to_string()))
            .with(
                "payees",
                Value::Array(self.payees.iter().map(|p| s(p.to_string())).collect()),
            )
            .with("validFrom", Value::from_u64(self.valid_from))
            .with("validUntil", Value::from_u64(self.valid_until))
            .with("purpose", s(self.purpose.clone()))
            .with("parent", s(hex_encode_0x(&self.parent)))
            .with("salt", s(hex_encode_0x(&self.salt)))
    }

    /// Whether this is a root lane (`parent` zero, signed by the owner).
    pub fn is_root(&self) -> bool {
        self.parent == [0; 32]
    }

    /// The signing input and the lane id under `domain` (spec `aep2.md#lane-signing`).
    pub fn digest(&self, domain: &Domain) -> Result<LaneDigest> {
        match (self.profile, domain) {
            (Profile::Eip712, Domain::Eip712(d)) => {
                let word = |a: &AccountId| match a {
                    AccountId::Evm(e) => Ok(e.to_word()),
                    AccountId::Base58(_) => Err(Error::new(Reason::ProfileMismatch, "an eip712 lane has EVM accounts")),
                };
                let mut payees = Vec::with_capacity(32 * self.payees.len());
                for p in &self.payees {
                    payees.extend_from_slice(&word(p)?);
                }
                let struct_hash = keccak256_parts(&[
                    &*LANE_TYPEHASH,
                    &word(&self.owner)?,
                    &word(&self.agent)?,
                    &word(&self.token)?,
                    &self.per_payment.0,
                    &self.total.0,
                    &U256::from_u64(self.max_payments).0,
                    &U256::from_u64(self.period).0,
                    &self.allowance.0,
                    &keccak256(&payees),
                    &U256::from_u64(self.valid_from).0,
                    &U256::from_u64(self.valid_until).0,
                    &keccak256(self.purpose.as_bytes()),
                    &self.parent,
                    &self.salt,
                ]);
                let parts = Eip712Parts::of(domain_separator(WALLET_DOMAIN_NAME, d), struct_hash);
                Ok(LaneDigest {
                    id: parts.digest,
                    input: SigningInput::Eip712(parts),
                })
            }
            (Profile::Ed25519, Domain::Ed25519(_)) => {
                let msg = ed25519_message(ED25519_LANE_TAG, domain, "lane", self.to_json());
                Ok(LaneDigest {
                    id: sha256(&msg),
                    input: SigningInput::Message(msg),
                })
            }
            _ => Err(Error::new(
                Reason::ProfileMismatch,
                format!(
                    "a {} lane cannot be signed under a {} domain",
                    self.profile,
                    domain.profile()
                ),
            )),
        }
    }

    /// Whether this lane is no wider than `parent` on every dimension (spec `aep2.md#lane-chain`,
    /// rules 1 to 6); `Err` names the first dimension that is wider.
    pub fn within(&self, parent: &Lane) -> std::result::Result<(), &'static str> {
        if self.owner != parent.owner {
            return Err("owner differs from the parent's");
        }
        if self.token != parent.token {
            return Err("token differs from the parent's");
        }
        if self.per_payment > parent.per_payment {
            return Err("perPayment above the parent's");
        }
        if self.total > parent.total {
            return Err("total above the parent's");
        }
        if parent.max_payments != 0 && (self.max_payments == 0 || self.max_payments > parent.max_payments) {
            return Err("maxPayments above the parent's");
        }
        if parent.period != 0 && (self.period != parent.period || self.allowance > parent.allowance) {
            return Err("period or allowance wider than the parent's");
        }
        if !parent.payees.is_empty()
            && (self.payees.is_empty() || self.payees.iter().any(|p| !parent.payees.contains(p)))
        {
            return Err("payees outside the parent's");
        }
        if self.valid_from < parent.valid_from || self.valid_until > parent.valid_until {
            return Err("validity window outside the parent's");
        }
        Ok(())
    }
}

/// A lane's signing input and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneDigest {
    /// What the grantor signs.
    pub input: SigningInput,
    /// The lane id: the EIP-712 digest, or SHA-256 of the Ed25519 message.
    pub id: [u8; 32],
}

impl SignedLane {
    /// Parses a signed lane `{"lane", "signature"}` of `profile`.
    pub fn from_json(profile: Profile, v: &Value) -> Result<SignedLane> {
        let f = Fields::new(v, "signed lane", &["lane", "signature"])?;
        let lane = Lane::from_json(profile, f.value("lane")?)?;
        let signature = f.string("signature")?.to_owned();
        Ok(SignedLane { lane, signature })
    }

    /// The signed lane's JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(
            Object::new()
                .with("lane", Value::Object(self.lane.to_json()))
                .with("signature", Value::String(self.signature.clone())),
        )
    }
}

/// Parses an envelope's `lanes` member (spec `aep2.md#lane-envelope`): an array of 1 to
/// [`MAX_LANE_DEPTH`] signed lanes (else `lane_depth_exceeded`).
pub fn parse_chain(profile: Profile, v: &Value) -> Result<Vec<SignedLane>> {
    let Value::Array(items) = v else {
        return Err(Error::new(
            Reason::FieldType,
            format!("envelope.lanes must be an array, found {}", v.type_name()),
        ));
    };
    if items.is_empty() || items.len() > MAX_LANE_DEPTH {
        return Err(Error::new(
            Reason::LaneDepthExceeded,
            format!("{} links, from 1 to {MAX_LANE_DEPTH}", items.len()),
        ));
    }
    items.iter().map(|item| SignedLane::from_json(profile, item)).collect()
}

/// Signs `lane` under `domain` with the grantor's key: the owner's for a root lane, the
/// `parent` lane's agent's for a sub-lane. Refuses what every verifier would reject: a lane that
/// breaks a schema or value rule (its code), a key that is not the grantor's
/// (`signature_invalid`), a sub-lane whose `parent` is not the given parent's id
/// (`lane_chain_invalid`), and a sub-lane wider than its parent (`lane_attenuation_invalid`).
/// The depth of the chain is the caller's to check ([`MAX_LANE_DEPTH`]).
pub fn sign_lane(lane: &Lane, parent: Option<&SignedLane>, domain: &Domain, key: &PayerKey) -> Result<SignedLane> {
    // Every schema and value rule, as a verifier will read the lane.
    Lane::from_json(lane.profile, &Value::Object(lane.to_json()))?;
    let grantor = match parent {
        None => {
            if !lane.is_root() {
                return Err(Error::new(
                    Reason::LaneChainInvalid,
                    "a lane without a parent must have parent 0x00…00",
                ));
            }
            &lane.owner
        }
        Some(p) => {
            if lane.parent != p.lane.digest(domain)?.id {
                return Err(Error::new(
                    Reason::LaneChainInvalid,
                    "parent is not the given parent lane's id",
                ));
            }
            lane.within(&p.lane)
                .map_err(|why| Error::new(Reason::LaneAttenuationInvalid, why))?;
            &p.lane.agent
        }
    };
    if key.signer() != grantor.to_string() {
        return Err(Error::new(
            Reason::SignatureInvalid,
            format!("key belongs to {}, the lane's grantor is {grantor}", key.signer()),
        ));
    }
    let digest = lane.digest(domain)?;
    Ok(SignedLane {
        lane: lane.clone(),
        signature: key.sign_input(&digest.input)?,
    })
}

/// The signing input of `mandate` under the lane whose id is `leaf` (spec
/// `aep2.md#lane-mandate`); the mandate id is its digest.
pub fn lane_mandate_digest(mandate: &Mandate, domain: &Domain, leaf: &[u8; 32]) -> Result<MandateDigest> {
    match (mandate, domain) {
        (Mandate::Eip712(m), Domain::Eip712(d)) => {
            let struct_hash = keccak256_parts(&[
                &*LANE_MANDATE_TYPEHASH,
                &m.owner.to_word(),
                &m.token.to_word(),
                &m.payee.to_word(),
                &m.amount.0,
                &m.nonce.0,
                &U256::from_u64(m.deadline).0,
                &m.reference,
                leaf,
            ]);
            let parts = Eip712Parts::of(domain_separator(WALLET_DOMAIN_NAME, d), struct_hash);
            Ok(MandateDigest::of(parts.digest, SigningInput::Eip712(parts)))
        }
        (Mandate::Ed25519(_), Domain::Ed25519(_)) => {
            let mut top = Object::new();
            if let Some(dj) = domain.to_json() {
                top.insert("domain", Value::Object(dj));
            }
            top.insert("lane", Value::String(hex_encode_0x(leaf)));
            top.insert("mandate", Value::Object(mandate.to_json()));
            let msg = [
                ED25519_LANE_MANDATE_TAG,
                crate::json::to_canonical(&Value::Object(top)).as_bytes(),
            ]
            .concat();
            Ok(MandateDigest::of(sha256(&msg), SigningInput::Message(msg)))
        }
        _ => Err(Error::new(
            Reason::UnsupportedProfile,
            format!(
                "no lane mandates for a {} mandate under a {} domain",
                mandate.profile(),
                domain.profile()
            ),
        )),
    }
}

/// Verifies a grantor's signature of a lane: any fault is `lane_signature_invalid`.
fn check_link_signature(signed: &SignedLane, digest: &LaneDigest, grantor: &AccountId) -> Result<()> {
    let fail = |why: String| Error::new(Reason::LaneSignatureInvalid, why);
    match (&digest.input, grantor) {
        (SigningInput::Eip712(parts), AccountId::Evm(expected)) => {
            let sig = secp256k1::parse_signature(&signed.signature).map_err(|e| fail(e.to_string()))?;
            let signer = secp256k1::recover(&parts.digest, &sig).map_err(|e| fail(e.to_string()))?;
            if signer != *expected {
                return Err(fail(format!(
                    "lane signature recovers to {signer}, its grantor is {expected}"
                )));
            }
            Ok(())
        }
        (SigningInput::Message(msg), AccountId::Base58(key)) => {
            let sig = crate::verify::parse_ed25519_signature(&signed.signature).map_err(|e| fail(e.to_string()))?;
            let key = ed25519::Ed25519PublicKey::validate(&key.0).map_err(|r| fail(format!("grantor key: {r}")))?;
            ed25519::verify(&key, msg, &sig).map_err(|r| fail(format!("lane signature: {r}")))
        }
        _ => Err(fail("the lane's grantor is not an account of its profile".into())),
    }
}

/// The signature-stage checks of a chain (spec `aep2.md#lane-verification`): for each link,
/// root first, its `parent` and its grantor's signature. Returns the lane ids, root first.
pub fn check_chain_signatures(chain: &[SignedLane], domain: &Domain) -> Result<Vec<[u8; 32]>> {
    if chain.is_empty() || chain.len() > MAX_LANE_DEPTH {
        return Err(Error::new(
            Reason::LaneDepthExceeded,
            format!("{} links, from 1 to {MAX_LANE_DEPTH}", chain.len()),
        ));
    }
    let mut ids: Vec<[u8; 32]> = Vec::with_capacity(chain.len());
    for (i, link) in chain.iter().enumerate() {
        let expected_parent = ids.last().copied().unwrap_or([0; 32]);
        if link.lane.parent != expected_parent {
            return Err(Error::new(
                Reason::LaneChainInvalid,
                format!("link {i}: parent is not {}", hex_encode_0x(&expected_parent)),
            ));
        }
        let digest = link.lane.digest(domain)?;
        let grantor = if i == 0 {
            &link.lane.owner
        } else {
            &chain[i - 1].lane.agent
        };
        check_link_signature(link, &digest, grantor).map_err(|e| e.at(&format!("lanes[{i}]")))?;
        ids.push(digest.id);
    }
    Ok(ids)
}

/// The policy-stage lane rules, in the spec's order (`aep2.md#lane-verification`, rules 1 to 6),
/// for a chain whose signatures are verified. Without `now`, rule 4 checks only the deadline.
pub fn check_chain_policy(chain: &[SignedLane], mandate: &Mandate, now: Option<u64>) -> Result<()> {
    for (i, pair) in chain.windows(2).enumerate() {
        pair[1]
            .lane
            .within(&pair[0].lane)
            .map_err(|why| Error::new(Reason::LaneAttenuationInvalid, format!("link {}: {why}", i + 1)))?;
    }
    let Some(root) = chain.first() else {
        return Err(Error::new(Reason::LaneDepthExceeded, "the lane chain is empty"));
    };
    let (owner, token, payee, amount) = match mandate {
        Mandate::Eip712(m) => (
            AccountId::Evm(m.owner),
            AccountId::Evm(m.token),
            AccountId::Evm(m.payee),
            m.amount,
        ),
        Mandate::Ed25519(m) => (
            AccountId::Base58(m.payer),
            AccountId::Base58(m.token),
            AccountId::Base58(m.payee),
            U256::from_u64(m.amount),
        ),
        Mandate::SolanaMvp(_) => return Err(Error::new(Reason::UnsupportedProfile, "solana-mvp has no lanes")),
    };
    if owner != root.lane.owner {
        return Err(Error::new(
            Reason::LaneAgentMismatch,
            format!("the mandate debits {owner}, the lanes are {}'s", root.lane.owner),
        ));
    }
    if token != root.lane.token {
        return Err(Error::new(
            Reason::LaneAssetMismatch,
            format!("the mandate pays in {token}, the lanes in {}", root.lane.token),
        ));
    }
    let deadline = mandate.deadline();
    if let Some(now) = now {
        if let Some((i, l)) = chain.iter().enumerate().find(|(_, l)| now < l.lane.valid_from) {
            return Err(Error::new(
                Reason::LaneNotYetValid,
                format!("link {i} is valid from {}, now is {now}", l.lane.valid_from),
            ));
        }
        if let Some((i, l)) = chain.iter().enumerate().find(|(_, l)| now > l.lane.valid_until) {
            return Err(Error::new(
                Reason::LaneExpired,
                format!("link {i} ended at {}, now is {now}", l.lane.valid_until),
            ));
        }
    }
    if let Some((i, l)) = chain.iter().enumerate().find(|(_, l)| deadline > l.lane.valid_until) {
        return Err(Error::new(
            Reason::LaneExpired,
            format!("the deadline {deadline} is after link {i}'s end {}", l.lane.valid_until),
        ));
    }
    for (i, link) in chain.iter().enumerate() {
        if amount > link.lane.per_payment {
            return Err(Error::new(
                Reason::LanePaymentCapExceeded,
                format!(
                    "amount {amount} above link {i}'s per-payment cap {}",
                    link.lane.per_payment
                ),
            ));
        }
    }
    for (i, link) in chain.iter().enumerate() {
        if !link.lane.payees.is_empty() && !link.lane.payees.contains(&payee) {
            return Err(Error::new(
                Reason::LanePayeeNotAllowed,
                format!("payee {payee} is not in link {i}'s payees"),
            ));
        }
    }
    Ok(())
}

/// The EIP-712 type of a lane revocation, under the debit wallet's domain.
pub const LANE_REVOCATION_TYPE: &str = "LaneRevocation(bytes32 lane,address revoker,uint256 issuedAt)";
/// Prefix of the native Ed25519 signing input of a lane revocation.
pub const ED25519_LANE_REVOCATION_TAG: &[u8] = b"AEP2/ed25519/lane-revocation/v1\0";

static LANE_REVOCATION_TYPEHASH: LazyLock<[u8; 32]> = LazyLock::new(|| keccak256(LANE_REVOCATION_TYPE.as_bytes()));

/// The members of a lane revocation, in definition order.
pub const LANE_REVOCATION_FIELDS: [&str; 8] = [
    "aep2",
    "kind",
    "profile",
    "domain",
    "lane",
    "revoker",
    "issuedAt",
    "signature",
];

/// A signed revocation of a lane (spec `aep2.md#lane-revocation`): the grantor of the lane, or of
/// one of its ancestors, withdraws it and everything under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneRevocation {
    /// The deployment the lane belongs to.
    pub domain: Domain,
    /// The id of the lane revoked.
    pub lane: [u8; 32],
    /// Who signs it: the owner, or the agent of a link above the revoked lane.
    pub revoker: AccountId,
    /// When the revoker signed it (unix seconds).
    pub issued_at: u64,
    /// The revoker's signature text (`0x` hex or base58).
    pub signature: String,
}

impl LaneRevocation {
    /// Parses a revocation object: member set, then each member in definition order.
    pub fn from_json(v: &Value) -> Result<LaneRevocation> {
        let f = Fields::new(v, "revocation", &LANE_REVOCATION_FIELDS)?;
        let version = parse_json_integer(f.number("aep2")?).map_err(|e| e.at("revocation.aep2"))?;
        if version != crate::envelope::AEP2_VERSION {
            return Err(Error::new(
                Reason::UnsupportedVersion,
                format!("aep2 version {version}"),
            ));
        }
        if f.string("kind")? != "lane-revocation" {
            return Err(Error::new(
                Reason::FieldType,
                "revocation.kind must be \"lane-revocation\"",
            ));
        }
        let profile = Profile::parse(f.string("profile")?)?;
        if profile == Profile::SolanaMvp {
            return Err(Error::new(Reason::UnsupportedProfile, "solana-mvp has no lanes"));
        }
        let domain = Domain::from_json(profile, f.value("domain")?)?;
        let lane = f
            .string("lane")
            .and_then(bytes32)
            .map_err(|e| e.at("revocation.lane"))?;
        let revoker = f
            .string("revoker")
            .and_then(|t| account(profile, t))
            .map_err(|e| e.at("revocation.revoker"))?;
        let issued_at = parse_json_integer(f.number("issuedAt")?).map_err(|e| e.at("revocation.issuedAt"))?;
        let signature = f.string("signature")?.to_owned();
        Ok(LaneRevocation {
            domain,
            lane,
            revoker,
            issued_at,
            signature,
        })
    }

    /// The revocation's JSON object, members in definition order.
    pub fn to_json(&self) -> Value {
        let s = |t: String| Value::String(t);
        Value::Object(
            Object::new()
                .with("aep2", Value::from_u64(crate::envelope::AEP2_VERSION))
                .with("kind", s("lane-revocation".into()))
                .with("profile", s(self.domain.profile().as_str().into()))
                .with("domain", self.domain.to_json().map_or(Value::Null, Value::Object))
                .with("lane", s(hex_encode_0x(&self.lane)))
                .with("revoker", s(self.revoker.to_string()))
                .with("issuedAt", Value::from_u64(self.issued_at))
                .with("signature", s(self.signature.clone())),
        )
    }

    /// What the revoker signs: `LaneRevocation(bytes32 lane,address revoker,uint256 issuedAt)`
    /// under the wallet's domain (`eip712`), or the tagged JCS of `{domain, revocation: {lane,
    /// revoker, issuedAt}}` (`ed25519`).
    pub fn signing_input(&self) -> Result<SigningInput> {
        match (&self.domain, &self.revoker) {
            (Domain::Eip712(d), AccountId::Evm(revoker)) => {
                let struct_hash = keccak256_parts(&[
                    &*LANE_REVOCATION_TYPEHASH,
                    &self.lane,
                    &revoker.to_word(),
                    &U256::from_u64(self.issued_at).0,
                ]);
                Ok(SigningInput::Eip712(Eip712Parts::of(
                    domain_separator(WALLET_DOMAIN_NAME, d),
                    struct_hash,
                )))
            }
            (Domain::Ed25519(_), AccountId::Base58(_)) => {
                let body = Object::new()
                    .with("lane", Value::String(hex_encode_0x(&self.lane)))
                    .with("revoker", Value::String(self.revoker.to_string()))
                    .with("issuedAt", Value::from_u64(self.issued_at));
                Ok(SigningInput::Message(ed25519_message(
                    ED25519_LANE_REVOCATION_TAG,
                    &self.domain,
                    "revocation",
                    body,
                )))
            }
            _ => Err(Error::new(
                Reason::ProfileMismatch,
                "the revoker is not an account of the domain's profile",
            )),
        }
    }

    /// Signs a revocation of `lane` under `domain` with `key` (the revoker's) at `issued_at`.
    pub fn sign(domain: &Domain, lane: [u8; 32], issued_at: u64, key: &PayerKey) -> Result<LaneRevocation> {
        let profile = domain.profile();
        if profile == Profile::SolanaMvp {
            return Err(Error::new(Reason::UnsupportedProfile, "solana-mvp has no lanes"));
        }
        let mut r = LaneRevocation {
            domain: domain.clone(),
            lane,
            revoker: account(profile, &key.signer())?,
            issued_at,
            signature: String::new(),
        };
        r.signature = key.sign_input(&r.signing_input()?)?;
        Ok(r)
    }

    /// Verifies the signature for `revoker`: any fault is `signature_invalid`.
    pub fn check_signature(&self) -> Result<()> {
        let fail = |why: String| Error::new(Reason::SignatureInvalid, why);
        match (self.signing_input()?, &self.revoker) {
            (SigningInput::Eip712(parts), AccountId::Evm(expected)) => {
                let sig = secp256k1::parse_signature(&self.signature).map_err(|e| fail(e.to_string()))?;
                let signer = secp256k1::recover(&parts.digest, &sig).map_err(|e| fail(e.to_string()))?;
                if signer != *expected {
                    return Err(fail(format!(
                        "revocation signature recovers to {signer}, the revoker is {expected}"
                    )));
                }
                Ok(())
            }
            (SigningInput::Message(msg), AccountId::Base58(key)) => {
                let sig = crate::verify::parse_ed25519_signature(&self.signature).map_err(|e| fail(e.to_string()))?;
                let key = ed25519::Ed25519PublicKey::validate(&key.0).map_err(|r| fail(format!("revoker key: {r}")))?;
                ed25519::verify(&key, &msg, &sig).map_err(|r| fail(format!("revocation signature: {r}")))
            }
            _ => Err(fail("the revoker is not an account of the domain's profile".into())),
        }
    }
}

/// The checks of a revocation against the chain it revokes the last link of (spec
/// `aep2.md#lane-revocation`), in order: the chain's links and signatures (as
/// [`check_chain_signatures`]) and attenuation, the chain's last id is the revocation's `lane`
/// and the revoker is the owner or the agent of a link above the last (`lane_revoker_invalid`),
/// then the revoker's signature (`signature_invalid`). Returns the chain's ids, root first.
pub fn check_revocation(revocation: &LaneRevocation, chain: &[SignedLane]) -> Result<Vec<[u8; 32]>> {
    let ids = check_chain_signatures(chain, &revocation.domain)?;
    for (i, pair) in chain.windows(2).enumerate() {
        pair[1]
            .lane
            .within(&pair[0].lane)
            .map_err(|why| Error::new(Reason::LaneAttenuationInvalid, format!("link {}: {why}", i + 1)))?;
    }
    if ids.last() != Some(&revocation.lane) {
        return Err(Error::new(
            Reason::LaneRevokerInvalid,
            "the revoked lane is not the last link of the chain given",
        ));
    }
    let above = chain.get(..chain.len().saturating_sub(1)).unwrap_or_default();
    let is_grantor = chain.first().is_some_and(|root| root.lane.owner == revocation.revoker)
        || above.iter().any(|l| l.lane.agent == revocation.revoker);
    if !is_grantor {
        return Err(Error::new(
            Reason::LaneRevokerInvalid,
            format!(
                "{} is neither the owner nor the agent of a lane above the revoked one",
                revocation.revoker
            ),
        ));
    }
    revocation.check_signature()?;
    Ok(ids)
}
