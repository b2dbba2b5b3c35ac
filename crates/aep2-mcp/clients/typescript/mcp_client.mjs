// Drives the official MCP TypeScript SDK (@modelcontextprotocol/sdk) against the AEP2 demo payee.
//
// Run by crates/aep2-cli/tests/mcp_clients.rs: argv[2] is a JSON file
// {"runs": [{"name", "transport": "http" | "stdio", "url" | "command" + "args", "tool",
// "arguments", "paid", "mismatched"}]}, where "paid" is a signed AEP2 envelope bound to
// (tool, arguments) and "mismatched" one bound to other arguments. For each run it connects,
// lists the tools, calls the tool unpaid, paid, paid again with the same mandate (a replay) and
// with the mismatched mandate, and prints one JSON line per run with what the server answered.
// The test judges the answers; this program only reports them.
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const MANDATE_KEY = 'dev.aep2/mandate';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function exercise(run) {
  const transport =
    run.transport === 'stdio'
      ? new StdioClientTransport({ command: run.command, args: run.args, stderr: 'inherit' })
      : new StreamableHTTPClientTransport(new URL(run.url));
  const client = new Client({ name: 'aep2-mcp-test', version: '0.0.0' });
  const report = { name: run.name };
  await client.connect(transport);
  try {
    report.protocolVersion = transport.protocolVersion ?? null;
    report.serverInfo = client.getServerVersion() ?? null;
    await client.ping();
    report.pinged = true;
    report.tools = (await client.listTools()).tools;
    const call = (meta) => client.callTool({ name: run.tool, arguments: run.arguments, ...(meta ? { _meta: meta } : {}) });
    report.unpaid = await call();
    report.paid = await call({ [MANDATE_KEY]: run.paid });
    // The payee marks a serve final once its answer is handed over; give that a moment.
    await sleep(300);
    report.replayed = await call({ [MANDATE_KEY]: run.paid });
    report.mismatched = await call({ [MANDATE_KEY]: run.mismatched });
    try {
      await client.callTool({ name: 'no_such_tool', arguments: {} });
      report.unknownTool = { raised: false };
    } catch (e) {
      report.unknownTool = { raised: true, code: e.code ?? null };
    }
  } finally {
    await client.close();
  }
  return report;
}

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
for (const run of spec.runs) {
  console.log(JSON.stringify(await exercise(run)));
}
