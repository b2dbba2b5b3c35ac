//! Settlement-processor receipts: the MVP's EVM and Solana forms and the native form
//! (spec `aep2.md#receipts`).
//!
//! A receipt is the SP's signed promise to settle a mandate before `enqueueDeadline`.
//! The rule `enqueueDeadline ≤ mandate.deadline` (`aep2.md#receipt-deadline-rule`) is what
//! makes the promise keepable: the debit wallet refuses to settle after the deadline.

use crate::address::{Base58Key, EvmAddress};
use crate::codec::{base58_encode, hex_decode_0x, hex_encode_0x};
use crate::crypto::{ed25519, secp256k1};
use crate::digest::{ED25519_RECEIPT_TAG, MandateDigest, ed25519_message};
use crate::eip712;
use crate::error::{Error, Result};
use crate::json::{Object, Value};
use crate::mandate::Mandate;
use crate::profile::{Domain, Profile};
use crate::reason::Reason;
use crate::schema::Fields;
use crate::uint::{U256, parse_json_integer};
use crate::verify::parse_ed25519_signature;

/// The three receipt forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReceiptKind {
    /// MVP EVM: EIP-191 over `keccak256(abi.encodePacked(digest, enqueueDeadline))`.
    MvpEvm,
    /// MVP Solana: Ed25519 over `"<digest>:<enqueueDeadline>"`.
    MvpSolana,
    /// Native: domain-separated and binding the SP's identity.
    Native,
}

impl ReceiptKind {
    /// Stable name: `mvp-evm`, `mvp-solana`, `native`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptKind::MvpEvm => "mvp-evm",
            ReceiptKind::MvpSolana => "mvp-solana",
            ReceiptKind::Native => "native",
        }
    }
}

/// A settlement processor's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpId {
    /// An EVM address (secp256k1 key).
    Evm(EvmAddress),
    /// An Ed25519 public key.
    Ed25519(Base58Key),
}

impl core::fmt::Display for SpId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpId::Evm(a) => write!(f, "{a}"),
            SpId::Ed25519(k) => write!(f, "{k}"),
        }
    }
}

impl SpId {
    /// Parses an SP id: `0x…` is an EVM address, anything else base58.
    pub fn parse(text: &str) -> Result<SpId> {
        if text.starts_with("0x") {
            EvmAddress::parse(text).map(SpId::Evm)
        } else {
            Base58Key::parse(text).map(SpId::Ed25519)
        }
    }
}

/// A receipt, schema-checked; its signature is checked by [`Receipt::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Which form.
    pub kind: ReceiptKind,
    /// The domain a native receipt is signed under (`None` for MVP forms).
    pub domain: Option<Domain>,
    /// The signing SP.
    pub sp: SpId,
    /// The mandate digest as written on the wire (0x hex, or MVP base58 for mvp-solana).
    pub mandate_digest: String,
    /// The time by which the SP promises settlement (unix seconds).
    pub enqueue_deadline: u64,
    /// For a mandate under a spending lane (native receipts only): the leaf lane and what can
    /// still be spent under it after this payment (spec `aep2.md#lane-settlement`); `None` for
    /// every other receipt, whose bytes are then exactly those of a receipt without the member.
    pub lane: Option<ReceiptLane>,
    /// The signature text.
    pub signature: String,
}

/// A native receipt's `lane` member: `{"id": "0x<leaf lane id>", "remaining": "<decimal>"}`,
/// signed with the rest of the receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiptLane {
    /// The id of the mandate's leaf lane.
    pub id: [u8; 32],
    /// The least `total − spent` over every link of the chain, after this payment.
    pub remaining: U256,
}

impl ReceiptLane {
    fn from_json(v: &Value) -> Result<ReceiptLane> {
        let f = Fields::new(v, "receipt.lane", &["id", "remaining"])?;
        let id = digest32(f.string("id")?).map_err(|e| e.at("receipt.lane.id"))?;
        let remaining = U256::parse_decimal(f.string("remaining")?).map_err(|e| e.at("receipt.lane.remaining"))?;
        Ok(ReceiptLane { id, remaining })
    }

    fn to_json(self) -> Value {
        Value::Object(
            Object::new()
                .with("id", Value::String(hex_encode_0x(&self.id)))
                .with("remaining", Value::String(self.remaining.to_string())),
        )
    }
}

/// What to check a receipt against, beyond its own signature.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReceiptExpectations<'a> {
    /// The SP the verifier trusts (`receipt_sp_mismatch` if another signed).
    pub sp: Option<&'a SpId>,
    /// The mandate the receipt is for: digest and deadline rule are checked.
    pub mandate: Option<(&'a Mandate, &'a MandateDigest)>,
    /// The mandate's domain: a native receipt must be signed under it (`domain_mismatch`
    /// otherwise). Pass it whenever it is known; MVP receipts sign no domain.
    pub domain: Option<&'a Domain>,
    /// The id of the mandate's leaf lane, for a mandate under a spending lane: the receipt must
    /// state a `lane` with this id (`receipt_lane_mismatch` otherwise).
    pub lane: Option<&'a [u8; 32]>,
}

impl Receipt {
    /// Parses a receipt JSON object. An object with an `aep2` member is native; otherwise it
    /// is an MVP receipt, EVM when `sp` starts with `0x` and Solana otherwise.
    pub fn from_json(v: &Value) -> Result<Receipt> {
        let Value::Object(obj) = v else {
            return Err(Error::new(
                Reason::FieldType,
                format!("receipt must be an object, found {}", v.type_name()),
            ));
        };
        if obj.get("aep2").is_some() {
            let f = Fields::of_with_optional(
                obj,
                "receipt",
                &[
                    "aep2",
                    "kind",
                    "profile",
                    "domain",
                    "sp",
                    "mandateDigest",
                    "enqueueDeadline",
                    "signature",
                ],
                &["lane"],
            )?;
            let version = parse_json_integer(f.number("aep2")?).map_err(|e| e.at("receipt.aep2"))?;
            if version != crate::envelope::AEP2_VERSION {
                return Err(Error::new(
                    Reason::UnsupportedVersion,
                    format!("aep2 version {version}"),
                ));
            }
            if f.string("kind")? != "receipt" {
                return Err(Error::new(Reason::FieldType, "receipt.kind must be \"receipt\""));
            }
            let profile = Profile::parse(f.string("profile")?)?;
            if profile == Profile::SolanaMvp {
                return Err(Error::new(
                    Reason::UnsupportedProfile,
                    "native receipts use eip712 or ed25519",
                ));
            }
            let domain = Domain::from_json(profile, f.value("domain")?)?;
            let sp_text = f.string("sp")?;
            let sp = match profile {
                Profile::Eip712 => EvmAddress::parse(sp_text).map(SpId::Evm),
                _ => Base58Key::parse(sp_text).map(SpId::Ed25519),
            }
            .map_err(|e| e.at("receipt.sp"))?;
            let mandate_digest = digest32(f.string("mandateDigest")?)?;
            let enqueue_deadline =
                parse_json_integer(f.number("enqueueDeadline")?).map_err(|e| e.at("receipt.enqueueDeadline"))?;
            let lane = obj.get("lane").map(ReceiptLane::from_json).transpose()?;
            let signature = f.string("signature")?.to_owned();
            return Ok(Receipt {
                kind: ReceiptKind::Native,
                domain: Some(domain),
                sp,
                mandate_digest: hex_encode_0x(&mandate_digest),
                enqueue_deadline,
                lane,
                signature,
            });
        }
        let f = Fields::of(
            obj,
            "receipt",
            &["sp", "mandateDigest", "enqueueDeadline", "spEnqueueSig"],
        )?;
        let sp = SpId::parse(f.string("sp")?).map_err(|e| e.at("receipt.sp"))?;
        let digest_text = f.string("mandateDigest")?;
        let (kind, mandate_digest) = match sp {
            SpId::Evm(_) => (ReceiptKind::MvpEvm, hex_encode_0x(&digest32(digest_text)?)),
            SpId::Ed25519(_) => {
                if !crate::codec::is_base58(digest_text) {
                    return Err(Error::new(
                        Reason::FieldType,
                        "receipt.mandateDigest must be non-empty base58",
                    ));
                }
                (ReceiptKind::MvpSolana, digest_text.to_owned())
            }
        };
        let enqueue_deadline =
            parse_json_integer(f.number("enqueueDeadline")?).map_err(|e| e.at("receipt.enqueueDeadline"))?;
        let signature = f.string("spEnqueueSig")?.to_owned();
        Ok(Receipt {
            kind,
            domain: None,
            sp,
            mandate_digest,
            enqueue_deadline,
            lane: None,
            signature,
        })
    }

    /// The receipt as JSON in its wire form.
    pub fn to_json(&self) -> Value {
        let s = |x: String| Value::String(x);
        let obj = match self.kind {
            ReceiptKind::Native => {
                let profile = match self.sp {
                    SpId::Evm(_) => Profile::Eip712,
                    SpId::Ed25519(_) => Profile::Ed25519,
                };
                let mut o = Object::new()
                    .with("aep2", Value::from_u64(crate::envelope::AEP2_VERSION))
                    .with("kind", s("receipt".into()))
                    .with("profile", s(profile.as_str().into()))
                    .with(
                        "domain",
                        self.domain
                            .as_ref()
                            .and_then(Domain::to_json)
                            .map_or(Value::Null, Value::Object),
                    )
                    .with("sp", s(self.sp.to_string()))
                    .with("mandateDigest", s(self.mandate_digest.clone()))
                    .with("enqueueDeadline", Value::from_u64(self.enqueue_deadline));
                if let Some(lane) = self.lane {
                    o.insert("lane", lane.to_json());
                }
                o.with("signature", s(self.signature.clone()))
            }
            _ => Object::new()
                .with("sp", s(self.sp.to_string()))
                .with("mandateDigest", s(self.mandate_digest.clone()))
                .with("enqueueDeadline", Value::from_u64(self.enqueue_deadline))
                .with("spEnqueueSig", s(self.signature.clone())),
        };
        Value::Object(obj)
    }

    /// The bytes (Ed25519) or 32-byte hash (secp256k1) the SP signs.
    pub fn signing_payload(&self) -> Result<Vec<u8>> {
        Ok(match (self.kind, &self.sp, &self.domain) {
            (ReceiptKind::MvpEvm, _, _) => {
                let d = digest32(&self.mandate_digest)?;
                eip712::personal_sign_hash(&eip712::mvp_receipt_commitment(&d, self.enqueue_deadline)).to_vec()
            }
            (ReceiptKind::MvpSolana, _, _) => format!("{}:{}", self.mandate_digest, self.enqueue_deadline).into_bytes(),
            (ReceiptKind::Native, SpId::Evm(sp), Some(Domain::Eip712(d))) => {
                let digest = digest32(&self.mandate_digest)?;
                match &self.lane {
                    None => eip712::receipt_parts(sp, &digest, self.enqueue_deadline, d),
                    Some(l) => eip712::lane_receipt_parts(sp, &digest, self.enqueue_deadline, &l.id, &l.remaining, d),
                }
                .digest
                .to_vec()
            }
            (ReceiptKind::Native, SpId::Ed25519(_), Some(domain @ Domain::Ed25519(_))) => {
                let mut body = Object::new()
                    .with("sp", Value::String(self.sp.to_string()))
                    .with("mandateDigest", Value::String(self.mandate_digest.clone()))
                    .with("enqueueDeadline", Value::from_u64(self.enqueue_deadline));
                if let Some(lane) = self.lane {
                    body.insert("lane", lane.to_json());
                }
                ed25519_message(ED25519_RECEIPT_TAG, domain, "receipt", body)
            }
            _ => {
                return Err(Error::new(
                    Reason::DomainInvalid,
                    "native receipt's domain does not match its SP key type",
                ));
            }
        })
    }

    /// Checks the signature (signature stage), then the expectations (policy stage), in the
    /// spec's order: SP identity, domain, receipt form against the mandate's profile, mandate
    /// digest, the deadline rule, and (with the mandate and its leaf lane) the receipt's `lane`.
    ///
    /// Expectations left out are not checked: without `sp` a valid result proves only that
    /// *someone* signed the receipt, so payees always pass the SP they trust.
    pub fn verify(&self, expect: &ReceiptExpectations<'_>) -> Result<()> {
        let payload = self.signing_payload()?;
        match self.sp {
            SpId::Evm(sp) => {
                let sig = secp256k1::parse_signature(&self.signature)?;
                let prehash: [u8; 32] = payload
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::new(Reason::SignatureInvalid, "receipt hash is not 32 bytes"))?;
                let signer = secp256k1::recover(&prehash, &sig)?;
                if signer != sp {
                    return Err(Error::new(
                        Reason::SignatureInvalid,
                        format!("receipt signature recovers to {signer}, not {sp}"),
                    ));
                }
            }
            SpId::Ed25519(sp) => {
                let sig = parse_ed25519_signature(&self.signature)?;
                ed25519::verify_bytes(&sp.0, &payload, &sig).map_err(|r| Error::new(r, "receipt signature"))?;
            }
        }
        if let Some(expected) = expect.sp
            && *expected != self.sp
        {
            return Err(Error::new(
                Reason::ReceiptSpMismatch,
                format!("receipt is from {}, expected {expected}", self.sp),
            ));
        }
        if let (Some(expected), Some(claimed)) = (expect.domain, &self.domain)
            && expected != claimed
        {
            return Err(Error::new(
                Reason::DomainMismatch,
                "receipt is signed for another domain",
            ));
        }
        if let Some((mandate, digest)) = expect.mandate {
            // Each receipt form belongs to one mandate profile; a digest that happens to have the
            // right shape under another profile is still not this mandate's digest.
            let form_fits = match (self.kind, mandate.profile(), self.domain.as_ref().map(Domain::profile)) {
                (ReceiptKind::MvpEvm, Profile::Eip712, _) | (ReceiptKind::MvpSolana, Profile::SolanaMvp, _) => true,
                (ReceiptKind::Native, p, Some(q)) => p == q,
                _ => false,
            };
            if !form_fits {
                return Err(Error::new(
                    Reason::ReceiptDigestMismatch,
                    format!(
                        "a {} receipt cannot be for a {} mandate",
                        self.kind.as_str(),
                        mandate.profile()
                    ),
                ));
            }
            let want = match self.kind {
                ReceiptKind::Native => hex_encode_0x(&digest.id),
                _ => digest.display(),
            };
            if want != self.mandate_digest {
                return Err(Error::new(
                    Reason::ReceiptDigestMismatch,
                    format!("receipt is for {}, mandate is {want}", self.mandate_digest),
                ));
            }
            if self.enqueue_deadline > mandate.deadline() {
                return Err(Error::new(
                    Reason::ReceiptDeadlineAfterMandate,
                    format!(
                        "enqueueDeadline {} is after the mandate deadline {}",
                        self.enqueue_deadline,
                        mandate.deadline()
                    ),
                ));
            }
            if let Some(leaf) = expect.lane {
                match &self.lane {
                    Some(l) if l.id == *leaf => {}
                    Some(l) => {
                        return Err(Error::new(
                            Reason::ReceiptLaneMismatch,
                            format!(
                                "receipt states lane {}, the mandate's leaf lane is {}",
                                hex_encode_0x(&l.id),
                                hex_encode_0x(leaf)
                            ),
                        ));
                    }
                    None => {
                        return Err(Error::new(
                            Reason::ReceiptLaneMismatch,
                            "a receipt for a mandate under a lane must state the lane",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn digest32(text: &str) -> Result<[u8; 32]> {
    match hex_decode_0x(text) {
        Some(b) if b.len() == 32 => {
            let mut d = [0u8; 32];
            d.copy_from_slice(&b);
            Ok(d)
        }
        _ => Err(Error::new(
            Reason::FieldType,
            format!("mandateDigest {text:?} is not 0x + 64 hex digits"),
        )),
    }
}

/// A settlement processor's signing key.
#[derive(Clone, Debug)]
pub enum SpKey {
    /// secp256k1 (EVM SPs).
    Secp256k1(secp256k1::SecretKey),
    /// Ed25519 seed (Solana and native Ed25519 SPs).
    Ed25519([u8; 32]),
}

impl SpKey {
    /// The SP's public identity.
    pub fn id(&self) -> SpId {
        match self {
            SpKey::Secp256k1(k) => SpId::Evm(k.address()),
            SpKey::Ed25519(seed) => SpId::Ed25519(Base58Key(ed25519::public_key_from_seed(seed))),
        }
    }

    /// Signs a receipt of `kind` for a verified mandate.
    ///
    /// `domain` is required for native receipts and must match the key type. The deadline
    /// rule is not enforced here so that vectors can show receipts that break it; the
    /// settlement processor enforces it before signing.
    pub fn sign_receipt(
        &self,
        kind: ReceiptKind,
        digest: &MandateDigest,
        enqueue_deadline: u64,
        domain: Option<&Domain>,
    ) -> Result<Receipt> {
        self.sign_receipt_with(kind, digest, enqueue_deadline, domain, None)
    }

    /// [`SpKey::sign_receipt`] with the `lane` member of a lane mandate's native receipt (spec
    /// `aep2.md#lane-settlement`); an MVP form cannot state it (`profile_mismatch`).
    pub fn sign_receipt_with(
        &self,
        kind: ReceiptKind,
        digest: &MandateDigest,
        enqueue_deadline: u64,
        domain: Option<&Domain>,
        lane: Option<ReceiptLane>,
    ) -> Result<Receipt> {
        if lane.is_some() && kind != ReceiptKind::Native {
            return Err(Error::new(
                Reason::ProfileMismatch,
                "only a native receipt states a lane",
            ));
        }
        let mandate_digest = match (kind, self) {
            (ReceiptKind::MvpEvm, SpKey::Secp256k1(_)) | (ReceiptKind::MvpSolana, SpKey::Ed25519(_)) => {
                digest.display()
            }
            (ReceiptKind::Native, _) => hex_encode_0x(&digest.id),
            _ => {
                return Err(Error::new(
                    Reason::ProfileMismatch,
                    format!("{} receipts need the other key type", kind.as_str()),
                ));
            }
        };
        let mut r = Receipt {
            kind,
            domain: if kind == ReceiptKind::Native {
                domain.cloned()
            } else {
                None
            },
            sp: self.id(),
            mandate_digest,
            enqueue_deadline,
            lane,
            signature: String::new(),
        };
        let payload = r.signing_payload()?;
        r.signature = match self {
            SpKey::Secp256k1(k) => {
                let prehash: [u8; 32] = payload
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::new(Reason::ProfileMismatch, "a secp256k1 SP cannot sign this receipt kind"))?;
                hex_encode_0x(&k.sign_prehash(&prehash))
            }
            SpKey::Ed25519(seed) => base58_encode(&ed25519::sign(seed, &payload)),
        };
        Ok(r)
    }
}
