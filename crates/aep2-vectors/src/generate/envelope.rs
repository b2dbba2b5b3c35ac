//! `envelope.json`: transport decoding (size, base64, UTF-8, JSON), envelope shapes, and the
//! native envelope (version, profile, domain binding) for both native profiles.

use super::edkit::{ed_context, ed_domain, ed_mandate, sign_with, sol_context, sol_mandate};
use super::eip712::{CHAIN_ID, NOW, WALLET, context, domain, mandate, signed_for};
use super::{
    Case, Exp, FileBuilder, header_input, header_of, header_of_text, secp_key, with_field, with_mandate_field,
};
use crate::model::{Kind, VectorFile};
use aep2::codec::base64_encode;
use aep2::json::{Value, to_compact};
use aep2::{Domain, Ed25519Domain, EnvelopeForm, Mandate, Reason, SignedMandate};

const DEC: &str = "aep2.md#decoding-rules";
const JSON: &str = "aep2.md#json-rules";
const LIM: &str = "aep2.md#limits";
const MVP: &str = "aep2.md#envelope-mvp";
const NAT: &str = "aep2.md#envelope-native";

fn native(sm: &SignedMandate, d: &Domain) -> SignedMandate {
    SignedMandate {
        form: EnvelopeForm::Native,
        domain: Some(d.clone()),
        ..sm.clone()
    }
}

pub(crate) fn generate() -> VectorFile {
    let mut f = FileBuilder::new(
        "envelope",
        &[
            "Envelope decoding and shape: header size, canonical base64, UTF-8, strict JSON (duplicates, depth, lengths), MVP and native envelope members.",
            "Decoding faults are reported before schema faults, schema faults before signature faults (aep2.md#verification-order).",
        ],
    );
    f.note("base64", "EDGE_CASE", "Non-canonical or non-standard base64.", &[DEC]);
    f.note("utf8", "EDGE_CASE", "Bytes that are not UTF-8.", &[DEC]);
    f.note(
        "json_syntax",
        "EDGE_CASE",
        "Not exactly one RFC 8259 JSON value.",
        &[JSON],
    );
    f.note("duplicate_key", "CAN_OF_WORMS", "A repeated member name: generic JSON libraries keep the last value, so two verifiers could read different mandates.", &[JSON]);
    f.note(
        "limits",
        "EDGE_CASE",
        "A size limit exceeded (header, depth, string length).",
        &[LIM],
    );
    f.note(
        "check_order",
        "DEFINED",
        "The input fails two checks; the first in the order of aep2.md#decoding-rules and aep2.md#verification-order decides the code.",
        &[DEC, "aep2.md#verification-order"],
    );
    f.note(
        "shape",
        "EDGE_CASE",
        "Envelope members missing, unknown or of the wrong type.",
        &[MVP, NAT],
    );
    f.note(
        "native",
        "BASIC",
        "The native envelope, which names its profile and domain.",
        &[NAT],
    );
    f.note(
        "domain_binding",
        "MODIFIED_PARAMETER",
        "A native envelope signed for, or claiming, another domain.",
        &[NAT],
    );
    f.note("version", "EDGE_CASE", "The aep2 version member.", &[NAT]);
    f.note(
        "profile",
        "EDGE_CASE",
        "Profile names and profile mismatches.",
        &["aep2.md#profiles"],
    );

    let d = domain(CHAIN_ID, WALLET);
    let alice = secp_key("alice");
    let good = signed_for(&mandate(&alice, 0), &alice, &d);
    let env = good.to_json();
    let json_text = to_compact(&env);
    let inv = Exp::Invalid;

    // --- decode
    let g = f.group("decode", Kind::VerifyMandate, context(Some(NOW)));
    let big = "A".repeat(8196);
    f.case(
        g,
        Case::new(
            "header of 8196 bytes (limit 8192)",
            header_input(&big),
            inv(Reason::HeaderTooLarge),
        )
        .flags(&["limits"]),
    );
    let at_limit = "A".repeat(8192);
    f.case(
        g,
        Case::new(
            "header of exactly 8192 bytes passes the size check; its payload (zero bytes) is not JSON",
            header_input(&at_limit),
            inv(Reason::JsonInvalid),
        )
        .flags(&["limits"])
        .refs(&[LIM]),
    );
    f.case(
        g,
        Case::new(
            "URL-safe alphabet characters (- and _)",
            header_input("eyJh-_0="),
            inv(Reason::Base64Invalid),
        )
        .flags(&["base64"]),
    );
    let h = good.encode();
    let unpadded = h.trim_end_matches('=');
    if unpadded.len() != h.len() {
        f.case(
            g,
            Case::new("padding removed", header_input(unpadded), inv(Reason::Base64Invalid)).flags(&["base64"]),
        );
    }
    let padded = header_of_text(&format!("{json_text} "));
    f.case(
        g,
        Case::new(
            "valid JSON with a trailing space, then padding stripped",
            header_input(padded.trim_end_matches('=')),
            inv(Reason::Base64Invalid),
        )
        .flags(&["base64"]),
    );
    f.case(
        g,
        Case::new(
            "non-zero trailing bits before the padding (\"aGl=\" for \"hi\")",
            header_input("aGl="),
            inv(Reason::Base64Invalid),
        )
        .flags(&["base64"]),
    );
    let wrapped: String = h
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    f.case(
        g,
        Case::new(
            "MIME-style line breaks every 76 characters",
            header_input(&wrapped),
            inv(Reason::Base64Invalid),
        )
        .flags(&["base64"]),
    );
    f.case(
        g,
        Case::new(
            "leading space",
            header_input(&format!(" {h}")),
            inv(Reason::Base64Invalid),
        )
        .flags(&["base64"]),
    );
    f.case(
        g,
        Case::new(
            "payload bytes ff fe are not UTF-8",
            header_input(&base64_encode(&[0xff, 0xfe, 0x7b, 0x7d])),
            inv(Reason::Utf8Invalid),
        )
        .flags(&["utf8"]),
    );
    f.case(
        g,
        Case::new(
            "overlong UTF-8 encoding of '/' (c0 af) inside a string",
            header_input(&base64_encode(b"{\"a\":\"\xc0\xaf\"}")),
            inv(Reason::Utf8Invalid),
        )
        .flags(&["utf8"]),
    );
    f.case(
        g,
        Case::new(
            "truncated JSON",
            header_input(&header_of_text(&json_text[..json_text.len() - 1])),
            inv(Reason::JsonInvalid),
        )
        .flags(&["json_syntax"]),
    );
    f.case(
        g,
        Case::new(
            "garbage after the JSON value",
            header_input(&header_of_text(&format!("{json_text}x"))),
            inv(Reason::JsonInvalid),
        )
        .flags(&["json_syntax"]),
    );
    f.case(
        g,
        Case::new(
            "two JSON values",
            header_input(&header_of_text(&format!("{json_text}{json_text}"))),
            inv(Reason::JsonInvalid),
        )
        .flags(&["json_syntax"]),
    );
    f.case(
        g,
        Case::new(
            "UTF-8 byte-order mark before the JSON",
            header_input(&header_of_text(&format!("\u{feff}{json_text}"))),
            inv(Reason::JsonInvalid),
        )
        .flags(&["json_syntax"]),
    );
    f.case(
        g,
        Case::new(
            "single-quoted strings",
            header_input(&header_of_text(&json_text.replace('"', "'"))),
            inv(Reason::JsonInvalid),
        )
        .flags(&["json_syntax"]),
    );
    f.case(
        g,
        Case::new(
            "trailing comma",
            header_input(&header_of_text(&format!("{},}}", &json_text[..json_text.len() - 1]))),
            inv(Reason::JsonInvalid),
        )
        .flags(&["json_syntax"]),
    );
    f.case(
        g,
        Case::new(
            "lone surrogate escape in a string",
            header_input(&header_of_text(&json_text.replacen(
                "\"mandate\"",
                "\"x\":\"\\ud800\",\"mandate\"",
                1,
            ))),
            inv(Reason::JsonInvalid),
        )
        .flags(&["json_syntax"]),
    );
    f.case(
        g,
        Case::new(
            "raw control character inside a string",
            header_input(&header_of_text(&json_text.replacen("\"0x", "\"\u{1}0x", 1))),
            inv(Reason::JsonInvalid),
        )
        .flags(&["json_syntax"]),
    );
    let sig = &good.signature;
    let dup_top = format!("{},\"payerSig\":\"{sig}\"}}", &json_text[..json_text.len() - 1]);
    f.case(
        g,
        Case::new(
            "payerSig member twice",
            header_input(&header_of_text(&dup_top)),
            inv(Reason::JsonDuplicateKey),
        )
        .flags(&["duplicate_key"]),
    );
    let dup_amount = json_text.replacen("\"amount\":\"1000\"", "\"amount\":\"1000\",\"amount\":\"1\"", 1);
    f.case(
        g,
        Case::new(
            "amount twice with different values (a last-wins parser reads amount 1)",
            header_input(&header_of_text(&dup_amount)),
            inv(Reason::JsonDuplicateKey),
        )
        .flags(&["duplicate_key"]),
    );
    let dup_escaped = json_text.replacen("\"amount\":\"1000\"", "\"amount\":\"1000\",\"\\u0061mount\":\"1\"", 1);
    f.case(
        g,
        Case::new(
            "amount twice, the second name written with a \\u escape",
            header_input(&header_of_text(&dup_escaped)),
            inv(Reason::JsonDuplicateKey),
        )
        .flags(&["duplicate_key"]),
    );
    let deep = format!("{},\"x\":[[[[[[[[1]]]]]]]]}}", &json_text[..json_text.len() - 1]);
    f.case(
        g,
        Case::new(
            "nesting depth 9 (limit 8)",
            header_input(&header_of_text(&deep)),
            inv(Reason::JsonLimitExceeded),
        )
        .flags(&["limits"]),
    );
    let long = format!("{},\"x\":\"{}\"}}", &json_text[..json_text.len() - 1], "a".repeat(1025));
    f.case(
        g,
        Case::new(
            "a string of 1025 bytes (limit 1024)",
            header_input(&header_of_text(&long)),
            inv(Reason::JsonLimitExceeded),
        )
        .flags(&["limits"]),
    );
    let escaped_name = json_text.replacen("\"owner\"", "\"\\u006fwner\"", 1);
    f.case(
        g,
        Case::new(
            "member name written with a \\u escape: names compare after unescaping",
            header_input(&header_of_text(&escaped_name)),
            Exp::Valid,
        )
        .flags(&["json_syntax"])
        .refs(&[JSON]),
    );
    let spaced = json_text.replace(',', " ,\n ").replace(':', " : ");
    f.case(
        g,
        Case::new(
            "whitespace between tokens is allowed",
            header_input(&header_of_text(&spaced)),
            Exp::Valid,
        )
        .flags(&["json_syntax"])
        .refs(&[JSON]),
    );

    let long_number = format!(
        "{},\"x\":[12345678901234567890123456.]}}",
        &json_text[..json_text.len() - 1]
    );
    f.case(
        g,
        Case::new(
            "a malformed number that is already over the 24-character limit: the first fault met is the limit",
            header_input(&header_of_text(&long_number)),
            inv(Reason::JsonLimitExceeded),
        )
        .flags(&["limits"]),
    );
    let members: Vec<String> = (0..32).map(|i| format!("\"k{i}\":1")).collect();
    let crowded = format!("{{{},\"k0\":1}}", members.join(","));
    f.case(
        g,
        Case::new(
            "a 33rd member that would also be a duplicate: the member limit is met first",
            header_input(&header_of_text(&crowded)),
            inv(Reason::JsonLimitExceeded),
        )
        .flags(&["limits"]),
    );

    // --- MVP envelope shape
    let g = f.group("mvp-shape", Kind::VerifyMandate, context(Some(NOW)));
    f.case(
        g,
        Case::new(
            "top-level JSON array",
            header_input(&header_of_text(&format!("[{json_text}]"))),
            inv(Reason::FieldType),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "top-level null",
            header_input(&header_of_text("null")),
            inv(Reason::FieldType),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "empty object",
            header_input(&header_of_text("{}")),
            inv(Reason::MissingField),
        )
        .flags(&["shape"]),
    );
    let extra = with_field(&env, "payee", Some(Value::String("0x".into())));
    f.case(
        g,
        Case::new(
            "unknown top-level member",
            header_input(&header_of(&extra)),
            inv(Reason::UnknownField),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "payerSig missing",
            header_input(&header_of(&with_field(&env, "payerSig", None))),
            inv(Reason::MissingField),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "payerSig as a JSON number",
            header_input(&header_of(&with_field(
                &env,
                "payerSig",
                Some(Value::Number("1".into())),
            ))),
            inv(Reason::FieldType),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "mandate as a string",
            header_input(&header_of(&with_field(
                &env,
                "mandate",
                Some(Value::String("{}".into())),
            ))),
            inv(Reason::FieldType),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "mandate null",
            header_input(&header_of(&with_field(&env, "mandate", Some(Value::Null)))),
            inv(Reason::FieldType),
        )
        .flags(&["shape"]),
    );
    let both = with_field(&with_mandate_field(&env, "memo", Some(Value::Null)), "payerSig", None);
    f.case(
        g,
        Case::new(
            "unknown mandate member and missing payerSig: the outer object is checked first",
            header_input(&header_of(&both)),
            inv(Reason::MissingField),
        )
        .flags(&["shape"])
        .refs(&["aep2.md#mandate-json-types"]),
    );
    let both = with_mandate_field(
        &with_mandate_field(&env, "memo", Some(Value::Null)),
        "amount",
        Some(Value::Number("1".into())),
    );
    f.case(
        g,
        Case::new(
            "unknown member and a wrong type in the mandate: unknown members are reported first",
            header_input(&header_of(&both)),
            inv(Reason::UnknownField),
        )
        .flags(&["shape"])
        .refs(&["aep2.md#mandate-json-types"]),
    );
    let mut bad_both = good.clone();
    bad_both.signature = "0x12".into();
    let bad_both = with_mandate_field(&bad_both.to_json(), "amount", Some(Value::String("01".into())));
    f.case(
        g,
        Case::new(
            "bad amount and a bad signature: schema faults come before signature faults",
            header_input(&header_of(&bad_both)),
            inv(Reason::UintInvalid),
        )
        .flags(&["shape"])
        .refs(&["aep2.md#verification-order"]),
    );

    // --- native envelope, eip712
    let g = f.group("native-eip712", Kind::VerifyMandate, context(Some(NOW)));
    let dd = Domain::Eip712(d);
    let nat = native(&good, &dd);
    let nenv = nat.to_json();
    f.case(
        g,
        Case::new(
            "native envelope, eip712 profile: same signature as the MVP form",
            header_input(&nat.encode()),
            Exp::Valid,
        )
        .flags(&["native"])
        .refs(&[NAT]),
    );
    f.case(
        g,
        Case::new(
            "aep2 version 2",
            header_input(&header_of(&with_field(&nenv, "aep2", Some(Value::Number("2".into()))))),
            inv(Reason::UnsupportedVersion),
        )
        .flags(&["version"]),
    );
    f.case(
        g,
        Case::new(
            "aep2 version as a string",
            header_input(&header_of(&with_field(&nenv, "aep2", Some(Value::String("1".into()))))),
            inv(Reason::FieldType),
        )
        .flags(&["version"]),
    );
    f.case(
        g,
        Case::new(
            "aep2 version 1.0",
            header_input(&header_of(&with_field(
                &nenv,
                "aep2",
                Some(Value::Number("1.0".into())),
            ))),
            inv(Reason::UintInvalid),
        )
        .flags(&["version"]),
    );
    f.case(
        g,
        Case::new(
            "unknown profile name",
            header_input(&header_of(&with_field(
                &nenv,
                "profile",
                Some(Value::String("secp256k1".into())),
            ))),
            inv(Reason::UnsupportedProfile),
        )
        .flags(&["profile"]),
    );
    f.case(
        g,
        Case::new(
            "profile ed25519 where the verifier expects eip712",
            header_input(&header_of(&with_field(
                &nenv,
                "profile",
                Some(Value::String("ed25519".into())),
            ))),
            inv(Reason::ProfileMismatch),
        )
        .flags(&["profile"]),
    );
    f.case(
        g,
        Case::new(
            "profile solana-mvp in a native envelope",
            header_input(&header_of(&with_field(
                &nenv,
                "profile",
                Some(Value::String("solana-mvp".into())),
            ))),
            inv(Reason::UnsupportedProfile),
        )
        .flags(&["profile"]),
    );
    let dom = |k: &str, v: Option<Value>| {
        let Some(Value::Object(o)) = (match &nenv {
            Value::Object(t) => t.get("domain").cloned(),
            _ => None,
        }) else {
            return nenv.clone();
        };
        let mut o = o.clone();
        match v {
            Some(v) => o.insert(k, v),
            None => {
                o.remove(k);
            }
        }
        with_field(&nenv, "domain", Some(Value::Object(o)))
    };
    f.case(
        g,
        Case::new(
            "domain without chainId",
            header_input(&header_of(&dom("chainId", None))),
            inv(Reason::DomainInvalid),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "domain chainId as a string",
            header_input(&header_of(&dom("chainId", Some(Value::String("84532".into()))))),
            inv(Reason::DomainInvalid),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "domain chainId 0",
            header_input(&header_of(&dom("chainId", Some(Value::Number("0".into()))))),
            inv(Reason::DomainInvalid),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "domain with an extra salt member",
            header_input(&header_of(&dom("salt", Some(Value::String("0x00".into()))))),
            inv(Reason::DomainInvalid),
        )
        .flags(&["shape"]),
    );
    let lower_bad = format!("0x{}", &WALLET[2..].replacen('d', "D", 1));
    f.case(
        g,
        Case::new(
            "domain verifyingContract with a wrong checksum",
            header_input(&header_of(&dom("verifyingContract", Some(Value::String(lower_bad))))),
            inv(Reason::DomainInvalid),
        )
        .flags(&["shape"]),
    );
    let other = Domain::Eip712(domain(8453, WALLET));
    let m = mandate(&alice, 0);
    let for_other = native(&signed_for(&m, &alice, &domain(8453, WALLET)), &other);
    f.case(
        g,
        Case::new(
            "validly signed for chain 8453 and claiming it: domain mismatch, not a bad signature",
            header_input(&for_other.encode()),
            inv(Reason::DomainMismatch),
        )
        .flags(&["domain_binding"]),
    );
    let claims_other = native(&good, &other);
    f.case(
        g,
        Case::new(
            "signed for 84532 but claiming 8453: verified over the claimed domain, so the signature fails",
            header_input(&claims_other.encode()),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["domain_binding"])
        .refs(&["aep2.md#verification-order"]),
    );
    f.case(
        g,
        Case::new(
            "signature member missing",
            header_input(&header_of(&with_field(&nenv, "signature", None))),
            inv(Reason::MissingField),
        )
        .flags(&["shape"]),
    );
    let renamed = with_field(
        &with_field(&nenv, "signature", None),
        "payerSig",
        Some(Value::String(good.signature.clone())),
    );
    f.case(
        g,
        Case::new(
            "payerSig instead of signature in a native envelope",
            header_input(&header_of(&renamed)),
            inv(Reason::UnknownField),
        )
        .flags(&["shape"]),
    );

    // --- native envelope, ed25519
    let g = f.group("native-ed25519", Kind::VerifyMandate, ed_context(Some(NOW)));
    let ed = Domain::Ed25519(ed_domain());
    let em = Mandate::Ed25519(ed_mandate("carol", 0, NOW + 600));
    let ens = sign_with(&em, &ed, "carol", EnvelopeForm::Native);
    f.case(
        g,
        Case::new("native ed25519 envelope", header_input(&ens.encode()), Exp::Valid)
            .flags(&["native"])
            .refs(&["aep2.md#profile-ed25519"]),
    );
    let mvp_form = sign_with(&em, &ed, "carol", EnvelopeForm::Mvp);
    f.case(
        g,
        Case::new(
            "the same mandate in the MVP envelope form (domain supplied by the verifier)",
            header_input(&mvp_form.encode()),
            Exp::Valid,
        )
        .flags(&["native"])
        .refs(&[MVP]),
    );
    let mainnet = Domain::Ed25519(Ed25519Domain {
        network: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp".into(),
        ..ed_domain()
    });
    let other_net = sign_with(&em, &mainnet, "carol", EnvelopeForm::Native);
    f.case(
        g,
        Case::new(
            "validly signed for Solana mainnet and claiming it",
            header_input(&other_net.encode()),
            inv(Reason::DomainMismatch),
        )
        .flags(&["domain_binding"]),
    );
    let other_wallet = Domain::Ed25519(Ed25519Domain {
        wallet: super::edkit::pubkey("another-program"),
        ..ed_domain()
    });
    let ow = sign_with(&em, &other_wallet, "carol", EnvelopeForm::Native);
    f.case(
        g,
        Case::new(
            "validly signed for another wallet program and claiming it",
            header_input(&ow.encode()),
            inv(Reason::DomainMismatch),
        )
        .flags(&["domain_binding"]),
    );
    let eenv = ens.to_json();
    let edom = |k: &str, v: Value| {
        let Some(Value::Object(o)) = (match &eenv {
            Value::Object(t) => t.get("domain").cloned(),
            _ => None,
        }) else {
            return eenv.clone();
        };
        let mut o = o.clone();
        o.insert(k, v);
        with_field(&eenv, "domain", Some(Value::Object(o)))
    };
    f.case(
        g,
        Case::new(
            "network that is not a CAIP-2 id",
            header_input(&header_of(&edom("network", Value::String("solana-devnet".into())))),
            inv(Reason::DomainInvalid),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "wallet that is not base58",
            header_input(&header_of(&edom("wallet", Value::String("0OIl".into())))),
            inv(Reason::DomainInvalid),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "eip712 envelope where the verifier expects ed25519",
            header_input(&native(&good, &dd).encode()),
            inv(Reason::ProfileMismatch),
        )
        .flags(&["profile"]),
    );

    // --- solana-mvp envelopes
    let g = f.group("solana-mvp", Kind::VerifyMandate, sol_context(Some(NOW)));
    let sm = Mandate::SolanaMvp(sol_mandate("dave", 0, NOW + 600));
    let sol = sign_with(&sm, &Domain::SolanaMvp, "dave", EnvelopeForm::Mvp);
    f.case(
        g,
        Case::new(
            "solana-mvp mandate in the MVP envelope",
            header_input(&sol.encode()),
            Exp::Valid,
        )
        .flags(&["shape"])
        .refs(&["aep2.md#profile-solana-mvp"]),
    );
    let as_native = with_field(
        &with_field(
            &with_field(
                &with_field(&sol.to_json(), "payerSig", None),
                "aep2",
                Some(Value::Number("1".into())),
            ),
            "profile",
            Some(Value::String("solana-mvp".into())),
        ),
        "signature",
        Some(Value::String(sol.signature.clone())),
    );
    let as_native = with_field(&as_native, "domain", Some(Value::Null));
    f.case(
        g,
        Case::new(
            "a native envelope naming profile solana-mvp",
            header_input(&header_of(&as_native)),
            inv(Reason::UnsupportedProfile),
        )
        .flags(&["profile"]),
    );

    // --- inputs that fail two checks: the first in the normative order decides
    let g = f.group("check-order", Kind::VerifyMandate, context(Some(NOW)));
    f.case(
        g,
        Case::new(
            "header of 8196 bytes that is not base64 either (URL-safe - throughout): the size (step 1) is checked first",
            header_input(&"-".repeat(8196)),
            inv(Reason::HeaderTooLarge),
        )
        .flags(&["limits", "base64", "check_order"])
        .refs(&[DEC]),
    );
    let dup_then_syntax = format!("{{\"mandate\":1,{},}}", &json_text[1..json_text.len() - 1]);
    f.case(
        g,
        Case::new(
            "mandate member twice, then a trailing comma: the duplicate is met first in the one pass",
            header_input(&header_of_text(&dup_then_syntax)),
            inv(Reason::JsonDuplicateKey),
        )
        .flags(&["duplicate_key", "json_syntax", "check_order"])
        .refs(&[DEC, JSON]),
    );
    let mut expired = mandate(&alice, 0);
    expired.deadline = NOW - 1;
    let expired_bad_sig = signed_for(&expired, &secp_key("mallory"), &domain(CHAIN_ID, WALLET));
    f.case(
        g,
        Case::new(
            "expired (deadline now - 1) and signed by a key other than the owner's: the signature stage comes before expiry",
            header_input(&expired_bad_sig.encode()),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["check_order"])
        .refs(&["aep2.md#verification-order"]),
    );
    let expired_other = native(&signed_for(&expired, &alice, &domain(8453, WALLET)), &other);
    f.case(
        g,
        Case::new(
            "native envelope validly signed for chain 8453 and claiming it, expired (deadline now - 1): the domain before expiry",
            header_input(&expired_other.encode()),
            inv(Reason::DomainMismatch),
        )
        .flags(&["domain_binding", "check_order"])
        .refs(&[NAT, "aep2.md#verification-order"]),
    );
    // The native envelope's schema-stage checks, one pair of neighbours per case
    // (aep2.md#envelope-native steps 2 to 5).
    let num = |n: &str| Some(Value::Number(n.into()));
    let text = |s: &str| Some(Value::String(s.into()));
    let bad_domain = || {
        let mut o = aep2::json::Object::new();
        o.insert("chainId", Value::Number("0".into()));
        o.insert("verifyingContract", Value::String(WALLET.into()));
        Some(Value::Object(o))
    };
    let v2_unknown_profile = with_field(&with_field(&nenv, "aep2", num("2")), "profile", text("x"));
    f.case(
        g,
        Case::new(
            "native envelope with aep2 2 and profile \"x\": the version (step 2) before the profile (step 3)",
            header_input(&header_of(&v2_unknown_profile)),
            inv(Reason::UnsupportedVersion),
        )
        .flags(&["version", "profile", "check_order"])
        .refs(&[NAT]),
    );
    let other_profile_bad_domain = with_field(&with_field(&nenv, "profile", text("ed25519")), "domain", bad_domain());
    f.case(
        g,
        Case::new(
            "native envelope with profile ed25519 at an eip712 verifier and chainId 0: the profile (step 3) before the domain (step 4)",
            header_input(&header_of(&other_profile_bad_domain)),
            inv(Reason::ProfileMismatch),
        )
        .flags(&["profile", "check_order"])
        .refs(&[NAT]),
    );
    let bad_domain_bad_amount = with_mandate_field(&with_field(&nenv, "domain", bad_domain()), "amount", text("01"));
    f.case(
        g,
        Case::new(
            "native envelope with chainId 0 and amount \"01\": the domain (step 4) before the mandate (step 5)",
            header_input(&header_of(&bad_domain_bad_amount)),
            inv(Reason::DomainInvalid),
        )
        .flags(&["shape", "check_order"])
        .refs(&[NAT]),
    );
    let bad_amount_numeric_sig = with_mandate_field(&with_field(&nenv, "signature", num("12")), "amount", text("01"));
    f.case(
        g,
        Case::new(
            "native envelope with amount \"01\" and a number as signature: the mandate before the signature's type (step 5)",
            header_input(&header_of(&bad_amount_numeric_sig)),
            inv(Reason::UintInvalid),
        )
        .flags(&["shape", "check_order"])
        .refs(&[NAT]),
    );
    // Two faulty mandate members written against definition order: `amount` (uint_invalid)
    // before `token` (address_invalid) in the text; the definition order decides.
    let m = &good.mandate;
    let Mandate::Eip712(em) = m else {
        unreachable!("an eip712 mandate")
    };
    let swapped = format!(
        "{{\"mandate\":{{\"owner\":\"{}\",\"amount\":\"01\",\"token\":\"0x12\",\"payee\":\"{}\",\"nonce\":\"{}\",\"deadline\":{},\"ref\":\"{}\"}},\"payerSig\":\"{}\"}}",
        em.owner.to_checksum(),
        em.payee.to_checksum(),
        em.nonce,
        em.deadline,
        aep2::codec::hex_encode_0x(&em.reference),
        good.signature
    );
    f.case(
        g,
        Case::new(
            "mandate with amount \"01\" written before token \"0x12\": faults are taken in definition order (token first), not document order",
            header_input(&header_of_text(&swapped)),
            inv(Reason::AddressInvalid),
        )
        .flags(&["shape", "check_order"])
        .refs(&[MVP, "aep2.md#mandate-json-types"]),
    );

    // Without `now` no expiry is checked (conformance.md#inputs): a deadline long past is valid.
    let g = f.group("no-now", Kind::VerifyMandate, context(None));
    let mut old = mandate(&alice, 0);
    old.deadline = 1_700_000_000;
    f.case(
        g,
        Case::new(
            "no now in the context and a deadline of 1700000000 (2023): verification without a time performs no expiry check",
            header_input(&signed_for(&old, &alice, &domain(CHAIN_ID, WALLET)).encode()),
            Exp::Valid,
        )
        .refs(&["aep2.md#verification-order", "conformance.md#inputs"]),
    );

    f.finish()
}
