// An agent that pays a paid A2A agent with the stock @a2a-js/sdk client, once over A2A v1.0
// (the card at /.well-known/agent-card.json) and once over v0.3 (the SDK's v0.3 compatibility
// transport, from the v0.3 card at /.well-known/agent.json).
//
// Usage: node client.mjs BASE_URL
//
// It talks to its driver (crates/aep2-cli/tests/a2a_clients.rs) in JSON lines: it writes
// {"event": ...} lines to stdout and, for "sign-intent" and "sign-order", reads one line
// {"envelope": {...}} from stdin: the mandate, signed by the driver. The client never signs;
// it only carries the mandate where the AEP2 A2A binding says (message metadata
// "aep2.dev/mandate", spec §11.4) and reports what the SDK returned. Any failure is an
// {"event": "error"} line and exit status 1.

import {
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
} from "@a2a-js/sdk/client";
import { Role, Task } from "@a2a-js/sdk";
import { createInterface } from "node:readline";

const EXTENSION = "https://aep2.dev/ext/a2a/v1";
const base = process.argv[2];
if (!base) {
  process.stderr.write("usage: node client.mjs BASE_URL\n");
  process.exit(2);
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n");

async function ask(event) {
  emit(event);
  const next = await lines.next();
  if (next.done) throw new Error(`no answer to ${event.event}`);
  const answer = JSON.parse(next.value);
  if (!answer.envelope) throw new Error(`no envelope for ${event.event}: ${next.value}`);
  return answer.envelope;
}

// Activation of the AEP2 extension, on every call (the card declares it required). The SDK
// rewrites the header name for the negotiated version (A2A-Extensions, v0.3 X-A2A-Extensions).
const options = { serviceParameters: { "A2A-Extensions": EXTENSION } };

const text = (value) => ({ content: { $case: "text", value } });

function userMessage(id, words, extra = {}) {
  return {
    messageId: id,
    contextId: "",
    taskId: "",
    role: Role.ROLE_USER,
    parts: [text(words)],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
    ...extra,
  };
}

function payWith(message, envelope) {
  return {
    ...message,
    metadata: { "aep2.dev/status": "payment-submitted", "aep2.dev/mandate": envelope },
    extensions: [EXTENSION],
  };
}

// The SDK's result is a Task or a Message; report it in v1.0 ProtoJSON (the SDK's own encoder)
// whatever the wire version was, so the driver reads one shape.
function asTask(result) {
  if (!result || !("status" in result)) throw new Error(`expected a task, got ${JSON.stringify(result)}`);
  return Task.toJSON(result);
}

async function run(label, client) {
  const card = client.agentCard;
  const ext = (card.capabilities?.extensions ?? []).find((e) => e.uri === EXTENSION);
  emit({
    event: "card",
    label,
    protocolVersion: client.protocolVersion,
    interfaces: card.supportedInterfaces,
    extension: ext ?? null,
  });
  if (!ext) throw new Error("the card declares no AEP2 extension");

  // Intent Mode: the mandate on the first message, its ref the message's request hash.
  const intent = userMessage(`${label}-intent-1`, `Summarise the Q3 EU solar report (${label})`, {
    contextId: `ctx-${label}`,
  });
  const intentEnvelope = await ask({ event: "sign-intent", label, message: messageJson(intent) });
  const paid = await client.sendMessage({ message: payWith(intent, intentEnvelope) }, options);
  const paidTask = asTask(paid);
  emit({ event: "result", label, mode: "intent", task: paidTask });

  // The same paid message again (as after a lost answer): the stored result, not a second charge.
  const again = await client.sendMessage({ message: payWith(intent, intentEnvelope) }, options);
  emit({ event: "result", label, mode: "intent-again", task: asTask(again) });

  // Order Mode: ask first, get an input-required task with the quote, then pay it.
  const quoted = asTask(await client.sendMessage({ message: userMessage(`${label}-order-1`, "Report please") }, options));
  emit({ event: "result", label, mode: "order-quote", task: quoted });
  const requirements = quoted.status?.message?.metadata?.["aep2.dev/requirements"];
  if (!requirements) throw new Error("the input-required task carries no aep2.dev/requirements");
  const orderEnvelope = await ask({ event: "sign-order", label, taskId: quoted.id, requirements });
  const reply = payWith(userMessage(`${label}-order-2`, "Paid", { taskId: quoted.id }), orderEnvelope);
  const done = asTask(await client.sendMessage({ message: reply }, options));
  emit({ event: "result", label, mode: "order-paid", task: done });

  // Polling: the task as the agent now holds it.
  const polled = asTask(await client.getTask({ tenant: "", id: quoted.id }, options));
  emit({ event: "result", label, mode: "polled", task: polled });

  // An unknown task: the SDK maps A2A's TaskNotFoundError (-32001).
  try {
    await client.getTask({ tenant: "", id: `no-such-task-${label}` }, options);
    emit({ event: "result", label, mode: "unknown-task", error: null });
  } catch (e) {
    emit({ event: "result", label, mode: "unknown-task", error: e?.constructor?.name ?? String(e), message: String(e?.message ?? e) });
  }
}

// The message as the SDK will encode it in v1.0 (the driver hashes its parts and ids).
function messageJson(m) {
  const out = { messageId: m.messageId, role: "ROLE_USER", parts: m.parts.map((p) => ({ text: p.content.value })) };
  if (m.contextId) out.contextId = m.contextId;
  if (m.taskId) out.taskId = m.taskId;
  return out;
}

try {
  // A2A v1.0: the stock factory, card from /.well-known/agent-card.json.
  const v1 = await new ClientFactory().createFromUrl(base);
  await run("v1", v1);

  // A2A v0.3: the SDK's compatibility layer, from the v0.3 card at the pre-v1.0 path.
  const legacy = { legacyCompat: { enabled: true } };
  const factory = new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory(legacy)],
      cardResolver: new DefaultAgentCardResolver({ ...legacy, path: ".well-known/agent.json" }),
    }),
  );
  const v03 = await factory.createFromUrl(base);
  await run("v03", v03);
  emit({ event: "done" });
  process.exit(0);
} catch (e) {
  emit({ event: "error", message: String(e?.stack ?? e) });
  process.exit(1);
}
