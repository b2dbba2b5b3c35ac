//! `policy.json`: the payee policy (spec `aep2.md#policy`): payee, asset and domain, amount
//! against the price in both price modes, the deadline with clock skew, settlement window and
//! maximum horizon, request binding per profile, and the order of the checks.
//!
//! Every expectation below is written from the rules of `aep2.md#policy`, with the boundary
//! arithmetic spelled out in the comment of each case. Replay needs state and has no vectors.

use super::edkit::{MINT, ed_context, ed_domain, ed_mandate, pubkey, sign_with, sol_context, sol_mandate};
use super::eip712::{CHAIN_ID, NOW, USDC, WALLET, addr, context, domain, mandate, payee, signed_for};
use super::{Case, Exp, FileBuilder, header_input, header_of, secp_key, with_mandate_field};
use crate::model::{Context, Kind, PolicyContext, VectorFile};
use aep2::codec::hex_encode_0x;
use aep2::crypto::secp256k1::SecretKey;
use aep2::hash::keccak256;
use aep2::json::Value;
use aep2::{
    Domain, Ed25519Domain, Ed25519Mandate, EnvelopeForm, EvmMandate, Mandate, PriceMode, Reason, SolanaMvpMandate,
    U256, sign_mandate,
};

const POLICY: &str = "aep2.md#policy";
const PAYEE: &str = "aep2.md#policy-payee";
const AMOUNT: &str = "aep2.md#policy-amount";
const DEADLINE: &str = "aep2.md#policy-deadline";
const BINDING: &str = "aep2.md#request-binding";
const NATIVE: &str = "aep2.md#envelope-native";

/// The standard policy of the file: a clock skew of 30 s, a settlement window of 5 minutes and
/// a maximum horizon of one hour.
const SKEW: u64 = 30;
const WINDOW: u64 = 300;
const HORIZON: u64 = 3600;
/// The eip712 price (the amount of `eip712::mandate(_, 0)`).
const EVM_PRICE: u64 = 1000;
/// The Ed25519-profile price (the amount of `edkit::ed_mandate(_, 0, _)`).
const ED_PRICE: u64 = 750;
/// The payer of every mandate in this file.
const PAYER: &str = "policy-payer";

/// Policy parameters of one group.
#[derive(Clone)]
struct Params {
    payee: String,
    asset: String,
    price: String,
    mode: PriceMode,
    skew: u64,
    window: u64,
    horizon: u64,
    request_hash: Option<[u8; 32]>,
}

impl Params {
    fn evm() -> Params {
        Params {
            payee: payee("merchant-a").to_checksum(),
            asset: USDC.into(),
            price: EVM_PRICE.to_string(),
            mode: PriceMode::Exact,
            skew: SKEW,
            window: WINDOW,
            horizon: HORIZON,
            request_hash: None,
        }
    }

    fn ed() -> Params {
        Params {
            payee: pubkey("merchant-a").to_string(),
            asset: MINT.into(),
            price: ED_PRICE.to_string(),
            ..Params::evm()
        }
    }

    fn mode(mut self, mode: PriceMode) -> Params {
        self.mode = mode;
        self
    }

    fn price(mut self, price: &str) -> Params {
        self.price = price.into();
        self
    }

    fn times(mut self, skew: u64, window: u64, horizon: u64) -> Params {
        (self.skew, self.window, self.horizon) = (skew, window, horizon);
        self
    }

    fn binding(mut self, hash: [u8; 32]) -> Params {
        self.request_hash = Some(hash);
        self
    }

    /// The group context: the profile's verifier context at [`NOW`] plus this policy.
    fn context(&self, base: Context) -> Context {
        Context {
            policy: Some(PolicyContext {
                payee: self.payee.clone(),
                asset: self.asset.clone(),
                price: self.price.clone(),
                price_mode: self.mode.as_str().into(),
                clock_skew: self.skew,
                settlement_window: self.window,
                max_horizon: self.horizon,
                request_hash: self.request_hash.map(|h| hex_encode_0x(&h)),
            }),
            ..base
        }
    }
}

/// The hash of request `i` (the request-hash construction belongs to the bindings; any fixed
/// 32 bytes exercise the comparison).
fn request(i: u64) -> [u8; 32] {
    keccak256(format!("aep2-vectors/request/{i}").as_bytes())
}

/// Builds eip712 headers from the file's base mandate.
struct Evm {
    key: SecretKey,
}

impl Evm {
    fn base(&self) -> EvmMandate {
        mandate(&self.key, 0)
    }

    /// The base mandate changed by `f`, signed for the vectors' domain, MVP envelope.
    fn header(&self, f: impl FnOnce(&mut EvmMandate)) -> String {
        let mut m = self.base();
        f(&mut m);
        signed_for(&m, &self.key, &domain(CHAIN_ID, WALLET)).encode()
    }

    /// The same, in a native envelope signed for `chain_id`.
    fn native(&self, chain_id: u64, f: impl FnOnce(&mut EvmMandate)) -> String {
        let mut m = self.base();
        f(&mut m);
        let d = Domain::Eip712(domain(chain_id, WALLET));
        sign_mandate(
            &Mandate::Eip712(m),
            &d,
            &aep2::PayerKey::Secp256k1(self.key.clone()),
            EnvelopeForm::Native,
        )
        .map(|(sm, _)| sm.encode())
        .unwrap_or_default()
    }
}

/// A native ed25519 header of the file's base mandate changed by `f`, signed for `d`.
fn ed_header_for(d: &Ed25519Domain, form: EnvelopeForm, f: impl FnOnce(&mut Ed25519Mandate)) -> String {
    let mut m = ed_mandate(PAYER, 0, NOW + 600);
    f(&mut m);
    sign_with(&Mandate::Ed25519(m), &Domain::Ed25519(d.clone()), PAYER, form).encode()
}

fn ed_header(f: impl FnOnce(&mut Ed25519Mandate)) -> String {
    ed_header_for(&ed_domain(), EnvelopeForm::Native, f)
}

/// A solana-mvp header (MVP envelope) of the file's base mandate changed by `f`.
fn sol_header(f: impl FnOnce(&mut SolanaMvpMandate)) -> String {
    let mut m = sol_mandate(PAYER, 0, NOW + 600);
    f(&mut m);
    sign_with(&Mandate::SolanaMvp(m), &Domain::SolanaMvp, PAYER, EnvelopeForm::Mvp).encode()
}

fn u256(text: &str) -> U256 {
    U256::parse_decimal(text).unwrap_or_default()
}

/// 2^53 − 1, the largest deadline, `now` and number of seconds (aep2.md#mandate-fields).
const MAX_SAFE: u64 = (1 << 53) - 1;

const U256_MAX: &str = "115792089237316195423570985008687907853269984665640564039457584007913129639935";

pub(crate) fn generate() -> VectorFile {
    let mut f = FileBuilder::new(
        "policy",
        &[
            "The payee policy (aep2.md#policy): after core verification, the stateless checks in their normative order: expired with clock skew (now > deadline + clockSkew), payee, asset, amount against the price (exact or at-least), deadline_too_soon (deadline + clockSkew < now + settlementWindow), deadline_too_far (deadline > now + maxHorizon), request binding.",
            "verify_policy cases give a base64 header; it is verified under the group's profile, domain and now, and judged under the group's context.policy. Core verification runs at now - clockSkew, so that its expiry rule is exactly now > deadline + clockSkew; a verifier that runs it at now reaches expired too early.",
            "Unless a group says otherwise the policy has clockSkew 30, settlementWindow 300 and maxHorizon 3600 at now 1800000000; the eip712 price is 1000 units of USDC (Base Sepolia), the Ed25519-profile price 750 units of the devnet USDC mint, and the payee is the one the mandates pay.",
            "Replay (mandate_replayed, nonce_reused, replay_store_unavailable) is the last check and depends on the replay store's state, not on the mandate, so it has no vectors here; judge every case as if on an empty store.",
        ],
    );
    f.note("valid", "BASIC", "A mandate that meets every policy check.", &[POLICY]);
    f.note(
        "payee_asset",
        "MODIFIED_PARAMETER",
        "The mandate pays another account, or in another token.",
        &[PAYEE],
    );
    f.note(
        "account_kind",
        "EDGE_CASE",
        "An expected account of the other kind (EVM address against base58 key) never matches; EVM addresses compare as 20 bytes whatever their letter case.",
        &[PAYEE],
    );
    f.note(
        "domain",
        "MODIFIED_PARAMETER",
        "Validly signed for another deployment: rejected by core verification, before any policy check.",
        &[PAYEE, NATIVE],
    );
    f.note(
        "amount_boundary",
        "EDGE_CASE",
        "Amount at, one below or one above the price, or at the edge of its range.",
        &[AMOUNT],
    );
    f.note(
        "over_payment",
        "DEFINED",
        "Amount above the price: accepted and settled as signed under at-least, amount_not_exact under exact.",
        &[AMOUNT],
    );
    f.note(
        "deadline_boundary",
        "EDGE_CASE",
        "Deadline exactly at, or one second inside or outside, now + settlementWindow or now + maxHorizon.",
        &[DEADLINE],
    );
    f.note(
        "clock_skew",
        "EDGE_CASE",
        "Deadline in the past by up to or just over the tolerated clock skew.",
        &[DEADLINE],
    );
    f.note(
        "request_binding",
        "MODIFIED_PARAMETER",
        "ref compared with the request hash the payee requires.",
        &[BINDING],
    );
    f.note(
        "solana_mvp_binding",
        "DEFINED",
        "A solana-mvp ref is at most 32 bytes of text and cannot carry a 32-byte hash (64 hex digits): a payee that requires binding rejects every solana-mvp mandate.",
        &[BINDING],
    );
    f.note(
        "check_order",
        "DEFINED",
        "Several checks fail; the first in the order of aep2.md#policy decides the code.",
        &[POLICY],
    );

    let inv = Exp::Invalid;
    let evm = Evm { key: secp_key(PAYER) };
    let other_payee = payee("someone-else");
    let other_token = addr("0x2222222222222222222222222222222222222222");
    let other_key = pubkey("someone-else");

    // --- eip712: payee, asset, domain
    let g = f.group(
        "eip712-payee",
        Kind::VerifyPolicy,
        Params::evm().context(context(Some(NOW))),
    );
    f.case(
        g,
        Case::new(
            "pays this payee 1000 USDC (the price), deadline now + 600",
            header_input(&evm.header(|_| {})),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[POLICY]),
    );
    f.case(
        g,
        Case::new(
            "the same mandate in a native envelope for the payee's domain",
            header_input(&evm.native(CHAIN_ID, |_| {})),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[POLICY, NATIVE]),
    );
    let signed = signed_for(&evm.base(), &evm.key, &domain(CHAIN_ID, WALLET)).to_json();
    let lower = with_mandate_field(
        &signed,
        "payee",
        Some(Value::String(evm.base().payee.to_checksum().to_lowercase())),
    );
    f.case(
        g,
        Case::new(
            "payee written in all-lowercase hex: the same 20 bytes as the policy's EIP-55 payee",
            header_input(&header_of(&lower)),
            Exp::Valid,
        )
        .flags(&["valid", "account_kind"])
        .refs(&[PAYEE]),
    );
    f.case(
        g,
        Case::new(
            "pays another account",
            header_input(&evm.header(|m| m.payee = other_payee)),
            inv(Reason::PayeeMismatch),
        )
        .flags(&["payee_asset"]),
    );
    f.case(
        g,
        Case::new(
            "pays in another token",
            header_input(&evm.header(|m| m.token = other_token)),
            inv(Reason::AssetMismatch),
        )
        .flags(&["payee_asset"]),
    );
    f.case(
        g,
        Case::new(
            "pays the policy's asset address as payee and this payee's address as token (swapped)",
            header_input(&evm.header(|m| std::mem::swap(&mut m.payee, &mut m.token))),
            inv(Reason::PayeeMismatch),
        )
        .flags(&["payee_asset"]),
    );
    f.case(
        g,
        Case::new(
            "another account and another token: the payee is checked first",
            header_input(&evm.header(|m| {
                m.payee = other_payee;
                m.token = other_token;
            })),
            inv(Reason::PayeeMismatch),
        )
        .flags(&["payee_asset", "check_order"])
        .refs(&[POLICY]),
    );
    f.case(
        g,
        Case::new(
            "native envelope validly signed for chain 8453 and paying another account: the domain (check 1) comes first",
            header_input(&evm.native(8453, |m| m.payee = other_payee)),
            inv(Reason::DomainMismatch),
        )
        .flags(&["domain", "check_order"])
        .refs(&[PAYEE, POLICY]),
    );
    let other_chain = signed_for(&evm.base(), &evm.key, &domain(8453, WALLET));
    f.case(
        g,
        Case::new(
            "MVP envelope signed for chain 8453: the payee's domain does not verify it",
            header_input(&other_chain.encode()),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["domain"])
        .refs(&[PAYEE]),
    );

    let g = f.group(
        "eip712-key-payee",
        Kind::VerifyPolicy,
        Params {
            payee: pubkey("merchant-a").to_string(),
            asset: MINT.into(),
            ..Params::evm()
        }
        .context(context(Some(NOW))),
    );
    f.case(
        g,
        Case::new(
            "policy configured with base58 payee and asset: an eip712 mandate never matches",
            header_input(&evm.header(|_| {})),
            inv(Reason::PayeeMismatch),
        )
        .flags(&["account_kind"]),
    );

    // --- ed25519: payee, asset, domain
    let g = f.group(
        "ed25519-payee",
        Kind::VerifyPolicy,
        Params::ed().context(ed_context(Some(NOW))),
    );
    f.case(
        g,
        Case::new(
            "pays this payee 750 units of the mint, native envelope",
            header_input(&ed_header(|_| {})),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[POLICY]),
    );
    f.case(
        g,
        Case::new(
            "the same mandate in an MVP envelope (the verifier supplies the domain)",
            header_input(&ed_header_for(&ed_domain(), EnvelopeForm::Mvp, |_| {})),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[POLICY]),
    );
    f.case(
        g,
        Case::new(
            "pays another account",
            header_input(&ed_header(|m| m.payee = other_key)),
            inv(Reason::PayeeMismatch),
        )
        .flags(&["payee_asset"]),
    );
    f.case(
        g,
        Case::new(
            "pays in another mint",
            header_input(&ed_header(|m| m.token = other_key)),
            inv(Reason::AssetMismatch),
        )
        .flags(&["payee_asset"]),
    );
    let mainnet = Ed25519Domain {
        network: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp".into(),
        wallet: ed_domain().wallet,
    };
    f.case(
        g,
        Case::new(
            "native envelope validly signed for Solana mainnet and paying another account: the domain comes first",
            header_input(&ed_header_for(&mainnet, EnvelopeForm::Native, |m| m.payee = other_key)),
            inv(Reason::DomainMismatch),
        )
        .flags(&["domain", "check_order"])
        .refs(&[PAYEE, POLICY]),
    );

    let g = f.group(
        "ed25519-evm-payee",
        Kind::VerifyPolicy,
        Params {
            payee: payee("merchant-a").to_checksum(),
            asset: USDC.into(),
            ..Params::ed()
        }
        .context(ed_context(Some(NOW))),
    );
    f.case(
        g,
        Case::new(
            "policy configured with an EVM payee and asset: an ed25519 mandate never matches",
            header_input(&ed_header(|_| {})),
            inv(Reason::PayeeMismatch),
        )
        .flags(&["account_kind"]),
    );

    // --- solana-mvp: payee, asset (no domain)
    let g = f.group(
        "solana-mvp-payee",
        Kind::VerifyPolicy,
        Params::ed().context(sol_context(Some(NOW))),
    );
    f.case(
        g,
        Case::new(
            "pays this payee 750 units of the mint; no request binding required",
            header_input(&sol_header(|_| {})),
            Exp::Valid,
        )
        .flags(&["valid"])
        .refs(&[POLICY]),
    );
    f.case(
        g,
        Case::new(
            "pays another account",
            header_input(&sol_header(|m| m.payee = other_key)),
            inv(Reason::PayeeMismatch),
        )
        .flags(&["payee_asset"]),
    );
    f.case(
        g,
        Case::new(
            "pays in another mint",
            header_input(&sol_header(|m| m.token = other_key)),
            inv(Reason::AssetMismatch),
        )
        .flags(&["payee_asset"]),
    );

    // --- amount: eip712, both modes
    let amount_cases = |mode: PriceMode| -> Vec<(String, &'static str, Exp, &'static [&'static str])> {
        let above = match mode {
            PriceMode::Exact => inv(Reason::AmountNotExact),
            PriceMode::AtLeast => Exp::Valid,
        };
        vec![
            (
                EVM_PRICE.to_string(),
                "amount = price",
                Exp::Valid,
                &["amount_boundary"],
            ),
            (
                (EVM_PRICE - 1).to_string(),
                "amount = price - 1",
                inv(Reason::AmountInsufficient),
                &["amount_boundary"],
            ),
            (
                (EVM_PRICE + 1).to_string(),
                "amount = price + 1",
                above,
                &["amount_boundary", "over_payment"],
            ),
            (
                "1".into(),
                "amount = 1",
                inv(Reason::AmountInsufficient),
                &["amount_boundary"],
            ),
            (
                U256_MAX.into(),
                "amount = 2^256 - 1",
                above,
                &["amount_boundary", "over_payment"],
            ),
        ]
    };
    for (name, mode) in [
        ("amount-exact", PriceMode::Exact),
        ("amount-at-least", PriceMode::AtLeast),
    ] {
        let g = f.group(
            name,
            Kind::VerifyPolicy,
            Params::evm().mode(mode).context(context(Some(NOW))),
        );
        for (amount, what, exp, flags) in amount_cases(mode) {
            let valid = matches!(exp, Exp::Valid);
            let mut flags = flags.to_vec();
            if valid {
                flags.insert(0, "valid");
            }
            f.case(
                g,
                Case::new(
                    format!("{what}, price {EVM_PRICE}, mode {mode}"),
                    header_input(&evm.header(|m| m.amount = u256(&amount))),
                    exp,
                )
                .flags(&flags)
                .refs(&[AMOUNT]),
            );
        }
    }

    // --- amount: Ed25519 profiles (u64 amounts)
    let g = f.group(
        "ed25519-amount",
        Kind::VerifyPolicy,
        Params::ed().mode(PriceMode::AtLeast).context(ed_context(Some(NOW))),
    );
    let ed_amounts: [(u64, &str, Exp, &[&'static str]); 4] = [
        (ED_PRICE, "amount = price", Exp::Valid, &["valid", "amount_boundary"]),
        (
            ED_PRICE - 1,
            "amount = price - 1",
            inv(Reason::AmountInsufficient),
            &["amount_boundary"],
        ),
        (
            ED_PRICE + 1,
            "amount = price + 1: the surplus is settled as signed",
            Exp::Valid,
            &["valid", "amount_boundary", "over_payment"],
        ),
        (
            u64::MAX,
            "amount = 2^64 - 1",
            Exp::Valid,
            &["valid", "amount_boundary", "over_payment"],
        ),
    ];
    for (amount, what, exp, flags) in ed_amounts {
        f.case(
            g,
            Case::new(
                format!("{what}, price {ED_PRICE}, mode at-least"),
                header_input(&ed_header(|m| m.amount = amount)),
                exp,
            )
            .flags(flags)
            .refs(&[AMOUNT]),
        );
    }
    let g = f.group(
        "solana-mvp-amount",
        Kind::VerifyPolicy,
        Params::ed().context(sol_context(Some(NOW))),
    );
    let sol_amounts: [(u64, &str, Exp, &[&'static str]); 3] = [
        (ED_PRICE, "amount = price", Exp::Valid, &["valid", "amount_boundary"]),
        (
            ED_PRICE - 1,
            "amount = price - 1",
            inv(Reason::AmountInsufficient),
            &["amount_boundary"],
        ),
        (
            ED_PRICE + 1,
            "amount = price + 1",
            inv(Reason::AmountNotExact),
            &["amount_boundary", "over_payment"],
        ),
    ];
    for (amount, what, exp, flags) in sol_amounts {
        f.case(
            g,
            Case::new(
                format!("{what}, price {ED_PRICE}, mode exact"),
                header_input(&sol_header(|m| m.amount = amount)),
                exp,
            )
            .flags(flags)
            .refs(&[AMOUNT]),
        );
    }
    let g = f.group(
        "ed25519-price-above-u64",
        Kind::VerifyPolicy,
        Params::ed()
            .mode(PriceMode::AtLeast)
            .price("18446744073709551616")
            .context(ed_context(Some(NOW))),
    );
    f.case(
        g,
        Case::new(
            "price 2^64, amount 2^64 - 1 (the largest an Ed25519-profile mandate can carry): never enough",
            header_input(&ed_header(|m| m.amount = u64::MAX)),
            inv(Reason::AmountInsufficient),
        )
        .flags(&["amount_boundary"]),
    );
    for (name, mode, exp, flags) in [
        (
            "price-zero-exact",
            PriceMode::Exact,
            inv(Reason::AmountNotExact),
            &["amount_boundary", "over_payment"][..],
        ),
        (
            "price-zero-at-least",
            PriceMode::AtLeast,
            Exp::Valid,
            &["valid", "amount_boundary", "over_payment"][..],
        ),
    ] {
        let g = f.group(
            name,
            Kind::VerifyPolicy,
            Params::evm().price("0").mode(mode).context(context(Some(NOW))),
        );
        f.case(
            g,
            Case::new(
                format!("price 0, mode {mode}: amount 1 (the smallest a mandate carries)"),
                header_input(&evm.header(|m| m.amount = U256::from_u64(1))),
                exp,
            )
            .flags(flags)
            .refs(&[AMOUNT]),
        );
    }

    // --- deadline: skew 30, window 300, horizon 3600
    let deadline_cases: [(u64, &str, Exp, &[&'static str]); 8] = [
        (
            NOW + 600,
            "deadline now + 600: inside window and horizon",
            Exp::Valid,
            &["valid"],
        ),
        (
            NOW + WINDOW - SKEW,
            "deadline = now - clockSkew + settlementWindow (now + 270): exactly enough time to settle, the chain being up to 30 s behind",
            Exp::Valid,
            &["valid", "deadline_boundary"],
        ),
        (
            NOW + WINDOW - SKEW - 1,
            "deadline = now + 269: one second short of the settlement window, even with the skew",
            inv(Reason::DeadlineTooSoon),
            &["deadline_boundary"],
        ),
        (
            NOW + HORIZON,
            "deadline = now + maxHorizon (3600): the furthest accepted",
            Exp::Valid,
            &["valid", "deadline_boundary"],
        ),
        (
            NOW + HORIZON + 1,
            "deadline = now + 3601: one second beyond the maximum horizon",
            inv(Reason::DeadlineTooFar),
            &["deadline_boundary"],
        ),
        (
            NOW,
            "deadline = now: valid for core verification, but no settlement window left",
            inv(Reason::DeadlineTooSoon),
            &["deadline_boundary"],
        ),
        (
            NOW - SKEW,
            "deadline = now - 30: now > deadline + 30 is false, so not expired; no window left",
            inv(Reason::DeadlineTooSoon),
            &["clock_skew"],
        ),
        (
            NOW - SKEW - 1,
            "deadline = now - 31: now > deadline + 30, expired despite the skew",
            inv(Reason::Expired),
            &["clock_skew"],
        ),
    ];
    let g = f.group(
        "deadline",
        Kind::VerifyPolicy,
        Params::evm().context(context(Some(NOW))),
    );
    for (deadline, what, exp, flags) in deadline_cases {
        f.case(
            g,
            Case::new(what, header_input(&evm.header(|m| m.deadline = deadline)), exp)
                .flags(flags)
                .refs(&[DEADLINE]),
        );
    }
    let g = f.group(
        "ed25519-deadline",
        Kind::VerifyPolicy,
        Params::ed().context(ed_context(Some(NOW))),
    );
    for (deadline, what, exp, flags) in deadline_cases {
        f.case(
            g,
            Case::new(what, header_input(&ed_header(|m| m.deadline = deadline)), exp)
                .flags(flags)
                .refs(&[DEADLINE]),
        );
    }
    let g = f.group(
        "solana-mvp-deadline",
        Kind::VerifyPolicy,
        Params::ed().context(sol_context(Some(NOW))),
    );
    for (deadline, what, exp, flags) in deadline_cases {
        f.case(
            g,
            Case::new(what, header_input(&sol_header(|m| m.deadline = deadline)), exp)
                .flags(flags)
                .refs(&[DEADLINE]),
        );
    }
    let g = f.group(
        "deadline-no-skew-no-window",
        Kind::VerifyPolicy,
        Params::evm().times(0, 0, HORIZON).context(context(Some(NOW))),
    );
    let no_skew: [(u64, &str, Exp, &[&'static str]); 3] = [
        (
            NOW,
            "clockSkew 0, settlementWindow 0: deadline = now is accepted (inclusive, as in core)",
            Exp::Valid,
            &["valid", "deadline_boundary"],
        ),
        (
            NOW - 1,
            "clockSkew 0: deadline = now - 1 is expired",
            inv(Reason::Expired),
            &["clock_skew"],
        ),
        (
            NOW + HORIZON + 1,
            "deadline = now + 3601: beyond the horizon",
            inv(Reason::DeadlineTooFar),
            &["deadline_boundary"],
        ),
    ];
    for (deadline, what, exp, flags) in no_skew {
        f.case(
            g,
            Case::new(what, header_input(&evm.header(|m| m.deadline = deadline)), exp)
                .flags(flags)
                .refs(&[DEADLINE]),
        );
    }

    // --- request binding
    let bound = request(0);
    let g = f.group(
        "eip712-request-binding",
        Kind::VerifyPolicy,
        Params::evm().binding(bound).context(context(Some(NOW))),
    );
    let mut flipped = bound;
    flipped[31] ^= 1;
    let binding_cases: [([u8; 32], &str, Exp, &[&'static str]); 4] = [
        (
            bound,
            "ref = the request hash",
            Exp::Valid,
            &["valid", "request_binding"],
        ),
        (
            request(1),
            "ref = the hash of another request",
            inv(Reason::RequestMismatch),
            &["request_binding"],
        ),
        (
            flipped,
            "ref = the request hash with its last bit flipped",
            inv(Reason::RequestMismatch),
            &["request_binding"],
        ),
        (
            [0; 32],
            "ref = 32 zero bytes",
            inv(Reason::RequestMismatch),
            &["request_binding"],
        ),
    ];
    for (reference, what, exp, flags) in binding_cases {
        f.case(
            g,
            Case::new(what, header_input(&evm.header(|m| m.reference = reference)), exp)
                .flags(flags)
                .refs(&[BINDING]),
        );
    }
    let g = f.group(
        "ed25519-request-binding",
        Kind::VerifyPolicy,
        Params::ed().binding(bound).context(ed_context(Some(NOW))),
    );
    for (reference, what, exp, flags) in binding_cases {
        f.case(
            g,
            Case::new(what, header_input(&ed_header(|m| m.reference = reference)), exp)
                .flags(flags)
                .refs(&[BINDING]),
        );
    }
    let g = f.group(
        "solana-mvp-request-binding",
        Kind::VerifyPolicy,
        Params::ed().binding(bound).context(sol_context(Some(NOW))),
    );
    let hex = hex_encode_0x(&bound);
    let sol_binding: [(String, &str, Reason, &[&'static str]); 3] = [
        (
            "api-call-1800000000000".into(),
            "ref is a call id: the payee requires binding, which solana-mvp cannot carry",
            Reason::RequestMismatch,
            &["solana_mvp_binding"],
        ),
        (
            hex[2..34].to_owned(),
            "ref is the first 32 hex digits of the request hash: a truncated hash is not a binding",
            Reason::RequestMismatch,
            &["solana_mvp_binding"],
        ),
        (
            hex[2..34].to_owned(),
            "binding would fail, but the mandate pays another account: the payee is checked first",
            Reason::PayeeMismatch,
            &["solana_mvp_binding", "check_order"],
        ),
    ];
    for (i, (reference, what, reason, flags)) in sol_binding.into_iter().enumerate() {
        let other = i == 2;
        f.case(
            g,
            Case::new(
                what,
                header_input(&sol_header(|m| {
                    m.reference = reference;
                    if other {
                        m.payee = other_key;
                    }
                })),
                inv(reason),
            )
            .flags(flags)
            .refs(&[BINDING]),
        );
    }

    // --- order of the checks (eip712, binding required): each case starts from a mandate that
    // passes every check (ref = the request hash) and breaks exactly what its comment says.
    let g = f.group(
        "order",
        Kind::VerifyPolicy,
        Params::evm().binding(bound).context(context(Some(NOW))),
    );
    type Change = Box<dyn Fn(&mut EvmMandate)>;
    let order_cases: [(&str, Exp, Change); 9] = [
        (
            "everything right, ref = the request hash",
            Exp::Valid,
            Box::new(|_: &mut EvmMandate| {}),
        ),
        (
            "expired (deadline now - 31) and wrong payee, token, amount and ref: expired first",
            inv(Reason::Expired),
            Box::new(move |m: &mut EvmMandate| {
                m.deadline = NOW - SKEW - 1;
                m.payee = other_payee;
                m.token = other_token;
                m.amount = U256::from_u64(1);
                m.reference = request(1);
            }),
        ),
        (
            "wrong payee, token and amount, deadline too far: payee first",
            inv(Reason::PayeeMismatch),
            Box::new(move |m: &mut EvmMandate| {
                m.payee = other_payee;
                m.token = other_token;
                m.amount = U256::from_u64(1);
                m.deadline = NOW + HORIZON + 1;
            }),
        ),
        (
            "wrong token and amount, deadline too soon: asset before amount",
            inv(Reason::AssetMismatch),
            Box::new(move |m: &mut EvmMandate| {
                m.token = other_token;
                m.amount = U256::from_u64(1);
                m.deadline = NOW;
            }),
        ),
        (
            "amount below the price and deadline too soon: amount before deadline",
            inv(Reason::AmountInsufficient),
            Box::new(move |m: &mut EvmMandate| {
                m.amount = U256::from_u64(EVM_PRICE - 1);
                m.deadline = NOW;
            }),
        ),
        (
            "amount above the exact price and deadline too far: amount before deadline",
            inv(Reason::AmountNotExact),
            Box::new(move |m: &mut EvmMandate| {
                m.amount = U256::from_u64(EVM_PRICE + 1);
                m.deadline = NOW + HORIZON + 1;
            }),
        ),
        (
            "deadline too soon and ref wrong: deadline before request binding",
            inv(Reason::DeadlineTooSoon),
            Box::new(move |m: &mut EvmMandate| {
                m.deadline = NOW + WINDOW - SKEW - 1;
                m.reference = request(1);
            }),
        ),
        (
            "deadline too far and ref wrong: deadline before request binding",
            inv(Reason::DeadlineTooFar),
            Box::new(move |m: &mut EvmMandate| {
                m.deadline = NOW + HORIZON + 1;
                m.reference = request(1);
            }),
        ),
        (
            "only ref wrong",
            inv(Reason::RequestMismatch),
            Box::new(move |m: &mut EvmMandate| m.reference = request(1)),
        ),
    ];
    for (what, exp, change) in order_cases {
        let valid = matches!(exp, Exp::Valid);
        f.case(
            g,
            Case::new(
                what,
                header_input(&evm.header(|m| {
                    m.reference = bound;
                    change(m);
                })),
                exp,
            )
            .flags(if valid { &["valid"] } else { &["check_order"] })
            .refs(&[POLICY]),
        );
    }

    // --- clock skew larger than the settlement window; and a clock below the skew
    let g = f.group(
        "skew-above-window",
        Kind::VerifyPolicy,
        Params::evm().times(SKEW, 0, HORIZON).context(context(Some(NOW))),
    );
    let skew_cases: [(u64, &str, Exp, &[&'static str]); 3] = [
        (
            NOW - 10,
            "clockSkew 30, settlementWindow 0: a deadline 10 s past is tolerated",
            Exp::Valid,
            &["valid", "clock_skew"],
        ),
        (
            NOW - SKEW,
            "deadline = now - clockSkew: the last tolerated second",
            Exp::Valid,
            &["valid", "clock_skew"],
        ),
        (
            NOW - SKEW - 1,
            "deadline = now - 31: beyond the skew, expired",
            inv(Reason::Expired),
            &["clock_skew"],
        ),
    ];
    for (deadline, what, exp, flags) in skew_cases {
        f.case(
            g,
            Case::new(what, header_input(&evm.header(|m| m.deadline = deadline)), exp)
                .flags(flags)
                .refs(&[DEADLINE]),
        );
    }
    let g = f.group(
        "clock-below-skew",
        Kind::VerifyPolicy,
        Params::evm().times(SKEW, 0, HORIZON).context(context(Some(10))),
    );
    f.case(
        g,
        Case::new(
            "now = 10 with clockSkew 30: the skew-adjusted time saturates at 0; deadline 20 is accepted",
            header_input(&evm.header(|m| m.deadline = 20)),
            Exp::Valid,
        )
        .flags(&["valid", "clock_skew"])
        .refs(&[DEADLINE]),
    );

    // --- core verification (check 1) before expiry (check 2), and the asset's letter case
    let g = f.group(
        "core-order",
        Kind::VerifyPolicy,
        Params::evm().context(context(Some(NOW))),
    );
    let mut expired = evm.base();
    expired.deadline = NOW - SKEW - 1;
    f.case(
        g,
        Case::new(
            "expired beyond the skew (deadline now - 31) and signed by a key other than the owner's: the signature (check 1) before expiry (check 2)",
            header_input(&signed_for(&expired, &secp_key("mallory"), &domain(CHAIN_ID, WALLET)).encode()),
            inv(Reason::SignatureInvalid),
        )
        .flags(&["check_order"])
        .refs(&[POLICY, "aep2.md#verification-order"]),
    );
    f.case(
        g,
        Case::new(
            "native envelope validly signed for chain 8453, expired beyond the skew (deadline now - 31): the domain (check 1) before expiry (check 2)",
            header_input(&evm.native(8453, |m| m.deadline = NOW - SKEW - 1)),
            inv(Reason::DomainMismatch),
        )
        .flags(&["domain", "check_order"])
        .refs(&[POLICY, NATIVE]),
    );
    let lower_token = with_mandate_field(
        &signed,
        "token",
        Some(Value::String(evm.base().token.to_checksum().to_lowercase())),
    );
    f.case(
        g,
        Case::new(
            "token written in all-lowercase hex: the same 20 bytes as the policy's EIP-55 asset",
            header_input(&header_of(&lower_token)),
            Exp::Valid,
        )
        .flags(&["valid", "account_kind"])
        .refs(&[PAYEE]),
    );

    // --- a settlement window beyond the horizon plus the skew (w > h + s): no deadline passes
    let g = f.group(
        "window-above-horizon",
        Kind::VerifyPolicy,
        Params::evm().times(0, 600, 300).context(context(Some(NOW))),
    );
    f.case(
        g,
        Case::new(
            "clockSkew 0, settlementWindow 600, maxHorizon 300; deadline now + 400 is too soon (check 6) and too far (check 7): the window first",
            header_input(&evm.header(|m| m.deadline = NOW + 400)),
            inv(Reason::DeadlineTooSoon),
        )
        .flags(&["deadline_boundary", "check_order"])
        .refs(&[POLICY, DEADLINE]),
    );

    // --- exact arithmetic at the top of the safe-integer range, where sums exceed 2^53
    let g = f.group(
        "safe-integer-range",
        Kind::VerifyPolicy,
        Params::evm().times(1, 2, HORIZON).context(context(Some(MAX_SAFE))),
    );
    f.case(
        g,
        Case::new(
            "now = deadline = 2^53 - 1, clockSkew 1, settlementWindow 2: deadline + s = 2^53 < now + w = 2^53 + 1, too soon (in IEEE 754 doubles both sums round to 2^53)",
            header_input(&evm.header(|m| m.deadline = MAX_SAFE)),
            inv(Reason::DeadlineTooSoon),
        )
        .flags(&["deadline_boundary"])
        .refs(&[POLICY, DEADLINE]),
    );
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_covers_every_stateless_policy_code() {
        let file = generate();
        let codes: std::collections::BTreeSet<String> =
            file.cases().filter_map(|(_, t)| t.expected.reason.clone()).collect();
        for r in [
            Reason::PayeeMismatch,
            Reason::AssetMismatch,
            Reason::AmountInsufficient,
            Reason::AmountNotExact,
            Reason::DeadlineTooSoon,
            Reason::DeadlineTooFar,
            Reason::RequestMismatch,
            Reason::Expired,
            Reason::DomainMismatch,
        ] {
            assert!(codes.contains(r.code()), "no vector for {r}");
        }
        assert!(file.cases().all(|(g, _)| g.kind == Kind::VerifyPolicy));
    }
}
