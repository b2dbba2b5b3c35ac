//! Real requests and answers of the service validate against `spec/schemas/sp-*.schema.json`,
//! and malformed ones do not.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::EnvelopeForm;
use aep2_sp::{Ledger, Processor};
use common::*;
use serde_json::{Value as J, json};

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/../../spec/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let v: J = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&v).unwrap()
}

#[test]
fn requests_responses_and_deposits_match_their_schemas() {
    let req = schema("sp-enqueue-request.schema.json");
    let resp = schema("sp-enqueue-response.schema.json");
    let sp = Processor::new(&config(temp_db("schema")), Ledger::open_in_memory().unwrap()).unwrap();
    sp.ledger()
        .deposit(&evm_deposit("d", "schema-payer", 100), NOW)
        .unwrap();
    sp.ledger().deposit(&ed_deposit("e", "schema-ed", 100), NOW).unwrap();
    let bodies = [
        evm_envelope("schema-payer", 1, 10, NOW + 3600, EnvelopeForm::Mvp).0,
        evm_envelope("schema-payer", 2, 10, NOW + 3600, EnvelopeForm::Native).0,
        ed_envelope("schema-ed", 3, 10, NOW + 3600).0,
    ];
    for body in &bodies {
        let v: J = serde_json::from_str(body).unwrap();
        assert!(req.is_valid(&v), "request {body}");
        for submission in [None, Some([7u8; 16])] {
            let done = sp.enqueue_as(body.as_bytes(), submission, NOW).unwrap();
            let answer: J = serde_json::from_str(&aep2_sp::service::enqueue_answer(&done)).unwrap();
            assert!(resp.is_valid(&answer), "answer {answer}");
        }
    }
    // A lane mandate's answer: a native receipt with `lane`.
    {
        use aep2::lane::{Lane, sign_lane};
        use aep2::{AccountId, EvmMandate, Mandate, PayerKey, U256, sign_lane_mandate};
        let owner = PayerKey::Secp256k1(secp("schema-payer"));
        let lane = Lane {
            profile: aep2::Profile::Eip712,
            owner: AccountId::Evm(secp("schema-payer").address()),
            agent: AccountId::Evm(secp("schema-agent").address()),
            token: AccountId::Evm(token()),
            per_payment: U256::from_u64(10),
            total: U256::from_u64(50),
            max_payments: 0,
            period: 0,
            allowance: U256::ZERO,
            payees: Vec::new(),
            valid_from: NOW - 10,
            valid_until: NOW + 7_200,
            purpose: String::new(),
            parent: [0; 32],
            salt: [8; 32],
        };
        let chain = vec![sign_lane(&lane, None, &evm_domain(), &owner).unwrap()];
        let m = Mandate::Eip712(EvmMandate {
            owner: secp("schema-payer").address(),
            token: token(),
            payee: payee(),
            amount: U256::from_u64(10),
            nonce: U256::from_u64(99),
            deadline: NOW + 3600,
            reference: [1; 32],
        });
        let agent = PayerKey::Secp256k1(secp("schema-agent"));
        let (sm, _) = sign_lane_mandate(&m, &evm_domain(), &agent, EnvelopeForm::Native, &chain).unwrap();
        let done = sp
            .enqueue(aep2::json::to_compact(&sm.to_json()).as_bytes(), NOW)
            .unwrap();
        let answer: J = serde_json::from_str(&aep2_sp::service::enqueue_answer(&done)).unwrap();
        assert_eq!(answer["receipt"]["lane"]["remaining"], "40", "{answer}");
        assert!(resp.is_valid(&answer), "answer {answer}");
        assert!(schema("receipt-native.schema.json").is_valid(&answer["receipt"]));
        let mut bad = answer.clone();
        bad["receipt"]["lane"]["extra"] = json!(1);
        assert!(!resp.is_valid(&bad));
    }
    let err = json!({"success": false, "error": "insufficient_funds", "stage": "policy", "message": "x"});
    assert!(resp.is_valid(&err));
    assert!(!resp.is_valid(&json!({"success": false, "error": "insufficient_funds"})));
    assert!(!req.is_valid(&json!({"mandate": {}, "payerSig": "0x00"})));
    let deposits = schema("sp-deposits.schema.json");
    let file = json!({"deposits": [
        {"id": "a", "payer": secp("p").address().to_checksum(), "token": token().to_checksum(), "amount": "1000"},
        {"id": "b", "payer": secp("p").address().to_checksum(), "token": token().to_checksum(), "amount": "5",
         "domain": {"profile": "eip712", "domain": {"chainId": 84532, "verifyingContract": "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"}}}
    ]});
    assert!(deposits.is_valid(&file));
    // The service's own parser takes the same file.
    let text = aep2::json::parse(
        &file.to_string(),
        &aep2::json::Limits {
            max_members: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    let aep2::json::Value::Object(o) = text else {
        panic!("not an object")
    };
    let parsed = aep2_sp::config::parse_deposits(o.get("deposits").unwrap(), &[evm_domain()]).unwrap();
    assert_eq!(parsed.len(), 2);
    assert!(!deposits.is_valid(&json!({"deposits": [{"id": "a", "payer": "x", "token": "y", "amount": "01"}]})));
}
