//! Reading variants of receipts (`aep2.md#receipts`).
//!
//! Each reading runs a complete receipt verifier, written here from `aep2.md#receipts` with the
//! library's parts (receipt schema, signature verification, core verification of the mandate
//! header), in which one rule is read the other way: the order of the checks, the domain the
//! signature covers, the form rule, the deadline boundary, what an absent input means, the time
//! the mandate header is read at, or where a receipt of the other profile is rejected.

use super::{invalid, valid};
use aep2::codec::hex_encode_0x;
use aep2::json::{Limits, parse};
use aep2::receipt::ReceiptKind;
use aep2::verify::Verified;
use aep2::{Domain, Error, Profile, Reason, Receipt, ReceiptExpectations, SpId, Verifier};
use aep2_conformance::protocol::CaseInput;
use aep2_vectors::check::{Answer, context_domain};
use serde_json::Value as J;

/// One other reading of a choice point of this area (`conformance/README.md`, "Choice points
/// of the spec").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// §6: the policy checks (1–4) run before the signature stage, instead of after it.
    PolicyBeforeSignature,
    /// §6: the SP check (1) runs before the signature stage, the rest after it.
    SpBeforeSignature,
    /// §6 checks 1–2: the domain is compared before the SP.
    DomainBeforeSp,
    /// §6 checks 2–3: the form and digest are compared before the domain.
    DigestBeforeDomain,
    /// §6 checks 3–4: the deadline rule before the form and digest.
    DeadlineBeforeDigest,
    /// §6.3: a native receipt's signature is checked over the expected (mandate's) domain, not
    /// over the receipt's own `domain`.
    SignedOverExpectedDomain,
    /// §6 check 3: only `mandateDigest` is compared; the form is not required to belong to the
    /// mandate's profile.
    FormNotChecked,
    /// §6.4: `enqueueDeadline == deadline` is rejected too (`>=` instead of `>`).
    DeadlineExclusive,
    /// §6: a check whose input is absent fails (no expected SP: `receipt_sp_mismatch`; no
    /// mandate: `receipt_digest_mismatch`) instead of not being performed.
    AbsentInputFails,
    /// `conformance.md#inputs` (`now`), §6: with no `now`, the mandate header is verified at the
    /// system clock (expiry checked) instead of without a time.
    SystemClock,
    /// §6.3: a native receipt whose `profile` is not the expected profile is rejected at the
    /// schema stage with `profile_mismatch` (as an envelope is, §5.2), instead of at check 2.
    ProfileAtSchema,
    /// §6: the receipt is read (decode, schema) before the mandate header is verified, instead
    /// of the mandate first.
    ReceiptBeforeMandate,
    /// §18.7: a lane receipt's signature is checked over the receipt without its `lane` (the
    /// plain `Receipt` input), as if `lane` were unsigned information.
    LaneNotSigned,
    /// §6 check 5: the receipt's `lane` is not compared with the mandate's leaf lane.
    LaneNotCompared,
}

impl Reading {
    /// Every reading, in the order of the README's table.
    pub const ALL: &'static [Reading] = &[
        Reading::PolicyBeforeSignature,
        Reading::SpBeforeSignature,
        Reading::DomainBeforeSp,
        Reading::DigestBeforeDomain,
        Reading::DeadlineBeforeDigest,
        Reading::SignedOverExpectedDomain,
        Reading::FormNotChecked,
        Reading::DeadlineExclusive,
        Reading::AbsentInputFails,
        Reading::SystemClock,
        Reading::ProfileAtSchema,
        Reading::ReceiptBeforeMandate,
        Reading::LaneNotSigned,
        Reading::LaneNotCompared,
    ];

    /// The choice point's id in `conformance/README.md`, which is also the `--variant` name.
    pub fn id(self) -> &'static str {
        match self {
            Reading::PolicyBeforeSignature => "CP-receipt-order-stages",
            Reading::SpBeforeSignature => "CP-receipt-order-signature-sp",
            Reading::DomainBeforeSp => "CP-receipt-order-1-2",
            Reading::DigestBeforeDomain => "CP-receipt-order-2-3",
            Reading::DeadlineBeforeDigest => "CP-receipt-order-3-4",
            Reading::SignedOverExpectedDomain => "CP-receipt-signed-domain",
            Reading::FormNotChecked => "CP-receipt-form-profile",
            Reading::DeadlineExclusive => "CP-receipt-deadline-inclusive",
            Reading::AbsentInputFails => "CP-receipt-absent-inputs",
            Reading::SystemClock => "CP-receipt-absent-now",
            Reading::ProfileAtSchema => "CP-receipt-profile-mismatch",
            Reading::ReceiptBeforeMandate => "CP-receipt-order-mandate-receipt",
            Reading::LaneNotSigned => "CP-receipt-lane-signed",
            Reading::LaneNotCompared => "CP-receipt-lane-leaf",
        }
    }
}

/// The checks after the schema stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    Signature,
    Sp,
    Domain,
    Digest,
    Deadline,
    Lane,
}

/// The spec's order (§6): the signature stage, then policy checks 1 to 5.
const SPEC_ORDER: [Check; 6] = [
    Check::Signature,
    Check::Sp,
    Check::Domain,
    Check::Digest,
    Check::Deadline,
    Check::Lane,
];

/// The answer of `reading` to a case it governs; `None` for every other case.
pub fn answer(reading: Reading, case: &CaseInput) -> Option<Result<Answer, String>> {
    (case.kind == "verify_receipt").then(|| verify(reading, case))
}

fn order(reading: Reading) -> [Check; 6] {
    use Check::*;
    match reading {
        Reading::PolicyBeforeSignature => [Sp, Domain, Digest, Deadline, Lane, Signature],
        Reading::SpBeforeSignature => [Sp, Signature, Domain, Digest, Deadline, Lane],
        Reading::DomainBeforeSp => [Signature, Domain, Sp, Digest, Deadline, Lane],
        Reading::DigestBeforeDomain => [Signature, Sp, Digest, Domain, Deadline, Lane],
        Reading::DeadlineBeforeDigest => [Signature, Sp, Domain, Deadline, Digest, Lane],
        _ => SPEC_ORDER,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Given {
    sp: Option<SpId>,
    domain: Option<Domain>,
    profile: Option<Profile>,
    header: Option<String>,
    receipt: J,
    verifier_domain: Option<Domain>,
}

fn given(case: &CaseInput) -> Result<Given, String> {
    let (group, _) = aep2_conformance::reference::as_vector(0, case)?;
    let ctx = &group.context;
    let sp = ctx
        .sp
        .as_deref()
        .map(SpId::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let domain = match &ctx.domain {
        Some(_) => Some(context_domain(ctx)?),
        None => None,
    };
    let profile = ctx
        .profile
        .as_deref()
        .map(Profile::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let verifier_domain = context_domain(ctx).ok();
    Ok(Given {
        sp,
        domain,
        profile,
        header: case.input.get("mandateHeader").and_then(J::as_str).map(str::to_owned),
        receipt: case.input.get("receipt").cloned().ok_or("input.receipt missing")?,
        verifier_domain,
    })
}

fn read_receipt(v: &J) -> Result<Result<Receipt, Error>, String> {
    let value = parse(&v.to_string(), &Limits::AEP2).map_err(|e| format!("receipt JSON: {e}"))?;
    Ok(Receipt::from_json(&value))
}

fn read_mandate(reading: Reading, g: &Given) -> Result<Option<Result<Verified, Error>>, String> {
    let Some(h) = &g.header else { return Ok(None) };
    let domain = g.verifier_domain.clone().ok_or("mandateHeader without a domain")?;
    let now = (reading == Reading::SystemClock).then(unix_now);
    Ok(Some(Verifier::new(domain).verify_header(h, now)))
}

fn refused(e: &Error) -> Answer {
    invalid(e.reason())
}

fn with_kind(mut a: Answer, r: &Receipt) -> Answer {
    a.intermediates.insert("receiptKind".into(), r.kind.as_str().into());
    a
}

fn verify(reading: Reading, case: &CaseInput) -> Result<Answer, String> {
    let g = given(case)?;
    let (mandate, receipt) = if reading == Reading::ReceiptBeforeMandate {
        let receipt = match read_receipt(&g.receipt)? {
            Ok(r) => r,
            Err(e) => return Ok(refused(&e)),
        };
        let mandate = match read_mandate(reading, &g)? {
            Some(Err(e)) => return Ok(refused(&e)),
            Some(Ok(v)) => Some(v),
            None => None,
        };
        (mandate, receipt)
    } else {
        let mandate = match read_mandate(reading, &g)? {
            Some(Err(e)) => return Ok(refused(&e)),
            Some(Ok(v)) => Some(v),
            None => None,
        };
        match read_receipt(&g.receipt)? {
            Ok(r) => (mandate, r),
            Err(e) => return Ok(refused(&e)),
        }
    };
    if reading == Reading::ProfileAtSchema
        && let (Some(claimed), Some(expected)) = (receipt.domain.as_ref().map(Domain::profile), g.profile)
        && claimed != expected
    {
        return Ok(with_kind(invalid(Reason::ProfileMismatch), &receipt));
    }
    for check in order(reading) {
        if let Err(e) = run(reading, check, &g, mandate.as_ref(), &receipt) {
            return Ok(with_kind(refused(&e), &receipt));
        }
    }
    Ok(with_kind(valid(), &receipt))
}

fn run(reading: Reading, check: Check, g: &Given, mandate: Option<&Verified>, r: &Receipt) -> Result<(), Error> {
    let absent_fails = reading == Reading::AbsentInputFails;
    match check {
        Check::Signature => {
            let over_expected = reading == Reading::SignedOverExpectedDomain
                && r.kind == ReceiptKind::Native
                && g.domain.as_ref().map(Domain::profile) == r.domain.as_ref().map(Domain::profile);
            if over_expected {
                let mut other = r.clone();
                other.domain.clone_from(&g.domain);
                other.verify(&ReceiptExpectations::default())
            } else if reading == Reading::LaneNotSigned && r.lane.is_some() {
                let mut other = r.clone();
                other.lane = None;
                other.verify(&ReceiptExpectations::default())
            } else {
                r.verify(&ReceiptExpectations::default())
            }
        }
        Check::Sp => match &g.sp {
            Some(expected) if *expected != r.sp => Err(Error::new(Reason::ReceiptSpMismatch, "another SP")),
            None if absent_fails => Err(Error::new(Reason::ReceiptSpMismatch, "no expected SP")),
            _ => Ok(()),
        },
        Check::Domain => match (&g.domain, &r.domain) {
            (Some(expected), Some(claimed)) if expected != claimed => {
                Err(Error::new(Reason::DomainMismatch, "another domain"))
            }
            _ => Ok(()),
        },
        Check::Digest => {
            let Some(v) = mandate else {
                return if absent_fails {
                    Err(Error::new(Reason::ReceiptDigestMismatch, "no mandate"))
                } else {
                    Ok(())
                };
            };
            let form_fits = match (r.kind, v.mandate().profile(), r.domain.as_ref().map(Domain::profile)) {
                (ReceiptKind::MvpEvm, Profile::Eip712, _) | (ReceiptKind::MvpSolana, Profile::SolanaMvp, _) => true,
                (ReceiptKind::Native, p, Some(q)) => p == q,
                _ => false,
            };
            if !form_fits && reading != Reading::FormNotChecked {
                return Err(Error::new(Reason::ReceiptDigestMismatch, "form of another profile"));
            }
            let want = match r.kind {
                ReceiptKind::Native => hex_encode_0x(&v.digest.id),
                _ => v.digest.display(),
            };
            if want == r.mandate_digest {
                Ok(())
            } else {
                Err(Error::new(Reason::ReceiptDigestMismatch, "another mandate"))
            }
        }
        Check::Deadline => {
            let Some(v) = mandate else { return Ok(()) };
            let deadline = v.mandate().deadline();
            let late = if reading == Reading::DeadlineExclusive {
                r.enqueue_deadline >= deadline
            } else {
                r.enqueue_deadline > deadline
            };
            if late {
                Err(Error::new(Reason::ReceiptDeadlineAfterMandate, "after the deadline"))
            } else {
                Ok(())
            }
        }
        Check::Lane => {
            let Some(leaf) = mandate.and_then(Verified::leaf_lane) else {
                return Ok(());
            };
            if reading == Reading::LaneNotCompared || r.lane.is_some_and(|l| l.id == leaf) {
                Ok(())
            } else {
                Err(Error::new(Reason::ReceiptLaneMismatch, "not the mandate's leaf lane"))
            }
        }
    }
}
