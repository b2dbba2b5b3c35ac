//! # aep2
//!
//! Reference implementation of AEP2, the Agent Embedded Payment Protocol: payment mandates,
//! their canonical encodings, EIP-712 (secp256k1) and Ed25519 signing, strict verification,
//! and settlement-processor receipts. The normative text is `spec/aep2.md`; every rejection
//! carries one [`Reason`] from its closed registry.
//!
//! ```
//! use aep2::{Domain, Eip712Domain, EvmAddress, Verifier};
//!
//! let domain = Domain::Eip712(Eip712Domain {
//!     chain_id: 84532,
//!     verifying_contract: EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912")?,
//! });
//! let verifier = Verifier::new(domain);
//! let err = verifier.verify_header("not base64!", None).unwrap_err();
//! assert_eq!(err.code(), "base64_invalid");
//! # Ok::<(), aep2::Error>(())
//! ```
//!
//! ## Cargo features
//!
//! - `libsecp256k1` (default): secp256k1 public-key recovery (eip712 mandates, EVM receipts,
//!   lanes) by libsecp256k1, the C library, through the `secp256k1` crate: about 1.7x the
//!   speed of k256. Without it (`--no-default-features`) the crate is pure Rust and k256
//!   recovers. Either way the signature rules and their reason codes are this crate's own
//!   code, checked before the library is called, so every verdict, code and recovered address
//!   is the same ([`crypto::secp256k1::Backend`]; `crates/aep2/tests/backends.rs` and
//!   `crates/aep2-vectors/tests/backends.rs` compare them on every vector and on generated
//!   inputs). Signing always uses k256.

pub mod address;
pub mod codec;
pub mod crypto;
pub mod digest;
pub mod eip712;
pub mod envelope;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod hash;
pub mod json;
pub mod lane;
pub mod mandate;
pub mod order;
pub mod policy;
pub mod profile;
pub mod reason;
pub mod receipt;
pub mod replay;
pub mod schema;
pub mod sign;
pub mod uint;
pub mod verify;

pub use address::{Base58Key, EvmAddress};
pub use digest::{MandateDigest, SigningInput, mandate_digest};
pub use envelope::{EnvelopeForm, SignedMandate};
pub use error::{Error, Result};
pub use lane::{Lane, LaneRevocation, SignedLane, sign_lane};
pub use mandate::{Ed25519Mandate, EvmMandate, Mandate, SolanaMvpMandate};
pub use order::{OrderOptions, PaymentRequest, QuoteRef};
pub use policy::{AccountId, PayeePolicy, PriceMode};
pub use profile::{Domain, Ed25519Domain, Eip712Domain, Profile};
pub use reason::{Reason, Stage};
pub use receipt::{Receipt, ReceiptExpectations, ReceiptKind, ReceiptLane, SpId, SpKey};
pub use replay::ReplayKey;
pub use sign::{PayerKey, sign_lane_mandate, sign_mandate};
pub use uint::U256;
pub use verify::{Report, Verified, Verifier};
