//! `a2a.json`: the A2A binding (spec `aep2.md#binding-a2a`): the mandate in
//! `Message.metadata["aep2.dev/mandate"]` of an A2A v1.0 or v0.3 message, the carrier rules
//! (exactly one payment, in the message's own metadata), the message shape checks, Intent Mode
//! under a payee policy bound to the message's request hash, Order Mode replies judged against
//! the payee's quote, and known answers of the A2A request hash (`aep2.md#a2a-request-hash`).
//!
//! Every expectation below is written from the rules of `aep2.md#binding-a2a`; request hashes,
//! quote hashes and mandate ids are computed with the reference implementation only to build
//! the inputs (a mandate must sign the hash of its message) and to fill the intermediates.

use super::edkit::{MINT, ed_context, ed_domain, ed_mandate, pubkey, sign_with, sol_context, sol_mandate};
use super::eip712::{CHAIN_ID, NOW, USDC, WALLET, context, domain, mandate, payee, signed_for};
use super::{Case, Exp, FileBuilder, secp_key};
use crate::model::{Context, Kind, VectorFile};
use aep2::codec::base64_encode;
use aep2::json::{Limits, parse, to_compact};
use aep2::{Domain, EnvelopeForm, Mandate, PaymentRequest, Reason, SignedMandate};
use serde_json::{Value as J, json};

const BINDING: &str = "aep2.md#binding-a2a";
const MESSAGES: &str = "aep2.md#a2a-messages";
const METADATA: &str = "aep2.md#a2a-metadata";
const EXTRACTION: &str = "aep2.md#a2a-extraction";
const INTENT: &str = "aep2.md#a2a-intent";
const ORDER: &str = "aep2.md#a2a-order";
const HASH: &str = "aep2.md#a2a-request-hash";
const URI: &str = aep2_a2a::EXTENSION_URI;

fn env_json(sm: &SignedMandate) -> J {
    serde_json::from_str(&to_compact(&sm.to_json())).unwrap_or_default()
}

fn edit(v: &J, f: impl FnOnce(&mut serde_json::Map<String, J>)) -> J {
    let mut v = v.clone();
    if let J::Object(o) = &mut v {
        f(o);
    }
    v
}

/// The request of the Intent Mode cases, in v1.0 spelling.
fn request_v1(id: &str) -> J {
    json!({
        "messageId": id,
        "contextId": "ctx-4711",
        "role": "ROLE_USER",
        "parts": [
            { "text": "Summarise the attached Q3 report in five bullet points." },
            { "url": "https://files.example.com/q3.pdf", "filename": "q3.pdf", "mediaType": "application/pdf" },
            { "data": { "maxWords": 120, "temperature": 0.25, "lang": "en" } }
        ]
    })
}

/// The same request in v0.3 spelling.
fn request_v03(id: &str) -> J {
    json!({
        "kind": "message",
        "messageId": id,
        "contextId": "ctx-4711",
        "role": "user",
        "parts": [
            { "kind": "text", "text": "Summarise the attached Q3 report in five bullet points." },
            { "kind": "file", "file": { "uri": "https://files.example.com/q3.pdf", "name": "q3.pdf", "mimeType": "application/pdf" } },
            { "kind": "data", "data": { "maxWords": 120, "temperature": 0.25, "lang": "en" } }
        ]
    })
}

fn request_hash(m: &J) -> [u8; 32] {
    aep2_a2a::request_hash(&m.to_string()).unwrap_or_default()
}

/// `m` with the mandate attached the way a payer attaches it.
fn paying(m: &J, env: &J) -> J {
    edit(m, |o| {
        o.insert(
            "metadata".into(),
            json!({ "aep2.dev/status": "payment-submitted", "aep2.dev/mandate": env }),
        );
        o.insert("extensions".into(), json!([URI]));
    })
}

fn with_meta(m: &J, key: &str, value: J) -> J {
    edit(m, |o| {
        let mut meta = o.get("metadata").cloned().unwrap_or_else(|| json!({}));
        if let J::Object(mo) = &mut meta {
            mo.insert(key.into(), value);
        }
        o.insert("metadata".into(), meta);
    })
}

fn input(m: &J) -> J {
    json!({ "a2aMessage": m.to_string() })
}

fn input_text(text: &str) -> J {
    json!({ "a2aMessage": text })
}

fn with_policy(i: J, policy: &J) -> J {
    edit(&i, |o| {
        o.insert("payeePolicy".into(), policy.clone());
    })
}

fn with_quote(i: J, quote: &J) -> J {
    edit(&i, |o| {
        o.insert("quote".into(), quote.clone());
        o.insert("orderOptions".into(), json!({ "clockSkew": 0, "maxHorizon": 3600 }));
    })
}

fn quote_hash(q: &J) -> [u8; 32] {
    parse(&q.to_string(), &Limits::AEP2)
        .and_then(|v| PaymentRequest::from_json(&v))
        .map(|q| q.hash())
        .unwrap_or_default()
}

fn ctx_now(c: Context) -> Context {
    Context { now: Some(NOW), ..c }
}

pub(crate) fn generate() -> VectorFile {
    let mut f = FileBuilder::new(
        "a2a",
        &[
            "The A2A binding (aep2.md#binding-a2a): extract_a2a cases give input.a2aMessage, the JSON text of one A2A Message in v1.0 or v0.3 spelling. The message is read (64 KiB, strict JSON, the shape rules of aep2.md#a2a-messages), exactly one payment must be in metadata[\"aep2.dev/mandate\"] (payment_missing, payment_ambiguous), the mandate must be the envelope JSON object and is re-read under the envelope limits, then verified under the group's profile, domain and now.",
            "With input.payeePolicy the case is Intent Mode (aep2.md#a2a-intent): the payee policy applies with the message's A2A request hash as the expected request hash. With input.quote and input.orderOptions it is an Order Mode reply (aep2.md#a2a-order), accepted against the quote as the payee issued it. With neither, core verification only.",
            "The intermediates add a2aVersion (1.0 or 0.3) once the message is read and requestHash when it is a user message, and the values of verify_mandate cases once the envelope is read.",
            "a2a_request_hash cases give input.a2aMessage and expect the descriptor JCS({contextId?, parts, referenceTaskIds?, taskId?}) and SHA-256(\"AEP2/a2a-message/v1\" || 0x00 || descriptor) as intermediates, or a rejection.",
        ],
    );
    f.note(
        "valid",
        "BASIC",
        "A well-formed payment on an A2A message.",
        &[BINDING, EXTRACTION],
    );
    f.note(
        "v0.3",
        "INTEROP",
        "The message is spelt as A2A v0.3 (kind discriminators, lowercase roles).",
        &[MESSAGES],
    );
    f.note(
        "carrier",
        "DEFINED",
        "Where the mandate travels and how many payments a message may carry.",
        &[EXTRACTION, METADATA],
    );
    f.note(
        "shape",
        "MODIFIED_PARAMETER",
        "The A2A message itself is malformed or mixes the v1.0 and v0.3 spellings.",
        &[MESSAGES],
    );
    f.note(
        "decoding",
        "CAN_OF_WORMS",
        "The message or the embedded envelope breaks the strict JSON rules or a size limit.",
        &[EXTRACTION, "aep2.md#limits"],
    );
    f.note(
        "binding",
        "DEFINED",
        "The mandate's ref must be the request hash of the message it travels with.",
        &[INTENT, HASH],
    );
    f.note(
        "order",
        "DEFINED",
        "An Order Mode reply judged against the payee's quote.",
        &[ORDER, "aep2.md#payment-request-acceptance"],
    );
    f.note(
        "request_hash",
        "DEFINED",
        "Canonicalisation of the A2A request descriptor.",
        &[HASH],
    );

    let ok = |c: &str, i: J, flags: &[&'static str], refs: &[&'static str]| {
        Case::new(c, i, Exp::Valid).flags(flags).refs(&[BINDING]).refs(refs)
    };
    let inv = |c: &str, i: J, r: Reason, flags: &[&'static str], refs: &[&'static str]| {
        Case::new(c, i, Exp::Invalid(r)).flags(flags).refs(refs)
    };

    // eip712, Intent Mode ----------------------------------------------------------------------
    let key = secp_key("a2a-payer");
    let d = domain(CHAIN_ID, WALLET);
    let req = request_v1("msg-0001");
    let req03 = request_v03("msg-0001");
    let h = request_hash(&req);
    let mut m = mandate(&key, 0);
    m.reference = h;
    let env = env_json(&signed_for(&m, &key, &d));
    let native = aep2::sign_mandate(
        &Mandate::Eip712(m.clone()),
        &Domain::Eip712(d),
        &aep2::PayerKey::Secp256k1(key.clone()),
        EnvelopeForm::Native,
    )
    .map(|(sm, _)| env_json(&sm))
    .unwrap_or_default();
    let policy = json!({
        "payee": payee("merchant-a").to_checksum(), "asset": USDC, "price": "1000", "priceMode": "exact",
        "clockSkew": 0, "settlementWindow": 60, "maxHorizon": 3600
    });
    let pay = paying(&req, &env);
    let intent = |m: &J| with_policy(input(m), &policy);

    let g = f.group("eip712-intent", Kind::ExtractA2a, context(Some(NOW)));
    f.case(
        g,
        ok(
            "v1.0 message with the MVP envelope in metadata[aep2.dev/mandate]; ref is the message's request hash",
            intent(&pay),
            &["valid", "binding"],
            &[INTENT, METADATA, HASH],
        ),
    );
    f.case(
        g,
        ok(
            "the same request spelt as A2A v0.3 has the same request hash, so the same mandate pays for it",
            intent(&paying(&req03, &env)),
            &["valid", "v0.3", "binding"],
            &[INTENT, MESSAGES, HASH],
        ),
    );
    f.case(
        g,
        ok(
            "the native envelope as the mandate",
            intent(&paying(&req, &native)),
            &["valid"],
            &[INTENT, "aep2.md#envelope-native"],
        ),
    );
    f.case(
        g,
        ok(
            "aep2.dev/status may be left out; metadata of other extensions and a different messageId change nothing",
            intent(&edit(
                &with_meta(&request_v1("msg-retry-2"), "aep2.dev/mandate", env.clone()),
                |o| {
                    if let Some(J::Object(meta)) = o.get_mut("metadata") {
                        meta.insert("https://example.com/ext/trace/v1".into(), json!({ "span": "a1b2" }));
                    }
                },
            )),
            &["valid", "carrier"],
            &[METADATA, HASH],
        ),
    );
    f.case(
        g,
        inv(
            "the mandate signs the hash of another request (a different text part): not for this message",
            intent(&paying(
                &edit(&req, |o| {
                    o.insert("parts".into(), json!([{ "text": "Summarise the Q4 report instead." }]));
                }),
                &env,
            )),
            Reason::RequestMismatch,
            &["binding"],
            &[INTENT, HASH],
        ),
    );
    f.case(
        g,
        inv(
            "the same parts in another conversation (contextId) are another request",
            intent(&paying(
                &edit(&req, |o| {
                    o.insert("contextId".into(), json!("ctx-other"));
                }),
                &env,
            )),
            Reason::RequestMismatch,
            &["binding"],
            &[HASH],
        ),
    );
    f.case(
        g,
        inv(
            "no mandate at all",
            intent(&req),
            Reason::PaymentMissing,
            &["carrier"],
            &[EXTRACTION],
        ),
    );
    f.case(
        g,
        inv(
            "the mandate only in a part's metadata is not read",
            intent(&edit(&req, |o| {
                o.insert(
                    "parts".into(),
                    json!([{ "text": "Summarise the attached Q3 report in five bullet points.", "metadata": { "aep2.dev/mandate": env } }]),
                );
            })),
            Reason::PaymentMissing,
            &["carrier"],
            &[EXTRACTION],
        ),
    );
    f.case(
        g,
        inv(
            "two mandates: one in the message's metadata and one in a part's metadata",
            intent(&edit(&pay, |o| {
                if let Some(J::Array(parts)) = o.get_mut("parts")
                    && let Some(J::Object(p)) = parts.first_mut()
                {
                    p.insert("metadata".into(), json!({ "aep2.dev/mandate": env }));
                }
            })),
            Reason::PaymentAmbiguous,
            &["carrier"],
            &[EXTRACTION],
        ),
    );
    f.case(
        g,
        inv(
            "two payments: aep2.dev/mandate next to an a2a-x402 x402.payment.payload",
            intent(&with_meta(
                &pay,
                "x402.payment.payload",
                json!({ "x402Version": 1, "scheme": "aep2", "network": format!("eip155:{CHAIN_ID}"), "payload": env }),
            )),
            Reason::PaymentAmbiguous,
            &["carrier"],
            &[EXTRACTION],
        ),
    );
    f.case(
        g,
        inv(
            "the mandate as base64 text (the header form) instead of the JSON object",
            intent(&with_meta(
                &pay,
                "aep2.dev/mandate",
                J::String(base64_encode(env.to_string().as_bytes())),
            )),
            Reason::FieldType,
            &["carrier"],
            &[METADATA],
        ),
    );
    f.case(
        g,
        inv(
            "the mandate as an array holding the envelope",
            intent(&with_meta(&pay, "aep2.dev/mandate", json!([env]))),
            Reason::FieldType,
            &["carrier"],
            &[METADATA],
        ),
    );
    f.case(
        g,
        inv(
            "a paying message whose status is not payment-submitted",
            intent(&with_meta(&pay, "aep2.dev/status", json!("payment-verified"))),
            Reason::FieldType,
            &["carrier"],
            &[METADATA],
        ),
    );
    f.case(
        g,
        inv(
            "a misspelt AEP2 key (aep2.dev/Mandate) is rejected, not ignored",
            intent(&edit(&req, |o| {
                o.insert("metadata".into(), json!({ "aep2.dev/Mandate": env }));
            })),
            Reason::A2aMessageInvalid,
            &["carrier", "shape"],
            &[METADATA],
        ),
    );
    f.case(
        g,
        inv(
            "metadata is not an object",
            intent(&edit(&req, |o| {
                o.insert("metadata".into(), json!([{ "aep2.dev/mandate": env }]));
            })),
            Reason::A2aMessageInvalid,
            &["shape"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "unknown version shape: a v0.3 message (kind) with a v1.0 role",
            intent(&edit(&paying(&req03, &env), |o| {
                o.insert("role".into(), json!("ROLE_USER"));
            })),
            Reason::A2aMessageInvalid,
            &["shape", "v0.3"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "unknown version shape: a v1.0 message whose part carries a v0.3 kind",
            intent(&edit(&pay, |o| {
                o.insert("parts".into(), json!([{ "kind": "text", "text": "hello" }]));
            })),
            Reason::A2aMessageInvalid,
            &["shape"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "a v1.0 part with two contents (text and url)",
            intent(&edit(&pay, |o| {
                o.insert(
                    "parts".into(),
                    json!([{ "text": "hello", "url": "https://example.com/x" }]),
                );
            })),
            Reason::A2aMessageInvalid,
            &["shape"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "a v1.0 role spelt in lowercase without the v0.3 kind",
            intent(&edit(&pay, |o| {
                o.insert("role".into(), json!("user"));
            })),
            Reason::A2aMessageInvalid,
            &["shape"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "messageId missing",
            intent(&edit(&pay, |o| {
                o.remove("messageId");
            })),
            Reason::A2aMessageInvalid,
            &["shape"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "parts empty",
            intent(&edit(&pay, |o| {
                o.insert("parts".into(), json!([]));
            })),
            Reason::A2aMessageInvalid,
            &["shape"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "an unknown member on the message",
            intent(&edit(&pay, |o| {
                o.insert("priority".into(), json!("high"));
            })),
            Reason::A2aMessageInvalid,
            &["shape"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "raw file bytes in URL-safe base64 without padding",
            intent(&edit(&pay, |o| {
                o.insert(
                    "parts".into(),
                    json!([{ "raw": "-_8", "mediaType": "application/octet-stream" }]),
                );
            })),
            Reason::A2aMessageInvalid,
            &["shape"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "a v0.3 data part whose data is not an object",
            intent(&edit(&paying(&req03, &env), |o| {
                o.insert("parts".into(), json!([{ "kind": "data", "data": [1, 2, 3] }]));
            })),
            Reason::A2aMessageInvalid,
            &["shape", "v0.3"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "an agent's message is not a request and has no request hash",
            intent(&edit(&pay, |o| {
                o.insert("role".into(), json!("ROLE_AGENT"));
            })),
            Reason::RequestDescriptorInvalid,
            &["binding"],
            &[HASH],
        ),
    );
    let text = pay.to_string();
    f.case(
        g,
        inv(
            "not JSON: the message text is cut short",
            with_policy(input_text(&text[..text.len() - 1]), &policy),
            Reason::JsonInvalid,
            &["decoding"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "a duplicate member name in the metadata (two aep2.dev/mandate keys)",
            with_policy(
                input_text(&text.replacen(
                    "\"aep2.dev/mandate\":",
                    &format!("\"aep2.dev/mandate\":{},\"aep2.dev/mandate\":", env),
                    1,
                )),
                &policy,
            ),
            Reason::JsonDuplicateKey,
            &["decoding", "carrier"],
            &["aep2.md#json-rules"],
        ),
    );
    f.case(
        g,
        inv(
            "the message text is over 64 KiB",
            intent(&edit(&pay, |o| {
                o.insert(
                    "parts".into(),
                    json!([{ "text": "x".repeat(40_000) }, { "text": "y".repeat(30_000) }]),
                );
            })),
            Reason::HeaderTooLarge,
            &["decoding"],
            &[MESSAGES, "aep2.md#limits"],
        ),
    );
    f.case(
        g,
        inv(
            "the embedded envelope holds a string over the envelope limit of 1024 bytes",
            intent(&with_meta(
                &pay,
                "aep2.dev/mandate",
                edit(&env, |o| {
                    o.insert("note".into(), json!("n".repeat(2000)));
                }),
            )),
            Reason::JsonLimitExceeded,
            &["decoding"],
            &[EXTRACTION, "aep2.md#limits"],
        ),
    );
    f.case(
        g,
        inv(
            "the embedded envelope's compact text is over 8192 bytes",
            intent(&with_meta(
                &pay,
                "aep2.dev/mandate",
                edit(&env, |o| {
                    for i in 0..10 {
                        o.insert(format!("pad{i}"), json!("p".repeat(1000)));
                    }
                }),
            )),
            Reason::HeaderTooLarge,
            &["decoding"],
            &[EXTRACTION, "aep2.md#limits"],
        ),
    );
    f.case(
        g,
        inv(
            "an unknown member inside the envelope (closed objects)",
            intent(&with_meta(
                &pay,
                "aep2.dev/mandate",
                edit(&env, |o| {
                    o.insert("currency".into(), json!("USDC"));
                }),
            )),
            Reason::UnknownField,
            &["carrier"],
            &["aep2.md#mandate-json-types"],
        ),
    );
    let forged = {
        let other = secp_key("a2a-someone-else");
        env_json(&signed_for(&m, &other, &d))
    };
    f.case(
        g,
        inv(
            "the mandate is signed by a key other than its owner",
            intent(&paying(&req, &forged)),
            Reason::SignatureInvalid,
            &[],
            &["aep2.md#verification-order"],
        ),
    );
    let cheap = {
        let mut c = m.clone();
        c.amount = aep2::U256::from_u64(999);
        env_json(&signed_for(&c, &key, &d))
    };
    f.case(
        g,
        inv(
            "a validly signed mandate below the price",
            intent(&paying(&req, &cheap)),
            Reason::AmountInsufficient,
            &[],
            &["aep2.md#policy-amount"],
        ),
    );

    // ed25519, Intent Mode ---------------------------------------------------------------------
    let ed_req = request_v1("msg-ed-0001");
    let mut em = ed_mandate("a2a-ed-payer", 0, NOW + 600);
    em.reference = request_hash(&ed_req);
    let ed_env = env_json(&sign_with(
        &Mandate::Ed25519(em.clone()),
        &Domain::Ed25519(ed_domain()),
        "a2a-ed-payer",
        EnvelopeForm::Native,
    ));
    let ed_policy = json!({
        "payee": pubkey("merchant-a").to_string(), "asset": MINT, "price": "750", "priceMode": "exact",
        "clockSkew": 0, "settlementWindow": 60, "maxHorizon": 3600
    });
    // Padded so that the envelope's compact text is exactly `total` bytes.
    let padded = |total: usize| {
        edit(&env, |o| {
            for i in 0..7 {
                o.insert(format!("pad{i}"), json!("p".repeat(1000)));
            }
            o.insert("pad7".into(), json!(""));
            let len = serde_json::to_string(&*o).map_or(0, |t| t.len());
            o.insert("pad7".into(), json!("p".repeat(total.saturating_sub(len))));
        })
    };
    f.case(
        g,
        inv(
            "the embedded envelope's compact text is exactly 8192 bytes: within the size limit, so its unknown members decide",
            intent(&with_meta(&pay, "aep2.dev/mandate", padded(8192))),
            Reason::UnknownField,
            &["decoding"],
            &[EXTRACTION, "aep2.md#limits"],
        ),
    );
    f.case(
        g,
        inv(
            "the embedded envelope's compact text is 8193 bytes: one over the size limit",
            intent(&with_meta(&pay, "aep2.dev/mandate", padded(8193))),
            Reason::HeaderTooLarge,
            &["decoding"],
            &[EXTRACTION, "aep2.md#limits"],
        ),
    );

    let g = f.group("ed25519-intent", Kind::ExtractA2a, ed_context(Some(NOW)));
    f.case(
        g,
        ok(
            "ed25519 native envelope on a v1.0 message, bound to it",
            with_policy(input(&paying(&ed_req, &ed_env)), &ed_policy),
            &["valid", "binding"],
            &[INTENT],
        ),
    );
    f.case(
        g,
        ok(
            "the same mandate on the v0.3 spelling of the message",
            with_policy(input(&paying(&request_v03("msg-ed-0001"), &ed_env)), &ed_policy),
            &["valid", "v0.3", "binding"],
            &[INTENT, MESSAGES],
        ),
    );
    let ed_bad = env_json(&sign_with(
        &Mandate::Ed25519(em.clone()),
        &Domain::Ed25519(ed_domain()),
        "a2a-ed-intruder",
        EnvelopeForm::Native,
    ));
    f.case(
        g,
        inv(
            "signed with another key",
            with_policy(input(&paying(&ed_req, &ed_bad)), &ed_policy),
            Reason::SignatureInvalid,
            &[],
            &["aep2.md#ed25519-verification-rules"],
        ),
    );

    // solana-mvp, core verification (its text ref cannot carry a request hash) -----------------
    let sm = sol_mandate("a2a-sol-payer", 0, NOW + 600);
    let sol_env = env_json(&sign_with(
        &Mandate::SolanaMvp(sm.clone()),
        &Domain::SolanaMvp,
        "a2a-sol-payer",
        EnvelopeForm::Mvp,
    ));
    let sol_policy = json!({
        "payee": pubkey("merchant-a").to_string(), "asset": MINT, "price": "750", "priceMode": "exact",
        "clockSkew": 0, "settlementWindow": 60, "maxHorizon": 3600
    });
    let g = f.group("solana-mvp", Kind::ExtractA2a, sol_context(Some(NOW)));
    f.case(
        g,
        ok(
            "solana-mvp MVP envelope on a v0.3 message, core verification only",
            input(&paying(&request_v03("msg-sol-1"), &sol_env)),
            &["valid", "v0.3"],
            &[EXTRACTION],
        ),
    );
    f.case(
        g,
        inv(
            "Intent Mode with request binding: a solana-mvp mandate cannot carry the request hash",
            with_policy(input(&paying(&request_v1("msg-sol-2"), &sol_env)), &sol_policy),
            Reason::RequestMismatch,
            &["binding"],
            &[INTENT, "aep2.md#request-binding"],
        ),
    );
    f.case(
        g,
        inv(
            "the mandate of the MVP envelope altered after signing (amount)",
            input(&paying(
                &request_v1("msg-sol-3"),
                &edit(&sol_env, |o| {
                    if let Some(J::Object(md)) = o.get_mut("mandate") {
                        md.insert("amount".into(), json!("1"));
                    }
                }),
            )),
            Reason::SignatureInvalid,
            &[],
            &["aep2.md#profile-solana-mvp"],
        ),
    );

    // eip712, Order Mode -----------------------------------------------------------------------
    let sp = payee("a2a-sp").to_checksum();
    let quote = json!({
        "aep2": 1, "kind": "payment-request", "profile": "eip712",
        "domain": { "chainId": CHAIN_ID, "verifyingContract": WALLET },
        "requestId": "a2a-task-0042", "payee": payee("merchant-a").to_checksum(), "asset": USDC,
        "amount": "1000", "expiry": NOW + 300, "description": "Q3 report summary",
        "settlementProcessor": sp, "settlementWindow": 60
    });
    let mut om = mandate(&key, 0);
    om.reference = quote_hash(&quote);
    let o_env = env_json(&signed_for(&om, &key, &d));
    let reply = json!({
        "messageId": "msg-0002", "contextId": "ctx-4711", "taskId": "task-0042", "role": "ROLE_USER",
        "parts": [{ "text": "Paying the quoted amount." }]
    });
    let reply03 = json!({
        "kind": "message", "messageId": "msg-0002", "contextId": "ctx-4711", "taskId": "task-0042", "role": "user",
        "parts": [{ "kind": "text", "text": "Paying the quoted amount." }]
    });
    let g = f.group("eip712-order", Kind::ExtractA2a, ctx_now(context(Some(NOW))));
    f.case(
        g,
        ok(
            "Order Mode: the payer's v1.0 reply on the task carries a mandate whose ref is the quote hash",
            with_quote(input(&paying(&reply, &o_env)), &quote),
            &["valid", "order"],
            &[ORDER],
        ),
    );
    f.case(
        g,
        ok(
            "Order Mode: the same reply spelt as A2A v0.3",
            with_quote(input(&paying(&reply03, &o_env)), &quote),
            &["valid", "order", "v0.3"],
            &[ORDER, MESSAGES],
        ),
    );
    let mut bound_to_msg = om.clone();
    bound_to_msg.reference = request_hash(&reply);
    f.case(
        g,
        inv(
            "Order Mode: ref is the reply's request hash, not the quote hash",
            with_quote(
                input(&paying(&reply, &env_json(&signed_for(&bound_to_msg, &key, &d)))),
                &quote,
            ),
            Reason::RequestMismatch,
            &["order", "binding"],
            &[ORDER, "aep2.md#payment-request-binding"],
        ),
    );
    let expired_quote = edit(&quote, |o| {
        o.insert("expiry".into(), json!(NOW - 1));
    });
    let mut for_expired = om.clone();
    for_expired.reference = quote_hash(&expired_quote);
    f.case(
        g,
        inv(
            "Order Mode: the reply arrives after the quote's expiry",
            with_quote(
                input(&paying(&reply, &env_json(&signed_for(&for_expired, &key, &d)))),
                &expired_quote,
            ),
            Reason::QuoteExpired,
            &["order"],
            &[ORDER, "aep2.md#payment-request-acceptance"],
        ),
    );
    f.case(
        g,
        inv(
            "Order Mode: a reply without a mandate",
            with_quote(input(&reply), &quote),
            Reason::PaymentMissing,
            &["order", "carrier"],
            &[ORDER, EXTRACTION],
        ),
    );

    // solana-mvp and ed25519, Order Mode --------------------------------------------------------
    let sol_quote = json!({
        "aep2": 1, "kind": "payment-request", "profile": "solana-mvp",
        "requestId": "a2a-sol-order-7", "payee": pubkey("merchant-a").to_string(), "asset": MINT,
        "amount": "750", "expiry": NOW + 300, "description": "translation",
        "settlementProcessor": pubkey("a2a-sp").to_string(), "settlementWindow": 60
    });
    let mut som = sm.clone();
    som.reference = "a2a-sol-order-7".into();
    let so_env = env_json(&sign_with(
        &Mandate::SolanaMvp(som),
        &Domain::SolanaMvp,
        "a2a-sol-payer",
        EnvelopeForm::Mvp,
    ));
    let g = f.group("solana-mvp-order", Kind::ExtractA2a, sol_context(Some(NOW)));
    f.case(
        g,
        ok(
            "Order Mode, solana-mvp: ref is the quote's requestId",
            with_quote(input(&paying(&reply03, &so_env)), &sol_quote),
            &["valid", "order", "v0.3"],
            &[ORDER, "aep2.md#payment-request-binding"],
        ),
    );
    f.case(
        g,
        inv(
            "Order Mode, solana-mvp: ref names another order",
            with_quote(input(&paying(&reply03, &sol_env)), &sol_quote),
            Reason::RequestMismatch,
            &["order"],
            &[ORDER, "aep2.md#payment-request-binding"],
        ),
    );
    let ed_quote = json!({
        "aep2": 1, "kind": "payment-request", "profile": "ed25519",
        "domain": { "network": super::edkit::NETWORK, "wallet": super::edkit::PROGRAM },
        "requestId": "a2a-ed-order-9", "payee": pubkey("merchant-a").to_string(), "asset": MINT,
        "amount": "750", "expiry": NOW + 300, "description": "image caption",
        "settlementProcessor": pubkey("a2a-sp").to_string(), "settlementWindow": 60
    });
    let mut eom = em.clone();
    eom.reference = quote_hash(&ed_quote);
    let eo_env = env_json(&sign_with(
        &Mandate::Ed25519(eom),
        &Domain::Ed25519(ed_domain()),
        "a2a-ed-payer",
        EnvelopeForm::Native,
    ));
    let g = f.group("ed25519-order", Kind::ExtractA2a, ed_context(Some(NOW)));
    f.case(
        g,
        ok(
            "Order Mode, ed25519: ref is the quote hash",
            with_quote(input(&paying(&reply, &eo_env)), &ed_quote),
            &["valid", "order"],
            &[ORDER],
        ),
    );

    // Request hash known answers ---------------------------------------------------------------
    let g = f.group("request-hash", Kind::A2aRequestHash, Context::default());
    let simple = json!({
        "messageId": "m-1", "contextId": "ctx-1", "role": "ROLE_USER",
        "parts": [{ "text": "Translate to German: good morning" }]
    });
    let simple03 = json!({
        "kind": "message", "messageId": "m-1", "contextId": "ctx-1", "role": "user",
        "parts": [{ "kind": "text", "text": "Translate to German: good morning" }]
    });
    f.case(
        g,
        ok(
            "a v1.0 text message",
            input(&simple),
            &["valid", "request_hash"],
            &[HASH],
        ),
    );
    f.case(
        g,
        ok(
            "the same message in v0.3 spelling: the same descriptor and hash",
            input(&simple03),
            &["valid", "request_hash", "v0.3"],
            &[HASH, MESSAGES],
        ),
    );
    f.case(
        g,
        ok(
            "another messageId, extensions and AEP2 metadata are not in the descriptor: the same hash",
            input(&paying(
                &edit(&simple, |o| {
                    o.insert("messageId".into(), json!("m-2"));
                }),
                &env,
            )),
            &["valid", "request_hash"],
            &[HASH],
        ),
    );
    f.case(
        g,
        ok(
            "data part numbers in RFC 8785 form: 4.50 as 4.5, 1E3 as 1000, 1e21 as 1e+21, 0.1 kept",
            input_text(r#"{"messageId":"m-3","role":"ROLE_USER","parts":[{"data":{"price":4.50,"qty":1E3,"big":1e21,"tenth":0.1,"neg":-0.0}}]}"#),
            &["valid", "request_hash"],
            &[HASH, "aep2.md#json-rules"],
        ),
    );
    f.case(
        g,
        ok(
            "the same data part in v0.3 spelling with members in another order and other number forms",
            input_text(r#"{"kind":"message","role":"user","messageId":"m-3","parts":[{"kind":"data","data":{"tenth":1e-1,"neg":0,"big":1000000000000000000000,"qty":1000,"price":4.5}}]}"#),
            &["valid", "request_hash", "v0.3"],
            &[HASH, "aep2.md#json-rules"],
        ),
    );
    f.case(
        g,
        ok(
            "a file by value: the descriptor holds the SHA-256 of the bytes, not the bytes",
            input_text(r#"{"messageId":"m-4","taskId":"t-9","role":"ROLE_USER","referenceTaskIds":["t-1","t-2"],"parts":[{"raw":"SGVsbG8sIEEyQSE=","filename":"hello.txt","mediaType":"text/plain"}]}"#),
            &["valid", "request_hash"],
            &[HASH],
        ),
    );
    f.case(
        g,
        ok(
            "the same file in v0.3 spelling (file.bytes, file.name, file.mimeType)",
            input_text(r#"{"kind":"message","messageId":"m-4","taskId":"t-9","role":"user","referenceTaskIds":["t-1","t-2"],"parts":[{"kind":"file","file":{"bytes":"SGVsbG8sIEEyQSE=","name":"hello.txt","mimeType":"text/plain"}}]}"#),
            &["valid", "request_hash", "v0.3"],
            &[HASH, MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "an agent's message is not a request",
            input(&edit(&simple, |o| {
                o.insert("role".into(), json!("ROLE_AGENT"));
            })),
            Reason::RequestDescriptorInvalid,
            &["request_hash"],
            &[HASH],
        ),
    );
    f.case(
        g,
        inv(
            "a part with no content member",
            input_text(r#"{"messageId":"m-5","role":"ROLE_USER","parts":[{"mediaType":"text/plain"}]}"#),
            Reason::A2aMessageInvalid,
            &["request_hash", "shape"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "a v0.3 message kind other than message",
            input_text(r#"{"kind":"task","messageId":"m-6","role":"user","parts":[{"kind":"text","text":"x"}]}"#),
            Reason::A2aMessageInvalid,
            &["request_hash", "shape"],
            &[MESSAGES],
        ),
    );
    f.case(
        g,
        inv(
            "a number beyond the double range in a data part has no RFC 8785 form",
            input_text(r#"{"messageId":"m-7","role":"ROLE_USER","parts":[{"data":{"x":1e400}}]}"#),
            Reason::JsonInvalid,
            &["request_hash", "decoding"],
            &["aep2.md#json-rules"],
        ),
    );

    // The choice points of extraction (aep2.md#a2a-extraction, #a2a-intent, #a2a-order) -------
    let g = f.group("choice-points", Kind::ExtractA2a, context(Some(NOW)));
    let agent = |m: &J| {
        edit(m, |o| {
            o.insert("role".into(), json!("ROLE_AGENT"));
        })
    };
    f.case(
        g,
        ok(
            "an agent's message with a valid mandate and neither a payee policy nor a quote: no request hash is computed, so it is extracted and verified",
            input(&agent(&pay)),
            &["valid", "carrier"],
            &[EXTRACTION, INTENT],
        ),
    );
    f.case(
        g,
        inv(
            "Intent Mode: an agent's message without a mandate: the request hash (request_descriptor_invalid) comes before counting the payments (payment_missing)",
            intent(&agent(&req)),
            Reason::RequestDescriptorInvalid,
            &["binding"],
            &[INTENT, HASH],
        ),
    );
    f.case(
        g,
        inv(
            "two payments and an aep2.dev/status other than payment-submitted: the count (step 2) before the status (step 3)",
            intent(&with_meta(
                &edit(&pay, |o| {
                    if let Some(J::Array(parts)) = o.get_mut("parts")
                        && let Some(J::Object(p)) = parts.first_mut()
                    {
                        p.insert("metadata".into(), json!({ "aep2.dev/mandate": env }));
                    }
                }),
                "aep2.dev/status",
                json!("payment-required"),
            )),
            Reason::PaymentAmbiguous,
            &["carrier"],
            &[EXTRACTION],
        ),
    );
    let g = f.group("order-choice-points", Kind::ExtractA2a, ctx_now(context(Some(NOW))));
    f.case(
        g,
        ok(
            "Order Mode: a reply spelt with role agent: the reply's own request hash plays no part, so it is accepted against the quote",
            with_quote(input(&paying(&agent(&reply), &o_env)), &quote),
            &["valid", "order"],
            &[ORDER],
        ),
    );
    let g = f.group("request-hash-choice-points", Kind::A2aRequestHash, Context::default());
    f.case(
        g,
        ok(
            "an empty referenceTaskIds is left out of the descriptor, as if absent",
            input_text(r#"{"messageId":"m-8","contextId":"ctx-8","role":"ROLE_USER","referenceTaskIds":[],"parts":[{"text":"hello"}]}"#),
            &["valid", "request_hash"],
            &[HASH],
        ),
    );

    let mut file = f.finish();
    // The builder fills intermediates only for the kinds it knows; these are filled here, from
    // the same reference answers.
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
