// Mandates (spec §3), their signed bytes per profile (§4) and envelopes (§5), byte for byte as
// the reference implementation (crates/aep2) writes them.

import { secp256k1 } from "@noble/curves/secp256k1.js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { Aep2Error } from "./errors.js";
import { concat, fromBase58, fromBase64, fromHex, parseAddress, toBase58, toBase64, toChecksum, toHex, utf8 } from "./codec.js";
import { ENVELOPE_LIMITS, jcs, parseStrict } from "./json.js";
import { recoverEvm } from "./evm.js";
import { checkChainPolicy, checkChainSignatures, laneMandateSigningBytes, parseChain } from "./lane.js";

/** The registered signature profiles. */
export const PROFILES = Object.freeze(["eip712", "ed25519", "solana-mvp"]);

const MAX_U256 = (1n << 256n) - 1n;
const MAX_U64 = (1n << 64n) - 1n;
const MAX_SAFE = 2 ** 53 - 1;
const NETWORK_RE = /^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$/;

const TYPEHASH = keccak_256(
  utf8("Mandate(address owner,address token,address payee,uint256 amount,uint256 nonce,uint256 deadline,bytes32 ref)"),
);
const DOMAIN_TYPEHASH = keccak_256(
  utf8("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
);
const ED25519_PREFIX = concat(utf8("AEP2/ed25519/mandate/v1"), new Uint8Array([0]));

function word(n) {
  return fromHex(n.toString(16).padStart(64, "0"));
}

function addrWord(a20) {
  return concat(new Uint8Array(12), a20);
}

function signerMember(profile) {
  return profile === "eip712" ? "owner" : "payer";
}

function checkProfile(profile) {
  if (!PROFILES.includes(profile)) throw new Aep2Error("unsupported_profile", `unknown profile ${profile}`);
}

export function parseUint(v, max) {
  if (typeof v !== "string") throw new Aep2Error("field_type", "a decimal must be a JSON string");
  if (!/^(0|[1-9][0-9]*)$/.test(v)) throw new Aep2Error("uint_invalid", `not a canonical decimal: ${v}`);
  if (v.length > 78 || BigInt(v) > max) throw new Aep2Error("uint_out_of_range", `out of range: ${v}`);
  return BigInt(v);
}

export function parseInt53(v, what) {
  if (typeof v !== "number") throw new Aep2Error("field_type", `${what} must be a JSON number`);
  if (!Number.isInteger(v) || v < 0 || Object.is(v, -0)) throw new Aep2Error("uint_invalid", `${what} must be a plain non-negative integer`);
  if (v > MAX_SAFE) throw new Aep2Error("uint_out_of_range", `${what} above 2^53 - 1`);
  return v;
}

export function checkKey(profile, v) {
  if (typeof v !== "string") throw new Aep2Error("field_type", "an account must be a string");
  if (profile === "eip712") return parseAddress(v);
  return fromBase58(v, "address_invalid", 32);
}

/**
 * Validates a mandate of `profile` under spec §3 (member set, JSON types, formats, ranges) and
 * returns its decoded form. Throws Aep2Error with the code of the first fault in spec order.
 */
export function parseMandate(profile, m) {
  checkProfile(profile);
  if (m === null || typeof m !== "object" || Array.isArray(m)) throw new Aep2Error("field_type", "the mandate is not an object");
  const s = signerMember(profile);
  const names = [s, "token", "payee", "amount", "nonce", "deadline", "ref"];
  for (const k of Object.keys(m)) if (!names.includes(k)) throw new Aep2Error("unknown_field", `mandate member ${k}`);
  for (const k of names) if (!(k in m)) throw new Aep2Error("missing_field", `mandate member ${k}`);
  const max = profile === "eip712" ? MAX_U256 : MAX_U64;
  const signer = checkKey(profile, m[s]);
  const token = checkKey(profile, m.token);
  const payee = checkKey(profile, m.payee);
  const amount = parseUint(m.amount, max);
  if (amount === 0n) throw new Aep2Error("amount_zero", "amount is zero");
  const nonce = parseUint(m.nonce, max);
  const deadline = parseInt53(m.deadline, "deadline");
  if (typeof m.ref !== "string") throw new Aep2Error("field_type", "ref must be a string");
  if (profile === "solana-mvp") {
    const n = utf8(m.ref).length;
    if (n < 1 || n > 32) throw new Aep2Error("ref_invalid", "a solana-mvp ref is 1 to 32 bytes of UTF-8");
  } else if (!/^0x[0-9a-f]{64}$/.test(m.ref)) {
    throw new Aep2Error("ref_invalid", "ref must be 0x + 64 lowercase hex digits");
  }
  return { profile, signer, token, payee, amount, nonce, deadline, ref: m.ref };
}

/** Validates a native domain object of `profile` (domain_invalid on any fault). */
export function parseDomain(profile, d) {
  const bad = (why) => {
    throw new Aep2Error("domain_invalid", why);
  };
  if (d === null || typeof d !== "object" || Array.isArray(d)) bad("the domain is not an object");
  const names = profile === "eip712" ? ["chainId", "verifyingContract"] : ["network", "wallet"];
  for (const k of Object.keys(d)) if (!names.includes(k)) bad(`domain member ${k}`);
  for (const k of names) if (!(k in d)) bad(`domain member ${k} missing`);
  if (profile === "eip712") {
    const c = d.chainId;
    if (typeof c !== "number" || !Number.isInteger(c) || c < 1 || c > MAX_SAFE) bad("chainId");
    let vc;
    try {
      vc = parseAddress(d.verifyingContract);
    } catch {
      bad("verifyingContract");
    }
    return { chainId: c, verifyingContract: toChecksum(vc) };
  }
  if (typeof d.network !== "string" || !NETWORK_RE.test(d.network)) bad("network");
  try {
    fromBase58(d.wallet, "domain_invalid", 32);
  } catch {
    bad("wallet");
  }
  return { network: d.network, wallet: d.wallet };
}

/** The mandate as the reference writes it: definition order, EVM addresses in EIP-55 form. */
export function canonicalMandate(p) {
  const key = (b) => (p.profile === "eip712" ? toChecksum(b) : toBase58(b));
  return {
    [signerMember(p.profile)]: key(p.signer),
    token: key(p.token),
    payee: key(p.payee),
    amount: p.amount.toString(),
    nonce: p.nonce.toString(),
    deadline: p.deadline,
    ref: p.ref,
  };
}

/** EIP-712 domain separator of `{chainId, verifyingContract}` (spec §4.1.1). */
export function domainSeparator(domain) {
  return keccak_256(
    concat(
      DOMAIN_TYPEHASH,
      keccak_256(utf8("AEP2DebitWallet")),
      keccak_256(utf8("1")),
      word(BigInt(domain.chainId)),
      addrWord(parseAddress(domain.verifyingContract)),
    ),
  );
}

/**
 * The signed bytes of a parsed mandate (spec §4): 66 bytes for eip712, the prefixed JCS text for
 * ed25519, the MVP's compact JSON for solana-mvp; plus the mandate id.
 */
export function signingBytes(p, domain) {
  if (p.profile === "eip712") {
    const structHash = keccak_256(
      concat(
        TYPEHASH,
        addrWord(p.signer),
        addrWord(p.token),
        addrWord(p.payee),
        word(p.amount),
        word(p.nonce),
        word(BigInt(p.deadline)),
        fromHex(p.ref),
      ),
    );
    const bytes = concat(new Uint8Array([0x19, 0x01]), domainSeparator(domain), structHash);
    return { bytes, mandateId: `0x${toHex(keccak_256(bytes))}`, structHash: `0x${toHex(structHash)}` };
  }
  const m = canonicalMandate(p);
  let bytes;
  if (p.profile === "ed25519") {
    bytes = concat(ED25519_PREFIX, utf8(jcs({ domain: { network: domain.network, wallet: domain.wallet }, mandate: m })));
  } else {
    // The MVP's JSON.stringify of the mandate in its fixed member order (spec §4.3).
    bytes = utf8(JSON.stringify(m));
  }
  return { bytes, mandateId: `0x${toHex(sha256(bytes))}` };
}

/** The address (EIP-55) or base58 public key of a payer key for `profile`. */
export function signerOf(profile, key) {
  const k = typeof key === "string" ? fromHex(key, "field_type") : key;
  if (k.length !== 32) throw new Aep2Error("field_type", "a key is 32 bytes");
  if (profile === "eip712") {
    const pub = secp256k1.getPublicKey(k, false);
    return toChecksum(keccak_256(pub.slice(1)).slice(12));
  }
  return toBase58(ed25519.getPublicKey(k));
}

/**
 * Signs `mandate` (the seven members) under `profile` and `domain` with `key` (0x hex or 32
 * bytes: secp256k1 secret for eip712, Ed25519 seed otherwise) and returns
 * `{signature, envelope, header, mandateId}`. `form` is `mvp` or `native` (spec §5).
 * Refuses (spec §4 "Signing") with signature_invalid when the key is not the mandate's signer's,
 * then with unsupported_profile for a solana-mvp mandate in the native form.
 */
export function signMandate({ profile, domain, mandate, key, form = "mvp" }) {
  checkProfile(profile);
  if (form !== "mvp" && form !== "native") throw new Aep2Error("field_type", `unknown envelope form ${form}`);
  const k = typeof key === "string" ? fromHex(key, "field_type") : key;
  const p = parseMandate(profile, mandate);
  const expected = canonicalMandate(p)[signerMember(profile)];
  if (signerOf(profile, k) !== expected) {
    throw new Aep2Error("signature_invalid", "the key is not the mandate's signer's");
  }
  if (profile === "solana-mvp" && form === "native") {
    throw new Aep2Error("unsupported_profile", "solana-mvp travels only in the MVP envelope");
  }
  const dom = profile === "solana-mvp" ? undefined : parseDomain(profile, domain);
  const { bytes, mandateId } = signingBytes(p, dom);
  const signature = signBytes(profile, bytes, k);
  const m = canonicalMandate(p);
  const envelope =
    form === "native" ? { aep2: 1, profile, domain: dom, mandate: m, signature } : { mandate: m, payerSig: signature };
  return { signature, envelope, header: encodeEnvelope(envelope), mandateId };
}

/**
 * The signature text of signed bytes under `profile`: eip712 signs keccak256 of the 66 EIP-712
 * bytes (RFC 6979, low s, v ∈ {27, 28}: what ethers v6 and the reference produce), the Ed25519
 * profiles sign the bytes themselves (base58).
 */
export function signBytes(profile, bytes, key) {
  const k = typeof key === "string" ? fromHex(key, "field_type") : key;
  if (profile === "eip712") {
    const rec = secp256k1.sign(keccak_256(bytes), k, { prehash: false, format: "recovered", lowS: true });
    return `0x${toHex(rec.slice(1))}${(27 + rec[0]).toString(16)}`;
  }
  return toBase58(ed25519.sign(bytes, k));
}

/** The X-Payment-Mandate header text of an envelope object: base64 of its compact JSON. */
export function encodeEnvelope(envelope) {
  return toBase64(utf8(JSON.stringify(envelope)));
}

/** The mandate id of an envelope object the payer built (`profile` and `domain` as signed). */
export function envelopeMandateId(profile, domain, envelope) {
  const p = parseMandate(profile, envelope.mandate);
  return signingBytes(p, profile === "solana-mvp" ? undefined : parseDomain(profile, envelope.domain ?? domain)).mandateId;
}

/**
 * Decodes a header (spec §5.3: at most 8192 bytes, canonical base64, UTF-8, strict JSON within
 * the envelope limits) to the envelope value.
 */
export function decodeHeader(header) {
  if (typeof header !== "string") throw new Aep2Error("field_type", "the header is not a string");
  if (utf8(header).length > 8192) throw new Aep2Error("header_too_large", "header above 8192 bytes");
  const bytes = fromBase64(header);
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new Aep2Error("utf8_invalid", "the header is not UTF-8");
  }
  return parseStrict(text, ENVELOPE_LIMITS);
}

function ed25519Verify(sigText, msg, key32) {
  if (typeof sigText !== "string") throw new Aep2Error("field_type", "signature is not a string");
  const sig = fromBase58(sigText, "signature_encoding");
  if (sig.length !== 64) throw new Aep2Error("signature_length", "signature is not 64 bytes");
  let ok = false;
  try {
    // RFC 8032 strict decoding (zip215: false): canonical encodings, S < L.
    ok = ed25519.verify(sig, msg, key32, { zip215: false });
  } catch {
    ok = false;
  }
  if (!ok) throw new Aep2Error("signature_invalid", "the signature does not verify for the signer");
}

/**
 * Core verification of an envelope (spec §7) under the expected `profile` and `domain`: schema,
 * signature, then a native envelope's domain; with `now` (unix seconds) also the deadline
 * (`expired`). An envelope with `lanes` (spec §18.5) is verified as §18.6 says: the chain's links
 * (parents, grantors' signatures), the mandate's signature by the leaf's agent over the
 * lane-mandate input, then the lane rules (attenuation, owner, token, validity with and without
 * `now`, caps, payees). Returns the parsed mandate, its mandate id, its digest (the MVP digest for
 * solana-mvp), the envelope form, the signer, and under lanes `lanes: {ids, leaf, purposes}`.
 * It does not implement the ed25519 torsion checks of §4.2.2 rule 2 and 4 beyond RFC 8032's strict
 * decoding.
 */
export function verifyEnvelope(env, profile, domain, { now } = {}) {
  checkProfile(profile);
  if (env === null || typeof env !== "object" || Array.isArray(env)) throw new Aep2Error("field_type", "the envelope is not an object");
  let form;
  let mandate;
  let sig;
  let dom = profile === "solana-mvp" ? undefined : domain;
  const closedWithLanes = (names) => {
    for (const k of Object.keys(env)) if (!names.includes(k) && k !== "lanes") throw new Aep2Error("unknown_field", `envelope member ${k}`);
    for (const k of names) if (!(k in env)) throw new Aep2Error("missing_field", `envelope member ${k}`);
  };
  if ("aep2" in env) {
    form = "native";
    closedWithLanes(["aep2", "profile", "domain", "mandate", "signature"]);
    parseInt53(env.aep2, "aep2");
    if (env.aep2 !== 1) throw new Aep2Error("unsupported_version", "aep2 must be 1");
    if (typeof env.profile !== "string") throw new Aep2Error("field_type", "profile is not a string");
    if (env.profile !== "eip712" && env.profile !== "ed25519") throw new Aep2Error("unsupported_profile", `profile ${env.profile}`);
    if (env.profile !== profile) throw new Aep2Error("profile_mismatch", `profile ${env.profile}, expected ${profile}`);
    dom = parseDomain(profile, env.domain);
    mandate = env.mandate;
    sig = env.signature;
  } else {
    form = "mvp";
    closedWithLanes(["mandate", "payerSig"]);
    mandate = env.mandate;
    sig = env.payerSig;
  }
  const p = parseMandate(profile, mandate);
  if (typeof sig !== "string") throw new Aep2Error("field_type", "the signature is not a string");
  let chain;
  if ("lanes" in env) {
    if (profile === "solana-mvp") throw new Aep2Error("unsupported_profile", "solana-mvp mandates have no lanes");
    chain = parseChain(profile, env.lanes);
  }
  const signDom = dom === undefined ? undefined : parseDomain(profile, dom);
  let sb;
  let ids;
  if (chain) {
    ids = checkChainSignatures(profile, signDom, chain);
    sb = laneMandateSigningBytes(profile, signDom, p, ids[ids.length - 1]);
  } else {
    sb = signingBytes(p, signDom);
  }
  const signer = chain ? chain[chain.length - 1].lane.agent : p.signer;
  if (profile === "eip712") {
    if (recoverEvm(sig, fromHex(sb.mandateId)) !== toChecksum(signer)) {
      throw new Aep2Error("signature_invalid", `the signature does not verify for the ${chain ? "leaf lane's agent" : "owner"}`);
    }
  } else {
    ed25519Verify(sig, sb.bytes, signer);
  }
  if (form === "native" && domain !== undefined && !sameDomainValue(profile, parseDomain(profile, dom), domain)) {
    throw new Aep2Error("domain_mismatch", "the envelope is signed for another deployment");
  }
  if (now !== undefined && now > p.deadline) throw new Aep2Error("expired", `deadline ${p.deadline} is before now (${now})`);
  if (chain) checkChainPolicy(chain, p, now);
  const digest = profile === "solana-mvp" ? toBase58(sb.bytes) : sb.mandateId;
  const result = { parsed: p, form, mandateId: sb.mandateId, digest, domain: dom, signer: profile === "eip712" ? toChecksum(signer) : toBase58(signer) };
  if (chain) result.lanes = { ids, leaf: ids[ids.length - 1], purposes: chain.map((l) => l.lane.purpose) };
  return result;
}

function sameDomainValue(profile, a, b) {
  let e;
  try {
    e = parseDomain(profile, b);
  } catch {
    return false;
  }
  return profile === "eip712" ? a.chainId === e.chainId && a.verifyingContract === e.verifyingContract : a.network === e.network && a.wallet === e.wallet;
}

export { ed25519Verify };
