//! Differential tests of the secp256k1 backends (k256 and libsecp256k1): the same verdict,
//! reason code and recovered address on
//! - proptest inputs: fresh low-s signatures by random keys over random digests, and their
//!   malformed variants (high s, r = 0, s = 0, s ≥ n, r ≥ n, v outside {27, 28}, r with no
//!   curve point, random bytes);
//! - the peer-signed fixtures (ethers v6), through the full merchant path.
//!
//! Every vector file's cases are compared under both backends in
//! `crates/aep2-vectors/tests/backends.rs`.

#![cfg(feature = "libsecp256k1")]
#![allow(clippy::unwrap_used)]

use aep2::crypto::secp256k1::{self, Backend, HALF_N, N, SecretKey, recover_with, with_backend};
use aep2::{Domain, Eip712Domain, EvmAddress, Verifier};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    }
}

/// Both backends' answers, asserted equal (the whole `Result`: address, or code and message).
fn both(prehash: &[u8; 32], sig: &[u8; 65]) -> aep2::Result<EvmAddress> {
    let k = recover_with(Backend::K256, prehash, sig);
    let l = recover_with(Backend::Libsecp256k1, prehash, sig);
    assert_eq!(
        k,
        l,
        "backends disagree on digest {} sig {}",
        aep2::codec::hex_encode_0x(prehash),
        aep2::codec::hex_encode_0x(sig)
    );
    assert_eq!(secp256k1::recover(prehash, sig), l, "the default backend");
    k
}

/// a − b on 256-bit big-endian numbers, a ≥ b.
fn sub(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + (borrow << 8)) as u8;
    }
    out
}

/// a + small, no overflow past 2^256 for the values used.
fn add_small(a: &[u8; 32], small: u8) -> [u8; 32] {
    let mut out = *a;
    let mut carry = u16::from(small);
    for byte in out.iter_mut().rev() {
        let s = u16::from(*byte) + carry;
        *byte = s as u8;
        carry = s >> 8;
    }
    out
}

fn code(r: &aep2::Result<EvmAddress>) -> Option<&'static str> {
    r.as_ref().err().map(|e| e.code())
}

proptest! {
    #![proptest_config(config())]

    /// Both libraries sign every digest with every key to the same 65 bytes (RFC 6979 nonces,
    /// low s, the same recovery id), and the signature recovers to the key's address.
    #[test]
    fn signing_is_byte_identical(key in any::<[u8; 32]>(), digest in any::<[u8; 32]>()) {
        let Some(key) = SecretKey::from_bytes(&key) else { return Ok(()); };
        let signatures: Vec<[u8; 65]> = Backend::ALL.iter().map(|b| key.sign_prehash_with(*b, &digest)).collect();
        for s in &signatures {
            prop_assert_eq!(s, &signatures[0]);
            prop_assert_eq!(both(&digest, s).ok(), Some(key.address()));
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signed_and_malformed(key in any::<[u8; 32]>(), digest in any::<[u8; 32]>(),
                            small in 0u8..=255, bad_v in any::<u8>(), word in any::<[u8; 32]>()) {
        let Some(sk) = SecretKey::from_bytes(&key) else { return Ok(()) };
        let good = sk.sign_prehash(&digest);
        prop_assert_eq!(both(&digest, &good), Ok(sk.address()));
        // Another digest: some other address, or unrecoverable; the same under both.
        both(&word, &good).ok();

        let s: [u8; 32] = good[32..64].try_into().unwrap();
        let with = |f: &dyn Fn(&mut [u8; 65])| { let mut x = good; f(&mut x); x };

        // High s: n − s with v flipped recovers the same key in libraries that allow it.
        let high = with(&|x| { x[32..64].copy_from_slice(&sub(&N, &s)); x[64] = if good[64] == 27 { 28 } else { 27 }; });
        prop_assert_eq!(code(&both(&digest, &high)), Some("signature_high_s"));
        let half_plus = with(&|x| x[32..64].copy_from_slice(&add_small(&HALF_N, small.max(1))));
        prop_assert_eq!(code(&both(&digest, &half_plus)), Some("signature_high_s"));
        let s_ge_n = with(&|x| x[32..64].copy_from_slice(&add_small(&N, small)));
        prop_assert_eq!(code(&both(&digest, &s_ge_n)), Some("signature_high_s"));
        let r0 = with(&|x| x[..32].fill(0));
        prop_assert_eq!(code(&both(&digest, &r0)), Some("signature_scalar_out_of_range"));
        let s0 = with(&|x| x[32..64].fill(0));
        prop_assert_eq!(code(&both(&digest, &s0)), Some("signature_scalar_out_of_range"));
        let r_ge_n = with(&|x| x[..32].copy_from_slice(&add_small(&N, small)));
        prop_assert_eq!(code(&both(&digest, &r_ge_n)), Some("signature_scalar_out_of_range"));
        let v = if bad_v == 27 || bad_v == 28 { bad_v.wrapping_sub(27) } else { bad_v };
        let bad = with(&|x| x[64] = v);
        prop_assert_eq!(code(&both(&digest, &bad)), Some("signature_v_invalid"));
        // Any r below n: about half have no point with x = r (unrecoverable), the rest recover
        // some key; the flipped v recovers the other one.
        let mut r = word;
        r[0] &= 0x7f;
        let any_r = with(&|x| x[..32].copy_from_slice(&r));
        both(&digest, &any_r).ok();
        let flipped = with(&|x| x[64] = if good[64] == 27 { 28 } else { 27 });
        prop_assert_ne!(both(&digest, &flipped).ok(), Some(sk.address()));
    }

    #[test]
    fn random_bytes(prehash in any::<[u8; 32]>(), body in any::<[u8; 64]>(), v in prop_oneof![Just(27u8), Just(28u8), any::<u8>()]) {
        let mut sig = [0u8; 65];
        sig[..64].copy_from_slice(&body);
        sig[64] = v;
        both(&prehash, &sig).ok();
        // And with s forced low, so the recovery itself runs on most inputs.
        sig[32] &= 0x7f;
        both(&prehash, &sig).ok();
    }
}

#[test]
fn unrecoverable_r_agrees() {
    // x = 5 is not on the curve (5³ + 7 = 132 is a quadratic non-residue mod p): no point.
    let mut sig = [0u8; 65];
    sig[31] = 5;
    sig[63] = 1;
    sig[64] = 27;
    let digest = [7u8; 32];
    let r = both(&digest, &sig);
    assert_eq!(code(&r), Some("signature_unrecoverable"));
}

#[test]
fn peer_signed_fixtures_same_verdict_under_both_backends() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut paths = vec![root.join("vectors/peer-signed/peer-signed.json")];
    let shared = std::path::Path::new("/work/shared/fixtures/peer-signed/peer-signed.json");
    if shared.exists() {
        paths.push(shared.to_path_buf());
    }
    let mut n = 0;
    for path in paths {
        let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for evm in fx["evm"].as_array().unwrap() {
            let domain = Domain::Eip712(Eip712Domain {
                chain_id: evm["chainId"].as_u64().unwrap(),
                verifying_contract: EvmAddress::parse(evm["verifyingContract"].as_str().unwrap()).unwrap(),
            });
            let verifier = Verifier::new(domain);
            let header = evm["header"].as_str().unwrap();
            let verdicts: Vec<_> = Backend::ALL
                .iter()
                .map(|&b| {
                    with_backend(b, || match verifier.verify_header(header, None) {
                        Ok(v) => Ok((v.signer(), v.digest.display())),
                        Err(e) => Err(e.code()),
                    })
                })
                .collect();
            assert_eq!(verdicts[0], verdicts[1], "{}", evm["id"]);
            if let (Ok((signer, _)), Some(expected)) = (&verdicts[0], evm["signer"].as_str()) {
                assert_eq!(signer.to_lowercase(), expected.to_lowercase(), "{}", evm["id"]);
            }
            n += 1;
        }
    }
    assert!(n >= 7);
}

#[test]
fn override_is_scoped() {
    assert_eq!(secp256k1::current_backend(), Backend::DEFAULT);
    with_backend(Backend::K256, || {
        assert_eq!(secp256k1::current_backend(), Backend::K256);
        with_backend(Backend::Libsecp256k1, || {
            assert_eq!(secp256k1::current_backend(), Backend::Libsecp256k1)
        });
        assert_eq!(secp256k1::current_backend(), Backend::K256);
    });
    assert_eq!(secp256k1::current_backend(), Backend::DEFAULT);
}
