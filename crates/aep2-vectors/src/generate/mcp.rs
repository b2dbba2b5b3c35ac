//! `mcp.json`: the MCP binding (spec `aep2.md#binding-mcp`): the `tools/call` request read
//! strictly, the mandate in `params._meta` under `dev.aep2/mandate` (envelope object or base64
//! header text) or `x402/payment` (x402 v2 `PaymentPayload`, scheme `aep2`), exactly one of them,
//! request binding to the tool call, Order Mode retries against a quote, and known answers of
//! the tool-call hash (`aep2.md#mcp-request-hash`), including RFC 8785 number forms.
//!
//! Every expectation below is written from the rules of `aep2.md#binding-mcp`; mandate ids,
//! descriptors and hashes in the intermediates come from the reference implementation.

use super::edkit::{MINT, NETWORK, ed_context, ed_domain, ed_mandate, pubkey, sign_with, sol_context, sol_mandate};
use super::eip712::{CHAIN_ID, NOW, USDC, WALLET, addr, context, domain, mandate, payee, signed_for};
use super::{Case, Exp, FileBuilder, secp_key};
use crate::model::{Context, Kind, VectorFile};
use aep2::json::{Object, Value, parse, to_compact};
use aep2::{
    AccountId, Domain, EnvelopeForm, Mandate, PayerKey, PaymentRequest, Reason, SignedMandate, SpId, U256, sign_mandate,
};
use serde_json::{Value as J, json};

const BINDING: &str = "aep2.md#binding-mcp";
const KEYS: &str = "aep2.md#mcp-meta-keys";
const CALL: &str = "aep2.md#mcp-tool-call";
const CARRIERS: &str = "aep2.md#mcp-carriers";
const ORDER: &str = "aep2.md#mcp-order-mode";
const HASH: &str = "aep2.md#mcp-request-hash";
const BIND: &str = "aep2.md#request-binding";

const TOOL: &str = "get_weather";
const ARGS: &str = r#"{"location":"New York","units":"metric"}"#;

fn env_json(sm: &SignedMandate) -> J {
    serde_json::from_str(&to_compact(&sm.to_json())).unwrap_or_default()
}

fn args_value(text: &str) -> Option<Value> {
    parse(text, &aep2_mcp::MESSAGE_LIMITS).ok()
}

/// The tool-call hash of `TOOL` with `args` (JSON text).
fn call_hash(args: &str) -> [u8; 32] {
    aep2_mcp::request_hash(TOOL, args_value(args).as_ref()).unwrap_or_default()
}

/// A `tools/call` message text with the given `_meta` (members in order), `ARGS` as arguments.
fn message(meta: Option<J>) -> String {
    message_with(ARGS, meta)
}

fn message_with(args: &str, meta: Option<J>) -> String {
    let meta = meta.map(|m| format!(",\"_meta\":{m}")).unwrap_or_default();
    format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{TOOL}","arguments":{args}{meta}}}}}"#)
}

fn input(message: &str) -> J {
    json!({ "request": message })
}

fn bound_input(message: &str) -> J {
    json!({ "request": message, "requestBinding": true })
}

fn accepted(network: &str, amount: &str, asset: &str, pay_to: &str) -> J {
    json!({
        "scheme": "aep2", "network": network, "amount": amount, "asset": asset, "payTo": pay_to,
        "maxTimeoutSeconds": 60
    })
}

fn x402(accepted: &J, env: &J) -> J {
    json!({ "x402Version": 2, "accepted": accepted, "payload": env })
}

fn edit(v: &J, f: impl FnOnce(&mut serde_json::Map<String, J>)) -> J {
    let mut v = v.clone();
    if let J::Object(o) = &mut v {
        f(o);
    }
    v
}

fn object_json(o: &Object) -> J {
    serde_json::from_str(&to_compact(&Value::Object(o.clone()))).unwrap_or_default()
}

pub(crate) fn generate() -> VectorFile {
    let mut f = FileBuilder::new(
        "mcp",
        &[
            "The MCP binding (aep2.md#binding-mcp): extract_mcp cases give input.request, the text of one JSON-RPC message. It is read as a tools/call request (aep2.md#mcp-tool-call: at most 65536 bytes, strict JSON within the message limits, then jsonrpc, id, method and params), the payment is taken from params._meta under exactly one of dev.aep2/mandate and x402/payment (aep2.md#mcp-carriers), and the envelope is verified under the group's profile, domain and now.",
            "When input.requestBinding is true the payee requires request binding: a valid mandate's ref must then equal the tool-call hash of the message (aep2.md#mcp-request-hash). When input.quote is present the case is an Order Mode retry: the mandate is accepted against that quote (aep2.md#payment-request-acceptance) with clock skew 0 and the default horizon of 86400 seconds.",
            "The intermediates name the carrier (aep2-mandate or x402-payment) once the payment was found, the tool-call hash (requestHash) once the request was read, the quote hash for Order Mode, and the values of verify_mandate cases once the envelope was read.",
            "mcp_request_hash cases give input.name and, unless absent, input.arguments as JSON text, and expect the descriptor JCS({arguments, name}) and SHA-256(\"AEP2/mcp-tool-call/v1\" || 0x00 || descriptor) as intermediates, or a rejection.",
        ],
    );
    f.note(
        "valid",
        "BASIC",
        "A well-formed paid tool call in one carrier.",
        &[BINDING, CARRIERS],
    );
    f.note(
        "carrier",
        "DEFINED",
        "Which params._meta keys are read and how many may be present.",
        &[CARRIERS, KEYS],
    );
    f.note(
        "jsonrpc",
        "MODIFIED_PARAMETER",
        "The message is not a well-formed JSON-RPC tools/call request.",
        &[CALL],
    );
    f.note(
        "x402",
        "INTEROP",
        "The x402 MCP convention: an x402 v2 PaymentPayload of scheme aep2 under x402/payment.",
        &[CARRIERS, "aep2.md#x402-payload"],
    );
    f.note(
        "decoding",
        "CAN_OF_WORMS",
        "The message or the payment breaks the strict decoding rules (JSON, limits, base64).",
        &[CALL, "aep2.md#decoding-rules"],
    );
    f.note(
        "binding",
        "DEFINED",
        "Request binding of the mandate to the tool call.",
        &[HASH, BIND],
    );
    f.note(
        "order",
        "DEFINED",
        "Order Mode: the retry carries a mandate for the payee's quote.",
        &[ORDER],
    );
    f.note(
        "request_hash",
        "DEFINED",
        "Canonicalisation of the tool-call descriptor.",
        &[HASH],
    );

    // eip712 -------------------------------------------------------------------------------
    let key = secp_key("mcp-payer");
    let d = domain(CHAIN_ID, WALLET);
    let sign = |reference: [u8; 32], form: EnvelopeForm| -> SignedMandate {
        let mut m = mandate(&key, 0);
        m.reference = reference;
        match form {
            EnvelopeForm::Mvp => signed_for(&m, &key, &d),
            EnvelopeForm::Native => sign_mandate(
                &Mandate::Eip712(m.clone()),
                &Domain::Eip712(d),
                &PayerKey::Secp256k1(key.clone()),
                EnvelopeForm::Native,
            )
            .map(|(sm, _)| sm)
            .unwrap_or_else(|_| signed_for(&m, &key, &d)),
        }
    };
    let bound = sign(call_hash(ARGS), EnvelopeForm::Mvp);
    let env = env_json(&bound);
    let env_native = env_json(&sign(call_hash(ARGS), EnvelopeForm::Native));
    let network = format!("eip155:{CHAIN_ID}");
    let acc = accepted(&network, "1000", USDC, &payee("merchant-a").to_checksum());
    let native = |e: &J| Some(json!({ "dev.aep2/mandate": e }));
    let paid = message(native(&env));

    let g = f.group("eip712", Kind::ExtractMcp, context(Some(NOW)));
    let ok = |c: &str, i: J, flags: &[&'static str], refs: &[&'static str]| {
        Case::new(c, i, Exp::Valid).flags(flags).refs(&[BINDING]).refs(refs)
    };
    let inv = |c: &str, i: J, r: Reason, flags: &[&'static str], refs: &[&'static str]| {
        Case::new(c, i, Exp::Invalid(r)).flags(flags).refs(refs)
    };
    f.case(
        g,
        ok(
            "dev.aep2/mandate: the MVP envelope as a JSON object in params._meta",
            input(&paid),
            &["valid"],
            &[KEYS, CARRIERS],
        ),
    );
    f.case(
        g,
        ok(
            "dev.aep2/mandate: the native envelope object",
            input(&message(native(&env_native))),
            &["valid"],
            &[CARRIERS, "aep2.md#envelope-native"],
        ),
    );
    f.case(
        g,
        ok(
            "dev.aep2/mandate: the base64 header text an MVP client already holds",
            input(&message(Some(json!({ "dev.aep2/mandate": bound.encode() })))),
            &["valid"],
            &[CARRIERS, "aep2.md#decoding-rules"],
        ),
    );
    f.case(
        g,
        ok(
            "x402/payment: an x402 v2 PaymentPayload of scheme aep2 (x402-over-MCP)",
            input(&message(Some(json!({ "x402/payment": x402(&acc, &env) })))),
            &["valid", "x402"],
            &[CARRIERS],
        ),
    );
    f.case(
        g,
        ok(
            "request binding required: ref is the hash of this tool call",
            bound_input(&paid),
            &["valid", "binding"],
            &[HASH, BIND],
        ),
    );
    f.case(
        g,
        ok(
            "request binding: the same call with its arguments reordered hashes alike",
            bound_input(&message_with(
                r#"{"units":"metric","location":"New York"}"#,
                native(&env),
            )),
            &["valid", "binding"],
            &[HASH],
        ),
    );
    let numbers_a = r#"{"lat":40.70,"lon":-74.0,"days":3}"#;
    let numbers_b = r#"{"days":3.0,"lat":4.07e1,"lon":-74}"#;
    let num_env = env_json(&sign(call_hash(numbers_a), EnvelopeForm::Mvp));
    f.case(
        g,
        ok(
            "request binding: a mandate bound to {lat:40.70, lon:-74.0, days:3} pays for {days:3.0, lat:4.07e1, lon:-74} (RFC 8785 number form)",
            bound_input(&message_with(numbers_b, native(&num_env))),
            &["valid", "binding"],
            &[HASH, "aep2.md#json-rules"],
        ),
    );
    f.case(
        g,
        ok(
            "other _meta keys (progressToken, io.modelcontextprotocol/…) are ignored; a string id",
            input(
                &message(Some(json!({
                    "progressToken": "p-1",
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "dev.aep2/mandate": env
                })))
                .replace("\"id\":7", "\"id\":\"call-7\""),
            ),
            &["valid", "carrier"],
            &[KEYS, CALL],
        ),
    );
    let no_args = env_json(&sign(
        aep2_mcp::request_hash(TOOL, None).unwrap_or_default(),
        EnvelopeForm::Mvp,
    ));
    f.case(
        g,
        ok(
            "request binding with no arguments member: the descriptor's arguments is {}",
            bound_input(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{TOOL}","_meta":{{"dev.aep2/mandate":{no_args}}}}}}}"#
            )),
            &["valid", "binding"],
            &[HASH],
        ),
    );

    f.case(
        g,
        inv(
            "no _meta at all",
            input(&message(None)),
            Reason::PaymentMissing,
            &["carrier"],
            &[CARRIERS],
        ),
    );
    f.case(
        g,
        inv(
            "the mandate under a key this binding does not define (aep2/mandate)",
            input(&message(Some(json!({ "aep2/mandate": env })))),
            Reason::PaymentMissing,
            &["carrier"],
            &[CARRIERS, KEYS],
        ),
    );
    f.case(
        g,
        inv(
            "the mandate in the x402 payment-response key instead of the request key",
            input(&message(Some(json!({ "x402/payment-response": env })))),
            Reason::PaymentMissing,
            &["carrier"],
            &[CARRIERS, KEYS],
        ),
    );
    f.case(
        g,
        inv(
            "the mandate inside arguments instead of _meta",
            input(&message_with(
                &format!(r#"{{"location":"New York","dev.aep2/mandate":{env}}}"#),
                None,
            )),
            Reason::PaymentMissing,
            &["carrier"],
            &[CARRIERS],
        ),
    );
    f.case(
        g,
        inv(
            "both carriers at once: no precedence, rejected",
            input(&message(Some(
                json!({ "dev.aep2/mandate": env, "x402/payment": x402(&acc, &env) }),
            ))),
            Reason::PaymentAmbiguous,
            &["carrier"],
            &[CARRIERS],
        ),
    );
    for (c, v) in [
        ("dev.aep2/mandate as a number", json!(42)),
        ("dev.aep2/mandate as an array holding the envelope", json!([env])),
        ("dev.aep2/mandate as null", J::Null),
    ] {
        f.case(
            g,
            inv(
                c,
                input(&message(Some(json!({ "dev.aep2/mandate": v })))),
                Reason::FieldType,
                &["carrier"],
                &[CARRIERS],
            ),
        );
    }
    f.case(
        g,
        inv(
            "x402/payment as base64 text (the header form) instead of the object",
            input(&message(Some(
                json!({ "x402/payment": super::header_of_text(&x402(&acc, &env).to_string()) }),
            ))),
            Reason::FieldType,
            &["x402"],
            &[CARRIERS],
        ),
    );
    let x402_edit = |f2: &dyn Fn(&mut serde_json::Map<String, J>)| {
        input(&message(Some(json!({ "x402/payment": edit(&x402(&acc, &env), f2) }))))
    };
    let x402_cases: Vec<(&str, J, Reason)> = vec![
        (
            "x402/payment with x402Version 1",
            x402_edit(&|o| {
                o.insert("x402Version".into(), json!(1));
            }),
            Reason::X402VersionUnsupported,
        ),
        (
            "x402/payment with accepted.scheme exact",
            x402_edit(&|o| {
                o.insert(
                    "accepted".into(),
                    edit(&acc, |a| {
                        a.insert("scheme".into(), json!("exact"));
                    }),
                );
            }),
            Reason::X402SchemeUnsupported,
        ),
        (
            "x402/payment for another chain (Base mainnet)",
            x402_edit(&|o| {
                o.insert(
                    "accepted".into(),
                    edit(&acc, |a| {
                        a.insert("network".into(), json!("eip155:8453"));
                    }),
                );
            }),
            Reason::X402NetworkMismatch,
        ),
        (
            "x402/payment without payload",
            x402_edit(&|o| {
                o.shift_remove("payload");
            }),
            Reason::MissingField,
        ),
    ];
    for (c, i, r) in x402_cases {
        f.case(g, inv(c, i, r, &["x402"], &["aep2.md#x402-payload"]));
    }
    let msg_cases: Vec<(&str, String, Reason)> = vec![
        (
            "jsonrpc \"1.0\"",
            paid.replace("\"2.0\"", "\"1.0\""),
            Reason::McpRequestInvalid,
        ),
        (
            "no id (a notification)",
            paid.replace("\"id\":7,", ""),
            Reason::McpRequestInvalid,
        ),
        (
            "id null",
            paid.replace("\"id\":7", "\"id\":null"),
            Reason::McpRequestInvalid,
        ),
        (
            "method tools/list",
            paid.replace("tools/call", "tools/list"),
            Reason::McpRequestInvalid,
        ),
        (
            "an unknown top-level member",
            paid.replace("\"id\":7", "\"id\":7,\"extra\":1"),
            Reason::McpRequestInvalid,
        ),
        (
            "params as an array",
            format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":[{env}]}}"#),
            Reason::McpRequestInvalid,
        ),
        (
            "params.name missing",
            paid.replace(&format!("\"name\":\"{TOOL}\","), ""),
            Reason::McpParamsInvalid,
        ),
        (
            "params.name empty",
            paid.replace(&format!("\"name\":\"{TOOL}\""), "\"name\":\"\""),
            Reason::McpParamsInvalid,
        ),
        (
            "params.arguments as an array",
            message_with("[\"New York\"]", native(&env)),
            Reason::McpParamsInvalid,
        ),
        (
            "params._meta as a string",
            message_with(ARGS, Some(json!(bound.encode()))),
            Reason::McpParamsInvalid,
        ),
    ];
    for (c, m, r) in msg_cases {
        f.case(g, inv(c, input(&m), r, &["jsonrpc"], &[CALL]));
    }
    f.case(
        g,
        inv(
            "a truncated message",
            input(&paid[..paid.len() - 1]),
            Reason::JsonInvalid,
            &["decoding"],
            &[CALL, "aep2.md#json-rules"],
        ),
    );
    f.case(
        g,
        inv(
            "a duplicate member inside arguments: the call has no single meaning",
            input(&message_with(
                r#"{"location":"New York","location":"Paris"}"#,
                native(&env),
            )),
            Reason::JsonDuplicateKey,
            &["decoding"],
            &[CALL, "aep2.md#json-rules"],
        ),
    );
    f.case(
        g,
        inv(
            "a message over 65536 bytes",
            input(&message_with(
                &format!(
                    r#"{{"notes":[{}]}}"#,
                    vec![format!("\"{}\"", "x".repeat(16_000)); 5].join(",")
                ),
                native(&env),
            )),
            Reason::HeaderTooLarge,
            &["decoding"],
            &[CALL],
        ),
    );
    f.case(
        g,
        inv(
            "an envelope object with a 2000-byte string: within the message limits, beyond the envelope limits",
            input(&message(native(&edit(&env, |o| {
                o.insert("memo".into(), json!("m".repeat(2000)));
            })))),
            Reason::JsonLimitExceeded,
            &["decoding"],
            &[CARRIERS, "aep2.md#limits"],
        ),
    );
    f.case(
        g,
        inv(
            "dev.aep2/mandate text that is not canonical base64 (a line break)",
            input(&message(Some(json!({
                "dev.aep2/mandate": format!("{}\n{}", &bound.encode()[..76], &bound.encode()[76..])
            })))),
            Reason::Base64Invalid,
            &["decoding"],
            &[CARRIERS, "aep2.md#decoding-rules"],
        ),
    );
    let mut forged = bound.clone();
    if let Mandate::Eip712(m) = &mut forged.mandate {
        m.amount = U256::from_u64(1);
    }
    f.case(
        g,
        inv(
            "the envelope's amount changed after signing",
            input(&message(native(&env_json(&forged)))),
            Reason::SignatureInvalid,
            &["carrier"],
            &["aep2.md#verification-order"],
        ),
    );
    f.case(
        g,
        inv(
            "request binding required: the mandate was signed for other arguments (Paris)",
            bound_input(&message_with(r#"{"location":"Paris","units":"metric"}"#, native(&env))),
            Reason::RequestMismatch,
            &["binding"],
            &[HASH],
        ),
    );
    f.case(
        g,
        inv(
            "request binding required: the same arguments for another tool",
            bound_input(&paid.replace(TOOL, "get_forecast")),
            Reason::RequestMismatch,
            &["binding"],
            &[HASH],
        ),
    );

    // Order Mode ---------------------------------------------------------------------------
    let quote = PaymentRequest {
        domain: Domain::Eip712(d),
        request_id: "mcp-order-0001".into(),
        payee: AccountId::Evm(payee("merchant-a")),
        asset: AccountId::Evm(addr(USDC)),
        amount: U256::from_u64(1000),
        expiry: NOW + 300,
        description: "get_weather for New York".into(),
        settlement_processor: SpId::Evm(addr("0x405B10be927D3BF157196C995d8131c6A097673c")),
        settlement_window: 300,
    };
    let q = object_json(&quote.to_json());
    let for_quote = env_json(&sign(quote.hash(), EnvelopeForm::Mvp));
    let order_in = |m: &str, q: &J| json!({ "request": m, "quote": q });
    let g = f.group("order-eip712", Kind::ExtractMcp, context(Some(NOW)));
    f.case(
        g,
        ok(
            "Order Mode retry: the mandate's ref is the quote hash",
            order_in(&message(native(&for_quote)), &q),
            &["valid", "order"],
            &[ORDER, "aep2.md#payment-request-binding"],
        ),
    );
    let acc_q = edit(&acc, |a| {
        a.insert("maxTimeoutSeconds".into(), json!(300));
        a.insert("extra".into(), json!({ "quote": q, "settlementWindow": 300 }));
    });
    f.case(
        g,
        ok(
            "Order Mode retry over x402/payment, accepted.extra.quote echoing the quote",
            order_in(&message(Some(json!({ "x402/payment": x402(&acc_q, &for_quote) }))), &q),
            &["valid", "order", "x402"],
            &[ORDER, CARRIERS],
        ),
    );
    f.case(
        g,
        inv(
            "Order Mode retry whose mandate is bound to the tool call instead of the quote",
            order_in(&paid, &q),
            Reason::RequestMismatch,
            &["order"],
            &[ORDER, "aep2.md#payment-request-binding"],
        ),
    );
    let expired = PaymentRequest {
        expiry: NOW - 1,
        ..quote.clone()
    };
    let for_expired = env_json(&sign(expired.hash(), EnvelopeForm::Mvp));
    f.case(
        g,
        inv(
            "Order Mode retry after the quote's expiry",
            order_in(&message(native(&for_expired)), &object_json(&expired.to_json())),
            Reason::QuoteExpired,
            &["order"],
            &[ORDER, "aep2.md#payment-request-acceptance"],
        ),
    );
    let cheaper = PaymentRequest {
        amount: U256::from_u64(1),
        ..quote.clone()
    };
    f.case(
        g,
        inv(
            "Order Mode retry whose x402 accepted.extra.quote was lowered to 1: judged against the payee's own quote",
            order_in(
                &message(Some(json!({ "x402/payment": x402(
                    &edit(&acc_q, |a| {
                        a.insert("amount".into(), json!("1"));
                        a.insert("extra".into(), json!({ "quote": object_json(&cheaper.to_json()), "settlementWindow": 300 }));
                    }),
                    &env_json(&{
                        let mut m = mandate(&key, 0);
                        m.amount = U256::from_u64(1);
                        m.reference = cheaper.hash();
                        signed_for(&m, &key, &d)
                    }),
                ) }))),
                &q,
            ),
            Reason::AmountInsufficient,
            &["order", "x402"],
            &[ORDER, "aep2.md#payment-request-acceptance"],
        ),
    );

    // ed25519 ------------------------------------------------------------------------------
    let mut em = ed_mandate("mcp-payer", 0, NOW + 600);
    em.reference = call_hash(ARGS);
    let ed = sign_with(
        &Mandate::Ed25519(em),
        &Domain::Ed25519(ed_domain()),
        "mcp-payer",
        EnvelopeForm::Native,
    );
    let g = f.group("ed25519", Kind::ExtractMcp, ed_context(Some(NOW)));
    f.case(
        g,
        ok(
            "native ed25519 envelope under dev.aep2/mandate, bound to the call",
            bound_input(&message(native(&env_json(&ed)))),
            &["valid", "binding"],
            &[CARRIERS, HASH],
        ),
    );
    let ed_acc = accepted(NETWORK, "750", MINT, &pubkey("merchant-a").to_string());
    f.case(
        g,
        ok(
            "x402/payment naming the domain's CAIP-2 network",
            input(&message(Some(json!({ "x402/payment": x402(&ed_acc, &env_json(&ed)) })))),
            &["valid", "x402"],
            &[CARRIERS, "aep2.md#x402-payment-required"],
        ),
    );
    f.case(
        g,
        inv(
            "x402/payment naming an eip155 network to an ed25519 payee",
            input(&message(Some(json!({ "x402/payment": x402(&acc, &env_json(&ed)) })))),
            Reason::X402NetworkMismatch,
            &["x402"],
            &["aep2.md#x402-payload"],
        ),
    );

    // solana-mvp ---------------------------------------------------------------------------
    let sol = sign_with(
        &Mandate::SolanaMvp(sol_mandate("mcp-payer", 0, NOW + 600)),
        &Domain::SolanaMvp,
        "mcp-payer",
        EnvelopeForm::Mvp,
    );
    let g = f.group("solana-mvp", Kind::ExtractMcp, sol_context(Some(NOW)));
    f.case(
        g,
        ok(
            "the MVP Solana envelope object under dev.aep2/mandate (no binding required)",
            input(&message(native(&env_json(&sol)))),
            &["valid"],
            &[CARRIERS],
        ),
    );
    f.case(
        g,
        inv(
            "a payee requiring request binding cannot accept solana-mvp",
            bound_input(&message(native(&env_json(&sol)))),
            Reason::RequestMismatch,
            &["binding"],
            &[HASH, BIND],
        ),
    );

    // tool-call hash -----------------------------------------------------------------------
    let g = f.group("request-hash", Kind::McpRequestHash, Context::default());
    let h = |name: &str, args: Option<&str>| match args {
        Some(a) => json!({ "name": name, "arguments": a }),
        None => json!({ "name": name }),
    };
    let long_name = "t".repeat(129);
    // The arguments object is depth 1, so sixteen nested arrays reach depth 17.
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(16), "]".repeat(16));
    let hashes: Vec<(&str, J, Exp)> = vec![
        (
            "the worked example of the spec",
            h(TOOL, Some(r#"{"location": "New York", "units": "metric"}"#)),
            Exp::Valid,
        ),
        (
            "the same call with members reordered and whitespace removed: same descriptor",
            h(TOOL, Some(r#"{"units":"metric","location":"New York"}"#)),
            Exp::Valid,
        ),
        (
            "RFC 8785 number forms: 1.50 → 1.5, 1E3 → 1000, 1e21 → 1e+21, -0 → 0, 1e-7 stays",
            h(
                "calc",
                Some(r#"{"a":1.50,"b":1E3,"c":1e21,"d":-0,"e":1e-7,"f":0.000001}"#),
            ),
            Exp::Valid,
        ),
        (
            "numbers beyond 2^53 take their double value: 9007199254740993 → 9007199254740992",
            h("calc", Some(r#"{"n":9007199254740993,"m":1234567890123456789}"#)),
            Exp::Valid,
        ),
        (
            "non-ASCII member names sorted by UTF-16 code units (RFC 8785 §3.2.3)",
            h(
                "i18n",
                Some(r#"{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}"#),
            ),
            Exp::Valid,
        ),
        (
            "escapes written the RFC 8785 way: \\u00e9 → é, \\/ → /, control characters as \\u001f",
            h("echo", Some(r#"{"s":"caf\u00e9 \/ \u001f \"q\""}"#)),
            Exp::Valid,
        ),
        (
            "nested objects and arrays are canonicalised at every depth",
            h(TOOL, Some(r#"{"z":{"b":[{"y":1.0,"x":true}],"a":null},"a":[]}"#)),
            Exp::Valid,
        ),
        ("no arguments member: hashed as {}", h(TOOL, None), Exp::Valid),
        (
            "empty arguments object: the same hash as none",
            h(TOOL, Some("{}")),
            Exp::Valid,
        ),
        ("a non-ASCII tool name", h("météo", Some("{}")), Exp::Valid),
        (
            "an empty tool name",
            h("", Some("{}")),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        ),
        (
            "a tool name of 129 bytes",
            h(&long_name, Some("{}")),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        ),
        (
            "arguments an array",
            h(TOOL, Some("[1,2]")),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        ),
        (
            "arguments a string",
            h(TOOL, Some("\"New York\"")),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        ),
        (
            "arguments with a duplicate member",
            h(TOOL, Some(r#"{"a":1,"a":2}"#)),
            Exp::Invalid(Reason::JsonDuplicateKey),
        ),
        (
            "arguments with a number outside the double range",
            h("calc", Some(r#"{"n":1e400}"#)),
            Exp::Invalid(Reason::JsonInvalid),
        ),
        (
            "arguments with a lone surrogate escape",
            h(TOOL, Some(r#"{"s":"\ud800"}"#)),
            Exp::Invalid(Reason::JsonInvalid),
        ),
        (
            "arguments nested 17 deep (limit 16)",
            h(TOOL, Some(&deep)),
            Exp::Invalid(Reason::JsonLimitExceeded),
        ),
    ];
    for (c, i, e) in hashes {
        f.case(g, Case::new(c, i, e).flags(&["request_hash"]).refs(&[HASH]));
    }

    // Choice points (issue 10): an input failing two steps, the earlier one named by the
    // spec's order; limits, depth and name length at their boundaries. Appended so that no
    // issued id moves.
    let g = f.group("check-order", Kind::ExtractMcp, context(Some(NOW)));
    let oversized = message_with(
        &format!(
            r#"{{"notes":[{}]}}"#,
            vec![format!("\"{}\"", "x".repeat(16_000)); 5].join(",")
        ),
        native(&env),
    );
    let x402_big = |version: u64| {
        let notes: serde_json::Map<String, J> = (0..9).map(|i| (format!("note{i}"), json!("n".repeat(1000)))).collect();
        let mut p = x402(&acc, &env);
        if let J::Object(o) = &mut p {
            o.insert("x402Version".into(), json!(version));
            o.insert("extensions".into(), J::Object(notes));
        }
        input(&message(Some(json!({ "x402/payment": p }))))
    };
    let nested = |arrays: usize| format!("{{\"a\":{}{}}}", "[".repeat(arrays), "]".repeat(arrays));
    let cases: Vec<(&str, J, Exp, &[&'static str], &'static str)> = vec![
        (
            "a message over 65536 bytes that is also not JSON (truncated): the size (step 1) before parsing",
            input(&oversized[..oversized.len() - 1]),
            Exp::Invalid(Reason::HeaderTooLarge),
            &["decoding"],
            CALL,
        ),
        (
            "jsonrpc \"1.0\" and an empty params.name: JSON-RPC (step 3) before params (step 4)",
            input(
                &paid
                    .replace("\"2.0\"", "\"1.0\"")
                    .replace(&format!("\"name\":\"{TOOL}\""), "\"name\":\"\""),
            ),
            Exp::Invalid(Reason::McpRequestInvalid),
            &["jsonrpc"],
            CALL,
        ),
        (
            "both carriers, dev.aep2/mandate a number: both (step 2) before a carrier's type (step 3)",
            input(&message(Some(
                json!({ "dev.aep2/mandate": 42, "x402/payment": x402(&acc, &env) }),
            ))),
            Exp::Invalid(Reason::PaymentAmbiguous),
            &["carrier"],
            CARRIERS,
        ),
        (
            "x402/payment whose PaymentPayload is over 8192 bytes compact (extensions of 9000 bytes) while its envelope is not: the whole PaymentPayload is held to the limits",
            x402_big(2),
            Exp::Invalid(Reason::HeaderTooLarge),
            &["x402", "decoding"],
            CARRIERS,
        ),
        (
            "x402/payment over 8192 bytes with x402Version 1: the limits before the PaymentPayload's checks",
            x402_big(1),
            Exp::Invalid(Reason::HeaderTooLarge),
            &["x402", "decoding"],
            CARRIERS,
        ),
        (
            "message nesting depth exactly 16 (the message object is depth 1, the arguments object depth 3): accepted",
            input(&message_with(&nested(13), native(&env))),
            Exp::Valid,
            &["decoding"],
            CALL,
        ),
        (
            "message nesting depth 17 inside the arguments (depth 15 counted from the arguments): over the limit",
            input(&message_with(&nested(14), native(&env))),
            Exp::Invalid(Reason::JsonLimitExceeded),
            &["decoding"],
            CALL,
        ),
        (
            "params.name of 65 characters é, 130 bytes of UTF-8: over 128 bytes",
            input(&paid.replace(TOOL, &"\u{e9}".repeat(65))),
            Exp::Invalid(Reason::McpParamsInvalid),
            &["jsonrpc"],
            CALL,
        ),
        (
            "id 7.0: a number that is not a JSON integer",
            input(&paid.replace("\"id\":7", "\"id\":7.0")),
            Exp::Invalid(Reason::McpRequestInvalid),
            &["jsonrpc"],
            CALL,
        ),
    ];
    for (c, i, e, flags, anchor) in cases {
        f.case(g, Case::new(c, i, e).flags(flags).refs(&[anchor]));
    }

    // Order Mode: where the quote check runs, and the defaults a case does not state.
    let g = f.group("order-check-order", Kind::ExtractMcp, context(Some(NOW)));
    let elsewhere = PaymentRequest {
        domain: Domain::Eip712(domain(8453, WALLET)),
        ..quote.clone()
    };
    let q_elsewhere = object_json(&elsewhere.to_json());
    let for_quote_until = |deadline: u64| {
        let mut m = mandate(&key, 0);
        m.reference = quote.hash();
        m.deadline = deadline;
        env_json(&signed_for(&m, &key, &d))
    };
    let order_cases: Vec<(&str, J, Exp, &'static str)> = vec![
        (
            "a quote for another chain and jsonrpc \"1.0\": the message is read (aep2.md#mcp-tool-call) before the quote is checked",
            order_in(&message(native(&for_quote)).replace("\"2.0\"", "\"1.0\""), &q_elsewhere),
            Exp::Invalid(Reason::McpRequestInvalid),
            CALL,
        ),
        (
            "a quote for another chain and both carriers: the quote is checked before the carriers (aep2.md#mcp-carriers)",
            order_in(
                &message(Some(
                    json!({ "dev.aep2/mandate": for_quote, "x402/payment": x402(&acc_q, &for_quote) }),
                )),
                &q_elsewhere,
            ),
            Exp::Invalid(Reason::DomainMismatch),
            ORDER,
        ),
        (
            "a mandate whose deadline is now + 86400: within the default horizon",
            order_in(&message(native(&for_quote_until(NOW + 86_400))), &q),
            Exp::Valid,
            ORDER,
        ),
        (
            "a mandate whose deadline is now + 86401: past the default horizon of 86400 seconds",
            order_in(&message(native(&for_quote_until(NOW + 86_401))), &q),
            Exp::Invalid(Reason::DeadlineTooFar),
            ORDER,
        ),
        (
            "a mandate whose deadline passed one second ago: expired, no clock skew by default",
            order_in(&message(native(&for_quote_until(NOW - 1))), &q),
            Exp::Invalid(Reason::Expired),
            ORDER,
        ),
    ];
    for (c, i, e, anchor) in order_cases {
        f.case(
            g,
            Case::new(c, i, e)
                .flags(&["order"])
                .refs(&[anchor, "aep2.md#payment-request-acceptance"]),
        );
    }

    // The tool-call hash reads the arguments alone: the arguments object is depth 1.
    let g = f.group("request-hash-limits", Kind::McpRequestHash, Context::default());
    let hashes: Vec<(&str, J, Exp)> = vec![
        (
            "arguments nested exactly 16 deep, the arguments object being depth 1: accepted",
            h(TOOL, Some(&nested(15))),
            Exp::Valid,
        ),
        (
            "a tool name of 64 characters é, 128 bytes of UTF-8: the longest accepted",
            h(&"\u{e9}".repeat(64), Some("{}")),
            Exp::Valid,
        ),
        (
            "a tool name of 65 characters é, 130 bytes of UTF-8: too long",
            h(&"\u{e9}".repeat(65), Some("{}")),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        ),
    ];
    for (c, i, e) in hashes {
        f.case(g, Case::new(c, i, e).flags(&["request_hash"]).refs(&[HASH]));
    }
    with_intermediates(f.finish())
}

/// Records the reference implementation's intermediates (carrier, hashes, mandate id, …) for
/// this topic's kinds, as `FileBuilder::finish` does for the kinds it knows.
fn with_intermediates(mut file: VectorFile) -> VectorFile {
    for g in &mut file.test_groups {
        let snapshot = crate::model::TestGroup {
            tests: Vec::new(),
            ..g.clone()
        };
        for t in &mut g.tests {
            if let Ok(a) = crate::check::answer(&snapshot, t)
                && !a.intermediates.is_empty()
            {
                t.intermediates = Some(a.intermediates);
            }
        }
    }
    file
}
