//! Differential test of the secp256k1 backends: every case of every vector file (eip712
//! mandates, receipts, lanes, and the rest, where no recovery happens and the answers agree
//! trivially) answered under k256 and under libsecp256k1 gives the same answer (verdict,
//! reason code, stage, intermediates such as the signer and the recovered address), and both
//! answers pass the case's expectations.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2::crypto::secp256k1::{Backend, with_backend};
use aep2_vectors::check::{answer, judge};
use aep2_vectors::model::VectorFile;
use std::path::Path;

#[test]
fn every_vector_same_answer_under_both_backends() {
    assert!(
        Backend::ALL.len() >= 2,
        "aep2 built without the libsecp256k1 feature: nothing to compare"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let (mut cases, mut eip712_cases) = (0usize, 0usize);
    for path in files {
        let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // Only the vector files proper (interop.json and friends have another shape).
        let Ok(file) = serde_json::from_value::<VectorFile>(raw) else {
            continue;
        };
        for (group, case) in file.cases() {
            let answers: Vec<_> = Backend::ALL
                .iter()
                .map(|&b| with_backend(b, || answer(group, case)))
                .collect();
            for (b, a) in Backend::ALL.iter().zip(&answers) {
                assert_eq!(a, &answers[0], "{}: {} differs from k256", case.id, b.as_str());
                if let Ok(a) = a {
                    judge(case, a).unwrap_or_else(|e| panic!("{} under {}: {e}", case.id, b.as_str()));
                }
            }
            cases += 1;
            if case.id.starts_with("eip712/") || ["evm", "eip712"].iter().any(|p| group.group.contains(p)) {
                eip712_cases += 1;
            }
        }
    }
    assert!(cases > 300, "only {cases} cases found");
    assert!(eip712_cases >= 100, "only {eip712_cases} secp256k1 cases found");
    eprintln!("{cases} cases ({eip712_cases} with secp256k1 signatures) agree under both backends");
}
