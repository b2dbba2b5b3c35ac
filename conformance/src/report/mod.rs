//! The canonical JSON Lines report (spec `conformance.md#report`) and its renderers.
//!
//! A report is a header line, one line per case and a footer line. Every rendering is a pure
//! function of a [`Report`], so `aep2-conformance report FILE` re-renders a saved run exactly.

mod junit;
mod markdown;
mod terminal;

use crate::protocol::{Capabilities, Implementation};
use crate::{Error, exit};
use serde::{Deserialize, Serialize};
use serde_json::Value as J;
use std::collections::BTreeMap;

/// Longest report file `read` accepts, in bytes.
pub const MAX_REPORT_BYTES: u64 = 256 << 20;

/// What happened to one case (spec `conformance.md#statuses`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Verdict, reason code and checked outputs match.
    Passed,
    /// The answer differs from the expectation.
    Failed,
    /// Compat mode only: the answer differs from the strict expectation on a case where both
    /// verdicts conform under `compat`.
    Acceptable,
    /// Not run: the adapter declared the kind or profile unsupported, or answered `skipped`.
    Skipped,
    /// The adapter answered `errored`: the implementation could not produce an answer.
    Errored,
    /// The adapter exited or closed its output before answering.
    Crashed,
    /// No answer within the per-case timeout.
    TimedOut,
    /// The answer broke the protocol (unparsable, wrong `seq`, too long, schema violation).
    ProtocolError,
    /// Listed in the expected-failures file and did not pass: does not fail the run.
    ExpectedFailure,
}

impl Status {
    /// Every status, in report order.
    pub const ALL: [Status; 9] = [
        Status::Passed,
        Status::Failed,
        Status::Acceptable,
        Status::Skipped,
        Status::Errored,
        Status::Crashed,
        Status::TimedOut,
        Status::ProtocolError,
        Status::ExpectedFailure,
    ];

    /// Stable name as written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Acceptable => "acceptable",
            Status::Skipped => "skipped",
            Status::Errored => "errored",
            Status::Crashed => "crashed",
            Status::TimedOut => "timed_out",
            Status::ProtocolError => "protocol_error",
            Status::ExpectedFailure => "expected_failure",
        }
    }

    /// Statuses that fail a run (unless the case is an expected failure).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::Errored | Status::Crashed | Status::TimedOut | Status::ProtocolError
        )
    }

    /// Statuses that mean the adapter itself misbehaved (exit code 3).
    pub fn is_adapter_fault(self) -> bool {
        matches!(self, Status::Crashed | Status::TimedOut | Status::ProtocolError)
    }
}

/// Number of cases per status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Counts {
    /// [`Status::Passed`].
    pub passed: usize,
    /// [`Status::Failed`].
    pub failed: usize,
    /// [`Status::Acceptable`].
    pub acceptable: usize,
    /// [`Status::Skipped`].
    pub skipped: usize,
    /// [`Status::Errored`].
    pub errored: usize,
    /// [`Status::Crashed`].
    pub crashed: usize,
    /// [`Status::TimedOut`].
    pub timed_out: usize,
    /// [`Status::ProtocolError`].
    pub protocol_error: usize,
    /// [`Status::ExpectedFailure`].
    pub expected_failure: usize,
}

impl Counts {
    /// Counts the statuses of `cases`.
    pub fn of<'a>(cases: impl IntoIterator<Item = &'a CaseRecord>) -> Counts {
        let mut c = Counts::default();
        for case in cases {
            c.add(case.status);
        }
        c
    }

    /// Adds one case.
    pub fn add(&mut self, s: Status) {
        *self.slot(s) += 1;
    }

    fn slot(&mut self, s: Status) -> &mut usize {
        match s {
            Status::Passed => &mut self.passed,
            Status::Failed => &mut self.failed,
            Status::Acceptable => &mut self.acceptable,
            Status::Skipped => &mut self.skipped,
            Status::Errored => &mut self.errored,
            Status::Crashed => &mut self.crashed,
            Status::TimedOut => &mut self.timed_out,
            Status::ProtocolError => &mut self.protocol_error,
            Status::ExpectedFailure => &mut self.expected_failure,
        }
    }

    /// The count of one status.
    pub fn get(&self, s: Status) -> usize {
        let mut c = self.clone();
        *c.slot(s)
    }

    /// All cases counted.
    pub fn total(&self) -> usize {
        Status::ALL.iter().map(|&s| self.get(s)).sum()
    }
}

/// The vectors a run used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VectorSet {
    /// The directory, as given.
    pub dir: String,
    /// SHA-256 of the manifest (`<sha256>  <file name>` lines, by name), lowercase hex.
    pub sha256: String,
    /// The AEP2 spec version(s) the files follow, comma-separated when they differ.
    pub spec_version: String,
    /// One entry per vector file, by name.
    pub files: Vec<VectorFileInfo>,
    /// Cases in all files.
    pub cases: usize,
}

/// One vector file in a [`VectorSet`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VectorFileInfo {
    /// File name.
    pub name: String,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
    /// Its number of cases.
    pub tests: usize,
}

/// The adapter of a run, as it introduced itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdapterInfo {
    /// The command line that started it.
    pub command: Vec<String>,
    /// Its `start` answer.
    pub implementation: Implementation,
    /// Its declared capabilities.
    pub capabilities: Capabilities,
    /// Its error map.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_map: BTreeMap<String, String>,
}

/// The report's first line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    /// `aep2-conformance`.
    pub suite: String,
    /// The runner's version.
    pub suite_version: String,
    /// The adapter protocol version.
    pub protocol_version: u64,
    /// The vectors.
    pub vectors: VectorSet,
    /// The implementation under test; absent for runs that use no adapter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<AdapterInfo>,
    /// `strict` or `compat`.
    pub mode: String,
    /// The selection flags of the run.
    pub selection: J,
    /// The expected-failures file, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_failures: Option<String>,
    /// Start time, unix seconds.
    pub started: u64,
}

/// What a case expects, as the report shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expectation {
    /// `valid` or `invalid`.
    pub result: String,
    /// The reason code of an invalid case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The stage of that code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `acceptable` where compat mode admits both verdicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compat: Option<String>,
}

/// One case of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaseRecord {
    /// The vector id (`<topic>/<group>/<nnnn>`), or a probe's check name.
    pub id: String,
    /// The case kind.
    pub kind: String,
    /// The vector's flags.
    pub tags: Vec<String>,
    /// The vector's spec references.
    pub spec_refs: Vec<String>,
    /// The expectation.
    pub expected: Expectation,
    /// What the adapter answered (its `result`, `skipped` or `errored` object), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub got: Option<J>,
    /// The status.
    pub status: Status,
    /// Time from sending the case to judging the answer, microseconds.
    pub duration_us: u64,
    /// Why the case did not pass, or how it was judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the adapter wrote to stderr meanwhile (bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// The expected-failures list's reason, when the case is listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_failure: Option<String>,
    /// A listed case that passed: "now passes — remove it from the list".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The report's last line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Footer {
    /// Cases per status.
    pub counts: Counts,
    /// Cases reported.
    pub total: usize,
    /// Why the run stopped before the end of the selection, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
    /// Adapter restarts after crashes, hangs and protocol errors.
    pub restarts: u32,
    /// Wall time of the run, microseconds.
    pub duration_us: u64,
    /// Warnings (expected failures that now pass, …).
    pub warnings: Vec<String>,
    /// The process exit code of the run (spec `conformance.md#exit-codes`).
    pub exit_code: i32,
}

/// One line of a JSON Lines report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ReportLine {
    /// The first line.
    Header(Header),
    /// A case.
    Case(CaseRecord),
    /// The last line.
    Footer(Footer),
}

/// A complete report.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Header.
    pub header: Header,
    /// Cases, in run order.
    pub cases: Vec<CaseRecord>,
    /// Footer.
    pub footer: Footer,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human summary: counts, per spec section, the cases that did not pass.
    Terminal,
    /// The canonical JSON Lines report.
    Jsonl,
    /// One JSON document: header, cases, footer and the breakdowns.
    Json,
    /// A Markdown report for READMEs and pull requests.
    Markdown,
    /// JUnit XML for CI systems: one testsuite per vector group.
    Junit,
}

/// Counts per key.
pub type Breakdown = BTreeMap<String, Counts>;

impl Report {
    /// The JSON Lines text: header, cases, footer, one object per line.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for line in self.lines() {
            out.push_str(&serde_json::to_string(&line).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// The report as its lines.
    pub fn lines(&self) -> Vec<ReportLine> {
        let mut v = Vec::with_capacity(self.cases.len() + 2);
        v.push(ReportLine::Header(self.header.clone()));
        v.extend(self.cases.iter().cloned().map(ReportLine::Case));
        v.push(ReportLine::Footer(self.footer.clone()));
        v
    }

    /// Parses JSON Lines text: one header first, cases, one footer last.
    pub fn from_jsonl(text: &str) -> Result<Report, Error> {
        let bad = |n: usize, m: String| Error::new(exit::USAGE, format!("report line {n}: {m}"));
        let mut header = None;
        let mut footer = None;
        let mut cases = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let n = i + 1;
            if footer.is_some() {
                return Err(bad(n, "content after the footer".into()));
            }
            match serde_json::from_str::<ReportLine>(line).map_err(|e| bad(n, e.to_string()))? {
                ReportLine::Header(h) if header.is_none() && cases.is_empty() => header = Some(h),
                ReportLine::Header(_) => return Err(bad(n, "a second header".into())),
                ReportLine::Case(_) if header.is_none() => return Err(bad(n, "a case before the header".into())),
                ReportLine::Case(c) => cases.push(c),
                ReportLine::Footer(f) => footer = Some(f),
            }
        }
        match (header, footer) {
            (Some(header), Some(footer)) => Ok(Report { header, cases, footer }),
            _ => Err(Error::new(exit::USAGE, "report needs a header line and a footer line")),
        }
    }

    /// Counts per spec reference (`aep2.md#anchor`, `rfc8032#5.1.7`, …); a case counts once
    /// under each reference it cites.
    pub fn by_section(&self) -> Breakdown {
        let mut m = Breakdown::new();
        for c in &self.cases {
            for r in &c.spec_refs {
                m.entry(r.clone()).or_default().add(c.status);
            }
        }
        m
    }

    /// Counts per tag (vector flag).
    pub fn by_tag(&self) -> Breakdown {
        let mut m = Breakdown::new();
        for c in &self.cases {
            for t in &c.tags {
                m.entry(t.clone()).or_default().add(c.status);
            }
        }
        m
    }

    /// Counts per vector group (the id without its last segment).
    pub fn by_group(&self) -> Breakdown {
        let mut m = Breakdown::new();
        for c in &self.cases {
            m.entry(group_of(&c.id).to_owned()).or_default().add(c.status);
        }
        m
    }

    /// Renders in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Terminal => terminal::render(self),
            Format::Jsonl => self.to_jsonl(),
            Format::Json => {
                let doc = serde_json::json!({
                    "header": self.header,
                    "cases": self.cases,
                    "footer": self.footer,
                    "bySection": self.by_section(),
                    "byTag": self.by_tag(),
                });
                let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
                s.push('\n');
                s
            }
            Format::Markdown => markdown::render(self),
            Format::Junit => junit::render(self),
        }
    }
}

/// The group part of a case id: everything before the last `/`.
pub fn group_of(id: &str) -> &str {
    id.rsplit_once('/').map_or(id, |(g, _)| g)
}

/// `passed/total` plus the non-zero other statuses, for one-line summaries.
pub fn counts_line(c: &Counts) -> String {
    let mut parts = vec![format!("{}/{} passed", c.passed, c.total())];
    for s in Status::ALL.iter().skip(1) {
        let n = c.get(*s);
        if n > 0 {
            parts.push(format!("{n} {}", s.as_str().replace('_', " ")));
        }
    }
    parts.join(", ")
}

/// A one-line outcome for the footer's exit code.
pub fn verdict_line(exit_code: i32) -> &'static str {
    match exit_code {
        exit::OK => "PASS: every required case passed",
        exit::FAILURES => "FAIL: conformance failures",
        exit::ADAPTER => "FAIL: the adapter crashed, hung or broke the protocol",
        exit::VECTORS => "ERROR: invalid vectors",
        _ => "ERROR: usage or configuration",
    }
}
