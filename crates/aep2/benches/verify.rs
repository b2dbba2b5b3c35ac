//! Verification cost per profile: the full merchant path against the raw signature primitive.
//!
//! For each profile, one criterion group (named after the profile) holds the pair
//! - `<profile>/full_path`: `Verifier::verify_header(header, Some(now))` on a realistic header
//!   (key cache warm), i.e. base64 + JSON + schema + digest + signature rules + policy;
//! - `<profile>/raw_k256_recover` (eip712) or `<profile>/raw_dalek_verify_strict` (ed25519,
//!   solana-mvp): the bare library call on the same digest or message and signature.
//!
//! eip712 has more rows: `eip712/raw_libsecp256k1_recover` (the bare libsecp256k1 recovery,
//! with the default feature `libsecp256k1`), `eip712/full_path_k256` (the full path with the
//! pure-Rust k256 backend) and `eip712/full_path_fixtures` (the full path cycling over the
//! valid peer-signed ethers v6 fixtures). `full_path` runs the default backend, and the
//! table compares it with that backend's raw primitive.
//!
//! After the criterion groups the bench runs `node benches/ethers_verify.mjs`, the MVP's
//! ethers v6 verify path over the same fixtures, and prints the Rust/ethers ratio (skipped,
//! with the reason printed, when Node or ethers is missing; `AEP2_BENCH_ETHERS=0` skips it).
//!
//! A third group, `stages`, times the pieces of the full path separately, so a profile that
//! misses the target (full path within 10% of the raw primitive) shows where the time goes.
//! After the run a table of full/raw ratios and full-path mandates per second is printed from
//! criterion's `estimates.json` files. Last, the eip712 target is measured once more with the
//! two sides interleaved (alternating short batches of the full path and the raw libsecp256k1
//! recovery, medians): criterion times them minutes apart, and on a shared machine a slow spell
//! can fall on one side only.
//!
//! Run: `cargo bench -p aep2 --bench verify` (defaults: 1 s warm-up, 3 s measurement, 50
//! samples per benchmark; criterion's command-line flags override them).

#![allow(clippy::unwrap_used, missing_docs)]

use aep2::codec::{base58_decode, base58_encode};
use aep2::crypto::secp256k1::{Backend, with_backend};
use aep2::crypto::{ed25519, secp256k1};
use aep2::envelope::decode_header;
use aep2::verify::parse_ed25519_signature;
use aep2::{
    Base58Key, Domain, Ed25519Domain, Ed25519Mandate, Eip712Domain, EnvelopeForm, EvmAddress, Mandate, MandateDigest,
    PayerKey, Profile, SignedMandate, SigningInput, Verifier, mandate_digest, sign_mandate,
};
use criterion::Criterion;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// "now" for the deadline check: before every fixture deadline.
const NOW: u64 = 1_800_000_000;

/// The eip712 raw primitive the table compares `eip712/full_path` with: the default backend's.
#[cfg(feature = "libsecp256k1")]
const EIP712_RAW: &str = "raw_libsecp256k1_recover";
#[cfg(not(feature = "libsecp256k1"))]
const EIP712_RAW: &str = "raw_k256_recover";

/// The valid eip712 peer-signed fixtures (ethers v6), each with its verifier.
fn eip712_fixtures() -> Vec<(Verifier, String)> {
    let fx = fixtures();
    fx["evm"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["expect"] == "valid")
        .map(|e| {
            let domain = Domain::Eip712(Eip712Domain {
                chain_id: e["chainId"].as_u64().unwrap(),
                verifying_contract: EvmAddress::parse(e["verifyingContract"].as_str().unwrap()).unwrap(),
            });
            let header = e["header"].as_str().unwrap().to_owned();
            let verifier = Verifier::new(domain);
            verifier.verify_header(&header, Some(NOW)).unwrap();
            (verifier, header)
        })
        .collect()
}

/// One profile's benchmark input.
struct Case {
    profile: Profile,
    raw_name: &'static str,
    header: String,
    verifier: Verifier,
    domain: Domain,
    signed: SignedMandate,
    digest: MandateDigest,
}

fn fixtures() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors/peer-signed/peer-signed.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn case(profile: Profile, raw_name: &'static str, header: String, domain: Domain) -> Case {
    let verifier = Verifier::new(domain.clone());
    // Warm the key cache and check the header is valid: a benchmark of a rejection would
    // measure the wrong thing.
    let verified = verifier.verify_header(&header, Some(NOW)).unwrap();
    Case {
        profile,
        raw_name,
        header,
        verifier,
        domain,
        signed: verified.signed,
        digest: verified.digest,
    }
}

fn cases() -> Vec<Case> {
    let fx = fixtures();
    let evm = &fx["evm"][0];
    let eip712_domain = Domain::Eip712(Eip712Domain {
        chain_id: evm["chainId"].as_u64().unwrap(),
        verifying_contract: EvmAddress::parse(evm["verifyingContract"].as_str().unwrap()).unwrap(),
    });
    let sol = &fx["solana"][0];

    // A native ed25519 envelope for the Solana fixture's payer, with realistic keys.
    let seed_hex = sol["signerSeedHex"].as_str().unwrap();
    let seed: [u8; 32] = aep2::codec::hex_decode_0x(seed_hex).unwrap().try_into().unwrap();
    let m = &sol["mandate"];
    let key = |name: &str| Base58Key::parse(m[name].as_str().unwrap()).unwrap();
    let mandate = Mandate::Ed25519(Ed25519Mandate {
        payer: key("payer"),
        token: key("token"),
        payee: key("payee"),
        amount: m["amount"].as_str().unwrap().parse().unwrap(),
        nonce: m["nonce"].as_str().unwrap().parse().unwrap(),
        deadline: m["deadline"].as_u64().unwrap(),
        reference: aep2::hash::sha256(m["ref"].as_str().unwrap().as_bytes()),
    });
    let ed_domain = Domain::Ed25519(Ed25519Domain {
        network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".into(),
        wallet: key("token"),
    });
    let (native, _) = sign_mandate(&mandate, &ed_domain, &PayerKey::Ed25519(seed), EnvelopeForm::Native).unwrap();

    vec![
        case(
            Profile::Eip712,
            EIP712_RAW,
            evm["header"].as_str().unwrap().to_owned(),
            eip712_domain,
        ),
        case(Profile::Ed25519, "raw_dalek_verify_strict", native.encode(), ed_domain),
        case(
            Profile::SolanaMvp,
            "raw_dalek_verify_strict",
            sol["header"].as_str().unwrap().to_owned(),
            Domain::SolanaMvp,
        ),
    ]
}

fn ed25519_parts(c: &Case) -> ([u8; 32], Vec<u8>, [u8; 64]) {
    let payer = match &c.signed.mandate {
        Mandate::Ed25519(m) => m.payer.0,
        Mandate::SolanaMvp(m) => m.payer.0,
        Mandate::Eip712(_) => unreachable!(),
    };
    let SigningInput::Message(msg) = &c.digest.input else {
        unreachable!()
    };
    let sig = base58_decode::<64>(&c.signed.signature).unwrap();
    (payer, msg.clone(), sig)
}

fn bench_pair(cr: &mut Criterion, c: &Case) {
    let mut g = cr.benchmark_group(c.profile.as_str());
    g.bench_function("full_path", |b| {
        b.iter(|| c.verifier.verify_header(black_box(&c.header), Some(NOW)))
    });
    match c.profile {
        Profile::Eip712 => {
            let SigningInput::Eip712(parts) = &c.digest.input else {
                unreachable!()
            };
            let sig = secp256k1::parse_signature(&c.signed.signature).unwrap();
            let signature = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
            let recid = k256::ecdsa::RecoveryId::new(sig[64] == 28, false);
            let prehash = parts.digest;
            g.bench_function("raw_k256_recover", |b| {
                b.iter(|| {
                    k256::ecdsa::VerifyingKey::recover_from_prehash(black_box(&prehash), black_box(&signature), recid)
                })
            });
            #[cfg(feature = "libsecp256k1")]
            {
                let (ctx, msg, signature) = libsecp256k1_inputs(c);
                ctx.recover_ecdsa(msg, &signature).unwrap();
                g.bench_function("raw_libsecp256k1_recover", |b| {
                    b.iter(|| ctx.recover_ecdsa(black_box(msg), black_box(&signature)))
                });
            }
            g.bench_function("full_path_k256", |b| {
                with_backend(Backend::K256, || {
                    b.iter(|| c.verifier.verify_header(black_box(&c.header), Some(NOW)))
                })
            });
            let fixtures = eip712_fixtures();
            let mut i = 0;
            g.bench_function("full_path_fixtures", |b| {
                b.iter(|| {
                    i = (i + 1) % fixtures.len();
                    let (verifier, header) = &fixtures[i];
                    verifier.verify_header(black_box(header), Some(NOW))
                })
            });
        }
        Profile::Ed25519 | Profile::SolanaMvp => {
            let (payer, msg, sig) = ed25519_parts(c);
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&payer).unwrap();
            let signature = ed25519_dalek::Signature::from_bytes(&sig);
            vk.verify_strict(&msg, &signature).unwrap();
            g.bench_function(c.raw_name, |b| {
                b.iter(|| vk.verify_strict(black_box(&msg), black_box(&signature)))
            });
        }
    }
    g.finish();
}

/// The full path's pieces, in the order the verifier runs them.
fn bench_stages(cr: &mut Criterion, cases: &[Case]) {
    let mut g = cr.benchmark_group("stages");
    for c in cases {
        let p = c.profile.as_str();
        let value = decode_header(&c.header).unwrap();
        g.bench_function(format!("{p}_decode"), |b| {
            b.iter(|| decode_header(black_box(&c.header)))
        });
        g.bench_function(format!("{p}_schema"), |b| {
            b.iter(|| SignedMandate::from_json(black_box(&value), c.profile))
        });
        g.bench_function(format!("{p}_digest"), |b| {
            b.iter(|| mandate_digest(black_box(&c.signed.mandate), &c.domain))
        });
        match c.profile {
            Profile::Eip712 => {
                let SigningInput::Eip712(parts) = &c.digest.input else {
                    unreachable!()
                };
                // As the verifier does it: decode the hex, apply the rules, recover, checksum.
                let text = &c.signed.signature;
                g.bench_function(format!("{p}_signature"), |b| {
                    b.iter(|| {
                        let sig = secp256k1::parse_signature(black_box(text))?;
                        secp256k1::recover(&parts.digest, &sig).map(|a| a.to_checksum())
                    })
                });
            }
            Profile::Ed25519 | Profile::SolanaMvp => {
                let (payer, msg, _) = ed25519_parts(c);
                let key = ed25519::Ed25519PublicKey::validate(&payer).unwrap();
                let text = &c.signed.signature;
                // As the verifier does it with a warm key cache: decode the base58, verify.
                g.bench_function(format!("{p}_signature"), |b| {
                    b.iter(|| {
                        let sig = parse_ed25519_signature(black_box(text)).unwrap();
                        ed25519::verify(&key, black_box(&msg), &sig)
                    })
                });
                if c.profile == Profile::SolanaMvp {
                    g.bench_function(format!("{p}_digest_base58_display"), |b| {
                        b.iter(|| base58_encode(black_box(&msg)))
                    });
                }
            }
        }
    }
    g.finish();
}

/// Where criterion writes its results (the same rule criterion uses, minus `cargo metadata`).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("criterion")
}

/// Mean time in nanoseconds of `<group>/<bench>` from the last run, if criterion wrote it.
fn mean_ns(dir: &Path, group: &str, bench: &str) -> Result<f64, String> {
    let path = dir.join(group).join(bench).join("new").join("estimates.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    v["mean"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("{}: no mean.point_estimate", path.display()))
}

fn print_table(dir: &Path, cases: &[Case]) {
    println!();
    println!("Full merchant path vs raw signature primitive (mean times; target full/raw <= 1.10)");
    println!(
        "{:<11} {:>12} {:<24} {:>12} {:>9} {:>14}",
        "profile", "full (us)", "raw primitive", "raw (us)", "full/raw", "full mandates/s"
    );
    for c in cases {
        let p = c.profile.as_str();
        match (mean_ns(dir, p, "full_path"), mean_ns(dir, p, c.raw_name)) {
            (Ok(full), Ok(raw)) => println!(
                "{p:<11} {:>12.2} {:<24} {:>12.2} {:>9.3} {:>14.0}{}",
                full / 1e3,
                c.raw_name,
                raw / 1e3,
                full / raw,
                1e9 / full,
                if full / raw <= 1.10 {
                    ""
                } else {
                    "  (misses the 10% target)"
                }
            ),
            (full, raw) => {
                for e in [full.err(), raw.err()].into_iter().flatten() {
                    println!("{p:<11} estimates missing: {e}");
                }
            }
        }
    }
    if let (Ok(full), Ok(raw)) = (
        mean_ns(dir, "eip712", "full_path_k256"),
        mean_ns(dir, "eip712", "raw_k256_recover"),
    ) {
        println!(
            "{:<11} {:>12.2} {:<24} {:>12.2} {:>9.3} {:>14.0}",
            "eip712-k256",
            full / 1e3,
            "raw_k256_recover",
            raw / 1e3,
            full / raw,
            1e9 / full
        );
    }
    println!();
    println!("Stages of the full path (mean us):");
    for c in cases {
        let p = c.profile.as_str();
        let mut names = vec!["decode", "schema", "digest", "signature"];
        if c.profile == Profile::SolanaMvp {
            names.push("digest_base58_display");
        }
        let cells: Vec<String> = names
            .iter()
            .map(|n| match mean_ns(dir, "stages", &format!("{p}_{n}")) {
                Ok(ns) => format!("{n} {:.2}", ns / 1e3),
                Err(_) => format!("{n} (missing)"),
            })
            .collect();
        println!("  {p:<11} {}", cells.join(", "));
    }
}

/// The eip712 backend's targets: throughput of the full path against a raw libsecp256k1
/// recovery (>= 0.9), and against the MVP's ethers v6 verify path on the same fixtures (>= 60x).
fn print_backend_targets(dir: &Path) {
    println!();
    println!(
        "eip712 backend: {} (crate feature `libsecp256k1`: {})",
        Backend::DEFAULT.as_str(),
        if cfg!(feature = "libsecp256k1") { "on" } else { "off" }
    );
    match (
        mean_ns(dir, "eip712", "full_path"),
        mean_ns(dir, "eip712", "raw_libsecp256k1_recover"),
    ) {
        (Ok(full), Ok(raw)) => println!(
            "eip712 full path / raw libsecp256k1 recovery (throughput, raw time / full time): {:.3} (target >= 0.90{})",
            raw / full,
            if raw / full >= 0.90 { "" } else { ", missed" }
        ),
        (full, raw) => {
            for e in [full.err(), raw.err()].into_iter().flatten() {
                println!("eip712 full path / raw libsecp256k1 recovery: skipped ({e})");
            }
        }
    }
    let rust = match mean_ns(dir, "eip712", "full_path_fixtures") {
        Ok(ns) => ns,
        Err(e) => {
            println!("eip712 full path vs ethers v6 verifyTypedData: skipped ({e})");
            return;
        }
    };
    match ethers_mean_ns() {
        Ok((ns, about)) => println!(
            "eip712 full path vs ethers v6 verifyTypedData on the same fixtures: {:.0}x (target >= 60x{}; Rust {:.2} us, ethers {:.2} us; {about})",
            ns / rust,
            if ns / rust >= 60.0 { "" } else { ", missed" },
            rust / 1e3,
            ns / 1e3
        ),
        Err(e) => println!("eip712 full path vs ethers v6 verifyTypedData: skipped ({e})"),
    }
}

/// Runs `benches/ethers_verify.mjs`: its mean time per verify and a line about the run.
fn ethers_mean_ns() -> Result<(f64, String), String> {
    if std::env::var_os("AEP2_BENCH_ETHERS").is_some_and(|v| v == "0") {
        return Err("AEP2_BENCH_ETHERS=0".into());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ethers_verify.mjs");
    let out = std::process::Command::new("node")
        .arg(&script)
        .arg("3")
        .output()
        .map_err(|e| format!("node not runnable: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().find(|l| l.contains("Error")).unwrap_or("no output");
        return Err(format!(
            "{} failed: {first} (ethers from `npm ci` in crates/aep2-evm/contracts)",
            script.display()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim()).map_err(|e| format!("ethers output: {e}"))?;
    let ns = v["mean_ns"].as_f64().ok_or("ethers output: no mean_ns")?;
    Ok((
        ns,
        format!(
            "ethers {} on node {}, {} fixtures, {} verifies",
            v["ethers"].as_str().unwrap_or("?"),
            v["node"].as_str().unwrap_or("?"),
            v["fixtures"],
            v["iterations"]
        ),
    ))
}

/// The bare libsecp256k1 recovery's inputs for an eip712 case: context, digest, signature.
#[cfg(feature = "libsecp256k1")]
fn libsecp256k1_inputs(
    c: &Case,
) -> (
    ::secp256k1::Secp256k1<::secp256k1::VerifyOnly>,
    ::secp256k1::Message,
    ::secp256k1::ecdsa::RecoverableSignature,
) {
    let SigningInput::Eip712(parts) = &c.digest.input else {
        unreachable!()
    };
    let sig = secp256k1::parse_signature(&c.signed.signature).unwrap();
    let recid = ::secp256k1::ecdsa::RecoveryId::from_u8_masked(sig[64] - 27);
    let signature = ::secp256k1::ecdsa::RecoverableSignature::from_compact(&sig[..64], recid).unwrap();
    (
        ::secp256k1::Secp256k1::verification_only(),
        ::secp256k1::Message::from_digest(parts.digest),
        signature,
    )
}

/// Alternating batches of the full path and the raw libsecp256k1 recovery on one case: the
/// median time of each over `rounds` batches of `batch` calls, in ns. Criterion times one
/// benchmark after the other, so on a shared machine a slow spell can land on one side of the
/// ratio only; alternating short batches puts both under the same load, and the median drops
/// the batches a preemption hit.
#[cfg(feature = "libsecp256k1")]
fn interleaved_eip712(c: &Case, rounds: usize, batch: u32) -> (f64, f64) {
    let (ctx, msg, signature) = libsecp256k1_inputs(c);
    let time = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        for _ in 0..batch {
            f();
        }
        t.elapsed().as_nanos() as f64 / f64::from(batch)
    };
    let mut full = || {
        black_box(c.verifier.verify_header(black_box(&c.header), Some(NOW))).unwrap();
    };
    let mut raw = || {
        black_box(ctx.recover_ecdsa(black_box(msg), black_box(&signature))).unwrap();
    };
    let (mut fulls, mut raws) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for i in 0..rounds {
        // Which goes first alternates too, so neither always runs on a cache the other warmed.
        if i % 2 == 0 {
            fulls.push(time(&mut full));
            raws.push(time(&mut raw));
        } else {
            raws.push(time(&mut raw));
            fulls.push(time(&mut full));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut fulls), median(&mut raws))
}

fn main() {
    let dir = criterion_dir();
    let mut cr = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    let cases = cases();
    for c in &cases {
        bench_pair(&mut cr, c);
    }
    bench_stages(&mut cr, &cases);
    cr.final_summary();
    print_table(&dir, &cases);
    print_backend_targets(&dir);
    #[cfg(feature = "libsecp256k1")]
    if let Some(c) = cases.iter().find(|c| c.profile == Profile::Eip712) {
        // Batches of about 10 ms (the full path takes about 45 us here), so that re-warming the
        // caches after a switch is a small part of each; enough of them for a steady median.
        const ROUNDS: usize = 160;
        const BATCH: u32 = 250;
        let (full, raw) = interleaved_eip712(c, ROUNDS, BATCH);
        println!(
            "eip712 full path / raw libsecp256k1 recovery, interleaved (medians of {ROUNDS} alternating batches of {BATCH}; full {:.2} us, raw {:.2} us): {:.3} (target >= 0.90{})",
            full / 1e3,
            raw / 1e3,
            raw / full,
            if raw / full >= 0.90 { "" } else { ", missed" }
        );
    }
}
