//! The debit-wallet contract on both chains: its digests are the core's on every eip712
//! vector, and a batch settles what verifies, skips the rest with the spec's reason, and pays
//! each payee once.

#![allow(clippy::unwrap_used)]

use aep2::crypto::secp256k1::SecretKey;
use aep2::{Domain, Eip712Domain, EvmAddress, Mandate, PayerKey, Profile, SignedMandate, U256 as CoreU256};
use aep2_evm::TxKey;
use aep2_evm::contract::{self, AEP2DebitWallet, SkipReason, Wallet, abi_mandate, decode};
use aep2_evm::devnet::{CHAIN_ID, GENESIS, TestChain, VECTOR_WALLET};
use aep2_evm::on_both_chains;
use alloy::primitives::{Address, B256, Bytes, U256};
use std::path::PathBuf;

/// Every `eip712` mandate header of the vectors that decodes.
fn vector_mandates() -> Vec<(String, SignedMandate)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for g in file["testGroups"].as_array().unwrap() {
            if g["context"]["profile"] != "eip712" {
                continue;
            }
            for t in g["tests"].as_array().unwrap() {
                let Some(h) = t["input"]["header"].as_str() else {
                    continue;
                };
                if let Ok(sm) = SignedMandate::decode(h, Profile::Eip712) {
                    out.push((t["id"].as_str().unwrap().to_owned(), sm));
                }
            }
        }
    }
    out
}

fn evm(a: Address) -> EvmAddress {
    EvmAddress(a.0.0)
}

async fn deploy<C: TestChain>(chain: &C) -> (TxKey, Wallet, Address) {
    let deployer = chain.deployer();
    let wallet = contract::deploy_wallet(chain, &deployer, 3 * 3600).await.unwrap();
    let token = contract::deploy_token(chain, &deployer, "USDT").await.unwrap();
    (deployer, Wallet { address: wallet }, token)
}

async fn digests_equal_the_core<C: TestChain>(chain: &C) {
    let (_, wallet, _) = deploy(chain).await;
    // The deployed code, placed at the vectors' verifyingContract: OpenZeppelin's EIP712
    // rebuilds the domain separator for the address it runs at.
    let at: Address = VECTOR_WALLET.parse().unwrap();
    chain.set_code(at, chain.code(wallet.address).await.unwrap()).await;
    let there = Wallet { address: at };
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: CHAIN_ID,
        verifying_contract: evm(at),
    });
    let mandates = vector_mandates();
    assert!(mandates.len() > 150, "{} eip712 mandates", mandates.len());
    for (id, sm) in &mandates {
        let Mandate::Eip712(m) = &sm.mandate else {
            panic!("{id}: not eip712")
        };
        let core = aep2::mandate_digest(&sm.mandate, &domain).unwrap().id;
        let onchain = there.mandate_digest(chain, abi_mandate(m)).await.unwrap();
        assert_eq!(onchain, B256::from(core), "{id} on {}", chain.name());
    }
    println!(
        "{}: {} eip712 vector mandates, every digest the core's",
        chain.name(),
        mandates.len()
    );
}

#[test]
fn the_contracts_digest_is_the_cores_on_every_eip712_vector() {
    on_both_chains!(digests_equal_the_core);
}

fn sign(m: &aep2::EvmMandate, owner: &SecretKey, wallet: Address) -> Bytes {
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: CHAIN_ID,
        verifying_contract: evm(wallet),
    });
    let key = PayerKey::Secp256k1(owner.clone());
    let (sm, _) = aep2::sign_mandate(&Mandate::Eip712(m.clone()), &domain, &key, aep2::EnvelopeForm::Mvp).unwrap();
    Bytes::from(aep2::codec::hex_decode_0x(&sm.signature).unwrap())
}

fn digest_of(m: &aep2::EvmMandate, wallet: Address) -> B256 {
    let d = Domain::Eip712(Eip712Domain {
        chain_id: CHAIN_ID,
        verifying_contract: evm(wallet),
    });
    B256::from(aep2::mandate_digest(&Mandate::Eip712(m.clone()), &d).unwrap().id)
}

fn item(m: &aep2::EvmMandate, signature: Bytes) -> AEP2DebitWallet::Item {
    AEP2DebitWallet::Item {
        mandate: abi_mandate(m),
        signature,
    }
}

async fn batch_settles_and_skips<C: TestChain>(chain: &C) {
    let (deployer, wallet, token) = deploy(chain).await;
    let sp = TxKey::from_label("sp");
    let payer_tx = TxKey::from_label("payer");
    chain.fund(sp.address()).await;
    chain.fund(payer_tx.address()).await;
    wallet
        .set_settlement_processor(chain, &deployer, sp.address(), true)
        .await
        .unwrap();
    contract::mint(chain, &deployer, token, payer_tx.address(), U256::from(10_000u64))
        .await
        .unwrap();
    wallet
        .deposit(chain, &payer_tx, token, U256::from(5_000u64))
        .await
        .unwrap();
    let owner = SecretKey::from_bytes(&payer_tx.secret_bytes()).unwrap();
    let (payee_a, payee_b) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb2));
    let mandate = |n: u64, payee: Address, amount: u64, deadline: u64| aep2::EvmMandate {
        owner: evm(payer_tx.address()),
        token: evm(token),
        payee: evm(payee),
        amount: CoreU256::from_u64(amount),
        nonce: CoreU256::from_u64(n),
        deadline,
        reference: [n as u8; 32],
    };
    let later = GENESIS + 3600;
    let good: Vec<_> = [(1, payee_a, 100), (2, payee_a, 200), (3, payee_b, 300)]
        .into_iter()
        .map(|(n, p, a)| mandate(n, p, a, later))
        .collect();
    let mut items: Vec<_> = good.iter().map(|m| item(m, sign(m, &owner, wallet.address))).collect();
    // A signature by another key, a reused nonce, an expired mandate, one above the balance,
    // and a high-s twin of a valid signature.
    let other = SecretKey::from_bytes(&TxKey::from_label("mallory").secret_bytes()).unwrap();
    let forged = mandate(4, payee_a, 10, later);
    // A signer refuses a key that is not the owner's, so the forgery signs the digest directly.
    let forged_sig = other.sign_prehash(&digest_of(&forged, wallet.address).0);
    items.push(item(&forged, Bytes::copy_from_slice(&forged_sig)));
    let reused = mandate(1, payee_b, 10, later);
    items.push(item(&reused, sign(&reused, &owner, wallet.address)));
    let expired = mandate(5, payee_a, 10, GENESIS - 1);
    items.push(item(&expired, sign(&expired, &owner, wallet.address)));
    let too_much = mandate(6, payee_a, 4_401, later);
    items.push(item(&too_much, sign(&too_much, &owner, wallet.address)));
    let twin = mandate(7, payee_a, 10, later);
    let mut sig = sign(&twin, &owner, wallet.address).to_vec();
    let n: U256 = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
        .parse()
        .unwrap();
    let s = U256::from_be_slice(&sig[32..64]);
    sig[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    sig[64] = if sig[64] == 27 { 28 } else { 27 };
    items.push(item(&twin, sig.into()));
    let zero = mandate(8, payee_a, 0, later);
    items.push(item(&zero, sign(&zero, &owner, wallet.address)));

    let outcome = wallet.settle(chain, &sp, B256::repeat_byte(1), items).await.unwrap();
    let digest = |m: &aep2::EvmMandate| digest_of(m, wallet.address);
    assert_eq!(
        outcome.settled,
        good.iter().map(digest).collect::<Vec<_>>(),
        "{}",
        chain.name()
    );
    let want = vec![
        (digest(&forged), Some(SkipReason::SignatureInvalid)),
        (digest(&reused), Some(SkipReason::NonceUsed)),
        (digest(&expired), Some(SkipReason::Expired)),
        (digest(&too_much), Some(SkipReason::InsufficientFunds)),
        (digest(&twin), Some(SkipReason::SignatureHighS)),
        (digest(&zero), Some(SkipReason::AmountZero)),
    ];
    assert_eq!(outcome.skipped, want, "{}", chain.name());
    // One transfer per payee, the sums of their mandates.
    let transfers: Vec<_> = outcome
        .receipt
        .logs
        .iter()
        .filter_map(decode::<contract::TestToken::Transfer>)
        .map(|t| (t.to, t.value))
        .collect();
    assert_eq!(
        transfers,
        vec![(payee_a, U256::from(300u64)), (payee_b, U256::from(300u64))],
        "{}",
        chain.name()
    );
    assert_eq!(
        wallet.balance(chain, payer_tx.address(), token).await.unwrap(),
        U256::from(4_400u64)
    );
    assert_eq!(
        contract::token_balance(chain, token, payee_a).await.unwrap(),
        U256::from(300u64)
    );
    assert!(
        wallet
            .nonce_used(chain, payer_tx.address(), token, U256::from(3u64))
            .await
            .unwrap()
    );
    assert!(
        !wallet
            .nonce_used(chain, payer_tx.address(), token, U256::from(4u64))
            .await
            .unwrap()
    );
    // The same batch again settles nothing: every nonce is used (the contract's guard).
    let again: Vec<_> = good.iter().map(|m| item(m, sign(m, &owner, wallet.address))).collect();
    let outcome = wallet.settle(chain, &sp, B256::repeat_byte(2), again).await.unwrap();
    assert!(outcome.settled.is_empty());
    assert!(outcome.skipped.iter().all(|(_, r)| *r == Some(SkipReason::NonceUsed)));
    // Only an authorised SP may settle.
    let stranger = TxKey::from_label("stranger");
    chain.fund(stranger.address()).await;
    assert!(
        wallet
            .settle(chain, &stranger, B256::repeat_byte(3), Vec::new())
            .await
            .is_err()
    );
    println!("{}: batch gas {}", chain.name(), outcome.receipt.gas_used);
}

#[test]
fn a_batch_settles_what_verifies_skips_the_rest_and_pays_each_payee_once() {
    on_both_chains!(batch_settles_and_skips);
}

async fn delay_bounds<C: TestChain>(chain: &C) {
    let key = chain.deployer();
    assert!(
        contract::deploy_wallet(chain, &key, 3599).await.is_err(),
        "below one hour"
    );
    assert!(
        contract::deploy_wallet(chain, &key, 365 * 86_400).await.is_ok(),
        "one year"
    );
    assert!(
        contract::deploy_wallet(chain, &key, 365 * 86_400 + 1).await.is_err(),
        "above one year"
    );
    // A delay that would wrap the uint64 unlock time (and so unlock at once) is refused.
    assert!(
        contract::deploy_wallet(chain, &key, u64::MAX).await.is_err(),
        "2^64 - 1"
    );
}

#[test]
fn the_withdrawal_delay_is_bounded_on_both_sides() {
    on_both_chains!(delay_bounds);
}
