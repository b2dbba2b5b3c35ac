//! Fuzz entry point for MCP `tools/call` requests, shared by the cargo-fuzz target
//! `mcp_tool_call` in `fuzz/` and by the stable-Rust corpus replay in `tests/fuzz_corpus.rs`.
//! Panics only on a broken invariant. Not a stable interface.

use crate::{ToolCall, check_call, request_descriptor};
use aep2::fuzzing::{FUZZ_NOW, fuzz_domain};
use aep2::json::{self, Limits};
use aep2::{Profile, Verifier};
use std::sync::LazyLock;

/// Wider than any message limit, so re-reading a descriptor never fails on size alone.
const WIDE: Limits = Limits {
    max_depth: 64,
    max_string_bytes: 1 << 20,
    max_members: 1 << 12,
    max_number_len: 64,
};

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| Verifier::new(fuzz_domain(Profile::Eip712)));

/// Arbitrary bytes as a JSON-RPC message: parsing, extraction and verification never panic; a
/// parsed call survives emit → parse unchanged; its request descriptor is canonical JSON that
/// does not change when the call is re-emitted or its `_meta` is dropped.
pub fn mcp_tool_call(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(call) = ToolCall::parse(text) else {
        return;
    };
    let (_, report) = check_call(&call, &VERIFIER, Some(FUZZ_NOW));
    if report.verdict.is_ok() {
        assert!(
            report.signed.is_some() && report.digest.is_some(),
            "a valid report names its mandate"
        );
        assert_eq!(
            report.domain,
            Some(fuzz_domain(Profile::Eip712)),
            "verified under the verifier's domain"
        );
    }
    let emitted = call.to_text();
    match ToolCall::parse(&emitted) {
        Ok(again) => assert_eq!(again, call, "emit then parse is the identity"),
        Err(e) => panic!("emitted call rejected with {e}: {emitted}"),
    }
    let descriptor = call.descriptor();
    let mut bare = call.clone();
    bare.meta = None;
    assert_eq!(
        descriptor.as_ref().map_err(|e| e.code()),
        bare.descriptor().as_ref().map_err(|e| e.code()),
        "_meta is not part of the request"
    );
    let from_parts = request_descriptor(&call.name, call.arguments.clone().map(json::Value::Object).as_ref());
    assert_eq!(
        descriptor.as_ref().ok(),
        from_parts.as_ref().ok(),
        "both descriptor paths agree"
    );
    if let Ok(d) = descriptor {
        match json::parse(&d, &WIDE) {
            Ok(v) => assert_eq!(json::to_canonical(&v), d, "the descriptor is RFC 8785 text"),
            Err(e) => panic!("descriptor is not JSON ({e}): {d}"),
        }
    }
}
