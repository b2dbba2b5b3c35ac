//! `order.json`: Order Mode (spec `aep2.md#order-mode`): the payee's payment request (quote),
//! its hash, and acceptance of a mandate against it: the quote's schema, its fit with the
//! verifier, the mandate's expiry, the quote's expiry (`quote_expired`, inclusive, with clock
//! skew), payee, asset, exact amount, the quote's settlement window, the horizon, and the
//! binding of `ref` to the quote (the quote hash; for `solana-mvp` the request id).
//!
//! Every expectation below is written from the rules of `aep2.md#order-mode`; the quote hashes
//! in the intermediates come from the reference implementation.

use super::edkit::{MINT, NETWORK, ed_context, ed_domain, ed_mandate, pubkey, sign_with, sol_context, sol_mandate};
use super::eip712::{CHAIN_ID, NOW, USDC, WALLET, addr, context, domain, mandate, payee, signed_for};
use super::{Case, Exp, FileBuilder, secp_key};
use crate::model::{Context, Kind, VectorFile};
use aep2::crypto::secp256k1::SecretKey;
use aep2::hash::{keccak256, sha256};
use aep2::json::{Object, Value, to_canonical, to_compact};
use aep2::order::PAYMENT_REQUEST_TAG;
use aep2::{
    AccountId, Base58Key, Domain, Ed25519Domain, Ed25519Mandate, EnvelopeForm, EvmMandate, Mandate, PayerKey,
    PaymentRequest, Reason, SolanaMvpMandate, SpId, U256, sign_mandate,
};
use serde_json::{Value as J, json};

/// A change applied to a mandate before signing.
type EvmChange = Box<dyn Fn(&mut EvmMandate)>;
type EdChange = Box<dyn Fn(&mut Ed25519Mandate)>;
type SolChange = Box<dyn Fn(&mut SolanaMvpMandate)>;
/// Member edits of a quote: set (`Some`) or remove (`None`).
type Edits<'a> = Vec<(&'a str, Option<J>)>;

const ORDER: &str = "aep2.md#order-mode";
const FIELDS: &str = "aep2.md#payment-request-fields";
const HASH: &str = "aep2.md#payment-request-hash";
const BINDING: &str = "aep2.md#payment-request-binding";
const ACCEPT: &str = "aep2.md#payment-request-acceptance";
const DEADLINE: &str = "aep2.md#policy-deadline";

/// The quotes' settlement window, the payee's horizon and the skew of the skew groups.
const WINDOW: u64 = 300;
const HORIZON: u64 = 3600;
const SKEW: u64 = 30;
/// The payer of every mandate in this file.
const PAYER: &str = "order-payer";
/// The settlement processors the quotes name (the SP keys of the receipts topic).
const SP_EVM: &str = "0x405B10be927D3BF157196C995d8131c6A097673c";
const SP_SOL: &str = "FLpgzKZV1czUTLQHRSnYmXhW2sQv5evXgmyTURGgVKUW";

fn evm_quote() -> PaymentRequest {
    PaymentRequest {
        domain: Domain::Eip712(domain(CHAIN_ID, WALLET)),
        request_id: "order-0001".into(),
        payee: AccountId::Evm(payee("merchant-a")),
        asset: AccountId::Evm(addr(USDC)),
        amount: U256::from_u64(1000),
        expiry: NOW + 300,
        description: "Market report: EU solar, Q3".into(),
        settlement_processor: SpId::Evm(addr(SP_EVM)),
        settlement_window: WINDOW,
    }
}

fn ed_quote() -> PaymentRequest {
    PaymentRequest {
        domain: Domain::Ed25519(ed_domain()),
        request_id: "order-0002".into(),
        payee: AccountId::Base58(pubkey("merchant-a")),
        asset: AccountId::Base58(Base58Key::parse(MINT).unwrap_or_default()),
        amount: U256::from_u64(750),
        expiry: NOW + 300,
        description: "GPU time: 5 min × A100".into(),
        settlement_processor: SpId::Ed25519(Base58Key::parse(SP_SOL).unwrap_or_default()),
        settlement_window: WINDOW,
    }
}

fn sol_quote() -> PaymentRequest {
    PaymentRequest {
        domain: Domain::SolanaMvp,
        request_id: "order-0003".into(),
        ..ed_quote()
    }
}

fn changed(q: &PaymentRequest, f: impl FnOnce(&mut PaymentRequest)) -> PaymentRequest {
    let mut q = q.clone();
    f(&mut q);
    q
}

/// A quote's wire JSON as the vectors carry it.
fn quote_json(q: &PaymentRequest) -> J {
    object_json(&q.to_json())
}

fn object_json(o: &Object) -> J {
    serde_json::from_str(&to_compact(&Value::Object(o.clone()))).unwrap_or_default()
}

/// The quote's wire JSON with member `name` set (or removed when `None`).
fn edited(q: &PaymentRequest, edits: &[(&str, Option<J>)]) -> J {
    let mut v = quote_json(q);
    if let J::Object(o) = &mut v {
        for (name, value) in edits {
            match value {
                Some(x) => {
                    o.insert((*name).to_owned(), x.clone());
                }
                None => {
                    o.shift_remove(*name);
                }
            }
        }
    }
    v
}

fn input(quote: J, header: &str) -> J {
    json!({ "quote": quote, "header": header })
}

fn order_context(base: Context, skew: u64) -> Context {
    Context {
        clock_skew: Some(skew),
        max_horizon: Some(HORIZON),
        ..base
    }
}

/// eip712 mandates for a quote: the quoted terms, ref = the quote hash, deadline now + 600.
struct Evm {
    key: SecretKey,
}

impl Evm {
    fn base(&self, q: &PaymentRequest) -> EvmMandate {
        let mut m = mandate(&self.key, 0);
        if let (AccountId::Evm(p), AccountId::Evm(t)) = (q.payee, q.asset) {
            (m.payee, m.token) = (p, t);
        }
        m.amount = q.amount;
        m.deadline = NOW + 600;
        m.reference = q.hash();
        m
    }

    fn header(&self, q: &PaymentRequest, f: impl FnOnce(&mut EvmMandate)) -> String {
        let mut m = self.base(q);
        f(&mut m);
        signed_for(&m, &self.key, &domain(CHAIN_ID, WALLET)).encode()
    }

    fn native(&self, q: &PaymentRequest) -> String {
        let d = Domain::Eip712(domain(CHAIN_ID, WALLET));
        sign_mandate(
            &Mandate::Eip712(self.base(q)),
            &d,
            &PayerKey::Secp256k1(self.key.clone()),
            EnvelopeForm::Native,
        )
        .map(|(sm, _)| sm.encode())
        .unwrap_or_default()
    }
}

fn ed_header(q: &PaymentRequest, form: EnvelopeForm, f: impl FnOnce(&mut Ed25519Mandate)) -> String {
    let mut m = ed_mandate(PAYER, 0, NOW + 600);
    m.amount = q.amount.to_u64().unwrap_or_default();
    m.reference = q.hash();
    f(&mut m);
    sign_with(&Mandate::Ed25519(m), &Domain::Ed25519(ed_domain()), PAYER, form).encode()
}

fn sol_header(q: &PaymentRequest, f: impl FnOnce(&mut SolanaMvpMandate)) -> String {
    let mut m = sol_mandate(PAYER, 0, NOW + 600);
    m.amount = q.amount.to_u64().unwrap_or_default();
    m.reference = q.request_id.clone();
    f(&mut m);
    sign_with(&Mandate::SolanaMvp(m), &Domain::SolanaMvp, PAYER, EnvelopeForm::Mvp).encode()
}

pub(crate) fn generate() -> VectorFile {
    let mut f = FileBuilder::new(
        "order",
        &[
            "Order Mode (aep2.md#order-mode): the payee's payment request (quote) and the acceptance of a mandate against it.",
            "verify_order cases give input.quote (the quote object as the payee issued it) and input.header (the mandate). The quote is parsed first (aep2.md#payment-request-fields); a malformed quote, or one for another profile or domain than the group's verifier, is rejected before the header is read.",
            "Then the header is verified under the group's profile, domain and now, and judged under the policy the quote implies: expired (now > deadline + clockSkew), quote_expired (now > expiry + clockSkew), payee, asset, amount (exactly the quoted amount), deadline_too_soon (deadline + clockSkew < now + settlementWindow of the quote), deadline_too_far (deadline > now + maxHorizon of the context), and the binding: ref = the quote hash SHA-256(\"AEP2/payment-request/v1\" || 0x00 || JCS(quote)) for eip712 and ed25519, ref = the quote's requestId for solana-mvp.",
            "Core verification runs at now - clockSkew. Unless a case says otherwise the quote expires at now + 300 with a settlement window of 300 s, and the mandate pays exactly the quoted terms with deadline now + 600. Replay has no vectors: judge every case as if on an empty store.",
        ],
    );
    f.note("valid", "BASIC", "A mandate that meets the quote.", &[ORDER, ACCEPT]);
    f.note(
        "canonical_form",
        "DEFINED",
        "The quote hash is over the canonical form of the parsed quote: member order, whitespace and address letter case of the quote text do not change it.",
        &[HASH],
    );
    f.note(
        "payee_asset",
        "MODIFIED_PARAMETER",
        "The mandate pays another account, or in another token, than the quote.",
        &[ACCEPT],
    );
    f.note(
        "amount",
        "MODIFIED_PARAMETER",
        "The mandate's amount is one below or one above the quoted amount; the quoted amount is an exact price.",
        &[ACCEPT],
    );
    f.note(
        "quote_hash",
        "MODIFIED_PARAMETER",
        "ref is not the hash of this quote: another value, the hash of another quote, or a hash computed without the tag or over non-canonical text.",
        &[HASH, BINDING],
    );
    f.note(
        "solana_request_id",
        "DEFINED",
        "solana-mvp binds ref to the quote's requestId, compared as exact text.",
        &[BINDING],
    );
    f.note(
        "quote_expiry",
        "EDGE_CASE",
        "The quote's expiry is inclusive: accepted while now <= expiry + clockSkew.",
        &[ACCEPT],
    );
    f.note(
        "settlement_window",
        "EDGE_CASE",
        "The mandate's deadline against the quote's settlement window (and the context's maximum horizon).",
        &[ACCEPT, DEADLINE],
    );
    f.note(
        "check_order",
        "DEFINED",
        "Several checks fail; the first in the order of aep2.md#payment-request-acceptance decides the code.",
        &[ACCEPT],
    );
    f.note(
        "malformed_quote",
        "MODIFIED_PARAMETER",
        "The quote breaks a rule of aep2.md#payment-request-fields; it is rejected before the mandate is read.",
        &[FIELDS],
    );
    f.note(
        "field_limit",
        "EDGE_CASE",
        "A requestId or description at its length limit (valid) or one byte over it.",
        &[FIELDS],
    );
    f.note(
        "verifier_mismatch",
        "DEFINED",
        "The quote is for another profile or another domain than the verifier: profile_mismatch or domain_mismatch, before the mandate is read.",
        &[ACCEPT],
    );

    let inv = Exp::Invalid;
    let evm = Evm { key: secp_key(PAYER) };
    let q = evm_quote();
    let base_input = |quote: &PaymentRequest| input(quote_json(quote), &evm.header(quote, |_| {}));

    // --- eip712: the quote's terms one by one
    let g = f.group("eip712", Kind::VerifyOrder, order_context(context(Some(NOW)), 0));
    f.case(
        g,
        Case::new(
            "pays the quote exactly, ref = the quote hash, MVP envelope",
            base_input(&q),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[ACCEPT, BINDING]),
    );
    f.case(
        g,
        Case::new(
            "the same mandate in a native envelope",
            input(quote_json(&q), &evm.native(&q)),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[ACCEPT]),
    );
    let mut reordered = serde_json::Map::new();
    if let J::Object(o) = quote_json(&q) {
        for (k, v) in o.into_iter().rev() {
            let v = match (k.as_str(), v) {
                ("payee", J::String(s)) => J::String(s.to_lowercase()),
                (_, v) => v,
            };
            reordered.insert(k, v);
        }
    }
    f.case(
        g,
        Case::new(
            "the quote's members in reverse order and its payee in lowercase hex: the same quote, the same hash",
            input(J::Object(reordered), &evm.header(&q, |_| {})),
            Exp::Valid,
        )
        .flags(&["valid", "canonical_form"])
        .refs(&[HASH]),
    );
    let other_payee = payee("someone-else");
    let other_token = addr("0x2222222222222222222222222222222222222222");
    let term_cases: [(&str, Exp, &[&'static str], EvmChange); 5] = [
        (
            "pays another account",
            inv(Reason::PayeeMismatch),
            &["payee_asset"],
            Box::new(move |m| m.payee = other_payee),
        ),
        (
            "pays in another token",
            inv(Reason::AssetMismatch),
            &["payee_asset"],
            Box::new(move |m| m.token = other_token),
        ),
        (
            "amount 999, one below the quoted 1000",
            inv(Reason::AmountInsufficient),
            &["amount"],
            Box::new(|m| m.amount = U256::from_u64(999)),
        ),
        (
            "amount 1001, one above the quoted 1000: the quote is an exact price",
            inv(Reason::AmountNotExact),
            &["amount"],
            Box::new(|m| m.amount = U256::from_u64(1001)),
        ),
        (
            "another account and an amount below: the payee is checked first",
            inv(Reason::PayeeMismatch),
            &["payee_asset", "check_order"],
            Box::new(move |m| {
                m.payee = other_payee;
                m.amount = U256::from_u64(1);
            }),
        ),
    ];
    for (what, exp, flags, change) in term_cases {
        f.case(
            g,
            Case::new(what, input(quote_json(&q), &evm.header(&q, change)), exp)
                .flags(flags)
                .refs(&[ACCEPT]),
        );
    }
    let jcs = to_canonical(&Value::Object(q.to_json()));
    let compact = to_compact(&Value::Object(q.to_json()));
    let hash_cases: [(&str, [u8; 32]); 5] = [
        (
            "ref is a business reference, not the quote hash",
            keccak256(b"aep2-vectors/call/0"),
        ),
        (
            "ref is the hash of the same quote for 2000 units (another quote)",
            changed(&q, |x| x.amount = U256::from_u64(2000)).hash(),
        ),
        (
            "ref is the hash of a quote with the same terms and requestId order-0004 (another order)",
            changed(&q, |x| x.request_id = "order-0004".into()).hash(),
        ),
        (
            "ref is SHA-256 of the quote's JCS without the tag",
            sha256(jcs.as_bytes()),
        ),
        (
            "ref is SHA-256 of the tag and the quote's compact text in definition order (not JCS)",
            sha256(&[PAYMENT_REQUEST_TAG, compact.as_bytes()].concat()),
        ),
    ];
    for (what, reference) in hash_cases {
        f.case(
            g,
            Case::new(
                what,
                input(quote_json(&q), &evm.header(&q, |m| m.reference = reference)),
                inv(Reason::RequestMismatch),
            )
            .flags(&["quote_hash"])
            .refs(&[HASH, BINDING]),
        );
    }
    let deadline_cases: [(u64, &str, Exp); 4] = [
        (
            NOW + WINDOW,
            "deadline = now + settlementWindow (300) of the quote: exactly enough",
            Exp::Valid,
        ),
        (
            NOW + WINDOW - 1,
            "deadline = now + 299: one second short of the quote's settlement window",
            inv(Reason::DeadlineTooSoon),
        ),
        (
            NOW + HORIZON,
            "deadline = now + maxHorizon (3600): the furthest accepted",
            Exp::Valid,
        ),
        (
            NOW + HORIZON + 1,
            "deadline = now + 3601: beyond the payee's maximum horizon",
            inv(Reason::DeadlineTooFar),
        ),
    ];
    for (deadline, what, exp) in deadline_cases {
        let flags: &[&'static str] = if matches!(exp, Exp::Valid) {
            &["valid", "settlement_window"]
        } else {
            &["settlement_window"]
        };
        f.case(
            g,
            Case::new(
                what,
                input(quote_json(&q), &evm.header(&q, |m| m.deadline = deadline)),
                exp,
            )
            .flags(flags)
            .refs(&[ACCEPT, DEADLINE]),
        );
    }

    // uint256 amounts: an eip712 quote may ask for more than a u64 holds.
    let big = changed(&q, |q| {
        q.amount = U256::parse_decimal("18446744073709551616000").unwrap_or(U256::ZERO);
    });
    f.case(
        g,
        Case::new(
            "a quote for 2^64 × 1000 units (eip712 amounts are uint256), paid exactly",
            base_input(&big),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[ACCEPT, "aep2.md#payment-request-fields"]),
    );

    // --- quote expiry, without and with clock skew
    let g = f.group("eip712-expiry", Kind::VerifyOrder, order_context(context(Some(NOW)), 0));
    let at = |expiry: u64| changed(&q, |x| x.expiry = expiry);
    let expiry_cases: [(PaymentRequest, &str, Exp, &[&'static str], EvmChange); 6] = [
        (
            at(NOW),
            "quote expiry = now: still open (inclusive)",
            Exp::Valid,
            &["valid", "quote_expiry"],
            Box::new(|_| {}),
        ),
        (
            at(NOW - 1),
            "quote expiry = now - 1: closed",
            inv(Reason::QuoteExpired),
            &["quote_expiry"],
            Box::new(|_| {}),
        ),
        (
            at(NOW - 1),
            "quote closed and the mandate pays another account: the quote's expiry is checked before the payee",
            inv(Reason::QuoteExpired),
            &["quote_expiry", "check_order"],
            Box::new(move |m| m.payee = other_payee),
        ),
        (
            at(NOW - 1),
            "quote closed and the mandate's own deadline passed (now - 1): the mandate's expiry comes first",
            inv(Reason::Expired),
            &["quote_expiry", "check_order"],
            Box::new(|m| m.deadline = NOW - 1),
        ),
        (
            at(NOW - 1),
            "quote closed and the mandate's amount altered after signing: core verification comes first",
            inv(Reason::SignatureInvalid),
            &["quote_expiry", "check_order"],
            Box::new(|_| {}),
        ),
        (
            at(NOW - 3600),
            "quote expired an hour ago, mandate otherwise perfect",
            inv(Reason::QuoteExpired),
            &["quote_expiry"],
            Box::new(|_| {}),
        ),
    ];
    for (i, (quote, what, exp, flags, change)) in expiry_cases.into_iter().enumerate() {
        let mut header = evm.header(&quote, change);
        if i == 4 {
            // Re-encode with a different amount under the original signature.
            let mut m = evm.base(&quote);
            let sig = signed_for(&m, &evm.key, &domain(CHAIN_ID, WALLET)).signature;
            m.amount = U256::from_u64(1001);
            let mut sm = signed_for(&m, &evm.key, &domain(CHAIN_ID, WALLET));
            sm.signature = sig;
            header = sm.encode();
        }
        f.case(
            g,
            Case::new(what, input(quote_json(&quote), &header), exp)
                .flags(flags)
                .refs(&[ACCEPT]),
        );
    }
    let g = f.group(
        "eip712-expiry-skew",
        Kind::VerifyOrder,
        order_context(context(Some(NOW)), SKEW),
    );
    let skew_cases: [(PaymentRequest, u64, &str, Exp, &[&'static str]); 5] = [
        (
            at(NOW - SKEW),
            NOW + 600,
            "clockSkew 30, quote expiry = now - 30: still open",
            Exp::Valid,
            &["valid", "quote_expiry"],
        ),
        (
            at(NOW - SKEW - 1),
            NOW + 600,
            "clockSkew 30, quote expiry = now - 31: closed despite the skew",
            inv(Reason::QuoteExpired),
            &["quote_expiry"],
        ),
        (
            q.clone(),
            NOW + WINDOW - SKEW,
            "clockSkew 30: deadline = now - 30 + settlementWindow (now + 270) is accepted",
            Exp::Valid,
            &["valid", "settlement_window"],
        ),
        (
            q.clone(),
            NOW + WINDOW - SKEW - 1,
            "clockSkew 30: deadline = now + 269 is too soon",
            inv(Reason::DeadlineTooSoon),
            &["settlement_window"],
        ),
        (
            at(NOW - SKEW - 1),
            NOW - SKEW - 1,
            "clockSkew 30: quote and mandate both 31 s past: the mandate's expiry first",
            inv(Reason::Expired),
            &["quote_expiry", "check_order"],
        ),
    ];
    for (quote, deadline, what, exp, flags) in skew_cases {
        f.case(
            g,
            Case::new(
                what,
                input(quote_json(&quote), &evm.header(&quote, |m| m.deadline = deadline)),
                exp,
            )
            .flags(flags)
            .refs(&[ACCEPT]),
        );
    }

    // --- ed25519
    let eq = ed_quote();
    let other_key = pubkey("someone-else");
    let g = f.group("ed25519", Kind::VerifyOrder, order_context(ed_context(Some(NOW)), 0));
    let ed_cases: [(&str, Exp, &[&'static str], EnvelopeForm, EdChange); 8] = [
        (
            "pays the quote exactly (a description with non-ASCII text), ref = the quote hash, native envelope",
            Exp::Valid,
            &["valid"],
            EnvelopeForm::Native,
            Box::new(|_| {}),
        ),
        (
            "the same mandate in an MVP envelope",
            Exp::Valid,
            &["valid"],
            EnvelopeForm::Mvp,
            Box::new(|_| {}),
        ),
        (
            "pays another account",
            inv(Reason::PayeeMismatch),
            &["payee_asset"],
            EnvelopeForm::Native,
            Box::new(move |m| m.payee = other_key),
        ),
        (
            "pays in another mint",
            inv(Reason::AssetMismatch),
            &["payee_asset"],
            EnvelopeForm::Native,
            Box::new(move |m| m.token = other_key),
        ),
        (
            "amount 749, one below the quoted 750",
            inv(Reason::AmountInsufficient),
            &["amount"],
            EnvelopeForm::Native,
            Box::new(|m| m.amount = 749),
        ),
        (
            "amount 751, one above the quoted 750",
            inv(Reason::AmountNotExact),
            &["amount"],
            EnvelopeForm::Native,
            Box::new(|m| m.amount = 751),
        ),
        (
            "ref is 32 zero bytes",
            inv(Reason::RequestMismatch),
            &["quote_hash"],
            EnvelopeForm::Native,
            Box::new(|m| m.reference = [0; 32]),
        ),
        (
            "deadline = now + 299: short of the quote's settlement window",
            inv(Reason::DeadlineTooSoon),
            &["settlement_window"],
            EnvelopeForm::Native,
            Box::new(|m| m.deadline = NOW + WINDOW - 1),
        ),
    ];
    for (what, exp, flags, form, change) in ed_cases {
        f.case(
            g,
            Case::new(what, input(quote_json(&eq), &ed_header(&eq, form, change)), exp)
                .flags(flags)
                .refs(&[ACCEPT]),
        );
    }
    let other_quote = changed(&eq, |x| x.description = "GPU time: 5 min × H100".into());
    f.case(
        g,
        Case::new(
            "ref is the hash of a quote that differs only in its description",
            input(
                quote_json(&eq),
                &ed_header(&eq, EnvelopeForm::Native, |m| m.reference = other_quote.hash()),
            ),
            inv(Reason::RequestMismatch),
        )
        .flags(&["quote_hash"])
        .refs(&[HASH, BINDING]),
    );
    for (expiry, what, exp, flags) in [
        (
            NOW,
            "quote expiry = now: still open",
            Exp::Valid,
            &["valid", "quote_expiry"][..],
        ),
        (
            NOW - 1,
            "quote expiry = now - 1: closed",
            inv(Reason::QuoteExpired),
            &["quote_expiry"][..],
        ),
    ] {
        let quote = changed(&eq, |x| x.expiry = expiry);
        f.case(
            g,
            Case::new(
                what,
                input(quote_json(&quote), &ed_header(&quote, EnvelopeForm::Native, |_| {})),
                exp,
            )
            .flags(flags)
            .refs(&[ACCEPT]),
        );
    }

    // --- solana-mvp: ref = requestId
    let sq = sol_quote();
    let g = f.group(
        "solana-mvp",
        Kind::VerifyOrder,
        order_context(sol_context(Some(NOW)), 0),
    );
    let hex = aep2::codec::hex_encode_0x(&sq.hash());
    let sol_cases: [(&str, Exp, &[&'static str], SolChange); 8] = [
        (
            "pays the quote exactly, ref = the quote's requestId",
            Exp::Valid,
            &["valid", "solana_request_id"],
            Box::new(|_| {}),
        ),
        (
            "ref is another request id (order-0004)",
            inv(Reason::RequestMismatch),
            &["solana_request_id"],
            Box::new(|m| m.reference = "order-0004".into()),
        ),
        (
            "ref is the request id in upper case: ids are compared as exact text",
            inv(Reason::RequestMismatch),
            &["solana_request_id"],
            Box::new(|m| m.reference = "ORDER-0003".into()),
        ),
        (
            "ref is the request id followed by U+0000 (indistinguishable on chain after zero-padding): not the same text",
            inv(Reason::RequestMismatch),
            &["solana_request_id"],
            Box::new(|m| m.reference = "order-0003\u{0}".into()),
        ),
        (
            "ref is the first 32 hex digits of the quote hash: solana-mvp binds to the request id, not the hash",
            inv(Reason::RequestMismatch),
            &["solana_request_id"],
            Box::new(move |m| m.reference = hex[2..34].to_owned()),
        ),
        (
            "pays another account (ref right)",
            inv(Reason::PayeeMismatch),
            &["payee_asset"],
            Box::new(move |m| m.payee = other_key),
        ),
        (
            "amount 751, one above the quoted 750",
            inv(Reason::AmountNotExact),
            &["amount"],
            Box::new(|m| m.amount = 751),
        ),
        (
            "amount below the quote and ref wrong: the amount comes before the binding",
            inv(Reason::AmountInsufficient),
            &["amount", "check_order"],
            Box::new(|m| {
                m.amount = 749;
                m.reference = "order-0004".into();
            }),
        ),
    ];
    for (what, exp, flags, change) in sol_cases {
        f.case(
            g,
            Case::new(what, input(quote_json(&sq), &sol_header(&sq, change)), exp)
                .flags(flags)
                .refs(&[BINDING]),
        );
    }
    let closed = changed(&sq, |x| x.expiry = NOW - 1);
    f.case(
        g,
        Case::new(
            "quote expiry = now - 1: closed",
            input(quote_json(&closed), &sol_header(&closed, |_| {})),
            inv(Reason::QuoteExpired),
        )
        .flags(&["quote_expiry"])
        .refs(&[ACCEPT]),
    );
    let long_id = changed(&sq, |x| x.request_id = "s".repeat(32));
    f.case(
        g,
        Case::new(
            "requestId of 32 bytes (the solana-mvp limit), ref = that id",
            input(quote_json(&long_id), &sol_header(&long_id, |_| {})),
            Exp::Valid,
        )
        .flags(&["valid", "field_limit"])
        .refs(&[FIELDS, BINDING]),
    );
    f.case(
        g,
        Case::new(
            "requestId of 33 bytes: a solana-mvp ref cannot carry it (the header's ref is its first 32 bytes)",
            input(
                edited(&sq, &[("requestId", Some(json!("s".repeat(33))))]),
                &sol_header(&long_id, |_| {}),
            ),
            inv(Reason::FieldType),
        )
        .flags(&["malformed_quote", "field_limit"])
        .refs(&[FIELDS]),
    );
    f.case(
        g,
        Case::new(
            "a solana-mvp quote with a domain member: not in its member set",
            input(
                edited(
                    &sq,
                    &[("domain", Some(json!({ "network": NETWORK, "wallet": SP_SOL })))],
                ),
                &sol_header(&sq, |_| {}),
            ),
            inv(Reason::UnknownField),
        )
        .flags(&["malformed_quote"])
        .refs(&[FIELDS]),
    );

    // --- malformed quotes (eip712), each with the header that pays the well-formed quote
    let g = f.group(
        "malformed-quote",
        Kind::VerifyOrder,
        order_context(context(Some(NOW)), 0),
    );
    let header = evm.header(&q, |_| {});
    let bad_checksum = {
        let good = payee("merchant-a").to_checksum();
        let flipped: String = good
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i >= 2 && c.is_ascii_alphabetic() {
                    if c.is_ascii_uppercase() {
                        c.to_ascii_lowercase()
                    } else {
                        c.to_ascii_uppercase()
                    }
                } else {
                    c
                }
            })
            .collect();
        flipped
    };
    let malformed: Vec<(&str, Edits, Reason)> = vec![
        (
            "an unknown member currency: USD",
            vec![("currency", Some(json!("USD")))],
            Reason::UnknownField,
        ),
        (
            "an unknown member and expiry missing: unknown members are reported first",
            vec![("currency", Some(json!("USD"))), ("expiry", None)],
            Reason::UnknownField,
        ),
        ("expiry missing", vec![("expiry", None)], Reason::MissingField),
        (
            "domain missing from an eip712 quote",
            vec![("domain", None)],
            Reason::MissingField,
        ),
        ("aep2 is 2", vec![("aep2", Some(json!(2)))], Reason::UnsupportedVersion),
        (
            "kind is receipt",
            vec![("kind", Some(json!("receipt")))],
            Reason::FieldType,
        ),
        (
            "profile is solana (not a registered profile)",
            vec![("profile", Some(json!("solana")))],
            Reason::UnsupportedProfile,
        ),
        (
            "domain chainId 0",
            vec![("domain", Some(json!({ "chainId": 0, "verifyingContract": WALLET })))],
            Reason::DomainInvalid,
        ),
        (
            "requestId empty",
            vec![("requestId", Some(json!("")))],
            Reason::FieldType,
        ),
        (
            "requestId with a space",
            vec![("requestId", Some(json!("order 0001")))],
            Reason::FieldType,
        ),
        (
            "requestId with a slash",
            vec![("requestId", Some(json!("order/0001")))],
            Reason::FieldType,
        ),
        (
            "requestId of 65 characters",
            vec![("requestId", Some(json!("r".repeat(65))))],
            Reason::FieldType,
        ),
        (
            "payee with a wrong EIP-55 checksum",
            vec![("payee", Some(json!(bad_checksum)))],
            Reason::AddressChecksum,
        ),
        (
            "asset is a base58 key in an eip712 quote",
            vec![("asset", Some(json!(MINT)))],
            Reason::AddressInvalid,
        ),
        ("amount 0", vec![("amount", Some(json!("0")))], Reason::AmountZero),
        (
            "amount 01 (leading zero)",
            vec![("amount", Some(json!("01")))],
            Reason::UintInvalid,
        ),
        (
            "amount as a JSON number",
            vec![("amount", Some(json!(1000)))],
            Reason::FieldType,
        ),
        (
            "expiry as a string",
            vec![("expiry", Some(json!((NOW + 300).to_string())))],
            Reason::FieldType,
        ),
        (
            "expiry 2^53",
            vec![("expiry", Some(json!(9_007_199_254_740_992u64)))],
            Reason::UintOutOfRange,
        ),
        (
            "description of 257 bytes (128 two-byte characters and one more byte)",
            vec![("description", Some(json!(format!("{}a", "é".repeat(128)))))],
            Reason::FieldType,
        ),
        (
            "description as a JSON number",
            vec![("description", Some(json!(1)))],
            Reason::FieldType,
        ),
        (
            "settlementProcessor is a base58 key in an eip712 quote",
            vec![("settlementProcessor", Some(json!(SP_SOL)))],
            Reason::AddressInvalid,
        ),
        (
            "settlementWindow -1",
            vec![("settlementWindow", Some(json!(-1)))],
            Reason::UintInvalid,
        ),
    ];
    for (what, edits, reason) in malformed {
        let flags: &[&'static str] = if what.contains("65") || what.contains("257") {
            &["malformed_quote", "field_limit"]
        } else {
            &["malformed_quote"]
        };
        f.case(
            g,
            Case::new(what, input(edited(&q, &edits), &header), inv(reason))
                .flags(flags)
                .refs(&[FIELDS]),
        );
    }
    for quote in [
        changed(&q, |x| x.request_id = "A.b_c:d-".repeat(8)),
        changed(&q, |x| x.description = "é".repeat(128)),
        changed(&q, |x| x.description = String::new()),
    ] {
        let what = match quote.description.len() {
            256 => "description of exactly 256 bytes (128 two-byte characters)".to_owned(),
            0 => "description empty".to_owned(),
            _ => format!(
                "requestId of 64 characters using every allowed class ({})",
                quote.request_id
            ),
        };
        f.case(
            g,
            Case::new(what, base_input(&quote), Exp::Valid)
                .flags(&["valid", "field_limit"])
                .refs(&[FIELDS]),
        );
    }

    // --- quotes for another profile or domain than the verifier
    let g = f.group(
        "verifier-mismatch",
        Kind::VerifyOrder,
        order_context(context(Some(NOW)), 0),
    );
    let base_chain = changed(&q, |x| x.domain = Domain::Eip712(domain(8453, WALLET)));
    f.case(
        g,
        Case::new(
            "an eip712 quote for chain 8453, verifier for 84532 (mandate signed for 84532)",
            input(quote_json(&base_chain), &evm.header(&base_chain, |_| {})),
            inv(Reason::DomainMismatch),
        )
        .flags(&["verifier_mismatch"])
        .refs(&[ACCEPT]),
    );
    f.case(
        g,
        Case::new(
            "an ed25519 quote under an eip712 verifier",
            input(quote_json(&eq), &header),
            inv(Reason::ProfileMismatch),
        )
        .flags(&["verifier_mismatch"])
        .refs(&[ACCEPT]),
    );
    let g = f.group(
        "ed25519-verifier-mismatch",
        Kind::VerifyOrder,
        order_context(ed_context(Some(NOW)), 0),
    );
    let mainnet = changed(&eq, |x| {
        x.domain = Domain::Ed25519(Ed25519Domain {
            network: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp".into(),
            wallet: ed_domain().wallet,
        })
    });
    f.case(
        g,
        Case::new(
            "an ed25519 quote for Solana mainnet, verifier for devnet",
            input(quote_json(&mainnet), &ed_header(&mainnet, EnvelopeForm::Native, |_| {})),
            inv(Reason::DomainMismatch),
        )
        .flags(&["verifier_mismatch"])
        .refs(&[ACCEPT]),
    );
    f.case(
        g,
        Case::new(
            "a solana-mvp quote under an ed25519 verifier",
            input(quote_json(&sq), &ed_header(&eq, EnvelopeForm::Native, |_| {})),
            inv(Reason::ProfileMismatch),
        )
        .flags(&["verifier_mismatch"])
        .refs(&[ACCEPT]),
    );

    // --- the quote (check 0) before the mandate (check 1): the header is not read
    let g = f.group("quote-first", Kind::VerifyOrder, order_context(context(Some(NOW)), 0));
    f.case(
        g,
        Case::new(
            "quote without expiry and a header that is not base64: the quote (check 0) first",
            input(edited(&q, &[("expiry", None)]), "eyJh-_0="),
            inv(Reason::MissingField),
        )
        .flags(&["malformed_quote", "check_order"])
        .refs(&[ACCEPT, FIELDS]),
    );
    let forged = signed_for(&evm.base(&base_chain), &secp_key("mallory"), &domain(CHAIN_ID, WALLET)).encode();
    f.case(
        g,
        Case::new(
            "an eip712 quote for chain 8453 and a mandate signed by a key other than the owner's: the quote's domain (check 0) first",
            input(quote_json(&base_chain), &forged),
            inv(Reason::DomainMismatch),
        )
        .flags(&["verifier_mismatch", "check_order"])
        .refs(&[ACCEPT]),
    );
    let good_header = evm.header(&q, |_| {});
    f.case(
        g,
        Case::new(
            "an ed25519 quote with amount \"01\" at an eip712 verifier: the quote is read (§9.1, uint_invalid) before its profile is compared",
            input(edited(&ed_quote(), &[("amount", Some(json!("01")))]), &good_header),
            inv(Reason::UintInvalid),
        )
        .flags(&["malformed_quote", "verifier_mismatch", "check_order"])
        .refs(&[ACCEPT, FIELDS]),
    );

    // Checks 4 to 9 of aep2.md#payment-request-acceptance, one pair of neighbours per case.
    let g = f.group("check-order", Kind::VerifyOrder, order_context(context(Some(NOW)), 0));
    let other = payee("merchant-b");
    type Edit = Box<dyn Fn(&mut EvmMandate)>;
    let pairs: [(&str, Reason, Edit); 4] = [
        (
            "another payee and another asset: the payee (check 4) before the asset (check 5)",
            Reason::PayeeMismatch,
            Box::new(move |m: &mut EvmMandate| (m.payee, m.token) = (other, other)),
        ),
        (
            "another asset and an amount below the quote: the asset (check 5) before the amount (check 6)",
            Reason::AssetMismatch,
            Box::new(move |m: &mut EvmMandate| {
                m.token = other;
                m.amount = U256::from_u64(999);
            }),
        ),
        (
            "an amount below the quote and a deadline inside the settlement window: the amount (check 6) before the window (check 7)",
            Reason::AmountInsufficient,
            Box::new(|m: &mut EvmMandate| {
                m.amount = U256::from_u64(999);
                m.deadline = NOW + WINDOW - 1;
            }),
        ),
        (
            "a deadline beyond the horizon and a ref that is not the quote's hash: the horizon (check 8) before the binding (check 9)",
            Reason::DeadlineTooFar,
            Box::new(|m: &mut EvmMandate| {
                m.deadline = NOW + HORIZON + 1;
                m.reference = [7; 32];
            }),
        ),
    ];
    for (comment, reason, edit) in pairs {
        f.case(
            g,
            Case::new(
                comment,
                input(quote_json(&q), &evm.header(&q, |m| edit(m))),
                inv(reason),
            )
            .flags(&["check_order"])
            .refs(&[ACCEPT]),
        );
    }
    // A window longer than the horizon: a deadline can be both too soon and too far.
    let wide = changed(&q, |x| x.settlement_window = HORIZON + 600);
    f.case(
        g,
        Case::new(
            "a quote whose settlement window (4200 s) exceeds the horizon (3600 s), deadline now + 3601: the window (check 7) before the horizon (check 8)",
            input(quote_json(&wide), &evm.header(&wide, |m| m.deadline = NOW + HORIZON + 1)),
            inv(Reason::DeadlineTooSoon),
        )
        .flags(&["check_order"])
        .refs(&[ACCEPT]),
    );
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_covers_every_order_code() {
        let file = generate();
        let codes: std::collections::BTreeSet<String> =
            file.cases().filter_map(|(_, t)| t.expected.reason.clone()).collect();
        for r in [
            Reason::QuoteExpired,
            Reason::Expired,
            Reason::PayeeMismatch,
            Reason::AssetMismatch,
            Reason::AmountInsufficient,
            Reason::AmountNotExact,
            Reason::DeadlineTooSoon,
            Reason::DeadlineTooFar,
            Reason::RequestMismatch,
            Reason::ProfileMismatch,
            Reason::DomainMismatch,
            Reason::UnknownField,
            Reason::MissingField,
            Reason::AmountZero,
        ] {
            assert!(codes.contains(r.code()), "no vector for {r}");
        }
        assert!(file.cases().all(|(g, _)| g.kind == Kind::VerifyOrder));
        // Every quote of a valid case parses, and the quoted objects are what the payee issued.
        for (_, t) in file.cases().filter(|(_, t)| t.expected.result == "valid") {
            let text = t.input["quote"].to_string();
            assert!(PaymentRequest::parse(text.as_bytes()).is_ok(), "{}", t.id);
        }
    }

    #[test]
    fn schema_examples_are_valid_quotes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/schemas");
        let text = std::fs::read_to_string(root.join("payment-request.schema.json")).unwrap_or_default();
        let schema: J = serde_json::from_str(&text).unwrap_or_default();
        let validator = jsonschema::draft202012::new(&schema).map_err(|e| e.to_string());
        assert!(validator.is_ok(), "{validator:?}");
        let examples = schema["examples"].as_array().cloned().unwrap_or_default();
        assert_eq!(examples.len(), 3);
        for e in examples {
            assert!(validator.as_ref().is_ok_and(|v| v.is_valid(&e)), "{e}");
            assert!(PaymentRequest::parse(e.to_string().as_bytes()).is_ok(), "{e}");
        }
        // A solana-mvp quote with a domain, and one with a 33-character requestId, fail the schema.
        let with_domain = edited(
            &sol_quote(),
            &[("domain", Some(json!({ "network": NETWORK, "wallet": SP_SOL })))],
        );
        let long_id = edited(&sol_quote(), &[("requestId", Some(json!("s".repeat(33))))]);
        for bad in [with_domain, long_id] {
            assert!(validator.as_ref().is_ok_and(|v| !v.is_valid(&bad)), "{bad}");
        }
    }

    #[test]
    fn quotes_are_self_consistent() {
        for q in [evm_quote(), ed_quote(), sol_quote()] {
            assert_eq!(q.clone().validated(), Ok(q));
        }
        assert_eq!(object_json(&Object::new()), json!({}));
    }
}
