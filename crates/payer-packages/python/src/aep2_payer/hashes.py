"""Request hashes (spec §10.5 HTTP, §11.8 A2A message, §12.6 MCP tool call) and the quote hash (§9.2).

Each returns ``(hash, descriptor)``: the ``0x`` hex hash a mandate's ``ref`` carries, and the
canonical descriptor text it was computed over (useful in logs and tests).
"""

from __future__ import annotations

import re
from typing import Any

from . import codec, jcs
from .errors import Aep2Error

_HTTP_TAG = b"AEP2/http-request/v1\0"
_A2A_TAG = b"AEP2/a2a-message/v1\0"
_MCP_TAG = b"AEP2/mcp-tool-call/v1\0"
_QUOTE_TAG = b"AEP2/payment-request/v1\0"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}")
_MAX_URL = 8000


def _bad(msg: str) -> Aep2Error:
    return Aep2Error("request_descriptor_invalid", msg)


def _tagged(tag: bytes, descriptor: str) -> str:
    return codec.hex0x(codec.sha256(tag + descriptor.encode("utf-8")))


def canonical_url(url: str) -> str:
    """The canonical form of an absolute http(s) URL (spec §10.5)."""
    if len(url.encode("utf-8")) > _MAX_URL:
        raise _bad(f"the URL is longer than {_MAX_URL} bytes")
    if not url or any(not 0x21 <= ord(c) <= 0x7E for c in url):
        raise _bad("the URL has characters outside printable ASCII")
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?", url)
    if not m:
        raise _bad("not an absolute URL")
    scheme, authority, path, query = m.group(1).lower(), m.group(2), m.group(3), m.group(4) or ""
    if scheme not in ("http", "https"):
        raise _bad("the scheme is not http or https")
    if "@" in authority:
        raise _bad("the URL has userinfo")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise _bad("an unterminated IPv6 literal")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _bad("junk after the IPv6 literal")
        port = rest[1:] if rest else None
    else:
        host, sep, port_text = authority.partition(":")
        port = port_text if sep else None
    if not host:
        raise _bad("the host is empty")
    host = host.lower()
    if port:
        if not port.isdigit():
            raise _bad("the port is not decimal")
        n = int(port)
        if not 0 < n <= 65535:
            raise _bad("the port is out of range")
        if n == (80 if scheme == "http" else 443):
            port = None
        else:
            port = str(n)
    else:
        port = None
    return f"{scheme}://{host}{':' + port if port else ''}{path or '/'}{query}"


def http_request_hash(method: str, url: str, body: bytes = b"") -> tuple[str, str]:
    """Spec §10.5: ``SHA-256("AEP2/http-request/v1" ‖ 0x00 ‖ JCS({method, url, bodySha256}))``."""
    if not isinstance(method, str) or not _TOKEN.fullmatch(method):
        raise _bad("the method is not an RFC 9110 token of 1 to 32 bytes")
    descriptor = jcs.canonical(
        {"method": method.upper(), "url": canonical_url(url), "bodySha256": codec.sha256(body).hex()}
    )
    return _tagged(_HTTP_TAG, descriptor), descriptor


def mcp_request_hash(name: str, arguments: Any = None) -> tuple[str, str]:
    """Spec §12.6 over a tool name and its arguments (a dict, JSON text, or ``None`` for absent)."""
    if isinstance(arguments, (str, bytes)):
        arguments = jcs.loads(arguments, jcs.MCP_MESSAGE)
    if arguments is None:
        arguments = {}
    if not isinstance(name, str) or not 1 <= len(name.encode("utf-8", "surrogatepass")) <= 128:
        raise _bad("the tool name is not 1 to 128 bytes of UTF-8")
    if not isinstance(arguments, dict):
        raise _bad("the arguments are not an object")
    descriptor = jcs.canonical({"name": name, "arguments": arguments})
    return _tagged(_MCP_TAG, descriptor), descriptor


_QUOTE_MEMBERS = (
    "aep2", "kind", "profile", "domain", "requestId", "payee", "asset", "amount", "expiry",
    "description", "settlementProcessor", "settlementWindow",
)  # fmt: skip


def quote_hash(quote: dict[str, Any]) -> str:
    """Spec §9.2 over a payment request as issued (its addresses rewritten in EIP-55 form).

    The member set is checked first (``field_type``, ``unknown_field``, ``missing_field``), so a
    malformed quote is refused with its code before anything is signed for it."""
    if not isinstance(quote, dict):
        raise Aep2Error("field_type", "the quote is not an object")
    members = [m for m in _QUOTE_MEMBERS if not (m == "domain" and quote.get("profile") == "solana-mvp")]
    for k in quote:
        if k not in members:
            raise Aep2Error("unknown_field", f"unknown quote member {k[:64]!r}")
    for k in members:
        if k not in quote:
            raise Aep2Error("missing_field", f"the quote lacks {k!r}")
    for k in ("aep2", "expiry", "settlementWindow"):
        if isinstance(quote[k], bool) or not isinstance(quote[k], int) or not 0 <= quote[k] <= 2**53 - 1:
            raise Aep2Error("field_type", f"quote {k} is not an integer")
    if not all(isinstance(quote[k], str) for k in ("kind", "profile", "requestId", "description", "amount")):
        raise Aep2Error("field_type", "a quote member that must be a string is not")
    q = dict(quote)
    if q.get("profile") == "eip712":
        for k in ("payee", "asset", "settlementProcessor"):
            q[k] = codec.to_checksum(codec.parse_address(q[k]))
        d = dict(q["domain"])
        d["verifyingContract"] = codec.to_checksum(codec.parse_address(d["verifyingContract"]))
        q["domain"] = d
    return codec.hex0x(codec.sha256(_QUOTE_TAG + jcs.canonical(q).encode("utf-8")))


# --- A2A (spec §11.3 reading, §11.8 descriptor) -------------------------------------------------

_A2A_MEMBERS = ("messageId", "contextId", "taskId", "role", "parts", "metadata", "extensions", "referenceTaskIds")
_A2A_STATUSES = ("payment-required", "payment-submitted", "payment-verified", "payment-completed", "payment-rejected")
_A2A_KEYS = ("aep2.dev/status", "aep2.dev/requirements", "aep2.dev/mandate", "aep2.dev/receipt", "aep2.dev/error")


def _inv(msg: str) -> Aep2Error:
    return Aep2Error("a2a_message_invalid", msg)


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise _inv(f"{what} is not a string")
    try:
        return codec.b64decode_canonical(value)
    except Aep2Error:
        raise _inv(f"{what} is not canonical base64") from None


def _part(p: Any, v03: bool, i: int) -> dict[str, Any]:
    what = f"parts[{i}]"
    if not isinstance(p, dict):
        raise _inv(f"{what} is not an object")
    out: dict[str, Any] = {}
    if not v03:
        if "kind" in p:
            raise _inv(f"{what} has a v0.3 kind in a v1.0 message")
        for k in p:
            if k not in ("text", "raw", "url", "data", "metadata", "filename", "mediaType"):
                raise _inv(f"{what} has an unknown member {k!r}")
        present = [k for k in ("text", "raw", "url", "data") if k in p]
        if len(present) != 1:
            raise _inv(f"{what} must have exactly one of text, raw, url, data")
        which = present[0]
        if which in ("text", "url"):
            if not isinstance(p[which], str):
                raise _inv(f"{what}.{which} is not a string")
            out[which] = p[which]
        elif which == "raw":
            out["rawSha256"] = codec.sha256(_b64(p["raw"], what + ".raw")).hex()
        else:
            out["data"] = p["data"]
        for k in ("filename", "mediaType"):
            if k in p:
                if not isinstance(p[k], str):
                    raise _inv(f"{what}.{k} is not a string")
                out[k] = p[k]
        if "metadata" in p and not isinstance(p["metadata"], dict):
            raise _inv(f"{what}.metadata is not an object")
        return out
    kind = p.get("kind")
    allowed = {
        "text": ("kind", "text", "metadata"),
        "file": ("kind", "file", "metadata"),
        "data": ("kind", "data", "metadata"),
    }
    if kind not in allowed:
        raise _inv(f"{what}.kind is not text, file or data")
    for k in p:
        if k not in allowed[kind]:
            raise _inv(f"{what} has an unknown member {k!r}")
    if kind not in p:
        raise _inv(f"{what} lacks its {kind} member")
    if "metadata" in p and not isinstance(p["metadata"], dict):
        raise _inv(f"{what}.metadata is not an object")
    if kind == "text":
        if not isinstance(p["text"], str):
            raise _inv(f"{what}.text is not a string")
        return {"text": p["text"]}
    if kind == "data":
        if not isinstance(p["data"], dict):
            raise _inv(f"{what}.data is not an object")
        return {"data": p["data"]}
    f = p["file"]
    if not isinstance(f, dict):
        raise _inv(f"{what}.file is not an object")
    for k in f:
        if k not in ("uri", "bytes", "name", "mimeType"):
            raise _inv(f"{what}.file has an unknown member {k!r}")
    present = [k for k in ("uri", "bytes") if k in f]
    if len(present) != 1:
        raise _inv(f"{what}.file must have exactly one of uri, bytes")
    if present[0] == "uri":
        if not isinstance(f["uri"], str):
            raise _inv(f"{what}.file.uri is not a string")
        out["url"] = f["uri"]
    else:
        out["rawSha256"] = codec.sha256(_b64(f["bytes"], what + ".file.bytes")).hex()
    for src, dst in (("name", "filename"), ("mimeType", "mediaType")):
        if src in f:
            if not isinstance(f[src], str):
                raise _inv(f"{what}.file.{src} is not a string")
            out[dst] = f[src]
    return out


def a2a_descriptor(message: Any) -> str:
    """The descriptor text of an A2A message (a dict, or its JSON text) read under spec §11.3."""
    if isinstance(message, (str, bytes)):
        if len(message if isinstance(message, bytes) else message.encode("utf-8")) > 65536:
            raise Aep2Error("header_too_large", "the message is longer than 65536 bytes")
        message = jcs.loads(message, jcs.A2A_MESSAGE)
    if not isinstance(message, dict):
        raise _inv("the message is not an object")
    v03 = "kind" in message
    if v03 and message["kind"] != "message":
        raise _inv("a v0.3 message has kind 'message'")
    for k in message:
        if k not in _A2A_MEMBERS and not (v03 and k == "kind"):
            raise _inv(f"unknown member {k!r}")
    for k in ("messageId", "role", "parts"):
        if k not in message:
            raise _inv(f"missing member {k!r}")
    if not isinstance(message["messageId"], str) or not message["messageId"]:
        raise _inv("messageId is not a non-empty string")
    for k in ("contextId", "taskId"):
        if k in message and not isinstance(message[k], str):
            raise _inv(f"{k} is not a string")
    for k in ("extensions", "referenceTaskIds"):
        if k in message and (not isinstance(message[k], list) or not all(isinstance(x, str) for x in message[k])):
            raise _inv(f"{k} is not an array of strings")
    meta = message.get("metadata", {})
    if not isinstance(meta, dict):
        raise _inv("metadata is not an object")
    for k in meta:
        if k.lower().startswith("aep2.dev/") and k not in _A2A_KEYS:
            raise _inv(f"unknown AEP2 metadata key {k!r}")
    roles = ("user", "agent") if v03 else ("ROLE_USER", "ROLE_AGENT")
    if message["role"] not in roles:
        raise _inv("role is not spelt for the message's generation")
    parts = message["parts"]
    if not isinstance(parts, list) or not parts:
        raise _inv("parts is not a non-empty array")
    read = [_part(p, v03, i) for i, p in enumerate(parts)]
    if message["role"] != roles[0]:
        raise _bad("an agent's message is not a request")
    d: dict[str, Any] = {"parts": read}
    for k in ("contextId", "taskId"):
        if k in message:
            d[k] = message[k]
    if message.get("referenceTaskIds"):
        d["referenceTaskIds"] = message["referenceTaskIds"]
    return jcs.canonical(d)


def a2a_request_hash(message: Any) -> tuple[str, str]:
    """Spec §11.8: ``SHA-256("AEP2/a2a-message/v1" ‖ 0x00 ‖ JCS(descriptor))``."""
    descriptor = a2a_descriptor(message)
    return _tagged(_A2A_TAG, descriptor), descriptor
