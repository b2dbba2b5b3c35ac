//! The schema-stage readings of the mandate pipeline: each moves one check of
//! `aep2.md#mandate-json-types`, `#envelope-mvp` or `#envelope-native` ahead of where the spec
//! puts it, and otherwise leaves the input to the project's own schema code.

use crate::Variant;
use aep2::json::{Object, Value};
use aep2::{Domain, Error, Mandate, Profile, Reason};
use std::collections::HashSet;

const EVM_MANDATE: [&str; 7] = ["owner", "token", "payee", "amount", "nonce", "deadline", "ref"];
const ED_MANDATE: [&str; 7] = ["payer", "token", "payee", "amount", "nonce", "deadline", "ref"];
const MVP_ENVELOPE: [&str; 2] = ["mandate", "payerSig"];
const NATIVE_ENVELOPE: [&str; 5] = ["aep2", "profile", "domain", "mandate", "signature"];

fn fail(reason: Reason) -> Result<(), Error> {
    Err(Error::new(reason, "read the other way"))
}

fn mandate_members(profile: Profile) -> [&'static str; 7] {
    match profile {
        Profile::Eip712 => EVM_MANDATE,
        _ => ED_MANDATE,
    }
}

/// Whether `o`'s member set is exactly `names`.
fn exact_set(o: &Object, names: &[&str]) -> bool {
    o.len() == names.len() && names.iter().all(|n| o.get(n).is_some())
}

/// The profile a native envelope's `profile` member names, if it is one the envelope may carry.
fn native_profile(o: &Object) -> Option<Profile> {
    match o.get("profile") {
        Some(Value::String(p)) if p == "eip712" || p == "ed25519" => Profile::parse(p).ok(),
        _ => None,
    }
}

/// Steps 2 and 3 of `#envelope-native` pass: version 1 and the verifier's profile.
fn version_and_profile_pass(o: &Object, expected: Profile) -> bool {
    matches!(o.get("aep2"), Some(Value::Number(n)) if n == "1") && native_profile(o) == Some(expected)
}

/// Step 3 of `#envelope-native` on its own.
fn profile_check(o: &Object, expected: Profile) -> Result<(), Error> {
    match o.get("profile") {
        Some(Value::String(_)) => match native_profile(o) {
            None => fail(Reason::UnsupportedProfile),
            Some(p) if p != expected => fail(Reason::ProfileMismatch),
            Some(_) => Ok(()),
        },
        Some(_) => fail(Reason::FieldType),
        None => Ok(()),
    }
}

/// The mandate object and the profile it is read under, as the spec's reading would find them.
fn mandate_of(o: &Object, expected: Profile) -> Option<(&Object, Profile)> {
    let profile = if o.get("aep2").is_some() {
        native_profile(o).unwrap_or(expected)
    } else {
        expected
    };
    match o.get("mandate") {
        Some(Value::Object(m)) => Some((m, profile)),
        _ => None,
    }
}

/// A mandate of `profile` every field of which passes the schema, to check one member in.
fn template(profile: Profile) -> Object {
    let key = Value::String("11111111111111111111111111111111".into());
    let evm = |n: u8| Value::String(format!("0x{}{n}", "0".repeat(39)));
    let text = |s: &str| Value::String(s.into());
    let mut m = Object::new();
    match profile {
        Profile::Eip712 => {
            m.insert("owner", evm(1));
            m.insert("token", evm(2));
            m.insert("payee", evm(3));
        }
        _ => {
            m.insert("payer", key.clone());
            m.insert("token", key.clone());
            m.insert("payee", key);
        }
    }
    m.insert("amount", text("1"));
    m.insert("nonce", text("1"));
    m.insert("deadline", Value::Number("1".into()));
    let reference = match profile {
        Profile::SolanaMvp => "call-1".to_owned(),
        _ => format!("0x{}", "0".repeat(64)),
    };
    m.insert("ref", text(&reference));
    m
}

/// The readings that run before the spec's schema stage; `Err` is the other reading's code.
pub(crate) fn before_schema(variant: Variant, v: &Value, expected: Profile) -> Result<(), Error> {
    let Value::Object(o) = v else { return Ok(()) };
    let native = o.get("aep2").is_some();
    let envelope_set: &[&str] = if native { &NATIVE_ENVELOPE } else { &MVP_ENVELOPE };
    match variant {
        Variant::SchemaKindByProfile if expected == Profile::SolanaMvp && native => {
            // Read as an MVP envelope, whose member set has no `aep2`.
            fail(Reason::UnknownField)
        }
        Variant::SchemaMissingBeforeUnknown => {
            if envelope_set.iter().any(|n| o.get(n).is_none()) {
                return fail(Reason::MissingField);
            }
            if exact_set(o, envelope_set)
                && let Some((m, p)) = mandate_of(o, expected)
                && mandate_members(p).iter().any(|n| m.get(n).is_none())
            {
                return fail(Reason::MissingField);
            }
            Ok(())
        }
        Variant::SchemaDocumentOrder => {
            let Some((m, p)) = mandate_of(o, expected) else {
                return Ok(());
            };
            if !exact_set(o, envelope_set) || !exact_set(m, &mandate_members(p)) {
                return Ok(());
            }
            for (name, value) in m.iter() {
                let mut one = template(p);
                one.insert(name, value.clone());
                Mandate::from_json(p, &Value::Object(one))?;
            }
            Ok(())
        }
        Variant::SchemaMandateBeforeEnvelope => match mandate_of(o, expected) {
            Some((m, p)) => Mandate::from_json(p, &Value::Object(m.clone())).map(|_| ()),
            None => Ok(()),
        },
        Variant::SchemaMemberByMember => {
            let Some((m, p)) = mandate_of(o, expected) else {
                return Ok(());
            };
            if !exact_set(o, envelope_set) {
                return Ok(());
            }
            let names = mandate_members(p);
            let mut defined = Object::new();
            for n in names {
                if let Some(x) = m.get(n) {
                    defined.insert(n, x.clone());
                }
            }
            Mandate::from_json(p, &Value::Object(defined))?;
            if m.iter().any(|(n, _)| !names.contains(&n)) {
                return fail(Reason::UnknownField);
            }
            Ok(())
        }
        Variant::NativeProfileBeforeVersion if native && exact_set(o, &NATIVE_ENVELOPE) => profile_check(o, expected),
        Variant::NativeDomainBeforeProfile if native && exact_set(o, &NATIVE_ENVELOPE) => {
            let p = native_profile(o).unwrap_or(expected);
            match o.get("domain") {
                Some(d) if Domain::from_json(p, d).is_err() => fail(Reason::DomainInvalid),
                _ => Ok(()),
            }
        }
        Variant::NativeMandateBeforeDomain
            if native && exact_set(o, &NATIVE_ENVELOPE) && version_and_profile_pass(o, expected) =>
        {
            match o.get("mandate") {
                Some(m) => Mandate::from_json(expected, m).map(|_| ()),
                None => Ok(()),
            }
        }
        Variant::NativeSignatureTypeBeforeMandate
            if native && exact_set(o, &NATIVE_ENVELOPE) && version_and_profile_pass(o, expected) =>
        {
            let domain_reads = o.get("domain").is_some_and(|d| Domain::from_json(expected, d).is_ok());
            match o.get("signature") {
                Some(Value::String(_)) | None => Ok(()),
                Some(_) if domain_reads => fail(Reason::FieldType),
                Some(_) => Ok(()),
            }
        }
        Variant::NativeSolanaMismatch if native && expected != Profile::SolanaMvp => match o.get("profile") {
            Some(Value::String(p))
                if p == "solana-mvp" && matches!(o.get("aep2"), Some(Value::Number(n)) if n == "1") =>
            {
                fail(Reason::ProfileMismatch)
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The signature text's format under `profile`, checked ahead of the schema
/// ([`Variant::CoreSignatureBeforeSchema`]).
pub(crate) fn signature_format(v: &Value, profile: Profile) -> Result<(), Error> {
    let Value::Object(o) = v else { return Ok(()) };
    let Some(Value::String(sig)) = o.get("payerSig").or_else(|| o.get("signature")) else {
        return Ok(());
    };
    match profile {
        Profile::Eip712 => aep2::crypto::secp256k1::parse_signature(sig).map(|_| ()),
        _ => aep2::verify::parse_ed25519_signature(sig).map(|_| ()),
    }
}

/// Whether some object of the JSON text repeats a member name *as written* (escapes not
/// decoded); the text is one the strict parser has read up to a duplicate, so it is well formed
/// that far.
pub(crate) fn duplicate_as_written(text: &str) -> bool {
    let bytes = text.as_bytes();
    // One entry per open container: the raw names seen, or `None` for an array.
    let mut stack: Vec<Option<HashSet<&str>>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => stack.push(Some(HashSet::new())),
            b'[' => stack.push(None),
            b'}' | b']' => {
                stack.pop();
            }
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                let raw = text.get(start..j.min(bytes.len())).unwrap_or("");
                let mut k = j + 1;
                while k < bytes.len() && bytes[k].is_ascii_whitespace() {
                    k += 1;
                }
                if k < bytes.len()
                    && bytes[k] == b':'
                    && let Some(Some(names)) = stack.last_mut()
                    && !names.insert(raw)
                {
                    return true;
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// The text with every lone surrogate escape (`\uD800`–`\uDFFF` not forming a pair) replaced by
/// `\uFFFD`; `None` when there is none.
pub(crate) fn replace_lone_surrogates(text: &str) -> Option<String> {
    let hex4 = |s: &str| s.get(..4).and_then(|h| u16::from_str_radix(h, 16).ok());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let esc = &rest[at..];
        if let Some(unit) = esc.strip_prefix("\\u").and_then(hex4) {
            let after = &esc[6..];
            let pairs = (0xD800..0xDC00).contains(&unit)
                && after
                    .strip_prefix("\\u")
                    .and_then(hex4)
                    .is_some_and(|low| (0xDC00..0xE000).contains(&low));
            if pairs {
                out.push_str(&esc[..12]);
                rest = &esc[12..];
            } else if (0xD800..0xE000).contains(&unit) {
                out.push_str("\\ufffd");
                changed = true;
                rest = after;
            } else {
                out.push_str(&esc[..6]);
                rest = after;
            }
        } else {
            let n = esc.chars().nth(1).map_or(1, |c| 1 + c.len_utf8());
            out.push_str(&esc[..n.min(esc.len())]);
            rest = &esc[n.min(esc.len())..];
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}
