//! Loopback benchmark (`cargo bench -p aep2-axum --bench paid`; not a test):
//!
//! 1. requests/s and p50/p99 latency of the paid Intent Mode route (`GET /paid/intent`: verify,
//!    SQLite payment store, `POST /enqueue` to the real SP with its durable SQLite ledger, receipt
//!    check) against the same content unpaid (`GET /free`), in one run, with `AEP2_BENCH_CONNS`
//!    concurrent connections (default 8) sending `AEP2_BENCH_REQUESTS` requests each way
//!    (default 2000). Every paid request carries its own mandate, signed before the clock starts.
//! 2. SP enqueues/s through `Processor::enqueue` (verify, sign the receipt, one ledger
//!    transaction) from `AEP2_BENCH_CONNS` threads on the durable SQLite file (WAL,
//!    `synchronous=FULL`, group commit) against the same path on an in-memory SQLite ledger, and
//!    verification alone on one thread (the unit the paid path is measured in).
//! 3. `paid GET /paid/intent, stores in memory`: the same route with the payee's store and the
//!    SP's ledger in memory (nothing durable, no fsync): what the paid path costs apart from its
//!    stores, so the table separates the durability's share from the HTTP hops', the
//!    signatures' and the rest.
//! 4. With `AEP2_BENCH_POSTGRES` set to a `postgres://` URL, the paid route with both stores on
//!    Postgres (`paid GET /paid/intent, Postgres`) and SP enqueues on a Postgres ledger
//!    (`SP enqueue, Postgres`), each in a new schema of its own.
//!
//! Prints a table with the ratios.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report

use aep2::crypto::secp256k1::SecretKey;
use aep2::json::to_compact;
use aep2::{AccountId, Domain, Eip712Domain, EvmAddress, PayeePolicy, SpKey, U256, Verifier};
use aep2_axum::agent::{HttpClient, Payer};
use aep2_axum::payee::{PayeeConfig, ReplayConfig};
use aep2_x402::{PAYMENT_SIGNATURE, PaymentRequirements};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PRICE: u64 = 1000;

/// The fewest verifications the `verification alone` row times.
const VERIFICATIONS: usize = 20_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Run {
    label: &'static str,
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

fn domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse("0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912").unwrap(),
    })
}

fn key(label: &str) -> SecretKey {
    SecretKey::from_bytes(&aep2::hash::keccak256(label.as_bytes())).unwrap()
}

/// `count` requests over `conns` connections; `headers[i]` is request i's payment header, if any.
async fn load(label: &'static str, url: &str, conns: usize, headers: Vec<Option<String>>) -> Run {
    let count = headers.len();
    let per = count.div_ceil(conns);
    let chunks: Vec<Vec<Option<String>>> = headers.chunks(per).map(<[_]>::to_vec).collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let client = HttpClient::new();
            let mut lat = Vec::with_capacity(chunk.len());
            for h in chunk {
                let t = Instant::now();
                let pairs: Vec<(&str, &str)> = h.as_deref().map(|v| (PAYMENT_SIGNATURE, v)).into_iter().collect();
                let reply = client.send("GET", &url, &pairs, b"").await.unwrap();
                assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Run {
        label,
        count,
        elapsed,
        latencies,
    }
}

/// A settlement processor and a payee in front of it, in process, and the payer's pre-signed
/// mandates for the paid route.
struct Stack {
    payer: SecretKey,
    sp_key: SpKey,
    payee: EvmAddress,
    usdc: EvmAddress,
    requests: usize,
    conns: usize,
}

impl Stack {
    /// Starts the SP on `sp_config` (the payer funded; on an in-memory ledger if `sp_in_memory`)
    /// and a payee storing in `replay`; returns the payee's base URL and one payment header per
    /// paid request, nonces from `first_nonce`.
    async fn start(
        &self,
        sp_config: &aep2_sp::Config,
        sp_in_memory: bool,
        replay: ReplayConfig,
        first_nonce: u64,
    ) -> (String, Vec<Option<String>>) {
        let account = aep2_sp::config::account_key(
            &domain(),
            &AccountId::Evm(self.payer.address()),
            &AccountId::Evm(self.usdc),
        )
        .unwrap();
        let deposit = aep2_sp::Deposit {
            id: "bench".into(),
            account,
            amount: U256::from_u64(PRICE * (self.requests as u64 + 10)),
        };
        let sp_addr = if sp_in_memory {
            // The service's own router and connection handling, on a processor whose ledger is
            // in memory (`bind` opens the configured database).
            let ledger = aep2_sp::Ledger::open_in_memory().unwrap();
            ledger.deposit(&deposit, aep2_sp::unix_now()).unwrap();
            let state = Arc::new(aep2_sp::service::AppState {
                processor: aep2_sp::Processor::new(sp_config, ledger).unwrap(),
                limits: sp_config.http,
                audit_token: None,
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(aep2_sp::service::serve_router(
                listener,
                aep2_sp::service::router(state.clone()),
                state.limits,
                Duration::from_secs(1),
                aep2_sp::service::rejection_body,
                std::future::pending(),
            ));
            addr
        } else {
            let sp = aep2_sp::service::bind(sp_config).await.unwrap();
            let addr = sp.local_addr().unwrap();
            sp.state()
                .processor
                .ledger()
                .deposit(&deposit, aep2_sp::unix_now())
                .unwrap();
            tokio::spawn(sp.serve(std::future::pending()));
            addr
        };
        let mut config = PayeeConfig::new(
            domain(),
            self.payee.into(),
            self.usdc.into(),
            U256::from_u64(PRICE),
            &format!("http://{sp_addr}"),
            self.sp_key.id(),
        );
        config.replay = replay;
        config.http.max_connections = self.conns * 2;
        let bound = aep2_axum::payee::bind(&config).await.unwrap();
        let base = format!("http://{}", bound.local_addr().unwrap());
        tokio::spawn(bound.serve(std::future::pending()));
        // Signed before the clock starts: one mandate per paid request.
        let payer = Payer::new(self.payer.clone(), domain(), first_nonce);
        let policy =
            PayeePolicy::new(self.payee.into(), self.usdc.into(), U256::from_u64(PRICE)).with_settlement_window(300);
        let terms = PaymentRequirements::for_policy(&policy, &domain(), 60);
        let url = format!("{base}/paid/intent");
        let bound_hash = aep2_x402::request_hash("GET", &url, b"").unwrap();
        let deadline = aep2_sp::unix_now() + 1800;
        let headers = (0..self.requests)
            .map(|_| {
                let signed = payer.sign_for(&terms, bound_hash, deadline).unwrap();
                Some(aep2_x402::payment_signature(&terms, &signed.to_json()))
            })
            .collect();
        (base, headers)
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it, and a
    // timed run has no place in a test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("paid: a benchmark; run it with `cargo bench -p aep2-axum --bench paid`");
        return;
    }
    let requests = env_usize("AEP2_BENCH_REQUESTS", 2000);
    let conns = env_usize("AEP2_BENCH_CONNS", 8).max(1);
    let enqueues = env_usize("AEP2_BENCH_ENQUEUES", 1000);
    let dir = std::env::temp_dir().join(format!("aep2-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let usdc = EvmAddress::parse("0x036CbD53842c5426634e7929541eC2318f3dCF7e").unwrap();
    let payee = EvmAddress::parse("0xaAD167617dF02Dd30208722c88d9027a2fDD8812").unwrap();
    let sp_key = SpKey::Secp256k1(key("bench-sp"));
    let payer_key = key("bench-payer");

    let pg_url = std::env::var("AEP2_BENCH_POSTGRES").ok();
    // A new schema per store and run: an earlier run's mandates would be re-submissions.
    let pg_location = |store: &str| {
        pg_url.as_ref().map(|url| {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}schema=aep2_bench_{store}_{stamp}")
        })
    };
    let (http_runs, sp_runs) = rt.block_on(async {
        let stack = Stack {
            payer: payer_key.clone(),
            sp_key: sp_key.clone(),
            payee,
            usdc,
            requests,
            conns,
        };
        let mut sp_config = aep2_sp::Config::new(dir.join("ledger.db"), vec![domain()]);
        sp_config.secp256k1_key = Some(sp_key.clone());
        let (base, headers) = stack
            .start(&sp_config, false, ReplayConfig::Sqlite(dir.join("replay.db")), 1)
            .await;
        let url = format!("{base}/paid/intent");
        // Warm both paths (connections, caches, SQLite pages) outside the measurement.
        let _ = load("warm-up", &format!("{base}/free"), conns, vec![None; conns * 4]).await;
        let free = load("unpaid GET /free", &format!("{base}/free"), conns, vec![None; requests]).await;
        let paid = load("paid GET /paid/intent", &url, conns, headers).await;
        // Nonces of their own (1 ..= requests went to the durable run), so that no two runs
        // share a mandate.
        let (base, headers) = stack
            .start(
                &sp_config,
                true,
                ReplayConfig::Memory(requests + 16),
                requests as u64 + 1,
            )
            .await;
        let _ = load("warm-up", &format!("{base}/free"), conns, vec![None; conns * 4]).await;
        let in_memory = load(
            "paid GET /paid/intent, stores in memory",
            &format!("{base}/paid/intent"),
            conns,
            headers,
        )
        .await;
        let mut http_runs = vec![free, paid, in_memory];
        if let (Some(ledger), Some(replay)) = (pg_location("ledger"), pg_location("payee")) {
            let pg_config = aep2_sp::Config::new(aep2_sp::Location::parse(&ledger), vec![domain()]);
            let mut pg_config = pg_config;
            pg_config.secp256k1_key = Some(sp_key.clone());
            // Nonces of their own: the runs above used 1 ..= 2 × requests.
            let (base, headers) = stack
                .start(
                    &pg_config,
                    false,
                    ReplayConfig::Postgres(replay),
                    2 * requests as u64 + 1,
                )
                .await;
            let url = format!("{base}/paid/intent");
            let _ = load("warm-up", &format!("{base}/free"), conns, vec![None; conns * 4]).await;
            http_runs.push(load("paid GET /paid/intent, Postgres", &url, conns, headers).await);
        }

        // SP enqueues, without HTTP: the same processor on a file ledger, on a memory ledger, and
        // verification alone.
        let sp_payer = Payer::new(key("bench-sp-payer"), domain(), 1);
        let deadline = aep2_sp::unix_now() + 1800;
        let envelopes: Vec<String> = (0..enqueues)
            .map(|_| {
                let s = sp_payer
                    .sign(payee, usdc, U256::from_u64(1), deadline, [9; 32])
                    .unwrap();
                to_compact(&s.to_json())
            })
            .collect();
        let fund = |ledger: &aep2_sp::Ledger| {
            let account =
                aep2_sp::config::account_key(&domain(), &AccountId::Evm(sp_payer.address()), &AccountId::Evm(usdc))
                    .unwrap();
            let d = aep2_sp::Deposit {
                id: "bench-sp".into(),
                account,
                amount: U256::from_u64(enqueues as u64 + 1),
            };
            ledger.deposit(&d, aep2_sp::unix_now()).unwrap();
        };
        // From `threads` threads at once (the SP rows: an SP serves many payees concurrently,
        // and group commit shares a commit among them), the envelopes split between them.
        let timed = |label: &'static str, threads: usize, f: &(dyn Fn(&str) + Sync)| {
            let per = envelopes.len().div_ceil(threads.max(1));
            let started = Instant::now();
            let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
                let handles: Vec<_> = envelopes
                    .chunks(per)
                    .map(|chunk| {
                        scope.spawn(move || {
                            chunk
                                .iter()
                                .map(|e| {
                                    let t = Instant::now();
                                    f(e);
                                    t.elapsed()
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
            });
            let elapsed = started.elapsed();
            latencies.sort();
            Run {
                label,
                count: enqueues,
                elapsed,
                latencies,
            }
        };
        let file_ledger =
            aep2_sp::Ledger::open(dir.join("bench-ledger.db"), &aep2_sp::LedgerOptions::default()).unwrap();
        fund(&file_ledger);
        let on_file = aep2_sp::Processor::new(&sp_config, file_ledger).unwrap();
        let mem_ledger = aep2_sp::Ledger::open_in_memory().unwrap();
        fund(&mem_ledger);
        let in_memory = aep2_sp::Processor::new(&sp_config, mem_ledger).unwrap();
        let verifier = Arc::new(Verifier::new(domain()));
        let now = aep2_sp::unix_now();
        let durable = timed("SP enqueue, SQLite file (durable)", conns, &|e| {
            on_file.enqueue(e.as_bytes(), now).unwrap();
        });
        let memory = timed("SP enqueue, SQLite in memory", conns, &|e| {
            in_memory.enqueue(e.as_bytes(), now).unwrap();
        });
        let postgres = pg_location("sp").map(|url| {
            let location = aep2_sp::Location::parse(&url);
            let pg_ledger = aep2_sp::Ledger::open(&location, &aep2_sp::LedgerOptions::default())
                .unwrap_or_else(|e| panic!("AEP2_BENCH_POSTGRES {}: {e}", location.display()));
            fund(&pg_ledger);
            let on_postgres = aep2_sp::Processor::new(&sp_config, pg_ledger).unwrap();
            timed("SP enqueue, Postgres", conns, &|e| {
                on_postgres.enqueue(e.as_bytes(), now).unwrap();
            })
        });
        // One thread: what one verification costs, the unit the paid path is measured in. At
        // least VERIFICATIONS of them (cycling over the envelopes), so that the ratios' common
        // denominator is not a 50 ms run that one preemption moves.
        let verify = {
            let count = enqueues.max(VERIFICATIONS);
            let mut latencies = Vec::with_capacity(count);
            let started = Instant::now();
            for e in envelopes.iter().cycle().take(count) {
                let t = Instant::now();
                let v = aep2::envelope::decode_json_bytes(e.as_bytes()).unwrap();
                verifier.check_value(&v, Some(now)).into_result().unwrap();
                latencies.push(t.elapsed());
            }
            let elapsed = started.elapsed();
            latencies.sort();
            Run {
                label: "verification alone",
                count,
                elapsed,
                latencies,
            }
        };
        let mut sp_runs = vec![durable, memory, verify];
        sp_runs.extend(postgres);
        (http_runs, sp_runs)
    });
    let _ = std::fs::remove_dir_all(&dir);

    println!("\nLoopback, {conns} connections, {requests} requests each way (mandates pre-signed):\n");
    println!("{:<38} {:>10} {:>10} {:>10}", "", "req/s", "p50 ms", "p99 ms");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for r in http_runs.iter().chain(sp_runs.iter()) {
        println!(
            "{:<38} {:>10.0} {:>10.3} {:>10.3}",
            r.label,
            r.per_sec(),
            ms(r.pct(0.5)),
            ms(r.pct(0.99))
        );
    }
    let (free, paid) = (&http_runs[0], &http_runs[1]);
    let (durable, memory, verify) = (&sp_runs[0], &sp_runs[1], &sp_runs[2]);
    println!("\nratios:");
    println!(
        "  paid / unpaid throughput          {:.3}",
        paid.per_sec() / free.per_sec()
    );
    println!(
        "  paid / unpaid p50 latency         {:.1}x",
        ms(paid.pct(0.5)) / ms(free.pct(0.5))
    );
    println!(
        "  paid / verification alone         {:.3}",
        paid.per_sec() / verify.per_sec()
    );
    println!(
        "  paid, stores in memory / verif.   {:.3}",
        http_runs[2].per_sec() / verify.per_sec()
    );
    println!(
        "  paid / paid with stores in memory {:.3}",
        paid.per_sec() / http_runs[2].per_sec()
    );
    if let Some(pg) = http_runs.get(3) {
        println!(
            "  paid on Postgres / verification   {:.3}",
            pg.per_sec() / verify.per_sec()
        );
    }
    println!(
        "  durable / in-memory SP enqueues   {:.3}",
        durable.per_sec() / memory.per_sec()
    );
    println!(
        "  durable SP enqueue / verification {:.3}",
        durable.per_sec() / verify.per_sec()
    );
    if let Some(pg) = sp_runs.get(3) {
        println!(
            "  Postgres / SQLite file SP enqueues {:.3}",
            pg.per_sec() / durable.per_sec()
        );
    }
}
