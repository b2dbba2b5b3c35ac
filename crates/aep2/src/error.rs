//! The crate's error type: a registry [`Reason`] plus human-readable context.

use crate::reason::{Reason, Stage};
use std::borrow::Cow;
use std::fmt;

/// A rejection: exactly one reason code from the registry, with a detail message for humans.
///
/// Programs branch on [`Error::reason`] (or [`Error::code`]); the detail text is not stable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    reason: Reason,
    detail: Cow<'static, str>,
}

/// Result alias used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// Creates an error with a detail message.
    pub fn new(reason: Reason, detail: impl Into<Cow<'static, str>>) -> Self {
        Error {
            reason,
            detail: detail.into(),
        }
    }

    /// The registry reason.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The stable reason code (e.g. `signature_high_s`).
    pub fn code(&self) -> &'static str {
        self.reason.code()
    }

    /// The stage the reason belongs to.
    pub fn stage(&self) -> Stage {
        self.reason.stage()
    }

    /// Prefixes the detail with where the fault is (e.g. `mandate.amount`).
    pub fn at(self, place: &str) -> Self {
        let detail = if self.detail.is_empty() {
            place.to_owned()
        } else {
            format!("{place}: {}", self.detail)
        };
        Error {
            reason: self.reason,
            detail: Cow::Owned(detail),
        }
    }

    /// Human-readable context (which field, which limit); not a stable interface.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl From<Reason> for Error {
    fn from(reason: Reason) -> Self {
        Error {
            reason,
            detail: Cow::Borrowed(""),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.reason.code())
        } else {
            write!(f, "{}: {}", self.reason.code(), self.detail)
        }
    }
}

impl std::error::Error for Error {}
