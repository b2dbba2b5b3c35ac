//! x402 v1's `PaymentRequired`, the 402 body of x402 v1 (`aep2.md#x402-mvp`): v1 has no
//! `PAYMENT-REQUIRED` header, so a payee states its terms for v1 clients in the body, built
//! from the same [`PaymentRequirements`] the header carries.

use crate::{PaymentRequired, PaymentRequirements, ResourceInfo, field, integer, members, s, string, version};
use aep2::json::{Object, Value};
use aep2::{Error, Reason, Result};

/// An x402 v1 `PaymentRequirements` entry: the v2 entry with `maxAmountRequired` for `amount`
/// and the resource (`resource`, `description`, `mimeType`, `outputSchema`) in the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequirementsV1 {
    /// `aep2` for AEP2 entries.
    pub scheme: String,
    /// CAIP-2 network ([`crate::network_of`]), as in v2.
    pub network: String,
    /// The price in the asset's smallest unit (decimal string): the v2 `amount`.
    pub max_amount_required: String,
    /// The resource URL.
    pub resource: String,
    /// What the resource is (`""` when the payee gives no description).
    pub description: String,
    /// The resource's MIME type. [`PaymentRequirements::to_v1`] always writes it (`""` when
    /// unknown), since x402 v1 clients require the member; absent only in a parsed entry that
    /// lacked it.
    pub mime_type: Option<String>,
    /// x402 v1's optional `outputSchema` (never written by this crate).
    pub output_schema: Option<Object>,
    /// The payee.
    pub pay_to: String,
    /// Seconds the payee waits for the payment.
    pub max_timeout_seconds: u64,
    /// The token (EVM address or base58 key).
    pub asset: String,
    /// Scheme-specific, as in v2: for `aep2`, `domain`, `quote` (Order Mode) and
    /// `settlementWindow`.
    pub extra: Option<Object>,
}

impl PaymentRequirements {
    /// The x402 v1 form of this entry for `resource`: `maxAmountRequired` = `amount`,
    /// `resource` = `resource.url`, `description` and `mimeType` from `resource` (`""` when
    /// absent), every other member unchanged (`extra` included).
    pub fn to_v1(&self, resource: &ResourceInfo) -> PaymentRequirementsV1 {
        PaymentRequirementsV1 {
            scheme: self.scheme.clone(),
            network: self.network.clone(),
            max_amount_required: self.amount.clone(),
            resource: resource.url.clone(),
            description: resource.description.clone().unwrap_or_default(),
            mime_type: Some(resource.mime_type.clone().unwrap_or_default()),
            output_schema: None,
            pay_to: self.pay_to.clone(),
            max_timeout_seconds: self.max_timeout_seconds,
            asset: self.asset.clone(),
            extra: self.extra.clone(),
        }
    }
}

impl PaymentRequired {
    /// The `accepts` entries in x402 v1 form ([`PaymentRequirements::to_v1`] with this
    /// `resource`), in order.
    pub fn accepts_v1(&self) -> Vec<PaymentRequirementsV1> {
        self.accepts.iter().map(|a| a.to_v1(&self.resource)).collect()
    }
}

fn optional_object(o: &Object, name: &str) -> Result<Option<Object>> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(e)) => Ok(Some(e.clone())),
        Some(other) => Err(Error::new(
            Reason::FieldType,
            format!("{name} must be an object, found {}", other.type_name()),
        )),
    }
}

impl PaymentRequirementsV1 {
    /// The v2 entry: `amount` = `maxAmountRequired`; the resource members are dropped.
    pub fn to_v2(&self) -> PaymentRequirements {
        PaymentRequirements {
            scheme: self.scheme.clone(),
            network: self.network.clone(),
            amount: self.max_amount_required.clone(),
            asset: self.asset.clone(),
            pay_to: self.pay_to.clone(),
            max_timeout_seconds: self.max_timeout_seconds,
            extra: self.extra.clone(),
        }
    }

    /// The JSON object, members in the x402 v1 order.
    pub fn to_json(&self) -> Object {
        let mut o = Object::new()
            .with("scheme", s(&self.scheme))
            .with("network", s(&self.network))
            .with("maxAmountRequired", s(&self.max_amount_required))
            .with("resource", s(&self.resource))
            .with("description", s(&self.description));
        if let Some(m) = &self.mime_type {
            o.insert("mimeType", s(m));
        }
        if let Some(schema) = &self.output_schema {
            o.insert("outputSchema", Value::Object(schema.clone()));
        }
        o.insert("payTo", s(&self.pay_to));
        o.insert("maxTimeoutSeconds", Value::from_u64(self.max_timeout_seconds));
        o.insert("asset", s(&self.asset));
        if let Some(extra) = &self.extra {
            o.insert("extra", Value::Object(extra.clone()));
        }
        o
    }

    /// Reads an entry: the v1 member set (unknown members rejected; `mimeType`, `outputSchema`
    /// and `extra` optional, the last two also as `null`), strings and an integer.
    pub fn from_json(v: &Value) -> Result<PaymentRequirementsV1> {
        let o = members(
            v,
            "PaymentRequirements",
            &[
                "scheme",
                "network",
                "maxAmountRequired",
                "resource",
                "description",
                "payTo",
                "maxTimeoutSeconds",
                "asset",
            ],
            &["mimeType", "outputSchema", "extra"],
        )?;
        let mime_type = match o.get("mimeType") {
            Some(_) => Some(string(o, "mimeType")?.to_owned()),
            None => None,
        };
        Ok(PaymentRequirementsV1 {
            scheme: string(o, "scheme")?.to_owned(),
            network: string(o, "network")?.to_owned(),
            max_amount_required: string(o, "maxAmountRequired")?.to_owned(),
            resource: string(o, "resource")?.to_owned(),
            description: string(o, "description")?.to_owned(),
            mime_type,
            output_schema: optional_object(o, "outputSchema")?,
            pay_to: string(o, "payTo")?.to_owned(),
            max_timeout_seconds: integer(o, "maxTimeoutSeconds")?,
            asset: string(o, "asset")?.to_owned(),
            extra: optional_object(o, "extra")?,
        })
    }

    /// The Order Mode quote in `extra.quote` ([`PaymentRequirements::quote`]).
    pub fn quote(&self) -> Option<Result<aep2::PaymentRequest>> {
        self.extra
            .as_ref()
            .and_then(|e| e.get("quote"))
            .map(aep2::PaymentRequest::from_json)
    }
}

/// x402 v1 `PaymentRequired`, read from a 402 body: `{x402Version: 1, error?, accepts}`. The
/// payee's body also carries the MVP members ([`crate::MvpBody`]), which this type ignores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequiredV1 {
    /// `error`: for an AEP2 payee the MVP code (`PAYMENT_REQUIRED`, …), which v1 clients show as
    /// text.
    pub error: Option<String>,
    /// The acceptable payments.
    pub accepts: Vec<PaymentRequirementsV1>,
}

impl PaymentRequiredV1 {
    /// The JSON object (`x402Version: 1`).
    pub fn to_json(&self) -> Value {
        let mut o = Object::new().with("x402Version", Value::from_u64(1));
        if let Some(e) = &self.error {
            o.insert("error", s(e));
        }
        o.insert(
            "accepts",
            Value::Array(self.accepts.iter().map(|a| Value::Object(a.to_json())).collect()),
        );
        Value::Object(o)
    }

    /// Reads a 402 body's v1 terms: an object with `x402Version` 1 (`field_type` when not a
    /// number, `x402_version_unsupported` for another number), `error` a string when present,
    /// `accepts` an array of v1 entries ([`PaymentRequirementsV1::from_json`]). Other members
    /// (the MVP body's) are ignored.
    pub fn from_json(v: &Value) -> Result<PaymentRequiredV1> {
        let Value::Object(o) = v else {
            return Err(Error::new(
                Reason::FieldType,
                format!("PaymentRequired must be an object, found {}", v.type_name()),
            ));
        };
        version(o, 1)?;
        let error = match o.get("error") {
            Some(_) => Some(string(o, "error")?.to_owned()),
            None => None,
        };
        let Value::Array(items) = field(o, "accepts")? else {
            return Err(Error::new(Reason::FieldType, "accepts must be an array"));
        };
        let accepts = items
            .iter()
            .map(PaymentRequirementsV1::from_json)
            .collect::<Result<_>>()?;
        Ok(PaymentRequiredV1 { error, accepts })
    }

    /// Parses a 402 body (strict JSON within the AEP2 limits) and reads its v1 terms
    /// ([`PaymentRequiredV1::from_json`]).
    pub fn parse_body(body: &[u8]) -> Result<PaymentRequiredV1> {
        PaymentRequiredV1::from_json(&aep2::envelope::decode_json_bytes(body)?)
    }
}
