// A2A client helpers (spec §11) for @a2a-js/sdk: the mandate in the message's metadata
// (`aep2.dev/*` keys), the input-required task's quote read back, and the receipt. Works on the
// SDK's v1.0 message objects (protobuf-style: numeric role, `content.$case` parts), on their JSON
// form (`Message.toJSON`) and on v0.3 messages (`kind: "message"`). The SDK is not imported.

import { Aep2Error } from "./errors.js";
import { toBase64 } from "./codec.js";
import { a2aRequestHash } from "./hash.js";

/** The extension URI (spec §11.1). */
export const A2A_EXTENSION_URI = "https://aep2.dev/ext/a2a/v1";
/** The metadata keys (spec §11.2). */
export const A2A_STATUS = "aep2.dev/status";
export const A2A_MANDATE = "aep2.dev/mandate";
export const A2A_REQUIREMENTS = "aep2.dev/requirements";
export const A2A_RECEIPT = "aep2.dev/receipt";
export const A2A_ERROR = "aep2.dev/error";

const ROLES = { 1: "ROLE_USER", 2: "ROLE_AGENT" };

function sdkPartToJson(p) {
  const c = p.content;
  const out = {};
  if (c) {
    out[c.$case] = c.$case === "raw" ? toBase64(c.value) : c.value;
  }
  if (p.metadata !== undefined) out.metadata = p.metadata;
  if (p.filename) out.filename = p.filename;
  if (p.mediaType) out.mediaType = p.mediaType;
  return out;
}

/**
 * The wire JSON of an A2A message: a v0.3 or v1.0 JSON message unchanged, an @a2a-js/sdk v1.0
 * message object (numeric `role`) as the SDK's `Message.toJSON` writes it (empty strings and
 * arrays left out).
 */
export function a2aWireMessage(message) {
  if (!message || typeof message !== "object") throw new Aep2Error("a2a_message_invalid", "the message is not an object");
  if (typeof message.role !== "number") return message;
  const out = { messageId: message.messageId };
  if (message.contextId) out.contextId = message.contextId;
  if (message.taskId) out.taskId = message.taskId;
  const role = ROLES[message.role];
  if (!role) throw new Aep2Error("a2a_message_invalid", `role ${message.role}`);
  out.role = role;
  out.parts = (message.parts ?? []).map(sdkPartToJson);
  if (message.metadata !== undefined) out.metadata = message.metadata;
  if (message.extensions?.length) out.extensions = message.extensions;
  if (message.referenceTaskIds?.length) out.referenceTaskIds = message.referenceTaskIds;
  return out;
}

/** The A2A request hash (spec §11.8) of a message in any of the forms `a2aWireMessage` takes. */
export function a2aMessageHash(message) {
  const h = a2aRequestHash(a2aWireMessage(message));
  if (h.error) throw h.error;
  return h.requestHash;
}

/**
 * A copy of `message` (same form as given) carrying the payment: metadata
 * `aep2.dev/status: payment-submitted` and `aep2.dev/mandate` (the envelope object), and the
 * extension URI in `extensions`. Metadata is not part of the request hash, so the hash of the
 * returned message is the hash of the one given.
 */
export function withA2aMandate(message, envelope) {
  if (envelope === null || typeof envelope !== "object") throw new Aep2Error("field_type", "the envelope is an object");
  const metadata = { ...(message.metadata ?? {}) };
  delete metadata["x402.payment.payload"]; // two carriers are payment_ambiguous (spec §11.4)
  metadata[A2A_STATUS] = "payment-submitted";
  metadata[A2A_MANDATE] = envelope;
  const extensions = [...(message.extensions ?? [])];
  if (!extensions.includes(A2A_EXTENSION_URI)) extensions.push(A2A_EXTENSION_URI);
  return { ...message, metadata, extensions };
}

/**
 * Signs for an A2A message in Intent Mode: `requirements` is the agent's x402 entry (its
 * AgentCard terms or an earlier quote's entry); ref is the message's request hash.
 * Returns `{message, mandateId}` with the mandate attached.
 */
export function payA2aMessage(payer, message, requirements) {
  const signed = payer.signFor(requirements, a2aMessageHash(message));
  return { message: withA2aMandate(message, signed.envelope), mandateId: signed.mandateId };
}

function statusMessageOf(task) {
  return task?.status?.message ?? undefined;
}

const INPUT_REQUIRED = new Set(["input-required", "TASK_STATE_INPUT_REQUIRED", 6]);

/**
 * The payment the payee asks for in an input-required task (spec §11.6): `{taskId,
 * requirements, quote}` from the status message's `aep2.dev/requirements`, or undefined.
 * Accepts the SDK's task objects (numeric state), their JSON, and v0.3 tasks.
 */
export function a2aPaymentRequired(task) {
  const state = task?.status?.state;
  if (!INPUT_REQUIRED.has(state)) return undefined;
  const md = statusMessageOf(task)?.metadata;
  if (!md || md[A2A_STATUS] !== "payment-required") return undefined;
  const reqs = md[A2A_REQUIREMENTS];
  if (!Array.isArray(reqs) || reqs.length < 1 || reqs.length > 8) throw new Aep2Error("field_type", "aep2.dev/requirements is 1 to 8 entries");
  if (!reqs.every((r) => r && r.scheme === "aep2")) throw new Aep2Error("x402_scheme_unsupported", "a requirement not of scheme aep2");
  return { taskId: task.id, contextId: task.contextId, requirements: reqs, quote: reqs[0].extra?.quote };
}

/**
 * Pays an input-required task (Order Mode, spec §11.6): signs for its first requirement (ref =
 * the quote hash) and returns `{message, mandateId}`, the reply message (`taskId` of the task)
 * to send with the SDK. `reply` is the message to send (without taskId, which is set here).
 */
export function payA2aTask(payer, task, reply) {
  const pr = a2aPaymentRequired(task);
  if (!pr) throw new Aep2Error("payment_missing", "the task does not ask for payment");
  const signed = payer.signFor(pr.requirements[0], undefined);
  const msg = { ...reply, taskId: pr.taskId };
  if (pr.contextId && !msg.contextId) msg.contextId = pr.contextId;
  return { message: withA2aMandate(msg, signed.envelope), mandateId: signed.mandateId };
}

/** `{status, receipt, error}` of the payee's answer (a task or a message), from its metadata. */
export function a2aPaymentStatus(taskOrMessage) {
  const md = statusMessageOf(taskOrMessage)?.metadata ?? taskOrMessage?.metadata;
  if (!md) return undefined;
  return { status: md[A2A_STATUS], receipt: md[A2A_RECEIPT], error: md[A2A_ERROR] };
}
