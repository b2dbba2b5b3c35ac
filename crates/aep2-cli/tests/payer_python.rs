//! The Python payer package (`crates/payer-packages/python`, `aep2-payer`) with the real x402 SDK
//! against `aep2 serve sp` and `aep2 serve payee` on loopback: Intent Mode (request-bound) and
//! Order Mode paid through `x402Client` and its httpx transport (and a POST through the SDK's requests
//! adapter), every receipt verified, and the
//! safe-retry cases (a paid attempt failing before or after it reaches the payee, an SP stall) each
//! presenting the same mandate again and charged once. Then the package's pytest unit tests.
//!
//! Needs the venv `target/venv-payer-py` (CI: `python3 -m venv` + `pip install --require-hashes -r
//! crates/payer-packages/python/requirements.txt`); without it the test prints a notice and passes,
//! unless `AEP2_REQUIRE_CLIENTS=1`, when a missing venv is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use common::{CONTRACT, Proc, TOKEN, key};
use serde_json::Value as J;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn package() -> PathBuf {
    workspace().join("crates/payer-packages/python")
}

/// The venv's interpreter, or `None` (with a notice) when it is absent and not required.
fn python() -> Option<PathBuf> {
    let py = workspace().join("target/venv-payer-py/bin/python");
    let usable = py.exists()
        && Command::new(&py)
            .args(["-c", "import x402, mcp, requests, coincurve, Crypto, pytest"])
            .status()
            .is_ok_and(|s| s.success());
    if usable {
        return Some(py);
    }
    let msg = format!(
        "{} is missing or lacks the pinned packages: python3 -m venv target/venv-payer-py && \
         target/venv-payer-py/bin/pip install --require-hashes -r crates/payer-packages/python/requirements.txt",
        py.display()
    );
    assert!(
        std::env::var("AEP2_REQUIRE_CLIENTS").as_deref() != Ok("1"),
        "AEP2_REQUIRE_CLIENTS=1: {msg}"
    );
    eprintln!("skipped: {msg}");
    None
}

#[test]
fn python_payer_pays_through_the_x402_sdk() {
    let Some(py) = python() else { return };
    let dir = common::temp_dir("payer-python", "e2e");
    let payer = key("payer-python-payer");
    let sp_key = key("payer-python-sp");
    let cfg = serde_json::json!({
        "listen": "127.0.0.1:0",
        "database": "ledger.db",
        "keys": { "secp256k1": aep2::codec::hex_encode_0x(&aep2::hash::sha256(b"payer-python-sp")) },
        "domains": [{ "profile": "eip712", "domain": { "chainId": 84532, "verifyingContract": CONTRACT } }],
        "settlementWindow": 300,
        "clockSkew": 5,
        "deposits": [{ "id": "initial", "payer": payer.address().to_checksum(), "token": TOKEN, "amount": "1000000" }],
    });
    std::fs::write(dir.join("sp.json"), cfg.to_string()).unwrap();
    let sp = Proc::spawn(
        &[
            "serve".into(),
            "sp".into(),
            "--config".into(),
            dir.join("sp.json").display().to_string(),
        ],
        &dir.join("sp.log"),
    );
    let payee_args: Vec<String> = [
        "serve",
        "payee",
        "--profile",
        "eip712",
        "--chain-id",
        "84532",
        "--verifying-contract",
        CONTRACT,
        "--asset",
        TOKEN,
        "--payee",
        "0x4444444444444444444444444444444444444444",
        "--price",
        "1000",
        "--listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        "--sp-url".to_owned(),
        format!("http://{}", sp.addr),
        "--sp".to_owned(),
        sp_key.address().to_checksum(),
        "--data-dir".to_owned(),
        dir.join("payee").display().to_string(),
    ])
    .collect();
    let payee = Proc::spawn(&payee_args, &dir.join("payee.log"));

    let out = Command::new(&py)
        .arg(package().join("tests/e2e_payee.py"))
        .args([
            format!("http://{}", payee.addr),
            format!("http://{}", sp.addr),
            aep2::codec::hex_encode_0x(&aep2::hash::sha256(b"payer-python-payer")),
            sp_key.address().to_checksum(),
            TOKEN.to_owned(),
            sp.child.id().to_string(),
        ])
        .env("PYTHONPATH", package().join("src"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "e2e_payee.py failed: {}\nstdout: {stdout}\nstderr: {stderr}\npayee log: {}",
        out.status,
        std::fs::read_to_string(dir.join("payee.log")).unwrap_or_default()
    );
    let v: J = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{stdout}: {e}"));
    // Each charge was counted at the SP by the program; the figures say what was exercised.
    assert_eq!(v["connectError"]["attempts"], 2);
    assert_eq!(v["connectError"]["mandates"], 1);
    assert_eq!(v["lostResponse"]["second"], "mandate_replayed");
    assert_eq!(v["spStall"][0], "503 settlement_unavailable");
    eprintln!("python payer: {v}");
}

#[test]
fn python_payer_unit_tests() {
    let Some(py) = python() else { return };
    let out = Command::new(&py)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(package().join("tests"))
        .current_dir(package())
        .env("PYTHONPATH", package().join("src"))
        // The lane tests check what the package signs with this build's `aep2 verify`.
        .env("AEP2_BIN", env!("CARGO_BIN_EXE_aep2"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pytest failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", stdout.lines().last().unwrap_or_default());
}
