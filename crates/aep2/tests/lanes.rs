//! Spending lanes (spec `aep2.md#lanes`): chains of one to four links in both profiles sign,
//! travel and verify; every stateless rule rejects with its own code; the lane id binds the
//! lane and the mandate binds the leaf; the limits of the envelope hold with four full links.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aep2::crypto::{ed25519, secp256k1};
use aep2::lane::{Lane, MAX_LANE_DEPTH, SignedLane, sign_lane};
use aep2::{
    AccountId, Base58Key, Domain, Ed25519Domain, Ed25519Mandate, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate,
    Mandate, PayerKey, Profile, Reason, SignedMandate, U256, Verifier, sign_lane_mandate, sign_mandate,
};

const NOW: u64 = 1_800_000_000;

fn evm_key(label: u8) -> PayerKey {
    let mut bytes = [label; 32];
    bytes[0] = 1;
    PayerKey::Secp256k1(secp256k1::SecretKey::from_bytes(&bytes).unwrap())
}

fn ed_key(label: u8) -> PayerKey {
    PayerKey::Ed25519([label; 32])
}

fn account(key: &PayerKey) -> AccountId {
    AccountId::parse(&key.signer()).unwrap()
}

fn evm_domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912").unwrap(),
    })
}

fn ed_domain() -> Domain {
    Domain::Ed25519(Ed25519Domain {
        network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".into(),
        wallet: Base58Key([9; 32]),
    })
}

/// One profile's world: keys of the owner and of three agents, the token, two payees.
struct World {
    domain: Domain,
    profile: Profile,
    keys: Vec<PayerKey>,
    token: AccountId,
    payees: [AccountId; 2],
}

fn world(profile: Profile) -> World {
    match profile {
        Profile::Eip712 => World {
            domain: evm_domain(),
            profile,
            keys: (1..=5).map(evm_key).collect(),
            token: AccountId::Evm(EvmAddress([0x36; 20])),
            payees: [
                AccountId::Evm(EvmAddress([0xa1; 20])),
                AccountId::Evm(EvmAddress([0xa2; 20])),
            ],
        },
        _ => World {
            domain: ed_domain(),
            profile,
            keys: (1..=5).map(ed_key).collect(),
            token: AccountId::Base58(Base58Key([0x36; 32])),
            payees: [
                AccountId::Base58(Base58Key([0xa1; 32])),
                AccountId::Base58(Base58Key([0xa2; 32])),
            ],
        },
    }
}

impl World {
    fn root(&self) -> Lane {
        Lane {
            profile: self.profile,
            owner: account(&self.keys[0]),
            agent: account(&self.keys[1]),
            token: self.token,
            per_payment: U256::from_u64(1_000),
            total: U256::from_u64(10_000),
            max_payments: 100,
            period: 86_400,
            allowance: U256::from_u64(5_000),
            payees: self.payees.to_vec(),
            valid_from: NOW - 3_600,
            valid_until: NOW + 30 * 86_400,
            purpose: "research: weather data".into(),
            parent: [0; 32],
            salt: [7; 32],
        }
    }

    /// A sub-lane of `parent` for agent `agent` (index into `keys`), as narrow as given.
    fn sub(&self, parent: &SignedLane, agent: usize, edit: impl FnOnce(&mut Lane)) -> Lane {
        let mut l = parent.lane.clone();
        l.agent = account(&self.keys[agent]);
        l.parent = parent.lane.digest(&self.domain).unwrap().id;
        l.per_payment = U256::from_u64(500);
        l.total = U256::from_u64(2_000);
        l.purpose = format!("sub-agent {agent}");
        edit(&mut l);
        l
    }

    /// A chain of `depth` links: the owner grants keys[1], keys[1] grants keys[2], ….
    fn chain(&self, depth: usize) -> Vec<SignedLane> {
        let mut links = vec![sign_lane(&self.root(), None, &self.domain, &self.keys[0]).unwrap()];
        for i in 1..depth {
            let lane = self.sub(&links[i - 1], i + 1, |_| {});
            links.push(sign_lane(&lane, Some(&links[i - 1]), &self.domain, &self.keys[i]).unwrap());
        }
        links
    }

    fn mandate(&self, amount: u64, payee: AccountId, deadline: u64) -> Mandate {
        match (self.profile, account(&self.keys[0]), self.token, payee) {
            (Profile::Eip712, AccountId::Evm(owner), AccountId::Evm(token), AccountId::Evm(payee)) => {
                Mandate::Eip712(EvmMandate {
                    owner,
                    token,
                    payee,
                    amount: U256::from_u64(amount),
                    nonce: U256::from_u64(42),
                    deadline,
                    reference: [3; 32],
                })
            }
            (_, AccountId::Base58(payer), AccountId::Base58(token), AccountId::Base58(payee)) => {
                Mandate::Ed25519(Ed25519Mandate {
                    payer,
                    token,
                    payee,
                    amount,
                    nonce: 42,
                    deadline,
                    reference: [3; 32],
                })
            }
            _ => unreachable!("accounts of the profile"),
        }
    }

    fn ok_mandate(&self) -> Mandate {
        self.mandate(400, self.payees[0], NOW + 600)
    }

    /// Signs with whatever key, skipping the signer's refusals: for inputs only a broken
    /// signer would produce.
    fn force(&self, m: &Mandate, lanes: &[SignedLane], key: &PayerKey, form: EnvelopeForm) -> SignedMandate {
        let leaf = lanes.last().unwrap().lane.digest(&self.domain).unwrap().id;
        let d = aep2::lane::lane_mandate_digest(m, &self.domain, &leaf).unwrap();
        SignedMandate {
            form,
            mandate: m.clone(),
            domain: (form == EnvelopeForm::Native).then(|| self.domain.clone()),
            signature: key.sign_input(&d.input).unwrap(),
            lanes: lanes.to_vec(),
        }
    }

    fn force_lane(&self, lane: &Lane, key: &PayerKey) -> SignedLane {
        SignedLane {
            lane: lane.clone(),
            signature: key.sign_input(&lane.digest(&self.domain).unwrap().input).unwrap(),
        }
    }

    fn verify(&self, sm: &SignedMandate, now: Option<u64>) -> Result<aep2::verify::Verified, aep2::Error> {
        Verifier::new(self.domain.clone()).verify_header(&sm.encode(), now)
    }

    fn code(&self, sm: &SignedMandate, now: Option<u64>) -> &'static str {
        self.verify(sm, now).unwrap_err().code()
    }
}

fn both(f: impl Fn(&World)) {
    f(&world(Profile::Eip712));
    f(&world(Profile::Ed25519));
}

#[test]
fn chains_of_one_to_four_links_verify_in_both_envelopes() {
    both(|w| {
        for depth in 1..=MAX_LANE_DEPTH {
            let chain = w.chain(depth);
            for form in [EnvelopeForm::Mvp, EnvelopeForm::Native] {
                let (sm, digest) = sign_lane_mandate(&w.ok_mandate(), &w.domain, &w.keys[depth], form, &chain).unwrap();
                let header = sm.encode();
                let v = w
                    .verify(&sm, Some(NOW))
                    .unwrap_or_else(|e| panic!("{depth} {form:?}: {e}"));
                assert_eq!(v.signer(), w.keys[depth].signer(), "the leaf's agent signed");
                assert_eq!(v.digest.id, digest.id);
                assert_eq!(v.signed.lanes, chain);
                // The envelope round-trips and its encoding is a fixed point.
                let again = SignedMandate::decode(&header, w.profile).unwrap();
                assert_eq!(again, sm);
                assert_eq!(again.encode(), header);
                assert!(header.len() <= aep2::envelope::MAX_HEADER_BYTES);
            }
        }
    });
}

#[test]
fn the_mandate_id_binds_the_leaf_and_differs_from_a_plain_mandates() {
    both(|w| {
        let m = w.ok_mandate();
        let one = w.chain(1);
        let two = w.chain(2);
        let (a, da) = sign_lane_mandate(&m, &w.domain, &w.keys[1], EnvelopeForm::Mvp, &one).unwrap();
        let (_, db) = sign_lane_mandate(&m, &w.domain, &w.keys[2], EnvelopeForm::Mvp, &two).unwrap();
        let (_, plain) = sign_mandate(&m, &w.domain, &w.keys[0], EnvelopeForm::Mvp).unwrap();
        assert_ne!(da.id, db.id);
        assert_ne!(da.id, plain.id);
        // Moved to another lane of the same agent: the signature no longer verifies.
        let mut other = w.root();
        other.salt = [8; 32];
        other.purpose = "ops".into();
        let moved = SignedMandate {
            lanes: vec![sign_lane(&other, None, &w.domain, &w.keys[0]).unwrap()],
            ..a.clone()
        };
        assert_eq!(w.code(&moved, Some(NOW)), "signature_invalid");
        // A plain (owner-signed) mandate with a chain attached is not a lane mandate.
        let (p, _) = sign_mandate(&m, &w.domain, &w.keys[0], EnvelopeForm::Mvp).unwrap();
        assert_eq!(
            w.code(
                &SignedMandate {
                    lanes: one.clone(),
                    ..p
                },
                Some(NOW)
            ),
            "signature_invalid"
        );
        // And a lane mandate without its chain is not a plain one.
        assert_eq!(
            w.code(&SignedMandate { lanes: Vec::new(), ..a }, Some(NOW)),
            "signature_invalid"
        );
    });
}

#[test]
fn every_stateless_rule_has_its_code() {
    both(|w| {
        let chain = w.chain(2);
        let agent = &w.keys[2];
        let ok = |m: &Mandate| w.force(m, &chain, agent, EnvelopeForm::Native);

        // Signature stage.
        let mut bad_sig = chain.clone();
        bad_sig[1].lane.purpose = "tampered".into();
        assert_eq!(
            w.code(&w.force(&w.ok_mandate(), &bad_sig, agent, EnvelopeForm::Mvp), Some(NOW)),
            "lane_signature_invalid"
        );
        let mut wrong_grantor = chain.clone();
        wrong_grantor[1] = w.force_lane(&chain[1].lane, &w.keys[0]); // the owner, not the parent's agent
        assert_eq!(
            w.code(
                &w.force(&w.ok_mandate(), &wrong_grantor, agent, EnvelopeForm::Mvp),
                Some(NOW)
            ),
            "lane_signature_invalid"
        );
        let mut orphan = chain[1].lane.clone();
        orphan.parent = [5; 32];
        let broken = vec![chain[0].clone(), w.force_lane(&orphan, &w.keys[1])];
        assert_eq!(
            w.code(&w.force(&w.ok_mandate(), &broken, agent, EnvelopeForm::Mvp), Some(NOW)),
            "lane_chain_invalid"
        );
        let mut rooted = chain[1].lane.clone();
        rooted.parent = [0; 32];
        let not_root = vec![w.force_lane(&rooted, &w.keys[1])];
        assert_eq!(
            w.code(
                &w.force(&w.ok_mandate(), &not_root, agent, EnvelopeForm::Mvp),
                Some(NOW)
            ),
            "lane_signature_invalid"
        );
        assert_eq!(
            w.code(
                &w.force(&w.ok_mandate(), &chain, &w.keys[1], EnvelopeForm::Mvp),
                Some(NOW)
            ),
            "signature_invalid",
            "signed by the parent's agent, not the leaf's"
        );

        // Policy stage, in order.
        let wider = w.sub(&chain[0], 2, |l| l.per_payment = U256::from_u64(5_000));
        let wide = vec![chain[0].clone(), w.force_lane(&wider, &w.keys[1])];
        assert_eq!(
            w.code(&w.force(&w.ok_mandate(), &wide, agent, EnvelopeForm::Mvp), Some(NOW)),
            "lane_attenuation_invalid"
        );
        for edit in [
            (|l: &mut Lane| l.total = U256::from_u64(20_000)) as fn(&mut Lane),
            |l| l.max_payments = 0,
            |l| l.period = 3_600,
            |l| l.allowance = U256::from_u64(6_000),
            |l| l.payees.clear(),
            |l| l.valid_until += 1,
            |l| l.valid_from -= 1,
        ] {
            let lane = w.sub(&chain[0], 2, edit);
            let links = vec![chain[0].clone(), w.force_lane(&lane, &w.keys[1])];
            assert_eq!(
                w.code(&w.force(&w.ok_mandate(), &links, agent, EnvelopeForm::Mvp), Some(NOW)),
                "lane_attenuation_invalid"
            );
            // The signer refuses to grant it.
            assert_eq!(
                sign_lane(&lane, Some(&chain[0]), &w.domain, &w.keys[1])
                    .unwrap_err()
                    .code(),
                "lane_attenuation_invalid"
            );
        }
        let mut other_owner = w.ok_mandate();
        match &mut other_owner {
            Mandate::Eip712(m) => m.owner = EvmAddress([0x77; 20]),
            Mandate::Ed25519(m) => m.payer = Base58Key([0x77; 32]),
            Mandate::SolanaMvp(_) => unreachable!(),
        }
        assert_eq!(w.code(&ok(&other_owner), Some(NOW)), "lane_agent_mismatch");
        let mut other_token = w.ok_mandate();
        match &mut other_token {
            Mandate::Eip712(m) => m.token = EvmAddress([0x78; 20]),
            Mandate::Ed25519(m) => m.token = Base58Key([0x78; 32]),
            Mandate::SolanaMvp(_) => unreachable!(),
        }
        assert_eq!(w.code(&ok(&other_token), Some(NOW)), "lane_asset_mismatch");
        let early = w.root().valid_from - 1;
        let m_early = w.mandate(400, w.payees[0], early + 600);
        assert_eq!(w.code(&ok(&m_early), Some(early)), "lane_not_yet_valid");
        let end = w.root().valid_until;
        assert_eq!(
            w.code(&ok(&w.mandate(400, w.payees[0], end + 10)), Some(end + 11)),
            "expired",
            "expired comes first"
        );
        assert_eq!(
            w.code(&ok(&w.mandate(400, w.payees[0], end + 10)), Some(end - 10)),
            "lane_expired",
            "deadline past the lane"
        );
        assert_eq!(
            w.code(&ok(&w.mandate(400, w.payees[0], end + 10)), None),
            "lane_expired",
            "without now too"
        );
        assert_eq!(
            w.code(&ok(&w.mandate(501, w.payees[0], NOW + 600)), Some(NOW)),
            "lane_payment_cap_exceeded"
        );
        assert!(
            w.verify(&ok(&w.mandate(500, w.payees[0], NOW + 600)), Some(NOW))
                .is_ok(),
            "the cap is inclusive"
        );
        let stranger = match w.profile {
            Profile::Eip712 => AccountId::Evm(EvmAddress([0xa3; 20])),
            _ => AccountId::Base58(Base58Key([0xa3; 32])),
        };
        assert_eq!(
            w.code(&ok(&w.mandate(400, stranger, NOW + 600)), Some(NOW)),
            "lane_payee_not_allowed"
        );
        assert!(
            w.verify(&ok(&w.mandate(400, w.payees[1], NOW + 600)), Some(NOW))
                .is_ok()
        );
    });
}

#[test]
fn the_envelope_schema_and_the_lane_value_rules() {
    both(|w| {
        let chain = w.chain(1);
        let (sm, _) = sign_lane_mandate(&w.ok_mandate(), &w.domain, &w.keys[1], EnvelopeForm::Native, &chain).unwrap();
        let verifier = Verifier::new(w.domain.clone());
        let with = |edit: &dyn Fn(&mut aep2::json::Object)| {
            let aep2::json::Value::Object(mut o) = sm.to_json() else {
                unreachable!()
            };
            edit(&mut o);
            verifier
                .check_value(&aep2::json::Value::Object(o), Some(NOW))
                .verdict
                .unwrap_err()
                .code()
        };
        use aep2::json::Value;
        assert_eq!(
            with(&|o| o.insert("lanes", Value::Array(Vec::new()))),
            "lane_depth_exceeded"
        );
        assert_eq!(with(&|o| o.insert("lanes", Value::String("x".into()))), "field_type");
        let five: Vec<Value> = (0..5).map(|_| chain[0].to_json()).collect();
        assert_eq!(
            with(&|o| o.insert("lanes", Value::Array(five.clone()))),
            "lane_depth_exceeded"
        );
        let lane_member = |name: &'static str, v: Value| {
            move |o: &mut aep2::json::Object| {
                let Some(Value::Array(links)) = o.get("lanes").cloned() else {
                    unreachable!()
                };
                let Value::Object(mut signed) = links[0].clone() else {
                    unreachable!()
                };
                let Some(Value::Object(mut lane)) = signed.get("lane").cloned() else {
                    unreachable!()
                };
                lane.insert(name, v.clone());
                signed.insert("lane", Value::Object(lane));
                o.insert("lanes", Value::Array(vec![Value::Object(signed)]));
            }
        };
        assert_eq!(with(&lane_member("extra", Value::from_u64(1))), "unknown_field");
        assert_eq!(
            with(&lane_member("perPayment", Value::String("0".into()))),
            "amount_zero"
        );
        assert_eq!(
            with(&lane_member("maxPayments", Value::String("1".into()))),
            "field_type"
        );
        assert_eq!(
            with(&lane_member("parent", Value::String("0x00".into()))),
            "ref_invalid"
        );
        assert_eq!(
            with(&lane_member("allowance", Value::String("0".into()))),
            "lane_invalid"
        );
        assert_eq!(with(&lane_member("validUntil", Value::from_u64(1))), "lane_invalid");
        assert_eq!(
            with(&lane_member("purpose", Value::String("x".repeat(129)))),
            "lane_invalid"
        );
        let dup = Value::Array(vec![
            Value::String(w.payees[0].to_string()),
            Value::String(w.payees[0].to_string()),
        ]);
        assert_eq!(with(&lane_member("payees", dup)), "lane_invalid");
        let nine = Value::Array(
            (0u8..9)
                .map(|i| {
                    Value::String(match w.profile {
                        Profile::Eip712 => AccountId::Evm(EvmAddress([i + 1; 20])).to_string(),
                        _ => AccountId::Base58(Base58Key([i + 1; 32])).to_string(),
                    })
                })
                .collect(),
        );
        assert_eq!(with(&lane_member("payees", nine)), "lane_invalid");
        // solana-mvp has no lanes.
        let mvp = Verifier::new(Domain::SolanaMvp);
        let v = aep2::json::Value::Object(
            aep2::json::Object::new()
                .with(
                    "mandate",
                    Value::Object(
                        Mandate::SolanaMvp(aep2::SolanaMvpMandate {
                            payer: Base58Key(ed25519::public_key_from_seed(&[1; 32])),
                            token: Base58Key([2; 32]),
                            payee: Base58Key([3; 32]),
                            amount: 1,
                            nonce: 1,
                            deadline: NOW + 600,
                            reference: "r".into(),
                        })
                        .to_json(),
                    ),
                )
                .with("payerSig", Value::String("1".into()))
                .with("lanes", Value::Array(Vec::new())),
        );
        assert_eq!(
            mvp.check_value(&v, Some(NOW)).verdict.unwrap_err().reason(),
            Reason::UnsupportedProfile
        );
    });
}

#[test]
fn the_signer_refuses_what_verifiers_reject() {
    both(|w| {
        let chain = w.chain(2);
        let m = w.ok_mandate();
        let refuse = |key: &PayerKey, m: &Mandate| {
            sign_lane_mandate(m, &w.domain, key, EnvelopeForm::Mvp, &chain)
                .unwrap_err()
                .code()
        };
        assert_eq!(refuse(&w.keys[1], &m), "signature_invalid", "not the leaf's agent");
        let mut other = m.clone();
        match &mut other {
            Mandate::Eip712(x) => x.owner = EvmAddress([0x77; 20]),
            Mandate::Ed25519(x) => x.payer = Base58Key([0x77; 32]),
            Mandate::SolanaMvp(_) => unreachable!(),
        }
        assert_eq!(refuse(&w.keys[2], &other), "lane_agent_mismatch");
        assert_eq!(
            refuse(&w.keys[2], &w.mandate(501, w.payees[0], NOW + 600)),
            "lane_payment_cap_exceeded"
        );
        // A lane is granted only by its grantor.
        assert_eq!(
            sign_lane(&w.root(), None, &w.domain, &w.keys[1]).unwrap_err().code(),
            "signature_invalid"
        );
        let sub = w.sub(&chain[0], 2, |_| {});
        assert_eq!(
            sign_lane(&sub, Some(&chain[0]), &w.domain, &w.keys[0])
                .unwrap_err()
                .code(),
            "signature_invalid",
            "the owner is not the parent's agent"
        );
    });
}

#[test]
fn the_largest_chain_fits_the_header_limit_with_room_for_an_x402_wrapper() {
    both(|w| {
        let payees: Vec<AccountId> = (0u8..8)
            .map(|i| match w.profile {
                Profile::Eip712 => AccountId::Evm(EvmAddress([0x80 + i; 20])),
                _ => AccountId::Base58(Base58Key([0x80 + i; 32])),
            })
            .collect();
        // The largest values of each member: amounts at the top of the profile's range.
        let max = match w.profile {
            Profile::Eip712 => U256([0xff; 32]),
            _ => U256::from_u64(u64::MAX),
        };
        let purpose = "p".repeat(aep2::lane::MAX_PURPOSE_BYTES);
        let mut root = w.root();
        root.payees = payees.clone();
        root.purpose = purpose.clone();
        root.per_payment = max;
        root.total = max;
        root.allowance = max;
        root.max_payments = aep2::uint::MAX_JSON_INTEGER;
        root.valid_until = aep2::uint::MAX_JSON_INTEGER;
        let mut links = vec![sign_lane(&root, None, &w.domain, &w.keys[0]).unwrap()];
        for i in 1..MAX_LANE_DEPTH {
            let lane = w.sub(&links[i - 1], i + 1, |l| {
                l.payees = payees.clone();
                l.purpose = purpose.clone();
                l.per_payment = max;
                l.total = max;
            });
            links.push(sign_lane(&lane, Some(&links[i - 1]), &w.domain, &w.keys[i]).unwrap());
        }
        let mut m = w.mandate(400, payees[0], NOW + 600);
        match &mut m {
            Mandate::Eip712(x) => {
                x.amount = max;
                x.nonce = U256([0xff; 32]);
            }
            Mandate::Ed25519(x) => {
                x.amount = u64::MAX;
                x.nonce = u64::MAX;
            }
            Mandate::SolanaMvp(_) => unreachable!(),
        }
        let (sm, _) = sign_lane_mandate(&m, &w.domain, &w.keys[MAX_LANE_DEPTH], EnvelopeForm::Native, &links).unwrap();
        let header = sm.encode();
        println!(
            "{}: the largest {MAX_LANE_DEPTH}-link chain, {} bytes of header",
            w.profile,
            header.len()
        );
        // 1400 bytes are left for what an x402 v2 PAYMENT-SIGNATURE adds (accepted terms, a quote).
        assert!(
            header.len() + 1_400 <= aep2::envelope::MAX_HEADER_BYTES,
            "{}",
            header.len()
        );
        assert!(w.verify(&sm, Some(NOW)).is_ok());
    });
}

#[test]
fn the_signer_refuses_a_header_over_the_limit_and_a_lane_a_verifier_rejects() {
    both(|w| {
        let mut bad = w.root();
        bad.per_payment = U256::ZERO;
        assert_eq!(
            sign_lane(&bad, None, &w.domain, &w.keys[0]).unwrap_err().code(),
            "amount_zero"
        );
        let mut bad = w.root();
        bad.valid_until = u64::MAX;
        assert_eq!(
            sign_lane(&bad, None, &w.domain, &w.keys[0]).unwrap_err().code(),
            "uint_out_of_range"
        );
        let mut bad = w.root();
        bad.purpose = "line\nbreak".into();
        assert_eq!(
            sign_lane(&bad, None, &w.domain, &w.keys[0]).unwrap_err().code(),
            "lane_invalid"
        );
        let mut bad = w.root();
        bad.purpose = "a \"quote\"".into();
        assert_eq!(
            sign_lane(&bad, None, &w.domain, &w.keys[0]).unwrap_err().code(),
            "lane_invalid"
        );
        if w.profile == Profile::Ed25519 {
            let mut bad = w.root();
            bad.total = U256([0xff; 32]);
            assert_eq!(
                sign_lane(&bad, None, &w.domain, &w.keys[0]).unwrap_err().code(),
                "uint_out_of_range"
            );
        }
        // A chain one link deeper than the maximum is refused where it is signed under.
        let mut links = w.chain(MAX_LANE_DEPTH);
        let extra = w.sub(links.last().unwrap(), MAX_LANE_DEPTH + 1, |_| {});
        links.push(sign_lane(&extra, links.last(), &w.domain, &w.keys[MAX_LANE_DEPTH]).unwrap());
        let m = w.ok_mandate();
        assert_eq!(
            sign_lane_mandate(&m, &w.domain, &w.keys[MAX_LANE_DEPTH + 1], EnvelopeForm::Mvp, &links)
                .unwrap_err()
                .code(),
            "lane_depth_exceeded"
        );
    });
}

/// Lane revocations (spec `aep2.md#lane-revocation`) in both profiles: they round-trip through
/// JSON, verify for their revoker, and are checked against the chain: the owner or the agent of a
/// link above the revoked one, never its own agent; a changed member breaks the signature.
#[test]
fn revocations_round_trip_and_name_a_grantor_above_the_revoked_lane() {
    use aep2::lane::{LaneRevocation, check_revocation};
    both(|w| {
        let chain = w.chain(3);
        let leaf = chain[2].lane.digest(&w.domain).unwrap().id;
        let signed = |key: &PayerKey| LaneRevocation::sign(&w.domain, leaf, NOW, key).unwrap();
        let by_owner = signed(&w.keys[0]);
        let text = aep2::json::to_compact(&by_owner.to_json());
        let back = LaneRevocation::from_json(&aep2::json::parse(&text, &aep2::json::Limits::AEP2).unwrap()).unwrap();
        assert_eq!(back, by_owner);
        assert_eq!(check_revocation(&by_owner, &chain).unwrap().len(), 3);
        // The agents of links 0 and 1 granted links 1 and 2: both are above the leaf.
        check_revocation(&signed(&w.keys[1]), &chain).unwrap();
        check_revocation(&signed(&w.keys[2]), &chain).unwrap();
        // The leaf's own agent, and a stranger, are not.
        for key in [&w.keys[3], &w.keys[4]] {
            assert_eq!(
                check_revocation(&signed(key), &chain).unwrap_err().code(),
                "lane_revoker_invalid"
            );
        }
        // The revocation of a lane names the chain's last link.
        assert_eq!(
            check_revocation(&by_owner, &chain[..2]).unwrap_err().code(),
            "lane_revoker_invalid"
        );
        let mut later = by_owner.clone();
        later.issued_at += 1;
        assert_eq!(
            check_revocation(&later, &chain).unwrap_err().code(),
            "signature_invalid"
        );
    });
}
