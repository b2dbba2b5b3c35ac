"""The MCP helpers on the objects the official SDK (``mcp``) builds and parses."""

import json

import mcp.types as t

from aep2_payer import Secp256k1Key, mcp_request_hash, quote_hash
from aep2_payer.mcp import (
    MANDATE_KEY,
    mandate_meta,
    payment_required_of,
    payment_response_of,
    reason_of,
    sign_for_tool_call,
)
from aep2_payer.x402 import Aep2Payer

KEY = Secp256k1Key.from_hex("22" * 32)
TOKEN = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PAYEE = "0x4444444444444444444444444444444444444444"
DOMAIN = {"chainId": 84532, "verifyingContract": "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"}


def entry(**extra):
    return {
        "scheme": "aep2",
        "network": "eip155:84532",
        "amount": "1000",
        "asset": TOKEN,
        "payTo": PAYEE,
        "maxTimeoutSeconds": 60,
        "extra": {"domain": DOMAIN, "settlementWindow": 310, **extra},
    }


def payment_required_result(pr, structured=True):
    """A payment-required result as a payee sends it (spec §12.4), parsed by the SDK."""
    wire = {
        "content": [{"type": "text", "text": json.dumps(pr)}, {"type": "text", "text": "Payment required"}],
        "isError": True,
        "_meta": {"dev.aep2/reason": "payment_missing"},
    }
    if structured:
        wire["structuredContent"] = pr
    return t.CallToolResult.model_validate(wire)


def test_reads_the_payment_required_result_and_binds_the_call():
    pr = {
        "x402Version": 2,
        "error": "payment_missing",
        "resource": {"url": "mcp://tool/get_weather"},
        "accepts": [entry()],
    }
    args = {"location": "New York", "units": "metric"}
    for structured in (True, False):  # structuredContent, else content[0].text
        result = payment_required_result(pr, structured)
        assert payment_required_of(result) == pr
        assert reason_of(result) == "payment_missing"
        signed = sign_for_tool_call(Aep2Payer(KEY), "get_weather", args, payment_required_of(result))
        assert signed.mandate["ref"] == mcp_request_hash("get_weather", args)[0]
        assert signed.mandate["ref"] == "0x56f5eaa3fbbe921127de927f871d0c26f5036f81aa01d0399f027dd4988ec386"


def test_mandate_goes_in_params_meta_of_the_sdk_request():
    signed = sign_for_tool_call(Aep2Payer(KEY), "get_weather", {}, {"accepts": [entry()]})
    params = t.CallToolRequestParams(name="get_weather", arguments={}, _meta=mandate_meta(signed, {"progressToken": 7}))
    wire = t.CallToolRequest(params=params).model_dump(by_alias=True, exclude_none=True, mode="json")
    assert wire["method"] == "tools/call"
    assert wire["params"]["_meta"][MANDATE_KEY] == signed.envelope
    assert wire["params"]["_meta"]["progressToken"] == 7
    # The hash covers name and arguments only: _meta does not change it (spec §12.6).
    assert signed.mandate["ref"] == mcp_request_hash(wire["params"]["name"], wire["params"]["arguments"])[0]


def test_order_mode_uses_the_quote():
    quote = {
        "aep2": 1,
        "kind": "payment-request",
        "profile": "eip712",
        "domain": DOMAIN,
        "requestId": "q-2",
        "payee": PAYEE,
        "asset": TOKEN,
        "amount": "1000",
        "expiry": 4102444800,
        "description": "weather",
        "settlementProcessor": "0x" + "66" * 20,
        "settlementWindow": 310,
    }
    signed = sign_for_tool_call(Aep2Payer(KEY), "get_weather", {"x": 1}, {"accepts": [entry(quote=quote)]})
    assert signed.mandate["ref"] == quote_hash(quote)


def test_served_result_payment_response():
    served = t.CallToolResult.model_validate(
        {
            "content": [{"type": "text", "text": "sunny"}],
            "_meta": {
                "dev.aep2/payment-response": {
                    "success": True,
                    "transaction": "",
                    "network": "eip155:84532",
                    "payer": KEY.address,
                    "amount": "1000",
                    "extra": {"mandateId": "0x" + "ab" * 32, "status": "accepted"},
                }
            },
        }
    )
    assert payment_required_of(served) is None
    assert payment_response_of(served)["extra"]["mandateId"] == "0x" + "ab" * 32
    # An ordinary tool error is not a payment request.
    err = t.CallToolResult.model_validate({"content": [{"type": "text", "text": "boom"}], "isError": True})
    assert payment_required_of(err) is None
