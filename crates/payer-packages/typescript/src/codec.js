// Byte codecs: hex, canonical standard base64, base58 (Bitcoin alphabet), EIP-55 addresses.

import { keccak_256 } from "@noble/hashes/sha3.js";
import { Aep2Error } from "./errors.js";

const enc = new TextEncoder();

/** UTF-8 bytes of `s`. */
export const utf8 = (s) => enc.encode(s);

/** Lowercase hex of `bytes`, no prefix. */
export function toHex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

/** Bytes of hex text (an optional 0x prefix); throws `code` on anything else. */
export function fromHex(text, code = "field_type") {
  const h = text.startsWith("0x") ? text.slice(2) : text;
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) throw new Aep2Error(code, "not hex");
  return new Uint8Array(Buffer.from(h, "hex"));
}

/** Concatenation of byte arrays. */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Standard base64 with padding (the canonical form of spec §5.3). */
export function toBase64(bytes) {
  return Buffer.from(bytes).toString("base64");
}

/** Decodes canonical standard base64 only (spec §5.3 rule 2); else base64_invalid. */
export function fromBase64(text) {
  if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new Aep2Error("base64_invalid", "not canonical standard base64");
  }
  const bytes = Buffer.from(text, "base64");
  if (bytes.toString("base64") !== text) throw new Aep2Error("base64_invalid", "non-zero padding bits");
  return new Uint8Array(bytes);
}

const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** Base58 (Bitcoin alphabet) of `bytes`. */
export function toBase58(bytes) {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  let n = BigInt(`0x${toHex(bytes) || "0"}`);
  let out = "";
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out;
    n /= 58n;
  }
  return "1".repeat(zeros) + out;
}

/** Bytes of base58 text; throws `code` when the text is not base58 (or not `len` bytes). */
export function fromBase58(text, code = "address_invalid", len = undefined, maxChars = 128) {
  if (typeof text !== "string" || text.length === 0 || text.length > maxChars) throw new Aep2Error(code, "not base58");
  let n = 0n;
  for (const ch of text) {
    const d = B58.indexOf(ch);
    if (d < 0) throw new Aep2Error(code, "not base58");
    n = n * 58n + BigInt(d);
  }
  let zeros = 0;
  while (zeros < text.length && text[zeros] === "1") zeros++;
  let hex = n === 0n ? "" : n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const bytes = concat(new Uint8Array(zeros), fromHex(hex));
  if (len !== undefined && bytes.length !== len) throw new Aep2Error(code, `base58 of ${bytes.length} bytes, not ${len}`);
  return bytes;
}

/** EIP-55 checksum text of a 20-byte address. */
export function toChecksum(addr20) {
  const hex = toHex(addr20);
  const h = toHex(keccak_256(utf8(hex)));
  let out = "0x";
  for (let i = 0; i < 40; i++) out += parseInt(h[i], 16) >= 8 ? hex[i].toUpperCase() : hex[i];
  return out;
}

/** The 20 bytes of an EVM address under spec §3.2 (address_invalid, address_checksum). */
export function parseAddress(text) {
  if (typeof text !== "string") throw new Aep2Error("field_type", "address is not a string");
  if (!/^0x[0-9a-fA-F]{40}$/.test(text)) throw new Aep2Error("address_invalid", `not an EVM address: ${text}`);
  const body = text.slice(2);
  const bytes = fromHex(body);
  if (body !== body.toLowerCase() && body !== body.toUpperCase() && toChecksum(bytes) !== text) {
    throw new Aep2Error("address_checksum", `bad EIP-55 checksum: ${text}`);
  }
  return bytes;
}
