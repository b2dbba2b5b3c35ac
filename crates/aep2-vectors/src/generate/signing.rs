//! `signing.json`: for wallet vendors: mandate fields and a key in, the exact signature and
//! header out, for every profile and envelope form.

use super::edkit::{ed_context, ed_domain, ed_mandate, sol_context, sol_mandate};
use super::eip712::{CHAIN_ID, NOW, WALLET, context, domain, mandate};
use super::{Case, Exp, FileBuilder, ed_seed, secp_key};
use crate::model::{Context, Kind, VectorFile};
use aep2::codec::hex_encode_0x;
use aep2::json::to_compact;
use aep2::{Domain, EnvelopeForm, Mandate, PayerKey, Reason, sign_mandate};
use serde_json::{Value as J, json};

fn form(mut c: Context, f: &str) -> Context {
    c.form = Some(f.into());
    c
}

fn case(
    comment: &str,
    m: &Mandate,
    d: &Domain,
    key_hex: &str,
    key: &PayerKey,
    fm: EnvelopeForm,
    refs: &[&'static str],
) -> Case {
    let mandate_json: J = serde_json::from_str(&to_compact(&aep2::json::Value::Object(m.to_json()))).unwrap_or(J::Null);
    let input = json!({ "mandate": mandate_json, "key": key_hex });
    match sign_mandate(m, d, key, fm) {
        Ok((signed, _)) => {
            let mut c = Case::new(comment, input, Exp::Valid).flags(&["sign"]).refs(refs);
            c.signature = Some(signed.signature.clone());
            c.header = Some(signed.encode());
            c
        }
        Err(e) => Case::new(comment, input, Exp::Invalid(e.reason()))
            .flags(&["sign"])
            .refs(refs),
    }
}

pub(crate) fn generate() -> VectorFile {
    let mut f = FileBuilder::new(
        "signing",
        &[
            "Signing known answers: a mandate and the payer key in, the signature and header out.",
            "secp256k1 signatures are RFC 6979 deterministic with low s and v in {27, 28} (as ethers v6); Ed25519 is RFC 8032 (as tweetnacl).",
            "These answers come from this implementation; interop.json pins the same signers against ethers and tweetnacl output.",
        ],
    );
    f.note("sign", "BASIC", "Signing known answer.", &["aep2.md#profiles"]);
    let d = Domain::Eip712(domain(CHAIN_ID, WALLET));
    let ed = Domain::Ed25519(ed_domain());

    let g = f.group("eip712-mvp", Kind::SignMandate, form(context(None), "mvp"));
    for (i, who) in ["alice", "bob", "erin"].iter().enumerate() {
        let k = secp_key(who);
        let hex = hex_encode_0x(&super::secp_secret(who));
        let m = Mandate::Eip712(mandate(&k, i as u64));
        f.case(
            g,
            case(
                &format!("eip712 mandate of {who}, MVP envelope"),
                &m,
                &d,
                &hex,
                &PayerKey::Secp256k1(k),
                EnvelopeForm::Mvp,
                &["aep2.md#profile-eip712", "aep2.md#envelope-mvp"],
            ),
        );
    }
    let alice = secp_key("alice");
    let bob_hex = hex_encode_0x(&super::secp_secret("bob"));
    let m = Mandate::Eip712(mandate(&alice, 0));
    f.case(
        g,
        case(
            "a key that is not the owner's is refused",
            &m,
            &d,
            &bob_hex,
            &PayerKey::Secp256k1(secp_key("bob")),
            EnvelopeForm::Mvp,
            &["aep2.md#verification-order"],
        ),
    );

    let g = f.group("eip712-native", Kind::SignMandate, form(context(None), "native"));
    let hex = hex_encode_0x(&super::secp_secret("alice"));
    f.case(
        g,
        case(
            "eip712 mandate, native envelope",
            &m,
            &d,
            &hex,
            &PayerKey::Secp256k1(alice),
            EnvelopeForm::Native,
            &["aep2.md#envelope-native"],
        ),
    );

    let g = f.group("ed25519-native", Kind::SignMandate, form(ed_context(None), "native"));
    for (i, who) in ["carol", "frank"].iter().enumerate() {
        let m = Mandate::Ed25519(ed_mandate(who, i as u64, NOW + 600));
        let seed = ed_seed(who);
        f.case(
            g,
            case(
                &format!("ed25519 mandate of {who}, native envelope"),
                &m,
                &ed,
                &hex_encode_0x(&seed),
                &PayerKey::Ed25519(seed),
                EnvelopeForm::Native,
                &["aep2.md#ed25519-signing-input"],
            ),
        );
    }

    let g = f.group("solana-mvp", Kind::SignMandate, form(sol_context(None), "mvp"));
    for (i, who) in ["dave", "grace"].iter().enumerate() {
        let mut sm = sol_mandate(who, i as u64, NOW + 600);
        if i == 1 {
            sm.reference = "order \"42\" \\ café\n".into();
        }
        let m = Mandate::SolanaMvp(sm);
        let seed = ed_seed(who);
        f.case(
            g,
            case(
                &format!("solana-mvp mandate of {who}"),
                &m,
                &Domain::SolanaMvp,
                &hex_encode_0x(&seed),
                &PayerKey::Ed25519(seed),
                EnvelopeForm::Mvp,
                &["aep2.md#profile-solana-mvp"],
            ),
        );
    }

    // The signer's refusals (aep2.md#signing): a key that is not the signer's first, then the
    // native form of a solana-mvp mandate.
    let refused = |comment: &str, m: &Mandate, key_hex: String, reason: Reason, refs: &[&'static str]| {
        let mandate_json: J =
            serde_json::from_str(&to_compact(&aep2::json::Value::Object(m.to_json()))).unwrap_or(J::Null);
        Case::new(
            comment,
            json!({ "mandate": mandate_json, "key": key_hex }),
            Exp::Invalid(reason),
        )
        .flags(&["sign"])
        .refs(refs)
    };
    let g = f.group("ed25519-refusal", Kind::SignMandate, form(ed_context(None), "native"));
    f.case(
        g,
        refused(
            "an ed25519 mandate of carol with frank's seed is refused",
            &Mandate::Ed25519(ed_mandate("carol", 0, NOW + 600)),
            hex_encode_0x(&ed_seed("frank")),
            Reason::SignatureInvalid,
            &["aep2.md#signing"],
        ),
    );
    let g = f.group(
        "solana-mvp-native",
        Kind::SignMandate,
        form(sol_context(None), "native"),
    );
    let dave = Mandate::SolanaMvp(sol_mandate("dave", 0, NOW + 600));
    f.case(
        g,
        refused(
            "a solana-mvp mandate asked for in the native envelope is refused: it travels only in the MVP envelope",
            &dave,
            hex_encode_0x(&ed_seed("dave")),
            Reason::UnsupportedProfile,
            &["aep2.md#signing", "aep2.md#envelope-native"],
        ),
    );
    f.case(
        g,
        refused(
            "the native form of a solana-mvp mandate with a key that is not its payer's: the key is refused first",
            &dave,
            hex_encode_0x(&ed_seed("grace")),
            Reason::SignatureInvalid,
            &["aep2.md#signing"],
        ),
    );
    f.finish()
}
