//! Replays the committed seed corpus of the cargo-fuzz target `mcp_tool_call` (`fuzz/corpus/mcp_tool_call/`,
//! written by `python3 fuzz/seeds.py` from `vectors/`) through `aep2_mcp::fuzzing::mcp_tool_call` on stable
//! Rust, so every `cargo test` checks the fuzz invariants over every seed.

#[test]
fn replay_mcp_tool_call() {
    aep2::fuzzing::replay_corpus("mcp_tool_call", aep2_mcp::fuzzing::mcp_tool_call);
}
