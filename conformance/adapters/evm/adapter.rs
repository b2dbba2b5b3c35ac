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
//! - no mandate under spending lanes: the contract of this version does not settle them (spec
//!   `aep2.md#lane-settlement`), so such a case is skipped;
//! - no funds and no nonce state: the fresh deployment holds nothing, so the contract reports
//!   `InsufficientFunds` exactly when every check of the mandate passed, which is `valid`.
//!
//! The `digest` output is the contract's `mandateDigest`, compared with the vectors' digest.

use crate::protocol::{
    Capabilities, CaseInput, CaseResult, Errored, Implementation, PROTOCOL_VERSION, RunResponse, Skipped, StartResponse,
};
use aep2::codec::{hex_decode_0x, hex_encode_0x};
use aep2::{Domain, Mandate, Profile, SignedMandate};
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
    if !sm.lanes.is_empty() {
        // The contract of this version settles no lane mandate (spec `aep2.md#lane-settlement`).
        return Ok(Answer::Skip(
            "a mandate under spending lanes: this contract version does not settle lane mandates".into(),
        ));
    }
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
    let chain = Embedded::new(domain.chain_id, context.now.unwrap_or(0));
    let deployer = TxKey::from_label("evm-adapter");
    let deployed = contract::deploy_wallet(&chain, &deployer, 3600)
        .await
        .map_err(|e| format!("deploying the contract: {e}"))?;
    let at = Address::from(domain.verifying_contract.0);
    chain.set_code(at, chain.code(deployed).await.map_err(|e| e.to_string())?);
    let wallet = Wallet { address: at };
    let (digest, reason) = wallet
        .verify(&chain, abi_mandate(m), Bytes::from(signature))
        .await
        .map_err(|e| format!("verifyMandate: {e}"))?;
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
