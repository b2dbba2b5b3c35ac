//! `aep2 demo` runs the whole protocol on loopback and exits 0 only when every step behaved.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::process::Command;

#[test]
fn the_demo_passes_every_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_aep2")).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // The trail has the four paid requests and the three refusals, each with its code, then the
    // lanes: the cap at the payee, the sub-agent, the revocation, the total at the SP, the trail.
    for needle in [
        "x402 intent",
        "x402 order",
        "MCP",
        "A2A",
        "402 mandate_replayed",
        "402 amount_insufficient",
        "402 expired",
        "402 lane_payment_cap_exceeded",
        "sub-agent",
        "402 lane_revoked",
        "402 lane_total_exceeded",
        "spent 7000",
        "audit trail of the agent's lane",
        "available 3000",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
}

fn settlement_of(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_aep2")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true), "{v}");
    assert_eq!(v["trail"].as_array().unwrap().len(), 7);
    // Both lanes with the SP's status and their audit trail: the agent's includes its sub-agent's.
    let lanes = v["lanes"].as_array().unwrap();
    assert_eq!(lanes.len(), 2, "{v}");
    let (agent, sub) = (&lanes[0], &lanes[1]);
    assert_eq!(agent["status"]["spent"], "7000", "{v}");
    assert_eq!(agent["status"]["remaining"], "0", "{v}");
    assert_eq!(agent["status"]["revoked"], false, "{v}");
    assert_eq!(sub["status"]["spent"], "2000", "{v}");
    assert_eq!(sub["status"]["revoked"], true, "{v}");
    assert_eq!(agent["audit"].as_array().unwrap().len(), 7, "{v}");
    let sub_trail = sub["audit"].as_array().unwrap();
    assert_eq!(sub_trail.len(), 2, "{v}");
    assert!(
        sub_trail
            .iter()
            .all(|r| r["purpose"] == "sub-agent: translations" && r["lanes"].as_array().unwrap().len() == 2)
    );
    v["settlement"].clone()
}

fn assert_settled(s: &serde_json::Value) {
    // Every receipted mandate settled in batches, and the payee holds what the trail promised.
    assert_eq!(s["receipts"], 7, "{s}");
    assert_eq!(s["settled"], 7, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    assert!(!s["batches"].as_array().unwrap().is_empty(), "{s}");
    assert_eq!(s["payeeBalance"], "7000", "{s}");
    assert_eq!(s["expected"], "7000", "{s}");
    assert!(s["gasPerMandate"].as_u64().unwrap() > 0, "{s}");
}

#[test]
fn the_demo_settles_everything_it_receipted_on_the_embedded_chain() {
    let s = settlement_of(&["demo", "--json"]);
    assert_eq!(s["chain"], "embedded");
    assert_settled(&s);
}

#[test]
fn the_demo_settles_on_a_node_with_rpc_url_and_chain_key() {
    // The node's clock is the wall clock, as the SP's and the payer's are.
    let Some(anvil) = aep2_evm::devnet::Anvil::start_at(None) else {
        return;
    };
    // anvil's first dev account.
    let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let s = settlement_of(&["demo", "--json", "--rpc-url", &anvil.url, "--chain-key", key]);
    assert!(s["chain"].as_str().unwrap().starts_with("json-rpc"), "{s}");
    assert_settled(&s);
}
