//! Round trips (emit → parse), v0.3/v1.0 equivalence, the flows end to end, and JSON Schema
//! validation of every object the binding emits.
#![allow(clippy::unwrap_used)]

use aep2::crypto::secp256k1::SecretKey;
use aep2::json::{Limits, Object, Value, parse, to_compact};
use aep2::{
    Domain, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, Mandate, OrderOptions, PayeePolicy, PayerKey,
    PaymentRequest, PriceMode, Reason, SpId, SpKey, U256, Verifier, sign_mandate,
};
use aep2_a2a::*;
use aep2_x402::PaymentRequirements;
use std::path::PathBuf;

const NOW: u64 = 1_800_000_000;
const PAYEE: &str = "0xaAD167617dF02Dd30208722c88d9027a2fDD8812";
const USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const SP: &str = "0x405B10be927D3BF157196C995d8131c6A097673c";

fn domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912").unwrap(),
    })
}

fn key() -> SecretKey {
    SecretKey::from_bytes(&[0x11; 32]).unwrap()
}

fn sign(reference: [u8; 32], amount: u64) -> aep2::SignedMandate {
    let m = Mandate::Eip712(EvmMandate {
        owner: key().address(),
        token: EvmAddress::parse(USDC).unwrap(),
        payee: EvmAddress::parse(PAYEE).unwrap(),
        amount: U256::from_u64(amount),
        nonce: U256::from_u64(7),
        deadline: NOW + 600,
        reference,
    });
    sign_mandate(&m, &domain(), &PayerKey::Secp256k1(key()), EnvelopeForm::Mvp)
        .unwrap()
        .0
}

fn policy() -> PayeePolicy {
    PayeePolicy::new(
        EvmAddress::parse(PAYEE).unwrap().into(),
        EvmAddress::parse(USDC).unwrap().into(),
        U256::from_u64(1000),
    )
    .with_price_mode(PriceMode::Exact)
    .with_settlement_window(60)
    .with_max_horizon(3600)
}

fn request() -> Message {
    let mut data = Object::new();
    data.insert("maxWords", Value::Number("120".into()));
    Message::new(
        Role::User,
        "msg-1",
        vec![
            Part::text("Summarise the report"),
            Part {
                filename: Some("q3.pdf".into()),
                media_type: Some("application/pdf".into()),
                ..Part::of(PartContent::Raw(b"%PDF-1.7 ...".to_vec()))
            },
            Part::data(Value::Object(data)),
        ],
    )
    .with_context_id("ctx-1")
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../spec/schemas")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn valid(name: &str, v: &Value) {
    let instance: serde_json::Value = serde_json::from_str(&to_compact(v)).unwrap();
    let validator = schema(name);
    let errors: Vec<String> = validator.iter_errors(&instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{}", to_compact(v));
}

fn metadata_of(v: &Value) -> Value {
    let Value::Object(o) = v else { panic!("not an object") };
    o.get("metadata").cloned().unwrap()
}

#[test]
fn message_round_trips_and_emits_v1() {
    let m = attach_mandate(request(), &sign([0; 32], 1000));
    let text = m.to_text();
    assert!(!text.contains("\"kind\""));
    assert!(text.contains("ROLE_USER"));
    let back = Message::parse(&text).unwrap();
    assert_eq!(back, m);
    valid("a2a-message.schema.json", &m.to_json());
    valid("a2a-metadata.schema.json", &metadata_of(&m.to_json()));
}

#[test]
fn v03_and_v10_are_one_message() {
    let v03 = r#"{"kind":"message","messageId":"msg-1","contextId":"ctx-1","role":"user","parts":[
        {"kind":"text","text":"Summarise the report"},
        {"kind":"file","file":{"bytes":"JVBERi0xLjcgLi4u","name":"q3.pdf","mimeType":"application/pdf"}},
        {"kind":"data","data":{"maxWords":120}}]}"#;
    let parsed = Message::parse(v03).unwrap();
    assert_eq!(parsed.version, A2aVersion::V0_3);
    valid("a2a-message.schema.json", &parse(v03, &MESSAGE_LIMITS).unwrap());
    assert_eq!(parsed.request_hash().unwrap(), request().request_hash().unwrap());
    // Normalised, it is the v1.0 message; written out, it is v1.0.
    let mut expected = request();
    expected.version = A2aVersion::V0_3;
    assert_eq!(parsed, expected);
    assert_eq!(Message::parse(&parsed.to_text()).unwrap().version, A2aVersion::V1_0);
}

#[test]
fn request_hash_ignores_metadata_and_message_id_but_not_content() {
    let base = request().request_hash().unwrap();
    let mut other_id = attach_mandate(request(), &sign([1; 32], 5));
    other_id.message_id = "msg-2".into();
    assert_eq!(other_id.request_hash().unwrap(), base);
    let mut other_text = request();
    other_text.parts[0] = Part::text("Summarise the other report");
    assert_ne!(other_text.request_hash().unwrap(), base);
    assert_ne!(request().with_task_id("t-1").request_hash().unwrap(), base);
    let mut agent = request();
    agent.role = Role::Agent;
    assert_eq!(
        agent.request_hash().unwrap_err().reason(),
        Reason::RequestDescriptorInvalid
    );
}

#[test]
fn intent_mode_end_to_end() {
    let verifier = Verifier::new(domain());
    let h = request().request_hash().unwrap();
    let text = attach_mandate(request(), &sign(h, 1000)).to_text();
    let (msg, v) = verify_intent(&text, &verifier, &policy(), RequestBinding::Required, NOW).unwrap();
    assert_eq!(msg.message_id, "msg-1");
    assert_eq!(v.mandate().amount(), "1000");

    // Bound to another message: rejected with binding, accepted without.
    let wrong = attach_mandate(request(), &sign([9; 32], 1000)).to_text();
    let err = verify_intent(&wrong, &verifier, &policy(), RequestBinding::Required, NOW).unwrap_err();
    assert_eq!(err.reason(), Reason::RequestMismatch);
    assert!(verify_intent(&wrong, &verifier, &policy(), RequestBinding::NotRequired, NOW).is_ok());

    // The payee's answer carries the acceptance and, with the SP receipt, completes.
    let sp_key = SpKey::Secp256k1(SecretKey::from_bytes(&[0x22; 32]).unwrap());
    let receipt = sp_key
        .sign_receipt(aep2::ReceiptKind::MvpEvm, &v.digest, NOW + 300, None)
        .unwrap();
    let base = Message::new(Role::Agent, "msg-r", vec![Part::text("Done.")]).with_task_id("t-1");
    let status = payment_accepted(base.clone(), &v, Some(&receipt), TaskState::Completed);
    valid("a2a-task-status.schema.json", &status.to_json());
    valid("a2a-metadata.schema.json", &metadata_of(&status.message.to_json()));
    let back = TaskStatus::from_json(&status.to_json()).unwrap();
    assert_eq!(back, status);
    let info = PaymentInfo::of(&back.message).unwrap().unwrap();
    assert_eq!(info.status, PaymentStatus::Completed);
    let acc = info.acceptance.unwrap();
    assert_eq!(acc.amount, "1000");
    assert_eq!(acc.mandate_id, aep2::codec::hex_encode_0x(&v.digest.id));
    assert!(acc.receipt.is_some());

    let verified = payment_accepted(base, &v, None, TaskState::Working);
    let info = PaymentInfo::of(&verified.message).unwrap().unwrap();
    assert_eq!(info.status, PaymentStatus::Verified);
    valid("a2a-task-status.schema.json", &verified.to_json());
}

fn quote() -> PaymentRequest {
    let text = format!(
        r#"{{"aep2":1,"kind":"payment-request","profile":"eip712",
        "domain":{{"chainId":84532,"verifyingContract":"0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"}},
        "requestId":"task-42","payee":"{PAYEE}","asset":"{USDC}","amount":"1000","expiry":{},
        "description":"report","settlementProcessor":"{SP}","settlementWindow":60}}"#,
        NOW + 300
    );
    PaymentRequest::from_json(&parse(&text, &Limits::AEP2).unwrap()).unwrap()
}

#[test]
fn order_mode_end_to_end() {
    let q = quote();
    let base = Message::new(Role::Agent, "msg-q", vec![Part::text("Payment required")])
        .with_task_id("task-42")
        .with_context_id("ctx-1");
    let required = payment_required(base.clone(), &[PaymentRequirements::for_quote(&q, NOW)]);
    valid("a2a-task-status.schema.json", &required.to_json());
    valid("a2a-metadata.schema.json", &metadata_of(&required.message.to_json()));
    // The payer reads the quote back out of the status and signs for it.
    let read = TaskStatus::from_json(&parse(&to_compact(&required.to_json()), &MESSAGE_LIMITS).unwrap()).unwrap();
    assert_eq!(read.state, TaskState::InputRequired);
    let info = PaymentInfo::of(&read.message).unwrap().unwrap();
    assert_eq!(info.status, PaymentStatus::Required);
    let payer_copy = info.requirements[0].quote().unwrap().unwrap();
    assert_eq!(payer_copy, q);
    let reply = Message::new(Role::User, "msg-p", vec![Part::text("paying")]).with_task_id("task-42");
    let text = attach_mandate(reply.clone(), &sign(payer_copy.hash(), 1000)).to_text();
    let verifier = Verifier::new(domain());
    let (_, v) = verify_order_reply(&text, &verifier, &q, NOW, OrderOptions::default()).unwrap();
    assert_eq!(v.mandate().amount(), "1000");
    // Too late for the quote.
    let err = verify_order_reply(&text, &verifier, &q, NOW + 301, OrderOptions::default()).unwrap_err();
    assert_eq!(err.reason(), Reason::QuoteExpired);
    // Underpaying: rejected, and the rejection offers the quote again.
    let low = attach_mandate(reply, &sign(payer_copy.hash(), 999)).to_text();
    let err = verify_order_reply(&low, &verifier, &q, NOW, OrderOptions::default()).unwrap_err();
    assert_eq!(err.reason(), Reason::AmountInsufficient);
    let rejected = payment_rejected(base, &err, Some(&[PaymentRequirements::for_quote(&q, NOW)]));
    assert_eq!(rejected.state, TaskState::InputRequired);
    valid("a2a-task-status.schema.json", &rejected.to_json());
    valid("a2a-metadata.schema.json", &metadata_of(&rejected.message.to_json()));
    let info = PaymentInfo::of(&rejected.message).unwrap().unwrap();
    assert_eq!(info.status, PaymentStatus::Rejected);
    assert_eq!(info.error.unwrap().0, Reason::AmountInsufficient);
}

#[test]
fn agent_card_entry_round_trips() {
    let ext = Aep2Extension {
        description: "Pays per task with AEP2".into(),
        required: true,
        accepts: vec![
            Accept {
                domain: domain(),
                settlement_processor: SpId::parse(SP).unwrap(),
            },
            Accept {
                domain: Domain::SolanaMvp,
                settlement_processor: SpId::parse("FLpgzKZV1czUTLQHRSnYmXhW2sQv5evXgmyTURGgVKUW").unwrap(),
            },
        ],
        modes: vec![Mode::Intent, Mode::Order],
    };
    let json = ext.to_json();
    valid("a2a-agent-extension.schema.json", &json);
    assert_eq!(Aep2Extension::from_json(&json).unwrap(), ext);
    let card = parse(
        &format!(
            r#"{{"name":"reports","capabilities":{{"streaming":true,"extensions":[{{"uri":"https://example.com/x"}},{}]}}}}"#,
            to_compact(&json)
        ),
        &MESSAGE_LIMITS,
    )
    .unwrap();
    assert_eq!(Aep2Extension::find(&card).unwrap(), Some(ext.clone()));
    assert!(ext.accept_for(&domain()).is_some());

    let bad = |edit: &str, with: &str| {
        let text = to_compact(&json).replace(edit, with);
        Aep2Extension::from_json(&parse(&text, &MESSAGE_LIMITS).unwrap())
            .unwrap_err()
            .reason()
    };
    assert_eq!(bad("\"aep2\":1", "\"aep2\":2"), Reason::UnsupportedVersion);
    assert_eq!(
        bad("\"modes\":[\"intent\",\"order\"]", "\"modes\":[\"order\",\"order\"]"),
        Reason::FieldType
    );
    assert_eq!(
        bad("\"profile\":\"eip712\"", "\"profile\":\"rsa\""),
        Reason::UnsupportedProfile
    );
    assert_eq!(
        bad(SP, "FLpgzKZV1czUTLQHRSnYmXhW2sQv5evXgmyTURGgVKUW"),
        Reason::AddressInvalid
    );
    assert_eq!(bad("\"chainId\":84532", "\"chainId\":0"), Reason::DomainInvalid);
    assert_eq!(bad("/ext/a2a/v1", "/ext/a2a/v2"), Reason::FieldType);
    assert_eq!(
        bad("\"required\":true", "\"required\":true,\"extra\":1"),
        Reason::UnknownField
    );
}

#[test]
fn malformed_embeddings_are_rejected_with_their_codes() {
    let verifier = Verifier::new(domain());
    let env = to_compact(&sign([0; 32], 1000).to_json());
    let check = |text: &str| {
        check_message(text, &verifier, Some(NOW))
            .1
            .verdict
            .unwrap_err()
            .reason()
    };
    let plain = r#"{"messageId":"m","role":"ROLE_USER","parts":[{"text":"hi"}]}"#;
    assert_eq!(check(plain), Reason::PaymentMissing);
    let with =
        |meta: &str| format!(r#"{{"messageId":"m","role":"ROLE_USER","parts":[{{"text":"hi"}}],"metadata":{meta}}}"#);
    assert_eq!(
        check(&with(&format!(
            r#"{{"aep2.dev/mandate":{env},"x402.payment.payload":{{}}}}"#
        ))),
        Reason::PaymentAmbiguous
    );
    assert_eq!(check(&with(r#"{"aep2.dev/mandate":"eyJ9"}"#)), Reason::FieldType);
    assert_eq!(check(&with(r#"{"aep2.dev/mandates":{}}"#)), Reason::A2aMessageInvalid);
    assert_eq!(check(&with("[]")), Reason::A2aMessageInvalid);
    assert_eq!(check(&"x".repeat(MAX_MESSAGE_BYTES + 1)), Reason::HeaderTooLarge);
    assert_eq!(
        check(r#"{"kind":"message","messageId":"m","role":"ROLE_USER","parts":[{"kind":"text","text":"hi"}]}"#),
        Reason::A2aMessageInvalid
    );
    assert_eq!(
        check(r#"{"messageId":"m","role":"ROLE_USER","parts":[{"data":{},"text":"x"}]}"#),
        Reason::A2aMessageInvalid
    );
    // A valid embedding for contrast: the same mandate in the right place verifies.
    assert!(
        check_message(&with(&format!(r#"{{"aep2.dev/mandate":{env}}}"#)), &verifier, Some(NOW))
            .1
            .verdict
            .is_ok()
    );
}

#[test]
fn payer_side_rejects_malformed_status_metadata() {
    let msg = |meta: &str| {
        Message::parse(&format!(
            r#"{{"messageId":"m","role":"ROLE_AGENT","parts":[{{"text":"x"}}],"metadata":{meta}}}"#
        ))
        .unwrap()
    };
    assert_eq!(PaymentInfo::of(&msg("{}")).unwrap(), None);
    let err = |meta: &str| PaymentInfo::of(&msg(meta)).unwrap_err().reason();
    assert_eq!(err(r#"{"aep2.dev/status":"payment-settled"}"#), Reason::FieldType);
    assert_eq!(err(r#"{"aep2.dev/status":"payment-required"}"#), Reason::MissingField);
    assert_eq!(
        err(r#"{"aep2.dev/status":"payment-rejected","aep2.dev/error":{"code":"no_such_code","message":""}}"#),
        Reason::FieldType
    );
    assert_eq!(
        err(
            r#"{"aep2.dev/status":"payment-required","aep2.dev/requirements":[{"scheme":"exact","network":"eip155:1","amount":"1","asset":"a","payTo":"b","maxTimeoutSeconds":1}]}"#
        ),
        Reason::X402SchemeUnsupported
    );
}
