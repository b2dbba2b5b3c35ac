// The A2A helpers on the objects @a2a-js/sdk builds: its v1.0 Message and Task objects
// (protobuf-style, from Message.fromJSON / Task.fromJSON) and their wire JSON (toJSON), and
// v0.3 messages; the request hash matches spec §11.8's worked example on every form.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Message, Task } from "@a2a-js/sdk";
import {
  Aep2Payer, A2A_EXTENSION_URI, a2aMessageHash, a2aPaymentRequired, a2aPaymentStatus, a2aWireMessage,
  payA2aMessage, payA2aTask, quoteHash, withA2aMandate,
} from "../src/index.js";

const KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DOMAIN = { chainId: 84532, verifyingContract: "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912" };
const TOKEN = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const PAYEE = "0x4444444444444444444444444444444444444444";
const NOW = Math.floor(Date.now() / 1000);
const ENTRY = { scheme: "aep2", network: "eip155:84532", amount: "1000", asset: TOKEN, payTo: PAYEE, maxTimeoutSeconds: 120, extra: { domain: DOMAIN, settlementWindow: 310 } };
const HASH = "0x9efcfa895c5b4d24e2f3297d7f4498ee5c4a71f749303d60b17ed44254dd57e0";
const JSON_V1 = { messageId: "m-1", contextId: "ctx-1", role: "ROLE_USER", parts: [{ text: "Translate to German: good morning" }] };

test("the SDK's Message object, its JSON and the v0.3 spelling hash alike (spec §11.8 example)", () => {
  const sdk = Message.fromJSON(JSON_V1);
  assert.equal(typeof sdk.role, "number");
  assert.deepEqual(a2aWireMessage(sdk), Message.toJSON(sdk));
  assert.equal(a2aMessageHash(sdk), HASH);
  assert.equal(a2aMessageHash(Message.toJSON(sdk)), HASH);
  const v03 = { kind: "message", messageId: "m-1", contextId: "ctx-1", role: "user", parts: [{ kind: "text", text: "Translate to German: good morning" }] };
  assert.equal(a2aMessageHash(v03), HASH);
});

test("Intent Mode: the mandate rides in metadata, and the SDK keeps it through its JSON round trip", () => {
  const payer = new Aep2Payer({ key: KEY, maxAmount: "5000" });
  const { message, mandateId } = payA2aMessage(payer, JSON_V1, ENTRY);
  assert.equal(message.metadata["aep2.dev/status"], "payment-submitted");
  assert.equal(message.metadata["aep2.dev/mandate"].mandate.ref, HASH);
  assert.ok(message.extensions.includes(A2A_EXTENSION_URI));
  const sdk = Message.fromJSON(message);
  assert.deepEqual(Message.toJSON(sdk).metadata, message.metadata);
  assert.equal(a2aMessageHash(sdk), HASH, "metadata is outside the hash");
  assert.match(mandateId, /^0x[0-9a-f]{64}$/);
  // Binary parts: the SDK's Buffer becomes the base64 the wire carries.
  const file = Message.fromJSON({ messageId: "m-4", role: "ROLE_USER", parts: [{ raw: "SGVsbG8sIEEyQSE=", filename: "hello.txt", mediaType: "text/plain" }] });
  assert.deepEqual(a2aWireMessage(file), Message.toJSON(file));
});

test("Order Mode: an input-required Task asks for payment; the reply pays its quote for the same task", () => {
  const quote = {
    aep2: 1, kind: "payment-request", profile: "eip712", domain: DOMAIN, requestId: "q-a2a-1", payee: PAYEE, asset: TOKEN,
    amount: "1000", expiry: NOW + 120, description: "translation", settlementProcessor: "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A", settlementWindow: 310,
  };
  const task = Task.fromJSON({
    id: "task-1", contextId: "ctx-1",
    status: {
      state: "TASK_STATE_INPUT_REQUIRED",
      message: {
        messageId: "s-1", role: "ROLE_AGENT", parts: [{ text: "Payment required" }], extensions: [A2A_EXTENSION_URI],
        metadata: { "aep2.dev/status": "payment-required", "aep2.dev/requirements": [{ ...ENTRY, extra: { ...ENTRY.extra, quote } }] },
      },
    },
  });
  const pr = a2aPaymentRequired(task);
  assert.equal(pr.taskId, "task-1");
  assert.deepEqual(pr.quote, quote);
  const payer = new Aep2Payer({ key: KEY, maxAmount: "5000" });
  const { message } = payA2aTask(payer, task, { messageId: "m-2", role: "ROLE_USER", parts: [{ text: "paying" }] });
  assert.equal(message.taskId, "task-1");
  assert.equal(message.contextId, "ctx-1");
  assert.equal(message.metadata["aep2.dev/mandate"].mandate.ref, quoteHash(quote).quoteHash);
  assert.equal(Message.toJSON(Message.fromJSON(message)).taskId, "task-1");
  const done = Task.fromJSON({ id: "task-1", status: { state: "TASK_STATE_COMPLETED", message: { messageId: "s-2", role: "ROLE_AGENT", parts: [{ text: "ok" }], metadata: { "aep2.dev/status": "payment-verified", "aep2.dev/receipt": { mandateId: "0x" + "11".repeat(32), payer: payer.address, amount: "1000" } } } } });
  assert.equal(a2aPaymentStatus(done).status, "payment-verified");
  assert.equal(a2aPaymentRequired(done), undefined);
});

test("an agent message has no request hash; a misspelt aep2.dev key is refused", () => {
  assert.throws(() => a2aMessageHash({ ...JSON_V1, role: "ROLE_AGENT" }), (e) => e.code === "request_descriptor_invalid");
  assert.throws(() => a2aMessageHash({ ...JSON_V1, metadata: { "aep2.dev/Mandate": {} } }), (e) => e.code === "a2a_message_invalid");
  const m = withA2aMandate({ ...JSON_V1, metadata: { "x402.payment.payload": {} } }, { mandate: {}, payerSig: "0x" });
  assert.equal(m.metadata["x402.payment.payload"], undefined, "never two carriers");
});
