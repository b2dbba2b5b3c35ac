"""Byte encodings: base58 (Bitcoin alphabet), canonical base64, hex, EIP-55 addresses, hashes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from Crypto.Hash import keccak as _keccak

from .errors import Aep2Error

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak-256 (not NIST SHA3-256)."""
    return _keccak.new(digest_bits=256, data=data).digest()


def sha256(data: bytes) -> bytes:
    """SHA-256."""
    return hashlib.sha256(data).digest()


def b58encode(data: bytes) -> str:
    """Base58 text of ``data`` (leading zero bytes as ``1``)."""
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    """The bytes of base58 ``text``; ``address_invalid`` on a character outside the alphabet."""
    if len(text) > 128:
        raise Aep2Error("address_invalid", "base58 text too long")
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise Aep2Error("address_invalid", f"{c!r} is not a base58 digit")
        n = n * 58 + _B58_INDEX[c]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def b64encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode_canonical(text: str) -> bytes:
    """Decodes canonical standard base64 (spec §5.3 step 2), else ``base64_invalid``."""
    if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text) or len(text) % 4:
        raise Aep2Error("base64_invalid", "not canonical standard base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise Aep2Error("base64_invalid", "not canonical standard base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise Aep2Error("base64_invalid", "non-zero unused bits in the last symbol")
    return raw


def hex0x(data: bytes) -> str:
    """``0x`` + lowercase hex."""
    return "0x" + data.hex()


def parse_hex32(text: str, code: str = "ref_invalid") -> bytes:
    """``0x`` + 64 lowercase hex digits → 32 bytes."""
    if not isinstance(text, str) or not re.fullmatch(r"0x[0-9a-f]{64}", text):
        raise Aep2Error(code, "expected 0x and 64 lowercase hex digits")
    return bytes.fromhex(text[2:])


def to_checksum(addr: bytes) -> str:
    """EIP-55 form of a 20-byte address."""
    h = addr.hex()
    k = keccak256(h.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(k[i], 16) >= 8 else c for i, c in enumerate(h))


def parse_address(text: str) -> bytes:
    """An EVM address (spec §3.2): single-case, or mixed case with a valid EIP-55 checksum."""
    if not isinstance(text, str):
        raise Aep2Error("field_type", "an address must be a string")
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", text):
        raise Aep2Error("address_invalid", f"{text[:50]!r} is not 0x and 40 hex digits")
    raw = bytes.fromhex(text[2:])
    body = text[2:]
    if body != body.lower() and body != body.upper() and to_checksum(raw) != text:
        raise Aep2Error("address_checksum", f"{text} fails its EIP-55 checksum")
    return raw


def parse_key32(text: str) -> bytes:
    """Base58 text of exactly 32 bytes (an Ed25519 key, mint or program id)."""
    if not isinstance(text, str):
        raise Aep2Error("field_type", "a key must be a string")
    raw = b58decode(text)
    if len(raw) != 32 or not text:
        raise Aep2Error("address_invalid", "base58 text that is not 32 bytes")
    return raw
