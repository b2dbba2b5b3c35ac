//! The runner end to end: the reference adapter passes everything; scripted faulty adapters
//! (a Python proxy in front of the reference adapter, `fixtures/fake_adapter.py`) produce each
//! status and exit code; expected-failures lists; renderers and re-rendering.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2_conformance::protocol::{Message, PROTOCOL_VERSION, Request, SCHEMA_TEXTS, Schemas};
use aep2_conformance::report::{Report, Status};
use aep2_conformance::suite::{Suite, default_dir};
use aep2_conformance::{RunOptions, exit, run};
use serde_json::Value as J;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const RUNNER: &str = env!("CARGO_BIN_EXE_aep2-conformance");
const REFERENCE: &str = env!("CARGO_BIN_EXE_aep2-reference-adapter");

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fake(faults: &str) -> String {
    format!(
        "python3 '{}' '{REFERENCE}' {faults}",
        here().join("tests/fixtures/fake_adapter.py").display()
    )
}

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "aep2-conformance-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cli(args: &[&str]) -> Out {
    let o = Command::new(RUNNER).args(args).output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs with a JSON Lines report and returns it with the exit code.
fn cli_report(args: &[&str]) -> (i32, Report, String) {
    let dir = temp_dir("report");
    let path = dir.join("r.jsonl");
    let mut all = vec!["run", "--report", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = cli(&all);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no report ({e}): {}", out.stderr));
    (out.code, Report::from_jsonl(&text).unwrap(), out.stderr)
}

/// The ids a prefix selects, in run order: `seq` n is the n-th of them when nothing is skipped.
fn selected(prefix: &str) -> Vec<String> {
    let suite = Suite::load(&default_dir()).unwrap();
    let ids: Vec<String> = suite
        .cases()
        .filter(|(_, t)| t.id.starts_with(prefix))
        .map(|(_, t)| t.id.clone())
        .collect();
    assert!(ids.len() >= 5, "the fault tests need at least 5 cases under {prefix}");
    ids
}

fn statuses(r: &Report, s: Status) -> Vec<String> {
    r.cases.iter().filter(|c| c.status == s).map(|c| c.id.clone()).collect()
}

#[test]
fn the_reference_adapter_passes_every_case() {
    let suite = Suite::load(&default_dir()).unwrap();
    assert!(suite.info.cases >= 600, "the vector set shrank to {}", suite.info.cases);
    let mut o = RunOptions::new(vec![REFERENCE.to_owned()]);
    o.validate_protocol = true;
    let report = run(&suite, &o).unwrap();
    let not_passed: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| format!("{} {:?} {:?}", c.id, c.status, c.message))
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    assert_eq!(report.cases.len(), suite.info.cases);
    assert_eq!(report.footer.exit_code, exit::OK);
    assert_eq!(report.footer.restarts, 0);
    // Every report line is what report-line.schema.json describes.
    let schemas = Schemas::load().unwrap();
    for line in report.to_jsonl().lines() {
        let v: J = serde_json::from_str(line).unwrap();
        schemas.validate(Message::ReportLine, &v).unwrap();
    }
}

#[test]
fn the_documented_ci_command_passes_through_the_alias() {
    let ef = here().join("expected-failures/reference.json");
    let out = cli(&[
        "run",
        "--adapter",
        "reference",
        "--validate-protocol",
        "--expected-failures",
        ef.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("PASS"), "{}", out.stdout);
}

#[test]
fn sent_and_answered_messages_match_the_schemas() {
    let schemas = Schemas::load().unwrap();
    for (name, text) in SCHEMA_TEXTS {
        let schema: J = serde_json::from_str(text).unwrap();
        let which = match *name {
            "start-request.schema.json" => Message::StartRequest,
            "start-response.schema.json" => Message::StartResponse,
            "run-request.schema.json" => Message::RunRequest,
            "run-response.schema.json" => Message::RunResponse,
            "stop-request.schema.json" => Message::StopRequest,
            _ => Message::ReportLine,
        };
        for example in schema["examples"].as_array().unwrap() {
            schemas
                .validate(which, example)
                .unwrap_or_else(|e| panic!("{name} example: {e}"));
        }
    }
    let suite = Suite::load(&default_dir()).unwrap();
    let mut requests = vec![Request::Start {
        version: PROTOCOL_VERSION,
    }];
    for (seq, (g, t)) in suite.cases().enumerate() {
        let seq = seq as u64 + 1;
        requests.push(Request::Run {
            seq,
            case: aep2_conformance::protocol::CaseInput::of(g, t),
        });
    }
    requests.push(Request::Stop);
    let mut input = String::new();
    for r in &requests {
        let v = serde_json::to_value(r).unwrap();
        let which = match r {
            Request::Start { .. } => Message::StartRequest,
            Request::Run { .. } => Message::RunRequest,
            Request::Stop => Message::StopRequest,
        };
        schemas
            .validate(which, &v)
            .unwrap_or_else(|e| panic!("runner sent {v}: {e}"));
        // Inputs only: nothing of the expectation travels.
        let text = v.to_string();
        assert!(
            !text.contains("\"expected\"") && !text.contains("\"comment\""),
            "{text}"
        );
        input.push_str(&format!("{text}\n"));
    }
    let mut output = Vec::new();
    aep2_conformance::reference::serve(input.as_bytes(), &mut output);
    let lines: Vec<&str> = std::str::from_utf8(&output).unwrap().lines().collect();
    assert_eq!(lines.len(), suite.info.cases + 1);
    schemas
        .validate(Message::StartResponse, &serde_json::from_str(lines[0]).unwrap())
        .unwrap();
    for line in &lines[1..] {
        let v: J = serde_json::from_str(line).unwrap();
        schemas
            .validate(Message::RunResponse, &v)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}

#[test]
fn protocol_validation_catches_a_message_the_lenient_reader_accepts() {
    let adapter = fake("--extra-field 2");
    let ids = selected("signing/");
    let (code, r, _) = cli_report(&["--adapter", &adapter, "--id", "signing/"]);
    assert_eq!(code, 0);
    assert_eq!(statuses(&r, Status::Passed).len(), ids.len());
    let (code, r, _) = cli_report(&["--adapter", &adapter, "--id", "signing/", "--validate-protocol"]);
    assert_eq!(code, exit::ADAPTER);
    let bad = statuses(&r, Status::ProtocolError);
    assert_eq!(bad, [ids[1].clone()]);
    let c = r.cases.iter().find(|c| c.id == bad[0]).unwrap();
    assert!(
        c.message.as_deref().unwrap().contains("run-response.schema.json"),
        "{c:?}"
    );
    assert_eq!(
        statuses(&r, Status::Passed).len(),
        ids.len() - 1,
        "the run goes on after a restart"
    );
    assert_eq!(r.footer.restarts, 1);
}

#[test]
fn garbage_and_a_wrong_seq_are_protocol_errors() {
    let ids = selected("signing/");
    let (code, r, _) = cli_report(&["--adapter", &fake("--garbage 1 --wrong-seq 4"), "--id", "signing/"]);
    assert_eq!(code, exit::ADAPTER);
    assert_eq!(statuses(&r, Status::ProtocolError), [ids[0].clone(), ids[3].clone()]);
    assert_eq!(statuses(&r, Status::Passed).len(), ids.len() - 2);
}

#[test]
fn a_crash_is_recorded_with_stderr_and_the_run_goes_on() {
    let ids = selected("signing/");
    let (code, r, _) = cli_report(&["--adapter", &fake("--crash 3"), "--id", "signing/"]);
    assert_eq!(code, exit::ADAPTER);
    assert_eq!(statuses(&r, Status::Crashed), [ids[2].clone()]);
    assert_eq!(statuses(&r, Status::Passed).len(), ids.len() - 1);
    assert_eq!(r.footer.restarts, 1);
    let c = r.cases.iter().find(|c| c.status == Status::Crashed).unwrap();
    assert!(c.stderr.as_deref().unwrap_or("").contains("boom on seq 3"), "{c:?}");
    assert!(c.message.as_deref().unwrap().contains("exited"), "{c:?}");
}

#[test]
fn a_hang_times_out_and_the_run_goes_on() {
    let ids = selected("signing/");
    let (code, r, _) = cli_report(&[
        "--adapter",
        &fake("--hang 2"),
        "--id",
        "signing/",
        "--timeout-ms",
        "700",
    ]);
    assert_eq!(code, exit::ADAPTER);
    assert_eq!(statuses(&r, Status::TimedOut), [ids[1].clone()]);
    assert_eq!(statuses(&r, Status::Passed).len(), ids.len() - 1);
}

#[test]
fn a_failed_handshake_is_an_adapter_error() {
    let out = cli(&["run", "--adapter", &fake("--bad-start"), "--id", "signing/"]);
    assert_eq!(out.code, exit::ADAPTER, "{}", out.stderr);
    assert!(out.stderr.contains("protocol version 99"), "{}", out.stderr);
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    assert_eq!(
        cli(&["run", "--adapter", "reference", "--mode", "lenient"]).code,
        exit::USAGE
    );
    assert_eq!(cli(&["run"]).code, exit::USAGE, "--adapter is required without --list");
    let out = cli(&["run", "--adapter", "/nonexistent/adapter-program"]);
    assert_eq!(out.code, exit::USAGE, "{}", out.stderr);
    assert_eq!(cli(&["run", "--adapter", "x 'unterminated"]).code, exit::USAGE);
    let missing = cli(&["run", "--adapter", "reference", "--vectors", "/nonexistent/vectors"]);
    assert_eq!(missing.code, exit::USAGE);
    let help = cli(&["run", "--help"]);
    assert_eq!(help.code, 0);
    for code in ["0  every", "1  conformance", "2  usage", "3  adapter", "4  vectors"] {
        assert!(help.stdout.contains(code), "--help lacks {code}");
    }
}

fn copy_vectors(files: &[&str]) -> PathBuf {
    let dir = temp_dir("vectors");
    for f in files {
        std::fs::copy(default_dir().join(f), dir.join(f)).unwrap();
    }
    dir
}

#[test]
fn invalid_vectors_exit_4_and_a_valid_custom_dir_runs() {
    let dir = copy_vectors(&["signing.json"]);
    let out = cli(&["run", "--adapter", "reference", "--vectors", dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let n = selected("signing/").len();
    assert!(out.stdout.contains(&format!("{n}/{n} passed")), "{}", out.stdout);
    // A count that disagrees with the tests, then a file the schema rejects.
    let path = dir.join("signing.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let count = format!("\"numberOfTests\": {n}");
    assert!(text.contains(&count));
    std::fs::write(&path, text.replace(&count, &format!("\"numberOfTests\": {}", n + 1))).unwrap();
    let out = cli(&["run", "--adapter", "reference", "--vectors", dir.to_str().unwrap()]);
    assert_eq!(out.code, exit::VECTORS, "{}", out.stderr);
    std::fs::write(
        &path,
        text.replace("\"kind\": \"sign_mandate\"", "\"kind\": \"sign_anything\""),
    )
    .unwrap();
    let out = cli(&["run", "--adapter", "reference", "--vectors", dir.to_str().unwrap()]);
    assert_eq!(out.code, exit::VECTORS, "{}", out.stderr);
    assert!(out.stderr.contains("schema"), "{}", out.stderr);
}

#[test]
fn expected_failures_absorb_known_failures_warn_when_passing_and_reject_unknown_ids() {
    let adapter = fake("--flip 3");
    let (code, r, _) = cli_report(&["--adapter", &adapter, "--id", "signing/"]);
    assert_eq!(code, exit::FAILURES);
    let failed = statuses(&r, Status::Failed);
    assert_eq!(failed, [selected("signing/")[2].clone()]);
    let dir = temp_dir("xfail");
    let list = dir.join("fake.json");
    let write = |ids: &[&str]| {
        let entries: Vec<J> = ids
            .iter()
            .map(|id| serde_json::json!({"id": id, "reason": "the fake flips the third verdict"}))
            .collect();
        let doc = serde_json::json!({"adapter": "fake", "expectedFailures": entries});
        std::fs::write(&list, doc.to_string()).unwrap();
    };
    write(&[&failed[0]]);
    let list_arg = list.to_str().unwrap();
    let (code, r, _) = cli_report(&[
        "--adapter",
        &adapter,
        "--id",
        "signing/",
        "--expected-failures",
        list_arg,
    ]);
    assert_eq!(code, exit::OK);
    assert_eq!(statuses(&r, Status::ExpectedFailure), failed);
    // Listed but passing: the run passes and says so.
    let (code, r, stderr) = cli_report(&[
        "--adapter",
        "reference",
        "--id",
        "signing/",
        "--expected-failures",
        list_arg,
    ]);
    assert_eq!(code, exit::OK);
    assert_eq!(r.footer.warnings.len(), 1);
    assert!(stderr.contains("now passes"), "{stderr}");
    // A list naming an id that does not exist is a configuration error.
    write(&[&failed[0], "signing/eip712-mvp/9999"]);
    let out = cli(&["run", "--adapter", "reference", "--expected-failures", list_arg]);
    assert_eq!(out.code, exit::USAGE);
    assert!(out.stderr.contains("signing/eip712-mvp/9999"), "{}", out.stderr);
}

#[test]
fn fail_fast_stops_at_the_first_failure() {
    let (code, r, _) = cli_report(&["--adapter", &fake("--flip 2"), "--id", "signing/", "--fail-fast"]);
    assert_eq!(code, exit::FAILURES);
    assert_eq!(r.cases.len(), 2);
    assert!(r.footer.stopped_early.is_some());
}

#[test]
fn the_python_minimal_adapter_is_all_skipped() {
    let adapter = format!(
        "python3 '{}'",
        here().join("adapters/python-minimal/adapter.py").display()
    );
    let (code, r, _) = cli_report(&["--adapter", &adapter, "--validate-protocol"]);
    assert_eq!(code, exit::OK, "skips are not failures");
    assert_eq!(r.footer.counts.skipped, r.header.vectors.cases);
    let out = cli(&["run", "--adapter", &adapter, "--id", "x402/", "--require-all"]);
    assert_eq!(out.code, exit::FAILURES);
}

fn well_formed_xml(xml: &str) {
    let check = "import sys, xml.dom.minidom as m; d = m.parseString(sys.stdin.buffer.read()); \
                 print(d.documentElement.tagName, len(d.getElementsByTagName('testcase')))";
    let mut child = Command::new("python3")
        .args(["-c", check])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "JUnit XML is not well-formed");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("testsuites "));
}

#[test]
fn renderers_are_valid_and_re_rendering_is_identical() {
    let dir = temp_dir("render");
    let jsonl = dir.join("run.jsonl");
    // A run with every interesting status: failed, crashed (its stderr has control bytes
    // escaped), passed.
    let adapter = fake("--flip 1 --crash 5");
    for format in ["terminal", "json", "markdown", "junit", "jsonl"] {
        let out = cli(&[
            "run",
            "--adapter",
            &adapter,
            "--id",
            "signing/",
            "--report",
            jsonl.to_str().unwrap(),
            "--format",
            format,
        ]);
        assert_eq!(out.code, exit::ADAPTER, "{}", out.stderr);
        let again = cli(&["report", jsonl.to_str().unwrap(), "--format", format]);
        assert_eq!(again.code, exit::ADAPTER);
        assert_eq!(out.stdout, again.stdout, "{format} re-renders differently");
        match format {
            "json" => {
                let v: J = serde_json::from_str(&out.stdout).unwrap();
                assert_eq!(v["cases"].as_array().unwrap().len(), selected("signing/").len());
                assert_eq!(v["footer"]["counts"]["failed"], 1);
                assert!(v["bySection"].as_object().unwrap().len() > 1);
            }
            "markdown" => {
                assert!(out.stdout.contains("## By spec section"));
                assert!(out.stdout.contains("## By tag"));
                assert!(
                    out.stdout
                        .contains("| `signing/eip712-mvp/0001` | sign_mandate | failed |")
                );
            }
            "junit" => {
                well_formed_xml(&out.stdout);
                assert!(out.stdout.contains("<failure "));
                assert!(out.stdout.contains("<error ") && out.stdout.contains("type=\"crashed\""));
            }
            "jsonl" => assert_eq!(out.stdout, std::fs::read_to_string(&jsonl).unwrap()),
            _ => assert!(out.stdout.contains("Cases not passed:")),
        }
    }
    let garbage = dir.join("bad.jsonl");
    std::fs::write(&garbage, "{\"type\":\"case\"}\n").unwrap();
    assert_eq!(cli(&["report", garbage.to_str().unwrap()]).code, exit::USAGE);
}

#[test]
fn list_prints_the_selection_without_an_adapter() {
    let out = cli(&["run", "--list", "--kind", "http_request_hash"]);
    assert_eq!(out.code, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let suite = Suite::load(&default_dir()).unwrap();
    let expected: Vec<&str> = suite
        .cases()
        .filter(|(g, _)| g.kind.as_str() == "http_request_hash")
        .map(|(_, t)| t.id.as_str())
        .collect();
    assert!(expected.len() >= 5 && expected.iter().all(|id| id.starts_with("x402/")));
    let listed: Vec<&str> = lines.iter().map(|l| l.split('\t').next().unwrap_or("")).collect();
    assert_eq!(listed, expected);
    let tagged = cli(&["run", "--list", "--tag", "request_hash", "--profile", "eip712"]);
    assert_eq!(tagged.stdout, "", "request-hash cases have no profile");
}

/// `--adapter evm`: the settlement contract, executed on the embedded EVM, reaches the vectors'
/// verdict on every eip712 `verify_mandate` case it decides, and its digest is the vectors'.
#[test]
fn the_settlement_contract_passes_every_eip712_case_it_decides() {
    let (code, r, stderr) = cli_report(&["--adapter", "evm", "--validate-protocol"]);
    assert_eq!(code, exit::OK, "{stderr}");
    let c = &r.footer.counts;
    assert_eq!(c.failed, 0);
    assert!(c.passed >= 50, "only {} cases decided by the contract", c.passed);
    let decided: Vec<_> = r.cases.iter().filter(|x| x.status == Status::Passed).collect();
    assert!(decided.iter().all(|x| x.kind == "verify_mandate"));
    // Both verdicts occur: the contract refuses what the verifier refuses, not everything.
    let valid = decided.iter().filter(|x| x.expected.result == "valid").count();
    assert!(valid > 5 && valid < decided.len(), "{valid} of {} valid", decided.len());
    println!("the contract decided {} cases, {valid} valid", decided.len());
}
