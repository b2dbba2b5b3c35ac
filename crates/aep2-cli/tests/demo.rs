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
