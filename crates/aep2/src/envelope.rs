//! Wire envelopes: the MVP `X-Payment-Mandate` form and the native AEP2 form
//! (spec `aep2.md#envelopes`, `aep2.md#decoding-rules`).

use crate::codec::{base64_decode, base64_encode};
use crate::error::{Error, Result};
use crate::json::{self, Limits, Object, Value};
use crate::lane::{SignedLane, parse_chain};
use crate::mandate::Mandate;
use crate::profile::{Domain, Profile};
use crate::reason::Reason;
use crate::schema::Fields;
use crate::uint::parse_json_integer;

/// Longest accepted header (base64 text), in bytes. A legitimate envelope is under 1 KiB.
pub const MAX_HEADER_BYTES: usize = 8192;
/// The AEP2 version a native envelope carries.
pub const AEP2_VERSION: u64 = 1;

/// Which envelope form carried a mandate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnvelopeForm {
    /// `{"mandate": …, "payerSig": …}`: profile and domain come from the verifier.
    Mvp,
    /// `{"aep2": 1, "profile", "domain", "mandate", "signature"}`.
    Native,
}

impl EnvelopeForm {
    /// Stable name: `mvp` or `native`.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvelopeForm::Mvp => "mvp",
            EnvelopeForm::Native => "native",
        }
    }
}

/// A mandate with its signature as it travelled, after schema checks and before any
/// signature check. The signature text is decoded in the signature stage, so a malformed
/// signature is never reported as a schema fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedMandate {
    /// The envelope form.
    pub form: EnvelopeForm,
    /// The mandate.
    pub mandate: Mandate,
    /// The domain a native envelope claims (`None` in the MVP form).
    pub domain: Option<Domain>,
    /// The signature text (`payerSig` or `signature`).
    pub signature: String,
    /// The spending-lane chain it is signed under, root first (spec `aep2.md#lane-envelope`);
    /// empty for a mandate signed by its owner.
    pub lanes: Vec<SignedLane>,
}

/// Decodes header text to JSON: length limit, strict base64, UTF-8, strict JSON.
pub fn decode_header(text: &str) -> Result<Value> {
    if text.len() > MAX_HEADER_BYTES {
        return Err(Error::new(
            Reason::HeaderTooLarge,
            format!("{} bytes, limit {MAX_HEADER_BYTES}", text.len()),
        ));
    }
    let bytes = base64_decode(text)?;
    decode_json_bytes(&bytes)
}

/// Decodes envelope JSON bytes (for carriers that embed JSON directly rather than base64).
pub fn decode_json_bytes(bytes: &[u8]) -> Result<Value> {
    if bytes.len() > MAX_HEADER_BYTES {
        return Err(Error::new(
            Reason::HeaderTooLarge,
            format!("{} bytes, limit {MAX_HEADER_BYTES}", bytes.len()),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| Error::new(Reason::Utf8Invalid, e.to_string()))?;
    json::parse(text, &Limits::AEP2)
}

impl SignedMandate {
    /// Decodes a header and checks its schema for the `expected` profile.
    pub fn decode(header: &str, expected: Profile) -> Result<SignedMandate> {
        SignedMandate::from_json(&decode_header(header)?, expected)
    }

    /// Checks the schema of a decoded envelope. A top-level object with an `aep2` member is
    /// a native envelope; anything else is read as the MVP form.
    pub fn from_json(v: &Value, expected: Profile) -> Result<SignedMandate> {
        let Value::Object(obj) = v else {
            return Err(Error::new(
                Reason::FieldType,
                format!("envelope must be an object, found {}", v.type_name()),
            ));
        };
        if obj.get("aep2").is_some() {
            Self::native(obj, expected)
        } else {
            Self::mvp(obj, expected)
        }
    }

    fn mvp(obj: &Object, expected: Profile) -> Result<SignedMandate> {
        let f = Fields::of_with_optional(obj, "envelope", &["mandate", "payerSig"], &["lanes"])?;
        let mandate = Mandate::from_json(expected, f.value("mandate")?)?;
        let signature = f.string("payerSig")?.to_owned();
        let lanes = Self::lanes(obj, expected)?;
        Ok(SignedMandate {
            form: EnvelopeForm::Mvp,
            mandate,
            domain: None,
            signature,
            lanes,
        })
    }

    /// The optional `lanes` member, checked last (spec `aep2.md#lane-envelope`).
    fn lanes(obj: &Object, profile: Profile) -> Result<Vec<SignedLane>> {
        match obj.get("lanes") {
            None => Ok(Vec::new()),
            Some(_) if profile == Profile::SolanaMvp => Err(Error::new(
                Reason::UnsupportedProfile,
                "solana-mvp mandates have no lanes",
            )),
            Some(v) => parse_chain(profile, v),
        }
    }

    fn native(obj: &Object, expected: Profile) -> Result<SignedMandate> {
        let f = Fields::of_with_optional(
            obj,
            "envelope",
            &["aep2", "profile", "domain", "mandate", "signature"],
            &["lanes"],
        )?;
        let version = parse_json_integer(f.number("aep2")?).map_err(|e| e.at("envelope.aep2"))?;
        if version != AEP2_VERSION {
            return Err(Error::new(
                Reason::UnsupportedVersion,
                format!("aep2 version {version}, this implementation speaks {AEP2_VERSION}"),
            ));
        }
        let profile = Profile::parse(f.string("profile")?)?;
        if profile == Profile::SolanaMvp {
            return Err(Error::new(
                Reason::UnsupportedProfile,
                "solana-mvp mandates travel only in the MVP envelope",
            ));
        }
        if profile != expected {
            return Err(Error::new(
                Reason::ProfileMismatch,
                format!("envelope is {profile}, verifier expects {expected}"),
            ));
        }
        let domain = Domain::from_json(profile, f.value("domain")?)?;
        let mandate = Mandate::from_json(profile, f.value("mandate")?)?;
        let signature = f.string("signature")?.to_owned();
        let lanes = Self::lanes(obj, profile)?;
        Ok(SignedMandate {
            form: EnvelopeForm::Native,
            mandate,
            domain: Some(domain),
            signature,
            lanes,
        })
    }

    /// The envelope as JSON, members in definition order and values in canonical form.
    pub fn to_json(&self) -> Value {
        let mandate = Value::Object(self.mandate.to_json());
        let mut obj = match (self.form, &self.domain) {
            (EnvelopeForm::Native, Some(domain)) => Object::new()
                .with("aep2", Value::from_u64(AEP2_VERSION))
                .with("profile", Value::String(self.mandate.profile().as_str().to_owned()))
                .with("domain", domain.to_json().map_or(Value::Null, Value::Object))
                .with("mandate", mandate)
                .with("signature", Value::String(self.signature.clone())),
            _ => Object::new()
                .with("mandate", mandate)
                .with("payerSig", Value::String(self.signature.clone())),
        };
        if !self.lanes.is_empty() {
            obj.insert(
                "lanes",
                Value::Array(self.lanes.iter().map(SignedLane::to_json).collect()),
            );
        }
        Value::Object(obj)
    }

    /// The header value: base64 of the compact JSON. For the MVP form this is byte-identical
    /// to the MVP client's `base64(JSON.stringify({mandate, payerSig}))`.
    pub fn encode(&self) -> String {
        base64_encode(json::to_compact(&self.to_json()).as_bytes())
    }
}
