//! Expected-failures lists (spec `conformance.md#expected-failures`): per adapter, the cases it
//! is known to fail, each with the reason, checked into `conformance/expected-failures/`.

use crate::suite::Suite;
use crate::{Error, exit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Largest list file read, in bytes.
pub const MAX_BYTES: u64 = 4 << 20;

/// One listed case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// The vector id.
    pub id: String,
    /// Why the implementation fails it (a divergence, a bug link).
    pub reason: String,
}

/// An expected-failures file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpectedFailures {
    /// The adapter the list belongs to.
    pub adapter: String,
    /// Prose about the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The listed cases.
    pub expected_failures: Vec<Entry>,
}

impl ExpectedFailures {
    /// Reads a list and checks it against the suite: every id must exist, once, with a reason.
    /// Any problem is a configuration error (exit 2), so a stale list cannot hide a failure.
    pub fn load(path: &Path, suite: &Suite) -> Result<ExpectedFailures, Error> {
        let bad = |m: String| Error::new(exit::USAGE, format!("expected failures {}: {m}", path.display()));
        let size = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?.len();
        if size > MAX_BYTES {
            return Err(bad(format!("larger than {MAX_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let list: ExpectedFailures = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let mut seen = BTreeMap::new();
        let mut unknown = Vec::new();
        for e in &list.expected_failures {
            if e.reason.trim().is_empty() {
                return Err(bad(format!("{} has no reason", e.id)));
            }
            if seen.insert(e.id.as_str(), ()).is_some() {
                return Err(bad(format!("{} is listed twice", e.id)));
            }
            if !suite.contains(&e.id) {
                unknown.push(e.id.as_str());
            }
        }
        if !unknown.is_empty() {
            return Err(bad(format!("ids not in the vectors: {}", unknown.join(", "))));
        }
        Ok(list)
    }

    /// The reason a case is listed for, if it is.
    pub fn reason(&self, id: &str) -> Option<&str> {
        self.expected_failures
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.reason.as_str())
    }
}
