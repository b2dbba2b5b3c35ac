//! The reason-code table in `spec/aep2.md` and the `Reason` enum are one registry: this test
//! fails if either gains, loses or changes a code, stage or section.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2::Reason;

#[test]
fn spec_table_matches_the_enum() {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/aep2.md")).unwrap();
    let header = "| code | stage | section | meaning |";
    let start = spec
        .find(header)
        .expect("reason-code table header not found in spec/aep2.md");
    let rows: Vec<(String, String, String)> = spec[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let code = cells[1].trim_matches('`').to_owned();
            let anchor = cells[3]
                .split("](#")
                .nth(1)
                .map(|s| s.trim_end_matches(')').to_owned())
                .unwrap_or_default();
            (code, cells[2].to_owned(), anchor)
        })
        .collect();
    let expected: Vec<(String, String, String)> = Reason::ALL
        .iter()
        .map(|r| {
            (
                r.code().to_owned(),
                r.stage().as_str().to_owned(),
                r.spec_anchor().to_owned(),
            )
        })
        .collect();
    assert_eq!(rows, expected);
    for (_, _, anchor) in &rows {
        assert!(
            spec.contains(&format!("<a id=\"{anchor}\"></a>")),
            "anchor {anchor} missing"
        );
    }
}
