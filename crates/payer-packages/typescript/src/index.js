// @aep2/payer: the payer side of AEP2 for agent builders (see README.md).

export { Aep2Error } from "./errors.js";
export { fromHex, toHex, fromBase64, toBase64, fromBase58, toBase58, toChecksum } from "./codec.js";
export { parseStrict, jcs, ENVELOPE_LIMITS, MCP_LIMITS } from "./json.js";
export { PROFILES, signMandate, signerOf, encodeEnvelope, parseMandate, parseDomain, signingBytes, domainSeparator } from "./mandate.js";
export { httpRequestHash, mcpRequestHash, a2aRequestHash, quoteHash, canonicalUrl } from "./hash.js";
export { Aep2Payer, SCHEME, PAYMENT_SIGNATURE, PAYMENT_RESPONSE, decodePaymentResponse } from "./payer.js";
