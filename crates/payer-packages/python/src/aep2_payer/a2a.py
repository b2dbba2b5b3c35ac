"""A2A client helpers (spec §11): AEP2 metadata on a payer's message, and the payee's answers.

Messages are the JSON objects A2A SDKs send and receive (v1.0 or v0.3 spelling; an SDK model's
``model_dump(by_alias=True, exclude_none=True)`` gives one). In Intent Mode the mandate's ``ref``
is the A2A request hash of the message (§11.8), which leaves out ``messageId`` and all metadata, so
the mandate can be attached after hashing; in Order Mode it is the quote's hash and the reply
carries the task's ``taskId``.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import Aep2Error
from .hashes import a2a_request_hash
from .mandate import SignedMandate
from .x402 import SCHEME, Aep2Payer

EXTENSION_URI = "https://aep2.dev/ext/a2a/v1"
STATUS = "aep2.dev/status"
REQUIREMENTS = "aep2.dev/requirements"
MANDATE = "aep2.dev/mandate"
RECEIPT = "aep2.dev/receipt"
ERROR = "aep2.dev/error"


def attach_mandate(message: dict[str, Any], signed: SignedMandate) -> dict[str, Any]:
    """A copy of ``message`` with ``payment-submitted``, the mandate and the extension URI."""
    out = copy.deepcopy(message)
    meta = dict(out.get("metadata") or {})
    meta[STATUS] = "payment-submitted"
    meta[MANDATE] = signed.envelope
    out["metadata"] = meta
    ext = list(out.get("extensions") or [])
    if EXTENSION_URI not in ext:
        ext.append(EXTENSION_URI)
    out["extensions"] = ext
    return out


def _status_message(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The message holding AEP2 metadata: a task's ``status.message``, or the object itself."""
    status = obj.get("status")
    if isinstance(status, dict) and isinstance(status.get("message"), dict):
        return status["message"]
    if "metadata" in obj:
        return obj
    return None


def payment_status(obj: dict[str, Any]) -> str | None:
    """``aep2.dev/status`` of a task (its status message) or message, if any."""
    msg = _status_message(obj)
    meta = (msg or {}).get("metadata") or {}
    value = meta.get(STATUS)
    return value if isinstance(value, str) else None


def requirements_of(obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The x402 entries of a ``payment-required`` status (spec §11.6), else ``None``."""
    if payment_status(obj) != "payment-required":
        return None
    reqs = ((_status_message(obj) or {}).get("metadata") or {}).get(REQUIREMENTS)
    if (
        not isinstance(reqs, list)
        or not 1 <= len(reqs) <= 8
        or any(not isinstance(r, dict) or r.get("scheme") != SCHEME for r in reqs)
    ):
        raise Aep2Error("x402_scheme_unsupported", "aep2.dev/requirements is not 1 to 8 aep2 entries")
    return reqs


def receipt_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """``aep2.dev/receipt`` of a ``payment-verified`` / ``payment-completed`` status."""
    value = ((_status_message(obj) or {}).get("metadata") or {}).get(RECEIPT)
    return value if isinstance(value, dict) else None


def error_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """``aep2.dev/error`` (``{code, message}``) of a ``payment-rejected`` status."""
    value = ((_status_message(obj) or {}).get("metadata") or {}).get(ERROR)
    return value if isinstance(value, dict) else None


def pay_message(payer: Aep2Payer, message: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """Intent Mode: ``message`` with a mandate bound to it (its A2A request hash) under ``entry``."""
    if (entry.get("extra") or {}).get("quote"):
        raise Aep2Error("request_mismatch", "an entry with a quote is paid with pay_quote (Order Mode)")
    request_hash, _ = a2a_request_hash(message)
    return attach_mandate(message, payer.mandate_for(entry, request_hash=request_hash))


def pay_quote(payer: Aep2Payer, task: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    """Order Mode: ``reply`` (a user message) paying the quote of ``task``'s ``input-required`` status."""
    reqs = requirements_of(task)
    if not reqs:
        raise Aep2Error("payment_missing", "the task does not ask for payment")
    entry = next((r for r in reqs if (r.get("extra") or {}).get("quote")), None)
    if entry is None:
        raise Aep2Error("missing_field", "no requirement carries extra.quote")
    out = dict(reply)
    task_id = task.get("id")
    if isinstance(task_id, str):
        out["taskId"] = task_id
    return attach_mandate(out, payer.mandate_for(entry))
