//! The deterministic vector generator (`aep2 vectors generate`).
//!
//! Every key comes from a fixed label through a hash, every signature is deterministic
//! (RFC 6979 / RFC 8032), and files are written with stable member order, so regenerating
//! produces byte-identical files. Expectations are written down here by hand, case by case,
//! from the spec's rules; the reference implementation only fills in intermediate values.
//! A disagreement between the two is caught by the vector tests, never papered over.

mod a2a;
mod ed25519;
mod edkit;
mod eip712;
mod envelope;
mod interop;
mod lanes;
mod mcp;
mod order;
mod policy;
mod receipts;
mod signing;
mod x402;

use crate::model::{Context, Expected, Generator, Kind, Note, Source, TestCase, TestGroup, VECTOR_SCHEMA, VectorFile};
use aep2::crypto::secp256k1::SecretKey;
use aep2::hash::{keccak256, sha256};
use aep2::json::{Object, Value, to_compact};
use aep2::{Reason, codec::base64_encode};
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::path::Path;

/// Generator name and version recorded in every file.
pub const GENERATOR_NAME: &str = "aep2-vectors";

/// Builds one vector file.
pub(crate) struct FileBuilder {
    file: VectorFile,
    next_tc: u32,
}

/// The expectation of a case in the strict profile.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Exp {
    Valid,
    Invalid(Reason),
}

/// One case before ids are assigned.
pub(crate) struct Case {
    pub comment: String,
    pub flags: Vec<&'static str>,
    pub spec_refs: Vec<&'static str>,
    pub input: J,
    pub expected: Exp,
    pub compat_acceptable: bool,
    pub source: Option<Source>,
    pub signature: Option<String>,
    pub header: Option<String>,
}

impl Case {
    pub fn new(comment: impl Into<String>, input: J, expected: Exp) -> Case {
        Case {
            comment: comment.into(),
            flags: Vec::new(),
            spec_refs: Vec::new(),
            input,
            expected,
            compat_acceptable: false,
            source: None,
            signature: None,
            header: None,
        }
    }

    pub fn flags(mut self, flags: &[&'static str]) -> Case {
        self.flags.extend_from_slice(flags);
        self
    }

    pub fn refs(mut self, refs: &[&'static str]) -> Case {
        self.spec_refs.extend_from_slice(refs);
        self
    }

    pub fn compat_acceptable(mut self) -> Case {
        self.compat_acceptable = true;
        self
    }

    pub fn source(mut self, name: &str, upstream_id: impl Into<String>, upstream_result: Option<&str>) -> Case {
        self.source = Some(Source {
            name: name.into(),
            upstream_id: upstream_id.into(),
            upstream_result: upstream_result.map(Into::into),
        });
        self
    }
}

impl FileBuilder {
    pub fn new(topic: &str, header: &[&str]) -> FileBuilder {
        FileBuilder {
            file: VectorFile {
                schema: VECTOR_SCHEMA.into(),
                topic: topic.into(),
                spec_version: "1".into(),
                generator: Generator {
                    name: GENERATOR_NAME.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
                number_of_tests: 0,
                header: header.iter().map(|s| (*s).to_owned()).collect(),
                notes: BTreeMap::new(),
                retired: Vec::new(),
                test_groups: Vec::new(),
            },
            next_tc: 1,
        }
    }

    pub fn note(&mut self, flag: &str, bug_type: &str, description: &str, spec_refs: &[&str]) {
        self.file.notes.insert(
            flag.into(),
            Note {
                bug_type: bug_type.into(),
                description: description.into(),
                spec_refs: spec_refs.iter().map(|s| (*s).to_owned()).collect(),
            },
        );
    }

    /// Adds a group and returns its index.
    pub fn group(&mut self, name: &str, kind: Kind, context: Context) -> usize {
        self.file.test_groups.push(TestGroup {
            group: name.into(),
            kind,
            context,
            tests: Vec::new(),
        });
        self.file.test_groups.len() - 1
    }

    pub fn case(&mut self, group: usize, c: Case) {
        let g = &mut self.file.test_groups[group];
        let n = g.tests.len() + 1;
        let id = format!("{}/{}/{n:04}", self.file.topic, g.group);
        let expected = match c.expected {
            Exp::Valid => Expected {
                result: "valid".into(),
                reason: None,
                stage: None,
                signature: c.signature,
                header: c.header,
            },
            Exp::Invalid(r) => Expected {
                result: "invalid".into(),
                reason: Some(r.code().into()),
                stage: Some(r.stage().as_str().into()),
                signature: c.signature,
                header: c.header,
            },
        };
        let mut spec_refs: Vec<String> = c.spec_refs.iter().map(|s| (*s).to_owned()).collect();
        if let Exp::Invalid(r) = c.expected {
            let anchor = format!("aep2.md#{}", r.spec_anchor());
            if !spec_refs.contains(&anchor) {
                spec_refs.push(anchor);
            }
        }
        g.tests.push(TestCase {
            tc_id: self.next_tc,
            id,
            comment: c.comment,
            flags: c.flags.iter().map(|s| (*s).to_owned()).collect(),
            spec_refs,
            source: c.source,
            input: c.input,
            expected,
            compat_result: c.compat_acceptable.then(|| "acceptable".to_owned()),
            intermediates: None,
        });
        self.next_tc += 1;
    }

    /// Fills intermediates from the reference implementation and returns the file.
    pub fn finish(mut self) -> VectorFile {
        for g in &mut self.file.test_groups {
            let snapshot = TestGroup {
                tests: Vec::new(),
                ..g.clone()
            };
            for t in &mut g.tests {
                if matches!(
                    g.kind,
                    Kind::VerifyMandate
                        | Kind::VerifyReceipt
                        | Kind::VerifyPolicy
                        | Kind::VerifyOrder
                        | Kind::ExtractX402
                        | Kind::HttpRequestHash
                ) && let Ok(a) = crate::check::answer(&snapshot, t)
                    && !a.intermediates.is_empty()
                {
                    t.intermediates = Some(a.intermediates);
                }
            }
        }
        self.file.number_of_tests = self.file.test_groups.iter().map(|g| g.tests.len()).sum();
        self.file
    }
}

/// The secret scalar of the secp256k1 test key labelled `label`.
pub(crate) fn secp_secret(label: &str) -> [u8; 32] {
    let mut h = keccak256(format!("aep2-vectors/secp256k1/{label}").as_bytes());
    while SecretKey::from_bytes(&h).is_none() {
        h = keccak256(&h);
    }
    h
}

/// A secp256k1 key derived from a public label (test keys only).
pub(crate) fn secp_key(label: &str) -> SecretKey {
    let secret = secp_secret(label);
    match SecretKey::from_bytes(&secret) {
        Some(k) => k,
        // secp_secret only returns accepted scalars.
        None => unreachable!("secp_secret returned an invalid scalar"),
    }
}

/// An Ed25519 seed derived from a public label (test keys only).
pub(crate) fn ed_seed(label: &str) -> [u8; 32] {
    sha256(format!("aep2-vectors/ed25519/{label}").as_bytes())
}

/// base64 of the compact JSON of `v`.
pub(crate) fn header_of(v: &Value) -> String {
    base64_encode(to_compact(v).as_bytes())
}

/// base64 of raw text.
pub(crate) fn header_of_text(text: &str) -> String {
    base64_encode(text.as_bytes())
}

/// Returns a copy of an envelope with `mandate.<field>` replaced (or removed when `None`).
pub(crate) fn with_mandate_field(env: &Value, field: &str, value: Option<Value>) -> Value {
    let Value::Object(top) = env else { return env.clone() };
    let mut top = top.clone();
    if let Some(Value::Object(m)) = top.get("mandate") {
        let mut m = m.clone();
        match value {
            Some(v) => m.insert(field, v),
            None => {
                m.remove(field);
            }
        }
        top.insert("mandate", Value::Object(m));
    }
    Value::Object(top)
}

/// Returns a copy of an object with member `field` replaced (or removed when `None`).
pub(crate) fn with_field(v: &Value, field: &str, value: Option<Value>) -> Value {
    let Value::Object(o) = v else { return v.clone() };
    let mut o: Object = o.clone();
    match value {
        Some(x) => o.insert(field, x),
        None => {
            o.remove(field);
        }
    }
    Value::Object(o)
}

/// `{"header": h}`.
pub(crate) fn header_input(h: &str) -> J {
    serde_json::json!({ "header": h })
}

/// Every vector file, in a fixed order.
pub fn generate_all(repo_root: &Path) -> Result<Vec<VectorFile>, String> {
    Ok(vec![
        eip712::generate(),
        envelope::generate(),
        ed25519::generate(repo_root)?,
        receipts::generate(),
        signing::generate(),
        interop::generate(repo_root)?,
        policy::generate(),
        order::generate(),
        x402::generate(),
        a2a::generate(),
        mcp::generate(),
        lanes::generate(),
    ])
}

/// Writes every vector file into `dir` (`<topic>.json`) and the id registry ([`ID_REGISTRY`]).
/// Returns the paths written. Fails, writing nothing, if an issued id would change meaning.
pub fn write_all(repo_root: &Path, dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let files = generate_all(repo_root)?;
    let registry_path = dir.join(ID_REGISTRY);
    let registry = registry_text(&files, &std::fs::read_to_string(&registry_path).unwrap_or_default())?;
    let mut written = Vec::new();
    for f in &files {
        let path = dir.join(format!("{}.json", f.topic));
        std::fs::write(&path, f.to_text()).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    std::fs::write(&registry_path, registry).map_err(|e| format!("{}: {e}", registry_path.display()))?;
    written.push(registry_path);
    Ok(written)
}

/// Compares freshly generated files (and the id registry) with the ones in `dir`; returns the
/// names that differ.
pub fn diff_against(repo_root: &Path, dir: &Path) -> Result<Vec<String>, String> {
    let files = generate_all(repo_root)?;
    let mut differing = Vec::new();
    for f in &files {
        let path = dir.join(format!("{}.json", f.topic));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != f.to_text() {
            differing.push(path.display().to_string());
        }
    }
    let registry_path = dir.join(ID_REGISTRY);
    let on_disk = std::fs::read_to_string(&registry_path).unwrap_or_default();
    if registry_text(&files, &on_disk)? != on_disk {
        differing.push(registry_path.display().to_string());
    }
    Ok(differing)
}

/// The id registry in `vectors/`: every test id ever issued, with the comment it was issued for.
pub const ID_REGISTRY: &str = "ids.tsv";

const REGISTRY_HEADER: &str = "\
# Every vector id ever issued, with the comment it was issued for (aep2.md#vectors: ids are never
# renumbered or reused). `aep2 vectors generate` appends new ids and refuses to change the meaning
# of an issued one. To retire an id, prefix its comment with `retired: `; to reword a comment
# without changing what the case tests, edit it here and in the generator together.
";

/// The registry after this generation: `existing` (kept line for line) plus the new ids, in
/// file order. Errors name every issued id whose case changed, vanished or came back retired,
/// which is what inserting a case into the middle of a group would do.
pub fn registry_text(files: &[VectorFile], existing: &str) -> Result<String, String> {
    let one_line = |c: &str| c.replace(['\t', '\n', '\r'], " ");
    let current: Vec<(String, String)> = files
        .iter()
        .flat_map(|f| f.cases().map(|(_, t)| (t.id.clone(), one_line(&t.comment))))
        .collect();
    let now: BTreeMap<&str, &str> = current.iter().map(|(i, c)| (i.as_str(), c.as_str())).collect();
    let mut out = String::from(REGISTRY_HEADER);
    let mut issued = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    for line in existing.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let Some((id, comment)) = line.split_once('\t') else {
            problems.push(format!("malformed registry line {line:?}"));
            continue;
        };
        issued.insert(id.to_owned());
        match (comment.strip_prefix("retired: "), now.get(id)) {
            (Some(_), Some(_)) => problems.push(format!("{id} is retired and may not be reused")),
            (Some(_), None) => {}
            (None, Some(c)) if c == &comment => {}
            (None, Some(c)) => problems.push(format!(
                "{id} was issued for {comment:?} and now names {c:?}: append new cases at the end of their group"
            )),
            (None, None) => problems.push(format!(
                "{id} ({comment:?}) is gone: mark it `retired: ` in vectors/{ID_REGISTRY}"
            )),
        }
        out.push_str(line);
        out.push('\n');
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    for (id, comment) in &current {
        if !issued.contains(id) {
            out.push_str(&format!("{id}\t{comment}\n"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod registry_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(comments: &[&str]) -> VectorFile {
        let mut f = FileBuilder::new("t", &["test"]);
        let g = f.group("g", Kind::VerifyMandate, Context::default());
        for comment in comments {
            f.case(g, Case::new(*comment, serde_json::json!({}), Exp::Valid));
        }
        f.file
    }

    #[test]
    fn issued_ids_keep_their_meaning() {
        let first = registry_text(&[file(&["a", "b"])], "").unwrap();
        assert!(first.ends_with("t/g/0001\ta\nt/g/0002\tb\n"), "{first}");
        // Appending keeps the issued lines and adds the new id.
        let grown = registry_text(&[file(&["a", "b", "c"])], &first).unwrap();
        assert_eq!(grown, format!("{first}t/g/0003\tc\n"));
        // Inserting in the middle renumbers: refused.
        let err = registry_text(&[file(&["a", "new", "b"])], &first).unwrap_err();
        assert!(err.contains("t/g/0002 was issued for \"b\""), "{err}");
        // Dropping a case needs a retirement, and a retired id stays retired.
        assert!(registry_text(&[file(&["a"])], &first).unwrap_err().contains("is gone"));
        let retired = first.replace("0002\tb", "0002\tretired: b");
        assert!(registry_text(&[file(&["a"])], &retired).is_ok());
        assert!(
            registry_text(&[file(&["a", "b"])], &retired)
                .unwrap_err()
                .contains("retired")
        );
    }
}
