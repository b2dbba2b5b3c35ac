//! The settlement contract as an implementation under test: `--adapter evm` runs the suite's
//! `eip712` `verify_mandate` cases against `AEP2DebitWallet` executed on the embedded EVM
//! (`aep2-evm`), the executable proof that what settlement accepts is what the off-chain
//! verifier accepts.
//!
//! For each case a fresh chain with the context's chain id starts at the case's `now`
//! (at 0 when the case has none: verification without a time judges no expiry), the contract is
//! deployed and its code placed at the context's `verifyingContract`, and the mandate and the
//! signature bytes of the header are passed to `verifyMandate`.
//!
//! What the contract decides, and so what the adapter declares:
//! - the verdict and the reason code (`reasonCodes: true`): each of the contract's skip reasons
//!   names a spec code (`aep2_evm::contract::SkipReason::code`) and its checks run in the spec's
//!   stage order, so the codes are compared too;
//! - only headers that decode to ABI values: base64, JSON, the envelope and the mandate's schema
//!   are read off chain (the contract takes a `Mandate` struct and signature bytes), so a case
//!   whose header fails there, or whose signature text is not hex, is skipped, with the code;
//! - only envelopes the contract could be given: a native envelope that *claims* a domain other
//!   than the context's is refused off chain whatever its signature (verified over the claimed
//!   domain, then `domain_mismatch`), and the contract never sees the claim, so such a case is
//!   skipped too (`envelope/native-eip712/0014` is signed for the contract's own domain and
//!   claims another: invalid off chain, and the bare mandate and signature would settle);
//! - mandates under spending lanes go to `verifyLaneMandate` with their chain (spec
//!   `aep2.md#lane-onchain`), at the case's `now`; a case without a `now` runs at the latest
//!   `validFrom` of its chain (off chain, without a time, no link's window is compared with a
//!   clock, only the deadline with every `validUntil`), skipped when that is after the deadline (no
//!   block could settle it, while the verifier without a time accepts it). A link signature that is
//!   not hex is read off chain (`lane_signature_invalid` there): skipped;
//! - no funds, no nonce and no lane state: the fresh deployment holds nothing, so the contract
//!   reports `InsufficientFunds` exactly when every check of the mandate passed, which is `valid`
//!   (a lane's counters start at zero and the vectors' amounts are within every `total`).
//!
//! The `digest` output is the contract's `mandateDigest` (`laneMandateDigest` under lanes: the
//! `verifyLaneMandate` digest), compared with the vectors' digest.

use crate::protocol::{
    Capabilities, CaseInput, CaseResult, Errored, Implementation, PROTOCOL_VERSION, RunResponse, Skipped, StartResponse,
};
use aep2::codec::{hex_decode_0x, hex_encode_0x};
use aep2::{Domain, Mandate, Profile, Reason, SignedMandate};
use aep2_evm::contract::{self, SkipReason, Wallet, abi_mandate};
use aep2_evm::{Chain as _, Embedded, TxKey};
use aep2_vectors::check::context_domain;
use aep2_vectors::model::Context;
use alloy::primitives::{Address, Bytes};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

fn hello() -> StartResponse {
    StartResponse {
        version: PROTOCOL_VERSION,
        implementation: Implementation {
            name: "AEP2DebitWallet (aep2-evm, embedded EVM)".into(),
            language: "solidity".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            homepage: None,
            source: Some(env!("CARGO_PKG_REPOSITORY").into()),
            issues: None,
        },
        capabilities: Capabilities {
            kinds: vec!["verify_mandate".into()],
            profiles: vec!["eip712".into()],
            reason_codes: true,
        },
        error_map: BTreeMap::new(),
    }
}

enum Answer {
    Verdict(CaseResult),
    Skip(String),
}

async fn judge(case: &CaseInput) -> Result<Answer, String> {
    let context: Context = serde_json::from_value(case.context.clone()).map_err(|e| format!("context: {e}"))?;
    let Domain::Eip712(domain) = context_domain(&context)? else {
        return Err("an eip712 case without an eip712 domain".into());
    };
    let header = case
        .input
        .get("header")
        .and_then(|h| h.as_str())
        .ok_or("input.header missing")?;
    let sm = match SignedMandate::decode(header, Profile::Eip712) {
        Ok(sm) => sm,
        Err(e) if LANE_VALUE_CODES.contains(&e.reason()) => {
            // A lane whose JSON is well formed but whose values break a rule of spec §18.1, or a
            // chain of the wrong length: the contract checks these on ABI values.
            let Some(item) = lenient_lane_item(header) else {
                return Ok(Answer::Skip(format!(
                    "read off chain: the header does not decode to ABI values ({})",
                    e.code()
                )));
            };
            return decide_lane_values(&context, &domain, item).await;
        }
        Err(e) => {
            return Ok(Answer::Skip(format!(
                "read off chain: the header does not decode to ABI values ({})",
                e.code()
            )));
        }
    };
    let Mandate::Eip712(m) = &sm.mandate else {
        return Err("an eip712 header decoded to another profile".into());
    };
    if let Some(Domain::Eip712(claimed)) = &sm.domain
        && *claimed != domain
    {
        return Ok(Answer::Skip(
            "read off chain: the envelope claims another domain, which the contract never sees".into(),
        ));
    }
    let Some(signature) = hex_decode_0x(&sm.signature) else {
        return Ok(Answer::Skip(
            "read off chain: the signature text is not hex (signature_encoding)".into(),
        ));
    };
    let time = match (context.now, sm.lanes.iter().map(|l| l.lane.valid_from).max()) {
        (Some(now), _) => now,
        (None, None) => 0,
        (None, Some(from)) if from > m.deadline => {
            return Ok(Answer::Skip(
                "no time given and the chain's latest validFrom is after the deadline: no block could settle it".into(),
            ));
        }
        (None, Some(from)) => from,
    };
    let lane_item = if sm.lanes.is_empty() {
        None
    } else {
        match contract::lane_item(&sm) {
            Ok(it) => Some(it),
            Err(e) => {
                return Ok(Answer::Skip(format!(
                    "read off chain: a link's signature text is not hex ({} off chain: lane_signature_invalid)",
                    e.code()
                )));
            }
        }
    };
    let (chain, wallet) = deploy_at(&domain, time).await?;
    let (digest, reason) = match lane_item {
        Some(it) => wallet
            .verify_lane_mandate(&chain, it)
            .await
            .map_err(|e| format!("verifyLaneMandate: {e}"))?,
        None => wallet
            .verify(&chain, abi_mandate(m), Bytes::from(signature))
            .await
            .map_err(|e| format!("verifyMandate: {e}"))?,
    };
    let mut outputs = BTreeMap::new();
    outputs.insert("digest".to_owned(), hex_encode_0x(&digest.0));
    let code = match reason {
        SkipReason::None | SkipReason::InsufficientFunds => None,
        other => other.code().map(|r| r.code().to_owned()),
    };
    Ok(Answer::Verdict(CaseResult {
        verdict: if code.is_none() { "valid" } else { "invalid" }.into(),
        code,
        outputs,
    }))
}

/// The schema-stage codes of a lane's values that the contract decides (spec `aep2.md#lane-onchain`).
const LANE_VALUE_CODES: [Reason; 4] = [
    Reason::LaneInvalid,
    Reason::LaneDepthExceeded,
    Reason::AmountZero,
    Reason::UintOutOfRange,
];

/// Asks `verifyLaneMandate` about a lane item read without the lane value rules, at the case's
/// `now` (0 without one: the value rules come before any time is compared).
async fn decide_lane_values(
    context: &Context,
    domain: &aep2::Eip712Domain,
    item: contract::AEP2DebitWallet::LaneItem,
) -> Result<Answer, String> {
    let wallet = deploy_at(domain, context.now.unwrap_or(0)).await?;
    let (chain, wallet) = wallet;
    let (_, reason) = wallet
        .verify_lane_mandate(&chain, item)
        .await
        .map_err(|e| format!("verifyLaneMandate: {e}"))?;
    let code = match reason {
        SkipReason::None | SkipReason::InsufficientFunds => None,
        other => other.code().map(|r| r.code().to_owned()),
    };
    // The verifier reports no digest for a schema-stage fault, so none is given.
    Ok(Answer::Verdict(CaseResult {
        verdict: if code.is_none() { "valid" } else { "invalid" }.into(),
        code,
        outputs: BTreeMap::new(),
    }))
}

/// A fresh embedded chain at `time` with the contract's code at the domain's `verifyingContract`.
async fn deploy_at(domain: &aep2::Eip712Domain, time: u64) -> Result<(Embedded, Wallet), String> {
    let chain = Embedded::new(domain.chain_id, time);
    let deployer = TxKey::from_label("evm-adapter");
    let deployed = contract::deploy_wallet(&chain, &deployer, 3600)
        .await
        .map_err(|e| format!("deploying the contract: {e}"))?;
    let at = Address::from(domain.verifying_contract.0);
    chain.set_code(at, chain.code(deployed).await.map_err(|e| e.to_string())?);
    Ok((chain, Wallet { address: at }))
}

/// The lane item of an envelope whose mandate is well formed and whose lanes have every member
/// of its type and format, without the lane value rules (`lane_invalid`, zero amounts, integers
/// above 2^53 − 1) nor the chain's length; `None` when anything else is wrong (the verifier's
/// schema stage would name another fault first).
fn lenient_lane_item(header: &str) -> Option<contract::AEP2DebitWallet::LaneItem> {
    use aep2::json::{Object, Value};
    use alloy::primitives::{B256, U256};
    let Value::Object(envelope) = aep2::envelope::decode_header(header).ok()? else {
        return None;
    };
    let Some(Value::Array(links)) = envelope.get("lanes") else {
        return None;
    };
    let mut rest = Object::new();
    for (k, v) in envelope.iter().filter(|(k, _)| *k != "lanes") {
        rest.insert(k, v.clone());
    }
    let sm = SignedMandate::from_json(&Value::Object(rest), Profile::Eip712).ok()?;
    let Mandate::Eip712(m) = &sm.mandate else { return None };
    let signature = Bytes::from(hex_decode_0x(&sm.signature)?);
    let string = |v: Option<&Value>| match v {
        Some(Value::String(t)) => Some(t.clone()),
        _ => None,
    };
    let address = |v: Option<&Value>| aep2::EvmAddress::parse(&string(v)?).ok().map(|a| Address::from(a.0));
    let amount = |v: Option<&Value>| {
        aep2::U256::parse_decimal(&string(v)?)
            .ok()
            .map(|a| U256::from_be_bytes(a.0))
    };
    let integer = |v: Option<&Value>| match v {
        Some(Value::Number(t)) if !t.contains(['-', '.', 'e', 'E']) => {
            aep2::U256::parse_decimal(t).ok().map(|a| U256::from_be_bytes(a.0))
        }
        _ => None,
    };
    let word = |v: Option<&Value>| {
        let t = string(v)?;
        let lower = t.len() == 66 && t[2..].bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        let b = hex_decode_0x(&t).filter(|_| lower)?;
        Some(B256::from_slice(&b))
    };
    let mut lanes = Vec::with_capacity(links.len());
    for link in links {
        let Value::Object(link) = link else { return None };
        let Some(Value::Object(l)) = link.get("lane") else {
            return None;
        };
        let members_ok = link.iter().count() == 2
            && l.iter().count() == aep2::lane::LANE_FIELDS.len()
            && aep2::lane::LANE_FIELDS.iter().all(|f| l.get(f).is_some());
        if !members_ok {
            return None;
        }
        let payees = match l.get("payees") {
            Some(Value::Array(p)) => p.iter().map(|x| address(Some(x))).collect::<Option<Vec<_>>>()?,
            _ => return None,
        };
        lanes.push(contract::AEP2DebitWallet::SignedLane {
            lane: contract::AEP2DebitWallet::Lane {
                owner: address(l.get("owner"))?,
                agent: address(l.get("agent"))?,
                token: address(l.get("token"))?,
                perPayment: amount(l.get("perPayment"))?,
                total: amount(l.get("total"))?,
                maxPayments: integer(l.get("maxPayments"))?,
                period: integer(l.get("period"))?,
                allowance: amount(l.get("allowance"))?,
                payees,
                validFrom: integer(l.get("validFrom"))?,
                validUntil: integer(l.get("validUntil"))?,
                purpose: string(l.get("purpose"))?,
                parent: word(l.get("parent"))?,
                salt: word(l.get("salt"))?,
            },
            signature: Bytes::from(hex_decode_0x(&string(link.get("signature"))?)?),
        });
    }
    Some(contract::AEP2DebitWallet::LaneItem {
        mandate: abi_mandate(m),
        signature,
        lanes,
    })
}

fn respond(rt: &tokio::runtime::Runtime, seq: u64, case: &CaseInput) -> RunResponse {
    let mut response = RunResponse {
        seq: serde_json::Value::from(seq),
        result: None,
        skipped: None,
        errored: None,
    };
    match rt.block_on(judge(case)) {
        Ok(Answer::Verdict(r)) => response.result = Some(r),
        Ok(Answer::Skip(reason)) => {
            response.skipped = Some(Skipped {
                reason,
                issue_url: None,
            });
        }
        Err(message) => response.errored = Some(Errored { message, context: None }),
    }
    response
}

/// Speaks the protocol on `input` / `output` until `stop` or end of input.
pub fn serve(input: impl BufRead, out: impl Write) -> ExitCode {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        eprintln!("aep2-evm-adapter: no runtime");
        return ExitCode::FAILURE;
    };
    crate::protocol::serve_adapter("aep2-evm-adapter", input, out, &hello(), |seq, case| {
        respond(&rt, seq, case)
    })
}
