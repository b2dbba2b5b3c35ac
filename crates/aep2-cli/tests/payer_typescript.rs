//! The TypeScript payer package (`crates/payer-packages/typescript`, npm `@aep2/payer`) with the
//! real x402 client: `aep2 serve sp` and `aep2 serve payee` on loopback (an `eip712` and an
//! `ed25519` deployment), and a Node program
//! (`e2e/x402.mjs`) that pays `GET /paid/intent` (Intent Mode, request-bound) and
//! `GET /paid/order` (Order Mode) through `@x402/fetch` `wrapFetchWithPayment` and the package's
//! `aep2` scheme, checks each `PAYMENT-RESPONSE` receipt and the SP's charge, and checks that an
//! unknown outcome (a transport failure before or after the payee served, an outage over a whole
//! call, a `503 settlement_unavailable` while the SP is stalled with SIGSTOP) is retried with the
//! same mandate and charged once. The package's own unit
//! tests (`npm test`, node:test) and its type check (`npm run typecheck`) run here too.
//!
//! Without the package's node_modules (`npm ci` in its folder) or `node`, the tests print a
//! notice and pass; with `AEP2_REQUIRE_CLIENTS=1` (CI) that is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use common::{CONTRACT, Proc, TOKEN, key};
use serde_json::Value as J;
use std::path::{Path, PathBuf};
use std::process::Command;

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../payer-packages/typescript")
}

/// Whether node and the package's modules are present; panics when they must be (CI).
fn clients_present() -> bool {
    let required = std::env::var("AEP2_REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let modules = package_dir().join("node_modules/@x402/fetch/package.json").is_file();
    if node && modules {
        return true;
    }
    let what = if node {
        "crates/payer-packages/typescript/node_modules (run `npm ci` there)"
    } else {
        "node"
    };
    assert!(!required, "AEP2_REQUIRE_CLIENTS=1 but {what} is missing");
    eprintln!("notice: skipping the TypeScript payer tests: {what} is missing");
    false
}

/// `GET path` over HTTP/1.0 (the SP closes the connection after the answer): the JSON body.
fn get_json(addr: &str, path: &str) -> J {
    use std::io::{Read as _, Write as _};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
    serde_json::from_str(body).unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// The deployment a profile's test runs on: the SP's domain entry, the payee's flags, its
/// account and asset, the price.
struct Deployment {
    profile: &'static str,
    domain: J,
    payee_flags: [&'static str; 4],
    payee: &'static str,
    asset: &'static str,
    price: u64,
}

fn deployment(profile: &'static str) -> Deployment {
    match profile {
        "eip712" => Deployment {
            profile,
            domain: serde_json::json!({ "chainId": 84532, "verifyingContract": CONTRACT }),
            payee_flags: ["--chain-id", "84532", "--verifying-contract", CONTRACT],
            payee: "0x4444444444444444444444444444444444444444",
            asset: TOKEN,
            price: 1000,
        },
        _ => Deployment {
            profile,
            domain: serde_json::json!({ "network": ED_NETWORK, "wallet": ED_WALLET }),
            payee_flags: ["--network", ED_NETWORK, "--wallet", ED_WALLET],
            payee: "AxjwQw2GwyvsESkERYTMeFXPxeiHSkymdifN7RjSDQMw",
            asset: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
            price: 750,
        },
    }
}

const ED_NETWORK: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const ED_WALLET: &str = "AnZDD6eXMV3xfhLqXWi6DUp8ebJwYCYfce8sYawVgdan";
const BALANCE: u64 = 1_000_000;

/// Starts an SP and a payee for `profile`, funds the payer, runs `e2e/x402.mjs` and checks what
/// the SP charged.
fn pays_over_x402(profile: &'static str) {
    if !clients_present() {
        return;
    }
    let d = deployment(profile);
    let started = common::now();
    let dir = common::temp_dir("payer-typescript", profile);
    let payer_seed = aep2::hash::sha256(format!("payer-typescript-{profile}").as_bytes());
    let payer = if profile == "eip712" {
        aep2::PayerKey::Secp256k1(key(&format!("payer-typescript-{profile}"))).signer()
    } else {
        aep2::PayerKey::Ed25519(payer_seed).signer()
    };
    let key_kind = if profile == "eip712" { "secp256k1" } else { "ed25519" };
    let cfg = serde_json::json!({
        "listen": "127.0.0.1:0",
        "database": dir.join("ledger.db").display().to_string(),
        "keys": { key_kind: aep2::codec::hex_encode_0x(&aep2::hash::sha256(b"payer-typescript-sp")) },
        "domains": [{ "profile": profile, "domain": d.domain }],
        "settlementWindow": 300,
        "clockSkew": 5,
        "deposits": [{ "id": "initial", "payer": payer, "token": d.asset, "amount": BALANCE.to_string() }],
    });
    std::fs::write(dir.join("sp.json"), cfg.to_string()).unwrap();
    let sp = Proc::spawn(
        &strings(&["serve", "sp", "--config", &dir.join("sp.json").display().to_string()]),
        &dir.join("sp.log"),
    );
    let sp_id = sp.start["sp"][0].as_str().unwrap().to_owned();
    let mut args = strings(&["serve", "payee", "--profile", profile, "--listen", "127.0.0.1:0"]);
    args.extend(strings(&d.payee_flags));
    args.extend(strings(&["--payee", d.payee, "--asset", d.asset]));
    args.extend([
        "--price".to_owned(),
        d.price.to_string(),
        "--sp-url".to_owned(),
        format!("http://{}", sp.addr),
        "--sp".to_owned(),
        sp_id.clone(),
        "--replay-db".to_owned(),
        dir.join("payee.db").display().to_string(),
    ]);
    let payee = Proc::spawn(&args, &dir.join("payee.log"));

    let out = Command::new("node")
        .arg("e2e/x402.mjs")
        .current_dir(package_dir())
        .env("AEP2_PROFILE", d.profile)
        .env("AEP2_PAYEE_URL", format!("http://{}", payee.addr))
        .env("AEP2_SP_URL", format!("http://{}", sp.addr))
        .env("AEP2_PAYER_KEY", payer_key_hex(profile, &payer_seed))
        .env("AEP2_PRICE", d.price.to_string())
        .env("AEP2_SP_PID", sp.child.id().to_string())
        .env("AEP2_SP_ID", &sp_id)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "e2e/x402.mjs ({profile}) failed: {}\nstdout: {stdout}\nstderr: {stderr}\npayee log: {}",
        out.status,
        std::fs::read_to_string(dir.join("payee.log")).unwrap_or_default()
    );
    let v: J = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("result line {stdout:?}: {e}"));
    assert_eq!(v["ok"], true);
    assert_eq!(v["profile"], profile);
    assert_eq!(v["retry"]["attempts"], 2);
    assert_eq!(v["lost"]["reason"], "mandate_replayed");
    assert_eq!(v["stall"]["statuses"], serde_json::json!([503, 200]));
    assert_eq!(v["intent"]["receiptKind"], "native");
    assert!(v["intentOneTrip"]["mandateId"].is_string());
    eprintln!(
        "payer-typescript x402 {profile} ({} s): {}",
        common::now() - started,
        stdout.trim()
    );

    // The SP, asked directly: one charge per paid call (ten; eleven with the MVP envelope's), the
    // retries charged nothing more.
    let calls = if profile == "eip712" { 11 } else { 10 };
    let a = get_json(&sp.addr, &format!("/v1/accounts?payer={payer}"));
    let available: u64 = a["accounts"][0]["available"].as_str().unwrap().parse().unwrap();
    assert_eq!(available, BALANCE - calls * d.price, "{a}");
}

/// The payer's key as the Node program takes it: the secp256k1 secret or the Ed25519 seed.
fn payer_key_hex(profile: &str, seed: &[u8; 32]) -> String {
    if profile == "eip712" {
        aep2::codec::hex_encode_0x(&aep2::hash::sha256(format!("payer-typescript-{profile}").as_bytes()))
    } else {
        aep2::codec::hex_encode_0x(seed)
    }
}

#[test]
fn x402_client_pays_an_eip712_payee_and_retries_with_the_same_mandate() {
    pays_over_x402("eip712");
}

#[test]
fn x402_client_pays_an_ed25519_payee_and_retries_with_the_same_mandate() {
    pays_over_x402("ed25519");
}

#[test]
fn npm_unit_tests_and_typecheck_pass() {
    if !clients_present() {
        return;
    }
    let out = Command::new("node")
        .args(["--test", "test/"])
        .current_dir(package_dir())
        // The lane tests check what the package signs with this build's `aep2 verify`.
        .env("AEP2_BIN", env!("CARGO_BIN_EXE_aep2"))
        .output()
        .expect("run node --test");
    assert!(
        out.status.success(),
        "npm test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The declarations (src/index.d.ts) against @x402/core's own types and the README's snippet
    // (examples/agent.ts), with the pinned typescript.
    let out = Command::new("node")
        .args(["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"])
        .current_dir(package_dir())
        .output()
        .expect("run tsc");
    assert!(
        out.status.success(),
        "npm run typecheck failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
