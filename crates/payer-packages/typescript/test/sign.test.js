// Signing and hashing against the spec's worked examples (spec/aep2.md §4.1.1, §4.2.1, §4.3,
// §5.2, §9.2, §10.5, §11.8, §12.6) and the signer's refusals (§4 "Signing").

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Aep2Error, signMandate, signerOf, signingBytes, parseMandate, domainSeparator, toHex,
  httpRequestHash, mcpRequestHash, a2aRequestHash, quoteHash, parseStrict, jcs, fromBase64,
} from "../src/index.js";

const HARDHAT0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const EVM_DOMAIN = { chainId: 84532, verifyingContract: "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912" };
const EVM_MANDATE = {
  owner: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  token: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
  payee: "0x2222222222222222222222222222222222222222",
  amount: "1000",
  nonce: "1",
  deadline: 1700000600,
  ref: "0xc01aa5533230e792b6b341f2c78c606ef0b50bf56ee18ca7a8fa956d5235fe98",
};

const code = (c) => (e) => e instanceof Aep2Error && e.code === c;

test("eip712: the §4.1.1 worked example, digest and native envelope byte for byte", () => {
  assert.equal(toHex(domainSeparator(EVM_DOMAIN)), "c15fd74307bfeaa196f1a3918dd465ffb8bef0066ac826ddbf648b034beaeff9");
  const sb = signingBytes(parseMandate("eip712", EVM_MANDATE), EVM_DOMAIN);
  assert.equal(sb.structHash, "0x6781f642e87fdbdf15c83763ab796f43986aa2cbea265a341d71f0bcf1389229");
  assert.equal(sb.mandateId, "0xacffc66c2eab7d0e63e893c1027af74f82090d2718062bdb0c174f653e2e43ca");
  const s = signMandate({ profile: "eip712", domain: EVM_DOMAIN, mandate: EVM_MANDATE, key: HARDHAT0, form: "native" });
  const expected =
    '{"aep2":1,"profile":"eip712","domain":{"chainId":84532,"verifyingContract":"0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"},"mandate":{"owner":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","token":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payee":"0x2222222222222222222222222222222222222222","amount":"1000","nonce":"1","deadline":1700000600,"ref":"0xc01aa5533230e792b6b341f2c78c606ef0b50bf56ee18ca7a8fa956d5235fe98"},"signature":"0xd7ff6c5d02ded4432ad3fc3f2f65503cdb27f41cbe39f61dba994f6e936c8b9f518fe0bb6aca24d678c6e63986679c5d20e8a6d1b82609291f9ea685587b3b7c1c"}';
  assert.equal(Buffer.from(fromBase64(s.header)).toString(), expected);
  assert.equal(s.mandateId, sb.mandateId);
});

test("ed25519: the §4.2.1 worked example signature", () => {
  const seed = "0x0625abc24eb009fab119bfb4d4e09804fefaf6bf46af33a549d2c3f52aa86118";
  const domain = { network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", wallet: "AnZDD6eXMV3xfhLqXWi6DUp8ebJwYCYfce8sYawVgdan" };
  const mandate = {
    payer: "73LczaJo17YVrSW9ULFfLdS5H3THPxY97SBvtJrDrhx3", token: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
    payee: "AxjwQw2GwyvsESkERYTMeFXPxeiHSkymdifN7RjSDQMw", amount: "750", nonce: "987654321", deadline: 1893456000,
    ref: "0x4591d180dfb6b869743b60d5fb5fdd97ca78aa883236f07fab0b6bbb243216b7",
  };
  assert.equal(signerOf("ed25519", seed), mandate.payer);
  const s = signMandate({ profile: "ed25519", domain, mandate, key: seed, form: "native" });
  assert.equal(s.signature, "2fCLX8uaysPyYmDcRMa3LZFaWpK3yYdKvVv6Xqhwe3xhfaiuwVDaZVGM32PjizqJaspEjhvTmFdeDFseYHzLBofR");
  assert.equal(s.mandateId, "0xeae409fd3a7d69e2d1272bfcdb5732f7426b0181140ec3c59773ab2874a5d0fa");
  assert.equal(s.envelope.domain.network, domain.network);
});

test("solana-mvp: the §4.3 worked example, MVP envelope only", () => {
  const seed = "0x0625abc24eb009fab119bfb4d4e09804fefaf6bf46af33a549d2c3f52aa86118";
  const mandate = {
    payer: "73LczaJo17YVrSW9ULFfLdS5H3THPxY97SBvtJrDrhx3", token: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
    payee: "AxjwQw2GwyvsESkERYTMeFXPxeiHSkymdifN7RjSDQMw", amount: "750", nonce: "987654321", deadline: 1893456000,
    ref: "api-call-1800000000000",
  };
  const s = signMandate({ profile: "solana-mvp", mandate, key: seed });
  assert.equal(s.signature, "5PWFviByVvQBM1SB113gEB3ADdLPy3xpqCzXVfvbErXVNUtTDwHejBh9zTaabf9U2mfxWyvy7PGnrcaXAtGZAjr4");
  assert.equal(s.mandateId, "0x1c18282135e1b1e13a9d37421f03afaddac2b64d6a4d62db6bbfdbb27541e99b");
  assert.throws(() => signMandate({ profile: "solana-mvp", mandate, key: seed, form: "native" }), code("unsupported_profile"));
});

test("the signer refuses another account's mandate first (signature_invalid)", () => {
  const other = `0x${"11".repeat(32)}`;
  assert.throws(() => signMandate({ profile: "eip712", domain: EVM_DOMAIN, mandate: EVM_MANDATE, key: other }), code("signature_invalid"));
  assert.throws(() => signMandate({ profile: "eip712", domain: EVM_DOMAIN, mandate: { ...EVM_MANDATE, amount: "0" }, key: HARDHAT0 }), code("amount_zero"));
  assert.throws(() => signMandate({ profile: "eip712", domain: EVM_DOMAIN, mandate: { ...EVM_MANDATE, ref: EVM_MANDATE.ref.toUpperCase().replace("0X", "0x") }, key: HARDHAT0 }), code("ref_invalid"));
  assert.throws(() => signMandate({ profile: "eip712", domain: EVM_DOMAIN, mandate: { ...EVM_MANDATE, extra: 1 }, key: HARDHAT0 }), code("unknown_field"));
});

test("request hashes: the worked examples of §10.5, §11.8, §12.6 and the quote hash of §9.2", () => {
  const h = httpRequestHash("post", "https://API.example.com:443/v1/quote?pair=ETH-USD#x", '{"symbol":"ETH"}');
  assert.equal(h.requestHash, "0x862632d18accec74fe0f3930dd482802cb7e390c4a58a3db30788c48ba1059fa");
  assert.equal(mcpRequestHash("get_weather", { location: "New York", units: "metric" }).requestHash, "0x56f5eaa3fbbe921127de927f871d0c26f5036f81aa01d0399f027dd4988ec386");
  const a = a2aRequestHash('{"messageId":"m-1","contextId":"ctx-1","role":"ROLE_USER","parts":[{"text":"Translate to German: good morning"}]}');
  assert.equal(a.requestHash, "0x9efcfa895c5b4d24e2f3297d7f4498ee5c4a71f749303d60b17ed44254dd57e0");
  const q = {
    aep2: 1, kind: "payment-request", profile: "eip712", domain: EVM_DOMAIN, requestId: "order-2026-0001",
    payee: "0xaad167617df02dd30208722c88d9027a2fdd8812", asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", amount: "1000",
    expiry: 1800000300, description: "Market report: EU solar, Q3", settlementProcessor: "0x405B10be927D3BF157196C995d8131c6A097673c", settlementWindow: 300,
  };
  assert.equal(quoteHash(q).quoteHash, "0xce5bef34a9b51df459f0f66c0ea247891fd4a68ab2dbb069c00c589b6aaba1dd");
  assert.throws(() => httpRequestHash("GET", "https://user@example.com/"), code("request_descriptor_invalid"));
});

test("strict JSON: duplicates, lone surrogates, out-of-range numbers and limits are refused", () => {
  assert.throws(() => parseStrict('{"a":1,"\\u0061":2}'), code("json_duplicate_key"));
  assert.throws(() => parseStrict('{"s":"\\ud800"}'), code("json_invalid"));
  assert.throws(() => parseStrict("[1e400]"), code("json_invalid"));
  assert.throws(() => parseStrict("[[[[[[[[[]]]]]]]]]"), code("json_limit_exceeded"));
  assert.equal(jcs(parseStrict('{"b":1.50,"a":1E3,"c":-0}')), '{"a":1000,"b":1.5,"c":0}');
  assert.equal(parseStrict('{"__proto__":1}').__proto__, 1);
});
