// Receipt verification against the spec's worked examples (§6.1, §6.3) and its refusals.

import { test } from "node:test";
import assert from "node:assert/strict";
import { verifyReceipt, Aep2Error } from "../src/index.js";

const DOMAIN = { chainId: 84532, verifyingContract: "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912" };
const ID = "0xacffc66c2eab7d0e63e893c1027af74f82090d2718062bdb0c174f653e2e43ca"; // §4.1.1 mandate, deadline 1700000600
const SP = "0x405B10be927D3BF157196C995d8131c6A097673c";
const code = (c) => (e) => e instanceof Aep2Error && e.code === c;

const MVP = { sp: SP, mandateDigest: ID, enqueueDeadline: 1700000600, spEnqueueSig: "0x8720cfb7c7da6868e5a1ba12094c0b7e64e227b56054ddbcb9bcff79937fd8a36baa078810bdc97fc99d9d0bbc3f0fd2dc171f48a6804894038804f402da1c8a1b" };
const NATIVE = {
  aep2: 1, kind: "receipt", profile: "eip712", domain: DOMAIN, sp: SP, mandateDigest: ID, enqueueDeadline: 1700000600,
  signature: "0xd10bd3960a9776b8fd55ce8a493e37c11ba3527509bd5b8d2d5abf8aab76064f1a5396f7e383af4d7fca7c4bbc2db11cd9b7dcd430bf922e1c99b077124dd93d1c",
};
const ED = {
  aep2: 1, kind: "receipt", profile: "ed25519",
  domain: { network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", wallet: "AnZDD6eXMV3xfhLqXWi6DUp8ebJwYCYfce8sYawVgdan" },
  sp: "FLpgzKZV1czUTLQHRSnYmXhW2sQv5evXgmyTURGgVKUW",
  mandateDigest: "0xeae409fd3a7d69e2d1272bfcdb5732f7426b0181140ec3c59773ab2874a5d0fa", enqueueDeadline: 1893455000,
  signature: "3AhW6o4LS7NcCD8abnyBK5XKiAuJnaMmuPQgWS6fFMC5A9ZrjgPfHUG21UDCtAhuQLHSDkvRvioQMs9oTPd9aDfS",
};

test("the worked receipts of §6.1 and §6.3 verify, with every check listed", () => {
  const all = ["signature", "sp", "mandate-digest", "deadline-rule"];
  assert.deepEqual(verifyReceipt(MVP, { profile: "eip712", mandateId: ID, deadline: 1700000600, sp: SP }).checks, all);
  const n = verifyReceipt(NATIVE, { profile: "eip712", domain: DOMAIN, mandateId: ID, deadline: 1700000600, sp: SP });
  assert.equal(n.receiptKind, "native");
  assert.deepEqual(n.checks, ["signature", "sp", "domain", "mandate-digest", "deadline-rule"]);
  const e = verifyReceipt(ED, { profile: "ed25519", domain: ED.domain, mandateId: ED.mandateDigest, deadline: 1893456000, sp: ED.sp });
  assert.equal(e.sp, ED.sp);
  assert.deepEqual(verifyReceipt(MVP).checks, ["signature"], "without inputs, only the signature is checked, and it says so");
});

test("refusals carry the spec's codes", () => {
  assert.throws(() => verifyReceipt({ ...MVP, enqueueDeadline: 1700000601 }), code("signature_invalid"));
  assert.throws(() => verifyReceipt(MVP, { sp: "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A" }), code("receipt_sp_mismatch"));
  assert.throws(() => verifyReceipt(MVP, { mandateId: `0x${"00".repeat(32)}` }), code("receipt_digest_mismatch"));
  assert.throws(() => verifyReceipt(MVP, { deadline: 1700000599 }), code("receipt_deadline_after_mandate"));
  assert.throws(() => verifyReceipt(NATIVE, { domain: { ...DOMAIN, chainId: 1 } }), code("domain_mismatch"));
  assert.throws(() => verifyReceipt({ ...NATIVE, extra: 1 }), code("unknown_field"));
  const highS = MVP.spEnqueueSig.slice(0, 66) + "f".repeat(64) + "1b";
  assert.throws(() => verifyReceipt({ ...MVP, spEnqueueSig: highS }), code("signature_high_s"));
  assert.throws(() => verifyReceipt({ ...MVP, spEnqueueSig: `${MVP.spEnqueueSig.slice(0, -2)}01` }), code("signature_v_invalid"));
  assert.throws(() => verifyReceipt({ ...ED, enqueueDeadline: 1 }), code("signature_invalid"));
});
