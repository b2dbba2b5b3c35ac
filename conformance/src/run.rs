//! One run: the selected cases through one adapter, restarted after crashes, into a report.

use crate::adapter::{Adapter, Exchange};
use crate::expected::ExpectedFailures;
pub use crate::judge::Mode;
use crate::judge::{expectation, judge_result};
use crate::protocol::{CaseInput, PROTOCOL_VERSION, Schemas};
use crate::report::{AdapterInfo, CaseRecord, Counts, Footer, Header, Report, Status};
use crate::select::Selection;
use crate::suite::Suite;
use crate::{Error, exit};
use serde_json::{Value as J, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a run is made.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The adapter's argv.
    pub adapter: Vec<String>,
    /// Strict or compat judging.
    pub mode: Mode,
    /// Which cases.
    pub selection: Selection,
    /// Longest wait for one answer.
    pub timeout: Duration,
    /// Longest wait for the `start` answer (an adapter may compile or load a runtime first).
    pub start_timeout: Duration,
    /// Stop after this many failures (fail-fast is 1).
    pub max_fail: Option<usize>,
    /// Validate every adapter message against the protocol schemas.
    pub validate_protocol: bool,
    /// Count skipped cases as failures.
    pub require_all: bool,
    /// Most restarts after crashes, hangs and protocol errors before the run stops.
    pub max_restarts: u32,
    /// The expected-failures list and the path it came from.
    pub expected_failures: Option<(String, ExpectedFailures)>,
}

impl RunOptions {
    /// Defaults: strict, everything selected, 10 s per case, 60 s to start, no early stop,
    /// 20 restarts.
    pub fn new(adapter: Vec<String>) -> RunOptions {
        RunOptions {
            adapter,
            mode: Mode::Strict,
            selection: Selection::default(),
            timeout: Duration::from_secs(10),
            start_timeout: Duration::from_secs(60),
            max_fail: None,
            validate_protocol: false,
            require_all: false,
            max_restarts: 20,
            expected_failures: None,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs the selected cases of `suite` through the adapter. Errors before any case ran (an
/// adapter that cannot be spawned or fails its first handshake) come back as `Err`; everything
/// after is in the report, whose footer carries the exit code.
pub fn run(suite: &Suite, o: &RunOptions) -> Result<Report, Error> {
    let began = Instant::now();
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let schemas = if o.validate_protocol {
        Some(Schemas::load().map_err(|e| Error::new(exit::USAGE, e))?)
    } else {
        None
    };
    let first = Adapter::start(&o.adapter, o.start_timeout, schemas.as_ref())?;
    let info = AdapterInfo {
        command: o.adapter.clone(),
        implementation: first.hello.implementation.clone(),
        capabilities: first.hello.capabilities.clone(),
        error_map: first.hello.error_map.clone(),
    };
    let mut current = Some(first);
    let selected: Vec<_> = suite.cases().filter(|(g, t)| o.selection.matches(g, t)).collect();
    let mut cases = Vec::with_capacity(selected.len());
    let (mut seq, mut restarts, mut failures) = (0u64, 0u32, 0usize);
    let mut stopped_early = None;
    let mut adapter_lost = false;
    for (group, case) in selected.iter().copied() {
        let Some(adapter) = current.as_mut() else { break };
        let t0 = Instant::now();
        let kind = group.kind.as_str();
        let caps = &adapter.hello.capabilities;
        let mut restart = false;
        let mut stderr = None;
        let (status, got, message) = if !caps.kinds.iter().any(|k| k == kind) {
            (
                Status::Skipped,
                None,
                Some(format!("the adapter does not support kind {kind}")),
            )
        } else if let Some(p) = group.context.profile.as_deref()
            && !caps.profiles.iter().any(|x| x == p)
        {
            (
                Status::Skipped,
                None,
                Some(format!("the adapter does not support profile {p}")),
            )
        } else {
            seq += 1;
            let _stale = adapter.take_stderr();
            let outcome = adapter.run(seq, &CaseInput::of(group, case), o.timeout, schemas.as_ref());
            let judged = match outcome {
                Exchange::Answer(a) => {
                    if let Some(r) = &a.result {
                        let (s, m) = judge_result(group, case, r, &adapter.hello, o.mode);
                        (s, serde_json::to_value(r).ok(), m)
                    } else if let Some(s) = &a.skipped {
                        (Status::Skipped, serde_json::to_value(&a).ok(), Some(s.reason.clone()))
                    } else if let Some(e) = &a.errored {
                        (Status::Errored, serde_json::to_value(&a).ok(), Some(e.message.clone()))
                    } else {
                        (Status::ProtocolError, None, Some("empty answer".into()))
                    }
                }
                Exchange::Crashed(m) => {
                    restart = true;
                    (Status::Crashed, None, Some(m))
                }
                Exchange::TimedOut => {
                    restart = true;
                    (
                        Status::TimedOut,
                        None,
                        Some(format!("no answer within {} ms", o.timeout.as_millis())),
                    )
                }
                Exchange::Protocol(m) => {
                    restart = true;
                    (Status::ProtocolError, None, Some(m))
                }
            };
            stderr = adapter.take_stderr();
            judged
        };
        let mut record = CaseRecord {
            id: case.id.clone(),
            kind: kind.to_owned(),
            tags: case.flags.clone(),
            spec_refs: case.spec_refs.clone(),
            expected: expectation(case),
            got,
            status,
            duration_us: micros(t0.elapsed()),
            message,
            stderr,
            expected_failure: None,
            warning: None,
        };
        if let Some(reason) = o.expected_failures.as_ref().and_then(|(_, l)| l.reason(&case.id)) {
            record.expected_failure = Some(reason.to_owned());
            if record.status.is_failure() || record.status == Status::Acceptable {
                let was = record.status.as_str();
                record.message = Some(format!("{was}: {}", record.message.unwrap_or_default()));
                record.status = Status::ExpectedFailure;
            } else if record.status == Status::Passed {
                record.warning = Some("now passes — remove it from the expected-failures list".into());
            }
        }
        if record.status.is_failure() {
            failures += 1;
        }
        cases.push(record);
        if restart {
            if let Some(old) = current.take() {
                drop(old);
            }
            restarts += 1;
            if restarts > o.max_restarts {
                stopped_early = Some(format!("the adapter needed more than {} restarts", o.max_restarts));
                adapter_lost = true;
                break;
            }
            match Adapter::start(&o.adapter, o.start_timeout, schemas.as_ref()) {
                Ok(a) => current = Some(a),
                Err(e) => {
                    stopped_early = Some(format!("the adapter could not be restarted: {e}"));
                    adapter_lost = true;
                    break;
                }
            }
        }
        if let Some(max) = o.max_fail
            && failures >= max
        {
            stopped_early = Some(format!("{failures} failure(s) reached the limit of {max}"));
            break;
        }
    }
    if let Some(a) = current.take() {
        a.stop();
    }
    let counts = Counts::of(&cases);
    let warnings: Vec<String> = cases
        .iter()
        .filter_map(|c| c.warning.as_ref().map(|w| format!("{}: {w}", c.id)))
        .collect();
    let exit_code = if adapter_lost || cases.iter().any(|c| c.status.is_adapter_fault()) {
        exit::ADAPTER
    } else if cases.iter().any(|c| c.status.is_failure()) || (o.require_all && counts.skipped > 0) {
        exit::FAILURES
    } else {
        exit::OK
    };
    let mut selection = serde_json::to_value(&o.selection).unwrap_or(J::Null);
    if let J::Object(m) = &mut selection {
        m.insert("cases".into(), json!(selected.len()));
    }
    let header = Header {
        suite: env!("CARGO_PKG_NAME").into(),
        suite_version: env!("CARGO_PKG_VERSION").into(),
        protocol_version: PROTOCOL_VERSION,
        vectors: suite.info.clone(),
        adapter: Some(info),
        mode: o.mode.as_str().into(),
        selection,
        expected_failures: o.expected_failures.as_ref().map(|(p, _)| p.clone()),
        started,
    };
    let footer = Footer {
        total: cases.len(),
        counts,
        stopped_early,
        restarts,
        duration_us: micros(began.elapsed()),
        warnings,
        exit_code,
    };
    Ok(Report { header, cases, footer })
}
