//! `aep2 demo`: the whole protocol on loopback. Deploys the debit wallet and a test token on a
//! chain (the embedded EVM, or a node with `--rpc-url`), funds a payer there, starts a
//! settlement processor and a payee in-process, lets an agent pay over x402 (Intent and Order
//! Mode), MCP and A2A, shows three rejections, prints the receipt trail, and settles every
//! receipted mandate on the chain in batches. Exit 0 only if every step behaved as the spec says.

use aep2::codec::base64_encode;
use aep2::crypto::secp256k1::SecretKey;
use aep2::json::{Object, Value, to_compact};
use aep2::{
    Domain, Eip712Domain, EvmAddress, EvmMandate, Lane, Mandate, PayerKey, PaymentRequest, Receipt, SignedLane,
    SignedMandate, SpId, SpKey, U256, sign_lane,
};
use aep2_a2a::{Message, Part, PaymentInfo, PaymentStatus, Role, TaskStatus};
use aep2_axum::agent::{HttpClient, Payer, Reply, check_receipt};
use aep2_axum::payee::{PayeeConfig, ReplayConfig};
use aep2_evm::contract::{self, Wallet};
use aep2_evm::{Chain, Embedded, Rpc, TxKey};
use aep2_mcp::ToolCall;
use aep2_sp::settlement::{SettlementOptions, Settler};
use aep2_x402::{
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, PaymentRequired, PaymentRequirements, PaymentResponse,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// `aep2 demo`'s options (fixed: tools script against them).
#[derive(clap::Args, Debug, Default)]
pub(crate) struct DemoArgs {
    /// Print one JSON object (checks, trail, settlement) instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Settle on this node (JSON-RPC over HTTP) instead of the embedded EVM; the contracts are
    /// deployed there with --chain-key.
    #[arg(long, value_name = "URL", requires = "chain_key")]
    pub rpc_url: Option<String>,
    /// The funded key (0x + 64 hex) that deploys the contracts and pays the demo's gas on
    /// --rpc-url.
    #[arg(long, value_name = "HEX", requires = "rpc_url")]
    pub chain_key: Option<String>,
}

/// The demo chain's id on the embedded EVM (Base Sepolia's, as the MVP).
const EMBEDDED_CHAIN_ID: u64 = 84532;
/// Gas money (wei) the demo gives the payer and the SP on a node.
const GAS_MONEY: u64 = 10_000_000_000_000_000;

/// What settlement did, for the report.
#[derive(Default)]
struct Settled {
    chain: String,
    receipts: usize,
    settled: u64,
    failed: u64,
    batches: Vec<aep2_sp::StoredBatch>,
    payee_balance: String,
    expected: String,
    wallet: String,
    token: String,
}

/// The price of every paid request: 1000 base units of USDC (0.001 USD).
const PRICE: u64 = 1000;
/// What the payer deposits with the SP.
const DEPOSIT: u64 = 10_000;

struct World {
    domain: Domain,
    payee: EvmAddress,
    usdc: EvmAddress,
    sp: SpId,
    base: String,
    sp_url: String,
    /// The SP operator's bearer token for `GET /v1/audit`.
    audit_token: String,
    http: HttpClient,
    /// The agent: it pays under the owner's root lane, never with the owner's key.
    payer: Payer,
    /// The owner's key: it grants the root lane and revokes.
    owner: SecretKey,
    /// The agent's key: it grants its sub-agent's lane.
    agent_key: SecretKey,
    now: u64,
}

/// The owner's grant to the agent: at most [`PRICE`] a payment, [`LANE_TOTAL`] in all.
const LANE_TOTAL: u64 = 7 * PRICE;
/// The agent's grant to its sub-agent: narrower in total.
const SUB_LANE_TOTAL: u64 = 3 * PRICE;

/// What the lane steps found, for the report.
#[derive(Default)]
struct LaneReport {
    /// `(label, lane id, status JSON)` of the root lane and the sub-lane.
    lanes: Vec<(&'static str, String, serde_json::Value)>,
    /// `(label, records)` of the audit trail per lane.
    trails: Vec<(&'static str, Vec<serde_json::Value>)>,
}

/// One receipt in the trail.
struct Row {
    what: &'static str,
    request: String,
    amount: String,
    receipt: Receipt,
}

/// One checked expectation.
struct Check {
    step: String,
    expected: String,
    got: String,
    ok: bool,
}

fn short(text: &str) -> String {
    if text.len() <= 14 {
        text.to_owned()
    } else {
        format!("{}…{}", &text[..8], &text[text.len() - 4..])
    }
}

fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

pub(crate) fn run(args: &DemoArgs) -> Result<ExitCode, String> {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("aep2-demo-{}-{}", std::process::id(), aep2_sp::unix_now()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let outcome = rt.block_on(async {
        match (&args.rpc_url, &args.chain_key) {
            (Some(url), Some(key)) => {
                let chain = Rpc::connect(url).await.map_err(|e| format!("--rpc-url: {e}"))?;
                let bytes: [u8; 32] = aep2::codec::hex_decode_0x(key)
                    .and_then(|b| b.try_into().ok())
                    .ok_or("--chain-key must be 0x followed by 64 hex digits")?;
                let deployer = TxKey::from_bytes(&bytes).ok_or("--chain-key is not a secp256k1 key")?;
                demo(dir.clone(), &chain, deployer, true, format!("json-rpc {url}")).await
            }
            _ => {
                let chain = Embedded::new(EMBEDDED_CHAIN_ID, aep2_sp::unix_now());
                let deployer = TxKey::from_label("aep2-demo-deployer");
                demo(dir.clone(), &chain, deployer, false, "embedded".into()).await
            }
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    let (checks, rows, balance, world, settled, lane_report) = outcome?;
    if args.json {
        println!(
            "{}",
            to_compact(&report_json(&checks, &rows, &balance, &world, &settled, &lane_report))
        );
    } else {
        print_report(
            &checks,
            &rows,
            &balance,
            &world,
            &settled,
            &lane_report,
            started.elapsed().as_millis(),
        );
    }
    Ok(if checks.iter().all(|c| c.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

type Balance = (String, String, String);

type Outcome = (Vec<Check>, Vec<Row>, Balance, World, Settled, LaneReport);

async fn demo<C: Chain>(
    dir: PathBuf,
    chain: &C,
    deployer: TxKey,
    needs_gas: bool,
    chain_name: String,
) -> Result<Outcome, String> {
    let payee = EvmAddress::parse("0xaAD167617dF02Dd30208722c88d9027a2fDD8812").map_err(|e| e.to_string())?;
    // Public demo keys, derived from labels: never hold value with them.
    let key = |label: &str| {
        SecretKey::from_bytes(&aep2::hash::keccak256(label.as_bytes())).ok_or_else(|| format!("key {label}"))
    };
    let sp_key = SpKey::Secp256k1(key("public-sp-key")?);
    let sp = sp_key.id();
    let payer_key = key("aep2-demo-payer")?;

    // The chain: the debit wallet and a test token, the SP authorised, the payer's deposit.
    let e = |e: aep2_evm::ChainError| e.to_string();
    let payer_tx = TxKey::from_bytes(&aep2::hash::keccak256(b"aep2-demo-payer")).ok_or("payer key")?;
    let sp_tx = TxKey::from_label("aep2-demo-sp-settlement");
    if needs_gas {
        let wei = alloy::primitives::U256::from(GAS_MONEY);
        contract::transfer(chain, &deployer, payer_tx.address(), wei)
            .await
            .map_err(e)?;
        contract::transfer(chain, &deployer, sp_tx.address(), wei)
            .await
            .map_err(e)?;
    }
    let wallet_address = contract::deploy_wallet(chain, &deployer, 3 * 3600).await.map_err(e)?;
    let token = contract::deploy_token(chain, &deployer, "USDC").await.map_err(e)?;
    let wallet = Wallet {
        address: wallet_address,
    };
    wallet
        .set_settlement_processor(chain, &deployer, sp_tx.address(), true)
        .await
        .map_err(e)?;
    let deposit = alloy::primitives::U256::from(DEPOSIT);
    contract::mint(chain, &deployer, token, payer_tx.address(), deposit)
        .await
        .map_err(e)?;
    wallet.deposit(chain, &payer_tx, token, deposit).await.map_err(e)?;
    let domain = Domain::Eip712(Eip712Domain {
        chain_id: chain.chain_id(),
        verifying_contract: EvmAddress(wallet_address.0.0),
    });
    let usdc = EvmAddress(token.0.0);

    // The settlement processor: in-process, loopback, a fresh SQLite ledger.
    let mut sp_config = aep2_sp::Config::new(dir.join("ledger.db"), vec![domain.clone()]);
    sp_config.secp256k1_key = Some(sp_key);
    sp_config.settlement_window = 300;
    // The operator's token for the audit trail, fresh for each run.
    let audit_token = aep2::codec::hex_encode_0x(&aep2::hash::sha256(
        format!("aep2-demo-audit {} {}", std::process::id(), aep2_sp::unix_now()).as_bytes(),
    ));
    sp_config.audit_token = Some(audit_token.clone());
    let sp_bound = aep2_sp::service::bind(&sp_config).await?;
    let sp_addr = sp_bound.local_addr()?;
    let sp_state = sp_bound.state().clone();
    // The SP learns the deposit from the chain's event.
    let options = SettlementOptions {
        max_age: 0,
        ..SettlementOptions::default()
    };
    let settler = Settler::new(chain, sp_state.processor.ledger(), wallet_address, sp_tx, options);
    settler.tick(aep2_sp::unix_now()).await.map_err(|e| e.to_string())?;
    let (sp_stop, sp_stopped) = tokio::sync::oneshot::channel::<()>();
    let sp_task = tokio::spawn(sp_bound.serve(async {
        let _ = sp_stopped.await;
    }));

    // The payee: in-process, loopback, a durable replay store.
    let sp_url = format!("http://{sp_addr}");
    let mut config = PayeeConfig::new(
        domain.clone(),
        payee.into(),
        usdc.into(),
        U256::from_u64(PRICE),
        &sp_url,
        sp,
    );
    config.replay = ReplayConfig::Sqlite(dir.join("replay.db"));
    let payee_bound = aep2_axum::payee::bind(&config).await?;
    let payee_addr = payee_bound.local_addr()?;
    let (payee_stop, payee_stopped) = tokio::sync::oneshot::channel::<()>();
    let payee_task = tokio::spawn(payee_bound.serve(async {
        let _ = payee_stopped.await;
    }));

    // The owner gives the agent a lane, not its key: this payee only, at most PRICE a payment,
    // LANE_TOTAL in all, for the next hour.
    let now = aep2_sp::unix_now();
    let agent_key = key("aep2-demo-agent")?;
    let root = Lane {
        profile: aep2::Profile::Eip712,
        owner: payer_key.address().into(),
        agent: agent_key.address().into(),
        token: usdc.into(),
        per_payment: U256::from_u64(PRICE),
        total: U256::from_u64(LANE_TOTAL),
        max_payments: 0,
        period: 0,
        allowance: U256::ZERO,
        payees: vec![payee.into()],
        valid_from: now - 60,
        valid_until: now + 3600,
        purpose: "demo agent: weather and research".into(),
        parent: [0; 32],
        salt: aep2::hash::keccak256(b"aep2-demo-root-lane"),
    };
    let owner_key = PayerKey::Secp256k1(payer_key.clone());
    let root = sign_lane(&root, None, &domain, &owner_key).map_err(|e| format!("granting the lane: {e}"))?;
    let agent_payer = Payer::under_lane(agent_key.clone(), domain.clone(), vec![root]).map_err(|e| e.to_string())?;
    let world = World {
        domain: domain.clone(),
        payee,
        usdc,
        sp,
        base: format!("http://{payee_addr}"),
        sp_url: sp_url.clone(),
        audit_token,
        http: HttpClient::new(),
        payer: agent_payer,
        owner: payer_key,
        agent_key,
        now,
    };
    let mut checks = Vec::new();
    let mut rows = Vec::new();
    let mut lane_report = LaneReport::default();
    let mut result = agent(&world, &mut checks, &mut rows).await;
    if result.is_ok() {
        result = lanes(&world, &mut checks, &mut rows, &mut lane_report).await;
    }
    let balance = balance(&sp_url, &world).await;
    let settled = settle(&settler, chain, &world, &rows, &mut checks, token, chain_name).await;
    let _ = payee_stop.send(());
    let _ = sp_stop.send(());
    let _ = payee_task.await;
    let _ = sp_task.await;
    if let Err(e) = result {
        checks.push(Check {
            step: "agent".into(),
            expected: "every step completes".into(),
            got: e,
            ok: false,
        });
    }
    let balance = match balance {
        Ok(b) => {
            let spent = PRICE * rows.len() as u64;
            let expected = (DEPOSIT - spent).to_string();
            checks.push(Check {
                step: "payer's available balance at the SP".into(),
                expected: format!("{expected} (deposit {DEPOSIT} − {} × {PRICE})", rows.len()),
                got: b.2.clone(),
                ok: b.2 == expected,
            });
            b
        }
        Err(e) => {
            checks.push(Check {
                step: "payer's balance at the SP".into(),
                expected: "GET /v1/accounts answers".into(),
                got: e,
                ok: false,
            });
            (String::new(), String::new(), String::new())
        }
    };
    let settled = match settled {
        Ok(s) => s,
        Err(e) => {
            checks.push(Check {
                step: "settlement".into(),
                expected: "every receipted mandate settles".into(),
                got: e,
                ok: false,
            });
            Settled::default()
        }
    };
    Ok((checks, rows, balance, world, settled, lane_report))
}

/// Settles everything receipted, then checks the chain against the trail.
async fn settle<C: Chain>(
    settler: &Settler<'_, C>,
    chain: &C,
    w: &World,
    rows: &[Row],
    checks: &mut Vec<Check>,
    token: alloy::primitives::Address,
    chain_name: String,
) -> Result<Settled, String> {
    let ledger = settler.ledger();
    for _ in 0..200 {
        let head = chain.head().await.map_err(|e| e.to_string())?;
        let t = settler
            .tick(head.timestamp.max(aep2_sp::unix_now()))
            .await
            .map_err(|e| e.to_string())?;
        let counts = ledger.counts().map_err(|e| e.to_string())?;
        if counts.accepted == 0 && !t.in_flight {
            break;
        }
    }
    let counts = ledger.counts().map_err(|e| e.to_string())?;
    let batches = ledger
        .batches(Some(settler.domain()), Some(aep2_sp::BatchState::Confirmed))
        .map_err(|e| e.to_string())?;
    let payee_balance = contract::token_balance(chain, token, alloy::primitives::Address::from(w.payee.0))
        .await
        .map_err(|e| e.to_string())?
        .to_string();
    let expected = (PRICE * rows.len() as u64).to_string();
    checks.push(Check {
        step: "settlement: every receipted mandate settled on chain".into(),
        expected: format!("{} settled, 0 failed", rows.len()),
        got: format!("{} settled, {} failed", counts.settled, counts.failed),
        ok: counts.settled == rows.len() as u64 && counts.failed == 0,
    });
    checks.push(Check {
        step: "  the payee's on-chain balance".into(),
        expected: expected.clone(),
        got: payee_balance.clone(),
        ok: payee_balance == expected,
    });
    let audit = ledger.audit().map_err(|e| e.to_string())?;
    checks.push(Check {
        step: "  the SP's ledger after settlement".into(),
        expected: "consistent".into(),
        got: if audit.is_empty() {
            "consistent".into()
        } else {
            audit.join("; ")
        },
        ok: audit.is_empty(),
    });
    Ok(Settled {
        chain: chain_name,
        receipts: rows.len(),
        settled: counts.settled,
        failed: counts.failed,
        batches,
        payee_balance,
        expected,
        wallet: EvmAddress(settler.wallet().0.0).to_checksum(),
        token: EvmAddress(token.0.0).to_checksum(),
    })
}

async fn balance(sp_url: &str, w: &World) -> Result<Balance, String> {
    let client = aep2_sp::SpClient::new(sp_url).map_err(|e| e.to_string())?;
    let v = client
        .accounts(&w.payer.address().to_checksum(), Some(&w.usdc.to_checksum()))
        .await
        .map_err(|e| e.to_string())?;
    let row = v
        .get("accounts")
        .and_then(|a| a.get(0))
        .ok_or("the SP has no account for the payer")?;
    let text = |k: &str| row.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    Ok((text("balance"), text("reserved"), text("available")))
}

fn expect_status(checks: &mut Vec<Check>, step: &str, reply: &Reply, status: u16, code: Option<&str>) -> bool {
    let got_code = reply.reason();
    let ok = reply.status == status && (code.is_none() || got_code.as_deref() == code);
    checks.push(Check {
        step: step.to_owned(),
        expected: match code {
            Some(c) => format!("{status} {c}"),
            None => status.to_string(),
        },
        got: match got_code {
            Some(c) => format!("{} {c}", reply.status),
            None => reply.status.to_string(),
        },
        ok,
    });
    ok
}

fn intent_terms(w: &World) -> PaymentRequirements {
    // Intent Mode: the agent knows the price from the payee's catalogue.
    let policy =
        aep2::PayeePolicy::new(w.payee.into(), w.usdc.into(), U256::from_u64(PRICE)).with_settlement_window(300);
    PaymentRequirements::for_policy(&policy, &w.domain, 60)
}

async fn get(w: &World, path: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
    w.http.send("GET", &format!("{}{path}", w.base), headers, b"").await
}

/// The receipt of a `PAYMENT-RESPONSE`, verified by the agent.
fn paid_receipt(reply: &Reply, signed: &SignedMandate, w: &World, sp: &SpId) -> Result<Receipt, String> {
    let header = reply.header(PAYMENT_RESPONSE).ok_or("no PAYMENT-RESPONSE header")?;
    let response = PaymentResponse::decode(header).map_err(|e| format!("PAYMENT-RESPONSE: {e}"))?;
    let receipt = response.receipt.ok_or("PAYMENT-RESPONSE carries no receipt")?;
    check_receipt(&receipt, signed, &w.domain, sp).map_err(|e| format!("receipt: {e}"))
}

fn receipt_check(checks: &mut Vec<Check>, step: &str, r: &Result<Receipt, String>) {
    checks.push(Check {
        step: step.to_owned(),
        expected: "receipt verifies (SP, digest, deadline)".into(),
        got: match r {
            Ok(_) => "verified".into(),
            Err(e) => e.clone(),
        },
        ok: r.is_ok(),
    });
}

async fn agent(w: &World, checks: &mut Vec<Check>, rows: &mut Vec<Row>) -> Result<(), String> {
    let deadline = w.now + 600;
    let err = |e: aep2::Error| e.to_string();

    // 1. Intent Mode over x402: the mandate bound to exactly this request, on the first request.
    let url = format!("{}/paid/intent", w.base);
    let bound = aep2_x402::request_hash("GET", &url, b"").map_err(err)?;
    let terms = intent_terms(w);
    let signed = w.payer.sign_for(&terms, bound, deadline).map_err(err)?;
    let intent_header = aep2_x402::payment_signature(&terms, &signed.to_json());
    let reply = get(w, "/paid/intent", &[(PAYMENT_SIGNATURE, &intent_header)]).await?;
    if expect_status(checks, "x402 Intent Mode: GET /paid/intent", &reply, 200, None) {
        let r = paid_receipt(&reply, &signed, w, &w.sp);
        receipt_check(checks, "  its receipt", &r);
        if let Ok(receipt) = r {
            rows.push(Row {
                what: "x402 intent",
                request: "GET /paid/intent".into(),
                amount: PRICE.to_string(),
                receipt,
            });
        }
    }

    // 2. Order Mode over x402: 402 with a quote first, then a mandate bound to the quote.
    let reply = get(w, "/paid/order", &[]).await?;
    expect_status(
        checks,
        "x402 Order Mode: GET /paid/order (no payment)",
        &reply,
        402,
        Some("payment_missing"),
    );
    let required = reply
        .header(PAYMENT_REQUIRED)
        .ok_or("the 402 has no PAYMENT-REQUIRED")?;
    let required = PaymentRequired::decode(required).map_err(err)?;
    let offer = required
        .accepts
        .first()
        .ok_or("PAYMENT-REQUIRED offers nothing")?
        .clone();
    let quote = offer
        .extra
        .as_ref()
        .and_then(|x| x.get("quote"))
        .ok_or("the offer has no quote")
        .and_then(|q| PaymentRequest::from_json(q).map_err(|_| "the quote does not parse"))?;
    // The agent's own judgement of the quote: its wallet's deployment, the SP it trusts, the price.
    let acceptable =
        quote.domain == w.domain && quote.settlement_processor == w.sp && quote.amount == U256::from_u64(PRICE);
    checks.push(Check {
        step: "  the quote".into(),
        expected: "our domain, our SP, price 1000".into(),
        got: if acceptable {
            "acceptable".into()
        } else {
            format!("{quote:?}")
        },
        ok: acceptable,
    });
    let signed = w.payer.sign_for(&offer, quote.hash(), deadline).map_err(err)?;
    let header = aep2_x402::payment_signature(&offer, &signed.to_json());
    let reply = get(w, "/paid/order", &[(PAYMENT_SIGNATURE, &header)]).await?;
    if expect_status(
        checks,
        "x402 Order Mode: GET /paid/order (quote-bound mandate)",
        &reply,
        200,
        None,
    ) {
        let r = paid_receipt(&reply, &signed, w, &quote.settlement_processor);
        receipt_check(checks, "  its receipt", &r);
        if let Ok(receipt) = r {
            rows.push(Row {
                what: "x402 order",
                request: format!("GET /paid/order ({})", quote.request_id),
                amount: PRICE.to_string(),
                receipt,
            });
        }
    }

    // 3. A paid MCP tool call: the mandate in params._meta, bound to the tool name and arguments.
    let args = Object::new().with("location", s("Lisbon"));
    let call = ToolCall::new(Value::from_u64(7), aep2_axum::payee::TOOL_NAME, Some(args));
    let signed = w
        .payer
        .sign_for(&intent_terms(w), call.request_hash().map_err(err)?, deadline)
        .map_err(err)?;
    let text = call.with_mandate(&signed.to_json()).to_text();
    let reply = w
        .http
        .send(
            "POST",
            &format!("{}/mcp", w.base),
            &[("content-type", "application/json")],
            text.as_bytes(),
        )
        .await?;
    let r = mcp_receipt(&reply, &signed, w);
    receipt_check(checks, "MCP tools/call get_weather: paid result and receipt", &r);
    if let Ok(receipt) = r {
        rows.push(Row {
            what: "MCP",
            request: "tools/call get_weather {location: Lisbon}".into(),
            amount: PRICE.to_string(),
            receipt,
        });
    }

    // 4. A paid A2A message (Intent Mode): the mandate on the message, bound to its content.
    let message = Message::new(
        Role::User,
        "msg-demo-1",
        vec![Part::text("Summarise the Q3 EU solar report")],
    )
    .with_context_id("ctx-demo");
    let signed = w
        .payer
        .sign_for(&intent_terms(w), message.request_hash().map_err(err)?, deadline)
        .map_err(err)?;
    let message = aep2_a2a::attach_mandate(message, &signed);
    let rpc = Object::new()
        .with("jsonrpc", s("2.0"))
        .with("id", Value::from_u64(1))
        .with("method", s("SendMessage"))
        .with(
            "params",
            Value::Object(Object::new().with("message", message.to_json())),
        );
    let reply = w
        .http
        .send(
            "POST",
            &format!("{}/a2a", w.base),
            &[
                ("content-type", "application/json"),
                ("a2a-version", "1.0"),
                ("a2a-extensions", aep2_a2a::EXTENSION_URI),
            ],
            to_compact(&Value::Object(rpc)).as_bytes(),
        )
        .await?;
    let r = a2a_receipt(&reply, &signed, w);
    receipt_check(checks, "A2A SendMessage: task completed with receipt", &r);
    if let Ok(receipt) = r {
        rows.push(Row {
            what: "A2A",
            request: "SendMessage \"Summarise the Q3 EU solar report\"".into(),
            amount: PRICE.to_string(),
            receipt,
        });
    }

    // 5. What is refused. The same mandate again:
    let reply = get(w, "/paid/intent", &[(PAYMENT_SIGNATURE, &intent_header)]).await?;
    expect_status(
        checks,
        "rejected: the Intent Mode mandate replayed",
        &reply,
        402,
        Some("mandate_replayed"),
    );
    // An under-payment (999 of 1000):
    let mut low = terms.clone();
    low.amount = "999".into();
    let signed = w.payer.sign_for(&low, bound, deadline).map_err(err)?;
    let header = aep2_x402::payment_signature(&terms, &signed.to_json());
    let reply = get(w, "/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await?;
    expect_status(
        checks,
        "rejected: an under-payment (999)",
        &reply,
        402,
        Some("amount_insufficient"),
    );
    // An expired mandate (deadline a minute ago):
    let signed = w.payer.sign_for(&terms, bound, w.now - 60).map_err(err)?;
    let header = aep2_x402::payment_signature(&terms, &signed.to_json());
    let reply = get(w, "/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await?;
    expect_status(checks, "rejected: an expired mandate", &reply, 402, Some("expired"));
    Ok(())
}

/// A mandate signed by `key` under `chain` without the signer's own checks: what a faulty or
/// hostile agent could send, for the payee to refuse.
fn sign_unchecked(
    w: &World,
    key: &SecretKey,
    chain: &[SignedLane],
    amount: u64,
    reference: [u8; 32],
) -> Result<SignedMandate, String> {
    let mandate = Mandate::Eip712(EvmMandate {
        owner: w.owner.address(),
        token: w.usdc,
        payee: w.payee,
        amount: U256::from_u64(amount),
        nonce: U256(aep2::hash::keccak256(&reference)),
        deadline: w.now + 600,
        reference,
    });
    let leaf = chain
        .last()
        .ok_or("no lane")?
        .lane
        .digest(&w.domain)
        .map_err(|e| e.to_string())?
        .id;
    let digest = aep2::lane::lane_mandate_digest(&mandate, &w.domain, &leaf).map_err(|e| e.to_string())?;
    let signature = PayerKey::Secp256k1(key.clone())
        .sign_input(&digest.input)
        .map_err(|e| e.to_string())?;
    Ok(SignedMandate {
        form: aep2::EnvelopeForm::Mvp,
        mandate,
        domain: None,
        signature,
        lanes: chain.to_vec(),
    })
}

/// Pays `GET /paid/intent` as `payer`; `Ok(Some(receipt))` when served.
async fn pay_intent(
    w: &World,
    payer: &Payer,
    checks: &mut Vec<Check>,
    step: &str,
    code: Option<&str>,
) -> Result<Option<Receipt>, String> {
    let url = format!("{}/paid/intent", w.base);
    let bound = aep2_x402::request_hash("GET", &url, b"").map_err(|e| e.to_string())?;
    let terms = intent_terms(w);
    let signed = payer.sign_for(&terms, bound, w.now + 600).map_err(|e| e.to_string())?;
    let header = aep2_x402::payment_signature(&terms, &signed.to_json());
    let reply = get(w, "/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await?;
    match code {
        Some(c) => {
            expect_status(checks, step, &reply, 402, Some(c));
            Ok(None)
        }
        None if expect_status(checks, step, &reply, 200, None) => {
            let r = paid_receipt(&reply, &signed, w, &w.sp);
            receipt_check(checks, "  its receipt", &r);
            Ok(r.ok())
        }
        None => Ok(None),
    }
}

/// `GET` of the SP's JSON API, as its operator.
async fn sp_get(w: &World, path: &str) -> Result<serde_json::Value, String> {
    let auth = format!("Bearer {}", w.audit_token);
    let reply = w
        .http
        .send("GET", &format!("{}{path}", w.sp_url), &[("authorization", &auth)], b"")
        .await?;
    serde_json::from_slice(&reply.body).map_err(|e| format!("GET {path}: {e}"))
}

/// The lane's status at the SP, checked against what the demo spent under it.
async fn lane_status(
    w: &World,
    checks: &mut Vec<Check>,
    step: &str,
    id: &str,
    spent: u64,
    revoked: bool,
) -> Result<serde_json::Value, String> {
    let v = sp_get(w, &format!("/v1/lanes/{id}")).await?;
    let lane = v.get("lane").cloned().unwrap_or(serde_json::Value::Null);
    let got_spent = lane.get("spent").and_then(|x| x.as_str()).unwrap_or("?").to_owned();
    let got_revoked = lane
        .get("revoked")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    checks.push(Check {
        step: step.to_owned(),
        expected: format!("spent {spent}{}", if revoked { ", revoked" } else { "" }),
        got: format!("spent {got_spent}{}", if got_revoked { ", revoked" } else { "" }),
        ok: got_spent == spent.to_string() && got_revoked == revoked,
    });
    Ok(lane)
}

/// The audit trail of a lane, checked to hold `count` records.
async fn lane_trail(
    w: &World,
    checks: &mut Vec<Check>,
    step: &str,
    id: &str,
    count: usize,
) -> Result<Vec<serde_json::Value>, String> {
    let v = sp_get(w, &format!("/v1/audit?lane={id}")).await?;
    let records = v.get("records").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    checks.push(Check {
        step: step.to_owned(),
        expected: format!("{count} records"),
        got: format!("{} records", records.len()),
        ok: records.len() == count,
    });
    Ok(records)
}

/// Spending lanes: the per-payment cap at the payee, a sub-agent's narrower lane counted on its
/// parent, a revocation, the parent's total, and the audit trail per lane.
async fn lanes(w: &World, checks: &mut Vec<Check>, rows: &mut Vec<Row>, report: &mut LaneReport) -> Result<(), String> {
    let err = |e: aep2::Error| e.to_string();
    let root = w.payer.lanes().first().ok_or("the agent has no lane")?.clone();
    let root_id = aep2::codec::hex_encode_0x(&root.lane.digest(&w.domain).map_err(err)?.id);
    let url = format!("{}/paid/intent", w.base);
    let bound = aep2_x402::request_hash("GET", &url, b"").map_err(err)?;

    // 1. Over the per-payment cap: refused by the payee offline, before the SP hears of it.
    let signed = sign_unchecked(w, &w.agent_key, std::slice::from_ref(&root), 2 * PRICE, bound)?;
    // The offer's terms as the payee stated them; the mandate asks for more than the lane allows.
    let header = aep2_x402::payment_signature(&intent_terms(w), &signed.to_json());
    let reply = get(w, "/paid/intent", &[(PAYMENT_SIGNATURE, &header)]).await?;
    expect_status(
        checks,
        "lane: 2000 in one payment (cap 1000), at the payee",
        &reply,
        402,
        Some("lane_payment_cap_exceeded"),
    );

    // 2. The agent gives a sub-agent a narrower lane; its spend counts on the parent too.
    let sub_key = SecretKey::from_bytes(&aep2::hash::keccak256(b"aep2-demo-sub-agent")).ok_or("sub-agent key")?;
    let sub = Lane {
        agent: sub_key.address().into(),
        total: U256::from_u64(SUB_LANE_TOTAL),
        purpose: "sub-agent: translations".into(),
        parent: root.lane.digest(&w.domain).map_err(err)?.id,
        salt: aep2::hash::keccak256(b"aep2-demo-sub-lane"),
        ..root.lane.clone()
    };
    let sub = sign_lane(&sub, Some(&root), &w.domain, &PayerKey::Secp256k1(w.agent_key.clone())).map_err(err)?;
    let sub_id = aep2::codec::hex_encode_0x(&sub.lane.digest(&w.domain).map_err(err)?.id);
    let sub_payer = Payer::under_lane(sub_key, w.domain.clone(), vec![root.clone(), sub.clone()]).map_err(err)?;
    for i in 1..=2 {
        let step = format!("sub-agent payment {i} (sub-lane total {SUB_LANE_TOTAL})");
        if let Some(receipt) = pay_intent(w, &sub_payer, checks, &step, None).await? {
            rows.push(Row {
                what: "sub-agent",
                request: "GET /paid/intent".into(),
                amount: PRICE.to_string(),
                receipt,
            });
        }
    }
    let spent = PRICE * rows.len() as u64;
    lane_status(
        w,
        checks,
        "  the agent's lane at the SP (its sub-agent's spend included)",
        &root_id,
        spent,
        false,
    )
    .await?;

    // 3. The owner revokes the sub-lane: its next payment is refused, nothing served or charged.
    let revocation = aep2::lane::LaneRevocation::sign(
        &w.domain,
        sub.lane.digest(&w.domain).map_err(err)?.id,
        aep2_sp::unix_now(),
        &PayerKey::Secp256k1(w.owner.clone()),
    )
    .map_err(err)?;
    let body = aep2::json::Object::new()
        .with("revocation", revocation.to_json())
        .with("lanes", Value::Array(vec![root.to_json(), sub.to_json()]));
    let reply = w
        .http
        .send(
            "POST",
            &format!("{}/v1/lanes/revoke", w.sp_url),
            &[("content-type", "application/json")],
            to_compact(&Value::Object(body)).as_bytes(),
        )
        .await?;
    checks.push(Check {
        step: "the owner revokes the sub-lane at the SP".into(),
        expected: "200".into(),
        got: reply.status.to_string(),
        ok: reply.status == 200,
    });
    pay_intent(
        w,
        &sub_payer,
        checks,
        "sub-agent payment 3 (sub-lane revoked)",
        Some("lane_revoked"),
    )
    .await?;
    report.lanes.push((
        "sub-agent",
        sub_id.clone(),
        lane_status(w, checks, "  the sub-lane at the SP", &sub_id, 2 * PRICE, true).await?,
    ));

    // 4. The agent spends the rest of its lane; one more payment is over its total.
    let remaining = (LANE_TOTAL - PRICE * rows.len() as u64) / PRICE;
    for i in 1..=remaining {
        let step = format!("agent payment up to the lane's total ({i} of {remaining})");
        if let Some(receipt) = pay_intent(w, &w.payer, checks, &step, None).await? {
            rows.push(Row {
                what: "agent",
                request: "GET /paid/intent".into(),
                amount: PRICE.to_string(),
                receipt,
            });
        }
    }
    pay_intent(
        w,
        &w.payer,
        checks,
        "agent payment over the lane's total, at the SP",
        Some("lane_total_exceeded"),
    )
    .await?;
    report.lanes.insert(
        0,
        (
            "agent",
            root_id.clone(),
            lane_status(w, checks, "  the agent's lane at the SP", &root_id, LANE_TOTAL, false).await?,
        ),
    );

    // 5. The audit trail, per lane: the agent's includes its sub-agent's payments.
    let all = lane_trail(w, checks, "audit trail of the agent's lane", &root_id, rows.len()).await?;
    let subs = lane_trail(w, checks, "audit trail of the sub-lane", &sub_id, 2).await?;
    report.trails.push(("agent", all));
    report.trails.push(("sub-agent", subs));
    Ok(())
}

fn mcp_receipt(reply: &Reply, signed: &SignedMandate, w: &World) -> Result<Receipt, String> {
    if reply.status != 200 {
        return Err(format!("HTTP {}", reply.status));
    }
    let v = reply.json().map_err(|e| e.to_string())?;
    let result = member(&v, "result").ok_or("no JSON-RPC result")?;
    if member(result, "isError") != Some(&Value::Bool(false)) {
        let code = member(result, "_meta").and_then(|m| member(m, aep2_mcp::REASON_KEY));
        return Err(format!("tool error {}", code.map(to_compact).unwrap_or_default()));
    }
    let response = member(result, "_meta")
        .and_then(|m| member(m, aep2_mcp::PAYMENT_RESPONSE_KEY))
        .ok_or("no payment response in _meta")?;
    let response =
        PaymentResponse::decode(&base64_encode(to_compact(response).as_bytes())).map_err(|e| e.to_string())?;
    let receipt = response.receipt.ok_or("no receipt")?;
    check_receipt(&receipt, signed, &w.domain, &w.sp).map_err(|e| format!("receipt: {e}"))
}

fn a2a_receipt(reply: &Reply, signed: &SignedMandate, w: &World) -> Result<Receipt, String> {
    if reply.status != 200 {
        return Err(format!("HTTP {}", reply.status));
    }
    let v = reply.json().map_err(|e| e.to_string())?;
    let status = member(&v, "result")
        .and_then(|r| member(r, "task"))
        .and_then(|t| member(t, "status"))
        .ok_or("no result.task.status")?;
    let status = TaskStatus::from_json(status).map_err(|e| e.to_string())?;
    let info = PaymentInfo::of(&status.message)
        .map_err(|e| e.to_string())?
        .ok_or("no AEP2 status")?;
    if info.status != PaymentStatus::Completed {
        return Err(format!("{} {:?}", info.status.as_str(), info.error));
    }
    let receipt = info.acceptance.and_then(|a| a.receipt).ok_or("no receipt")?;
    check_receipt(&receipt, signed, &w.domain, &w.sp).map_err(|e| format!("receipt: {e}"))
}

fn member<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    match v {
        Value::Object(o) => o.get(name),
        _ => None,
    }
}

fn gas_per_mandate(st: &Settled) -> u64 {
    let gas: u64 = st.batches.iter().filter_map(|b| b.gas_used).sum();
    gas.checked_div(st.settled).unwrap_or(0)
}

/// The whole run as one JSON object (`aep2 demo --json`; fixed members).
fn report_json(
    checks: &[Check],
    rows: &[Row],
    balance: &Balance,
    w: &World,
    st: &Settled,
    lanes: &LaneReport,
) -> Value {
    let mut o = Object::new();
    o.insert("ok", Value::Bool(checks.iter().all(|c| c.ok)));
    let checks: Vec<Value> = checks
        .iter()
        .map(|c| {
            Value::Object(
                Object::new()
                    .with("step", s(c.step.trim()))
                    .with("expected", s(c.expected.clone()))
                    .with("got", s(c.got.clone()))
                    .with("ok", Value::Bool(c.ok)),
            )
        })
        .collect();
    o.insert("checks", Value::Array(checks));
    let trail: Vec<Value> = rows
        .iter()
        .map(|r| {
            Value::Object(
                Object::new()
                    .with("via", s(r.what))
                    .with("payer", s(w.payer.address().to_checksum()))
                    .with("payee", s(w.payee.to_checksum()))
                    .with("amount", s(r.amount.clone()))
                    .with("request", s(r.request.clone()))
                    .with("sp", s(r.receipt.sp.to_string()))
                    .with("mandateDigest", s(r.receipt.mandate_digest.clone()))
                    .with("enqueueDeadline", Value::from_u64(r.receipt.enqueue_deadline)),
            )
        })
        .collect();
    o.insert("trail", Value::Array(trail));
    o.insert(
        "balance",
        Value::Object(
            Object::new()
                .with("balance", s(balance.0.clone()))
                .with("reserved", s(balance.1.clone()))
                .with("available", s(balance.2.clone())),
        ),
    );
    let batches: Vec<Value> = st
        .batches
        .iter()
        .map(|b| {
            Value::Object(
                Object::new()
                    .with("batchId", s(aep2::codec::hex_encode_0x(&b.batch_id)))
                    .with("tx", s(aep2::codec::hex_encode_0x(&b.tx_hash)))
                    .with("block", Value::from_u64(b.block.unwrap_or(0)))
                    .with("items", Value::from_u64(b.items))
                    .with("settled", Value::from_u64(b.settled.unwrap_or(0)))
                    .with("skipped", Value::from_u64(b.skipped.unwrap_or(0)))
                    .with("gasUsed", Value::from_u64(b.gas_used.unwrap_or(0))),
            )
        })
        .collect();
    o.insert(
        "settlement",
        Value::Object(
            Object::new()
                .with("chain", s(st.chain.clone()))
                .with("wallet", s(st.wallet.clone()))
                .with("token", s(st.token.clone()))
                .with("receipts", Value::from_u64(st.receipts as u64))
                .with("settled", Value::from_u64(st.settled))
                .with("failed", Value::from_u64(st.failed))
                .with("batches", Value::Array(batches))
                .with("gasPerMandate", Value::from_u64(gas_per_mandate(st)))
                .with("payeeBalance", s(st.payee_balance.clone()))
                .with("expected", s(st.expected.clone())),
        ),
    );
    // The SP's own JSON, carried over as it answered.
    let from_serde =
        |v: &serde_json::Value| aep2::json::parse(&v.to_string(), &aep2::json::Limits::AEP2).unwrap_or(Value::Null);
    let lane_list: Vec<Value> = lanes
        .lanes
        .iter()
        .map(|(label, id, v)| {
            let trail = lanes
                .trails
                .iter()
                .find(|(l, _)| l == label)
                .map(|(_, r)| r.iter().map(from_serde).collect())
                .unwrap_or_default();
            Value::Object(
                Object::new()
                    .with("holder", s(*label))
                    .with("id", s(id.clone()))
                    .with("status", from_serde(v))
                    .with("audit", Value::Array(trail)),
            )
        })
        .collect();
    o.insert("lanes", Value::Array(lane_list));
    Value::Object(o)
}

fn print_report(
    checks: &[Check],
    rows: &[Row],
    balance: &Balance,
    w: &World,
    st: &Settled,
    lanes: &LaneReport,
    millis: u128,
) {
    println!(
        "AEP2 demo: a settlement processor and a payee on loopback, one funded owner, an agent and its sub-agent paying under spending lanes\n"
    );
    println!(
        "  owner  {}   (demo key, deposit {DEPOSIT} USDC base units)",
        w.payer.address()
    );
    println!(
        "  agent  {}   (lane: this payee, at most {PRICE} a payment, {LANE_TOTAL} in all)",
        w.agent_key.address()
    );
    println!("  payee  {}   {}", w.payee, w.base);
    println!("  SP     {}   price {PRICE} per request\n", w.sp);
    let width = checks.iter().map(|c| c.step.chars().count()).max().unwrap_or(0);
    let ew = checks.iter().map(|c| c.expected.chars().count()).max().unwrap_or(0);
    println!("     {:<width$}  {:<ew$}  got", "step", "expected");
    for c in checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        println!("{mark} {:<width$}  {:<ew$}  {}", c.step, c.expected, c.got);
    }
    println!("\nReceipt trail (every receipt verified by the agent against the SP it trusts):\n");
    let header = [
        "#",
        "via",
        "payer → payee",
        "amount",
        "for",
        "SP",
        "mandate digest",
        "enqueueDeadline",
    ];
    let table: Vec<[String; 8]> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            [
                (i + 1).to_string(),
                r.what.to_owned(),
                format!(
                    "{} → {}",
                    short(&w.payer.address().to_checksum()),
                    short(&w.payee.to_checksum())
                ),
                r.amount.clone(),
                r.request.clone(),
                short(&r.receipt.sp.to_string()),
                short(&r.receipt.mandate_digest),
                r.receipt.enqueue_deadline.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &table {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c}{}", " ".repeat(widths[i] - c.chars().count())))
            .collect();
        println!("  {}", parts.join("  ").trim_end());
    };
    line(&header.map(str::to_owned));
    for row in &table {
        line(row);
    }
    println!("\nSpending lanes at the SP (GET /v1/lanes/{{id}}):\n");
    for (label, id, v) in &lanes.lanes {
        let text = |k: &str| match v.get(k) {
            Some(serde_json::Value::String(t)) => t.clone(),
            Some(other) => other.to_string(),
            None => "?".into(),
        };
        println!(
            "  {label:<9}  {}  spent {}  remaining {}  payments {}  revoked {}",
            short(id),
            text("spent"),
            text("remaining"),
            text("payments"),
            text("revoked")
        );
    }
    println!("\nAudit trail per lane (GET /v1/audit?lane=…):");
    for (label, records) in &lanes.trails {
        println!("\n  {label}'s lane: {} records", records.len());
        for r in records {
            let text = |k: &str| r.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
            let request = r
                .get("request")
                .map(|q| {
                    let part = |k: &str| q.get(k).and_then(|x| x.as_str()).unwrap_or("");
                    match part("carrier") {
                        "http" => format!("{} {}", part("method"), part("url")),
                        "mcp" => format!("MCP {}", part("tool")),
                        "a2a" => format!("A2A {}", part("messageId")),
                        _ => String::new(),
                    }
                })
                .unwrap_or_default();
            println!(
                "    {}  agent {}  {:<34}  {} → {}  {:<8}  {}",
                short(&text("mandateId")),
                short(&text("agent")),
                text("purpose"),
                text("amount"),
                short(&text("payee")),
                text("status"),
                request
            );
        }
    }
    println!(
        "\nPayer's account at the SP: balance {}, reserved {}, available {}",
        balance.0, balance.1, balance.2
    );
    println!(
        "\nSettlement on the {} chain (debit wallet {}, token {}): {} of {} receipts settled, {} failed, in {} batch(es), {} gas per mandate; the payee's on-chain balance {} (expected {})",
        st.chain,
        st.wallet,
        st.token,
        st.settled,
        st.receipts,
        st.failed,
        st.batches.len(),
        gas_per_mandate(st),
        st.payee_balance,
        st.expected
    );
    for b in &st.batches {
        println!(
            "  batch {}  tx {}  block {}  {} settled, {} skipped, {} gas",
            short(&aep2::codec::hex_encode_0x(&b.batch_id)),
            short(&aep2::codec::hex_encode_0x(&b.tx_hash)),
            b.block.unwrap_or(0),
            b.settled.unwrap_or(0),
            b.skipped.unwrap_or(0),
            b.gas_used.unwrap_or(0)
        );
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        println!("\nAll {} checks passed in {millis} ms.", checks.len());
    } else {
        println!("\n{failed} of {} checks FAILED ({millis} ms).", checks.len());
    }
}
