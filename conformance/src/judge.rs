//! Judging an adapter's answer (spec `conformance.md#judging`). Verdict, reason code and
//! recorded intermediates are compared by `aep2_vectors::check::judge_with`, the judge the
//! repository's own tests use; this module adds what only an outside implementation needs:
//! the error map, verdict-only adapters, compat mode, required outputs and checking a produced
//! signature by verifying it.

use crate::protocol::{CaseResult, StartResponse};
use crate::report::{Expectation, Status};
use aep2::json::{Limits, parse};
use aep2::{EnvelopeForm, Mandate, SignedMandate, Verifier};
use aep2_vectors::check::{Answer, Judging, context_domain, judge_with};
use aep2_vectors::model::{Kind, TestCase, TestGroup};

/// How cases are judged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The normative expectations.
    #[default]
    Strict,
    /// `acceptable` cases admit both verdicts; mixed-order torsion cases are judged on the
    /// verdict only (spec `aep2.md#vectors`).
    Compat,
}

impl Mode {
    /// `strict` or `compat`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Compat => "compat",
        }
    }
}

/// Reason codes a compat verifier may legitimately not reach first (spec `aep2.md#vectors`).
const COMPAT_VERDICT_ONLY: &[&str] = &["key_mixed_order", "signature_point_mixed_order"];

/// The expectation of a case as reports show it.
pub fn expectation(case: &TestCase) -> Expectation {
    Expectation {
        result: case.expected.result.clone(),
        code: case.expected.reason.clone(),
        stage: case.expected.stage.clone(),
        compat: case.compat_result.clone(),
    }
}

/// The outputs a case kind must report when the case is valid: without them the case proves
/// nothing (a request-hash case is about the hash; a signing case about the signature).
pub fn required_outputs(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::HttpRequestHash | Kind::A2aRequestHash | Kind::McpRequestHash => &["requestHash"],
        Kind::SignMandate => &["signature"],
        _ => &[],
    }
}

/// Judges one `result` answer: the status and, unless it passed plainly, why.
pub fn judge_result(
    group: &TestGroup,
    case: &TestCase,
    result: &CaseResult,
    hello: &StartResponse,
    mode: Mode,
) -> (Status, Option<String>) {
    let code = result
        .code
        .as_ref()
        .map(|c| hello.error_map.get(c).cloned().unwrap_or_else(|| c.clone()));
    // The stage follows from the code in the registry, so adapters never report it; a code
    // outside the registry has no stage and so can never match.
    let stage = code
        .as_deref()
        .and_then(aep2::Reason::from_code)
        .map(|r| r.stage().as_str().to_owned());
    let answer = Answer {
        result: result.verdict.clone(),
        reason: code,
        stage,
        signature: result.outputs.get("signature").cloned(),
        header: result.outputs.get("header").cloned(),
        intermediates: result.outputs.clone().into_iter().collect(),
    };
    let verdict_only_here = mode == Mode::Compat
        && case.compat_result.is_none()
        && case
            .expected
            .reason
            .as_deref()
            .is_some_and(|r| COMPAT_VERDICT_ONLY.contains(&r));
    let judging = Judging {
        reason: hello.capabilities.reason_codes && !verdict_only_here,
        signature: false,
        all_intermediates: false,
    };
    let mut problems = Vec::new();
    if let Err(e) = judge_with(case, &answer, judging) {
        problems.push(e.strip_prefix(&format!("{}: ", case.id)).unwrap_or(&e).to_owned());
    }
    if case.expected.result == "valid" && result.verdict == "valid" {
        for name in required_outputs(group.kind) {
            if !result.outputs.contains_key(*name) {
                problems.push(format!("output {name} missing"));
            }
        }
        if group.kind == Kind::SignMandate
            && let Some(sig) = result.outputs.get("signature")
            && let Err(e) = check_signature(group, case, sig, result.outputs.get("header"))
        {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        let note = (!judging.reason).then(|| "judged on the verdict only".to_owned());
        return (Status::Passed, note);
    }
    let message = problems.join("; ");
    if mode == Mode::Compat && case.compat_result.as_deref() == Some("acceptable") {
        return (Status::Acceptable, Some(format!("acceptable under compat: {message}")));
    }
    (Status::Failed, Some(message))
}

/// Checks a produced signature: the vector's own (deterministic) signature passes; any other
/// must verify for the input mandate under the group's domain with the reference verifier, so
/// signers with random nonces conform too. A header, when given, must carry that mandate and
/// signature in the group's envelope form and verify.
fn check_signature(group: &TestGroup, case: &TestCase, sig: &str, header: Option<&String>) -> Result<(), String> {
    let domain = context_domain(&group.context)?;
    let form = match group.context.form.as_deref() {
        Some("native") => EnvelopeForm::Native,
        _ => EnvelopeForm::Mvp,
    };
    let mandate_json = case.input.get("mandate").ok_or("input.mandate missing")?;
    let mandate = parse(&mandate_json.to_string(), &Limits::AEP2)
        .and_then(|v| Mandate::from_json(domain.profile(), &v))
        .map_err(|e| format!("input mandate: {e}"))?;
    let verifier = Verifier::new(domain.clone());
    if case.expected.signature.as_deref() != Some(sig) {
        let signed = SignedMandate {
            form,
            mandate: mandate.clone(),
            domain: (form == EnvelopeForm::Native).then(|| domain.clone()),
            signature: sig.to_owned(),
            lanes: Vec::new(),
        };
        verifier
            .check_signed(signed, None)
            .verdict
            .map_err(|e| format!("signature does not verify: {} ({e})", e.code()))?;
    }
    if let Some(h) = header
        && case.expected.header.as_ref() != Some(h)
    {
        let v = verifier
            .verify_header(h, None)
            .map_err(|e| format!("header does not verify: {} ({e})", e.code()))?;
        if v.signed.mandate != mandate || v.signed.signature != sig || v.signed.form != form {
            return Err("header does not carry the input mandate and the signature in the group's form".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::protocol::{Capabilities, Implementation};
    use crate::suite::{Suite, default_dir};
    use aep2_vectors::check::answer;

    fn hello(reason_codes: bool, error_map: &[(&str, &str)]) -> StartResponse {
        StartResponse {
            version: 1,
            implementation: Implementation {
                name: "t".into(),
                language: "t".into(),
                version: "1".into(),
                homepage: None,
                source: None,
                issues: None,
            },
            capabilities: Capabilities {
                kinds: vec![],
                profiles: vec![],
                reason_codes,
            },
            error_map: error_map.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect(),
        }
    }

    fn reference(id: &str) -> (TestGroup, TestCase, CaseResult) {
        let suite = Suite::load(&default_dir()).unwrap();
        let (g, t) = suite.cases().find(|(_, t)| t.id == id).unwrap();
        let a = answer(g, t).unwrap();
        let mut outputs: std::collections::BTreeMap<String, String> = a.intermediates.into_iter().collect();
        outputs.extend(a.signature.map(|s| ("signature".into(), s)));
        let r = CaseResult {
            verdict: a.result,
            code: a.reason,
            outputs,
        };
        (g.clone(), t.clone(), r)
    }

    #[test]
    fn a_produced_signature_is_checked_by_verifying_it() {
        let (g, t, r) = reference("signing/ed25519-native/0001");
        let h = hello(true, &[]);
        assert_eq!(judge_result(&g, &t, &r, &h, Mode::Strict).0, Status::Passed);
        let mut forged = r.clone();
        let sig = forged.outputs.get_mut("signature").unwrap();
        let last = if sig.ends_with('2') { '3' } else { '2' };
        sig.pop();
        sig.push(last);
        let (s, m) = judge_result(&g, &t, &forged, &h, Mode::Strict);
        assert_eq!(s, Status::Failed);
        assert!(m.unwrap().contains("signature does not verify"));
        let mut silent = r;
        silent.outputs.clear();
        let (s, m) = judge_result(&g, &t, &silent, &h, Mode::Strict);
        assert_eq!((s, m.as_deref()), (Status::Failed, Some("output signature missing")));
    }

    #[test]
    fn codes_go_through_the_error_map_or_are_not_judged() {
        let (g, t, mut r) = reference("signing/eip712-mvp/0004");
        assert_eq!(r.code.as_deref(), Some("signature_invalid"));
        r.code = Some("WrongSigner".into());
        assert_eq!(
            judge_result(&g, &t, &r, &hello(true, &[]), Mode::Strict).0,
            Status::Failed
        );
        let mapped = hello(true, &[("WrongSigner", "signature_invalid")]);
        assert_eq!(judge_result(&g, &t, &r, &mapped, Mode::Strict).0, Status::Passed);
        let (s, m) = judge_result(&g, &t, &r, &hello(false, &[]), Mode::Strict);
        assert_eq!((s, m.as_deref()), (Status::Passed, Some("judged on the verdict only")));
        r.verdict = "valid".into();
        assert_eq!(
            judge_result(&g, &t, &r, &hello(false, &[]), Mode::Strict).0,
            Status::Failed
        );
    }

    #[test]
    fn acceptable_exists_only_in_compat() {
        let suite = Suite::load(&default_dir()).unwrap();
        let (g, t) = suite
            .cases()
            .find(|(_, t)| t.compat_result.as_deref() == Some("acceptable"))
            .unwrap();
        let accept = CaseResult {
            verdict: "valid".into(),
            code: None,
            outputs: Default::default(),
        };
        let h = hello(true, &[]);
        assert_eq!(judge_result(g, t, &accept, &h, Mode::Strict).0, Status::Failed);
        assert_eq!(judge_result(g, t, &accept, &h, Mode::Compat).0, Status::Acceptable);
    }

    #[test]
    fn a_request_hash_case_needs_its_hash() {
        let (g, t, mut r) = reference("x402/request-hash/0001");
        let h = hello(true, &[]);
        assert_eq!(judge_result(&g, &t, &r, &h, Mode::Strict).0, Status::Passed);
        r.outputs.insert("requestHash".into(), format!("0x{}", "00".repeat(32)));
        assert_eq!(judge_result(&g, &t, &r, &h, Mode::Strict).0, Status::Failed);
        r.outputs.clear();
        assert_eq!(judge_result(&g, &t, &r, &h, Mode::Strict).0, Status::Failed);
    }
}
