// End-to-end against a running `aep2 serve payee` and `aep2 serve sp` (started by the cargo test
// crates/aep2-cli/tests/payer_typescript.rs): the official x402 client (@x402/core x402Client,
// @x402/fetch wrapFetchWithPayment) pays through @aep2/payer in Intent and Order Mode, and an
// unknown outcome is retried with the same mandate and served once.
//
// Env: AEP2_PROFILE (eip712 or ed25519), AEP2_PAYEE_URL (http://host:port), AEP2_SP_URL,
// AEP2_PAYER_KEY (0x secp256k1 secret or Ed25519 seed), AEP2_PRICE, and AEP2_SP_PID (optional: the SP's pid, stopped and continued to stall it). Prints one JSON line of results; exits 1 on the first failed check.

import assert from "node:assert/strict";
import { x402Client, x402HTTPClient } from "@x402/core/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import { Aep2Payer, decodePaymentResponse, fromBase64 } from "../src/index.js";

const PAYEE = process.env.AEP2_PAYEE_URL;
const SP = process.env.AEP2_SP_URL;
const KEY = process.env.AEP2_PAYER_KEY;
const PRICE = BigInt(process.env.AEP2_PRICE ?? "1000");
const PROFILE = process.env.AEP2_PROFILE ?? "eip712";
const SP_ID = process.env.AEP2_SP_ID;
const results = {};

function newPayer(opts = {}) {
  const payer = new Aep2Payer({ key: KEY, profile: PROFILE, maxAmount: (PRICE * 5n).toString(), retry: { baseDelayMs: 50 }, ...opts });
  // AEP2 tokens are not x402 default (USD) assets; the payer's maxAmount caps every payment.
  const client = payer.register(new x402Client().setSpendControls({ allowedAssets: true }));
  return { payer, client };
}

async function spMandate(id) {
  const r = await fetch(`${SP}/v1/mandates/${id}`);
  if (r.status === 404) return undefined;
  assert.equal(r.status, 200, `SP mandate ${id}`);
  return (await r.json()).mandate;
}

async function spBalance(payer) {
  const r = await fetch(`${SP}/v1/accounts?payer=${payer.address}`);
  assert.equal(r.status, 200);
  const a = (await r.json()).accounts[0];
  return { balance: BigInt(a.balance), reserved: BigInt(a.reserved), available: BigInt(a.available) };
}

function payloadOf(header) {
  return JSON.parse(Buffer.from(fromBase64(header)).toString("utf8"));
}

async function checkServed(res, payer, what) {
  const text = await res.text();
  assert.equal(res.status, 200, `${what}: ${res.status} ${text}`);
  const pr = decodePaymentResponse(res);
  assert.ok(pr, `${what}: PAYMENT-RESPONSE present`);
  assert.equal(pr.success, true);
  assert.equal(pr.transaction, "");
  assert.equal(pr.payer, payer.address);
  assert.equal(pr.amount, PRICE.toString());
  assert.equal(pr.extra.status, "receipted", `${what}: receipted`);
  assert.ok(pr.extra.receipt, `${what}: SP receipt attached`);
  assert.match(pr.extra.mandateId, /^0x[0-9a-f]{64}$/);
  const held = await spMandate(pr.extra.mandateId);
  assert.ok(held, `${what}: the SP holds mandate ${pr.extra.mandateId}`);
  // The SP's receipt, verified against the mandate this payer signed and the SP it trusts.
  const { receipt } = payer.checkPaymentResponse(pr, { sp: SP_ID });
  const all = receipt.receiptKind === "native" ? ["signature", "sp", "domain", "mandate-digest", "deadline-rule"] : ["signature", "sp", "mandate-digest", "deadline-rule"];
  assert.deepEqual(receipt.checks, SP_ID ? all : all.filter((c) => c !== "sp"), `${what}: receipt checks`);
  pr.receiptKind = receipt.receiptKind;
  return pr;
}

// A transport that records every header it is asked to send.
function recording(base, tap) {
  return async (req) => {
    tap(req);
    return base(req);
  };
}

// 1. Intent Mode, request-bound: GET /paid/intent through wrapFetchWithPayment.
{
  const { payer, client } = newPayer();
  const sent = [];
  const pay = payer.fetchWithPayment(wrapFetchWithPayment, client, recording(fetch, (r) => sent.push(r.headers.get("payment-signature"))));
  const before = await spBalance(payer);
  const res = await pay(`${PAYEE}/paid/intent`);
  const pr = await checkServed(res, payer, "intent");
  const paid = sent.filter(Boolean);
  assert.equal(paid.length, 1, "one paid attempt");
  const p = payloadOf(paid[0]);
  assert.equal(p.accepted.scheme, "aep2");
  assert.equal(p.payload.aep2, 1, "native envelope");
  assert.equal(p.payload.mandate.ref, (await import("../src/index.js")).httpRequestHash("GET", `${PAYEE}/paid/intent`).requestHash, "ref is the request hash");
  const after = await spBalance(payer);
  assert.equal(before.available - after.available, PRICE, "charged the price once");
  results.intent = { mandateId: pr.extra.mandateId, receiptKind: pr.receiptKind };
}

// 1c. The MVP envelope (eip712): the SP answers with an mvp-evm receipt, verified the same way.
if (PROFILE === "eip712") {
  const { payer, client } = newPayer({ form: "mvp" });
  const pay = payer.fetchWithPayment(wrapFetchWithPayment, client);
  const pr = await checkServed(await pay(`${PAYEE}/paid/intent`), payer, "intent mvp");
  assert.equal(pr.receiptKind, "mvp-evm");
  results.intentMvp = { mandateId: pr.extra.mandateId, receiptKind: pr.receiptKind };
}

// 1b. Intent Mode with a body: POST /paid/intent; the hash covers the body octets as sent.
{
  const { payer, client } = newPayer();
  const sent = [];
  const pay = payer.fetchWithPayment(wrapFetchWithPayment, client, recording(fetch, (r) => sent.push(r.headers.get("payment-signature"))));
  const body = JSON.stringify({ symbol: "ETH", note: "caf\u00e9" });
  const res = await pay(`${PAYEE}/paid/intent`, { method: "POST", headers: { "content-type": "application/json" }, body });
  const pr = await checkServed(res, payer, "intent POST");
  const p = payloadOf(sent.filter(Boolean)[0]);
  const { httpRequestHash } = await import("../src/index.js");
  assert.equal(p.payload.mandate.ref, httpRequestHash("POST", `${PAYEE}/paid/intent`, body).requestHash);
  results.intentPost = { mandateId: pr.extra.mandateId };
}

// 1d. Intent Mode in one round trip: terms known from an earlier 402, the mandate sent with the
//     first request (payer.pay), no 402.
{
  const { payer } = newPayer();
  const first = await fetch(`${PAYEE}/paid/intent`);
  assert.equal(first.status, 402);
  const terms = new x402HTTPClient(new x402Client()).getPaymentRequiredResponse((n) => first.headers.get(n)).accepts[0];
  await first.arrayBuffer();
  const statuses = [];
  const counting = async (req) => {
    const r = await fetch(req);
    statuses.push(r.status);
    return r;
  };
  const pr = await checkServed(await payer.pay(`${PAYEE}/paid/intent`, undefined, terms, counting), payer, "intent one round trip");
  assert.deepEqual(statuses, [200], "one request, served");
  results.intentOneTrip = { mandateId: pr.extra.mandateId };
}

// 2. Order Mode: GET /paid/order answers 402 with a quote; the mandate's ref is the quote hash.
{
  const { payer, client } = newPayer();
  const sent = [];
  const pay = payer.fetchWithPayment(wrapFetchWithPayment, client, recording(fetch, (r) => sent.push(r.headers.get("payment-signature"))));
  const res = await pay(`${PAYEE}/paid/order`);
  const pr = await checkServed(res, payer, "order");
  const p = payloadOf(sent.filter(Boolean)[0]);
  const { quoteHash } = await import("../src/index.js");
  assert.ok(p.accepted.extra.quote, "the 402 carried a quote");
  assert.equal(p.payload.mandate.ref, quoteHash(p.accepted.extra.quote).quoteHash, "ref is the quote hash");
  results.order = { mandateId: pr.extra.mandateId, requestId: p.accepted.extra.quote.requestId };
}

// 3. Unknown outcome at the transport level: the first paid attempt fails (connection reset
//    before an answer); the payer presents the SAME mandate again and is served once.
{
  const { payer, client } = newPayer();
  const sent = [];
  let failed = 0;
  const flaky = async (req) => {
    const h = req.headers.get("payment-signature");
    if (h) sent.push(h);
    if (h && failed === 0) {
      failed++;
      throw new TypeError("fetch failed (injected: connection reset)");
    }
    return fetch(req);
  };
  const before = await spBalance(payer);
  const pay = payer.fetchWithPayment(wrapFetchWithPayment, client, flaky);
  const res = await pay(`${PAYEE}/paid/intent`);
  const pr = await checkServed(res, payer, "retry");
  assert.equal(sent.length, 2, "two paid attempts");
  assert.equal(sent[0], sent[1], "the retry presents the same mandate (same PAYMENT-SIGNATURE)");
  const after = await spBalance(payer);
  assert.equal(before.available - after.available, PRICE, "charged once");
  assert.equal(payer.unfinished.length, 0);
  results.retry = { attempts: sent.length, sameMandate: true, mandateId: pr.extra.mandateId };
}

// 4. The answer is lost after the payee served: the payer retries with the same mandate, the
//    payee reports it delivered (mandate_replayed), and no second mandate is signed.
{
  const { payer, client } = newPayer();
  const sent = [];
  let lost = 0;
  const lossy = async (req) => {
    const h = req.headers.get("payment-signature");
    if (h) sent.push(h);
    const res = await fetch(req);
    if (h && lost === 0) {
      lost++;
      await res.arrayBuffer(); // the payee handed the whole response over; the client lost it
      throw new TypeError("fetch failed (injected: response lost)");
    }
    return res;
  };
  const before = await spBalance(payer);
  const pay = payer.fetchWithPayment(wrapFetchWithPayment, client, lossy);
  const res = await pay(`${PAYEE}/paid/intent`);
  const body = await res.json();
  assert.equal(sent.length, 2, "two paid attempts");
  assert.equal(sent[0], sent[1], "the same mandate both times");
  assert.notEqual(res.status, 200, "not served a second time");
  assert.equal(body.reason, "mandate_replayed", `payee: ${JSON.stringify(body)}`);
  const after = await spBalance(payer);
  assert.equal(before.available - after.available, PRICE, "charged once");
  results.lost = { attempts: sent.length, status: res.status, reason: body.reason };
}

// 5. Every attempt of a call fails: the mandate stays unfinished, and the next call for the
//    same request presents it again (no 402 round trip, no new signature) and is served once.
{
  const { payer, client } = newPayer({ retry: { attempts: 2, baseDelayMs: 20 } });
  const sent = [];
  let down = true;
  const outage = async (req) => {
    const h = req.headers.get("payment-signature");
    if (h) sent.push(h);
    if (h && down) throw new TypeError("fetch failed (injected: network down)");
    return fetch(req);
  };
  const before = await spBalance(payer);
  const pay = payer.fetchWithPayment(wrapFetchWithPayment, client, outage);
  await assert.rejects(pay(`${PAYEE}/paid/intent`), /network down/);
  assert.equal(payer.unfinished.length, 1, "one unfinished mandate kept");
  const kept = payer.unfinished[0].mandateId;
  down = false;
  const res = await pay(`${PAYEE}/paid/intent`);
  const pr = await checkServed(res, payer, "resume");
  assert.equal(new Set(sent).size, 1, "one mandate over all attempts of both calls");
  assert.equal(pr.extra.mandateId, kept, "served for the mandate kept from the failed call");
  assert.equal(payer.unfinished.length, 0);
  const after = await spBalance(payer);
  assert.equal(before.available - after.available, PRICE, "charged once");
  results.resume = { attempts: sent.length, sameMandate: true };
}

// 5b. Two concurrent calls for the same resource are two purchases: an in-flight mandate is
//     not re-presented by the other call (only one whose outcome stayed unknown is).
{
  const { payer, client } = newPayer();
  const before = await spBalance(payer);
  const pay = payer.fetchWithPayment(wrapFetchWithPayment, client);
  const [a, b] = await Promise.all([pay(`${PAYEE}/paid/intent`), pay(`${PAYEE}/paid/intent`)]);
  const pa = await checkServed(a, payer, "concurrent a");
  const pb = await checkServed(b, payer, "concurrent b");
  assert.notEqual(pa.extra.mandateId, pb.extra.mandateId, "two mandates");
  const after = await spBalance(payer);
  assert.equal(before.available - after.available, 2n * PRICE, "charged twice, once each");
  results.concurrent = { mandates: 2 };
}

// 6. The SP stalls (SIGSTOP): the payee cannot get a receipt and answers 503
//    settlement_unavailable; the payer presents the same mandate again once the SP is back, and
//    the payee resumes it (same submission id) and serves it once.
if (process.env.AEP2_SP_PID) {
  const spPid = Number(process.env.AEP2_SP_PID);
  const { payer, client } = newPayer({ retry: { attempts: 4, baseDelayMs: 200, attemptTimeoutMs: 30_000 } });
  const seen = [];
  const watching = async (req) => {
    const h = req.headers.get("payment-signature");
    const res = await fetch(req);
    if (h) {
      seen.push({ header: h, status: res.status, reason: res.status === 503 ? (await res.clone().json()).reason : undefined });
      if (res.status === 503) process.kill(spPid, "SIGCONT"); // the SP comes back before the retry
    }
    return res;
  };
  const before = await spBalance(payer);
  const pay = payer.fetchWithPayment(wrapFetchWithPayment, client, watching);
  process.kill(spPid, "SIGSTOP");
  let res;
  try {
    res = await pay(`${PAYEE}/paid/intent`);
  } finally {
    process.kill(spPid, "SIGCONT");
  }
  const pr = await checkServed(res, payer, "stall");
  assert.equal(seen.length, 2, `two paid attempts: ${JSON.stringify(seen.map((s) => s.status))}`);
  assert.equal(seen[0].status, 503);
  assert.equal(seen[0].reason, "settlement_unavailable");
  assert.equal(seen[0].header, seen[1].header, "the same mandate after the 503");
  const after = await spBalance(payer);
  assert.equal(before.available - after.available, PRICE, "charged once");
  results.stall = { statuses: seen.map((s) => s.status), reason: seen[0].reason, mandateId: pr.extra.mandateId };
}

console.log(JSON.stringify({ ok: true, profile: PROFILE, ...results }));
