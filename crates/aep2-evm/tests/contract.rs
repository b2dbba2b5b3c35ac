//! The debit-wallet contract on both chains: its digests are the core's on every eip712
//! vector, and a batch settles what verifies, skips the rest with the spec's reason, and pays
//! each payee once.

#![allow(clippy::unwrap_used)]

use aep2::crypto::secp256k1::SecretKey;
use aep2::{Domain, Eip712Domain, EvmAddress, Mandate, PayerKey, Profile, SignedMandate, U256 as CoreU256};
use aep2_evm::TxKey;
use aep2_evm::contract::{self, AEP2DebitWallet, SkipReason, Wallet, abi_mandate, decode};
use aep2_evm::devnet::{CHAIN_ID, GENESIS, TestChain, VECTOR_WALLET};
use aep2_evm::on_both_chains;
use alloy::primitives::{Address, B256, Bytes, U256};
use std::path::PathBuf;

/// Every `eip712` mandate header of the vectors that decodes.
fn vector_mandates() -> Vec<(String, SignedMandate)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for g in file["testGroups"].as_array().unwrap() {
            if g["context"]["profile"] != "eip712" {
                continue;
            }
            for t in g["tests"].as_array().unwrap() {
                let Some(h) = t["input"]["header"].as_str() else {
                    continue;
                };
                if let Ok(sm) = SignedMandate::decode(h, Profile::Eip712) {
                    out.push((t["id"].as_str().unwrap().to_owned(), sm));
                }
            }
        }
    }
    out
}

fn evm(a: Address) -> EvmAddress {
    EvmAddress(a.0.0)
}

async fn deploy<C: TestChain>(chain: &C) -> (TxKey, Wallet, Address) {
    let deployer = chain.deployer();
    let wallet = contract::deploy_wallet(chain, &deployer, 3 * 3600).await.unwrap();
    let token = contract::deploy_token(chain, &deployer, "USDT").await.unwrap();
    (deployer, Wallet { address: wallet }, token)
}

async fn digests_equal_the_core<C: TestChain>(chain: &C) {
    let (_, wallet, _) = deploy(chain).await;
    // The deployed code, placed at the vectors' verifyingContract: OpenZeppelin's EIP712
    // rebuilds the domain separator for the address it runs at.
    let at: Address = VECTOR_WALLET.parse().unwrap();
    chain.set_code(at, chain.code(wallet.address).await.unwrap()).await;
    let there = Wallet { address: at };
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: CHAIN_ID,
        verifying_contract: evm(at),
    });
    let mandates = vector_mandates();
    assert!(mandates.len() > 150, "{} eip712 mandates", mandates.len());
    for (id, sm) in &mandates {
        let Mandate::Eip712(m) = &sm.mandate else {
            panic!("{id}: not eip712")
        };
        let core = aep2::mandate_digest(&sm.mandate, &domain).unwrap().id;
        let onchain = there.mandate_digest(chain, abi_mandate(m)).await.unwrap();
        assert_eq!(onchain, B256::from(core), "{id} on {}", chain.name());
    }
    println!(
        "{}: {} eip712 vector mandates, every digest the core's",
        chain.name(),
        mandates.len()
    );
}

#[test]
fn the_contracts_digest_is_the_cores_on_every_eip712_vector() {
    on_both_chains!(digests_equal_the_core);
}

fn sign(m: &aep2::EvmMandate, owner: &SecretKey, wallet: Address) -> Bytes {
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: CHAIN_ID,
        verifying_contract: evm(wallet),
    });
    let key = PayerKey::Secp256k1(owner.clone());
    let (sm, _) = aep2::sign_mandate(&Mandate::Eip712(m.clone()), &domain, &key, aep2::EnvelopeForm::Mvp).unwrap();
    Bytes::from(aep2::codec::hex_decode_0x(&sm.signature).unwrap())
}

fn digest_of(m: &aep2::EvmMandate, wallet: Address) -> B256 {
    let d = Domain::Eip712(Eip712Domain {
        chain_id: CHAIN_ID,
        verifying_contract: evm(wallet),
    });
    B256::from(aep2::mandate_digest(&Mandate::Eip712(m.clone()), &d).unwrap().id)
}

fn item(m: &aep2::EvmMandate, signature: Bytes) -> AEP2DebitWallet::Item {
    AEP2DebitWallet::Item {
        mandate: abi_mandate(m),
        signature,
    }
}

async fn batch_settles_and_skips<C: TestChain>(chain: &C) {
    let (deployer, wallet, token) = deploy(chain).await;
    let sp = TxKey::from_label("sp");
    let payer_tx = TxKey::from_label("payer");
    chain.fund(sp.address()).await;
    chain.fund(payer_tx.address()).await;
    wallet
        .set_settlement_processor(chain, &deployer, sp.address(), true)
        .await
        .unwrap();
    contract::mint(chain, &deployer, token, payer_tx.address(), U256::from(10_000u64))
        .await
        .unwrap();
    wallet
        .deposit(chain, &payer_tx, token, U256::from(5_000u64))
        .await
        .unwrap();
    let owner = SecretKey::from_bytes(&payer_tx.secret_bytes()).unwrap();
    let (payee_a, payee_b) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb2));
    let mandate = |n: u64, payee: Address, amount: u64, deadline: u64| aep2::EvmMandate {
        owner: evm(payer_tx.address()),
        token: evm(token),
        payee: evm(payee),
        amount: CoreU256::from_u64(amount),
        nonce: CoreU256::from_u64(n),
        deadline,
        reference: [n as u8; 32],
    };
    let later = GENESIS + 3600;
    let good: Vec<_> = [(1, payee_a, 100), (2, payee_a, 200), (3, payee_b, 300)]
        .into_iter()
        .map(|(n, p, a)| mandate(n, p, a, later))
        .collect();
    let mut items: Vec<_> = good.iter().map(|m| item(m, sign(m, &owner, wallet.address))).collect();
    // A signature by another key, a reused nonce, an expired mandate, one above the balance,
    // and a high-s twin of a valid signature.
    let other = SecretKey::from_bytes(&TxKey::from_label("mallory").secret_bytes()).unwrap();
    let forged = mandate(4, payee_a, 10, later);
    // A signer refuses a key that is not the owner's, so the forgery signs the digest directly.
    let forged_sig = other.sign_prehash(&digest_of(&forged, wallet.address).0);
    items.push(item(&forged, Bytes::copy_from_slice(&forged_sig)));
    let reused = mandate(1, payee_b, 10, later);
    items.push(item(&reused, sign(&reused, &owner, wallet.address)));
    let expired = mandate(5, payee_a, 10, GENESIS - 1);
    items.push(item(&expired, sign(&expired, &owner, wallet.address)));
    let too_much = mandate(6, payee_a, 4_401, later);
    items.push(item(&too_much, sign(&too_much, &owner, wallet.address)));
    let twin = mandate(7, payee_a, 10, later);
    let mut sig = sign(&twin, &owner, wallet.address).to_vec();
    let n: U256 = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
        .parse()
        .unwrap();
    let s = U256::from_be_slice(&sig[32..64]);
    sig[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    sig[64] = if sig[64] == 27 { 28 } else { 27 };
    items.push(item(&twin, sig.into()));
    let zero = mandate(8, payee_a, 0, later);
    items.push(item(&zero, sign(&zero, &owner, wallet.address)));

    let outcome = wallet.settle(chain, &sp, B256::repeat_byte(1), items).await.unwrap();
    let digest = |m: &aep2::EvmMandate| digest_of(m, wallet.address);
    assert_eq!(
        outcome.settled,
        good.iter().map(digest).collect::<Vec<_>>(),
        "{}",
        chain.name()
    );
    let want = vec![
        (digest(&forged), Some(SkipReason::SignatureInvalid)),
        (digest(&reused), Some(SkipReason::NonceUsed)),
        (digest(&expired), Some(SkipReason::Expired)),
        (digest(&too_much), Some(SkipReason::InsufficientFunds)),
        (digest(&twin), Some(SkipReason::SignatureHighS)),
        (digest(&zero), Some(SkipReason::AmountZero)),
    ];
    assert_eq!(outcome.skipped, want, "{}", chain.name());
    // One transfer per payee, the sums of their mandates.
    let transfers: Vec<_> = outcome
        .receipt
        .logs
        .iter()
        .filter_map(decode::<contract::TestToken::Transfer>)
        .map(|t| (t.to, t.value))
        .collect();
    assert_eq!(
        transfers,
        vec![(payee_a, U256::from(300u64)), (payee_b, U256::from(300u64))],
        "{}",
        chain.name()
    );
    assert_eq!(
        wallet.balance(chain, payer_tx.address(), token).await.unwrap(),
        U256::from(4_400u64)
    );
    assert_eq!(
        contract::token_balance(chain, token, payee_a).await.unwrap(),
        U256::from(300u64)
    );
    assert!(
        wallet
            .nonce_used(chain, payer_tx.address(), token, U256::from(3u64))
            .await
            .unwrap()
    );
    assert!(
        !wallet
            .nonce_used(chain, payer_tx.address(), token, U256::from(4u64))
            .await
            .unwrap()
    );
    // The same batch again settles nothing: every nonce is used (the contract's guard).
    let again: Vec<_> = good.iter().map(|m| item(m, sign(m, &owner, wallet.address))).collect();
    let outcome = wallet.settle(chain, &sp, B256::repeat_byte(2), again).await.unwrap();
    assert!(outcome.settled.is_empty());
    assert!(outcome.skipped.iter().all(|(_, r)| *r == Some(SkipReason::NonceUsed)));
    // Only an authorised SP may settle.
    let stranger = TxKey::from_label("stranger");
    chain.fund(stranger.address()).await;
    assert!(
        wallet
            .settle(chain, &stranger, B256::repeat_byte(3), Vec::new())
            .await
            .is_err()
    );
    println!("{}: batch gas {}", chain.name(), outcome.receipt.gas_used);
}

#[test]
fn a_batch_settles_what_verifies_skips_the_rest_and_pays_each_payee_once() {
    on_both_chains!(batch_settles_and_skips);
}

async fn delay_bounds<C: TestChain>(chain: &C) {
    let key = chain.deployer();
    assert!(
        contract::deploy_wallet(chain, &key, 3599).await.is_err(),
        "below one hour"
    );
    assert!(
        contract::deploy_wallet(chain, &key, 365 * 86_400).await.is_ok(),
        "one year"
    );
    assert!(
        contract::deploy_wallet(chain, &key, 365 * 86_400 + 1).await.is_err(),
        "above one year"
    );
    // A delay that would wrap the uint64 unlock time (and so unlock at once) is refused.
    assert!(
        contract::deploy_wallet(chain, &key, u64::MAX).await.is_err(),
        "2^64 - 1"
    );
}

#[test]
fn the_withdrawal_delay_is_bounded_on_both_sides() {
    on_both_chains!(delay_bounds);
}

// ------------------------------------------------------------------ spending lanes

use aep2::lane::{LaneDigest, lane_mandate_digest};
use aep2::{AccountId, EnvelopeForm, Lane, SignedLane};
use aep2_evm::contract::{AnyItem, lane_item};

/// A deployment with an SP, a funded owner, and the domain its mandates and lanes are signed for.
struct LaneSetup {
    wallet: Wallet,
    token: Address,
    sp: TxKey,
    owner: TxKey,
    domain: Domain,
}

async fn lane_setup<C: TestChain>(chain: &C, deposit: u64) -> LaneSetup {
    let (deployer, wallet, token) = deploy(chain).await;
    let sp = TxKey::from_label("sp");
    let owner = TxKey::from_label("lane-owner");
    chain.fund(sp.address()).await;
    chain.fund(owner.address()).await;
    wallet
        .set_settlement_processor(chain, &deployer, sp.address(), true)
        .await
        .unwrap();
    contract::mint(chain, &deployer, token, owner.address(), U256::from(deposit))
        .await
        .unwrap();
    wallet.deposit(chain, &owner, token, U256::from(deposit)).await.unwrap();
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: CHAIN_ID,
        verifying_contract: evm(wallet.address),
    });
    LaneSetup {
        wallet,
        token,
        sp,
        owner,
        domain,
    }
}

fn secret(k: &TxKey) -> SecretKey {
    SecretKey::from_bytes(&k.secret_bytes()).unwrap()
}

fn acct(a: Address) -> AccountId {
    AccountId::Evm(evm(a))
}

impl LaneSetup {
    /// A lane of the owner's funds for `agent`: per payment 500, total 1000, no count or
    /// period limit, any payee, valid from genesis for a day.
    fn lane(&self, agent: &TxKey, parent: Option<&SignedLane>) -> Lane {
        Lane {
            profile: Profile::Eip712,
            owner: acct(self.owner.address()),
            agent: acct(agent.address()),
            token: acct(self.token),
            per_payment: CoreU256::from_u64(500),
            total: CoreU256::from_u64(1000),
            max_payments: 0,
            period: 0,
            allowance: CoreU256::from_u64(0),
            payees: Vec::new(),
            valid_from: GENESIS - 10,
            valid_until: GENESIS + 86_400,
            purpose: "groceries".into(),
            parent: parent.map_or([0; 32], |p| self.id(&p.lane)),
            salt: [7; 32],
        }
    }

    fn digest(&self, lane: &Lane) -> LaneDigest {
        lane.digest(&self.domain).unwrap()
    }

    fn id(&self, lane: &Lane) -> [u8; 32] {
        self.digest(lane).id
    }

    /// Signs a lane with `key`, whatever it is (the reference signer refuses faulty lanes).
    fn force(&self, lane: Lane, key: &TxKey) -> SignedLane {
        let signature = PayerKey::Secp256k1(secret(key))
            .sign_input(&self.digest(&lane).input)
            .unwrap();
        SignedLane { lane, signature }
    }

    /// Grants a lane through the reference signer (which checks it).
    fn grant(&self, lane: Lane, parent: Option<&SignedLane>, key: &TxKey) -> SignedLane {
        aep2::sign_lane(&lane, parent, &self.domain, &PayerKey::Secp256k1(secret(key))).unwrap()
    }

    fn mandate(&self, nonce: u64, payee: Address, amount: u64) -> aep2::EvmMandate {
        aep2::EvmMandate {
            owner: evm(self.owner.address()),
            token: evm(self.token),
            payee: evm(payee),
            amount: CoreU256::from_u64(amount),
            nonce: CoreU256::from_u64(nonce),
            deadline: GENESIS + 3600,
            reference: [nonce as u8; 32],
        }
    }

    /// The envelope of `m` under `chain`, signed by `key` over its `LaneMandate` digest.
    fn under(&self, m: &aep2::EvmMandate, chain: &[SignedLane], key: &TxKey) -> SignedMandate {
        let mandate = Mandate::Eip712(m.clone());
        let leaf = chain.last().map_or([0; 32], |l| self.id(&l.lane));
        let d = lane_mandate_digest(&mandate, &self.domain, &leaf).unwrap();
        SignedMandate {
            form: EnvelopeForm::Mvp,
            mandate,
            domain: None,
            signature: PayerKey::Secp256k1(secret(key)).sign_input(&d.input).unwrap(),
            lanes: chain.to_vec(),
        }
    }

    /// `m` under `chain` through the reference signer (which checks the chain and the mandate).
    fn signed(&self, m: &aep2::EvmMandate, chain: &[SignedLane], key: &TxKey) -> SignedMandate {
        aep2::sign_lane_mandate(
            &Mandate::Eip712(m.clone()),
            &self.domain,
            &PayerKey::Secp256k1(secret(key)),
            EnvelopeForm::Mvp,
            chain,
        )
        .unwrap()
        .0
    }

    /// The mandate id: a plain mandate's digest without lanes, else the `LaneMandate` digest.
    fn mandate_id(&self, sm: &SignedMandate) -> B256 {
        if sm.lanes.is_empty() {
            return B256::from(aep2::mandate_digest(&sm.mandate, &self.domain).unwrap().id);
        }
        self.lane_digest(sm)
    }

    /// The `LaneMandate` digest under the last link (zero for no link), as the contract reports it.
    fn lane_digest(&self, sm: &SignedMandate) -> B256 {
        let leaf = sm.lanes.last().map_or([0; 32], |l| self.id(&l.lane));
        B256::from(lane_mandate_digest(&sm.mandate, &self.domain, &leaf).unwrap().id)
    }

    async fn spent<C: TestChain>(&self, chain: &C, lane: &SignedLane) -> (u64, u64) {
        let (s, p) = self
            .wallet
            .lane_spent(chain, B256::from(self.id(&lane.lane)))
            .await
            .unwrap();
        (s.to::<u64>(), p.to::<u64>())
    }

    async fn settle<C: TestChain>(&self, chain: &C, label: u8, items: &[SignedMandate]) -> contract::BatchOutcome {
        let items = items.iter().map(|sm| AnyItem::of(sm).unwrap()).collect();
        self.wallet
            .settle_lanes(chain, &self.sp, B256::repeat_byte(label), items)
            .await
            .unwrap()
    }
}

async fn lanes_of_one_to_three_links_settle<C: TestChain>(chain: &C) {
    let s = lane_setup(chain, 10_000).await;
    let (a, b, c) = (
        TxKey::from_label("agent-a"),
        TxKey::from_label("agent-b"),
        TxKey::from_label("agent-c"),
    );
    let root = s.grant(s.lane(&a, None), None, &s.owner);
    let sub = s.grant(s.lane(&b, Some(&root)), Some(&root), &a);
    let subsub = s.grant(s.lane(&c, Some(&sub)), Some(&sub), &b);
    // The contract's lane ids and lane-mandate digests are the core's.
    for l in [&root, &sub, &subsub] {
        let onchain = s
            .wallet
            .lane_id(chain, contract::abi_lane(&l.lane).unwrap())
            .await
            .unwrap();
        assert_eq!(onchain, B256::from(s.id(&l.lane)), "{}", chain.name());
    }
    let payee = Address::repeat_byte(0xa1);
    let one = s.signed(&s.mandate(1, payee, 100), std::slice::from_ref(&root), &a);
    let two = s.signed(&s.mandate(2, payee, 200), &[root.clone(), sub.clone()], &b);
    let three = s.signed(
        &s.mandate(3, payee, 300),
        &[root.clone(), sub.clone(), subsub.clone()],
        &c,
    );
    for sm in [&one, &two, &three] {
        let it = lane_item(sm).unwrap();
        let leaf = B256::from(s.id(&sm.lanes.last().unwrap().lane));
        let d = s
            .wallet
            .lane_mandate_digest(chain, it.mandate.clone(), leaf)
            .await
            .unwrap();
        assert_eq!(d, s.mandate_id(sm));
        let (digest, reason) = s.wallet.verify_lane_mandate(chain, it).await.unwrap();
        assert_eq!(
            (digest, reason),
            (s.mandate_id(sm), SkipReason::None),
            "{}",
            chain.name()
        );
    }
    // A plain mandate of the owner's in the same batch.
    let plain = s.mandate(4, payee, 50);
    let plain = aep2::sign_mandate(
        &Mandate::Eip712(plain.clone()),
        &s.domain,
        &PayerKey::Secp256k1(secret(&s.owner)),
        EnvelopeForm::Mvp,
    )
    .unwrap()
    .0;
    let outcome = s
        .settle(chain, 1, &[one.clone(), two.clone(), three.clone(), plain.clone()])
        .await;
    // Plain items settle first, then the lane items in order.
    let want: Vec<B256> = [&plain, &one, &two, &three].iter().map(|sm| s.mandate_id(sm)).collect();
    assert_eq!(outcome.settled, want, "{}", chain.name());
    assert!(outcome.skipped.is_empty());
    // Every link counted: the root saw all three, the sub-lane two, the leaf one.
    assert_eq!(s.spent(chain, &root).await, (600, 3));
    assert_eq!(s.spent(chain, &sub).await, (500, 2));
    assert_eq!(s.spent(chain, &subsub).await, (300, 1));
    let debited: Vec<(B256, B256, u64)> = outcome
        .receipt
        .logs
        .iter()
        .filter_map(decode::<AEP2DebitWallet::LaneDebited>)
        .map(|e| (e.lane, e.digest, e.amount.to::<u64>()))
        .collect();
    assert_eq!(debited.len(), 6);
    assert_eq!(debited[5], (B256::from(s.id(&subsub.lane)), s.mandate_id(&three), 300));
    // One transfer to the payee for all four.
    let transfers: Vec<_> = outcome
        .receipt
        .logs
        .iter()
        .filter_map(decode::<contract::TestToken::Transfer>)
        .map(|t| (t.to, t.value))
        .collect();
    assert_eq!(transfers, vec![(payee, U256::from(650u64))]);
    assert_eq!(
        s.wallet.balance(chain, s.owner.address(), s.token).await.unwrap(),
        U256::from(10_000u64 - 650)
    );
    // Settled again: every nonce is used.
    let again = s.settle(chain, 2, &[one, two, three]).await;
    assert!(again.settled.is_empty());
    assert!(again.skipped.iter().all(|(_, r)| *r == Some(SkipReason::NonceUsed)));
}

#[test]
fn lane_mandates_of_one_two_and_three_links_settle_and_count_on_every_link() {
    on_both_chains!(lanes_of_one_to_three_links_settle);
}

async fn every_lane_rule_rejects_with_its_code<C: TestChain>(chain: &C) {
    let s = lane_setup(chain, 100_000).await;
    let (a, b) = (TxKey::from_label("agent-a"), TxKey::from_label("agent-b"));
    let mallory = TxKey::from_label("mallory");
    let payee = Address::repeat_byte(0xa1);
    let root = s.grant(s.lane(&a, None), None, &s.owner);
    let m = |n: u64| s.mandate(n, payee, 100);
    let mut cases: Vec<(&str, SignedMandate, SkipReason)> = Vec::new();
    let with = |f: &dyn Fn(&mut Lane)| {
        let mut l = s.lane(&a, None);
        f(&mut l);
        s.force(l, &s.owner)
    };
    cases.push(("no link", s.under(&m(1), &[], &a), SkipReason::LaneDepthExceeded));
    {
        let mut chain = vec![root.clone()];
        let keys = [&a, &b, &mallory, &s.sp];
        for i in 1..4 {
            let l = s.lane(keys[i], Some(&chain[i - 1]));
            chain.push(s.force(l, keys[i - 1]));
        }
        cases.push((
            "four links",
            s.under(&m(2), &chain, &s.sp),
            SkipReason::LaneDepthExceeded,
        ));
    }
    let one = |lane: SignedLane, n: u64| s.under(&m(n), &[lane], &a);
    cases.push((
        "perPayment 0",
        one(with(&|l| l.per_payment = CoreU256::from_u64(0)), 3),
        SkipReason::AmountZero,
    ));
    cases.push((
        "total 0",
        one(with(&|l| l.total = CoreU256::from_u64(0)), 4),
        SkipReason::AmountZero,
    ));
    cases.push((
        "maxPayments 2^53",
        one(with(&|l| l.max_payments = 1 << 53), 5),
        SkipReason::LaneValueOutOfRange,
    ));
    cases.push((
        "validUntil 2^53",
        one(with(&|l| l.valid_until = 1 << 53), 6),
        SkipReason::LaneValueOutOfRange,
    ));
    cases.push((
        "allowance without period",
        one(with(&|l| l.allowance = CoreU256::from_u64(5)), 7),
        SkipReason::LaneInvalid,
    ));
    cases.push((
        "period without allowance",
        one(with(&|l| l.period = 60), 8),
        SkipReason::LaneInvalid,
    ));
    cases.push((
        "nine payees",
        one(
            with(&|l| l.payees = (1..=9).map(|i| acct(Address::repeat_byte(i))).collect()),
            9,
        ),
        SkipReason::LaneInvalid,
    ));
    cases.push((
        "a payee twice",
        one(
            with(&|l| l.payees = vec![acct(payee), acct(Address::repeat_byte(2)), acct(payee)]),
            10,
        ),
        SkipReason::LaneInvalid,
    ));
    cases.push((
        "validUntil before validFrom",
        one(with(&|l| l.valid_until = l.valid_from - 1), 11),
        SkipReason::LaneInvalid,
    ));
    cases.push((
        "purpose of 65 bytes",
        one(with(&|l| l.purpose = "x".repeat(65)), 12),
        SkipReason::LaneInvalid,
    ));
    cases.push((
        "purpose with a quote",
        one(with(&|l| l.purpose = "a\"b".into()), 13),
        SkipReason::LaneInvalid,
    ));
    cases.push((
        "purpose with U+0085",
        one(with(&|l| l.purpose = "a\u{85}b".into()), 14),
        SkipReason::LaneInvalid,
    ));
    cases.push((
        "root with a parent",
        one(with(&|l| l.parent = [1; 32]), 15),
        SkipReason::LaneChainInvalid,
    ));
    {
        let l = s.lane(&b, Some(&root));
        let mut wrong = l.clone();
        wrong.parent = [9; 32];
        cases.push((
            "sub-lane under another parent",
            s.under(&m(16), &[root.clone(), s.force(wrong, &a)], &b),
            SkipReason::LaneChainInvalid,
        ));
        cases.push((
            "sub-lane signed by the owner, not the parent's agent",
            s.under(&m(17), &[root.clone(), s.force(l.clone(), &s.owner)], &b),
            SkipReason::LaneSignatureInvalid,
        ));
        let mut short = s.force(l, &a);
        short.signature.truncate(short.signature.len() - 2);
        cases.push((
            "a link signature of 64 bytes",
            s.under(&m(18), &[root.clone(), short], &b),
            SkipReason::LaneSignatureInvalid,
        ));
    }
    cases.push((
        "root signed by the agent",
        one(s.force(s.lane(&a, None), &a), 19),
        SkipReason::LaneSignatureInvalid,
    ));
    cases.push((
        "mandate signed by the owner",
        s.under(&m(20), std::slice::from_ref(&root), &s.owner),
        SkipReason::SignatureInvalid,
    ));
    {
        let mut sm = s.under(&m(21), std::slice::from_ref(&root), &a);
        let mut sig = aep2::codec::hex_decode_0x(&sm.signature).unwrap();
        sig[64] = 29;
        sm.signature = aep2::codec::hex_encode_0x(&sig);
        cases.push(("mandate signature v 29", sm, SkipReason::SignatureVInvalid));
    }
    {
        let mut old = m(22);
        old.deadline = GENESIS - 1;
        cases.push((
            "expired",
            s.under(&old, std::slice::from_ref(&root), &a),
            SkipReason::Expired,
        ));
    }
    {
        let mut wide = s.lane(&b, Some(&root));
        wide.total = CoreU256::from_u64(1001);
        cases.push((
            "sub-lane total above the parent's",
            s.under(&m(23), &[root.clone(), s.force(wide, &a)], &b),
            SkipReason::LaneAttenuationInvalid,
        ));
    }
    {
        let mut other = m(24);
        other.owner = evm(mallory.address());
        cases.push((
            "mandate of another owner",
            s.under(&other, std::slice::from_ref(&root), &a),
            SkipReason::LaneAgentMismatch,
        ));
        let mut other = m(25);
        other.token = evm(Address::repeat_byte(0x70));
        cases.push((
            "mandate in another token",
            s.under(&other, std::slice::from_ref(&root), &a),
            SkipReason::LaneAssetMismatch,
        ));
    }
    cases.push((
        "lane valid from later",
        one(with(&|l| l.valid_from = GENESIS + 3600), 26),
        SkipReason::LaneNotYetValid,
    ));
    cases.push((
        "deadline after validUntil",
        one(with(&|l| l.valid_until = GENESIS + 3599), 27),
        SkipReason::LaneExpired,
    ));
    cases.push((
        "amount above perPayment",
        one(with(&|l| l.per_payment = CoreU256::from_u64(99)), 28),
        SkipReason::LanePaymentCapExceeded,
    ));
    cases.push((
        "payee not listed",
        one(with(&|l| l.payees = vec![acct(Address::repeat_byte(2))]), 29),
        SkipReason::LanePayeeNotAllowed,
    ));
    {
        let mut rich = s.lane(&a, None);
        rich.per_payment = CoreU256::from_u64(200_000);
        rich.total = CoreU256::from_u64(200_000);
        let big = s.mandate(30, payee, 100_001);
        cases.push((
            "above the owner's balance",
            s.under(&big, &[s.force(rich, &s.owner)], &a),
            SkipReason::InsufficientFunds,
        ));
    }
    // Each alone, then all in one batch: the same reasons, nothing settles.
    for (what, sm, want) in &cases {
        let (digest, reason) = s
            .wallet
            .verify_lane_mandate(chain, lane_item(sm).unwrap())
            .await
            .unwrap();
        assert_eq!(reason, *want, "{what} on {}", chain.name());
        assert_eq!(digest, s.lane_digest(sm), "{what}");
        if let Some(code) = want.code() {
            // The off-chain verifier gives the same code (the state rules aside).
            {
                let verdict = aep2::Verifier::new(s.domain.clone())
                    .check_signed(sm.clone(), Some(GENESIS))
                    .verdict;
                let got = verdict.err().map(|e| e.reason());
                // The schema-stage faults are found by the parser off chain, before `check_signed`.
                let schema = matches!(
                    want,
                    SkipReason::LaneDepthExceeded
                        | SkipReason::AmountZero
                        | SkipReason::LaneValueOutOfRange
                        | SkipReason::LaneInvalid
                );
                if !schema && *want != SkipReason::InsufficientFunds {
                    assert_eq!(got, Some(code), "{what}: the off-chain verifier");
                }
            }
        }
    }
    // As lane items all (an envelope without lanes would be a plain item).
    let items = cases.iter().map(|c| AnyItem::Lane(lane_item(&c.1).unwrap())).collect();
    let outcome = s
        .wallet
        .settle_lanes(chain, &s.sp, B256::repeat_byte(3), items)
        .await
        .unwrap();
    assert!(outcome.settled.is_empty(), "{}", chain.name());
    let got: Vec<_> = outcome.skipped.iter().map(|(_, r)| r.unwrap()).collect();
    let want: Vec<_> = cases.iter().map(|c| c.2).collect();
    assert_eq!(got, want, "{}", chain.name());
}

#[test]
fn every_lane_rule_the_contract_checks_rejects_with_its_code() {
    on_both_chains!(every_lane_rule_rejects_with_its_code);
}

async fn cumulative_limits_on_every_ancestor<C: TestChain>(chain: &C) {
    let s = lane_setup(chain, 100_000).await;
    let (a, b) = (TxKey::from_label("agent-a"), TxKey::from_label("agent-b"));
    let (p1, p2) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb2));
    // total 1000 across two payees.
    let mut l = s.lane(&a, None);
    l.payees = vec![acct(p1), acct(p2)];
    let root = s.grant(l, None, &s.owner);
    let root1 = std::slice::from_ref(&root);
    let first = s.signed(&s.mandate(1, p1, 500), root1, &a);
    let over = s.signed(&s.mandate(2, p2, 500), root1, &a);
    let third = s.signed(&s.mandate(3, p2, 400), root1, &a);
    let out = s.settle(chain, 1, &[first, third, over.clone()]).await;
    assert_eq!(out.settled.len(), 2, "{}", chain.name());
    assert_eq!(
        out.skipped,
        vec![(s.mandate_id(&over), Some(SkipReason::LaneTotalExceeded))]
    );
    assert_eq!(s.spent(chain, &root).await, (900, 2));
    // A sub-agent's lane of its own total 1000 draws on the root's remaining 100.
    let mut sl = s.lane(&b, Some(&root));
    sl.payees = vec![acct(p2)];
    let sub = s.grant(sl, Some(&root), &a);
    let chain2 = [root.clone(), sub.clone()];
    let sub_over = s.signed(&s.mandate(4, p2, 101), &chain2, &b);
    let sub_ok = s.signed(&s.mandate(5, p2, 100), &chain2, &b);
    let out = s.settle(chain, 2, &[sub_over.clone(), sub_ok.clone()]).await;
    assert_eq!(
        out.skipped,
        vec![(s.mandate_id(&sub_over), Some(SkipReason::LaneTotalExceeded))]
    );
    assert_eq!(out.settled, vec![s.mandate_id(&sub_ok)]);
    assert_eq!(s.spent(chain, &root).await, (1000, 3));
    assert_eq!(s.spent(chain, &sub).await, (100, 1));
    // maxPayments: a root of 2 payments, a sub-lane of 2; the agent's one payment and the
    // sub-agent's one exhaust the root, so the sub-agent's second is refused.
    let mut l = s.lane(&a, None);
    l.max_payments = 2;
    l.salt = [8; 32];
    let root = s.grant(l, None, &s.owner);
    let mut sl = s.lane(&b, Some(&root));
    sl.max_payments = 2;
    let sub = s.grant(sl, Some(&root), &a);
    let chain2 = [root.clone(), sub.clone()];
    let by_agent = s.signed(&s.mandate(10, p1, 10), std::slice::from_ref(&root), &a);
    let by_sub = s.signed(&s.mandate(11, p1, 10), &chain2, &b);
    let by_sub_again = s.signed(&s.mandate(12, p2, 10), &chain2, &b);
    let out = s.settle(chain, 3, &[by_agent, by_sub, by_sub_again.clone()]).await;
    assert_eq!(out.settled.len(), 2, "{}", chain.name());
    assert_eq!(
        out.skipped,
        vec![(s.mandate_id(&by_sub_again), Some(SkipReason::LanePaymentsExhausted))]
    );
    assert_eq!(s.spent(chain, &root).await, (20, 2));
    assert_eq!(s.spent(chain, &sub).await, (10, 1));
    // A skipped mandate's nonce stays unused.
    assert!(
        !s.wallet
            .nonce_used(chain, s.owner.address(), s.token, U256::from(12u64))
            .await
            .unwrap()
    );
}

#[test]
fn total_and_max_payments_count_across_payees_and_on_every_ancestor() {
    on_both_chains!(cumulative_limits_on_every_ancestor);
}

async fn a_compromised_sp_cannot_overspend<C: TestChain>(chain: &C) {
    let s = lane_setup(chain, 100_000).await;
    let a = TxKey::from_label("agent-a");
    let root = s.grant(s.lane(&a, None), None, &s.owner);
    // An SP that keeps no lane state (or lies about it) submits six mandates of 300 the agent
    // signed under a lane of total 1000: the chain settles three and skips the rest.
    let items: Vec<_> = (1..=6)
        .map(|n| {
            s.signed(
                &s.mandate(n, Address::repeat_byte(0xa0 + n as u8), 300),
                std::slice::from_ref(&root),
                &a,
            )
        })
        .collect();
    let out = s.settle(chain, 1, &items[..4]).await;
    assert_eq!(out.settled.len(), 3, "{}", chain.name());
    let out2 = s.settle(chain, 2, &items[4..]).await;
    assert!(out2.settled.is_empty());
    let skipped: Vec<_> = out.skipped.iter().chain(&out2.skipped).map(|(_, r)| *r).collect();
    assert_eq!(skipped, vec![Some(SkipReason::LaneTotalExceeded); 3]);
    assert_eq!(s.spent(chain, &root).await, (900, 3));
    assert_eq!(
        s.wallet.balance(chain, s.owner.address(), s.token).await.unwrap(),
        U256::from(100_000u64 - 900)
    );
}

#[test]
fn an_sp_submitting_beyond_a_lanes_total_gets_the_excess_skipped_on_chain() {
    on_both_chains!(a_compromised_sp_cannot_overspend);
}

/// Gas per settled mandate (printed; the contracts README quotes it): a plain mandate against a
/// lane mandate of 1, 2 and 3 links, one per transaction (average of 5, each on a fresh lane) and
/// in a batch of 100 under one chain. One payer, random nonces, payees already holding the token.
async fn lane_gas<C: TestChain>(chain: &C) {
    let s = lane_setup(chain, 1_000_000_000).await;
    let agents = [
        TxKey::from_label("agent-a"),
        TxKey::from_label("agent-b"),
        TxKey::from_label("agent-c"),
    ];
    let payee = Address::repeat_byte(0xa1);
    let warm = s.mandate(u64::MAX, payee, 1);
    let warm = aep2::sign_mandate(
        &Mandate::Eip712(warm),
        &s.domain,
        &PayerKey::Secp256k1(secret(&s.owner)),
        EnvelopeForm::Mvp,
    )
    .unwrap()
    .0;
    s.settle(chain, 0, &[warm]).await;
    let mut nonce = 1u64 << 40;
    let mut next = || {
        nonce = nonce
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            | (1 << 63);
        nonce
    };
    let mut salt = 0u8;
    let mut chain_of = |links: usize| {
        salt += 1;
        let mut out: Vec<SignedLane> = Vec::new();
        for i in 0..links {
            let mut l = s.lane(&agents[i], out.last());
            l.salt = [salt; 32];
            l.total = CoreU256::from_u64(1_000_000_000);
            let grantor = if i == 0 { &s.owner } else { &agents[i - 1] };
            let parent = out.last().cloned();
            out.push(s.grant(l, parent.as_ref(), grantor));
        }
        out
    };
    let mut report = Vec::new();
    for links in 0..=3 {
        let make = |n: u64, chain: &[SignedLane]| {
            let m = s.mandate(n, payee, 5);
            if chain.is_empty() {
                aep2::sign_mandate(
                    &Mandate::Eip712(m),
                    &s.domain,
                    &PayerKey::Secp256k1(secret(&s.owner)),
                    EnvelopeForm::Mvp,
                )
                .unwrap()
                .0
            } else {
                s.signed(&m, chain, &agents[chain.len() - 1])
            }
        };
        let mut single = 0;
        for _ in 0..5 {
            let c = chain_of(links);
            let out = s.settle(chain, 1, &[make(next(), &c)]).await;
            assert_eq!(out.settled.len(), 1);
            single += out.receipt.gas_used;
        }
        let c = chain_of(links);
        let batch: Vec<_> = (0..100).map(|_| make(next(), &c)).collect();
        let out = s.settle(chain, 2, &batch).await;
        assert_eq!(out.settled.len(), 100);
        report.push((links, single / 5, out.receipt.gas_used / 100));
    }
    for (links, single, batch) in report {
        println!(
            "gas {} links {links}: single {single}, batch 100 {batch}/mandate",
            chain.name()
        );
    }
}

#[test]
fn gas_of_lane_mandates_against_plain_ones() {
    on_both_chains!(lane_gas);
}
