//! The requests hyper refuses before the app sees them (a head over the limit, too many header
//! fields, invalid bytes, no or another HTTP version, a broken `Content-Length`) get the SP's
//! JSON error body with a reason code, like every other rejection; the app's own responses pass
//! through the server loop unchanged, byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2_sp::service::{MAX_HEAD_BYTES, MAX_HEADER_FIELDS, bind, router};
use axum::body::Body;
use common::*;
use http_body_util::BodyExt;
use serde_json::Value as J;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A started SP, its router (for the bytes its responses should have) and its stop switch.
struct Sp {
    addr: SocketAddr,
    app: axum::Router,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(name: &str) -> Sp {
    let bound = bind(&config(temp_db(name))).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let app = router(bound.state().clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bound.serve(async {
        let _ = stopped.await;
    }));
    Sp { addr, app, _stop: stop }
}

/// One response: status, header lines as sent (`name: value`), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<String>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

/// Splits the first response off `bytes` (framed by its `content-length`); returns it and its
/// length in bytes.
fn parse_one(bytes: &[u8]) -> (Answer, usize) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = std::str::from_utf8(&bytes[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<String> = lines.map(str::to_owned).collect();
    let mut a = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    let length: usize = a.header("content-length").expect("content-length").parse().unwrap();
    let body_at = end + 4;
    a.body = bytes[body_at..body_at + length].to_vec();
    (a, body_at + length)
}

/// `request` is refused with `status`, a JSON error body naming `code`, and the connection closed.
async fn refused(addr: SocketAddr, request: &[u8], status: u16, code: &str) {
    let out = exchange(addr, request).await;
    let shown = String::from_utf8_lossy(&request[..request.len().min(60)]).into_owned();
    assert!(!out.is_empty(), "no answer to {shown:?}");
    let (a, used) = parse_one(&out);
    assert_eq!(used, out.len(), "one answer, then the connection closed: {shown:?}");
    assert_eq!(a.status, status, "{shown:?}: {a:?}");
    assert_eq!(a.header("content-type"), Some("application/json"), "{shown:?}");
    assert_eq!(a.header("connection"), Some("close"), "{shown:?}");
    let v: J = serde_json::from_slice(&a.body).unwrap_or_else(|e| panic!("{shown:?}: body not JSON ({e}): {a:?}"));
    assert_eq!(v["success"], J::Bool(false), "{v}");
    assert_eq!(v["error"], code, "{shown:?}: {v}");
    assert_eq!(v["stage"], "decode", "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

/// A `GET /health` whose head (through the empty line) is exactly `len` bytes.
fn health_head_of(len: usize) -> Vec<u8> {
    let start = "GET /health HTTP/1.1\r\nHost: sp\r\nConnection: close\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let pad = len - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

async fn served(addr: SocketAddr, request: &[u8]) {
    let out = exchange(addr, request).await;
    let (a, _) = parse_one(&out);
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_64_kib_is_431_header_too_large() {
    let sp = start("head-size").await;
    assert_eq!(MAX_HEAD_BYTES, 65_536);
    // The limit is the documented one, however the head arrives: 65 536 bytes are served,
    // 65 537 (or more) refused, even when the whole head is in the server's buffer at once.
    served(sp.addr, &health_head_of(MAX_HEAD_BYTES)).await;
    refused(sp.addr, &health_head_of(MAX_HEAD_BYTES + 1), 431, "header_too_large").await;
    refused(sp.addr, &health_head_of(70_000), 431, "header_too_large").await;
    // A head that never ends is refused once it has sent 64 KiB.
    let mut s = TcpStream::connect(sp.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: sp\r\nX-Pad: ")
        .await
        .unwrap();
    s.write_all(&vec![b'a'; MAX_HEAD_BYTES]).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .unwrap();
    let (a, _) = parse_one(&out);
    assert_eq!(a.status, 431);
    let v: J = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["error"], "header_too_large", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_100_header_fields_is_431_header_too_large() {
    let sp = start("header-count").await;
    assert_eq!(MAX_HEADER_FIELDS, 100);
    let with_fields = |n: usize| {
        // Host and Connection, then n - 2 more.
        let extra: String = (0..n - 2).map(|i| format!("X-F{i}: v\r\n")).collect();
        format!("GET /health HTTP/1.1\r\nHost: sp\r\nConnection: close\r\n{extra}\r\n").into_bytes()
    };
    served(sp.addr, &with_fields(MAX_HEADER_FIELDS)).await;
    refused(sp.addr, &with_fields(MAX_HEADER_FIELDS + 1), 431, "header_too_large").await;
    refused(sp.addr, &with_fields(1000), 431, "header_too_large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bytes_in_the_head_are_400_http_request_invalid() {
    let sp = start("bytes").await;
    let cases: [&[u8]; 9] = [
        b"GET /health HTTP/1.1\r\nHost: sp\r\nX-A: a\0b\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: sp\r\nX\0A: ab\r\n\r\n",
        b"GET /hea\0lth HTTP/1.1\r\nHost: sp\r\n\r\n",
        b"G\0T /health HTTP/1.1\r\nHost: sp\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: sp\r\nX-A: a\x01b\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: sp\r\nX-A: a\x7fb\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost : sp\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: sp\r\n folded\r\n\r\n",
        // A TLS ClientHello on the plain-HTTP port.
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    ];
    for req in cases {
        refused(sp.addr, req, 400, "http_request_invalid").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_0_9_and_other_versions_are_400_http_request_invalid() {
    let sp = start("versions").await;
    let cases: [&[u8]; 6] = [
        b"GET /\r\n",
        b"GET /health\r\n\r\n",
        b"GET /health HTTP/1.2\r\nHost: sp\r\n\r\n",
        b"GET /health HTTP/2.0\r\nHost: sp\r\n\r\n",
        b"GET /health HTTP/3\r\nHost: sp\r\n\r\n",
        b"GET /health FTP/1.1\r\nHost: sp\r\n\r\n",
    ];
    for req in cases {
        refused(sp.addr, req, 400, "http_request_invalid").await;
    }
    // HTTP/1.0 is served.
    served(sp.addr, b"GET /health HTTP/1.0\r\n\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_content_length_is_400_http_request_invalid() {
    let sp = start("content-length").await;
    let post = |lengths: &str| {
        format!("POST /enqueue HTTP/1.1\r\nHost: sp\r\nContent-Type: application/json\r\n{lengths}\r\n{{}}")
            .into_bytes()
    };
    for lengths in [
        "Content-Length: 99999999999999999999999\r\n",
        "Content-Length: 2\r\nContent-Length: 3\r\n",
        "Content-Length: 2, 3\r\n",
        "Content-Length: -2\r\n",
        "Content-Length: +2\r\n",
        "Content-Length: 0x2\r\n",
        "Content-Length: \r\n",
    ] {
        refused(sp.addr, &post(lengths), 400, "http_request_invalid").await;
    }
    // Transfer-Encoding that does not end in chunked, or in HTTP/1.0: the same.
    refused(
        sp.addr,
        b"POST /enqueue HTTP/1.1\r\nHost: sp\r\nTransfer-Encoding: gzip\r\n\r\n",
        400,
        "http_request_invalid",
    )
    .await;
    refused(
        sp.addr,
        b"POST /enqueue HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "http_request_invalid",
    )
    .await;
}

/// The text the server loop must send for `request`: the router's own status line, headers
/// (with `content-length`) and body, in its order, then hyper's `date` (taken from `actual`).
async fn expected(app: &axum::Router, request: axum::http::Request<Body>, actual: &Answer) -> String {
    let response = tower::ServiceExt::oneshot(app.clone(), request).await.unwrap();
    let status = response.status();
    let mut text = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap()
    );
    for (name, value) in response.headers() {
        text.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    assert!(response.headers().contains_key("content-length"));
    text.push_str(&format!("date: {}\r\n\r\n", actual.header("date").unwrap()));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    text.push_str(std::str::from_utf8(&body).unwrap());
    text
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_responses_pass_unchanged_then_a_malformed_request_is_refused() {
    let sp = start("keep-alive").await;
    let health = b"GET /health HTTP/1.1\r\nHost: sp\r\n\r\n";
    // An app rejection with a status the loop rewrites for hyper: the app's body stays.
    let bad_id = b"GET /v1/mandates/0x12 HTTP/1.1\r\nHost: sp\r\n\r\n";
    let malformed = b"GET /health HTTP/1.1\r\nHost: sp\r\nX-A: \0\r\n\r\n";
    let req = |path: &str| axum::http::Request::get(path).body(Body::empty()).unwrap();

    // One request at a time on one connection.
    let mut s = TcpStream::connect(sp.addr).await.unwrap();
    let mut received = Vec::new();
    for (bytes, path) in [(&health[..], "/health"), (&bad_id[..], "/v1/mandates/0x12")] {
        s.write_all(bytes).await.unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let answer = loop {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("answer in time")
                .unwrap();
            assert!(n > 0, "connection closed early");
            out.extend_from_slice(&buf[..n]);
            if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
                let len: usize = head
                    .split("\r\n")
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                if out.len() >= end + 4 + len {
                    let (a, used) = parse_one(&out);
                    assert_eq!(used, out.len(), "nothing after the response");
                    break a;
                }
            }
        };
        assert_eq!(text(&out), expected(&sp.app, req(path), &answer).await);
        received.push(answer.status);
    }
    assert_eq!(received, [200, 400]);
    s.write_all(malformed).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("closed in time")
        .unwrap();
    let (a, _) = parse_one(&out);
    assert_eq!(a.status, 400);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let v: J = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["error"], "http_request_invalid", "{v}");

    // The same three pipelined in one write: two unchanged answers, then the refusal.
    let mut all = health.to_vec();
    all.extend_from_slice(bad_id);
    all.extend_from_slice(malformed);
    let out = exchange(sp.addr, &all).await;
    let (first, n1) = parse_one(&out);
    let (second, n2) = parse_one(&out[n1..]);
    let (third, n3) = parse_one(&out[n1 + n2..]);
    assert_eq!(n1 + n2 + n3, out.len());
    assert_eq!(text(&out[..n1]), expected(&sp.app, req("/health"), &first).await);
    assert_eq!(
        text(&out[n1..n1 + n2]),
        expected(&sp.app, req("/v1/mandates/0x12"), &second).await
    );
    assert_eq!(third.status, 400);
    let v: J = serde_json::from_slice(&third.body).unwrap();
    assert_eq!(v["error"], "http_request_invalid", "{v}");

    // An answer given before the request body is read (the wrong content type), then the
    // refusal of a malformed request that follows the body.
    let mut all =
        b"POST /enqueue HTTP/1.1\r\nHost: sp\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    all.extend_from_slice(malformed);
    let out = exchange(sp.addr, &all).await;
    let (first, n1) = parse_one(&out);
    let (second, n2) = parse_one(&out[n1..]);
    assert_eq!(n1 + n2, out.len());
    let early = axum::http::Request::post("/enqueue")
        .header("content-type", "text/plain")
        .body(Body::from("hello"))
        .unwrap();
    assert_eq!(text(&out[..n1]), expected(&sp.app, early, &first).await);
    assert_eq!(second.status, 400);
    let v: J = serde_json::from_slice(&second.body).unwrap();
    assert_eq!(v["error"], "http_request_invalid", "{v}");

    // A HEAD answer (a head without its body) passes unchanged too, and the refusal follows it.
    let mut all = b"HEAD /health HTTP/1.1\r\nHost: sp\r\n\r\n".to_vec();
    all.extend_from_slice(malformed);
    let out = text(&exchange(sp.addr, &all).await);
    let (head, rest) = out.split_once("\r\n\r\n").unwrap();
    let head_request = axum::http::Request::head("/health").body(Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(sp.app.clone(), head_request).await.unwrap();
    let mut want = format!(
        "HTTP/1.1 {} {}",
        response.status().as_u16(),
        response.status().canonical_reason().unwrap()
    );
    for (name, value) in response.headers() {
        want.push_str(&format!("\r\n{name}: {}", value.to_str().unwrap()));
    }
    assert!(head.starts_with(&format!("{want}\r\ndate: ")), "{head}");
    let (refusal, _) = parse_one(rest.as_bytes());
    assert_eq!(refusal.status, 400, "{rest}");
    let v: J = serde_json::from_slice(&refusal.body).unwrap();
    assert_eq!(v["error"], "http_request_invalid", "{v}");
}
