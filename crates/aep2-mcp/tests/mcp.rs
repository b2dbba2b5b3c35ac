//! End-to-end MCP binding: payment-required result, paid retry in each carrier, request binding
//! to the tool call, Order Mode against a quote, JSON-RPC errors; every emitted object validated
//! against its schema; the tool-call hash under RFC 8785 number forms.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2::crypto::secp256k1::SecretKey;
use aep2::json::{Limits, Object, Value, parse};
use aep2::{
    AccountId, Domain, Eip712Domain, EnvelopeForm, Error, EvmAddress, EvmMandate, Mandate, OrderOptions, PayeePolicy,
    PayerKey, PaymentRequest, Reason, SignedMandate, SpId, U256, Verifier, sign_mandate,
};
use aep2_mcp::*;
use aep2_x402::{PaymentRequirements, PaymentResponse};

const NOW: u64 = 1_800_000_000;
const PAYEE: &str = "0xaAD167617dF02Dd30208722c88d9027a2fDD8812";
const USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

fn domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912").unwrap(),
    })
}

fn policy() -> PayeePolicy {
    PayeePolicy::new(
        AccountId::parse(PAYEE).unwrap(),
        AccountId::parse(USDC).unwrap(),
        U256::from_u64(1000),
    )
    .with_settlement_window(300)
    .with_max_horizon(3600)
}

fn args(text: &str) -> Object {
    match parse(text, &MESSAGE_LIMITS).unwrap() {
        Value::Object(o) => o,
        _ => panic!("not an object"),
    }
}

fn call(arguments: &str) -> ToolCall {
    ToolCall::new(Value::from_u64(7), "get_weather", Some(args(arguments)))
}

fn signed(reference: [u8; 32], amount: u64, form: EnvelopeForm) -> SignedMandate {
    let key = SecretKey::from_bytes(&[0x11; 32]).unwrap();
    let m = Mandate::Eip712(EvmMandate {
        owner: key.address(),
        token: EvmAddress::parse(USDC).unwrap(),
        payee: EvmAddress::parse(PAYEE).unwrap(),
        amount: U256::from_u64(amount),
        nonce: U256::from_u64(42),
        deadline: NOW + 600,
        reference,
    });
    sign_mandate(&m, &domain(), &PayerKey::Secp256k1(key), form).unwrap().0
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/../../spec/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&v).unwrap()
}

fn assert_schema(name: &str, v: &Value) {
    let instance: serde_json::Value = serde_json::from_str(&aep2::json::to_compact(v)).unwrap();
    let validator = schema(name);
    let errors: Vec<String> = validator.iter_errors(&instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{instance}");
}

/// Wire round trip: what the payee receives is the text the payer sent.
fn over_the_wire(c: &ToolCall) -> ToolCall {
    ToolCall::parse(&c.to_text()).unwrap()
}

#[test]
fn intent_mode_round_trip_in_both_carriers() {
    let verifier = Verifier::new(domain());
    let unpaid = call(r#"{"location":"New York"}"#);
    let bound = unpaid.request_hash().unwrap();
    let policy = policy().with_request_hash(bound);
    let sm = signed(bound, 1000, EnvelopeForm::Mvp);
    let accepted = PaymentRequirements::for_policy(&policy, &domain(), 60);

    // First call without payment: a tool result asking for it, not a protocol error.
    let err = verify_call(&over_the_wire(&unpaid), &verifier, &policy, NOW).unwrap_err();
    assert_eq!(err.reason(), Reason::PaymentMissing);
    assert_eq!(jsonrpc_error_code(err.reason()), None);
    let required = payment_required_result(&unpaid, vec![accepted.clone()], &err);
    assert_schema("mcp-payment-required-result.schema.json", &required);
    let read = read_payment_required(&required).unwrap();
    assert_eq!(read.accepts, vec![accepted.clone()]);
    assert_eq!(read.resource.url, "mcp://tool/get_weather");
    assert_eq!(read.error.as_deref(), Some("payment_missing"));

    for (paid, carrier) in [
        (unpaid.clone().with_mandate(&sm.to_json()), Carrier::Mandate),
        (
            unpaid.clone().with_x402_payment(&accepted, &sm.to_json()),
            Carrier::X402Payment,
        ),
        (
            unpaid.clone().with_mandate(&Value::String(sm.encode())),
            Carrier::Mandate,
        ),
    ] {
        assert_schema("mcp-tools-call-request.schema.json", &paid.to_json());
        let received = over_the_wire(&paid);
        assert_eq!(received.request_hash().unwrap(), bound, "_meta is outside the hash");
        let (got, v) = verify_call(&received, &verifier, &policy, NOW).unwrap();
        assert_eq!(got, carrier);
        assert_eq!(v.mandate().amount(), "1000");
        let result = paid_text_result("12°C, clear", got, &PaymentResponse::accepted(&v, None));
        assert_schema("mcp-paid-result.schema.json", &result);
        let Value::Object(o) = &result else { panic!() };
        let Some(Value::Object(meta)) = o.get("_meta") else {
            panic!()
        };
        assert!(meta.get(carrier.response_key()).is_some());
        assert_eq!(meta.len(), 1, "one response key, answering the carrier");
    }
}

#[test]
fn a_mandate_cannot_pay_for_another_call() {
    let verifier = Verifier::new(domain());
    let original = call(r#"{"location":"New York"}"#);
    let sm = signed(original.request_hash().unwrap(), 1000, EnvelopeForm::Native);
    let other = call(r#"{"location":"Paris"}"#).with_mandate(&sm.to_json());
    let policy = policy().with_request_hash(other.request_hash().unwrap());
    let err = verify_call(&over_the_wire(&other), &verifier, &policy, NOW).unwrap_err();
    assert_eq!(err.reason(), Reason::RequestMismatch);
    let (_, report) = check_call(&other, &verifier, Some(NOW));
    let v = report.into_result().unwrap();
    assert_eq!(
        check_request_binding(&other, &v).unwrap_err().reason(),
        Reason::RequestMismatch
    );
    let same = original.with_mandate(&sm.to_json());
    assert!(check_request_binding(&same, &v).is_ok());
}

#[test]
fn order_mode_retry_against_the_payees_quote() {
    let verifier = Verifier::new(domain());
    let quote = PaymentRequest {
        domain: domain(),
        request_id: "mcp-0001".into(),
        payee: AccountId::parse(PAYEE).unwrap(),
        asset: AccountId::parse(USDC).unwrap(),
        amount: U256::from_u64(1000),
        expiry: NOW + 300,
        description: "get_weather".into(),
        settlement_processor: SpId::parse("0x405B10be927D3BF157196C995d8131c6A097673c").unwrap(),
        settlement_window: 300,
    };
    let unpaid = call(r#"{"location":"New York"}"#);
    let required = payment_required_result(
        &unpaid,
        vec![PaymentRequirements::for_quote(&quote, NOW)],
        &Error::from(Reason::PaymentMissing),
    );
    assert_schema("mcp-payment-required-result.schema.json", &required);
    // The payer reads the quote from the result and signs its hash.
    let offered = read_payment_required(&required).unwrap();
    let their_quote = offered.accepts[0].quote().unwrap().unwrap();
    assert_eq!(their_quote.hash(), quote.hash());
    let sm = signed(their_quote.hash(), 1000, EnvelopeForm::Mvp);
    let paid = over_the_wire(&unpaid.clone().with_mandate(&sm.to_json()));
    let (carrier, v) = verify_call_for_quote(&paid, &verifier, &quote, NOW, OrderOptions::default()).unwrap();
    assert_eq!(carrier, Carrier::Mandate);
    assert_eq!(v.mandate().amount(), "1000");
    // After the quote's expiry the same retry is refused.
    let err = verify_call_for_quote(&paid, &verifier, &quote, NOW + 301, OrderOptions::default()).unwrap_err();
    assert_eq!(err.reason(), Reason::QuoteExpired);
    // A mandate bound to the call (Intent Mode) does not pay the quote.
    let intent = signed(unpaid.request_hash().unwrap(), 1000, EnvelopeForm::Mvp);
    let err = verify_call_for_quote(
        &unpaid.with_mandate(&intent.to_json()),
        &verifier,
        &quote,
        NOW,
        OrderOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.reason(), Reason::RequestMismatch);
}

#[test]
fn failures_are_tool_results_and_protocol_faults_are_jsonrpc_errors() {
    let verifier = Verifier::new(domain());
    let c = call(r#"{"location":"New York"}"#);
    let mut forged = signed(c.request_hash().unwrap(), 1000, EnvelopeForm::Mvp);
    if let Mandate::Eip712(m) = &mut forged.mandate {
        m.amount = U256::from_u64(1);
    }
    let err = verify_call(&c.clone().with_mandate(&forged.to_json()), &verifier, &policy(), NOW).unwrap_err();
    assert_eq!(err.reason(), Reason::SignatureInvalid);
    let result = payment_required_result(&c, vec![], &err);
    let Value::Object(o) = &result else { panic!() };
    assert_eq!(o.get("isError"), Some(&Value::Bool(true)));

    let cases = [
        ("{", Reason::JsonInvalid, -32700),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
            Reason::McpRequestInvalid,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":[1]}}"#,
            Reason::McpParamsInvalid,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1,"a":2}}}"#,
            Reason::JsonDuplicateKey,
            -32700,
        ),
    ];
    for (text, reason, code) in cases {
        let e = ToolCall::parse(text).unwrap_err();
        assert_eq!(e.reason(), reason, "{text}");
        let answer = jsonrpc_error(None, &e);
        let Value::Object(a) = &answer else { panic!() };
        let Some(Value::Object(err)) = a.get("error") else {
            panic!()
        };
        assert_eq!(err.get("code"), Some(&Value::Number(code.to_string())), "{text}");
    }
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","arguments":{{"s":"{}"}}}}}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    assert_eq!(ToolCall::parse(&big).unwrap_err().reason(), Reason::HeaderTooLarge);
}

#[test]
fn carriers_are_exclusive_and_typed() {
    let sm = signed([7; 32], 1000, EnvelopeForm::Mvp);
    let accepted = PaymentRequirements::for_policy(&policy(), &domain(), 60);
    let c = call("{}");
    let both = {
        let mut x = c.clone().with_mandate(&sm.to_json());
        let payload = c.clone().with_x402_payment(&accepted, &sm.to_json());
        let p = payload.meta.unwrap().get(X402_PAYMENT_KEY).unwrap().clone();
        x.meta.as_mut().unwrap().insert(X402_PAYMENT_KEY, p);
        x
    };
    assert_eq!(extract(&both).unwrap_err().reason(), Reason::PaymentAmbiguous);
    assert_eq!(extract(&c).unwrap_err().reason(), Reason::PaymentMissing);
    let wrong = c.clone().with_mandate(&Value::from_u64(1));
    assert_eq!(extract(&wrong).unwrap_err().reason(), Reason::FieldType);
    // The builders keep exactly one carrier.
    let switched = c
        .clone()
        .with_mandate(&sm.to_json())
        .with_x402_payment(&accepted, &sm.to_json());
    assert_eq!(extract(&switched).unwrap().carrier, Carrier::X402Payment);
    // An envelope object inside the message is held to the envelope limits.
    let Value::Object(mut env) = sm.to_json() else { panic!() };
    env.insert("memo", Value::String("m".repeat(1025)));
    let big = c.with_mandate(&Value::Object(env));
    assert_eq!(extract(&big).unwrap_err().reason(), Reason::JsonLimitExceeded);
}

#[test]
fn the_hash_follows_rfc8785_number_forms_and_key_order() {
    let h = |text: &str| request_hash("calc", Some(&parse(text, &Limits::AEP2).unwrap())).unwrap();
    let d = |text: &str| request_descriptor("calc", Some(&parse(text, &Limits::AEP2).unwrap())).unwrap();
    assert_eq!(
        d(r#"{"b":1E3,"a":1.50,"c":1e21,"d":-0,"e":0.0000001}"#),
        r#"{"arguments":{"a":1.5,"b":1000,"c":1e+21,"d":0,"e":1e-7},"name":"calc"}"#
    );
    assert_eq!(h(r#"{"a":1.50,"b":[1.0]}"#), h(r#"{"b":[1],"a":15e-1}"#));
    assert_ne!(h(r#"{"a":1.5}"#), h(r#"{"a":"1.5"}"#), "a number is not its text");
    assert_eq!(request_descriptor("t", None).unwrap(), r#"{"arguments":{},"name":"t"}"#);
    assert_eq!(request_hash("t", None).unwrap(), h_named("t", "{}"));
    for bad in ["", &"n".repeat(129)] {
        assert_eq!(
            request_descriptor(bad, None).unwrap_err().reason(),
            Reason::RequestDescriptorInvalid
        );
    }
    assert_eq!(
        request_descriptor("t", Some(&Value::from_u64(1))).unwrap_err().reason(),
        Reason::RequestDescriptorInvalid
    );
    // The spec's worked example (aep2.md#mcp-request-hash).
    let example = call(r#"{"location": "New York", "units": "metric"}"#);
    assert_eq!(
        example.descriptor().unwrap(),
        r#"{"arguments":{"location":"New York","units":"metric"},"name":"get_weather"}"#
    );
    assert_eq!(
        aep2::codec::hex_encode_0x(&example.request_hash().unwrap()),
        EXAMPLE_HASH
    );
}

fn h_named(name: &str, args: &str) -> [u8; 32] {
    request_hash(name, Some(&parse(args, &Limits::AEP2).unwrap())).unwrap()
}

/// The hash printed in the spec's worked example, computed independently (Python `hashlib`
/// over the tag and the 75-byte descriptor), so a change to the tag or the descriptor shows.
const EXAMPLE_HASH: &str = "0x56f5eaa3fbbe921127de927f871d0c26f5036f81aa01d0399f027dd4988ec386";
