// Spending lanes (spec §18): an owner's bounded, signed grant to an agent, narrowed link by link
// for sub-agents (at most 3 links), and mandates the leaf's agent signs under it. Byte for byte
// as the reference implementation (crates/aep2/src/lane.rs) writes and signs them.

import { randomBytes } from "node:crypto";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { Aep2Error } from "./errors.js";
import { concat, fromHex, toBase58, toChecksum, toHex, utf8 } from "./codec.js";
import { ENVELOPE_LIMITS, jcs, parseStrict } from "./json.js";
import { recoverEvm } from "./evm.js";
import {
  canonicalMandate, checkKey, domainSeparator, ed25519Verify, encodeEnvelope, parseDomain, parseInt53, parseMandate, parseUint,
  signBytes, signerOf,
} from "./mandate.js";

/** The most links a chain has (owner → agent → sub-agent → its sub-agent), spec §18.3. */
export const MAX_LANE_DEPTH = 3;
/** The most payees a lane lists. */
export const MAX_LANE_PAYEES = 8;
/** The longest `purpose`, in bytes of UTF-8. */
export const MAX_PURPOSE_BYTES = 64;
/** The members of a lane, in definition order (spec §18.1). */
export const LANE_FIELDS = Object.freeze([
  "owner", "agent", "token", "perPayment", "total", "maxPayments", "period", "allowance", "payees", "validFrom", "validUntil",
  "purpose", "parent", "salt",
]);
/** The id of no lane: a root lane's `parent`. */
export const ZERO_ID = `0x${"00".repeat(32)}`;

const MAX_U256 = (1n << 256n) - 1n;
const MAX_U64 = (1n << 64n) - 1n;
const MAX_HEADER_BYTES = 8192;
const LANE_TYPEHASH = keccak_256(
  utf8(
    "Lane(address owner,address agent,address token,uint256 perPayment,uint256 total,uint256 maxPayments,uint256 period," +
      "uint256 allowance,address[] payees,uint256 validFrom,uint256 validUntil,string purpose,bytes32 parent,bytes32 salt)",
  ),
);
const LANE_MANDATE_TYPEHASH = keccak_256(
  utf8("LaneMandate(address owner,address token,address payee,uint256 amount,uint256 nonce,uint256 deadline,bytes32 ref,bytes32 lane)"),
);
const ED25519_LANE_TAG = concat(utf8("AEP2/ed25519/lane/v1"), new Uint8Array([0]));
const ED25519_LANE_MANDATE_TAG = concat(utf8("AEP2/ed25519/lane-mandate/v1"), new Uint8Array([0]));

const word = (n) => fromHex(BigInt(n).toString(16).padStart(64, "0"));
const addrWord = (a20) => concat(new Uint8Array(12), a20);
const same = (a, b) => toHex(a) === toHex(b);
const fail = (code, why) => {
  throw new Aep2Error(code, why);
};

function checkLaneProfile(profile) {
  if (profile === "solana-mvp") fail("unsupported_profile", "solana-mvp has no lanes");
  if (profile !== "eip712" && profile !== "ed25519") fail("unsupported_profile", `unknown profile ${profile}`);
}

function closed(v, what, names) {
  if (v === null || typeof v !== "object" || Array.isArray(v)) fail("field_type", `${what} must be an object`);
  for (const k of Object.keys(v)) if (!names.includes(k)) fail("unknown_field", `${what}: unknown member ${k}`);
  for (const k of names) if (!(k in v)) fail("missing_field", `${what}: missing member ${k}`);
}

function bytes32(v, what) {
  if (typeof v !== "string") fail("field_type", `${what} must be a string`);
  if (!/^0x[0-9a-f]{64}$/.test(v)) fail("ref_invalid", `${what} is not 0x followed by 64 lowercase hex digits`);
  return v;
}

// Characters JSON escapes (spec §18.1): C0 and C1 controls, DEL, the quote and the backslash.
const PURPOSE_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f"\\]/u;

/**
 * Parses a lane object of `profile` (spec §18.1): member set (unknown, then missing), each member's
 * type and format in definition order, then the value rules (`lane_invalid`). Returns the decoded
 * lane: accounts as bytes, amounts as bigint, `parent` and `salt` as 0x hex.
 */
export function parseLane(profile, v) {
  checkLaneProfile(profile);
  closed(v, "lane", LANE_FIELDS);
  const max = profile === "eip712" ? MAX_U256 : MAX_U64;
  const acct = (name) => checkKey(profile, v[name]);
  const owner = acct("owner");
  const agent = acct("agent");
  const token = acct("token");
  const perPayment = parseUint(v.perPayment, max);
  if (perPayment === 0n) fail("amount_zero", "lane.perPayment must be at least 1");
  const total = parseUint(v.total, max);
  if (total === 0n) fail("amount_zero", "lane.total must be at least 1");
  const maxPayments = parseInt53(v.maxPayments, "lane.maxPayments");
  const period = parseInt53(v.period, "lane.period");
  const allowance = parseUint(v.allowance, max);
  if (!Array.isArray(v.payees)) fail("field_type", "lane.payees must be an array");
  const payees = v.payees.map((p) => {
    if (typeof p !== "string") fail("field_type", "lane.payees: an element must be a string");
    return checkKey(profile, p);
  });
  const validFrom = parseInt53(v.validFrom, "lane.validFrom");
  const validUntil = parseInt53(v.validUntil, "lane.validUntil");
  if (typeof v.purpose !== "string") fail("field_type", "lane.purpose must be a string");
  const purpose = v.purpose;
  const parent = bytes32(v.parent, "lane.parent");
  const salt = bytes32(v.salt, "lane.salt");
  const lane = { profile, owner, agent, token, perPayment, total, maxPayments, period, allowance, payees, validFrom, validUntil, purpose, parent, salt };
  checkLaneValues(lane);
  return lane;
}

/** The value rules of spec §18.1, in the order of its table (`lane_invalid`). */
function checkLaneValues(l) {
  if ((l.period === 0) !== (l.allowance === 0n)) fail("lane_invalid", 'allowance must be "0" exactly when period is 0, and at least 1 otherwise');
  if (l.payees.length > MAX_LANE_PAYEES) fail("lane_invalid", `${l.payees.length} payees, at most ${MAX_LANE_PAYEES}`);
  l.payees.forEach((p, i) => {
    if (l.payees.slice(0, i).some((q) => same(p, q))) fail("lane_invalid", "a payee is listed twice");
  });
  if (l.validUntil < l.validFrom) fail("lane_invalid", "validUntil is before validFrom");
  if (utf8(l.purpose).length > MAX_PURPOSE_BYTES) fail("lane_invalid", `purpose above ${MAX_PURPOSE_BYTES} bytes`);
  if (PURPOSE_FORBIDDEN.test(l.purpose)) fail("lane_invalid", "purpose has a control character, a quote or a backslash");
}

/** A parsed lane as the reference writes it: definition order, EVM addresses in EIP-55 form. */
export function canonicalLane(l) {
  const key = (b) => (l.profile === "eip712" ? toChecksum(b) : toBase58(b));
  return {
    owner: key(l.owner),
    agent: key(l.agent),
    token: key(l.token),
    perPayment: l.perPayment.toString(),
    total: l.total.toString(),
    maxPayments: l.maxPayments,
    period: l.period,
    allowance: l.allowance.toString(),
    payees: l.payees.map(key),
    validFrom: l.validFrom,
    validUntil: l.validUntil,
    purpose: l.purpose,
    parent: l.parent,
    salt: l.salt,
  };
}

/** Parses a signed lane `{lane, signature}` (spec §18.2); the signature is checked by verifyLaneChain. */
export function parseSignedLane(profile, v) {
  closed(v, "signed lane", ["lane", "signature"]);
  const lane = parseLane(profile, v.lane);
  if (typeof v.signature !== "string") fail("field_type", "signed lane.signature must be a string");
  return { lane, signature: v.signature };
}

const asLane = (profile, l) => (l && l.owner instanceof Uint8Array ? l : parseLane(profile, l));

/**
 * The signing input and id of a lane (a lane object or a parsed one) under `domain` (spec §18.2):
 * eip712, the 66 bytes 0x1901 ‖ domain separator ‖ hashStruct(Lane), id their keccak256; ed25519,
 * "AEP2/ed25519/lane/v1" ‖ 0x00 ‖ JCS({domain, lane}), id their SHA-256. Returns `{bytes, id}`.
 */
export function laneSigningBytes(profile, domain, lane) {
  checkLaneProfile(profile);
  const l = asLane(profile, lane);
  const dom = parseDomain(profile, domain);
  if (profile === "eip712") {
    const struct = keccak_256(
      concat(
        LANE_TYPEHASH,
        addrWord(l.owner),
        addrWord(l.agent),
        addrWord(l.token),
        word(l.perPayment),
        word(l.total),
        word(l.maxPayments),
        word(l.period),
        word(l.allowance),
        keccak_256(concat(...l.payees.map(addrWord))),
        word(l.validFrom),
        word(l.validUntil),
        keccak_256(utf8(l.purpose)),
        fromHex(l.parent),
        fromHex(l.salt),
      ),
    );
    const bytes = concat(new Uint8Array([0x19, 0x01]), domainSeparator(dom), struct);
    return { bytes, id: `0x${toHex(keccak_256(bytes))}` };
  }
  const bytes = concat(ED25519_LANE_TAG, utf8(jcs({ domain: { network: dom.network, wallet: dom.wallet }, lane: canonicalLane(l) })));
  return { bytes, id: `0x${toHex(sha256(bytes))}` };
}

/** The id of a lane under `domain` (spec §18.2): 0x + 64 hex digits. */
export function laneId(profile, domain, lane) {
  return laneSigningBytes(profile, domain, lane).id;
}

/**
 * The signed bytes and mandate id of a mandate (the seven members, or a parsed one) under the
 * lane whose id is `leafId` (spec §18.4). Returns `{bytes, mandateId}`.
 */
export function laneMandateSigningBytes(profile, domain, mandate, leafId) {
  checkLaneProfile(profile);
  const p = mandate && mandate.signer instanceof Uint8Array ? mandate : parseMandate(profile, mandate);
  const dom = parseDomain(profile, domain);
  const leaf = bytes32(leafId, "lane id");
  if (profile === "eip712") {
    const struct = keccak_256(
      concat(
        LANE_MANDATE_TYPEHASH,
        addrWord(p.signer),
        addrWord(p.token),
        addrWord(p.payee),
        word(p.amount),
        word(p.nonce),
        word(p.deadline),
        fromHex(p.ref),
        fromHex(leaf),
      ),
    );
    const bytes = concat(new Uint8Array([0x19, 0x01]), domainSeparator(dom), struct);
    return { bytes, mandateId: `0x${toHex(keccak_256(bytes))}` };
  }
  const text = jcs({ domain: { network: dom.network, wallet: dom.wallet }, lane: leaf, mandate: canonicalMandate(p) });
  const bytes = concat(ED25519_LANE_MANDATE_TAG, utf8(text));
  return { bytes, mandateId: `0x${toHex(sha256(bytes))}` };
}

/**
 * Whether lane `l` is no wider than `parent` on every dimension (spec §18.3 rules 1 to 6); returns
 * undefined, or the first dimension that is wider.
 */
export function laneWiderThan(l, parent) {
  if (!same(l.owner, parent.owner)) return "owner differs from the parent's";
  if (!same(l.token, parent.token)) return "token differs from the parent's";
  if (l.perPayment > parent.perPayment) return "perPayment above the parent's";
  if (l.total > parent.total) return "total above the parent's";
  if (parent.maxPayments !== 0 && (l.maxPayments === 0 || l.maxPayments > parent.maxPayments)) return "maxPayments above the parent's";
  if (parent.period !== 0 && (l.period !== parent.period || l.allowance > parent.allowance)) return "period or allowance wider than the parent's";
  if (parent.payees.length > 0 && (l.payees.length === 0 || l.payees.some((p) => !parent.payees.some((q) => same(p, q))))) {
    return "payees outside the parent's";
  }
  if (l.validFrom < parent.validFrom || l.validUntil > parent.validUntil) return "validity window outside the parent's";
  return undefined;
}

function linkSignatureOk(profile, signed, bytes, grantor) {
  try {
    if (profile === "eip712") {
      if (recoverEvm(signed.signature, keccak_256(bytes)) !== toChecksum(grantor)) fail("signature_invalid", "not the grantor's");
    } else {
      ed25519Verify(signed.signature, bytes, grantor);
    }
  } catch (e) {
    if (e instanceof Aep2Error) return false;
    throw e;
  }
  return true;
}

/**
 * Parses an envelope's `lanes` member (spec §18.5): an array (else field_type) of 1 to 3 signed
 * lanes (else lane_depth_exceeded), each read wholly before the next, root first.
 */
export function parseChain(profile, v) {
  if (!Array.isArray(v)) fail("field_type", "lanes must be an array");
  if (v.length < 1 || v.length > MAX_LANE_DEPTH) fail("lane_depth_exceeded", `${v.length} links, from 1 to ${MAX_LANE_DEPTH}`);
  return v.map((item) => parseSignedLane(profile, item));
}

/**
 * The signature-stage checks of a parsed chain (spec §18.6): for each link, root first, its
 * `parent` (lane_chain_invalid), then its grantor's signature (lane_signature_invalid). Returns
 * the lane ids, root first.
 */
export function checkChainSignatures(profile, domain, chain) {
  if (chain.length < 1 || chain.length > MAX_LANE_DEPTH) fail("lane_depth_exceeded", `${chain.length} links, from 1 to ${MAX_LANE_DEPTH}`);
  const ids = [];
  chain.forEach((link, i) => {
    const expected = i === 0 ? ZERO_ID : ids[i - 1];
    if (link.lane.parent !== expected) fail("lane_chain_invalid", `link ${i}: parent is not ${expected}`);
    const { bytes, id } = laneSigningBytes(profile, domain, link.lane);
    const grantor = i === 0 ? link.lane.owner : chain[i - 1].lane.agent;
    if (!linkSignatureOk(profile, link, bytes, grantor)) fail("lane_signature_invalid", `lanes[${i}]: not signed by its grantor`);
    ids.push(id);
  });
  return ids;
}

function checkAttenuation(chain) {
  for (let i = 1; i < chain.length; i++) {
    const why = laneWiderThan(chain[i].lane, chain[i - 1].lane);
    if (why) fail("lane_attenuation_invalid", `link ${i}: ${why}`);
  }
}

/**
 * The policy-stage lane rules of spec §18.6 (1 to 6, in order) for a chain whose signatures are
 * verified and a parsed mandate. Without `now`, rule 4 checks only the deadline.
 */
export function checkChainPolicy(chain, p, now) {
  checkAttenuation(chain);
  const root = chain[0].lane;
  if (!same(p.signer, root.owner)) fail("lane_agent_mismatch", "the mandate debits another owner than the lanes'");
  if (!same(p.token, root.token)) fail("lane_asset_mismatch", "the mandate pays in another token than the lanes'");
  if (now !== undefined) {
    const early = chain.findIndex((l) => now < l.lane.validFrom);
    if (early >= 0) fail("lane_not_yet_valid", `link ${early} is valid from ${chain[early].lane.validFrom}, now is ${now}`);
    const late = chain.findIndex((l) => now > l.lane.validUntil);
    if (late >= 0) fail("lane_expired", `link ${late} ended at ${chain[late].lane.validUntil}, now is ${now}`);
  }
  const ended = chain.findIndex((l) => p.deadline > l.lane.validUntil);
  if (ended >= 0) fail("lane_expired", `the deadline ${p.deadline} is after link ${ended}'s end ${chain[ended].lane.validUntil}`);
  const capped = chain.findIndex((l) => p.amount > l.lane.perPayment);
  if (capped >= 0) fail("lane_payment_cap_exceeded", `amount ${p.amount} above link ${capped}'s perPayment ${chain[capped].lane.perPayment}`);
  const barred = chain.findIndex((l) => l.lane.payees.length > 0 && !l.lane.payees.some((q) => same(q, p.payee)));
  if (barred >= 0) fail("lane_payee_not_allowed", `the payee is not in link ${barred}'s payees`);
}

/**
 * Verifies a chain (signed lane objects, root first) under `domain` without a mandate: depth,
 * each link's parent and signature, then attenuation. Returns `{ids, chain}` (the parsed links).
 */
export function verifyLaneChain(profile, domain, lanes) {
  checkLaneProfile(profile);
  const chain = parseChain(profile, lanes);
  const ids = checkChainSignatures(profile, domain, chain);
  checkAttenuation(chain);
  return { ids, chain };
}

function chainItems(source) {
  if (Array.isArray(source)) return source;
  if (source && typeof source === "object" && "lane" in source && "signature" in source) {
    return [...(source.parents ?? []), { lane: source.lane, signature: source.signature }];
  }
  throw new Aep2Error("field_type", "not a lane file or a chain of signed lanes");
}

/**
 * Reads a lane file as `aep2 lane grant` prints it, `{id, profile, domain, lane, signature,
 * parents}` (text or the parsed object), or a bare chain (an array of signed lanes, root first,
 * with `profile` and `domain` given), and verifies it: schema, every link's parent and signature,
 * attenuation, and a stated `id` equal to the leaf's. Returns `{id, profile, domain, lanes, chain,
 * ids, agent, owner}`: `lanes` the signed lanes as they travel in an envelope, `chain` parsed.
 */
export function loadLaneFile(source, { profile, domain } = {}) {
  if (source && typeof source === "object" && Array.isArray(source.chain) && Array.isArray(source.ids) && typeof source.agent === "string") {
    // Loaded already (this function's result): verified when it was loaded.
    if (profile !== undefined && profile !== source.profile) fail("profile_mismatch", `the lane file is ${source.profile}, expected ${profile}`);
    return source;
  }
  const v = typeof source === "string" ? parseStrict(source, ENVELOPE_LIMITS) : source;
  const items = chainItems(v);
  const prof = Array.isArray(v) ? profile : (v.profile ?? profile);
  checkLaneProfile(prof);
  const dom = parseDomain(prof, Array.isArray(v) ? domain : (v.domain ?? domain));
  if (profile !== undefined && profile !== prof) fail("profile_mismatch", `the lane file is ${prof}, expected ${profile}`);
  const { ids, chain } = verifyLaneChain(prof, dom, items);
  const id = ids[ids.length - 1];
  if (!Array.isArray(v) && v.id !== undefined && v.id !== id) fail("lane_chain_invalid", `the file states id ${v.id}, its lane's id is ${id}`);
  const lanes = chain.map((l) => ({ lane: canonicalLane(l.lane), signature: l.signature }));
  const key = (b) => (prof === "eip712" ? toChecksum(b) : toBase58(b));
  return { id, profile: prof, domain: dom, lanes, chain, ids, agent: key(chain[chain.length - 1].lane.agent), owner: key(chain[0].lane.owner) };
}

/** The lane file of the last link of `lanes` (signed lanes, root first): what `aep2 lane grant` prints. */
export function laneFile(profile, domain, lanes) {
  const dom = parseDomain(profile, domain);
  const chain = lanes.map((l) => parseSignedLane(profile, l));
  const leaf = chain[chain.length - 1];
  const out = (l) => ({ lane: canonicalLane(l.lane), signature: l.signature });
  return {
    id: laneId(profile, dom, leaf.lane),
    profile,
    domain: dom,
    lane: canonicalLane(leaf.lane),
    signature: leaf.signature,
    parents: chain.slice(0, -1).map(out),
  };
}

function parentChain(profile, domain, parent) {
  if (parent === undefined) return [];
  if (parent && typeof parent === "object" && !Array.isArray(parent) && Array.isArray(parent.chain)) return parent.chain;
  return parseChain(profile, chainItems(parent));
}

/**
 * Signs `lane` (a lane object) under `domain` with the grantor's key (spec §18.2): the owner's for
 * a root lane, the parent lane's agent's for a sub-lane of `parent` (a lane file, a loaded one, or
 * a chain). Refuses what every verifier would reject, as the reference `sign_lane` does: a lane
 * that breaks a schema or value rule (its code), a chain already 3 links deep
 * (lane_depth_exceeded), a `parent` member that is not the parent's id (lane_chain_invalid), a
 * sub-lane wider than its parent (lane_attenuation_invalid), and a key that is not the grantor's
 * (signature_invalid). Returns the lane file of the new lane.
 */
export function signLane({ profile, domain, lane, key, parent }) {
  checkLaneProfile(profile);
  const dom = parseDomain(profile, domain);
  const l = parseLane(profile, lane);
  const parents = parentChain(profile, dom, parent);
  if (parents.length >= MAX_LANE_DEPTH) fail("lane_depth_exceeded", `the parent's chain has ${parents.length} links already, at most ${MAX_LANE_DEPTH}`);
  let grantor;
  if (parents.length === 0) {
    if (l.parent !== ZERO_ID) fail("lane_chain_invalid", "a lane without a parent must have parent 0x00…00");
    grantor = l.owner;
  } else {
    const p = parents[parents.length - 1];
    if (l.parent !== laneId(profile, dom, p.lane)) fail("lane_chain_invalid", "parent is not the given parent lane's id");
    const why = laneWiderThan(l, p.lane);
    if (why) fail("lane_attenuation_invalid", why);
    grantor = p.lane.agent;
  }
  const k = typeof key === "string" ? fromHex(key, "field_type") : key;
  const g = profile === "eip712" ? toChecksum(grantor) : toBase58(grantor);
  if (signerOf(profile, k) !== g) fail("signature_invalid", `the key is not the lane's grantor's (${g})`);
  const { bytes } = laneSigningBytes(profile, dom, l);
  const signed = { lane: canonicalLane(l), signature: signBytes(profile, bytes, k) };
  const out = (x) => ({ lane: canonicalLane(x.lane), signature: x.signature });
  return laneFile(profile, dom, [...parents.map(out), signed]);
}

/**
 * Grants a lane as `aep2 lane grant` does: builds the lane with its defaults and signs it with
 * signLane. `agent`, `token`, `perPayment`, `total` and `validUntil` are required; `validFrom`
 * defaults to now (the parent's if later), `payees`, `maxPayments`, `period` and `allowance` to
 * none or, under a `parent`, the parent's; `salt` to 32 random bytes; the owner is the key's (a
 * root lane) or the parent's. Returns the lane file.
 */
export function grantLane({
  profile = "eip712", domain, key, parent, agent, token, perPayment, total, validUntil, validFrom, payees, maxPayments, period,
  allowance, purpose = "", salt, now = Math.floor(Date.now() / 1000),
}) {
  checkLaneProfile(profile);
  const dom = parseDomain(profile, domain);
  const parents = parentChain(profile, dom, parent);
  const p = parents[parents.length - 1]?.lane;
  const k = typeof key === "string" ? fromHex(key, "field_type") : key;
  const pc = p && canonicalLane(p);
  const lane = {
    owner: pc ? pc.owner : signerOf(profile, k),
    agent,
    token,
    perPayment,
    total,
    maxPayments: maxPayments ?? (pc ? pc.maxPayments : 0),
    period: period ?? (pc ? pc.period : 0),
    allowance: allowance ?? (pc ? pc.allowance : "0"),
    payees: payees && payees.length > 0 ? payees : pc ? pc.payees : [],
    validFrom: validFrom ?? (pc ? Math.max(now, pc.validFrom) : now),
    validUntil,
    purpose,
    parent: p ? laneId(profile, dom, p) : ZERO_ID,
    salt: salt ?? `0x${randomBytes(32).toString("hex")}`,
  };
  return signLane({ profile, domain: dom, lane, key: k, parent: parents.length ? { chain: parents } : undefined });
}

/**
 * Signs `mandate` (the seven members; its owner or payer is the lane owner) under a lane chain
 * with the leaf agent's `key` (spec §18.4) and wraps it, with the chain as `lanes`, in an envelope
 * of `form` (`mvp` or `native`, spec §18.5). `lanes` is a lane file (as printed or loaded) or a
 * chain of signed lanes, root first. Refuses, as the reference `sign_lane_mandate` does: a key
 * that is not the leaf's agent's (signature_invalid), a broken chain (its code), a mandate for
 * another owner (lane_agent_mismatch), in another token (lane_asset_mismatch), with a deadline
 * after a link's validUntil (lane_expired), an amount over a cap (lane_payment_cap_exceeded), a
 * payee not allowed (lane_payee_not_allowed), and a header over 8192 bytes (header_too_large).
 * Returns `{signature, envelope, header, mandateId, laneId, laneIds}`.
 */
export function signLaneMandate({ profile, domain, mandate, key, lanes, form = "mvp" }) {
  checkLaneProfile(profile);
  if (form !== "mvp" && form !== "native") fail("field_type", `unknown envelope form ${form}`);
  const p = parseMandate(profile, mandate);
  const dom = parseDomain(profile, domain);
  const chain = lanes && typeof lanes === "object" && !Array.isArray(lanes) && Array.isArray(lanes.chain) ? lanes.chain : parseChain(profile, chainItems(lanes));
  const k = typeof key === "string" ? fromHex(key, "field_type") : key;
  const leaf = chain[chain.length - 1].lane;
  const agent = profile === "eip712" ? toChecksum(leaf.agent) : toBase58(leaf.agent);
  if (signerOf(profile, k) !== agent) fail("signature_invalid", `the key is not the leaf lane's agent's (${agent})`);
  const ids = checkChainSignatures(profile, dom, chain);
  checkChainPolicy(chain, p, undefined);
  const { bytes, mandateId } = laneMandateSigningBytes(profile, dom, p, ids[ids.length - 1]);
  const signature = signBytes(profile, bytes, k);
  const m = canonicalMandate(p);
  const signedLanes = chain.map((l) => ({ lane: canonicalLane(l.lane), signature: l.signature }));
  const envelope =
    form === "native"
      ? { aep2: 1, profile, domain: dom, mandate: m, signature, lanes: signedLanes }
      : { mandate: m, payerSig: signature, lanes: signedLanes };
  const header = encodeEnvelope(envelope);
  if (header.length > MAX_HEADER_BYTES) fail("header_too_large", `the header would be ${header.length} bytes, limit ${MAX_HEADER_BYTES}`);
  return { signature, envelope, header, mandateId, laneId: ids[ids.length - 1], laneIds: ids };
}
