//! Replays the committed seed corpus of the cargo-fuzz target `x402_request` (`fuzz/corpus/x402_request/`,
//! written by `python3 fuzz/seeds.py` from `vectors/`) through `aep2_x402::fuzzing::x402_request` on stable
//! Rust, so every `cargo test` checks the fuzz invariants over every seed.

#[test]
fn replay_x402_request() {
    aep2::fuzzing::replay_corpus("x402_request", aep2_x402::fuzzing::x402_request);
}
