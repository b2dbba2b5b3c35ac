// MCP client helpers (spec §12) for @modelcontextprotocol/sdk: the mandate in the tools/call
// request's params._meta["dev.aep2/mandate"], the payment-required result read back, and a paid
// call with safe retry. The SDK is not imported: the helpers work on the objects it sends and
// returns (Client.callTool params and CallToolResult).

import { Aep2Error } from "./errors.js";
import { ENVELOPE_LIMITS, parseStrict } from "./json.js";
import { mcpRequestHash } from "./hash.js";

/** The `_meta` keys of spec §12.1. */
export const MCP_MANDATE = "dev.aep2/mandate";
export const MCP_PAYMENT_RESPONSE = "dev.aep2/payment-response";
export const MCP_REASON = "dev.aep2/reason";

/**
 * A copy of tools/call `params` ({name, arguments, _meta?}) with the envelope object under
 * `_meta["dev.aep2/mandate"]`; other `_meta` keys (progressToken, …) are kept, an `x402/payment`
 * key is removed (two carriers are payment_ambiguous, spec §12.3).
 */
export function withMcpMandate(params, envelope) {
  if (envelope === null || typeof envelope !== "object") throw new Aep2Error("field_type", "the envelope is an object");
  const meta = { ...(params._meta ?? {}) };
  delete meta["x402/payment"];
  meta[MCP_MANDATE] = envelope;
  return { ...params, _meta: meta };
}

/**
 * The x402 PaymentRequired of a payment-required CallToolResult (spec §12.4): from
 * `structuredContent`, else `content[0].text`; undefined for any other result.
 * Returns `{paymentRequired, reason, accepts}`.
 */
export function mcpPaymentRequired(result) {
  if (!result || result.isError !== true) return undefined;
  let pr = result.structuredContent;
  if (!(pr && typeof pr === "object" && Array.isArray(pr.accepts))) {
    const t = result.content?.[0];
    if (t?.type !== "text" || typeof t.text !== "string") return undefined;
    try {
      pr = parseStrict(t.text, { depth: 16, stringBytes: 16384, members: 256, numberChars: 64 });
    } catch {
      return undefined;
    }
    if (!(pr && typeof pr === "object" && Array.isArray(pr.accepts))) return undefined;
  }
  const accepts = pr.accepts.filter((a) => a && a.scheme === "aep2");
  if (accepts.length === 0) return undefined;
  const reason = result._meta?.[MCP_REASON] ?? pr.error;
  return { paymentRequired: pr, reason, accepts };
}

/** The payment response of a served call (spec §12.4), or undefined. */
export function mcpPaymentResponse(result) {
  const r = result?._meta?.[MCP_PAYMENT_RESPONSE] ?? result?._meta?.["x402/payment-response"];
  if (r === undefined) return undefined;
  // Held to the envelope limits, as the header form is.
  return parseStrict(JSON.stringify(r), ENVELOPE_LIMITS);
}

/**
 * Calls a paid tool through an MCP SDK Client (`client.callTool(params, resultSchema?, options?)`).
 *
 * With `requirements` known (Intent Mode, spec §12.2: from an earlier payment-required result or
 * the tool's listing) the first call carries a mandate bound to the call (ref = the tool-call
 * hash of §12.6). Without, the call goes unpaid, and a payment-required result is paid: Order
 * Mode when its entry carries a quote (ref = quote hash), else Intent Mode. A call whose outcome
 * is unknown (the SDK throws: transport error, timeout) is repeated with the SAME params and
 * mandate, up to `attempts` times; no second mandate is signed for it.
 * Returns `{result, paymentResponse, mandateId}`.
 */
export async function callPaidTool(payer, client, params, opts = {}) {
  const { requirements, attempts = 3, options } = opts;
  const { requestHash } = mcpRequestHash(params.name, params.arguments);
  let first = params;
  let signed;
  if (requirements) {
    signed = payer.signFor(requirements, requestHash);
    first = withMcpMandate(params, signed.envelope);
  }
  const call = async (p) => {
    let last;
    for (let i = 0; i < attempts; i++) {
      try {
        return await client.callTool(p, undefined, options);
      } catch (e) {
        last = e;
        if (!p._meta?.[MCP_MANDATE]) throw e; // unpaid: nothing to keep safe, let the caller decide
      }
    }
    throw Object.assign(last, { aep2MandateId: signed?.mandateId, aep2Unfinished: true });
  };
  let result = await call(first);
  if (!signed) {
    const pr = mcpPaymentRequired(result);
    if (pr) {
      signed = payer.signFor(pr.accepts[0], requestHash);
      result = await call(withMcpMandate(params, signed.envelope));
    }
  }
  return { result, paymentResponse: mcpPaymentResponse(result), mandateId: signed?.mandateId };
}
