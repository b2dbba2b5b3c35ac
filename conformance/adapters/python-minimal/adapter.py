#!/usr/bin/env python3
"""A minimal AEP2 conformance adapter (spec/conformance.md), standard library only.

It declares every case kind and skips each one: replace answer() with calls into your own
implementation, returning {"verdict": "valid"} or {"verdict": "invalid", "code": "<reason>"}.
Run it with:  aep2-conformance run --adapter 'python3 conformance/adapters/python-minimal/adapter.py'
"""
import json
import sys

KINDS = ["verify_mandate", "verify_receipt", "sign_mandate", "ed25519_raw", "verify_policy",
         "verify_order", "extract_x402", "http_request_hash", "extract_a2a", "a2a_request_hash",
         "extract_mcp", "mcp_request_hash"]


def answer(case):
    """Returns ("result", {...}) or ("skipped", {"reason": ...}) for one case."""
    return "skipped", {"reason": "the minimal example implements no %s" % case["kind"]}


def send(message):
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()  # one answer per request: never leave it in a buffer


for line in sys.stdin:
    request = json.loads(line)
    if request["cmd"] == "start":
        send({"version": 1,
              "implementation": {"name": "python-minimal", "language": "python", "version": "0.1.0"},
              "capabilities": {"kinds": KINDS, "profiles": ["eip712", "ed25519", "solana-mvp"],
                               "reasonCodes": True}})
    elif request["cmd"] == "run":
        try:
            key, body = answer(request["case"])
        except Exception as e:  # the implementation failed: report it, do not crash
            key, body = "errored", {"message": repr(e)}
        send({"seq": request["seq"], key: body})
    elif request["cmd"] == "stop":
        break
