//! End-to-end x402 binding: 402 with a quote, payment in each carrier, verification against
//! the quote, PAYMENT-RESPONSE; every emitted object validated against its schema.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2::codec::{base64_decode, hex_encode_0x};
use aep2::crypto::secp256k1::SecretKey;
use aep2::{
    AccountId, Domain, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, Mandate, OrderOptions, PayeePolicy,
    PayerKey, PaymentRequest, SpId, U256, Verifier, sign_mandate,
};
use aep2_x402::*;

const NOW: u64 = 1_800_000_000;

fn domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912").unwrap(),
    })
}

fn quote() -> PaymentRequest {
    PaymentRequest {
        domain: domain(),
        request_id: "order-2026-0001".into(),
        payee: AccountId::parse("0xaAD167617dF02Dd30208722c88d9027a2fDD8812").unwrap(),
        asset: AccountId::parse("0x036CbD53842c5426634e7929541eC2318f3dCF7e").unwrap(),
        amount: U256::from_u64(1000),
        expiry: NOW + 300,
        description: "Market report".into(),
        settlement_processor: SpId::parse("0x405B10be927D3BF157196C995d8131c6A097673c").unwrap(),
        settlement_window: 300,
    }
}

fn signed(q: &PaymentRequest, form: EnvelopeForm) -> aep2::SignedMandate {
    let key = SecretKey::from_bytes(&[0x11; 32]).unwrap();
    let (AccountId::Evm(payee), AccountId::Evm(token)) = (q.payee, q.asset) else {
        unreachable!()
    };
    let m = Mandate::Eip712(EvmMandate {
        owner: key.address(),
        token,
        payee,
        amount: q.amount,
        nonce: U256::from_u64(7),
        deadline: NOW + 600,
        reference: q.hash(),
    });
    sign_mandate(&m, &domain(), &PayerKey::Secp256k1(key), form).unwrap().0
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/../../spec/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&v).unwrap()
}

fn decoded(header: &str) -> serde_json::Value {
    serde_json::from_slice(&base64_decode(header).unwrap()).unwrap()
}

fn assert_valid(name: &str, header: &str) {
    let v = decoded(header);
    let errors: Vec<String> = schema(name).iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{v}");
}

#[test]
fn order_mode_round_trip_in_every_carrier() {
    let q = quote();
    let required = PaymentRequired {
        error: Some("PAYMENT-SIGNATURE header is required".into()),
        resource: ResourceInfo {
            url: "https://api.example.com/report".into(),
            description: Some("Market report".into()),
            mime_type: Some("application/json".into()),
        },
        accepts: vec![PaymentRequirements::for_quote(&q, NOW)],
    };
    let header = required.encode();
    assert_valid("x402-payment-required.schema.json", &header);
    let parsed = PaymentRequired::decode(&header).unwrap();
    assert_eq!(parsed, required);
    let accepted = &parsed.accepts[0];
    assert_eq!(accepted.network, "eip155:84532");
    assert_eq!(accepted.quote().unwrap().unwrap().hash(), q.hash());

    let verifier = Verifier::new(domain());
    for form in [EnvelopeForm::Mvp, EnvelopeForm::Native] {
        let sm = signed(&q, form);
        let env = sm.to_json();
        let v2 = payment_signature(accepted, &env);
        let v1 = x_payment("eip155:84532", &env);
        assert_valid("x402-payment-payload-v2.schema.json", &v2);
        assert_valid("x402-payment-payload-v1.schema.json", &v1);
        let mvp = sm.encode();
        for (name, value, carrier) in [
            ("payment-signature", v2.as_str(), Carrier::PaymentSignature),
            ("X-Payment", v1.as_str(), Carrier::XPayment),
            ("x-payment-mandate", mvp.as_str(), Carrier::XPaymentMandate),
        ] {
            let headers = [("Accept", "application/json"), (name, value)];
            let (c, v) = verify_headers_for_quote(headers, &verifier, &q, NOW, OrderOptions::default()).unwrap();
            assert_eq!(c, carrier);
            let response = PaymentResponse::accepted(&v, None);
            let text = response.encode();
            assert_valid("x402-payment-response.schema.json", &text);
            let back = PaymentResponse::decode(&text).unwrap();
            assert_eq!(back, response);
            assert_eq!(back.mandate_id, hex_encode_0x(&v.digest.id));
        }
        // Two carriers at once are ambiguous, whatever they carry.
        let err = extract([("PAYMENT-SIGNATURE", v2.as_str()), ("X-Payment-Mandate", mvp.as_str())]).unwrap_err();
        assert_eq!(err.code(), "payment_ambiguous");
        // A v1 payload for another network.
        let other = x_payment("eip155:8453", &env);
        let err = verify_headers_for_quote(
            [("X-PAYMENT", other.as_str())],
            &verifier,
            &q,
            NOW,
            OrderOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "x402_network_mismatch");
        assert_eq!(http_status(err.reason()), 402);
    }
    let err = extract([("Accept", "*/*")]).unwrap_err();
    assert_eq!(err.code(), "payment_missing");
    assert_eq!(MvpBody::rejection(&err).error, "PAYMENT_REQUIRED");
}

#[test]
fn intent_mode_with_request_binding() {
    let q = quote();
    let hash = request_hash(
        "post",
        "https://API.example.com:443/v1/quote?pair=ETH-USD#x",
        br#"{"symbol":"ETH"}"#,
    )
    .unwrap();
    assert_eq!(
        hex_encode_0x(&hash),
        "0x862632d18accec74fe0f3930dd482802cb7e390c4a58a3db30788c48ba1059fa"
    );
    let policy = PayeePolicy::new(q.payee, q.asset, q.amount).with_request_hash(hash);
    let verifier = Verifier::new(domain());
    let requirements = PaymentRequirements::for_policy(&policy, &domain(), 60);
    // The quote-bound mandate's ref is the quote hash, not this request's hash.
    let env = signed(&q, EnvelopeForm::Mvp).to_json();
    let v2 = payment_signature(&requirements, &env);
    let err = verify_headers([("PAYMENT-SIGNATURE", v2.as_str())], &verifier, &policy, NOW).unwrap_err();
    assert_eq!(err.code(), "request_mismatch");
    let unbound = PayeePolicy::new(q.payee, q.asset, q.amount);
    assert!(verify_headers([("PAYMENT-SIGNATURE", v2.as_str())], &verifier, &unbound, NOW).is_ok());
}

#[test]
fn request_descriptor_rules() {
    let d = request_descriptor("get", "http://Example.COM:80", b"").unwrap();
    assert_eq!(
        d,
        r#"{"bodySha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","method":"GET","url":"http://example.com/"}"#
    );
    for (m, u) in [
        ("GE T", "http://h/"),
        ("", "http://h/"),
        ("GET", "mailto:x"),
        ("GET", "http://h/ä"),
    ] {
        assert_eq!(
            request_hash(m, u, b"").unwrap_err().code(),
            "request_descriptor_invalid"
        );
    }
}

#[test]
fn mvp_bodies() {
    let body = MvpBody::payment_required(
        &U256::from_u64(1000),
        6,
        "USD",
        "0xaAD167617dF02Dd30208722c88d9027a2fDD8812",
    );
    let text = body.to_text();
    assert_eq!(
        text,
        r#"{"error":"PAYMENT_REQUIRED","message":"Missing X-Payment-Mandate header. Price: 0.001 USD required.","price":0.001,"currency":"USD","payee":"0xaAD167617dF02Dd30208722c88d9027a2fDD8812"}"#
    );
    assert_eq!(MvpBody::parse(text.as_bytes()).unwrap(), body);
    let err = MvpBody::parse(br#"{"error":"INVALID_PAYEE","message":"x","error":"y"}"#).unwrap_err();
    assert_eq!(err.code(), "json_duplicate_key");
    assert_eq!(mvp_error_code(aep2::Reason::PayeeMismatch), "INVALID_PAYEE");
}
