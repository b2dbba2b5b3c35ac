//! The SP's stateful lane rules (spec `aep2.md#lane-settlement`): totals, counts and periodic
//! allowances counted against the lane and every ancestor in the enqueue transaction, revocation,
//! release on failed settlement, and receipts stating what remains.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::json::{Limits, parse, to_compact};
use aep2::lane::{Lane, LaneRevocation, SignedLane, sign_lane};
use aep2::{
    AccountId, EnvelopeForm, EvmMandate, Mandate, PayerKey, Receipt, ReceiptExpectations, SpKey, U256,
    sign_lane_mandate,
};
use aep2_replay::db::Backend;
use aep2_sp::{Ledger, LedgerOptions, Processor};
use common::*;

const OWNER: &str = "lane-owner";

fn key(label: &str) -> PayerKey {
    PayerKey::Secp256k1(secp(label))
}

fn acct(label: &str) -> AccountId {
    AccountId::Evm(secp(label).address())
}

/// A lane of `OWNER`'s token for `agent`, valid from `NOW − 10` for a day.
fn lane(agent: &str, total: u64, salt: u8) -> Lane {
    Lane {
        profile: aep2::Profile::Eip712,
        owner: acct(OWNER),
        agent: acct(agent),
        token: AccountId::Evm(token()),
        per_payment: U256::from_u64(total),
        total: U256::from_u64(total),
        max_payments: 0,
        period: 0,
        allowance: U256::ZERO,
        payees: Vec::new(),
        valid_from: NOW - 10,
        valid_until: NOW + 86_400,
        purpose: String::new(),
        parent: [0; 32],
        salt: [salt; 32],
    }
}

/// `lane` signed under `parent` (the last link of `parents`) by its grantor `grantor`.
fn grant(mut l: Lane, parents: &[SignedLane], grantor: &str) -> Vec<SignedLane> {
    let parent = parents.last();
    if let Some(p) = parent {
        l.parent = p.lane.digest(&evm_domain()).unwrap().id;
    }
    let mut chain = parents.to_vec();
    chain.push(sign_lane(&l, parent, &evm_domain(), &key(grantor)).unwrap());
    chain
}

fn id_of(chain: &[SignedLane]) -> [u8; 32] {
    chain.last().unwrap().lane.digest(&evm_domain()).unwrap().id
}

/// A mandate of `amount` under `chain`, signed by its leaf's agent `agent`, as an envelope body.
fn pay(chain: &[SignedLane], agent: &str, nonce: u64, amount: u64, deadline: u64) -> String {
    let m = Mandate::Eip712(EvmMandate {
        owner: secp(OWNER).address(),
        token: token(),
        payee: payee(),
        amount: U256::from_u64(amount),
        nonce: U256::from_u64(nonce),
        deadline,
        reference: [3; 32],
    });
    let (sm, _) = sign_lane_mandate(&m, &evm_domain(), &key(agent), EnvelopeForm::Native, chain).unwrap();
    to_compact(&sm.to_json())
}

/// An SP on a new ledger on `backend`, `OWNER` funded with `funds`.
fn sp(backend: Backend, name: &str, funds: u64) -> Processor {
    sp_with_skew(backend, name, funds, 5)
}

/// An SP with clock skew `skew` (the window tests pay at `validFrom` itself: skew 0).
fn sp_with_skew(backend: Backend, name: &str, funds: u64, skew: u64) -> Processor {
    let db = location(backend, name);
    let mut c = config(&db);
    c.clock_skew = skew;
    let sp = Processor::new(&c, open(&db)).unwrap();
    sp.ledger().deposit(&evm_deposit("d", OWNER, funds), NOW).unwrap();
    sp
}

fn code(sp: &Processor, body: &str, now: u64) -> String {
    match sp.enqueue(body.as_bytes(), now) {
        Ok(_) => "accepted".into(),
        Err(e) => e.code().to_owned(),
    }
}

fn revocation_body(chain: &[SignedLane], revoker: &str, issued_at: u64) -> String {
    let rev = LaneRevocation::sign(&evm_domain(), id_of(chain), issued_at, &key(revoker)).unwrap();
    let lanes: Vec<_> = chain.iter().map(SignedLane::to_json).collect();
    to_compact(&aep2::json::Value::Object(
        aep2::json::Object::new()
            .with("revocation", rev.to_json())
            .with("lanes", aep2::json::Value::Array(lanes)),
    ))
}

fn spent(sp: &Processor, chain: &[SignedLane], now: u64) -> (u64, u64, u64) {
    let s = sp.ledger().lane(&id_of(chain), now).unwrap().unwrap();
    let n = |v: U256| v.to_string().parse::<u64>().unwrap();
    (n(s.spent), s.payments, n(s.remaining))
}

#[test]
fn a_sub_agents_spend_uses_up_its_parents_total_and_the_receipt_states_what_remains() {
    on_each_backend("a_sub_agents_spend_uses_up_its", |backend| {
        let sp = sp(backend, "lane-totals", 10_000);
        let root = grant(lane("agent-1", 1_000, 1), &[], OWNER);
        let sub_a = grant(lane("agent-2", 600, 2), &root, "agent-1");
        let sub_b = grant(lane("agent-3", 600, 3), &root, "agent-1");
        let deadline = NOW + 3_600;
        let first = sp
            .enqueue(pay(&sub_a, "agent-2", 1, 300, deadline).as_bytes(), NOW)
            .unwrap();
        // The receipt is native and states the leaf and the least remaining over the chain.
        let r = Receipt::from_json(&parse(&first.mandate.receipt, &Limits::AEP2).unwrap()).unwrap();
        let stated = r.lane.unwrap();
        assert_eq!(stated.id, id_of(&sub_a));
        assert_eq!(stated.remaining, U256::from_u64(300));
        let sp_id = SpKey::Secp256k1(secp("test-sp")).id();
        let v = aep2::Verifier::new(evm_domain())
            .check_value(&parse(&first.mandate.envelope, &Limits::AEP2).unwrap(), None)
            .into_result()
            .unwrap();
        let expect = |leaf: &[u8; 32]| {
            r.verify(&ReceiptExpectations {
                sp: Some(&sp_id),
                mandate: Some((v.mandate(), &v.digest)),
                domain: Some(&evm_domain()),
                lane: Some(leaf),
            })
        };
        expect(&id_of(&sub_a)).unwrap();
        assert_eq!(expect(&id_of(&sub_b)).unwrap_err().code(), "receipt_lane_mismatch");
        assert_eq!(code(&sp, &pay(&sub_a, "agent-2", 2, 300, deadline), NOW), "accepted");
        // The sub-lane's own total.
        assert_eq!(
            code(&sp, &pay(&sub_a, "agent-2", 3, 1, deadline), NOW),
            "lane_total_exceeded"
        );
        // Its sibling has 600 of its own, but the root only 400 left.
        assert_eq!(code(&sp, &pay(&sub_b, "agent-3", 4, 300, deadline), NOW), "accepted");
        assert_eq!(
            code(&sp, &pay(&sub_b, "agent-3", 5, 200, deadline), NOW),
            "lane_total_exceeded"
        );
        assert_eq!(code(&sp, &pay(&sub_b, "agent-3", 6, 100, deadline), NOW), "accepted");
        assert_eq!(
            code(&sp, &pay(&root, "agent-1", 7, 1, deadline), NOW),
            "lane_total_exceeded"
        );
        assert_eq!(spent(&sp, &root, NOW), (1_000, 4, 0));
        assert_eq!(spent(&sp, &sub_a, NOW), (600, 2, 0));
        // Remaining of sub_b: its own 200, but the root's 0.
        assert_eq!(spent(&sp, &sub_b, NOW), (400, 2, 0));
        assert_eq!(sp.ledger().lane_mandates(&id_of(&sub_a)).unwrap().len(), 2);
        assert_eq!(sp.ledger().audit().unwrap(), Vec::<String>::new());
        // Nothing refused was reserved: 1000 of 10000.
        let b = sp
            .ledger()
            .accounts(&secp(OWNER).address().to_checksum(), None)
            .unwrap();
        assert_eq!(b[0].reserved, U256::from_u64(1_000));
    });
}

#[test]
fn counts_allowance_windows_and_validity_are_checked_for_every_link() {
    on_each_backend("counts_allowance_windows_and_v", |backend| {
        let sp = sp(backend, "lane-counts", 10_000);
        let deadline = NOW + 3_600;
        let mut counted = lane("agent-1", 1_000, 1);
        counted.max_payments = 3;
        let root = grant(counted, &[], OWNER);
        let mut sub = lane("agent-2", 1_000, 2);
        sub.max_payments = 3;
        let sub = grant(sub, &root, "agent-1");
        assert_eq!(code(&sp, &pay(&root, "agent-1", 1, 10, deadline), NOW), "accepted");
        assert_eq!(code(&sp, &pay(&sub, "agent-2", 2, 10, deadline), NOW), "accepted");
        assert_eq!(code(&sp, &pay(&sub, "agent-2", 3, 10, deadline), NOW), "accepted");
        // The sub-lane has had 2 of its 3, the root all 3.
        assert_eq!(
            code(&sp, &pay(&sub, "agent-2", 4, 10, deadline), NOW),
            "lane_payments_exhausted"
        );

        // Periodic allowance: windows [validFrom + k·period, validFrom + (k+1)·period).
        let sp = sp_for_windows(backend);
        let from = NOW - 10;
        let mut periodic = lane("agent-1", 1_000, 5);
        periodic.period = 100;
        periodic.allowance = U256::from_u64(50);
        let root = grant(periodic, &[], OWNER);
        let mut narrower = lane("agent-2", 1_000, 6);
        narrower.period = 100;
        narrower.allowance = U256::from_u64(40);
        let sub = grant(narrower, &root, "agent-1");
        let deadline = from + 10_000;
        assert_eq!(code(&sp, &pay(&sub, "agent-2", 1, 30, deadline), from), "accepted");
        assert_eq!(
            code(&sp, &pay(&sub, "agent-2", 2, 11, deadline), from + 50),
            "lane_period_exceeded"
        );
        assert_eq!(
            code(&sp, &pay(&root, "agent-1", 3, 20, deadline), from + 99),
            "accepted"
        );
        // The root's 50 is used up in window 0: even the sub-lane's remaining 10 is refused.
        assert_eq!(
            code(&sp, &pay(&sub, "agent-2", 4, 10, deadline), from + 99),
            "lane_period_exceeded"
        );
        // Window 1 starts exactly at validFrom + period: both spends restart at 0.
        assert_eq!(
            code(&sp, &pay(&sub, "agent-2", 5, 40, deadline), from + 100),
            "accepted"
        );
        assert_eq!(
            code(&sp, &pay(&root, "agent-1", 6, 11, deadline), from + 150),
            "lane_period_exceeded"
        );
        assert_eq!(
            code(&sp, &pay(&root, "agent-1", 7, 10, deadline), from + 199),
            "accepted"
        );
        let s = sp.ledger().lane(&id_of(&root), from + 199).unwrap().unwrap();
        assert_eq!((s.window_index, s.window_spent), (1, U256::from_u64(50)));
        let s = sp.ledger().lane(&id_of(&root), from + 200).unwrap().unwrap();
        assert_eq!((s.window_index, s.window_spent), (2, U256::ZERO));
        assert_eq!(s.spent, U256::from_u64(100));

        // Validity by the SP's clock.
        let mut later = lane("agent-1", 100, 9);
        later.valid_from = NOW + 100;
        let later = grant(later, &[], OWNER);
        assert_eq!(
            code(&sp, &pay(&later, "agent-1", 20, 1, NOW + 3_600), NOW),
            "lane_not_yet_valid"
        );
        assert_eq!(
            code(&sp, &pay(&later, "agent-1", 20, 1, NOW + 3_600), NOW + 100),
            "accepted"
        );
        assert_eq!(sp.ledger().audit().unwrap(), Vec::<String>::new());
    });
}

fn sp_for_windows(backend: Backend) -> Processor {
    sp_with_skew(backend, "lane-windows", 10_000, 0)
}

#[test]
fn a_revocation_by_a_grantor_above_blocks_the_lane_and_everything_under_it() {
    on_each_backend("a_revocation_by_a_grantor_abov", |backend| {
        let sp = sp(backend, "lane-revoke", 10_000);
        let deadline = NOW + 3_600;
        let root = grant(lane("agent-1", 1_000, 1), &[], OWNER);
        let sub = grant(lane("agent-2", 500, 2), &root, "agent-1");
        let leaf = grant(lane("agent-3", 200, 3), &sub, "agent-2");
        let first = pay(&leaf, "agent-3", 1, 10, deadline);
        let accepted = sp.enqueue(first.as_bytes(), NOW).unwrap();
        // Never by a descendant or by the lane's own agent.
        let refused = |body: String| sp.revoke(body.as_bytes(), NOW).unwrap_err().code().to_owned();
        assert_eq!(refused(revocation_body(&sub, "agent-2", NOW)), "lane_revoker_invalid");
        assert_eq!(refused(revocation_body(&sub, "agent-3", NOW)), "lane_revoker_invalid");
        assert_eq!(refused(revocation_body(&root, "agent-2", NOW)), "lane_revoker_invalid");
        // A revocation signed by someone else than the revoker it names.
        let mut forged: aep2::json::Value = parse(&revocation_body(&sub, "agent-1", NOW), &Limits::AEP2).unwrap();
        if let aep2::json::Value::Object(o) = &mut forged
            && let Some(aep2::json::Value::Object(r)) = o.get("revocation").cloned()
        {
            let mut r = r;
            r.insert("revoker", aep2::json::Value::String(acct(OWNER).to_string()));
            o.insert("revocation", aep2::json::Value::Object(r));
        }
        assert_eq!(refused(to_compact(&forged)), "signature_invalid");
        // The middle lane, by its grantor (agent-1): the leaf under it is revoked too.
        assert_eq!(code(&sp, &pay(&leaf, "agent-3", 2, 10, deadline), NOW), "accepted");
        let (id, at) = sp
            .revoke(revocation_body(&sub, "agent-1", NOW + 5).as_bytes(), NOW + 5)
            .unwrap();
        assert_eq!((id, at), (id_of(&sub), NOW + 5));
        assert_eq!(
            code(&sp, &pay(&leaf, "agent-3", 3, 10, deadline), NOW + 6),
            "lane_revoked"
        );
        assert_eq!(
            code(&sp, &pay(&sub, "agent-2", 4, 10, deadline), NOW + 6),
            "lane_revoked"
        );
        // The root is not: it still pays.
        assert_eq!(code(&sp, &pay(&root, "agent-1", 5, 10, deadline), NOW + 6), "accepted");
        // Idempotent: the first time stands, whoever above revokes it again.
        assert_eq!(
            sp.revoke(revocation_body(&sub, OWNER, NOW + 50).as_bytes(), NOW + 50)
                .unwrap(),
            (id_of(&sub), NOW + 5)
        );
        // A retry of a payment accepted before the revocation gets its stored receipt.
        let again = sp.enqueue(first.as_bytes(), NOW + 60).unwrap();
        assert!(!again.fresh);
        assert_eq!(again.mandate.receipt, accepted.mandate.receipt);
        let s = sp.ledger().lane(&id_of(&leaf), NOW + 60).unwrap().unwrap();
        assert_eq!((s.revoked_at, s.chain_revoked_at), (None, Some(NOW + 5)));
        // A lane the SP never saw in a payment can be revoked: it is recorded with its chain.
        let unseen = grant(lane("agent-4", 100, 4), &root, "agent-1");
        assert!(sp.ledger().lane(&id_of(&unseen), NOW).unwrap().is_none());
        sp.revoke(revocation_body(&unseen, OWNER, NOW + 70).as_bytes(), NOW + 70)
            .unwrap();
        let s = sp.ledger().lane(&id_of(&unseen), NOW + 70).unwrap().unwrap();
        assert_eq!((s.payments, s.revoked_at), (0, Some(NOW + 70)));
        assert_eq!(
            code(&sp, &pay(&unseen, "agent-4", 9, 10, deadline), NOW + 71),
            "lane_revoked"
        );
        // A revocation's chain must end at the lane it names.
        let rev = LaneRevocation::sign(&evm_domain(), id_of(&sub), NOW, &key(OWNER)).unwrap();
        let body = to_compact(&aep2::json::Value::Object(
            aep2::json::Object::new().with("revocation", rev.to_json()).with(
                "lanes",
                aep2::json::Value::Array(root.iter().map(SignedLane::to_json).collect()),
            ),
        ));
        assert_eq!(refused(body), "lane_revoker_invalid");
        assert_eq!(sp.ledger().audit().unwrap(), Vec::<String>::new());
    });
}

#[test]
fn a_failed_lane_mandate_gives_its_amount_back_to_every_link() {
    on_each_backend("a_failed_lane_mandate_gives_it", |backend| {
        let sp = sp_with_skew(backend, "lane-release", 10_000, 0);
        let from = NOW - 10;
        let mut periodic = lane("agent-1", 1_000, 1);
        periodic.period = 100;
        periodic.allowance = U256::from_u64(100);
        let root = grant(periodic.clone(), &[], OWNER);
        periodic.salt = [2; 32];
        periodic.agent = acct("agent-2");
        let sub = grant(periodic, &root, "agent-1");
        let a = sp
            .enqueue(pay(&sub, "agent-2", 1, 60, NOW + 3_600).as_bytes(), from)
            .unwrap();
        let b = sp
            .enqueue(pay(&sub, "agent-2", 2, 30, NOW + 3_600).as_bytes(), from + 1)
            .unwrap();
        // A fails in window 0 (still current): the window spend is given back too.
        assert_eq!(sp.ledger().fail_expired(&[a.mandate.mandate_id], from + 2).unwrap(), 1);
        for chain in [&root, &sub] {
            let s = sp.ledger().lane(&id_of(chain), from + 2).unwrap().unwrap();
            assert_eq!(
                (s.spent, s.payments, s.window_spent),
                (U256::from_u64(30), 1, U256::from_u64(30))
            );
        }
        // A payment in window 1 moves the links on; B, of window 0, then fails at settlement: its
        // amount leaves the total, not the new window's spend.
        let c = sp
            .enqueue(pay(&sub, "agent-2", 3, 70, NOW + 3_600).as_bytes(), from + 120)
            .unwrap();
        sp.ledger()
            .record_batch(&aep2_sp::NewBatch {
                batch_id: [7; 32],
                domain: b.mandate.account.domain.clone(),
                mandates: vec![b.mandate.mandate_id],
                sp_nonce: 0,
                tx_hash: [8; 32],
                raw_tx: vec![1],
                fees: (1, 1),
                now: from + 121,
            })
            .unwrap();
        sp.ledger()
            .confirm_batch(
                &[7; 32],
                &[8; 32],
                10,
                21_000,
                &[(
                    b.mandate.mandate_id,
                    aep2_sp::ItemOutcome::Failed("insufficient_funds".into()),
                )],
                from + 122,
            )
            .unwrap();
        for chain in [&root, &sub] {
            let s = sp.ledger().lane(&id_of(chain), from + 122).unwrap().unwrap();
            assert_eq!(
                (s.spent, s.payments, s.window_index, s.window_spent),
                (U256::from_u64(70), 1, 1, U256::from_u64(70))
            );
        }
        assert!(c.fresh);
        assert_eq!(sp.ledger().audit().unwrap(), Vec::<String>::new());
    });
}

/// Undoes what version 5 added (lanes), leaving a version-4 file.
const TO_VERSION_4: &str = "DROP INDEX mandates_lane; DROP INDEX lanes_parent; DROP INDEX mandates_seq; \
     DROP TABLE lanes; DROP TABLE mandate_lanes; \
     ALTER TABLE mandates DROP COLUMN lane_id; ALTER TABLE mandates DROP COLUMN request; \
     ALTER TABLE mandates DROP COLUMN seq;";

#[test]
fn a_version_4_ledger_is_upgraded_in_place_and_its_mandates_have_no_lane() {
    let db = temp_db("upgrade-4");
    let (a, _) = evm_envelope("up4-payer", 1, 100, NOW + 3600, EnvelopeForm::Mvp);
    let id = {
        let sp = Processor::new(
            &config(db.clone()),
            Ledger::open(&db, &LedgerOptions::default()).unwrap(),
        )
        .unwrap();
        sp.ledger().deposit(&evm_deposit("d", "up4-payer", 1_000), NOW).unwrap();
        sp.enqueue(a.as_bytes(), NOW).unwrap().mandate.mandate_id
    };
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!("{TO_VERSION_4} PRAGMA user_version = 4;"))
        .unwrap();
    drop(conn);
    let sp = Processor::new(
        &config(db.clone()),
        Ledger::open(&db, &LedgerOptions::default()).unwrap(),
    )
    .unwrap();
    let m = sp.ledger().mandate(&id).unwrap().unwrap();
    assert_eq!((m.lane, m.request), (None, None));
    // The stored mandate is numbered first in the audit trail; the next one after it.
    let (b, _) = evm_envelope("up4-payer", 2, 100, NOW + 3600, EnvelopeForm::Mvp);
    sp.enqueue(b.as_bytes(), NOW).unwrap();
    let trail = sp.ledger().audit_page(&aep2_sp::audit::AuditQuery::default()).unwrap();
    assert_eq!(trail.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(trail[0].mandate_id, id);
    sp.ledger().deposit(&evm_deposit("d2", OWNER, 1_000), NOW).unwrap();
    let root = grant(lane("agent-1", 100, 1), &[], OWNER);
    assert_eq!(code(&sp, &pay(&root, "agent-1", 1, 10, NOW + 3_600), NOW), "accepted");
    let version: i32 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, Ledger::SCHEMA_VERSION);
}

#[test]
fn every_links_total_is_checked_before_any_links_count_as_on_chain() {
    on_each_backend("every_links_total_is_checked_b", |backend| {
        // The root may pay twice in all; the sub-lane 100 in all. After the sub-agent's payment and
        // the agent's, the sub-agent's next is over both the root's count and its own total: the
        // contract says lane_total_exceeded (spec aep2.md#lane-onchain check 9), and so does the SP.
        let sp = sp(backend, "lane-order", 10_000);
        let mut root_lane = lane("order-agent", 1_000, 7);
        root_lane.max_payments = 2;
        let root = grant(root_lane, &[], OWNER);
        let mut sub_lane = lane("order-sub", 100, 8);
        sub_lane.max_payments = 2;
        let sub = grant(sub_lane, &root, "order-agent");
        let deadline = NOW + 3_600;
        assert_eq!(code(&sp, &pay(&sub, "order-sub", 1, 100, deadline), NOW), "accepted");
        assert_eq!(code(&sp, &pay(&root, "order-agent", 2, 100, deadline), NOW), "accepted");
        assert_eq!(
            code(&sp, &pay(&sub, "order-sub", 3, 100, deadline), NOW),
            "lane_total_exceeded"
        );
        // Within the sub-lane's total, the root's count is what binds.
        let mut other = lane("order-sub-2", 500, 9);
        other.max_payments = 2;
        let other = grant(other, &root, "order-agent");
        assert_eq!(
            code(&sp, &pay(&other, "order-sub-2", 4, 100, deadline), NOW),
            "lane_payments_exhausted"
        );
    });
}

#[test]
fn a_clock_behind_counts_in_the_later_window_so_disagreeing_clocks_cannot_reset_the_allowance() {
    on_each_backend("a_clock_behind_counts_in_the_l", |backend| {
        // Two SP instances on one ledger, one a second behind the other across a window boundary.
        let sp = sp_with_skew(backend, "lane-window-clock", 10_000, 0);
        let mut l = lane("clock-agent", 1_000, 11);
        l.per_payment = U256::from_u64(100);
        l.period = 100;
        l.allowance = U256::from_u64(100);
        let chain = grant(l, &[], OWNER);
        let boundary = NOW - 10 + 100; // validFrom + period: window 1 begins
        let deadline = NOW + 3_600;
        assert_eq!(
            code(&sp, &pay(&chain, "clock-agent", 1, 100, deadline), boundary),
            "accepted"
        );
        // The instance behind still sees window 0: the payment counts in window 1, which is spent.
        assert_eq!(
            code(&sp, &pay(&chain, "clock-agent", 2, 100, deadline), boundary - 1),
            "lane_period_exceeded"
        );
        assert_eq!(
            code(&sp, &pay(&chain, "clock-agent", 3, 100, deadline), boundary + 99),
            "lane_period_exceeded"
        );
        assert_eq!(
            code(&sp, &pay(&chain, "clock-agent", 4, 100, deadline), boundary + 100),
            "accepted"
        );
    });
}

#[test]
fn a_lane_is_used_at_the_sp_only_once_valid_by_a_clock_up_to_the_skew_behind() {
    on_each_backend("a_lane_is_used_at_the_sp_only_", |backend| {
        // The contract checks validFrom against block time, which may lag the SP's clock by the skew.
        let sp = sp(backend, "lane-valid-from-skew", 10_000);
        let chain = grant(lane("skew-agent", 1_000, 12), &[], OWNER);
        let from = NOW - 10;
        let deadline = NOW + 3_600;
        assert_eq!(
            code(&sp, &pay(&chain, "skew-agent", 1, 10, deadline), from + 4),
            "lane_not_yet_valid"
        );
        assert_eq!(
            code(&sp, &pay(&chain, "skew-agent", 2, 10, deadline), from + 5),
            "accepted"
        );
    });
}

#[test]
fn a_mandates_request_descriptor_is_stored_and_read_back() {
    on_each_backend("a_mandates_request_descriptor_", |backend| {
        let ledger = open(&location(backend, "lane-request"));
        let deposit = evm_deposit("d", "request-payer", 100);
        ledger.deposit(&deposit, NOW).unwrap();
        let m = aep2_sp::ledger::NewMandate {
            mandate_id: [1; 32],
            nonce_key: [2; 32],
            profile: "eip712".into(),
            account: deposit.account.clone(),
            payee: payee().to_checksum(),
            amount: U256::from_u64(5),
            nonce: "1".into(),
            deadline: NOW + 3_600,
            reference: aep2::codec::hex_encode_0x(&[3; 32]),
            envelope: "{}".into(),
            receipt: "{}".into(),
            enqueue_deadline: NOW + 300,
            now: NOW,
            submission_id: None,
            lanes: Vec::new(),
            request: Some("{\"method\":\"GET\",\"url\":\"https://api.example/x\"}".into()),
        };
        let stored = ledger.enqueue(&m).unwrap().mandate;
        assert_eq!(stored.request, m.request);
        let read = ledger.mandate(&[1; 32]).unwrap().unwrap();
        assert_eq!((read.request, read.lane), (m.request.clone(), None));
    });
}

#[test]
fn racing_submissions_under_one_lane_never_exceed_its_total_or_its_count_and_each_is_accepted_once() {
    on_each_backend("lane-race", lane_race);
}

/// 8 threads on two SPs (two handles on one database: two processes) each submit every one of
/// 60 payments of 25 under two sub-lanes (600 each) of one root (1,000, at most 30 payments):
/// the root's count binds, so exactly 30 are accepted, each once, and the counters are exact.
fn lane_race(backend: Backend) {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Barrier, Mutex};
    let db = location(backend, "lane-race");
    let c = config(&db);
    let sps: Vec<Arc<Processor>> = (0..2)
        .map(|_| Arc::new(Processor::new(&c, open(&db)).unwrap()))
        .collect();
    sps[0].ledger().deposit(&evm_deposit("d", OWNER, 10_000), NOW).unwrap();
    let mut root_lane = lane("race-agent", 1_000, 21);
    root_lane.max_payments = 30;
    let root = grant(root_lane, &[], OWNER);
    let sub = |agent: &str, salt: u8| {
        let mut l = lane(agent, 600, salt);
        l.max_payments = 30;
        grant(l, &root, "race-agent")
    };
    let subs = [sub("race-sub-a", 22), sub("race-sub-b", 23)];
    let agents = ["race-sub-a", "race-sub-b"];
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..60u64)
            .map(|n| pay(&subs[(n % 2) as usize], agents[(n % 2) as usize], n, 25, NOW + 3_600))
            .collect(),
    );
    let barrier = Arc::new(Barrier::new(8));
    let fresh: Arc<Mutex<BTreeMap<usize, usize>>> = Arc::default();
    let threads: Vec<_> = (0..8usize)
        .map(|t| {
            let (sp, bodies, barrier, fresh) = (sps[t % 2].clone(), bodies.clone(), barrier.clone(), fresh.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..bodies.len() {
                    let k = (i * (2 * t + 1) + 7 * t) % bodies.len();
                    match sp.enqueue(bodies[k].as_bytes(), NOW) {
                        Ok(done) => *fresh.lock().unwrap().entry(k).or_default() += usize::from(done.fresh),
                        Err(e) => assert!(
                            ["lane_payments_exhausted", "lane_total_exceeded"].contains(&e.code()),
                            "unexpected rejection {e}"
                        ),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let fresh = fresh.lock().unwrap();
    assert!(
        fresh.values().all(|&f| f == 1),
        "each payment stored by exactly one call"
    );
    assert_eq!(fresh.len(), 30, "the root's count binds");
    let ledger = sps[1].ledger();
    let s = ledger.lane(&id_of(&root), NOW).unwrap().unwrap();
    assert_eq!((s.spent, s.payments), (U256::from_u64(750), 30));
    let mut under = 0;
    for sub in &subs {
        let s = ledger.lane(&id_of(sub), NOW).unwrap().unwrap();
        let n = ledger.lane_mandates(&id_of(sub)).unwrap().len() as u64;
        assert!(s.spent <= U256::from_u64(600));
        assert_eq!((s.spent, s.payments), (U256::from_u64(25 * n), n));
        under += n;
    }
    assert_eq!(under, 30);
    assert_eq!(ledger.mandates().unwrap().len(), 30);
    assert_eq!(ledger.audit().unwrap(), Vec::<String>::new());
}
