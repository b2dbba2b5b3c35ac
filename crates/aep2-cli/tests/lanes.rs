//! The `aep2 lane` and `aep2 sign --lane` contract (spec `aep2.md#lanes`): an owner grants an
//! agent a lane, the agent a sub-agent a narrower one; a wider one is refused with exit 1 and
//! `lane_attenuation_invalid`; the sub-agent signs under the chain and `aep2 verify` accepts it
//! with the sub-agent as the signer and the chain's ids; over the cap the signer refuses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use serde_json::Value as J;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_aep2");
const WALLET: &str = "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912";
const TOKEN: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const PAYEE: &str = "0xaAD167617dF02Dd30208722c88d9027a2fDD8812";
const NOW: u64 = 1_800_000_000;

fn aep2(args: &[&str]) -> (i32, J, String) {
    let out = Command::new(BIN).args(args).output().expect("run aep2");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or(J::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn key(label: &str) -> (String, String) {
    let (code, v, err) = aep2(&["keygen", "--profile", "eip712", "--from-label", label]);
    assert_eq!(code, 0, "{err}");
    (
        v["key"].as_str().unwrap().to_owned(),
        v["address"].as_str().unwrap().to_owned(),
    )
}

const DOMAIN: [&str; 6] = [
    "--profile",
    "eip712",
    "--chain-id",
    "84532",
    "--verifying-contract",
    WALLET,
];

fn grant(extra: &[&str]) -> (i32, J, String) {
    let mut args = vec!["lane", "grant"];
    args.extend_from_slice(&DOMAIN);
    args.extend_from_slice(extra);
    aep2(&args)
}

#[test]
fn grant_sub_grant_sign_and_verify_under_a_chain() {
    let dir = std::env::temp_dir().join(format!("aep2-cli-lanes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (owner_key, owner) = key("lane-owner");
    let (agent_key, agent) = key("lane-agent");
    let (sub_key, sub) = key("lane-sub-agent");
    let until = (NOW + 86_400).to_string();
    let from = (NOW - 60).to_string();

    let (code, root, err) = grant(&[
        "--key",
        &owner_key,
        "--agent",
        &agent,
        "--asset",
        TOKEN,
        "--per-payment",
        "1000",
        "--total",
        "10000",
        "--valid-from",
        &from,
        "--valid-until",
        &until,
        "--payee",
        PAYEE,
        "--max-payments",
        "50",
        "--period",
        "3600",
        "--allowance",
        "4000",
        "--purpose",
        "research",
        "--salt",
        "0x0101010101010101010101010101010101010101010101010101010101010101",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(root["lane"]["owner"], owner);
    assert_eq!(root["lane"]["agent"], agent);
    assert_eq!(root["parents"].as_array().unwrap().len(), 0);
    let root_file = dir.join("root.json");
    std::fs::write(&root_file, root.to_string()).unwrap();
    let at_root = format!("@{}", root_file.display());

    // A sub-lane wider than its parent: refused, exit 1, its code.
    let (code, refused, _) = grant(&[
        "--key",
        &agent_key,
        "--agent",
        &sub,
        "--asset",
        TOKEN,
        "--per-payment",
        "2000",
        "--total",
        "500",
        "--valid-until",
        &until,
        "--parent",
        &at_root,
    ]);
    assert_eq!(code, 1);
    assert_eq!(refused["code"], "lane_attenuation_invalid", "{refused}");
    // Signed by someone other than the parent's agent: refused too.
    let (code, refused, _) = grant(&[
        "--key",
        &owner_key,
        "--agent",
        &sub,
        "--asset",
        TOKEN,
        "--per-payment",
        "500",
        "--total",
        "500",
        "--valid-until",
        &until,
        "--parent",
        &at_root,
    ]);
    assert_eq!(code, 1);
    assert_eq!(refused["code"], "signature_invalid", "{refused}");

    // A narrower one: the payees, count and allowance default to the parent's.
    let (code, leaf, err) = grant(&[
        "--key",
        &agent_key,
        "--agent",
        &sub,
        "--asset",
        TOKEN,
        "--per-payment",
        "500",
        "--total",
        "2000",
        "--valid-until",
        &until,
        "--parent",
        &at_root,
        "--purpose",
        "sub-agent: maps",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(leaf["lane"]["parent"], root["id"]);
    assert_eq!(leaf["lane"]["payees"], root["lane"]["payees"]);
    assert_eq!(leaf["lane"]["period"], 3600);
    assert_eq!(leaf["parents"].as_array().unwrap().len(), 1);
    let leaf_file = dir.join("leaf.json");
    std::fs::write(&leaf_file, leaf.to_string()).unwrap();
    let at_leaf = format!("@{}", leaf_file.display());

    let mandate = |amount: &str| {
        serde_json::json!({
            "owner": owner, "token": TOKEN, "payee": PAYEE, "amount": amount, "nonce": "7",
            "deadline": NOW + 600,
            "ref": "0x0202020202020202020202020202020202020202020202020202020202020202"
        })
        .to_string()
    };
    let sign = |amount: &str, k: &str| {
        let m = mandate(amount);
        let mut args = vec!["sign"];
        args.extend_from_slice(&DOMAIN);
        args.extend_from_slice(&["--key", k, "--mandate", &m, "--lane", &at_leaf, "--form", "native"]);
        aep2(&args)
    };
    let (code, signed, err) = sign("400", &sub_key);
    assert_eq!(code, 0, "{err}");
    assert_eq!(signed["signer"], sub);
    assert_eq!(signed["lanes"], serde_json::json!([root["id"], leaf["id"]]));

    let verify = |header: &str, now: u64| {
        let mut args = vec!["verify", "--header", header];
        args.extend_from_slice(&DOMAIN);
        let now = now.to_string();
        args.extend_from_slice(&["--now", &now]);
        aep2(&args)
    };
    let (code, v, _) = verify(signed["header"].as_str().unwrap(), NOW);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["signer"], sub);
    assert_eq!(v["mandateId"], signed["digest"]);
    assert_eq!(v["lanes"], signed["lanes"]);
    assert_eq!(v["purposes"], serde_json::json!(["research", "sub-agent: maps"]));
    // Before the lane starts: its code.
    let (code, v, _) = verify(signed["header"].as_str().unwrap(), NOW - 61);
    assert_eq!(code, 1);
    assert_eq!(v["code"], "lane_not_yet_valid");

    // The signer refuses what every verifier would reject.
    let (code, refused, _) = sign("501", &sub_key);
    assert_eq!(code, 1);
    assert_eq!(refused["code"], "lane_payment_cap_exceeded");
    let (code, refused, _) = sign("400", &agent_key);
    assert_eq!(code, 1);
    assert_eq!(
        refused["code"], "signature_invalid",
        "the parent's agent is not the leaf's"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
