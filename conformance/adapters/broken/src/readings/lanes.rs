//! Readings of the spending-lane rules (spec `aep2.md#lanes`): the lane pipeline of the broken
//! verifier, written out here so that each choice point of `aep2.md#lane-verification` can be
//! read the other way. With no reading it gives the reference's verdicts.

use aep2::crypto::{ed25519, secp256k1};
use aep2::envelope::SignedMandate;
use aep2::json::Value;
use aep2::lane::{Lane, SignedLane, lane_mandate_digest};
use aep2::{AccountId, Domain, Error, Mandate, MandateDigest, Reason, SigningInput, U256, mandate_digest};

/// One other reading of a lane rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// A link's signature is checked before its parent.
    SignatureBeforeParent,
    /// The mandate's signature is checked before the links'.
    MandateSignatureFirst,
    /// The lane rules run before the domain comparison and the expiry rule.
    RulesBeforeCorePolicy,
    /// The mandate's owner is compared before attenuation is checked.
    OwnerBeforeAttenuation,
    /// The token is compared before the owner.
    AssetBeforeOwner,
    /// The time rules run before the token comparison.
    TimeBeforeAsset,
    /// The per-payment cap is checked before the time rules.
    CapBeforeTime,
    /// The payee list is checked before the per-payment cap.
    PayeeBeforeCap,
    /// A deadline after `validUntil` is accepted (only `now` is compared with the window).
    DeadlineUnbounded,
    /// Without `now` no time rule runs, the deadline's included.
    DeadlineOnlyWithNow,
    /// `amount == perPayment` is over the cap.
    CapExclusive,
    /// `now == validUntil` is after the lane.
    UntilExclusive,
    /// `now == validFrom` is before the lane.
    FromExclusive,
    /// An empty payee list allows no payee.
    EmptyPayeesNone,
    /// `maxPayments` compared as numbers in attenuation: a child's limit above a parent's 0
    /// ("no limit") is wider.
    ZeroMaxPaymentsNumeric,
    /// A sub-lane without payees under a parent with some inherits the parent's list.
    EmptySubPayeesInherit,
    /// The `lanes` member is read before the envelope's other members.
    LanesBeforeMandate,
    /// An empty `lanes` array is a plain (owner-signed) mandate.
    EmptyArrayPlain,
    /// The leaf's agent signs the plain mandate input (the leaf's id is not bound).
    MandatePlainType,
    /// Every link's member set is checked before any link's members.
    MemberSetsFirst,
    /// `lanes` in a `solana-mvp` envelope is an unknown member.
    SolanaLanesUnknown,
    /// `lanes` in a `solana-mvp` envelope is refused before the mandate is read.
    SolanaLanesFirst,
}

impl Reading {
    /// Every reading.
    pub const ALL: [Reading; 22] = [
        Reading::SignatureBeforeParent,
        Reading::MandateSignatureFirst,
        Reading::RulesBeforeCorePolicy,
        Reading::OwnerBeforeAttenuation,
        Reading::AssetBeforeOwner,
        Reading::TimeBeforeAsset,
        Reading::CapBeforeTime,
        Reading::PayeeBeforeCap,
        Reading::DeadlineUnbounded,
        Reading::DeadlineOnlyWithNow,
        Reading::CapExclusive,
        Reading::UntilExclusive,
        Reading::FromExclusive,
        Reading::EmptyPayeesNone,
        Reading::ZeroMaxPaymentsNumeric,
        Reading::EmptySubPayeesInherit,
        Reading::LanesBeforeMandate,
        Reading::EmptyArrayPlain,
        Reading::MandatePlainType,
        Reading::MemberSetsFirst,
        Reading::SolanaLanesUnknown,
        Reading::SolanaLanesFirst,
    ];

    /// The choice point's id in `conformance/README.md`.
    pub fn id(self) -> &'static str {
        match self {
            Reading::SignatureBeforeParent => "CP-lane-parent-before-signature",
            Reading::MandateSignatureFirst => "CP-lane-links-before-mandate",
            Reading::RulesBeforeCorePolicy => "CP-lane-after-core-policy",
            Reading::OwnerBeforeAttenuation => "CP-lane-attenuation-first",
            Reading::AssetBeforeOwner => "CP-lane-owner-before-asset",
            Reading::TimeBeforeAsset => "CP-lane-asset-before-time",
            Reading::CapBeforeTime => "CP-lane-time-before-cap",
            Reading::PayeeBeforeCap => "CP-lane-cap-before-payee",
            Reading::DeadlineUnbounded => "CP-lane-deadline-bound",
            Reading::DeadlineOnlyWithNow => "CP-lane-deadline-without-now",
            Reading::CapExclusive => "CP-lane-cap-inclusive",
            Reading::UntilExclusive => "CP-lane-until-inclusive",
            Reading::FromExclusive => "CP-lane-from-inclusive",
            Reading::EmptyPayeesNone => "CP-lane-empty-payees-any",
            Reading::ZeroMaxPaymentsNumeric => "CP-lane-zero-max-payments",
            Reading::EmptySubPayeesInherit => "CP-lane-sub-payees-required",
            Reading::LanesBeforeMandate => "CP-lane-schema-last",
            Reading::EmptyArrayPlain => "CP-lane-empty-array",
            Reading::MandatePlainType => "CP-lane-mandate-type",
            Reading::MemberSetsFirst => "CP-lane-links-one-by-one",
            Reading::SolanaLanesUnknown => "CP-lane-solana-unsupported",
            Reading::SolanaLanesFirst => "CP-lane-solana-after-members",
        }
    }
}

/// Before the envelope is read: the readings of the `lanes` member's place in the schema stage.
/// Returns the value to read (changed by [`Reading::EmptyArrayPlain`]).
pub fn before_schema(r: Option<Reading>, value: &Value, profile: aep2::Profile) -> Result<Option<Value>, Error> {
    let Value::Object(o) = value else { return Ok(None) };
    if profile == aep2::Profile::SolanaMvp && o.get("lanes").is_some() {
        match r {
            Some(Reading::SolanaLanesUnknown) => return Err(fail(Reason::UnknownField, "lanes")),
            Some(Reading::SolanaLanesFirst) => return Err(fail(Reason::UnsupportedProfile, "lanes first")),
            _ => {}
        }
    }
    let Some(Value::Array(links)) = o.get("lanes") else {
        return Ok(None);
    };
    match r {
        Some(Reading::LanesBeforeMandate) if links.is_empty() || links.len() > aep2::lane::MAX_LANE_DEPTH => {
            Err(Error::new(Reason::LaneDepthExceeded, "lanes read first"))
        }
        Some(Reading::EmptyArrayPlain) if links.is_empty() => {
            let mut o = o.clone();
            o.remove("lanes");
            Ok(Some(Value::Object(o)))
        }
        Some(Reading::MemberSetsFirst) => {
            for link in links {
                if let Value::Object(signed) = link
                    && let Some(Value::Object(lane)) = signed.get("lane")
                    && lane.iter().any(|(k, _)| !aep2::lane::LANE_FIELDS.contains(&k))
                {
                    return Err(fail(Reason::UnknownField, "member sets first"));
                }
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn fail(r: Reason, why: &str) -> Error {
    Error::new(r, why.to_owned())
}

fn verify_by(input: &SigningInput, signature: &str, who: &AccountId) -> Result<(), Error> {
    match (input, who) {
        (SigningInput::Eip712(parts), AccountId::Evm(expected)) => {
            let sig = secp256k1::parse_signature(signature)?;
            if secp256k1::recover(&parts.digest, &sig)? != *expected {
                return Err(fail(Reason::SignatureInvalid, "another signer"));
            }
            Ok(())
        }
        (SigningInput::Message(msg), AccountId::Base58(key)) => {
            let sig = aep2::verify::parse_ed25519_signature(signature)?;
            let key = ed25519::Ed25519PublicKey::validate(&key.0).map_err(|r| Error::new(r, "key"))?;
            ed25519::verify(&key, msg, &sig).map_err(|r| Error::new(r, "signature"))
        }
        _ => Err(fail(Reason::ProfileMismatch, "another profile")),
    }
}

/// The chain's links: parent, then grantor's signature, root first. Returns the ids.
fn links(r: Option<Reading>, chain: &[SignedLane], domain: &Domain) -> Result<Vec<[u8; 32]>, Error> {
    let mut ids: Vec<[u8; 32]> = Vec::new();
    for (i, link) in chain.iter().enumerate() {
        let parent = ids.last().copied().unwrap_or([0; 32]);
        let digest = link.lane.digest(domain)?;
        let grantor = if i == 0 {
            &link.lane.owner
        } else {
            &chain[i - 1].lane.agent
        };
        let signed = || {
            verify_by(&digest.input, &link.signature, grantor)
                .map_err(|_| fail(Reason::LaneSignatureInvalid, "link signature"))
        };
        if r == Some(Reading::SignatureBeforeParent) {
            signed()?;
        }
        if link.lane.parent != parent {
            return Err(fail(Reason::LaneChainInvalid, "parent"));
        }
        signed()?;
        ids.push(digest.id);
    }
    Ok(ids)
}

/// The signature stage of a mandate under a chain: the links, then the mandate's signature by
/// the leaf's agent over the lane-mandate input. Returns the mandate's digest.
pub fn signature_stage(r: Option<Reading>, sm: &SignedMandate, domain: &Domain) -> Result<MandateDigest, Error> {
    let leaf = sm
        .lanes
        .last()
        .ok_or_else(|| fail(Reason::LaneDepthExceeded, "empty"))?;
    let leaf_id = leaf.lane.digest(domain)?.id;
    let digest = if r == Some(Reading::MandatePlainType) {
        mandate_digest(&sm.mandate, domain)?
    } else {
        lane_mandate_digest(&sm.mandate, domain, &leaf_id)?
    };
    if r == Some(Reading::MandateSignatureFirst) {
        verify_by(&digest.input, &sm.signature, &leaf.lane.agent)?;
    }
    links(r, &sm.lanes, domain)?;
    verify_by(&digest.input, &sm.signature, &leaf.lane.agent)?;
    Ok(digest)
}

fn within(r: Option<Reading>, l: &Lane, p: &Lane) -> bool {
    let payees = match (r, l.payees.is_empty()) {
        (Some(Reading::EmptySubPayeesInherit), true) => &p.payees,
        _ => &l.payees,
    };
    let max_ok = if r == Some(Reading::ZeroMaxPaymentsNumeric) {
        l.max_payments <= p.max_payments
    } else {
        p.max_payments == 0 || (l.max_payments != 0 && l.max_payments <= p.max_payments)
    };
    l.owner == p.owner
        && l.token == p.token
        && l.per_payment <= p.per_payment
        && l.total <= p.total
        && max_ok
        && (p.period == 0 || (l.period == p.period && l.allowance <= p.allowance))
        && (p.payees.is_empty() || (!payees.is_empty() && payees.iter().all(|x| p.payees.contains(x))))
        && l.valid_from >= p.valid_from
        && l.valid_until <= p.valid_until
}

/// The policy-stage lane rules in the spec's order, as `r` reads them.
pub fn policy(r: Option<Reading>, sm: &SignedMandate, now: Option<u64>) -> Result<(), Error> {
    let chain = &sm.lanes;
    let (owner, token, payee, amount) = match &sm.mandate {
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
        Mandate::SolanaMvp(_) => return Err(fail(Reason::UnsupportedProfile, "no lanes")),
    };
    let Some(root) = chain.first() else {
        return Err(fail(Reason::LaneDepthExceeded, "empty"));
    };
    let deadline = sm.mandate.deadline();
    let attenuation = || {
        if chain.windows(2).all(|w| within(r, &w[1].lane, &w[0].lane)) {
            Ok(())
        } else {
            Err(fail(Reason::LaneAttenuationInvalid, "wider"))
        }
    };
    let owner_rule = || {
        if owner == root.lane.owner {
            Ok(())
        } else {
            Err(fail(Reason::LaneAgentMismatch, "owner"))
        }
    };
    let asset_rule = || {
        if token == root.lane.token {
            Ok(())
        } else {
            Err(fail(Reason::LaneAssetMismatch, "token"))
        }
    };
    let time_rules = || {
        if let Some(now) = now {
            let early = |l: &Lane| {
                if r == Some(Reading::FromExclusive) {
                    now <= l.valid_from
                } else {
                    now < l.valid_from
                }
            };
            if chain.iter().any(|l| early(&l.lane)) {
                return Err(fail(Reason::LaneNotYetValid, "early"));
            }
            let late = |l: &Lane| {
                if r == Some(Reading::UntilExclusive) {
                    now >= l.valid_until
                } else {
                    now > l.valid_until
                }
            };
            if chain.iter().any(|l| late(&l.lane)) {
                return Err(fail(Reason::LaneExpired, "late"));
            }
        }
        let bound = !matches!(
            (r, now),
            (Some(Reading::DeadlineUnbounded), _) | (Some(Reading::DeadlineOnlyWithNow), None)
        );
        if bound && chain.iter().any(|l| deadline > l.lane.valid_until) {
            return Err(fail(Reason::LaneExpired, "deadline"));
        }
        Ok(())
    };
    let cap_rule = || {
        let over = |l: &Lane| {
            if r == Some(Reading::CapExclusive) {
                amount >= l.per_payment
            } else {
                amount > l.per_payment
            }
        };
        if chain.iter().any(|l| over(&l.lane)) {
            Err(fail(Reason::LanePaymentCapExceeded, "cap"))
        } else {
            Ok(())
        }
    };
    let payee_rule = || {
        let refused = |l: &Lane| {
            if l.payees.is_empty() {
                r == Some(Reading::EmptyPayeesNone)
            } else {
                !l.payees.contains(&payee)
            }
        };
        if chain.iter().any(|l| refused(&l.lane)) {
            Err(fail(Reason::LanePayeeNotAllowed, "payee"))
        } else {
            Ok(())
        }
    };
    match r {
        Some(Reading::OwnerBeforeAttenuation) => {
            owner_rule()?;
            attenuation()?;
        }
        _ => {
            attenuation()?;
        }
    }
    match r {
        Some(Reading::AssetBeforeOwner) => {
            asset_rule()?;
            owner_rule()?;
        }
        _ => {
            owner_rule()?;
        }
    }
    if r == Some(Reading::TimeBeforeAsset) {
        time_rules()?;
    }
    asset_rule()?;
    if r == Some(Reading::CapBeforeTime) {
        cap_rule()?;
    }
    time_rules()?;
    if r == Some(Reading::PayeeBeforeCap) {
        payee_rule()?;
    }
    cap_rule()?;
    payee_rule()
}
