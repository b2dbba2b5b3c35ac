#!/usr/bin/env node
// AEP2 conformance adapter that verifies and signs the way the FluxA AEP2 MVP does
// (APE2_MVP: services/payee.ts, services/sp.ts, services/client.ts and their Solana twins).
//
// The point is not to pass: it is to show, case by case, which inputs the MVP's way of
// verifying judges differently from AEP2 and why. So every step below reproduces the MVP's
// behaviour with the MVP's libraries, leniencies included, and nothing is tightened:
//
//   payee:   JSON.parse(Buffer.from(header, "base64").toString())   (lenient base64, no limits)
//            -> the decoded object must have truthy `mandate` and `payerSig`      INVALID_PAYMENT
//   SP:      `mandate.deadline < now`                                            EXPIRED_MANDATE
//            EVM:    ethers verifyTypedData(domain, types, mandate, payerSig)
//                    compared with `owner`, case-insensitively                  INVALID_SIGNATURE
//            Solana: nacl.sign.detached.verify(utf8(JSON.stringify(mandate)),
//                    bs58.decode(payerSig), bs58.decode(mandate.payer))         INVALID_SIGNATURE
//   client:  Wallet.signTypedData / nacl.sign.detached over JSON.stringify(mandate), header
//            base64(JSON.stringify({mandate, payerSig})).
//   receipt: nobody in the MVP verifies receipts; this adapter checks them the way the MVP SP
//            signs them (EVM: verifyMessage over solidityPackedKeccak256(bytes32 digest,
//            uint256 enqueueDeadline); Solana: ed25519 over "<digest>:<enqueueDeadline>"),
//            plus the signer, the expected SP and the digest of the given mandate.
//
// The MVP's native error names are reported as `code`; the adapter declares
// `reasonCodes: false`, so cases are judged on the verdict only (the MVP's five error names
// cannot express AEP2's reason codes). Protocol: spec/conformance.md.

import { createRequire } from "node:module";
import {
  TypedDataEncoder,
  Wallet,
  getBytes,
  solidityPackedKeccak256,
  verifyMessage,
  verifyTypedData,
  version as ethersVersion,
} from "ethers";
import nacl from "tweetnacl";
import bs58 from "bs58";

const require = createRequire(import.meta.url);
const pkg = require("./package.json");
const naclVersion = require("tweetnacl/package.json").version;
const bs58Version = require("bs58/package.json").version;

// The protocol's line limit (conformance.md): a longer line cannot be resynchronised, so the
// adapter gives up rather than buffer without bound.
const MAX_LINE_BYTES = 1 << 20;

// The MVP's EIP-712 type and fixed domain strings (contracts/AEP2DebitWallet.sol).
const MANDATE_TYPES = {
  Mandate: [
    { name: "owner", type: "address" },
    { name: "token", type: "address" },
    { name: "payee", type: "address" },
    { name: "amount", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
    { name: "ref", type: "bytes32" },
  ],
};

const KINDS = [
  "verify_mandate",
  "verify_receipt",
  "sign_mandate",
  "ed25519_raw",
  "verify_policy",
  "verify_order",
  "extract_x402",
  "http_request_hash",
  "extract_a2a",
  "a2a_request_hash",
  "extract_mcp",
  "mcp_request_hash",
];

// Kinds the MVP has no notion of, with the reason reported for each case.
const UNSUPPORTED = {
  ed25519_raw:
    "the MVP never verifies a bare Ed25519 triple; its Solana checks are covered by verify_mandate",
  verify_policy:
    "the MVP has no payee policy object (its payees compare only the payee, and on Solana the token and a minimum amount)",
  verify_order: "the MVP has no Order Mode payment request",
  http_request_hash: "the MVP binds no request: it has no request descriptor or request hash",
  extract_a2a: "the MVP has no A2A binding",
  a2a_request_hash: "the MVP has no A2A binding",
  extract_mcp: "the MVP has no MCP binding",
  mcp_request_hash: "the MVP has no MCP binding",
};

const NATIVE_ENVELOPE = "the MVP has no native envelope (a top-level `aep2` member): it reads only {mandate, payerSig}";

// The MVP's rejections, as its services name them.
class Rejected extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

class Skip extends Error {}

const invalid = (code) => ({ result: { verdict: "invalid", code } });

function evmDomain(context) {
  const d = context.domain ?? {};
  return { name: "AEP2DebitWallet", version: "1", chainId: d.chainId, verifyingContract: d.verifyingContract };
}

// services/payee.ts: Buffer's base64 decoder skips characters outside the alphabet and
// ignores padding; toString() replaces invalid UTF-8; JSON.parse keeps the last duplicate key.
function decodeHeader(header) {
  let decoded;
  try {
    decoded = JSON.parse(Buffer.from(String(header), "base64").toString());
  } catch {
    throw new Rejected("INVALID_PAYMENT", "header is not base64 JSON");
  }
  return decoded;
}

function mvpEnvelope(header) {
  const decoded = decodeHeader(header);
  if (decoded !== null && typeof decoded === "object" && Object.hasOwn(decoded, "aep2")) {
    throw new Skip(NATIVE_ENVELOPE);
  }
  if (!decoded?.mandate || !decoded?.payerSig) {
    throw new Rejected("INVALID_PAYMENT", "mandate or payerSig missing");
  }
  return decoded;
}

// services/sp.ts (EVM) and services/sp-solana.ts: the checks the SP makes before it signs a
// receipt, in its order. Returns the outputs of an accepted mandate.
function spVerify(profile, context, { mandate, payerSig }) {
  if (!mandate || !payerSig) throw new Rejected("INVALID_REQUEST", "mandate or payerSig missing");
  // The SP reads the wall clock; a vector pins `now`, and without one the deadline is not judged.
  if (context.now !== undefined && mandate.deadline < context.now) {
    throw new Rejected("EXPIRED_MANDATE", "mandate.deadline < now");
  }
  if (profile === "eip712") {
    const domain = evmDomain(context);
    let digest;
    let recovered;
    try {
      digest = TypedDataEncoder.hash(domain, MANDATE_TYPES, mandate);
      recovered = verifyTypedData(domain, MANDATE_TYPES, mandate, payerSig);
    } catch (e) {
      throw new Rejected("INVALID_SIGNATURE", e.shortMessage ?? e.message);
    }
    if (recovered.toLowerCase() !== String(mandate.owner).toLowerCase()) {
      throw new Rejected("INVALID_SIGNATURE", `recovered ${recovered}`);
    }
    return { digest };
  }
  let ok;
  try {
    const message = new TextEncoder().encode(JSON.stringify(mandate));
    ok = nacl.sign.detached.verify(message, bs58.decode(payerSig), bs58.decode(mandate.payer));
  } catch (e) {
    throw new Rejected("INVALID_SIGNATURE", e.message);
  }
  if (!ok) throw new Rejected("INVALID_SIGNATURE", "ed25519 verification failed");
  return { digest: solanaDigest(mandate) };
}

// The Solana SP's `mandateDigest`: base58 of the JSON text of the seven fields in a fixed order.
function solanaDigest(m) {
  const { payer, token, payee, amount, nonce, deadline, ref } = m;
  return bs58.encode(new TextEncoder().encode(JSON.stringify({ payer, token, payee, amount, nonce, deadline, ref })));
}

function needProfile(context) {
  const p = context.profile;
  if (p !== "eip712" && p !== "solana-mvp") throw new Skip(`the MVP has no ${p} profile`);
  return p;
}

function verifyMandate(context, input) {
  const profile = needProfile(context);
  const outputs = spVerify(profile, context, mvpEnvelope(input.header));
  return { result: { verdict: "valid", outputs } };
}

// services/payee.ts reads req.headers["x-payment-mandate"]: Node lowercases header names and
// joins repeated custom headers with ", ". It reads no other payment header.
function extractX402(context, input) {
  const profile = needProfile(context);
  const headers = input.headers ?? {};
  const mvp = Object.entries(headers)
    .filter(([k]) => k.toLowerCase() === "x-payment-mandate")
    .map(([, v]) => v);
  if (mvp.length === 0) {
    const x402 = Object.keys(headers).some((k) => ["payment-signature", "x-payment"].includes(k.toLowerCase()));
    if (x402) throw new Skip("the MVP reads only X-Payment-Mandate; it has no x402 PAYMENT-SIGNATURE or X-PAYMENT carrier");
    return invalid("PAYMENT_REQUIRED");
  }
  const outputs = spVerify(profile, context, mvpEnvelope(mvp.join(", ")));
  return { result: { verdict: "valid", outputs } };
}

// services/client.ts (and the Solana client): the key signs whatever mandate it is handed; the
// header is base64 of JSON.stringify({mandate, payerSig}).
async function signMandate(context, input) {
  const profile = needProfile(context);
  if (context.form === "native") throw new Skip(NATIVE_ENVELOPE);
  const { mandate, key } = input;
  let payerSig;
  if (profile === "eip712") {
    payerSig = await new Wallet(key).signTypedData(evmDomain(context), MANDATE_TYPES, mandate);
  } else {
    const pair = nacl.sign.keyPair.fromSeed(getBytes(key));
    payerSig = bs58.encode(nacl.sign.detached(new TextEncoder().encode(JSON.stringify(mandate)), pair.secretKey));
  }
  const header = Buffer.from(JSON.stringify({ mandate, payerSig })).toString("base64");
  return { result: { verdict: "valid", outputs: { signature: payerSig, header } } };
}

function verifyReceipt(context, input) {
  const profile = needProfile(context);
  const r = input.receipt;
  if (r !== null && typeof r === "object" && Object.hasOwn(r, "aep2")) {
    throw new Skip("the MVP has no native receipt: its SP returns {sp, mandateDigest, enqueueDeadline, spEnqueueSig}");
  }
  if (!r?.sp || !r?.mandateDigest || r?.enqueueDeadline === undefined || !r?.spEnqueueSig) {
    return invalid("INVALID_SP_RESPONSE");
  }
  if (profile === "eip712") {
    let signer;
    try {
      const commitment = solidityPackedKeccak256(["bytes32", "uint256"], [r.mandateDigest, r.enqueueDeadline]);
      signer = verifyMessage(getBytes(commitment), r.spEnqueueSig);
    } catch {
      return invalid("INVALID_SIGNATURE");
    }
    if (signer.toLowerCase() !== String(r.sp).toLowerCase()) return invalid("INVALID_SIGNATURE");
    if (context.sp !== undefined && String(r.sp).toLowerCase() !== context.sp.toLowerCase()) {
      return invalid("WRONG_SP");
    }
  } else {
    let ok;
    try {
      const message = new TextEncoder().encode(`${r.mandateDigest}:${r.enqueueDeadline}`);
      ok = nacl.sign.detached.verify(message, bs58.decode(r.spEnqueueSig), bs58.decode(r.sp));
    } catch {
      return invalid("INVALID_SIGNATURE");
    }
    if (!ok) return invalid("INVALID_SIGNATURE");
    if (context.sp !== undefined && r.sp !== context.sp) return invalid("WRONG_SP");
  }
  if (input.mandateHeader !== undefined) {
    const { mandate } = mvpEnvelope(input.mandateHeader);
    let digest;
    try {
      digest = profile === "eip712" ? TypedDataEncoder.hash(evmDomain(context), MANDATE_TYPES, mandate) : solanaDigest(mandate);
    } catch {
      return invalid("INVALID_MANDATE");
    }
    const same = profile === "eip712" ? digest === String(r.mandateDigest).toLowerCase() : digest === r.mandateDigest;
    if (!same) return invalid("DIGEST_MISMATCH");
  }
  return { result: { verdict: "valid" } };
}

async function answer(kind, context, input) {
  if (UNSUPPORTED[kind]) throw new Skip(UNSUPPORTED[kind]);
  try {
    switch (kind) {
      case "verify_mandate":
        return verifyMandate(context, input);
      case "extract_x402":
        return extractX402(context, input);
      case "sign_mandate":
        return await signMandate(context, input);
      case "verify_receipt":
        return verifyReceipt(context, input);
      default:
        throw new Skip(`unknown kind ${kind}`);
    }
  } catch (e) {
    if (e instanceof Rejected) return invalid(e.code);
    throw e;
  }
}

function start() {
  return {
    version: 1,
    implementation: {
      name: "fluxa-aep2-mvp-style",
      language: "javascript",
      version: `${pkg.version} (ethers ${ethersVersion}, tweetnacl ${naclVersion}, bs58 ${bs58Version}, node ${process.versions.node})`,
      source: "https://github.com/FluxA-Agent-Payment/APE2_MVP",
    },
    capabilities: { kinds: KINDS, profiles: ["eip712", "solana-mvp"], reasonCodes: false },
  };
}

async function handle(line) {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    process.stderr.write("not JSON; giving up\n");
    process.exit(1);
  }
  if (msg.cmd === "start") return start();
  if (msg.cmd === "stop") process.exit(0);
  if (msg.cmd !== "run") {
    process.stderr.write(`unknown command ${msg.cmd}\n`);
    process.exit(1);
  }
  const { kind, context = {}, input = {} } = msg.case ?? {};
  try {
    return { seq: msg.seq, ...(await answer(kind, context, input)) };
  } catch (e) {
    if (e instanceof Skip) return { seq: msg.seq, skipped: { reason: e.message } };
    return { seq: msg.seq, errored: { message: String(e?.stack ?? e).slice(0, 4000) } };
  }
}

// One request at a time, in order: read a whole line, answer it, then the next.
let pending = Buffer.alloc(0);
let chain = Promise.resolve();
process.stdin.on("data", (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  let nl;
  while ((nl = pending.indexOf(10)) >= 0) {
    const line = pending.subarray(0, nl).toString("utf8").replace(/\r$/, "");
    pending = pending.subarray(nl + 1);
    if (line.trim() === "") continue;
    chain = chain.then(async () => {
      const reply = await handle(line);
      process.stdout.write(`${JSON.stringify(reply)}\n`);
    });
  }
  if (pending.length > MAX_LINE_BYTES) {
    process.stderr.write(`line longer than ${MAX_LINE_BYTES} bytes; giving up\n`);
    process.exit(1);
  }
});
process.stdin.on("end", () => {
  chain.then(() => process.exit(0));
});
