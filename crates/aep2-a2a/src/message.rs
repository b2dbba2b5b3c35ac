//! A2A messages in their v1.0 and v0.3 spellings, read into one view and written as v1.0
//! (spec `aep2.md#a2a-messages`).
//!
//! The two generations differ in how they tag things: v0.3 puts a `kind` discriminator on the
//! message and on every part (`"text"`, `"file"`, `"data"`) and spells roles `user` / `agent`;
//! v1.0 drops `kind`, tells parts apart by which content member is present (`text`, `raw`,
//! `url`, `data`) and spells roles `ROLE_USER` / `ROLE_AGENT`. A message must be one or the
//! other throughout: a mixture is read by no real A2A peer, so it is rejected rather than
//! guessed at.

use crate::{KEY_PREFIX, KEYS};
use aep2::codec::{base64_decode, base64_encode, hex_encode_0x};
use aep2::json::{self, Limits, Object, Value};
use aep2::{Error, Reason, Result};

/// Longest accepted message text, in bytes (checked before parsing, `header_too_large`).
pub const MAX_MESSAGE_BYTES: usize = 65_536;

/// JSON limits for a whole A2A message. Looser than the envelope limits: text parts and data
/// parts legitimately hold kilobytes and nest deeper. The embedded envelope is re-checked under
/// the envelope limits (`aep2.md#a2a-extraction`).
pub const MESSAGE_LIMITS: Limits = Limits {
    max_depth: 16,
    max_string_bytes: MAX_MESSAGE_BYTES,
    max_members: 128,
    max_number_len: 32,
};

/// The A2A protocol generation a message was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum A2aVersion {
    /// A2A v1.0: member-tagged parts, `ROLE_*` roles.
    V1_0,
    /// A2A v0.3: `kind`-tagged message and parts, lowercase roles.
    V0_3,
}

impl A2aVersion {
    /// `1.0` or `0.3`.
    pub const fn as_str(self) -> &'static str {
        match self {
            A2aVersion::V1_0 => "1.0",
            A2aVersion::V0_3 => "0.3",
        }
    }
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The client (in AEP2 terms, the payer).
    User,
    /// The remote agent (the payee).
    Agent,
}

impl Role {
    /// The v1.0 spelling.
    pub const fn v1(self) -> &'static str {
        match self {
            Role::User => "ROLE_USER",
            Role::Agent => "ROLE_AGENT",
        }
    }

    /// The v0.3 spelling.
    pub const fn v0_3(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Agent => "agent",
        }
    }
}

/// What a part holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartContent {
    /// Text (`text`).
    Text(String),
    /// A file by reference (v1.0 `url`, v0.3 `file.uri`).
    Url(String),
    /// A file by value (v1.0 `raw`, v0.3 `file.bytes`), decoded from canonical base64.
    Raw(Vec<u8>),
    /// Structured data (`data`; v0.3 allows only an object).
    Data(Value),
}

/// One part of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The content.
    pub content: PartContent,
    /// v1.0 `filename` (v0.3 `file.name`).
    pub filename: Option<String>,
    /// v1.0 `mediaType` (v0.3 `file.mimeType`).
    pub media_type: Option<String>,
    /// The part's metadata (empty when absent).
    pub metadata: Object,
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Part {
        Part::of(PartContent::Text(text.into()))
    }

    /// A data part.
    pub fn data(value: Value) -> Part {
        Part::of(PartContent::Data(value))
    }

    /// A part with no filename, media type or metadata.
    pub fn of(content: PartContent) -> Part {
        Part {
            content,
            filename: None,
            media_type: None,
            metadata: Object::new(),
        }
    }

    /// The v1.0 JSON object.
    pub fn to_json(&self) -> Value {
        let mut o = match &self.content {
            PartContent::Text(t) => Object::new().with("text", s(t)),
            PartContent::Url(u) => Object::new().with("url", s(u)),
            PartContent::Raw(b) => Object::new().with("raw", s(base64_encode(b))),
            PartContent::Data(d) => Object::new().with("data", d.clone()),
        };
        if !self.metadata.is_empty() {
            o.insert("metadata", Value::Object(self.metadata.clone()));
        }
        if let Some(f) = &self.filename {
            o.insert("filename", s(f));
        }
        if let Some(m) = &self.media_type {
            o.insert("mediaType", s(m));
        }
        Value::Object(o)
    }

    /// The v0.3 JSON object (`kind`-tagged; a file part's name and media type inside `file`).
    pub fn to_json_v0_3(&self) -> Value {
        let mut o = match &self.content {
            PartContent::Text(t) => Object::new().with("kind", s("text")).with("text", s(t)),
            PartContent::Data(d) => {
                let data = match d {
                    Value::Object(_) => d.clone(),
                    other => Value::Object(Object::new().with("value", other.clone())),
                };
                Object::new().with("kind", s("data")).with("data", data)
            }
            PartContent::Url(_) | PartContent::Raw(_) => {
                let mut f = match &self.content {
                    PartContent::Url(u) => Object::new().with("uri", s(u)),
                    PartContent::Raw(b) => Object::new().with("bytes", s(base64_encode(b))),
                    _ => Object::new(),
                };
                if let Some(n) = &self.filename {
                    f.insert("name", s(n));
                }
                if let Some(m) = &self.media_type {
                    f.insert("mimeType", s(m));
                }
                Object::new().with("kind", s("file")).with("file", Value::Object(f))
            }
        };
        if !self.metadata.is_empty() {
            o.insert("metadata", Value::Object(self.metadata.clone()));
        }
        Value::Object(o)
    }

    /// The part's entry in the request descriptor: content in v1.0 names, file bytes replaced by
    /// their SHA-256 (`rawSha256`, lowercase hex), metadata left out.
    fn descriptor(&self) -> Value {
        let mut o = match &self.content {
            PartContent::Text(t) => Object::new().with("text", s(t)),
            PartContent::Url(u) => Object::new().with("url", s(u)),
            PartContent::Raw(b) => Object::new().with("rawSha256", s(&hex_encode_0x(&aep2::hash::sha256(b))[2..])),
            PartContent::Data(d) => Object::new().with("data", d.clone()),
        };
        if let Some(f) = &self.filename {
            o.insert("filename", s(f));
        }
        if let Some(m) = &self.media_type {
            o.insert("mediaType", s(m));
        }
        Value::Object(o)
    }
}

/// An A2A `Message`, normalised from either generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The generation it was read in (what [`Message::to_json`] writes is always v1.0).
    pub version: A2aVersion,
    /// `messageId`.
    pub message_id: String,
    /// `contextId`.
    pub context_id: Option<String>,
    /// `taskId`.
    pub task_id: Option<String>,
    /// `role`.
    pub role: Role,
    /// `parts` (at least one).
    pub parts: Vec<Part>,
    /// `metadata` (empty when absent).
    pub metadata: Object,
    /// `extensions`: URIs of the extensions that contributed to the message.
    pub extensions: Vec<String>,
    /// `referenceTaskIds`.
    pub reference_task_ids: Vec<String>,
}

const V1_MEMBERS: [&str; 8] = [
    "messageId",
    "contextId",
    "taskId",
    "role",
    "parts",
    "metadata",
    "extensions",
    "referenceTaskIds",
];

fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

fn bad(detail: impl Into<String>) -> Error {
    Error::new(Reason::A2aMessageInvalid, detail.into())
}

fn string_of<'v>(v: &'v Value, what: &str) -> Result<&'v str> {
    match v {
        Value::String(t) => Ok(t),
        other => Err(bad(format!("{what} must be a string, found {}", other.type_name()))),
    }
}

fn object_of<'v>(v: &'v Value, what: &str) -> Result<&'v Object> {
    match v {
        Value::Object(o) => Ok(o),
        other => Err(bad(format!("{what} must be an object, found {}", other.type_name()))),
    }
}

fn strings_of(v: &Value, what: &str) -> Result<Vec<String>> {
    let Value::Array(items) = v else {
        return Err(bad(format!("{what} must be an array, found {}", v.type_name())));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, x)| string_of(x, &format!("{what}[{i}]")).map(str::to_owned))
        .collect()
}

fn only(o: &Object, what: &str, allowed: &[&str]) -> Result<()> {
    match o.iter().find(|(k, _)| !allowed.contains(k)) {
        Some((k, _)) => Err(bad(format!("{what} has the unknown member {k:?}"))),
        None => Ok(()),
    }
}

/// A metadata object; keys under the AEP2 prefix must be ones this binding defines, so that a
/// misspelt key (`aep2.dev/Mandate`) is an error rather than silently ignored.
fn metadata_of(v: Option<&Value>, what: &str) -> Result<Object> {
    let Some(v) = v else { return Ok(Object::new()) };
    let o = object_of(v, what)?;
    for (k, _) in o.iter() {
        let under_prefix = k.len() >= KEY_PREFIX.len()
            && k.is_char_boundary(KEY_PREFIX.len())
            && k[..KEY_PREFIX.len()].eq_ignore_ascii_case(KEY_PREFIX);
        if under_prefix && !KEYS.contains(&k) {
            return Err(bad(format!("{what} has the undefined AEP2 key {k:?}")));
        }
    }
    Ok(o.clone())
}

fn optional_string(o: &Object, name: &str, what: &str) -> Result<Option<String>> {
    o.get(name)
        .map(|v| string_of(v, &format!("{what}.{name}")).map(str::to_owned))
        .transpose()
}

impl Message {
    /// A message with the given role, id and parts, and nothing else.
    pub fn new(role: Role, message_id: impl Into<String>, parts: Vec<Part>) -> Message {
        Message {
            version: A2aVersion::V1_0,
            message_id: message_id.into(),
            context_id: None,
            task_id: None,
            role,
            parts,
            metadata: Object::new(),
            extensions: Vec::new(),
            reference_task_ids: Vec::new(),
        }
    }

    /// Sets `contextId`.
    #[must_use]
    pub fn with_context_id(mut self, id: impl Into<String>) -> Message {
        self.context_id = Some(id.into());
        self
    }

    /// Sets `taskId`.
    #[must_use]
    pub fn with_task_id(mut self, id: impl Into<String>) -> Message {
        self.task_id = Some(id.into());
        self
    }

    /// Adds `uri` to `extensions` unless it is already listed.
    pub fn add_extension(&mut self, uri: &str) {
        if !self.extensions.iter().any(|u| u == uri) {
            self.extensions.push(uri.to_owned());
        }
    }

    /// Parses message text: the size limit (`header_too_large`), strict JSON within
    /// [`MESSAGE_LIMITS`] (`json_invalid`, `json_duplicate_key`, `json_limit_exceeded`), then
    /// [`Message::from_json`].
    pub fn parse(text: &str) -> Result<Message> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(Error::new(
                Reason::HeaderTooLarge,
                format!("message is {} bytes, limit {MAX_MESSAGE_BYTES}", text.len()),
            ));
        }
        Message::from_json(&json::parse(text, &MESSAGE_LIMITS)?)
    }

    /// Reads a message object in either generation. A top-level `kind` member selects v0.3 (it
    /// must be `"message"`); its absence selects v1.0. Then, all `a2a_message_invalid`: unknown
    /// members, `messageId` (a non-empty string), `role` and `parts` (a non-empty array)
    /// missing, members of the wrong type, a role or part not spelt for that generation, part
    /// content that is not exactly one of text, file and data, `raw` / `bytes` that is not
    /// canonical base64, a v0.3 `data` that is not an object, metadata that is not an object,
    /// and keys under `aep2.dev/` that this binding does not define.
    pub fn from_json(v: &Value) -> Result<Message> {
        let o = object_of(v, "message")?;
        let version = match o.get("kind") {
            None => A2aVersion::V1_0,
            Some(Value::String(k)) if k == "message" => A2aVersion::V0_3,
            Some(other) => {
                return Err(bad(format!(
                    "message kind must be \"message\", found {}",
                    json::to_compact(other)
                )));
            }
        };
        match version {
            A2aVersion::V1_0 => only(o, "message", &V1_MEMBERS)?,
            A2aVersion::V0_3 => {
                let mut allowed = V1_MEMBERS.to_vec();
                allowed.push("kind");
                only(o, "message", &allowed)?;
            }
        }
        for name in ["messageId", "role", "parts"] {
            if o.get(name).is_none() {
                return Err(bad(format!("message.{name} is missing")));
            }
        }
        let message_id = string_of(o.get("messageId").unwrap_or(&Value::Null), "message.messageId")?;
        if message_id.is_empty() {
            return Err(bad("message.messageId is empty"));
        }
        let context_id = optional_string(o, "contextId", "message")?;
        let task_id = optional_string(o, "taskId", "message")?;
        let role_text = string_of(o.get("role").unwrap_or(&Value::Null), "message.role")?;
        let role = [Role::User, Role::Agent]
            .into_iter()
            .find(|r| match version {
                A2aVersion::V1_0 => r.v1() == role_text,
                A2aVersion::V0_3 => r.v0_3() == role_text,
            })
            .ok_or_else(|| bad(format!("role {role_text:?} is not an A2A v{} role", version.as_str())))?;
        let Some(Value::Array(raw_parts)) = o.get("parts") else {
            return Err(bad("message.parts must be an array"));
        };
        if raw_parts.is_empty() {
            return Err(bad("message.parts is empty: a message must carry content"));
        }
        let parts = raw_parts
            .iter()
            .enumerate()
            .map(|(i, p)| read_part(p, version, &format!("parts[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let metadata = metadata_of(o.get("metadata"), "message.metadata")?;
        let extensions = o
            .get("extensions")
            .map(|v| strings_of(v, "message.extensions"))
            .transpose()?
            .unwrap_or_default();
        let reference_task_ids = o
            .get("referenceTaskIds")
            .map(|v| strings_of(v, "message.referenceTaskIds"))
            .transpose()?
            .unwrap_or_default();
        Ok(Message {
            version,
            message_id: message_id.to_owned(),
            context_id,
            task_id,
            role,
            parts,
            metadata,
            extensions,
            reference_task_ids,
        })
    }

    /// The v1.0 JSON object (members in the order of the A2A v1.0 `Message`; empty metadata,
    /// extensions and reference lists left out).
    pub fn to_json(&self) -> Value {
        let mut o = Object::new().with("messageId", s(&self.message_id));
        if let Some(c) = &self.context_id {
            o.insert("contextId", s(c));
        }
        if let Some(t) = &self.task_id {
            o.insert("taskId", s(t));
        }
        o.insert("role", s(self.role.v1()));
        o.insert("parts", Value::Array(self.parts.iter().map(Part::to_json).collect()));
        if !self.metadata.is_empty() {
            o.insert("metadata", Value::Object(self.metadata.clone()));
        }
        if !self.extensions.is_empty() {
            o.insert("extensions", Value::Array(self.extensions.iter().map(s).collect()));
        }
        if !self.reference_task_ids.is_empty() {
            o.insert(
                "referenceTaskIds",
                Value::Array(self.reference_task_ids.iter().map(s).collect()),
            );
        }
        Value::Object(o)
    }

    /// The v0.3 JSON object: `kind: "message"`, roles `user` / `agent`, `kind`-tagged parts
    /// (`text`, `file` with `uri` or `bytes`, `data`), for answering a v0.3 client in its own
    /// shapes. A data part whose value is not an object (v0.3 allows only objects) is wrapped as
    /// `{"value": …}`.
    pub fn to_json_v0_3(&self) -> Value {
        let mut o = Object::new()
            .with("kind", s("message"))
            .with("messageId", s(&self.message_id));
        if let Some(c) = &self.context_id {
            o.insert("contextId", s(c));
        }
        if let Some(t) = &self.task_id {
            o.insert("taskId", s(t));
        }
        o.insert("role", s(self.role.v0_3()));
        o.insert(
            "parts",
            Value::Array(self.parts.iter().map(Part::to_json_v0_3).collect()),
        );
        if !self.metadata.is_empty() {
            o.insert("metadata", Value::Object(self.metadata.clone()));
        }
        if !self.extensions.is_empty() {
            o.insert("extensions", Value::Array(self.extensions.iter().map(s).collect()));
        }
        if !self.reference_task_ids.is_empty() {
            o.insert(
                "referenceTaskIds",
                Value::Array(self.reference_task_ids.iter().map(s).collect()),
            );
        }
        Value::Object(o)
    }

    /// The JSON object in the spelling of `version` ([`Message::to_json`] or
    /// [`Message::to_json_v0_3`]).
    pub fn to_json_for(&self, version: A2aVersion) -> Value {
        match version {
            A2aVersion::V1_0 => self.to_json(),
            A2aVersion::V0_3 => self.to_json_v0_3(),
        }
    }

    /// The compact v1.0 JSON text.
    pub fn to_text(&self) -> String {
        json::to_compact(&self.to_json())
    }

    /// The canonical A2A request descriptor (`aep2.md#a2a-request-hash`), as JCS text:
    /// `{"contextId"?, "parts", "referenceTaskIds"?, "taskId"?}` with each part as
    /// `{"text"} | {"url"} | {"data"} | {"rawSha256"}` plus `filename` and `mediaType` when
    /// present. `messageId`, `role`, `extensions` and all metadata (the AEP2 keys included) are
    /// left out. Only a user message is a request: an agent message is
    /// `request_descriptor_invalid`.
    pub fn request_descriptor(&self) -> Result<String> {
        if self.role != Role::User {
            return Err(Error::new(
                Reason::RequestDescriptorInvalid,
                "only a user (payer) message is a request that can be paid for",
            ));
        }
        let mut o = Object::new().with("parts", Value::Array(self.parts.iter().map(Part::descriptor).collect()));
        if let Some(c) = &self.context_id {
            o.insert("contextId", s(c));
        }
        if let Some(t) = &self.task_id {
            o.insert("taskId", s(t));
        }
        if !self.reference_task_ids.is_empty() {
            o.insert(
                "referenceTaskIds",
                Value::Array(self.reference_task_ids.iter().map(s).collect()),
            );
        }
        Ok(json::to_canonical(&Value::Object(o)))
    }

    /// `SHA-256("AEP2/a2a-message/v1" ‖ 0x00 ‖ request_descriptor)`: the `ref` a payer signs in
    /// Intent Mode and the expected request hash of the payee's policy.
    pub fn request_hash(&self) -> Result<[u8; 32]> {
        let descriptor = self.request_descriptor()?;
        Ok(aep2::hash::sha256(
            &[crate::A2A_MESSAGE_TAG, descriptor.as_bytes()].concat(),
        ))
    }
}

fn read_part(v: &Value, version: A2aVersion, what: &str) -> Result<Part> {
    let o = object_of(v, what)?;
    match version {
        A2aVersion::V1_0 => {
            if o.get("kind").is_some() {
                return Err(bad(format!(
                    "{what} has a v0.3 kind discriminator inside a v1.0 message"
                )));
            }
            only(
                o,
                what,
                &["text", "raw", "url", "data", "metadata", "filename", "mediaType"],
            )?;
            let present: Vec<&str> = ["text", "raw", "url", "data"]
                .into_iter()
                .filter(|k| o.get(k).is_some())
                .collect();
            let [which] = present.as_slice() else {
                return Err(bad(format!(
                    "{what} must have exactly one of text, raw, url, data; found {}",
                    present.len()
                )));
            };
            let value = o.get(which).unwrap_or(&Value::Null);
            let content = match *which {
                "text" => PartContent::Text(string_of(value, &format!("{what}.text"))?.to_owned()),
                "url" => PartContent::Url(string_of(value, &format!("{what}.url"))?.to_owned()),
                "raw" => PartContent::Raw(bytes_of(value, &format!("{what}.raw"))?),
                _ => PartContent::Data(value.clone()),
            };
            Ok(Part {
                content,
                filename: optional_string(o, "filename", what)?,
                media_type: optional_string(o, "mediaType", what)?,
                metadata: metadata_of(o.get("metadata"), &format!("{what}.metadata"))?,
            })
        }
        A2aVersion::V0_3 => {
            let kind = match o.get("kind") {
                Some(k) => string_of(k, &format!("{what}.kind"))?,
                None => {
                    return Err(bad(format!("{what} has no kind discriminator inside a v0.3 message")));
                }
            };
            let metadata = metadata_of(o.get("metadata"), &format!("{what}.metadata"))?;
            let need = |name: &str| {
                o.get(name)
                    .ok_or_else(|| bad(format!("{what} of kind {kind:?} has no {name}")))
            };
            match kind {
                "text" => {
                    only(o, what, &["kind", "text", "metadata"])?;
                    let text = string_of(need("text")?, &format!("{what}.text"))?;
                    Ok(Part {
                        metadata,
                        ..Part::text(text)
                    })
                }
                "data" => {
                    only(o, what, &["kind", "data", "metadata"])?;
                    let data = need("data")?;
                    object_of(data, &format!("{what}.data"))?;
                    Ok(Part {
                        metadata,
                        ..Part::data(data.clone())
                    })
                }
                "file" => {
                    only(o, what, &["kind", "file", "metadata"])?;
                    let file_what = format!("{what}.file");
                    let f = object_of(need("file")?, &file_what)?;
                    only(f, &file_what, &["uri", "bytes", "name", "mimeType"])?;
                    let content = match (f.get("uri"), f.get("bytes")) {
                        (Some(u), None) => PartContent::Url(string_of(u, &format!("{file_what}.uri"))?.to_owned()),
                        (None, Some(b)) => PartContent::Raw(bytes_of(b, &format!("{file_what}.bytes"))?),
                        _ => {
                            return Err(bad(format!("{file_what} must have exactly one of uri, bytes")));
                        }
                    };
                    Ok(Part {
                        content,
                        filename: optional_string(f, "name", &file_what)?,
                        media_type: optional_string(f, "mimeType", &file_what)?,
                        metadata,
                    })
                }
                other => Err(bad(format!("{what} has the unknown v0.3 kind {other:?}"))),
            }
        }
    }
}

fn bytes_of(v: &Value, what: &str) -> Result<Vec<u8>> {
    let text = string_of(v, what)?;
    base64_decode(text).map_err(|e| bad(format!("{what} is not canonical standard base64 ({})", e.code())))
}
