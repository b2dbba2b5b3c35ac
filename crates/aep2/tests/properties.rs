//! Property tests over generated mandates, domains, keys and JSON.
//!
//! For each profile (`eip712`, `ed25519`, `solana-mvp`) and envelope form:
//! - sign → encode → verify succeeds with the right signer and digest, and the envelope
//!   round-trips (`decode(encode(x)) == x`, `encode` a fixed point);
//! - changing any single signed field while keeping the signature gives `signature_invalid`;
//! - changing a native envelope's claimed domain while keeping the signature gives
//!   `signature_invalid` too (the signature stage runs before policy, and the digest is
//!   computed over the claimed domain), whereas a mandate validly signed for another domain
//!   gives `domain_mismatch`; an MVP envelope checked against another expected domain gives
//!   `signature_invalid`;
//! - flipping any single signature byte is rejected in the signature stage.
//!
//! Plus: JCS output is deterministic and independent of member insertion order, and `U256`
//! decimal parsing and display round-trip and agree with `u128`.

#![allow(clippy::unwrap_used)]

use aep2::crypto::{ed25519, secp256k1};
use aep2::json::{self, Limits, Object, Value};
use aep2::uint::MAX_JSON_INTEGER;
use aep2::{
    Base58Key, Domain, Ed25519Domain, Ed25519Mandate, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, Mandate,
    PayerKey, Profile, SignedMandate, SolanaMvpMandate, Stage, U256, Verifier, mandate_digest, sign_mandate,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const CASES: u32 = 64;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The verdict of the full merchant path on `sm`'s header: `"valid"` or the reason code.
fn verdict(verifier: &Verifier, sm: &SignedMandate, now: Option<u64>) -> &'static str {
    match verifier.verify_header(&sm.encode(), now) {
        Ok(_) => "valid",
        Err(e) => e.code(),
    }
}

fn with_mandate(sm: &SignedMandate, mandate: Mandate) -> SignedMandate {
    SignedMandate { mandate, ..sm.clone() }
}

fn flip_bit<const N: usize>(mut bytes: [u8; N], bit: usize) -> [u8; N] {
    let bit = bit % (N * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
    bytes
}

/// `x` with bit `bit` (mod `width`) flipped, never zero when `nonzero` (then the next bit is
/// flipped instead; `x` itself is non-zero, so one of the two results is).
fn flip_u64(x: u64, bit: u32, width: u32, nonzero: bool) -> u64 {
    let y = x ^ (1u64 << (bit % width));
    if nonzero && y == 0 {
        x ^ (1u64 << ((bit + 1) % width))
    } else {
        y
    }
}

fn flip_u256(x: U256, bit: usize, nonzero: bool) -> U256 {
    let y = U256(flip_bit(x.0, bit));
    if nonzero && y.is_zero() {
        U256(flip_bit(x.0, bit + 1))
    } else {
        y
    }
}

/// Checks the envelope round trip: decode(encode(x)) == x, encode is a fixed point, and the
/// JSON form round-trips too.
fn check_round_trip(sm: &SignedMandate, profile: Profile) -> Result<(), TestCaseError> {
    let header = sm.encode();
    let back = SignedMandate::decode(&header, profile).map_err(|e| TestCaseError::fail(format!("{e}: {header}")))?;
    prop_assert_eq!(&back, sm);
    prop_assert_eq!(back.encode(), header);
    let from_json = SignedMandate::from_json(&sm.to_json(), profile).ok();
    prop_assert_eq!(from_json.as_ref(), Some(sm));
    Ok(())
}

/// Checks sign → verify on the full path: right signer, right digest, inclusive deadline.
fn check_valid(verifier: &Verifier, sm: &SignedMandate, key: &PayerKey, domain: &Domain) -> Result<(), TestCaseError> {
    let deadline = sm.mandate.deadline();
    let v = verifier
        .verify_header(&sm.encode(), Some(deadline))
        .map_err(|e| TestCaseError::fail(format!("freshly signed mandate rejected: {e}")))?;
    prop_assert_eq!(&v.signer(), &key.signer());
    prop_assert_eq!(&v.signer(), &sm.mandate.signer());
    prop_assert_eq!(&v.signed, sm);
    prop_assert_eq!(&v.digest, &mandate_digest(&sm.mandate, domain).unwrap());
    prop_assert_eq!(verdict(verifier, sm, Some(deadline + 1)), "expired");
    prop_assert_eq!(verdict(verifier, sm, None), "valid");
    Ok(())
}

/// Flips one byte of the decoded signature; the result must fail in the signature stage.
fn check_signature_flip(
    verifier: &Verifier,
    sm: &SignedMandate,
    index: usize,
    mask: u8,
    evm: bool,
) -> Result<(), TestCaseError> {
    let signature = if evm {
        let mut s = secp256k1::parse_signature(&sm.signature).unwrap();
        let i = index % s.len();
        s[i] ^= mask;
        aep2::codec::hex_encode_0x(&s)
    } else {
        let mut s = aep2::verify::parse_ed25519_signature(&sm.signature).unwrap();
        let i = index % s.len();
        s[i] ^= mask;
        aep2::codec::base58_encode(&s)
    };
    let tampered = SignedMandate {
        signature,
        ..sm.clone()
    };
    match verifier.verify_header(&tampered.encode(), None) {
        Ok(_) => Err(TestCaseError::fail(format!(
            "signature with byte {index} ^ {mask:#04x} still verifies"
        ))),
        Err(e) => {
            prop_assert_eq!(
                e.stage(),
                Stage::Signature,
                "flipped signature byte rejected as {}",
                e.code()
            );
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

fn secp_key() -> impl Strategy<Value = secp256k1::SecretKey> {
    any::<[u8; 32]>().prop_filter_map("not a valid scalar", |b| secp256k1::SecretKey::from_bytes(&b))
}

fn deadline() -> impl Strategy<Value = u64> {
    prop_oneof![1_700_000_000u64..2_000_000_000, 0..=MAX_JSON_INTEGER - 1]
}

fn u256_amount() -> impl Strategy<Value = U256> {
    prop_oneof![
        (1..=u64::MAX).prop_map(U256::from_u64),
        any::<[u8; 32]>().prop_filter_map("zero", |b| { if b == [0; 32] { None } else { Some(U256(b)) } }),
    ]
}

fn eip712_domain() -> impl Strategy<Value = Eip712Domain> {
    (
        prop_oneof![Just(84532u64), Just(1u64), 1..=MAX_JSON_INTEGER],
        any::<[u8; 20]>(),
    )
        .prop_map(|(chain_id, c)| Eip712Domain {
            chain_id,
            verifying_contract: EvmAddress(c),
        })
}

fn ed25519_domain() -> impl Strategy<Value = Ed25519Domain> {
    ("[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}", any::<[u8; 32]>()).prop_map(|(network, w)| Ed25519Domain {
        network,
        wallet: Base58Key(w),
    })
}

/// solana-mvp refs: 1..=32 UTF-8 bytes, rich in characters JSON must escape and non-ASCII.
fn solana_ref() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        3 => prop::char::range('a', 'z'),
        2 => prop::sample::select(vec!['"', '\\', '/', '\u{7f}', '\u{2028}', 'é', '€', '😀', ' ']),
        2 => prop::char::range('\u{0}', '\u{1f}'),
        1 => any::<char>(),
    ];
    prop::collection::vec(ch, 1..=32).prop_map(|chars| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > 32 {
                break;
            }
            s.push(c);
        }
        s
    })
}

/// Which field to change, which bit, and which signature byte to flip with which mask.
#[derive(Clone, Debug)]
struct Tamper {
    bits: [usize; 7],
    domain_bits: [usize; 2],
    sig_index: usize,
    sig_mask: u8,
}

fn tamper() -> impl Strategy<Value = Tamper> {
    (any::<[usize; 7]>(), any::<[usize; 2]>(), 0usize..65, 1u8..=255).prop_map(
        |(bits, domain_bits, sig_index, sig_mask)| Tamper {
            bits,
            domain_bits,
            sig_index,
            sig_mask,
        },
    )
}

fn form() -> impl Strategy<Value = EnvelopeForm> {
    prop_oneof![Just(EnvelopeForm::Mvp), Just(EnvelopeForm::Native)]
}

// ---------------------------------------------------------------------------------------
// eip712
// ---------------------------------------------------------------------------------------

prop_compose! {
    fn evm_mandate()(key in secp_key(), token in any::<[u8; 20]>(), payee in any::<[u8; 20]>(), amount in u256_amount(),
                     nonce in prop_oneof![Just(U256::ZERO), u256_amount()], deadline in deadline(),
                     reference in any::<[u8; 32]>()) -> (secp256k1::SecretKey, EvmMandate) {
        let owner = key.address();
        (key, EvmMandate { owner, token: EvmAddress(token), payee: EvmAddress(payee), amount, nonce, deadline, reference })
    }
}

fn evm_tamper(m: &EvmMandate, field: usize, bit: usize) -> EvmMandate {
    let mut t = m.clone();
    match field {
        0 => t.owner = EvmAddress(flip_bit(m.owner.0, bit)),
        1 => t.token = EvmAddress(flip_bit(m.token.0, bit)),
        2 => t.payee = EvmAddress(flip_bit(m.payee.0, bit)),
        3 => t.amount = flip_u256(m.amount, bit, true),
        4 => t.nonce = flip_u256(m.nonce, bit, false),
        5 => t.deadline = flip_u64(m.deadline, bit as u32, 53, false),
        _ => t.reference = flip_bit(m.reference, bit),
    }
    t
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn eip712_sign_verify_tamper((key, m) in evm_mandate(), d in eip712_domain(), form in form(), tm in tamper()) {
        let domain = Domain::Eip712(d);
        let verifier = Verifier::new(domain.clone());
        let payer = PayerKey::Secp256k1(key);
        let mandate = Mandate::Eip712(m.clone());
        let (sm, digest) = sign_mandate(&mandate, &domain, &payer, form).unwrap();
        prop_assert_eq!(sm.form, form);

        check_round_trip(&sm, Profile::Eip712)?;
        check_valid(&verifier, &sm, &payer, &domain)?;
        let report = verifier.check_header(&sm.encode(), None);
        prop_assert_eq!(report.recovered, Some(m.owner));
        prop_assert_eq!(report.digest.map(|x| x.id), Some(digest.id));

        for (field, &bit) in tm.bits.iter().enumerate() {
            let t = with_mandate(&sm, Mandate::Eip712(evm_tamper(&m, field, bit)));
            prop_assert_ne!(&t.mandate, &sm.mandate);
            prop_assert_eq!(verdict(&verifier, &t, None), "signature_invalid", "field {} changed", field);
        }

        let other = Eip712Domain {
            chain_id: flip_u64(d.chain_id, tm.domain_bits[0] as u32, 53, true),
            verifying_contract: EvmAddress(flip_bit(d.verifying_contract.0, tm.domain_bits[1])),
        };
        let changed = [
            Eip712Domain { chain_id: other.chain_id, ..d },
            Eip712Domain { verifying_contract: other.verifying_contract, ..d },
        ];
        for c in changed {
            let c = Domain::Eip712(c);
            match form {
                EnvelopeForm::Native => {
                    // The claimed domain changes, the signature is kept: the digest is computed
                    // over the claimed domain, so the signature stage fails first.
                    let t = SignedMandate { domain: Some(c.clone()), ..sm.clone() };
                    prop_assert_eq!(verdict(&verifier, &t, None), "signature_invalid");
                    // Validly signed for the other domain: the policy stage rejects it.
                    let (resigned, _) = sign_mandate(&mandate, &c, &payer, form).unwrap();
                    prop_assert_eq!(verdict(&verifier, &resigned, None), "domain_mismatch");
                    prop_assert_eq!(verdict(&Verifier::new(c.clone()), &resigned, None), "valid");
                }
                EnvelopeForm::Mvp => {
                    // The domain is the verifier's: another deployment computes another digest.
                    prop_assert_eq!(verdict(&Verifier::new(c), &sm, None), "signature_invalid");
                }
            }
        }

        check_signature_flip(&verifier, &sm, tm.sig_index, tm.sig_mask, true)?;
    }
}

// ---------------------------------------------------------------------------------------
// ed25519 (native profile, both envelope forms)
// ---------------------------------------------------------------------------------------

prop_compose! {
    fn ed_mandate()(seed in any::<[u8; 32]>(), token in any::<[u8; 32]>(), payee in any::<[u8; 32]>(),
                    amount in prop_oneof![1..=1_000_000u64, 1..=u64::MAX], nonce in any::<u64>(),
                    deadline in deadline(), reference in any::<[u8; 32]>()) -> ([u8; 32], Ed25519Mandate) {
        let payer = Base58Key(ed25519::public_key_from_seed(&seed));
        (seed, Ed25519Mandate { payer, token: Base58Key(token), payee: Base58Key(payee), amount, nonce, deadline, reference })
    }
}

/// Another honest key (so the key rules pass and only the equation can fail).
fn other_payer(seed: &[u8; 32], bit: usize) -> Base58Key {
    Base58Key(ed25519::public_key_from_seed(&flip_bit(*seed, bit)))
}

fn ed_tamper(seed: &[u8; 32], m: &Ed25519Mandate, field: usize, bit: usize) -> Ed25519Mandate {
    let mut t = m.clone();
    match field {
        0 => t.payer = other_payer(seed, bit),
        1 => t.token = Base58Key(flip_bit(m.token.0, bit)),
        2 => t.payee = Base58Key(flip_bit(m.payee.0, bit)),
        3 => t.amount = flip_u64(m.amount, bit as u32, 64, true),
        4 => t.nonce = flip_u64(m.nonce, bit as u32, 64, false),
        5 => t.deadline = flip_u64(m.deadline, bit as u32, 53, false),
        _ => t.reference = flip_bit(m.reference, bit),
    }
    t
}

/// A different valid CAIP-2 network id.
fn other_network(network: &str) -> String {
    let mut s = network.to_owned();
    let last = s.pop().unwrap();
    s.push(if last == 'a' { 'b' } else { 'a' });
    s
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ed25519_sign_verify_tamper((seed, m) in ed_mandate(), d in ed25519_domain(), form in form(), tm in tamper()) {
        let domain = Domain::Ed25519(d.clone());
        let verifier = Verifier::new(domain.clone());
        let payer = PayerKey::Ed25519(seed);
        let mandate = Mandate::Ed25519(m.clone());
        let (sm, digest) = sign_mandate(&mandate, &domain, &payer, form).unwrap();

        check_round_trip(&sm, Profile::Ed25519)?;
        check_valid(&verifier, &sm, &payer, &domain)?;
        prop_assert_eq!(verifier.check_header(&sm.encode(), None).digest, Some(digest));

        for (field, &bit) in tm.bits.iter().enumerate() {
            let t = with_mandate(&sm, Mandate::Ed25519(ed_tamper(&seed, &m, field, bit)));
            prop_assert_ne!(&t.mandate, &sm.mandate);
            prop_assert_eq!(verdict(&verifier, &t, None), "signature_invalid", "field {} changed", field);
        }

        let changed = [
            Ed25519Domain { network: other_network(&d.network), ..d.clone() },
            Ed25519Domain { wallet: Base58Key(flip_bit(d.wallet.0, tm.domain_bits[1])), ..d.clone() },
        ];
        for c in changed {
            let c = Domain::Ed25519(c);
            prop_assert_ne!(&c, &domain);
            match form {
                EnvelopeForm::Native => {
                    let t = SignedMandate { domain: Some(c.clone()), ..sm.clone() };
                    prop_assert_eq!(verdict(&verifier, &t, None), "signature_invalid");
                    let (resigned, _) = sign_mandate(&mandate, &c, &payer, form).unwrap();
                    prop_assert_eq!(verdict(&verifier, &resigned, None), "domain_mismatch");
                    prop_assert_eq!(verdict(&Verifier::new(c.clone()), &resigned, None), "valid");
                }
                EnvelopeForm::Mvp => {
                    prop_assert_eq!(verdict(&Verifier::new(c), &sm, None), "signature_invalid");
                }
            }
        }

        check_signature_flip(&verifier, &sm, tm.sig_index, tm.sig_mask, false)?;
    }
}

// ---------------------------------------------------------------------------------------
// solana-mvp (MVP envelope only; no domain)
// ---------------------------------------------------------------------------------------

prop_compose! {
    fn sol_mandate()(seed in any::<[u8; 32]>(), token in any::<[u8; 32]>(), payee in any::<[u8; 32]>(),
                     amount in prop_oneof![1..=1_000_000u64, 1..=u64::MAX], nonce in any::<u64>(),
                     deadline in deadline(), reference in solana_ref()) -> ([u8; 32], SolanaMvpMandate) {
        let payer = Base58Key(ed25519::public_key_from_seed(&seed));
        (seed, SolanaMvpMandate { payer, token: Base58Key(token), payee: Base58Key(payee), amount, nonce, deadline, reference })
    }
}

fn sol_tamper(seed: &[u8; 32], m: &SolanaMvpMandate, field: usize, bit: usize) -> SolanaMvpMandate {
    let mut t = m.clone();
    match field {
        0 => t.payer = other_payer(seed, bit),
        1 => t.token = Base58Key(flip_bit(m.token.0, bit)),
        2 => t.payee = Base58Key(flip_bit(m.payee.0, bit)),
        3 => t.amount = flip_u64(m.amount, bit as u32, 64, true),
        4 => t.nonce = flip_u64(m.nonce, bit as u32, 64, false),
        5 => t.deadline = flip_u64(m.deadline, bit as u32, 53, false),
        _ => {
            // Still 1..=32 bytes: extend a short ref, shorten a full one.
            if t.reference.len() < 32 {
                t.reference.push(if bit.is_multiple_of(2) { 'x' } else { '"' });
            } else {
                t.reference.pop();
            }
        }
    }
    t
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn solana_mvp_sign_verify_tamper((seed, m) in sol_mandate(), tm in tamper()) {
        let domain = Domain::SolanaMvp;
        let verifier = Verifier::new(domain.clone());
        let payer = PayerKey::Ed25519(seed);
        let mandate = Mandate::SolanaMvp(m.clone());
        prop_assert!(sign_mandate(&mandate, &domain, &payer, EnvelopeForm::Native).is_err());
        let (sm, digest) = sign_mandate(&mandate, &domain, &payer, EnvelopeForm::Mvp).unwrap();

        check_round_trip(&sm, Profile::SolanaMvp)?;
        check_valid(&verifier, &sm, &payer, &domain)?;
        // The signed bytes are the MVP's compact JSON text in the fixed key order.
        let text = json::to_compact(&Value::Object(mandate.to_json()));
        prop_assert_eq!(digest.signed_bytes(), text.clone().into_bytes());
        prop_assert_eq!(json::parse(&text, &Limits::AEP2).ok(), Some(Value::Object(mandate.to_json())));

        for (field, &bit) in tm.bits.iter().enumerate() {
            let t = with_mandate(&sm, Mandate::SolanaMvp(sol_tamper(&seed, &m, field, bit)));
            prop_assert_ne!(&t.mandate, &sm.mandate);
            prop_assert_eq!(verdict(&verifier, &t, None), "signature_invalid", "field {} changed", field);
        }

        check_signature_flip(&verifier, &sm, tm.sig_index, tm.sig_mask, false)?;
    }
}

// ---------------------------------------------------------------------------------------
// JCS
// ---------------------------------------------------------------------------------------

/// A JSON tree whose objects list their members in generation order.
#[derive(Clone, Debug)]
enum Tree {
    Leaf(Value),
    Arr(Vec<Tree>),
    Obj(Vec<(String, Tree)>),
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,6}",
        prop::collection::vec(
            prop_oneof![
                any::<char>(),
                prop::sample::select(vec!['\u{e9}', '\u{20ac}', '\u{fb33}', '\u{1f600}', '\r', '"'])
            ],
            0..6
        )
        .prop_map(|v| v.into_iter().collect::<String>()),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0..=MAX_JSON_INTEGER).prop_map(Value::from_u64),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    leaf().prop_map(Tree::Leaf).prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Tree::Arr),
            prop::collection::vec((json_key(), inner), 0..6).prop_map(|members| {
                let mut seen = std::collections::HashSet::new();
                Tree::Obj(members.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect())
            }),
        ]
    })
}

/// Builds the value, inserting each object's members in generation order or in a
/// deterministic permutation derived from `shuffle` (0 keeps the order).
fn build(t: &Tree, shuffle: &mut u64) -> Value {
    match t {
        Tree::Leaf(v) => v.clone(),
        Tree::Arr(items) => Value::Array(items.iter().map(|i| build(i, shuffle)).collect()),
        Tree::Obj(members) => {
            let mut order: Vec<usize> = (0..members.len()).collect();
            if *shuffle != 0 {
                for i in (1..order.len()).rev() {
                    *shuffle ^= *shuffle << 13;
                    *shuffle ^= *shuffle >> 7;
                    *shuffle ^= *shuffle << 17;
                    order.swap(i, (*shuffle % (i as u64 + 1)) as usize);
                }
            }
            let mut obj = Object::new();
            for i in order {
                obj.insert(members[i].0.clone(), build(&members[i].1, shuffle));
            }
            Value::Object(obj)
        }
    }
}

/// Every object's members in `v` are in strictly increasing UTF-16 code-unit order.
fn sorted_by_utf16(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().all(sorted_by_utf16),
        Value::Object(obj) => {
            let keys: Vec<Vec<u16>> = obj.iter().map(|(k, _)| k.encode_utf16().collect()).collect();
            keys.windows(2).all(|w| w[0] < w[1]) && obj.iter().all(|(_, v)| sorted_by_utf16(v))
        }
        _ => true,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn jcs_is_deterministic_and_order_independent(t in tree(), shuffle in 1..u64::MAX) {
        let original = build(&t, &mut 0);
        let permuted = build(&t, &mut shuffle.clone());
        let canonical = json::to_canonical(&original);
        prop_assert_eq!(json::to_canonical(&original), canonical.clone());
        prop_assert_eq!(json::to_canonical(&permuted), canonical.clone());

        let parsed = json::parse(&canonical, &Limits::AEP2).map_err(|e| TestCaseError::fail(format!("{e}: {canonical}")))?;
        prop_assert!(sorted_by_utf16(&parsed), "members not in UTF-16 order: {}", canonical);
        prop_assert_eq!(json::to_canonical(&parsed), canonical.clone());
        // Compact output keeps insertion order and re-parses to the same value.
        prop_assert_eq!(json::parse(&json::to_compact(&permuted), &Limits::AEP2).ok(), Some(permuted));
        // Interoperability: serde_json (member order preserved, ECMAScript-style escaping)
        // reads the canonical text and writes it back byte for byte.
        let other: serde_json::Value = serde_json::from_str(&canonical).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(serde_json::to_string(&other).unwrap(), canonical);
    }
}

// ---------------------------------------------------------------------------------------
// U256
// ---------------------------------------------------------------------------------------

fn u256_of(x: u128) -> U256 {
    let mut b = [0u8; 32];
    b[16..].copy_from_slice(&x.to_be_bytes());
    U256(b)
}

const U256_MAX: &str = "115792089237316195423570985008687907853269984665640564039457584007913129639935";

proptest! {
    #![proptest_config(config())]

    #[test]
    fn u256_decimal_round_trip(bytes in any::<[u8; 32]>()) {
        let x = U256(bytes);
        let text = x.to_string();
        prop_assert_eq!(U256::parse_decimal(&text).ok(), Some(x));
        prop_assert!(text == "0" || !text.starts_with('0'));
        prop_assert!(text.len() <= 78);
        prop_assert_eq!(U256::parse_decimal(&format!("0{text}")).unwrap_err().code(), "uint_invalid");
        prop_assert_eq!(U256::parse_decimal(&format!("+{text}")).unwrap_err().code(), "uint_invalid");
    }

    #[test]
    fn u256_agrees_with_u128(a in any::<u128>(), b in any::<u128>(), small in any::<u64>()) {
        let (ua, ub) = (u256_of(a), u256_of(b));
        prop_assert_eq!(ua.to_string(), a.to_string());
        prop_assert_eq!(U256::parse_decimal(&a.to_string()).ok(), Some(ua));
        prop_assert_eq!(ua.cmp(&ub), a.cmp(&b));
        prop_assert_eq!(ua.to_u64(), u64::try_from(a).ok());
        prop_assert_eq!(U256::from_u64(small), u256_of(u128::from(small)));
        // Decimal text of u128 arithmetic results parses to the same value.
        let (lo, hi) = (a >> 1, b >> 1);
        prop_assert_eq!(U256::parse_decimal(&(lo + hi).to_string()).ok(), Some(u256_of(lo + hi)));
        let (m1, m2) = (a >> 64, b >> 64);
        prop_assert_eq!(U256::parse_decimal(&(m1 * m2).to_string()).ok(), Some(u256_of(m1 * m2)));
        prop_assert_eq!(U256::parse_decimal(&(a / 10).to_string()).unwrap().to_string(), (a / 10).to_string());
    }

    #[test]
    fn u256_range_boundary(digits in "[1-9][0-9]{77}") {
        // A 78-digit decimal parses exactly when it is at most 2^256 - 1.
        let parsed = U256::parse_decimal(&digits);
        if digits.as_str() <= U256_MAX {
            prop_assert_eq!(parsed.unwrap().to_string(), digits.clone());
        } else {
            prop_assert_eq!(parsed.unwrap_err().code(), "uint_out_of_range");
        }
        prop_assert_eq!(U256::parse_decimal(&format!("{digits}0")).unwrap_err().code(), "uint_out_of_range");
    }
}
