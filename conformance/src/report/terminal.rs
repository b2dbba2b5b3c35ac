//! The terminal summary: what a person reads after a run.

use super::{Report, Status, counts_line, verdict_line};
use std::fmt::Write;

/// Cases listed individually at most; the JSON Lines report always has them all.
const MAX_LISTED: usize = 200;

pub(super) fn render(r: &Report) -> String {
    let mut s = String::new();
    let h = &r.header;
    let who = h.adapter.as_ref().map_or_else(
        || "no adapter".to_owned(),
        |a| {
            format!(
                "{} {} ({})",
                a.implementation.name, a.implementation.version, a.implementation.language
            )
        },
    );
    let _ = writeln!(s, "AEP2 conformance {} — {who}", h.suite_version);
    let _ = writeln!(
        s,
        "mode {}, vectors {} ({} cases, sha256 {})",
        h.mode, h.vectors.dir, h.vectors.cases, h.vectors.sha256
    );
    if let Some(a) = &h.adapter
        && !a.capabilities.reason_codes
    {
        let _ = writeln!(s, "the adapter reports no reason codes: judged on verdicts only");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "By spec section:");
    for (section, c) in r.by_section() {
        let mark = if c.passed + c.acceptable + c.skipped + c.expected_failure == c.total() {
            " "
        } else {
            "✗"
        };
        let _ = writeln!(s, "  {mark} {section:<40} {}", counts_line(&c));
    }
    let troubled: Vec<_> = r.by_tag().into_iter().filter(|(_, c)| c.passed != c.total()).collect();
    if !troubled.is_empty() {
        let _ = writeln!(s, "\nTags with cases not passed:");
        for (tag, c) in troubled {
            let _ = writeln!(s, "    {tag:<40} {}", counts_line(&c));
        }
    }
    let listed: Vec<_> = r.cases.iter().filter(|c| c.status != Status::Passed).collect();
    if !listed.is_empty() {
        let _ = writeln!(s, "\nCases not passed:");
        for c in listed.iter().take(MAX_LISTED) {
            let _ = writeln!(
                s,
                "  {:<16} {} [{}]{}",
                c.status.as_str(),
                c.id,
                c.kind,
                c.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
            );
        }
        if listed.len() > MAX_LISTED {
            let _ = writeln!(
                s,
                "  … and {} more (see the JSON Lines report)",
                listed.len() - MAX_LISTED
            );
        }
    }
    let f = &r.footer;
    if !f.warnings.is_empty() {
        let _ = writeln!(s, "\nWarnings:");
        for w in &f.warnings {
            let _ = writeln!(s, "  {w}");
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "{}", counts_line(&f.counts));
    if let Some(why) = &f.stopped_early {
        let _ = writeln!(s, "stopped early: {why}");
    }
    if f.restarts > 0 {
        let _ = writeln!(s, "adapter restarts: {}", f.restarts);
    }
    let _ = writeln!(
        s,
        "{} (exit {}), {:.2} s",
        verdict_line(f.exit_code),
        f.exit_code,
        f.duration_us as f64 / 1e6
    );
    s
}
