"""Checking the SP's ``mvp-evm`` receipt (spec §6.1) that a payee returns in ``PAYMENT-RESPONSE``."""

from __future__ import annotations

import re
from typing import Any

import coincurve

from . import codec
from .errors import Aep2Error
from .mandate import SignedMandate

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_PREFIX = b"\x19Ethereum Signed Message:\n32"


def verify_mvp_evm_receipt(receipt: Any, signed: SignedMandate, expected_sp: str | None = None) -> list[str]:
    """Checks an ``mvp-evm`` receipt for an ``eip712`` mandate; returns the checks performed.

    Signature (``sp`` recovered from ``spEnqueueSig`` over the EIP-191 hash of
    ``keccak256(mandateDigest ‖ word(enqueueDeadline))``), the expected SP when given, the
    mandate digest, and the deadline rule of §6.4. Raises :class:`Aep2Error` with the code.
    """
    if signed.profile != "eip712":
        raise Aep2Error("receipt_digest_mismatch", "an mvp-evm receipt belongs to an eip712 mandate")
    if not isinstance(receipt, dict) or set(receipt) != {"sp", "mandateDigest", "enqueueDeadline", "spEnqueueSig"}:
        raise Aep2Error("unknown_field" if isinstance(receipt, dict) else "field_type", "not an mvp-evm receipt")
    sp = codec.parse_address(receipt["sp"])
    digest_text = receipt["mandateDigest"]
    if not isinstance(digest_text, str) or not re.fullmatch(r"0x[0-9a-fA-F]{64}", digest_text):
        raise Aep2Error("field_type", "mandateDigest is not 0x and 64 hex digits")
    deadline = receipt["enqueueDeadline"]
    if isinstance(deadline, bool) or not isinstance(deadline, int) or not 0 <= deadline < 2**53:
        raise Aep2Error("field_type", "enqueueDeadline is not an integer")
    sig_text = receipt["spEnqueueSig"]
    if not isinstance(sig_text, str) or not re.fullmatch(r"0x([0-9a-fA-F]{2})*", sig_text):
        raise Aep2Error("signature_encoding", "spEnqueueSig is not 0x hex")
    sig = bytes.fromhex(sig_text[2:])
    if len(sig) != 65:
        raise Aep2Error("signature_length", "spEnqueueSig is not 65 bytes")
    if sig[64] not in (27, 28):
        raise Aep2Error("signature_v_invalid", "v is not 27 or 28")
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
    if not 0 < r < _N or not 0 < s <= _N // 2:
        raise Aep2Error("signature_invalid", "r or s out of range, or high s")
    commitment = codec.keccak256(bytes.fromhex(digest_text[2:]) + deadline.to_bytes(32, "big"))
    h = codec.keccak256(_PREFIX + commitment)
    try:
        pub = coincurve.PublicKey.from_signature_and_message(sig[:64] + bytes([sig[64] - 27]), h, hasher=None)
    except Exception:  # noqa: BLE001 - libsecp256k1 raises a bare Exception for unrecoverable input
        raise Aep2Error("signature_invalid", "no key recovers from spEnqueueSig") from None
    if codec.keccak256(pub.format(compressed=False)[1:])[12:] != sp:
        raise Aep2Error("signature_invalid", "spEnqueueSig was not made by sp")
    checks = ["signature"]
    if expected_sp is not None:
        if codec.parse_address(expected_sp) != sp:
            raise Aep2Error("receipt_sp_mismatch", "the receipt is from another SP")
        checks.append("sp")
    if bytes.fromhex(digest_text[2:]) != bytes.fromhex(signed.mandate_id[2:]):
        raise Aep2Error("receipt_digest_mismatch", "the receipt is for another mandate")
    checks.append("mandate-digest")
    if deadline > signed.mandate["deadline"]:
        raise Aep2Error("receipt_deadline_after_mandate", "the SP promises settlement after the deadline")
    checks.append("deadline-rule")
    return checks
