//! The payee layer and service against the real settlement processor on loopback
//! (spec `aep2.md#x402-payee-processing`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::codec::base64_decode;
use aep2::json::{Object, Value, to_compact};
use aep2::{EvmAddress, PaymentRequest, U256};
use aep2_axum::agent::{Reply, check_receipt};
use aep2_x402::{
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, PaymentRequired, PaymentResponse, X_PAYMENT_MANDATE,
};
use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/../../spec/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&v).unwrap()
}

fn header_json(value: &str) -> serde_json::Value {
    let bytes = base64_decode(value).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn assert_rejected(reply: &Reply, status: u16, code: &str) {
    assert_eq!(
        (reply.status, reply.reason().as_deref()),
        (status, Some(code)),
        "body {}",
        String::from_utf8_lossy(&reply.body)
    );
}

/// The receipt in `PAYMENT-RESPONSE`, verified against the SP and the mandate.
fn served_receipt(reply: &Reply, signed: &aep2::SignedMandate) -> aep2::Receipt {
    assert_eq!(reply.status, 200, "body {}", String::from_utf8_lossy(&reply.body));
    let header = reply.header(PAYMENT_RESPONSE).expect("PAYMENT-RESPONSE");
    assert!(schema("x402-payment-response.schema.json").is_valid(&header_json(header)));
    let response = PaymentResponse::decode(header).unwrap();
    assert_eq!(response.amount, PRICE.to_string());
    check_receipt(&response.receipt.expect("a receipt"), signed, &domain(), &sp_key().id()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_402_validates_against_the_schema_in_both_modes() {
    let env = env("shape").await;
    let validator = schema("x402-payment-required.schema.json");
    for path in ["/paid/intent", "/paid/order", "/paid/mvp"] {
        let reply = env.get(path, &[]).await;
        assert_rejected(&reply, 402, "payment_missing");
        let v = header_json(reply.header(PAYMENT_REQUIRED).expect("PAYMENT-REQUIRED"));
        assert!(validator.is_valid(&v), "{path}: {v}");
        let required = PaymentRequired::decode(reply.header(PAYMENT_REQUIRED).unwrap()).unwrap();
        assert_eq!(required.error.as_deref(), Some("payment_missing"));
        assert_eq!(required.resource.url, env.url(path));
        let quote = required.accepts[0].extra.as_ref().unwrap().get("quote").is_some();
        assert_eq!(quote, path == "/paid/order", "{path}");
        // The MVP 402 body, for MVP clients.
        let body = reply.json().unwrap();
        let Value::Object(o) = body else { panic!() };
        assert_eq!(o.get("error"), Some(&Value::String("PAYMENT_REQUIRED".into())));
        assert_eq!(o.get("price"), Some(&Value::Number("0.001".into())));
        let expected = if path == "/paid/mvp" { mvp_payee() } else { payee() };
        assert_eq!(o.get("payee"), Some(&Value::String(expected.to_checksum())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_request_is_served_with_a_verifying_receipt_and_a_replay_is_refused() {
    let env = env("paid").await;
    let (header, signed) = env.intent_header("/paid/intent");
    let reply = env.get("/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await;
    let receipt = served_receipt(&reply, &signed);
    assert!(receipt.enqueue_deadline <= signed.mandate.deadline());
    let Value::Object(body) = reply.json().unwrap() else {
        panic!()
    };
    assert_eq!(
        body.get("paidBy"),
        Some(&Value::String(env.payer.address().to_checksum()))
    );
    // x402 clients get no MVP `payment` member.
    assert!(body.get("payment").is_none());

    let again = env.get("/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await;
    assert_rejected(&again, 402, "mandate_replayed");
    assert!(again.header(PAYMENT_REQUIRED).is_some(), "a 402 states the terms");
    assert!(again.header(PAYMENT_RESPONSE).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandates_that_do_not_pay_are_refused_with_their_codes() {
    let env = env("refusals").await;
    let url = env.url("/paid/intent");
    let bound = aep2_x402::request_hash("GET", &url, b"").unwrap();
    let now = unix_now();
    let t = terms();
    let send = |signed: aep2::SignedMandate| {
        let header = aep2_x402::payment_signature(&t, &signed.to_json());
        let env = &env;
        async move { env.get("/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await }
    };
    let sign = |payee: EvmAddress, amount: u64, deadline: u64, reference: [u8; 32]| {
        env.payer
            .sign(payee, usdc(), U256::from_u64(amount), deadline, reference)
            .unwrap()
    };
    let cases = [
        (
            "under-payment",
            sign(payee(), PRICE - 1, now + 600, bound),
            "amount_insufficient",
        ),
        (
            "over-payment (exact price)",
            sign(payee(), PRICE + 1, now + 600, bound),
            "amount_not_exact",
        ),
        (
            "wrong payee",
            sign(EvmAddress([0x42; 20]), PRICE, now + 600, bound),
            "payee_mismatch",
        ),
        ("expired", sign(payee(), PRICE, now - 60, bound), "expired"),
        (
            "deadline inside the settlement window",
            sign(payee(), PRICE, now + 100, bound),
            "deadline_too_soon",
        ),
        (
            "deadline beyond the horizon",
            sign(payee(), PRICE, now + 7200, bound),
            "deadline_too_far",
        ),
        (
            "bound to another request",
            sign(payee(), PRICE, now + 600, [7; 32]),
            "request_mismatch",
        ),
    ];
    for (what, signed, code) in cases {
        let reply = send(signed).await;
        assert_eq!(reply.reason().as_deref(), Some(code), "{what}");
        assert_eq!(reply.status, 402, "{what}");
    }
    // A bad signature: the envelope's owner is not the signer.
    let signed = sign(payee(), PRICE, now + 600, bound);
    let mut json = signed.to_json();
    if let Value::Object(o) = &mut json
        && let Some(Value::Object(m)) = o.get("mandate").cloned()
    {
        let m = m.with("owner", Value::String(EvmAddress([0x55; 20]).to_checksum()));
        o.insert("mandate", Value::Object(m));
    }
    let header = aep2_x402::payment_signature(&t, &json);
    let reply = env.get("/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await;
    assert_rejected(&reply, 402, "signature_invalid");
    // None of these consumed anything: the payer's correct mandate still pays.
    let (header, signed) = env.intent_header("/paid/intent");
    served_receipt(&env.get("/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await, &signed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mvp_client_is_answered_in_the_mvp_convention() {
    let env = env("mvp").await;
    let reply = env.get("/paid/mvp", &[]).await;
    assert_rejected(&reply, 402, "payment_missing");
    // A mandate made for a request-bound route pays another account: refused here, unconsumed.
    let (bound, bound_signed) = env.intent_header("/paid/intent");
    let plain = bound_signed.encode();
    let reply = env.get("/paid/mvp", &[(X_PAYMENT_MANDATE, &plain)]).await;
    assert_rejected(&reply, 402, "payee_mismatch");
    served_receipt(
        &env.get("/paid/intent", &[(PAYMENT_SIGNATURE, &bound)]).await,
        &bound_signed,
    );
    let mut mvp_terms = terms();
    mvp_terms.pay_to = mvp_payee().to_checksum();
    let signed = env.payer.sign_for(&mvp_terms, [3; 32], unix_now() + 600).unwrap();
    let header = signed.encode();
    let reply = env.get("/paid/mvp", &[(X_PAYMENT_MANDATE, &header)]).await;
    served_receipt(&reply, &signed);
    let Value::Object(body) = reply.json().unwrap() else {
        panic!()
    };
    let Some(Value::Object(payment)) = body.get("payment") else {
        panic!("no payment member: {}", String::from_utf8_lossy(&reply.body))
    };
    assert_eq!(payment.get("status"), Some(&Value::String("enqueued".into())));
    check_receipt(payment.get("spReceipt").unwrap(), &signed, &domain(), &sp_key().id()).unwrap();
    // MVP error bodies name the MVP code and the reason.
    let reply = env.get("/paid/mvp", &[(X_PAYMENT_MANDATE, &header)]).await;
    assert_rejected(&reply, 402, "mandate_replayed");
    let Value::Object(body) = reply.json().unwrap() else {
        panic!()
    };
    assert_eq!(body.get("error"), Some(&Value::String("DUPLICATE_MANDATE".into())));
}

fn quote_of(reply: &Reply) -> (aep2_x402::PaymentRequirements, PaymentRequest) {
    let required = PaymentRequired::decode(reply.header(PAYMENT_REQUIRED).unwrap()).unwrap();
    let offer = required.accepts[0].clone();
    let quote = PaymentRequest::from_json(offer.extra.as_ref().unwrap().get("quote").unwrap()).unwrap();
    (offer, quote)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_mode_quotes_then_accepts_one_mandate_per_quote() {
    let env = env("order").await;
    let first = env.get("/paid/order", &[]).await;
    assert_rejected(&first, 402, "payment_missing");
    let (offer, quote) = quote_of(&first);
    assert!(
        schema("payment-request.schema.json")
            .is_valid(&serde_json::from_str(&to_compact(&Value::Object(quote.to_json()))).unwrap())
    );
    assert_eq!(quote.settlement_processor, sp_key().id());
    let deadline = unix_now() + 600;

    // A mandate for a cheaper quote the client made up: no such quote at this payee.
    let mut cheaper = quote.clone();
    cheaper.amount = U256::from_u64(1);
    let mut cheap_offer = offer.clone();
    cheap_offer.amount = "1".into();
    let forged = env.payer.sign_for(&cheap_offer, cheaper.hash(), deadline).unwrap();
    let reply = env
        .get(
            "/paid/order",
            &[(
                PAYMENT_SIGNATURE,
                &aep2_x402::payment_signature(&cheap_offer, &forged.to_json()),
            )],
        )
        .await;
    assert_rejected(&reply, 402, "request_mismatch");

    let signed = env.payer.sign_for(&offer, quote.hash(), deadline).unwrap();
    let header = aep2_x402::payment_signature(&offer, &signed.to_json());
    // The quote is for GET /paid/order, not for the Intent route.
    let reply = env.get("/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await;
    assert_rejected(&reply, 402, "request_mismatch");
    served_receipt(&env.get("/paid/order", &[(PAYMENT_SIGNATURE, &header)]).await, &signed);
    // The mandate that paid the quote, presented again: a replay, named as one.
    let reply = env.get("/paid/order", &[(PAYMENT_SIGNATURE, &header)]).await;
    assert_rejected(&reply, 402, "mandate_replayed");

    // One order, one payment: another mandate (new nonce) for the same quote is refused.
    let second = env.payer.sign_for(&offer, quote.hash(), deadline).unwrap();
    let header = aep2_x402::payment_signature(&offer, &second.to_json());
    let reply = env.get("/paid/order", &[(PAYMENT_SIGNATURE, &header)]).await;
    assert_rejected(&reply, 402, "request_mismatch");
    // ... and the 402 offers a fresh quote, which pays.
    let (offer, quote2) = quote_of(&reply);
    assert_ne!(quote2.hash(), quote.hash());
    let third = env.payer.sign_for(&offer, quote2.hash(), deadline).unwrap();
    let header = aep2_x402::payment_signature(&offer, &third.to_json());
    served_receipt(&env.get("/paid/order", &[(PAYMENT_SIGNATURE, &header)]).await, &third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_input_gets_a_4xx_with_a_reason_code() {
    let env = env("malformed").await;
    let (header, _) = env.intent_header("/paid/intent");
    let big = "A".repeat(9000);
    let huge = "b".repeat(20_000);
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![(PAYMENT_SIGNATURE, "not base64!")], 400, "base64_invalid"),
        (vec![(PAYMENT_SIGNATURE, "e30=")], 400, "missing_field"),
        (
            vec![(PAYMENT_SIGNATURE, &header), (X_PAYMENT_MANDATE, &header)],
            400,
            "payment_ambiguous",
        ),
        (vec![(PAYMENT_SIGNATURE, &big)], 400, "header_too_large"),
        (vec![("x-padding", &huge)], 431, "header_too_large"),
    ];
    for (headers, status, code) in cases {
        let reply = env.get("/paid/intent", &headers).await;
        assert_rejected(&reply, status, code);
    }
    // Bodies: declared too large, and larger than declared limit while streaming.
    let body = vec![b'x'; 70_000];
    let reply = env
        .post("/paid/intent", &[("content-type", "application/json")], &body)
        .await;
    assert_rejected(&reply, 413, "header_too_large");
    // Answered before the body was read: the connection is not reused.
    assert_eq!(reply.header("connection"), Some("close"));
    // JSON-RPC endpoints: content type, size, syntax.
    let reply = env.post("/mcp", &[("content-type", "text/plain")], b"{}").await;
    assert_rejected(&reply, 415, "content_type_unsupported");
    let reply = env
        .post("/mcp", &[("content-type", "application/json")], b"{not json")
        .await;
    // Streamable HTTP: input the server cannot accept is an HTTP error, with the JSON-RPC error.
    assert_eq!(reply.status, 400);
    assert!(
        String::from_utf8_lossy(&reply.body).contains("-32700"),
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let reply = env
        .post(
            "/a2a",
            &[("content-type", "application/json")],
            br#"{"jsonrpc":"2.0","id":1,"method":"tasks/cancel"}"#,
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        (v["error"]["code"].as_i64(), v["id"].as_i64()),
        (Some(-32601), Some(1)),
        "{v}"
    );
    let reply = env.get("/nowhere", &[]).await;
    assert_rejected(&reply, 404, "route_unknown");
    // Still alive and paying.
    let (header, signed) = env.intent_header("/paid/intent");
    served_receipt(&env.get("/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await, &signed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_does_not_block_others_and_times_out() {
    let env = env("slow").await;
    let addr = env.base.trim_start_matches("http://").to_owned();
    // A client that declares a body and never sends it.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        b"POST /paid/intent HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    // Others are served meanwhile.
    let started = Instant::now();
    let (header, signed) = env.intent_header("/paid/intent");
    served_receipt(&env.get("/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await, &signed);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // The slow one gets 408 request_timeout once the body timeout (1 s) passes.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = slow.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to the slow client");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_down_is_503_and_the_same_mandate_pays_once_it_is_back() {
    let dir = temp_dir("sp-down");
    // A port with nothing listening on it (yet).
    let port = reserved_addr();
    let config = payee_config(port, &dir);
    let (base, _stop) = start_payee(&config).await;
    let payer_key = key("payer-sp-down");
    let payer = aep2_axum::agent::Payer::new(payer_key.clone(), domain(), 1);
    let http = aep2_axum::agent::HttpClient::new();
    let url = format!("{base}/paid/intent");
    let hash = aep2_x402::request_hash("GET", &url, b"").unwrap();
    let signed = payer.sign_for(&terms(), hash, unix_now() + 600).unwrap();
    let header = aep2_x402::payment_signature(&terms(), &signed.to_json());
    let reply = http
        .send("GET", &url, &[(PAYMENT_SIGNATURE, &header)], b"")
        .await
        .unwrap();
    assert_rejected(&reply, 503, "settlement_unavailable");
    assert!(
        reply.header(PAYMENT_RESPONSE).is_none(),
        "nothing is served without a receipt"
    );

    // The SP comes up on that port; the same mandate is forwarded again and served once.
    let _sp = start_sp(&dir, port, &[(&payer_key, 10_000)]).await;
    let reply = http
        .send("GET", &url, &[(PAYMENT_SIGNATURE, &header)], b"")
        .await
        .unwrap();
    served_receipt(&reply, &signed);
    let reply = http
        .send("GET", &url, &[(PAYMENT_SIGNATURE, &header)], b"")
        .await
        .unwrap();
    assert_rejected(&reply, 402, "mandate_replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sp_refusal_burns_the_mandate() {
    let dir = temp_dir("burn");
    let payer_key = key("payer-burn");
    // Funded with less than the price.
    let sp = start_sp(&dir, "127.0.0.1:0".parse().unwrap(), &[(&payer_key, PRICE - 1)]).await;
    let (base, _stop) = start_payee(&payee_config(sp.addr, &dir)).await;
    let payer = aep2_axum::agent::Payer::new(payer_key, domain(), 1);
    let http = aep2_axum::agent::HttpClient::new();
    let url = format!("{base}/paid/intent");
    let hash = aep2_x402::request_hash("GET", &url, b"").unwrap();
    let signed = payer.sign_for(&terms(), hash, unix_now() + 600).unwrap();
    let header = aep2_x402::payment_signature(&terms(), &signed.to_json());
    let reply = http
        .send("GET", &url, &[(PAYMENT_SIGNATURE, &header)], b"")
        .await
        .unwrap();
    assert_rejected(&reply, 402, "insufficient_funds");
    let reply = http
        .send("GET", &url, &[(PAYMENT_SIGNATURE, &header)], b"")
        .await
        .unwrap();
    assert_rejected(&reply, 402, "mandate_replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_asks_for_payment_as_a_tool_result_and_serves_a_paid_call() {
    let env = env("mcp").await;
    let args = Object::new().with("location", Value::String("Oslo".into()));
    let call = aep2_mcp::ToolCall::new(Value::from_u64(3), aep2_axum::payee::TOOL_NAME, Some(args));
    let ct = [("content-type", "application/json")];
    let reply = env.post("/mcp", &ct, call.to_text().as_bytes()).await;
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert!(
        schema("mcp-payment-required-result.schema.json").is_valid(&v["result"]),
        "{v}"
    );
    assert_eq!(v["result"]["_meta"]["dev.aep2/reason"], "payment_missing");

    let signed = env
        .payer
        .sign_for(&terms(), call.request_hash().unwrap(), unix_now() + 600)
        .unwrap();
    let text = call.clone().with_mandate(&signed.to_json()).to_text();
    let reply = env.post("/mcp", &ct, text.as_bytes()).await;
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["result"]["isError"], false, "{v}");
    assert!(schema("mcp-paid-result.schema.json").is_valid(&v["result"]), "{v}");
    let receipt = aep2::json::parse(
        &v["result"]["_meta"]["dev.aep2/payment-response"]["extra"]["receipt"].to_string(),
        &aep2::json::Limits::AEP2,
    )
    .unwrap();
    check_receipt(&receipt, &signed, &domain(), &sp_key().id()).unwrap();
    // The same mandate for other arguments does not pay.
    let other = text.replace("Oslo", "Rome");
    let v: serde_json::Value = serde_json::from_slice(&env.post("/mcp", &ct, other.as_bytes()).await.body).unwrap();
    assert_eq!(v["result"]["_meta"]["dev.aep2/reason"], "request_mismatch", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2a_order_mode_quotes_in_input_required_and_completes_on_payment() {
    let env = env("a2a").await;
    let rpc = |message: &aep2_a2a::Message, method: &str| {
        let o = Object::new()
            .with("jsonrpc", Value::String("2.0".into()))
            .with("id", Value::from_u64(9))
            .with("method", Value::String(method.into()))
            .with(
                "params",
                Value::Object(Object::new().with("message", message.to_json())),
            );
        to_compact(&Value::Object(o))
    };
    let ct = [
        ("content-type", "application/json"),
        ("a2a-extensions", aep2_a2a::EXTENSION_URI),
    ];
    let ask = aep2_a2a::Message::new(aep2_a2a::Role::User, "m-1", vec![aep2_a2a::Part::text("Report please")]);
    let reply = env.post("/a2a", &ct, rpc(&ask, "SendMessage").as_bytes()).await;
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let task = &v["result"]["task"];
    assert!(schema("a2a-task-status.schema.json").is_valid(&task["status"]), "{v}");
    let status = aep2_a2a::TaskStatus::from_json(
        &aep2::json::parse(&task["status"].to_string(), &aep2_a2a::MESSAGE_LIMITS).unwrap(),
    )
    .unwrap();
    assert_eq!(status.state, aep2_a2a::TaskState::InputRequired);
    let info = aep2_a2a::PaymentInfo::of(&status.message).unwrap().unwrap();
    let offer = info.requirements[0].clone();
    let quote = PaymentRequest::from_json(offer.extra.as_ref().unwrap().get("quote").unwrap()).unwrap();
    let task_id = task["id"].as_str().unwrap().to_owned();

    let signed = env.payer.sign_for(&offer, quote.hash(), unix_now() + 600).unwrap();
    let reply_msg = aep2_a2a::attach_mandate(
        aep2_a2a::Message::new(aep2_a2a::Role::User, "m-2", vec![aep2_a2a::Part::text("Paid")]).with_task_id(&task_id),
        &signed,
    );
    let reply = env.post("/a2a", &ct, rpc(&reply_msg, "message/send").as_bytes()).await;
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["result"]["kind"], "task", "{v}");
    let status = aep2_a2a::TaskStatus::from_json(
        &aep2::json::parse(&v["result"]["status"].to_string(), &aep2_a2a::MESSAGE_LIMITS).unwrap(),
    )
    .unwrap();
    assert_eq!(status.state, aep2_a2a::TaskState::Completed, "{v}");
    let info = aep2_a2a::PaymentInfo::of(&status.message).unwrap().unwrap();
    let receipt = info.acceptance.unwrap().receipt.unwrap();
    check_receipt(&receipt, &signed, &domain(), &sp_key().id()).unwrap();

    // JSON that is not an A2A message (an unknown aep2.dev/ key) is a rejected payment with
    // a2a_message_invalid, not a JSON-RPC error; JSON-RPC faults stay JSON-RPC errors.
    let odd = r#"{"jsonrpc":"2.0","id":3,"method":"SendMessage","params":{"message":{"messageId":"m-3","role":"ROLE_USER","parts":[{"text":"hi"}],"metadata":{"aep2.dev/bogus":"x"}}}}"#;
    let reply = env.post("/a2a", &ct, odd.as_bytes()).await;
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(v.get("error").is_none(), "{v}");
    let status = &v["result"]["task"]["status"];
    assert!(schema("a2a-task-status.schema.json").is_valid(status), "{v}");
    assert_eq!(
        status["message"]["metadata"]["aep2.dev/error"]["code"], "a2a_message_invalid",
        "{v}"
    );
    let reply = env
        .post(
            "/a2a",
            &ct,
            br#"{"jsonrpc":"1.0","id":4,"method":"SendMessage","params":{}}"#,
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["error"]["code"], -32600, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_route_cannot_serve_is_refused_before_any_payment_is_read() {
    let env = env("methods").await;
    let sp = aep2_sp::SpClient::new(&format!("http://{}", env.sp.as_ref().unwrap().addr)).unwrap();
    // A valid mandate at the routes' price, sent with methods the routes do not serve.
    let (header, signed) = env.intent_header("/paid/intent");
    let verified = aep2::Verifier::new(domain())
        .verify_header(&signed.encode(), None)
        .unwrap();
    let id = aep2::codec::hex_encode_0x(&verified.digest.id);
    for (method, path) in [
        ("POST", "/paid/order"),
        ("PUT", "/paid/order"),
        ("DELETE", "/paid/intent"),
        ("PATCH", "/paid/intent"),
        ("FOO", "/paid/intent"),
    ] {
        let reply = env
            .http
            .send(method, &env.url(path), &[(PAYMENT_SIGNATURE, &header)], b"")
            .await
            .unwrap();
        assert_rejected(&reply, 405, "route_unknown");
        let allow = reply.header("allow").unwrap_or_default().to_owned();
        assert!(
            allow.contains("GET") && !allow.contains(method),
            "{method} {path}: Allow {allow:?}"
        );
        assert!(reply.header(PAYMENT_REQUIRED).is_none() && reply.header(PAYMENT_RESPONSE).is_none());
    }
    // OPTIONS (a CORS preflight without an allowed origin) never reaches payment or quotes.
    for path in ["/paid/intent", "/paid/order"] {
        let reply = env.http.send("OPTIONS", &env.url(path), &[], b"").await.unwrap();
        assert_eq!(reply.status, 204, "{path}");
        assert!(reply.header("allow").is_some_and(|a| a.contains("OPTIONS")));
        assert!(reply.header(PAYMENT_REQUIRED).is_none());
    }
    // A body of a type the route does not take.
    let reply = env
        .http
        .send(
            "POST",
            &env.url("/paid/intent"),
            &[(PAYMENT_SIGNATURE, &header), ("content-type", "text/plain")],
            b"x",
        )
        .await
        .unwrap();
    assert_rejected(&reply, 415, "content_type_unsupported");
    // Nothing was charged, and the same mandate pays for the request it was made for.
    let unknown = sp.mandate(&id).await.unwrap_err();
    assert!(unknown.to_string().contains("mandate_unknown"), "{unknown}");
    let reply = env.get("/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await;
    served_receipt(&reply, &signed);
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
    sp.mandate(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflights_are_answered_with_the_payment_headers_and_never_reach_payment() {
    let env = env_with("cors", |c| c.cors_origins = vec!["https://app.example".into()]).await;
    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "GET"),
        ("access-control-request-headers", "payment-signature"),
    ];
    for path in ["/paid/intent", "/paid/order"] {
        let reply = env.http.send("OPTIONS", &env.url(path), &preflight, b"").await.unwrap();
        assert_eq!(reply.status, 204, "{path}");
        assert_eq!(reply.header("access-control-allow-origin"), Some("https://app.example"));
        let allowed = reply
            .header("access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        for h in ["payment-signature", "x-payment", "x-payment-mandate"] {
            assert!(allowed.contains(h), "{path}: {allowed}");
        }
        assert!(
            reply.header(PAYMENT_REQUIRED).is_none(),
            "{path}: a preflight issued terms"
        );
    }
    // A disallowed origin gets no CORS headers.
    let other = [
        ("origin", "https://evil.example"),
        ("access-control-request-method", "GET"),
    ];
    let reply = env
        .http
        .send("OPTIONS", &env.url("/paid/intent"), &other, b"")
        .await
        .unwrap();
    assert!(reply.header("access-control-allow-origin").is_none());
    // Actual responses expose the payment headers to the allowed origin.
    let reply = env.get("/paid/order", &[("origin", "https://app.example")]).await;
    assert_rejected(&reply, 402, "payment_missing");
    let exposed = reply
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_uppercase();
    assert!(
        exposed.contains("PAYMENT-REQUIRED") && exposed.contains("PAYMENT-RESPONSE"),
        "{exposed}"
    );
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
}

/// A payee instance on `config` with its own checkout (its own quote book and lease) and `clock`.
async fn instance(
    config: &aep2_axum::payee::PayeeConfig,
    clock: aep2_axum::Clock,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let checkout = std::sync::Arc::new(aep2_axum::payee::checkout_for(config).unwrap());
    let bound = aep2_axum::payee::bind_with(config, checkout, clock).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bound.serve(async {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_mandate_is_served_later_at_another_instance_as_first_judged() {
    let dir = temp_dir("resume");
    let port = reserved_addr();
    let mut config = payee_config(port, &dir);
    // Both instances answer for one public origin, so one request has one hash at either.
    config.public_origin = Some("http://api.example".into());
    let t = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(unix_now()));
    let clock_of = |t: &std::sync::Arc<std::sync::atomic::AtomicU64>| -> aep2_axum::Clock {
        let t = t.clone();
        std::sync::Arc::new(move || t.load(std::sync::atomic::Ordering::SeqCst))
    };
    let (a, _stop_a) = instance(&config, clock_of(&t)).await;
    let payer_key = key("payer-resume");
    let payer = aep2_axum::agent::Payer::new(payer_key.clone(), domain(), 1);
    let http = aep2_axum::agent::HttpClient::new();
    let send = |base: &str, path: &str, header: Option<&str>| {
        let url = format!("{base}{path}");
        let header = header.map(str::to_owned);
        let http = http.clone();
        async move {
            let headers: Vec<(&str, &str)> = header.iter().map(|h| (PAYMENT_SIGNATURE, h.as_str())).collect();
            http.send("GET", &url, &headers, b"").await.unwrap()
        }
    };
    // Order Mode at A while the SP is down: quoted, paid, 503.
    let (offer, quote) = quote_of(&send(&a, "/paid/order", None).await);
    let order = payer
        .sign_for(&offer, quote.hash(), t.load(std::sync::atomic::Ordering::SeqCst) + 600)
        .unwrap();
    let order_header = aep2_x402::payment_signature(&offer, &order.to_json());
    assert_rejected(
        &send(&a, "/paid/order", Some(&order_header)).await,
        503,
        "settlement_unavailable",
    );
    // Intent Mode at A, deadline just past the payee's window: 503 too.
    let hash = aep2_x402::request_hash("GET", "http://api.example/paid/intent", b"").unwrap();
    let deadline = t.load(std::sync::atomic::Ordering::SeqCst) + 305 + 30;
    let intent = payer.sign_for(&terms(), hash, deadline).unwrap();
    let intent_header = aep2_x402::payment_signature(&terms(), &intent.to_json());
    assert_rejected(
        &send(&a, "/paid/intent", Some(&intent_header)).await,
        503,
        "settlement_unavailable",
    );

    // The SP comes up. Instance B (no quote book entry, its clock 60 s on: the intent mandate now
    // fails the settlement-window check) serves both, once, as judged when A took them.
    let _sp = start_sp(&dir, port, &[(&payer_key, 10_000)]).await;
    let later = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
        t.load(std::sync::atomic::Ordering::SeqCst) + 60,
    ));
    let (b, _stop_b) = instance(&config, clock_of(&later)).await;
    let fresh = payer.sign_for(&terms(), hash, deadline).unwrap();
    let fresh_header = aep2_x402::payment_signature(&terms(), &fresh.to_json());
    assert_rejected(
        &send(&b, "/paid/intent", Some(&fresh_header)).await,
        402,
        "deadline_too_soon",
    );
    served_receipt(&send(&b, "/paid/order", Some(&order_header)).await, &order);
    served_receipt(&send(&b, "/paid/intent", Some(&intent_header)).await, &intent);
    // Served: B, which never issued that quote, refuses it at the quote check (which comes before
    // the replay check); A, which did, as the replay it is.
    assert_rejected(
        &send(&b, "/paid/order", Some(&order_header)).await,
        402,
        "request_mismatch",
    );
    assert_rejected(
        &send(&a, "/paid/order", Some(&order_header)).await,
        402,
        "mandate_replayed",
    );
    assert_rejected(
        &send(&a, "/paid/intent", Some(&intent_header)).await,
        402,
        "mandate_replayed",
    );
    // With another request, an unfinished mandate is not resumed: the binding still holds.
    assert_rejected(
        &send(&b, "/paid/mvp", Some(&intent_header)).await,
        402,
        "payee_mismatch",
    );
}

/// A JSON body that breaks off after its first chunk.
struct BrokenBody(bool);

impl hyper::body::Body for BrokenBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.0 {
            return std::task::Poll::Ready(Some(Err(std::io::Error::other("the route's body broke off"))));
        }
        self.0 = true;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(axum::body::Bytes::from_static(
            b"{\"part\":",
        )))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mvp_answer_that_breaks_off_is_not_a_serve() {
    use aep2_axum::axum::{Router, routing::get};
    use aep2_axum::{PaidLayer, Paywall};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = temp_dir("broken-body");
    let payer_key = key("payer-broken-body");
    let sp = start_sp(&dir, "127.0.0.1:0".parse().unwrap(), &[(&payer_key, 10_000)]).await;
    let config = payee_config(sp.addr, &dir);
    let checkout = Arc::new(aep2_axum::payee::checkout_for(&config).unwrap());
    let paywall = Paywall::intent(Arc::new(aep2::Verifier::new(domain())), config.policy(), checkout);
    let broke = Arc::new(AtomicBool::new(false));
    let first = broke.clone();
    let route = get(move || {
        let first = first.clone();
        async move {
            // The first answer's body breaks off; later ones are whole.
            let body = if first.swap(true, Ordering::SeqCst) {
                axum::body::Body::from(r#"{"part":1}"#)
            } else {
                axum::body::Body::new(BrokenBody(false))
            };
            ([(axum::http::header::CONTENT_TYPE, "application/json")], body)
        }
    });
    let app: Router = Router::new().route("/report", route.layer(PaidLayer::new(paywall)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let payer = aep2_axum::agent::Payer::new(payer_key, domain(), 1);
    let signed = payer.sign_for(&terms(), [5; 32], unix_now() + 600).unwrap();
    let header = signed.encode();
    let http = aep2_axum::agent::HttpClient::new();
    let url = format!("{base}/report");
    let reply = http
        .send("GET", &url, &[(X_PAYMENT_MANDATE, &header)], b"")
        .await
        .unwrap();
    assert_eq!(reply.status, 500, "{}", String::from_utf8_lossy(&reply.body));
    assert!(reply.header(PAYMENT_RESPONSE).is_none());
    // Charged, not served: the same mandate is served on the next presentation, once.
    let reply = http
        .send("GET", &url, &[(X_PAYMENT_MANDATE, &header)], b"")
        .await
        .unwrap();
    served_receipt(&reply, &signed);
    let reply = http
        .send("GET", &url, &[(X_PAYMENT_MANDATE, &header)], b"")
        .await
        .unwrap();
    assert_rejected(&reply, 402, "mandate_replayed");
    assert!(broke.load(Ordering::SeqCst));
}

/// The A2A endpoint's transport (spec `aep2.md#a2a-transport`), without any client library: the
/// card per version, method names and versions, activation, v0.3 shapes, task polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2a_card_methods_versions_activation_and_tasks() {
    let env = env("a2a-transport").await;
    let ext = aep2_a2a::EXTENSION_URI;
    let json = |r: &Reply| -> serde_json::Value { serde_json::from_slice(&r.body).unwrap() };
    // The card: v1.0 for A2A-Version 1.0, v0.3 without it, v0.3 at the older path; cacheable.
    let v1 = env.get("/.well-known/agent-card.json", &[("a2a-version", "1.0")]).await;
    assert_eq!(v1.status, 200);
    let card = json(&v1);
    assert_eq!(card["supportedInterfaces"][0]["protocolVersion"], "1.0", "{card}");
    assert_eq!(card["supportedInterfaces"][1]["protocolVersion"], "0.3", "{card}");
    assert!(
        card["supportedInterfaces"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/a2a")
    );
    let found =
        aep2_a2a::Aep2Extension::find(&aep2::json::parse(&card.to_string(), &aep2::json::Limits::AEP2).unwrap())
            .unwrap()
            .unwrap();
    assert!(found.required);
    assert_eq!(v1.header("cache-control"), Some("public, max-age=300"));
    let etag = v1.header("etag").unwrap().to_owned();
    let again = env
        .get(
            "/.well-known/agent-card.json",
            &[("a2a-version", "1.0"), ("if-none-match", &etag)],
        )
        .await;
    assert_eq!(again.status, 304);
    for (path, headers) in [
        ("/.well-known/agent-card.json", vec![]),
        ("/.well-known/agent.json", vec![("a2a-version", "1.0")]),
    ] {
        let c = json(&env.get(path, &headers).await);
        assert_eq!(c["protocolVersion"], "0.3.0", "{path}: {c}");
        assert_eq!(c["preferredTransport"], "JSONRPC");
        assert!(c.get("supportedInterfaces").is_none(), "{c}");
    }
    assert_eq!(
        env.get("/.well-known/agent-card.json", &[("a2a-version", "2.5")])
            .await
            .status,
        400
    );

    let call = |method: &str, params: serde_json::Value| {
        serde_json::json!({"jsonrpc": "2.0", "id": "q-1", "method": method, "params": params}).to_string()
    };
    let post = |body: String, headers: Vec<(&'static str, &'static str)>| {
        let env = &env;
        async move {
            let mut h = vec![("content-type", "application/json")];
            h.extend(headers);
            env.post("/a2a", &h, body.as_bytes()).await
        }
    };
    let ask = serde_json::json!({"message": {"kind": "message", "messageId": "m-1", "role": "user",
        "parts": [{"kind": "text", "text": "Report please"}]}});
    // Not activated: -32008, whatever the payment.
    let r = json(&post(call("message/send", ask.clone()), vec![]).await);
    assert_eq!(
        (r["error"]["code"].as_i64(), r["id"].as_str()),
        (Some(-32008), Some("q-1")),
        "{r}"
    );
    // v0.3 (X-A2A-Extensions, echoed): pure v0.3 shapes.
    let reply = post(call("message/send", ask.clone()), vec![("x-a2a-extensions", ext)]).await;
    assert_eq!(reply.header("x-a2a-extensions"), Some(ext));
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    for bad in ["TASK_STATE_", "ROLE_"] {
        assert!(!text.contains(bad), "{text}");
    }
    let r = json(&reply);
    let task = &r["result"];
    assert_eq!(
        (task["kind"].as_str(), task["status"]["state"].as_str()),
        (Some("task"), Some("input-required")),
        "{r}"
    );
    assert_eq!(task["status"]["message"]["kind"], "message");
    assert_eq!(task["status"]["message"]["role"], "agent");
    assert_eq!(task["status"]["message"]["parts"][0]["kind"], "text");
    let id = task["id"].as_str().unwrap().to_owned();
    // The same task polled in v0.3 and in v1.0, each in its own spelling.
    let polled = json(
        &post(
            call("tasks/get", serde_json::json!({"id": id})),
            vec![("x-a2a-extensions", ext)],
        )
        .await,
    );
    assert_eq!(polled["result"]["status"]["state"], "input-required", "{polled}");
    let reply = post(
        call("GetTask", serde_json::json!({"id": id})),
        vec![("a2a-extensions", ext), ("a2a-version", "1.0")],
    )
    .await;
    assert_eq!(reply.header("a2a-extensions"), Some(ext));
    let polled = json(&reply);
    assert_eq!(
        polled["result"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
        "{polled}"
    );
    assert_eq!(polled["result"]["status"]["message"]["role"], "ROLE_AGENT");
    assert!(polled["result"].get("kind").is_none());
    // Unknown task, unknown method, a method of the other generation, an unknown version.
    let r = json(
        &post(
            call("GetTask", serde_json::json!({"id": "nope"})),
            vec![("a2a-extensions", ext)],
        )
        .await,
    );
    assert_eq!(r["error"]["code"], -32001, "{r}");
    let r = json(&post(call("tasks/list", serde_json::json!({})), vec![("a2a-extensions", ext)]).await);
    assert_eq!(
        (r["error"]["code"].as_i64(), r["id"].as_str()),
        (Some(-32601), Some("q-1")),
        "{r}"
    );
    assert_eq!(r["error"]["data"]["reason"], "route_unknown", "{r}");
    let r = json(
        &post(
            call("message/send", ask.clone()),
            vec![("a2a-extensions", ext), ("a2a-version", "1.0")],
        )
        .await,
    );
    assert_eq!(r["error"]["code"], -32601, "{r}");
    assert_eq!(r["error"]["data"][0]["metadata"]["reason"], "route_unknown", "{r}");
    let r = json(
        &post(
            call("SendMessage", ask.clone()),
            vec![("a2a-extensions", ext), ("a2a-version", "9.1")],
        )
        .await,
    );
    assert_eq!(r["error"]["code"], -32009, "{r}");
    let r = json(&post(call("GetTask", serde_json::json!({})), vec![("a2a-extensions", ext)]).await);
    assert_eq!(r["error"]["code"], -32602, "{r}");
}

/// A mandate under a spending lane is verified by the payee (chain, agent, caps) and forwarded;
/// the SP charges it against the lane and answers with a native receipt stating the leaf lane and
/// what remains under it, which the payee checks and passes on (spec `aep2.md#lane-settlement`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_mandate_is_verified_charged_and_receipted_with_the_lanes_remaining_budget() {
    use aep2::lane::{Lane, sign_lane};
    use aep2::{AccountId, EnvelopeForm, EvmMandate, Mandate, PayerKey, sign_lane_mandate};
    let env = env("lanes").await;
    // The key `env` funds at the SP.
    let owner = PayerKey::Secp256k1(key("payer-lanes"));
    let agent = PayerKey::Secp256k1(key("lane-agent"));
    let now = unix_now();
    let lane = Lane {
        profile: aep2::Profile::Eip712,
        owner: AccountId::parse(&owner.signer()).unwrap(),
        agent: AccountId::parse(&agent.signer()).unwrap(),
        token: usdc().into(),
        per_payment: U256::from_u64(PRICE),
        total: U256::from_u64(PRICE * 10),
        max_payments: 0,
        period: 0,
        allowance: U256::ZERO,
        payees: vec![payee().into()],
        valid_from: now - 60,
        valid_until: now + 3600,
        purpose: "test".into(),
        parent: [0; 32],
        salt: [9; 32],
    };
    let chain = vec![sign_lane(&lane, None, &domain(), &owner).unwrap()];
    let url = env.url("/paid/intent");
    let bound = aep2_x402::request_hash("GET", &url, b"").unwrap();
    let mandate = |amount: u64| {
        Mandate::Eip712(EvmMandate {
            owner: env.payer.address(),
            token: usdc(),
            payee: payee(),
            amount: U256::from_u64(amount),
            nonce: U256::from_u64(amount),
            deadline: now + 600,
            reference: bound,
        })
    };
    let send = |m: Mandate, force: bool| {
        let signed = if force {
            // Past the signer's refusals: a payment above the lane's cap.
            let leaf = chain[0].lane.digest(&domain()).unwrap().id;
            let d = aep2::lane::lane_mandate_digest(&m, &domain(), &leaf).unwrap();
            aep2::SignedMandate {
                form: EnvelopeForm::Mvp,
                mandate: m,
                domain: None,
                signature: agent.sign_input(&d.input).unwrap(),
                lanes: chain.clone(),
            }
        } else {
            sign_lane_mandate(&m, &domain(), &agent, EnvelopeForm::Mvp, &chain)
                .unwrap()
                .0
        };
        let header = aep2_x402::payment_signature(&terms(), &signed.to_json());
        let env = &env;
        async move { env.get("/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await }
    };
    // Refused offline by the payee, before the SP: the lane's own cap.
    assert_rejected(&send(mandate(PRICE + 1), true).await, 402, "lane_payment_cap_exceeded");
    // Verified by the payee, charged by the SP, served with a native receipt naming the lane, even
    // for the MVP envelope form: only the native form has room for the lane's budget.
    let signed = sign_lane_mandate(&mandate(PRICE), &domain(), &agent, EnvelopeForm::Mvp, &chain)
        .unwrap()
        .0;
    let reply = send(mandate(PRICE), false).await;
    let receipt = served_receipt(&reply, &signed);
    assert_eq!(receipt.kind, aep2::ReceiptKind::Native);
    let stated = receipt.lane.expect("the receipt states the lane");
    assert_eq!(stated.id, chain[0].lane.digest(&domain()).unwrap().id);
    assert_eq!(stated.remaining, U256::from_u64(PRICE * 9));
}

/// The payee on Postgres (`AEP2_TEST_POSTGRES`): two instances on one schema, as two hosts
/// behind a load balancer. One mandate presented at both at once is served once; presented
/// again, it is refused at both; the record is in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_paid_request_is_served_once_across_two_instances_and_a_replay_is_refused() {
    use aep2_axum::payee::ReplayConfig;
    use aep2_replay::{PaymentStore, ReplayStore};
    let Some(aep2_replay::db::Location::Postgres(url)) = aep2_replay::db::testing::postgres("payee") else {
        eprintln!("not run: {} is not set", aep2_replay::db::testing::ENV);
        return;
    };
    let origin = "http://api.example";
    let env = env_with("postgres", |c| {
        c.replay = ReplayConfig::Postgres(url.clone());
        c.public_origin = Some(origin.into());
    })
    .await;
    let mut config = payee_config(env.sp.as_ref().unwrap().addr, &env.dir);
    config.replay = ReplayConfig::Postgres(url.clone());
    config.public_origin = Some(origin.into());
    let (second, _stop) = start_payee(&config).await;

    let hash = aep2_x402::request_hash("GET", &format!("{origin}/paid/intent"), b"").unwrap();
    let signed = env.payer.sign_for(&terms(), hash, unix_now() + 600).unwrap();
    let header = aep2_x402::payment_signature(&terms(), &signed.to_json());
    let bases = [env.base.clone(), second.clone()];
    let sends = (0..8).map(|i| {
        let (http, url, header) = (
            env.http.clone(),
            format!("{}/paid/intent", bases[i % 2]),
            header.clone(),
        );
        tokio::spawn(async move {
            http.send("GET", &url, &[(PAYMENT_SIGNATURE, &header)], b"")
                .await
                .unwrap()
        })
    });
    let mut replies = Vec::new();
    for s in sends {
        replies.push(s.await.unwrap());
    }
    let served: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        served.len(),
        1,
        "exactly one serve: {:?}",
        replies.iter().map(|r| (r.status, r.reason())).collect::<Vec<_>>()
    );
    served_receipt(served[0], &signed);
    for r in replies.iter().filter(|r| r.status != 200) {
        assert!(
            matches!(
                (r.status, r.reason().as_deref()),
                (402, Some("mandate_replayed")) | (503, Some("payment_in_progress"))
            ),
            "{} {:?}",
            r.status,
            r.reason()
        );
    }
    // Once the serve is over, a replay is refused at either instance.
    for base in &bases {
        let deadline = Instant::now() + Duration::from_secs(5);
        let again = loop {
            let r = env
                .http
                .send(
                    "GET",
                    &format!("{base}/paid/intent"),
                    &[(PAYMENT_SIGNATURE, &header)],
                    b"",
                )
                .await
                .unwrap();
            if r.reason().as_deref() != Some("payment_in_progress") || Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_rejected(&again, 402, "mandate_replayed");
    }
    let store = tokio::task::spawn_blocking(move || aep2_replay::PostgresStore::open(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(store.len().unwrap(), 1, "one record, in Postgres");
    assert_eq!(store.unfinished().unwrap(), 0);
}

/// A Postgres URL's password appears in no form of the payee's configuration.
#[test]
fn a_postgres_replay_config_never_shows_its_password() {
    use aep2_axum::payee::ReplayConfig;
    let c = ReplayConfig::Postgres("postgres://payee:hunter2@db.internal:5432/aep2?schema=shop".into());
    for shown in [c.display(), format!("{c:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("payee:***@db.internal:5432/aep2"), "{shown}");
    }
}
