//! AEP2 test vectors: the vector-file model, the deterministic generator, the checker that
//! runs a vector through the reference implementation, and the peer-signed fixture check.
//!
//! The same loader serves `cargo test` (one trial per vector id), `aep2 vectors check` and
//! the conformance runner, so every consumer reads the very same files.

pub mod check;
pub mod generate;
pub mod model;
pub mod peer_signed;
