//! The FluxA MVP's payee bodies (`aep2.md#x402-mvp`): the 402 body, which x402 v1 clients read
//! too, the error bodies and the MVP error codes.

use crate::{Carrier, PaymentRequired, PaymentRequiredV1, s, string};
use aep2::json::{self, Object, Value};
use aep2::{Error, Reason, Result, Stage, U256};

/// A FluxA MVP payee body: the 402 `{error: "PAYMENT_REQUIRED", message, price, currency,
/// payee, reason}` and the error bodies `{error, message, reason}`; on a 402, with x402 v1's
/// `x402Version` and `accepts` ([`MvpBody::with_x402_v1`]), so that one body serves MVP and
/// x402 v1 clients.
///
/// **Float limitation.** The MVP's `price` is a JSON number in whole currency units (`0.001`
/// USD), which MVP clients read as a binary float; it names no exact token amount. This crate
/// writes it exactly (the integer price shifted by `decimals`) and reads it as its number
/// text, never converting it to an amount: the mandate is judged against the payee's integer
/// price only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MvpBody {
    /// The MVP error code (`PAYMENT_REQUIRED`, `INVALID_PAYMENT`, …, [`mvp_error_code_for`]),
    /// which x402 v1 clients show as the error text.
    pub error: String,
    /// Human-readable message.
    pub message: String,
    /// Other members (`x402Version`, `accepts`, `price` as number text, `currency`, `payee`,
    /// `reason`, …), in order.
    pub extra: Object,
}

/// The `message` of the MVP 402 body when no payment was sent: every carrier and the price.
fn no_payment_message(price: &str, currency: &str) -> String {
    format!(
        "No payment: send {} (x402 v2), {} (x402 v1) or {} (FluxA MVP). Price: {price} {currency}.",
        Carrier::PaymentSignature.header(),
        Carrier::XPayment.header(),
        Carrier::XPaymentMandate.header(),
    )
}

impl MvpBody {
    /// The MVP 402 body for a price of `amount` smallest units of a token with `decimals`
    /// decimals, named `currency`, paid to `payee`: `{error: "PAYMENT_REQUIRED", message,
    /// price, currency, payee, reason: "payment_missing"}`, the message naming all three
    /// carriers. Without x402 v1 terms; [`MvpBody::payment_required_for`] adds them.
    pub fn payment_required(amount: &U256, decimals: u32, currency: &str, payee: &str) -> MvpBody {
        let price = decimal_shift(&amount.to_string(), decimals);
        MvpBody {
            error: mvp_error_code(Reason::PaymentMissing).into(),
            message: no_payment_message(&price, currency),
            extra: Object::new()
                .with("price", Value::Number(price))
                .with("currency", s(currency))
                .with("payee", s(payee))
                .with("reason", s(Reason::PaymentMissing.code())),
        }
    }

    /// The 402 body for a request without payment that MVP and x402 v1 clients both read
    /// (`aep2.md#x402-mvp`): [`MvpBody::payment_required`] with the terms of `required` (the
    /// `PaymentRequired` the `PAYMENT-REQUIRED` header carries) as x402 v1 `x402Version: 1`
    /// and `accepts` ([`MvpBody::with_x402_v1`]).
    ///
    /// ```text
    /// {"x402Version":1,"error":"PAYMENT_REQUIRED","accepts":[…],"message":"No payment: send …",
    ///  "price":0.001,"currency":"USD","payee":"0x…","reason":"payment_missing"}
    /// ```
    pub fn payment_required_for(
        required: &PaymentRequired,
        amount: &U256,
        decimals: u32,
        currency: &str,
        payee: &str,
    ) -> MvpBody {
        MvpBody::payment_required(amount, decimals, currency, payee).with_x402_v1(required)
    }

    /// Adds x402 v1's `x402Version: 1` and `accepts` to the body: one v1 entry per entry of
    /// `required.accepts`, in order ([`crate::PaymentRequirements::to_v1`] with
    /// `required.resource`). For every 402 a payee answers with `PAYMENT-REQUIRED`, so that an
    /// x402 v1 client, which has no such header, reads the same terms from the body.
    #[must_use]
    pub fn with_x402_v1(mut self, required: &PaymentRequired) -> MvpBody {
        let accepts = required
            .accepts_v1()
            .iter()
            .map(|a| Value::Object(a.to_json()))
            .collect();
        let mut extra = Object::new()
            .with("x402Version", Value::from_u64(1))
            .with("accepts", Value::Array(accepts));
        for (k, v) in self.extra.iter() {
            extra.insert(k, v.clone());
        }
        self.extra = extra;
        self
    }

    /// The MVP error body for a rejection, with no carrier named and the status-independent
    /// MVP code ([`mvp_error_code`]); see [`MvpBody::rejection_with_status`].
    pub fn rejection(e: &Error) -> MvpBody {
        MvpBody::rejection_via(e, None)
    }

    /// The MVP error body for a rejection of a payment that came in `carrier` (`None` when no
    /// carrier was read): `{error: <MVP code>, message: "<header>: <code>: <detail>", reason}`,
    /// the message starting with the carrier's header name when there is one. The MVP code is
    /// the status-independent one ([`mvp_error_code`]).
    pub fn rejection_via(e: &Error, carrier: Option<Carrier>) -> MvpBody {
        MvpBody::rejection_body(e, mvp_error_code(e.reason()), carrier)
    }

    /// [`MvpBody::rejection_via`] for a rejection answered with HTTP `status`, whose MVP code
    /// may depend on it ([`mvp_error_code_for`]: `route_unknown` is `NOT_FOUND` with 404 and
    /// `METHOD_NOT_ALLOWED` with 405).
    pub fn rejection_with_status(e: &Error, status: u16, carrier: Option<Carrier>) -> MvpBody {
        MvpBody::rejection_body(e, mvp_error_code_for(e.reason(), status), carrier)
    }

    fn rejection_body(e: &Error, code: &str, carrier: Option<Carrier>) -> MvpBody {
        let message = match carrier {
            Some(c) => format!("{}: {e}", c.header()),
            None => e.to_string(),
        };
        MvpBody {
            error: code.into(),
            message,
            extra: Object::new().with("reason", s(e.code())),
        }
    }

    /// The JSON object: x402 v1's `x402Version`, `error` and `accepts` first (the first and
    /// last when present), then `message` and the other members in order.
    pub fn to_json(&self) -> Value {
        const V1: [&str; 2] = ["x402Version", "accepts"];
        let mut o = Object::new();
        if let Some(v) = self.extra.get(V1[0]) {
            o.insert(V1[0], v.clone());
        }
        o.insert("error", s(&self.error));
        if let Some(v) = self.extra.get(V1[1]) {
            o.insert(V1[1], v.clone());
        }
        o.insert("message", s(&self.message));
        for (k, v) in self.extra.iter() {
            if !V1.contains(&k) {
                o.insert(k, v.clone());
            }
        }
        Value::Object(o)
    }

    /// The body text (compact JSON).
    pub fn to_text(&self) -> String {
        json::to_compact(&self.to_json())
    }

    /// Parses a body (strict JSON within the AEP2 limits): `error` and `message` strings
    /// (a missing `message` reads as empty), everything else kept.
    pub fn parse(body: &[u8]) -> Result<MvpBody> {
        let Value::Object(mut o) = aep2::envelope::decode_json_bytes(body)? else {
            return Err(Error::new(Reason::FieldType, "MVP body must be an object"));
        };
        let error = string(&o, "error")?.to_owned();
        let message = match o.get("message") {
            Some(_) => string(&o, "message")?.to_owned(),
            None => String::new(),
        };
        o.remove("error");
        o.remove("message");
        Ok(MvpBody {
            error,
            message,
            extra: o,
        })
    }

    /// The x402 v1 terms of a 402 body (`None` when it has no `x402Version` member), read as
    /// [`PaymentRequiredV1::from_json`] reads them.
    pub fn x402_v1(&self) -> Option<Result<PaymentRequiredV1>> {
        self.extra.get("x402Version")?;
        Some(PaymentRequiredV1::from_json(&self.to_json()))
    }
}

/// The MVP error code for a reason (`aep2.md#x402-mvp`), independent of the HTTP status; for
/// the status-dependent codes see [`mvp_error_code_for`].
///
/// `PAYMENT_REQUIRED` (`payment_missing`), `INVALID_PAYEE` (`payee_mismatch`), `INVALID_TOKEN`
/// (`asset_mismatch`), `INSUFFICIENT_PAYMENT` (`amount_insufficient`), `EXPIRED_MANDATE`
/// (`expired`), `DUPLICATE_MANDATE` (`mandate_replayed`), `NONCE_USED` (`nonce_reused`),
/// `INSUFFICIENT_FUNDS` (`insufficient_funds`), `SETTLEMENT_UNAVAILABLE`
/// (`settlement_unavailable`), `PAYMENT_IN_PROGRESS` (`payment_in_progress`), `BAD_REQUEST`
/// (`http_request_invalid`), `INTERNAL_ERROR` (`replay_store_unavailable`), `NOT_FOUND`
/// (`route_unknown`, `mandate_unknown`), `UNSUPPORTED_MEDIA_TYPE` (`content_type_unsupported`),
/// `PAYLOAD_TOO_LARGE` (`header_too_large`), `REQUEST_TIMEOUT` (`request_timeout`),
/// `INVALID_SIGNATURE` (every other signature-stage code), `INVALID_PAYMENT` (everything else).
pub fn mvp_error_code(reason: Reason) -> &'static str {
    match reason {
        Reason::PaymentMissing => "PAYMENT_REQUIRED",
        Reason::PayeeMismatch => "INVALID_PAYEE",
        Reason::AssetMismatch => "INVALID_TOKEN",
        Reason::AmountInsufficient => "INSUFFICIENT_PAYMENT",
        Reason::Expired => "EXPIRED_MANDATE",
        Reason::MandateReplayed => "DUPLICATE_MANDATE",
        Reason::NonceReused => "NONCE_USED",
        Reason::InsufficientFunds => "INSUFFICIENT_FUNDS",
        Reason::SettlementUnavailable => "SETTLEMENT_UNAVAILABLE",
        Reason::PaymentInProgress => "PAYMENT_IN_PROGRESS",
        Reason::HttpRequestInvalid => "BAD_REQUEST",
        Reason::ReplayStoreUnavailable => "INTERNAL_ERROR",
        Reason::RouteUnknown | Reason::MandateUnknown => "NOT_FOUND",
        Reason::ContentTypeUnsupported => "UNSUPPORTED_MEDIA_TYPE",
        Reason::HeaderTooLarge => "PAYLOAD_TOO_LARGE",
        Reason::RequestTimeout => "REQUEST_TIMEOUT",
        r if r.stage() == Stage::Signature => "INVALID_SIGNATURE",
        _ => "INVALID_PAYMENT",
    }
}

/// The MVP error code of a rejection answered with HTTP `status` (`aep2.md#x402-mvp`):
/// `route_unknown` with 405 is `METHOD_NOT_ALLOWED`, `header_too_large` with 431 (request
/// headers too long) is `REQUEST_HEADER_FIELDS_TOO_LARGE`; otherwise [`mvp_error_code`].
pub fn mvp_error_code_for(reason: Reason, status: u16) -> &'static str {
    match (reason, status) {
        (Reason::RouteUnknown, 405) => "METHOD_NOT_ALLOWED",
        (Reason::HeaderTooLarge, 431) => "REQUEST_HEADER_FIELDS_TOO_LARGE",
        (r, _) => mvp_error_code(r),
    }
}

/// `digits` (a canonical decimal) divided by 10^`decimals`, as exact decimal text.
fn decimal_shift(digits: &str, decimals: u32) -> String {
    let d = decimals as usize;
    if d == 0 {
        return digits.to_owned();
    }
    let padded = format!("{digits:0>width$}", width = d + 1);
    let (int, frac) = padded.split_at(padded.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_shift_is_exact() {
        assert_eq!(decimal_shift("1000", 6), "0.001");
        assert_eq!(decimal_shift("1500000", 6), "1.5");
        assert_eq!(decimal_shift("7", 0), "7");
        assert_eq!(decimal_shift("2000000", 6), "2");
    }

    #[test]
    fn status_dependent_codes() {
        assert_eq!(mvp_error_code_for(Reason::RouteUnknown, 404), "NOT_FOUND");
        assert_eq!(mvp_error_code_for(Reason::RouteUnknown, 405), "METHOD_NOT_ALLOWED");
        assert_eq!(mvp_error_code_for(Reason::HeaderTooLarge, 413), "PAYLOAD_TOO_LARGE");
        assert_eq!(mvp_error_code_for(Reason::HeaderTooLarge, 400), "PAYLOAD_TOO_LARGE");
        assert_eq!(
            mvp_error_code_for(Reason::HeaderTooLarge, 431),
            "REQUEST_HEADER_FIELDS_TOO_LARGE"
        );
        assert_eq!(mvp_error_code_for(Reason::Expired, 405), "EXPIRED_MANDATE");
    }

    #[test]
    fn every_code_is_upper_snake_case() {
        for r in Reason::ALL {
            for status in [400, 402, 404, 405, 408, 413, 415, 431, 503] {
                let c = mvp_error_code_for(*r, status);
                assert!(c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{c}");
            }
        }
    }
}
