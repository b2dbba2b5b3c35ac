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
    // The trail has the four paid requests and the three refusals, each with its code.
    for needle in [
        "x402 intent",
        "x402 order",
        "MCP",
        "A2A",
        "402 mandate_replayed",
        "402 amount_insufficient",
        "402 expired",
        "available 6000",
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
    assert_eq!(v["trail"].as_array().unwrap().len(), 4);
    v["settlement"].clone()
}

fn assert_settled(s: &serde_json::Value) {
    // Every receipted mandate settled in batches, and the payee holds what the trail promised.
    assert_eq!(s["receipts"], 4, "{s}");
    assert_eq!(s["settled"], 4, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    assert!(!s["batches"].as_array().unwrap().is_empty(), "{s}");
    assert_eq!(s["payeeBalance"], "4000", "{s}");
    assert_eq!(s["expected"], "4000", "{s}");
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
