//! `aep2 sp export` (spec `aep2.md#sp-audit`): the audit trail of a ledger as JSON Lines or CSV,
//! filtered by lane (sub-lanes included) and time, across pages; from a SQLite file and, when
//! `AEP2_TEST_POSTGRES` is set, from a Postgres ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2::crypto::secp256k1::SecretKey;
use aep2::json::to_compact;
use aep2::{
    AccountId, Domain, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, Lane, Mandate, PayerKey, SignedLane, SpKey,
    U256, sign_lane, sign_lane_mandate,
};
use aep2_sp::Location;
use std::process::Command;

const NOW: u64 = 1_800_000_000;

fn key(label: &str) -> SecretKey {
    SecretKey::from_bytes(&aep2::hash::sha256(label.as_bytes())).unwrap()
}

fn domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress([0x91; 20]),
    })
}

fn token() -> EvmAddress {
    EvmAddress([0x03; 20])
}

fn lane(agent: &str, parent: Option<&SignedLane>, purpose: &str, grantor: &str) -> SignedLane {
    let base = Lane {
        profile: aep2::Profile::Eip712,
        owner: key("export-owner").address().into(),
        agent: key(agent).address().into(),
        token: token().into(),
        per_payment: U256::from_u64(100),
        total: U256::from_u64(10_000),
        max_payments: 0,
        period: 0,
        allowance: U256::ZERO,
        payees: vec![],
        valid_from: 0,
        valid_until: NOW * 2,
        purpose: purpose.into(),
        parent: parent.map_or([0; 32], |p| p.lane.digest(&domain()).unwrap().id),
        salt: aep2::hash::sha256(purpose.as_bytes()),
    };
    sign_lane(&base, parent, &domain(), &PayerKey::Secp256k1(key(grantor))).unwrap()
}

/// A ledger with 1200 payments of the agent (a page and a bit) and 3 of its sub-agent.
fn ledger(path: &Location) -> (String, String) {
    let mut config = aep2_sp::Config::new(path, vec![domain()]);
    config.secp256k1_key = Some(SpKey::Secp256k1(key("export-sp")));
    config.settlement_window = 300;
    let sp = aep2_sp::Processor::new(&config, aep2_sp::Ledger::open(path, &Default::default()).unwrap()).unwrap();
    let account = aep2_sp::config::account_key(
        &domain(),
        &AccountId::Evm(key("export-owner").address()),
        &AccountId::Evm(token()),
    )
    .unwrap();
    let deposit = aep2_sp::Deposit {
        id: "d".into(),
        account,
        amount: U256::from_u64(1_000_000),
    };
    sp.ledger().deposit(&deposit, NOW).unwrap();
    let root = lane("export-agent", None, "agent, research", "export-owner");
    let sub = lane("export-sub", Some(&root), "=sub", "export-agent");
    let pay = |agent: &str, chain: &[SignedLane], nonce: u64, at: u64| {
        let m = Mandate::Eip712(EvmMandate {
            owner: key("export-owner").address(),
            token: token(),
            payee: EvmAddress([0x22; 20]),
            amount: U256::from_u64(1),
            nonce: U256::from_u64(nonce),
            deadline: NOW + 10_000,
            reference: [7; 32],
        });
        let (s, _) = sign_lane_mandate(
            &m,
            &domain(),
            &PayerKey::Secp256k1(key(agent)),
            EnvelopeForm::Native,
            chain,
        )
        .unwrap();
        sp.enqueue(to_compact(&s.to_json()).as_bytes(), at).unwrap();
    };
    for n in 0..1200 {
        pay("export-agent", std::slice::from_ref(&root), n, NOW + n % 7);
    }
    let chain = [root.clone(), sub.clone()];
    for n in 0..3 {
        pay("export-sub", &chain, 5000 + n, NOW + 100);
    }
    let id = |l: &SignedLane| aep2::codec::hex_encode_0x(&l.lane.digest(&domain()).unwrap().id);
    (id(&root), id(&sub))
}

fn export(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_aep2"))
        .args(["sp", "export"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn export_writes_every_record_across_pages_filtered_by_lane_and_time() {
    let dir = std::env::temp_dir().join(format!("aep2-export-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ledgers = vec![Location::Sqlite(dir.join("ledger.db"))];
    ledgers.extend(aep2_replay::db::testing::postgres("cli-export"));
    for location in &ledgers {
        eprintln!("export: from {}", location.display());
        let db = match location {
            Location::Sqlite(path) => path.to_str().unwrap().to_owned(),
            Location::Postgres(url) => url.clone(),
        };
        export_from(location, &db);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn export_from(location: &Location, db: &str) {
    let (root, sub) = ledger(location);

    let all = export(&["--database", db, "--format", "jsonl"]);
    let records: Vec<serde_json::Value> = all.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 1203);
    let ids: std::collections::BTreeSet<&str> = records.iter().map(|r| r["mandateId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1203, "no record twice across pages");
    // In the order they were stored (the nonces count up), whatever their acceptance times.
    let nonces: Vec<u64> = records
        .iter()
        .map(|r| r["nonce"].as_str().unwrap().parse().unwrap())
        .collect();
    let stored: Vec<u64> = (0..1200).chain(5000..5003).collect();
    assert_eq!(nonces, stored);

    let under_root = export(&["--database", db, "--format", "jsonl", "--lane", &root]);
    assert_eq!(
        under_root.lines().count(),
        1203,
        "the root's trail includes its sub-agent's"
    );
    let under_sub = export(&["--database", db, "--format", "jsonl", "--lane", &sub]);
    let sub_records: Vec<serde_json::Value> = under_sub.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(sub_records.len(), 3);
    for r in &sub_records {
        assert_eq!(r["lanes"], serde_json::json!([root, sub]));
        assert_eq!(r["lane"], sub.as_str());
        assert_eq!(r["agent"], key("export-sub").address().to_checksum());
        assert_eq!(r["purpose"], "=sub");
        assert_eq!(r["request"], serde_json::Value::Null);
    }
    let since = NOW + 100;
    let recent = export(&["--database", db, "--format", "jsonl", "--since", &since.to_string()]);
    assert_eq!(recent.lines().count(), 3);

    // CSV: the header, then one line per record; fields quoted, formula text defused.
    let csv = export(&["--database", db, "--format", "csv", "--lane", &sub]);
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("\"acceptedAt\",\"mandateId\""));
    assert!(lines[1].contains("\"'=sub\""), "{}", lines[1]);
    let csv_root = export(&["--database", db, "--format", "csv", "--since", "0"]);
    assert!(csv_root.contains(",\"agent, research\","));

    // Usage errors exit 2.
    for bad in [
        vec!["--database", db, "--format", "xml"],
        vec!["--database", db, "--format", "csv", "--lane", "0x12"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_aep2"))
            .args(["sp", "export"])
            .args(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
