// The payer: an `aep2` scheme for the official x402 client (@x402/core x402Client, used by
// @x402/fetch wrapFetchWithPayment), request binding through a transport fetch that sees the
// request, and safe retry (spec §8.6): an unknown outcome is answered by presenting the same
// mandate again, never by signing a second one for the same request.

import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import { Aep2Error } from "./errors.js";
import { fromBase64, parseAddress, toBase64, toHex, utf8 } from "./codec.js";
import { ENVELOPE_LIMITS, parseStrict } from "./json.js";
import { httpRequestHash, quoteHash } from "./hash.js";
import { parseDomain, signMandate, signerOf } from "./mandate.js";
import { verifyReceipt } from "./receipt.js";
import { loadLaneFile, signLaneMandate } from "./lane.js";

/** The x402 scheme id of AEP2 (spec §10). */
export const SCHEME = "aep2";
/** Header names (spec §10.1, §10.4). */
export const PAYMENT_SIGNATURE = "PAYMENT-SIGNATURE";
export const PAYMENT_RESPONSE = "PAYMENT-RESPONSE";

const MAX_PENDING = 1024;
const MAX_SIGNED = 4096;
const MAX_BODY = 16 * 1024 * 1024;
const RETAIN_AFTER_DEADLINE = 86_400;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function networkOf(profile, domain) {
  if (profile === "eip712") return `eip155:${domain.chainId}`;
  if (profile === "ed25519") return domain.network;
  return "aep2:solana-mvp";
}

function sameDomain(profile, a, b) {
  if (profile === "eip712") {
    return a.chainId === b.chainId && toHex(parseAddress(a.verifyingContract)) === toHex(parseAddress(b.verifyingContract));
  }
  return a.network === b.network && a.wallet === b.wallet;
}

function sameAccount(profile, a, b) {
  if (profile === "eip712") return toHex(parseAddress(a)) === toHex(parseAddress(b));
  return a === b;
}

function randomNonce(profile) {
  // 128 random bits fit uint256; the Ed25519 profiles take u64 nonces (spec §3.1).
  const b = randomBytes(16);
  const n = BigInt(`0x${b.toString("hex")}`);
  return (profile === "eip712" ? n : n & ((1n << 63n) - 1n)).toString();
}

/**
 * Decodes a PAYMENT-RESPONSE header value (spec §10.4) under the envelope limits; accepts a
 * fetch Response, a Headers object or the header text. Returns undefined when absent.
 */
export function decodePaymentResponse(source) {
  const text =
    typeof source === "string" ? source : (source?.headers ?? source)?.get?.(PAYMENT_RESPONSE) ?? undefined;
  if (text === undefined || text === null) return undefined;
  if (text.length > 8192) throw new Aep2Error("header_too_large", "PAYMENT-RESPONSE above 8192 bytes");
  return parseStrict(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64(text)), ENVELOPE_LIMITS);
}

/**
 * An AEP2 payer: one key, its limits, and the state that keeps retries safe.
 *
 * Options: `key` (0x hex: secp256k1 secret for eip712, Ed25519 seed otherwise), `profile`
 * (default eip712), `maxAmount` (required: the largest amount it signs, smallest units),
 * `domain` (optional: the only debit-wallet deployment it signs for), `assets` and `payees`
 * (optional allow-lists), `sp` (optional: the SP whose receipts it trusts), `lane` (optional: a
 * lane file of `aep2 lane grant` or grantLane, text or object, whose leaf agent `key` is: every
 * mandate is then signed under that lane for its owner, maxAmount defaults to the chain's
 * smallest perPayment and the domain is the lane's), `form` (`native` default, or `mvp`), `deadlineMargin` (seconds beyond
 * the payee's settlement window, default 120), `retry` ({attempts: 4, baseDelayMs: 250,
 * maxDelayMs: 5000, attemptTimeoutMs: 30000}), `now` (unix seconds clock, for tests).
 */
export class Aep2Payer {
  // Private, so that logging or serialising a payer never shows its key.
  #key;

  constructor(opts) {
    const o = opts ?? {};
    // Under a spending lane (spec §18) the payer is the leaf lane's agent: the lane fixes the
    // profile, the deployment, the owner whose funds are debited, the asset and the payees.
    const lane = o.lane === undefined ? undefined : loadLaneFile(o.lane, { profile: o.profile });
    this.profile = o.profile ?? lane?.profile ?? "eip712";
    if (!["eip712", "ed25519", "solana-mvp"].includes(this.profile)) throw new Aep2Error("unsupported_profile", this.profile);
    if (this.profile === "solana-mvp") {
      throw new Aep2Error("unsupported_profile", "solana-mvp cannot carry a request hash; the payer signs eip712 or ed25519");
    }
    const laneCap = lane && lane.chain.reduce((m, l) => (l.lane.perPayment < m ? l.lane.perPayment : m), lane.chain[0].lane.perPayment);
    const maxAmount = o.maxAmount ?? laneCap?.toString();
    if (typeof maxAmount !== "string" || !/^[1-9][0-9]*$/.test(maxAmount)) {
      throw new Aep2Error("uint_invalid", "maxAmount is required: a canonical decimal string in the asset's smallest unit");
    }
    this.maxAmount = BigInt(maxAmount);
    this.address = signerOf(this.profile, o.key);
    this.#key = o.key;
    this.domain = o.domain === undefined ? undefined : parseDomain(this.profile, o.domain);
    if (lane) {
      if (this.address !== lane.agent) throw new Aep2Error("signature_invalid", `the key is not the lane's agent's (${lane.agent})`);
      if (this.domain && !sameDomain(this.profile, this.domain, lane.domain)) {
        throw new Aep2Error("domain_mismatch", "the lane is granted under another debit-wallet deployment");
      }
      this.domain = lane.domain;
    }
    /** The loaded lane file when this payer pays under a spending lane: `{id, owner, agent, lanes, …}`. */
    this.lane = lane;
    /** The account debited: the lane's owner under a lane, else the key's own. */
    this.owner = lane ? lane.owner : this.address;
    this.assets = o.assets;
    this.sp = o.sp;
    /** The mandates this payer signed, by id (bounded): what its receipts are checked against. */
    this.signed = new Map();
    this.payees = o.payees;
    this.form = o.form ?? "native";
    this.deadlineMargin = o.deadlineMargin ?? 120;
    this.retry = { attempts: 4, baseDelayMs: 250, maxDelayMs: 5000, attemptTimeoutMs: 30_000, ...(o.retry ?? {}) };
    this.now = o.now ?? (() => Math.floor(Date.now() / 1000));
    /**
     * Presentations not known to be finished, oldest first: `{requestHash, header, mandateId,
     * deadline, inFlight}`. One in flight is not re-presented by another call (two concurrent
     * calls for the same resource are two purchases); one whose outcome stayed unknown is.
     */
    this.pending = new Set();
    this.calls = new AsyncLocalStorage();
    const payer = this;
    /** The x402 SchemeNetworkClient (register it with x402Client.register). */
    this.scheme = {
      scheme: SCHEME,
      async createPaymentPayload(x402Version, requirements, context) {
        return payer.#createPaymentPayload(x402Version, requirements, context);
      },
    };
  }

  /** The network pattern this payer registers: eip155:* for eip712, the domain's or any network for ed25519. */
  get networkPattern() {
    if (this.profile === "eip712") return this.domain ? `eip155:${this.domain.chainId}` : "eip155:*";
    return this.domain ? this.domain.network : "*";
  }

  /** Registers the aep2 scheme with an x402Client (x402 v2) and returns the client. */
  register(client) {
    client.register(this.networkPattern, this.scheme);
    return client;
  }

  /**
   * The transport fetch to give wrapFetchWithPayment: it records the request being paid (so the
   * scheme can bind the mandate to it), presents an unfinished mandate again for the same
   * request, and retries a paid attempt whose outcome is unknown with the same mandate.
   */
  fetch(baseFetch = globalThis.fetch) {
    return (input, init) => this.#transport(baseFetch, input, init);
  }

  /** Runs a payment fetch (wrapFetchWithPayment's result) with a per-call context. */
  wrap(paymentFetch) {
    return (input, init) => this.calls.run({ request: undefined, signed: undefined }, () => paymentFetch(input, init));
  }

  /** wrap(wrapFetchWithPayment(fetch(baseFetch), client)): the one call an agent needs. */
  fetchWithPayment(wrapFetchWithPayment, client, baseFetch = globalThis.fetch) {
    return this.wrap(wrapFetchWithPayment(this.fetch(baseFetch), client));
  }

  /**
   * Intent Mode in one round trip (spec §10): the payer already knows the terms (`requirements`,
   * an x402 entry of scheme aep2 from an earlier 402, a catalogue or an AgentCard) and sends the
   * mandate, bound to this request, with the request itself. Same safe retry as the x402 path: a
   * request whose earlier mandate's outcome is unknown presents that mandate instead.
   */
  async pay(input, init, requirements, baseFetch = globalThis.fetch) {
    const req = new Request(input, init);
    const body = req.body ? new Uint8Array(await req.clone().arrayBuffer()) : new Uint8Array(0);
    const { requestHash } = httpRequestHash(req.method, req.url, body);
    const plain = { method: req.method, headers: req.headers, body: body.length ? body : undefined, signal: req.signal };
    if (this.#unfinishedFor(requestHash)) return this.#transport(baseFetch, req.url, plain);
    const signed = this.signFor(requirements, requestHash);
    const payload = { x402Version: 2, resource: { url: req.url }, accepted: requirements, payload: signed.envelope };
    const headers = new Headers(req.headers);
    headers.set(PAYMENT_SIGNATURE, toBase64(utf8(JSON.stringify(payload))));
    return this.calls.run({ request: { requestHash }, signed }, () => this.#transport(baseFetch, req.url, { ...plain, headers }));
  }

  /** Unfinished presentations (outcome unknown) kept for retry. */
  get unfinished() {
    return [...this.pending].filter((p) => !p.inFlight).map((p) => ({ mandateId: p.mandateId, deadline: p.deadline }));
  }

  /**
   * Signs a mandate for terms (x402 PaymentRequirements of scheme aep2) and a binding `ref`
   * (request hash in Intent Mode, or undefined for Order Mode, where the quote decides).
   * Returns `{envelope, mandateId, deadline, ref}`. Used by the x402 scheme and the MCP/A2A helpers.
   */
  signFor(requirements, ref) {
    const r = requirements;
    if (!r || r.scheme !== SCHEME) throw new Aep2Error("x402_scheme_unsupported", `scheme ${r?.scheme}`);
    const extra = r.extra ?? {};
    const domain = parseDomain(this.profile, extra.domain);
    if (this.domain && !sameDomain(this.profile, domain, this.domain)) {
      throw new Aep2Error("domain_mismatch", "the payee asks for another debit-wallet deployment than this payer's");
    }
    if (r.network !== networkOf(this.profile, domain)) throw new Aep2Error("x402_network_mismatch", `network ${r.network}`);
    if (typeof r.amount !== "string" || !/^[1-9][0-9]*$/.test(r.amount)) throw new Aep2Error("uint_invalid", "requirements amount");
    const amount = BigInt(r.amount);
    if (amount > this.maxAmount) {
      throw new Aep2Error("amount_not_exact", `price ${r.amount} above this payer's maxAmount ${this.maxAmount}`);
    }
    if (this.assets && !this.assets.some((a) => sameAccount(this.profile, a, r.asset))) {
      throw new Aep2Error("asset_mismatch", `asset ${r.asset} not in this payer's assets`);
    }
    if (this.payees && !this.payees.some((a) => sameAccount(this.profile, a, r.payTo))) {
      throw new Aep2Error("payee_mismatch", `payee ${r.payTo} not in this payer's payees`);
    }
    const now = this.now();
    let window = Number.isSafeInteger(extra.settlementWindow) ? extra.settlementWindow : 0;
    let bound = ref;
    if (extra.quote !== undefined) {
      // Order Mode (spec §9.3): the quote's terms must be the entry's, and ref is the quote hash.
      const { quote, quoteHash: qh } = quoteHash(extra.quote);
      if (quote.profile !== this.profile) throw new Aep2Error("profile_mismatch", `quote for ${quote.profile}`);
      if (!sameDomain(this.profile, quote.domain, domain)) throw new Aep2Error("domain_mismatch", "quote domain is not the entry's");
      if (!sameAccount(this.profile, quote.payee, r.payTo)) throw new Aep2Error("payee_mismatch", "quote payee is not payTo");
      if (!sameAccount(this.profile, quote.asset, r.asset)) throw new Aep2Error("asset_mismatch", "quote asset is not the entry's");
      if (quote.amount !== r.amount) throw new Aep2Error("amount_not_exact", "quote amount is not the entry's");
      if (now > quote.expiry) throw new Aep2Error("quote_expired", `quote expired at ${quote.expiry}`);
      window = Math.max(window, quote.settlementWindow);
      bound = qh;
    }
    if (bound === undefined) {
      throw new Aep2Error(
        "request_descriptor_invalid",
        "no request to bind the mandate to: call through payer.fetchWithPayment (or pass the request hash)",
      );
    }
    const deadline = now + window + this.deadlineMargin;
    const mandate = {
      [this.profile === "eip712" ? "owner" : "payer"]: this.owner,
      token: r.asset,
      payee: r.payTo,
      amount: r.amount,
      nonce: randomNonce(this.profile),
      deadline,
      ref: bound,
    };
    const s = this.lane
      ? signLaneMandate({ profile: this.profile, domain, mandate, key: this.#key, form: this.form, lanes: this.lane })
      : signMandate({ profile: this.profile, domain, mandate, key: this.#key, form: this.form });
    this.signed.set(s.mandateId, { domain, deadline, amount: r.amount, sp: extra.quote?.settlementProcessor, laneId: s.laneId });
    if (this.signed.size > MAX_SIGNED) this.signed.delete(this.signed.keys().next().value);
    return { envelope: s.envelope, mandateId: s.mandateId, deadline, ref: bound };
  }

  /**
   * Checks a served call's payment response (a fetch Response with PAYMENT-RESPONSE, or the decoded
   * object, e.g. MCP's `dev.aep2/payment-response`) against the mandate this payer signed for it,
   * and verifies the SP's receipt (spec §6): signature, the SP (`sp` given here, the payer's `sp`
   * option, or the quote's settlementProcessor), domain, mandate digest and the deadline rule.
   * Returns `{paymentResponse, receipt}`; throws Aep2Error otherwise.
   */
  checkPaymentResponse(source, { sp } = {}) {
    const pr = source && typeof source === "object" && "success" in source ? source : decodePaymentResponse(source);
    if (!pr) throw new Aep2Error("payment_missing", "no payment response");
    if (pr.success !== true) throw new Aep2Error("field_type", "payment response without success");
    const mine = this.signed.get(pr.extra?.mandateId);
    if (!mine) throw new Aep2Error("mandate_unknown", `mandate ${pr.extra?.mandateId} was not signed by this payer`);
    if (pr.payer !== this.address) throw new Aep2Error("signature_invalid", `payment response names payer ${pr.payer}`);
    if (pr.amount !== mine.amount) throw new Aep2Error("amount_not_exact", `payment response amount ${pr.amount}, mandate ${mine.amount}`);
    if (pr.extra.status !== "receipted") return { paymentResponse: pr, receipt: undefined };
    const receipt = verifyReceipt(pr.extra.receipt, {
      profile: this.profile,
      domain: mine.domain,
      mandateId: pr.extra.mandateId,
      deadline: mine.deadline,
      sp: sp ?? this.sp ?? mine.sp,
      laneId: mine.laneId,
    });
    return { paymentResponse: pr, receipt };
  }

  async #createPaymentPayload(x402Version, requirements, context) {
    if (x402Version !== 2) throw new Aep2Error("x402_version_unsupported", "the aep2 scheme pays over x402 v2");
    const cap = context?.maxAmountPerPayment;
    if (cap !== undefined && BigInt(requirements.amount) > BigInt(cap)) {
      throw new Aep2Error("amount_not_exact", `price ${requirements.amount} above the x402 client's cap ${cap}`);
    }
    const call = this.calls.getStore();
    const ref = call?.request?.requestHash;
    const signed = this.signFor(requirements, ref);
    if (call) call.signed = signed;
    return { x402Version: 2, payload: signed.envelope };
  }

  #remember(entry) {
    this.pending.delete(entry);
    this.pending.add(entry);
    const now = this.now();
    for (const v of this.pending) {
      if (this.pending.size <= MAX_PENDING && v.deadline + RETAIN_AFTER_DEADLINE >= now) break;
      this.pending.delete(v);
    }
  }

  #unfinishedFor(requestHash) {
    for (const e of this.pending) if (e.requestHash === requestHash && !e.inFlight) return e;
    return undefined;
  }

  async #transport(baseFetch, input, init) {
    const req = new Request(input, init);
    const body = req.body ? new Uint8Array(await req.clone().arrayBuffer()) : new Uint8Array(0);
    if (body.length > MAX_BODY) throw new Aep2Error("request_descriptor_invalid", "request body above 16 MiB: too large to hash and hold for a retry");
    const { requestHash } = httpRequestHash(req.method, req.url, body);
    const call = this.calls.getStore();
    const paid = req.headers.has(PAYMENT_SIGNATURE) || req.headers.has("X-PAYMENT");
    if (!paid) {
      if (call) call.request = { requestHash };
      const open = this.#unfinishedFor(requestHash);
      if (!open) return baseFetch(req);
      // The same request with a mandate whose outcome was never learnt: present it again.
      const res = await this.#send(baseFetch, req, body, open.header, open);
      if (res.status === 402 || (res.status >= 400 && res.status < 500 && res.status !== 408)) {
        const reason = await reasonOf(res);
        throw Object.assign(
          new Aep2Error(
            reason ?? "mandate_replayed",
            `the payee refused mandate ${open.mandateId} presented again after an unknown outcome; not paying a second time ` +
              "(the SP's GET /v1/mandates/{id} shows whether it was charged)",
          ),
          { mandateId: open.mandateId, status: res.status },
        );
      }
      return res;
    }
    const header = req.headers.get(PAYMENT_SIGNATURE) ?? req.headers.get("X-PAYMENT");
    const name = req.headers.has(PAYMENT_SIGNATURE) ? PAYMENT_SIGNATURE : "X-PAYMENT";
    const signed = call?.signed;
    const entry = { requestHash, header: [name, header], mandateId: signed?.mandateId, deadline: signed?.deadline ?? this.now() + 3600 };
    return this.#send(baseFetch, req, body, entry.header, entry);
  }

  async #send(baseFetch, req, body, [name, value], entry) {
    // Recorded before the first byte leaves: from here on the outcome may be unknown.
    entry.inFlight = true;
    this.#remember(entry);
    try {
      return await this.#attempts(baseFetch, req, body, name, value, entry);
    } finally {
      entry.inFlight = false;
    }
  }

  async #attempts(baseFetch, req, body, name, value, entry) {
    const { attempts, baseDelayMs, maxDelayMs, attemptTimeoutMs } = this.retry;
    let lastError;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const headers = new Headers(req.headers);
      headers.delete(PAYMENT_SIGNATURE);
      headers.delete("X-PAYMENT");
      headers.set(name, value);
      const signals = [AbortSignal.timeout(attemptTimeoutMs)];
      if (req.signal) signals.push(req.signal);
      const attemptReq = new Request(req.url, {
        method: req.method,
        headers,
        body: body.length ? body : undefined,
        redirect: req.redirect,
        signal: AbortSignal.any(signals),
      });
      let res;
      try {
        res = await baseFetch(attemptReq);
      } catch (e) {
        if (req.signal?.aborted) throw e;
        lastError = e;
        if (attempt < attempts) await sleep(Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
        continue;
      }
      if (res.status >= 500 || res.status === 408) {
        if (attempt === attempts) return res; // still unknown: the entry stays for a later call
        // Retry-After in seconds (spec §8.6: payment_in_progress), bounded like the back-off.
        const raText = res.headers.get("retry-after");
        const ra = raText !== null && /^[0-9]{1,6}$/.test(raText.trim()) ? Number(raText.trim()) : NaN;
        const delay = Number.isFinite(ra) ? ra * 1000 : baseDelayMs * 2 ** (attempt - 1);
        await res.arrayBuffer().catch(() => {});
        await sleep(Math.min(maxDelayMs, delay));
        continue;
      }
      // A definitive answer: served (2xx) or refused (4xx); the mandate is finished either way.
      this.pending.delete(entry);
      return res;
    }
    // Still unknown: the entry stays, and the next call for this request presents the same mandate.
    throw Object.assign(lastError, { aep2MandateId: entry.mandateId, aep2Unfinished: true });
  }
}

async function reasonOf(res) {
  try {
    const j = JSON.parse(await res.text());
    return typeof j?.reason === "string" ? j.reason : undefined;
  } catch {
    return undefined;
  }
}

