//! The `aep2` command-line contract: one JSON object from `verify`, exit 0 valid / 1 invalid /
//! 2 usage, `--header -` from stdin, and the fixture verdicts, digests and signers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use serde_json::Value as J;
use std::io::Write as _;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_aep2");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(ROOT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aep2");
    if let Some(s) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(s.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixtures() -> J {
    serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/vectors/peer-signed/peer-signed.json")).unwrap())
        .unwrap()
}

fn one_object(stdout: &str) -> J {
    let v: J = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not one JSON object: {e}: {stdout}"));
    assert!(v.is_object());
    assert_eq!(stdout.trim().lines().count(), 1, "verify prints exactly one line");
    v
}

#[test]
fn verify_contract_on_every_evm_fixture() {
    let doc = fixtures();
    for c in doc["evm"].as_array().unwrap() {
        let chain = c["chainId"].to_string();
        let (code, out, err) = run(
            &[
                "verify",
                "--header",
                c["header"].as_str().unwrap(),
                "--profile",
                "eip712",
                "--chain-id",
                &chain,
                "--verifying-contract",
                c["verifyingContract"].as_str().unwrap(),
            ],
            None,
        );
        let v = one_object(&out);
        let valid = c["expect"] == "valid";
        assert_eq!(v["valid"], J::Bool(valid), "{}: {out} {err}", c["id"]);
        assert_eq!(code, if valid { 0 } else { 1 }, "{}", c["id"]);
        if valid {
            assert_eq!(v["code"], J::Null);
            assert_eq!(
                v["digest"], c["digest"],
                "{}: digest must equal ethers TypedDataEncoder.hash",
                c["id"]
            );
            assert_eq!(v["signer"], c["signer"]);
        } else {
            assert!(v["code"].is_string(), "{}", c["id"]);
            assert!(
                v["digest"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("0x") && d.len() == 66)
            );
        }
    }
}

#[test]
fn verify_contract_on_every_solana_fixture_via_stdin() {
    let doc = fixtures();
    for c in doc["solana"].as_array().unwrap() {
        let (code, out, _) = run(
            &["verify", "--header", "-", "--profile", "solana-mvp"],
            Some(c["header"].as_str().unwrap()),
        );
        let v = one_object(&out);
        let valid = c["expect"] == "valid";
        assert_eq!(v["valid"], J::Bool(valid), "{}", c["id"]);
        assert_eq!(code, if valid { 0 } else { 1 });
        if valid {
            assert_eq!(v["digest"], c["digest"]);
            assert_eq!(v["signer"], c["mandate"]["payer"]);
        } else {
            assert_eq!(v["code"], "signature_invalid");
        }
    }
}

#[test]
fn specific_codes_and_usage_errors() {
    let doc = fixtures();
    let twin = doc["evm"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "evm-high-s-twin")
        .unwrap();
    let (code, out, _) = run(
        &[
            "verify",
            "--header",
            twin["header"].as_str().unwrap(),
            "--profile",
            "eip712",
            "--chain-id",
            "84532",
            "--verifying-contract",
            "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert_eq!(one_object(&out)["code"], "signature_high_s");
    let (code, out, _) = run(&["verify", "--header", "!!", "--profile", "solana-mvp"], None);
    assert_eq!(code, 1);
    assert_eq!(one_object(&out)["code"], "base64_invalid");
    let (code, _, err) = run(&["verify", "--header", "x", "--profile", "eip712"], None);
    assert_eq!(code, 2, "missing --chain-id is a usage error: {err}");
    let (code, _, _) = run(&["verify", "--header", "x", "--profile", "nope"], None);
    assert_eq!(code, 2);
    let (code, out, _) = run(&["verify", "--help"], None);
    assert_eq!(code, 0);
    assert!(out.contains("signature_high_s") && out.contains("Exit status"));
}

#[test]
fn expired_against_the_clock_and_now_override() {
    let doc = fixtures();
    let c = &doc["evm"][0];
    let deadline = c["mandate"]["deadline"].as_u64().unwrap();
    let args = |now: String| -> Vec<String> {
        [
            "verify",
            "--header",
            c["header"].as_str().unwrap(),
            "--profile",
            "eip712",
            "--chain-id",
            "84532",
            "--verifying-contract",
            c["verifyingContract"].as_str().unwrap(),
            "--now",
            &now,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let a = args((deadline + 1).to_string());
    let (code, out, _) = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_eq!((code, one_object(&out)["code"].clone()), (1, J::from("expired")));
    let a = args(deadline.to_string());
    let (code, _, _) = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_eq!(code, 0);
}

#[test]
fn keygen_sign_verify_and_receipts_round_trip() {
    let (code, out, _) = run(
        &["keygen", "--profile", "eip712", "--from-label", "cli-test-payer"],
        None,
    );
    assert_eq!(code, 0);
    let payer: J = serde_json::from_str(&out).unwrap();
    let mandate = serde_json::json!({
        "owner": payer["address"], "token": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payee": "0xaAD167617dF02Dd30208722c88d9027a2fDD8812", "amount": "2500", "nonce": "7",
        "deadline": 1893456000u64, "ref": format!("0x{}", "ab".repeat(32)),
    });
    let dom = [
        "--profile",
        "eip712",
        "--chain-id",
        "84532",
        "--verifying-contract",
        "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912",
    ];
    let mut args = vec![
        "sign",
        "--key",
        payer["key"].as_str().unwrap(),
        "--mandate",
        "-",
        "--form",
        "native",
    ];
    args.extend(dom);
    let (code, out, err) = run(&args, Some(&mandate.to_string()));
    assert_eq!(code, 0, "{err}");
    let signed: J = serde_json::from_str(&out).unwrap();
    let header = signed["header"].as_str().unwrap();
    let mut args = vec!["verify", "--header", header, "--now", "1800000000"];
    args.extend(dom);
    let (code, out, _) = run(&args, None);
    let v = one_object(&out);
    assert_eq!(
        (code, &v["signer"], &v["digest"]),
        (0, &payer["address"], &signed["digest"])
    );

    let (_, sp_out, _) = run(&["keygen", "--profile", "eip712", "--from-label", "cli-test-sp"], None);
    let sp: J = serde_json::from_str(&sp_out).unwrap();
    let mut args = vec![
        "receipt",
        "sign",
        "--kind",
        "native",
        "--key",
        sp["key"].as_str().unwrap(),
        "--header",
        header,
        "--enqueue-deadline",
        "1893456000",
    ];
    args.extend(dom);
    let (code, receipt, err) = run(&args, None);
    assert_eq!(code, 0, "{err}");
    let mut args = vec![
        "receipt",
        "verify",
        "--receipt",
        "-",
        "--sp",
        sp["address"].as_str().unwrap(),
        "--header",
        header,
    ];
    args.extend(dom);
    let (code, out, _) = run(&args, Some(&receipt));
    assert_eq!((code, one_object(&out)["valid"].clone()), (0, J::Bool(true)), "{out}");
    // An SP may not promise settlement after the mandate's deadline.
    let mut args = vec![
        "receipt",
        "sign",
        "--kind",
        "native",
        "--key",
        sp["key"].as_str().unwrap(),
        "--header",
        header,
        "--enqueue-deadline",
        "1893456001",
    ];
    args.extend(dom);
    assert_eq!(run(&args, None).0, 2);
}

#[test]
fn inspect_shows_digest_and_verdict() {
    let doc = fixtures();
    let c = &doc["evm"][0];
    let (code, out, _) = run(
        &[
            "inspect",
            "--header",
            c["header"].as_str().unwrap(),
            "--profile",
            "eip712",
            "--chain-id",
            "84532",
            "--verifying-contract",
            c["verifyingContract"].as_str().unwrap(),
            "--now",
            "1800000000",
        ],
        None,
    );
    assert_eq!(code, 0);
    let v: J = serde_json::from_str(&out).unwrap();
    assert_eq!(v["digest"], c["digest"]);
    assert_eq!(v["form"], "mvp");
    assert_eq!(v["envelope"]["mandate"], c["mandate"]);
    assert_eq!(v["verdict"]["valid"], true);
    assert!(v["domainSeparator"].as_str().is_some());
}

#[test]
fn interop_and_vectors_check_pass_on_the_shipped_files() {
    let (code, out, _) = run(&["interop"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("11 cases") && out.contains("0 mismatched"));
    let (code, out, err) = run(&["vectors", "check"], None);
    assert_eq!(code, 0, "{out}\n{err}");
}

const WALLET: &str = "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912";

#[test]
fn review_regressions() {
    let doc = fixtures();
    let c = &doc["evm"][0];
    let h = c["header"].as_str().unwrap();
    let dom = [
        "--profile",
        "eip712",
        "--chain-id",
        "84532",
        "--verifying-contract",
        WALLET,
    ];
    // Whitespace around an inline header is a base64 fault, exactly as in the library.
    let padded = format!(" {h}\t");
    let mut args = vec!["verify", "--header", padded.as_str(), "--now", "1800000000"];
    args.extend(dom);
    let (code, out, _) = run(&args, None);
    assert_eq!((code, one_object(&out)["code"].clone()), (1, J::from("base64_invalid")));
    // One trailing newline from stdin is not part of the header.
    let mut args = vec!["verify", "--header", "-", "--now", "1800000000"];
    args.extend(dom);
    let (code, out, _) = run(&args, Some(&format!("{h}\n")));
    let v = one_object(&out);
    assert_eq!(code, 0);
    assert!(v["mandateId"].as_str().is_some_and(|m| m.len() == 66));
    // An impossible expected chain id is a usage error.
    let (code, _, _) = run(
        &[
            "verify",
            "--header",
            h,
            "--profile",
            "eip712",
            "--chain-id",
            "0",
            "--verifying-contract",
            WALLET,
        ],
        None,
    );
    assert_eq!(code, 2);
    // A multi-byte ref is ref_invalid, never a crash.
    let evil = "eyJtYW5kYXRlIjp7Im93bmVyIjoiMHgwZDdDRTlFMTY1NTgzQzU3NmMzMzRkNzVENDMzNjdmNDlERDAxOUZBIiwidG9rZW4iOiIweDAzNkNiRDUzODQyYzU0MjY2MzRlNzkyOTU0MWVDMjMxOGYzZENGN2UiLCJwYXllZSI6IjB4YUFEMTY3NjE3ZEYwMkRkMzAyMDg3MjJjODhkOTAyN2EyZkREODgxMiIsImFtb3VudCI6IjUwMCIsIm5vbmNlIjoiMSIsImRlYWRsaW5lIjoxODkzNDU2MDAwLCJyZWYiOiJhw6lhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWEifSwicGF5ZXJTaWciOiIweDAwIn0=";
    let mut args = vec!["verify", "--header", evil];
    args.extend(dom);
    let (code, out, _) = run(&args, None);
    assert_eq!((code, one_object(&out)["code"].clone()), (1, J::from("ref_invalid")));
    // Receipts: the domain flags are applied without --header, and oversized JSON is refused.
    let (_, sp_out, _) = run(
        &["keygen", "--profile", "eip712", "--from-label", "cli-review-sp"],
        None,
    );
    let sp: J = serde_json::from_str(&sp_out).unwrap();
    let mut args = vec![
        "receipt",
        "sign",
        "--kind",
        "native",
        "--key",
        sp["key"].as_str().unwrap(),
        "--header",
        h,
    ];
    args.extend(["--enqueue-deadline", "1893456000", "--now", "1800000000"]);
    args.extend(dom);
    let (code, receipt, err) = run(&args, None);
    assert_eq!(code, 0, "{err}");
    let other = ["--profile", "eip712", "--chain-id", "1", "--verifying-contract", WALLET];
    let mut args = vec![
        "receipt",
        "verify",
        "--receipt",
        "-",
        "--sp",
        sp["address"].as_str().unwrap(),
    ];
    args.extend(other);
    let (code, out, _) = run(&args, Some(&receipt));
    assert_eq!(
        (code, one_object(&out)["code"].clone()),
        (1, J::from("domain_mismatch")),
        "{out}"
    );
    let big = format!("{}{}", receipt.trim_end(), " ".repeat(9000));
    let (code, out, _) = run(&["receipt", "verify", "--receipt", "-"], Some(&big));
    assert_eq!(
        (code, one_object(&out)["code"].clone()),
        (1, J::from("header_too_large"))
    );
    // An SP must not sign a receipt for an expired mandate.
    let mut args = vec![
        "receipt",
        "sign",
        "--kind",
        "native",
        "--key",
        sp["key"].as_str().unwrap(),
        "--header",
        h,
    ];
    args.extend(["--enqueue-deadline", "1893456000", "--now", "1893456001"]);
    args.extend(dom);
    assert_eq!(run(&args, None).0, 2);
}
