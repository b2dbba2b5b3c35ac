"""Strict JSON reading (spec §5.4) within given limits, and RFC 8785 (JCS) writing.

Python's ``json`` module is lenient where AEP2 is strict (duplicate members, lone surrogates,
``NaN``, numbers beyond the double range) and recursive (deep input exhausts the stack), so the
text is first scanned once for nesting depth and number length, then parsed with hooks that refuse
what the spec refuses. Every number is read as its IEEE 754 double, which is what JCS writes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import Aep2Error


@dataclass(frozen=True)
class Limits:
    """Bounds on one JSON text (spec §5.5 for AEP2 objects, §12.2 and §11.3 for messages)."""

    depth: int
    string_bytes: int
    members: int
    number_chars: int


#: The envelope limits of spec §5.5.
ENVELOPE = Limits(depth=8, string_bytes=1024, members=32, number_chars=24)
#: The MCP message limits of spec §12.2.
MCP_MESSAGE = Limits(depth=16, string_bytes=16384, members=256, number_chars=64)
#: The A2A message limits of spec §11.3 (strings bounded by the 65536-byte text).
A2A_MESSAGE = Limits(depth=16, string_bytes=65536, members=128, number_chars=32)


def _scan(text: str, limits: Limits) -> None:
    """One pass over the text outside strings: nesting depth and number-token length."""
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "[{":
            depth += 1
            if depth > limits.depth:
                raise Aep2Error("json_limit_exceeded", f"nesting deeper than {limits.depth}")
        elif c in "]}":
            depth -= 1
        elif c == "-" or c.isdigit():
            j = i
            while j < n and text[j] in "+-.eE0123456789":
                j += 1
            if j - i > limits.number_chars:
                raise Aep2Error("json_limit_exceeded", f"a number token longer than {limits.number_chars}")
            i = j
            continue
        i += 1


def _number(token: str) -> float:
    value = float(token)
    if math.isinf(value):
        raise Aep2Error("json_invalid", f"number {token[:32]} is beyond the double range")
    return value


def _constant(token: str) -> Any:
    raise Aep2Error("json_invalid", f"{token} is not JSON")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise Aep2Error("json_duplicate_key", f"duplicate member {k[:64]!r}")
        out[k] = v
    return out


def _check(value: Any, limits: Limits) -> None:
    if isinstance(value, str):
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise Aep2Error("json_invalid", "a lone surrogate escape") from None
        if size > limits.string_bytes:
            raise Aep2Error("json_limit_exceeded", f"a string longer than {limits.string_bytes} bytes")
    elif isinstance(value, dict):
        if len(value) > limits.members:
            raise Aep2Error("json_limit_exceeded", f"an object with more than {limits.members} members")
        for k, v in value.items():
            _check(k, limits)
            _check(v, limits)
    elif isinstance(value, list):
        if len(value) > limits.members:
            raise Aep2Error("json_limit_exceeded", f"an array with more than {limits.members} elements")
        for v in value:
            _check(v, limits)


def loads(text: str | bytes, limits: Limits) -> Any:
    """Parses one JSON text strictly; numbers become floats (their double value)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise Aep2Error("utf8_invalid", "the text is not UTF-8") from None
    if text.startswith("\ufeff"):
        raise Aep2Error("json_invalid", "a byte-order mark")
    _scan(text, limits)
    try:
        value = json.loads(
            text,
            parse_float=_number,
            parse_int=_number,
            parse_constant=_constant,
            object_pairs_hook=_pairs,
            strict=True,
        )
    except json.JSONDecodeError as e:
        raise Aep2Error("json_invalid", str(e)) from None
    _check(value, limits)
    return value


def _es_number(x: float) -> str:
    """ECMAScript Number-to-String of a finite double (RFC 8785 §3.2.2.3)."""
    if x == 0:
        return "0"
    if math.isinf(x) or math.isnan(x):
        raise Aep2Error("json_invalid", "a number without an RFC 8785 form")
    sign = "-" if x < 0 else ""
    # repr() gives the shortest digits that round-trip, as ECMAScript requires.
    _, digits_t, exp = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    exp = int(exp) + (len(digits_t) - len(digits))
    k = len(digits)
    n = k + exp  # the value is 0.digits × 10^n
    if k <= n <= 21:
        s = digits + "0" * (n - k)
    elif 0 < n <= 21:
        s = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mant = digits[0] + ("." + digits[1:] if k > 1 else "")
        s = f"{mant}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + s


def _string(s: str) -> str:
    # json.dumps with ensure_ascii=False escapes exactly as JSON.stringify does (lowercase \u00xx).
    return json.dumps(s, ensure_ascii=False)


def canonical(value: Any) -> str:
    """The RFC 8785 text of a JSON value (dicts, lists, str, bool, None, int, float)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        # Integers are their double value (RFC 8785): exact up to 2^53, rounded above.
        return _es_number(float(value)) if abs(value) > 2**53 else str(value)
    if isinstance(value, float):
        return _es_number(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_string(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def compact(value: Any) -> str:
    """Compact JSON in member order, as ``JSON.stringify`` writes it (for envelopes and headers)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
