// Type declarations of @aep2/payer (the package ships plain ESM JavaScript; see README.md).

/** An AEP2 refusal; `code` is a reason code of spec §13. */
export declare class Aep2Error extends Error {
  constructor(code: string, message: string);
  readonly code: string;
}

export type Profile = "eip712" | "ed25519" | "solana-mvp";
export type EnvelopeForm = "mvp" | "native";
export interface Eip712Domain { chainId: number; verifyingContract: string }
export interface Ed25519Domain { network: string; wallet: string }
export type Domain = Eip712Domain | Ed25519Domain;
/** The seven members of a mandate (spec §3.1): `owner` for eip712, `payer` otherwise. */
export interface Mandate {
  owner?: string;
  payer?: string;
  token: string;
  payee: string;
  amount: string;
  nonce: string;
  deadline: number;
  ref: string;
}
export type MvpEnvelope = { mandate: Mandate; payerSig: string; lanes?: SignedLane[] };
export type NativeEnvelope = { aep2: 1; profile: "eip712" | "ed25519"; domain: Domain; mandate: Mandate; signature: string; lanes?: SignedLane[] };

/** A spending lane (spec §18.1): the fourteen members, in definition order. */
export interface Lane {
  owner: string;
  agent: string;
  token: string;
  perPayment: string;
  total: string;
  maxPayments: number;
  period: number;
  allowance: string;
  payees: string[];
  validFrom: number;
  validUntil: number;
  purpose: string;
  parent: string;
  salt: string;
}
/** A lane with its grantor's signature (spec §18.2), as it travels in an envelope's `lanes`. */
export interface SignedLane { lane: Lane; signature: string }
/** What `aep2 lane grant` prints: the leaf's signed lane, its id and domain, and its ancestors, root first. */
export interface LaneFile { id: string; profile: "eip712" | "ed25519"; domain: Domain; lane: Lane; signature: string; parents: SignedLane[] }
/** A verified lane file (loadLaneFile). */
export interface LoadedLane {
  id: string;
  profile: "eip712" | "ed25519";
  domain: Domain;
  /** The chain as it travels, root first. */
  lanes: SignedLane[];
  /** The parsed links, root first. */
  chain: { lane: unknown; signature: string }[];
  ids: string[];
  /** The leaf's agent: who signs under the lane. */
  agent: string;
  /** The owner whose funds are debited. */
  owner: string;
}
export type LaneSource = LaneFile | LoadedLane | SignedLane[] | string;
export declare const MAX_LANE_DEPTH: 3;
export declare const ZERO_ID: string;
export declare function parseLane(profile: Profile, lane: unknown): unknown;
export declare function canonicalLane(parsed: unknown): Lane;
export declare function parseSignedLane(profile: Profile, signed: unknown): { lane: unknown; signature: string };
/** The signing input and id of a lane (spec §18.2). */
export declare function laneSigningBytes(profile: Profile, domain: Domain, lane: Lane | unknown): { bytes: Uint8Array; id: string };
export declare function laneId(profile: Profile, domain: Domain, lane: Lane | unknown): string;
/** The signed bytes and mandate id of a mandate under the lane `leafId` (spec §18.4). */
export declare function laneMandateSigningBytes(profile: Profile, domain: Domain, mandate: Mandate | unknown, leafId: string): { bytes: Uint8Array; mandateId: string };
/** undefined when `lane` is no wider than `parent` (both parsed), else the first wider dimension. */
export declare function laneWiderThan(lane: unknown, parent: unknown): string | undefined;
export declare function verifyLaneChain(profile: Profile, domain: Domain, lanes: SignedLane[]): { ids: string[]; chain: { lane: unknown; signature: string }[] };
/** Reads and verifies a lane file (or a bare chain with `profile` and `domain`). */
export declare function loadLaneFile(source: LaneSource | unknown, opts?: { profile?: Profile; domain?: Domain }): LoadedLane;
export declare function laneFile(profile: Profile, domain: Domain, lanes: SignedLane[]): LaneFile;
/** Signs a whole lane object as its grantor (spec §18.2), refusing what a verifier would reject. */
export declare function signLane(args: { profile: Profile; domain: Domain; lane: Lane; key: string | Uint8Array; parent?: LaneSource }): LaneFile;
/** Grants a lane with the defaults of `aep2 lane grant` and signs it. */
export declare function grantLane(args: {
  profile?: "eip712" | "ed25519";
  domain: Domain;
  key: string | Uint8Array;
  parent?: LaneSource;
  agent: string;
  token: string;
  perPayment: string;
  total: string;
  validUntil: number;
  validFrom?: number;
  payees?: string[];
  maxPayments?: number;
  period?: number;
  allowance?: string;
  purpose?: string;
  salt?: string;
  now?: number;
}): LaneFile;
/** Signs a mandate under a lane chain as the leaf's agent (spec §18.4), with the chain as `lanes`. */
export declare function signLaneMandate(args: {
  profile: "eip712" | "ed25519";
  domain: Domain;
  mandate: Mandate;
  key: string | Uint8Array;
  lanes: LaneSource;
  form?: EnvelopeForm;
}): Signed & { laneId: string; laneIds: string[] };
export type Envelope = MvpEnvelope | NativeEnvelope;

export interface Signed { signature: string; envelope: Envelope; header: string; mandateId: string }
/** Signs a mandate byte-identically to the reference (spec §4, §5). */
export declare function signMandate(args: { profile: Profile; domain?: Domain; mandate: Mandate; key: string | Uint8Array; form?: EnvelopeForm }): Signed;
/** The account (EIP-55 address or base58 key) of a payer key. */
export declare function signerOf(profile: Profile, key: string | Uint8Array): string;
/** base64 of an envelope's compact JSON (the X-Payment-Mandate header). */
export declare function encodeEnvelope(envelope: Envelope): string;
export declare function parseMandate(profile: Profile, mandate: unknown): unknown;
export declare function parseDomain(profile: Profile, domain: unknown): Domain;
export declare function signingBytes(parsed: unknown, domain?: Domain): { bytes: Uint8Array; mandateId: string; structHash?: string };
export declare function domainSeparator(domain: Eip712Domain): Uint8Array;
/** Decodes a header (spec §5.3) to the envelope value. */
export declare function decodeHeader(header: string): unknown;
/**
 * Core verification of an envelope (spec §7), with the deadline when `now` is given, and of one
 * under spending lanes (spec §18.6, with and without `now`).
 */
export declare function verifyEnvelope(
  envelope: unknown,
  profile: Profile,
  domain?: Domain,
  opts?: { now?: number },
): {
  parsed: unknown;
  form: EnvelopeForm;
  mandateId: string;
  digest: string;
  domain?: Domain;
  /** The owner (payer), or under lanes the leaf lane's agent. */
  signer: string;
  lanes?: { ids: string[]; leaf: string; purposes: string[] };
};
/** Signs EIP-712 or Ed25519 signed bytes with a key of `profile`. */
export declare function signBytes(profile: Profile, bytes: Uint8Array, key: string | Uint8Array): string;
export declare const PROFILES: readonly Profile[];

export interface RequestHash { descriptor: string; requestHash: string }
/** Spec §10.5. */
export declare function httpRequestHash(method: string, url: string, body?: Uint8Array | string): RequestHash;
/** Spec §12.6; `args` is the arguments object, its JSON text, or undefined. */
export declare function mcpRequestHash(name: string, args?: Record<string, unknown> | string): RequestHash;
/** Spec §11.8 over a v1.0 or v0.3 message (JSON text or object). */
export declare function a2aRequestHash(message: string | object): { version: "1.0" | "0.3"; role: "user" | "agent"; descriptor?: string; requestHash?: string; error?: Aep2Error };
/** Spec §9.2. */
export declare function quoteHash(quote: unknown): { quote: Record<string, unknown>; quoteHash: string };
export declare function canonicalUrl(url: string): string;

export interface Limits { depth: number; stringBytes: number; members: number; numberChars: number }
export declare const ENVELOPE_LIMITS: Limits;
export declare const MCP_LIMITS: Limits;
export declare function parseStrict(text: string, limits?: Limits): unknown;
export declare function jcs(value: unknown): string;

export declare function toHex(bytes: Uint8Array): string;
export declare function fromHex(text: string, code?: string): Uint8Array;
export declare function toBase64(bytes: Uint8Array): string;
export declare function fromBase64(text: string): Uint8Array;
export declare function toBase58(bytes: Uint8Array): string;
export declare function fromBase58(text: string, code?: string, len?: number, maxChars?: number): Uint8Array;
export declare function toChecksum(addr20: Uint8Array): string;

/** An x402 v2 PaymentRequirements entry of scheme aep2 (spec §10.2). */
export interface Aep2Requirements {
  scheme: string;
  network: string;
  amount: string;
  asset: string;
  payTo: string;
  maxTimeoutSeconds: number;
  extra?: Record<string, unknown>;
}

export interface PayerOptions {
  /** 0x hex: secp256k1 secret (eip712) or Ed25519 seed (ed25519). */
  key: string;
  profile?: "eip712" | "ed25519";
  /** The largest amount signed for one payment, smallest units, decimal string (under a lane: default the chain's smallest perPayment). */
  maxAmount?: string;
  /** Pay under a spending lane: the lane file whose leaf agent `key` is (spec §18). */
  lane?: LaneSource;
  /** The only debit-wallet deployment signed for. */
  domain?: Domain;
  assets?: string[];
  payees?: string[];
  /** The SP whose receipts this payer trusts (EVM address or base58 key). */
  sp?: string;
  form?: EnvelopeForm;
  /** Seconds added to the payee's settlement window for the deadline (default 120). */
  deadlineMargin?: number;
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number; attemptTimeoutMs?: number };
  now?: () => number;
}

type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** The x402 scheme client (structurally @x402/core's SchemeNetworkClient). */
export interface Aep2SchemeClient {
  readonly scheme: "aep2";
  createPaymentPayload(
    x402Version: number,
    requirements: Aep2Requirements,
    context?: { extensions?: Record<string, unknown>; maxAmountPerPayment?: string },
  ): Promise<{ x402Version: number; payload: Record<string, unknown> }>;
}

/** An AEP2 payer: its key and limits, the aep2 scheme, the request-aware transport and safe retry. */
export declare class Aep2Payer {
  constructor(options: PayerOptions);
  readonly profile: "eip712" | "ed25519";
  readonly address: string;
  /** The account debited: the lane's owner under a lane, else `address`. */
  readonly owner: string;
  /** The verified lane file when paying under a lane. */
  readonly lane?: LoadedLane;
  readonly scheme: Aep2SchemeClient;
  readonly networkPattern: string;
  /** The per-call context (a node:async_hooks AsyncLocalStorage). */
  readonly calls: { run<R>(store: { request?: { requestHash: string }; signed?: unknown }, fn: () => R): R; getStore(): unknown };
  /** Registers the scheme with an x402Client and returns it. */
  register<C extends { register(network: any, client: any): unknown }>(client: C): C;
  /** The transport fetch to wrap with wrapFetchWithPayment. */
  fetch(baseFetch?: FetchLike): (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
  /** Runs a payment fetch with a per-call context (so the scheme knows the request). */
  wrap(paymentFetch: FetchLike): FetchLike;
  /** `wrap(wrapFetchWithPayment(fetch(baseFetch), client))`. */
  fetchWithPayment<C>(wrapFetchWithPayment: (fetch: any, client: C) => FetchLike, client: C, baseFetch?: FetchLike): FetchLike;
  /** Intent Mode in one round trip: the mandate, bound to this request, sent with it. */
  pay(input: RequestInfo | URL, init: RequestInit | undefined, requirements: Aep2Requirements, baseFetch?: FetchLike): Promise<Response>;
  /** Presentations whose outcome is unknown, kept to be presented again. */
  readonly unfinished: { mandateId?: string; deadline: number }[];
  /**
   * Checks a served call's payment response against the mandate this payer signed for it and
   * verifies the SP's receipt (spec §6).
   */
  checkPaymentResponse(source: Response | Headers | string | PaymentResponse, opts?: { sp?: string }): { paymentResponse: PaymentResponse; receipt?: ReceiptCheck };
  /** Signs for an entry; `ref` binds Intent Mode (ignored when the entry carries a quote). */
  signFor(requirements: Aep2Requirements, ref?: string): { envelope: Envelope; mandateId: string; deadline: number; ref: string };
}

export declare const SCHEME: "aep2";
export declare const PAYMENT_SIGNATURE: "PAYMENT-SIGNATURE";
export declare const PAYMENT_RESPONSE: "PAYMENT-RESPONSE";
/** The decoded PAYMENT-RESPONSE (spec §10.4) of a Response, Headers or header text. */
export declare function decodePaymentResponse(source: Response | Headers | string): PaymentResponse | undefined;
export interface PaymentResponse {
  success: boolean;
  transaction: string;
  network: string;
  payer: string;
  amount: string;
  extra: { mandateId: string; status: "receipted" | "accepted"; receipt?: Record<string, unknown> };
}

export declare const MCP_MANDATE: "dev.aep2/mandate";
export declare const MCP_PAYMENT_RESPONSE: "dev.aep2/payment-response";
export declare const MCP_REASON: "dev.aep2/reason";
export interface ToolCallParams { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> }
export declare function withMcpMandate<P extends ToolCallParams>(params: P, envelope: Envelope): P;
export declare function mcpPaymentRequired(result: unknown): { paymentRequired: Record<string, unknown>; reason?: string; accepts: Aep2Requirements[] } | undefined;
export declare function mcpPaymentResponse(result: unknown): PaymentResponse | undefined;
export declare function callPaidTool(
  payer: Aep2Payer,
  client: { callTool(params: any, resultSchema?: any, options?: any): Promise<any> },
  params: ToolCallParams,
  opts?: { requirements?: Aep2Requirements; attempts?: number; options?: unknown },
): Promise<{ result: any; paymentResponse?: PaymentResponse; mandateId?: string }>;

export declare const A2A_EXTENSION_URI: "https://aep2.dev/ext/a2a/v1";
export declare const A2A_STATUS: "aep2.dev/status";
export declare const A2A_MANDATE: "aep2.dev/mandate";
export declare const A2A_REQUIREMENTS: "aep2.dev/requirements";
export declare const A2A_RECEIPT: "aep2.dev/receipt";
export declare const A2A_ERROR: "aep2.dev/error";
export declare function a2aWireMessage(message: object): Record<string, unknown>;
export declare function a2aMessageHash(message: object): string;
export declare function withA2aMandate<M extends object>(message: M, envelope: Envelope): M & { metadata: Record<string, unknown>; extensions: string[] };
export declare function payA2aMessage<M extends object>(payer: Aep2Payer, message: M, requirements: Aep2Requirements): { message: M; mandateId: string };
export declare function a2aPaymentRequired(task: unknown): { taskId: string; contextId?: string; requirements: Aep2Requirements[]; quote?: Record<string, unknown> } | undefined;
export declare function payA2aTask<M extends object>(payer: Aep2Payer, task: unknown, reply: M): { message: M & { taskId: string }; mandateId: string };
export declare function a2aPaymentStatus(taskOrMessage: unknown): { status?: string; receipt?: unknown; error?: { code: string; message: string } } | undefined;

export interface ReceiptCheck {
  receiptKind: "mvp-evm" | "mvp-solana" | "native";
  sp: string;
  enqueueDeadline: number;
  checks: string[];
  /** A receipt of a mandate under a lane: the leaf lane and what the SP says remains under it (spec §18.7). */
  lane?: { id: string; remaining: string };
}
/** Verifies an SP receipt (spec §6) for a mandate; checks only what it is given, and lists them. */
export declare function verifyReceipt(
  receipt: unknown,
  expected?: { profile?: Profile; domain?: Domain; mandateId?: string; deadline?: number; sp?: string; laneId?: string },
): ReceiptCheck;
/** The EIP-55 signer of a 65-byte signature over a 32-byte hash, under spec §4.1.2. */
export declare function recoverEvm(signature: string, hash: Uint8Array): string;
