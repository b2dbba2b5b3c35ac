//! `probe sp`'s spending-lane checks (spec `conformance.md#probe-sp`, `aep2.md#lane-settlement`):
//! the cumulative total across two payees, a sub-lane's spend counted on its parent, revocation
//! (by an ancestor's grantor, covering the lanes under it, idempotent; refused from the lane's
//! own agent), and the periodic allowance at a window boundary. The probe's payer is the owner;
//! its agents get fresh keys every run. An SP that refuses lane mandates with
//! `lanes_unsupported` conforms too: the checks are then skipped.

use super::{Probe, check_enqueued};
use crate::probe::http::{HttpError, Request, Response};
use crate::probe::{Cases, Outcome, Signed, Terms, Want, fresh_nonce, got_of, mandate_of, served};
use aep2::lane::LaneRevocation;
use aep2::{
    AccountId, Base58Key, EnvelopeForm, EvmAddress, Lane, PayerKey, Reason, SignedLane, SpId, U256, sign_lane,
    sign_lane_mandate,
};
use serde_json::Value as J;
use std::time::{Duration, Instant};

/// The lane checks, in run order.
pub(super) const LANE_CHECKS: [&str; 4] = ["lane-cumulative", "lane-ancestor", "lane-revocation", "lane-period"];

/// The allowance window of `lane-period`, in seconds: short, so the probe waits little.
const PERIOD: u64 = 4;

/// A fresh key of the payer's kind.
fn fresh_key(like: &PayerKey) -> Result<PayerKey, String> {
    let seed = aep2::hash::sha256(format!("aep2-probe-agent {}", fresh_nonce()).as_bytes());
    Ok(match like {
        PayerKey::Secp256k1(_) => {
            PayerKey::Secp256k1(aep2::crypto::secp256k1::SecretKey::from_bytes(&seed).ok_or("no agent key")?)
        }
        PayerKey::Ed25519(_) => PayerKey::Ed25519(seed),
    })
}

fn account_of(key: &PayerKey) -> Result<AccountId, String> {
    AccountId::parse(&key.signer()).map_err(|e| e.to_string())
}

/// A second payee, distinct from the probe's.
fn other_payee(p: &AccountId) -> AccountId {
    match p {
        AccountId::Evm(a) => {
            let mut b = a.0;
            b[19] ^= 0x5a;
            AccountId::Evm(EvmAddress(b))
        }
        AccountId::Base58(k) => {
            let mut b = k.0;
            b[31] ^= 0x5a;
            AccountId::Base58(Base58Key(b))
        }
    }
}

impl Probe<'_> {
    /// A lane of the probe's asset granted to `agent`: `per` per payment, `total` in all.
    fn lane(&self, agent: &PayerKey, per: U256, total: U256, window: u64) -> Result<Lane, String> {
        let now = crate::probe::unix_now();
        Ok(Lane {
            profile: self.domain.profile(),
            owner: account_of(&self.p.key)?,
            agent: account_of(agent)?,
            token: self.p.asset,
            per_payment: per,
            total,
            max_payments: 0,
            period: 0,
            allowance: U256::ZERO,
            payees: vec![],
            valid_from: now.saturating_sub(60),
            valid_until: now + window + 3600,
            purpose: "aep2 conformance probe".into(),
            parent: [0; 32],
            salt: aep2::hash::sha256(format!("aep2-probe-lane {}", fresh_nonce()).as_bytes()),
        })
    }

    fn grant(&self, lane: &Lane, parent: Option<&SignedLane>, grantor: &PayerKey) -> Result<SignedLane, String> {
        sign_lane(lane, parent, &self.domain, grantor).map_err(|e| format!("granting a lane: {e}"))
    }

    fn sub(&self, parent: &SignedLane, agent: &PayerKey, total: U256) -> Result<Lane, String> {
        Ok(Lane {
            agent: account_of(agent)?,
            total,
            parent: parent.lane.digest(&self.domain).map_err(|e| e.to_string())?.id,
            salt: aep2::hash::sha256(format!("aep2-probe-sub-lane {}", fresh_nonce()).as_bytes()),
            ..parent.lane.clone()
        })
    }

    /// A mandate of the probe's amount to `payee`, signed by `agent` under `chain`.
    fn under(&self, agent: &PayerKey, chain: &[SignedLane], payee: AccountId, window: u64) -> Result<Signed, String> {
        let t = Terms {
            payee,
            ..self.terms(window)
        };
        let mandate = mandate_of(&self.p.key, &self.domain, &t)?;
        let (envelope, digest) = sign_lane_mandate(&mandate, &self.domain, agent, EnvelopeForm::Native, chain)
            .map_err(|e| format!("signing under the lane: {e}"))?;
        Ok(Signed {
            envelope,
            digest,
            domain: self.domain.clone(),
        })
    }

    fn revoke(&self, revoker: &PayerKey, chain: &[SignedLane]) -> Result<Result<Response, HttpError>, String> {
        let leaf = chain.last().ok_or("no lane")?;
        let id = leaf.lane.digest(&self.domain).map_err(|e| e.to_string())?.id;
        let r = LaneRevocation::sign(&self.domain, id, crate::probe::unix_now(), revoker)
            .map_err(|e| format!("signing the revocation: {e}"))?;
        let body = aep2::json::Object::new().with("revocation", r.to_json()).with(
            "lanes",
            aep2::json::Value::Array(chain.iter().map(SignedLane::to_json).collect()),
        );
        let req = Request::new("POST")
            .header("Content-Type", "application/json")
            .body(aep2::json::to_compact(&aep2::json::Value::Object(body)));
        Ok(crate::probe::http::send(
            &self.base.with_path("/v1/lanes/revoke"),
            &req,
            self.p.timeout,
        ))
    }

    /// `GET /v1/lanes/{id}`'s `lane` object.
    fn lane_status(&self, lane: &SignedLane) -> Result<J, String> {
        let id = lane.lane.digest(&self.domain).map_err(|e| e.to_string())?.id;
        let r = self
            .get(&format!("/v1/lanes/{}", aep2::codec::hex_encode_0x(&id)))
            .map_err(|e| e.to_string())?;
        let v: J = serde_json::from_slice(&r.body).map_err(|e| format!("lane status is not JSON: {e}"))?;
        v.get("lane")
            .cloned()
            .ok_or_else(|| format!("lane status {}: {}", r.status, r.excerpt()))
    }
}

/// One step of a check: an enqueue that must be accepted (`None`) or refused with a code.
struct Step<'a> {
    what: &'a str,
    signed: Signed,
    refused: Option<Reason>,
}

/// Runs `steps` in order; the first that does not behave fails the check.
fn run(probe: &Probe<'_>, sp: &SpId, steps: Vec<Step<'_>>) -> Result<Option<J>, Outcome> {
    let mut last = None;
    for s in steps {
        let answer = probe.enqueue(&s.signed);
        last = Some(got_of(&answer));
        let outcome = match (s.refused, &answer) {
            (_, Err(e)) => Some(Outcome::no_answer(e, s.what)),
            (None, Ok(r)) => check_enqueued(r, &s.signed, sp)
                .err()
                .map(|e| Outcome::failed(last.clone(), format!("{}: {e}", s.what))),
            (Some(code), _) => {
                let o = crate::probe::judge_refusal(&answer, Want::Code(code));
                (o.status != crate::report::Status::Passed)
                    .then(|| Outcome::failed(last.clone(), format!("{}: {}", s.what, o.message)))
            }
        };
        if let Some(o) = outcome {
            return Err(o);
        }
    }
    Ok(last)
}

fn lanes_unsupported(answer: &Result<Response, HttpError>) -> bool {
    matches!(answer, Ok(r) if crate::probe::reason_of(r).as_deref() == Some("lanes_unsupported"))
}

/// Records the four lane checks.
pub(super) fn lane_checks(probe: &Probe<'_>, sp: &SpId, window: u64, cases: &mut Cases) {
    let amount = probe.p.amount;
    let times = |n: u64| -> Option<U256> {
        let a = amount.to_u64()?;
        a.checked_mul(n).map(U256::from_u64)
    };
    let refs = ["aep2.md#lane-settlement", "aep2.md#sp-enqueue"];
    let (Some(two), Some(three)) = (times(2), times(3)) else {
        for name in LANE_CHECKS {
            cases.record(
                name,
                &refs,
                served(),
                Instant::now(),
                Outcome::skipped("--amount is too large to multiply"),
            );
        }
        return;
    };
    let payee_b = other_payee(&probe.p.payee);

    // lane-cumulative: a lane of total 2·amount pays two payees, then refuses a third payment.
    let t = Instant::now();
    let result = (|| -> Result<Result<Option<J>, Outcome>, String> {
        let agent = fresh_key(&probe.p.key)?;
        let root = probe.grant(&probe.lane(&agent, amount, two, window)?, None, &probe.p.key)?;
        let chain = [root];
        let first = probe.under(&agent, &chain, probe.p.payee, window)?;
        let answer = probe.enqueue(&first);
        if lanes_unsupported(&answer) {
            return Err("lanes_unsupported".into());
        }
        if let Err(o) = run_answer(&answer, &first, sp, "the first payment under the lane") {
            return Ok(Err(o));
        }
        Ok(run(
            probe,
            sp,
            vec![
                Step {
                    what: "a payment to a second payee",
                    signed: probe.under(&agent, &chain, payee_b, window)?,
                    refused: None,
                },
                Step {
                    what: "a third payment, over the total",
                    signed: probe.under(&agent, &chain, probe.p.payee, window)?,
                    refused: Some(Reason::LaneTotalExceeded),
                },
            ],
        ))
    })();
    let unsupported = matches!(&result, Err(e) if e == "lanes_unsupported");
    if unsupported {
        for name in LANE_CHECKS {
            cases.record(
                name,
                &refs,
                served(),
                t,
                Outcome::skipped("the SP refuses lane mandates with lanes_unsupported (it does not enforce lanes)"),
            );
        }
        return;
    }
    cases.record(
        "lane-cumulative",
        &refs,
        served(),
        t,
        conclude(
            result,
            "two payees paid under one lane, the third payment over its total refused",
        ),
    );

    // lane-ancestor: a sub-lane with room left is refused once its parent's total is spent.
    let t = Instant::now();
    let result = (|| -> Result<Result<Option<J>, Outcome>, String> {
        let agent = fresh_key(&probe.p.key)?;
        let sub_agent = fresh_key(&probe.p.key)?;
        let root = probe.grant(&probe.lane(&agent, amount, two, window)?, None, &probe.p.key)?;
        let sub = probe.grant(&probe.sub(&root, &sub_agent, two)?, Some(&root), &agent)?;
        let (top, both) = ([root.clone()], [root, sub]);
        Ok(run(
            probe,
            sp,
            vec![
                Step {
                    what: "the agent's payment",
                    signed: probe.under(&agent, &top, probe.p.payee, window)?,
                    refused: None,
                },
                Step {
                    what: "the sub-agent's payment",
                    signed: probe.under(&sub_agent, &both, payee_b, window)?,
                    refused: None,
                },
                Step {
                    what: "the sub-agent's second payment, over the parent's total",
                    signed: probe.under(&sub_agent, &both, probe.p.payee, window)?,
                    refused: Some(Reason::LaneTotalExceeded),
                },
            ],
        ))
    })();
    cases.record(
        "lane-ancestor",
        &refs,
        served(),
        t,
        conclude(
            result,
            "the sub-lane's spend counted on its parent: refused at the parent's total",
        ),
    );

    // lane-revocation: the lane's own agent may not revoke it; the owner revokes the root, and the
    // sub-lane under it is refused; revoking again answers the first time.
    let t = Instant::now();
    let result = (|| -> Result<Result<Option<J>, Outcome>, String> {
        let agent = fresh_key(&probe.p.key)?;
        let sub_agent = fresh_key(&probe.p.key)?;
        let root = probe.grant(&probe.lane(&agent, amount, three, window)?, None, &probe.p.key)?;
        let sub = probe.grant(&probe.sub(&root, &sub_agent, two)?, Some(&root), &agent)?;
        let both = [root.clone(), sub.clone()];
        if let Err(o) = run(
            probe,
            sp,
            vec![Step {
                what: "the sub-agent's payment before the revocation",
                signed: probe.under(&sub_agent, &both, probe.p.payee, window)?,
                refused: None,
            }],
        ) {
            return Ok(Err(o));
        }
        let own = probe.revoke(&sub_agent, &both)?;
        let o = crate::probe::judge_refusal(&own, Want::Code(Reason::LaneRevokerInvalid));
        if o.status != crate::report::Status::Passed {
            return Ok(Err(Outcome::failed(
                Some(got_of(&own)),
                format!("the sub-lane's own agent revoking it: {}", o.message),
            )));
        }
        let first = probe.revoke(&probe.p.key, std::slice::from_ref(&root))?;
        let at = revoked_at(&first);
        let Some(at) = at else {
            return Ok(Err(Outcome::failed(
                Some(got_of(&first)),
                "the owner's revocation of the root lane: want 200 with revoked true and revokedAt",
            )));
        };
        let again = probe.revoke(&probe.p.key, std::slice::from_ref(&root))?;
        if revoked_at(&again) != Some(at) {
            return Ok(Err(Outcome::failed(
                Some(got_of(&again)),
                format!("revoking again: want 200 with the first revokedAt {at}"),
            )));
        }
        let status = probe.lane_status(&sub)?;
        if status.get("revoked") != Some(&J::Bool(true)) {
            return Ok(Err(Outcome::failed(
                Some(status),
                "GET /v1/lanes/{sub-lane}: want revoked true under a revoked parent",
            )));
        }
        Ok(run(
            probe,
            sp,
            vec![Step {
                what: "the sub-agent's payment after its parent was revoked",
                signed: probe.under(&sub_agent, &both, probe.p.payee, window)?,
                refused: Some(Reason::LaneRevoked),
            }],
        ))
    })();
    cases.record(
        "lane-revocation",
        &["aep2.md#lane-settlement", "aep2.md#sp-enqueue"],
        served(),
        t,
        conclude(
            result,
            "refused from the lane's own agent; the owner's revocation covers the sub-lane at once and is idempotent",
        ),
    );

    // lane-period: an allowance of one payment per PERIOD seconds, spent, refused in the same
    // window, available again in the next.
    let t = Instant::now();
    let result = (|| -> Result<Result<Option<J>, Outcome>, String> {
        let agent = fresh_key(&probe.p.key)?;
        let mut lane = probe.lane(&agent, amount, three, window)?;
        // Valid for a minute already (an SP may want validFrom a clock skew behind it), and the
        // next window boundary 3 s away, so that two payments fit before it.
        let now = crate::probe::unix_now();
        lane.valid_from = now.saturating_sub(15 * PERIOD + PERIOD - 3);
        lane.period = PERIOD;
        lane.allowance = amount;
        let root = probe.grant(&lane, None, &probe.p.key)?;
        let chain = [root.clone()];
        if let Err(o) = run(
            probe,
            sp,
            vec![
                Step {
                    what: "the window's payment",
                    signed: probe.under(&agent, &chain, probe.p.payee, window)?,
                    refused: None,
                },
                Step {
                    what: "a second payment in the same window",
                    signed: probe.under(&agent, &chain, probe.p.payee, window)?,
                    refused: Some(Reason::LanePeriodExceeded),
                },
            ],
        ) {
            return Ok(Err(o));
        }
        let boundary = lane.valid_from + 16 * PERIOD;
        let wait = boundary.saturating_sub(crate::probe::unix_now()) + 1;
        std::thread::sleep(Duration::from_secs(wait));
        Ok(run(
            probe,
            sp,
            vec![Step {
                what: "a payment in the next window",
                signed: probe.under(&agent, &chain, probe.p.payee, window)?,
                refused: None,
            }],
        ))
    })();
    cases.record(
        "lane-period",
        &refs,
        served(),
        t,
        conclude(
            result,
            "the allowance refused within a window and renewed at its boundary",
        ),
    );
}

fn run_answer(answer: &Result<Response, HttpError>, s: &Signed, sp: &SpId, what: &str) -> Result<(), Outcome> {
    match answer {
        Err(e) => Err(Outcome::no_answer(e, what)),
        Ok(r) => check_enqueued(r, s, sp)
            .map(|_| ())
            .map_err(|e| Outcome::failed(Some(got_of(answer)), format!("{what}: {e}"))),
    }
}

fn revoked_at(answer: &Result<Response, HttpError>) -> Option<u64> {
    let r = answer.as_ref().ok().filter(|r| r.status == 200)?;
    let v: J = serde_json::from_slice(&r.body).ok()?;
    (v.get("revoked") == Some(&J::Bool(true)))
        .then(|| v.get("revokedAt").and_then(J::as_u64))
        .flatten()
}

fn conclude(result: Result<Result<Option<J>, Outcome>, String>, passed: &str) -> Outcome {
    match result {
        Ok(Ok(last)) => Outcome::passed(last, passed),
        Ok(Err(o)) => o,
        Err(e) => Outcome::failed(None, e),
    }
}
