//! `x402.json`: the x402 binding (spec `aep2.md#binding-x402`): extraction of the mandate from
//! `PAYMENT-SIGNATURE` (x402 v2), `X-PAYMENT` (x402 v1) and `X-Payment-Mandate` (FluxA MVP),
//! the carrier rules (exactly one, names case-insensitive), the payload checks (version,
//! scheme, network, members), strict decoding of the header value, and known answers of the
//! HTTP request hash (`aep2.md#x402-request-hash`).
//!
//! Every expectation below is written from the rules of `aep2.md#binding-x402`; mandate ids,
//! descriptors and request hashes in the intermediates come from the reference implementation.

use super::edkit::{MINT, NETWORK, ed_context, ed_domain, ed_mandate, pubkey, sign_with, sol_context, sol_mandate};
use super::eip712::{CHAIN_ID, NOW, USDC, WALLET, context, domain, mandate, payee, signed_for};
use super::{Case, Exp, FileBuilder, secp_key};
use crate::model::{Context, Kind, VectorFile};
use aep2::codec::base64_encode;
use aep2::json::to_compact;
use aep2::{Domain, EnvelopeForm, Mandate, PayerKey, Reason, SignedMandate, sign_mandate};
use serde_json::{Value as J, json};

const CARRIERS: &str = "aep2.md#x402-carriers";
const PAYLOAD: &str = "aep2.md#x402-payload";
const BINDING: &str = "aep2.md#binding-x402";
const HASH: &str = "aep2.md#x402-request-hash";
const MVP: &str = "aep2.md#x402-mvp";

fn env_json(sm: &SignedMandate) -> J {
    serde_json::from_str(&to_compact(&sm.to_json())).unwrap_or_default()
}

fn b64(v: &J) -> String {
    base64_encode(v.to_string().as_bytes())
}

fn accepted(network: &str, amount: &str, asset: &str, pay_to: &str) -> J {
    json!({
        "scheme": "aep2", "network": network, "amount": amount, "asset": asset, "payTo": pay_to,
        "maxTimeoutSeconds": 60
    })
}

fn v2(accepted: &J, env: &J) -> J {
    json!({ "x402Version": 2, "accepted": accepted, "payload": env })
}

fn v1(network: &str, env: &J) -> J {
    json!({ "x402Version": 1, "scheme": "aep2", "network": network, "payload": env })
}

fn headers(pairs: &[(&str, &str)]) -> J {
    let mut o = serde_json::Map::new();
    for (k, v) in pairs {
        o.insert((*k).to_owned(), J::String((*v).to_owned()));
    }
    json!({ "headers": o })
}

fn edit(v: &J, f: impl FnOnce(&mut serde_json::Map<String, J>)) -> J {
    let mut v = v.clone();
    if let J::Object(o) = &mut v {
        f(o);
    }
    v
}

pub(crate) fn generate() -> VectorFile {
    let mut f = FileBuilder::new(
        "x402",
        &[
            "The x402 binding (aep2.md#binding-x402): extract_x402 cases give input.headers (name to value, names compared case-insensitively), the headers of one HTTP request. Exactly one of PAYMENT-SIGNATURE (x402 v2 PaymentPayload), X-PAYMENT (x402 v1 PaymentPayload) and X-Payment-Mandate (the bare envelope) must be present (payment_missing, payment_ambiguous); its value is decoded as an envelope header, the x402 payload is checked (members, x402Version, scheme aep2, network of the group's domain) and the envelope is verified under the group's profile, domain and now.",
            "The intermediates name the carrier (payment-signature, x-payment, x-payment-mandate) whenever exactly one carrier was found and its payload read, and, once the envelope has been read, its mandate id and the other values of verify_mandate cases.",
            "http_request_hash cases give input.method, input.url and input.body (hex) and expect the descriptor JCS({bodySha256, method, url}) and the request hash SHA-256(\"AEP2/http-request/v1\" || 0x00 || descriptor) as intermediates, or request_descriptor_invalid.",
        ],
    );
    f.note(
        "valid",
        "BASIC",
        "A well-formed payment in one carrier.",
        &[BINDING, CARRIERS],
    );
    f.note(
        "carrier",
        "DEFINED",
        "Which headers are read and how many may be present.",
        &[CARRIERS],
    );
    f.note(
        "payload",
        "MODIFIED_PARAMETER",
        "The x402 PaymentPayload around the envelope is malformed or for another version, scheme or network.",
        &[PAYLOAD],
    );
    f.note(
        "decoding",
        "CAN_OF_WORMS",
        "The header value breaks the strict decoding rules (base64, JSON, limits).",
        &["aep2.md#decoding-rules"],
    );
    f.note("mvp", "INTEROP", "The FluxA MVP's X-Payment-Mandate header.", &[MVP]);
    f.note(
        "request_hash",
        "DEFINED",
        "Canonicalisation of the HTTP request descriptor.",
        &[HASH],
    );

    // eip712 -------------------------------------------------------------------------------
    let key = secp_key("x402-payer");
    let m = mandate(&key, 0);
    let d = domain(CHAIN_ID, WALLET);
    let mvp = signed_for(&m, &key, &d);
    let native = sign_mandate(
        &Mandate::Eip712(m.clone()),
        &Domain::Eip712(d),
        &PayerKey::Secp256k1(key.clone()),
        EnvelopeForm::Native,
    )
    .map(|(sm, _)| sm)
    .unwrap_or_else(|_| mvp.clone());
    let network = format!("eip155:{CHAIN_ID}");
    let acc = accepted(&network, "1000", USDC, &payee("merchant-a").to_checksum());
    let env = env_json(&mvp);
    let env_native = env_json(&native);
    let p2 = b64(&v2(&acc, &env));
    let p1 = b64(&v1(&network, &env));
    let bare = mvp.encode();

    let g = f.group("eip712", Kind::ExtractX402, context(Some(NOW)));
    let ok = |c: &str, i: J, flags: &[&'static str], refs: &[&'static str]| {
        Case::new(c, i, Exp::Valid).flags(flags).refs(&[BINDING]).refs(refs)
    };
    f.case(
        g,
        ok(
            "PAYMENT-SIGNATURE: x402 v2 PaymentPayload with the MVP envelope as payload",
            headers(&[("PAYMENT-SIGNATURE", &p2)]),
            &["valid"],
            &[PAYLOAD],
        ),
    );
    f.case(
        g,
        ok(
            "PAYMENT-SIGNATURE with the native envelope as payload",
            headers(&[("PAYMENT-SIGNATURE", &b64(&v2(&acc, &env_native)))]),
            &["valid"],
            &[PAYLOAD, "aep2.md#envelope-native"],
        ),
    );
    f.case(
        g,
        ok(
            "X-PAYMENT: x402 v1 PaymentPayload",
            headers(&[("X-PAYMENT", &p1)]),
            &["valid"],
            &[PAYLOAD],
        ),
    );
    f.case(
        g,
        ok(
            "X-Payment-Mandate: the bare MVP envelope, as MVP clients send it",
            headers(&[("X-Payment-Mandate", &bare)]),
            &["valid", "mvp"],
            &[MVP],
        ),
    );
    f.case(
        g,
        ok(
            "header names are case-insensitive; unrelated headers are ignored",
            headers(&[
                ("accept", "application/json"),
                ("payment-signature", &p2),
                ("X-Request-Id", "42"),
            ]),
            &["valid", "carrier"],
            &[],
        ),
    );
    f.case(
        g,
        ok(
            "v2 payload with the optional resource and extensions members",
            headers(&[(
                "PAYMENT-SIGNATURE",
                &b64(&edit(&v2(&acc, &env), |o| {
                    o.insert("resource".into(), json!({ "url": "https://api.example.com/report" }));
                    o.insert("extensions".into(), json!({}));
                })),
            )]),
            &["valid"],
            &[],
        ),
    );
    let inv = |c: &str, i: J, r: Reason, flags: &[&'static str], refs: &[&'static str]| {
        Case::new(c, i, Exp::Invalid(r)).flags(flags).refs(refs)
    };
    f.case(
        g,
        inv(
            "no payment header at all",
            headers(&[("Accept", "application/json")]),
            Reason::PaymentMissing,
            &["carrier"],
            &[],
        ),
    );
    f.case(
        g,
        inv(
            "PAYMENT-SIGNATURE and X-Payment-Mandate together: no precedence, rejected",
            headers(&[("PAYMENT-SIGNATURE", &p2), ("X-Payment-Mandate", &bare)]),
            Reason::PaymentAmbiguous,
            &["carrier"],
            &[],
        ),
    );
    f.case(
        g,
        inv(
            "PAYMENT-SIGNATURE and X-PAYMENT together",
            headers(&[("X-PAYMENT", &p1), ("PAYMENT-SIGNATURE", &p2)]),
            Reason::PaymentAmbiguous,
            &["carrier"],
            &[],
        ),
    );
    f.case(
        g,
        inv(
            "the same carrier twice, differing only in letter case",
            headers(&[("PAYMENT-SIGNATURE", &p2), ("payment-signature", &p2)]),
            Reason::PaymentAmbiguous,
            &["carrier"],
            &[],
        ),
    );
    let v2_edit = |f2: &dyn Fn(&mut serde_json::Map<String, J>)| b64(&edit(&v2(&acc, &env), f2));
    let cases: Vec<(&str, String, Reason)> = vec![
        (
            "v2 header with x402Version 1",
            v2_edit(&|o| {
                o.insert("x402Version".into(), json!(1));
            }),
            Reason::X402VersionUnsupported,
        ),
        (
            "x402Version as a string",
            v2_edit(&|o| {
                o.insert("x402Version".into(), json!("2"));
            }),
            Reason::FieldType,
        ),
        (
            "accepted.scheme exact",
            v2_edit(&|o| {
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
            "accepted.network of another chain (Base mainnet)",
            v2_edit(&|o| {
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
            "payload as a base64 string instead of the envelope object",
            v2_edit(&|o| {
                o.insert("payload".into(), json!(bare));
            }),
            Reason::FieldType,
        ),
        (
            "an unknown top-level member",
            v2_edit(&|o| {
                o.insert("scheme".into(), json!("aep2"));
            }),
            Reason::UnknownField,
        ),
        (
            "payload missing",
            v2_edit(&|o| {
                o.shift_remove("payload");
            }),
            Reason::MissingField,
        ),
        (
            "accepted without maxTimeoutSeconds",
            v2_edit(&|o| {
                o.insert(
                    "accepted".into(),
                    edit(&acc, |a| {
                        a.shift_remove("maxTimeoutSeconds");
                    }),
                );
            }),
            Reason::MissingField,
        ),
    ];
    for (c, h, r) in cases {
        f.case(
            g,
            inv(c, headers(&[("PAYMENT-SIGNATURE", &h)]), r, &["payload"], &[PAYLOAD]),
        );
    }
    f.case(
        g,
        inv(
            "X-PAYMENT carrying a v2 payload",
            headers(&[("X-PAYMENT", &p2)]),
            Reason::UnknownField,
            &["payload"],
            &[PAYLOAD],
        ),
    );
    f.case(
        g,
        inv(
            "X-PAYMENT with x402Version 2",
            headers(&[(
                "X-PAYMENT",
                &b64(&edit(&v1(&network, &env), |o| {
                    o.insert("x402Version".into(), json!(2));
                })),
            )]),
            Reason::X402VersionUnsupported,
            &["payload"],
            &[PAYLOAD],
        ),
    );
    f.case(
        g,
        inv(
            "PAYMENT-SIGNATURE with a line break inside the base64 text",
            headers(&[("PAYMENT-SIGNATURE", &format!("{}\n{}", &p2[..76], &p2[76..]))]),
            Reason::Base64Invalid,
            &["decoding"],
            &["aep2.md#decoding-rules"],
        ),
    );
    let dup = format!("{{\"x402Version\":2,\"x402Version\":2,\"accepted\":{acc},\"payload\":{env}}}");
    f.case(
        g,
        inv(
            "a duplicate member in the x402 payload",
            headers(&[("PAYMENT-SIGNATURE", &base64_encode(dup.as_bytes()))]),
            Reason::JsonDuplicateKey,
            &["decoding"],
            &["aep2.md#json-rules"],
        ),
    );
    f.case(
        g,
        inv(
            "a header value over 8192 bytes",
            headers(&[("X-Payment-Mandate", &"A".repeat(8196))]),
            Reason::HeaderTooLarge,
            &["decoding"],
            &["aep2.md#limits"],
        ),
    );
    let mut forged = m.clone();
    forged.amount = aep2::U256::from_u64(1);
    let forged = SignedMandate {
        mandate: Mandate::Eip712(forged),
        ..mvp.clone()
    };
    f.case(
        g,
        inv(
            "a well-formed v2 payload whose envelope's amount was changed after signing",
            headers(&[("PAYMENT-SIGNATURE", &b64(&v2(&acc, &env_json(&forged))))]),
            Reason::SignatureInvalid,
            &["payload"],
            &["aep2.md#verification-order"],
        ),
    );

    // ed25519 ------------------------------------------------------------------------------
    let ed = sign_with(
        &Mandate::Ed25519(ed_mandate("x402-payer", 0, NOW + 600)),
        &Domain::Ed25519(ed_domain()),
        "x402-payer",
        EnvelopeForm::Native,
    );
    let ed_acc = accepted(NETWORK, "750", MINT, &pubkey("merchant-a").to_string());
    let g = f.group("ed25519", Kind::ExtractX402, ed_context(Some(NOW)));
    f.case(
        g,
        ok(
            "PAYMENT-SIGNATURE with a native ed25519 envelope; network = the domain's CAIP-2 network",
            headers(&[("PAYMENT-SIGNATURE", &b64(&v2(&ed_acc, &env_json(&ed))))]),
            &["valid"],
            &[PAYLOAD, "aep2.md#x402-payment-required"],
        ),
    );
    f.case(
        g,
        inv(
            "X-PAYMENT naming an eip155 network to an ed25519 verifier",
            headers(&[("X-PAYMENT", &b64(&v1(&network, &env_json(&ed))))]),
            Reason::X402NetworkMismatch,
            &["payload"],
            &[PAYLOAD],
        ),
    );

    // solana-mvp ---------------------------------------------------------------------------
    let sol = sign_with(
        &Mandate::SolanaMvp(sol_mandate("x402-payer", 0, NOW + 600)),
        &Domain::SolanaMvp,
        "x402-payer",
        EnvelopeForm::Mvp,
    );
    let sol_net = aep2_x402::SOLANA_MVP_NETWORK;
    let g = f.group("solana-mvp", Kind::ExtractX402, sol_context(Some(NOW)));
    f.case(
        g,
        ok(
            "X-PAYMENT with network aep2:solana-mvp",
            headers(&[("X-PAYMENT", &b64(&v1(sol_net, &env_json(&sol))))]),
            &["valid"],
            &[PAYLOAD, "aep2.md#x402-payment-required"],
        ),
    );
    f.case(
        g,
        ok(
            "X-Payment-Mandate as the MVP Solana client sends it",
            headers(&[("x-payment-mandate", &sol.encode())]),
            &["valid", "mvp"],
            &[MVP],
        ),
    );
    f.case(
        g,
        inv(
            "a solana-mvp payload naming the native Solana network",
            headers(&[("X-PAYMENT", &b64(&v1(NETWORK, &env_json(&sol))))]),
            Reason::X402NetworkMismatch,
            &["payload"],
            &[PAYLOAD],
        ),
    );

    // request hash -------------------------------------------------------------------------
    let g = f.group("request-hash", Kind::HttpRequestHash, Context::default());
    let req = |m: &str, u: &str, body: &[u8]| {
        let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
        json!({ "method": m, "url": u, "body": hex })
    };
    let hashes: Vec<(&str, J, Exp)> = vec![
        (
            "the worked example of the spec: method uppercased, host lowercased, default port and fragment removed",
            req(
                "post",
                "https://API.example.com:443/v1/quote?pair=ETH-USD#x",
                br#"{"symbol":"ETH"}"#,
            ),
            Exp::Valid,
        ),
        (
            "GET without a body: empty path written /, port 80 removed",
            req("GET", "HTTP://Example.COM:80", b""),
            Exp::Valid,
        ),
        (
            "a non-default port kept without leading zeros; path and query as sent",
            req("GET", "http://example.com:08080/a/../b%2f?z=1&a=2", b""),
            Exp::Valid,
        ),
        (
            "method with a space",
            req("GE T", "https://example.com/", b""),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        ),
        (
            "scheme other than http or https",
            req("GET", "ftp://example.com/", b""),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        ),
        (
            "userinfo in the URL",
            req("GET", "https://user@example.com/", b""),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        ),
        (
            "a URL of exactly 8000 bytes is the longest accepted",
            req("GET", &format!("https://example.com/{}", "a".repeat(8000 - 20)), b""),
            Exp::Valid,
        ),
        (
            "a URL of 8001 bytes is too long",
            req("GET", &format!("https://example.com/{}", "a".repeat(8001 - 20)), b""),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        ),
        (
            "a method token of 33 bytes is too long",
            req(&"GET".repeat(11), "https://example.com/", b""),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        ),
        (
            "a raw space in the path",
            req("GET", "https://example.com/a b", b""),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        ),
    ];
    for (c, i, e) in hashes {
        f.case(g, Case::new(c, i, e).flags(&["request_hash"]).refs(&[HASH]));
    }

    // Choice points (issue 10): an input failing two checks, the earlier one named by the
    // spec's order; the form of x402Version. Appended so that no issued id moves.
    let g = f.group("check-order", Kind::ExtractX402, context(Some(NOW)));
    let no_timeout = edit(&acc, |a| {
        a.shift_remove("maxTimeoutSeconds");
    });
    let exact = |a: &J| {
        edit(a, |a| {
            a.insert("scheme".into(), json!("exact"));
        })
    };
    let base = edit(&acc, |a| {
        a.insert("network".into(), json!("eip155:8453"));
    });
    type OrderCase<'a> = (&'a str, Vec<(&'a str, String)>, Reason, &'static str);
    let order_cases: Vec<OrderCase> = vec![
        (
            "two carriers, one of them not base64: ambiguity is decided before anything is decoded",
            vec![
                ("PAYMENT-SIGNATURE", p2.clone()),
                ("X-Payment-Mandate", "%%not base64%%".to_owned()),
            ],
            Reason::PaymentAmbiguous,
            CARRIERS,
        ),
        (
            "x402Version 1 in PAYMENT-SIGNATURE and accepted without maxTimeoutSeconds: the version (step 2) before accepted's members (step 3)",
            vec![(
                "PAYMENT-SIGNATURE",
                b64(&edit(&v2(&no_timeout, &env), |o| {
                    o.insert("x402Version".into(), json!(1));
                })),
            )],
            Reason::X402VersionUnsupported,
            PAYLOAD,
        ),
        (
            "accepted.scheme exact and accepted without maxTimeoutSeconds: accepted's members (step 3) before the scheme (step 4)",
            vec![("PAYMENT-SIGNATURE", b64(&v2(&exact(&no_timeout), &env)))],
            Reason::MissingField,
            PAYLOAD,
        ),
        (
            "accepted.scheme exact and payload a string: the scheme (step 4) before payload's type (step 5)",
            vec![(
                "PAYMENT-SIGNATURE",
                b64(&edit(&v2(&exact(&acc), &env), |o| {
                    o.insert("payload".into(), json!(bare));
                })),
            )],
            Reason::X402SchemeUnsupported,
            PAYLOAD,
        ),
        (
            "payload a string and accepted.network of another chain: payload's type (step 5) before the network (step 6)",
            vec![(
                "PAYMENT-SIGNATURE",
                b64(&edit(&v2(&base, &env), |o| {
                    o.insert("payload".into(), json!(bare));
                })),
            )],
            Reason::FieldType,
            PAYLOAD,
        ),
        (
            "accepted.network of another chain and an envelope whose amount was changed after signing: the network (step 6) before the envelope, which is not read",
            vec![("PAYMENT-SIGNATURE", b64(&v2(&base, &env_json(&forged))))],
            Reason::X402NetworkMismatch,
            PAYLOAD,
        ),
        (
            "X-PAYMENT naming another chain with an envelope whose amount was changed after signing: the network before the envelope",
            vec![("X-PAYMENT", b64(&v1("eip155:8453", &env_json(&forged))))],
            Reason::X402NetworkMismatch,
            PAYLOAD,
        ),
    ];
    for (c, hs, r, anchor) in order_cases {
        let pairs: Vec<(&str, &str)> = hs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.case(g, inv(c, headers(&pairs), r, &["payload"], &[anchor]));
    }
    // x402Version is compared as the integer token 2 (or 1), not by numeric value.
    let v2_text = v2(&acc, &env).to_string();
    let v1_text = v1(&network, &env).to_string();
    let version_cases: Vec<(&str, String)> = vec![
        (
            "PAYMENT-SIGNATURE with x402Version 2.0: not the integer 2",
            base64_encode(
                v2_text
                    .replacen("\"x402Version\":2,", "\"x402Version\":2.0,", 1)
                    .as_bytes(),
            ),
        ),
        (
            "PAYMENT-SIGNATURE with x402Version 2e0: not the integer 2",
            base64_encode(
                v2_text
                    .replacen("\"x402Version\":2,", "\"x402Version\":2e0,", 1)
                    .as_bytes(),
            ),
        ),
    ];
    for (c, h) in version_cases {
        f.case(
            g,
            inv(
                c,
                headers(&[("PAYMENT-SIGNATURE", &h)]),
                Reason::X402VersionUnsupported,
                &["payload"],
                &[PAYLOAD],
            ),
        );
    }
    f.case(
        g,
        inv(
            "X-PAYMENT with x402Version 1.0: not the integer 1",
            headers(&[(
                "X-PAYMENT",
                &base64_encode(
                    v1_text
                        .replacen("\"x402Version\":1,", "\"x402Version\":1.0,", 1)
                        .as_bytes(),
                ),
            )]),
            Reason::X402VersionUnsupported,
            &["payload"],
            &[PAYLOAD],
        ),
    );

    // The URL limit counts the URL as sent, before canonicalisation shortens it.
    let g = f.group("url-length", Kind::HttpRequestHash, Context::default());
    let long = format!("https://example.com:443/{}", "a".repeat(8001 - 24));
    f.case(
        g,
        Case::new(
            "a URL of 8001 bytes as sent whose canonical form (port 443 removed) has 7997: too long",
            req("GET", &long, b""),
            Exp::Invalid(Reason::RequestDescriptorInvalid),
        )
        .flags(&["request_hash"])
        .refs(&[HASH]),
    );
    f.case(
        g,
        Case::new(
            "a URL of exactly 8000 bytes as sent with a default port and a fragment: accepted, canonicalised",
            req(
                "GET",
                &format!("https://Example.com:443/{}#f", "a".repeat(8000 - 26)),
                b"",
            ),
            Exp::Valid,
        )
        .flags(&["request_hash"])
        .refs(&[HASH]),
    );
    f.finish()
}
