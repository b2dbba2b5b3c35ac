"""MCP client helpers (spec §12) for the official Python SDK (``mcp``): a paid ``tools/call``.

The mandate travels in ``params._meta["dev.aep2/mandate"]`` as the envelope object; the terms come
back as a payment-required ``CallToolResult`` (``structuredContent``, else ``content[0].text``);
a served call carries ``_meta["dev.aep2/payment-response"]``. In Intent Mode the mandate's ``ref``
is the tool-call hash of §12.6 (name and arguments), in Order Mode the hash of ``extra.quote``.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import Aep2Error
from .hashes import mcp_request_hash
from .mandate import SignedMandate
from .x402 import RETRY_REASONS, SCHEME, Aep2Payer

MANDATE_KEY = "dev.aep2/mandate"
PAYMENT_RESPONSE_KEY = "dev.aep2/payment-response"
REASON_KEY = "dev.aep2/reason"


def _get(result: Any, name: str, alias: str | None = None) -> Any:
    if isinstance(result, dict):
        return result.get(alias or name)
    return getattr(result, name, None)


def payment_required_of(result: Any) -> dict[str, Any] | None:
    """The x402 ``PaymentRequired`` of a payment-required result (an SDK ``CallToolResult`` or a
    dict), or ``None`` for any other result."""
    if not _get(result, "is_error", "isError"):
        return None
    pr = _get(result, "structured_content", "structuredContent")
    if not isinstance(pr, dict):
        content = _get(result, "content") or []
        first = content[0] if content else None
        text = _get(first, "text") if first is not None else None
        if not isinstance(text, str):
            return None
        try:
            pr = json.loads(text)
        except ValueError:
            return None
    if not isinstance(pr, dict) or not isinstance(pr.get("accepts"), list):
        return None
    return pr


def reason_of(result: Any) -> str | None:
    """The reason code in ``_meta["dev.aep2/reason"]`` of a payment-required or failure result."""
    meta = _get(result, "meta", "_meta") or {}
    value = meta.get(REASON_KEY) if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def payment_response_of(result: Any) -> dict[str, Any] | None:
    """The payment response (spec §10.4) in a served result's ``_meta``, if any."""
    meta = _get(result, "meta", "_meta") or {}
    value = meta.get(PAYMENT_RESPONSE_KEY) if isinstance(meta, dict) else None
    return value if isinstance(value, dict) else None


def mandate_meta(signed: SignedMandate, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """``params._meta`` carrying ``signed`` (other keys, such as a progress token, kept)."""
    out = dict(meta or {})
    out[MANDATE_KEY] = signed.envelope
    return out


def sign_for_tool_call(
    payer: Aep2Payer, name: str, arguments: dict[str, Any] | None, payment_required: dict[str, Any]
) -> SignedMandate:
    """The mandate paying ``name(arguments)`` under the first ``aep2`` entry of ``payment_required``."""
    entries = [e for e in payment_required.get("accepts", []) if isinstance(e, dict) and e.get("scheme") == SCHEME]
    if not entries:
        raise Aep2Error("x402_scheme_unsupported", "the payment-required result offers no aep2 entry")
    entry = entries[0]
    request_hash = None
    if not (entry.get("extra") or {}).get("quote"):
        request_hash, _ = mcp_request_hash(name, arguments)
    return payer.mandate_for(entry, request_hash=request_hash)


async def call_paid_tool(
    session: Any, payer: Aep2Payer, name: str, arguments: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """Calls a tool through an ``mcp.ClientSession``; pays a payment-required answer once.

    Returns the SDK's result: the served result (with the payment response in its ``_meta``), or
    the payee's payment-failure result. The same mandate is never replaced by a second one for
    the same call while its outcome is unknown (``payer`` keeps it).
    """
    result = await session.call_tool(name, arguments, **kwargs)
    required = payment_required_of(result)
    if required is None:
        return result
    signed = sign_for_tool_call(payer, name, arguments, required)
    meta = mandate_meta(signed, kwargs.pop("meta", None))
    try:
        paid = await session.call_tool(name, arguments, meta=meta, **kwargs)
    except BaseException:
        payer.release(signed.signature)  # outcome unknown: the next call presents this mandate
        raise
    if payment_response_of(paid) is None and reason_of(paid) in RETRY_REASONS:
        payer.release(signed.signature)
    else:
        payer.finish(signed.signature)
    return paid
