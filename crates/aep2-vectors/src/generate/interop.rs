//! `interop.json`: the peer-signed fixtures (ethers v6, tweetnacl) as vectors, so every
//! implementation is checked against signatures and digests this repository did not produce.
//!
//! Expected verdicts are assigned per fixture id below, from the spec's rules; the fixture's
//! own `expect` is recorded as the upstream result.

use super::edkit::sol_context;
use super::eip712::{NOW, context};
use super::{Case, Exp, FileBuilder, header_input};
use crate::model::{Kind, VectorFile};
use aep2::Reason;
use serde_json::{Value as J, json};
use std::path::Path;

/// Our expectation for each fixture id.
fn expectation(id: &str) -> Option<(Exp, &'static str)> {
    Some(match id {
        "evm-valid-0" | "evm-valid-1" | "evm-valid-2" | "evm-valid-3" => (Exp::Valid, "aep2.md#profile-eip712"),
        "evm-tampered-amount" => (Exp::Invalid(Reason::SignatureInvalid), "aep2.md#eip712-encoding"),
        "evm-signed-for-other-chain" => (Exp::Invalid(Reason::SignatureInvalid), "aep2.md#eip712-encoding"),
        "evm-high-s-twin" => (Exp::Invalid(Reason::SignatureHighS), "aep2.md#eip712-signature-rules"),
        "sol-valid-0" | "sol-valid-1" | "sol-valid-2" => (Exp::Valid, "aep2.md#profile-solana-mvp"),
        "sol-tampered-payee" => (Exp::Invalid(Reason::SignatureInvalid), "aep2.md#profile-solana-mvp"),
        _ => return None,
    })
}

fn s<'a>(v: &'a J, k: &str) -> &'a str {
    v.get(k).and_then(J::as_str).unwrap_or("")
}

pub(crate) fn generate(repo_root: &Path) -> Result<VectorFile, String> {
    let path = repo_root.join("vectors/peer-signed/peer-signed.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: J = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let ethers = format!(
        "ethers {}",
        doc.pointer("/generator/ethers").and_then(J::as_str).unwrap_or("6")
    );
    let tweetnacl = format!(
        "tweetnacl {}",
        doc.pointer("/generator/tweetnacl").and_then(J::as_str).unwrap_or("1")
    );
    let mut f = FileBuilder::new(
        "interop",
        &[
            "Mandates and receipts produced by the libraries FluxA's MVP uses (ethers v6 EIP-712, tweetnacl + bs58 Ed25519), from vectors/peer-signed/peer-signed.json.",
            "Signing cases expect the peer's signature byte for byte; receipt cases show that MVP receipts (enqueueDeadline = deadline + 3 h) break the deadline rule.",
        ],
    );
    f.note(
        "peer_signed",
        "INTEROP",
        "Produced by a peer library, not by this repository.",
        &["aep2.md#mvp-deviations"],
    );
    f.note(
        "deadline_rule",
        "MISSING_STEP",
        "The MVP SP promises settlement after the mandate expires.",
        &["aep2.md#receipt-deadline-rule"],
    );
    let evm = doc
        .get("evm")
        .and_then(J::as_array)
        .ok_or("fixture file has no evm array")?;
    let sol = doc
        .get("solana")
        .and_then(J::as_array)
        .ok_or("fixture file has no solana array")?;

    let g = f.group("ethers-verify", Kind::VerifyMandate, context(Some(NOW)));
    for c in evm {
        let id = s(c, "id");
        let (exp, anchor) = expectation(id).ok_or_else(|| format!("no expectation for fixture {id}"))?;
        f.case(
            g,
            Case::new(format!("fixture {id}"), header_input(s(c, "header")), exp)
                .flags(&["peer_signed"])
                .refs(&[anchor])
                .source(&ethers, id, Some(s(c, "expect"))),
        );
    }
    let g = f.group("tweetnacl-verify", Kind::VerifyMandate, sol_context(Some(NOW)));
    for c in sol {
        let id = s(c, "id");
        let (exp, anchor) = expectation(id).ok_or_else(|| format!("no expectation for fixture {id}"))?;
        f.case(
            g,
            Case::new(format!("fixture {id}"), header_input(s(c, "header")), exp)
                .flags(&["peer_signed"])
                .refs(&[anchor])
                .source(&tweetnacl, id, Some(s(c, "expect"))),
        );
    }

    let sign_groups = [
        (
            "ethers-sign",
            context(None),
            evm,
            &ethers,
            "signerPrivateKey",
            "aep2.md#profile-eip712",
            "ethers signTypedData",
        ),
        (
            "tweetnacl-sign",
            sol_context(None),
            sol,
            &tweetnacl,
            "signerSeedHex",
            "aep2.md#profile-solana-mvp",
            "tweetnacl sign.detached",
        ),
    ];
    for (group, mut ctx, cases, lib, key_field, anchor, what) in sign_groups {
        ctx.form = Some("mvp".into());
        let g = f.group(group, Kind::SignMandate, ctx);
        for c in cases.iter().filter(|c| !s(c, key_field).is_empty()) {
            let id = s(c, "id");
            let input = json!({ "mandate": c.get("mandate"), "key": s(c, key_field) });
            let mut case = Case::new(
                format!("sign fixture {id}'s mandate with its key: {what} output"),
                input,
                Exp::Valid,
            )
            .flags(&["peer_signed"])
            .refs(&[anchor])
            .source(lib, id, Some("signature"));
            case.signature = Some(s(c, "payerSig").to_owned());
            case.header = Some(s(c, "header").to_owned());
            f.case(g, case);
        }
    }

    for (group, ctx, cases, lib) in [
        ("ethers-receipts", context(None), evm, &ethers),
        ("tweetnacl-receipts", sol_context(None), sol, &tweetnacl),
    ] {
        let g = f.group(group, Kind::VerifyReceipt, ctx);
        for c in cases.iter().filter(|c| c.get("receipt").is_some()) {
            let id = s(c, "id");
            let receipt = c.get("receipt").cloned().unwrap_or(J::Null);
            f.case(
                g,
                Case::new(
                    format!("fixture {id}'s SP receipt, signature only"),
                    json!({ "receipt": receipt }),
                    Exp::Valid,
                )
                .flags(&["peer_signed"])
                .refs(&["aep2.md#receipts"])
                .source(lib, id, Some("receipt")),
            );
            f.case(
                g,
                Case::new(
                    format!("fixture {id}'s SP receipt against its mandate: enqueueDeadline is 3 h after the deadline"),
                    json!({ "receipt": receipt, "mandateHeader": s(c, "header") }),
                    Exp::Invalid(Reason::ReceiptDeadlineAfterMandate),
                )
                .flags(&["peer_signed", "deadline_rule"])
                .source(lib, id, Some("receipt")),
            );
        }
    }
    Ok(f.finish())
}
