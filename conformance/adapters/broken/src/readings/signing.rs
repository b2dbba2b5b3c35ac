//! Reading variants of signing (`aep2.md#signing`, `aep2.md#eip712-signature-rules`,
//! `conformance.md` `sign_mandate`).
//!
//! Each reading is a complete signer built from the library's parts (mandate digest, key,
//! envelope) in which one of the signer's duties is read the other way.

use super::{invalid, valid};
use aep2::codec::{hex_decode_0x, hex_encode_0x};
use aep2::json::{Limits, parse};
use aep2::{Domain, EnvelopeForm, Mandate, Profile, Reason, SignedMandate, mandate_digest};
use aep2_conformance::protocol::CaseInput;
use aep2_vectors::check::{Answer, context_domain, key_from_hex};
use serde_json::Value as J;

/// One other reading of a choice point of this area (`conformance/README.md`, "Choice points
/// of the spec").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// §4 "Signing": the signer signs with whatever key it is given, the mandate's signer's or
    /// not (the verifier will reject it), instead of refusing with `signature_invalid`.
    SignsAnyKey,
    /// §4 "Signing": the native form of a `solana-mvp` mandate is refused before the key is
    /// compared with the signer.
    FormBeforeKey,
    /// §4 "Signing", §5.2: a `solana-mvp` mandate asked for in the native form is signed and
    /// wrapped in the MVP envelope, its only form, instead of refused.
    SolanaNativeAsMvp,
    /// §4 "Signing", §4.1.2 rule 3: the signer emits whichever of the two twins `(r, s)`,
    /// `(r, n − s)` its library computes; here always the high-s one.
    HighS,
    /// §4 "Signing", §4.1.2 rule 2: the signer writes the recovery byte as 0/1 (the raw
    /// parity), not 27/28.
    RecoveryByteRaw,
}

impl Reading {
    /// Every reading, in the order of the README's table.
    pub const ALL: &'static [Reading] = &[
        Reading::SignsAnyKey,
        Reading::FormBeforeKey,
        Reading::SolanaNativeAsMvp,
        Reading::HighS,
        Reading::RecoveryByteRaw,
    ];

    /// The choice point's id in `conformance/README.md`, which is also the `--variant` name.
    pub fn id(self) -> &'static str {
        match self {
            Reading::SignsAnyKey => "CP-signing-non-owner-key",
            Reading::FormBeforeKey => "CP-signing-order-key-form",
            Reading::SolanaNativeAsMvp => "CP-signing-solana-native",
            Reading::HighS => "CP-signing-low-s",
            Reading::RecoveryByteRaw => "CP-signing-recovery-byte",
        }
    }
}

/// The answer of `reading` to a case it governs; `None` for every other case.
pub fn answer(reading: Reading, case: &CaseInput) -> Option<Result<Answer, String>> {
    (case.kind == "sign_mandate").then(|| sign(reading, case))
}

/// The secp256k1 group order `n`, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc,
    0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// The twin `(r, n − s)` with the other parity of a 65-byte `r ‖ s ‖ v` signature.
fn twin(sig: &mut [u8]) {
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let x = i16::from(N[i]) - i16::from(sig[32 + i]) - borrow;
        sig[32 + i] = x.rem_euclid(256) as u8;
        borrow = i16::from(x < 0);
    }
    sig[64] = if sig[64] == 27 { 28 } else { 27 };
}

fn sign(reading: Reading, case: &CaseInput) -> Result<Answer, String> {
    let (group, _) = aep2_conformance::reference::as_vector(0, case)?;
    let domain = context_domain(&group.context)?;
    let profile = domain.profile();
    let mandate_json = case.input.get("mandate").ok_or("input.mandate missing")?;
    let value = parse(&mandate_json.to_string(), &Limits::AEP2).map_err(|e| e.to_string())?;
    let mandate = Mandate::from_json(profile, &value).map_err(|e| e.to_string())?;
    let key = key_from_hex(
        profile,
        case.input.get("key").and_then(J::as_str).ok_or("input.key missing")?,
    )?;
    let mut form = match group.context.form.as_deref() {
        Some("native") => EnvelopeForm::Native,
        _ => EnvelopeForm::Mvp,
    };
    let solana_native = form == EnvelopeForm::Native && profile == Profile::SolanaMvp;
    if solana_native && reading == Reading::FormBeforeKey {
        return Ok(invalid(Reason::UnsupportedProfile));
    }
    if key.signer() != mandate.signer() && reading != Reading::SignsAnyKey {
        return Ok(invalid(Reason::SignatureInvalid));
    }
    if solana_native {
        if reading != Reading::SolanaNativeAsMvp {
            return Ok(invalid(Reason::UnsupportedProfile));
        }
        form = EnvelopeForm::Mvp;
    }
    let digest = mandate_digest(&mandate, &domain).map_err(|e| e.to_string())?;
    let mut signature = key.sign_input(&digest.input).map_err(|e| e.to_string())?;
    if profile == Profile::Eip712 && matches!(reading, Reading::HighS | Reading::RecoveryByteRaw) {
        let mut bytes = hex_decode_0x(&signature).ok_or("signature is not hex")?;
        if bytes.len() == 65 {
            if reading == Reading::HighS {
                twin(&mut bytes);
            } else {
                bytes[64] -= 27;
            }
            signature = hex_encode_0x(&bytes);
        }
    }
    let signed = SignedMandate {
        form,
        mandate,
        domain: (form == EnvelopeForm::Native)
            .then(|| domain.clone())
            .filter(|d| *d != Domain::SolanaMvp),
        signature: signature.clone(),
        lanes: Vec::new(),
    };
    let mut a = valid();
    a.header = Some(signed.encode());
    a.signature = Some(signature);
    Ok(a)
}
