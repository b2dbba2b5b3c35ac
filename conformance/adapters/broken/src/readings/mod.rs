//! Reading variants of the kinds beyond the mandate pipeline: the x402, MCP and A2A carriers,
//! receipts and signing. Each module holds its area's [`Reading`](x402::Reading)s; a reading
//! answers the cases its choice point governs the other way (typically: one check moved ahead
//! of the reference pipeline, or one default changed) and leaves every other case to the
//! reference implementation, so the only divergence from the reference is that one reading.

pub mod a2a;
pub mod lanes;
pub mod mcp;
pub mod receipts;
pub mod signing;
pub mod x402;

use crate::Variant;
use aep2::Reason;
use aep2_conformance::protocol::CaseInput;
use aep2_vectors::check::{Answer, answer};

/// The reference implementation's answer to a case (what `--adapter reference` answers).
pub fn reference(case: &CaseInput) -> Result<Answer, String> {
    let (group, test) = aep2_conformance::reference::as_vector(0, case)?;
    answer(&group, &test)
}

/// An `invalid` answer with `reason`, as a reading produces it.
pub fn invalid(reason: Reason) -> Answer {
    Answer {
        result: "invalid".into(),
        reason: Some(reason.code().to_owned()),
        stage: None,
        signature: None,
        header: None,
        intermediates: Default::default(),
    }
}

/// A `valid` answer without outputs.
pub fn valid() -> Answer {
    Answer {
        result: "valid".into(),
        reason: None,
        stage: None,
        signature: None,
        header: None,
        intermediates: Default::default(),
    }
}

/// The answer of `variant` to a case: the area's reading where it governs the case, else
/// `None` (the caller answers as the reference does).
pub fn answer_as(variant: Variant, case: &CaseInput) -> Option<Result<Answer, String>> {
    match variant {
        Variant::X402(r) => x402::answer(r, case),
        Variant::Mcp(r) => mcp::answer(r, case),
        Variant::A2a(r) => a2a::answer(r, case),
        Variant::Receipt(r) => receipts::answer(r, case),
        Variant::Signing(r) => signing::answer(r, case),
        _ => None,
    }
}

/// Every reading of the areas here, wrapped as a [`Variant`].
pub fn all() -> Vec<Variant> {
    let mut out = Vec::new();
    out.extend(x402::Reading::ALL.iter().map(|&r| Variant::X402(r)));
    out.extend(mcp::Reading::ALL.iter().map(|&r| Variant::Mcp(r)));
    out.extend(a2a::Reading::ALL.iter().map(|&r| Variant::A2a(r)));
    out.extend(receipts::Reading::ALL.iter().map(|&r| Variant::Receipt(r)));
    out.extend(signing::Reading::ALL.iter().map(|&r| Variant::Signing(r)));
    out.extend(lanes::Reading::ALL.iter().map(|&r| Variant::Lane(r)));
    out
}
