//! Every peer-signed fixture gets its expected verdict, digest, signature and receipt result.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2_vectors::peer_signed::check_fixtures;

#[test]
fn peer_signed_fixtures_interoperate() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../vectors/peer-signed/peer-signed.json"
    );
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let outcomes = check_fixtures(&doc).unwrap();
    assert_eq!(outcomes.len(), 11, "fixture count changed");
    let mut failures = Vec::new();
    for o in &outcomes {
        for c in &o.checks {
            if !c.ok {
                failures.push(format!("{}: {}: {}", o.id, c.name, c.detail));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Valid cases carry digest, re-sign and receipt checks, not just a verdict.
    assert!(
        outcomes
            .iter()
            .filter(|o| o.expect == "valid")
            .all(|o| o.checks.len() >= 4)
    );
}
