//! The closed registry of AEP2 reason codes (spec `aep2.md#reason-codes`).
//!
//! Every rejection anywhere in the crate carries exactly one [`Reason`]. Codes are stable
//! snake_case strings: tools script against them, so a code is never renamed or reused.

use core::fmt;

/// The verification stage a reason code belongs to.
///
/// Stages let a conformance runner tell a parse failure from a signature failure, so a lenient
/// decoder can never be credited with a correct signature rejection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Transport decoding: size, base64, UTF-8, JSON syntax.
    Decode,
    /// Shape and field formats of a decoded object.
    Schema,
    /// Signature encoding and cryptographic validity.
    Signature,
    /// Checks of a validly signed object against the verifier's expectations.
    Policy,
}

impl Stage {
    /// The stage's stable name as used in vectors and CLI output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Schema => "schema",
            Stage::Signature => "signature",
            Stage::Policy => "policy",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! registry {
    ($( $(#[$doc:meta])* $variant:ident => ($code:literal, $stage:ident, $anchor:literal), )*) => {
        /// A reason code from the spec's closed registry; one variant per code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason code, in registry order.
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )* ];

            /// The stable snake_case code.
            pub const fn code(self) -> &'static str {
                match self { $( Reason::$variant => $code, )* }
            }

            /// The stage the code belongs to.
            pub const fn stage(self) -> Stage {
                match self { $( Reason::$variant => Stage::$stage, )* }
            }

            /// The spec section (anchor in `spec/aep2.md`) that defines the rule.
            pub const fn spec_anchor(self) -> &'static str {
                match self { $( Reason::$variant => $anchor, )* }
            }

            /// Looks a code up by its string form.
            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $( $code => Some(Reason::$variant), )* _ => None }
            }
        }
    };
}

registry! {
    /// The header or envelope text is longer than the limit.
    HeaderTooLarge => ("header_too_large", Decode, "limits"),
    /// Not canonical standard base64 (alphabet, padding, trailing bits, whitespace).
    Base64Invalid => ("base64_invalid", Decode, "decoding-rules"),
    /// The decoded bytes are not UTF-8.
    Utf8Invalid => ("utf8_invalid", Decode, "decoding-rules"),
    /// The text is not a single RFC 8259 JSON value.
    JsonInvalid => ("json_invalid", Decode, "json-rules"),
    /// An object has the same member name twice.
    JsonDuplicateKey => ("json_duplicate_key", Decode, "json-rules"),
    /// JSON nesting, string length, member count or number length exceeds a limit.
    JsonLimitExceeded => ("json_limit_exceeded", Decode, "limits"),
    /// A required member is absent.
    MissingField => ("missing_field", Schema, "mandate-json-types"),
    /// A member that the object does not define is present.
    UnknownField => ("unknown_field", Schema, "mandate-json-types"),
    /// A member has the wrong JSON type (e.g. a number where a string is required).
    FieldType => ("field_type", Schema, "mandate-json-types"),
    /// The native envelope names an AEP2 version this implementation does not speak.
    UnsupportedVersion => ("unsupported_version", Schema, "envelope-native"),
    /// The profile name is not one of the registered profiles.
    UnsupportedProfile => ("unsupported_profile", Schema, "profiles"),
    /// The envelope's profile is not the one the verifier expects.
    ProfileMismatch => ("profile_mismatch", Schema, "envelope-native"),
    /// An address or public key is malformed (length, alphabet, prefix).
    AddressInvalid => ("address_invalid", Schema, "mandate-json-types"),
    /// A mixed-case EVM address fails its EIP-55 checksum.
    AddressChecksum => ("address_checksum", Schema, "mandate-json-types"),
    /// An unsigned integer string is not canonical decimal, or an integer is not a plain JSON integer.
    UintInvalid => ("uint_invalid", Schema, "mandate-json-types"),
    /// An integer is outside the range its field allows.
    UintOutOfRange => ("uint_out_of_range", Schema, "mandate-fields"),
    /// The mandate's amount is zero.
    AmountZero => ("amount_zero", Schema, "mandate-fields"),
    /// The `ref` field is malformed for its profile.
    RefInvalid => ("ref_invalid", Schema, "mandate-fields"),
    /// A native envelope's domain object is malformed.
    DomainInvalid => ("domain_invalid", Schema, "envelope-native"),
    /// The signature text is not in the profile's encoding (0x-hex or base58).
    SignatureEncoding => ("signature_encoding", Signature, "profiles"),
    /// The decoded signature has the wrong length (65 bytes secp256k1, 64 bytes Ed25519).
    SignatureLength => ("signature_length", Signature, "eip712-signature-rules"),
    /// A secp256k1 signature's `v` is not 27 or 28.
    SignatureVInvalid => ("signature_v_invalid", Signature, "eip712-signature-rules"),
    /// A secp256k1 signature's `s` is above n/2 (EIP-2).
    SignatureHighS => ("signature_high_s", Signature, "eip712-signature-rules"),
    /// A scalar is out of range: secp256k1 r or s zero, r >= n; Ed25519 S >= L.
    SignatureScalarOutOfRange => ("signature_scalar_out_of_range", Signature, "eip712-signature-rules"),
    /// No public key can be recovered from the secp256k1 signature.
    SignatureUnrecoverable => ("signature_unrecoverable", Signature, "eip712-signature-rules"),
    /// The Ed25519 R component does not decode to a curve point.
    SignaturePointInvalid => ("signature_point_invalid", Signature, "ed25519-verification-rules"),
    /// The Ed25519 R component is not the canonical encoding of its point.
    SignaturePointNonCanonical => ("signature_point_non_canonical", Signature, "ed25519-verification-rules"),
    /// The Ed25519 R component is a small-order point.
    SignaturePointSmallOrder => ("signature_point_small_order", Signature, "ed25519-verification-rules"),
    /// The Ed25519 R component has a torsion component (mixed order).
    SignaturePointMixedOrder => ("signature_point_mixed_order", Signature, "ed25519-verification-rules"),
    /// The Ed25519 public key does not decode to a curve point.
    KeyInvalid => ("key_invalid", Signature, "ed25519-verification-rules"),
    /// The Ed25519 public key is not the canonical encoding of its point.
    KeyNonCanonical => ("key_non_canonical", Signature, "ed25519-verification-rules"),
    /// The Ed25519 public key is a small-order point (weak key).
    KeySmallOrder => ("key_small_order", Signature, "ed25519-verification-rules"),
    /// The Ed25519 public key has a torsion component (mixed order).
    KeyMixedOrder => ("key_mixed_order", Signature, "ed25519-verification-rules"),
    /// The signature does not verify for the declared signer over the signed bytes.
    SignatureInvalid => ("signature_invalid", Signature, "verification-order"),
    /// A validly signed native envelope names a domain other than the verifier's.
    DomainMismatch => ("domain_mismatch", Policy, "envelope-native"),
    /// The verification time is after the mandate's deadline.
    Expired => ("expired", Policy, "mandate-fields"),
    /// The receipt is signed by a settlement processor other than the expected one.
    ReceiptSpMismatch => ("receipt_sp_mismatch", Policy, "receipts"),
    /// The receipt's mandate digest is not the digest of the mandate it is checked against.
    ReceiptDigestMismatch => ("receipt_digest_mismatch", Policy, "receipts"),
    /// The receipt's enqueue deadline is later than the mandate's deadline.
    ReceiptDeadlineAfterMandate => ("receipt_deadline_after_mandate", Policy, "receipt-deadline-rule"),
    /// The mandate pays someone other than this payee.
    PayeeMismatch => ("payee_mismatch", Policy, "policy-payee"),
    /// The mandate pays in a token other than the asset the payee asks for.
    AssetMismatch => ("asset_mismatch", Policy, "policy-payee"),
    /// The amount is below the price.
    AmountInsufficient => ("amount_insufficient", Policy, "policy-amount"),
    /// The payee requires the exact price and the amount is above it.
    AmountNotExact => ("amount_not_exact", Policy, "policy-amount"),
    /// The deadline leaves the settlement processor less than its settlement window.
    DeadlineTooSoon => ("deadline_too_soon", Policy, "policy-deadline"),
    /// The deadline is further out than the payee accepts (which bounds replay state).
    DeadlineTooFar => ("deadline_too_far", Policy, "policy-deadline"),
    /// The mandate's `ref` does not bind it to the request it is presented with.
    RequestMismatch => ("request_mismatch", Policy, "request-binding"),
    /// This mandate (its id) was already accepted.
    MandateReplayed => ("mandate_replayed", Policy, "replay"),
    /// Another mandate with the same (payer, token, nonce) was already accepted.
    NonceReused => ("nonce_reused", Policy, "replay"),
    /// The replay store could not record the mandate, so it must not be accepted.
    ReplayStoreUnavailable => ("replay_store_unavailable", Policy, "replay"),
    /// The payee's payment request (Order Mode quote) expired before the mandate arrived.
    QuoteExpired => ("quote_expired", Policy, "order-mode"),
    /// A request that must pay carries no payment (x402 header, A2A or MCP mandate key).
    PaymentMissing => ("payment_missing", Decode, "x402-carriers"),
    /// A request carries more than one payment (two carriers, or one header twice).
    PaymentAmbiguous => ("payment_ambiguous", Decode, "x402-carriers"),
    /// An x402 payload's `x402Version` is not the version of the header it travels in.
    X402VersionUnsupported => ("x402_version_unsupported", Schema, "x402-payload"),
    /// An x402 payload names a scheme other than `aep2`.
    X402SchemeUnsupported => ("x402_scheme_unsupported", Schema, "x402-payload"),
    /// An x402 payload names a network other than the verifier's.
    X402NetworkMismatch => ("x402_network_mismatch", Schema, "x402-payload"),
    /// A request (HTTP, A2A message, MCP tool call) cannot be put in its canonical request descriptor.
    RequestDescriptorInvalid => ("request_descriptor_invalid", Schema, "x402-request-hash"),
    /// An A2A message is not a well-formed v1.0 or v0.3 `Message` (members, types, role and part
    /// spellings, AEP2 metadata keys).
    A2aMessageInvalid => ("a2a_message_invalid", Schema, "a2a-messages"),
    /// An MCP message is not a JSON-RPC 2.0 `tools/call` request (`jsonrpc`, `id`, `method`, `params`).
    McpRequestInvalid => ("mcp_request_invalid", Schema, "mcp-tool-call"),
    /// The params of an MCP `tools/call` request are malformed (`name`, `arguments`, `_meta`).
    McpParamsInvalid => ("mcp_params_invalid", Schema, "mcp-tool-call"),
    /// The payer's available funds (deposited balance minus reservations) do not cover the amount.
    InsufficientFunds => ("insufficient_funds", Policy, "sp-funds"),
    /// An HTTP request body is not declared as `application/json`.
    ContentTypeUnsupported => ("content_type_unsupported", Decode, "sp-enqueue"),
    /// The client did not deliver its HTTP request within the server's time limit.
    RequestTimeout => ("request_timeout", Decode, "sp-enqueue"),
    /// The HTTP method and path name no operation of the service.
    RouteUnknown => ("route_unknown", Decode, "sp-enqueue"),
    /// The settlement processor holds no mandate with this id.
    MandateUnknown => ("mandate_unknown", Policy, "sp-enqueue"),
    /// The payee accepted the mandate but could not get the settlement processor's receipt for it
    /// (unreachable, timed out, or an answer that is not a valid receipt); the payee may retry.
    SettlementUnavailable => ("settlement_unavailable", Policy, "x402-payee-processing"),
    /// Another presentation of this mandate is being processed (at this or another instance of
    /// the payee); present the same mandate again after the time the payee names.
    PaymentInProgress => ("payment_in_progress", Policy, "payee-payment-state"),
    /// The HTTP request is not a well-formed HTTP/1.1 request (request line, header syntax,
    /// framing).
    HttpRequestInvalid => ("http_request_invalid", Decode, "sp-enqueue"),
    /// A lane object breaks a value rule (allowance and period, window order, payee list,
    /// purpose length).
    LaneInvalid => ("lane_invalid", Schema, "lane-object"),
    /// A lane chain has no link, or more links than the maximum depth.
    LaneDepthExceeded => ("lane_depth_exceeded", Schema, "lane-chain"),
    /// A link's parent is not the previous link's id (zero for the root).
    LaneChainInvalid => ("lane_chain_invalid", Signature, "lane-verification"),
    /// A lane's signature does not verify for its grantor.
    LaneSignatureInvalid => ("lane_signature_invalid", Signature, "lane-verification"),
    /// A sub-lane is wider than its parent, or names another owner or asset.
    LaneAttenuationInvalid => ("lane_attenuation_invalid", Policy, "lane-chain"),
    /// The mandate's owner is not the owner of the lane chain it is signed under.
    LaneAgentMismatch => ("lane_agent_mismatch", Policy, "lane-verification"),
    /// The mandate's token is not the lane's asset.
    LaneAssetMismatch => ("lane_asset_mismatch", Policy, "lane-verification"),
    /// The verification time is before a link's `validFrom`.
    LaneNotYetValid => ("lane_not_yet_valid", Policy, "lane-verification"),
    /// The verification time, or the mandate's deadline, is after a link's `validUntil`.
    LaneExpired => ("lane_expired", Policy, "lane-verification"),
    /// The amount is above a link's per-payment cap.
    LanePaymentCapExceeded => ("lane_payment_cap_exceeded", Policy, "lane-verification"),
    /// The payee is not in a link's payee list.
    LanePayeeNotAllowed => ("lane_payee_not_allowed", Policy, "lane-verification"),
    /// The settlement processor does not enforce lane limits, so it accepts no mandate under a lane.
    LanesUnsupported => ("lanes_unsupported", Policy, "lane-settlement"),
    /// The amount would take a lane's, or an ancestor's, total above its `total`.
    LaneTotalExceeded => ("lane_total_exceeded", Policy, "lane-settlement"),
    /// A lane, or an ancestor, has had its `maxPayments` payments.
    LanePaymentsExhausted => ("lane_payments_exhausted", Policy, "lane-settlement"),
    /// The amount would take a lane's, or an ancestor's, spend in the current window above its `allowance`.
    LanePeriodExceeded => ("lane_period_exceeded", Policy, "lane-settlement"),
    /// The lane, or an ancestor, has been revoked.
    LaneRevoked => ("lane_revoked", Policy, "lane-settlement"),
    /// The request lacks the operator's credentials for an operator's route.
    Unauthorized => ("unauthorized", Decode, "sp-audit"),
    /// A lane revocation is not signed by the grantor of the revoked lane or of an ancestor (its
    /// owner or the agent of a link above it), or names a lane that is not the chain's last.
    LaneRevokerInvalid => ("lane_revoker_invalid", Policy, "lane-revocation"),
    /// The settlement processor has stored no lane with this id.
    LaneUnknown => ("lane_unknown", Policy, "lane-settlement"),
    /// A receipt's `lane` does not name the leaf lane of the mandate it is checked against, or a
    /// receipt for a lane mandate states no `lane`.
    ReceiptLaneMismatch => ("receipt_lane_mismatch", Policy, "receipts"),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Reason::ALL {
            let code = r.code();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
            assert_eq!(Reason::from_code(code), Some(*r));
        }
        assert_eq!(Reason::from_code("no_such_code"), None);
    }
}
