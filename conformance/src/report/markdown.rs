//! The Markdown report: a table per breakdown, for READMEs and pull requests.

use super::{Breakdown, Report, Status, verdict_line};
use std::fmt::Write;

/// Keeps table cells on one line and free of Markdown syntax.
fn cell(text: &str) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    one_line
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('`', "\\`")
}

fn table(s: &mut String, title: &str, first: &str, b: &Breakdown) {
    let _ = writeln!(s, "\n## {title}\n");
    let _ = write!(s, "| {first} |");
    for st in Status::ALL {
        let _ = write!(s, " {} |", st.as_str());
    }
    let _ = write!(s, "\n|---|");
    for _ in Status::ALL {
        let _ = write!(s, "---:|");
    }
    let _ = writeln!(s);
    for (k, c) in b {
        let _ = write!(s, "| {} |", cell(k));
        for st in Status::ALL {
            let _ = write!(s, " {} |", c.get(st));
        }
        let _ = writeln!(s);
    }
}

pub(super) fn render(r: &Report) -> String {
    let mut s = String::new();
    let h = &r.header;
    let f = &r.footer;
    let _ = writeln!(s, "# AEP2 conformance report\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    if let Some(a) = &h.adapter {
        let i = &a.implementation;
        let _ = writeln!(
            s,
            "| implementation | {} {} ({}) |",
            cell(&i.name),
            cell(&i.version),
            cell(&i.language)
        );
        let _ = writeln!(s, "| profiles | {} |", cell(&a.capabilities.profiles.join(", ")));
        let _ = writeln!(s, "| reason codes | {} |", a.capabilities.reason_codes);
    }
    let _ = writeln!(s, "| runner | {} {} |", cell(&h.suite), cell(&h.suite_version));
    let _ = writeln!(s, "| mode | {} |", cell(&h.mode));
    let _ = writeln!(
        s,
        "| vectors | {} cases, sha256 `{}` |",
        h.vectors.cases,
        cell(&h.vectors.sha256)
    );
    let _ = writeln!(s, "| result | {} (exit {}) |", verdict_line(f.exit_code), f.exit_code);
    if let Some(why) = &f.stopped_early {
        let _ = writeln!(s, "| stopped early | {} |", cell(why));
    }
    let _ = writeln!(s, "\n## Totals\n");
    let _ = writeln!(s, "| status | cases |\n|---|---:|");
    for st in Status::ALL {
        let _ = writeln!(s, "| {} | {} |", st.as_str(), f.counts.get(st));
    }
    table(&mut s, "By spec section", "section", &r.by_section());
    table(&mut s, "By tag", "tag", &r.by_tag());
    let listed: Vec<_> = r.cases.iter().filter(|c| c.status != Status::Passed).collect();
    if !listed.is_empty() {
        let _ = writeln!(s, "\n## Cases not passed\n");
        let _ = writeln!(s, "| id | kind | status | message |\n|---|---|---|---|");
        for c in listed {
            let mut message = c.message.clone().unwrap_or_default();
            if let Some(reason) = &c.expected_failure {
                message = format!("{message} (expected failure: {reason})");
            }
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} |",
                cell(&c.id),
                cell(&c.kind),
                c.status.as_str(),
                cell(&message)
            );
        }
    }
    if !f.warnings.is_empty() {
        let _ = writeln!(s, "\n## Warnings\n");
        for w in &f.warnings {
            let _ = writeln!(s, "- {}", cell(w));
        }
    }
    s
}
