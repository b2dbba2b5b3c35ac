//! `lanes.json`: mandates signed under spending lanes (spec `aep2.md#lanes`), in both profiles:
//! chains of one to four links, the envelope's `lanes` member, the lane value rules, the chain's
//! signatures and parents, attenuation, and the policy rules in their order. Every check-order
//! case fails two rules, so it pins which comes first.

use super::edkit::{MINT, ed_context, ed_domain, pubkey};
use super::eip712::{CHAIN_ID, NOW, USDC, WALLET, addr, context, domain, payee};
use super::{Case, Exp, FileBuilder, ed_seed, header_input, header_of, secp_key};
use crate::model::{Context, Kind, VectorFile};
use aep2::json::Value;
use aep2::lane::{Lane, SignedLane, lane_mandate_digest, sign_lane};
use aep2::{
    AccountId, Base58Key, Domain, Ed25519Mandate, EnvelopeForm, EvmAddress, EvmMandate, Mandate, PayerKey, Profile,
    Reason, SignedMandate, U256,
};

const OBJ: &str = "aep2.md#lane-object";
const SIGN: &str = "aep2.md#lane-signing";
const CHAIN: &str = "aep2.md#lane-chain";
const MAND: &str = "aep2.md#lane-mandate";
const ENV: &str = "aep2.md#lane-envelope";
const VER: &str = "aep2.md#lane-verification";

/// The lane's first and last second in the vectors.
const FROM: u64 = NOW - 3_600;
const UNTIL: u64 = NOW + 30 * 86_400;

/// One profile's lane world: the owner (key 0) and three agents (keys 1 to 3).
struct W {
    profile: Profile,
    domain: Domain,
    keys: Vec<PayerKey>,
    token: AccountId,
    payees: [AccountId; 2],
}

impl W {
    fn eip712() -> W {
        let key = |l: &str| PayerKey::Secp256k1(secp_key(&format!("lanes/{l}")));
        W {
            profile: Profile::Eip712,
            domain: Domain::Eip712(domain(CHAIN_ID, WALLET)),
            keys: ["owner", "agent", "sub-agent", "sub-sub-agent", "fourth-agent"]
                .iter()
                .map(|l| key(l))
                .collect(),
            token: AccountId::Evm(addr(USDC)),
            payees: [
                AccountId::Evm(payee("lane-payee-a")),
                AccountId::Evm(payee("lane-payee-b")),
            ],
        }
    }

    fn ed25519() -> W {
        let key = |l: &str| PayerKey::Ed25519(ed_seed(&format!("lanes/{l}")));
        W {
            profile: Profile::Ed25519,
            domain: Domain::Ed25519(ed_domain()),
            keys: ["owner", "agent", "sub-agent", "sub-sub-agent", "fourth-agent"]
                .iter()
                .map(|l| key(l))
                .collect(),
            token: AccountId::Base58(Base58Key::parse(MINT).unwrap_or_default()),
            payees: [
                AccountId::Base58(pubkey("lane-payee-a")),
                AccountId::Base58(pubkey("lane-payee-b")),
            ],
        }
    }

    fn context(&self, now: Option<u64>) -> Context {
        match self.profile {
            Profile::Eip712 => context(now),
            _ => ed_context(now),
        }
    }

    fn account(&self, i: usize) -> AccountId {
        AccountId::parse(&self.keys[i].signer()).unwrap_or(self.token)
    }

    /// An account of the profile that is none of the world's.
    fn stranger(&self, label: &str) -> AccountId {
        match self.profile {
            Profile::Eip712 => AccountId::Evm(payee(label)),
            _ => AccountId::Base58(pubkey(label)),
        }
    }

    fn root(&self) -> Lane {
        Lane {
            profile: self.profile,
            owner: self.account(0),
            agent: self.account(1),
            token: self.token,
            per_payment: U256::from_u64(1_000),
            total: U256::from_u64(10_000),
            max_payments: 100,
            period: 86_400,
            allowance: U256::from_u64(5_000),
            payees: self.payees.to_vec(),
            valid_from: FROM,
            valid_until: UNTIL,
            purpose: "research: weather data".into(),
            parent: [0; 32],
            salt: [0x5a; 32],
        }
    }

    fn id(&self, l: &SignedLane) -> [u8; 32] {
        l.lane.digest(&self.domain).map(|d| d.id).unwrap_or([0; 32])
    }

    /// A sub-lane of `parent` for agent `agent`, narrower than it, then edited.
    fn sub(&self, parent: &SignedLane, agent: usize, edit: impl FnOnce(&mut Lane)) -> Lane {
        let mut l = parent.lane.clone();
        l.agent = self.account(agent);
        l.parent = self.id(parent);
        l.per_payment = U256::from_u64(500);
        l.total = U256::from_u64(2_000);
        l.purpose = format!("sub-agent {agent}");
        edit(&mut l);
        l
    }

    /// Signs a lane with any key, past the signer's refusals.
    fn force_lane(&self, lane: &Lane, key: usize) -> SignedLane {
        let signature = lane
            .digest(&self.domain)
            .and_then(|d| self.keys[key].sign_input(&d.input))
            .unwrap_or_default();
        SignedLane {
            lane: lane.clone(),
            signature,
        }
    }

    /// The chain of `depth` links: the owner grants key 1, key 1 grants key 2, ….
    fn chain(&self, depth: usize) -> Vec<SignedLane> {
        let mut links: Vec<SignedLane> = Vec::new();
        for i in 0..depth {
            let lane = match links.last() {
                None => self.root(),
                Some(p) => self.sub(p, i + 1, |_| {}),
            };
            let signed = sign_lane(&lane, links.last(), &self.domain, &self.keys[i])
                .unwrap_or_else(|_| self.force_lane(&lane, i));
            links.push(signed);
        }
        links
    }

    /// A chain of two whose sub-lane is `lane` (signed by key 1, its parent's agent).
    fn with_sub(&self, lane: &Lane) -> Vec<SignedLane> {
        let chain = self.chain(1);
        let sub = self.force_lane(lane, 1);
        vec![chain[0].clone(), sub]
    }

    fn mandate(&self, amount: u64, payee: AccountId, deadline: u64) -> Mandate {
        match (self.account(0), self.token, payee) {
            (AccountId::Evm(owner), AccountId::Evm(token), AccountId::Evm(payee)) => Mandate::Eip712(EvmMandate {
                owner,
                token,
                payee,
                amount: U256::from_u64(amount),
                nonce: U256::from_u64(7_000 + amount),
                deadline,
                reference: [0x4c; 32],
            }),
            (AccountId::Base58(payer), AccountId::Base58(token), AccountId::Base58(payee)) => {
                Mandate::Ed25519(Ed25519Mandate {
                    payer,
                    token,
                    payee,
                    amount,
                    nonce: 7_000 + amount,
                    deadline,
                    reference: [0x4c; 32],
                })
            }
            _ => Mandate::Eip712(EvmMandate {
                owner: EvmAddress::default(),
                token: EvmAddress::default(),
                payee: EvmAddress::default(),
                amount: U256::ZERO,
                nonce: U256::ZERO,
                deadline,
                reference: [0; 32],
            }),
        }
    }

    fn ok_mandate(&self) -> Mandate {
        self.mandate(400, self.payees[0], NOW + 600)
    }

    /// `m` under `lanes`, signed by key `key` over the lane-mandate input of the chain's leaf.
    fn envelope(&self, m: &Mandate, lanes: &[SignedLane], key: usize, form: EnvelopeForm) -> SignedMandate {
        let leaf = lanes.last().map(|l| self.id(l)).unwrap_or([0; 32]);
        let signature = lane_mandate_digest(m, &self.domain, &leaf)
            .and_then(|d| self.keys[key].sign_input(&d.input))
            .unwrap_or_default();
        SignedMandate {
            form,
            mandate: m.clone(),
            domain: (form == EnvelopeForm::Native).then(|| self.domain.clone()),
            signature,
            lanes: lanes.to_vec(),
        }
    }

    /// The usual: `m` under a chain of two, signed by its leaf's agent (key 2).
    fn under_two(&self, m: &Mandate) -> SignedMandate {
        self.envelope(m, &self.chain(2), 2, EnvelopeForm::Native)
    }

    fn header(sm: &SignedMandate) -> String {
        header_of(&sm.to_json())
    }

    fn input(sm: &SignedMandate) -> serde_json::Value {
        header_input(&W::header(sm))
    }

    /// The envelope JSON of `sm` with its first link's lane member `name` replaced.
    fn with_lane_member(sm: &SignedMandate, name: &str, v: Value) -> serde_json::Value {
        let Value::Object(mut top) = sm.to_json() else {
            return serde_json::Value::Null;
        };
        if let Some(Value::Array(links)) = top.get("lanes").cloned()
            && let Some(Value::Object(first)) = links.first().cloned()
            && let Some(Value::Object(mut lane)) = first.get("lane").cloned()
        {
            lane.insert(name, v);
            let mut first = first.clone();
            first.insert("lane", Value::Object(lane));
            let mut links = links.clone();
            links[0] = Value::Object(first);
            top.insert("lanes", Value::Array(links));
        }
        header_input(&header_of(&Value::Object(top)))
    }

    fn with_envelope_member(sm: &SignedMandate, name: &str, v: Value) -> serde_json::Value {
        let Value::Object(mut top) = sm.to_json() else {
            return serde_json::Value::Null;
        };
        top.insert(name, v);
        header_input(&header_of(&Value::Object(top)))
    }
}

pub(crate) fn generate() -> VectorFile {
    let mut f = FileBuilder::new(
        "lanes",
        &[
            "Mandates signed under spending lanes (aep2.md#lanes): the envelope's lanes member, the lane object, the chain's parents and signatures, attenuation, and the stateless policy rules, in both native profiles.",
            "Every case is a verify_mandate case; the stateful limits (total, count, allowance, revocation) are the SP's and are not vectors.",
        ],
    );
    f.note(
        "lane_valid",
        "BASIC",
        "A mandate correctly signed under a chain of lanes.",
        &[MAND, ENV],
    );
    f.note(
        "lane_schema",
        "EDGE_CASE",
        "The lanes member or a lane object malformed.",
        &[ENV, OBJ],
    );
    f.note(
        "lane_signature",
        "MODIFIED_PARAMETER",
        "A link's parent or signature wrong, or the mandate signed by another key or over another input.",
        &[SIGN, VER],
    );
    f.note(
        "lane_policy",
        "EDGE_CASE",
        "A stateless lane rule broken, or met at its boundary.",
        &[CHAIN, VER],
    );
    f.note(
        "check_order",
        "DEFINED",
        "The input fails two rules; the first in the order of aep2.md#lane-verification decides the code.",
        &[VER, "aep2.md#verification-order"],
    );
    for w in [W::eip712(), W::ed25519()] {
        let p = w.profile.as_str();
        valid(&mut f, &w, p);
        schema(&mut f, &w, p);
        signature(&mut f, &w, p);
        policy(&mut f, &w, p);
        order(&mut f, &w, p);
        purpose(&mut f, &w, p);
    }
    solana(&mut f);
    f.finish()
}

fn valid(f: &mut FileBuilder, w: &W, p: &str) {
    let g = f.group(&format!("{p}-valid"), Kind::VerifyMandate, w.context(Some(NOW)));
    // 4-link cases were issued while the maximum depth was 4 (retired in vectors/ids.tsv).
    for depth in 1..=aep2::lane::MAX_LANE_DEPTH {
        for form in [EnvelopeForm::Mvp, EnvelopeForm::Native] {
            let sm = w.envelope(&w.ok_mandate(), &w.chain(depth), depth, form);
            f.case(
                g,
                Case::new(
                    format!(
                        "{depth} link(s), {} envelope, signed by the leaf's agent",
                        form.as_str()
                    ),
                    W::input(&sm),
                    Exp::Valid,
                )
                .flags(&["lane_valid"])
                .refs(&[MAND, ENV]),
            );
        }
    }
}

fn schema(f: &mut FileBuilder, w: &W, p: &str) {
    let g = f.group(&format!("{p}-schema"), Kind::VerifyMandate, w.context(Some(NOW)));
    let sm = w.under_two(&w.ok_mandate());
    let link = sm.lanes[0].to_json();
    let cases: Vec<(&str, serde_json::Value, Reason)> = vec![
        (
            "lanes is not an array",
            W::with_envelope_member(&sm, "lanes", Value::String("x".into())),
            Reason::FieldType,
        ),
        (
            "lanes is empty",
            W::with_envelope_member(&sm, "lanes", Value::Array(Vec::new())),
            Reason::LaneDepthExceeded,
        ),
        (
            "five links",
            W::with_envelope_member(&sm, "lanes", Value::Array(vec![link.clone(); 5])),
            Reason::LaneDepthExceeded,
        ),
        (
            "a lane with an unknown member",
            W::with_lane_member(&sm, "note", Value::String("x".into())),
            Reason::UnknownField,
        ),
        (
            "perPayment zero",
            W::with_lane_member(&sm, "perPayment", Value::String("0".into())),
            Reason::AmountZero,
        ),
        (
            "maxPayments as a string",
            W::with_lane_member(&sm, "maxPayments", Value::String("1".into())),
            Reason::FieldType,
        ),
        (
            "parent not bytes32 hex",
            W::with_lane_member(&sm, "parent", Value::String("0x00".into())),
            Reason::RefInvalid,
        ),
        (
            "allowance 0 with a positive period",
            W::with_lane_member(&sm, "allowance", Value::String("0".into())),
            Reason::LaneInvalid,
        ),
        (
            "validUntil before validFrom",
            W::with_lane_member(&sm, "validUntil", Value::from_u64(FROM - 1)),
            Reason::LaneInvalid,
        ),
        (
            "purpose of 129 bytes",
            W::with_lane_member(&sm, "purpose", Value::String("p".repeat(129))),
            Reason::LaneInvalid,
        ),
        (
            "a payee listed twice",
            W::with_lane_member(
                &sm,
                "payees",
                Value::Array(vec![Value::String(w.payees[0].to_string()); 2]),
            ),
            Reason::LaneInvalid,
        ),
        (
            "nine payees",
            W::with_lane_member(
                &sm,
                "payees",
                Value::Array(
                    (0..9)
                        .map(|i| Value::String(w.stranger(&format!("nine-{i}")).to_string()))
                        .collect(),
                ),
            ),
            Reason::LaneInvalid,
        ),
    ];
    for (comment, input, reason) in cases {
        f.case(
            g,
            Case::new(comment, input, Exp::Invalid(reason))
                .flags(&["lane_schema"])
                .refs(&[ENV, OBJ]),
        );
    }
    let four = w.envelope(&w.ok_mandate(), &w.chain(4), 4, EnvelopeForm::Native);
    f.case(
        g,
        Case::new(
            "four links, one more than the maximum depth",
            W::input(&four),
            Exp::Invalid(Reason::LaneDepthExceeded),
        )
        .flags(&["lane_schema"])
        .refs(&[CHAIN, ENV]),
    );
    // Link 0 breaks a value rule and link 1 has an unknown member: each link is read wholly first.
    let Value::Object(mut top) = sm.to_json() else { return };
    if let Some(Value::Array(mut links)) = top.get("lanes").cloned() {
        let edit = |link: &Value, name: &str, v: Value| -> Value {
            let Value::Object(mut signed) = link.clone() else {
                return link.clone();
            };
            if let Some(Value::Object(mut lane)) = signed.get("lane").cloned() {
                lane.insert(name, v);
                signed.insert("lane", Value::Object(lane));
            }
            Value::Object(signed)
        };
        links[0] = edit(&links[0], "purpose", Value::String("p".repeat(65)));
        links[1] = edit(&links[1], "note", Value::String("x".into()));
        top.insert("lanes", Value::Array(links));
        f.case(
            g,
            Case::new(
                "link 0's purpose too long and an unknown member in link 1: link 0 is read wholly first",
                header_input(&header_of(&Value::Object(top))),
                Exp::Invalid(Reason::LaneInvalid),
            )
            .flags(&["check_order"])
            .refs(&[OBJ, ENV]),
        );
    }
}

/// `purpose`: any UTF-8 text (signed as written, JCS does not escape it) but the characters JSON
/// escapes, up to 64 bytes.
fn purpose(f: &mut FileBuilder, w: &W, p: &str) {
    let g = f.group(&format!("{p}-purpose"), Kind::VerifyMandate, w.context(Some(NOW)));
    let with_purpose = |text: &str| {
        let mut root = w.root();
        root.purpose = text.into();
        let link = w.force_lane(&root, 0);
        w.envelope(&w.ok_mandate(), &[link], 1, EnvelopeForm::Native)
    };
    let cases: Vec<(&str, String, Exp)> = vec![
        (
            "a purpose of non-ASCII text (signed as UTF-8, not escaped)",
            "météo ☂ 天气 \u{2028} </script>".into(),
            Exp::Valid,
        ),
        ("a purpose of exactly 64 bytes", "é".repeat(32), Exp::Valid),
        (
            "a purpose of 65 bytes",
            format!("{}x", "é".repeat(32)),
            Exp::Invalid(Reason::LaneInvalid),
        ),
        (
            "a purpose with a line break",
            "two\nlines".into(),
            Exp::Invalid(Reason::LaneInvalid),
        ),
        (
            "a purpose with a quote",
            "say \"hi\"".into(),
            Exp::Invalid(Reason::LaneInvalid),
        ),
        (
            "a purpose with a backslash",
            "a\\b".into(),
            Exp::Invalid(Reason::LaneInvalid),
        ),
    ];
    for (comment, text, exp) in cases {
        f.case(
            g,
            Case::new(comment, W::input(&with_purpose(&text)), exp)
                .flags(&["lane_schema"])
                .refs(&[OBJ]),
        );
    }
}

/// `solana-mvp` has no lanes: `unsupported_profile`, found where `lanes` is read.
fn solana(f: &mut FileBuilder) {
    use super::edkit::{sign_with, sol_context, sol_mandate};
    let g = f.group("solana-mvp", Kind::VerifyMandate, sol_context(Some(NOW)));
    let w = W::ed25519();
    let link = w.chain(1)[0].to_json();
    let sm = sign_with(
        &Mandate::SolanaMvp(sol_mandate("lanes/solana", 1, NOW + 600)),
        &Domain::SolanaMvp,
        "lanes/solana",
        EnvelopeForm::Mvp,
    );
    let with_lanes = |v: Value| -> serde_json::Value {
        let Value::Object(mut top) = v else {
            return serde_json::Value::Null;
        };
        top.insert("lanes", Value::Array(vec![link.clone()]));
        header_input(&header_of(&Value::Object(top)))
    };
    f.case(
        g,
        Case::new(
            "a solana-mvp envelope with lanes (a member of AEP2 v1, for another profile)",
            with_lanes(sm.to_json()),
            Exp::Invalid(Reason::UnsupportedProfile),
        )
        .flags(&["lane_schema"])
        .refs(&[ENV]),
    );
    let zero = super::with_mandate_field(&sm.to_json(), "amount", Some(Value::String("0".into())));
    f.case(
        g,
        Case::new(
            "a solana-mvp envelope with a zero amount and lanes: the mandate is read first",
            with_lanes(zero),
            Exp::Invalid(Reason::AmountZero),
        )
        .flags(&["check_order"])
        .refs(&[ENV]),
    );
}

fn signature(f: &mut FileBuilder, w: &W, p: &str) {
    let g = f.group(&format!("{p}-signature"), Kind::VerifyMandate, w.context(Some(NOW)));
    let m = w.ok_mandate();
    let chain = w.chain(2);
    let mut tampered = chain.clone();
    tampered[1].lane.purpose = "tampered after signing".into();
    let wrong_grantor = vec![chain[0].clone(), w.force_lane(&chain[1].lane, 0)];
    let mut orphan = chain[1].lane.clone();
    orphan.parent = [0x33; 32];
    let orphaned = vec![chain[0].clone(), w.force_lane(&orphan, 1)];
    let mut not_root = chain[0].lane.clone();
    not_root.parent = [0x33; 32];
    let rootless = vec![w.force_lane(&not_root, 0)];
    let mut garbled = chain.clone();
    garbled[0].signature = "0x00".into();
    if w.profile == Profile::Ed25519 {
        garbled[0].signature = "1".into();
    }
    let mut other = w.root();
    other.salt = [0x77; 32];
    other.purpose = "ops".into();
    let other_lane = vec![w.force_lane(&other, 0)];
    let moved = SignedMandate {
        lanes: other_lane,
        ..w.envelope(&m, &w.chain(1), 1, EnvelopeForm::Native)
    };
    let plain_by_owner = {
        let d = aep2::mandate_digest(&m, &w.domain).ok();
        let signature = d.and_then(|d| w.keys[0].sign_input(&d.input).ok()).unwrap_or_default();
        SignedMandate {
            form: EnvelopeForm::Native,
            mandate: m.clone(),
            domain: Some(w.domain.clone()),
            signature,
            lanes: chain.clone(),
        }
    };
    let cases: Vec<(&str, SignedMandate, Reason)> = vec![
        (
            "a link changed after it was signed",
            w.envelope(&m, &tampered, 2, EnvelopeForm::Native),
            Reason::LaneSignatureInvalid,
        ),
        (
            "a sub-lane signed by the owner, not by its parent's agent",
            w.envelope(&m, &wrong_grantor, 2, EnvelopeForm::Native),
            Reason::LaneSignatureInvalid,
        ),
        (
            "a sub-lane whose parent is not the previous link's id",
            w.envelope(&m, &orphaned, 2, EnvelopeForm::Native),
            Reason::LaneChainInvalid,
        ),
        (
            "a first link with a non-zero parent",
            w.envelope(&m, &rootless, 1, EnvelopeForm::Native),
            Reason::LaneChainInvalid,
        ),
        (
            "a link's signature not in the profile's encoding",
            w.envelope(&m, &garbled, 2, EnvelopeForm::Native),
            Reason::LaneSignatureInvalid,
        ),
        (
            "the mandate signed by the parent's agent, not the leaf's",
            w.envelope(&m, &chain, 1, EnvelopeForm::Native),
            Reason::SignatureInvalid,
        ),
        (
            "the mandate moved to another lane of the same agent",
            moved,
            Reason::SignatureInvalid,
        ),
        (
            "an owner-signed plain mandate with a chain attached",
            plain_by_owner,
            Reason::SignatureInvalid,
        ),
        (
            "a lane mandate without its chain",
            SignedMandate {
                lanes: Vec::new(),
                ..w.under_two(&m)
            },
            Reason::SignatureInvalid,
        ),
    ];
    for (comment, sm, reason) in cases {
        f.case(
            g,
            Case::new(comment, W::input(&sm), Exp::Invalid(reason))
                .flags(&["lane_signature"])
                .refs(&[SIGN, MAND, VER]),
        );
    }
    // The agent signed the plain Mandate type, not LaneMandate (the leaf's id is not bound).
    let plain_by_agent = {
        let signature = aep2::mandate_digest(&m, &w.domain)
            .ok()
            .and_then(|d| w.keys[2].sign_input(&d.input).ok())
            .unwrap_or_default();
        SignedMandate {
            form: EnvelopeForm::Native,
            mandate: m.clone(),
            domain: Some(w.domain.clone()),
            signature,
            lanes: chain.clone(),
        }
    };
    f.case(
        g,
        Case::new(
            "the leaf's agent signed the plain mandate input, not the lane-mandate input",
            W::input(&plain_by_agent),
            Exp::Invalid(Reason::SignatureInvalid),
        )
        .flags(&["lane_signature"])
        .refs(&[MAND]),
    );
}

fn policy(f: &mut FileBuilder, w: &W, p: &str) {
    let g = f.group(&format!("{p}-policy"), Kind::VerifyMandate, w.context(Some(NOW)));
    let root = w.chain(1);
    type Edit = fn(&mut Lane);
    let wider: Vec<(&str, Edit)> = vec![
        ("a sub-lane with a larger perPayment", |l| {
            l.per_payment = U256::from_u64(5_000)
        }),
        ("a sub-lane with a larger total", |l| l.total = U256::from_u64(20_000)),
        ("a sub-lane with no count limit under a parent with one", |l| {
            l.max_payments = 0
        }),
        ("a sub-lane with another period", |l| l.period = 3_600),
        ("a sub-lane with a larger allowance", |l| {
            l.allowance = U256::from_u64(6_000)
        }),
        ("a sub-lane with no payee list under a parent with one", |l| {
            l.payees.clear()
        }),
        ("a sub-lane ending after its parent", |l| l.valid_until += 1),
        ("a sub-lane starting before its parent", |l| l.valid_from -= 1),
    ];
    for (comment, edit) in wider {
        let lane = w.sub(&root[0], 2, edit);
        let sm = w.envelope(&w.ok_mandate(), &w.with_sub(&lane), 2, EnvelopeForm::Native);
        f.case(
            g,
            Case::new(comment, W::input(&sm), Exp::Invalid(Reason::LaneAttenuationInvalid))
                .flags(&["lane_policy"])
                .refs(&[CHAIN]),
        );
    }
    let mut other_owner = w.ok_mandate();
    let mut other_token = w.ok_mandate();
    match (&mut other_owner, &mut other_token) {
        (Mandate::Eip712(a), Mandate::Eip712(b)) => {
            a.owner = payee("lane-other-owner");
            b.token = payee("lane-other-token");
        }
        (Mandate::Ed25519(a), Mandate::Ed25519(b)) => {
            a.payer = pubkey("lane-other-owner");
            b.token = pubkey("lane-other-token");
        }
        _ => {}
    }
    let two = |m: &Mandate| w.under_two(m);
    let cases: Vec<(&str, SignedMandate, Option<u64>, Exp)> = vec![
        (
            "the mandate debits another owner",
            two(&other_owner),
            Some(NOW),
            Exp::Invalid(Reason::LaneAgentMismatch),
        ),
        (
            "the mandate pays in another token",
            two(&other_token),
            Some(NOW),
            Exp::Invalid(Reason::LaneAssetMismatch),
        ),
        (
            "now before validFrom",
            two(&w.mandate(400, w.payees[0], FROM + 600)),
            Some(FROM - 1),
            Exp::Invalid(Reason::LaneNotYetValid),
        ),
        (
            "now at validFrom (inclusive)",
            two(&w.mandate(400, w.payees[0], FROM + 600)),
            Some(FROM),
            Exp::Valid,
        ),
        (
            "now after validUntil, the mandate's deadline later still",
            two(&w.mandate(400, w.payees[0], UNTIL + 600)),
            Some(UNTIL + 1),
            Exp::Invalid(Reason::LaneExpired),
        ),
        (
            "now at validUntil with the deadline at it (inclusive)",
            two(&w.mandate(400, w.payees[0], UNTIL)),
            Some(UNTIL),
            Exp::Valid,
        ),
        (
            "the deadline after validUntil while now is inside the lane",
            two(&w.mandate(400, w.payees[0], UNTIL + 1)),
            Some(NOW),
            Exp::Invalid(Reason::LaneExpired),
        ),
        (
            "the deadline after validUntil, verified without a time",
            two(&w.mandate(400, w.payees[0], UNTIL + 1)),
            None,
            Exp::Invalid(Reason::LaneExpired),
        ),
        (
            "the amount above the leaf's perPayment",
            two(&w.mandate(501, w.payees[0], NOW + 600)),
            Some(NOW),
            Exp::Invalid(Reason::LanePaymentCapExceeded),
        ),
        (
            "the amount at the leaf's perPayment (inclusive)",
            two(&w.mandate(500, w.payees[0], NOW + 600)),
            Some(NOW),
            Exp::Valid,
        ),
        (
            "a payee not in the list",
            two(&w.mandate(400, w.stranger("lane-stranger"), NOW + 600)),
            Some(NOW),
            Exp::Invalid(Reason::LanePayeeNotAllowed),
        ),
        (
            "the second payee of the list",
            two(&w.mandate(400, w.payees[1], NOW + 600)),
            Some(NOW),
            Exp::Valid,
        ),
    ];
    for (comment, sm, now, exp) in cases {
        let g = if now == Some(NOW) {
            g
        } else {
            f.group(
                &format!("{p}-policy-at-{}", now.map_or("no-now".to_owned(), |n| n.to_string())),
                Kind::VerifyMandate,
                w.context(now),
            )
        };
        f.case(
            g,
            Case::new(comment, W::input(&sm), exp)
                .flags(&["lane_policy"])
                .refs(&[VER]),
        );
    }
    // An empty payee list is any payee; a parent without a count limit takes a child with one.
    let mut open = w.root();
    open.payees.clear();
    open.max_payments = 0;
    let open_root = sign_lane(&open, None, &w.domain, &w.keys[0]).unwrap_or_else(|_| w.force_lane(&open, 0));
    let counted = w.sub(&open_root, 2, |l| l.max_payments = 5);
    let counted = w.force_lane(&counted, 1);
    let sm = w.envelope(
        &w.mandate(400, w.stranger("lane-anyone"), NOW + 600),
        &[open_root, counted],
        2,
        EnvelopeForm::Native,
    );
    f.case(
        g,
        Case::new(
            "no payee list (any payee) and no count limit, under which a sub-lane with a limit of 5",
            W::input(&sm),
            Exp::Valid,
        )
        .flags(&["lane_policy"])
        .refs(&[OBJ, CHAIN]),
    );
    // More ways a sub-lane is wider than its parent (rules 1, 3, 4 and 5 of aep2.md#lane-chain).
    let other_owner = w.stranger("lane-other-owner");
    let other_token = w.stranger("lane-other-token");
    let outside = w.stranger("lane-outside-payee");
    type Narrowing = Box<dyn Fn(&mut Lane)>;
    let more: Vec<(&str, Narrowing)> = vec![
        (
            "a sub-lane of another owner",
            Box::new(move |l: &mut Lane| l.owner = other_owner),
        ),
        (
            "a sub-lane in another token",
            Box::new(move |l: &mut Lane| l.token = other_token),
        ),
        (
            "a sub-lane with a payee outside its parent's list",
            Box::new(move |l: &mut Lane| l.payees = vec![outside]),
        ),
        (
            "a sub-lane with a count limit above its parent's",
            Box::new(|l: &mut Lane| l.max_payments = 101),
        ),
        (
            "a sub-lane without an allowance under a parent with one",
            Box::new(|l: &mut Lane| {
                l.period = 0;
                l.allowance = U256::ZERO;
            }),
        ),
    ];
    for (comment, edit) in more {
        let lane = w.sub(&root[0], 2, |l| edit(l));
        let sm = w.envelope(&w.ok_mandate(), &w.with_sub(&lane), 2, EnvelopeForm::Native);
        f.case(
            g,
            Case::new(comment, W::input(&sm), Exp::Invalid(Reason::LaneAttenuationInvalid))
                .flags(&["lane_policy"])
                .refs(&[CHAIN]),
        );
    }
}

fn order(f: &mut FileBuilder, w: &W, p: &str) {
    let g = f.group(&format!("{p}-check-order"), Kind::VerifyMandate, w.context(Some(NOW)));
    let m = w.ok_mandate();
    let chain = w.chain(2);
    let cases: Vec<(&str, serde_json::Value, Reason)> = {
        // A sub-lane with a wrong parent, signed by the wrong key.
        let mut orphan = chain[1].lane.clone();
        orphan.parent = [0x33; 32];
        let orphan_bad_sig = vec![chain[0].clone(), w.force_lane(&orphan, 0)];
        // A tampered link and a mandate signed by the wrong key.
        let mut tampered = chain.clone();
        tampered[1].lane.purpose = "tampered after signing".into();
        // A wider sub-lane, for a mandate of another owner.
        let wide = w.with_sub(&w.sub(&chain[0], 2, |l| l.per_payment = U256::from_u64(5_000)));
        let mut other_owner = m.clone();
        let mut other_both = m.clone();
        match (&mut other_owner, &mut other_both) {
            (Mandate::Eip712(a), Mandate::Eip712(b)) => {
                a.owner = payee("lane-other-owner");
                b.owner = payee("lane-other-owner");
                b.token = payee("lane-other-token");
            }
            (Mandate::Ed25519(a), Mandate::Ed25519(b)) => {
                a.payer = pubkey("lane-other-owner");
                b.payer = pubkey("lane-other-owner");
                b.token = pubkey("lane-other-token");
            }
            _ => {}
        }
        let mut token_late = w.mandate(400, w.payees[0], NOW + 600);
        match &mut token_late {
            Mandate::Eip712(x) => x.token = payee("lane-other-token"),
            Mandate::Ed25519(x) => x.token = pubkey("lane-other-token"),
            Mandate::SolanaMvp(_) => {}
        }
        // A zero amount in the mandate and five links.
        let zero = W::with_envelope_member(
            &SignedMandate {
                lanes: Vec::new(),
                ..w.under_two(&m)
            },
            "mandate",
            Value::Object({
                let mut o = m.to_json();
                o.insert("amount", Value::String("0".into()));
                o
            }),
        );
        let zero_five = {
            let Some(h) = zero.get("header").and_then(|h| h.as_str()) else {
                return;
            };
            let bytes = aep2::codec::base64_decode(h).unwrap_or_default();
            let v = aep2::json::parse(std::str::from_utf8(&bytes).unwrap_or(""), &aep2::json::Limits::AEP2)
                .unwrap_or(Value::Null);
            let Value::Object(mut o) = v else { return };
            o.insert("lanes", Value::Array(vec![chain[0].to_json(); 5]));
            header_input(&header_of(&Value::Object(o)))
        };
        vec![
            (
                "a link's parent wrong and its signature by the wrong key: the parent first",
                W::input(&w.envelope(&m, &orphan_bad_sig, 2, EnvelopeForm::Native)),
                Reason::LaneChainInvalid,
            ),
            (
                "a link tampered and the mandate signed by the wrong key: the links first",
                W::input(&w.envelope(&m, &tampered, 1, EnvelopeForm::Native)),
                Reason::LaneSignatureInvalid,
            ),
            (
                "a sub-lane wider than its parent and the mandate for another owner: attenuation first",
                W::input(&w.envelope(&other_owner, &wide, 2, EnvelopeForm::Native)),
                Reason::LaneAttenuationInvalid,
            ),
            (
                "another owner and another token: the owner first",
                W::input(&w.under_two(&other_both)),
                Reason::LaneAgentMismatch,
            ),
            (
                "a zero amount in the mandate and five links: the envelope's members before lanes",
                zero_five,
                Reason::AmountZero,
            ),
            (
                "another token and the deadline past the lane: the asset before the time rules",
                W::input(&w.under_two(&{
                    let mut x = token_late.clone();
                    match &mut x {
                        Mandate::Eip712(e) => e.deadline = UNTIL + 1,
                        Mandate::Ed25519(e) => e.deadline = UNTIL + 1,
                        Mandate::SolanaMvp(_) => {}
                    }
                    x
                })),
                Reason::LaneAssetMismatch,
            ),
            (
                "the deadline past the lane and the amount above the cap: the time rules before the cap",
                W::input(&w.under_two(&w.mandate(501, w.payees[0], UNTIL + 1))),
                Reason::LaneExpired,
            ),
            (
                "the amount above the cap and a payee not listed: the cap before the payees",
                W::input(&w.under_two(&w.mandate(501, w.stranger("lane-stranger"), NOW + 600))),
                Reason::LanePaymentCapExceeded,
            ),
        ]
    };
    for (comment, input, reason) in cases {
        f.case(
            g,
            Case::new(comment, input, Exp::Invalid(reason))
                .flags(&["check_order"])
                .refs(&[VER]),
        );
    }
    // Core policy before the lane rules: expired with the amount above the cap.
    let g = f.group(
        &format!("{p}-check-order-expired"),
        Kind::VerifyMandate,
        w.context(Some(NOW + 601)),
    );
    f.case(
        g,
        Case::new(
            "the mandate expired and its amount above the cap: expired first",
            W::input(&w.under_two(&w.mandate(501, w.payees[0], NOW + 600))),
            Exp::Invalid(Reason::Expired),
        )
        .flags(&["check_order"])
        .refs(&[VER, "aep2.md#verification-order"]),
    );
    // Not yet valid with the amount above the cap: the time rules first.
    let g = f.group(
        &format!("{p}-check-order-early"),
        Kind::VerifyMandate,
        w.context(Some(FROM - 1)),
    );
    f.case(
        g,
        Case::new(
            "now before validFrom and the amount above the cap: not yet valid first",
            W::input(&w.under_two(&w.mandate(501, w.payees[0], FROM + 600))),
            Exp::Invalid(Reason::LaneNotYetValid),
        )
        .flags(&["check_order"])
        .refs(&[VER]),
    );
}

/// What the receipts of lane mandates (`receipts.json`) are checked against.
pub(crate) struct ReceiptFixture {
    /// The domain.
    pub(crate) domain: Domain,
    /// The header of the usual mandate under a chain of two.
    pub(crate) header: String,
    /// Its mandate digest.
    pub(crate) digest: aep2::MandateDigest,
    /// Its leaf lane's id.
    pub(crate) leaf: [u8; 32],
    /// The chain's root's id (a lane of the chain that is not the leaf).
    pub(crate) root: [u8; 32],
}

/// The [`ReceiptFixture`] of `profile`'s world.
pub(crate) fn receipt_fixture(profile: Profile) -> Option<ReceiptFixture> {
    let w = match profile {
        Profile::Eip712 => W::eip712(),
        _ => W::ed25519(),
    };
    let chain = w.chain(2);
    let sm = w.under_two(&w.ok_mandate());
    let leaf = w.id(chain.last()?);
    let digest = lane_mandate_digest(&sm.mandate, &w.domain, &leaf).ok()?;
    Some(ReceiptFixture {
        domain: w.domain.clone(),
        header: W::header(&sm),
        digest,
        leaf,
        root: w.id(chain.first()?),
    })
}
