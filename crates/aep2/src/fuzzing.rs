//! Fuzz entry points, one function per target.
//!
//! These functions are shared by the cargo-fuzz package in `fuzz/` (each target there is a
//! one-line `fuzz_target!` calling the function of the same name) and by the stable-Rust
//! corpus replay test `crates/aep2/tests/fuzz_corpus.rs`, which runs every committed seed in
//! `fuzz/corpus/<target>/` through them on every `cargo test`.
//!
//! Each function takes arbitrary bytes, must never panic on its own account, and checks the
//! crate's invariants with `assert!`: the fuzzer reports any panic (a failed invariant or a
//! panic inside the library) as a bug. Input-derived data is never unwrapped outside an
//! assertion.
//!
//! Not a stable interface: hidden from the documentation and subject to change.

use crate::address::{Base58Key, EvmAddress};
use crate::codec::{base58_encode, base64_encode, hex_encode_0x};
use crate::crypto::{ed25519, secp256k1};
use crate::digest::mandate_digest;
use crate::eip712::personal_sign_hash;
use crate::envelope::{EnvelopeForm, MAX_HEADER_BYTES, SignedMandate};
use crate::error::Result;
use crate::hash::sha256;
use crate::json::{self, Limits, Value};
use crate::mandate::Mandate;
use crate::profile::{Domain, Ed25519Domain, Eip712Domain, Profile};
use crate::reason::Reason;
use crate::receipt::{Receipt, ReceiptExpectations, ReceiptKind, SpId};
use crate::verify::{Report, Verifier, parse_ed25519_signature};
use std::sync::LazyLock;

/// Chain id of the EIP-712 domain the fuzz verifiers expect (the peer-signed fixtures' chain).
pub const FUZZ_CHAIN_ID: u64 = 84532;
/// Verifying contract of that domain, `0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912`.
pub const FUZZ_VERIFYING_CONTRACT: [u8; 20] = [
    0x91, 0xd8, 0x61, 0xcd, 0x4d, 0x2f, 0x5d, 0x8f, 0xfb, 0x31, 0xcb, 0x73, 0x08, 0x38, 0x8c, 0xa5, 0xe6, 0x99, 0x99,
    0x12,
];
/// CAIP-2 network of the native Ed25519 domain the fuzz verifiers expect.
pub const FUZZ_NETWORK: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
/// The native Ed25519 domain's wallet is SHA-256 of this label (so `fuzz/seeds.py` can sign
/// seeds for the same domain).
pub const FUZZ_WALLET_LABEL: &[u8] = b"aep2/fuzz/wallet";
/// The `now` (unix seconds) the fuzz verifiers check deadlines against: before every fixture
/// deadline, so valid seeds stay valid.
pub const FUZZ_NOW: u64 = 1_700_000_000;

/// The domain the fuzz verifier for `profile` expects.
pub fn fuzz_domain(profile: Profile) -> Domain {
    match profile {
        Profile::Eip712 => Domain::Eip712(Eip712Domain {
            chain_id: FUZZ_CHAIN_ID,
            verifying_contract: EvmAddress(FUZZ_VERIFYING_CONTRACT),
        }),
        Profile::Ed25519 => Domain::Ed25519(Ed25519Domain {
            network: FUZZ_NETWORK.to_owned(),
            wallet: Base58Key(sha256(FUZZ_WALLET_LABEL)),
        }),
        Profile::SolanaMvp => Domain::SolanaMvp,
    }
}

/// One verifier per profile, in [`Profile::ALL`] order, shared across fuzz iterations so the
/// Ed25519 key cache is exercised warm as well as cold.
static VERIFIERS: LazyLock<Vec<(Profile, Verifier)>> = LazyLock::new(|| {
    Profile::ALL
        .into_iter()
        .map(|p| (p, Verifier::new(fuzz_domain(p))))
        .collect()
});

/// A comparable summary of a result: `Ok` or the reason code.
fn code<T>(r: &Result<T>) -> core::result::Result<(), &'static str> {
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err(e.code()),
    }
}

/// Chooses an index below `n` (> 0) from the input, so a one-byte change steers which byte of
/// a signature gets flipped.
fn pick(data: &[u8], n: usize) -> usize {
    let seed = data
        .iter()
        .fold(data.len(), |acc, &b| acc.wrapping_mul(31).wrapping_add(usize::from(b)));
    seed % n
}

fn take<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = data.get(at..) {
        let n = src.len().min(N);
        out[..n].copy_from_slice(&src[..n]);
    }
    out
}

// ---------------------------------------------------------------------------------------
// header_decode
// ---------------------------------------------------------------------------------------

/// Target `header_decode`: the bytes as header text, and the bytes as envelope JSON (base64
/// encoded here, so mutations reach the schema stage without having to survive base64).
///
/// For every profile: `SignedMandate::decode` and `Verifier::check_header` agree; any
/// accepted envelope satisfies `decode(encode(x)) == x`, `encode` is a fixed point, and the
/// verdict of the re-encoded header equals the verdict of the original (a verdict depends
/// only on the decoded envelope, never on its spelling).
pub fn header_decode(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        header_text(text);
    }
    if data.len() <= MAX_HEADER_BYTES / 4 * 3 {
        header_text(&base64_encode(data));
    }
}

fn report_summary(r: &Report) -> (core::result::Result<(), &'static str>, Option<[u8; 32]>, Option<String>) {
    (
        code(&r.verdict),
        r.digest.as_ref().map(|d| d.id),
        r.recovered.map(|a| a.to_checksum()),
    )
}

fn header_text(text: &str) {
    for (profile, verifier) in VERIFIERS.iter() {
        let profile = *profile;
        let report = verifier.check_header(text, Some(FUZZ_NOW));
        if report.verdict.is_ok() {
            assert!(
                report.signed.is_some() && report.digest.is_some(),
                "a valid report carries the envelope and digest"
            );
        }
        match SignedMandate::decode(text, profile) {
            Ok(sm) => {
                assert_eq!(
                    sm.mandate.profile(),
                    profile,
                    "decoded mandate has the expected profile"
                );
                assert_eq!(
                    sm.domain.is_some(),
                    sm.form == EnvelopeForm::Native,
                    "only native envelopes carry a domain"
                );
                if let Some(d) = &sm.domain {
                    assert_eq!(d.profile(), profile, "claimed domain belongs to the profile");
                }
                assert_eq!(
                    report.signed.as_ref(),
                    Some(&sm),
                    "verifier schema stage agrees with SignedMandate::decode"
                );

                let encoded = sm.encode();
                let again = match SignedMandate::decode(&encoded, profile) {
                    Ok(x) => x,
                    Err(e) => panic!("re-encoded {profile} envelope rejected with {e}: {encoded}"),
                };
                assert_eq!(again, sm, "decode(encode(x)) == x");
                assert_eq!(again.encode(), encoded, "encode is a fixed point");

                let report2 = verifier.check_header(&encoded, Some(FUZZ_NOW));
                assert_eq!(
                    report_summary(&report2),
                    report_summary(&report),
                    "verdict depends on the spelling: {encoded}"
                );

                if let Ok(verified) = report.clone().into_result() {
                    assert_eq!(
                        verified.signer(),
                        sm.mandate.signer(),
                        "the signer of a valid mandate is its owner/payer"
                    );
                    let domain = sm.domain.clone().unwrap_or_else(|| fuzz_domain(profile));
                    assert_eq!(
                        verifier.expected(),
                        &domain,
                        "a valid mandate is signed for the expected domain"
                    );
                }
            }
            Err(e) => {
                assert!(
                    report.signed.is_none(),
                    "schema stage failed, yet the report carries an envelope"
                );
                assert_eq!(
                    code(&report.verdict),
                    Err(e.code()),
                    "verifier and decode disagree on the rejection"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// mandate_json
// ---------------------------------------------------------------------------------------

/// Target `mandate_json`: the bytes as JSON.
///
/// For any parsed value: compact output re-parses to the same value; JCS output is
/// deterministic, re-parseable, idempotent and as long as the compact form. For every profile,
/// an accepted mandate (the value itself, or its `mandate` member) satisfies
/// `from_json(to_json(m)) == m` and has a digest under the profile's domain; an accepted
/// domain (the value or its `domain` member) round-trips likewise.
pub fn mandate_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(v) = json::parse(text, &Limits::AEP2) else {
        return;
    };
    json_invariants(&v);
    mandate_invariants(&v);
    domain_invariants(&v);
    if let Value::Object(obj) = &v {
        if let Some(m) = obj.get("mandate") {
            mandate_invariants(m);
        }
        if let Some(d) = obj.get("domain") {
            domain_invariants(d);
        }
    }
}

fn json_invariants(v: &Value) {
    let compact = json::to_compact(v);
    match json::parse(&compact, &Limits::AEP2) {
        Ok(back) => assert_eq!(&back, v, "compact output re-parses to the same value"),
        Err(e) => panic!("compact output rejected with {e}: {compact}"),
    }
    let canonical = json::to_canonical(v);
    assert_eq!(json::to_canonical(v), canonical, "JCS is deterministic");
    match json::parse(&canonical, &Limits::AEP2) {
        Ok(back) => {
            assert_eq!(json::to_canonical(&back), canonical, "JCS is idempotent");
            assert!(
                same_value(v, &back),
                "JCS only reorders members and rewrites numbers: {canonical}"
            );
        }
        Err(e) => panic!("canonical output rejected with {e}: {canonical}"),
    }
}

/// Equality up to member order and number spelling (numbers compared as IEEE 754 doubles).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.parse::<f64>().ok() == y.parse::<f64>().ok(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| same_value(p, q)))
        }
        _ => a == b,
    }
}

fn mandate_invariants(v: &Value) {
    for profile in Profile::ALL {
        let Ok(m) = Mandate::from_json(profile, v) else {
            continue;
        };
        assert_eq!(m.profile(), profile);
        let j = Value::Object(m.to_json());
        match Mandate::from_json(profile, &j) {
            Ok(back) => assert_eq!(back, m, "from_json(to_json(m)) == m"),
            Err(e) => panic!(
                "{profile} mandate's own JSON rejected with {e}: {}",
                json::to_compact(&j)
            ),
        }
        assert_eq!(Value::Object(Mandate::to_json(&m)), j, "to_json is deterministic");
        let d1 = mandate_digest(&m, &fuzz_domain(profile));
        let d2 = mandate_digest(&m, &fuzz_domain(profile));
        assert!(d1.is_ok(), "a mandate has a digest under its own profile's domain");
        assert_eq!(d1, d2, "the digest is deterministic");
        for other in Profile::ALL.into_iter().filter(|&p| p != profile) {
            let e = mandate_digest(&m, &fuzz_domain(other)).err().map(|e| e.reason());
            assert_eq!(
                e,
                Some(Reason::ProfileMismatch),
                "a {profile} mandate under a {other} domain"
            );
        }
    }
}

fn domain_invariants(v: &Value) {
    for profile in [Profile::Eip712, Profile::Ed25519] {
        let Ok(d) = Domain::from_json(profile, v) else { continue };
        assert_eq!(d.profile(), profile);
        let Some(obj) = d.to_json() else {
            panic!("a {profile} domain has a JSON form")
        };
        match Domain::from_json(profile, &Value::Object(obj)) {
            Ok(back) => assert_eq!(back, d, "Domain::from_json(to_json(d)) == d"),
            Err(e) => panic!("{profile} domain's own JSON rejected with {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// verify_eip712
// ---------------------------------------------------------------------------------------

/// Target `verify_eip712`. Layout (short input is zero-padded): bytes `0..65` a signature
/// r ‖ s ‖ v, `65..97` a prehash, the rest a message (also recovered over its EIP-191 hash).
/// If the message is at least 32 bytes and those are a valid secret key, the prehash is
/// signed with it and the fresh signature must recover to that key's address.
///
/// Invariants: `recover` never panics and is deterministic; the signature's hex form
/// round-trips through `parse_signature`; when a signature recovers to an address, flipping
/// any one byte of it (the byte is chosen from the input) or of the prehash never yields a
/// valid signature for the same address.
pub fn verify_eip712(data: &[u8]) {
    let sig: [u8; 65] = take(data, 0);
    let prehash: [u8; 32] = take(data, 65);
    let message = data.get(97..).unwrap_or(&[]);

    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(parsed) = secp256k1::parse_signature(text)
    {
        assert_eq!(
            secp256k1::parse_signature(&hex_encode_0x(&parsed)).ok(),
            Some(parsed),
            "signature hex round trip"
        );
    }
    assert_eq!(
        secp256k1::parse_signature(&hex_encode_0x(&sig)).ok(),
        Some(sig),
        "signature hex round trip"
    );

    check_recovery(&sig, &prehash, data);
    check_recovery(&sig, &personal_sign_hash(message), data);

    if let Some(key_bytes) = message.get(..32) {
        let key_bytes: [u8; 32] = take(key_bytes, 0);
        if let Some(key) = secp256k1::SecretKey::from_bytes(&key_bytes) {
            let fresh = key.sign_prehash(&prehash);
            let got = secp256k1::recover(&prehash, &fresh);
            assert_eq!(
                got.ok(),
                Some(key.address()),
                "a fresh low-s signature recovers to its signer"
            );
            check_recovery(&fresh, &prehash, data);
        }
    }
}

fn check_recovery(sig: &[u8; 65], prehash: &[u8; 32], data: &[u8]) {
    let first = secp256k1::recover(prehash, sig);
    let second = secp256k1::recover(prehash, sig);
    assert_eq!(first, second, "recovery is deterministic");
    for &backend in secp256k1::Backend::ALL {
        assert_eq!(
            secp256k1::recover_with(backend, prehash, sig),
            first,
            "the {} backend disagrees with the default",
            backend.as_str()
        );
    }
    let Ok(signer) = first else { return };

    let mut flipped = *sig;
    let i = pick(data, flipped.len());
    flipped[i] ^= 1 << pick(&[data.len() as u8], 8);
    assert_ne!(
        secp256k1::recover(prehash, &flipped).ok(),
        Some(signer),
        "signature with byte {i} flipped is still valid for {signer}"
    );

    let mut other = *prehash;
    let j = pick(sig, other.len());
    other[j] ^= 0x80;
    assert_ne!(
        secp256k1::recover(&other, sig).ok(),
        Some(signer),
        "signature is valid for a different prehash"
    );
}

// ---------------------------------------------------------------------------------------
// verify_ed25519
// ---------------------------------------------------------------------------------------

/// Target `verify_ed25519`. Layout (short input is zero-padded): bytes `0..64` a signature
/// R ‖ S, `64..96` a public key, the rest the message. The key bytes are also used as a
/// secret seed whose fresh signature over the message must verify.
///
/// Invariants: `verify_bytes` never panics, is deterministic, agrees with key validation
/// followed by `verify` and with the key cache; a valid signature with any one byte flipped
/// (the byte is chosen from the input), or over a changed message, is rejected; honest
/// signatures pass every strictness rule.
pub fn verify_ed25519(data: &[u8]) {
    let sig: [u8; 64] = take(data, 0);
    let key: [u8; 32] = take(data, 64);
    let message = data.get(96..).unwrap_or(&[]);

    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(parsed) = parse_ed25519_signature(text)
    {
        assert_eq!(
            parse_ed25519_signature(&base58_encode(&parsed)).ok(),
            Some(parsed),
            "signature base58 round trip"
        );
    }
    assert_eq!(
        parse_ed25519_signature(&base58_encode(&sig)).ok(),
        Some(sig),
        "signature base58 round trip"
    );

    check_ed25519(&key, message, &sig, data);

    let public = ed25519::public_key_from_seed(&key);
    let fresh = ed25519::sign(&key, message);
    assert_eq!(
        ed25519::verify_bytes(&public, message, &fresh),
        Ok(()),
        "an honest signature verifies"
    );
    check_ed25519(&public, message, &fresh, data);
}

fn check_ed25519(key: &[u8; 32], message: &[u8], sig: &[u8; 64], data: &[u8]) {
    let first = ed25519::verify_bytes(key, message, sig);
    let validated = ed25519::Ed25519PublicKey::validate(key);
    let mut cache = ed25519::KeyCache::new(1);
    let cold = cache.get_or_validate(key);
    let warm = cache.get_or_validate(key);
    assert_eq!(cold, validated, "the key cache returns what validation returns");
    assert_eq!(warm, validated, "the key cache returns what validation returns");
    let k = match validated {
        Ok(k) => k,
        Err(r) => {
            assert_eq!(first, Err(r), "an invalid key fails with its key reason");
            return;
        }
    };
    assert_eq!(k.as_bytes(), key);
    assert_eq!(
        ed25519::verify(&k, message, sig),
        first,
        "verify_bytes == validate + verify, deterministically"
    );
    if first.is_err() {
        return;
    }

    let mut flipped = *sig;
    let i = pick(data, flipped.len());
    flipped[i] ^= 1 << pick(&[data.len() as u8], 8);
    assert!(
        ed25519::verify(&k, message, &flipped).is_err(),
        "signature with byte {i} flipped still verifies"
    );

    let mut longer = message.to_vec();
    longer.push(0);
    assert!(
        ed25519::verify(&k, &longer, sig).is_err(),
        "signature verifies for an extended message"
    );
    if !message.is_empty() {
        let mut changed = message.to_vec();
        let j = pick(sig, changed.len());
        changed[j] ^= 1;
        assert!(
            ed25519::verify(&k, &changed, sig).is_err(),
            "signature verifies for a changed message"
        );
    }
}

// ---------------------------------------------------------------------------------------
// receipt_json
// ---------------------------------------------------------------------------------------

/// Target `receipt_json`: the bytes as receipt JSON.
///
/// For any accepted receipt: `from_json(to_json(r)) == r` and `to_json` is a fixed point; its
/// signing payload exists; verification never panics and is deterministic, also for the
/// re-encoded receipt; a receipt that verifies is accepted for its own SP and rejected with
/// any one signature byte flipped.
pub fn receipt_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(v) = json::parse(text, &Limits::AEP2) else {
        return;
    };
    let Ok(r) = Receipt::from_json(&v) else { return };

    assert_eq!(
        r.domain.is_some(),
        r.kind == ReceiptKind::Native,
        "only native receipts carry a domain"
    );
    let j = r.to_json();
    let back = match Receipt::from_json(&j) {
        Ok(x) => x,
        Err(e) => panic!("a receipt's own JSON rejected with {e}: {}", json::to_compact(&j)),
    };
    assert_eq!(back, r, "from_json(to_json(r)) == r");
    assert_eq!(back.to_json(), j, "to_json is a fixed point");

    let payload = r.signing_payload();
    assert!(
        payload.is_ok(),
        "an accepted receipt has a signing payload: {:?}",
        payload.err()
    );
    assert_eq!(back.signing_payload(), payload);

    let none = ReceiptExpectations::default();
    let verdict = r.verify(&none);
    assert_eq!(
        code(&r.verify(&none)),
        code(&verdict),
        "receipt verification is deterministic"
    );
    assert_eq!(
        code(&back.verify(&none)),
        code(&verdict),
        "verdict depends on the spelling"
    );
    if verdict.is_err() {
        return;
    }

    let own = ReceiptExpectations {
        sp: Some(&r.sp),
        ..ReceiptExpectations::default()
    };
    assert_eq!(
        code(&r.verify(&own)),
        Ok(()),
        "a valid receipt is accepted for its own SP"
    );

    let mut tampered = r.clone();
    tampered.signature = match r.sp {
        SpId::Evm(_) => match secp256k1::parse_signature(&r.signature) {
            Ok(mut s) => {
                let i = pick(data, s.len());
                s[i] ^= 1;
                hex_encode_0x(&s)
            }
            Err(e) => panic!("a verified receipt's signature does not parse: {e}"),
        },
        SpId::Ed25519(_) => match parse_ed25519_signature(&r.signature) {
            Ok(mut s) => {
                let i = pick(data, s.len());
                s[i] ^= 1;
                base58_encode(&s)
            }
            Err(e) => panic!("a verified receipt's signature does not parse: {e}"),
        },
    };
    assert!(
        tampered.verify(&none).is_err(),
        "a receipt with a flipped signature byte still verifies"
    );
}

/// The committed seed corpus of `target` (`fuzz/corpus/<target>/`), sorted by file name.
///
/// For the stable-Rust replay tests of every crate with fuzz entry points. Panics when the
/// directory is missing or empty, so a replay can never pass vacuously.
pub fn corpus_seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus")).join(target);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => panic!(
            "corpus directory {} is missing ({e}); run `python3 fuzz/seeds.py`",
            dir.display()
        ),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = match entry {
            Ok(e) => e.path(),
            Err(e) => panic!("reading {}: {e}", dir.display()),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::read(&path) {
            Ok(data) => out.push((name, data)),
            Err(e) => panic!("reading {}: {e}", path.display()),
        }
    }
    out.sort();
    assert!(
        !out.is_empty(),
        "corpus directory {} is empty; run `python3 fuzz/seeds.py`",
        dir.display()
    );
    out
}

/// Runs every seed of `target` through `run`, then fails naming every seed that panicked.
pub fn replay_corpus(target: &str, run: fn(&[u8])) {
    let seeds = corpus_seeds(target);
    let failed: Vec<&str> = seeds
        .iter()
        .filter(|(_, data)| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(data))).is_err())
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} of {} seeds failed (see the panic messages above): {failed:?}",
        failed.len(),
        seeds.len()
    );
}
