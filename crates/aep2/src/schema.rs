//! Shape checks shared by every wire object (spec `aep2.md#mandate-json-types`).
//!
//! The order is normative so that every implementation reports the same code for an object
//! with several faults: first an unknown member (document order), then a missing member
//! (definition order), then each member's JSON type and format (definition order).

use crate::error::{Error, Result};
use crate::json::{Object, Value};
use crate::reason::Reason;

/// A closed object whose member set has been checked.
pub struct Fields<'a> {
    obj: &'a Object,
    what: &'static str,
}

impl<'a> Fields<'a> {
    /// Checks that `v` is an object with exactly the members `names`.
    pub fn new(v: &'a Value, what: &'static str, names: &[&str]) -> Result<Fields<'a>> {
        let Value::Object(obj) = v else {
            return Err(Error::new(
                Reason::FieldType,
                format!("{what} must be an object, found {}", v.type_name()),
            ));
        };
        Self::of(obj, what, names)
    }

    /// Like [`Fields::new`] for an object already in hand.
    pub fn of(obj: &'a Object, what: &'static str, names: &[&str]) -> Result<Fields<'a>> {
        Self::checked(obj, what, names, &[])
    }

    /// Like [`Fields::with_optional`] for an object already in hand.
    pub fn of_with_optional(
        obj: &'a Object,
        what: &'static str,
        required: &[&str],
        optional: &[&str],
    ) -> Result<Fields<'a>> {
        Self::checked(obj, what, required, optional)
    }

    /// Checks that `v` is an object with all the members `required`, any of `optional`, and
    /// no others (host-protocol objects such as x402's have optional members; AEP2's own do not).
    pub fn with_optional(v: &'a Value, what: &'static str, required: &[&str], optional: &[&str]) -> Result<Fields<'a>> {
        let Value::Object(obj) = v else {
            return Err(Error::new(
                Reason::FieldType,
                format!("{what} must be an object, found {}", v.type_name()),
            ));
        };
        Self::checked(obj, what, required, optional)
    }

    fn checked(obj: &'a Object, what: &'static str, names: &[&str], optional: &[&str]) -> Result<Fields<'a>> {
        if let Some((k, _)) = obj.iter().find(|(k, _)| !names.contains(k) && !optional.contains(k)) {
            return Err(Error::new(
                Reason::UnknownField,
                format!("{what}: unknown member {k:?}"),
            ));
        }
        if let Some(missing) = names.iter().find(|n| obj.get(n).is_none()) {
            return Err(Error::new(
                Reason::MissingField,
                format!("{what}: missing member {missing:?}"),
            ));
        }
        Ok(Fields { obj, what })
    }

    /// The checked object.
    pub fn object(&self) -> &'a Object {
        self.obj
    }

    /// The raw member (present by construction).
    pub fn value(&self, name: &str) -> Result<&'a Value> {
        self.obj
            .get(name)
            .ok_or_else(|| Error::new(Reason::MissingField, format!("{}: missing member {name:?}", self.what)))
    }

    /// A string member.
    pub fn string(&self, name: &str) -> Result<&'a str> {
        match self.value(name)? {
            Value::String(s) => Ok(s),
            other => Err(self.type_err(name, "string", other)),
        }
    }

    /// A number member, as its token text.
    pub fn number(&self, name: &str) -> Result<&'a str> {
        match self.value(name)? {
            Value::Number(n) => Ok(n),
            other => Err(self.type_err(name, "integer", other)),
        }
    }

    fn type_err(&self, name: &str, want: &str, got: &Value) -> Error {
        Error::new(
            Reason::FieldType,
            format!("{}.{name} must be a {want}, found {}", self.what, got.type_name()),
        )
    }
}
