#!/usr/bin/env node
// Compiles src/*.sol with the pinned solc-js and OpenZeppelin Contracts from node_modules and writes
// artifacts/<Contract>.json deterministically (sorted keys, two-space indent, trailing newline).
//
//   node build.mjs           write the artifacts
//   node build.mjs --check   recompile and exit 1 if the committed artifacts differ (CI)
//
// Determinism: fixed compiler (package-lock), fixed settings below, metadata without a source hash
// (bytecodeHash "none": the CBOR trailer then holds only the compiler version), and imports
// resolved only from this folder's src/ and node_modules/@openzeppelin/contracts.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const solc = require("solc");

const CONTRACTS = [
  { source: "src/AEP2DebitWallet.sol", name: "AEP2DebitWallet" },
  { source: "src/TestToken.sol", name: "TestToken" },
];

const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 10000 },
  viaIR: false,
  metadata: { bytecodeHash: "none" },
  outputSelection: {
    "*": {
      "": ["ast"],
      "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences", "evm.methodIdentifiers", "storageLayout"],
    },
  },
};

const EXPECTED_SOLC = "0.8.37+commit.f401782d.Emscripten.clang";
const OZ_PREFIX = "@openzeppelin/contracts/";
const ozRoot = join(here, "node_modules", "@openzeppelin", "contracts");

function sha256(text) {
  return "0x" + createHash("sha256").update(text, "utf8").digest("hex");
}

// Every source text the compiler read, by source unit name.
const readSources = new Map();

function findImports(path) {
  if (!path.startsWith(OZ_PREFIX)) return { error: `import outside ${OZ_PREFIX}: ${path}` };
  const file = resolve(ozRoot, path.slice(OZ_PREFIX.length));
  if (!file.startsWith(ozRoot + sep) || !existsSync(file)) return { error: `not found: ${path}` };
  const contents = readFileSync(file, "utf8");
  readSources.set(path, contents);
  return { contents };
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

// The name of the immutable with AST id `id` ("ContractName.variable"), found in the sources' ASTs.
function immutableName(output, id) {
  for (const src of Object.values(output.sources)) {
    const stack = [src.ast];
    while (stack.length) {
      const node = stack.pop();
      if (!node || typeof node !== "object") continue;
      if (node.id === Number(id) && node.nodeType === "VariableDeclaration") {
        return `${node.scope === undefined ? "" : scopeName(output, node.scope)}.${node.name}`;
      }
      for (const v of Object.values(node)) if (v && typeof v === "object") stack.push(v);
    }
  }
  return `ast:${id}`;
}
function scopeName(output, scope) {
  for (const src of Object.values(output.sources)) {
    for (const node of src.ast.nodes ?? []) if (node.id === scope && node.name) return node.name;
  }
  return `ast:${scope}`;
}

function compile() {
  if (solc.version() !== EXPECTED_SOLC) {
    throw new Error(`solc ${solc.version()} is not the pinned ${EXPECTED_SOLC}: run npm ci`);
  }
  const ozVersion = JSON.parse(readFileSync(join(ozRoot, "package.json"), "utf8")).version;
  const sources = {};
  for (const c of CONTRACTS) {
    const content = readFileSync(join(here, c.source), "utf8");
    sources[c.source] = { content };
    readSources.set(c.source, content);
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const diagnostics = output.errors ?? [];
  for (const d of diagnostics) process.stderr.write(d.formattedMessage ?? d.message + "\n");
  if (diagnostics.some((d) => d.severity === "error")) throw new Error("compilation failed");

  const sourceHashes = {};
  for (const name of [...readSources.keys()].sort()) sourceHashes[name] = sha256(readSources.get(name));

  const artifacts = {};
  for (const c of CONTRACTS) {
    const out = output.contracts[c.source][c.name];
    const artifact = {
      contractName: c.name,
      sourceName: c.source,
      compiler: { name: "solc-js", version: solc.version(), openzeppelinContracts: ozVersion },
      settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer, viaIR: SETTINGS.viaIR, metadata: SETTINGS.metadata },
      sources: sourceHashes,
      abi: out.abi,
      bytecode: "0x" + out.evm.bytecode.object,
      deployedBytecode: "0x" + out.evm.deployedBytecode.object,
      // byte ranges of deployedBytecode that the constructor fills (zeros in deployedBytecode)
      immutableReferences: Object.fromEntries(
        Object.entries(out.evm.deployedBytecode.immutableReferences ?? {}).map(([id, refs]) => [
          immutableName(output, id),
          refs,
        ]),
      ),
      methodIdentifiers: out.evm.methodIdentifiers,
      storageLayout: {
        storage: out.storageLayout.storage.map(({ label, slot, offset, type }) => ({ label, slot, offset, type })),
      },
    };
    // Keep the ABI in compiler order; sort every object's keys.
    artifacts[`${c.name}.json`] = JSON.stringify(sortKeys(artifact), null, 2) + "\n";
  }
  return artifacts;
}

const check = process.argv.includes("--check");
const artifacts = compile();
const dir = join(here, "artifacts");
let stale = 0;
for (const [file, text] of Object.entries(artifacts)) {
  const path = join(dir, file);
  if (check) {
    const committed = existsSync(path) ? readFileSync(path, "utf8") : null;
    if (committed !== text) {
      stale++;
      process.stderr.write(`artifacts/${file} differs from a fresh compile${committed === null ? " (missing)" : ""}\n`);
    }
  } else {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path, text);
    const a = JSON.parse(text);
    process.stdout.write(`wrote artifacts/${file} (runtime ${(a.deployedBytecode.length - 2) / 2} bytes)\n`);
  }
}
if (check) {
  if (stale) {
    process.stderr.write("run `node build.mjs` and commit the artifacts\n");
    process.exit(1);
  }
  process.stdout.write("artifacts are up to date\n");
}
