//! The AgentCard declaration of the AEP2 extension (spec `aep2.md#a2a-extension`).

use crate::EXTENSION_URI;
use aep2::envelope::AEP2_VERSION;
use aep2::json::{Object, Value};
use aep2::schema::Fields;
use aep2::uint::parse_json_integer;
use aep2::{Domain, Error, Profile, Reason, Result, SpId};

/// The most `accepts` entries an extension declaration may list.
pub const MAX_ACCEPTS: usize = 16;

/// How a payee agent takes payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The payer attaches a mandate to its first message (`aep2.md#a2a-intent`).
    Intent,
    /// The payee quotes in an `input-required` task status first (`aep2.md#a2a-order`).
    Order,
}

impl Mode {
    /// `intent` or `order`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Intent => "intent",
            Mode::Order => "order",
        }
    }
}

/// One deployment a payee agent accepts mandates for, with the SP it forwards them to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Accept {
    /// The profile and domain ([`Domain::SolanaMvp`] for `solana-mvp`).
    pub domain: Domain,
    /// The settlement processor whose receipts the payee accepts (an EVM address for `eip712`,
    /// a base58 key otherwise).
    pub settlement_processor: SpId,
}

/// The `AgentExtension` entry of `AgentCard.capabilities.extensions[]` for AEP2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aep2Extension {
    /// Human-readable description (`description`).
    pub description: String,
    /// Whether the agent serves only clients that activate the extension (`required`).
    pub required: bool,
    /// `params.accepts`: 1 ..= [`MAX_ACCEPTS`] deployments.
    pub accepts: Vec<Accept>,
    /// `params.modes`: the payment modes offered, at least one, no repeats.
    pub modes: Vec<Mode>,
}

fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

fn type_err(detail: impl Into<String>) -> Error {
    Error::new(Reason::FieldType, detail.into())
}

impl Aep2Extension {
    /// The `AgentExtension` JSON object: `{uri, description, required, params: {aep2: 1,
    /// accepts: [{profile, domain?, settlementProcessor}], modes}}`.
    pub fn to_json(&self) -> Value {
        let accepts = self
            .accepts
            .iter()
            .map(|a| {
                let mut o = Object::new().with("profile", s(a.domain.profile().as_str()));
                if let Some(d) = a.domain.to_json() {
                    o.insert("domain", Value::Object(d));
                }
                Value::Object(o.with("settlementProcessor", s(a.settlement_processor.to_string())))
            })
            .collect();
        let params = Object::new()
            .with("aep2", Value::from_u64(AEP2_VERSION))
            .with("accepts", Value::Array(accepts))
            .with(
                "modes",
                Value::Array(self.modes.iter().map(|m| s(m.as_str())).collect()),
            );
        Value::Object(
            Object::new()
                .with("uri", s(EXTENSION_URI))
                .with("description", s(&self.description))
                .with("required", Value::Bool(self.required))
                .with("params", Value::Object(params)),
        )
    }

    /// Reads an `AgentExtension` entry for AEP2. The entry and `params` are closed objects
    /// (`unknown_field`, `missing_field`, `field_type`; `description` and `required` may be
    /// absent: empty and false); `uri` must be [`EXTENSION_URI`] (`field_type`); `params.aep2`
    /// must be 1 (`unsupported_version`); each `accepts` entry names a registered profile
    /// (`unsupported_profile`), a domain unless `solana-mvp` (`domain_invalid`) and an SP of
    /// the profile's key kind (`address_invalid`, `address_checksum`); `modes` is a non-empty
    /// list of distinct `intent` / `order` (`field_type`).
    pub fn from_json(v: &Value) -> Result<Aep2Extension> {
        let Value::Object(o) = v else {
            return Err(type_err(format!(
                "extension must be an object, found {}",
                v.type_name()
            )));
        };
        closed(o, "extension", &["uri", "params"], &["description", "required"])?;
        let Some(Value::String(uri)) = o.get("uri") else {
            return Err(type_err("extension.uri must be a string"));
        };
        if uri != EXTENSION_URI {
            return Err(type_err(format!("extension.uri {uri:?} is not {EXTENSION_URI}")));
        }
        let description = match o.get("description") {
            None => String::new(),
            Some(Value::String(d)) => d.clone(),
            Some(_) => return Err(type_err("extension.description must be a string")),
        };
        let required = match o.get("required") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(type_err("extension.required must be a boolean")),
        };
        let params = Fields::new(
            o.get("params").unwrap_or(&Value::Null),
            "params",
            &["aep2", "accepts", "modes"],
        )?;
        let version = parse_json_integer(params.number("aep2")?).map_err(|e| e.at("params.aep2"))?;
        if version != AEP2_VERSION {
            return Err(Error::new(
                Reason::UnsupportedVersion,
                format!("params.aep2 is {version}, this implementation speaks {AEP2_VERSION}"),
            ));
        }
        let Value::Array(items) = params.value("accepts")? else {
            return Err(type_err("params.accepts must be an array"));
        };
        if items.is_empty() || items.len() > MAX_ACCEPTS {
            return Err(type_err(format!("params.accepts must list 1..={MAX_ACCEPTS} entries")));
        }
        let accepts = items
            .iter()
            .enumerate()
            .map(|(i, a)| read_accept(a).map_err(|e| e.at(&format!("params.accepts[{i}]"))))
            .collect::<Result<Vec<_>>>()?;
        let Value::Array(mode_items) = params.value("modes")? else {
            return Err(type_err("params.modes must be an array"));
        };
        let mut modes = Vec::new();
        for m in mode_items {
            let mode = match m {
                Value::String(t) if t == "intent" => Mode::Intent,
                Value::String(t) if t == "order" => Mode::Order,
                other => return Err(type_err(format!("params.modes: {other:?} is not intent or order"))),
            };
            if modes.contains(&mode) {
                return Err(type_err(format!("params.modes lists {} twice", mode.as_str())));
            }
            modes.push(mode);
        }
        if modes.is_empty() {
            return Err(type_err("params.modes is empty"));
        }
        Ok(Aep2Extension {
            description,
            required,
            accepts,
            modes,
        })
    }

    /// Finds and reads the AEP2 entry of an AgentCard (`capabilities.extensions[]` with
    /// `uri` = [`EXTENSION_URI`]). `Ok(None)` when the card declares none; the card itself is
    /// A2A's and is not otherwise checked. Two AEP2 entries are `payment_ambiguous`.
    pub fn find(card: &Value) -> Result<Option<Aep2Extension>> {
        let extensions = match card {
            Value::Object(c) => match c.get("capabilities") {
                Some(Value::Object(caps)) => caps.get("extensions"),
                _ => None,
            },
            _ => None,
        };
        let Some(Value::Array(entries)) = extensions else {
            return Ok(None);
        };
        let mut found = entries.iter().filter(|e| match e {
            Value::Object(o) => matches!(o.get("uri"), Some(Value::String(u)) if u == EXTENSION_URI),
            _ => false,
        });
        let first = found.next();
        if found.next().is_some() {
            return Err(Error::new(
                Reason::PaymentAmbiguous,
                "the card declares the AEP2 extension twice",
            ));
        }
        first.map(Aep2Extension::from_json).transpose()
    }

    /// The entry for `domain`, if the agent accepts it.
    pub fn accept_for(&self, domain: &Domain) -> Option<&Accept> {
        self.accepts.iter().find(|a| a.domain == *domain)
    }
}

fn closed(o: &Object, what: &str, required: &[&str], optional: &[&str]) -> Result<()> {
    if let Some((k, _)) = o.iter().find(|(k, _)| !required.contains(k) && !optional.contains(k)) {
        return Err(Error::new(Reason::UnknownField, format!("{what}.{k}")));
    }
    if let Some(k) = required.iter().find(|k| o.get(k).is_none()) {
        return Err(Error::new(Reason::MissingField, format!("{what}.{k}")));
    }
    Ok(())
}

fn read_accept(v: &Value) -> Result<Accept> {
    let Value::Object(o) = v else {
        return Err(type_err("an accepts entry must be an object"));
    };
    // The member set depends on the profile, as in a quote: solana-mvp has no domain.
    let solana = matches!(o.get("profile"), Some(Value::String(p)) if p == Profile::SolanaMvp.as_str());
    if solana {
        closed(o, "accept", &["profile", "settlementProcessor"], &[])?;
    } else {
        closed(o, "accept", &["profile", "domain", "settlementProcessor"], &[])?;
    }
    let Some(Value::String(p)) = o.get("profile") else {
        return Err(type_err("profile must be a string"));
    };
    let profile = Profile::parse(p)?;
    let domain = match o.get("domain") {
        Some(d) => Domain::from_json(profile, d)?,
        None => Domain::SolanaMvp,
    };
    let Some(Value::String(sp)) = o.get("settlementProcessor") else {
        return Err(type_err("settlementProcessor must be a string"));
    };
    let settlement_processor = SpId::parse(sp)?;
    let fits = matches!(
        (profile, settlement_processor),
        (Profile::Eip712, SpId::Evm(_)) | (Profile::Ed25519 | Profile::SolanaMvp, SpId::Ed25519(_))
    );
    if !fits {
        return Err(Error::new(
            Reason::AddressInvalid,
            format!("settlementProcessor is not a {profile} key"),
        ));
    }
    Ok(Accept {
        domain,
        settlement_processor,
    })
}

/// One skill of an [`AgentCard`] (A2A `AgentSkill`: `id`, `name`, `description`, `tags`,
/// `examples`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skill {
    /// `id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `tags`.
    pub tags: Vec<String>,
    /// `examples`.
    pub examples: Vec<String>,
}

impl Skill {
    fn to_json(&self) -> Value {
        let strings = |v: &[String]| Value::Array(v.iter().map(s).collect());
        let mut o = Object::new()
            .with("id", s(&self.id))
            .with("name", s(&self.name))
            .with("description", s(&self.description))
            .with("tags", strings(&self.tags));
        if !self.examples.is_empty() {
            o.insert("examples", strings(&self.examples));
        }
        Value::Object(o)
    }
}

/// A paid agent's A2A `AgentCard`, served at `/.well-known/agent-card.json`
/// (spec `aep2.md#a2a-discovery`), with the AEP2 extension in `capabilities.extensions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentCard {
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// The agent's own version (`version`).
    pub version: String,
    /// The JSON-RPC endpoint (`supportedInterfaces[].url`, v0.3 `url`).
    pub url: String,
    /// The AEP2 declaration.
    pub extension: Aep2Extension,
    /// `skills` (A2A requires the member; it may be empty).
    pub skills: Vec<Skill>,
    /// `defaultInputModes` / `defaultOutputModes` (media types).
    pub media_types: Vec<String>,
}

impl AgentCard {
    /// The card as an A2A v1.0 client reads it: `supportedInterfaces` lists the endpoint once
    /// per protocol version it answers (`1.0` first, the preferred one, then `0.3`), binding
    /// `JSONRPC`.
    pub fn to_json_v1(&self) -> Value {
        let interface = |version: &str| {
            Value::Object(
                Object::new()
                    .with("url", s(&self.url))
                    .with("protocolBinding", s("JSONRPC"))
                    .with("protocolVersion", s(version)),
            )
        };
        let mut o = Object::new()
            .with("name", s(&self.name))
            .with("description", s(&self.description))
            .with(
                "supportedInterfaces",
                Value::Array(vec![interface("1.0"), interface("0.3")]),
            )
            .with("version", s(&self.version));
        self.common(&mut o);
        Value::Object(o)
    }

    /// The card as an A2A v0.3 client reads it: `protocolVersion` `0.3.0`, `url` and
    /// `preferredTransport` `JSONRPC`, no v1.0 members.
    pub fn to_json_v0_3(&self) -> Value {
        let mut o = Object::new()
            .with("protocolVersion", s("0.3.0"))
            .with("name", s(&self.name))
            .with("description", s(&self.description))
            .with("url", s(&self.url))
            .with("preferredTransport", s("JSONRPC"))
            .with("version", s(&self.version));
        self.common(&mut o);
        Value::Object(o)
    }

    fn common(&self, o: &mut Object) {
        let capabilities = Object::new()
            .with("streaming", Value::Bool(false))
            .with("pushNotifications", Value::Bool(false))
            .with("extensions", Value::Array(vec![self.extension.to_json()]));
        let modes = Value::Array(self.media_types.iter().map(s).collect());
        o.insert("capabilities", Value::Object(capabilities));
        o.insert("defaultInputModes", modes.clone());
        o.insert("defaultOutputModes", modes);
        o.insert("skills", Value::Array(self.skills.iter().map(Skill::to_json).collect()));
    }
}
