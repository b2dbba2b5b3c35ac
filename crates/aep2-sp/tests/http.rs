//! The HTTP service: every bad-request class gets a 4xx with a reason code and leaves the
//! service serving; idempotent receipts; the client's mapping of answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::{EnvelopeForm, Receipt, ReceiptExpectations, ReceiptKind, SpKey};
use aep2_sp::service::bind;
use aep2_sp::{SpClient, SpClientError, unix_now};
use common::*;
use serde_json::Value as J;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(name: &str) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    start_with(name, Duration::from_millis(400)).await
}

async fn start_with(name: &str, timeout: Duration) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut cfg = config(temp_db(name));
    cfg.http.header_timeout = timeout;
    cfg.http.body_timeout = timeout;
    cfg.deposits = vec![
        evm_deposit("d1", "http-payer", 1000),
        ed_deposit("d2", "http-ed-payer", 1000),
    ];
    let bound = bind(&cfg).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bound.serve(async {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// Sends raw bytes, reads until the server closes; returns (status, parsed JSON body).
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, J) {
    parse_response(&exchange(addr, request).await)
}

fn parse_response(out: &[u8]) -> (u16, J) {
    let text = String::from_utf8_lossy(out);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(J::Null))
}

fn post(path: &str, ct: Option<&str>, body: &str) -> Vec<u8> {
    let ct = ct.map(|c| format!("Content-Type: {c}\r\n")).unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: sp\r\nConnection: close\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: sp\r\nConnection: close\r\n\r\n").into_bytes()
}

fn code(v: &J) -> &str {
    assert_eq!(v["success"], J::Bool(false), "{v}");
    v["error"].as_str().unwrap()
}

async fn healthy(addr: SocketAddr) {
    let (status, v) = raw(addr, &get("/health")).await;
    assert_eq!(status, 200);
    assert_eq!(v["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_with_reason_codes() {
    let (addr, _stop) = start("bad").await;
    let json = Some("application/json");
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (post("/enqueue", json, "{\"mandate\":"), 400, "json_invalid"),
        (post("/enqueue", json, "{\"a\":1,\"a\":2}"), 400, "json_duplicate_key"),
        (post("/enqueue", json, "[]"), 400, "field_type"),
        (
            post("/enqueue", json, "{\"mandate\":{},\"payerSig\":\"0x\"}"),
            400,
            "missing_field",
        ),
        (
            post("/enqueue", Some("text/plain"), "{}"),
            415,
            "content_type_unsupported",
        ),
        (post("/enqueue", None, "{}"), 415, "content_type_unsupported"),
        (post("/enqueue", json, &" ".repeat(9000)), 413, "header_too_large"),
        (get("/enqueue"), 405, "route_unknown"),
        (get("/nope"), 404, "route_unknown"),
        (get("/v1/mandates/0x12"), 400, "field_type"),
        (get("/v1/mandates/%FF"), 400, "field_type"),
        (
            get(&format!("/v1/mandates/0x{}", "ab".repeat(32))),
            404,
            "mandate_unknown",
        ),
        (get("/v1/accounts"), 400, "missing_field"),
        (get("/v1/accounts?payer=0xnothex"), 400, "address_invalid"),
    ];
    for (req, want_status, want_code) in cases {
        let (status, v) = raw(addr, &req).await;
        assert_eq!(
            (status, code(&v)),
            (want_status, want_code),
            "{}",
            String::from_utf8_lossy(&req[..40.min(req.len())])
        );
        assert!(v["message"].is_string());
    }
    // Chunked, no Content-Length: the limit applies while reading.
    let chunk = "x".repeat(5000);
    let req = format!(
        "POST /enqueue HTTP/1.1\r\nHost: sp\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    let (status, v) = raw(addr, req.as_bytes()).await;
    assert_eq!((status, code(&v)), (413, "header_too_large"));
    // Invalid signature, wrong profile of domain, and a signature over another mandate.
    let (env, _) = evm_envelope("http-payer", 1, 10, unix_now() + 3600, EnvelopeForm::Mvp);
    let tampered = env.replace("\"amount\":\"10\"", "\"amount\":\"11\"");
    let (status, v) = raw(addr, &post("/enqueue", json, &tampered)).await;
    assert_eq!((status, code(&v)), (400, "signature_invalid"));
    healthy(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_do_not_stall_others() {
    // Timeouts well above the time the healthy requests may take on a loaded machine, so that
    // serving them promptly shows they did not wait for the slow connections to time out.
    let (addr, _stop) = start_with("slow", Duration::from_millis(2000)).await;
    // 40 connections that never finish their headers, and one that never finishes its body.
    let mut slow_headers = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /enqueue HTTP/1.1\r\nHost: sp\r\n").await.unwrap();
        slow_headers.push(s);
    }
    let mut slow_body = TcpStream::connect(addr).await.unwrap();
    slow_body
        .write_all(b"POST /enqueue HTTP/1.1\r\nHost: sp\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mandate\"")
        .await
        .unwrap();
    // Others are served meanwhile, promptly.
    let t = Instant::now();
    for _ in 0..5 {
        healthy(addr).await;
    }
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
    // The body that never completes gets 408 request_timeout.
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(6), slow_body.read_to_end(&mut out))
        .await
        .expect("slow body answered")
        .unwrap();
    let (status, v) = parse_response(&out);
    assert_eq!((status, code(&v)), (408, "request_timeout"));
    // The header dawdlers are disconnected (hyper may answer 408 first, then closes).
    for mut s in slow_headers {
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(6), s.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "slow-header connection still open");
    }
    healthy(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_is_idempotent_and_enforces_funds_and_nonces() {
    let (addr, _stop) = start("idem").await;
    let client = SpClient::new(&format!("http://{addr}")).unwrap();
    let now = unix_now();
    let (env, id) = evm_envelope("http-payer", 1, 600, now + 3600, EnvelopeForm::Mvp);
    let first = client.enqueue_full(&env, None).await.unwrap();
    let second = client.enqueue_full(&env, None).await.unwrap();
    assert_eq!(first.receipt_json, second.receipt_json, "byte-identical receipts");
    assert_eq!(first.mandate_id, id);
    assert_eq!(first.status, "accepted");
    assert_eq!(first.receipt.kind, ReceiptKind::MvpEvm);
    // The raw bodies carry the same receipt bytes too.
    let (_, a) = raw(addr, &post("/enqueue", Some("application/json"), &env)).await;
    assert_eq!(a["receipt"].to_string(), first.receipt_json);
    // The receipt verifies against the SP and the mandate, deadline rule included.
    let sm = aep2::SignedMandate::from_json(
        &aep2::json::parse(&env, &Default::default()).unwrap(),
        aep2::Profile::Eip712,
    )
    .unwrap();
    let digest = aep2::mandate_digest(&sm.mandate, &evm_domain()).unwrap();
    let sp = SpKey::Secp256k1(secp("test-sp")).id();
    first
        .receipt
        .verify(&ReceiptExpectations {
            sp: Some(&sp),
            mandate: Some((&sm.mandate, &digest)),
            domain: None,
            lane: None,
        })
        .unwrap();
    assert!(first.receipt.enqueue_deadline <= now + 3600 && first.receipt.enqueue_deadline >= now + 300);
    // Same nonce, different mandate.
    let (other, _) = evm_envelope("http-payer", 1, 5, now + 3600, EnvelopeForm::Mvp);
    match client.enqueue(&other).await {
        Err(SpClientError::Rejected { status: 409, error }) => assert_eq!(error.code(), "nonce_reused"),
        r => panic!("{r:?}"),
    }
    // 600 of 1000 reserved: 500 more does not fit, 400 does.
    let (big, _) = evm_envelope("http-payer", 2, 500, now + 3600, EnvelopeForm::Mvp);
    match client.enqueue(&big).await {
        Err(SpClientError::Rejected { status: 402, error }) => assert_eq!(error.code(), "insufficient_funds"),
        r => panic!("{r:?}"),
    }
    let (fits, _) = evm_envelope("http-payer", 3, 400, now + 3600, EnvelopeForm::Native);
    let native = client.enqueue(&fits).await.unwrap();
    assert_eq!(native.kind, ReceiptKind::Native);
    // The same mandate in the MVP form (same id): whoever enqueued it first does not choose the
    // MVP payee's receipt form. Same promise, its own form, byte-stable, nothing reserved twice.
    let (fits_mvp, _) = evm_envelope("http-payer", 3, 400, now + 3600, EnvelopeForm::Mvp);
    let mvp = client.enqueue_full(&fits_mvp, None).await.unwrap();
    assert_eq!(mvp.receipt.kind, ReceiptKind::MvpEvm);
    assert_eq!(mvp.receipt.enqueue_deadline, native.enqueue_deadline);
    assert_eq!(
        client.enqueue_full(&fits_mvp, None).await.unwrap().receipt_json,
        mvp.receipt_json
    );
    assert_eq!(
        client.enqueue(&fits).await.unwrap(),
        native,
        "the stored native receipt is unchanged"
    );
    // An unfunded payer and a deadline inside the window.
    let (nobody, _) = evm_envelope("nobody", 1, 1, now + 3600, EnvelopeForm::Mvp);
    let err = client.enqueue(&nobody).await.unwrap_err();
    assert!(
        matches!(&err, SpClientError::Rejected { status: 402, error } if error.code() == "insufficient_funds"),
        "{err}"
    );
    let (soon, _) = evm_envelope("http-payer", 4, 1, now + 60, EnvelopeForm::Mvp);
    let err = client.enqueue(&soon).await.unwrap_err();
    assert!(
        matches!(&err, SpClientError::Rejected { status: 400, error } if error.code() == "deadline_too_soon"),
        "{err}"
    );
    // Native ed25519.
    let (ed, _) = ed_envelope("http-ed-payer", 9, 10, now + 3600);
    let r: Receipt = client.enqueue(&ed).await.unwrap();
    assert_eq!(r.kind, ReceiptKind::Native);
    // Status and accounts.
    let m = client.mandate(&id).await.unwrap();
    assert_eq!(m["mandate"]["status"], "accepted");
    assert_eq!(m["mandate"]["receipt"].to_string(), first.receipt_json);
    let payer = secp("http-payer").address().to_checksum();
    let acc = client.accounts(&payer, None).await.unwrap();
    assert_eq!(acc["accounts"][0]["balance"], "1000");
    assert_eq!(acc["accounts"][0]["reserved"], "1000");
    assert_eq!(acc["accounts"][0]["available"], "0");
    let h = client.health().await.unwrap();
    assert_eq!(h["queueLength"], 3);
    assert_eq!(h["sp"], sp.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reports_an_unreachable_sp_as_unavailable() {
    let client = SpClient::new("http://127.0.0.1:9")
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    assert!(matches!(client.health().await, Err(SpClientError::Unavailable(_))));
    assert!(SpClient::new("https://sp.example").is_err());
}

/// The lane endpoints and the lane codes' statuses (spec `aep2.md#sp-enqueue`,
/// `aep2.md#lane-settlement`): `GET /v1/lanes/{id}`, `POST /v1/lanes/revoke` under the limits of
/// `/enqueue`, `402` for an exhausted lane budget, `403` for a revoked lane or a revoker below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lane_endpoints_and_the_statuses_of_the_lane_codes() {
    use aep2::json::{Object, Value, to_compact};
    use aep2::lane::{Lane, LaneRevocation, SignedLane, sign_lane};
    use aep2::{AccountId, EvmMandate, Mandate, PayerKey, U256, sign_lane_mandate};
    let (addr, _stop) = start("lanes").await;
    let now = aep2_sp::unix_now();
    let owner = PayerKey::Secp256k1(secp("http-payer"));
    let agent = PayerKey::Secp256k1(secp("http-lane-agent"));
    let lane = Lane {
        profile: aep2::Profile::Eip712,
        owner: AccountId::Evm(secp("http-payer").address()),
        agent: AccountId::Evm(secp("http-lane-agent").address()),
        token: AccountId::Evm(token()),
        per_payment: U256::from_u64(100),
        total: U256::from_u64(150),
        max_payments: 0,
        period: 0,
        allowance: U256::ZERO,
        payees: Vec::new(),
        valid_from: now - 60,
        valid_until: now + 3_600,
        purpose: "http".into(),
        parent: [0; 32],
        salt: [4; 32],
    };
    let chain = vec![sign_lane(&lane, None, &evm_domain(), &owner).unwrap()];
    let id = aep2::codec::hex_encode_0x(&lane.digest(&evm_domain()).unwrap().id);
    let pay = |nonce: u64, amount: u64| {
        let m = Mandate::Eip712(EvmMandate {
            owner: secp("http-payer").address(),
            token: token(),
            payee: payee(),
            amount: U256::from_u64(amount),
            nonce: U256::from_u64(nonce),
            deadline: now + 1_800,
            reference: [5; 32],
        });
        let (sm, _) = sign_lane_mandate(&m, &evm_domain(), &agent, EnvelopeForm::Mvp, &chain).unwrap();
        post("/enqueue", Some("application/json"), &to_compact(&sm.to_json()))
    };
    let revoke = |key: &PayerKey| {
        let rev = LaneRevocation::sign(&evm_domain(), lane.digest(&evm_domain()).unwrap().id, now, key).unwrap();
        let body = Object::new()
            .with("revocation", rev.to_json())
            .with("lanes", Value::Array(chain.iter().map(SignedLane::to_json).collect()));
        post(
            "/v1/lanes/revoke",
            Some("application/json"),
            &to_compact(&Value::Object(body)),
        )
    };
    let (status, v) = raw(addr, &get(&format!("/v1/lanes/{id}"))).await;
    assert_eq!((status, code(&v)), (404, "lane_unknown"));
    let (status, v) = raw(addr, &get("/v1/lanes/0x12")).await;
    assert_eq!((status, code(&v)), (400, "field_type"));
    let (status, v) = raw(addr, &get("/v1/lanes/revoke")).await;
    assert_eq!((status, code(&v)), (405, "route_unknown"));
    let (status, v) = raw(addr, &post("/v1/lanes/revoke", Some("text/plain"), "{}")).await;
    assert_eq!((status, code(&v)), (415, "content_type_unsupported"));
    let big = format!("{{\"x\": \"{}\"}}", "a".repeat(9_000));
    let (status, v) = raw(addr, &post("/v1/lanes/revoke", Some("application/json"), &big)).await;
    assert_eq!((status, code(&v)), (413, "header_too_large"));
    // A lane payment in the MVP envelope: a native receipt stating the lane.
    let (status, v) = raw(addr, &pay(1, 100)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["receipt"]["kind"], "receipt", "{v}");
    assert_eq!(v["receipt"]["lane"], serde_json::json!({"id": id, "remaining": "50"}));
    let (status, v) = raw(addr, &pay(2, 100)).await;
    assert_eq!((status, code(&v)), (402, "lane_total_exceeded"));
    let (status, v) = raw(addr, &get(&format!("/v1/lanes/{id}"))).await;
    assert_eq!(status, 200, "{v}");
    let l = &v["lane"];
    assert_eq!(
        (&l["spent"], &l["remaining"], &l["payments"], &l["revoked"]),
        (&J::from("100"), &J::from("50"), &J::from(1), &J::from(false)),
        "{v}"
    );
    let (status, v) = raw(addr, &revoke(&agent)).await;
    assert_eq!((status, code(&v)), (403, "lane_revoker_invalid"));
    let (status, v) = raw(addr, &revoke(&owner)).await;
    assert_eq!(
        (status, &v["revoked"], &v["lane"]),
        (200, &J::from(true), &J::from(id.clone())),
        "{v}"
    );
    let (status, v) = raw(addr, &pay(3, 10)).await;
    assert_eq!((status, code(&v)), (403, "lane_revoked"));
}
