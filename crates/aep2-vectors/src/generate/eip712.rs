//! `eip712.json`: the secp256k1 EIP-712 profile: valid mandates, every signature edge case
//! the spec rules on, domain binding, tampering, and field-encoding edge cases.

use super::{Case, Exp, FileBuilder, header_input, header_of, secp_key, with_mandate_field};
use crate::model::{Context, Kind};
use aep2::codec::hex_encode_0x;
use aep2::crypto::secp256k1::{HALF_N, N, SecretKey};
use aep2::eip712::{domain_separator, mandate_parts, personal_sign_hash};
use aep2::hash::{keccak256, keccak256_parts};
use aep2::json::Value;
use aep2::{Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, Mandate, Reason, SignedMandate, U256};
use serde_json::json;

/// Base Sepolia: the chain the FluxA MVP deploys on.
pub(crate) const CHAIN_ID: u64 = 84532;
/// The MVP debit-wallet address.
pub(crate) const WALLET: &str = "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912";
/// USDC on Base Sepolia.
pub(crate) const USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
/// The fixed verification time of the vectors.
pub(crate) const NOW: u64 = 1_800_000_000;

pub(crate) fn addr(s: &str) -> EvmAddress {
    EvmAddress::parse(s).unwrap_or_default()
}

pub(crate) fn domain(chain_id: u64, wallet: &str) -> Eip712Domain {
    Eip712Domain {
        chain_id,
        verifying_contract: addr(wallet),
    }
}

pub(crate) fn context(now: Option<u64>) -> Context {
    Context {
        profile: Some("eip712".into()),
        domain: Some(json!({ "chainId": CHAIN_ID, "verifyingContract": WALLET })),
        now,
        ..Context::default()
    }
}

/// A payee address derived from a label.
pub(crate) fn payee(label: &str) -> EvmAddress {
    let h = keccak256(format!("aep2-vectors/payee/{label}").as_bytes());
    let mut a = [0u8; 20];
    a.copy_from_slice(&h[12..]);
    EvmAddress(a)
}

pub(crate) fn mandate(owner: &SecretKey, i: u64) -> EvmMandate {
    EvmMandate {
        owner: owner.address(),
        token: addr(USDC),
        payee: payee("merchant-a"),
        amount: U256::from_u64(1000 * (i + 1)),
        nonce: U256(keccak256(format!("aep2-vectors/nonce/{i}").as_bytes())),
        deadline: NOW + 600,
        reference: keccak256(format!("aep2-vectors/call/{i}").as_bytes()),
    }
}

/// Signs a mandate for `d` and returns the envelope (MVP form).
pub(crate) fn signed_for(m: &EvmMandate, key: &SecretKey, d: &Eip712Domain) -> SignedMandate {
    let digest = mandate_parts(m, d).digest;
    SignedMandate {
        form: EnvelopeForm::Mvp,
        mandate: Mandate::Eip712(m.clone()),
        domain: None,
        signature: hex_encode_0x(&key.sign_prehash(&digest)),
        lanes: Vec::new(),
    }
}

fn with_sig(sm: &SignedMandate, sig: &[u8]) -> String {
    let mut s = sm.clone();
    s.signature = hex_encode_0x(sig);
    s.encode()
}

fn with_sig_text(sm: &SignedMandate, text: &str) -> String {
    let mut s = sm.clone();
    s.signature = text.to_owned();
    s.encode()
}

const SIG: &str = "aep2.md#eip712-signature-rules";
const ENC: &str = "aep2.md#eip712-encoding";
const TYPES: &str = "aep2.md#mandate-json-types";
const FIELDS: &str = "aep2.md#mandate-fields";

pub(crate) fn generate() -> super::VectorFile {
    let mut f = FileBuilder::new(
        "eip712",
        &[
            "The eip712 profile (secp256k1, EIP-712 domain AEP2DebitWallet/1): byte-compatible with the FluxA MVP debit wallet.",
            "The accepted signature set is exactly the one OpenZeppelin 5 ECDSA.recover accepts: 65 bytes, v in {27, 28}, 0 < r < n, 0 < s <= n/2.",
            "Headers are base64 of {\"mandate\", \"payerSig\"} (MVP form); the verifier's domain is the group context.",
        ],
    );
    f.note(
        "valid",
        "BASIC",
        "A well-formed mandate with a valid signature.",
        &["aep2.md#profile-eip712"],
    );
    f.note(
        "compact_signature",
        "SIGNATURE_MALLEABILITY",
        "EIP-2098 64-byte compact form; ethers accepts it, the settlement contract does not.",
        &[SIG],
    );
    f.note(
        "v_zero_one",
        "SIGNATURE_MALLEABILITY",
        "v written as 0/1 instead of 27/28; ethers accepts it, the settlement contract does not.",
        &[SIG],
    );
    f.note(
        "v_eip155",
        "SIGNATURE_MALLEABILITY",
        "v in EIP-155 transaction form, never valid for typed data.",
        &[SIG],
    );
    f.note(
        "high_s",
        "SIGNATURE_MALLEABILITY",
        "s above n/2 (EIP-2): the malleable twin of a valid signature.",
        &[SIG],
    );
    f.note("scalar_range", "EDGE_CASE", "r or s zero or at least n.", &[SIG]);
    f.note(
        "unrecoverable",
        "EDGE_CASE",
        "r is not the x-coordinate of any curve point.",
        &[SIG],
    );
    f.note(
        "wrong_recovery_id",
        "MODIFIED_PARAMETER",
        "v flipped: recovery yields a different, valid-looking address.",
        &[SIG],
    );
    f.note(
        "wrong_primitive",
        "WRONG_PRIMITIVE",
        "Signed with the right key over the wrong bytes (EIP-191, or the bare struct hash).",
        &[ENC],
    );
    f.note(
        "wrong_domain",
        "MODIFIED_PARAMETER",
        "Signed for another chain, contract or domain name.",
        &[ENC],
    );
    f.note(
        "tampered",
        "MODIFIED_PARAMETER",
        "A signed field changed after signing.",
        &[ENC],
    );
    f.note(
        "address_case",
        "EDGE_CASE",
        "EVM address letter case: all-lower and all-upper carry no checksum; mixed case must be EIP-55.",
        &[TYPES, "eip-55"],
    );
    f.note(
        "number_encoding",
        "EDGE_CASE",
        "Integer fields in a form other than the canonical one (JSON number, hex, leading zeros, signs, exponents).",
        &[TYPES],
    );
    f.note(
        "range",
        "EDGE_CASE",
        "Integer at or beyond the edge of its range.",
        &[FIELDS],
    );
    f.note(
        "ref_format",
        "EDGE_CASE",
        "ref not 0x + 64 lowercase hex digits.",
        &[FIELDS],
    );
    f.note(
        "shape",
        "EDGE_CASE",
        "Members missing, unknown, reordered or of the wrong JSON type.",
        &[TYPES],
    );
    f.note(
        "expiry",
        "EDGE_CASE",
        "Deadline relative to the verification time (inclusive).",
        &[FIELDS],
    );

    let d = domain(CHAIN_ID, WALLET);
    let alice = secp_key("alice");
    let bob = secp_key("bob");
    let base = mandate(&alice, 0);
    let good = signed_for(&base, &alice, &d);
    let good_sig = aep2::crypto::secp256k1::parse_signature(&good.signature).unwrap_or([0; 65]);

    // --- valid
    let g = f.group("valid", Kind::VerifyMandate, context(Some(NOW)));
    f.case(
        g,
        Case::new("valid mandate, MVP envelope", header_input(&good.encode()), Exp::Valid)
            .flags(&["valid"])
            .refs(&["aep2.md#profile-eip712"]),
    );
    let mut m = mandate(&bob, 1);
    m.amount = U256::from_u64(1);
    m.nonce = U256::ZERO;
    f.case(
        g,
        Case::new(
            "amount 1 and nonce 0",
            header_input(&signed_for(&m, &bob, &d).encode()),
            Exp::Valid,
        )
        .flags(&["valid", "range"])
        .refs(&[FIELDS]),
    );
    let mut m = mandate(&alice, 2);
    m.amount = U256([0xff; 32]);
    m.nonce = U256([0xff; 32]);
    f.case(
        g,
        Case::new(
            "amount and nonce 2^256 - 1",
            header_input(&signed_for(&m, &alice, &d).encode()),
            Exp::Valid,
        )
        .flags(&["valid", "range"])
        .refs(&[FIELDS]),
    );
    let mut m = mandate(&alice, 3);
    m.deadline = NOW;
    f.case(
        g,
        Case::new(
            "deadline equal to now: still valid (inclusive)",
            header_input(&signed_for(&m, &alice, &d).encode()),
            Exp::Valid,
        )
        .flags(&["valid", "expiry"])
        .refs(&[FIELDS]),
    );
    let upper = format!("0x{}", good.signature[2..].to_uppercase());
    f.case(
        g,
        Case::new(
            "signature hex digits in upper case",
            header_input(&with_sig_text(&good, &upper)),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&["aep2.md#profiles"]),
    );
    let env = good.to_json();
    let lower = with_mandate_field(
        &env,
        "owner",
        Some(Value::String(base.owner.to_checksum().to_lowercase())),
    );
    f.case(
        g,
        Case::new(
            "owner in all-lowercase hex (no checksum): same mandate",
            header_input(&header_of(&lower)),
            Exp::Valid,
        )
        .flags(&["valid", "address_case"])
        .refs(&[TYPES]),
    );
    let up = with_mandate_field(
        &env,
        "payee",
        Some(Value::String(format!(
            "0x{}",
            base.payee.to_checksum()[2..].to_uppercase()
        ))),
    );
    f.case(
        g,
        Case::new(
            "payee in all-uppercase hex digits (no checksum): same mandate",
            header_input(&header_of(&up)),
            Exp::Valid,
        )
        .flags(&["valid", "address_case"])
        .refs(&[TYPES]),
    );

    // --- signature encoding and validation criteria
    let g = f.group("signature", Kind::VerifyMandate, context(Some(NOW)));
    let inv = |r| Exp::Invalid(r);
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&good_sig[..32]);
    compact[32..].copy_from_slice(&good_sig[32..64]);
    if good_sig[64] == 28 {
        compact[32] |= 0x80;
    }
    f.case(
        g,
        Case::new(
            "EIP-2098 compact 64-byte form of a valid signature",
            header_input(&with_sig(&good, &compact)),
            inv(Reason::SignatureLength),
        )
        .flags(&["compact_signature"]),
    );
    let mut long = good_sig.to_vec();
    long.push(0);
    f.case(
        g,
        Case::new(
            "66 bytes: a trailing zero byte",
            header_input(&with_sig(&good, &long)),
            inv(Reason::SignatureLength),
        )
        .flags(&["compact_signature"]),
    );
    f.case(
        g,
        Case::new(
            "empty signature 0x",
            header_input(&with_sig_text(&good, "0x")),
            inv(Reason::SignatureLength),
        ),
    );
    f.case(
        g,
        Case::new(
            "signature without 0x prefix",
            header_input(&with_sig_text(&good, &good.signature[2..])),
            inv(Reason::SignatureEncoding),
        ),
    );
    f.case(
        g,
        Case::new(
            "odd number of hex digits",
            header_input(&with_sig_text(&good, &good.signature[..131])),
            inv(Reason::SignatureEncoding),
        ),
    );
    let bad_hex = format!("{}zz", &good.signature[..130]);
    f.case(
        g,
        Case::new(
            "non-hex characters",
            header_input(&with_sig_text(&good, &bad_hex)),
            inv(Reason::SignatureEncoding),
        ),
    );
    let mut s = good_sig;
    s[64] = good_sig[64] - 27;
    f.case(
        g,
        Case::new(
            "v as y-parity (0/1) instead of 27/28; ethers accepts it",
            header_input(&with_sig(&good, &s)),
            inv(Reason::SignatureVInvalid),
        )
        .flags(&["v_zero_one"]),
    );
    s[64] = 1 - (good_sig[64] - 27);
    f.case(
        g,
        Case::new(
            "v as the other y-parity in 0/1 form",
            header_input(&with_sig(&good, &s)),
            inv(Reason::SignatureVInvalid),
        )
        .flags(&["v_zero_one"]),
    );
    for v in [26u8, 29, 37, 38] {
        let mut s = good_sig;
        s[64] = v;
        f.case(
            g,
            Case::new(
                format!("v = {v}"),
                header_input(&with_sig(&good, &s)),
                inv(Reason::SignatureVInvalid),
            )
            .flags(&["v_eip155"]),
        );
    }
    let twin = high_s_twin(&good_sig);
    f.case(
        g,
        Case::new(
            "high-s twin of a valid signature (s' = n - s, v flipped): recovers the owner, but EIP-2 forbids it",
            header_input(&with_sig(&good, &twin)),
            inv(Reason::SignatureHighS),
        )
        .flags(&["high_s"])
        .refs(&["eip-2"]),
    );
    let mut s = good_sig;
    s[32..64].copy_from_slice(&N);
    f.case(
        g,
        Case::new("s = n", header_input(&with_sig(&good, &s)), inv(Reason::SignatureHighS))
            .flags(&["high_s", "scalar_range"]),
    );
    let mut s = good_sig;
    s[32..64].fill(0xff);
    f.case(
        g,
        Case::new(
            "s = 2^256 - 1",
            header_input(&with_sig(&good, &s)),
            inv(Reason::SignatureHighS),
        )
        .flags(&["high_s", "scalar_range"]),
    );
    let mut s = good_sig;
    s[32..64].copy_from_slice(&add_one(&HALF_N));
    f.case(
        g,
        Case::new(
            "s = n/2 + 1: the smallest high s",
            header_input(&with_sig(&good, &s)),
            inv(Reason::SignatureHighS),
        )
        .flags(&["high_s"]),
    );
    let mut s = good_sig;
    s[32..64].copy_from_slice(&HALF_N);
    f.case(
        g,
        Case::new(
            "s = n/2 exactly is allowed by EIP-2; this s is not the signer's, so recovery yields another address",
            header_input(&with_sig(&good, &s)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["scalar_range"]),
    );
    let mut s = good_sig;
    s[..32].fill(0);
    f.case(
        g,
        Case::new(
            "r = 0",
            header_input(&with_sig(&good, &s)),
            inv(Reason::SignatureScalarOutOfRange),
        )
        .flags(&["scalar_range"]),
    );
    let mut s = good_sig;
    s[32..64].fill(0);
    f.case(
        g,
        Case::new(
            "s = 0",
            header_input(&with_sig(&good, &s)),
            inv(Reason::SignatureScalarOutOfRange),
        )
        .flags(&["scalar_range"]),
    );
    let mut s = good_sig;
    s[..32].copy_from_slice(&N);
    f.case(
        g,
        Case::new(
            "r = n",
            header_input(&with_sig(&good, &s)),
            inv(Reason::SignatureScalarOutOfRange),
        )
        .flags(&["scalar_range"]),
    );
    let mut s = good_sig;
    s[..32].fill(0xff);
    f.case(
        g,
        Case::new(
            "r = 2^256 - 1",
            header_input(&with_sig(&good, &s)),
            inv(Reason::SignatureScalarOutOfRange),
        )
        .flags(&["scalar_range"]),
    );
    let mut s = good_sig;
    s[..32].copy_from_slice(&U256::from_u64(5).0);
    f.case(
        g,
        Case::new(
            "r = 5: 5^3 + 7 is not a square mod p, so no point has x = r",
            header_input(&with_sig(&good, &s)),
            inv(Reason::SignatureUnrecoverable),
        )
        .flags(&["unrecoverable"]),
    );
    let mut s = good_sig;
    s[64] = if good_sig[64] == 27 { 28 } else { 27 };
    f.case(
        g,
        Case::new(
            "v flipped: recovers a different address than the owner",
            header_input(&with_sig(&good, &s)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_recovery_id"]),
    );
    let by_bob = signed_for(&base, &bob, &d);
    f.case(
        g,
        Case::new(
            "signed by a key other than the owner's",
            header_input(&by_bob.encode()),
            inv(Reason::SignatureInvalid),
        )
        .refs(&["aep2.md#verification-order"]),
    );
    let digest = mandate_parts(&base, &d);
    let personal = alice.sign_prehash(&personal_sign_hash(&digest.digest));
    f.case(
        g,
        Case::new(
            "owner signed the EIP-712 digest with EIP-191 personal_sign instead",
            header_input(&with_sig(&good, &personal)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_primitive"])
        .refs(&["eip-191"]),
    );
    let bare = alice.sign_prehash(&digest.struct_hash);
    f.case(
        g,
        Case::new(
            "owner signed the bare struct hash (no 0x1901 prefix, no domain)",
            header_input(&with_sig(&good, &bare)),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_primitive"]),
    );

    // --- domain binding
    let g = f.group("domain", Kind::VerifyMandate, context(Some(NOW)));
    let other_chain = signed_for(&base, &alice, &domain(8453, WALLET));
    f.case(
        g,
        Case::new(
            "signed for chain 8453 (Base), verified for 84532",
            header_input(&other_chain.encode()),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_domain"])
        .refs(&[ENC, "eip-712"]),
    );
    let other_wallet = signed_for(
        &base,
        &alice,
        &domain(CHAIN_ID, "0x2222222222222222222222222222222222222222"),
    );
    f.case(
        g,
        Case::new(
            "signed for another debit-wallet contract",
            header_input(&other_wallet.encode()),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_domain"])
        .refs(&[ENC]),
    );
    let sep = domain_separator("AEP2 Debit Wallet", &d);
    let h = keccak256_parts(&[&[0x19, 0x01], &sep, &digest.struct_hash]);
    f.case(
        g,
        Case::new(
            "signed under the domain name \"AEP2 Debit Wallet\"",
            header_input(&with_sig(&good, &alice.sign_prehash(&h))),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_domain"])
        .refs(&[ENC]),
    );
    let sep = keccak256_parts(&[
        &keccak256(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
        &keccak256(b"AEP2DebitWallet"),
        &keccak256(b"2"),
        &U256::from_u64(CHAIN_ID).0,
        &d.verifying_contract.to_word(),
    ]);
    let h = keccak256_parts(&[&[0x19, 0x01], &sep, &digest.struct_hash]);
    f.case(
        g,
        Case::new(
            "signed under domain version \"2\"",
            header_input(&with_sig(&good, &alice.sign_prehash(&h))),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["wrong_domain"])
        .refs(&[ENC]),
    );

    // --- tampering: each signed field changed after signing
    let g = f.group("tamper", Kind::VerifyMandate, context(Some(NOW)));
    let other = Value::String(payee("someone-else").to_checksum());
    let tampered: [(&str, Value); 7] = [
        ("owner", Value::String(bob.address().to_checksum())),
        ("token", other.clone()),
        ("payee", other),
        ("amount", Value::String((1000 + 1).to_string())),
        ("nonce", Value::String("1".into())),
        ("deadline", Value::from_u64(NOW + 601)),
        (
            "ref",
            Value::String(hex_encode_0x(&keccak256(b"aep2-vectors/call/other"))),
        ),
    ];
    for (field, value) in tampered {
        let h = header_of(&with_mandate_field(&env, field, Some(value)));
        f.case(
            g,
            Case::new(
                format!("{field} changed after signing"),
                header_input(&h),
                inv(Reason::SignatureInvalid),
            )
            .flags(&["tampered"])
            .refs(&[ENC]),
        );
    }

    // --- field encodings
    let g = f.group("fields", Kind::VerifyMandate, context(Some(NOW)));
    let s = |x: &str| Some(Value::String(x.to_owned()));
    let n = |x: &str| Some(Value::Number(x.to_owned()));
    let owner_cs = base.owner.to_checksum();
    let flipped = flip_case_of_first_letter(&owner_cs);
    let cases: Vec<(&str, &str, Option<Value>, Reason, &'static str)> = vec![
        (
            "owner with a wrong EIP-55 checksum (one letter's case flipped)",
            "owner",
            s(&flipped),
            Reason::AddressChecksum,
            "address_case",
        ),
        (
            "owner with 39 hex digits",
            "owner",
            s(&owner_cs[..41]),
            Reason::AddressInvalid,
            "address_case",
        ),
        (
            "owner without the 0x prefix",
            "owner",
            s(&owner_cs[2..]),
            Reason::AddressInvalid,
            "address_case",
        ),
        (
            "owner with an upper-case 0X prefix",
            "owner",
            Some(Value::String(format!("0X{}", &owner_cs[2..]))),
            Reason::AddressInvalid,
            "address_case",
        ),
        ("owner as a JSON number", "owner", n("1"), Reason::FieldType, "shape"),
        (
            "amount as a JSON number (ethers would coerce it)",
            "amount",
            n("1000"),
            Reason::FieldType,
            "number_encoding",
        ),
        (
            "amount in hex \"0x3e8\" (ethers would coerce it)",
            "amount",
            s("0x3e8"),
            Reason::UintInvalid,
            "number_encoding",
        ),
        (
            "amount with a leading zero",
            "amount",
            s("01000"),
            Reason::UintInvalid,
            "number_encoding",
        ),
        (
            "amount with a plus sign",
            "amount",
            s("+1000"),
            Reason::UintInvalid,
            "number_encoding",
        ),
        (
            "amount with surrounding space",
            "amount",
            s(" 1000"),
            Reason::UintInvalid,
            "number_encoding",
        ),
        ("amount empty", "amount", s(""), Reason::UintInvalid, "number_encoding"),
        (
            "amount in exponent notation",
            "amount",
            s("1e3"),
            Reason::UintInvalid,
            "number_encoding",
        ),
        (
            "amount 2^256",
            "amount",
            s("115792089237316195423570985008687907853269984665640564039457584007913129639936"),
            Reason::UintOutOfRange,
            "range",
        ),
        (
            "amount with 79 digits",
            "amount",
            s(&"9".repeat(79)),
            Reason::UintOutOfRange,
            "range",
        ),
        ("amount 0", "amount", s("0"), Reason::AmountZero, "range"),
        ("amount null", "amount", Some(Value::Null), Reason::FieldType, "shape"),
        (
            "nonce negative",
            "nonce",
            s("-1"),
            Reason::UintInvalid,
            "number_encoding",
        ),
        (
            "nonce 2^256",
            "nonce",
            s("115792089237316195423570985008687907853269984665640564039457584007913129639936"),
            Reason::UintOutOfRange,
            "range",
        ),
        (
            "deadline as a decimal string",
            "deadline",
            s("1800000600"),
            Reason::FieldType,
            "number_encoding",
        ),
        (
            "deadline with a fraction part (.0)",
            "deadline",
            n("1800000600.0"),
            Reason::UintInvalid,
            "number_encoding",
        ),
        (
            "deadline in exponent notation",
            "deadline",
            n("18000006e2"),
            Reason::UintInvalid,
            "number_encoding",
        ),
        (
            "deadline negative",
            "deadline",
            n("-1"),
            Reason::UintInvalid,
            "number_encoding",
        ),
        (
            "deadline 2^53 (beyond exact JSON integers)",
            "deadline",
            n("9007199254740992"),
            Reason::UintOutOfRange,
            "range",
        ),
        (
            "ref of 31 bytes",
            "ref",
            Some(Value::String(hex_encode_0x(&[0xab; 31]))),
            Reason::RefInvalid,
            "ref_format",
        ),
        (
            "ref of 33 bytes",
            "ref",
            Some(Value::String(hex_encode_0x(&[0xab; 33]))),
            Reason::RefInvalid,
            "ref_format",
        ),
        (
            "ref in upper-case hex",
            "ref",
            Some(Value::String(format!(
                "0x{}",
                hex_encode_0x(&base.reference)[2..].to_uppercase()
            ))),
            Reason::RefInvalid,
            "ref_format",
        ),
        (
            "ref without 0x",
            "ref",
            Some(Value::String(hex_encode_0x(&base.reference)[2..].to_owned())),
            Reason::RefInvalid,
            "ref_format",
        ),
        ("ref as a JSON number", "ref", n("0"), Reason::FieldType, "shape"),
        ("ref missing", "ref", None, Reason::MissingField, "shape"),
    ];
    for (comment, field, value, reason, flag) in cases {
        // Signed over the value a lenient reader would take from the faulty text (if there is
        // one), so the encoding is the only defect and a verdict-only verifier that accepts the
        // encoding is caught, not saved by a signature failure.
        let signed = match value.as_ref().and_then(|v| lenient_field(&base, field, v)) {
            Some(m) => signed_for(&m, &alice, &d).to_json(),
            None => env.clone(),
        };
        let h = header_of(&with_mandate_field(&signed, field, value));
        f.case(g, Case::new(comment, header_input(&h), inv(reason)).flags(&[flag]));
    }
    let extra = with_mandate_field(&env, "memo", Some(Value::String("coffee".into())));
    f.case(
        g,
        Case::new(
            "unknown member \"memo\" in the mandate",
            header_input(&header_of(&extra)),
            inv(Reason::UnknownField),
        )
        .flags(&["shape"]),
    );
    let reordered = reorder_mandate(&env);
    f.case(
        g,
        Case::new(
            "mandate members in reverse order: order does not matter for eip712",
            header_input(&header_of(&reordered)),
            Exp::Valid,
        )
        .flags(&["shape"])
        .refs(&[TYPES]),
    );

    let multibyte = format!("a\u{e9}{}", "a".repeat(63));
    let h = header_of(&with_mandate_field(&env, "ref", Some(Value::String(multibyte))));
    f.case(
        g,
        Case::new(
            "ref of 66 bytes with a multi-byte character at byte 2 (a naive string slice panics)",
            header_input(&h),
            inv(Reason::RefInvalid),
        )
        .flags(&["ref_format"]),
    );

    // --- expiry
    let g = f.group("expiry", Kind::VerifyMandate, context(Some(base.deadline + 1)));
    f.case(
        g,
        Case::new(
            "one second after the deadline",
            header_input(&good.encode()),
            inv(Reason::Expired),
        )
        .flags(&["expiry"]),
    );
    let g = f.group("expiry-boundary", Kind::VerifyMandate, context(Some(base.deadline)));
    f.case(
        g,
        Case::new("exactly at the deadline", header_input(&good.encode()), Exp::Valid)
            .flags(&["expiry"])
            .refs(&[FIELDS]),
    );

    f.finish()
}

/// The mandate a lenient reader (ethers-style coercion) would take from `value` in `field`:
/// numbers from decimal text with signs, spaces or leading zeros, hex, JSON numbers and
/// integral exponent or fraction forms; addresses and `ref` in any case, with or without
/// `0x`. `None` when no such reading exists (wrong length, negative, out of range, wrong type).
fn lenient_field(base: &EvmMandate, field: &str, value: &Value) -> Option<EvmMandate> {
    let text = match value {
        Value::String(t) | Value::Number(t) => t.trim(),
        _ => return None,
    };
    let mut m = base.clone();
    match field {
        "amount" => m.amount = lenient_uint(text)?,
        "nonce" => m.nonce = lenient_uint(text)?,
        "deadline" => m.deadline = lenient_uint(text)?.to_u64()?,
        "owner" | "token" | "payee" => {
            let bytes: [u8; 20] = lenient_hex(text)?.try_into().ok()?;
            let a = EvmAddress(bytes);
            match field {
                "owner" => m.owner = a,
                "token" => m.token = a,
                _ => m.payee = a,
            }
        }
        "ref" => m.reference = lenient_hex(text)?.try_into().ok()?,
        _ => return None,
    }
    Some(m)
}

fn lenient_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if !digits.len().is_multiple_of(2) || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
        .collect()
}

fn lenient_uint(text: &str) -> Option<U256> {
    let text = text.strip_prefix('+').unwrap_or(text);
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        let hex = format!("{hex:0>64}");
        let bytes: [u8; 32] = lenient_hex(&hex)?.try_into().ok()?;
        return Some(U256(bytes));
    }
    if text.contains(['.', 'e', 'E']) {
        let x: f64 = text.parse().ok()?;
        return (x >= 0.0 && x.fract() == 0.0 && x < 9_007_199_254_740_992.0).then(|| U256::from_u64(x as u64));
    }
    let digits = text.trim_start_matches('0');
    U256::parse_decimal(if digits.is_empty() { "0" } else { digits }).ok()
}

fn high_s_twin(sig: &[u8; 65]) -> [u8; 65] {
    let mut out = *sig;
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let v = i16::from(N[i]) - i16::from(sig[32 + i]) - borrow;
        out[32 + i] = (v.rem_euclid(256)) as u8;
        borrow = i16::from(v < 0);
    }
    out[64] = if sig[64] == 27 { 28 } else { 27 };
    out
}

fn add_one(x: &[u8; 32]) -> [u8; 32] {
    let mut out = *x;
    for b in out.iter_mut().rev() {
        let (v, overflow) = b.overflowing_add(1);
        *b = v;
        if !overflow {
            break;
        }
    }
    out
}

fn flip_case_of_first_letter(s: &str) -> String {
    let mut done = false;
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if !done && i >= 2 && c.is_ascii_alphabetic() {
                done = true;
                if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            } else {
                c
            }
        })
        .collect()
}

fn reorder_mandate(env: &Value) -> Value {
    let Value::Object(top) = env else { return env.clone() };
    let mut top = top.clone();
    if let Some(Value::Object(m)) = top.get("mandate") {
        let mut rev = aep2::json::Object::new();
        let members: Vec<(String, Value)> = m.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
        for (k, v) in members.into_iter().rev() {
            rev.insert(k, v);
        }
        top.insert("mandate", Value::Object(rev));
    }
    Value::Object(top)
}
