//! The reference adapter: the project's own implementation behind the adapter protocol (spec
//! `conformance.md`). It answers each case with `aep2_vectors::check::answer`, the function
//! the repository's vector tests use, from the kind and inputs the runner sends; the
//! expectation never reaches it.
//!
//! Built as the `aep2-reference-adapter` binary and reachable as `aep2-conformance
//! reference-adapter` (what `--adapter reference` runs).

use crate::protocol::{
    CASE_KINDS, Capabilities, CaseInput, Errored, Implementation, PROFILES, PROTOCOL_VERSION, RunResponse,
    StartResponse,
};
use aep2_vectors::check::answer;
use aep2_vectors::model::{Context, Expected, Kind, TestCase, TestGroup};
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

fn hello() -> StartResponse {
    StartResponse {
        version: PROTOCOL_VERSION,
        implementation: Implementation {
            name: "aep2-rs".into(),
            language: "rust".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            homepage: None,
            source: Some(env!("CARGO_PKG_REPOSITORY").into()),
            issues: None,
        },
        capabilities: Capabilities {
            kinds: CASE_KINDS.iter().map(|k| (*k).to_owned()).collect(),
            profiles: PROFILES.iter().map(|p| (*p).to_owned()).collect(),
            reason_codes: true,
        },
        error_map: BTreeMap::new(),
    }
}

/// Rebuilds a one-case vector group from the inputs, so the shared checker can answer it. The
/// expectation fields are placeholders: `answer` reads only the kind, context and input.
pub fn as_vector(seq: u64, case: &CaseInput) -> Result<(TestGroup, TestCase), String> {
    let kind: Kind = serde_json::from_value(J::String(case.kind.clone())).map_err(|e| format!("kind: {e}"))?;
    let context: Context = serde_json::from_value(case.context.clone()).map_err(|e| format!("context: {e}"))?;
    let test = TestCase {
        tc_id: 0,
        id: format!("seq {seq}"),
        comment: String::new(),
        flags: Vec::new(),
        spec_refs: Vec::new(),
        source: None,
        input: case.input.clone(),
        expected: Expected {
            result: String::new(),
            reason: None,
            stage: None,
            signature: None,
            header: None,
        },
        compat_result: None,
        intermediates: None,
    };
    let group = TestGroup {
        group: String::new(),
        kind,
        context,
        tests: Vec::new(),
    };
    Ok((group, test))
}

fn respond(seq: u64, case: &CaseInput) -> RunResponse {
    let mut response = RunResponse {
        seq: J::from(seq),
        result: None,
        skipped: None,
        errored: None,
    };
    match as_vector(seq, case).and_then(|(g, t)| answer(&g, &t)) {
        Ok(a) => response.result = Some(crate::protocol::result_of(a)),
        Err(message) => {
            response.errored = Some(Errored { message, context: None });
        }
    }
    response
}

/// Speaks the protocol on `input` / `output` until `stop` or end of input.
pub fn serve(input: impl BufRead, out: impl Write) -> ExitCode {
    crate::protocol::serve_adapter("aep2-reference-adapter", input, out, &hello(), respond)
}
