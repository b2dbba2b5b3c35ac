// Verifying the SP's receipt for a mandate this payer signed (spec §6): the payer's evidence
// that the SP promised to settle by `enqueueDeadline`. Forms `mvp-evm` (§6.1) and native
// (§6.3, eip712 and ed25519) and `mvp-solana` (§6.2).

import { keccak_256 } from "@noble/hashes/sha3.js";
import { Aep2Error } from "./errors.js";
import { concat, fromBase58, fromHex, parseAddress, toChecksum, toHex, utf8 } from "./codec.js";
import { jcs } from "./json.js";
import { ed25519Verify, parseDomain, parseUint } from "./mandate.js";
import { recoverEvm } from "./evm.js";

export { recoverEvm };

const RECEIPT_TYPEHASH = keccak_256(utf8("Receipt(address sp,bytes32 mandateDigest,uint256 enqueueDeadline)"));
const LANE_RECEIPT_TYPEHASH = keccak_256(
  utf8("LaneReceipt(address sp,bytes32 mandateDigest,uint256 enqueueDeadline,bytes32 lane,uint256 remaining)"),
);
const DOMAIN_TYPEHASH = keccak_256(utf8("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"));
const ED_PREFIX = concat(utf8("AEP2/ed25519/receipt/v1"), new Uint8Array([0]));
const PERSONAL = utf8("\x19Ethereum Signed Message:\n32");

const word = (n) => fromHex(BigInt(n).toString(16).padStart(64, "0"));
const addrWord = (a) => concat(new Uint8Array(12), a);

function closed(o, names, optional = []) {
  if (o === null || typeof o !== "object" || Array.isArray(o)) throw new Aep2Error("field_type", "the receipt is not an object");
  for (const k of Object.keys(o)) if (!names.includes(k) && !optional.includes(k)) throw new Aep2Error("unknown_field", `receipt member ${k}`);
  for (const k of names) if (!(k in o)) throw new Aep2Error("missing_field", `receipt member ${k}`);
}

function deadlineOf(v) {
  if (typeof v !== "number") throw new Aep2Error("field_type", "enqueueDeadline is not a number");
  if (!Number.isSafeInteger(v) || v < 0) throw new Aep2Error("uint_invalid", "enqueueDeadline");
  return v;
}

// A native receipt's `lane` member (spec §18.7): {id: 0x + 64 hex, remaining: decimal}.
function laneOf(v) {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Aep2Error("field_type", "receipt.lane is not an object");
  for (const k of Object.keys(v)) if (k !== "id" && k !== "remaining") throw new Aep2Error("unknown_field", `receipt.lane member ${k}`);
  for (const k of ["id", "remaining"]) if (!(k in v)) throw new Aep2Error("missing_field", `receipt.lane member ${k}`);
  const id = digest32(v.id);
  return { id, remaining: parseUint(v.remaining, (1n << 256n) - 1n) };
}

function digest32(v) {
  if (typeof v !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(v)) throw new Aep2Error("field_type", "mandateDigest is not 0x + 64 hex");
  return `0x${v.slice(2).toLowerCase()}`;
}

/**
 * Verifies `receipt` (the object from PAYMENT-RESPONSE `extra.receipt`, A2A `aep2.dev/receipt` or
 * MCP) for a mandate this payer signed: `{profile, domain, mandateId, deadline}`, and `sp` (the SP
 * it trusts; without it the receipt proves only that someone signed it). Returns
 * `{receiptKind, sp, enqueueDeadline, checks, lane?}`; `mandateId` is the mandate's digest (the MVP
 * digest for solana-mvp) (`checks` lists what was checked). For a mandate under a spending lane pass
 * `laneId`, its leaf lane's id: the receipt must state that lane (`receipt_lane_mismatch`, spec
 * §18.7). A receipt stating a lane returns `lane: {id, remaining}`, the SP's signed statement of
 * what can still be spent under the leaf after this payment. Throws Aep2Error with the spec's code
 * otherwise.
 */
export function verifyReceipt(receipt, { profile, domain, mandateId, deadline, sp, laneId } = {}) {
  const checks = ["signature"];
  let kind;
  let signer;
  let dom;
  let md;
  let enqueueDeadline;
  let lane;
  if (receipt !== null && typeof receipt === "object" && "aep2" in receipt) {
    kind = "native";
    closed(receipt, ["aep2", "kind", "profile", "domain", "sp", "mandateDigest", "enqueueDeadline", "signature"], ["lane"]);
    if (receipt.aep2 !== 1) throw new Aep2Error("unsupported_version", "receipt aep2 must be 1");
    if (receipt.kind !== "receipt") throw new Aep2Error("field_type", "receipt kind must be receipt");
    if (receipt.profile !== "eip712" && receipt.profile !== "ed25519") throw new Aep2Error("unsupported_profile", `receipt profile ${receipt.profile}`);
    dom = parseDomain(receipt.profile, receipt.domain);
    const rsp = receipt.profile === "eip712" ? parseAddress(receipt.sp) : fromBase58(receipt.sp, "address_invalid", 32);
    md = digest32(receipt.mandateDigest);
    enqueueDeadline = deadlineOf(receipt.enqueueDeadline);
    if ("lane" in receipt) lane = laneOf(receipt.lane);
    if (receipt.profile === "eip712") {
      const sep = keccak_256(
        concat(DOMAIN_TYPEHASH, keccak_256(utf8("AEP2SettlementProcessor")), keccak_256(utf8("1")), word(dom.chainId), addrWord(parseAddress(dom.verifyingContract))),
      );
      // A receipt stating a lane is signed as a LaneReceipt, one without as before (spec §18.7).
      const struct = lane
        ? keccak_256(concat(LANE_RECEIPT_TYPEHASH, addrWord(rsp), fromHex(md), word(enqueueDeadline), fromHex(lane.id), word(lane.remaining)))
        : keccak_256(concat(RECEIPT_TYPEHASH, addrWord(rsp), fromHex(md), word(enqueueDeadline)));
      signer = recoverEvm(receipt.signature, keccak_256(concat(new Uint8Array([0x19, 0x01]), sep, struct)));
      if (signer !== toChecksum(rsp)) throw new Aep2Error("signature_invalid", "the receipt is not signed by its sp");
      signer = toChecksum(rsp);
    } else {
      const body = { sp: receipt.sp, mandateDigest: md, enqueueDeadline };
      if (lane) body.lane = { id: lane.id, remaining: lane.remaining.toString() };
      const msg = concat(ED_PREFIX, utf8(jcs({ domain: { network: dom.network, wallet: dom.wallet }, receipt: body })));
      ed25519Verify(receipt.signature, msg, rsp);
      signer = receipt.sp;
    }
  } else {
    closed(receipt, ["sp", "mandateDigest", "enqueueDeadline", "spEnqueueSig"]);
    if (typeof receipt.sp !== "string") throw new Aep2Error("field_type", "sp is not a string");
    if (receipt.sp.startsWith("0x")) {
      kind = "mvp-evm";
      const rsp = parseAddress(receipt.sp);
      md = digest32(receipt.mandateDigest);
      enqueueDeadline = deadlineOf(receipt.enqueueDeadline);
      const commitment = keccak_256(concat(fromHex(md), word(enqueueDeadline)));
      signer = recoverEvm(receipt.spEnqueueSig, keccak_256(concat(PERSONAL, commitment)));
      if (signer !== toChecksum(rsp)) throw new Aep2Error("signature_invalid", "the receipt is not signed by its sp");
    } else {
      kind = "mvp-solana";
      const rsp = fromBase58(receipt.sp, "address_invalid", 32);
      if (typeof receipt.mandateDigest !== "string" || receipt.mandateDigest === "") throw new Aep2Error("field_type", "mandateDigest is not base58");
      try {
        // An MVP digest is base58 of up to 458 signed bytes: at most 626 characters (spec §5.5).
        fromBase58(receipt.mandateDigest, "field_type", undefined, 1024);
      } catch {
        throw new Aep2Error("field_type", "mandateDigest is not base58");
      }
      md = receipt.mandateDigest;
      enqueueDeadline = deadlineOf(receipt.enqueueDeadline);
      ed25519Verify(receipt.spEnqueueSig, utf8(`${md}:${enqueueDeadline}`), rsp);
      signer = receipt.sp;
    }
  }
  if (sp !== undefined) {
    const same = signer.startsWith("0x") ? sp.startsWith("0x") && toHex(parseAddress(sp)) === toHex(parseAddress(signer)) : sp === signer;
    if (!same) throw new Aep2Error("receipt_sp_mismatch", `receipt signed by ${signer}, not ${sp}`);
    checks.push("sp");
  }
  if (kind === "native" && domain !== undefined) {
    // A domain of the other profile's shape is another deployment, not a malformed receipt.
    let d;
    try {
      d = parseDomain(receipt.profile, domain);
    } catch {
      d = undefined;
    }
    const same = d !== undefined && (receipt.profile === "eip712" ? d.chainId === dom.chainId && d.verifyingContract === dom.verifyingContract : d.network === dom.network && d.wallet === dom.wallet);
    if (!same) throw new Aep2Error("domain_mismatch", "the receipt is for another deployment");
    checks.push("domain");
  }
  if (mandateId !== undefined) {
    // The form belongs to the mandate's profile (check 3), then the digest: a hash compared as
    // 32 bytes, the MVP digest (solana-mvp) as text.
    const formOk =
      profile === undefined ||
      (kind === "native" && receipt.profile === profile) ||
      (kind === "mvp-evm" && profile === "eip712") ||
      (kind === "mvp-solana" && profile === "solana-mvp");
    const same = kind === "mvp-solana" ? md === mandateId : md === mandateId.toLowerCase();
    if (!formOk || !same) throw new Aep2Error("receipt_digest_mismatch", "the receipt is for another mandate");
    checks.push("mandate-digest");
  }
  if (deadline !== undefined) {
    if (enqueueDeadline > deadline) throw new Aep2Error("receipt_deadline_after_mandate", `enqueueDeadline ${enqueueDeadline} after the mandate's deadline ${deadline}`);
    checks.push("deadline-rule");
  }
  if (mandateId !== undefined && laneId !== undefined) {
    // Check 5 (spec §18.7): the receipt of a mandate under a lane states that mandate's leaf.
    if (!lane) throw new Aep2Error("receipt_lane_mismatch", "a receipt for a mandate under a lane must state the lane");
    if (lane.id !== laneId.toLowerCase()) throw new Aep2Error("receipt_lane_mismatch", `the receipt states lane ${lane.id}, the mandate's leaf lane is ${laneId}`);
    checks.push("lane");
  }
  const out = { receiptKind: kind, sp: signer, enqueueDeadline, checks };
  if (lane) out.lane = { id: lane.id, remaining: lane.remaining.toString() };
  return out;
}
