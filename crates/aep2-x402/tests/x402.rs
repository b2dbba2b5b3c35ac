//! End-to-end x402 binding: 402 with a quote, payment in each carrier, verification against
//! the quote, PAYMENT-RESPONSE; every emitted object validated against its schema.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2::codec::{base64_decode, hex_encode_0x};
use aep2::crypto::secp256k1::SecretKey;
use aep2::{
    AccountId, Domain, Eip712Domain, EnvelopeForm, Error, EvmAddress, EvmMandate, Mandate, OrderOptions, PayeePolicy,
    PayerKey, PaymentRequest, Reason, ReceiptKind, SpId, SpKey, U256, Verifier, sign_mandate,
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
            // Without a receipt the payee states only that it accepted the mandate; with the
            // SP's receipt, that the payment is receipted. Never a transaction.
            let receipt = sp_key()
                .sign_receipt(ReceiptKind::MvpEvm, &v.digest, NOW + 300, None)
                .unwrap();
            for (response, status) in [
                (PaymentResponse::accepted(&v, None), "accepted"),
                (PaymentResponse::accepted(&v, Some(&receipt)), "receipted"),
            ] {
                assert_eq!(response.status(), status);
                let text = response.encode();
                assert_valid("x402-payment-response.schema.json", &text);
                let json = decoded(&text);
                assert_eq!(json["success"], true);
                assert_eq!(json["transaction"], "");
                assert_eq!(json["extra"]["status"], status);
                assert_eq!(json["extra"].get("settleBy"), None);
                let back = PaymentResponse::decode(&text).unwrap();
                assert_eq!(back, response);
                assert_eq!(back.mandate_id, hex_encode_0x(&v.digest.id));
            }
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

fn sp_key() -> SpKey {
    SpKey::Secp256k1(SecretKey::from_bytes(&[0x22; 32]).unwrap())
}

fn b64(v: &serde_json::Value) -> String {
    aep2::codec::base64_encode(v.to_string().as_bytes())
}

#[test]
fn payment_response_status_matches_the_receipt() {
    let id = format!("0x{}", "ab".repeat(32));
    let receipt = serde_json::json!({"sp": "0x405B10be927D3BF157196C995d8131c6A097673c"});
    let response = |status: &str, receipt: Option<&serde_json::Value>| {
        let mut extra = serde_json::json!({ "mandateId": id, "status": status });
        if let Some(r) = receipt {
            extra["receipt"] = r.clone();
        }
        serde_json::json!({
            "success": true,
            "transaction": "",
            "network": "eip155:84532",
            "payer": "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A",
            "amount": "1000",
            "extra": extra,
        })
    };
    let validator = schema("x402-payment-response.schema.json");
    for (json, ok) in [
        (response("accepted", None), true),
        (response("receipted", Some(&receipt)), true),
        (response("receipted", None), false),
        (response("accepted", Some(&receipt)), false),
        (response("settled", Some(&receipt)), false),
        (response("receipted", Some(&serde_json::json!("0xabc"))), false),
    ] {
        assert_eq!(validator.is_valid(&json), ok, "schema: {json}");
        let decoded = PaymentResponse::decode(&b64(&json));
        assert_eq!(decoded.is_ok(), ok, "decode: {json}");
        if let Err(e) = decoded {
            assert_eq!(e.code(), "field_type");
        }
    }
    let mut with_tx = response("receipted", Some(&receipt));
    with_tx["transaction"] = "0x01".into();
    assert!(!validator.is_valid(&with_tx));
    assert_eq!(
        PaymentResponse::decode(&b64(&with_tx)).unwrap_err().code(),
        "field_type"
    );
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

const PAYEE: &str = "0xaAD167617dF02Dd30208722c88d9027a2fDD8812";

#[test]
fn mvp_bodies() {
    let body = MvpBody::payment_required(&U256::from_u64(1000), 6, "USD", PAYEE);
    let text = body.to_text();
    assert_eq!(
        text,
        r#"{"error":"PAYMENT_REQUIRED","message":"No payment: send PAYMENT-SIGNATURE (x402 v2), X-PAYMENT (x402 v1) or X-Payment-Mandate (FluxA MVP). Price: 0.001 USD.","price":0.001,"currency":"USD","payee":"0xaAD167617dF02Dd30208722c88d9027a2fDD8812","reason":"payment_missing"}"#
    );
    assert_eq!(MvpBody::parse(text.as_bytes()).unwrap(), body);
    assert_eq!(body.x402_v1(), None, "no x402 v1 terms without with_x402_v1");
    let err = MvpBody::parse(br#"{"error":"INVALID_PAYEE","message":"x","error":"y"}"#).unwrap_err();
    assert_eq!(err.code(), "json_duplicate_key");
    assert_eq!(mvp_error_code(aep2::Reason::PayeeMismatch), "INVALID_PAYEE");
}

#[test]
fn rejection_bodies_name_the_carrier_and_the_status_dependent_code() {
    let expired = Error::new(Reason::Expired, "deadline 1799999999 is before now 1800000000");
    let b = MvpBody::rejection_via(&expired, Some(Carrier::PaymentSignature));
    assert_eq!(
        b.to_text(),
        r#"{"error":"EXPIRED_MANDATE","message":"PAYMENT-SIGNATURE: expired: deadline 1799999999 is before now 1800000000","reason":"expired"}"#
    );
    for (carrier, prefix) in [
        (Carrier::PaymentSignature, "PAYMENT-SIGNATURE: "),
        (Carrier::XPayment, "X-PAYMENT: "),
        (Carrier::XPaymentMandate, "X-Payment-Mandate: "),
    ] {
        let m = MvpBody::rejection_with_status(&expired, 402, Some(carrier)).message;
        assert_eq!(m.strip_prefix(prefix), Some(expired.to_string().as_str()), "{m}");
    }
    // No carrier read: the message is the reason code and the detail; rejection() is that form.
    let none = MvpBody::rejection_via(&expired, None);
    assert_eq!(none.message, "expired: deadline 1799999999 is before now 1800000000");
    assert_eq!(MvpBody::rejection(&expired), none);
    // A detail-less error has no dangling separator.
    let bare = MvpBody::rejection_via(&Error::from(Reason::SignatureInvalid), Some(Carrier::XPayment));
    assert_eq!(
        (bare.error.as_str(), bare.message.as_str()),
        ("INVALID_SIGNATURE", "X-PAYMENT: signature_invalid")
    );

    for (reason, status, code) in [
        (Reason::RouteUnknown, 404, "NOT_FOUND"),
        (Reason::RouteUnknown, 405, "METHOD_NOT_ALLOWED"),
        (Reason::ContentTypeUnsupported, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (Reason::HeaderTooLarge, 413, "PAYLOAD_TOO_LARGE"),
        (Reason::HeaderTooLarge, 400, "PAYLOAD_TOO_LARGE"),
        (Reason::HeaderTooLarge, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE"),
        (Reason::RequestTimeout, 408, "REQUEST_TIMEOUT"),
        (Reason::SettlementUnavailable, 503, "SETTLEMENT_UNAVAILABLE"),
        (Reason::ReplayStoreUnavailable, 503, "INTERNAL_ERROR"),
        (Reason::InsufficientFunds, 402, "INSUFFICIENT_FUNDS"),
        (Reason::AmountInsufficient, 402, "INSUFFICIENT_PAYMENT"),
        (Reason::NonceReused, 402, "NONCE_USED"),
        (Reason::SignatureHighS, 402, "INVALID_SIGNATURE"),
        (Reason::DomainMismatch, 402, "INVALID_PAYMENT"),
        (Reason::PaymentAmbiguous, 400, "INVALID_PAYMENT"),
    ] {
        let b = MvpBody::rejection_with_status(&Error::from(reason), status, None);
        assert_eq!(b.error, code, "{reason} {status}");
        assert_eq!(
            b.extra.get("reason"),
            Some(&aep2::json::Value::String(reason.code().into()))
        );
        assert_eq!(mvp_error_code_for(reason, status), code);
    }
    // Without a status, route_unknown is the 404 code.
    assert_eq!(
        MvpBody::rejection(&Error::from(Reason::RouteUnknown)).error,
        "NOT_FOUND"
    );
}

fn assert_valid_json(name: &str, v: &serde_json::Value) {
    let errors: Vec<String> = schema(name).iter_errors(v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{v}");
}

#[test]
fn one_402_body_for_mvp_and_x402_v1_clients() {
    let q = quote();
    let policy = PayeePolicy::new(q.payee, q.asset, q.amount).with_settlement_window(305);
    let resource = ResourceInfo {
        url: "https://api.example.com/report".into(),
        description: Some("Market report".into()),
        mime_type: None,
    };
    for accepts in [
        PaymentRequirements::for_policy(&policy, &domain(), 60),
        PaymentRequirements::for_quote(&q, NOW),
    ] {
        let required = PaymentRequired {
            error: Some("payment_missing".into()),
            resource: resource.clone(),
            accepts: vec![accepts.clone()],
        };
        let body = MvpBody::payment_required_for(&required, &q.amount, 6, "USD", PAYEE);
        let text = body.to_text();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_valid_json("x402-payment-required-v1.schema.json", &json);
        // What an x402 v1 client reads.
        assert_eq!(json["x402Version"], 1);
        assert!(
            text.starts_with(r#"{"x402Version":1,"error":"PAYMENT_REQUIRED","#),
            "{text}"
        );
        let entry = &json["accepts"][0];
        assert_eq!(entry["scheme"], "aep2");
        assert_eq!(entry["maxAmountRequired"], "1000");
        assert_eq!(entry["resource"], "https://api.example.com/report");
        assert_eq!(entry["description"], "Market report");
        assert_eq!(entry["mimeType"], "");
        assert_eq!(entry["payTo"], PAYEE);
        assert_eq!(entry["extra"], decoded(&required.encode())["accepts"][0]["extra"]);
        // What an MVP client reads.
        assert_eq!(json["error"], "PAYMENT_REQUIRED");
        assert_eq!(json["price"], 0.001);
        assert_eq!(json["currency"], "USD");
        assert_eq!(json["payee"], PAYEE);
        assert_eq!(json["reason"], "payment_missing");
        // Both parse back, and the v1 entry is the header's entry.
        let parsed = MvpBody::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed, body);
        assert_eq!(parsed.to_text(), text);
        let v1 = PaymentRequiredV1::parse_body(text.as_bytes()).unwrap();
        assert_eq!(parsed.x402_v1(), Some(Ok(v1.clone())));
        assert_eq!(v1.error.as_deref(), Some("PAYMENT_REQUIRED"));
        assert_eq!(v1.accepts, required.accepts_v1());
        assert_eq!(v1.accepts[0].to_v2(), accepts);
        assert_eq!(
            v1.accepts[0].quote().map(|r| r.unwrap().hash()),
            accepts.quote().map(|r| r.unwrap().hash())
        );
        assert_eq!(
            PaymentRequirementsV1::from_json(&aep2::json::Value::Object(v1.accepts[0].to_json())).unwrap(),
            v1.accepts[0]
        );
        // A 402 rejection carries the same terms for v1 clients.
        let e = Error::new(Reason::AmountInsufficient, "999 < 1000");
        let rejected = MvpBody::rejection_with_status(&e, 402, Some(Carrier::XPayment)).with_x402_v1(&required);
        let rj: serde_json::Value = serde_json::from_str(&rejected.to_text()).unwrap();
        assert_valid_json("x402-payment-required-v1.schema.json", &rj);
        assert_eq!(rj["error"], "INSUFFICIENT_PAYMENT");
        assert_eq!(rj["message"], "X-PAYMENT: amount_insufficient: 999 < 1000");
        assert_eq!(rj["accepts"], json["accepts"]);
    }
}

#[test]
fn v1_terms_are_read_strictly() {
    let q = quote();
    let resource = ResourceInfo {
        url: "https://api.example.com/report".into(),
        description: None,
        mime_type: Some("application/json".into()),
    };
    let entry = PaymentRequirements::for_quote(&q, NOW).to_v1(&resource);
    assert_eq!(entry.description, "");
    assert_eq!(entry.mime_type.as_deref(), Some("application/json"));
    let mut json: serde_json::Value =
        serde_json::from_str(&aep2::json::to_compact(&aep2::json::Value::Object(entry.to_json()))).unwrap();
    let read = |v: &serde_json::Value| {
        PaymentRequiredV1::parse_body(
            serde_json::json!({"x402Version": 1, "accepts": [v]})
                .to_string()
                .as_bytes(),
        )
    };
    assert_eq!(read(&json).unwrap().accepts, vec![entry.clone()]);
    // x402 v1 allows null for outputSchema and extra.
    json["outputSchema"] = serde_json::Value::Null;
    assert_eq!(read(&json).unwrap().accepts[0], entry);
    json["amount"] = "1000".into();
    assert_eq!(read(&json).unwrap_err().code(), "unknown_field");
    json.as_object_mut().unwrap().remove("amount");
    json.as_object_mut().unwrap().remove("resource");
    assert_eq!(read(&json).unwrap_err().code(), "missing_field");
    let version_2 = serde_json::json!({"x402Version": 2, "accepts": []}).to_string();
    assert_eq!(
        PaymentRequiredV1::parse_body(version_2.as_bytes()).unwrap_err().code(),
        "x402_version_unsupported"
    );
}

#[test]
fn schema_examples_are_valid() {
    for name in [
        "x402-payment-required-v1.schema.json",
        "x402-payment-response.schema.json",
    ] {
        let path = format!("{}/../../spec/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let examples = v["examples"].as_array().cloned().unwrap_or_default();
        assert!(!examples.is_empty(), "{name} has examples");
        for e in examples {
            assert_valid_json(name, &e);
        }
    }
}
