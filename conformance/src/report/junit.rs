//! JUnit XML: one `<testsuite>` per vector group, one `<testcase>` per case. Failures and
//! adapter faults become `<failure>` / `<error>`, skips `<skipped>`.

use super::{Report, Status, group_of};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for XML 1.0 attributes and content, dropping characters XML cannot carry.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn secs(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

pub(super) fn render(r: &Report) -> String {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in r.cases.iter().enumerate() {
        groups.entry(group_of(&c.id)).or_default().push(i);
    }
    let failures = |idx: &[usize]| {
        idx.iter()
            .filter(|&&i| matches!(r.cases[i].status, Status::Failed))
            .count()
    };
    let errors = |idx: &[usize]| {
        idx.iter()
            .filter(|&&i| {
                matches!(
                    r.cases[i].status,
                    Status::Errored | Status::Crashed | Status::TimedOut | Status::ProtocolError
                )
            })
            .count()
    };
    let skipped = |idx: &[usize]| {
        idx.iter()
            .filter(|&&i| matches!(r.cases[i].status, Status::Skipped | Status::ExpectedFailure))
            .count()
    };
    let time = |idx: &[usize]| idx.iter().map(|&i| r.cases[i].duration_us).sum::<u64>();
    let all: Vec<usize> = (0..r.cases.len()).collect();
    let name = r.header.adapter.as_ref().map_or_else(
        || "aep2-conformance".to_owned(),
        |a| format!("aep2-conformance {}", a.implementation.name),
    );
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
        esc(&name),
        all.len(),
        failures(&all),
        errors(&all),
        skipped(&all),
        secs(time(&all))
    );
    for (group, idx) in &groups {
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
            esc(group),
            idx.len(),
            failures(idx),
            errors(idx),
            skipped(idx),
            secs(time(idx))
        );
        for &i in idx {
            let c = &r.cases[i];
            let _ = write!(
                s,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
                esc(&c.id),
                esc(&c.kind),
                secs(c.duration_us)
            );
            let message = c.message.as_deref().unwrap_or("");
            let body = match c.status {
                Status::Passed | Status::Acceptable => None,
                Status::Failed => Some(format!("<failure message=\"{}\" type=\"failed\"/>", esc(message))),
                Status::Skipped => Some(format!("<skipped message=\"{}\"/>", esc(message))),
                Status::ExpectedFailure => Some(format!(
                    "<skipped message=\"expected failure: {}\"/>",
                    esc(c.expected_failure.as_deref().unwrap_or(message))
                )),
                other => Some(format!(
                    "<error message=\"{}\" type=\"{}\"/>",
                    esc(message),
                    other.as_str()
                )),
            };
            let stderr = c
                .stderr
                .as_deref()
                .map(|e| format!("<system-err>{}</system-err>", esc(e)));
            if body.is_none() && stderr.is_none() {
                s.push_str("/>\n");
            } else {
                let _ = writeln!(
                    s,
                    ">{}{}</testcase>",
                    body.unwrap_or_default(),
                    stderr.unwrap_or_default()
                );
            }
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}
