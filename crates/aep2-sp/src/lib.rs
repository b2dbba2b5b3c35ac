//! # aep2-sp
//!
//! An AEP2 settlement processor (spec `aep2.md#sp-enqueue`, `aep2.md#sp-funds`): the
//! MVP-compatible `POST /enqueue` and `GET /health` service, full mandate verification, signed
//! receipts in the `mvp-evm`, `mvp-solana` and native forms, and a durable [`Ledger`] (SQLite or
//! Postgres) of deposits, reservations and accepted mandates, plus [`SpClient`], the async client a payee
//! uses to enqueue the mandates it accepts. The [`settlement`] worker keeps the receipts'
//! promises: it settles the accepted `eip712` mandates in batches on an EVM through the
//! debit-wallet contract (spec `aep2.md#settlement`), on any chain of `aep2-evm`.
//!
//! [`Processor::enqueue`] is the whole acceptance rule without HTTP: decode, verify, then one
//! ledger transaction. The service in [`service`] wraps it with the HTTP limits.
//!
//! ```
//! use aep2::{Domain, SpKey};
//! use aep2_sp::{Config, Ledger, Processor};
//!
//! let mut config = Config::new(":memory:", vec![Domain::SolanaMvp]);
//! config.ed25519_key = Some(SpKey::Ed25519([7; 32]));
//! let sp = Processor::new(&config, Ledger::open_in_memory()?).map_err(|e| aep2::Error::new(aep2::Reason::DomainInvalid, e))?;
//! let err = sp.enqueue(b"{\"mandate\": 1}", 1_700_000_000).unwrap_err();
//! assert_eq!(err.code(), "missing_field");
//! # Ok::<(), aep2::Error>(())
//! ```

pub mod audit;
pub mod client;
pub mod config;
pub mod ledger;
pub mod service;
pub mod settlement;

/// Where a ledger lives: a SQLite file or a `postgres://` URL ([`Location::parse`]).
pub use aep2_replay::db::Location;
pub use audit::{PaidRequest, RequestDescriptor};
pub use client::{EnqueueResponse, SpClient, SpClientError};
pub use config::{ChainConfig, ChainSource, Config, EmbeddedChain, HttpLimits};
pub use ledger::{
    AccountKey, Balance, BatchState, Deposit, DepositOutcome, Enqueued, FundsEvent, ItemOutcome, LaneLink, LaneState,
    Ledger, LedgerOptions, NewBatch, QueuedMandate, Settlement, Status, StoredBatch, StoredMandate, TxAttempt,
};

use aep2::envelope::decode_json_bytes;
use aep2::json::{Value, to_compact};
use aep2::lane::{LaneRevocation, SignedLane};
use aep2::uint::U256;
use aep2::{
    AccountId, Domain, EnvelopeForm, Error, Mandate, Profile, Reason, Receipt, ReceiptKind, ReceiptLane, ReplayKey,
    SpId, SpKey, Verified, Verifier,
};
use ledger::NewMandate;

/// The request header in which a payee names its submission of a mandate to `POST /enqueue`
/// (spec `aep2.md#sp-enqueue`, *Submission id*): `0x` and 32 lowercase hex digits.
pub const SUBMISSION_ID_HEADER: &str = "aep2-submission-id";

/// The header form of a submission id.
pub fn format_submission_id(id: &[u8; 16]) -> String {
    aep2::codec::hex_encode_0x(id)
}

/// Parses a submission id header value: `0x` and exactly 32 hex digits (`field_type` otherwise).
pub fn parse_submission_id(text: &str) -> Result<[u8; 16], Error> {
    let well_formed = text.len() == 34
        && text.starts_with("0x")
        && text[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    well_formed
        .then(|| aep2::codec::hex_decode_0x(text).and_then(|b| <[u8; 16]>::try_from(b).ok()))
        .flatten()
        .ok_or_else(|| {
            Error::new(
                Reason::FieldType,
                format!("{SUBMISSION_ID_HEADER} must be 0x followed by 32 lowercase hex digits"),
            )
        })
}

/// The ledger's name for a deployment: `eip712:<chainId>:<EIP-55 contract>`,
/// `ed25519:<network>:<base58 wallet>`, or `solana-mvp`.
pub fn domain_key(d: &Domain) -> String {
    match d {
        Domain::Eip712(e) => format!("eip712:{}:{}", e.chain_id, e.verifying_contract.to_checksum()),
        Domain::Ed25519(e) => format!("ed25519:{}:{}", e.network, e.wallet),
        Domain::SolanaMvp => "solana-mvp".to_owned(),
    }
}

/// The ledger's form of an account or token id: EIP-55 or base58.
pub fn account_display(id: &AccountId) -> String {
    id.to_string()
}

/// The acceptance rule: verifiers for the configured domains, the SP keys, the settlement
/// window and skew, and the ledger. Shared by all request handlers (it is `Sync`).
#[derive(Debug)]
pub struct Processor {
    verifiers: Vec<Verifier>,
    secp256k1: Option<SpKey>,
    ed25519: Option<SpKey>,
    window: u64,
    skew: u64,
    ledger: Ledger,
}

impl Processor {
    /// A processor for `config`'s domains, keys and times, storing in `ledger` (the
    /// configuration's `database` is not opened here). Fails if the configuration is inconsistent.
    pub fn new(config: &Config, ledger: Ledger) -> Result<Processor, String> {
        config.check()?;
        Ok(Processor {
            verifiers: config.domains.iter().cloned().map(Verifier::new).collect(),
            secp256k1: config.secp256k1_key.clone(),
            ed25519: config.ed25519_key.clone(),
            window: config.settlement_window,
            skew: config.clock_skew,
            ledger,
        })
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The SP identities, secp256k1 first.
    pub fn sp_ids(&self) -> Vec<SpId> {
        [&self.secp256k1, &self.ed25519]
            .into_iter()
            .flatten()
            .map(SpKey::id)
            .collect()
    }

    /// The settlement window `w` in seconds.
    pub fn settlement_window(&self) -> u64 {
        self.window
    }

    /// Accepts an `/enqueue` body (an MVP or native envelope, as JSON bytes) at time `now`: the
    /// stored receipt if this mandate was accepted before, else verification, the deadline
    /// checks, signing, and the ledger transaction (spec `aep2.md#sp-enqueue`).
    ///
    /// The returned receipt is durably stored before this returns.
    pub fn enqueue(&self, body: &[u8], now: u64) -> Result<Enqueued, Error> {
        self.enqueue_as(body, None, now)
    }

    /// [`Processor::enqueue`] for a submission with the payee's submission id (spec
    /// `aep2.md#sp-enqueue`, *Submission id*): a stored mandate held for another id is
    /// `mandate_replayed`.
    pub fn enqueue_as(&self, body: &[u8], submission_id: Option<[u8; 16]>, now: u64) -> Result<Enqueued, Error> {
        self.enqueue_described(body, submission_id, None, now)
    }

    /// [`Processor::enqueue_as`] with the payee's description of the request the mandate pays
    /// for (spec `aep2.md#sp-audit`), stored with the mandate when this call stores it.
    pub fn enqueue_described(
        &self,
        body: &[u8],
        submission_id: Option<[u8; 16]>,
        request: Option<&RequestDescriptor>,
        now: u64,
    ) -> Result<Enqueued, Error> {
        let described = request.map(RequestDescriptor::to_header);
        let v = decode_json_bytes(body)?;
        let verifier = self.verifier_for(&v)?;
        let verified = verifier.check_value(&v, None).into_result()?;
        // A retry after a lost response gets the first receipt even if the mandate has expired
        // since: returning a stored promise is not signing a new one.
        if let Some(mut stored) = self.ledger.resubmission(&verified.digest.id, submission_id, now)? {
            // An eip712 mandate has one id in either envelope form. Whoever submits it first must
            // not choose the receipt form for the other (an MVP payee cannot read a native
            // receipt): the other form gets its receipt for the same promise, signed now, which is
            // byte-stable because both signature schemes are deterministic.
            let (kind, _) = self.receipt_key(&verified)?;
            let stored_kind = aep2::json::parse(&stored.receipt, &aep2::json::Limits::AEP2)
                .and_then(|r| Receipt::from_json(&r))
                .map(|r| r.kind);
            if stored_kind.is_ok_and(|k| k != kind) {
                stored.receipt = self.sign(&verified, stored.enqueue_deadline)?;
            }
            return Ok(Enqueued {
                mandate: stored,
                fresh: false,
            });
        }
        let deadline = verified.mandate().deadline();
        if now > deadline.saturating_add(self.skew) {
            return Err(Error::new(
                Reason::Expired,
                format!("deadline {deadline} is before now ({now}) minus the skew {}", self.skew),
            ));
        }
        // The lanes' validity windows by this SP's clock (spec `aep2.md#lane-settlement`): the
        // stateless rules were checked above without a time.
        if !verified.signed.lanes.is_empty() {
            aep2::lane::check_chain_policy(&verified.signed.lanes, verified.mandate(), Some(now))?;
            // The chain checks `validFrom` against block time, which may lag this clock by the
            // skew: a lane is used here only once it is valid by either clock.
            if let Some(l) = verified
                .signed
                .lanes
                .iter()
                .find(|l| now < l.lane.valid_from.saturating_add(self.skew))
            {
                return Err(Error::new(
                    Reason::LaneNotYetValid,
                    format!(
                        "validFrom {} is less than the clock skew of {} s before now ({now})",
                        l.lane.valid_from, self.skew
                    ),
                ));
            }
        }
        let enqueue_deadline = now.saturating_add(self.window);
        if enqueue_deadline > deadline {
            return Err(Error::new(
                Reason::DeadlineTooSoon,
                format!(
                    "deadline {deadline} is less than the settlement window of {} s after now ({now})",
                    self.window
                ),
            ));
        }
        let text = std::str::from_utf8(body).map_err(|e| Error::new(Reason::Utf8Invalid, e.to_string()))?;
        if verified.signed.lanes.is_empty() {
            let receipt = self.sign(&verified, enqueue_deadline)?;
            let mut record = new_mandate(&verified, text, receipt, enqueue_deadline, now)?;
            record.submission_id = submission_id;
            record.request = described;
            return self.ledger.enqueue(&record);
        }
        // Under a lane the receipt states what remains, known only inside the ledger's
        // transaction: it is signed there.
        let mut record = new_mandate(&verified, text, String::new(), enqueue_deadline, now)?;
        record.submission_id = submission_id;
        record.request = described;
        record.lanes = lane_links(&verified.signed.lanes, &verified.domain)?;
        let leaf = record.lanes.last().map(|l| l.id).unwrap_or([0; 32]);
        self.ledger.enqueue_with(&record, |remaining| {
            let lane = remaining.map(|r| ReceiptLane {
                id: leaf,
                remaining: *r,
            });
            self.sign_with(&verified, enqueue_deadline, lane)
        })
    }

    /// Accepts a `POST /v1/lanes/revoke` body `{"revocation", "lanes"}` at time `now` (spec
    /// `aep2.md#lane-revocation`): the revocation's domain must be served; the chain and the
    /// revocation are verified ([`aep2::lane::check_revocation`]) and the revocation recorded.
    /// Returns the revoked lane's id and when it was revoked (the first time, if it already was).
    pub fn revoke(&self, body: &[u8], now: u64) -> Result<([u8; 32], u64), Error> {
        let v = decode_json_bytes(body)?;
        let f = aep2::schema::Fields::new(&v, "request", &["revocation", "lanes"])?;
        let revocation = LaneRevocation::from_json(f.value("revocation")?)?;
        let profile = revocation.domain.profile();
        if !self.verifiers.iter().any(|x| *x.expected() == revocation.domain) {
            let reason = if self.verifiers.iter().any(|x| x.expected().profile() == profile) {
                Reason::DomainMismatch
            } else {
                Reason::ProfileMismatch
            };
            return Err(Error::new(
                reason,
                "this settlement processor does not serve the revocation's domain",
            ));
        }
        let chain = aep2::lane::parse_chain(profile, f.value("lanes")?)?;
        aep2::lane::check_revocation(&revocation, &chain)?;
        let links = lane_links(&chain, &revocation.domain)?;
        let (at, _) = self
            .ledger
            .revoke_lane(&links, &to_compact(&revocation.to_json()), now)?;
        Ok((revocation.lane, at))
    }

    /// Picks the verifier for an envelope by its shape, so that the verifier's own schema checks
    /// report what is wrong with it. Only a well-formed envelope of a profile this SP does not
    /// serve is refused here, with `profile_mismatch`.
    fn verifier_for(&self, v: &Value) -> Result<&Verifier, Error> {
        let first = self
            .verifiers
            .first()
            .ok_or_else(|| Error::new(Reason::ProfileMismatch, "no domain configured"))?;
        let Value::Object(obj) = v else {
            return Ok(first);
        };
        let of_profile = |p: Profile| self.verifiers.iter().find(|x| x.expected().profile() == p);
        let wanted = if obj.get("aep2").is_some() {
            let Some(Value::String(name)) = obj.get("profile") else {
                return Ok(first);
            };
            let Ok(profile) = Profile::parse(name) else {
                return Ok(first);
            };
            if profile == Profile::SolanaMvp {
                return Ok(first);
            }
            // The verifier of the claimed domain if served; otherwise any of the profile, which
            // checks the signature and then reports `domain_mismatch`.
            if let Some(Ok(claimed)) = obj.get("domain").map(|d| Domain::from_json(profile, d))
                && let Some(x) = self.verifiers.iter().find(|x| *x.expected() == claimed)
            {
                return Ok(x);
            }
            profile
        } else {
            match obj.get("mandate") {
                Some(Value::Object(m)) if m.get("owner").is_some() => Profile::Eip712,
                Some(Value::Object(m)) if m.get("payer").is_some() => Profile::SolanaMvp,
                _ => {
                    return Ok(of_profile(Profile::Eip712)
                        .or_else(|| of_profile(Profile::SolanaMvp))
                        .unwrap_or(first));
                }
            }
        };
        of_profile(wanted).ok_or_else(|| {
            Error::new(
                Reason::ProfileMismatch,
                format!("this settlement processor does not serve {wanted} mandates"),
            )
        })
    }

    /// The receipt form a submission gets (by its envelope form and profile) and the key for it.
    fn receipt_key(&self, v: &Verified) -> Result<(ReceiptKind, &SpKey), Error> {
        let (kind, key) = match (v.signed.form, v.mandate().profile()) {
            // A lane mandate's receipt states the lane's remaining budget, which only the native
            // form has room for, whatever the envelope's form (spec `aep2.md#sp-enqueue`).
            (_, Profile::Eip712) if !v.signed.lanes.is_empty() => (ReceiptKind::Native, &self.secp256k1),
            (_, _) if !v.signed.lanes.is_empty() => (ReceiptKind::Native, &self.ed25519),
            (EnvelopeForm::Mvp, Profile::Eip712) => (ReceiptKind::MvpEvm, &self.secp256k1),
            (EnvelopeForm::Mvp, Profile::SolanaMvp) => (ReceiptKind::MvpSolana, &self.ed25519),
            (_, Profile::Eip712) => (ReceiptKind::Native, &self.secp256k1),
            (_, _) => (ReceiptKind::Native, &self.ed25519),
        };
        let key = key
            .as_ref()
            .ok_or_else(|| Error::new(Reason::ProfileMismatch, "no SP key for this profile"))?;
        Ok((kind, key))
    }

    fn sign(&self, v: &Verified, enqueue_deadline: u64) -> Result<String, Error> {
        self.sign_with(v, enqueue_deadline, None)
    }

    fn sign_with(&self, v: &Verified, enqueue_deadline: u64, lane: Option<ReceiptLane>) -> Result<String, Error> {
        let (kind, key) = self.receipt_key(v)?;
        let receipt = key.sign_receipt_with(kind, &v.digest, enqueue_deadline, Some(&v.domain), lane)?;
        Ok(to_compact(&receipt.to_json()))
    }
}

/// The ledger's records of a verified chain's links, root first.
pub fn lane_links(chain: &[SignedLane], domain: &Domain) -> Result<Vec<LaneLink>, Error> {
    chain
        .iter()
        .map(|l| {
            let lane = &l.lane;
            Ok(LaneLink {
                id: lane.digest(domain)?.id,
                domain: domain_key(domain),
                parent: lane.parent,
                owner: account_display(&lane.owner),
                agent: account_display(&lane.agent),
                token: account_display(&lane.token),
                signed: to_compact(&l.to_json()),
                total: lane.total,
                max_payments: lane.max_payments,
                period: lane.period,
                allowance: lane.allowance,
                valid_from: lane.valid_from,
            })
        })
        .collect()
}

fn new_mandate(
    v: &Verified,
    envelope: &str,
    receipt: String,
    enqueue_deadline: u64,
    now: u64,
) -> Result<NewMandate, Error> {
    let m = v.mandate();
    let fields = m.to_json();
    let text = |name: &str| match fields.get(name) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let amount = match m {
        Mandate::Eip712(e) => e.amount,
        Mandate::Ed25519(e) => U256::from_u64(e.amount),
        Mandate::SolanaMvp(e) => U256::from_u64(e.amount),
    };
    Ok(NewMandate {
        mandate_id: v.digest.id,
        nonce_key: ReplayKey::of(v).nonce_key,
        profile: m.profile().as_str().to_owned(),
        account: AccountKey {
            domain: domain_key(&v.domain),
            payer: m.signer(),
            token: text("token"),
        },
        payee: m.payee(),
        amount,
        nonce: text("nonce"),
        deadline: m.deadline(),
        reference: text("ref"),
        envelope: envelope.to_owned(),
        receipt,
        enqueue_deadline,
        now,
        submission_id: None,
        lanes: Vec::new(),
        request: None,
    })
}

/// Unix seconds from the system clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
