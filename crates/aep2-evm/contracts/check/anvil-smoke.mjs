#!/usr/bin/env node
// Development check of the committed artifacts on a real node: starts anvil (the pinned npm
// package) on 127.0.0.1 at a free port with chain id 84532, deploys TestToken and AEP2DebitWallet
// with ethers v6, and checks deposits, batch settlement with good and bad items (events, balances,
// one transfer per payee), digests against ethers' TypedDataEncoder, the spec §4.1.1 / §8.5 worked
// examples, the peer-signed fixtures (at their own chain id and verifyingContract), the withdrawal
// rule, and measures gas per settled mandate for batches of 1, 10 and 100 against one mandate per
// transaction. Stops anvil at the end. Exit code 0 = every check passed.
//
//   node check/anvil-smoke.mjs [--json]
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { ethers } from "ethers";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const require = createRequire(import.meta.url);
const artifact = (name) => JSON.parse(readFileSync(join(root, "artifacts", `${name}.json`), "utf8"));
const WALLET = artifact("AEP2DebitWallet");
const TOKEN = artifact("TestToken");
// The peer-signed fixtures live outside the repository (../shared next to the checkout); point
// AEP2_PEER_FIXTURES at peer-signed.json to use another copy. Without them that part is skipped.
const FIXTURES_PATH = process.env.AEP2_PEER_FIXTURES ?? join(root, "..", "..", "..", "..", "shared", "fixtures", "peer-signed", "peer-signed.json");
const FIXTURES = existsSync(FIXTURES_PATH) ? JSON.parse(readFileSync(FIXTURES_PATH, "utf8")) : null;

const CHAIN_ID = 84532; // the peer fixtures' chain (Base Sepolia), so their domain can be reproduced
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;
// SkipReason, in the contract's enum order
const REASONS = ["None", "AmountZero", "DeadlineOutOfRange", "SignatureLength", "SignatureVInvalid", "SignatureHighS",
  "SignatureScalarOutOfRange", "SignatureUnrecoverable", "SignatureInvalid", "Expired", "NonceUsed", "InsufficientFunds"];
const R = Object.fromEntries(REASONS.map((k, i) => [k, i]));
const REASON_NAME = Object.fromEntries(Object.entries(R).map(([k, v]) => [v, k]));

// ---------------------------------------------------------------- tiny test harness
let passed = 0;
const failures = [];
function check(cond, what) {
  if (cond) passed++;
  else {
    failures.push(what);
    console.error(`FAIL ${what}`);
  }
}
function eq(actual, expected, what) {
  const ok = String(actual) === String(expected);
  check(ok, ok ? what : `${what}: got ${actual}, expected ${expected}`);
}

// ---------------------------------------------------------------- anvil
function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}
function anvilBinary() {
  const os = { linux: "linux", darwin: "darwin", win32: "win32" }[process.platform];
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch];
  const exe = process.platform === "win32" ? "anvil.exe" : "anvil";
  return require.resolve(`@foundry-rs/anvil-${os}-${arch}/bin/${exe}`);
}
async function startAnvil() {
  const port = await freePort();
  const bin = anvilBinary();
  const child = spawn(bin, ["--host", "127.0.0.1", "--port", String(port), "--chain-id", String(CHAIN_ID), "--silent"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "web3_clientVersion", params: [] }) });
      const j = await r.json();
      return { child, url, version: j.result };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill();
  throw new Error("anvil did not start");
}

// ---------------------------------------------------------------- main
const { child, url, version } = await startAnvil();
const provider = new ethers.JsonRpcProvider(url, CHAIN_ID, { staticNetwork: true, batchMaxCount: 1, cacheTimeout: -1 });
provider.pollingInterval = 50;
const rpc = (method, params = []) => provider.send(method, params);
// anvil automines: a receipt exists as soon as the transaction is accepted (ethers' wait() polls slowly)
async function mined(txPromise) {
  const tx = await txPromise;
  for (;;) {
    const rc = await provider.getTransactionReceipt(tx.hash);
    if (rc) {
      if (rc.status !== 1) throw new Error(`transaction ${tx.hash} reverted`);
      return rc;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
async function deployed(factory, ...args) {
  const c = await factory.deploy(...args);
  await mined(c.deploymentTransaction());
  return c;
}
const section = (name) => console.log(`-- ${name}`);
const results = { anvil: version, chainId: CHAIN_ID };
try {
  await run();
} catch (e) {
  const msg = e.shortMessage ?? e.message ?? String(e);
  failures.push(`exception: ${msg}`);
  console.error(`exception: ${msg}\n${(e.stack ?? "").split("\n").slice(1, 6).join("\n")}`);
} finally {
  await new Promise((res) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => { clearTimeout(force); res(); });
    child.kill("SIGTERM");
  });
}
if (process.argv.includes("--json")) console.log(JSON.stringify({ passed, failures, ...results }, null, 2));
console.log(`${passed} checks passed, ${failures.length} failed`);
process.exit(failures.length ? 1 : 0);

async function run() {
  // anvil's well-known dev keys (mnemonic "test test ... junk"): #0 deploys/administers, #1 is the SP.
  const mnemonic = ethers.Mnemonic.fromPhrase("test test test test test test test test test test test junk");
  const dev = (i) => ethers.HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${i}`).connect(provider);
  const admin = dev(0);
  const sp = dev(1);
  const stranger = dev(2);

  const tokenF = new ethers.ContractFactory(TOKEN.abi, TOKEN.bytecode, admin);
  const walletF = new ethers.ContractFactory(WALLET.abi, WALLET.bytecode, admin);
  const token = await deployed(tokenF, "AEP2 Test USD", "tUSD", 6);
  const token2 = await deployed(tokenF, "AEP2 Test EUR", "tEUR", 6);
  const DELAY = 3600;
  // the constructor bound
  let reverted = false;
  try {
    await walletF.deploy(admin.address, 3599);
  } catch (e) {
    reverted = /WithdrawalDelayTooShort|revert/i.test(String(e.shortMessage ?? e.message));
  }
  check(reverted, "constructor rejects withdrawalDelay < MIN_WITHDRAWAL_DELAY");
  const wallet = await deployed(walletF, admin.address, DELAY);
  const walletAddr = await wallet.getAddress();
  const tokenAddr = await token.getAddress();
  const token2Addr = await token2.getAddress();
  await mined(wallet.setSettlementProcessor(sp.address, true));
  const walletSP = wallet.connect(sp);

  section("deploy, domain, constants");
  eq(await wallet.MANDATE_TYPEHASH(), "0x424644645718e4947e6272163756951857080a3d9ce5b05ceffa90a17603ff85", "MANDATE_TYPEHASH is the spec's");
  const domain = { name: "AEP2DebitWallet", version: "1", chainId: CHAIN_ID, verifyingContract: walletAddr };
  const types = {
    Mandate: [
      { name: "owner", type: "address" }, { name: "token", type: "address" }, { name: "payee", type: "address" },
      { name: "amount", type: "uint256" }, { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" },
      { name: "ref", type: "bytes32" },
    ],
  };
  eq(ethers.TypedDataEncoder.from(types).encodeType("Mandate"), "Mandate(address owner,address token,address payee,uint256 amount,uint256 nonce,uint256 deadline,bytes32 ref)", "ethers type string");
  eq(await wallet.domainSeparator(), ethers.TypedDataEncoder.hashDomain(domain), "domainSeparator equals ethers hashDomain");
  eq(await wallet.withdrawalDelay(), DELAY, "withdrawalDelay");

  // ---- payers
  const ETH = "0x" + (10n ** 21n).toString(16);
  const fund = async (addr) => rpc("anvil_setBalance", [addr, ETH]);
  const payer = ethers.Wallet.createRandom().connect(provider);
  const payer2 = ethers.Wallet.createRandom().connect(provider);
  const poor = ethers.Wallet.createRandom().connect(provider);
  for (const p of [payer, payer2, poor]) await fund(p.address);
  const payeeA = ethers.Wallet.createRandom().address;
  const payeeB = ethers.Wallet.createRandom().address;

  async function depositFor(p, tok, amount) {
    await mined(tok.connect(admin).mint(p.address, amount));
    await mined(tok.connect(p).approve(walletAddr, amount));
    return mined(wallet.connect(p).deposit(await tok.getAddress(), amount));
  }
  const dep = await depositFor(payer, token, 1_000_000n);
  const depEv = dep.logs.map((l) => safeParse(l)).find((e) => e?.name === "Deposited");
  check(depEv && depEv.args.owner === payer.address && depEv.args.amount === 1_000_000n, "Deposited event");
  await depositFor(payer2, token, 50_000n);
  await depositFor(poor, token, 10n);
  await depositFor(payer, token2, 7_000n);
  eq(await wallet.balanceOf(payer.address, tokenAddr), 1_000_000n, "balanceOf after deposit");

  const now = Number((await provider.getBlock("latest")).timestamp);
  let nonceSeq = 1000n;
  const ref = (s) => ethers.keccak256(ethers.toUtf8Bytes(s));
  const mk = (signer, o = {}) => ({
    owner: signer.address, token: tokenAddr, payee: payeeA, amount: 100n, nonce: nonceSeq++,
    deadline: BigInt(now + 3600), ref: ref("order-" + nonceSeq), ...o,
  });
  const sign = (signer, m, d = domain) => signer.signTypedData(d, types, m);
  const item = (m, signature) => ({ mandate: m, signature });
  const hex = (b) => ethers.hexlify(b);
  const split = (sig) => ethers.getBytes(sig);
  const withV = (sig, v) => { const b = split(sig); b[64] = v; return hex(b); };
  const rsv = (r, s, v) => ethers.concat([ethers.toBeHex(r, 32), ethers.toBeHex(s, 32), new Uint8Array([v])]);

  // r with no curve point (x^3 + 7 not a square mod p): makes ecrecover fail at rule 5
  const modpow = (b, e, m) => { let r = 1n; b %= m; while (e > 0n) { if (e & 1n) r = (r * b) % m; b = (b * b) % m; e >>= 1n; } return r; };
  let rNoPoint = 1n;
  while (modpow((rNoPoint ** 3n + 7n) % P, (P - 1n) / 2n, P) === 1n) rNoPoint++;

  section("a mixed batch of valid and bad items");
  const good1 = mk(payer, { amount: 1000n });
  const good2 = mk(payer, { amount: 2500n, payee: payeeA }); // same (token, payee): aggregated
  const good3 = mk(payer2, { amount: 700n, payee: payeeB });
  const good4 = mk(payer, { amount: 300n, token: token2Addr, payee: payeeA }); // other token, same payee
  const s1 = await sign(payer, good1), s2 = await sign(payer, good2), s3 = await sign(payer2, good3), s4 = await sign(payer, good4);
  const base = mk(payer, { amount: 11n });
  const sBase = await sign(payer, base);
  const bad = [];
  const addBad = async (label, m, sig, reason) => bad.push({ label, m, sig, reason });
  const bs = split(sBase);
  const sVal = BigInt(hex(bs.slice(32, 64)));
  const rVal = BigInt(hex(bs.slice(0, 32)));
  const vVal = bs[64];
  await addBad("high-s twin (n - s, v flipped)", base, rsv(rVal, N - sVal, vVal === 27 ? 28 : 27), R.SignatureHighS);
  await addBad("s >= n", base, rsv(rVal, N + 1n, vVal), R.SignatureHighS);
  await addBad("v = 0/1 (same signature, v - 27)", base, withV(sBase, vVal - 27), R.SignatureVInvalid);
  await addBad("v = 29", base, withV(sBase, 29), R.SignatureVInvalid);
  await addBad("64-byte EIP-2098 compact", base, ethers.Signature.from(sBase).compactSerialized, R.SignatureLength);
  await addBad("66 bytes (65 + 0x00)", base, ethers.concat([sBase, "0x00"]), R.SignatureLength);
  await addBad("empty signature", base, "0x", R.SignatureLength);
  await addBad("r = 0", base, rsv(0n, sVal, vVal), R.SignatureScalarOutOfRange);
  await addBad("r = n", base, rsv(N, sVal, vVal), R.SignatureScalarOutOfRange);
  await addBad("s = 0", base, rsv(rVal, 0n, vVal), R.SignatureScalarOutOfRange);
  await addBad("r not the x of a curve point", base, rsv(rNoPoint, sVal, vVal), R.SignatureUnrecoverable);
  await addBad("flipped v (recovers another key)", base, withV(sBase, vVal === 27 ? 28 : 27), R.SignatureInvalid);
  await addBad("wrong signer", mk(payer, { amount: 5n }), await sign(payer2, mk(payer, { amount: 5n, nonce: nonceSeq - 1n })), R.SignatureInvalid);
  { const m = mk(payer, { amount: 6n }); const sig = await sign(payer, m); await addBad("tampered amount", { ...m, amount: 7n }, sig, R.SignatureInvalid); }
  { const m = mk(payer, { amount: 6n }); const sig = await sign(payer, m, { ...domain, chainId: 8453 }); await addBad("signed for another chain", m, sig, R.SignatureInvalid); }
  { const m = mk(payer, { amount: 6n }); const sig = await sign(payer, m, { ...domain, verifyingContract: tokenAddr }); await addBad("signed for another contract", m, sig, R.SignatureInvalid); }
  { const m = mk(payer, { amount: 0n }); await addBad("zero amount (signed)", m, await sign(payer, m), R.AmountZero); }
  { const m = mk(payer, { deadline: 2n ** 53n }); await addBad("deadline 2^53 (signed)", m, await sign(payer, m), R.DeadlineOutOfRange); }
  { const m = mk(payer, { deadline: BigInt(now - 10) }); await addBad("expired", m, await sign(payer, m), R.Expired); }
  { const m = mk(poor, { amount: 11n }); await addBad("insufficient balance", m, await sign(poor, m), R.InsufficientFunds); }
  { const m = mk(payer, { amount: 10n ** 12n }); await addBad("amount above balance", m, await sign(payer, m), R.InsufficientFunds); }
  { const m = { ...good1, amount: 1n, ref: ref("other") }; await addBad("same nonce as a settled item (other mandate)", m, await sign(payer, m), R.NonceUsed); }
  await addBad("duplicate of a settled item", good1, s1, R.NonceUsed);

  // verifyMandate before settlement: every verdict as expected (the reused-nonce ones are clean yet)
  for (const b of bad) {
    if (b.reason === R.NonceUsed) continue;
    const [, reason] = await wallet.verifyMandate(b.m, b.sig);
    eq(REASON_NAME[Number(reason)], REASON_NAME[b.reason], `verifyMandate: ${b.label}`);
  }
  for (const [m, sig] of [[good1, s1], [good2, s2], [good3, s3], [good4, s4]]) {
    const [digest, reason] = await wallet.verifyMandate(m, sig);
    eq(Number(reason), R.None, "verifyMandate: valid mandate");
    eq(digest, ethers.TypedDataEncoder.hash(domain, types, m), "digest equals ethers TypedDataEncoder.hash");
    eq(await wallet.mandateDigest(m), digest, "mandateDigest equals verifyMandate's digest");
  }

  // unauthorised caller
  let unauth = false;
  try {
    await wallet.connect(stranger).settle.staticCall(ethers.ZeroHash, [item(good1, s1)]);
  } catch (e) {
    unauth = /NotSettlementProcessor/.test(e.revert?.name ?? "") || /revert/i.test(String(e.message));
  }
  check(unauth, "settle by a non-SP reverts");

  const items = [item(good1, s1), item(good2, s2), item(good3, s3), item(good4, s4), ...bad.map((b) => item(b.m, b.sig))];
  const payeeABefore = await token.balanceOf(payeeA);
  const payerBefore = await wallet.balanceOf(payer.address, tokenAddr);
  const batchId = ethers.id("batch-1");
  const rc = await mined(walletSP.settle(batchId, items, { gasLimit: 10_000_000 }));
  const events = rc.logs.map(safeParse).filter(Boolean);
  const settledEv = events.filter((e) => e.name === "MandateSettled");
  const skippedEv = events.filter((e) => e.name === "MandateSkipped");
  const batchEv = events.find((e) => e.name === "BatchSettled");
  eq(settledEv.length, 4, "4 MandateSettled events");
  eq(skippedEv.length, bad.length, `${bad.length} MandateSkipped events`);
  for (let i = 0; i < bad.length; i++) {
    const ev = skippedEv[i];
    eq(REASON_NAME[Number(ev?.args.reason)], REASON_NAME[bad[i].reason], `skip reason: ${bad[i].label}`);
    eq(ev?.args.digest, ethers.TypedDataEncoder.hash(domain, types, bad[i].m), `skip digest: ${bad[i].label}`);
  }
  check(batchEv && batchEv.args.batchId === batchId && batchEv.args.sp === sp.address && batchEv.args.items === BigInt(items.length) && batchEv.args.settled === 4n && batchEv.args.skipped === BigInt(bad.length), "BatchSettled(batchId, sp, items, settled, skipped)");
  const ev1 = settledEv[0];
  check(ev1.args.digest === ethers.TypedDataEncoder.hash(domain, types, good1) && ev1.args.owner === payer.address && ev1.args.payee === payeeA && ev1.args.token === tokenAddr && ev1.args.amount === 1000n && ev1.args.ref === good1.ref, "MandateSettled(digest, owner, payee, token, amount, ref)");
  // one ERC-20 transfer per (token, payee)
  const erc20 = new ethers.Interface(TOKEN.abi);
  const transfers = rc.logs.filter((l) => l.topics[0] === erc20.getEvent("Transfer").topicHash).map((l) => ({ token: l.address, ...erc20.parseLog(l).args.toObject() }));
  eq(transfers.length, 3, "3 transfers: (tUSD, A), (tUSD, B), (tEUR, A)");
  const tA = transfers.find((t) => t.token === tokenAddr && t.to === payeeA);
  eq(tA?.value, 3500n, "aggregated payout to payee A in tUSD = 1000 + 2500");
  eq((await token.balanceOf(payeeA)) - payeeABefore, 3500n, "payee A tUSD balance");
  eq(await token.balanceOf(payeeB), 700n, "payee B tUSD balance");
  eq(await token2.balanceOf(payeeA), 300n, "payee A tEUR balance");
  eq(payerBefore - (await wallet.balanceOf(payer.address, tokenAddr)), 3500n, "payer debited 3500");
  eq(await wallet.balanceOf(payer2.address, tokenAddr), 50_000n - 700n, "payer2 debited 700");
  eq(await wallet.balanceOf(poor.address, tokenAddr), 10n, "skipped item debits nothing");
  check(await wallet.nonceUsed(payer.address, tokenAddr, good1.nonce), "nonceUsed after settlement");
  check(!(await wallet.nonceUsed(payer.address, tokenAddr, base.nonce)), "nonce of a skipped item stays unused");
  check(!(await wallet.nonceUsed(payer.address, token2Addr, good1.nonce)), "nonce scoped per token");
  const [, rAgain] = await wallet.verifyMandate(good1, s1);
  eq(Number(rAgain), R.NonceUsed, "verifyMandate after settlement: NonceUsed");
  // the base mandate, with its genuine signature, still settles later: skipping burnt nothing
  const rc2 = await mined(walletSP.settle(ethers.id("batch-2"), [item(base, sBase)]));
  eq(rc2.logs.map(safeParse).filter((e) => e?.name === "MandateSettled").length, 1, "the mandate of the malleated signatures settles with its own signature");

  section("deadline boundary");
  // ---- deadline boundary: settleable at block.timestamp == deadline, not one second later
  {
    const t = Number((await provider.getBlock("latest")).timestamp) + 100;
    const mEq = mk(payer, { deadline: BigInt(t) });
    const mPast = mk(payer, { deadline: BigInt(t - 1) });
    const sig1 = await sign(payer, mEq), sig2 = await sign(payer, mPast);
    await rpc("anvil_setNextBlockTimestamp", [t]);
    const r = await mined(walletSP.settle(ethers.id("deadline"), [item(mEq, sig1), item(mPast, sig2)]));
    const ev = r.logs.map(safeParse).filter(Boolean);
    eq(ev.filter((e) => e.name === "MandateSettled").length, 1, "deadline inclusive: settles at block.timestamp == deadline");
    eq(Number(ev.find((e) => e.name === "MandateSkipped")?.args.reason), R.Expired, "deadline + 1: Expired");
  }

  section("withdrawal rule");
  {
    const w = ethers.Wallet.createRandom().connect(provider);
    await fund(w.address);
    await depositFor(w, token, 10_000n);
    const ww = wallet.connect(w);
    const req = await mined(ww.requestWithdrawal(tokenAddr, 8_000n));
    const reqEv = req.logs.map(safeParse).find((e) => e?.name === "WithdrawalRequested");
    const blk = await provider.getBlock(req.blockNumber);
    check(reqEv && reqEv.args.amount === 8_000n && Number(reqEv.args.unlockAt) === blk.timestamp + DELAY, "WithdrawalRequested(owner, token, amount, unlockAt = t + delay)");
    const [pa, pu] = await wallet.pendingWithdrawal(w.address, tokenAddr);
    check(pa === 8_000n && Number(pu) === blk.timestamp + DELAY, "pendingWithdrawal view");
    eq(await wallet.balanceOf(w.address, tokenAddr), 10_000n, "a request moves no funds");
    // a mandate the SP accepted before the request settles during the delay
    const m = mk(w, { amount: 4_000n });
    const r = await mined(walletSP.settle(ethers.id("during-delay"), [item(m, await sign(w, m))]));
    eq(r.logs.map(safeParse).filter((e) => e?.name === "MandateSettled").length, 1, "settlement during the delay debits the balance");
    let locked = false;
    try { await ww.withdraw.staticCall(tokenAddr); } catch (e) { locked = /WithdrawalLocked/.test(e.revert?.name ?? e.message); }
    check(locked, "withdraw before unlockAt reverts (WithdrawalLocked)");
    await rpc("evm_increaseTime", [DELAY]);
    await rpc("evm_mine");
    const wd = await mined(ww.withdraw(tokenAddr));
    const wdEv = wd.logs.map(safeParse).find((e) => e?.name === "Withdrawn");
    check(wdEv && wdEv.args.requested === 8_000n && wdEv.args.amount === 6_000n, "withdraw pays min(requested, balance) = 6000");
    eq(await token.balanceOf(w.address), 6_000n, "owner received 6000");
    eq(await wallet.balanceOf(w.address, tokenAddr), 0n, "balance 0 after withdraw");
    const [pa2] = await wallet.pendingWithdrawal(w.address, tokenAddr);
    eq(pa2, 0n, "request cleared");
    // cancel path, and the request bound
    await depositFor(w, token, 500n);
    let over = false;
    try { await ww.requestWithdrawal.staticCall(tokenAddr, 501n); } catch (e) { over = true; }
    check(over, "request above balance reverts");
    await mined(ww.requestWithdrawal(tokenAddr, 500n));
    const c = await mined(ww.cancelWithdrawal(tokenAddr));
    check(c.logs.map(safeParse).some((e) => e?.name === "WithdrawalCancelled"), "WithdrawalCancelled");
    let none = false;
    try { await ww.withdraw.staticCall(tokenAddr); } catch (e) { none = /NoPendingWithdrawal/.test(e.revert?.name ?? e.message); }
    check(none, "withdraw without a request reverts (NoPendingWithdrawal)");
  }

  section("spec examples and peer-signed fixtures");
  // ---- spec worked examples and the peer-signed fixtures, at the fixtures' domain
  await fixtures({ admin, sp, types, fund });

  section("gas");
  results.gas = await gas({ admin, sp, walletSP, wallet, walletAddr, token, tokenAddr, types, domain, fund, depositFor, sign, now });

  function safeParse(log) {
    try { return wallet.interface.parseLog(log); } catch { return null; }
  }
}

async function fixtures({ admin, sp, types, fund }) {
  // The spec's examples and the peer fixtures share one domain: chain 84532 and this wallet address
  // (the MVP's Base Sepolia deployment), with the Base Sepolia USDC address as token.
  const fWallet = "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912";
  const fToken = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
  // Put the wallet's runtime code at the fixtures' verifyingContract (immutables live in the code;
  // OZ EIP712 rebuilds the domain separator for the new address), set Ownable's _owner slot, and a
  // TestToken at the fixtures' token address.
  const ownerSlot = WALLET.storageLayout.storage.find((s) => s.label === "_owner").slot;
  // The artifact's deployedBytecode has zeros where immutables go, so copy the code of a deployed
  // instance (same constructor arguments as the main wallet: admin, one hour).
  const wf = new ethers.ContractFactory(WALLET.abi, WALLET.bytecode, admin);
  const donor = await deployed(wf, admin.address, 3600);
  await rpc("anvil_setCode", [fWallet, await provider.getCode(await donor.getAddress())]);
  await rpc("anvil_setStorageAt", [fWallet, ethers.toBeHex(BigInt(ownerSlot), 32), ethers.zeroPadValue(admin.address, 32)]);
  // the token's runtime code needs its immutable (decimals): deploy one and copy the deployed code
  const tf = new ethers.ContractFactory(TOKEN.abi, TOKEN.bytecode, admin);
  const t = await deployed(tf, "Fixture USDC", "USDC", 6);
  await rpc("anvil_setCode", [fToken, await provider.getCode(await t.getAddress())]);
  const wallet = new ethers.Contract(fWallet, WALLET.abi, admin);
  const token = new ethers.Contract(fToken, TOKEN.abi, admin);
  await mined(wallet.setSettlementProcessor(sp.address, true));
  const domain = { name: "AEP2DebitWallet", version: "1", chainId: CHAIN_ID, verifyingContract: fWallet };
  eq(await wallet.domainSeparator(), ethers.TypedDataEncoder.hashDomain(domain), "fixture domain separator");

  // spec §4.1.1 worked example (chain 84532, same verifyingContract, Hardhat key #0)
  const ex = { owner: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", token: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", payee: "0x2222222222222222222222222222222222222222", amount: 1000n, nonce: 1n, deadline: 1700000600n, ref: "0xc01aa5533230e792b6b341f2c78c606ef0b50bf56ee18ca7a8fa956d5235fe98" };
  eq(await wallet.domainSeparator(), "0xc15fd74307bfeaa196f1a3918dd465ffb8bef0066ac826ddbf648b034beaeff9", "spec §4.1.1 domainSeparator");
  eq(await wallet.mandateDigest(ex), "0xacffc66c2eab7d0e63e893c1027af74f82090d2718062bdb0c174f653e2e43ca", "spec §4.1.1 digest");
  const exSig = "0xd7ff6c5d02ded4432ad3fc3f2f65503cdb27f41cbe39f61dba994f6e936c8b9f518fe0bb6aca24d678c6e63986679c5d20e8a6d1b82609291f9ea685587b3b7c1c";
  eq(Number(await wallet.checkSignature("0xacffc66c2eab7d0e63e893c1027af74f82090d2718062bdb0c174f653e2e43ca", exSig, ex.owner)), R.None, "spec §4.1.1 signature accepted");
  const [, exReason] = await wallet.verifyMandate(ex, exSig);
  eq(REASON_NAME[Number(exReason)], "Expired", "spec §4.1.1 mandate (deadline 1700000600) is expired on today's chain");
  eq(await wallet.nonceKey(ex.owner, ex.token, 1n), "0x341cc217a00acf1d2aace3c976e19d09fa8e1127e0cd35b8e45737d1777785d6", "spec §8.5 nonce key example");
  // spec §6.1 mvp-evm receipt signature through the same rules (EIP-191 hash, SP as signer)
  eq(Number(await wallet.checkSignature("0x90fd6ff021b7fc757a6a74d9106b4db058ee32b8a239cce6359f2d0b06fdafa5", "0x8720cfb7c7da6868e5a1ba12094c0b7e64e227b56054ddbcb9bcff79937fd8a36baa078810bdc97fc99d9d0bbc3f0fd2dc171f48a6804894038804f402da1c8a1b", "0x405B10be927D3BF157196C995d8131c6A097673c")), R.None, "spec §6.1 receipt signature accepted by checkSignature");

  if (!FIXTURES) {
    console.log(`-- peer-signed fixtures not found at ${FIXTURES_PATH}: skipped (set AEP2_PEER_FIXTURES)`);
    results.fixtures = "skipped";
    return;
  }
  for (const c of FIXTURES.evm) {
    check(c.chainId === CHAIN_ID && c.verifyingContract === fWallet && c.mandate.token === fToken, `fixture ${c.id}: domain and token as expected`);
  }
  // fund the fixture owners (valid cases carry their keys) and settle every fixture in one batch
  const expectReason = { "evm-tampered-amount": "SignatureInvalid", "evm-signed-for-other-chain": "SignatureInvalid", "evm-high-s-twin": "SignatureHighS" };
  for (const c of FIXTURES.evm.filter((c) => c.signerPrivateKey)) {
    const owner = new ethers.Wallet(c.signerPrivateKey, provider);
    await fund(owner.address);
    const total = 100_000n;
    await mined(token.connect(admin).mint(owner.address, total));
    await mined(token.connect(owner).approve(fWallet, total));
    await mined(wallet.connect(owner).deposit(fToken, total));
  }
  const items = [];
  for (const c of FIXTURES.evm) {
    const m = { ...c.mandate, amount: BigInt(c.mandate.amount), nonce: BigInt(c.mandate.nonce), deadline: BigInt(c.mandate.deadline) };
    const [digest, reason] = await wallet.verifyMandate(m, c.payerSig);
    if (c.digest) eq(digest, c.digest, `fixture ${c.id}: digest equals ethers' digest`);
    eq(digest, ethers.TypedDataEncoder.hash(domain, types, m), `fixture ${c.id}: digest equals TypedDataEncoder.hash`);
    eq(REASON_NAME[Number(reason)], c.expect === "valid" ? "None" : expectReason[c.id] ?? "(some skip reason)", `fixture ${c.id}: verdict`);
    if (c.receipt) {
      const commitment = ethers.solidityPackedKeccak256(["bytes32", "uint256"], [c.receipt.mandateDigest, c.receipt.enqueueDeadline]);
      eq(Number(await wallet.checkSignature(ethers.hashMessage(ethers.getBytes(commitment)), c.receipt.spEnqueueSig, c.receipt.sp)), R.None, `fixture ${c.id}: SP receipt signature accepted by checkSignature`);
    }
    items.push({ mandate: m, signature: c.payerSig });
  }
  const rc = await mined(wallet.connect(sp).settle(ethers.id("fixtures"), items));
  const ev = rc.logs.map((l) => { try { return wallet.interface.parseLog(l); } catch { return null; } }).filter(Boolean);
  const settled = new Set(ev.filter((e) => e.name === "MandateSettled").map((e) => e.args.digest));
  for (const c of FIXTURES.evm.filter((c) => c.expect === "valid")) check(settled.has(c.digest), `fixture ${c.id} settles at its own domain`);
  eq(settled.size, FIXTURES.evm.filter((c) => c.expect === "valid").length, "only the valid fixtures settle");
  const due = new Map();
  for (const c of FIXTURES.evm.filter((c) => c.expect === "valid")) due.set(c.mandate.payee, (due.get(c.mandate.payee) ?? 0n) + BigInt(c.mandate.amount));
  for (const [payee, amount] of due) eq(await token.balanceOf(payee), amount, `fixture payee ${payee} paid the sum of its mandates`);
}

async function gas({ admin, sp, walletSP, wallet, walletAddr, token, tokenAddr, types, domain, fund, depositFor, sign }) {
  // Scenarios. Payees already hold tokens (no first-write cost), as in steady operation.
  // - "one payer": one payer, consecutive nonces (they share bitmap words), one payee;
  // - "one payer, random nonces": one payer, a random 256-bit nonce per mandate, one payee;
  // - "distinct payers": every mandate from a new payer with a random 256-bit nonce, one payee;
  // - "distinct payers and payees": as above, and every mandate to its own payee.
  // The single-mandate baseline is one mandate per transaction (a batch of one), as the MVP settles.
  const sizes = [1, 10, 100];
  const singles = 10;
  const out = {};
  const now = () => provider.getBlock("latest").then((b) => Number(b.timestamp));
  const seedPayee = async () => {
    const a = ethers.Wallet.createRandom().address;
    await mined(token.connect(admin).mint(a, 1n));
    return a;
  };
  const onePayer = ethers.Wallet.createRandom().connect(provider);
  await fund(onePayer.address);
  await depositFor(onePayer, token, 10n ** 15n);
  let seq = 1n << 20n;
  const payers = [];
  const newPayer = async () => {
    const p = ethers.Wallet.createRandom().connect(provider);
    await fund(p.address);
    await depositFor(p, token, 10n ** 9n);
    return p;
  };
  const scenarios = {
    "one payer": async (k, payee) => {
      const ms = [];
      for (let i = 0; i < k; i++) ms.push({ signer: onePayer, payee, nonce: seq++ });
      return ms;
    },
    "one payer, random nonces": async (k, payee) => {
      const ms = [];
      for (let i = 0; i < k; i++) ms.push({ signer: onePayer, payee, nonce: BigInt(ethers.hexlify(ethers.randomBytes(32))) });
      return ms;
    },
    "distinct payers": async (k, payee) => {
      const ms = [];
      for (let i = 0; i < k; i++) ms.push({ signer: await newPayer(), payee, nonce: BigInt(ethers.hexlify(ethers.randomBytes(32))) });
      return ms;
    },
    "distinct payers and payees": async (k) => {
      const ms = [];
      for (let i = 0; i < k; i++) ms.push({ signer: await newPayer(), payee: await seedPayee(), nonce: BigInt(ethers.hexlify(ethers.randomBytes(32))) });
      return ms;
    },
  };
  const buildItems = async (specs) => {
    const deadline = BigInt((await now()) + 86400);
    const items = [];
    for (const s of specs) {
      const m = { owner: s.signer.address, token: tokenAddr, payee: s.payee, amount: 1000n, nonce: s.nonce, deadline, ref: ethers.hexlify(ethers.randomBytes(32)) };
      items.push({ mandate: m, signature: await sign(s.signer, m) });
    }
    return items;
  };
  const settleGas = async (items, label) => {
    const rc = await mined(walletSP.settle(ethers.id(label), items, { gasLimit: 25_000_000 }));
    const ev = rc.logs.map((l) => { try { return wallet.interface.parseLog(l); } catch { return null; } }).filter(Boolean);
    const n = ev.filter((e) => e.name === "MandateSettled").length;
    eq(n, items.length, `gas run ${label}: all ${items.length} settled`);
    return Number(rc.gasUsed);
  };
  for (const [name, make] of Object.entries(scenarios)) {
    const payee = await seedPayee();
    // baseline: `singles` transactions of one mandate each
    let total = 0;
    for (let i = 0; i < singles; i++) total += await settleGas(await buildItems(await make(1, payee)), `${name}/single/${i}`);
    const single = total / singles;
    const row = { singlePerMandate: Math.round(single) };
    for (const k of sizes) {
      const g = await settleGas(await buildItems(await make(k, payee)), `${name}/batch/${k}`);
      row[`batch${k}`] = { gas: g, perMandate: Math.round(g / k), ratio: Number((g / k / single).toFixed(3)) };
    }
    out[name] = row;
    console.log(`gas [${name}]: single ${row.singlePerMandate}/mandate; ` + sizes.map((k) => `batch ${k}: ${row[`batch${k}`].perMandate}/mandate (${(row[`batch${k}`].ratio * 100).toFixed(1)}%)`).join("; "));
  }
  return out;
}
