//! `aep2 demo`: the whole protocol on loopback. Deploys the debit wallet and a test token on a
//! chain (the embedded EVM, or a node with `--rpc-url`), funds a payer there, starts a
//! settlement processor and a payee in-process, lets an agent pay over x402 (Intent and Order
//! Mode), MCP and A2A, shows three rejections, prints the receipt trail, and settles every
//! receipted mandate on the chain in batches. Exit 0 only if every step behaved as the spec says.

use aep2::codec::base64_encode;
use aep2::crypto::secp256k1::SecretKey;
use aep2::json::{Object, Value, to_compact};
use aep2::{Domain, Eip712Domain, EvmAddress, PaymentRequest, Receipt, SignedMandate, SpId, SpKey, U256};
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
    http: HttpClient,
    payer: Payer,
    now: u64,
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
    let (checks, rows, balance, world, settled) = outcome?;
    if args.json {
        println!(
            "{}",
            to_compact(&report_json(&checks, &rows, &balance, &world, &settled))
        );
    } else {
        print_report(
            &checks,
            &rows,
            &balance,
            &world,
            &settled,
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

type Outcome = (Vec<Check>, Vec<Row>, Balance, World, Settled);

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

    let world = World {
        domain: domain.clone(),
        payee,
        usdc,
        sp,
        base: format!("http://{payee_addr}"),
        http: HttpClient::new(),
        payer: Payer::new(payer_key, domain, 1),
        now: aep2_sp::unix_now(),
    };
    let mut checks = Vec::new();
    let mut rows = Vec::new();
    let result = agent(&world, &mut checks, &mut rows).await;
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
    Ok((checks, rows, balance, world, settled))
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
fn report_json(checks: &[Check], rows: &[Row], balance: &Balance, w: &World, st: &Settled) -> Value {
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
    Value::Object(o)
}

fn print_report(checks: &[Check], rows: &[Row], balance: &Balance, w: &World, st: &Settled, millis: u128) {
    println!("AEP2 demo: a settlement processor and a payee on loopback, one funded agent\n");
    println!(
        "  payer  {}   (demo key, deposit {DEPOSIT} USDC base units)",
        w.payer.address()
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
