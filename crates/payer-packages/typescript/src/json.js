// Strict JSON (spec §5.4) with bounded limits (§5.5, §11.3, §12.2), and RFC 8785 (JCS) output.
//
// JSON.parse is not enough for a payer that must hash exactly what a payee hashes: it keeps the
// last of two duplicate members, accepts lone surrogate escapes and turns 1e400 into Infinity.
// Each of those would make the payer sign a hash the payee computes differently (or refuses).

import { Aep2Error } from "./errors.js";

/** The envelope limits of spec §5.5. */
export const ENVELOPE_LIMITS = Object.freeze({ depth: 8, stringBytes: 1024, members: 32, numberChars: 24 });
/** The MCP message limits of spec §12.2. */
export const MCP_LIMITS = Object.freeze({ depth: 16, stringBytes: 16384, members: 256, numberChars: 64 });

const enc = new TextEncoder();

function utf8Length(s) {
  return enc.encode(s).length;
}

/**
 * Parses `text` as one strict JSON value within `limits`; objects have null prototypes so that
 * a member named `__proto__` is an ordinary member. Throws Aep2Error with json_invalid,
 * json_duplicate_key or json_limit_exceeded.
 */
export function parseStrict(text, limits = ENVELOPE_LIMITS) {
  let i = 0;
  const n = text.length;
  const fail = (code, why) => {
    throw new Aep2Error(code, `${why} at offset ${i}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const str = () => {
    // at the opening quote
    i++;
    let out = "";
    for (;;) {
      if (i >= n) fail("json_invalid", "unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        break;
      }
      if (c < 0x20) fail("json_invalid", "unescaped control character");
      if (c === 0x5c) {
        const e = text[i + 1];
        i += 2;
        switch (e) {
          case '"': out += '"'; break;
          case "\\": out += "\\"; break;
          case "/": out += "/"; break;
          case "b": out += "\b"; break;
          case "f": out += "\f"; break;
          case "n": out += "\n"; break;
          case "r": out += "\r"; break;
          case "t": out += "\t"; break;
          case "u": {
            const hex = (at) => {
              const h = text.slice(at, at + 4);
              if (!/^[0-9a-fA-F]{4}$/.test(h)) fail("json_invalid", "bad \\u escape");
              return parseInt(h, 16);
            };
            const u = hex(i);
            i += 4;
            if (u >= 0xd800 && u <= 0xdbff) {
              if (text[i] !== "\\" || text[i + 1] !== "u") fail("json_invalid", "lone surrogate");
              const l = hex(i + 2);
              if (l < 0xdc00 || l > 0xdfff) fail("json_invalid", "lone surrogate");
              i += 6;
              out += String.fromCharCode(u, l);
            } else if (u >= 0xdc00 && u <= 0xdfff) {
              fail("json_invalid", "lone surrogate");
            } else {
              out += String.fromCharCode(u);
            }
            break;
          }
          default:
            fail("json_invalid", "bad escape");
        }
      } else {
        // A raw lone surrogate cannot come from well-formed UTF-8 input; refuse it as well.
        if (c >= 0xd800 && c <= 0xdbff) {
          const l = text.charCodeAt(i + 1);
          if (!(l >= 0xdc00 && l <= 0xdfff)) fail("json_invalid", "lone surrogate");
          out += text[i] + text[i + 1];
          i += 2;
          continue;
        }
        if (c >= 0xdc00 && c <= 0xdfff) fail("json_invalid", "lone surrogate");
        out += text[i];
        i++;
      }
    }
    if (utf8Length(out) > limits.stringBytes) fail("json_limit_exceeded", "string too long");
    return out;
  };
  const num = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + limits.numberChars + 2));
    if (!m || m[0] === "-") fail("json_invalid", "bad number");
    if (m[0].length > limits.numberChars) fail("json_limit_exceeded", "number token too long");
    i += m[0].length;
    const v = Number(m[0]);
    if (!Number.isFinite(v)) fail("json_invalid", "number out of double range");
    return { v, token: m[0] };
  };
  const value = (depth) => {
    ws();
    if (i >= n) fail("json_invalid", "unexpected end");
    const c = text[i];
    if (c === "{" || c === "[") {
      if (depth + 1 > limits.depth) fail("json_limit_exceeded", "nesting too deep");
      i++;
      ws();
      if (c === "[") {
        const arr = [];
        if (text[i] === "]") {
          i++;
          return arr;
        }
        for (;;) {
          if (arr.length + 1 > limits.members) fail("json_limit_exceeded", "too many elements");
          arr.push(value(depth + 1));
          ws();
          if (text[i] === ",") {
            i++;
            continue;
          }
          if (text[i] === "]") {
            i++;
            return arr;
          }
          fail("json_invalid", "expected , or ]");
        }
      }
      const obj = Object.create(null);
      let count = 0;
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("json_invalid", "expected member name");
        const k = str();
        if (Object.prototype.hasOwnProperty.call(obj, k)) fail("json_duplicate_key", `duplicate member ${JSON.stringify(k)}`);
        count++;
        if (count > limits.members) fail("json_limit_exceeded", "too many members");
        ws();
        if (text[i] !== ":") fail("json_invalid", "expected :");
        i++;
        obj[k] = value(depth + 1);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return obj;
        }
        fail("json_invalid", "expected , or }");
      }
    }
    if (c === '"') return str();
    if (text.startsWith("true", i)) {
      i += 4;
      return true;
    }
    if (text.startsWith("false", i)) {
      i += 5;
      return false;
    }
    if (text.startsWith("null", i)) {
      i += 4;
      return null;
    }
    if (c === "-" || (c >= "0" && c <= "9")) return num().v;
    return fail("json_invalid", "unexpected character");
  };
  if (text.charCodeAt(0) === 0xfeff) fail("json_invalid", "byte-order mark");
  const v = value(0);
  ws();
  if (i !== n) fail("json_invalid", "trailing data");
  return v;
}

/**
 * RFC 8785 canonical JSON text of a JSON value (objects sorted by UTF-16 code units, strings with
 * JSON.stringify's escaping, numbers in ECMAScript form). Throws on values JSON cannot hold.
 */
export function jcs(value) {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Aep2Error("json_invalid", "a non-finite number has no JSON form");
    return Object.is(value, -0) ? "0" : String(value);
  }
  if (Array.isArray(value)) return `[${value.map(jcs).join(",")}]`;
  if (typeof value === "object") {
    // Plain sort compares UTF-16 code units, which is JCS's order.
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs(value[k])}`).join(",")}}`;
  }
  throw new Aep2Error("field_type", `${typeof value} is not a JSON value`);
}

/** Depth, member count and string/number sizes of an already-parsed value against `limits`. */
export function checkLimits(value, limits, depth = 1) {
  if (value !== null && typeof value === "object") {
    if (depth > limits.depth) throw new Aep2Error("json_limit_exceeded", "nesting too deep");
    const entries = Array.isArray(value) ? value.map((v) => [null, v]) : Object.entries(value);
    if (entries.length > limits.members) throw new Aep2Error("json_limit_exceeded", "too many members");
    for (const [k, v] of entries) {
      if (k !== null && utf8Length(k) > limits.stringBytes) throw new Aep2Error("json_limit_exceeded", "string too long");
      checkLimits(v, limits, depth + 1);
    }
  } else if (typeof value === "string") {
    if (utf8Length(value) > limits.stringBytes) throw new Aep2Error("json_limit_exceeded", "string too long");
  } else if (typeof value === "number") {
    if (JSON.stringify(value).length > limits.numberChars) throw new Aep2Error("json_limit_exceeded", "number too long");
  }
}
