// The FluxA MVP's EVM verify path (services/payee.ts, services/sp.ts) timed with ethers v6:
// base64 → JSON.parse → verifyTypedData(domain, types, mandate, payerSig) → compare with
// mandate.owner, over the valid eip712 peer-signed fixtures (vectors/peer-signed), the same
// headers the Rust bench's `eip712/full_path_fixtures` row cycles over.
//
// Run: node crates/aep2/benches/ethers_verify.mjs [seconds]   (the verify bench runs it)
// ethers comes from crates/aep2-evm/contracts/node_modules (pinned 6.17.0; `npm ci` there),
// or from the directory in AEP2_ETHERS_DIR. Prints one JSON line.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../../..");
const from = process.env.AEP2_ETHERS_DIR ?? join(root, "crates/aep2-evm/contracts");
const require = createRequire(join(from, "package.json"));
const ethers = require("ethers");
const { verifyTypedData } = ethers;

const TYPES = {
  Mandate: [
    { name: "owner", type: "address" },
    { name: "token", type: "address" },
    { name: "payee", type: "address" },
    { name: "amount", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
    { name: "ref", type: "bytes32" },
  ],
};

const fx = JSON.parse(readFileSync(join(root, "vectors/peer-signed/peer-signed.json"), "utf8"));
const cases = fx.evm
  .filter((e) => e.expect === "valid")
  .map((e) => ({
    header: e.header,
    domain: { name: "AEP2DebitWallet", version: "1", chainId: e.chainId, verifyingContract: e.verifyingContract },
  }));

function verify({ header, domain }) {
  const { mandate, payerSig } = JSON.parse(Buffer.from(header, "base64").toString());
  if (!mandate || !payerSig) throw new Error("mandate or payerSig missing");
  const recovered = verifyTypedData(domain, TYPES, mandate, payerSig);
  if (recovered.toLowerCase() !== String(mandate.owner).toLowerCase()) throw new Error(`recovered ${recovered}`);
  return recovered;
}

const seconds = Number(process.argv[2] ?? 3);
let sink = 0;
const run = (ms) => {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) {
    for (const c of cases) sink += verify(c).length;
    n += cases.length;
  }
  return n;
};
run(1000); // warm-up: JIT
const t0 = performance.now();
const n = run(seconds * 1000);
const elapsed = performance.now() - t0;
console.log(
  JSON.stringify({
    ethers: ethers.version,
    node: process.version,
    fixtures: cases.length,
    iterations: n,
    mean_ns: (elapsed * 1e6) / n,
    sink: sink > 0,
  }),
);
