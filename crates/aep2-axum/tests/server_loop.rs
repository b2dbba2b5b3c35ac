//! The payee's server loop: requests hyper refuses before the payee sees them (a head over
//! 64 KiB, a malformed request) get the payee's MVP error body with the reason code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use serde_json::Value as J;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request`, reads until the server closes; returns status, content type and JSON body.
async fn exchange(addr: &str, request: &[u8]) -> (u16, String, J) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head[9..12].parse().unwrap();
    let content_type = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or("")
        .to_owned();
    (status, content_type, serde_json::from_str(body).unwrap_or(J::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_s_own_rejections_get_the_mvp_error_body() {
    let env = common::env("server-loop").await;
    let addr = env.base.trim_start_matches("http://").to_owned();
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: payee\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    let (status, ct, v) = exchange(&addr, big.as_bytes()).await;
    assert_eq!((status, ct.as_str()), (431, "application/json"), "{v}");
    assert_eq!(v["reason"], "header_too_large", "{v}");
    assert_eq!(v["error"], "REQUEST_HEADER_FIELDS_TOO_LARGE", "{v}");
    assert!(
        v["message"].as_str().is_some_and(|m| m.contains("header_too_large")),
        "{v}"
    );
    let (status, ct, v) = exchange(&addr, b"GET /health HTTP/1.1\r\nHost: payee\r\nX-A: \0\r\n\r\n").await;
    assert_eq!((status, ct.as_str()), (400, "application/json"), "{v}");
    assert_eq!(v["reason"], "http_request_invalid", "{v}");
    assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
    let (status, _, v) = exchange(&addr, b"GET /\r\n").await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (400, Some("http_request_invalid")),
        "{v}"
    );
}
