// secp256k1 recovery under the acceptance rules of spec §4.1.2 (the settlement contract's).

import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { Aep2Error } from "./errors.js";
import { concat, fromHex, toChecksum, toHex } from "./codec.js";

const N = secp256k1.Point.CURVE().n;

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

