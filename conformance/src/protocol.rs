//! The adapter protocol (spec `conformance.md#protocol`): the messages the runner and an
//! adapter exchange as JSON Lines, their limits, and their JSON Schemas.

use aep2_vectors::model::{TestCase, TestGroup};
use serde::{Deserialize, Serialize};
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::io::{self, BufRead};

/// The protocol version this runner speaks; `start` carries it and the adapter echoes it.
pub const PROTOCOL_VERSION: u64 = 1;

/// Longest line either side may send, in bytes, newline excluded. The largest vector case
/// encodes to about 80 KiB; the margin leaves room for adapter outputs and error context.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The case kinds of the protocol, one per vector kind (spec `conformance.md#case-kinds`).
pub const CASE_KINDS: &[&str] = &[
    "verify_mandate",
    "verify_receipt",
    "sign_mandate",
    "ed25519_raw",
    "verify_policy",
    "verify_order",
    "extract_x402",
    "http_request_hash",
    "extract_a2a",
    "a2a_request_hash",
    "extract_mcp",
    "mcp_request_hash",
];

/// The signature profiles an adapter may declare.
pub const PROFILES: &[&str] = &["eip712", "ed25519", "solana-mvp"];

/// A message from the runner to the adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Opens a session; the adapter answers with a [`StartResponse`].
    Start {
        /// [`PROTOCOL_VERSION`].
        version: u64,
    },
    /// One case; the adapter answers with a [`RunResponse`] echoing `seq`.
    Run {
        /// Sequence number, unique within a run; the adapter echoes it unchanged.
        seq: u64,
        /// The case: kind and inputs only.
        case: CaseInput,
    },
    /// Ends the session; the adapter exits without answering.
    Stop,
}

/// What an adapter is told about a case: its kind and inputs, never the expectation, the
/// vector's comment or its id (which names the group and so hints at the answer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseInput {
    /// One of [`CASE_KINDS`].
    pub kind: String,
    /// The group's shared parameters (profile, domain, `now`, policy, …) as the vector file
    /// states them.
    pub context: J,
    /// The case's own inputs as the vector file states them.
    pub input: J,
}

impl CaseInput {
    /// The input of a vector case.
    pub fn of(group: &TestGroup, case: &TestCase) -> CaseInput {
        CaseInput {
            kind: group.kind.as_str().to_owned(),
            context: serde_json::to_value(&group.context).unwrap_or(J::Null),
            input: case.input.clone(),
        }
    }
}

/// The adapter's answer to `start`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartResponse {
    /// Must equal [`PROTOCOL_VERSION`].
    pub version: u64,
    /// Who is under test.
    pub implementation: Implementation,
    /// What the implementation can be asked.
    pub capabilities: Capabilities,
    /// Native error names or codes mapped to AEP2 reason codes, applied to every `code` the
    /// adapter reports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_map: BTreeMap<String, String>,
}

/// Identity of the implementation under test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Implementation {
    /// Product or library name.
    pub name: String,
    /// Programming language.
    pub language: String,
    /// Version of the implementation (not of the adapter).
    pub version: String,
    /// Project home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// Source repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where to report bugs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issues: Option<String>,
}

/// What an adapter declares it supports. Cases outside it are reported `skipped` without
/// being sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Case kinds the adapter answers.
    pub kinds: Vec<String>,
    /// Signature profiles the implementation verifies or signs.
    pub profiles: Vec<String>,
    /// Whether rejections carry a reason code; without, cases are judged on the verdict only.
    pub reason_codes: bool,
}

/// The adapter's answer to `run`: exactly one of `result`, `skipped`, `errored`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResponse {
    /// The request's `seq`, unchanged.
    pub seq: J,
    /// The implementation's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<CaseResult>,
    /// The adapter declines the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Skipped>,
    /// The implementation failed to produce an answer (an exception, an unexpected error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errored: Option<Errored>,
}

/// A verdict with its reason code and outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseResult {
    /// `valid` or `invalid`.
    pub verdict: String,
    /// For `invalid`: an AEP2 reason code, or a native error the error map translates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Values computed on the way: `signature` and `header` for `sign_mandate`, `requestHash`
    /// and `descriptor` for the request-hash kinds, `digest`, `mandateId`, … otherwise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

/// Why an adapter declined a case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// Why.
    pub reason: String,
    /// A tracking issue, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_url: Option<String>,
}

/// What went wrong when the implementation could not answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Errored {
    /// What happened.
    pub message: String,
    /// Free-form details (a traceback, the native error object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<J>,
}

/// One line read with [`read_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, newline stripped.
    Text(String),
    /// The peer closed the stream (a partial last line is dropped).
    Eof,
    /// The line exceeds [`MAX_LINE_BYTES`]; the stream cannot be resynchronised.
    TooLong,
    /// The line is not UTF-8.
    NotUtf8,
}

/// Reads one line of at most [`MAX_LINE_BYTES`] without ever buffering more than that.
pub fn read_line(r: &mut impl BufRead) -> io::Result<Line> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_LINE_BYTES {
            return Ok(Line::TooLong);
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(if done { take + 1 } else { take });
        if done {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(String::from_utf8(line).map_or(Line::NotUtf8, Line::Text));
        }
    }
}

/// The protocol's JSON Schemas, compiled from `spec/schemas/conformance/`.
pub struct Schemas {
    start_request: jsonschema::Validator,
    start_response: jsonschema::Validator,
    run_request: jsonschema::Validator,
    run_response: jsonschema::Validator,
    stop_request: jsonschema::Validator,
    report_line: jsonschema::Validator,
}

/// Which protocol message a value is meant to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// `start`, runner to adapter.
    StartRequest,
    /// The adapter's answer to `start`.
    StartResponse,
    /// `run`, runner to adapter.
    RunRequest,
    /// The adapter's answer to `run`.
    RunResponse,
    /// `stop`, runner to adapter.
    StopRequest,
    /// One line of a report.
    ReportLine,
}

/// The schema texts, embedded so the binary validates wherever it runs.
pub const SCHEMA_TEXTS: &[(&str, &str)] = &[
    (
        "start-request.schema.json",
        include_str!("../../spec/schemas/conformance/start-request.schema.json"),
    ),
    (
        "start-response.schema.json",
        include_str!("../../spec/schemas/conformance/start-response.schema.json"),
    ),
    (
        "run-request.schema.json",
        include_str!("../../spec/schemas/conformance/run-request.schema.json"),
    ),
    (
        "run-response.schema.json",
        include_str!("../../spec/schemas/conformance/run-response.schema.json"),
    ),
    (
        "stop-request.schema.json",
        include_str!("../../spec/schemas/conformance/stop-request.schema.json"),
    ),
    (
        "report-line.schema.json",
        include_str!("../../spec/schemas/conformance/report-line.schema.json"),
    ),
];

fn compile(name: &str) -> Result<jsonschema::Validator, String> {
    let text = SCHEMA_TEXTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| format!("no schema {name}"))?;
    let schema: J = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    jsonschema::draft202012::new(&schema).map_err(|e| format!("{name}: {e}"))
}

impl Schemas {
    /// Compiles the embedded schemas.
    pub fn load() -> Result<Schemas, String> {
        Ok(Schemas {
            start_request: compile("start-request.schema.json")?,
            start_response: compile("start-response.schema.json")?,
            run_request: compile("run-request.schema.json")?,
            run_response: compile("run-response.schema.json")?,
            stop_request: compile("stop-request.schema.json")?,
            report_line: compile("report-line.schema.json")?,
        })
    }

    /// Validates `value` as a `which` message; the error lists the first few violations.
    pub fn validate(&self, which: Message, value: &J) -> Result<(), String> {
        let v = match which {
            Message::StartRequest => &self.start_request,
            Message::StartResponse => &self.start_response,
            Message::RunRequest => &self.run_request,
            Message::RunResponse => &self.run_response,
            Message::StopRequest => &self.stop_request,
            Message::ReportLine => &self.report_line,
        };
        let errors: Vec<String> = v
            .iter_errors(value)
            .take(3)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// The protocol's result for a reference-style answer: verdict, code, and every output it
/// computed (intermediates, and the `signature` and `header` a signer produced).
pub fn result_of(a: aep2_vectors::check::Answer) -> CaseResult {
    let mut outputs = a.intermediates;
    outputs.extend(a.signature.map(|s| ("signature".to_owned(), s)));
    outputs.extend(a.header.map(|h| ("header".to_owned(), h)));
    CaseResult {
        verdict: a.result,
        code: a.reason,
        outputs,
    }
}

/// Serves the adapter protocol on `input` / `out` for an implementation: answers `start` with
/// `hello`, each `run` with `respond`, until `stop` or end of input (exit 0), or an unreadable
/// request or a closed output (exit 1, reported on stderr under `name`).
pub fn serve_adapter(
    name: &str,
    mut input: impl BufRead,
    mut out: impl std::io::Write,
    hello: &StartResponse,
    mut respond: impl FnMut(u64, &CaseInput) -> RunResponse,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let mut send = |line: String| -> bool {
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .is_ok()
    };
    loop {
        let line = match read_line(&mut input) {
            Ok(Line::Text(l)) => l,
            Ok(Line::Eof) => return ExitCode::SUCCESS,
            Ok(other) => {
                eprintln!("{name}: unreadable request line: {other:?}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("{name}: stdin: {e}");
                return ExitCode::FAILURE;
            }
        };
        let sent = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Start { .. }) => send(serde_json::to_string(hello).unwrap_or_default()),
            Ok(Request::Run { seq, case }) => send(serde_json::to_string(&respond(seq, &case)).unwrap_or_default()),
            Ok(Request::Stop) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{name}: bad request: {e}");
                return ExitCode::FAILURE;
            }
        };
        if !sent {
            return ExitCode::FAILURE;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_split() {
        let mut r = io::BufReader::with_capacity(7, &b"ab\r\ncd\n\xff\nrest"[..]);
        assert_eq!(read_line(&mut r).ok(), Some(Line::Text("ab".into())));
        assert_eq!(read_line(&mut r).ok(), Some(Line::Text("cd".into())));
        assert_eq!(read_line(&mut r).ok(), Some(Line::NotUtf8));
        assert_eq!(read_line(&mut r).ok(), Some(Line::Eof));
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        let mut r = io::BufReader::new(&long[..]);
        assert_eq!(read_line(&mut r).ok(), Some(Line::TooLong));
    }

    #[test]
    fn requests_have_their_wire_shape() {
        let stop = serde_json::to_string(&Request::Stop).unwrap_or_default();
        assert_eq!(stop, r#"{"cmd":"stop"}"#);
        let start = serde_json::to_string(&Request::Start { version: 1 }).unwrap_or_default();
        assert_eq!(start, r#"{"cmd":"start","version":1}"#);
    }
}
