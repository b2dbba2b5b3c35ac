//! The settlement worker on both chains (embedded EVM and anvil): receipted mandates settle in
//! batches, funds come from the chain's events, a crash between any two steps loses nothing and
//! settles nothing twice, and a batch whose SP nonce went elsewhere is abandoned and redone.
//! Every scenario runs on each ledger backend (`common::backends`: SQLite, and Postgres when
//! configured) on each chain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aep2::crypto::secp256k1::SecretKey;
use aep2::{Domain, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, Mandate, PayerKey, SpKey, U256 as CoreU256};
use aep2_evm::contract::{self, Wallet};
use aep2_evm::devnet::{CHAIN_ID, TestChain};
use aep2_evm::{Chain, ChainError, ChainResult, Head, Log, SignedTx, TxKey, TxReceipt, TxRequest};
use aep2_replay::db::Backend;
use aep2_sp::settlement::{SettlementOptions, Settler, reconcile};
use aep2_sp::{BatchState, Config, Ledger, LedgerOptions, Location, Processor, Status};
use alloy::primitives::{Address, B256, Bytes, U256};

fn evm(a: Address) -> EvmAddress {
    EvmAddress(a.0.0)
}

struct World {
    wallet: Address,
    token: Address,
    sp_tx: TxKey,
    payer: TxKey,
    processor: Processor,
    location: Location,
    _dir: tempdir::Dir,
}

/// Runs `scenario` on each ledger backend, on both chains (the embedded EVM, and anvil when
/// installed), each run on a new ledger.
macro_rules! on_both_chains_and_ledgers {
    ($scenario:ident) => {{
        for backend in common::backends() {
            eprintln!("{}: ledger on {backend:?}", stringify!($scenario));
            let rt = aep2_evm::devnet::runtime();
            rt.block_on($scenario(&aep2_evm::devnet::embedded(), backend));
            if let Some(anvil) = aep2_evm::devnet::Anvil::start() {
                rt.block_on(async {
                    let chain = aep2_evm::devnet::rpc(&anvil).await;
                    $scenario(&chain, backend).await
                });
            }
        }
    }};
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    pub fn new(name: &str) -> Dir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "aep2-settlement-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

/// Deploys token and wallet, authorises the SP, and funds the payer on chain with `deposit`; the
/// SP's ledger is new, on `backend`.
async fn world<C: TestChain>(chain: &C, deposit: u64, backend: Backend) -> World {
    let deployer = chain.deployer();
    let wallet = contract::deploy_wallet(chain, &deployer, 3 * 3600).await.unwrap();
    let token = contract::deploy_token(chain, &deployer, "USDT").await.unwrap();
    let sp_tx = TxKey::from_label(&format!("sp-tx-{}", chain.name()));
    let payer = TxKey::from_label(&format!("payer-{}", chain.name()));
    chain.fund(sp_tx.address()).await;
    chain.fund(payer.address()).await;
    let w = Wallet { address: wallet };
    w.set_settlement_processor(chain, &deployer, sp_tx.address(), true)
        .await
        .unwrap();
    contract::mint(chain, &deployer, token, payer.address(), U256::from(deposit))
        .await
        .unwrap();
    w.deposit(chain, &payer, token, U256::from(deposit)).await.unwrap();
    let dir = tempdir::new(chain.name());
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: CHAIN_ID,
        verifying_contract: evm(wallet),
    });
    let location = match backend {
        Backend::Sqlite => Location::Sqlite(dir.0.join("ledger.db")),
        Backend::Postgres => common::location(backend, chain.name()),
    };
    let mut config = Config::new(&location, vec![domain]);
    config.secp256k1_key = Some(SpKey::Secp256k1(SecretKey::from_bytes(&[7; 32]).unwrap()));
    let ledger = Ledger::open(&config.database, &LedgerOptions::default()).unwrap();
    let processor = Processor::new(&config, ledger).unwrap();
    World {
        wallet,
        token,
        sp_tx,
        payer,
        processor,
        location,
        _dir: dir,
    }
}

impl World {
    /// Signs and enqueues mandate `n` of `amount` to `payee`, as a payee would forward it.
    fn pay(&self, n: u64, payee: Address, amount: u64, now: u64) -> [u8; 32] {
        let m = EvmMandate {
            owner: evm(self.payer.address()),
            token: evm(self.token),
            payee: evm(payee),
            amount: CoreU256::from_u64(amount),
            nonce: CoreU256::from_u64(1000 + n),
            deadline: now + 600,
            reference: [n as u8; 32],
        };
        let domain = Domain::Eip712(Eip712Domain {
            chain_id: CHAIN_ID,
            verifying_contract: evm(self.wallet),
        });
        let key = PayerKey::Secp256k1(SecretKey::from_bytes(&self.payer.secret_bytes()).unwrap());
        let (sm, _) = aep2::sign_mandate(&Mandate::Eip712(m), &domain, &key, EnvelopeForm::Mvp).unwrap();
        let body = aep2::json::to_compact(&sm.to_json());
        self.processor.enqueue(body.as_bytes(), now).unwrap().mandate.mandate_id
    }

    fn ledger(&self) -> &Ledger {
        self.processor.ledger()
    }
}

fn reconcile_domain(w: &World) -> String {
    aep2_sp::domain_key(&Domain::Eip712(Eip712Domain {
        chain_id: CHAIN_ID,
        verifying_contract: evm(w.wallet),
    }))
}

fn options(max_items: usize) -> SettlementOptions {
    SettlementOptions {
        max_items,
        max_age: 0,
        ..SettlementOptions::default()
    }
}

async fn now_of<C: Chain>(chain: &C) -> u64 {
    chain.head().await.unwrap().timestamp
}

/// Ticks until nothing is in flight and nothing is queued.
async fn settle_all<C: Chain>(settler: &Settler<'_, C>, chain: &C) -> usize {
    let mut ticks = 0;
    loop {
        let t = settler.tick(now_of(chain).await).await.unwrap();
        ticks += 1;
        if !t.in_flight && t.sent.is_none() && t.confirmed.is_none() && t.abandoned.is_none() && ticks > 1 {
            return ticks;
        }
        assert!(ticks < 200, "settlement did not finish");
    }
}

async fn receipted_mandates_settle_in_batches<C: TestChain>(chain: &C, backend: Backend) {
    let w = world(chain, 100_000, backend).await;
    let settler = Settler::new(chain, w.ledger(), w.wallet, w.sp_tx.clone(), options(4));
    // The deposit reaches the ledger from the chain's event.
    let t = settler.tick(now_of(chain).await).await.unwrap();
    assert_eq!(t.funds_events, 1, "{}", chain.name());
    let now = now_of(chain).await;
    let payees = [Address::repeat_byte(0xa1), Address::repeat_byte(0xb2)];
    let ids: Vec<_> = (0..10)
        .map(|n| w.pay(n, payees[(n % 2) as usize], 100 + n, now))
        .collect();
    settle_all(&settler, chain).await;
    for id in &ids {
        let m = w.ledger().mandate(id).unwrap().unwrap();
        assert_eq!(m.status, Status::Settled, "{}", chain.name());
        assert!(m.settlement.tx.is_some() && m.settlement.block.is_some());
    }
    let batches = w.ledger().batches(None, Some(BatchState::Confirmed)).unwrap();
    assert_eq!(batches.len(), 3, "10 mandates at 4 per batch");
    assert!(w.ledger().audit().unwrap().is_empty(), "{:?}", w.ledger().audit());
    let paid: u64 = (0..10).map(|n| 100 + n).sum();
    let account = &w
        .ledger()
        .accounts(&EvmAddress(w.payer.address().0.0).to_checksum(), None)
        .unwrap()[0];
    assert_eq!(account.balance, CoreU256::from_u64(100_000 - paid));
    assert_eq!(account.reserved, CoreU256::ZERO);
    let onchain = Wallet { address: w.wallet }
        .balance(chain, w.payer.address(), w.token)
        .await
        .unwrap();
    assert_eq!(onchain, U256::from(100_000 - paid));
    let a = contract::token_balance(chain, w.token, payees[0]).await.unwrap();
    assert_eq!(
        a,
        U256::from((0..10).filter(|n| n % 2 == 0).map(|n| 100 + n).sum::<u64>())
    );
    println!("{}: 10 mandates settled in 3 batches", chain.name());
}

#[test]
fn receipted_mandates_settle_in_batches_and_the_ledger_matches_the_chain() {
    on_both_chains_and_ledgers!(receipted_mandates_settle_in_batches);
}

/// A chain whose broadcasts fail: the worker records the batch, then "crashes" before sending.
struct NoBroadcast<'a, C>(&'a C);

impl<C: Chain> Chain for NoBroadcast<'_, C> {
    fn chain_id(&self) -> u64 {
        self.0.chain_id()
    }
    async fn head(&self) -> ChainResult<Head> {
        self.0.head().await
    }
    async fn nonce(&self, who: Address) -> ChainResult<u64> {
        self.0.nonce(who).await
    }
    async fn code(&self, who: Address) -> ChainResult<Bytes> {
        self.0.code(who).await
    }
    async fn call(&self, to: Address, data: Bytes) -> ChainResult<Bytes> {
        self.0.call(to, data).await
    }
    async fn sign(&self, key: &TxKey, tx: TxRequest) -> ChainResult<SignedTx> {
        self.0.sign(key, tx).await
    }
    async fn broadcast(&self, _tx: &SignedTx) -> ChainResult<()> {
        Err(ChainError::Unavailable("crashed before sending".into()))
    }
    async fn receipt(&self, hash: B256) -> ChainResult<Option<TxReceipt>> {
        self.0.receipt(hash).await
    }
    async fn logs(&self, address: Address, from: u64, to: u64) -> ChainResult<Vec<Log>> {
        self.0.logs(address, from, to).await
    }
}

async fn crashes_lose_nothing<C: TestChain>(chain: &C, backend: Backend) {
    let w = world(chain, 10_000, backend).await;
    let now = now_of(chain).await;
    let first = Settler::new(chain, w.ledger(), w.wallet, w.sp_tx.clone(), options(3));
    first.tick(now).await.unwrap();
    let ids: Vec<_> = (0..3).map(|n| w.pay(n, Address::repeat_byte(0xc3), 10, now)).collect();

    // 1. Crash after the batch is recorded, before its transaction is sent.
    let broken = NoBroadcast(chain);
    let crashed = Settler::new(&broken, w.ledger(), w.wallet, w.sp_tx.clone(), options(3));
    assert!(crashed.tick(now).await.is_err());
    let open = w.ledger().batches(None, Some(BatchState::Signed)).unwrap();
    assert_eq!(open.len(), 1);
    assert!(chain.receipt(B256::from(open[0].tx_hash)).await.unwrap().is_none());
    for id in &ids {
        assert_eq!(w.ledger().mandate(id).unwrap().unwrap().status, Status::Accepted);
    }
    // The restarted worker sends the recorded transaction, then confirms it.
    let restarted = Settler::new(chain, w.ledger(), w.wallet, w.sp_tx.clone(), options(3));
    settle_all(&restarted, chain).await;
    for id in &ids {
        assert_eq!(
            w.ledger().mandate(id).unwrap().unwrap().status,
            Status::Settled,
            "{}",
            chain.name()
        );
    }
    assert_eq!(w.ledger().batches(None, Some(BatchState::Confirmed)).unwrap().len(), 1);

    // 2. The SP nonce of a recorded batch goes to another transaction (an operator's, say):
    // the batch is abandoned and its mandates settle in a new one.
    let more: Vec<_> = (10..12)
        .map(|n| w.pay(n, Address::repeat_byte(0xc3), 10, now))
        .collect();
    assert!(crashed.tick(now).await.is_err());
    let open = w.ledger().batches(None, Some(BatchState::Signed)).unwrap();
    assert_eq!(open.len(), 1);
    let other = Wallet { address: w.wallet };
    other
        .settle(chain, &w.sp_tx, B256::repeat_byte(9), Vec::new())
        .await
        .unwrap();
    // Within the grace the worker waits for a receipt (nodes report the nonce first) ...
    let t = restarted.tick(now_of(chain).await).await.unwrap();
    assert_eq!(t.abandoned, None, "{}", chain.name());
    // ... after it, the batch is abandoned.
    let later = now_of(chain).await + SettlementOptions::default().abandon_after;
    let t = restarted.tick(later).await.unwrap();
    assert_eq!(t.abandoned, Some(open[0].batch_id), "{}", chain.name());
    settle_all(&restarted, chain).await;
    for id in &more {
        assert_eq!(
            w.ledger().mandate(id).unwrap().unwrap().status,
            Status::Settled,
            "{}",
            chain.name()
        );
    }
    assert_eq!(w.ledger().batches(None, Some(BatchState::Abandoned)).unwrap().len(), 1);

    // 3. Replaying a confirmed batch's transaction changes nothing: nothing settles twice.
    let confirmed = w.ledger().batches(None, Some(BatchState::Confirmed)).unwrap();
    for b in &confirmed {
        let tx = SignedTx {
            hash: B256::from(b.tx_hash),
            from: w.sp_tx.address(),
            nonce: b.sp_nonce,
            raw: Bytes::from(b.raw_tx.clone()),
            fees: Default::default(),
        };
        let _ = chain.broadcast(&tx).await;
    }
    let onchain = other.balance(chain, w.payer.address(), w.token).await.unwrap();
    assert_eq!(onchain, U256::from(10_000 - 50));
    assert!(w.ledger().audit().unwrap().is_empty(), "{:?}", w.ledger().audit());

    // 4. The ledger and the chain agree after all that; a planted difference is reported.
    let r = reconcile(chain, w.ledger(), w.wallet, 0).await.unwrap();
    assert_eq!((r.mandates, r.accounts), (5, 1), "{}", chain.name());
    assert!(r.differences.is_empty(), "{}: {:?}", chain.name(), r.differences);
    common::raw_ledger(&w.location)
        .write("plant", |tx| {
            tx.execute(
                "UPDATE mandates SET status = 'accepted', settled_tx = NULL WHERE mandate_id = ?1",
                aep2_replay::params![ids[0]],
            )
        })
        .unwrap();
    let stray = aep2_sp::Deposit {
        id: "planted".into(),
        account: w.ledger().domain_accounts(&reconcile_domain(&w)).unwrap()[0]
            .account
            .clone(),
        amount: CoreU256::from_u64(1),
    };
    w.ledger().deposit(&stray, now).unwrap();
    let r = reconcile(chain, w.ledger(), w.wallet, 0).await.unwrap();
    let kinds: Vec<_> = r.differences.iter().map(|d| (d.kind, d.subject.clone())).collect();
    let account = format!(
        "{}/{}",
        evm(w.payer.address()).to_checksum(),
        evm(w.token).to_checksum()
    );
    assert_eq!(
        kinds,
        vec![
            ("mandate_state", B256::from(ids[0]).to_string()),
            ("account_balance", account)
        ],
        "{}",
        chain.name()
    );
    println!(
        "{}: crash before sending, foreign nonce and replays: nothing lost, nothing twice; reconcile agrees, then finds the two planted differences",
        chain.name()
    );
}

#[test]
fn a_crash_between_any_two_steps_loses_nothing_and_settles_nothing_twice() {
    on_both_chains_and_ledgers!(crashes_lose_nothing);
}

async fn withdrawal_requests_stop_acceptance<C: TestChain>(chain: &C, backend: Backend) {
    let w = world(chain, 1_000, backend).await;
    let settler = Settler::new(chain, w.ledger(), w.wallet, w.sp_tx.clone(), options(10));
    settler.tick(now_of(chain).await).await.unwrap();
    let now = now_of(chain).await;
    w.pay(1, Address::repeat_byte(0xd4), 300, now);
    // The payer asks to withdraw 600: from the event on, only 100 more may be accepted.
    Wallet { address: w.wallet }
        .request_withdrawal(chain, &w.payer, w.token, U256::from(600u64))
        .await
        .unwrap();
    settler.tick(now_of(chain).await).await.unwrap();
    let body_for = |n: u64, amount: u64| {
        let m = EvmMandate {
            owner: evm(w.payer.address()),
            token: evm(w.token),
            payee: evm(Address::repeat_byte(0xd4)),
            amount: CoreU256::from_u64(amount),
            nonce: CoreU256::from_u64(5000 + n),
            deadline: now + 600,
            reference: [9; 32],
        };
        let domain = Domain::Eip712(Eip712Domain {
            chain_id: CHAIN_ID,
            verifying_contract: evm(w.wallet),
        });
        let key = PayerKey::Secp256k1(SecretKey::from_bytes(&w.payer.secret_bytes()).unwrap());
        let (sm, _) = aep2::sign_mandate(&Mandate::Eip712(m), &domain, &key, EnvelopeForm::Mvp).unwrap();
        aep2::json::to_compact(&sm.to_json())
    };
    let refused = w.processor.enqueue(body_for(1, 101).as_bytes(), now).unwrap_err();
    assert_eq!(refused.code(), "insufficient_funds", "{}", chain.name());
    w.processor.enqueue(body_for(2, 100).as_bytes(), now).unwrap();
    // Everything accepted settles, before the withdrawal unlocks.
    settle_all(&settler, chain).await;
    assert_eq!(w.ledger().counts().unwrap().settled, 2);
    assert!(w.ledger().audit().unwrap().is_empty(), "{:?}", w.ledger().audit());
    println!(
        "{}: a withdrawal request stopped acceptance at once; what was accepted settled",
        chain.name()
    );
}

#[test]
fn a_withdrawal_request_stops_new_acceptance_and_accepted_mandates_still_settle() {
    on_both_chains_and_ledgers!(withdrawal_requests_stop_acceptance);
}

async fn expired_mandates_fail_unsent<C: TestChain>(chain: &C, backend: Backend) {
    let w = world(chain, 10_000, backend).await;
    let settler = Settler::new(chain, w.ledger(), w.wallet, w.sp_tx.clone(), options(10));
    settle_all(&settler, chain).await; // the deposit
    let now = now_of(chain).await;
    let late = w.pay(1, Address::repeat_byte(0x51), 100, now);
    // The chain passes the mandate's deadline (now + 600) before any batch took it.
    chain.set_time(now + 601).await;
    contract::mint(
        chain,
        &chain.deployer(),
        w.token,
        Address::repeat_byte(1),
        U256::from(1u64),
    )
    .await
    .unwrap();
    let t = settler.tick(now + 601).await.unwrap();
    assert_eq!(t.expired, 1, "{}", chain.name());
    assert!(t.sent.is_none(), "nothing left to send ({})", chain.name());
    let m = w.ledger().mandate(&late).unwrap().unwrap();
    assert_eq!(m.status, Status::Failed);
    assert_eq!(m.settlement.failure.as_deref(), Some("expired"));
    assert!(w.ledger().batches(None, None).unwrap().is_empty());
    // The reservation is released: the whole deposit is available again.
    let balance = w
        .ledger()
        .balance(&aep2_sp::AccountKey {
            domain: reconcile_domain(&w),
            payer: evm(w.payer.address()).to_checksum(),
            token: evm(w.token).to_checksum(),
        })
        .unwrap();
    assert_eq!(balance.available(), CoreU256::from_u64(10_000));
    assert!(w.ledger().audit().unwrap().is_empty(), "{:?}", w.ledger().audit());
}

#[test]
fn a_mandate_past_its_deadline_fails_as_expired_without_being_sent() {
    on_both_chains_and_ledgers!(expired_mandates_fail_unsent);
}

async fn funds_read_from_the_deployment<C: TestChain>(chain: &C, backend: Backend) {
    let w = world(chain, 10_000, backend).await;
    // A second deposit after `from_block`; the first (in `world`) is before it and not read.
    let from = chain.head().await.unwrap().number + 1;
    contract::mint(chain, &chain.deployer(), w.token, w.payer.address(), U256::from(500u64))
        .await
        .unwrap();
    Wallet { address: w.wallet }
        .deposit(chain, &w.payer, w.token, U256::from(500u64))
        .await
        .unwrap();
    let settler = Settler::new(
        chain,
        w.ledger(),
        w.wallet,
        w.sp_tx.clone(),
        SettlementOptions {
            from_block: from,
            ..options(10)
        },
    );
    settler.tick(now_of(chain).await).await.unwrap();
    let domain = reconcile_domain(&w);
    assert_eq!(
        w.ledger().chain_cursor(&domain).unwrap(),
        Some(chain.head().await.unwrap().number + 1)
    );
    let balance = w
        .ledger()
        .balance(&aep2_sp::AccountKey {
            domain,
            payer: evm(w.payer.address()).to_checksum(),
            token: evm(w.token).to_checksum(),
        })
        .unwrap();
    assert_eq!(balance.balance, CoreU256::from_u64(500), "{}", chain.name());
}

#[test]
fn funds_are_read_from_the_configured_first_block() {
    on_both_chains_and_ledgers!(funds_read_from_the_deployment);
}

/// anvil only: the embedded chain includes every transaction at once, so none gets stuck.
#[test]
fn a_batch_stuck_below_the_base_fee_is_replaced_with_higher_fees_and_settles_once() {
    let Some(anvil) = aep2_evm::devnet::Anvil::start() else {
        return;
    };
    let rt = aep2_evm::devnet::runtime();
    rt.block_on(async {
        let chain = aep2_evm::devnet::rpc(&anvil).await;
        for backend in common::backends() {
            let w = world(&chain, 10_000, backend).await;
            let opts = SettlementOptions {
                bump_after: 30,
                ..options(10)
            };
            let settler = Settler::new(&chain, w.ledger(), w.wallet, w.sp_tx.clone(), opts);
            settle_all(&settler, &chain).await; // the deposit
            let now = now_of(&chain).await;
            let id = w.pay(1, Address::repeat_byte(0x52), 100, now);
            // The batch is sent while nothing is mined; then the base fee jumps far above its fees.
            chain.raw("evm_setAutomine", serde_json::json!([false])).await.unwrap();
            let t = settler.tick(now).await.unwrap();
            assert!(t.sent.is_some());
            let batch = w.ledger().batches(None, Some(BatchState::Signed)).unwrap()[0].clone();
            let first = w.ledger().batch_attempts(&batch.batch_id).unwrap();
            assert_eq!(first.len(), 1);
            let high = first[0].fees.0.saturating_mul(50);
            chain
                .raw(
                    "anvil_setNextBlockBaseFeePerGas",
                    serde_json::json!([format!("{high:#x}")]),
                )
                .await
                .unwrap();
            chain.raw("evm_mine", serde_json::json!([])).await.unwrap();
            assert!(
                chain.receipt(B256::from(first[0].tx_hash)).await.unwrap().is_none(),
                "stuck"
            );
            // Before bump_after: the same transaction again. After: a replacement.
            let t = settler.tick(now + 10).await.unwrap();
            assert!(t.bumped.is_none());
            let t = settler.tick(now + 31).await.unwrap();
            assert_eq!(t.bumped, Some(batch.batch_id));
            let attempts = w.ledger().batch_attempts(&batch.batch_id).unwrap();
            assert_eq!(attempts.len(), 2);
            assert!(attempts[1].fees.0 > attempts[0].fees.0 && attempts[1].fees.1 > attempts[0].fees.1);
            chain.raw("evm_mine", serde_json::json!([])).await.unwrap();
            chain.raw("evm_setAutomine", serde_json::json!([true])).await.unwrap();
            let t = settler.tick(now + 32).await.unwrap();
            assert_eq!(t.confirmed, Some(batch.batch_id));
            let m = w.ledger().mandate(&id).unwrap().unwrap();
            assert_eq!(m.status, Status::Settled);
            assert_eq!(m.settlement.tx, Some(attempts[1].tx_hash));
            let confirmed = &w.ledger().batches(None, Some(BatchState::Confirmed)).unwrap()[0];
            assert_eq!(confirmed.tx_hash, attempts[1].tx_hash);
            assert!(chain.receipt(B256::from(attempts[0].tx_hash)).await.unwrap().is_none());
            assert_eq!(
                Wallet { address: w.wallet }
                    .balance(&chain, w.payer.address(), w.token)
                    .await
                    .unwrap(),
                U256::from(10_000 - 100)
            );
            assert!(w.ledger().audit().unwrap().is_empty(), "{:?}", w.ledger().audit());
        }
    });
}

/// Stores `sm` as accepted, directly in the ledger and without its lane counters: what a faulty
/// or compromised SP could submit, which the contract must hold to the lane's limits.
fn store(w: &World, sm: &aep2::SignedMandate, id: [u8; 32], now: u64) {
    let Mandate::Eip712(m) = &sm.mandate else {
        unreachable!()
    };
    let key = aep2::hash::keccak256(&[&id[..], b"nonce"].concat());
    let domain = reconcile_domain(w);
    w.ledger()
        .enqueue(&aep2_sp::ledger::NewMandate {
            mandate_id: id,
            nonce_key: key,
            profile: "eip712".into(),
            account: aep2_sp::AccountKey {
                domain,
                payer: m.owner.to_checksum(),
                token: m.token.to_checksum(),
            },
            payee: m.payee.to_checksum(),
            amount: m.amount,
            nonce: m.nonce.to_string(),
            deadline: m.deadline,
            reference: aep2::codec::hex_encode_0x(&m.reference),
            envelope: aep2::json::to_compact(&sm.to_json()),
            receipt: "{}".into(),
            enqueue_deadline: now + 300,
            now,
            submission_id: None,
            lanes: Vec::new(),
            request: None,
        })
        .unwrap();
}

async fn lane_mandates_settle<C: TestChain>(chain: &C, backend: Backend) {
    use aep2::{AccountId, Lane, SignedLane};
    let w = world(chain, 100_000, backend).await;
    let settler = Settler::new(chain, w.ledger(), w.wallet, w.sp_tx.clone(), options(10));
    settler.tick(now_of(chain).await).await.unwrap();
    let now = now_of(chain).await;
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: CHAIN_ID,
        verifying_contract: evm(w.wallet),
    });
    let key = |k: &TxKey| PayerKey::Secp256k1(SecretKey::from_bytes(&k.secret_bytes()).unwrap());
    let (a, b) = (TxKey::from_label("agent-a"), TxKey::from_label("agent-b"));
    let lane = |agent: &TxKey, parent: Option<&SignedLane>| Lane {
        profile: aep2::Profile::Eip712,
        owner: AccountId::Evm(evm(w.payer.address())),
        agent: AccountId::Evm(evm(agent.address())),
        token: AccountId::Evm(evm(w.token)),
        per_payment: CoreU256::from_u64(1000),
        total: CoreU256::from_u64(1000),
        max_payments: 0,
        period: 0,
        allowance: CoreU256::ZERO,
        payees: Vec::new(),
        valid_from: now - 10,
        valid_until: now + 86_400,
        purpose: "worker test".into(),
        parent: parent.map_or([0; 32], |p| p.lane.digest(&domain).unwrap().id),
        salt: [1; 32],
    };
    let root = aep2::sign_lane(&lane(&a, None), None, &domain, &key(&w.payer)).unwrap();
    let sub = aep2::sign_lane(&lane(&b, Some(&root)), Some(&root), &domain, &key(&a)).unwrap();
    let payee = Address::repeat_byte(0xa1);
    let under = |n: u64, amount: u64, chain: &[SignedLane], signer: &TxKey| {
        let m = EvmMandate {
            owner: evm(w.payer.address()),
            token: evm(w.token),
            payee: evm(payee),
            amount: CoreU256::from_u64(amount),
            nonce: CoreU256::from_u64(5000 + n),
            deadline: now + 600,
            reference: [n as u8; 32],
        };
        let (sm, d) =
            aep2::sign_lane_mandate(&Mandate::Eip712(m), &domain, &key(signer), EnvelopeForm::Mvp, chain).unwrap();
        store(&w, &sm, d.id, now);
        d.id
    };
    // One mixed batch: a plain mandate and two under the lanes.
    let plain = w.pay(1, payee, 100, now);
    let one = under(1, 600, std::slice::from_ref(&root), &a);
    let two = under(2, 300, &[root.clone(), sub.clone()], &b);
    settle_all(&settler, chain).await;
    for id in [plain, one, two] {
        let m = w.ledger().mandate(&id).unwrap().unwrap();
        assert_eq!(m.status, Status::Settled, "{} {:?}", chain.name(), m.settlement);
    }
    let batches = w.ledger().batches(None, Some(BatchState::Confirmed)).unwrap();
    assert_eq!(batches.len(), 1, "one mixed batch");
    // Then one beyond the root's total (an SP that accepted it anyway, or lost its counters):
    // the chain refuses it, and the worker records the code.
    let over = under(3, 200, &[root.clone(), sub.clone()], &b);
    settle_all(&settler, chain).await;
    let m = w.ledger().mandate(&over).unwrap().unwrap();
    assert_eq!(m.status, Status::Failed, "{}", chain.name());
    assert_eq!(m.settlement.failure.as_deref(), Some("lane_total_exceeded"));
    assert!(w.ledger().audit().unwrap().is_empty(), "{:?}", w.ledger().audit());
    let spent = Wallet { address: w.wallet }
        .lane_spent(chain, B256::from(root.lane.digest(&domain).unwrap().id))
        .await
        .unwrap();
    assert_eq!(spent, (U256::from(900u64), U256::from(2u64)));
    let onchain = Wallet { address: w.wallet }
        .balance(chain, w.payer.address(), w.token)
        .await
        .unwrap();
    assert_eq!(onchain, U256::from(100_000u64 - 1000));
}

#[test]
fn stored_lane_mandates_settle_through_the_lane_entry_point_in_a_mixed_batch() {
    on_both_chains_and_ledgers!(lane_mandates_settle);
}

async fn reverted_batches_halve<C: TestChain>(chain: &C, backend: Backend) {
    let w = world(chain, 100_000, backend).await;
    let settler = Settler::new(chain, w.ledger(), w.wallet, w.sp_tx.clone(), options(8));
    settler.tick(now_of(chain).await).await.unwrap();
    let now = now_of(chain).await;
    let ids: Vec<_> = (0..8).map(|n| w.pay(n, Address::repeat_byte(0xc3), 10, now)).collect();
    // The SP is de-authorised: every batch transaction reverts.
    let deployer = chain.deployer();
    let wallet = Wallet { address: w.wallet };
    wallet
        .set_settlement_processor(chain, &deployer, w.sp_tx.address(), false)
        .await
        .unwrap();
    let mut sizes = Vec::new();
    for _ in 0..40 {
        let t = settler.tick(now_of(chain).await).await.unwrap();
        if let Some(id) = t.sent {
            let b = w.ledger().batches(None, None).unwrap();
            let sent = b.iter().find(|x| x.batch_id == id).unwrap();
            sizes.push(sent.items);
        }
        if sizes.len() == 5 {
            break;
        }
    }
    // Each reverted batch halves the next one, down to one item given the whole transaction cap.
    assert_eq!(sizes, [8, 4, 2, 1, 1], "{}", chain.name());
    assert_eq!(settler.batch_cap(), 1);
    // Authorised again: the lone item settles and the batches grow back.
    wallet
        .set_settlement_processor(chain, &deployer, w.sp_tx.address(), true)
        .await
        .unwrap();
    settle_all(&settler, chain).await;
    for id in &ids {
        assert_eq!(w.ledger().mandate(id).unwrap().unwrap().status, Status::Settled);
    }
    assert!(settler.batch_cap() >= 4, "{}", settler.batch_cap());
    assert!(w.ledger().audit().unwrap().is_empty(), "{:?}", w.ledger().audit());
}

#[test]
fn a_reverted_batch_halves_the_next_so_no_item_can_hold_the_queue() {
    on_both_chains_and_ledgers!(reverted_batches_halve);
}
