//! Case selection (spec `conformance.md#selection`).

use aep2_vectors::model::{TestCase, TestGroup};
use serde::Serialize;

/// Which cases a run includes. Within one criterion the values are alternatives; the criteria
/// combine (a case must satisfy every criterion given).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    /// Id prefixes (`ed25519/`, `eip712/signature/0003`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// Vector flags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Signature profiles of the group context; kinds without one (raw Ed25519, request hashes)
    /// never match a profile filter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Case kinds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
}

impl Selection {
    /// Whether the case is selected.
    pub fn matches(&self, group: &TestGroup, case: &TestCase) -> bool {
        let any = |v: &[String], f: &dyn Fn(&str) -> bool| v.is_empty() || v.iter().any(|x| f(x));
        any(&self.ids, &|p| case.id.starts_with(p))
            && any(&self.tags, &|t| case.flags.iter().any(|f| f == t))
            && any(&self.profiles, &|p| group.context.profile.as_deref() == Some(p))
            && any(&self.kinds, &|k| group.kind.as_str() == k)
    }
}
