// @aep2/payer: the payer side of AEP2 for agent builders (see README.md).

export { Aep2Error } from "./errors.js";
export { fromHex, toHex, fromBase64, toBase64, fromBase58, toBase58, toChecksum } from "./codec.js";
export { parseStrict, jcs, ENVELOPE_LIMITS, MCP_LIMITS } from "./json.js";
export {
  PROFILES, signMandate, signBytes, signerOf, encodeEnvelope, parseMandate, parseDomain, signingBytes, domainSeparator, decodeHeader, verifyEnvelope,
} from "./mandate.js";
export { httpRequestHash, mcpRequestHash, a2aRequestHash, quoteHash, canonicalUrl } from "./hash.js";
export { Aep2Payer, SCHEME, PAYMENT_SIGNATURE, PAYMENT_RESPONSE, decodePaymentResponse } from "./payer.js";
export { MCP_MANDATE, MCP_PAYMENT_RESPONSE, MCP_REASON, withMcpMandate, mcpPaymentRequired, mcpPaymentResponse, callPaidTool } from "./mcp.js";
export {
  A2A_EXTENSION_URI, A2A_STATUS, A2A_MANDATE, A2A_REQUIREMENTS, A2A_RECEIPT, A2A_ERROR,
  a2aWireMessage, a2aMessageHash, withA2aMandate, payA2aMessage, a2aPaymentRequired, payA2aTask, a2aPaymentStatus,
} from "./a2a.js";
export { verifyReceipt, recoverEvm } from "./receipt.js";
export {
  MAX_LANE_DEPTH, ZERO_ID, parseLane, canonicalLane, parseSignedLane, laneSigningBytes, laneId, laneMandateSigningBytes, laneWiderThan,
  verifyLaneChain, loadLaneFile, laneFile, signLane, grantLane, signLaneMandate,
} from "./lane.js";
