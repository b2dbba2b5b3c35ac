//! Settlement figures of issue 11 (`cargo bench -p aep2-sp --bench settlement`; not a test: the
//! figures are printed, only correctness is asserted). One line per figure, with a stable label:
//!
//! 1. `settlement/gas-per-mandate/<chain>/<nonces>/<payees>/<path>`: gas per settled mandate of
//!    the debit wallet's `settle`, on the embedded EVM and on anvil. `single-x100` is the MVP's
//!    path, one mandate per transaction (100 transactions, each a batch of one; the average),
//!    against batches of 1, 10 and 100 in one transaction each. Nonces are either `random` (keccak
//!    of an index: every nonce a fresh bitmap word) or `sequential` (a random 248-bit prefix per
//!    measurement plus a counter in the low byte: a payer's nonces share words). Payees already
//!    hold the token (an SP pays the same payees again and again): `payees-10` cycles through ten
//!    of them, `payees-distinct` gives every mandate of a transaction its own. `vs-single` is the
//!    ratio to the `single-x100` of the same scenario, `vs-mvp` to the `single-x100` with random
//!    nonces (the MVP's payers choose random nonces); the goal is batch 100 ≤ 40 %.
//! 2. `settlement/burst-1000/<chain>`: 1,000 receipted mandates (`Processor::enqueue`, each with
//!    its receipt's `enqueueDeadline`), then the `Settler` (`max_items` 100, `max_age` 0) ticking
//!    until every one is settled: wall time, batches, gas, and the check that every settlement
//!    block's timestamp is at most its mandate's `enqueueDeadline` (on anvil the block's own
//!    timestamp from `eth_getBlockByNumber`; the embedded EVM has no block lookup, so there the
//!    bound is the head's timestamp once all is settled, which no settlement block exceeds).
//! 3. `settlement/throughput/<chain>`: mandates settled per second by the `Settler` (first tick to
//!    last confirmation) against `Processor::enqueue` alone (receipts per second, bodies signed
//!    before the clock starts), in the same run.
//!
//! The anvil half needs the pinned anvil (`cd crates/aep2-evm/contracts && npm ci`); without it
//! its lines say `skipped`. `AEP2_BENCH_BURST` changes the burst size (default 1000).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // a benchmark: a panic is the failure report

use aep2::crypto::secp256k1::SecretKey;
use aep2::{Domain, Eip712Domain, EnvelopeForm, EvmAddress, EvmMandate, Mandate, PayerKey, SpKey, U256 as CoreU256};
use aep2_evm::contract::{self, AEP2DebitWallet, Wallet, abi_mandate};
use aep2_evm::devnet::{Anvil, CHAIN_ID, TestChain, embedded, rpc, runtime};
use aep2_evm::{Chain, Rpc, TxKey};
use aep2_sp::settlement::{SettlementOptions, Settler};
use aep2_sp::{BatchState, Config, Ledger, LedgerOptions, Processor, Status};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use std::collections::HashMap;
use std::time::Instant;

fn evm(a: Address) -> EvmAddress {
    EvmAddress(a.0.0)
}

fn h(parts: &[&[u8]]) -> [u8; 32] {
    keccak256(parts.concat()).0
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("aep2-settle-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Token and wallet deployed, the SP authorised, the payer funded on chain with `deposit`.
struct Deployment {
    wallet: Address,
    token: Address,
    sp_tx: TxKey,
    payer: TxKey,
}

async fn deploy<C: TestChain>(chain: &C, label: &str, deposit: u64) -> Deployment {
    let deployer = chain.deployer();
    let wallet = contract::deploy_wallet(chain, &deployer, 3 * 3600).await.unwrap();
    let token = contract::deploy_token(chain, &deployer, "USDT").await.unwrap();
    let sp_tx = TxKey::from_label(&format!("bench-sp-tx-{label}-{}", chain.name()));
    let payer = TxKey::from_label(&format!("bench-payer-{label}-{}", chain.name()));
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
    Deployment {
        wallet,
        token,
        sp_tx,
        payer,
    }
}

impl Deployment {
    fn domain(&self) -> Domain {
        Domain::Eip712(Eip712Domain {
            chain_id: CHAIN_ID,
            verifying_contract: evm(self.wallet),
        })
    }

    fn key(&self) -> PayerKey {
        PayerKey::Secp256k1(SecretKey::from_bytes(&self.payer.secret_bytes()).unwrap())
    }

    fn mandate(&self, nonce: [u8; 32], payee: Address, amount: u64, deadline: u64, reference: [u8; 32]) -> Mandate {
        Mandate::Eip712(EvmMandate {
            owner: evm(self.payer.address()),
            token: evm(self.token),
            payee: evm(payee),
            amount: CoreU256::from_u64(amount),
            nonce: CoreU256(nonce),
            deadline,
            reference,
        })
    }

    /// A signed batch item, as `settle` takes it.
    fn item(&self, nonce: [u8; 32], payee: Address, amount: u64, deadline: u64) -> AEP2DebitWallet::Item {
        let m = self.mandate(nonce, payee, amount, deadline, h(&[b"ref", &nonce]));
        let (sm, _) = aep2::sign_mandate(&m, &self.domain(), &self.key(), EnvelopeForm::Mvp).unwrap();
        let Mandate::Eip712(em) = &sm.mandate else {
            unreachable!()
        };
        AEP2DebitWallet::Item {
            mandate: abi_mandate(em),
            signature: Bytes::from(aep2::codec::hex_decode_0x(&sm.signature).unwrap()),
        }
    }

    /// An `/enqueue` body (MVP envelope, compact JSON), as a payee forwards it.
    fn body(&self, nonce: [u8; 32], payee: Address, amount: u64, deadline: u64) -> String {
        let m = self.mandate(nonce, payee, amount, deadline, h(&[b"ref", &nonce]));
        let (sm, _) = aep2::sign_mandate(&m, &self.domain(), &self.key(), EnvelopeForm::Mvp).unwrap();
        aep2::json::to_compact(&sm.to_json())
    }
}

async fn now_of<C: Chain>(chain: &C) -> u64 {
    chain.head().await.unwrap().timestamp
}

// ---------------------------------------------------------------------------------------------
// 1. Gas per settled mandate

#[derive(Clone, Copy, PartialEq, Eq)]
enum Nonces {
    Random,
    Sequential,
}

impl Nonces {
    fn label(self) -> &'static str {
        match self {
            Nonces::Random => "random",
            Nonces::Sequential => "sequential",
        }
    }
}

#[derive(Clone, Copy)]
enum Payees {
    /// Ten payees, cycled.
    Ten,
    /// Every mandate of a transaction its own payee.
    Distinct,
}

impl Payees {
    fn label(self) -> &'static str {
        match self {
            Payees::Ten => "payees-10",
            Payees::Distinct => "payees-distinct",
        }
    }
}

/// Payees already holding the token (their balance slot is not new).
fn payee(i: usize) -> Address {
    Address::from_slice(&h(&[b"payee", &(i as u64).to_be_bytes()])[12..])
}

const DISTINCT_PAYEES: usize = 100;

/// Gas per settled mandate of one transaction settling `items` (all must settle).
async fn settle_gas<C: Chain>(chain: &C, d: &Deployment, tag: &[u8], items: Vec<AEP2DebitWallet::Item>) -> u64 {
    let n = items.len() as u64;
    let out = Wallet { address: d.wallet }
        .settle(chain, &d.sp_tx, B256::from(h(&[b"batch", tag])), items)
        .await
        .unwrap();
    assert_eq!(out.settled.len() as u64, n, "every item settles: {:?}", out.skipped);
    out.receipt.gas_used
}

/// The mean gas per mandate of each path of one scenario: single-x100, batch-1, batch-10, batch-100.
async fn gas_scenario<C: TestChain>(chain: &C, d: &Deployment, nonces: Nonces, payees: Payees) -> [f64; 4] {
    let deadline = now_of(chain).await + 3600;
    let scenario = format!("{}/{}", nonces.label(), payees.label());
    // Each measurement gets its own nonces; sequential ones their own bitmap word.
    let nonce_of = |measurement: usize, k: usize| -> [u8; 32] {
        let seed = h(&[
            scenario.as_bytes(),
            &(measurement as u64).to_be_bytes(),
            &(k as u64).to_be_bytes(),
        ]);
        match nonces {
            Nonces::Random => seed,
            Nonces::Sequential => {
                let mut n = h(&[scenario.as_bytes(), &(measurement as u64).to_be_bytes()]);
                n[31] = u8::try_from(k).unwrap();
                n
            }
        }
    };
    let payee_of = |k: usize| match payees {
        Payees::Ten => payee(k % 10),
        Payees::Distinct => payee(k % DISTINCT_PAYEES),
    };
    let mut out = [0.0; 4];
    // The MVP's path: one mandate per transaction, 100 transactions.
    let mut total = 0;
    for k in 0..100 {
        let item = d.item(nonce_of(0, k), payee_of(k), 1000 + k as u64, deadline);
        total += settle_gas(chain, d, format!("{scenario}/single/{k}").as_bytes(), vec![item]).await;
    }
    out[0] = total as f64 / 100.0;
    for (slot, (measurement, size)) in [(1, 1), (2, 10), (3, 100)].into_iter().enumerate() {
        let items = (0..size)
            .map(|k| d.item(nonce_of(measurement, k), payee_of(k), 1000 + k as u64, deadline))
            .collect();
        let gas = settle_gas(chain, d, format!("{scenario}/batch-{size}").as_bytes(), items).await;
        out[slot + 1] = gas as f64 / size as f64;
    }
    out
}

async fn gas_figures<C: TestChain>(chain: &C) {
    let d = deploy(chain, "gas", 1_000_000_000).await;
    // Payees that have been paid before: each holds the token already.
    let deployer = chain.deployer();
    for i in 0..DISTINCT_PAYEES {
        contract::mint(chain, &deployer, d.token, payee(i), U256::from(1u64))
            .await
            .unwrap();
    }
    for payees in [Payees::Ten, Payees::Distinct] {
        let mut mvp = 0.0;
        for nonces in [Nonces::Random, Nonces::Sequential] {
            let g = gas_scenario(chain, &d, nonces, payees).await;
            if nonces == Nonces::Random {
                mvp = g[0];
            }
            for (path, gas) in ["single-x100", "batch-1", "batch-10", "batch-100"].iter().zip(g) {
                println!(
                    "{:<72} {:>8.0} gas/mandate   vs-single {:>5.1} %   vs-mvp {:>5.1} %",
                    format!(
                        "settlement/gas-per-mandate/{}/{}/{}/{path}",
                        chain.name(),
                        nonces.label(),
                        payees.label()
                    ),
                    gas,
                    100.0 * gas / g[0],
                    100.0 * gas / mvp,
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2 and 3. A burst of receipted mandates through the Processor and the Settler

struct Burst {
    mode: Mode,
    /// Gas of every included batch transaction (the ledger's `gas` counts confirmed batches only).
    chain_gas: u64,
    /// Batches the worker abandoned (their mandates went back to the queue).
    abandoned: usize,
    /// (mandate id, settlement block, enqueueDeadline) of every mandate.
    settled: Vec<([u8; 32], u64, u64)>,
    enqueue_secs: f64,
    settle_secs: f64,
    batches: usize,
    ticks: usize,
    gas: u64,
    /// The head's timestamp once all is settled.
    final_head_time: u64,
}

/// How the bench drives the worker's ticks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One tick right after the other.
    BackToBack,
    /// After a tick that sent a transaction, the next once the chain has a new block (what a
    /// worker polling for new heads does).
    TickPerBlock,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::BackToBack => "back-to-back",
            Mode::TickPerBlock => "tick-per-block",
        }
    }
}

async fn burst<C: TestChain>(chain: &C, n: usize, mode: Mode) -> Burst {
    let d = deploy(chain, &format!("burst-{}", mode.label()), 1_000_000_000).await;
    let dir = TempDir::new(&format!("{}-{}", chain.name(), mode.label()));
    let mut config = Config::new(dir.0.join("ledger.db"), vec![d.domain()]);
    config.secp256k1_key = Some(SpKey::Secp256k1(SecretKey::from_bytes(&[7; 32]).unwrap()));
    let ledger = Ledger::open(&config.database, &LedgerOptions::default()).unwrap();
    let processor = Processor::new(&config, ledger).unwrap();
    let options = SettlementOptions {
        max_items: 100,
        max_age: 0,
        ..SettlementOptions::default()
    };
    let settler = Settler::new(chain, processor.ledger(), d.wallet, d.sp_tx.clone(), options);
    // The deposit reaches the ledger from the chain's event.
    assert_eq!(settler.tick(now_of(chain).await).await.unwrap().funds_events, 1);

    let now = now_of(chain).await;
    let deadline = now + 3600;
    let bodies: Vec<String> = (0..n)
        .map(|i| {
            let nonce = h(&[b"burst", &(i as u64).to_be_bytes()]);
            d.body(nonce, payee(i % 10), 1000 + (i % 1000) as u64, deadline)
        })
        .collect();
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for b in &bodies {
        let e = processor.enqueue(b.as_bytes(), now).unwrap();
        assert!(e.fresh);
        ids.push(e.mandate.mandate_id);
    }
    let enqueue_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut last_confirmation = started;
    let mut ticks = 0;
    let mut abandoned = 0;
    loop {
        let head = chain.head().await.unwrap();
        let head_before = head.number;
        let t = settler.tick(head.timestamp).await.unwrap();
        ticks += 1;
        if t.abandoned.is_some() {
            abandoned += 1;
        }
        if t.sent.is_some() && mode == Mode::TickPerBlock {
            // Tick again once the chain has a block after the one the tick saw.
            let waited = Instant::now();
            while chain.head().await.unwrap().number <= head_before && waited.elapsed().as_secs() < 10 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        if t.confirmed.is_some() {
            last_confirmation = Instant::now();
        }
        if !t.in_flight && processor.ledger().counts().unwrap().accepted == 0 {
            break;
        }
        assert!(ticks < 10 * n + 100, "{}: settlement did not finish", chain.name());
    }
    let settle_secs = last_confirmation.duration_since(started).as_secs_f64();

    let ledger = processor.ledger();
    let counts = ledger.counts().unwrap();
    assert_eq!((counts.settled, counts.failed), (n as u64, 0), "{}", chain.name());
    let mut settled = Vec::with_capacity(n);
    for id in &ids {
        let m = ledger.mandate(id).unwrap().unwrap();
        assert_eq!(m.status, Status::Settled, "{}", chain.name());
        settled.push((*id, m.settlement.block.unwrap(), m.enqueue_deadline));
    }
    let batches = ledger
        .batches(Some(settler.domain()), Some(BatchState::Confirmed))
        .unwrap();
    let all = ledger.batches(Some(settler.domain()), None).unwrap();
    assert_eq!(
        all.len(),
        batches.len() + abandoned,
        "{}: every batch confirmed or abandoned",
        chain.name()
    );
    assert!(ledger.audit().unwrap().is_empty(), "{:?}", ledger.audit());
    // Nothing paid twice: each payee holds exactly what its mandates owe (a fresh token).
    let mut owed = [0u64; 10];
    for i in 0..n {
        owed[i % 10] += 1000 + (i % 1000) as u64;
    }
    for (k, want) in owed.iter().enumerate() {
        let got = contract::token_balance(chain, d.token, payee(k)).await.unwrap();
        assert_eq!(
            got,
            U256::from(*want),
            "{}: payee {k} paid once per mandate",
            chain.name()
        );
    }
    // Gas the SP paid: every batch transaction the chain included, abandoned ones too.
    let mut chain_gas = 0;
    for b in &all {
        if let Some(r) = chain.receipt(B256::from(b.tx_hash)).await.unwrap() {
            chain_gas += r.gas_used;
        }
    }
    Burst {
        chain_gas,
        mode,
        abandoned,
        settled,
        enqueue_secs,
        settle_secs,
        batches: batches.len(),
        ticks,
        gas: batches.iter().map(|b| b.gas_used.unwrap()).sum(),
        final_head_time: now_of(chain).await,
    }
}

fn report_burst(chain: &str, n: usize, b: &Burst, block_time: &HashMap<u64, u64>, how: &str) {
    let mode = b.mode.label();
    let mut late = 0;
    let mut min_slack = u64::MAX;
    for (_, block, enqueue_deadline) in &b.settled {
        let t = block_time.get(block).copied().unwrap_or(b.final_head_time);
        if t > *enqueue_deadline {
            late += 1;
        } else {
            min_slack = min_slack.min(enqueue_deadline - t);
        }
    }
    println!(
        "{:<72} {n} settled in {:.3} s, {} batches confirmed, {} abandoned, {} ticks, \
         {:.0} gas/mandate (ledger), {:.0} gas/mandate (chain)",
        format!("settlement/burst-{n}/{chain}/{mode}"),
        b.settle_secs,
        b.batches,
        b.abandoned,
        b.ticks,
        b.gas as f64 / n as f64,
        b.chain_gas as f64 / n as f64,
    );
    println!(
        "{:<72} {}/{n} settled at or before their enqueueDeadline (least slack {min_slack} s; {how})",
        format!("settlement/burst-{n}/{chain}/{mode}/before-enqueue-deadline"),
        n - late,
    );
    assert_eq!(late, 0, "{chain}: {late} mandates settled after their enqueueDeadline");
    let enq = n as f64 / b.enqueue_secs;
    let set = n as f64 / b.settle_secs;
    println!(
        "{:<72} {enq:>8.0} receipts/s",
        format!("settlement/throughput/{chain}/{mode}/enqueue")
    );
    println!(
        "{:<72} {set:>8.0} mandates/s   {:.2}x enqueue",
        format!("settlement/throughput/{chain}/{mode}/settler"),
        set / enq
    );
}

async fn block_times(chain: &Rpc, blocks: impl Iterator<Item = u64>) -> HashMap<u64, u64> {
    let mut out = HashMap::new();
    for b in blocks {
        if out.contains_key(&b) {
            continue;
        }
        let v = chain
            .raw("eth_getBlockByNumber", serde_json::json!([format!("0x{b:x}"), false]))
            .await
            .unwrap();
        let ts = v["timestamp"].as_str().unwrap();
        out.insert(b, u64::from_str_radix(ts.trim_start_matches("0x"), 16).unwrap());
    }
    out
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let n: usize = std::env::var("AEP2_BENCH_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rt = runtime();
    let started = Instant::now();

    let chain = embedded();
    rt.block_on(gas_figures(&chain));
    for mode in [Mode::BackToBack, Mode::TickPerBlock] {
        let chain = embedded();
        let b = rt.block_on(burst(&chain, n, mode));
        report_burst(
            "embedded",
            n,
            &b,
            &HashMap::new(),
            "bound: the head's timestamp after the last batch",
        );
    }

    match Anvil::start() {
        Some(anvil) => rt.block_on(async {
            let chain = rpc(&anvil).await;
            gas_figures(&chain).await;
            for mode in [Mode::BackToBack, Mode::TickPerBlock] {
                let b = burst(&chain, n, mode).await;
                let times = block_times(&chain, b.settled.iter().map(|s| s.1)).await;
                report_burst("anvil", n, &b, &times, "each settlement block's own timestamp");
            }
        }),
        None => {
            println!(
                "{:<72} skipped: anvil not installed",
                "settlement/gas-per-mandate/anvil"
            );
            println!(
                "{:<72} skipped: anvil not installed",
                format!("settlement/burst-{n}/anvil")
            );
            println!("{:<72} skipped: anvil not installed", "settlement/throughput/anvil");
        }
    }
    eprintln!("settlement bench: {:.1} s", started.elapsed().as_secs_f64());
}
