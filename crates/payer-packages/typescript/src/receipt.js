// Verifying the SP's receipt for a mandate this payer signed (spec §6): the payer's evidence
// that the SP promised to settle by `enqueueDeadline`. Forms `mvp-evm` (§6.1) and native
// (§6.3, eip712 and ed25519); the payer never signs solana-mvp payments, so `mvp-solana`
// receipts are refused as unsupported.

import { secp256k1 } from "@noble/curves/secp256k1.js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { Aep2Error } from "./errors.js";
import { concat, fromBase58, fromHex, parseAddress, toChecksum, toHex, utf8 } from "./codec.js";
import { jcs } from "./json.js";
import { parseDomain } from "./mandate.js";

const N = secp256k1.Point.CURVE().n;
const RECEIPT_TYPEHASH = keccak_256(utf8("Receipt(address sp,bytes32 mandateDigest,uint256 enqueueDeadline)"));
const DOMAIN_TYPEHASH = keccak_256(utf8("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"));
const ED_PREFIX = concat(utf8("AEP2/ed25519/receipt/v1"), new Uint8Array([0]));
const PERSONAL = utf8("\x19Ethereum Signed Message:\n32");

const word = (n) => fromHex(BigInt(n).toString(16).padStart(64, "0"));
const addrWord = (a) => concat(new Uint8Array(12), a);

function closed(o, names) {
  if (o === null || typeof o !== "object" || Array.isArray(o)) throw new Aep2Error("field_type", "the receipt is not an object");
  for (const k of Object.keys(o)) if (!names.includes(k)) throw new Aep2Error("unknown_field", `receipt member ${k}`);
  for (const k of names) if (!(k in o)) throw new Aep2Error("missing_field", `receipt member ${k}`);
}

function deadlineOf(v) {
  if (typeof v !== "number") throw new Aep2Error("field_type", "enqueueDeadline is not a number");
  if (!Number.isSafeInteger(v) || v < 0) throw new Aep2Error("uint_invalid", "enqueueDeadline");
  return v;
}

function digest32(v) {
  if (typeof v !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(v)) throw new Aep2Error("field_type", "mandateDigest is not 0x + 64 hex");
  return `0x${v.slice(2).toLowerCase()}`;
}

/** The signer address of a 65-byte r ‖ s ‖ v signature over `hash`, under spec §4.1.2. */
export function recoverEvm(sigText, hash) {
  if (typeof sigText !== "string") throw new Aep2Error("field_type", "signature is not a string");
  if (!/^0x([0-9a-fA-F]{2})*$/.test(sigText)) throw new Aep2Error("signature_encoding", "signature is not 0x hex");
  const b = fromHex(sigText);
  if (b.length !== 65) throw new Aep2Error("signature_length", "signature is not 65 bytes");
  const v = b[64];
  if (v !== 27 && v !== 28) throw new Aep2Error("signature_v_invalid", `v = ${v}`);
  const r = BigInt(`0x${toHex(b.slice(0, 32))}`);
  const s = BigInt(`0x${toHex(b.slice(32, 64))}`);
  if (s > N / 2n) throw new Aep2Error("signature_high_s", "s above n/2");
  if (r === 0n || r >= N || s === 0n) throw new Aep2Error("signature_scalar_out_of_range", "r or s out of range");
  let pub;
  try {
    pub = secp256k1.recoverPublicKey(concat(new Uint8Array([v - 27]), b.slice(0, 64)), hash, { prehash: false });
  } catch {
    throw new Aep2Error("signature_unrecoverable", "no key recovers from this signature");
  }
  const full = secp256k1.Point.fromBytes(pub).toBytes(false);
  return toChecksum(keccak_256(full.slice(1)).slice(12));
}

/**
 * Verifies `receipt` (the object from PAYMENT-RESPONSE `extra.receipt`, A2A `aep2.dev/receipt` or
 * MCP) for a mandate this payer signed: `{profile, domain, mandateId, deadline}`, and `sp` (the SP
 * it trusts; without it the receipt proves only that someone signed it). Returns
 * `{receiptKind, sp, enqueueDeadline, checks}` (`checks` lists what was checked); throws
 * Aep2Error with the spec's code otherwise.
 */
export function verifyReceipt(receipt, { profile, domain, mandateId, deadline, sp } = {}) {
  const checks = ["signature"];
  let kind;
  let signer;
  let dom;
  let md;
  let enqueueDeadline;
  if (receipt !== null && typeof receipt === "object" && "aep2" in receipt) {
    kind = "native";
    closed(receipt, ["aep2", "kind", "profile", "domain", "sp", "mandateDigest", "enqueueDeadline", "signature"]);
    if (receipt.aep2 !== 1) throw new Aep2Error("unsupported_version", "receipt aep2 must be 1");
    if (receipt.kind !== "receipt") throw new Aep2Error("field_type", "receipt kind must be receipt");
    if (receipt.profile !== "eip712" && receipt.profile !== "ed25519") throw new Aep2Error("unsupported_profile", `receipt profile ${receipt.profile}`);
    dom = parseDomain(receipt.profile, receipt.domain);
    const rsp = receipt.profile === "eip712" ? parseAddress(receipt.sp) : fromBase58(receipt.sp, "address_invalid", 32);
    md = digest32(receipt.mandateDigest);
    enqueueDeadline = deadlineOf(receipt.enqueueDeadline);
    if (receipt.profile === "eip712") {
      const sep = keccak_256(
        concat(DOMAIN_TYPEHASH, keccak_256(utf8("AEP2SettlementProcessor")), keccak_256(utf8("1")), word(dom.chainId), addrWord(parseAddress(dom.verifyingContract))),
      );
      const struct = keccak_256(concat(RECEIPT_TYPEHASH, addrWord(rsp), fromHex(md), word(enqueueDeadline)));
      signer = recoverEvm(receipt.signature, keccak_256(concat(new Uint8Array([0x19, 0x01]), sep, struct)));
      if (signer !== toChecksum(rsp)) throw new Aep2Error("signature_invalid", "the receipt is not signed by its sp");
      signer = toChecksum(rsp);
    } else {
      if (typeof receipt.signature !== "string") throw new Aep2Error("field_type", "signature is not a string");
      const sig = fromBase58(receipt.signature, "signature_encoding");
      if (sig.length !== 64) throw new Aep2Error("signature_length", "signature is not 64 bytes");
      const msg = concat(ED_PREFIX, utf8(jcs({ domain: { network: dom.network, wallet: dom.wallet }, receipt: { sp: receipt.sp, mandateDigest: md, enqueueDeadline } })));
      // RFC 8032 strict decoding (zip215: false): canonical encodings only.
      if (!ed25519.verify(sig, msg, rsp, { zip215: false })) throw new Aep2Error("signature_invalid", "the receipt is not signed by its sp");
      signer = receipt.sp;
    }
  } else {
    closed(receipt, ["sp", "mandateDigest", "enqueueDeadline", "spEnqueueSig"]);
    if (typeof receipt.sp !== "string") throw new Aep2Error("field_type", "sp is not a string");
    if (!receipt.sp.startsWith("0x")) throw new Aep2Error("unsupported_profile", "mvp-solana receipts are for solana-mvp mandates, which this payer does not sign");
    kind = "mvp-evm";
    const rsp = parseAddress(receipt.sp);
    md = digest32(receipt.mandateDigest);
    enqueueDeadline = deadlineOf(receipt.enqueueDeadline);
    const commitment = keccak_256(concat(fromHex(md), word(enqueueDeadline)));
    signer = recoverEvm(receipt.spEnqueueSig, keccak_256(concat(PERSONAL, commitment)));
    if (signer !== toChecksum(rsp)) throw new Aep2Error("signature_invalid", "the receipt is not signed by its sp");
  }
  if (sp !== undefined) {
    const same = signer.startsWith("0x") ? sp.startsWith("0x") && toHex(parseAddress(sp)) === toHex(parseAddress(signer)) : sp === signer;
    if (!same) throw new Aep2Error("receipt_sp_mismatch", `receipt signed by ${signer}, not ${sp}`);
    checks.push("sp");
  }
  if (kind === "native" && domain !== undefined) {
    const d = parseDomain(receipt.profile, domain);
    const same = receipt.profile === "eip712" ? d.chainId === dom.chainId && d.verifyingContract === dom.verifyingContract : d.network === dom.network && d.wallet === dom.wallet;
    if (!same) throw new Aep2Error("domain_mismatch", "the receipt is for another deployment");
    checks.push("domain");
  }
  if (mandateId !== undefined) {
    const formOk = kind === "native" ? profile === undefined || receipt.profile === profile : profile === undefined || profile === "eip712";
    if (!formOk || md !== mandateId.toLowerCase()) throw new Aep2Error("receipt_digest_mismatch", "the receipt is for another mandate");
    checks.push("mandate-digest");
  }
  if (deadline !== undefined) {
    if (enqueueDeadline > deadline) throw new Aep2Error("receipt_deadline_after_mandate", `enqueueDeadline ${enqueueDeadline} after the mandate's deadline ${deadline}`);
    checks.push("deadline-rule");
  }
  return { receiptKind: kind, sp: signer, enqueueDeadline, checks };
}
