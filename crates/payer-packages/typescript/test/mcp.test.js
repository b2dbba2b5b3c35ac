// The MCP helpers with the official TypeScript SDK (@modelcontextprotocol/sdk): a real SDK
// Client talks to an SDK Server over the SDK's in-memory transport, so what is checked is the
// tools/call request the SDK actually sends (params._meta["dev.aep2/mandate"]) and the result
// objects it actually returns. The server here is a test harness that answers as spec §12.4
// says; the payee's own /mcp endpoint is tested by its crate.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { Aep2Payer, callPaidTool, mcpRequestHash, mcpPaymentRequired, quoteHash, withMcpMandate, MCP_MANDATE } from "../src/index.js";

const KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DOMAIN = { chainId: 84532, verifyingContract: "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912" };
const TOKEN = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const PAYEE = "0x4444444444444444444444444444444444444444";
const NOW = Math.floor(Date.now() / 1000);
const QUOTE = {
  aep2: 1, kind: "payment-request", profile: "eip712", domain: DOMAIN, requestId: "q-mcp-1", payee: PAYEE, asset: TOKEN,
  amount: "1000", expiry: NOW + 120, description: "weather", settlementProcessor: "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A", settlementWindow: 310,
};
const ENTRY = { scheme: "aep2", network: "eip155:84532", amount: "1000", asset: TOKEN, payTo: PAYEE, maxTimeoutSeconds: 120, extra: { domain: DOMAIN, settlementWindow: 310 } };

function paymentRequired(name, reason, accepts) {
  const pr = { x402Version: 2, error: reason, resource: { url: `mcp://tool/${name}` }, accepts };
  return {
    content: [{ type: "text", text: JSON.stringify(pr) }, { type: "text", text: `Payment required to call tool "${name}": ${reason}` }],
    structuredContent: pr,
    isError: true,
    _meta: { "dev.aep2/reason": reason },
  };
}

async function harness({ order, failFirst = 0 }) {
  const seen = [];
  let failures = failFirst;
  const server = new Server({ name: "harness", version: "0.0.0" }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [{ name: "get_weather", inputSchema: { type: "object" } }] }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => {
    seen.push(req.params);
    const env = req.params._meta?.[MCP_MANDATE];
    if (!env) return paymentRequired(req.params.name, "payment_missing", [order ? { ...ENTRY, extra: { ...ENTRY.extra, quote: QUOTE } } : ENTRY]);
    if (failures > 0) {
      failures--;
      throw new Error("harness: transient failure before the result");
    }
    return {
      content: [{ type: "text", text: "sunny" }],
      _meta: { "dev.aep2/payment-response": { success: true, transaction: "", network: "eip155:84532", payer: env.mandate.owner, amount: env.mandate.amount, extra: { mandateId: "0x" + "00".repeat(32), status: "accepted" } } },
    };
  });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(b);
  const client = new Client({ name: "payer", version: "0.0.0" });
  await client.connect(a);
  return { client, seen };
}

const payer = () => new Aep2Payer({ key: KEY, maxAmount: "5000" });

test("Order Mode: the payment-required result's quote is paid, the SDK carries the mandate in params._meta", async () => {
  const { client, seen } = await harness({ order: true });
  const args = { location: "New York", units: "metric" };
  const out = await callPaidTool(payer(), client, { name: "get_weather", arguments: args });
  assert.equal(seen.length, 2);
  assert.equal(seen[0]._meta?.[MCP_MANDATE], undefined, "first call unpaid");
  const env = seen[1]._meta[MCP_MANDATE];
  assert.equal(env.aep2, 1);
  assert.equal(env.mandate.ref, quoteHash(QUOTE).quoteHash);
  assert.deepEqual(seen[1].arguments, args, "the same call repeated");
  assert.equal(out.result.content[0].text, "sunny");
  assert.equal(out.paymentResponse.success, true);
});

test("Intent Mode with known terms: one call, ref is the tool-call hash of §12.6", async () => {
  const { client, seen } = await harness({ order: false });
  const args = { location: "New York", units: "metric" };
  const out = await callPaidTool(payer(), client, { name: "get_weather", arguments: args, _meta: { progressToken: 7 } }, { requirements: ENTRY });
  assert.equal(seen.length, 1);
  assert.equal(seen[0]._meta[MCP_MANDATE].mandate.ref, mcpRequestHash("get_weather", args).requestHash);
  assert.equal(seen[0]._meta.progressToken, 7, "other _meta keys kept");
  assert.equal(out.mandateId.length, 66);
});

test("an unknown outcome is retried with the same mandate", async () => {
  const { client, seen } = await harness({ order: false, failFirst: 1 });
  const out = await callPaidTool(payer(), client, { name: "get_weather", arguments: {} }, { requirements: ENTRY });
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[0]._meta[MCP_MANDATE], seen[1]._meta[MCP_MANDATE]);
  assert.equal(out.result.content[0].text, "sunny");
});

test("reading results: structuredContent first, content[0].text as fallback, nothing else", () => {
  const r = paymentRequired("t", "payment_missing", [ENTRY]);
  assert.equal(mcpPaymentRequired(r).reason, "payment_missing");
  const textOnly = { ...r, structuredContent: undefined };
  assert.equal(mcpPaymentRequired(textOnly).accepts[0].payTo, PAYEE);
  assert.equal(mcpPaymentRequired({ content: [{ type: "text", text: "fine" }] }), undefined);
  const p = withMcpMandate({ name: "t", _meta: { "x402/payment": {} } }, { mandate: {}, payerSig: "0x" });
  assert.equal(p._meta["x402/payment"], undefined, "never two carriers");
});
