//! Consumes the vector files in `vectors/` exactly as shipped: one trial per vector id
//! (`cargo test -p aep2-vectors --test vectors -- eip712/signature/` filters by id prefix),
//! plus file-level trials: schema validity, regeneration without diff, spec references that
//! resolve, flags that are documented, unique ids and correct counts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use aep2_vectors::check::{answer, judge};
use aep2_vectors::generate::diff_against;
use aep2_vectors::model::VectorFile;
use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vector_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("vectors"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "json"));
    files.sort();
    files
}

fn spec_anchors() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("spec/aep2.md")).unwrap_or_default();
    text.split("<a id=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect()
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    let files = vector_files();
    trials.push(Trial::test("files/present", {
        let n = files.len();
        move || {
            if n >= 5 {
                Ok(())
            } else {
                Err(format!("expected the vector files in vectors/, found {n}").into())
            }
        }
    }));
    trials.push(Trial::test("files/regenerate-without-diff", || {
        let differing = diff_against(&root(), &root().join("vectors")).map_err(Failed::from)?;
        if differing.is_empty() {
            Ok(())
        } else {
            Err(format!("regenerating changes {differing:?}; run `aep2 vectors generate` and commit").into())
        }
    }));
    let schema_text =
        std::fs::read_to_string(root().join("spec/schemas/vectors/vector-file.schema.json")).unwrap_or_default();
    let anchors = spec_anchors();
    let mut seen_ids = BTreeSet::new();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let raw: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                trials.push(Trial::test(format!("files/{name}/parses"), move || {
                    Err(e.to_string().into())
                }));
                continue;
            }
        };
        {
            let (schema_text, raw) = (schema_text.clone(), raw.clone());
            trials.push(Trial::test(format!("files/{name}/schema"), move || {
                let schema: serde_json::Value = serde_json::from_str(&schema_text).map_err(|e| e.to_string())?;
                let validator = jsonschema::draft202012::new(&schema).map_err(|e| e.to_string())?;
                let errors: Vec<String> = validator
                    .iter_errors(&raw)
                    .take(5)
                    .map(|e| format!("{} at {}", e, e.instance_path()))
                    .collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(errors.join("; ").into())
                }
            }));
        }
        let file: VectorFile = match serde_json::from_value(raw) {
            Ok(f) => f,
            Err(e) => {
                trials.push(Trial::test(format!("files/{name}/model"), move || {
                    Err(e.to_string().into())
                }));
                continue;
            }
        };
        {
            let (file, anchors) = (file.clone(), anchors.clone());
            trials.push(Trial::test(format!("files/{name}/references-and-flags"), move || {
                let mut problems = Vec::new();
                let count: usize = file.test_groups.iter().map(|g| g.tests.len()).sum();
                if count != file.number_of_tests {
                    problems.push(format!("numberOfTests {} but {count} tests", file.number_of_tests));
                }
                let refs = file
                    .cases()
                    .flat_map(|(_, t)| t.spec_refs.iter())
                    .chain(file.notes.values().flat_map(|n| n.spec_refs.iter()));
                for r in refs {
                    if let Some(anchor) = r.strip_prefix("aep2.md#")
                        && !anchors.contains(anchor)
                    {
                        problems.push(format!("spec reference {r} has no anchor in spec/aep2.md"));
                    }
                }
                for (_, t) in file.cases() {
                    if !t.spec_refs.iter().any(|r| r.starts_with("aep2.md#")) {
                        problems.push(format!("{} cites no section of spec/aep2.md", t.id));
                    }
                    for flag in &t.flags {
                        if !file.notes.contains_key(flag) {
                            problems.push(format!("{}: flag {flag} is not described in notes", t.id));
                        }
                    }
                    if !t.id.starts_with(&format!("{}/", file.topic)) {
                        problems.push(format!("{} is not under topic {}", t.id, file.topic));
                    }
                }
                problems.dedup();
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(problems.join("\n").into())
                }
            }));
        }
        {
            let file = file.clone();
            trials.push(Trial::test(format!("files/{name}/wire-schemas"), move || {
                wire_schemas(&file)
            }));
        }
        for group in &file.test_groups {
            for case in &group.tests {
                let duplicate = !seen_ids.insert(case.id.clone());
                let (group, case) = (group.clone(), case.clone());
                trials.push(Trial::test(case.id.clone(), move || {
                    if duplicate {
                        return Err(format!("duplicate id {}", case.id).into());
                    }
                    let a = answer(&group, &case).map_err(Failed::from)?;
                    judge(&case, &a).map_err(Failed::from)
                }));
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

/// Every wire object of a valid case (decoded header, receipt, Order Mode quote, x402 payload and
/// its `accepted` entry) validates against its schema in
/// `spec/schemas/`, so the schemas and the implementation agree on what is well-formed.
fn wire_schemas(file: &VectorFile) -> Result<(), Failed> {
    use aep2_vectors::model::Kind;
    let load = |name: &str| -> Result<jsonschema::Validator, Failed> {
        let text =
            std::fs::read_to_string(root().join("spec/schemas").join(name)).map_err(|e| format!("{name}: {e}"))?;
        let schema: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
        jsonschema::draft202012::new(&schema).map_err(|e| format!("{name}: {e}").into())
    };
    let mut problems = Vec::new();
    let mut checked = 0usize;
    for (group, case) in file.cases() {
        if case.expected.result != "valid" {
            continue;
        }
        let mut instances: Vec<(serde_json::Value, &str)> = Vec::new();
        match group.kind {
            Kind::VerifyMandate | Kind::SignMandate | Kind::VerifyPolicy | Kind::VerifyOrder => {
                if group.kind == Kind::VerifyOrder
                    && let Some(quote) = case.input.get("quote")
                {
                    instances.push((quote.clone(), "payment-request.schema.json"));
                }
                let header = case
                    .expected
                    .header
                    .as_deref()
                    .or_else(|| case.input.get("header").and_then(|h| h.as_str()));
                if let Some(header) = header
                    && let Ok(value) = aep2::envelope::decode_header(header)
                {
                    let json: serde_json::Value =
                        serde_json::from_str(&aep2::json::to_compact(&value)).map_err(|e| e.to_string())?;
                    let schema = match (json.get("aep2").is_some(), group.context.profile.as_deref()) {
                        (true, _) => Some("native-envelope.schema.json"),
                        (false, Some("eip712")) => Some("mvp-envelope-eip712.schema.json"),
                        (false, Some("solana-mvp")) => Some("mvp-envelope-solana.schema.json"),
                        _ => None,
                    };
                    if let Some(schema) = schema {
                        instances.push((json, schema));
                    }
                }
            }
            Kind::VerifyReceipt => {
                let Some(r) = case.input.get("receipt") else { continue };
                let schema = if r.get("aep2").is_some() {
                    "receipt-native.schema.json"
                } else if r
                    .get("sp")
                    .and_then(|s| s.as_str())
                    .is_some_and(|s| s.starts_with("0x"))
                {
                    "receipt-mvp-evm.schema.json"
                } else {
                    "receipt-mvp-solana.schema.json"
                };
                instances.push((r.clone(), schema));
            }
            Kind::ExtractX402 => {
                let envelope_schema =
                    |env: &serde_json::Value| match (env.get("aep2").is_some(), group.context.profile.as_deref()) {
                        (true, _) => Some("native-envelope.schema.json"),
                        (false, Some("eip712")) => Some("mvp-envelope-eip712.schema.json"),
                        (false, Some("solana-mvp")) => Some("mvp-envelope-solana.schema.json"),
                        _ => None,
                    };
                for (name, value) in case
                    .input
                    .get("headers")
                    .and_then(|h| h.as_object())
                    .into_iter()
                    .flatten()
                {
                    let carrier = match name.to_ascii_lowercase().as_str() {
                        "payment-signature" => Some("x402-payment-payload-v2.schema.json"),
                        "x-payment" => Some("x402-payment-payload-v1.schema.json"),
                        "x-payment-mandate" => None,
                        _ => continue,
                    };
                    let Some(Ok(decoded)) = value.as_str().map(aep2::envelope::decode_header) else {
                        continue;
                    };
                    let json: serde_json::Value =
                        serde_json::from_str(&aep2::json::to_compact(&decoded)).map_err(|e| e.to_string())?;
                    let envelope = match carrier {
                        Some(schema) => {
                            let env = json.get("payload").cloned().unwrap_or_default();
                            if let Some(accepted) = json.get("accepted") {
                                instances.push((accepted.clone(), "x402-payment-requirements.schema.json"));
                            }
                            instances.push((json, schema));
                            env
                        }
                        None => json,
                    };
                    if let Some(schema) = envelope_schema(&envelope) {
                        instances.push((envelope, schema));
                    }
                }
            }
            Kind::ExtractA2a | Kind::A2aRequestHash => {
                let Some(text) = case.input.get("a2aMessage").and_then(|m| m.as_str()) else {
                    continue;
                };
                let message: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
                if let Some(meta) = message.get("metadata") {
                    instances.push((meta.clone(), "a2a-metadata.schema.json"));
                    if let Some(env) = meta.get("aep2.dev/mandate") {
                        let schema = match (env.get("aep2").is_some(), group.context.profile.as_deref()) {
                            (true, _) => Some("native-envelope.schema.json"),
                            (false, Some("eip712")) => Some("mvp-envelope-eip712.schema.json"),
                            (false, Some("solana-mvp")) => Some("mvp-envelope-solana.schema.json"),
                            _ => None,
                        };
                        if let Some(schema) = schema {
                            instances.push((env.clone(), schema));
                        }
                    }
                }
                if let Some(quote) = case.input.get("quote") {
                    instances.push((quote.clone(), "payment-request.schema.json"));
                }
                instances.push((message, "a2a-message.schema.json"));
            }
            Kind::ExtractMcp => {
                // The message as sent, its payment carrier, the envelope inside and (Order Mode)
                // the quote.
                let Some(message) = case.input.get("request").and_then(|m| m.as_str()) else {
                    continue;
                };
                let json: serde_json::Value = serde_json::from_str(message).map_err(|e| e.to_string())?;
                let meta = json.pointer("/params/_meta").cloned().unwrap_or_default();
                instances.push((json, "mcp-tools-call-request.schema.json"));
                if let Some(quote) = case.input.get("quote") {
                    instances.push((quote.clone(), "payment-request.schema.json"));
                }
                let envelope = if let Some(p) = meta.get("x402/payment") {
                    instances.push((p.clone(), "x402-payment-payload-v2.schema.json"));
                    p.get("payload").cloned()
                } else {
                    match meta.get("dev.aep2/mandate") {
                        Some(serde_json::Value::String(h)) => aep2::envelope::decode_header(h)
                            .ok()
                            .and_then(|v| serde_json::from_str(&aep2::json::to_compact(&v)).ok()),
                        other => other.cloned(),
                    }
                };
                if let Some(env) = envelope {
                    let schema = match (env.get("aep2").is_some(), group.context.profile.as_deref()) {
                        (true, _) => Some("native-envelope.schema.json"),
                        (false, Some("eip712")) => Some("mvp-envelope-eip712.schema.json"),
                        (false, Some("solana-mvp")) => Some("mvp-envelope-solana.schema.json"),
                        _ => None,
                    };
                    if let Some(schema) = schema {
                        instances.push((env, schema));
                    }
                }
            }
            Kind::McpRequestHash => continue,
            Kind::Ed25519Raw | Kind::HttpRequestHash => continue,
        }
        for (instance, schema) in instances {
            let validator = load(schema)?;
            let errors: Vec<String> = validator
                .iter_errors(&instance)
                .take(3)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            checked += 1;
            if !errors.is_empty() {
                problems.push(format!("{} ({schema}): {}", case.id, errors.join("; ")));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n").into());
    }
    let eligible = file.cases().any(|(g, c)| {
        c.expected.result == "valid"
            && matches!(
                g.kind,
                Kind::VerifyMandate
                    | Kind::VerifyReceipt
                    | Kind::VerifyPolicy
                    | Kind::VerifyOrder
                    | Kind::ExtractX402
                    | Kind::ExtractMcp
                    | Kind::ExtractA2a
            )
    });
    if eligible && checked == 0 {
        return Err("valid cases exist but none was checked against a wire schema".into());
    }
    Ok(())
}
