//! The payee's stateless policy: is this verified mandate a payment *to me*, of *my* price, in
//! *my* asset, with a usable deadline, for *this* request? (spec `aep2.md#policy`).
//!
//! Core verification ([`Verifier`]) answers whether a mandate is well formed, validly signed by
//! its payer, for the verifier's domain, and not expired. A [`PayeePolicy`] adds the checks a
//! payee needs before serving, in the normative order of `aep2.md#policy`:
//!
//! | # | check | code |
//! |---|---|---|
//! | 1 | the domain (core verification) | `domain_mismatch` |
//! | 2 | `now > deadline + clock_skew` | `expired` |
//! | 3 | `payee` is this payee | `payee_mismatch` |
//! | 4 | `token` is the expected asset | `asset_mismatch` |
//! | 5 | `amount` against the price, per [`PriceMode`] | `amount_insufficient`, `amount_not_exact` |
//! | 6 | `deadline + clock_skew < now + settlement_window` | `deadline_too_soon` |
//! | 7 | `deadline > now + max_horizon` | `deadline_too_far` |
//! | 8 | `ref` equals the expected request hash, when one is required | `request_mismatch` |
//!
//! Replay (`mandate_replayed`, `nonce_reused`, `replay_store_unavailable`) comes last and needs
//! state; it is not part of this module. Run it only on a mandate this policy accepted, keyed by
//! [`crate::ReplayKey::of`], so that a rejected mandate never consumes replay state.
//!
//! # Clock skew and core verification
//!
//! The core verifier's `expired` check has no tolerance (`now > deadline`). The policy tolerates
//! `clock_skew` seconds, so the two must not both run at `now`: [`PayeePolicy::verify_header`]
//! runs core verification at `now − clock_skew` (saturating at 0), which makes the core
//! expiry check exactly rule 2 above, and then [`PayeePolicy::check`] at `now`. `check` repeats
//! rule 2 itself, so it is complete when given a [`Verified`] from a verification without a
//! time (`verify_header(header, None)`). The skew applies to every check that asks whether
//! enough time is left (rules 2 and 6): the chain may be up to `clock_skew` seconds behind the
//! payee's clock. The horizon (rule 7) uses `now` unadjusted, the strict direction.
//!
//! ```
//! use aep2::{Domain, Eip712Domain, EvmAddress, PayeePolicy, PriceMode, U256, Verifier};
//! use aep2::crypto::secp256k1::SecretKey;
//! use aep2::{EnvelopeForm, EvmMandate, Mandate, PayerKey, sign_mandate};
//!
//! let domain = Domain::Eip712(Eip712Domain {
//!     chain_id: 84532,
//!     verifying_contract: EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912")?,
//! });
//! let me = EvmAddress::parse("0xaAD167617dF02Dd30208722c88d9027a2fDD8812")?;
//! let usdc = EvmAddress::parse("0x036CbD53842c5426634e7929541eC2318f3dCF7e")?;
//! let now = 1_800_000_000;
//!
//! // A payer signs 1000 units, valid for ten minutes.
//! let key = SecretKey::from_bytes(&[0x11; 32]).expect("valid scalar");
//! let mandate = Mandate::Eip712(EvmMandate {
//!     owner: key.address(),
//!     token: usdc,
//!     payee: me,
//!     amount: U256::from_u64(1000),
//!     nonce: U256::from_u64(7),
//!     deadline: now + 600,
//!     reference: [0x42; 32],
//! });
//! let (signed, _) = sign_mandate(&mandate, &domain, &PayerKey::Secp256k1(key), EnvelopeForm::Mvp)?;
//!
//! let verifier = Verifier::new(domain);
//! let policy = PayeePolicy::new(me.into(), usdc.into(), U256::from_u64(1000))
//!     .with_clock_skew(30)
//!     .with_settlement_window(300)
//!     .with_max_horizon(3600);
//! assert!(policy.verify_header(&verifier, &signed.encode(), now).is_ok());
//!
//! // Asking 1001 (exact or at least) makes the same mandate insufficient.
//! let dearer = PayeePolicy { price: U256::from_u64(1001), ..policy.clone() };
//! let err = dearer.verify_header(&verifier, &signed.encode(), now).unwrap_err();
//! assert_eq!(err.code(), "amount_insufficient");
//!
//! // A settlement window of 631 s is more than the mandate leaves, even allowing the 30 s skew.
//! let slow = policy.clone().with_settlement_window(631).with_price_mode(PriceMode::AtLeast);
//! let err = slow.verify_header(&verifier, &signed.encode(), now).unwrap_err();
//! assert_eq!(err.code(), "deadline_too_soon");
//! # Ok::<(), aep2::Error>(())
//! ```

use crate::address::{Base58Key, EvmAddress};
use crate::codec::hex_encode_0x;
use crate::error::{Error, Result};
use crate::mandate::Mandate;
use crate::reason::Reason;
use crate::uint::U256;
use crate::verify::{Report, Verified, Verifier};
use core::fmt;

/// The default [`PayeePolicy::max_horizon`]: one day. It bounds how long replay state is kept.
pub const DEFAULT_MAX_HORIZON: u64 = 86_400;

/// An account or asset identifier of either kind: a 20-byte EVM address (`eip712`) or a
/// 32-byte base58 key (`ed25519`, `solana-mvp`).
///
/// Identifiers of different kinds never compare equal, so a policy configured with an EVM
/// payee rejects every Ed25519-profile mandate with `payee_mismatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountId {
    /// An EVM address, compared as 20 bytes.
    Evm(EvmAddress),
    /// A base58 key (Solana account, mint, Ed25519 public key), compared as 32 bytes.
    Base58(Base58Key),
}

impl AccountId {
    /// Parses an identifier: text starting with `0x` is an EVM address (EIP-55 rules apply),
    /// anything else base58 of 32 bytes. Base58 never contains `0`, so the split is exact.
    ///
    /// Errors: `address_invalid`, `address_checksum`.
    pub fn parse(text: &str) -> Result<AccountId> {
        if text.starts_with("0x") {
            EvmAddress::parse(text).map(AccountId::Evm)
        } else {
            Base58Key::parse(text).map(AccountId::Base58)
        }
    }
}

impl From<EvmAddress> for AccountId {
    fn from(a: EvmAddress) -> Self {
        AccountId::Evm(a)
    }
}

impl From<Base58Key> for AccountId {
    fn from(k: Base58Key) -> Self {
        AccountId::Base58(k)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountId::Evm(a) => write!(f, "{a}"),
            AccountId::Base58(k) => write!(f, "{k}"),
        }
    }
}

/// How the mandate's amount is compared with the price (spec `aep2.md#policy-amount`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PriceMode {
    /// `amount == price`: below is `amount_insufficient`, above is `amount_not_exact`.
    #[default]
    Exact,
    /// `amount >= price`: below is `amount_insufficient`; a surplus is the payer's gift and
    /// is settled as signed.
    AtLeast,
}

impl PriceMode {
    /// The mode's stable name: `exact` or `at-least`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PriceMode::Exact => "exact",
            PriceMode::AtLeast => "at-least",
        }
    }

    /// Parses `exact` or `at-least`.
    pub fn parse(name: &str) -> Option<PriceMode> {
        match name {
            "exact" => Some(PriceMode::Exact),
            "at-least" => Some(PriceMode::AtLeast),
            _ => None,
        }
    }
}

impl fmt::Display for PriceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payee's stateless acceptance policy for one deployment and one price (spec
/// `aep2.md#policy`). Pair it with the [`Verifier`] of the domain it is for.
///
/// All times are unix seconds. Every comparison is exact (128-bit), so no configuration
/// overflows: a huge horizon is simply unbounded, and a window is satisfiable exactly when
/// `settlement_window − clock_skew` still leaves room before some deadline.
///
/// A policy with `settlement_window > max_horizon + clock_skew` accepts no mandate (every
/// deadline is either too soon or too far); that is a configuration error the caller owns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PayeePolicy {
    /// This payee's account: the mandate's `payee` must equal it (`payee_mismatch`).
    pub payee: AccountId,
    /// The asset asked for: the mandate's `token` must equal it (`asset_mismatch`).
    pub asset: AccountId,
    /// The price in the asset's smallest unit.
    pub price: U256,
    /// How `amount` is compared with `price`.
    pub price_mode: PriceMode,
    /// Seconds by which this payee's clock may run ahead of the payer's or the chain's: a
    /// mandate is `expired` only when `now > deadline + clock_skew`.
    pub clock_skew: u64,
    /// Seconds the settlement processor needs: the deadline must be at least
    /// `now − clock_skew + settlement_window` (`deadline_too_soon`), so that a receipt promising
    /// settlement by then satisfies `enqueueDeadline <= deadline`.
    pub settlement_window: u64,
    /// The furthest deadline accepted, relative to `now` (`deadline_too_far`). It bounds how long
    /// replay state must be kept (until `deadline + clock_skew`).
    pub max_horizon: u64,
    /// When set, the mandate's `ref` must equal this hash of the request being paid for
    /// (`request_mismatch`); `solana-mvp` mandates, whose text `ref` cannot carry 32 bytes, are
    /// then always rejected. The hash is computed per host binding.
    pub request_hash: Option<[u8; 32]>,
}

impl PayeePolicy {
    /// A policy for `payee` asking `price` of `asset`, with the defaults: [`PriceMode::Exact`],
    /// no clock skew, no settlement window, a horizon of [`DEFAULT_MAX_HORIZON`], and no request
    /// binding. Adjust with the `with_*` methods or by setting fields.
    pub fn new(payee: AccountId, asset: AccountId, price: U256) -> PayeePolicy {
        PayeePolicy {
            payee,
            asset,
            price,
            price_mode: PriceMode::Exact,
            clock_skew: 0,
            settlement_window: 0,
            max_horizon: DEFAULT_MAX_HORIZON,
            request_hash: None,
        }
    }

    /// Sets the price mode.
    #[must_use]
    pub fn with_price_mode(mut self, mode: PriceMode) -> PayeePolicy {
        self.price_mode = mode;
        self
    }

    /// Sets the tolerated clock skew (seconds).
    #[must_use]
    pub fn with_clock_skew(mut self, seconds: u64) -> PayeePolicy {
        self.clock_skew = seconds;
        self
    }

    /// Sets the settlement window the deadline must leave (seconds).
    #[must_use]
    pub fn with_settlement_window(mut self, seconds: u64) -> PayeePolicy {
        self.settlement_window = seconds;
        self
    }

    /// Sets the furthest accepted deadline, relative to `now` (seconds).
    #[must_use]
    pub fn with_max_horizon(mut self, seconds: u64) -> PayeePolicy {
        self.max_horizon = seconds;
        self
    }

    /// Requires the mandate's `ref` to equal `hash`, the hash of the request being paid for.
    #[must_use]
    pub fn with_request_hash(mut self, hash: [u8; 32]) -> PayeePolicy {
        self.request_hash = Some(hash);
        self
    }

    /// The time at which core verification runs so that its `expired` check is
    /// `now > deadline + clock_skew`: `now − clock_skew`, saturating at 0.
    pub fn core_time(&self, now: u64) -> u64 {
        now.saturating_sub(self.clock_skew)
    }

    /// Verifies a header completely: core verification by `verifier` at
    /// [`PayeePolicy::core_time`], then [`PayeePolicy::check`] at `now`. Replay is not checked.
    pub fn verify_header(&self, verifier: &Verifier, header: &str, now: u64) -> Result<Verified> {
        let v = verifier.verify_header(header, Some(self.core_time(now)))?;
        self.check(&v, now)?;
        Ok(v)
    }

    /// Like [`PayeePolicy::verify_header`], returning the core [`Report`] (digest, recovered
    /// signer) with the policy's verdict folded in.
    pub fn check_header(&self, verifier: &Verifier, header: &str, now: u64) -> Report {
        let mut report = verifier.check_header(header, Some(self.core_time(now)));
        if report.verdict.is_ok() {
            report.verdict = match &report.signed {
                Some(signed) => self.check_mandate(&signed.mandate, now),
                None => Err(Error::new(Reason::JsonInvalid, "incomplete report")),
            };
        }
        report
    }

    /// The policy checks, in the normative order, on a mandate whose signature and domain the
    /// core verifier has accepted: `expired` (with skew), `payee_mismatch`, `asset_mismatch`,
    /// `amount_insufficient` / `amount_not_exact`, `deadline_too_soon`, `deadline_too_far`,
    /// `request_mismatch`. The first failing check decides. Stateless: replay is the caller's
    /// next step.
    pub fn check(&self, v: &Verified, now: u64) -> Result<()> {
        self.check_mandate(v.mandate(), now)
    }

    /// [`PayeePolicy::check`] on a bare mandate (crate use: Order Mode reuses it).
    pub(crate) fn check_mandate(&self, m: &Mandate, now: u64) -> Result<()> {
        let (payee, token, amount, reference) = match m {
            Mandate::Eip712(m) => (
                AccountId::Evm(m.payee),
                AccountId::Evm(m.token),
                m.amount,
                Some(m.reference),
            ),
            Mandate::Ed25519(m) => (
                AccountId::Base58(m.payee),
                AccountId::Base58(m.token),
                U256::from_u64(m.amount),
                Some(m.reference),
            ),
            // A text ref of at most 32 bytes cannot carry a 32-byte hash (hex needs 64).
            Mandate::SolanaMvp(m) => (
                AccountId::Base58(m.payee),
                AccountId::Base58(m.token),
                U256::from_u64(m.amount),
                None,
            ),
        };
        let deadline = u128::from(m.deadline());
        let now_wide = u128::from(now);

        if now_wide > deadline + u128::from(self.clock_skew) {
            return Err(Error::new(
                Reason::Expired,
                format!(
                    "deadline {deadline} plus clock skew {} is before now ({now})",
                    self.clock_skew
                ),
            ));
        }
        if payee != self.payee {
            return Err(Error::new(
                Reason::PayeeMismatch,
                format!("mandate pays {payee}, this payee is {}", self.payee),
            ));
        }
        if token != self.asset {
            return Err(Error::new(
                Reason::AssetMismatch,
                format!("mandate pays in {token}, the price is in {}", self.asset),
            ));
        }
        if amount < self.price {
            return Err(Error::new(
                Reason::AmountInsufficient,
                format!("amount {amount} is below the price {}", self.price),
            ));
        }
        if self.price_mode == PriceMode::Exact && amount != self.price {
            return Err(Error::new(
                Reason::AmountNotExact,
                format!("amount {amount} is above the exact price {}", self.price),
            ));
        }
        // The skew tolerates a payee clock that runs ahead, here as in the expiry check: the
        // chain may be up to `clock_skew` seconds behind `now`.
        let earliest = (now_wide + u128::from(self.settlement_window)).saturating_sub(u128::from(self.clock_skew));
        if deadline < earliest {
            return Err(Error::new(
                Reason::DeadlineTooSoon,
                format!(
                    "deadline {deadline} leaves less than the settlement window of {} s (needs {earliest}, with the clock skew)",
                    self.settlement_window
                ),
            ));
        }
        let latest = now_wide + u128::from(self.max_horizon);
        if deadline > latest {
            return Err(Error::new(
                Reason::DeadlineTooFar,
                format!(
                    "deadline {deadline} is beyond the maximum horizon of {} s ({latest})",
                    self.max_horizon
                ),
            ));
        }
        if let Some(expected) = &self.request_hash {
            match reference {
                Some(r) if r == *expected => {}
                Some(r) => {
                    return Err(Error::new(
                        Reason::RequestMismatch,
                        format!(
                            "ref {} is not the request hash {}",
                            hex_encode_0x(&r),
                            hex_encode_0x(expected)
                        ),
                    ));
                }
                None => {
                    return Err(Error::new(
                        Reason::RequestMismatch,
                        "a solana-mvp ref (at most 32 bytes of text) cannot carry a request hash",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ed25519;
    use crate::crypto::secp256k1::SecretKey;
    use crate::{
        Domain, Ed25519Domain, Ed25519Mandate, Eip712Domain, EnvelopeForm, EvmMandate, PayerKey, SolanaMvpMandate,
        sign_mandate,
    };

    const NOW: u64 = 1_800_000_000;

    fn evm_domain() -> Domain {
        Domain::Eip712(Eip712Domain {
            chain_id: 84532,
            verifying_contract: EvmAddress([0x22; 20]),
        })
    }

    fn evm(amount: u64, deadline: u64, reference: [u8; 32]) -> (Verifier, String) {
        let key = SecretKey::from_bytes(&[0x11; 32]).expect("valid scalar");
        let m = Mandate::Eip712(EvmMandate {
            owner: key.address(),
            token: EvmAddress([0x33; 20]),
            payee: EvmAddress([0x44; 20]),
            amount: U256::from_u64(amount),
            nonce: U256::from_u64(1),
            deadline,
            reference,
        });
        let (sm, _) = sign_mandate(&m, &evm_domain(), &PayerKey::Secp256k1(key), EnvelopeForm::Mvp).expect("signs");
        (Verifier::new(evm_domain()), sm.encode())
    }

    fn evm_policy() -> PayeePolicy {
        PayeePolicy::new(
            EvmAddress([0x44; 20]).into(),
            EvmAddress([0x33; 20]).into(),
            U256::from_u64(1000),
        )
        .with_clock_skew(30)
        .with_settlement_window(300)
        .with_max_horizon(3600)
    }

    fn code(p: &PayeePolicy, (verifier, header): &(Verifier, String), now: u64) -> Option<&'static str> {
        let by_report = p.check_header(verifier, header, now).verdict.err().map(|e| e.code());
        let by_result = p.verify_header(verifier, header, now).err().map(|e| e.code());
        assert_eq!(by_report, by_result);
        by_result
    }

    #[test]
    fn amount_modes_and_boundaries() {
        let exact = evm_policy();
        let at_least = evm_policy().with_price_mode(PriceMode::AtLeast);
        for (amount, want_exact, want_at_least) in [
            (1000, None, None),
            (999, Some("amount_insufficient"), Some("amount_insufficient")),
            (1001, Some("amount_not_exact"), None),
            (1, Some("amount_insufficient"), Some("amount_insufficient")),
        ] {
            let m = evm(amount, NOW + 600, [0; 32]);
            assert_eq!(code(&exact, &m, NOW), want_exact, "exact {amount}");
            assert_eq!(code(&at_least, &m, NOW), want_at_least, "at-least {amount}");
        }
    }

    #[test]
    fn deadline_boundaries() {
        let p = evm_policy();
        let cases = [
            (NOW + 300, None),
            (NOW + 270, None),
            (NOW + 269, Some("deadline_too_soon")),
            (NOW + 3600, None),
            (NOW + 3601, Some("deadline_too_far")),
            (NOW, Some("deadline_too_soon")),
            (NOW - 30, Some("deadline_too_soon")),
            (NOW - 31, Some("expired")),
        ];
        for (deadline, want) in cases {
            assert_eq!(
                code(&p, &evm(1000, deadline, [0; 32]), NOW),
                want,
                "deadline {deadline}"
            );
        }
        // Without skew and window, the core rule is unchanged: valid at the deadline itself.
        let plain = evm_policy().with_clock_skew(0).with_settlement_window(0);
        assert_eq!(code(&plain, &evm(1000, NOW, [0; 32]), NOW), None);
        assert_eq!(code(&plain, &evm(1000, NOW - 1, [0; 32]), NOW), Some("expired"));
    }

    #[test]
    fn extreme_configuration_does_not_overflow() {
        let m = evm(1000, NOW + 600, [0; 32]);
        let unbounded = evm_policy().with_max_horizon(u64::MAX).with_clock_skew(u64::MAX);
        // An unbounded skew tolerates any clock: never expired, never too soon.
        assert_eq!(code(&unbounded, &m, u64::MAX), None);
        assert_eq!(code(&unbounded, &m, NOW), None);
        let impossible = evm_policy().with_settlement_window(u64::MAX);
        assert_eq!(code(&impossible, &m, NOW), Some("deadline_too_soon"));
        assert_eq!(evm_policy().with_clock_skew(u64::MAX).core_time(NOW), 0);
    }

    #[test]
    fn order_of_checks() {
        // Expired beats a wrong payee; a wrong payee beats a wrong asset, amount and deadline.
        let mut p = evm_policy();
        p.payee = EvmAddress([0x55; 20]).into();
        assert_eq!(code(&p, &evm(1000, NOW - 31, [0; 32]), NOW), Some("expired"));
        assert_eq!(code(&p, &evm(1, NOW + 9999, [0; 32]), NOW), Some("payee_mismatch"));
        let mut p = evm_policy();
        p.asset = EvmAddress([0x55; 20]).into();
        assert_eq!(code(&p, &evm(1, NOW + 9999, [0; 32]), NOW), Some("asset_mismatch"));
        // The amount beats the deadline; the deadline beats the request binding.
        let p = evm_policy().with_request_hash([9; 32]);
        assert_eq!(code(&p, &evm(1, NOW + 1, [0; 32]), NOW), Some("amount_insufficient"));
        assert_eq!(code(&p, &evm(1000, NOW + 9999, [0; 32]), NOW), Some("deadline_too_far"));
        assert_eq!(code(&p, &evm(1000, NOW + 600, [0; 32]), NOW), Some("request_mismatch"));
        assert_eq!(code(&p, &evm(1000, NOW + 600, [9; 32]), NOW), None);
        // An EVM policy never matches a base58 payee and vice versa.
        let mut p = evm_policy();
        p.payee = Base58Key([0x44; 32]).into();
        assert_eq!(code(&p, &evm(1000, NOW + 600, [0; 32]), NOW), Some("payee_mismatch"));
    }

    #[test]
    fn check_alone_applies_the_skewed_expiry() {
        let (verifier, header) = evm(1000, NOW - 31, [0; 32]);
        let v = verifier.verify_header(&header, None).expect("valid signature");
        let p = evm_policy();
        assert_eq!(p.check(&v, NOW).unwrap_err().reason(), Reason::Expired);
        assert_eq!(p.check(&v, NOW - 1).unwrap_err().reason(), Reason::DeadlineTooSoon);
    }

    fn ed_parts(label: u8) -> ([u8; 32], Base58Key) {
        let seed = [label; 32];
        (seed, Base58Key(ed25519::public_key_from_seed(&seed)))
    }

    #[test]
    fn ed25519_profiles_and_request_binding() {
        let (seed, payer) = ed_parts(1);
        let (_, payee) = ed_parts(2);
        let (_, mint) = ed_parts(3);
        let native = Domain::Ed25519(Ed25519Domain {
            network: "solana:devnet".into(),
            wallet: Base58Key([7; 32]),
        });
        let m = Mandate::Ed25519(Ed25519Mandate {
            payer,
            token: mint,
            payee,
            amount: 750,
            nonce: 1,
            deadline: NOW + 600,
            reference: [5; 32],
        });
        let (sm, _) = sign_mandate(&m, &native, &PayerKey::Ed25519(seed), EnvelopeForm::Native).expect("signs");
        let ed = (Verifier::new(native), sm.encode());
        let p = PayeePolicy::new(payee.into(), mint.into(), U256::from_u64(750));
        assert_eq!(code(&p, &ed, NOW), None);
        assert_eq!(code(&p.clone().with_request_hash([5; 32]), &ed, NOW), None);
        assert_eq!(
            code(&p.clone().with_request_hash([6; 32]), &ed, NOW),
            Some("request_mismatch")
        );
        let mut wrong_asset = p.clone();
        wrong_asset.asset = payee.into();
        assert_eq!(code(&wrong_asset, &ed, NOW), Some("asset_mismatch"));
        let pricey = PayeePolicy {
            price: U256([0xff; 32]),
            ..p.clone()
        };
        assert_eq!(code(&pricey, &ed, NOW), Some("amount_insufficient"));

        let sol = Mandate::SolanaMvp(SolanaMvpMandate {
            payer,
            token: mint,
            payee,
            amount: 750,
            nonce: 1,
            deadline: NOW + 600,
            reference: "0505050505050505".into(),
        });
        let (sm, _) =
            sign_mandate(&sol, &Domain::SolanaMvp, &PayerKey::Ed25519(seed), EnvelopeForm::Mvp).expect("signs");
        let sol = (Verifier::new(Domain::SolanaMvp), sm.encode());
        assert_eq!(code(&p, &sol, NOW), None);
        assert_eq!(
            code(&p.clone().with_request_hash([5; 32]), &sol, NOW),
            Some("request_mismatch")
        );
    }

    #[test]
    fn names_round_trip() {
        for mode in [PriceMode::Exact, PriceMode::AtLeast] {
            assert_eq!(PriceMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(PriceMode::parse("minimum"), None);
        let evm = AccountId::parse("0x036CbD53842c5426634e7929541eC2318f3dCF7e").expect("address");
        assert_eq!(evm.to_string(), "0x036CbD53842c5426634e7929541eC2318f3dCF7e");
        let key = AccountId::parse("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU").expect("key");
        assert_eq!(key.to_string(), "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU");
        assert_ne!(evm, key);
        assert_eq!(AccountId::parse("0x12").unwrap_err().reason(), Reason::AddressInvalid);
    }
}
