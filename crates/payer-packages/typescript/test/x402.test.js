// The aep2 scheme inside the official x402 client (@x402/core): the PaymentRequired the client
// decodes from a PAYMENT-REQUIRED header, the payload it builds, and the payer's refusals.

import { test } from "node:test";
import assert from "node:assert/strict";
import { x402Client, x402HTTPClient } from "@x402/core/client";
import { Aep2Payer, Aep2Error, httpRequestHash, quoteHash, toBase64 } from "../src/index.js";

const KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DOMAIN = { chainId: 84532, verifyingContract: "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912" };
const TOKEN = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const PAYEE = "0x4444444444444444444444444444444444444444";
const NOW = 1_800_000_000;

function entry(extra = {}) {
  return {
    scheme: "aep2", network: "eip155:84532", amount: "1000", asset: TOKEN, payTo: PAYEE, maxTimeoutSeconds: 60,
    extra: { domain: DOMAIN, settlementWindow: 310, ...extra },
  };
}

function header(accepts) {
  const pr = { x402Version: 2, error: "payment_missing", resource: { url: "http://127.0.0.1:1/paid" }, accepts };
  return toBase64(Buffer.from(JSON.stringify(pr)));
}

function setup(opts = {}) {
  const payer = new Aep2Payer({ key: KEY, maxAmount: "5000", now: () => NOW, ...opts });
  const client = payer.register(new x402Client().setSpendControls({ allowedAssets: true }));
  const http = new x402HTTPClient(client);
  return { payer, client, http };
}

const code = (c) => (e) => (e instanceof Aep2Error && e.code === c) || (e?.message ?? "").includes(c);

test("Intent Mode: the mandate is bound to the request the payer's call is making", async () => {
  const { payer, client, http } = setup();
  const pr = http.getPaymentRequiredResponse((n) => (n.toLowerCase() === "payment-required" ? header([entry()]) : null));
  const url = "http://127.0.0.1:1/paid/intent?x=1";
  const payload = await payer.calls.run({ request: httpRequestHash("GET", url) }, () => client.createPaymentPayload(pr));
  assert.equal(payload.x402Version, 2);
  assert.deepEqual(payload.accepted, pr.accepts[0]);
  const m = payload.payload.mandate;
  assert.equal(payload.payload.aep2, 1);
  assert.equal(m.owner, payer.address);
  assert.equal(m.ref, httpRequestHash("GET", url).requestHash);
  assert.equal(m.amount, "1000");
  assert.equal(m.payee, PAYEE);
  assert.equal(m.deadline, NOW + 310 + 120);
  // Every encoded header is one the client can send.
  assert.ok(http.encodePaymentSignatureHeader(payload)["PAYMENT-SIGNATURE"].length > 100);
});

test("Intent Mode without a known request is refused, not signed unbound", async () => {
  const { client, http } = setup();
  const pr = http.getPaymentRequiredResponse(() => header([entry()]));
  await assert.rejects(client.createPaymentPayload(pr), code("request_descriptor_invalid"));
});

test("Order Mode: ref is the quote hash; a quote that disagrees with its entry is refused", async () => {
  const { payer, client, http } = setup();
  const quote = {
    aep2: 1, kind: "payment-request", profile: "eip712", domain: DOMAIN, requestId: "q-1", payee: PAYEE, asset: TOKEN,
    amount: "1000", expiry: NOW + 100, description: "one report", settlementProcessor: "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A", settlementWindow: 310,
  };
  const pr = http.getPaymentRequiredResponse(() => header([entry({ quote })]));
  const payload = await client.createPaymentPayload(pr);
  assert.equal(payload.payload.mandate.ref, quoteHash(quote).quoteHash);
  const cheap = http.getPaymentRequiredResponse(() => header([{ ...entry({ quote }), amount: "999" }]));
  await assert.rejects(client.createPaymentPayload(cheap), code("amount_not_exact"));
  const late = http.getPaymentRequiredResponse(() => header([entry({ quote: { ...quote, expiry: NOW - 1 } })]));
  await assert.rejects(client.createPaymentPayload(late), code("quote_expired"));
  assert.ok(payer.address);
});

test("limits: above maxAmount, another deployment, another network are refused", async () => {
  const { payer, client, http } = setup({ domain: DOMAIN });
  const url = "http://127.0.0.1:1/p";
  const run = (accepts) =>
    payer.calls.run({ request: httpRequestHash("GET", url) }, () => client.createPaymentPayload(http.getPaymentRequiredResponse(() => header(accepts))));
  await assert.rejects(run([{ ...entry(), amount: "5001" }]), code("amount_not_exact"));
  await assert.rejects(run([entry({ domain: { ...DOMAIN, chainId: 1 } })]), /No client registered|domain_mismatch/);
  const p = await run([entry()]);
  assert.equal(p.payload.mandate.amount, "1000");
});

test("nonces are fresh per mandate", async () => {
  const { payer } = setup();
  const a = payer.signFor(entry(), `0x${"ab".repeat(32)}`);
  const b = payer.signFor(entry(), `0x${"ab".repeat(32)}`);
  assert.notEqual(a.envelope.mandate.nonce, b.envelope.mandate.nonce);
  assert.notEqual(a.mandateId, b.mandateId);
});

test("the payer's key is private: inspecting or listing the payer does not show it", async () => {
  const { inspect } = await import("node:util");
  const { payer } = setup();
  assert.ok(!inspect(payer, { depth: 10 }).includes(KEY.slice(2)));
  assert.ok(!Object.values(payer).some((v) => v === KEY));
});
