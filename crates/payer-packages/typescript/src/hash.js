// The request hashes a payer signs as `ref`: HTTP (spec §10.5), A2A message (§11.8), MCP tool
// call (§12.6), and the Order Mode quote hash (§9.2).

import { sha256 } from "@noble/hashes/sha2.js";
import { Aep2Error } from "./errors.js";
import { concat, fromBase58, fromBase64, parseAddress, toChecksum, toHex, utf8 } from "./codec.js";
import { MCP_LIMITS, checkLimits, jcs, parseStrict } from "./json.js";
import { parseDomain } from "./mandate.js";

function tagged(tag, descriptor) {
  return `0x${toHex(sha256(concat(utf8(tag), new Uint8Array([0]), utf8(descriptor))))}`;
}

const bad = (why) => {
  throw new Aep2Error("request_descriptor_invalid", why);
};

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}$/;

/** The canonical URL of spec §10.5 (`U`), or request_descriptor_invalid. */
export function canonicalUrl(url) {
  if (typeof url !== "string") bad("the URL is not a string");
  if (utf8(url).length > 8000) bad("URL longer than 8000 bytes");
  if (!/^[\x21-\x7e]+$/.test(url)) bad("URL is not printable ASCII");
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)(#.*)?$/.exec(url);
  if (!m) bad("URL is not absolute");
  const scheme = m[1].toLowerCase();
  if (scheme !== "http" && scheme !== "https") bad("scheme is not http or https");
  const authority = m[2];
  if (authority.includes("@")) bad("URL has userinfo");
  let host = authority;
  let port = "";
  const pm = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(authority);
  if (!pm) bad("bad authority");
  host = pm[1];
  port = pm[2] ?? "";
  if (host === "") bad("empty host");
  if (port !== "") {
    if (!/^[0-9]+$/.test(port)) bad("port is not decimal");
    const p = Number(port);
    if (p === 0 || p > 65535) bad("port out of range");
    port = String(p);
    if ((scheme === "http" && p === 80) || (scheme === "https" && p === 443)) port = "";
  }
  let rest = m[3];
  if (rest === "" || rest.startsWith("?")) rest = `/${rest}`;
  return `${scheme}://${host.toLowerCase()}${port ? `:${port}` : ""}${rest}`;
}

/**
 * The HTTP request descriptor and hash of spec §10.5 for `method`, absolute `url` and the body
 * octets (Uint8Array, string as UTF-8, or absent for no body). Returns `{descriptor, requestHash}`.
 */
export function httpRequestHash(method, url, body = new Uint8Array(0)) {
  if (typeof method !== "string" || !TOKEN_RE.test(method)) bad("method is not an RFC 9110 token of 1 to 32 bytes");
  const bytes = typeof body === "string" ? utf8(body) : body ?? new Uint8Array(0);
  const descriptor = jcs({
    method: method.replace(/[a-z]/g, (c) => c.toUpperCase()),
    url: canonicalUrl(url),
    bodySha256: toHex(sha256(bytes)),
  });
  return { descriptor, requestHash: tagged("AEP2/http-request/v1", descriptor) };
}

/**
 * The MCP tool-call descriptor and hash of spec §12.6. `args` is the `params.arguments` object,
 * its JSON text, or undefined (written `{}`).
 */
export function mcpRequestHash(name, args) {
  if (typeof name !== "string") bad("tool name is not a string");
  const n = utf8(name).length;
  if (n < 1 || n > 128) bad("tool name must be 1 to 128 bytes");
  let a = args;
  if (typeof args === "string") a = parseStrict(args, MCP_LIMITS);
  else if (args !== undefined) checkLimits(args, MCP_LIMITS);
  if (a === undefined) a = {};
  if (a === null || typeof a !== "object" || Array.isArray(a)) bad("arguments is not an object");
  const descriptor = jcs({ arguments: a, name });
  return { descriptor, requestHash: tagged("AEP2/mcp-tool-call/v1", descriptor) };
}

const A2A_MAX_TEXT = 65536;
const A2A_KEYS = ["aep2.dev/status", "aep2.dev/requirements", "aep2.dev/mandate", "aep2.dev/receipt", "aep2.dev/error"];
const V1_MEMBERS = ["messageId", "contextId", "taskId", "role", "parts", "metadata", "extensions", "referenceTaskIds"];

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function a2aBad(why) {
  throw new Aep2Error("a2a_message_invalid", why);
}

function checkMetadata(md) {
  if (!isObj(md)) a2aBad("metadata is not an object");
  for (const k of Object.keys(md)) {
    if (k.toLowerCase().startsWith("aep2.dev/") && !A2A_KEYS.includes(k)) a2aBad(`unknown AEP2 metadata key ${k}`);
  }
}

function checkB64(s) {
  if (typeof s !== "string") a2aBad("file bytes are not a string");
  try {
    return fromBase64(s);
  } catch {
    return a2aBad("file bytes are not canonical base64");
  }
}

function onlyMembers(o, allowed, what) {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) a2aBad(`${what}: unknown member ${k}`);
}

function optString(o, k, what) {
  if (k in o && typeof o[k] !== "string") a2aBad(`${what}.${k} is not a string`);
}

function partV1(p) {
  if (!isObj(p)) a2aBad("a part is not an object");
  onlyMembers(p, ["text", "raw", "url", "data", "metadata", "filename", "mediaType"], "part");
  const content = ["text", "raw", "url", "data"].filter((k) => k in p);
  if (content.length !== 1) a2aBad("a part must have exactly one of text, raw, url, data");
  if ("metadata" in p && !isObj(p.metadata)) a2aBad("part metadata is not an object");
  optString(p, "filename", "part");
  optString(p, "mediaType", "part");
  const d = {};
  const c = content[0];
  if (c === "text" || c === "url") {
    if (typeof p[c] !== "string") a2aBad(`part.${c} is not a string`);
    d[c] = p[c];
  } else if (c === "raw") {
    d.rawSha256 = toHex(sha256(checkB64(p.raw)));
  } else {
    d.data = p.data;
  }
  if ("filename" in p) d.filename = p.filename;
  if ("mediaType" in p) d.mediaType = p.mediaType;
  return d;
}

function partV03(p) {
  if (!isObj(p)) a2aBad("a part is not an object");
  if ("metadata" in p && !isObj(p.metadata)) a2aBad("part metadata is not an object");
  switch (p.kind) {
    case "text":
      onlyMembers(p, ["kind", "text", "metadata"], "text part");
      if (typeof p.text !== "string") a2aBad("text part without a string text");
      return { text: p.text };
    case "data":
      onlyMembers(p, ["kind", "data", "metadata"], "data part");
      if (!isObj(p.data)) a2aBad("a v0.3 data part holds an object");
      return { data: p.data };
    case "file": {
      onlyMembers(p, ["kind", "file", "metadata"], "file part");
      const f = p.file;
      if (!isObj(f)) a2aBad("file part without a file object");
      onlyMembers(f, ["uri", "bytes", "name", "mimeType"], "file");
      if (("uri" in f) === ("bytes" in f)) a2aBad("a file has exactly one of uri and bytes");
      optString(f, "name", "file");
      optString(f, "mimeType", "file");
      const d = {};
      if ("uri" in f) {
        if (typeof f.uri !== "string") a2aBad("file.uri is not a string");
        d.url = f.uri;
      } else {
        d.rawSha256 = toHex(sha256(checkB64(f.bytes)));
      }
      if ("name" in f) d.filename = f.name;
      if ("mimeType" in f) d.mediaType = f.mimeType;
      return d;
    }
    default:
      return a2aBad("a v0.3 part has kind text, file or data");
  }
}

/**
 * Reads an A2A message (v1.0 or v0.3; its JSON text or the parsed object) under spec §11.3 and
 * returns `{version, role, descriptor, requestHash}` (spec §11.8); an agent message has no
 * request hash (request_descriptor_invalid).
 */
export function a2aRequestHash(message) {
  let msg = message;
  if (typeof message === "string") {
    if (utf8(message).length > A2A_MAX_TEXT) throw new Aep2Error("header_too_large", "A2A message above 65536 bytes");
    msg = parseStrict(message, { depth: 16, stringBytes: A2A_MAX_TEXT, members: 128, numberChars: 32 });
  } else {
    const text = JSON.stringify(message);
    if (text === undefined || utf8(text).length > A2A_MAX_TEXT) throw new Aep2Error("header_too_large", "A2A message above 65536 bytes");
    checkLimits(message, { depth: 16, stringBytes: A2A_MAX_TEXT, members: 128, numberChars: 32 });
  }
  if (!isObj(msg)) a2aBad("the message is not an object");
  const v03 = "kind" in msg;
  if (v03 && msg.kind !== "message") a2aBad("a v0.3 message has kind \"message\"");
  onlyMembers(msg, v03 ? ["kind", ...V1_MEMBERS] : V1_MEMBERS, "message");
  for (const k of ["messageId", "role", "parts"]) if (!(k in msg)) a2aBad(`message.${k} is required`);
  if (typeof msg.messageId !== "string" || msg.messageId === "") a2aBad("messageId is not a non-empty string");
  optString(msg, "contextId", "message");
  optString(msg, "taskId", "message");
  for (const k of ["extensions", "referenceTaskIds"]) {
    if (k in msg && !(Array.isArray(msg[k]) && msg[k].every((s) => typeof s === "string"))) a2aBad(`${k} is not an array of strings`);
  }
  if ("metadata" in msg) checkMetadata(msg.metadata);
  const roles = v03 ? { user: "user", agent: "agent" } : { ROLE_USER: "user", ROLE_AGENT: "agent" };
  const role = roles[msg.role];
  if (!role) a2aBad(`role ${JSON.stringify(msg.role)} is not spelt for A2A ${v03 ? "v0.3" : "v1.0"}`);
  if (!Array.isArray(msg.parts) || msg.parts.length === 0) a2aBad("parts is not a non-empty array");
  const parts = msg.parts.map(v03 ? partV03 : partV1);
  const version = v03 ? "0.3" : "1.0";
  if (role !== "user") {
    return { version, role, error: new Aep2Error("request_descriptor_invalid", "only a user message is a request") };
  }
  const d = { parts };
  if ("contextId" in msg) d.contextId = msg.contextId;
  if ("taskId" in msg) d.taskId = msg.taskId;
  if (Array.isArray(msg.referenceTaskIds) && msg.referenceTaskIds.length > 0) d.referenceTaskIds = msg.referenceTaskIds;
  const descriptor = jcs(d);
  return { version, role, descriptor, requestHash: tagged("AEP2/a2a-message/v1", descriptor) };
}

const QUOTE_MEMBERS = [
  "aep2", "kind", "profile", "domain", "requestId", "payee", "asset", "amount", "expiry",
  "description", "settlementProcessor", "settlementWindow",
];

/**
 * Checks an Order Mode quote (spec §9.1, the payer's reading: member set, types, forms) and
 * returns `{quote, quoteHash}` with the canonical quote of spec §9.2.
 */
export function quoteHash(q) {
  if (!isObj(q)) throw new Aep2Error("field_type", "the quote is not an object");
  const sol = q.profile === "solana-mvp";
  const names = sol ? QUOTE_MEMBERS.filter((k) => k !== "domain") : QUOTE_MEMBERS;
  for (const k of Object.keys(q)) if (!names.includes(k)) throw new Aep2Error("unknown_field", `quote member ${k}`);
  for (const k of names) if (!(k in q)) throw new Aep2Error("missing_field", `quote member ${k}`);
  if (q.aep2 !== 1) throw new Aep2Error("unsupported_version", "quote aep2 must be 1");
  if (q.kind !== "payment-request") throw new Aep2Error("field_type", "quote kind must be payment-request");
  if (!["eip712", "ed25519", "solana-mvp"].includes(q.profile)) throw new Aep2Error("unsupported_profile", `quote profile ${q.profile}`);
  const key = (v) => {
    if (typeof v !== "string") throw new Aep2Error("field_type", "quote account is not a string");
    if (q.profile === "eip712") return toChecksum(parseAddress(v));
    fromBase58(v, "address_invalid", 32);
    return v;
  };
  if (typeof q.requestId !== "string" || !/^[A-Za-z0-9._:-]{1,64}$/.test(q.requestId) || (sol && q.requestId.length > 32)) {
    throw new Aep2Error("field_type", "quote requestId");
  }
  if (typeof q.description !== "string" || utf8(q.description).length > 256) throw new Aep2Error("field_type", "quote description");
  if (typeof q.amount !== "string" || !/^[1-9][0-9]*$/.test(q.amount)) throw new Aep2Error("uint_invalid", "quote amount");
  for (const k of ["expiry", "settlementWindow"]) {
    if (!Number.isSafeInteger(q[k]) || q[k] < 0) throw new Aep2Error("uint_invalid", `quote ${k}`);
  }
  const c = {
    aep2: 1,
    kind: q.kind,
    profile: q.profile,
    ...(sol ? {} : { domain: parseDomain(q.profile, q.domain) }),
    requestId: q.requestId,
    payee: key(q.payee),
    asset: key(q.asset),
    amount: q.amount,
    expiry: q.expiry,
    description: q.description,
    settlementProcessor: key(q.settlementProcessor),
    settlementWindow: q.settlementWindow,
  };
  return { quote: c, quoteHash: tagged("AEP2/payment-request/v1", jcs(c)) };
}
