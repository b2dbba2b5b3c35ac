//! Runs the conformance suite against each deliberately broken verifier and asserts that the
//! runner reports failures for exactly the cases the broken rule governs.
//!
//! The expected sets are derived from the vectors themselves — the expected reason code, and
//! where a rule only covers part of a code's cases, a property of the case's input (the
//! signature's `s`, the claimed domain, the header's characters) — never from a list of ids
//! and never from the adapter's code. A fault that trips a case outside its set, or misses
//! one inside it, fails the test; so does a set that comes out empty.
//!
//! Not covered, by design: a verifier that skips the replay store. Every vector is stateless,
//! so no vector can tell it apart from a correct one; the live probes test replay.

#![allow(clippy::unwrap_used)]

use aep2_broken_adapter::{Fault, KINDS};
use aep2_conformance::suite::{Suite, default_dir};
use aep2_conformance::{RunOptions, exit, run};
use aep2_vectors::model::{TestCase, TestGroup};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value as J;
use std::collections::BTreeSet;
use std::sync::OnceLock;

fn suite() -> &'static Suite {
    static SUITE: OnceLock<Suite> = OnceLock::new();
    SUITE.get_or_init(|| Suite::load(&default_dir()).unwrap())
}

/// The ids the runner reports as failing for `fault` (`None`: the unbroken pipeline), after
/// checking that the run completed and its exit code agrees.
fn failing(fault: Option<Fault>) -> BTreeSet<String> {
    let name = fault.map_or("none", Fault::name);
    let adapter = vec![
        env!("CARGO_BIN_EXE_aep2-broken-adapter").to_owned(),
        "--fault".to_owned(),
        name.to_owned(),
    ];
    let mut options = RunOptions::new(adapter);
    options.validate_protocol = true;
    let report = run(suite(), &options).unwrap();
    assert_eq!(report.footer.restarts, 0, "{name}: the adapter crashed or hung");
    let failed: BTreeSet<String> = report
        .cases
        .iter()
        .filter(|c| c.status.is_failure())
        .map(|c| c.id.clone())
        .collect();
    let code = if failed.is_empty() { exit::OK } else { exit::FAILURES };
    assert_eq!(report.footer.exit_code, code, "{name}: exit code");
    failed
}

fn reason(t: &TestCase) -> &str {
    t.expected.reason.as_deref().unwrap_or("")
}

/// The cases of the kinds the broken adapter answers that satisfy `pred`.
fn expected(pred: impl Fn(&TestGroup, &TestCase) -> bool) -> BTreeSet<String> {
    suite()
        .cases()
        .filter(|(g, _)| KINDS.contains(&g.kind.as_str()))
        .filter(|(g, t)| pred(g, t))
        .map(|(_, t)| t.id.clone())
        .collect()
}

/// The decoded envelope of a case whose header is canonical base64 JSON.
fn envelope(t: &TestCase) -> Option<J> {
    let header = t.input.get("header")?.as_str()?;
    serde_json::from_slice(&STANDARD.decode(header).ok()?).ok()
}

fn assert_exact(fault: Fault, want: BTreeSet<String>) {
    assert!(!want.is_empty(), "{}: no vector exercises this rule", fault.name());
    let got = failing(Some(fault));
    let missed: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missed.is_empty() && extra.is_empty(),
        "{}: not caught {missed:?}; failing beyond the rule {extra:?}",
        fault.name()
    );
}

#[test]
fn the_unbroken_pipeline_passes_every_case() {
    assert_eq!(failing(None), BTreeSet::new());
}

#[test]
fn accept_high_s() {
    // The secp256k1 group order n, big-endian (SEC 2).
    let n = hex32("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
    // Only an s below n has a low-s twin; s >= n stays rejected as high s.
    assert_exact(
        Fault::AcceptHighS,
        expected(|_, t| {
            reason(t) == "signature_high_s"
                && envelope(t)
                    .and_then(|e| {
                        let sig = e.get("payerSig").or_else(|| e.get("signature"))?.as_str()?.to_owned();
                        let s = hex32(sig.get(66..130)?);
                        Some(s < n)
                    })
                    .unwrap_or(false)
        }),
    );
}

fn hex32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn ignore_chain_id() {
    // Caught: a domain mismatch in which the contract (EVM) or wallet (Ed25519) is the
    // verifier's own, i.e. only the chain differs. The domain compared is the quote's when an
    // Order Mode quote names another domain (check 0 comes first), else the envelope's.
    assert_exact(
        Fault::IgnoreChainId,
        expected(|g, t| {
            let Some(mine) = g.context.domain.as_ref() else {
                return false;
            };
            let norm = |v: &J| {
                v.as_str()
                    .map(str::to_ascii_lowercase)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            };
            let differs = |d: &J| {
                ["chainId", "verifyingContract", "network", "wallet"]
                    .iter()
                    .any(|k| d.get(*k).map(norm) != mine.get(*k).map(norm))
            };
            let theirs = match t.input.get("quote").and_then(|q| q.get("domain")) {
                Some(d) if differs(d) => d.clone(),
                _ => match envelope(t) {
                    Some(env) => env["domain"].clone(),
                    None => return false,
                },
            };
            let same = |k: &str| theirs.get(k).is_some() && theirs.get(k).map(norm) == mine.get(k).map(norm);
            reason(t) == "domain_mismatch" && (same("verifyingContract") || same("wallet"))
        }),
    );
}

#[test]
fn ignore_payee() {
    assert_exact(Fault::IgnorePayee, expected(|_, t| reason(t) == "payee_mismatch"));
}

#[test]
fn accept_small_order() {
    assert_exact(
        Fault::AcceptSmallOrder,
        expected(|_, t| matches!(reason(t), "key_small_order" | "key_mixed_order")),
    );
}

#[test]
fn lenient_base64() {
    // Caught: base64 whose only defects are whitespace, missing padding or non-zero trailing
    // bits; a foreign character (the URL-safe `-` and `_`) stays invalid.
    assert_exact(
        Fault::LenientBase64,
        expected(|_, t| {
            let Some(h) = t.input.get("header").and_then(J::as_str) else {
                return false;
            };
            let compact: String = h.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let body = compact.trim_end_matches('=');
            reason(t) == "base64_invalid"
                && compact.len() - body.len() <= 2
                && body.len() % 4 != 1
                && body.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
        }),
    );
}

#[test]
fn ignore_deadline() {
    assert_exact(Fault::IgnoreDeadline, expected(|_, t| reason(t) == "expired"));
}
