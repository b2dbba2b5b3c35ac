//! Reading variants of the x402 carrier (`aep2.md#x402-carriers`, `#x402-payload`).

use aep2_conformance::protocol::CaseInput;
use aep2_vectors::check::Answer;

/// One other reading of a choice point of this area (`conformance/README.md`, "Choice points
/// of the spec").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {}

impl Reading {
    /// Every reading, in the order of the README's table.
    pub const ALL: &'static [Reading] = &[];

    /// The choice point's id in `conformance/README.md`, which is also the `--variant` name.
    pub fn id(self) -> &'static str {
        match self {}
    }
}

/// The answer of `reading` to a case it governs; `None` for every other case.
pub fn answer(reading: Reading, case: &CaseInput) -> Option<Result<Answer, String>> {
    let _ = case;
    match reading {}
}
