//! Reading variants of the A2A binding (`aep2.md#binding-a2a`).
//!
//! Each reading reads the message with the library's parts (`aep2_a2a::Message`, the extraction
//! steps, the request descriptor) and moves one check or changes one rule of §11.4, §11.5 or
//! §11.8; where its rule does not decide the case it answers as the reference does.

use super::{invalid, reference, valid};
use aep2::codec::hex_encode_0x;
use aep2::json::{Value, parse, to_canonical, to_compact};
use aep2::{Error, PaymentRequest, Reason, Stage, Verifier};
use aep2_a2a::{KEY_MANDATE, KEY_STATUS, MESSAGE_LIMITS, Message, RequestBinding, X402_PAYLOAD_KEY};
use aep2_conformance::protocol::CaseInput;
use aep2_vectors::check::{Answer, context_domain, context_policy, report_intermediates};
use aep2_vectors::model::Context;
use serde_json::Value as J;
use sha2::{Digest, Sha256};

/// One other reading of a choice point of this area (`conformance/README.md`, "Choice points
/// of the spec").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// §11.5/§11.8: an agent-role message is never a request, so the request hash is computed
    /// before the mandate is read in every mode (also without a payee policy, and for an Order
    /// Mode reply after check 0), not only under Intent Mode's request binding.
    AgentNeverRequest,
    /// §11.5: Intent Mode runs §11.4 steps 2–5 before the request hash, instead of after it.
    ExtractBeforeHash,
    /// §11.4 step 2: a single mandate found only in a part's metadata is read as the payment,
    /// instead of `payment_missing`.
    PartMandateRead,
    /// §11.4 steps 2–3: `aep2.dev/status` is checked before the payments are counted.
    StatusBeforeCount,
    /// §11.4 step 5: the envelope's schema (closed members) is checked before its size.
    MembersBeforeSize,
    /// §11.4 step 5: the 8192-byte limit applies to the base64 header form of the compact
    /// text (as for an x402 header, §5.3), not to the compact text itself.
    SizeOfBase64,
    /// §11.8: `messageId` is part of the request descriptor.
    MessageIdHashed,
    /// §11.8: an empty `referenceTaskIds` is written into the descriptor as `[]`.
    EmptyReferenceTaskIdsKept,
}

impl Reading {
    /// Every reading, in the order of the README's table.
    pub const ALL: &'static [Reading] = &[
        Reading::AgentNeverRequest,
        Reading::ExtractBeforeHash,
        Reading::PartMandateRead,
        Reading::StatusBeforeCount,
        Reading::MembersBeforeSize,
        Reading::SizeOfBase64,
        Reading::MessageIdHashed,
        Reading::EmptyReferenceTaskIdsKept,
    ];

    /// The choice point's id in `conformance/README.md`, which is also the `--variant` name.
    pub fn id(self) -> &'static str {
        match self {
            Reading::AgentNeverRequest => "CP-a2a-agent-message",
            Reading::ExtractBeforeHash => "CP-a2a-order-hash-extract",
            Reading::PartMandateRead => "CP-a2a-part-mandate",
            Reading::StatusBeforeCount => "CP-a2a-order-2-3",
            Reading::MembersBeforeSize => "CP-a2a-envelope-size",
            Reading::SizeOfBase64 => "CP-a2a-envelope-size-unit",
            Reading::MessageIdHashed => "CP-a2a-hash-message-id",
            Reading::EmptyReferenceTaskIdsKept => "CP-a2a-hash-empty-reference-task-ids",
        }
    }
}

/// The answer of `reading` to a case it governs; `None` for every other case.
pub fn answer(reading: Reading, case: &CaseInput) -> Option<Result<Answer, String>> {
    let text = case.input.get("a2aMessage").and_then(J::as_str)?;
    match (reading, case.kind.as_str()) {
        (Reading::MessageIdHashed | Reading::EmptyReferenceTaskIdsKept, "a2a_request_hash") => {
            Some(Ok(hash_answer(reading, text)))
        }
        (Reading::MessageIdHashed | Reading::EmptyReferenceTaskIdsKept, "extract_a2a") => {
            intent_with_hash(reading, case, text).transpose()
        }
        (_, "extract_a2a") => extraction(reading, case, text).transpose(),
        _ => None,
    }
}

/// What precedes §11.4 step 2 in the case's mode: Intent Mode's request hash, Order Mode's
/// check 0. `false` when one of them fails (the reference answers with its code).
fn preamble_passes(case: &CaseInput, message: &Message) -> Result<bool, String> {
    if case.input.get("payeePolicy").is_some() {
        return Ok(message.request_hash().is_ok());
    }
    if let Some(q) = case.input.get("quote") {
        let (group, _) = aep2_conformance::reference::as_vector(0, case)?;
        let verifier = Verifier::new(context_domain(&group.context)?);
        let quote = parse(&q.to_string(), &aep2::json::Limits::AEP2)
            .and_then(|v| PaymentRequest::from_json(&v))
            .map_err(|e| format!("quote: {e}"))?;
        return Ok(quote.check_verifier(&verifier).is_ok());
    }
    Ok(true)
}

/// The payments §11.4 step 2 counts.
fn payments(message: &Message) -> usize {
    usize::from(message.metadata.get(KEY_MANDATE).is_some())
        + usize::from(message.metadata.get(X402_PAYLOAD_KEY).is_some())
        + message
            .parts
            .iter()
            .filter(|p| p.metadata.get(KEY_MANDATE).is_some())
            .count()
}

fn extraction(reading: Reading, case: &CaseInput, text: &str) -> Result<Option<Answer>, String> {
    let Ok(message) = Message::parse(text) else {
        return Ok(None);
    };
    match reading {
        Reading::AgentNeverRequest => {
            if case.input.get("payeePolicy").is_some() || !preamble_passes(case, &message)? {
                return Ok(None);
            }
            Ok(message.request_hash().err().map(|e| invalid(e.reason())))
        }
        Reading::ExtractBeforeHash => {
            if case.input.get("payeePolicy").is_none() {
                return Ok(None);
            }
            Ok(aep2_a2a::extract_mandate(&message).err().map(|e| invalid(e.reason())))
        }
        Reading::StatusBeforeCount => {
            if !preamble_passes(case, &message)? {
                return Ok(None);
            }
            let bad = match message.metadata.get(KEY_STATUS) {
                None => false,
                Some(Value::String(s)) => s != "payment-submitted",
                Some(_) => true,
            };
            Ok(bad.then(|| invalid(Reason::FieldType)))
        }
        Reading::PartMandateRead => {
            if payments(&message) != 1 || message.metadata.get(KEY_MANDATE).is_some() {
                return Ok(None);
            }
            let mut moved = message.clone();
            let Some(env) = moved.parts.iter_mut().find_map(|p| p.metadata.remove(KEY_MANDATE)) else {
                return Ok(None);
            };
            moved.metadata.insert(KEY_MANDATE, env);
            let mut input = case.input.clone();
            if let J::Object(o) = &mut input {
                o.insert("a2aMessage".into(), J::String(moved.to_text()));
            }
            let mut a = reference(&CaseInput {
                kind: case.kind.clone(),
                context: case.context.clone(),
                input,
            })?;
            a.intermediates
                .insert("a2aVersion".into(), message.version.as_str().into());
            Ok(Some(a))
        }
        Reading::MembersBeforeSize | Reading::SizeOfBase64 => {
            if !preamble_passes(case, &message)? || payments(&message) != 1 {
                return Ok(None);
            }
            let Some(env @ Value::Object(_)) = message.metadata.get(KEY_MANDATE) else {
                return Ok(None);
            };
            let status_ok = match message.metadata.get(KEY_STATUS) {
                None => true,
                Some(Value::String(s)) => s == "payment-submitted",
                Some(_) => false,
            };
            if !status_ok {
                return Ok(None);
            }
            if reading == Reading::SizeOfBase64 {
                let b64 = aep2::codec::base64_encode(to_compact(env).as_bytes());
                return Ok((b64.len() > 8192).then(|| invalid(Reason::HeaderTooLarge)));
            }
            let (group, _) = aep2_conformance::reference::as_vector(0, case)?;
            let verifier = Verifier::new(context_domain(&group.context)?);
            let report = verifier.check_value(env, None);
            Ok(match report.verdict {
                Err(e) if e.stage() == Stage::Schema => Some(invalid(e.reason())),
                _ => None,
            })
        }
        Reading::MessageIdHashed | Reading::EmptyReferenceTaskIdsKept => Ok(None),
    }
}

/// The descriptor of `text` as this reading writes it.
fn descriptor(reading: Reading, text: &str) -> Result<String, Error> {
    let message = Message::parse(text)?;
    let base = message.request_descriptor()?;
    let mut d = match parse(&base, &MESSAGE_LIMITS)? {
        Value::Object(o) => o,
        _ => return Ok(base),
    };
    match reading {
        Reading::MessageIdHashed => d.insert("messageId", Value::String(message.message_id.clone())),
        Reading::EmptyReferenceTaskIdsKept => {
            let raw = parse(text, &MESSAGE_LIMITS)?;
            if let Value::Object(o) = &raw
                && let Some(Value::Array(a)) = o.get("referenceTaskIds")
                && a.is_empty()
            {
                d.insert("referenceTaskIds", Value::Array(Vec::new()));
            }
        }
        _ => {}
    }
    Ok(to_canonical(&Value::Object(d)))
}

fn hash_of(descriptor: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(aep2_a2a::A2A_MESSAGE_TAG);
    h.update(descriptor.as_bytes());
    h.finalize().into()
}

fn hash_answer(reading: Reading, text: &str) -> Answer {
    match descriptor(reading, text) {
        Ok(d) => {
            let mut a = valid();
            a.intermediates
                .insert("requestHash".into(), hex_encode_0x(&hash_of(&d)));
            a.intermediates.insert("descriptor".into(), d);
            a
        }
        Err(e) => invalid(e.reason()),
    }
}

/// Intent Mode with this reading's request hash as the expected one.
fn intent_with_hash(reading: Reading, case: &CaseInput, text: &str) -> Result<Option<Answer>, String> {
    let Some(p) = case.input.get("payeePolicy") else {
        return Ok(None);
    };
    let Ok(message) = Message::parse(text) else {
        return Ok(None);
    };
    let d = match descriptor(reading, text) {
        Ok(d) => d,
        Err(_) => return Ok(None),
    };
    let (group, _) = aep2_conformance::reference::as_vector(0, case)?;
    let verifier = Verifier::new(context_domain(&group.context)?);
    let now = group.context.now.ok_or("extract_a2a needs now")?;
    let ctx = Context {
        policy: Some(serde_json::from_value(p.clone()).map_err(|e| format!("payeePolicy: {e}"))?),
        ..Context::default()
    };
    let hash = hash_of(&d);
    let policy = context_policy(&ctx)?.with_request_hash(hash);
    let (_, report) = aep2_a2a::check_intent(text, &verifier, &policy, RequestBinding::NotRequired, now);
    let mut a = match &report.verdict {
        Ok(()) => valid(),
        Err(e) => invalid(e.reason()),
    };
    a.intermediates = report_intermediates(&report);
    a.intermediates
        .insert("a2aVersion".into(), message.version.as_str().into());
    a.intermediates.insert("requestHash".into(), hex_encode_0x(&hash));
    Ok(Some(a))
}
