//! EIP-712 and EIP-191 encodings for the `eip712` profile and EVM receipts
//! (spec `aep2.md#eip712-encoding`, `aep2.md#receipt-mvp-evm`, `aep2.md#receipt-native`).
//!
//! The type set is fixed and tiny, so it is encoded by hand rather than through a generic
//! typed-data engine: every byte that is hashed is visible here.

use crate::address::EvmAddress;
use crate::hash::{keccak256, keccak256_parts};
use crate::mandate::EvmMandate;
use crate::profile::Eip712Domain;
use crate::uint::U256;
use std::sync::LazyLock;

/// The mandate's EIP-712 type, identical to the FluxA MVP debit wallet's `MANDATE_TYPEHASH` preimage.
pub const MANDATE_TYPE: &str =
    "Mandate(address owner,address token,address payee,uint256 amount,uint256 nonce,uint256 deadline,bytes32 ref)";
/// The native EVM receipt's EIP-712 type.
pub const RECEIPT_TYPE: &str = "Receipt(address sp,bytes32 mandateDigest,uint256 enqueueDeadline)";
/// The EIP-712 type of a native EVM receipt for a mandate under a spending lane: the receipt's
/// members and the leaf lane's id and remaining budget (spec `aep2.md#lane-settlement`).
pub const LANE_RECEIPT_TYPE: &str =
    "LaneReceipt(address sp,bytes32 mandateDigest,uint256 enqueueDeadline,bytes32 lane,uint256 remaining)";
/// The EIP-712 domain type used by AEP2 (no salt).
pub const DOMAIN_TYPE: &str = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
/// Domain name of the debit wallet (signs mandates).
pub const WALLET_DOMAIN_NAME: &str = "AEP2DebitWallet";
/// Domain name for native settlement-processor receipts, distinct so a receipt signature can
/// never be taken for a mandate signature.
pub const RECEIPT_DOMAIN_NAME: &str = "AEP2SettlementProcessor";
/// Domain version for both.
pub const DOMAIN_VERSION: &str = "1";

static MANDATE_TYPEHASH: LazyLock<[u8; 32]> = LazyLock::new(|| keccak256(MANDATE_TYPE.as_bytes()));
static RECEIPT_TYPEHASH: LazyLock<[u8; 32]> = LazyLock::new(|| keccak256(RECEIPT_TYPE.as_bytes()));
static LANE_RECEIPT_TYPEHASH: LazyLock<[u8; 32]> = LazyLock::new(|| keccak256(LANE_RECEIPT_TYPE.as_bytes()));
static DOMAIN_TYPEHASH: LazyLock<[u8; 32]> = LazyLock::new(|| keccak256(DOMAIN_TYPE.as_bytes()));

/// The three hashes that make up an EIP-712 signature input, kept for vectors and debugging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Eip712Parts {
    /// `hashStruct(EIP712Domain)`.
    pub domain_separator: [u8; 32],
    /// `hashStruct(message)`.
    pub struct_hash: [u8; 32],
    /// `keccak256(0x19 0x01 ‖ domainSeparator ‖ structHash)`: what is signed.
    pub digest: [u8; 32],
}

impl Eip712Parts {
    /// The parts of `struct_hash` under `domain_separator`.
    pub fn of(domain_separator: [u8; 32], struct_hash: [u8; 32]) -> Self {
        Self::new(domain_separator, struct_hash)
    }

    fn new(domain_separator: [u8; 32], struct_hash: [u8; 32]) -> Self {
        let digest = keccak256_parts(&[&[0x19, 0x01], &domain_separator, &struct_hash]);
        Eip712Parts {
            domain_separator,
            struct_hash,
            digest,
        }
    }
}

/// The keccak256 of [`MANDATE_TYPE`].
pub fn mandate_typehash() -> [u8; 32] {
    *MANDATE_TYPEHASH
}

/// The domain separator for `name` at `domain`.
///
/// Separators of the two AEP2 domain names are remembered per thread for the last domain
/// seen: a merchant verifies mandates for one deployment, so this saves two Keccak
/// permutations on every verification.
pub fn domain_separator(name: &str, domain: &Eip712Domain) -> [u8; 32] {
    let slot = match name {
        WALLET_DOMAIN_NAME => 0,
        RECEIPT_DOMAIN_NAME => 1,
        _ => return compute_separator(name, domain),
    };
    LAST_SEPARATOR.with(|cell| {
        let mut cache = cell.get();
        match cache[slot] {
            Some((d, sep)) if d == *domain => sep,
            _ => {
                let sep = compute_separator(name, domain);
                cache[slot] = Some((*domain, sep));
                cell.set(cache);
                sep
            }
        }
    })
}

type SeparatorCache = [Option<(Eip712Domain, [u8; 32])>; 2];

thread_local! {
    static LAST_SEPARATOR: std::cell::Cell<SeparatorCache> = const { std::cell::Cell::new([None, None]) };
}

fn compute_separator(name: &str, domain: &Eip712Domain) -> [u8; 32] {
    keccak256_parts(&[
        &*DOMAIN_TYPEHASH,
        &keccak256(name.as_bytes()),
        &keccak256(DOMAIN_VERSION.as_bytes()),
        &U256::from_u64(domain.chain_id).0,
        &domain.verifying_contract.to_word(),
    ])
}

/// The EIP-712 parts of a mandate under the debit-wallet domain.
pub fn mandate_parts(m: &EvmMandate, domain: &Eip712Domain) -> Eip712Parts {
    let struct_hash = keccak256_parts(&[
        &*MANDATE_TYPEHASH,
        &m.owner.to_word(),
        &m.token.to_word(),
        &m.payee.to_word(),
        &m.amount.0,
        &m.nonce.0,
        &U256::from_u64(m.deadline).0,
        &m.reference,
    ]);
    Eip712Parts::new(domain_separator(WALLET_DOMAIN_NAME, domain), struct_hash)
}

/// The EIP-712 parts of a native EVM receipt under the settlement-processor domain.
pub fn receipt_parts(
    sp: &EvmAddress,
    mandate_digest: &[u8; 32],
    enqueue_deadline: u64,
    domain: &Eip712Domain,
) -> Eip712Parts {
    let struct_hash = keccak256_parts(&[
        &*RECEIPT_TYPEHASH,
        &sp.to_word(),
        mandate_digest,
        &U256::from_u64(enqueue_deadline).0,
    ]);
    Eip712Parts::new(domain_separator(RECEIPT_DOMAIN_NAME, domain), struct_hash)
}

/// The EIP-712 parts of a native EVM lane receipt ([`LANE_RECEIPT_TYPE`]) under the
/// settlement-processor domain.
pub fn lane_receipt_parts(
    sp: &EvmAddress,
    mandate_digest: &[u8; 32],
    enqueue_deadline: u64,
    lane: &[u8; 32],
    remaining: &U256,
    domain: &Eip712Domain,
) -> Eip712Parts {
    let struct_hash = keccak256_parts(&[
        &*LANE_RECEIPT_TYPEHASH,
        &sp.to_word(),
        mandate_digest,
        &U256::from_u64(enqueue_deadline).0,
        lane,
        &remaining.0,
    ]);
    Eip712Parts::new(domain_separator(RECEIPT_DOMAIN_NAME, domain), struct_hash)
}

/// EIP-191 version 0x45 (`personal_sign`) hash of `message`.
pub fn personal_sign_hash(message: &[u8]) -> [u8; 32] {
    let prefix = format!("\x19Ethereum Signed Message:\n{}", message.len());
    keccak256_parts(&[prefix.as_bytes(), message])
}

/// The MVP SP's commitment: `keccak256(abi.encodePacked(bytes32 digest, uint256 enqueueDeadline))`.
pub fn mvp_receipt_commitment(mandate_digest: &[u8; 32], enqueue_deadline: u64) -> [u8; 32] {
    keccak256_parts(&[mandate_digest, &U256::from_u64(enqueue_deadline).0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::hex_encode_0x;

    /// The typehashes the spec states for a lane receipt and a lane revocation.
    #[test]
    fn lane_receipt_and_revocation_typehashes() {
        assert_eq!(
            hex_encode_0x(&*LANE_RECEIPT_TYPEHASH),
            "0x2049c23123c979b89faed17913469c2f3408de7f3d1018b90d9a368293c2ddaf"
        );
        assert_eq!(
            hex_encode_0x(&keccak256(crate::lane::LANE_REVOCATION_TYPE.as_bytes())),
            "0xd543a405ec78ec38e85c99daf16f9d10d826942e1837f2a170d58e94fa5b2816"
        );
    }

    fn a(s: &str) -> EvmAddress {
        EvmAddress::parse(s).unwrap()
    }

    #[test]
    fn known_answers_from_the_reference_notes() {
        assert_eq!(
            hex_encode_0x(&mandate_typehash()),
            "0x424644645718e4947e6272163756951857080a3d9ce5b05ceffa90a17603ff85"
        );
        let d = Eip712Domain {
            chain_id: 84532,
            verifying_contract: a("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"),
        };
        assert_eq!(
            hex_encode_0x(&domain_separator(WALLET_DOMAIN_NAME, &d)),
            "0xc15fd74307bfeaa196f1a3918dd465ffb8bef0066ac826ddbf648b034beaeff9"
        );
        let m = EvmMandate {
            owner: a("0x1111111111111111111111111111111111111111"),
            token: a("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
            payee: a("0x2222222222222222222222222222222222222222"),
            amount: U256::from_u64(1000),
            nonce: U256::from_u64(1),
            deadline: 1_700_000_600,
            reference: keccak256(b"predict-1700000000000"),
        };
        let p = mandate_parts(&m, &d);
        assert_eq!(
            hex_encode_0x(&p.struct_hash),
            "0x65fa3b5a5d5a6a7a9345be27a2237fa0e24652d961da6ff8771ed9075e4f8906"
        );
        assert_eq!(
            hex_encode_0x(&p.digest),
            "0x03bb01e1a947cf45c3b8471df4cdd36ffd269735a44f0da73be3c26459f4a1d1"
        );
        let c = mvp_receipt_commitment(&p.digest, 1_700_010_800);
        assert_eq!(
            hex_encode_0x(&c),
            "0xde366d48d883aa416dd67fde4bf7516df61dfe3125c920fc86c4a2171cd90b9c"
        );
        assert_eq!(
            hex_encode_0x(&personal_sign_hash(&c)),
            "0x3d3299cc10759d988e7347741866141637bbea60757bc5e75a8672fdcfb81991"
        );
        // The per-thread cache must never return a stale separator.
        let other = Eip712Domain { chain_id: 8453, ..d };
        assert_ne!(
            domain_separator(WALLET_DOMAIN_NAME, &other),
            domain_separator(WALLET_DOMAIN_NAME, &d)
        );
        assert_eq!(
            domain_separator(WALLET_DOMAIN_NAME, &d),
            compute_separator(WALLET_DOMAIN_NAME, &d)
        );
        assert_eq!(
            domain_separator(RECEIPT_DOMAIN_NAME, &d),
            compute_separator(RECEIPT_DOMAIN_NAME, &d)
        );
        assert_eq!(
            hex_encode_0x(&personal_sign_hash(b"hello")),
            "0x50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
        );
    }
}
