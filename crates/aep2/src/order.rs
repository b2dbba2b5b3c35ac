//! Order Mode: the payee's payment request (its quote), its hash, and how a payer's mandate
//! binds to it (spec `aep2.md#order-mode`).
//!
//! In Order Mode the payee states its terms first, as a [`PaymentRequest`]: payee, asset,
//! exact amount, an expiry, a request id and description, and the settlement processor with
//! its settlement window. The payer answers with a mandate whose `ref` binds it to that quote:
//!
//! | profile | the mandate's `ref` |
//! |---|---|
//! | `eip712`, `ed25519` | the quote hash, `SHA-256("AEP2/payment-request/v1\0" ‖ JCS(quote))` ([`PaymentRequest::hash`]) |
//! | `solana-mvp` | the quote's `requestId` (a text `ref` of at most 32 bytes has no room for a hash) |
//!
//! Accepting a mandate against a quote is core verification plus the payee policy the quote
//! implies ([`PaymentRequest::policy`]), with one extra check, `quote_expired`, right after the
//! mandate's own expiry:
//!
//! | # | check | code |
//! |---|---|---|
//! | 0 | the quote is for the verifier's profile and domain | `profile_mismatch`, `domain_mismatch` |
//! | 1 | core verification (decode, schema, signature, domain) | the core codes |
//! | 2 | `now > deadline + clock_skew` | `expired` |
//! | 3 | `now > expiry + clock_skew` | `quote_expired` |
//! | 4–8 | payee, asset, exact amount, settlement window, horizon | as in [`crate::policy`] |
//! | 9 | `ref` is the quote hash (`solana-mvp`: the request id) | `request_mismatch` |
//!
//! Replay ([`crate::ReplayKey`]) stays the caller's last step.
//!
//! ```
//! use aep2::crypto::secp256k1::SecretKey;
//! use aep2::json::{Limits, parse};
//! use aep2::order::{OrderOptions, PaymentRequest};
//! use aep2::{EnvelopeForm, EvmAddress, EvmMandate, Mandate, PayerKey, U256, Verifier, sign_mandate};
//!
//! let now = 1_800_000_000;
//! let quote = PaymentRequest::from_json(&parse(
//!     r#"{"aep2":1,"kind":"payment-request","requestId":"order-42","profile":"eip712",
//!         "domain":{"chainId":84532,"verifyingContract":"0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"},
//!         "payee":"0xaAD167617dF02Dd30208722c88d9027a2fDD8812",
//!         "asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","amount":"1000","expiry":1800000300,
//!         "description":"one report","settlementProcessor":"0x405B10be927D3BF157196C995d8131c6A097673c",
//!         "settlementWindow":300}"#,
//!     &Limits::AEP2,
//! )?)?;
//!
//! // The payer signs exactly the quoted terms, with ref = the quote hash.
//! let key = SecretKey::from_bytes(&[0x11; 32]).expect("valid scalar");
//! let mandate = Mandate::Eip712(EvmMandate {
//!     owner: key.address(),
//!     token: EvmAddress::parse("0x036CbD53842c5426634e7929541eC2318f3dCF7e")?,
//!     payee: EvmAddress::parse("0xaAD167617dF02Dd30208722c88d9027a2fDD8812")?,
//!     amount: quote.amount,
//!     nonce: U256::from_u64(1),
//!     deadline: now + 600,
//!     reference: quote.hash(),
//! });
//! let (signed, _) = sign_mandate(&mandate, &quote.domain, &PayerKey::Secp256k1(key), EnvelopeForm::Mvp)?;
//!
//! let verifier = Verifier::new(quote.domain.clone());
//! let options = OrderOptions::default().with_clock_skew(30);
//! assert!(quote.verify_header(&verifier, &signed.encode(), now, options).is_ok());
//! // Ten minutes later the quote (expiry now + 300, plus the 30 s skew) is closed.
//! let err = quote.verify_header(&verifier, &signed.encode(), now + 331, options).unwrap_err();
//! assert_eq!(err.code(), "quote_expired");
//! # Ok::<(), aep2::Error>(())
//! ```

use crate::address::{Base58Key, EvmAddress};
use crate::envelope::{AEP2_VERSION, decode_json_bytes};
use crate::error::{Error, Result};
use crate::hash::sha256;
use crate::json::{Object, Value, to_canonical};
use crate::mandate::{Mandate, SOLANA_MVP_MAX_REF_BYTES};
use crate::policy::{AccountId, DEFAULT_MAX_HORIZON, PayeePolicy, PriceMode};
use crate::profile::{Domain, Profile};
use crate::reason::Reason;
use crate::receipt::SpId;
use crate::schema::Fields;
use crate::uint::{U256, parse_decimal_u64, parse_json_integer};
use crate::verify::{Report, Verified, Verifier};

/// The value of the quote's `kind` member.
pub const PAYMENT_REQUEST_KIND: &str = "payment-request";
/// Prefix of the quote hash preimage; the NUL ends it so no JSON text can extend it.
pub const PAYMENT_REQUEST_TAG: &[u8] = b"AEP2/payment-request/v1\0";
/// The longest `requestId`, in bytes (ASCII).
pub const MAX_REQUEST_ID_BYTES: usize = 64;
/// The longest `description`, in UTF-8 bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 256;

/// The members of a quote in definition order (the order faults are reported in).
const FIELDS: [&str; 12] = [
    "aep2",
    "kind",
    "profile",
    "domain",
    "requestId",
    "payee",
    "asset",
    "amount",
    "expiry",
    "description",
    "settlementProcessor",
    "settlementWindow",
];
/// A `solana-mvp` quote has no domain, so its member set lacks `domain`.
const SOLANA_FIELDS: [&str; 11] = [
    "aep2",
    "kind",
    "profile",
    "requestId",
    "payee",
    "asset",
    "amount",
    "expiry",
    "description",
    "settlementProcessor",
    "settlementWindow",
];

/// The payee's payment request in Order Mode: the terms a mandate must meet
/// (spec `aep2.md#order-mode`).
///
/// Obtain one from [`PaymentRequest::from_json`] or [`PaymentRequest::parse`], which check every
/// rule; one built field by field should be passed through [`PaymentRequest::validated`], which
/// rejects fields of the wrong kind for the profile (an EVM payee in an `ed25519` quote, an
/// amount above 2^64 − 1 in an Ed25519-profile quote, and so on).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PaymentRequest {
    /// The profile and deployment the quote is for; [`Domain::SolanaMvp`] for a `solana-mvp`
    /// quote, which has no `domain` member.
    pub domain: Domain,
    /// The payee's id for this order: 1 ..= 64 characters of `[A-Za-z0-9._:-]` (at most 32 for
    /// `solana-mvp`, whose mandates carry it as `ref`).
    pub request_id: String,
    /// The account to be paid: an EVM address (`eip712`) or a 32-byte key.
    pub payee: AccountId,
    /// The token the price is in, of the same kind as `payee`.
    pub asset: AccountId,
    /// The exact price in the asset's smallest unit: at least 1 (at most 2^64 − 1 in the
    /// Ed25519 profiles).
    pub amount: U256,
    /// The last unix second (inclusive) at which a mandate for this quote is accepted.
    pub expiry: u64,
    /// Free text for the payer (what is sold), 0 ..= 256 UTF-8 bytes. Informative only.
    pub description: String,
    /// The settlement processor that will settle the mandate and sign its receipt.
    pub settlement_processor: SpId,
    /// Seconds the settlement processor needs before the mandate's deadline.
    pub settlement_window: u64,
}

/// What the mandate's `ref` must be for a quote (spec `aep2.md#order-mode`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum QuoteRef {
    /// `eip712`, `ed25519`: the quote hash.
    Hash([u8; 32]),
    /// `solana-mvp`: the request id, as text.
    RequestId(String),
}

/// The payee's own settings for accepting mandates against quotes: what a quote does not state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderOptions {
    /// Seconds this payee's clock may run ahead of the payer's or the chain's; applied to the
    /// mandate's deadline and to the quote's expiry alike.
    pub clock_skew: u64,
    /// The furthest accepted mandate deadline relative to `now` (`deadline_too_far`).
    pub max_horizon: u64,
}

impl Default for OrderOptions {
    /// No clock skew and a horizon of [`DEFAULT_MAX_HORIZON`].
    fn default() -> Self {
        OrderOptions {
            clock_skew: 0,
            max_horizon: DEFAULT_MAX_HORIZON,
        }
    }
}

impl OrderOptions {
    /// Sets the tolerated clock skew (seconds).
    #[must_use]
    pub fn with_clock_skew(mut self, seconds: u64) -> OrderOptions {
        self.clock_skew = seconds;
        self
    }

    /// Sets the furthest accepted deadline, relative to `now` (seconds).
    #[must_use]
    pub fn with_max_horizon(mut self, seconds: u64) -> OrderOptions {
        self.max_horizon = seconds;
        self
    }
}

fn field<T>(name: &str, r: Result<T>) -> Result<T> {
    r.map_err(|e| e.at(&format!("paymentRequest.{name}")))
}

/// A `requestId`: 1 ..= `max` bytes of `[A-Za-z0-9._:-]`; anything else is `field_type`.
fn request_id(text: &str, max: usize) -> Result<&str> {
    let allowed = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-');
    if text.is_empty() || text.len() > max || !text.bytes().all(allowed) {
        return Err(Error::new(
            Reason::FieldType,
            format!("{text:?} is not 1..={max} characters of [A-Za-z0-9._:-]"),
        ));
    }
    Ok(text)
}

fn description(text: &str) -> Result<&str> {
    if text.len() > MAX_DESCRIPTION_BYTES {
        return Err(Error::new(
            Reason::FieldType,
            format!("{} bytes, at most {MAX_DESCRIPTION_BYTES}", text.len()),
        ));
    }
    Ok(text)
}

fn nonzero(v: U256) -> Result<U256> {
    if v.is_zero() {
        Err(Error::new(Reason::AmountZero, "amount must be at least 1"))
    } else {
        Ok(v)
    }
}

impl PaymentRequest {
    /// Parses a quote received as JSON text: the size limit, UTF-8 and strict JSON rules of an
    /// envelope (`aep2.md#decoding-rules`), then [`PaymentRequest::from_json`].
    pub fn parse(bytes: &[u8]) -> Result<PaymentRequest> {
        PaymentRequest::from_json(&decode_json_bytes(bytes)?)
    }

    /// Parses a quote object, checking in the normative order: the member set (unknown, then
    /// missing, against the set the `profile` member selects), then each member in definition
    /// order `aep2`, `kind`, `profile`, `domain`, `requestId`, `payee`, `asset`, `amount`,
    /// `expiry`, `description`, `settlementProcessor`, `settlementWindow`.
    pub fn from_json(v: &Value) -> Result<PaymentRequest> {
        let Value::Object(obj) = v else {
            return Err(Error::new(
                Reason::FieldType,
                format!("payment request must be an object, found {}", v.type_name()),
            ));
        };
        // Exactly the string "solana-mvp" selects the member set without `domain`; anything
        // else (absent, another type, another name) selects the full set, and the profile
        // member's own fault is reported in its turn.
        let solana = matches!(obj.get("profile"), Some(Value::String(p)) if p == Profile::SolanaMvp.as_str());
        let names: &[&str] = if solana { &SOLANA_FIELDS } else { &FIELDS };
        let f = Fields::of(obj, "paymentRequest", names)?;

        let version = field("aep2", f.number("aep2").and_then(parse_json_integer))?;
        if version != AEP2_VERSION {
            return Err(Error::new(
                Reason::UnsupportedVersion,
                format!("aep2 version {version}, this implementation speaks {AEP2_VERSION}"),
            ));
        }
        if f.string("kind")? != PAYMENT_REQUEST_KIND {
            return Err(Error::new(
                Reason::FieldType,
                format!("paymentRequest.kind must be {PAYMENT_REQUEST_KIND:?}"),
            ));
        }
        let profile = field("profile", f.string("profile").and_then(Profile::parse))?;
        let domain = match profile {
            Profile::SolanaMvp => Domain::SolanaMvp,
            p => Domain::from_json(p, f.value("domain")?)?,
        };
        let max_id = match profile {
            Profile::SolanaMvp => SOLANA_MVP_MAX_REF_BYTES,
            _ => MAX_REQUEST_ID_BYTES,
        };
        let request_id = field("requestId", f.string("requestId").and_then(|t| request_id(t, max_id)))?;
        let account = |name: &str| -> Result<AccountId> {
            let text = f.string(name)?;
            match profile {
                Profile::Eip712 => EvmAddress::parse(text).map(AccountId::Evm),
                _ => Base58Key::parse(text).map(AccountId::Base58),
            }
        };
        let payee = field("payee", account("payee"))?;
        let asset = field("asset", account("asset"))?;
        let amount = field(
            "amount",
            f.string("amount")
                .and_then(|t| match profile {
                    Profile::Eip712 => U256::parse_decimal(t),
                    _ => parse_decimal_u64(t).map(U256::from_u64),
                })
                .and_then(nonzero),
        )?;
        let expiry = field("expiry", f.number("expiry").and_then(parse_json_integer))?;
        let description = field("description", f.string("description").and_then(description))?;
        let settlement_processor = field(
            "settlementProcessor",
            f.string("settlementProcessor").and_then(|t| match profile {
                Profile::Eip712 => EvmAddress::parse(t).map(SpId::Evm),
                _ => Base58Key::parse(t).map(SpId::Ed25519),
            }),
        )?;
        let settlement_window = field(
            "settlementWindow",
            f.number("settlementWindow").and_then(parse_json_integer),
        )?;
        Ok(PaymentRequest {
            domain,
            request_id: request_id.to_owned(),
            payee,
            asset,
            amount,
            expiry,
            description: description.to_owned(),
            settlement_processor,
            settlement_window,
        })
    }

    /// Checks a quote built field by field: it must survive a round trip through its JSON
    /// form unchanged, i.e. satisfy every rule [`PaymentRequest::from_json`] applies.
    pub fn validated(self) -> Result<PaymentRequest> {
        let back = PaymentRequest::from_json(&Value::Object(self.to_json()))?;
        if back == self {
            Ok(self)
        } else {
            Err(Error::new(
                Reason::FieldType,
                "a member does not have the form its profile requires",
            ))
        }
    }

    /// The profile of the quote.
    pub fn profile(&self) -> Profile {
        self.domain.profile()
    }

    /// The quote as a JSON object, members in definition order, values in canonical text
    /// (EIP-55 addresses, base58 keys, canonical decimals). A `solana-mvp` quote has no
    /// `domain` member.
    pub fn to_json(&self) -> Object {
        let s = Value::String;
        let mut o = Object::new()
            .with("aep2", Value::from_u64(AEP2_VERSION))
            .with("kind", s(PAYMENT_REQUEST_KIND.to_owned()))
            .with("profile", s(self.profile().as_str().to_owned()));
        if let Some(d) = self.domain.to_json() {
            o.insert("domain", Value::Object(d));
        }
        o.with("requestId", s(self.request_id.clone()))
            .with("payee", s(self.payee.to_string()))
            .with("asset", s(self.asset.to_string()))
            .with("amount", s(self.amount.to_string()))
            .with("expiry", Value::from_u64(self.expiry))
            .with("description", s(self.description.clone()))
            .with("settlementProcessor", s(self.settlement_processor.to_string()))
            .with("settlementWindow", Value::from_u64(self.settlement_window))
    }

    /// The preimage of the quote hash: `"AEP2/payment-request/v1" ‖ 0x00 ‖ JCS(quote)`.
    pub fn hash_input(&self) -> Vec<u8> {
        [
            PAYMENT_REQUEST_TAG,
            to_canonical(&Value::Object(self.to_json())).as_bytes(),
        ]
        .concat()
    }

    /// The quote hash, `SHA-256(hash_input)`: the `ref` of an `eip712` or `ed25519` mandate
    /// that pays this quote. Computed over the canonical form, so the member order, whitespace,
    /// escapes and address letter case of the received text do not change it.
    pub fn hash(&self) -> [u8; 32] {
        sha256(&self.hash_input())
    }

    /// What the mandate's `ref` must be: the quote hash, or for `solana-mvp` the request id.
    pub fn mandate_ref(&self) -> QuoteRef {
        match self.domain {
            Domain::SolanaMvp => QuoteRef::RequestId(self.request_id.clone()),
            _ => QuoteRef::Hash(self.hash()),
        }
    }

    /// The payee policy the quote implies: its payee and asset, its amount as the exact price,
    /// its settlement window, and (`eip712`, `ed25519`) the quote hash as the expected request
    /// hash; clock skew and horizon from `options`. For `solana-mvp` the policy requires no
    /// request hash: the request-id binding is checked by [`PaymentRequest::check`] instead.
    pub fn policy(&self, options: OrderOptions) -> PayeePolicy {
        let policy = PayeePolicy::new(self.payee, self.asset, self.amount)
            .with_price_mode(PriceMode::Exact)
            .with_clock_skew(options.clock_skew)
            .with_settlement_window(self.settlement_window)
            .with_max_horizon(options.max_horizon);
        match self.mandate_ref() {
            QuoteRef::Hash(h) => policy.with_request_hash(h),
            QuoteRef::RequestId(_) => policy,
        }
    }

    /// Whether `verifier` is configured for this quote's profile and domain:
    /// `profile_mismatch` or `domain_mismatch` otherwise. A quote for another deployment cannot
    /// judge mandates for this one.
    pub fn check_verifier(&self, verifier: &Verifier) -> Result<()> {
        let expected = verifier.expected();
        if expected.profile() != self.profile() {
            return Err(Error::new(
                Reason::ProfileMismatch,
                format!(
                    "the quote is for {}, the verifier for {}",
                    self.profile(),
                    expected.profile()
                ),
            ));
        }
        if *expected != self.domain {
            return Err(Error::new(
                Reason::DomainMismatch,
                "the quote names a domain other than the verifier's",
            ));
        }
        Ok(())
    }

    /// Accepts a mandate header against this quote: the verifier check, core verification at
    /// `now − clock_skew`, then [`PaymentRequest::check`] at `now`. Replay is not checked.
    pub fn verify_header(
        &self,
        verifier: &Verifier,
        header: &str,
        now: u64,
        options: OrderOptions,
    ) -> Result<Verified> {
        self.check_verifier(verifier)?;
        let v = verifier.verify_header(header, Some(now.saturating_sub(options.clock_skew)))?;
        self.check(&v, now, options)?;
        Ok(v)
    }

    /// Like [`PaymentRequest::verify_header`], returning the core [`Report`] (digest,
    /// recovered signer) with the quote's verdict folded in.
    pub fn check_header(&self, verifier: &Verifier, header: &str, now: u64, options: OrderOptions) -> Report {
        if let Err(e) = self.check_verifier(verifier) {
            return Report::failed(None, e);
        }
        let mut report = verifier.check_header(header, Some(now.saturating_sub(options.clock_skew)));
        if report.verdict.is_ok() {
            report.verdict = match &report.signed {
                Some(signed) => self.check_mandate(&signed.mandate, now, options),
                None => Err(Error::new(Reason::JsonInvalid, "incomplete report")),
            };
        }
        report
    }

    /// The quote's checks on a mandate whose signature and domain the core verifier accepted:
    /// `expired` (with skew), `quote_expired`, then the policy of [`PaymentRequest::policy`]
    /// (payee, asset, exact amount, settlement window, horizon, quote hash), then for
    /// `solana-mvp` the request-id binding. The first failing check decides.
    pub fn check(&self, v: &Verified, now: u64, options: OrderOptions) -> Result<()> {
        self.check_mandate(v.mandate(), now, options)
    }

    fn check_mandate(&self, m: &Mandate, now: u64, options: OrderOptions) -> Result<()> {
        let skew = u128::from(options.clock_skew);
        let now_wide = u128::from(now);
        let deadline = m.deadline();
        if now_wide > u128::from(deadline) + skew {
            return Err(Error::new(
                Reason::Expired,
                format!(
                    "deadline {deadline} plus clock skew {} is before now ({now})",
                    options.clock_skew
                ),
            ));
        }
        if now_wide > u128::from(self.expiry) + skew {
            return Err(Error::new(
                Reason::QuoteExpired,
                format!(
                    "quote {} expired at {} (clock skew {}), now is {now}",
                    self.request_id, self.expiry, options.clock_skew
                ),
            ));
        }
        // Repeats the expiry check above (it cannot fail here) and ends with the quote hash.
        self.policy(options).check_mandate(m, now)?;
        if let (Mandate::SolanaMvp(sm), QuoteRef::RequestId(id)) = (m, self.mandate_ref())
            && sm.reference != id
        {
            return Err(Error::new(
                Reason::RequestMismatch,
                format!("ref {:?} is not the quote's request id {id:?}", sm.reference),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::hex_encode_0x;
    use crate::crypto::ed25519;
    use crate::crypto::secp256k1::SecretKey;
    use crate::json::{Limits, parse};
    use crate::{Ed25519Domain, Eip712Domain, EnvelopeForm, EvmMandate, PayerKey, SolanaMvpMandate, sign_mandate};

    const NOW: u64 = 1_800_000_000;

    /// The spec's worked example (aep2.md#payment-request-hash).
    const EXAMPLE: &str = r#"{"aep2":1,"kind":"payment-request","profile":"eip712","domain":{"chainId":84532,"verifyingContract":"0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"},"requestId":"order-2026-0001","payee":"0xaAD167617dF02Dd30208722c88d9027a2fDD8812","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","amount":"1000","expiry":1800000300,"description":"Market report: EU solar, Q3","settlementProcessor":"0x405B10be927D3BF157196C995d8131c6A097673c","settlementWindow":300}"#;

    fn quote(text: &str) -> Result<PaymentRequest> {
        PaymentRequest::from_json(&parse(text, &Limits::AEP2)?)
    }

    fn example() -> PaymentRequest {
        quote(EXAMPLE).expect("the spec example parses")
    }

    fn edit(text: &str, f: impl FnOnce(&mut Object)) -> String {
        let Ok(Value::Object(mut o)) = parse(text, &Limits::AEP2) else {
            panic!("test input is an object")
        };
        f(&mut o);
        crate::json::to_compact(&Value::Object(o))
    }

    fn code(text: &str) -> Option<&'static str> {
        quote(text).err().map(|e| e.code())
    }

    #[test]
    fn worked_example_hash() {
        let q = example();
        let jcs = to_canonical(&Value::Object(q.to_json()));
        assert_eq!(
            jcs,
            r#"{"aep2":1,"amount":"1000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","description":"Market report: EU solar, Q3","domain":{"chainId":84532,"verifyingContract":"0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"},"expiry":1800000300,"kind":"payment-request","payee":"0xaAD167617dF02Dd30208722c88d9027a2fDD8812","profile":"eip712","requestId":"order-2026-0001","settlementProcessor":"0x405B10be927D3BF157196C995d8131c6A097673c","settlementWindow":300}"#
        );
        assert_eq!(q.hash_input().len(), PAYMENT_REQUEST_TAG.len() + jcs.len());
        assert_eq!(
            hex_encode_0x(&q.hash()),
            "0xce5bef34a9b51df459f0f66c0ea247891fd4a68ab2dbb069c00c589b6aaba1dd"
        );
        // Member order, whitespace and address case do not change the hash.
        let shuffled = edit(EXAMPLE, |o| {
            let payee = o.remove("payee").expect("payee");
            o.insert(
                "payee",
                Value::String(match payee {
                    Value::String(s) => s.to_lowercase(),
                    other => panic!("{other:?}"),
                }),
            );
        });
        assert_eq!(quote(&shuffled).expect("parses").hash(), q.hash());
        assert_eq!(q.clone().validated(), Ok(q.clone()));
        assert_eq!(PaymentRequest::parse(EXAMPLE.as_bytes()), Ok(q));
    }

    #[test]
    fn schema_order_and_codes() {
        let cases: Vec<(String, Option<&str>)> = vec![
            (
                edit(EXAMPLE, |o| o.insert("currency", Value::String("USD".into()))),
                Some("unknown_field"),
            ),
            (
                edit(EXAMPLE, |o| {
                    o.insert("currency", Value::String("USD".into()));
                    o.remove("expiry");
                }),
                Some("unknown_field"),
            ),
            (edit(EXAMPLE, |o| drop(o.remove("expiry"))), Some("missing_field")),
            (edit(EXAMPLE, |o| drop(o.remove("domain"))), Some("missing_field")),
            (
                edit(EXAMPLE, |o| o.insert("aep2", Value::from_u64(2))),
                Some("unsupported_version"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("kind", Value::String("receipt".into()))),
                Some("field_type"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("profile", Value::String("solana".into()))),
                Some("unsupported_profile"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("profile", Value::from_u64(1))),
                Some("field_type"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("domain", Value::Null)),
                Some("domain_invalid"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("requestId", Value::String(String::new()))),
                Some("field_type"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("requestId", Value::String("a b".into()))),
                Some("field_type"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("requestId", Value::String("a".repeat(64)))),
                None,
            ),
            (
                edit(EXAMPLE, |o| o.insert("requestId", Value::String("a".repeat(65)))),
                Some("field_type"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("requestId", Value::String("é".into()))),
                Some("field_type"),
            ),
            (
                edit(EXAMPLE, |o| {
                    o.insert(
                        "payee",
                        Value::String("0xaad167617dF02Dd30208722c88d9027a2fDD8812".into()),
                    )
                }),
                Some("address_checksum"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("amount", Value::String("0".into()))),
                Some("amount_zero"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("amount", Value::String("01".into()))),
                Some("uint_invalid"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("amount", Value::from_u64(1000))),
                Some("field_type"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("expiry", Value::Number("1e9".into()))),
                Some("uint_invalid"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("description", Value::String("é".repeat(128)))),
                None,
            ),
            (
                edit(EXAMPLE, |o| {
                    o.insert("description", Value::String(format!("{}a", "é".repeat(128))))
                }),
                Some("field_type"),
            ),
            (
                edit(EXAMPLE, |o| {
                    o.insert(
                        "settlementProcessor",
                        Value::String("FLpgzKZV1czUTLQHRSnYmXhW2sQv5evXgmyTURGgVKUW".into()),
                    )
                }),
                Some("address_invalid"),
            ),
            (
                edit(EXAMPLE, |o| o.insert("settlementWindow", Value::Number("-1".into()))),
                Some("uint_invalid"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(code(&text), want, "{text}");
        }
        assert_eq!(code("[]"), Some("field_type"));
        assert_eq!(
            PaymentRequest::parse(b"{\"a\":1,\"a\":2}").unwrap_err().code(),
            "json_duplicate_key"
        );
    }

    fn sol_quote_text(request_id: &str) -> String {
        let payee = Base58Key(ed25519::public_key_from_seed(&[2; 32]));
        let mint = Base58Key(ed25519::public_key_from_seed(&[3; 32]));
        format!(
            r#"{{"aep2":1,"kind":"payment-request","profile":"solana-mvp","requestId":"{request_id}","payee":"{payee}","asset":"{mint}","amount":"750","expiry":{},"description":"","settlementProcessor":"FLpgzKZV1czUTLQHRSnYmXhW2sQv5evXgmyTURGgVKUW","settlementWindow":300}}"#,
            NOW + 300
        )
    }

    #[test]
    fn solana_member_set_and_request_id() {
        let ok = sol_quote_text(&"s".repeat(32));
        assert!(quote(&ok).is_ok());
        assert_eq!(code(&sol_quote_text(&"s".repeat(33))), Some("field_type"));
        let with_domain = edit(&ok, |o| o.insert("domain", Value::Object(Object::new())));
        assert_eq!(code(&with_domain), Some("unknown_field"));
        // A quote claiming eip712 without a domain misses it.
        let evm_no_domain = edit(&ok, |o| o.insert("profile", Value::String("eip712".into())));
        assert_eq!(code(&evm_no_domain), Some("missing_field"));
        let q = quote(&ok).expect("parses");
        assert_eq!(q.mandate_ref(), QuoteRef::RequestId("s".repeat(32)));
        assert!(!q.to_json().iter().any(|(k, _)| k == "domain"));
        // Ed25519 profiles carry u64 amounts.
        let big = edit(&ok, |o| {
            o.insert("amount", Value::String("18446744073709551616".into()))
        });
        assert_eq!(code(&big), Some("uint_out_of_range"));
    }

    fn evm_header(q: &PaymentRequest, f: impl FnOnce(&mut EvmMandate)) -> String {
        let key = SecretKey::from_bytes(&[0x11; 32]).expect("valid scalar");
        let (AccountId::Evm(payee), AccountId::Evm(token)) = (q.payee, q.asset) else {
            panic!("eip712 quote")
        };
        let mut m = EvmMandate {
            owner: key.address(),
            token,
            payee,
            amount: q.amount,
            nonce: U256::from_u64(1),
            deadline: NOW + 600,
            reference: q.hash(),
        };
        f(&mut m);
        let (sm, _) = sign_mandate(
            &Mandate::Eip712(m),
            &q.domain,
            &PayerKey::Secp256k1(key),
            EnvelopeForm::Mvp,
        )
        .expect("signs");
        sm.encode()
    }

    fn accept(q: &PaymentRequest, verifier: &Verifier, header: &str, now: u64, skew: u64) -> Option<&'static str> {
        let options = OrderOptions::default().with_clock_skew(skew).with_max_horizon(3600);
        let by_report = q
            .check_header(verifier, header, now, options)
            .verdict
            .err()
            .map(|e| e.code());
        let by_result = q.verify_header(verifier, header, now, options).err().map(|e| e.code());
        assert_eq!(by_report, by_result);
        by_result
    }

    #[test]
    fn acceptance_order_eip712() {
        let q = example();
        let verifier = Verifier::new(q.domain.clone());
        let ok = evm_header(&q, |_| {});
        assert_eq!(accept(&q, &verifier, &ok, NOW, 0), None);
        // Quote expiry 1800000300 is inclusive, and the skew extends it.
        assert_eq!(accept(&q, &verifier, &ok, NOW + 300, 0), None);
        assert_eq!(accept(&q, &verifier, &ok, NOW + 301, 0), Some("quote_expired"));
        assert_eq!(accept(&q, &verifier, &ok, NOW + 330, 30), None);
        assert_eq!(accept(&q, &verifier, &ok, NOW + 331, 30), Some("quote_expired"));
        // The mandate's own expiry comes first; quote expiry before the payee.
        assert_eq!(accept(&q, &verifier, &ok, NOW + 601, 0), Some("expired"));
        let elsewhere = evm_header(&q, |m| m.payee = EvmAddress([9; 20]));
        assert_eq!(accept(&q, &verifier, &elsewhere, NOW + 301, 0), Some("quote_expired"));
        assert_eq!(accept(&q, &verifier, &elsewhere, NOW, 0), Some("payee_mismatch"));
        type Change = Box<dyn Fn(&mut EvmMandate)>;
        let cases: [(Change, Option<&str>); 6] = [
            (Box::new(|m| m.token = EvmAddress([9; 20])), Some("asset_mismatch")),
            (
                Box::new(|m| m.amount = U256::from_u64(999)),
                Some("amount_insufficient"),
            ),
            (Box::new(|m| m.amount = U256::from_u64(1001)), Some("amount_not_exact")),
            (Box::new(|m| m.deadline = NOW + 299), Some("deadline_too_soon")),
            (Box::new(|m| m.deadline = NOW + 3601), Some("deadline_too_far")),
            (Box::new(|m| m.reference = [0; 32]), Some("request_mismatch")),
        ];
        for (change, want) in cases {
            assert_eq!(accept(&q, &verifier, &evm_header(&q, change), NOW, 0), want);
        }
        // A quote for another chain or profile does not fit the verifier.
        let other = Verifier::new(Domain::Eip712(Eip712Domain {
            chain_id: 8453,
            verifying_contract: EvmAddress([0x22; 20]),
        }));
        assert_eq!(accept(&q, &other, &ok, NOW, 0), Some("domain_mismatch"));
        assert_eq!(
            accept(&q, &Verifier::new(Domain::SolanaMvp), &ok, NOW, 0),
            Some("profile_mismatch")
        );
        // The core verifier's codes come before the quote's checks.
        assert_eq!(accept(&q, &verifier, "!", NOW + 301, 0), Some("base64_invalid"));
    }

    #[test]
    fn solana_binding_is_the_request_id() {
        let q = quote(&sol_quote_text("order-7")).expect("parses");
        let seed = [1; 32];
        let sign = |reference: &str| {
            let (AccountId::Base58(payee), AccountId::Base58(token)) = (q.payee, q.asset) else {
                panic!("solana quote")
            };
            let m = Mandate::SolanaMvp(SolanaMvpMandate {
                payer: Base58Key(ed25519::public_key_from_seed(&seed)),
                token,
                payee,
                amount: 750,
                nonce: 1,
                deadline: NOW + 600,
                reference: reference.into(),
            });
            let (sm, _) =
                sign_mandate(&m, &Domain::SolanaMvp, &PayerKey::Ed25519(seed), EnvelopeForm::Mvp).expect("signs");
            sm.encode()
        };
        let verifier = Verifier::new(Domain::SolanaMvp);
        assert_eq!(accept(&q, &verifier, &sign("order-7"), NOW, 0), None);
        assert_eq!(
            accept(&q, &verifier, &sign("order-8"), NOW, 0),
            Some("request_mismatch")
        );
        assert_eq!(
            accept(&q, &verifier, &sign("Order-7"), NOW, 0),
            Some("request_mismatch")
        );
        let ed = Verifier::new(Domain::Ed25519(Ed25519Domain {
            network: "solana:devnet".into(),
            wallet: Base58Key([7; 32]),
        }));
        assert_eq!(accept(&q, &ed, &sign("order-7"), NOW, 0), Some("profile_mismatch"));
    }

    #[test]
    fn validated_rejects_inconsistent_fields() {
        let mut q = example();
        q.payee = AccountId::Base58(Base58Key([1; 32]));
        assert_eq!(q.validated().unwrap_err().code(), "address_invalid");
        let mut q = quote(&sol_quote_text("x")).expect("parses");
        q.amount = U256([0xff; 32]);
        assert_eq!(q.validated().unwrap_err().code(), "uint_out_of_range");
    }
}
