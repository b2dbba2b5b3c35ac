//! Fuzz entry point for A2A messages, shared by the cargo-fuzz target `a2a_message` in `fuzz/`
//! and by the stable-Rust corpus replay in `tests/fuzz_corpus.rs`. Panics only on a broken
//! invariant. Not a stable interface.

use crate::{Message, check_message, request_descriptor};
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

/// Arbitrary bytes as an A2A message: parsing, extraction and verification never panic; a
/// parsed message survives emit → parse unchanged (up to the generation, always emitted as
/// v1.0); its request descriptor, when it has one, is canonical JSON and the same for both.
pub fn a2a_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (parsed, report) = check_message(text, &VERIFIER, Some(FUZZ_NOW));
    let Some(message) = parsed else {
        assert!(report.verdict.is_err(), "an unparsed message cannot verify");
        return;
    };
    let emitted = message.to_text();
    let again = match Message::parse(&emitted) {
        Ok(m) => m,
        Err(e) => panic!("emitted message rejected with {e}: {emitted}"),
    };
    let mut expected = message.clone();
    expected.version = again.version;
    assert_eq!(
        again, expected,
        "emit then parse is the identity (but for the generation)"
    );
    let descriptor = message.request_descriptor();
    assert_eq!(
        descriptor.as_ref().map_err(|e| e.code()),
        again.request_descriptor().as_ref().map_err(|e| e.code()),
        "the descriptor does not depend on the generation or on re-emission"
    );
    if let Ok(d) = descriptor {
        match json::parse(&d, &WIDE) {
            Ok(v) => assert_eq!(json::to_canonical(&v), d, "the descriptor is RFC 8785 text"),
            Err(e) => panic!("descriptor is not JSON ({e}): {d}"),
        }
        assert_eq!(request_descriptor(text).ok(), Some(d), "text and message paths agree");
    }
}
