//! Fuzz entry point for x402 requests, shared by the cargo-fuzz target `x402_request` in
//! `fuzz/` and by the stable-Rust corpus replay in `tests/fuzz_corpus.rs`. Panics only on a
//! broken invariant. Not a stable interface.
//!
//! Input layout: header lines `Name: value`, optionally a line `@ METHOD URL`, then an empty
//! line and the request body.

use crate::{Carrier, check_headers, extract, request_descriptor, request_hash};
use aep2::fuzzing::{FUZZ_NOW, fuzz_domain};
use aep2::hash::sha256;
use aep2::json::{self, Limits};
use aep2::{Profile, Verifier};
use std::sync::LazyLock;

/// Wider than any descriptor (the URL is at most 8000 bytes), so re-reading one never fails on
/// size alone.
const WIDE: Limits = Limits {
    max_depth: 2,
    max_string_bytes: 1 << 14,
    max_members: 3,
    max_number_len: 1,
};

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| Verifier::new(fuzz_domain(Profile::Eip712)));

/// Arbitrary bytes as an HTTP request: extraction and verification never panic and agree with
/// each other; the request descriptor, when defined, is canonical JSON and its hash is the
/// tagged SHA-256 of it.
pub fn x402_request(data: &[u8]) {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let mut headers = Vec::new();
    let mut target = None;
    for line in head.lines() {
        if let Some(rest) = line.strip_prefix("@ ") {
            target = rest.split_once(' ');
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name, value.trim_start()));
        }
    }
    let extracted = extract(headers.iter().copied());
    let (carrier, report) = check_headers(headers.iter().copied(), &VERIFIER, Some(FUZZ_NOW));
    match &extracted {
        Ok(e) => {
            assert_eq!(carrier, Some(e.carrier), "both paths find the same carrier");
            assert_eq!(
                e.network.is_none(),
                e.carrier == Carrier::XPaymentMandate,
                "only x402 payloads name a network"
            );
        }
        Err(err) => assert_eq!(
            report.verdict.as_ref().map_err(|e| e.code()),
            Err(err.code()),
            "same first fault"
        ),
    }
    if report.verdict.is_ok() {
        assert_eq!(
            report.domain,
            Some(fuzz_domain(Profile::Eip712)),
            "verified under the verifier's domain"
        );
    }
    if let Some((method, url)) = target {
        let descriptor = request_descriptor(method, url, body);
        let hash = request_hash(method, url, body);
        assert_eq!(descriptor.is_ok(), hash.is_ok(), "descriptor and hash fail together");
        if let (Ok(d), Ok(h)) = (descriptor, hash) {
            let mut input = crate::HTTP_REQUEST_TAG.to_vec();
            input.extend_from_slice(d.as_bytes());
            assert_eq!(h, sha256(&input), "the hash is SHA-256(tag || descriptor)");
            match json::parse(&d, &WIDE) {
                Ok(v) => assert_eq!(json::to_canonical(&v), d, "the descriptor is RFC 8785 text"),
                Err(e) => panic!("descriptor is not JSON ({e}): {d}"),
            }
        }
    }
}
