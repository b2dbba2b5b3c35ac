//! The vector-file model (spec `aep2.md#vectors`, schema
//! `spec/schemas/vectors/vector-file.schema.json`).

use serde::{Deserialize, Serialize};
use serde_json::Value as J;
use std::collections::BTreeMap;

/// The schema file every vector file names.
pub const VECTOR_SCHEMA: &str = "vector-file.schema.json";

/// One vector file: a topic with its groups of test cases (Wycheproof-style header).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VectorFile {
    /// Always [`VECTOR_SCHEMA`].
    pub schema: String,
    /// The topic; also the first segment of every test id and the file name.
    pub topic: String,
    /// The AEP2 spec version the expectations follow.
    pub spec_version: String,
    /// What generated the file.
    pub generator: Generator,
    /// Number of test cases in the file.
    pub number_of_tests: usize,
    /// Prose about the file.
    pub header: Vec<String>,
    /// Flag dictionary: every flag used by a test is described here.
    pub notes: BTreeMap<String, Note>,
    /// Ids that existed once and are never reused.
    pub retired: Vec<String>,
    /// The groups.
    pub test_groups: Vec<TestGroup>,
}

/// Generator identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Generator {
    /// Program name.
    pub name: String,
    /// Program version.
    pub version: String,
}

/// A flag's description (Wycheproof `notes`, plus spec references).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Note {
    /// Wycheproof bug type (`BASIC`, `SIGNATURE_MALLEABILITY`, `EDGE_CASE`, …).
    pub bug_type: String,
    /// What the flag means.
    pub description: String,
    /// Spec sections that rule on it.
    pub spec_refs: Vec<String>,
}

/// What a group's cases exercise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Verify a mandate header under a domain at a time.
    VerifyMandate,
    /// Verify a receipt, optionally against its mandate and an expected SP.
    VerifyReceipt,
    /// Sign a mandate with a key; the expected signature and header are given.
    SignMandate,
    /// Verify a raw Ed25519 (key, message, signature) triple under the AEP2 rules.
    Ed25519Raw,
    /// Verify a mandate header and apply the group's payee policy (stateless checks only).
    VerifyPolicy,
    /// Parse an Order Mode quote and accept a mandate header against it (stateless checks only).
    VerifyOrder,
    /// Extract the mandate from an HTTP request's payment headers (x402 binding) and verify it
    /// under the group's profile, domain and time.
    ExtractX402,
    /// Compute the canonical HTTP request descriptor and its request hash.
    HttpRequestHash,
    /// Extract the mandate from an A2A message (v1.0 or v0.3) and verify it: core verification,
    /// or Intent Mode under a payee policy bound to the message, or Order Mode against a quote.
    ExtractA2a,
    /// Compute the canonical A2A request descriptor and its request hash.
    A2aRequestHash,
    /// Read an MCP `tools/call` message, extract the mandate from `params._meta` (MCP binding)
    /// and verify it under the group's profile, domain and time; optionally with request binding
    /// to the call or against an Order Mode quote.
    ExtractMcp,
    /// Compute the canonical MCP tool-call descriptor and its request hash.
    McpRequestHash,
}

impl Kind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::VerifyMandate => "verify_mandate",
            Kind::VerifyReceipt => "verify_receipt",
            Kind::SignMandate => "sign_mandate",
            Kind::Ed25519Raw => "ed25519_raw",
            Kind::VerifyPolicy => "verify_policy",
            Kind::VerifyOrder => "verify_order",
            Kind::ExtractX402 => "extract_x402",
            Kind::HttpRequestHash => "http_request_hash",
            Kind::ExtractA2a => "extract_a2a",
            Kind::A2aRequestHash => "a2a_request_hash",
            Kind::ExtractMcp => "extract_mcp",
            Kind::McpRequestHash => "mcp_request_hash",
        }
    }
}

/// Shared parameters of a group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Context {
    /// Profile the verifier expects (`eip712`, `ed25519`, `solana-mvp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The verifier's domain (native-envelope `domain` shape); absent for solana-mvp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<J>,
    /// Verification time in unix seconds; absent means the deadline is not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<u64>,
    /// The settlement processor a receipt must come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sp: Option<String>,
    /// Envelope form produced by `sign_mandate` cases (`mvp` or `native`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<String>,
    /// The payee policy `verify_policy` cases are judged under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyContext>,
    /// `verify_order`: the payee's tolerated clock skew, seconds (applied to the mandate's
    /// deadline and the quote's expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew: Option<u64>,
    /// `verify_order`: the payee's maximum horizon for mandate deadlines, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_horizon: Option<u64>,
}

/// A payee policy as a vector group states it (spec `aep2.md#policy`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyContext {
    /// The payee's account: an EVM address or a base58 key.
    pub payee: String,
    /// The asset the price is in: an EVM address or a base58 key.
    pub asset: String,
    /// The price as a canonical decimal string, in the asset's smallest unit.
    pub price: String,
    /// `exact` or `at-least`.
    pub price_mode: String,
    /// Tolerated clock skew, seconds.
    pub clock_skew: u64,
    /// Settlement window the deadline must leave, seconds.
    pub settlement_window: u64,
    /// Furthest accepted deadline relative to `now`, seconds.
    pub max_horizon: u64,
    /// When present, `ref` must equal this hash (`0x` + 64 lowercase hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<String>,
}

/// Where an imported case comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    /// Upstream suite or library.
    pub name: String,
    /// Upstream case id.
    pub upstream_id: String,
    /// What upstream expects, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_result: Option<String>,
}

/// Expected verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expected {
    /// `valid` or `invalid` (strict profile).
    pub result: String,
    /// Reason code when invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Stage of the reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `sign_mandate`: the expected signature text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// `sign_mandate`: the expected header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
}

/// One test case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestCase {
    /// Number unique within the file.
    pub tc_id: u32,
    /// Stable id `<topic>/<group>/<nnnn>`.
    pub id: String,
    /// What the case is about.
    pub comment: String,
    /// Flags, each described in the file's `notes`.
    pub flags: Vec<String>,
    /// Spec sections (`aep2.md#anchor`) and external references (`rfc8032#…`, `eip-712`).
    pub spec_refs: Vec<String>,
    /// Provenance of imported cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Kind-specific inputs (never the answer).
    pub input: J,
    /// The strict-profile expectation.
    pub expected: Expected,
    /// The compat-profile expectation when it differs (`acceptable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compat_result: Option<String>,
    /// Intermediate values for debugging: signing bytes, domain separator, struct hash,
    /// digest, mandate id, recovered signer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediates: Option<BTreeMap<String, String>>,
}

/// A group of cases sharing a kind and a context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestGroup {
    /// Group name; the middle segment of test ids.
    pub group: String,
    /// What the cases exercise.
    pub kind: Kind,
    /// Shared parameters.
    pub context: Context,
    /// The cases.
    pub tests: Vec<TestCase>,
}

impl VectorFile {
    /// All cases with their group.
    pub fn cases(&self) -> impl Iterator<Item = (&TestGroup, &TestCase)> {
        self.test_groups
            .iter()
            .flat_map(|g| g.tests.iter().map(move |t| (g, t)))
    }

    /// Renders the file as the canonical text written to disk (2-space JSON, trailing newline).
    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
