#!/usr/bin/env python3
"""Conformance adapter (spec/conformance.md) for the Python payer package ``aep2_payer``.

It answers the payer's kinds: ``sign_mandate`` and the three request-hash kinds, and, for mandates
under spending lanes (spec §18), ``verify_mandate`` and ``verify_receipt`` (a plain mandate is a
payee's to verify; this package verifies only mandates under lanes, and declines the rest, decided
on the input alone), through the package's public functions only, so the package cannot drift from
the vectors. Run it with the package's venv (which has its dependencies):

    cargo run -q -p aep2-conformance -- run --validate-protocol \
      --adapter "target/venv-payer-py/bin/python conformance/adapters/payer-python/adapter.py"
"""

import base64
import json
import os
import sys

# The package from this checkout, whether or not it is installed in the interpreter's venv.
_SRC = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "crates", "payer-packages", "python", "src"
)
sys.path.insert(0, os.path.normpath(_SRC))

import aep2_payer  # noqa: E402
from aep2_payer import Aep2Error, Ed25519Key, Secp256k1Key, domain_from_json, sign_mandate  # noqa: E402
from aep2_payer.hashes import a2a_request_hash, http_request_hash, mcp_request_hash  # noqa: E402
from aep2_payer.lanes import decode_header, verify_lane_envelope  # noqa: E402
from aep2_payer.receipts import check_receipt  # noqa: E402

KINDS = [
    "sign_mandate",
    "http_request_hash",
    "a2a_request_hash",
    "mcp_request_hash",
    "verify_mandate",
    "verify_receipt",
]
PLAIN = (
    "a plain mandate (no lanes): verifying it is the payee's job; this package verifies mandates under lanes "
    "(aep2.md#lane-verification)"
)


class Declined(Exception):
    """A case this package does not answer, with the reason."""


def lane_envelope(header):
    """The decoded envelope when it is one under lanes; Declined otherwise (decided on the input)."""
    try:
        env = json.loads(base64.b64decode(header, validate=False))
    except Exception:  # noqa: BLE001 - not decodable: not known to be under lanes
        raise Declined(PLAIN) from None
    if not (isinstance(env, dict) and "lanes" in env):
        raise Declined(PLAIN)
    return decode_header(header)


def answer(case):
    kind, ctx, inp = case["kind"], case["context"], case["input"]
    if kind == "sign_mandate":
        profile = ctx["profile"]
        key = Secp256k1Key.from_hex(inp["key"]) if profile == "eip712" else Ed25519Key.from_hex(inp["key"])
        signed = sign_mandate(
            profile, inp["mandate"], domain_from_json(profile, ctx.get("domain")), key, ctx.get("form", "mvp")
        )
        return {
            "verdict": "valid",
            "outputs": {
                "signature": signed.signature,
                "header": signed.header,
                "signingBytes": "0x" + signed.signing_bytes.hex(),
                "mandateId": signed.mandate_id,
            },
        }
    if kind == "verify_mandate":
        env = lane_envelope(inp["header"])
        profile = ctx["profile"]
        m = verify_lane_envelope(env, profile, domain_from_json(profile, ctx.get("domain")), ctx.get("now"))
        return {"verdict": "valid", "outputs": {"digest": m.mandate_id, "signer": m.signer}}
    if kind == "verify_receipt":
        if "mandateHeader" not in inp:
            raise Declined("a payer checks a receipt against the mandate it signed; this case gives none")
        env = lane_envelope(inp["mandateHeader"])
        profile = ctx["profile"]
        m = verify_lane_envelope(env, profile, domain_from_json(profile, ctx.get("domain")))
        check_receipt(inp["receipt"], m, ctx.get("sp"))
        return {"verdict": "valid"}
    if kind == "http_request_hash":
        h, d = http_request_hash(inp["method"], inp["url"], bytes.fromhex(inp["body"]))
    elif kind == "mcp_request_hash":
        h, d = mcp_request_hash(inp["name"], inp.get("arguments"))
    elif kind == "a2a_request_hash":
        h, d = a2a_request_hash(inp["a2aMessage"])
    else:
        raise ValueError("undeclared kind %s" % kind)
    return {"verdict": "valid", "outputs": {"requestHash": h, "descriptor": d}}


def send(message):
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    request = json.loads(line)
    if request["cmd"] == "start":
        send(
            {
                "version": 1,
                "implementation": {"name": "aep2-payer", "language": "python", "version": aep2_payer.__version__},
                "capabilities": {"kinds": KINDS, "profiles": ["eip712", "ed25519", "solana-mvp"], "reasonCodes": True},
            }
        )
    elif request["cmd"] == "run":
        try:
            body = answer(request["case"])
            key = "result"
        except Declined as d:
            key, body = "skipped", {"reason": str(d)}
        except Aep2Error as e:
            key, body = "result", {"verdict": "invalid", "code": e.code}
        except Exception as e:  # a bug in the package: report it, never hide it as a verdict
            key, body = "errored", {"message": repr(e)}
        send({"seq": request["seq"], key: body})
    elif request["cmd"] == "stop":
        break
