//! Checks the peer-signed interop fixtures (`vectors/peer-signed/peer-signed.json`): mandates
//! signed by ethers v6 and tweetnacl, the libraries FluxA's MVP uses.
//!
//! For every case: the verdict must match `expect`; for valid cases the digest must equal the
//! peer's digest, re-signing with the fixture key must reproduce the signature byte for byte,
//! and the SP receipt's signature must verify (while the receipt, as the MVP issues it, breaks
//! the deadline rule and must be rejected for that reason when checked against its mandate).

use aep2::codec::hex_decode_0x;
use aep2::crypto::secp256k1::SecretKey;
use aep2::json::{Limits, parse};
use aep2::{Domain, Eip712Domain, EvmAddress, PayerKey, Reason, Receipt, ReceiptExpectations, Verifier};
use serde_json::Value as J;

/// One named check within a fixture case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it held.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// The outcome of one fixture case.
#[derive(Clone, Debug)]
pub struct CaseOutcome {
    /// Fixture id (e.g. `evm-valid-0`).
    pub id: String,
    /// `evm` or `solana`.
    pub flavour: &'static str,
    /// The fixture's expected verdict (`valid` / `invalid`).
    pub expect: String,
    /// Our verdict: `valid` or the reason code.
    pub got: String,
    /// The digest we computed (if the envelope was readable).
    pub digest: Option<String>,
    /// The individual checks.
    pub checks: Vec<Check>,
}

impl CaseOutcome {
    /// Whether every check held.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

fn s<'a>(v: &'a J, k: &str) -> &'a str {
    v.get(k).and_then(J::as_str).unwrap_or("")
}

fn check(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok,
        detail: detail.into(),
    }
}

/// Runs every case of a parsed fixture file.
pub fn check_fixtures(doc: &J) -> Result<Vec<CaseOutcome>, String> {
    let mut out = Vec::new();
    for case in doc
        .get("evm")
        .and_then(J::as_array)
        .ok_or("fixture file has no `evm` array")?
    {
        out.push(evm_case(case)?);
    }
    for case in doc
        .get("solana")
        .and_then(J::as_array)
        .ok_or("fixture file has no `solana` array")?
    {
        out.push(solana_case(case)?);
    }
    Ok(out)
}

fn verdict_checks(verifier: &Verifier, case: &J, flavour: &'static str) -> (CaseOutcome, Option<aep2::Verified>) {
    let expect = s(case, "expect").to_owned();
    let report = verifier.check_header(s(case, "header"), None);
    let digest = report.digest.as_ref().map(|d| d.display());
    let result = report.into_result();
    let got = match &result {
        Ok(_) => "valid".to_owned(),
        Err(e) => e.code().to_owned(),
    };
    let verdict_ok = (expect == "valid") == result.is_ok();
    let outcome = CaseOutcome {
        id: s(case, "id").to_owned(),
        flavour,
        expect: expect.clone(),
        got: got.clone(),
        digest,
        checks: vec![check("verdict", verdict_ok, format!("expected {expect}, got {got}"))],
    };
    (outcome, result.ok())
}

fn receipt_checks(outcome: &mut CaseOutcome, case: &J, verified: &aep2::Verified) -> Result<(), String> {
    let Some(receipt_json) = case.get("receipt") else {
        return Ok(());
    };
    let value = parse(&receipt_json.to_string(), &Limits::AEP2).map_err(|e| e.to_string())?;
    let receipt = match Receipt::from_json(&value) {
        Ok(r) => r,
        Err(e) => {
            outcome.checks.push(check("receipt parses", false, e.to_string()));
            return Ok(());
        }
    };
    let sig = receipt.verify(&ReceiptExpectations {
        sp: Some(&receipt.sp),
        ..Default::default()
    });
    outcome
        .checks
        .push(check("receipt signature verifies", sig.is_ok(), format!("{sig:?}")));
    let with_mandate = receipt.verify(&ReceiptExpectations {
        sp: Some(&receipt.sp),
        mandate: Some((verified.mandate(), &verified.digest)),
        domain: None,
        lane: None,
    });
    let code = with_mandate.as_ref().err().map(aep2::Error::reason);
    outcome.checks.push(check(
        "MVP receipt breaks the deadline rule",
        code == Some(Reason::ReceiptDeadlineAfterMandate),
        with_mandate.err().map_or("accepted".to_owned(), |e| e.to_string()),
    ));
    Ok(())
}

fn evm_case(case: &J) -> Result<CaseOutcome, String> {
    let chain_id = case
        .get("chainId")
        .and_then(J::as_u64)
        .ok_or("evm case without chainId")?;
    let verifying_contract = EvmAddress::parse(s(case, "verifyingContract")).map_err(|e| e.to_string())?;
    let verifier = Verifier::new(Domain::Eip712(Eip712Domain {
        chain_id,
        verifying_contract,
    }));
    let (mut outcome, verified) = verdict_checks(&verifier, case, "evm");
    let Some(v) = verified else {
        return Ok(outcome);
    };
    let want_digest = s(case, "digest");
    if !want_digest.is_empty() {
        outcome.checks.push(check(
            "digest equals ethers TypedDataEncoder.hash",
            v.digest.display() == want_digest,
            v.digest.display(),
        ));
    }
    let want_signer = s(case, "signer");
    if !want_signer.is_empty() {
        outcome
            .checks
            .push(check("signer", v.signer() == want_signer, v.signer()));
    }
    if let Some(key) = hex_decode_0x(s(case, "signerPrivateKey")).and_then(|k| <[u8; 32]>::try_from(k).ok()) {
        let key = SecretKey::from_bytes(&key).ok_or("invalid fixture private key")?;
        let sig = PayerKey::Secp256k1(key)
            .sign_input(&v.digest.input)
            .map_err(|e| e.to_string())?;
        outcome.checks.push(check(
            "re-signing reproduces ethers signTypedData",
            sig == s(case, "payerSig"),
            sig,
        ));
    }
    receipt_checks(&mut outcome, case, &v)?;
    Ok(outcome)
}

fn solana_case(case: &J) -> Result<CaseOutcome, String> {
    let verifier = Verifier::new(Domain::SolanaMvp);
    let (mut outcome, verified) = verdict_checks(&verifier, case, "solana");
    let Some(v) = verified else {
        return Ok(outcome);
    };
    let want_digest = s(case, "digest");
    if !want_digest.is_empty() {
        outcome.checks.push(check(
            "MVP digest (base58 of signed text)",
            v.digest.display() == want_digest,
            v.digest.display(),
        ));
    }
    let want_text = s(case, "signedBytesUtf8");
    if !want_text.is_empty() {
        let ours = String::from_utf8_lossy(&v.digest.signed_bytes()).into_owned();
        outcome.checks.push(check(
            "signed bytes equal JSON.stringify(mandate)",
            ours == want_text,
            ours,
        ));
    }
    if let Some(seed) = hex_decode_0x(s(case, "signerSeedHex")).and_then(|k| <[u8; 32]>::try_from(k).ok()) {
        let sig = PayerKey::Ed25519(seed)
            .sign_input(&v.digest.input)
            .map_err(|e| e.to_string())?;
        outcome.checks.push(check(
            "re-signing reproduces tweetnacl sign.detached",
            sig == s(case, "payerSig"),
            sig,
        ));
    }
    receipt_checks(&mut outcome, case, &v)?;
    Ok(outcome)
}
