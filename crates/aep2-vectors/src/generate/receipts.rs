//! `receipts.json`: the three receipt forms, their signatures, SP binding, digest binding and
//! the deadline rule.

use super::edkit::{ed_context, ed_domain, ed_mandate, sign_with, sol_context, sol_mandate};
use super::eip712::{CHAIN_ID, NOW, WALLET, context, domain, mandate, signed_for};
use super::{Case, Exp, FileBuilder, ed_seed, secp_key, with_field};
use crate::model::{Context, Kind, VectorFile};
use aep2::codec::{base58_encode, hex_encode_0x};
use aep2::eip712::personal_sign_hash;
use aep2::hash::keccak256_parts;
use aep2::json::{Value, to_compact};
use aep2::{
    Domain, EnvelopeForm, Mandate, MandateDigest, Reason, Receipt, ReceiptKind, ReceiptLane, SignedMandate, SpKey,
    U256, Verifier,
};
use serde_json::{Value as J, json};

const REC: &str = "aep2.md#receipts";
const RULE: &str = "aep2.md#receipt-deadline-rule";

fn to_j(v: &Value) -> J {
    serde_json::from_str(&to_compact(v)).unwrap_or(J::Null)
}

fn input(r: &Value, mandate_header: Option<&str>) -> J {
    match mandate_header {
        Some(h) => json!({ "receipt": to_j(r), "mandateHeader": h }),
        None => json!({ "receipt": to_j(r) }),
    }
}

fn digest_of(sm: &SignedMandate, d: &Domain) -> Option<MandateDigest> {
    Verifier::new(d.clone())
        .verify_header(&sm.encode(), None)
        .ok()
        .map(|v| v.digest)
}

fn sign(key: &SpKey, kind: ReceiptKind, digest: &MandateDigest, deadline: u64, d: &Domain) -> Receipt {
    key.sign_receipt(kind, digest, deadline, Some(d))
        .unwrap_or_else(|e| Receipt {
            kind,
            domain: None,
            sp: key.id(),
            mandate_digest: e.to_string(),
            enqueue_deadline: deadline,
            lane: None,
            signature: String::new(),
        })
}

fn with_sp_ctx(mut c: Context, sp: &SpKey) -> Context {
    c.sp = Some(sp.id().to_string());
    c
}

pub(crate) fn generate() -> VectorFile {
    let mut f = FileBuilder::new(
        "receipts",
        &[
            "Settlement-processor receipts: mvp-evm (EIP-191 over keccak256(digest ‖ enqueueDeadline)), mvp-solana (Ed25519 over \"<digest>:<enqueueDeadline>\") and native (domain-separated, binding the SP).",
            "The group context names the expected SP; mandateHeader, when present, is the mandate the receipt is checked against (digest and enqueueDeadline <= deadline); it is verified first, by core verification without a time, and a header that fails gives its own code.",
        ],
    );
    f.note("valid", "BASIC", "A receipt that meets every check.", &[REC]);
    f.note("deadline_rule", "MISSING_STEP", "enqueueDeadline after the mandate's deadline: settlement would revert, so the promise cannot be kept. The MVP SP issues such receipts (deadline + 3 h).", &[RULE]);
    f.note(
        "tampered",
        "MODIFIED_PARAMETER",
        "A receipt member changed after signing.",
        &[REC],
    );
    f.note(
        "sp_binding",
        "AUTH_BYPASS",
        "A receipt from, or claiming, another settlement processor.",
        &[REC],
    );
    f.note(
        "digest_binding",
        "MODIFIED_PARAMETER",
        "A validly signed receipt for another mandate.",
        &[REC],
    );
    f.note(
        "signature_form",
        "SIGNATURE_MALLEABILITY",
        "Receipt signatures follow the profile's signature rules.",
        &["aep2.md#eip712-signature-rules"],
    );
    f.note(
        "cross_form",
        "WRONG_PRIMITIVE",
        "A signature made for one receipt form presented as another.",
        &["aep2.md#receipt-native"],
    );
    f.note(
        "shape",
        "EDGE_CASE",
        "Receipt members missing, unknown or of the wrong type.",
        &[REC],
    );

    let d = domain(CHAIN_ID, WALLET);
    let dd = Domain::Eip712(d);
    let alice = secp_key("alice");
    let m = mandate(&alice, 0);
    let deadline = m.deadline;
    let sm = signed_for(&m, &alice, &d);
    let header = sm.encode();
    let Some(digest) = digest_of(&sm, &dd) else {
        return f.finish();
    };
    let other_sm = signed_for(&mandate(&alice, 1), &alice, &d);
    let Some(other_digest) = digest_of(&other_sm, &dd) else {
        return f.finish();
    };
    let sp = SpKey::Secp256k1(secp_key("settlement-processor"));
    let rogue = SpKey::Secp256k1(secp_key("rogue-processor"));
    let inv = Exp::Invalid;

    // --- mvp-evm
    let g = f.group("mvp-evm", Kind::VerifyReceipt, with_sp_ctx(context(None), &sp));
    let r = sign(&sp, ReceiptKind::MvpEvm, &digest, deadline, &dd).to_json();
    f.case(
        g,
        Case::new(
            "enqueueDeadline equal to the mandate deadline",
            input(&r, Some(&header)),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[RULE, "aep2.md#receipt-mvp-evm"]),
    );
    let early = sign(&sp, ReceiptKind::MvpEvm, &digest, deadline - 3600, &dd).to_json();
    f.case(
        g,
        Case::new(
            "enqueueDeadline an hour before the deadline",
            input(&early, Some(&header)),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&["aep2.md#receipt-mvp-evm"]),
    );
    let late = sign(&sp, ReceiptKind::MvpEvm, &digest, deadline + 3 * 3600, &dd).to_json();
    f.case(
        g,
        Case::new(
            "enqueueDeadline = deadline + 3 h, as the MVP SP issues receipts",
            input(&late, Some(&header)),
            inv(Reason::ReceiptDeadlineAfterMandate),
        )
        .flags(&["deadline_rule"]),
    );
    f.case(
        g,
        Case::new(
            "the same receipt checked without its mandate: only signature and SP are checked",
            input(&late, None),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&["aep2.md#receipt-mvp-evm"]),
    );
    let t = with_field(&r, "enqueueDeadline", Some(Value::from_u64(deadline - 1)));
    f.case(
        g,
        Case::new(
            "enqueueDeadline changed after signing",
            input(&t, Some(&header)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["tampered"]),
    );
    let t = with_field(&r, "mandateDigest", Some(Value::String(other_digest.display())));
    f.case(
        g,
        Case::new(
            "mandateDigest changed after signing",
            input(&t, Some(&header)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["tampered"]),
    );
    let for_other = sign(&sp, ReceiptKind::MvpEvm, &other_digest, deadline, &dd).to_json();
    f.case(
        g,
        Case::new(
            "a valid receipt for another mandate",
            input(&for_other, Some(&header)),
            inv(Reason::ReceiptDigestMismatch),
        )
        .flags(&["digest_binding"]),
    );
    let by_rogue = sign(&rogue, ReceiptKind::MvpEvm, &digest, deadline, &dd).to_json();
    f.case(
        g,
        Case::new(
            "validly signed by another SP (sp names it)",
            input(&by_rogue, Some(&header)),
            inv(Reason::ReceiptSpMismatch),
        )
        .flags(&["sp_binding"]),
    );
    let impostor = with_field(&by_rogue, "sp", Some(Value::String(sp.id().to_string())));
    f.case(
        g,
        Case::new(
            "signed by another SP but claiming the expected one",
            input(&impostor, Some(&header)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["sp_binding"]),
    );
    let sig_hex = match &r {
        Value::Object(o) => match o.get("spEnqueueSig") {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let mut bytes = aep2::codec::hex_decode_0x(&sig_hex).unwrap_or_default();
    if bytes.len() == 65 {
        let mut v0 = bytes.clone();
        v0[64] -= 27;
        f.case(
            g,
            Case::new(
                "receipt signature with v = 0/1",
                input(
                    &with_field(&r, "spEnqueueSig", Some(Value::String(hex_encode_0x(&v0)))),
                    Some(&header),
                ),
                inv(Reason::SignatureVInvalid),
            )
            .flags(&["signature_form"]),
        );
        let n = aep2::crypto::secp256k1::N;
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let x = i16::from(n[i]) - i16::from(bytes[32 + i]) - borrow;
            bytes[32 + i] = x.rem_euclid(256) as u8;
            borrow = i16::from(x < 0);
        }
        bytes[64] = if bytes[64] == 27 { 28 } else { 27 };
        f.case(
            g,
            Case::new(
                "high-s twin of the receipt signature",
                input(
                    &with_field(&r, "spEnqueueSig", Some(Value::String(hex_encode_0x(&bytes)))),
                    Some(&header),
                ),
                inv(Reason::SignatureHighS),
            )
            .flags(&["signature_form"]),
        );
    }
    if let SpKey::Secp256k1(k) = &sp {
        // The MVP's first SP signed keccak256(digest ‖ sp ‖ enqueueDeadline) (84 packed bytes).
        let v0 = keccak256_parts(&[&digest.id, &k.address().0, &U256::from_u64(deadline).0]);
        let sig = hex_encode_0x(&k.sign_prehash(&personal_sign_hash(&v0)));
        f.case(
            g,
            Case::new(
                "signed the MVP v0 way (SP address inside the commitment): not the mvp-evm form",
                input(&with_field(&r, "spEnqueueSig", Some(Value::String(sig))), Some(&header)),
                inv(Reason::SignatureInvalid),
            )
            .flags(&["cross_form"])
            .refs(&["aep2.md#receipt-mvp-evm"]),
        );
    }
    f.case(
        g,
        Case::new(
            "unknown member",
            input(
                &with_field(&r, "status", Some(Value::String("enqueued".into()))),
                Some(&header),
            ),
            inv(Reason::UnknownField),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "enqueueDeadline as a string",
            input(
                &with_field(&r, "enqueueDeadline", Some(Value::String(deadline.to_string()))),
                Some(&header),
            ),
            inv(Reason::FieldType),
        )
        .flags(&["shape"]),
    );
    f.case(
        g,
        Case::new(
            "spEnqueueSig missing",
            input(&with_field(&r, "spEnqueueSig", None), Some(&header)),
            inv(Reason::MissingField),
        )
        .flags(&["shape"]),
    );

    let short = format!("0x{}", "ab".repeat(31));
    let no_prefix = other_digest.display()[2..].to_owned();
    for (comment, text) in [
        ("mandateDigest of 31 bytes", short.as_str()),
        ("mandateDigest without 0x", no_prefix.as_str()),
    ] {
        let t = with_field(&r, "mandateDigest", Some(Value::String(text.to_owned())));
        f.case(
            g,
            Case::new(comment, input(&t, Some(&header)), inv(Reason::FieldType)).flags(&["shape"]),
        );
    }

    // --- native, eip712
    let g = f.group("native-eip712", Kind::VerifyReceipt, with_sp_ctx(context(None), &sp));
    let nr = sign(&sp, ReceiptKind::Native, &digest, deadline, &dd).to_json();
    f.case(
        g,
        Case::new(
            "native EVM receipt (EIP-712 Receipt under AEP2SettlementProcessor)",
            input(&nr, Some(&header)),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&["aep2.md#receipt-native"]),
    );
    let nlate = sign(&sp, ReceiptKind::Native, &digest, deadline + 1, &dd).to_json();
    f.case(
        g,
        Case::new(
            "native receipt one second past the mandate deadline",
            input(&nlate, Some(&header)),
            inv(Reason::ReceiptDeadlineAfterMandate),
        )
        .flags(&["deadline_rule"]),
    );
    let other_dom = Domain::Eip712(domain(8453, WALLET));
    let odr = sign(&sp, ReceiptKind::Native, &digest, deadline, &other_dom).to_json();
    f.case(
        g,
        Case::new(
            "native receipt validly signed for another chain's domain",
            input(&odr, Some(&header)),
            inv(Reason::DomainMismatch),
        )
        .flags(&["sp_binding"])
        .refs(&["aep2.md#receipt-native"]),
    );
    let cross = with_field(&nr, "signature", Some(Value::String(sig_hex.clone())));
    f.case(
        g,
        Case::new(
            "the mvp-evm signature of the same receipt presented in the native form",
            input(&cross, Some(&header)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["cross_form"]),
    );
    let nrogue = sign(&rogue, ReceiptKind::Native, &digest, deadline, &dd).to_json();
    f.case(
        g,
        Case::new(
            "native receipt from another SP",
            input(&nrogue, Some(&header)),
            inv(Reason::ReceiptSpMismatch),
        )
        .flags(&["sp_binding"]),
    );
    f.case(
        g,
        Case::new(
            "native receipt with kind \"mandate\"",
            input(
                &with_field(&nr, "kind", Some(Value::String("mandate".into()))),
                Some(&header),
            ),
            inv(Reason::FieldType),
        )
        .flags(&["shape"]),
    );

    f.case(
        g,
        Case::new(
            "native receipt whose mandateDigest is 33 bytes",
            input(
                &with_field(
                    &nr,
                    "mandateDigest",
                    Some(Value::String(format!("0x{}", "cd".repeat(33)))),
                ),
                Some(&header),
            ),
            inv(Reason::FieldType),
        )
        .flags(&["shape"]),
    );

    // --- mvp-solana
    let sol_sp = SpKey::Ed25519(ed_seed("settlement-processor"));
    let sm_sol = sign_with(
        &Mandate::SolanaMvp(sol_mandate("dave", 0, NOW + 600)),
        &Domain::SolanaMvp,
        "dave",
        EnvelopeForm::Mvp,
    );
    let sol_header = sm_sol.encode();
    if let (Some(sd), Some(osd)) = (
        digest_of(&sm_sol, &Domain::SolanaMvp),
        digest_of(
            &sign_with(
                &Mandate::SolanaMvp(sol_mandate("dave", 1, NOW + 600)),
                &Domain::SolanaMvp,
                "dave",
                EnvelopeForm::Mvp,
            ),
            &Domain::SolanaMvp,
        ),
    ) {
        let g = f.group(
            "mvp-solana",
            Kind::VerifyReceipt,
            with_sp_ctx(sol_context(None), &sol_sp),
        );
        let sdl = NOW + 600;
        let r = sign(&sol_sp, ReceiptKind::MvpSolana, &sd, sdl, &Domain::SolanaMvp).to_json();
        f.case(
            g,
            Case::new(
                "mvp-solana receipt at the mandate deadline",
                input(&r, Some(&sol_header)),
                Exp::Valid,
            )
            .flags(&["valid"])
            .refs(&["aep2.md#receipt-mvp-solana"]),
        );
        let late = sign(&sol_sp, ReceiptKind::MvpSolana, &sd, sdl + 10800, &Domain::SolanaMvp).to_json();
        f.case(
            g,
            Case::new(
                "enqueueDeadline = deadline + 3 h, as the MVP SP issues them",
                input(&late, Some(&sol_header)),
                inv(Reason::ReceiptDeadlineAfterMandate),
            )
            .flags(&["deadline_rule"]),
        );
        let t = with_field(&r, "enqueueDeadline", Some(Value::from_u64(sdl - 1)));
        f.case(
            g,
            Case::new(
                "enqueueDeadline changed after signing",
                input(&t, Some(&sol_header)),
                inv(Reason::SignatureInvalid),
            )
            .flags(&["tampered"]),
        );
        let fo = sign(&sol_sp, ReceiptKind::MvpSolana, &osd, sdl, &Domain::SolanaMvp).to_json();
        f.case(
            g,
            Case::new(
                "a valid receipt for another mandate",
                input(&fo, Some(&sol_header)),
                inv(Reason::ReceiptDigestMismatch),
            )
            .flags(&["digest_binding"]),
        );
        let short = base58_encode(&[7u8; 63]);
        f.case(
            g,
            Case::new(
                "signature of 63 bytes",
                input(
                    &with_field(&r, "spEnqueueSig", Some(Value::String(short))),
                    Some(&sol_header),
                ),
                inv(Reason::SignatureLength),
            )
            .flags(&["signature_form"])
            .refs(&["aep2.md#ed25519-verification-rules"]),
        );
    }

    // --- native, ed25519
    let ed = Domain::Ed25519(ed_domain());
    let sm_ed = sign_with(
        &Mandate::Ed25519(ed_mandate("carol", 0, NOW + 600)),
        &ed,
        "carol",
        EnvelopeForm::Native,
    );
    if let Some(ed_digest) = digest_of(&sm_ed, &ed) {
        let g = f.group(
            "native-ed25519",
            Kind::VerifyReceipt,
            with_sp_ctx(ed_context(None), &sol_sp),
        );
        let r = sign(&sol_sp, ReceiptKind::Native, &ed_digest, NOW + 600, &ed).to_json();
        f.case(
            g,
            Case::new("native Ed25519 receipt", input(&r, Some(&sm_ed.encode())), Exp::Valid)
                .flags(&["valid"])
                .refs(&["aep2.md#receipt-native"]),
        );
        let late = sign(&sol_sp, ReceiptKind::Native, &ed_digest, NOW + 601, &ed).to_json();
        f.case(
            g,
            Case::new(
                "native Ed25519 receipt past the mandate deadline",
                input(&late, Some(&sm_ed.encode())),
                inv(Reason::ReceiptDeadlineAfterMandate),
            )
            .flags(&["deadline_rule"]),
        );
        let t = with_field(&r, "sp", Some(Value::String(super::edkit::pubkey("rogue").to_string())));
        f.case(
            g,
            Case::new(
                "sp replaced by another key",
                input(&t, Some(&sm_ed.encode())),
                inv(Reason::SignatureInvalid),
            )
            .flags(&["sp_binding"]),
        );
    }
    // --- a receipt form that does not belong to the mandate's profile
    if let Some(ed_digest) = digest_of(&sm_ed, &ed) {
        let g = f.group("form-mismatch", Kind::VerifyReceipt, with_sp_ctx(ed_context(None), &sp));
        let r = sign(&sp, ReceiptKind::MvpEvm, &ed_digest, NOW + 600, &ed).to_json();
        f.case(
            g,
            Case::new(
                "an mvp-evm receipt whose digest is an ed25519 mandate id",
                input(&r, Some(&sm_ed.encode())),
                inv(Reason::ReceiptDigestMismatch),
            )
            .flags(&["digest_binding"])
            .refs(&["aep2.md#receipts"]),
        );
    }

    // --- the order of the checks: each receipt fails two adjacent checks, the earlier decides
    let g = f.group("check-order", Kind::VerifyReceipt, with_sp_ctx(context(None), &sp));
    let rogue_late = sign(&rogue, ReceiptKind::MvpEvm, &digest, deadline, &dd).to_json();
    let rogue_tampered = with_field(&rogue_late, "enqueueDeadline", Some(Value::from_u64(deadline - 1)));
    f.case(
        g,
        Case::new(
            "from another SP and changed after signing: the signature stage comes before the SP check",
            input(&rogue_tampered, Some(&header)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["sp_binding", "tampered"])
        .refs(&[REC]),
    );
    let rogue_other_dom = sign(&rogue, ReceiptKind::Native, &digest, deadline, &other_dom).to_json();
    f.case(
        g,
        Case::new(
            "native receipt from another SP for another domain: the SP (check 1) before the domain (check 2)",
            input(&rogue_other_dom, Some(&header)),
            inv(Reason::ReceiptSpMismatch),
        )
        .flags(&["sp_binding"])
        .refs(&[REC, "aep2.md#receipt-native"]),
    );
    let other_dom_other_mandate = sign(&sp, ReceiptKind::Native, &other_digest, deadline, &other_dom).to_json();
    f.case(
        g,
        Case::new(
            "native receipt for another domain and another mandate: the domain (check 2) before the digest (check 3)",
            input(&other_dom_other_mandate, Some(&header)),
            inv(Reason::DomainMismatch),
        )
        .flags(&["digest_binding"])
        .refs(&[REC, "aep2.md#receipt-native"]),
    );
    let other_mandate_late = sign(&sp, ReceiptKind::MvpEvm, &other_digest, deadline + 1, &dd).to_json();
    f.case(
        g,
        Case::new(
            "a receipt for another mandate whose enqueueDeadline is after this mandate's deadline: the digest (check 3) before the deadline rule (check 4)",
            input(&other_mandate_late, Some(&header)),
            inv(Reason::ReceiptDigestMismatch),
        )
        .flags(&["digest_binding", "deadline_rule"])
        .refs(&[REC, RULE]),
    );

    // --- the mandate header: verified first, by core verification without a time
    let g = f.group("mandate-header", Kind::VerifyReceipt, with_sp_ctx(context(None), &sp));
    let mut past = mandate(&alice, 2);
    past.deadline = 1_700_000_600;
    let past_sm = signed_for(&past, &alice, &d);
    if let Some(past_digest) = digest_of(&past_sm, &dd) {
        let pr = sign(&sp, ReceiptKind::MvpEvm, &past_digest, past.deadline, &dd).to_json();
        f.case(
            g,
            Case::new(
                "the mandate's deadline (1700000600) has long passed: verify_receipt judges no expiry, so the receipt verifies",
                input(&pr, Some(&past_sm.encode())),
                Exp::Valid,
            )
            .flags(&["valid"])
            .refs(&[REC]),
        );
    }
    let forged = signed_for(&m, &secp_key("not-alice"), &d).encode();
    f.case(
        g,
        Case::new(
            "a valid receipt whose mandate header is signed by a key other than the owner's: the header's own code",
            input(&r, Some(&forged)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["digest_binding"])
        .refs(&[REC]),
    );
    f.case(
        g,
        Case::new(
            "a receipt with an unknown member and a mandate header that fails: the header is verified before the receipt is read",
            input(
                &with_field(&r, "status", Some(Value::String("enqueued".into()))),
                Some(&forged),
            ),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["shape"])
        .refs(&[REC]),
    );

    // --- a native receipt of the other profile
    let mut no_sp = context(None);
    no_sp.sp = None;
    let g = f.group("profile-mismatch", Kind::VerifyReceipt, no_sp);
    let ed_dom = Domain::Ed25519(ed_domain());
    let er = sign(&sol_sp, ReceiptKind::Native, &digest, deadline, &ed_dom).to_json();
    f.case(
        g,
        Case::new(
            "a native ed25519 receipt for an eip712 mandate: its domain is not the expected domain (check 2), not a schema-stage profile_mismatch",
            input(&er, Some(&header)),
            inv(Reason::DomainMismatch),
        )
        .flags(&["cross_form"])
        .refs(&[REC, "aep2.md#receipt-native"]),
    );

    // --- receipts of mandates under a spending lane: `lane` states the leaf and what remains
    for (name, profile, key, ctx) in [
        ("lane-eip712", aep2::Profile::Eip712, &sp, context(None)),
        ("lane-ed25519", aep2::Profile::Ed25519, &sol_sp, ed_context(None)),
    ] {
        let Some(fx) = super::lanes::receipt_fixture(profile) else {
            continue;
        };
        let (ld, lane_header, ldigest, leaf, root) = (fx.domain, fx.header, fx.digest, fx.leaf, fx.root);
        let g = f.group(name, Kind::VerifyReceipt, with_sp_ctx(ctx, key));
        let ldl = NOW + 300;
        let lane_of = |id: [u8; 32], remaining: u64| ReceiptLane {
            id,
            remaining: U256::from_u64(remaining),
        };
        let signed = |l: ReceiptLane| {
            key.sign_receipt_with(ReceiptKind::Native, &ldigest, ldl, Some(&ld), Some(l))
                .map(|r| r.to_json())
                .unwrap_or(Value::Null)
        };
        let lr = signed(lane_of(leaf, 1_600));
        f.case(
            g,
            Case::new(
                "a native receipt for a mandate under a lane, stating the leaf lane and the 1600 that remain",
                input(&lr, Some(&lane_header)),
                Exp::Valid,
            )
            .flags(&["valid"])
            .refs(&[REC, "aep2.md#lane-receipt"]),
        );
        let mut changed = lr.clone();
        if let Value::Object(o) = &mut changed {
            o.insert(
                "lane",
                to_aep2(&json!({"id": hex_encode_0x(&leaf), "remaining": "1000000"})),
            );
        }
        f.case(
            g,
            Case::new(
                "the lane's remaining changed after signing: the signature covers it",
                input(&changed, Some(&lane_header)),
                inv(Reason::SignatureInvalid),
            )
            .flags(&["tampered"])
            .refs(&[REC, "aep2.md#lane-receipt"]),
        );
        let mut dropped = lr.clone();
        if let Value::Object(o) = &mut dropped {
            o.remove("lane");
        }
        f.case(
            g,
            Case::new(
                "the lane member removed after signing: the signature covers it",
                input(&dropped, Some(&lane_header)),
                inv(Reason::SignatureInvalid),
            )
            .flags(&["tampered"])
            .refs(&[REC, "aep2.md#lane-receipt"]),
        );
        let root_stated = signed(lane_of(root, 1_600));
        f.case(
            g,
            Case::new(
                "validly signed, but stating the chain's root instead of the mandate's leaf lane",
                input(&root_stated, Some(&lane_header)),
                inv(Reason::ReceiptLaneMismatch),
            )
            .flags(&["digest_binding"])
            .refs(&[REC, "aep2.md#lane-receipt"]),
        );
        let plain = sign(key, ReceiptKind::Native, &ldigest, ldl, &ld).to_json();
        f.case(
            g,
            Case::new(
                "validly signed for the lane mandate, but stating no lane",
                input(&plain, Some(&lane_header)),
                inv(Reason::ReceiptLaneMismatch),
            )
            .flags(&["digest_binding"])
            .refs(&[REC, "aep2.md#lane-receipt"]),
        );
        let malformed = with_field(
            &lr,
            "lane",
            Some(to_aep2(&json!({"id": hex_encode_0x(&leaf), "remaining": "01600"}))),
        );
        f.case(
            g,
            Case::new(
                "lane.remaining is not a canonical decimal",
                input(&malformed, Some(&lane_header)),
                inv(Reason::UintInvalid),
            )
            .flags(&["shape"])
            .refs(&[REC, "aep2.md#receipt-native"]),
        );
    }
    f.finish()
}

fn to_aep2(v: &J) -> Value {
    aep2::json::parse(&v.to_string(), &aep2::json::Limits::AEP2).unwrap_or(Value::Null)
}
