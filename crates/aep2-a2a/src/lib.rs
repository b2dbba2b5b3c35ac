//! # aep2-a2a
//!
//! The A2A (Agent2Agent) binding of AEP2 (spec `aep2.md#binding-a2a`): pure functions over
//! message text and [`aep2::json::Value`]s, no transport.
//!
//! - [`Aep2Extension`]: the AgentCard `capabilities.extensions[]` entry for
//!   [`EXTENSION_URI`] (build with [`Aep2Extension::to_json`], read with
//!   [`Aep2Extension::from_json`] / [`Aep2Extension::find`]).
//! - [`Message`]: an A2A message read from its v1.0 or v0.3 spelling, written as v1.0.
//! - Metadata keys [`KEY_STATUS`], [`KEY_REQUIREMENTS`], [`KEY_MANDATE`], [`KEY_RECEIPT`],
//!   [`KEY_ERROR`] on `Message.metadata`.
//! - Intent Mode: [`check_message`] / [`check_intent`] / [`verify_intent`] (the mandate on the
//!   payer's first message, bound to that message by [`Message::request_hash`]).
//! - Order Mode: [`payment_required`] (the `input-required` task status with the quote), then
//!   [`check_order_reply`] / [`verify_order_reply`] on the payer's reply.
//! - Results: [`payment_accepted`], [`payment_rejected`]; the payer reads them with
//!   [`PaymentInfo::of`].
//!
//! ```
//! use aep2_a2a::{Message, Part, Role};
//!
//! // The same request in A2A v0.3 and v1.0 spelling has one request hash.
//! let v03 = Message::parse(r#"{"kind":"message","messageId":"m-1","role":"user",
//!     "parts":[{"kind":"text","text":"Summarise the Q3 report"}]}"#)?;
//! let v10 = Message::new(Role::User, "m-2", vec![Part::text("Summarise the Q3 report")]);
//! assert_eq!(v03.request_hash()?, v10.request_hash()?);
//! # Ok::<(), aep2::Error>(())
//! ```

mod card;
#[doc(hidden)]
pub mod fuzzing;
mod message;
mod task;

pub use card::{Accept, Aep2Extension, AgentCard, MAX_ACCEPTS, Mode, Skill};
pub use message::{A2aVersion, MAX_MESSAGE_BYTES, MESSAGE_LIMITS, Message, Part, PartContent, Role};
pub use task::{Task, TaskStore};

use aep2::codec::hex_encode_0x;
use aep2::envelope::decode_json_bytes;
use aep2::json::{self, Object, Value};
use aep2::{
    Error, OrderOptions, PayeePolicy, PaymentRequest, Reason, Receipt, Report, Result, SignedMandate, Verified,
    Verifier,
};
use aep2_x402::PaymentRequirements;

/// The URI of the AEP2 A2A extension, version 1 (`aep2.md#a2a-extension`).
pub const EXTENSION_URI: &str = "https://aep2.dev/ext/a2a/v1";
/// The prefix of every AEP2 metadata key.
pub const KEY_PREFIX: &str = "aep2.dev/";
/// Metadata key: the payment status (`payment-required`, …), a string.
pub const KEY_STATUS: &str = "aep2.dev/status";
/// Metadata key: the payee's requirements, an array of x402 `PaymentRequirements` (scheme `aep2`).
pub const KEY_REQUIREMENTS: &str = "aep2.dev/requirements";
/// Metadata key: the payer's envelope (MVP or native), as a JSON object.
pub const KEY_MANDATE: &str = "aep2.dev/mandate";
/// Metadata key: the payee's acceptance `{mandateId, payer, amount, receipt?}`.
pub const KEY_RECEIPT: &str = "aep2.dev/receipt";
/// Metadata key: a rejection `{code, message}`.
pub const KEY_ERROR: &str = "aep2.dev/error";
/// Every key this binding defines; any other key under [`KEY_PREFIX`] is `a2a_message_invalid`.
pub const KEYS: [&str; 5] = [KEY_STATUS, KEY_REQUIREMENTS, KEY_MANDATE, KEY_RECEIPT, KEY_ERROR];
/// The a2a-x402 payload key. Not read by this binding, but counted as a second payment next to
/// [`KEY_MANDATE`] (`payment_ambiguous`).
pub const X402_PAYLOAD_KEY: &str = "x402.payment.payload";
/// Domain-separation tag of the A2A request hash: `AEP2/a2a-message/v1` and one zero byte.
pub const A2A_MESSAGE_TAG: &[u8] = b"AEP2/a2a-message/v1\0";
/// The most requirements one status message may offer.
pub const MAX_REQUIREMENTS: usize = 8;

/// The value of [`KEY_STATUS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Payee → payer: pay before the task continues (task `input-required`).
    Required,
    /// Payer → payee: the message carries a mandate.
    Submitted,
    /// Payee → payer: the mandate was accepted; no SP receipt attached yet.
    Verified,
    /// Payee → payer: the mandate was accepted and the SP's receipt is attached.
    Completed,
    /// Payee → payer: the mandate was rejected; [`KEY_ERROR`] says why.
    Rejected,
}

impl PaymentStatus {
    /// Every status.
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Required,
        PaymentStatus::Submitted,
        PaymentStatus::Verified,
        PaymentStatus::Completed,
        PaymentStatus::Rejected,
    ];

    /// The wire text (`payment-required`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Required => "payment-required",
            PaymentStatus::Submitted => "payment-submitted",
            PaymentStatus::Verified => "payment-verified",
            PaymentStatus::Completed => "payment-completed",
            PaymentStatus::Rejected => "payment-rejected",
        }
    }

    /// Reads the wire text.
    pub fn parse(text: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Whether Intent Mode binds the mandate to the message it travels with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestBinding {
    /// `ref` must be the message's [`Message::request_hash`] (`request_mismatch`); a
    /// `solana-mvp` mandate can never satisfy it (`aep2.md#request-binding`).
    Required,
    /// `ref` is not checked (the policy's own request hash, if any, still applies).
    NotRequired,
}

fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

/// What [`extract`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// The message, normalised.
    pub message: Message,
    /// The envelope (MVP or native JSON object), within the envelope limits, not yet
    /// schema-checked.
    pub envelope: Value,
}

/// Parses a payer's message and takes its mandate out (`aep2.md#a2a-extraction`).
///
/// In order: [`Message::parse`] (`header_too_large`, the JSON codes, `a2a_message_invalid`);
/// the payments it carries, counted over `metadata["aep2.dev/mandate"]`,
/// `metadata["x402.payment.payload"]` and `metadata["aep2.dev/mandate"]` of every part: more
/// than one is `payment_ambiguous`, none in the message's own metadata `payment_missing`;
/// [`KEY_STATUS`], when present, must be `payment-submitted` (`field_type`); the mandate must
/// be a JSON object (`field_type`: not base64 text); its compact text is judged as envelope
/// JSON received without base64 (8192 bytes, `header_too_large`; the envelope JSON limits,
/// `json_limit_exceeded`).
pub fn extract(text: &str) -> Result<Extracted> {
    let message = Message::parse(text)?;
    let envelope = extract_mandate(&message)?;
    Ok(Extracted { message, envelope })
}

/// The envelope of a parsed message: the steps of [`extract`] after parsing.
pub fn extract_mandate(message: &Message) -> Result<Value> {
    let mut places = Vec::new();
    if message.metadata.get(KEY_MANDATE).is_some() {
        places.push("metadata[\"aep2.dev/mandate\"]".to_owned());
    }
    if message.metadata.get(X402_PAYLOAD_KEY).is_some() {
        places.push("metadata[\"x402.payment.payload\"]".to_owned());
    }
    for (i, p) in message.parts.iter().enumerate() {
        if p.metadata.get(KEY_MANDATE).is_some() {
            places.push(format!("parts[{i}].metadata[\"aep2.dev/mandate\"]"));
        }
    }
    if places.len() > 1 {
        return Err(Error::new(
            Reason::PaymentAmbiguous,
            format!("the message carries {} payments: {}", places.len(), places.join(", ")),
        ));
    }
    let Some(mandate) = message.metadata.get(KEY_MANDATE) else {
        let detail = match places.first() {
            Some(p) => format!("{p} is not read: the mandate belongs in the message's own metadata"),
            None => "the message carries no aep2.dev/mandate".to_owned(),
        };
        return Err(Error::new(Reason::PaymentMissing, detail));
    };
    match message.metadata.get(KEY_STATUS) {
        None => {}
        Some(Value::String(t)) if t == PaymentStatus::Submitted.as_str() => {}
        Some(other) => {
            return Err(Error::new(
                Reason::FieldType,
                format!(
                    "aep2.dev/status on a paying message must be \"payment-submitted\", found {}",
                    json::to_compact(other)
                ),
            ));
        }
    }
    if !matches!(mandate, Value::Object(_)) {
        return Err(Error::new(
            Reason::FieldType,
            format!(
                "aep2.dev/mandate must be the envelope JSON object, found {}",
                mandate.type_name()
            ),
        ));
    }
    // Re-read under the envelope rules: the message limits are looser than an envelope's.
    decode_json_bytes(json::to_compact(mandate).as_bytes())
}

/// Extraction and core verification at `now`, as one [`Report`] (with the message when it
/// parsed). Intent Mode without a payee policy; see [`check_intent`].
pub fn check_message(text: &str, verifier: &Verifier, now: Option<u64>) -> (Option<Message>, Report) {
    match Message::parse(text) {
        Ok(message) => {
            let report = match extract_mandate(&message) {
                Ok(envelope) => verifier.check_value(&envelope, now),
                Err(e) => Report::failed(None, e),
            };
            (Some(message), report)
        }
        Err(e) => (None, Report::failed(None, e)),
    }
}

/// Intent Mode (`aep2.md#a2a-intent`): extraction, core verification at
/// [`PayeePolicy::core_time`], then the payee policy at `now`; with
/// [`RequestBinding::Required`] the policy's expected request hash is the message's
/// [`Message::request_hash`] (computed before the mandate is read, so an agent message is
/// `request_descriptor_invalid`). Replay is the caller's next step.
pub fn check_intent(
    text: &str,
    verifier: &Verifier,
    policy: &PayeePolicy,
    binding: RequestBinding,
    now: u64,
) -> (Option<Message>, Report) {
    let message = match Message::parse(text) {
        Ok(m) => m,
        Err(e) => return (None, Report::failed(None, e)),
    };
    let policy = match binding {
        RequestBinding::NotRequired => policy.clone(),
        RequestBinding::Required => match message.request_hash() {
            Ok(h) => policy.clone().with_request_hash(h),
            Err(e) => return (Some(message), Report::failed(None, e)),
        },
    };
    let envelope = match extract_mandate(&message) {
        Ok(v) => v,
        Err(e) => return (Some(message), Report::failed(None, e)),
    };
    let mut report = verifier.check_value(&envelope, Some(policy.core_time(now)));
    if report.verdict.is_ok() {
        report.verdict = verified_of(&report).and_then(|v| policy.check(&v, now));
    }
    (Some(message), report)
}

/// [`check_intent`] as a plain result.
pub fn verify_intent(
    text: &str,
    verifier: &Verifier,
    policy: &PayeePolicy,
    binding: RequestBinding,
    now: u64,
) -> Result<(Message, Verified)> {
    let (message, report) = check_intent(text, verifier, policy, binding, now);
    let v = report.into_result()?;
    message
        .map(|m| (m, v))
        .ok_or_else(|| Error::new(Reason::A2aMessageInvalid, "no message"))
}

/// Order Mode (`aep2.md#a2a-order`): the payer's reply to [`payment_required`], judged against
/// the quote *as the payee issued it* (its own record for the reply's `taskId`, never a copy in
/// the reply): the quote's verifier check, extraction, core verification at `now − clock_skew`,
/// then `PaymentRequest::check` (`quote_expired`, payee, asset, exact amount, window, horizon,
/// `ref` = the quote hash or, for `solana-mvp`, its request id). Replay is the caller's next step.
pub fn check_order_reply(
    text: &str,
    verifier: &Verifier,
    quote: &PaymentRequest,
    now: u64,
    options: OrderOptions,
) -> (Option<Message>, Report) {
    if let Err(e) = quote.check_verifier(verifier) {
        return (None, Report::failed(None, e));
    }
    let message = match Message::parse(text) {
        Ok(m) => m,
        Err(e) => return (None, Report::failed(None, e)),
    };
    let envelope = match extract_mandate(&message) {
        Ok(v) => v,
        Err(e) => return (Some(message), Report::failed(None, e)),
    };
    let mut report = verifier.check_value(&envelope, Some(now.saturating_sub(options.clock_skew)));
    if report.verdict.is_ok() {
        report.verdict = verified_of(&report).and_then(|v| quote.check(&v, now, options));
    }
    (Some(message), report)
}

/// [`check_order_reply`] as a plain result.
pub fn verify_order_reply(
    text: &str,
    verifier: &Verifier,
    quote: &PaymentRequest,
    now: u64,
    options: OrderOptions,
) -> Result<(Message, Verified)> {
    let (message, report) = check_order_reply(text, verifier, quote, now, options);
    let v = report.into_result()?;
    message
        .map(|m| (m, v))
        .ok_or_else(|| Error::new(Reason::A2aMessageInvalid, "no message"))
}

fn verified_of(report: &Report) -> Result<Verified> {
    report.clone().into_result()
}

/// The payer's side: attaches `envelope` to `message` as [`KEY_MANDATE`] (its JSON object)
/// with status `payment-submitted`, and lists [`EXTENSION_URI`] in `extensions`.
pub fn attach_mandate(mut message: Message, envelope: &SignedMandate) -> Message {
    message
        .metadata
        .insert(KEY_STATUS, s(PaymentStatus::Submitted.as_str()));
    message.metadata.insert(KEY_MANDATE, envelope.to_json());
    message.add_extension(EXTENSION_URI);
    message
}

/// An A2A task state (v1.0 spelling on output; v0.3 spelling accepted on input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// `TASK_STATE_SUBMITTED` / `submitted`.
    Submitted,
    /// `TASK_STATE_WORKING` / `working`.
    Working,
    /// `TASK_STATE_INPUT_REQUIRED` / `input-required`: Order Mode waits for the payment here.
    InputRequired,
    /// `TASK_STATE_COMPLETED` / `completed`.
    Completed,
    /// `TASK_STATE_FAILED` / `failed`.
    Failed,
    /// `TASK_STATE_REJECTED` / `rejected`.
    Rejected,
}

impl TaskState {
    const ALL: [TaskState; 6] = [
        TaskState::Submitted,
        TaskState::Working,
        TaskState::InputRequired,
        TaskState::Completed,
        TaskState::Failed,
        TaskState::Rejected,
    ];

    /// The v1.0 spelling.
    pub const fn v1(self) -> &'static str {
        match self {
            TaskState::Submitted => "TASK_STATE_SUBMITTED",
            TaskState::Working => "TASK_STATE_WORKING",
            TaskState::InputRequired => "TASK_STATE_INPUT_REQUIRED",
            TaskState::Completed => "TASK_STATE_COMPLETED",
            TaskState::Failed => "TASK_STATE_FAILED",
            TaskState::Rejected => "TASK_STATE_REJECTED",
        }
    }

    /// Whether the task is finished for good (completed, failed, rejected): A2A lets no further
    /// message continue it.
    pub const fn is_terminal(self) -> bool {
        matches!(self, TaskState::Completed | TaskState::Failed | TaskState::Rejected)
    }

    /// The v0.3 spelling.
    pub const fn v0_3(self) -> &'static str {
        match self {
            TaskState::Submitted => "submitted",
            TaskState::Working => "working",
            TaskState::InputRequired => "input-required",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
        }
    }
}

/// An A2A `TaskStatus`: the state and the agent's message carrying the AEP2 metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStatus {
    /// `state`.
    pub state: TaskState,
    /// `message`.
    pub message: Message,
}

impl TaskStatus {
    /// The v1.0 JSON object `{state, message}`.
    pub fn to_json(&self) -> Value {
        self.to_json_for(A2aVersion::V1_0)
    }

    /// The JSON object `{state, message}` spelt for `version` (v0.3: `input-required`, a
    /// `kind`-tagged message with role `agent`).
    pub fn to_json_for(&self, version: A2aVersion) -> Value {
        let state = match version {
            A2aVersion::V1_0 => self.state.v1(),
            A2aVersion::V0_3 => self.state.v0_3(),
        };
        Value::Object(
            Object::new()
                .with("state", s(state))
                .with("message", self.message.to_json_for(version)),
        )
    }

    /// Reads a `TaskStatus` in either spelling (`a2a_message_invalid` for anything else); a
    /// `timestamp` is accepted and dropped, a status without a message is rejected because it
    /// carries no AEP2 metadata.
    pub fn from_json(v: &Value) -> Result<TaskStatus> {
        let bad = |d: String| Error::new(Reason::A2aMessageInvalid, d);
        let Value::Object(o) = v else {
            return Err(bad("task status must be an object".into()));
        };
        if let Some((k, _)) = o.iter().find(|(k, _)| !["state", "message", "timestamp"].contains(k)) {
            return Err(bad(format!("task status has the unknown member {k:?}")));
        }
        let Some(Value::String(state)) = o.get("state") else {
            return Err(bad("task status state must be a string".into()));
        };
        let message = Message::from_json(
            o.get("message")
                .ok_or_else(|| bad("task status has no message".into()))?,
        )?;
        let state = TaskState::ALL
            .into_iter()
            .find(|t| match message.version {
                A2aVersion::V1_0 => t.v1() == state,
                A2aVersion::V0_3 => t.v0_3() == state,
            })
            .ok_or_else(|| {
                bad(format!(
                    "task state {state:?} is not spelt for A2A v{}",
                    message.version.as_str()
                ))
            })?;
        Ok(TaskStatus { state, message })
    }
}

fn agent_status(mut message: Message, state: TaskState, status: PaymentStatus) -> TaskStatus {
    message.role = Role::Agent;
    message.metadata.insert(KEY_STATUS, s(status.as_str()));
    message.add_extension(EXTENSION_URI);
    TaskStatus { state, message }
}

/// Order Mode, payee → payer: the `input-required` status whose message carries
/// `aep2.dev/status: payment-required` and `aep2.dev/requirements` (x402 `PaymentRequirements`
/// entries of scheme `aep2`, `aep2.md#x402-payment-required`; Order Mode entries carry the quote
/// in `extra.quote`). `message` supplies the ids and the human-readable parts; its role is set
/// to agent. At most [`MAX_REQUIREMENTS`] entries are written.
pub fn payment_required(message: Message, requirements: &[PaymentRequirements]) -> TaskStatus {
    let mut status = agent_status(message, TaskState::InputRequired, PaymentStatus::Required);
    status
        .message
        .metadata
        .insert(KEY_REQUIREMENTS, requirements_json(requirements));
    status
}

fn requirements_json(requirements: &[PaymentRequirements]) -> Value {
    Value::Array(
        requirements
            .iter()
            .take(MAX_REQUIREMENTS)
            .map(|r| Value::Object(r.to_json()))
            .collect(),
    )
}

/// Payee → payer after acceptance: status `payment-completed` when the SP's `receipt` is
/// attached, else `payment-verified`, with `aep2.dev/receipt` = `{mandateId, payer, amount,
/// receipt?}`. `state` is the task's state (usually working or completed).
pub fn payment_accepted(message: Message, v: &Verified, receipt: Option<&Receipt>, state: TaskState) -> TaskStatus {
    let status = if receipt.is_some() {
        PaymentStatus::Completed
    } else {
        PaymentStatus::Verified
    };
    let mut out = agent_status(message, state, status);
    let mut r = Object::new()
        .with("mandateId", s(hex_encode_0x(&v.digest.id)))
        .with("payer", s(v.signer()))
        .with("amount", s(v.mandate().amount()));
    if let Some(receipt) = receipt {
        r.insert("receipt", receipt.to_json());
    }
    out.message.metadata.insert(KEY_RECEIPT, Value::Object(r));
    out
}

/// Payee → payer after a rejection: status `payment-rejected` with `aep2.dev/error` =
/// `{code, message}`. With `retry` (Order Mode: a fresh quote) the task goes back to
/// `input-required` and the requirements are attached again; without, it fails.
pub fn payment_rejected(message: Message, error: &Error, retry: Option<&[PaymentRequirements]>) -> TaskStatus {
    let state = if retry.is_some() {
        TaskState::InputRequired
    } else {
        TaskState::Failed
    };
    let mut out = agent_status(message, state, PaymentStatus::Rejected);
    let detail = if error.detail().is_empty() {
        error.code().to_owned()
    } else {
        format!("{}: {}", error.code(), error.detail())
    };
    out.message.metadata.insert(
        KEY_ERROR,
        Value::Object(Object::new().with("code", s(error.code())).with("message", s(detail))),
    );
    if let Some(r) = retry {
        out.message.metadata.insert(KEY_REQUIREMENTS, requirements_json(r));
    }
    out
}

/// The payee's acceptance as the payer reads it from [`KEY_RECEIPT`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acceptance {
    /// The mandate id, `0x` + 64 lowercase hex digits.
    pub mandate_id: String,
    /// The signer in display form.
    pub payer: String,
    /// The mandate's amount (canonical decimal).
    pub amount: String,
    /// The SP's receipt JSON, if attached (verify it with `Receipt::from_json` and `Receipt::verify`).
    pub receipt: Option<Value>,
}

/// The AEP2 metadata of an agent's message, as a payer reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentInfo {
    /// [`KEY_STATUS`].
    pub status: PaymentStatus,
    /// [`KEY_REQUIREMENTS`] (empty when absent).
    pub requirements: Vec<PaymentRequirements>,
    /// [`KEY_RECEIPT`].
    pub acceptance: Option<Acceptance>,
    /// [`KEY_ERROR`]: the reason and the payee's message.
    pub error: Option<(Reason, String)>,
}

impl PaymentInfo {
    /// Reads the AEP2 keys of `message`: `Ok(None)` when it has no [`KEY_STATUS`]. Faults:
    /// a status that is not one of the five strings, requirements that are not an array of
    /// 1 ..= [`MAX_REQUIREMENTS`] x402 entries (`field_type`, the codes of
    /// `PaymentRequirements::from_json`) or not of scheme `aep2` (`x402_scheme_unsupported`),
    /// a receipt or error object that is not closed or not of its form (`unknown_field`,
    /// `missing_field`, `field_type`; an error code must be a registered reason code), and a
    /// status whose required key is absent (`payment-required`: requirements;
    /// `payment-verified` / `payment-completed`: receipt, with the SP receipt exactly for
    /// completed; `payment-rejected`: error): `missing_field`.
    pub fn of(message: &Message) -> Result<Option<PaymentInfo>> {
        let m = &message.metadata;
        let status = match m.get(KEY_STATUS) {
            None => return Ok(None),
            Some(Value::String(t)) => {
                PaymentStatus::parse(t).ok_or_else(|| Error::new(Reason::FieldType, format!("unknown status {t:?}")))?
            }
            Some(other) => {
                return Err(Error::new(
                    Reason::FieldType,
                    format!("aep2.dev/status must be a string, found {}", other.type_name()),
                ));
            }
        };
        let requirements = match m.get(KEY_REQUIREMENTS) {
            None => Vec::new(),
            Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_REQUIREMENTS => items
                .iter()
                .map(|v| {
                    let r = PaymentRequirements::from_json(v)?;
                    if r.scheme != aep2_x402::SCHEME {
                        return Err(Error::new(
                            Reason::X402SchemeUnsupported,
                            format!("scheme {:?}, expected \"aep2\"", r.scheme),
                        ));
                    }
                    Ok(r)
                })
                .collect::<Result<_>>()?,
            Some(_) => {
                return Err(Error::new(
                    Reason::FieldType,
                    format!("aep2.dev/requirements must be an array of 1..={MAX_REQUIREMENTS} entries"),
                ));
            }
        };
        let acceptance = m.get(KEY_RECEIPT).map(read_acceptance).transpose()?;
        let error = m.get(KEY_ERROR).map(read_error).transpose()?;
        let missing = |what: &str| {
            Err(Error::new(
                Reason::MissingField,
                format!("{} needs {what}", status.as_str()),
            ))
        };
        match status {
            PaymentStatus::Required if requirements.is_empty() => return missing(KEY_REQUIREMENTS),
            PaymentStatus::Verified | PaymentStatus::Completed if acceptance.is_none() => return missing(KEY_RECEIPT),
            PaymentStatus::Completed if acceptance.as_ref().is_some_and(|a| a.receipt.is_none()) => {
                return missing("the SP receipt in aep2.dev/receipt");
            }
            PaymentStatus::Verified if acceptance.as_ref().is_some_and(|a| a.receipt.is_some()) => {
                return Err(Error::new(
                    Reason::FieldType,
                    "payment-verified carries no SP receipt (that is payment-completed)",
                ));
            }
            PaymentStatus::Rejected if error.is_none() => return missing(KEY_ERROR),
            _ => {}
        }
        Ok(Some(PaymentInfo {
            status,
            requirements,
            acceptance,
            error,
        }))
    }
}

fn closed<'v>(v: &'v Value, what: &str, required: &[&str], optional: &[&str]) -> Result<&'v Object> {
    let Value::Object(o) = v else {
        return Err(Error::new(Reason::FieldType, format!("{what} must be an object")));
    };
    if let Some((k, _)) = o.iter().find(|(k, _)| !required.contains(k) && !optional.contains(k)) {
        return Err(Error::new(Reason::UnknownField, format!("{what}.{k}")));
    }
    if let Some(k) = required.iter().find(|k| o.get(k).is_none()) {
        return Err(Error::new(Reason::MissingField, format!("{what}.{k}")));
    }
    Ok(o)
}

fn string_member(o: &Object, what: &str, name: &str) -> Result<String> {
    match o.get(name) {
        Some(Value::String(t)) => Ok(t.clone()),
        _ => Err(Error::new(Reason::FieldType, format!("{what}.{name} must be a string"))),
    }
}

fn read_acceptance(v: &Value) -> Result<Acceptance> {
    let o = closed(v, KEY_RECEIPT, &["mandateId", "payer", "amount"], &["receipt"])?;
    let mandate_id = string_member(o, KEY_RECEIPT, "mandateId")?;
    let is_id = mandate_id.len() == 66
        && mandate_id.starts_with("0x")
        && mandate_id[2..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !is_id {
        return Err(Error::new(
            Reason::FieldType,
            "mandateId must be 0x + 64 lowercase hex digits",
        ));
    }
    let amount = string_member(o, KEY_RECEIPT, "amount")?;
    aep2::U256::parse_decimal(&amount).map_err(|e| e.at("aep2.dev/receipt.amount"))?;
    let receipt = match o.get("receipt") {
        None => None,
        Some(r @ Value::Object(_)) => Some(r.clone()),
        Some(_) => return Err(Error::new(Reason::FieldType, "receipt must be an object")),
    };
    Ok(Acceptance {
        mandate_id,
        payer: string_member(o, KEY_RECEIPT, "payer")?,
        amount,
        receipt,
    })
}

fn read_error(v: &Value) -> Result<(Reason, String)> {
    let o = closed(v, KEY_ERROR, &["code", "message"], &[])?;
    let code = string_member(o, KEY_ERROR, "code")?;
    let reason = Reason::ALL
        .iter()
        .copied()
        .find(|r| r.code() == code)
        .ok_or_else(|| Error::new(Reason::FieldType, format!("{code:?} is not a registered reason code")))?;
    Ok((reason, string_member(o, KEY_ERROR, "message")?))
}

/// Parses `text` and returns its request descriptor ([`Message::request_descriptor`]).
pub fn request_descriptor(text: &str) -> Result<String> {
    Message::parse(text)?.request_descriptor()
}

/// Parses `text` and returns its request hash ([`Message::request_hash`]).
pub fn request_hash(text: &str) -> Result<[u8; 32]> {
    Message::parse(text)?.request_hash()
}
