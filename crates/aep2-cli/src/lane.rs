//! `aep2 lane`: spending lanes from the command line (spec `aep2.md#lanes`).
//!
//! A **lane file** is what `aep2 lane grant` prints: the signed lane with its id, its domain and
//! its ancestors, `{"id", "profile", "domain", "lane", "signature", "parents": [<signed lane>, …]}`,
//! root first. `--parent` and `aep2 sign --lane` read it back; a bare JSON array of signed lanes
//! (a chain, root first) is read too. `aep2 lane revoke` and `aep2 lane status` ask a settlement
//! processor about the lane of a file (spec `aep2.md#lane-settlement`).

use crate::{DomainArgs, Outcome, now_or_clock, payer_key, print, random32, read_arg};
use aep2::codec::{hex_decode_0x, hex_encode_0x};
use aep2::json::{Limits, Value, parse, to_compact};
use aep2::lane::{Lane, LaneRevocation, SignedLane, sign_lane};
use aep2::{AccountId, Domain, Profile, U256};
use clap::{Args, Subcommand};
use serde_json::json;
use std::process::ExitCode;

/// `aep2 lane …`
#[derive(Subcommand)]
pub(crate) enum LaneCmd {
    /// Grant a lane (signed by the owner) or, with --parent, a sub-lane (signed by the parent
    /// lane's agent) and print the lane file: {id, profile, domain, lane, signature, parents}. A lane
    /// every verifier would reject (a sub-lane wider than its parent, a key that is not the
    /// grantor's) is refused: exit 1 with {code, message}.
    Grant(Box<LaneGrantArgs>),
    /// Revoke the lane of a lane file at a settlement processor, signed with the key of its
    /// grantor or of an ancestor's grantor (the owner, or the agent of a link above it): prints the
    /// SP's answer {success, lane, revoked, revokedAt}. A refusal exits 1 with {code, message}.
    Revoke(LaneRevokeArgs),
    /// What a settlement processor has counted against the lane of a lane file: {id, spent,
    /// remaining, payments, revoked, known, …}; a lane it has not seen is reported with nothing
    /// spent ("known": false).
    Status(LaneStatusArgs),
}

/// `aep2 lane revoke`
#[derive(Args)]
pub(crate) struct LaneRevokeArgs {
    /// The settlement processor's base URL.
    #[arg(long)]
    sp_url: String,
    /// The revoker's key (0x + 64 hex): the owner's, or the agent's of a lane above this one.
    #[arg(long)]
    key: String,
    /// The lane file (@FILE, inline JSON or -) of the lane to revoke.
    #[arg(long)]
    lane: String,
    /// The revocation's issuedAt (default: now).
    #[arg(long)]
    now: Option<u64>,
}

/// `aep2 lane status`
#[derive(Args)]
pub(crate) struct LaneStatusArgs {
    /// The settlement processor's base URL.
    #[arg(long)]
    sp_url: String,
    /// The lane file (@FILE, inline JSON or -).
    #[arg(long)]
    lane: String,
}

/// `aep2 lane grant`
#[derive(Args)]
pub(crate) struct LaneGrantArgs {
    #[command(flatten)]
    domain: DomainArgs,
    /// The grantor's key (0x + 64 hex): the owner's for a root lane, the parent lane's agent's
    /// with --parent.
    #[arg(long)]
    key: String,
    /// Who may sign under the lane (EVM address for eip712, base58 key for ed25519).
    #[arg(long)]
    agent: String,
    /// The lane's only asset (token address or mint).
    #[arg(long)]
    asset: String,
    /// The most one payment may debit (base units).
    #[arg(long)]
    per_payment: String,
    /// The most all payments under the lane may debit together (base units).
    #[arg(long)]
    total: String,
    /// The last unix second the lane may be used (and the latest deadline under it).
    #[arg(long)]
    valid_until: u64,
    /// The first unix second it may be used (default: now, or the parent's if later).
    #[arg(long)]
    valid_from: Option<u64>,
    /// A payee the lane may pay; repeat for more (default: any; under a parent: the parent's).
    #[arg(long = "payee")]
    payees: Vec<String>,
    /// The most payments (default: no limit; under a parent: the parent's).
    #[arg(long)]
    max_payments: Option<u64>,
    /// Seconds of the periodic allowance window (with --allowance; default: none, or the parent's).
    #[arg(long, requires = "allowance")]
    period: Option<u64>,
    /// The most debited per window (base units; with --period).
    #[arg(long, requires = "period")]
    allowance: Option<String>,
    /// A label shown in every record of a payment under the lane (at most 128 bytes).
    #[arg(long, default_value = "")]
    purpose: String,
    /// The parent lane file (@FILE, inline JSON or -): grants a sub-lane of it.
    #[arg(long)]
    parent: Option<String>,
    /// The salt (0x + 64 hex; default: random).
    #[arg(long)]
    salt: Option<String>,
}

fn account(profile: Profile, what: &str, text: &str) -> Result<AccountId, String> {
    let id = AccountId::parse(text).map_err(|e| format!("--{what}: {e}"))?;
    if matches!(id, AccountId::Evm(_)) != (profile == Profile::Eip712) {
        return Err(format!("--{what}: not an account of profile {profile}"));
    }
    Ok(id)
}

fn amount(what: &str, text: &str) -> Result<U256, String> {
    U256::parse_decimal(text).map_err(|e| format!("--{what}: {e}"))
}

/// Reads a lane file (or a bare chain) as the chain it ends, root first.
pub(crate) fn load_chain(arg: &str, profile: Profile) -> Result<Vec<SignedLane>, String> {
    let text = read_arg(arg)?;
    let v = parse(&text, &Limits::AEP2).map_err(|e| format!("{arg}: {e}"))?;
    chain_of(arg, &v, profile)
}

/// A lane file with its own `profile` and `domain`: the domain and the chain, root first.
fn load_file(arg: &str) -> Result<(Domain, Vec<SignedLane>), String> {
    let text = read_arg(arg)?;
    let v = parse(&text, &Limits::AEP2).map_err(|e| format!("{arg}: {e}"))?;
    let Value::Object(o) = &v else {
        return Err(format!("{arg}: not a lane file"));
    };
    let profile = match o.get("profile") {
        Some(Value::String(p)) => Profile::parse(p).map_err(|e| format!("{arg}: profile: {e}"))?,
        _ => return Err(format!("{arg}: a lane file has a \"profile\"")),
    };
    let domain = o
        .get("domain")
        .ok_or_else(|| format!("{arg}: no \"domain\" (a lane file of aep2 lane grant has one)"))
        .and_then(|d| Domain::from_json(profile, d).map_err(|e| format!("{arg}: domain: {e}")))?;
    Ok((domain, chain_of(arg, &v, profile)?))
}

fn chain_of(arg: &str, v: &Value, profile: Profile) -> Result<Vec<SignedLane>, String> {
    let items: Vec<Value> = match v {
        Value::Array(items) => items.clone(),
        Value::Object(o) => {
            let mut items = match o.get("parents") {
                Some(Value::Array(p)) => p.clone(),
                None => Vec::new(),
                Some(_) => return Err(format!("{arg}: \"parents\" must be an array")),
            };
            let (Some(lane), Some(sig)) = (o.get("lane"), o.get("signature")) else {
                return Err(format!("{arg}: a lane file has \"lane\" and \"signature\""));
            };
            items.push(Value::Object(
                aep2::json::Object::new()
                    .with("lane", lane.clone())
                    .with("signature", sig.clone()),
            ));
            items
        }
        _ => return Err(format!("{arg}: not a lane file")),
    };
    items
        .iter()
        .map(|i| SignedLane::from_json(profile, i).map_err(|e| format!("{arg}: {e}")))
        .collect()
}

/// The lane file of the last link of `chain`.
fn lane_file(chain: &[SignedLane], domain: &Domain) -> Result<serde_json::Value, String> {
    let Some((leaf, parents)) = chain.split_last() else {
        return Err("empty chain".into());
    };
    let to_serde = |v: &Value| serde_json::from_str::<serde_json::Value>(&to_compact(v)).map_err(|e| e.to_string());
    let id = leaf.lane.digest(domain).map_err(|e| e.to_string())?.id;
    Ok(json!({
        "id": hex_encode_0x(&id),
        "profile": domain.profile().as_str(),
        "domain": domain.to_json().map(|d| to_serde(&Value::Object(d))).transpose()?,
        "lane": to_serde(&Value::Object(leaf.lane.to_json()))?,
        "signature": leaf.signature,
        "parents": parents.iter().map(|p| to_serde(&p.to_json())).collect::<Result<Vec<_>, _>>()?,
    }))
}

fn refuse(e: &aep2::Error) -> Outcome {
    print(&json!({ "code": e.code(), "stage": e.stage().as_str(), "message": e.to_string() }));
    Ok(ExitCode::from(1))
}

pub(crate) fn run(cmd: &LaneCmd) -> Outcome {
    match cmd {
        LaneCmd::Grant(a) => grant(a),
        LaneCmd::Revoke(a) => revoke(a),
        LaneCmd::Status(a) => status(a),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}

/// The SP's answer, or the refusal printed as `{code, stage, message}` (exit 1); an SP that
/// cannot be reached or answers out of protocol is a usage error (exit 2).
fn answer(r: Result<serde_json::Value, aep2_sp::SpClientError>) -> Result<Result<serde_json::Value, ExitCode>, String> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(aep2_sp::SpClientError::Rejected { error, .. }) => Ok(Err(refuse(&error)?)),
        Err(e) => Err(format!("--sp-url: {e}")),
    }
}

fn revoke(a: &LaneRevokeArgs) -> Outcome {
    let (domain, chain) = load_file(&a.lane)?;
    let key = payer_key(domain.profile(), &a.key)?;
    let leaf = chain.last().ok_or("the lane file has no lane")?;
    let id = leaf.lane.digest(&domain).map_err(|e| e.to_string())?.id;
    let revocation = match LaneRevocation::sign(&domain, id, now_or_clock(a.now), &key) {
        Ok(r) => r,
        Err(e) => return refuse(&e),
    };
    let body = Value::Object(
        aep2::json::Object::new()
            .with("revocation", revocation.to_json())
            .with("lanes", Value::Array(chain.iter().map(SignedLane::to_json).collect())),
    );
    let client = aep2_sp::SpClient::new(&a.sp_url).map_err(|e| format!("--sp-url: {e}"))?;
    let r = runtime()?.block_on(client.revoke_lane(&to_compact(&body)));
    match answer(r)? {
        Ok(v) => {
            print(&v);
            Ok(ExitCode::SUCCESS)
        }
        Err(code) => Ok(code),
    }
}

fn status(a: &LaneStatusArgs) -> Outcome {
    let (domain, chain) = load_file(&a.lane)?;
    let leaf = chain.last().ok_or("the lane file has no lane")?;
    let id = hex_encode_0x(&leaf.lane.digest(&domain).map_err(|e| e.to_string())?.id);
    let client = aep2_sp::SpClient::new(&a.sp_url).map_err(|e| format!("--sp-url: {e}"))?;
    match runtime()?.block_on(client.lane(&id)) {
        Ok(v) => {
            let mut lane = v.get("lane").cloned().unwrap_or(serde_json::Value::Null);
            if let Some(o) = lane.as_object_mut() {
                o.insert("known".into(), json!(true));
            }
            print(&lane);
            Ok(ExitCode::SUCCESS)
        }
        // Not seen by the SP: nothing spent; what remains is the least total of the chain.
        Err(aep2_sp::SpClientError::Rejected { error, .. }) if error.reason() == aep2::Reason::LaneUnknown => {
            let remaining = chain.iter().map(|l| l.lane.total).min().unwrap_or(U256::ZERO);
            print(&json!({
                "id": id,
                "spent": "0",
                "remaining": remaining.to_string(),
                "payments": 0,
                "revoked": false,
                "known": false,
            }));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => match answer(Err(e))? {
            Ok(_) => Ok(ExitCode::SUCCESS),
            Err(code) => Ok(code),
        },
    }
}

fn grant(a: &LaneGrantArgs) -> Outcome {
    let domain = a.domain.domain()?;
    let profile = domain.profile();
    if profile == Profile::SolanaMvp {
        return Err("solana-mvp has no lanes".into());
    }
    let key = payer_key(profile, &a.key)?;
    let parents = match &a.parent {
        Some(p) => load_chain(p, profile)?,
        None => Vec::new(),
    };
    if parents.len() >= aep2::lane::MAX_LANE_DEPTH {
        return refuse(&aep2::Error::new(
            aep2::Reason::LaneDepthExceeded,
            format!(
                "the parent's chain has {} links already, at most {}",
                parents.len(),
                aep2::lane::MAX_LANE_DEPTH
            ),
        ));
    }
    let parent = parents.last();
    let now = now_or_clock(None);
    let salt = match &a.salt {
        Some(s) => hex_decode_0x(s)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or("--salt must be 0x followed by 64 hex digits")?,
        None => random32()?,
    };
    let payees = a
        .payees
        .iter()
        .map(|p| account(profile, "payee", p))
        .collect::<Result<Vec<_>, _>>()?;
    let (period, allowance) = match (a.period, &a.allowance) {
        (Some(p), Some(x)) => (p, amount("allowance", x)?),
        _ => parent.map_or((0, U256::ZERO), |p| (p.lane.period, p.lane.allowance)),
    };
    let lane = Lane {
        profile,
        owner: match parent {
            Some(p) => p.lane.owner,
            None => AccountId::parse(&key.signer()).map_err(|e| e.to_string())?,
        },
        agent: account(profile, "agent", &a.agent)?,
        token: account(profile, "asset", &a.asset)?,
        per_payment: amount("per-payment", &a.per_payment)?,
        total: amount("total", &a.total)?,
        max_payments: a.max_payments.unwrap_or(parent.map_or(0, |p| p.lane.max_payments)),
        period,
        allowance,
        payees: if payees.is_empty() {
            parent.map_or_else(Vec::new, |p| p.lane.payees.clone())
        } else {
            payees
        },
        valid_from: a
            .valid_from
            .unwrap_or_else(|| parent.map_or(now, |p| now.max(p.lane.valid_from))),
        valid_until: a.valid_until,
        purpose: a.purpose.clone(),
        parent: match parent {
            Some(p) => p.lane.digest(&domain).map_err(|e| e.to_string())?.id,
            None => [0; 32],
        },
        salt,
    };
    let signed = match sign_lane(&lane, parent, &domain, &key) {
        Ok(s) => s,
        Err(e) => return refuse(&e),
    };
    let mut chain = parents;
    chain.push(signed);
    print(&lane_file(&chain, &domain)?);
    Ok(ExitCode::SUCCESS)
}
