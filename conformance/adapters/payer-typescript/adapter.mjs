#!/usr/bin/env node
// AEP2 conformance adapter for the TypeScript payer package (@aep2/payer,
// crates/payer-packages/typescript): the functions a payer uses to sign and to bind, run
// against the vectors so that the package cannot drift from the spec. It answers the kinds a
// payer computes: sign_mandate and the three request-hash kinds, verify_receipt (a payer verifies
// the SP's receipt it is handed, receipts stating a spending lane included), and verify_mandate
// for mandates under spending lanes (plain mandate verification is the payee's job). Protocol:
// spec/conformance.md.
//
// It imports the package's own source (no copy), so what passes here is what ships; the
// package's node_modules (npm ci in crates/payer-packages/typescript) provide its dependencies.

import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import {
  Aep2Error, a2aRequestHash, httpRequestHash, mcpRequestHash, signMandate, fromHex, decodeHeader, verifyEnvelope, verifyReceipt,
} from "../../../crates/payer-packages/typescript/src/index.js";

const require = createRequire(import.meta.url);
const pkg = require("../../../crates/payer-packages/typescript/package.json");

const MAX_LINE_BYTES = 1 << 20;
const KINDS = ["sign_mandate", "verify_receipt", "verify_mandate", "http_request_hash", "a2a_request_hash", "mcp_request_hash"];

function run(c) {
  const { kind, context, input } = c;
  switch (kind) {
    case "sign_mandate": {
      const s = signMandate({ profile: context.profile, domain: context.domain, mandate: input.mandate, key: input.key, form: context.form ?? "mvp" });
      return { verdict: "valid", outputs: { signature: s.signature, header: s.header } };
    }
    case "verify_receipt": {
      // The receipt check a payer runs on its evidence (payer.checkPaymentResponse); the mandate
      // header, when given, is verified first, without a time (spec §6).
      let expected = { domain: context.domain, sp: context.sp };
      if (input.mandateHeader !== undefined) {
        const m = verifyEnvelope(decodeHeader(input.mandateHeader), context.profile, context.domain);
        expected = { ...expected, profile: context.profile, mandateId: m.digest, deadline: m.parsed.deadline, laneId: m.lanes?.leaf };
      }
      verifyReceipt(input.receipt, expected);
      return { verdict: "valid" };
    }
    case "verify_mandate": {
      // Spec §18.6 under the case's profile, domain and (when given) time.
      const m = verifyEnvelope(decodeHeader(input.header), context.profile, context.domain, { now: context.now });
      return { verdict: "valid", outputs: { digest: m.digest, signer: m.signer } };
    }
    case "http_request_hash": {
      const h = httpRequestHash(input.method, input.url, fromHex(input.body));
      return { verdict: "valid", outputs: { descriptor: h.descriptor, requestHash: h.requestHash } };
    }
    case "mcp_request_hash": {
      const h = mcpRequestHash(input.name, input.arguments);
      return { verdict: "valid", outputs: { descriptor: h.descriptor, requestHash: h.requestHash } };
    }
    case "a2a_request_hash": {
      const h = a2aRequestHash(input.a2aMessage);
      if (h.error) throw h.error;
      return { verdict: "valid", outputs: { descriptor: h.descriptor, requestHash: h.requestHash } };
    }
    default:
      return null;
  }
}

// A payer verifies no plain mandates for a payee; it does verify mandates under spending lanes
// (spec §18.6): a sub-agent checks what it signed under its grant, and an agent the chain it is
// handed. So verify_mandate cases are answered when the envelope has a `lanes` member, and
// declined otherwise (decided on the input alone: the decoded envelope, never the expectation).
function plainMandate(c) {
  if (c.kind !== "verify_mandate") return false;
  try {
    const env = decodeHeader(c.input.header);
    return !(env && typeof env === "object" && !Array.isArray(env) && "lanes" in env);
  } catch {
    return true;
  }
}

function answer(msg) {
  if (msg.cmd === "start") {
    return {
      version: 1,
      implementation: { name: pkg.name, language: "javascript", version: pkg.version, source: pkg.repository.url },
      capabilities: { kinds: KINDS, profiles: ["eip712", "ed25519", "solana-mvp"], reasonCodes: true },
    };
  }
  const seq = msg.seq;
  if (plainMandate(msg.case)) {
    return { seq, skipped: { reason: "a plain mandate (no lanes): verifying it is the payee's job, not a payer's; the package verifies mandates under lanes (aep2.md#lane-verification)" } };
  }
  try {
    const result = run(msg.case);
    if (!result) return { seq, skipped: { reason: `kind ${msg.case.kind} is not a payer's` } };
    return { seq, result };
  } catch (e) {
    if (e instanceof Aep2Error) return { seq, result: { verdict: "invalid", code: e.code } };
    return { seq, errored: { message: String(e?.message ?? e), context: String(e?.stack ?? "") } };
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  if (Buffer.byteLength(line) > MAX_LINE_BYTES) process.exit(3);
  const msg = JSON.parse(line);
  if (msg.cmd === "stop") process.exit(0);
  process.stdout.write(`${JSON.stringify(answer(msg))}\n`);
});
rl.on("close", () => process.exit(0));
