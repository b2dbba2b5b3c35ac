"""Drives the official MCP Python SDK (`mcp` on PyPI) against the AEP2 demo payee.

Run by crates/aep2-cli/tests/mcp_clients.rs: argv[1] is a JSON file
{"runs": [{"name", "transport": "http" | "stdio", "url" | "command" + "args", "mode",
"tool", "arguments", "paid", "mismatched"}]}, where "paid" is a signed AEP2 envelope bound to
(tool, arguments) and "mismatched" one bound to other arguments. For each run it connects,
lists the tools, calls the tool unpaid, paid, paid again with the same mandate (a replay) and
with the mismatched mandate, and prints one JSON line per run with what the server answered.
The test judges the answers; this program only reports them.
"""

import asyncio
import json
import sys
import warnings

from mcp import Client, StdioServerParameters

MANDATE_KEY = "dev.aep2/mandate"


def dump(model):
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


async def exercise(run):
    if run["transport"] == "stdio":
        server = StdioServerParameters(command=run["command"], args=run["args"])
    else:
        server = run["url"]
    report = {"name": run["name"]}
    async with Client(server, mode=run["mode"], read_timeout_seconds=20) as client:
        report["protocolVersion"] = client.protocol_version
        # ping exists up to 2025-11-25; 2026-07-28 removed it (the server says method not found).
        try:
            if client.protocol_version == "2026-07-28":
                warnings.simplefilter("ignore")
            await client.send_ping()
            report["pinged"] = True
        except Exception as e:
            report["pinged"] = {"code": getattr(getattr(e, "error", None), "code", None)}
        report["tools"] = dump(await client.list_tools())["tools"]
        tool, arguments = run["tool"], run["arguments"]
        report["unpaid"] = dump(await client.call_tool(tool, arguments))
        paid = {MANDATE_KEY: run["paid"]}
        report["paid"] = dump(await client.call_tool(tool, arguments, meta=paid))
        # The payee marks a serve final once its answer is handed over; give that a moment.
        await asyncio.sleep(0.3)
        report["replayed"] = dump(await client.call_tool(tool, arguments, meta=paid))
        wrong = {MANDATE_KEY: run["mismatched"]}
        report["mismatched"] = dump(await client.call_tool(tool, arguments, meta=wrong))
        try:
            await client.call_tool("no_such_tool", {})
            report["unknownTool"] = {"raised": False}
        except Exception as e:  # the SDK raises MCPError for a JSON-RPC error
            error = getattr(e, "error", None)
            report["unknownTool"] = {"raised": True, "code": getattr(error, "code", None)}
    return report


async def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    for run in spec["runs"]:
        print(json.dumps(await exercise(run)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
