//! Replays the committed seed corpus of the cargo-fuzz target `a2a_message` (`fuzz/corpus/a2a_message/`,
//! written by `python3 fuzz/seeds.py` from `vectors/`) through `aep2_a2a::fuzzing::a2a_message` on stable
//! Rust, so every `cargo test` checks the fuzz invariants over every seed.

#[test]
fn replay_a2a_message() {
    aep2::fuzzing::replay_corpus("a2a_message", aep2_a2a::fuzzing::a2a_message);
}
