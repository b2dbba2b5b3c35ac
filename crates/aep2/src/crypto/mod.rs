//! Signature primitives with AEP2's validation criteria applied explicitly
//! (spec `aep2.md#eip712-signature-rules`, `aep2.md#ed25519-verification-rules`).

pub mod ed25519;
pub mod secp256k1;
