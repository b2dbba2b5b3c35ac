//! Replays the committed fuzz seed corpus (`fuzz/corpus/<target>/`) through the fuzz entry
//! points in `aep2::fuzzing` on stable Rust, so every `cargo test` runs the fuzz invariants
//! over every seed without cargo-fuzz or a nightly toolchain.
//!
//! A missing or empty corpus directory fails the test, so it cannot pass vacuously; the
//! `seeds_reach_*` tests check that the seeds are not only well-formed but reach the deep
//! paths (valid signatures for every profile, form and receipt kind). Regenerate the seeds
//! with `python3 fuzz/seeds.py`.

#![allow(clippy::unwrap_used)]

use aep2::codec::base64_encode;
use aep2::crypto::{ed25519, secp256k1};
use aep2::fuzzing;
use aep2::json::{self, Limits};
use aep2::{EvmAddress, Profile, Receipt, ReceiptExpectations, ReceiptKind, Verifier};
use std::collections::BTreeSet;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    fuzzing::corpus_seeds(target)
}

fn replay(target: &str, run: fn(&[u8])) {
    fuzzing::replay_corpus(target, run);
}

#[test]
fn replay_header_decode() {
    replay("header_decode", fuzzing::header_decode);
}

#[test]
fn replay_mandate_json() {
    replay("mandate_json", fuzzing::mandate_json);
}

#[test]
fn replay_verify_eip712() {
    replay("verify_eip712", fuzzing::verify_eip712);
}

#[test]
fn replay_verify_ed25519() {
    replay("verify_ed25519", fuzzing::verify_ed25519);
}

#[test]
fn replay_receipt_json() {
    replay("receipt_json", fuzzing::receipt_json);
}

#[test]
fn fuzz_domain_matches_the_seed_generator() {
    assert_eq!(
        EvmAddress(fuzzing::FUZZ_VERIFYING_CONTRACT).to_checksum(),
        "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"
    );
}

/// Header seeds as header text: base64 seeds as they are, JSON seeds base64-encoded (which is
/// what `fuzzing::header_decode` does with them).
fn header_texts() -> Vec<String> {
    seeds("header_decode")
        .into_iter()
        .flat_map(|(_, data)| {
            let mut v = vec![base64_encode(&data)];
            if let Ok(t) = String::from_utf8(data) {
                v.push(t);
            }
            v
        })
        .collect()
}

#[test]
fn seeds_reach_valid_envelopes_of_every_profile_and_form() {
    let texts = header_texts();
    let mut valid = BTreeSet::new();
    let mut codes = BTreeSet::new();
    for profile in Profile::ALL {
        let verifier = Verifier::new(fuzzing::fuzz_domain(profile));
        for t in &texts {
            match verifier.verify_header(t, Some(fuzzing::FUZZ_NOW)) {
                Ok(v) => {
                    valid.insert((profile.as_str(), v.signed.form.as_str()));
                }
                Err(e) => {
                    codes.insert(e.code());
                }
            }
        }
    }
    for want in [
        ("eip712", "mvp"),
        ("eip712", "native"),
        ("ed25519", "native"),
        ("solana-mvp", "mvp"),
    ] {
        assert!(
            valid.contains(&want),
            "no header seed is a valid {want:?} envelope; valid: {valid:?}"
        );
    }
    for code in [
        "domain_mismatch",
        "signature_invalid",
        "signature_high_s",
        "unknown_field",
        "json_invalid",
        "base64_invalid",
    ] {
        assert!(
            codes.contains(code),
            "no header seed is rejected with {code}; seen: {codes:?}"
        );
    }
}

#[test]
fn seeds_reach_valid_receipts_of_every_kind() {
    let mut valid = BTreeSet::new();
    for (_, data) in seeds("receipt_json") {
        let Ok(text) = std::str::from_utf8(&data) else { continue };
        let Ok(v) = json::parse(text, &Limits::AEP2) else {
            continue;
        };
        let Ok(r) = Receipt::from_json(&v) else { continue };
        if r.verify(&ReceiptExpectations::default()).is_ok() {
            let profile = r.domain.as_ref().map(|d| d.profile().as_str());
            valid.insert((r.kind.as_str(), profile));
        }
    }
    for want in [
        (ReceiptKind::MvpEvm.as_str(), None),
        (ReceiptKind::MvpSolana.as_str(), None),
        (ReceiptKind::Native.as_str(), Some("eip712")),
        (ReceiptKind::Native.as_str(), Some("ed25519")),
    ] {
        assert!(
            valid.contains(&want),
            "no receipt seed is a valid {want:?} receipt; valid: {valid:?}"
        );
    }
}

#[test]
fn seeds_reach_valid_signatures() {
    let recovered = seeds("verify_eip712")
        .iter()
        .filter(|(_, d)| d.len() >= 97)
        .any(|(_, d)| {
            let sig: [u8; 65] = d[..65].try_into().unwrap();
            let digest: [u8; 32] = d[65..97].try_into().unwrap();
            secp256k1::recover(&digest, &sig).is_ok()
        });
    assert!(recovered, "no verify_eip712 seed carries a recoverable signature");
    let verified = seeds("verify_ed25519")
        .iter()
        .filter(|(_, d)| d.len() >= 96)
        .any(|(_, d)| {
            let sig: [u8; 64] = d[..64].try_into().unwrap();
            let key: [u8; 32] = d[64..96].try_into().unwrap();
            ed25519::verify_bytes(&key, &d[96..], &sig).is_ok()
        });
    assert!(verified, "no verify_ed25519 seed carries a valid signature");
}
