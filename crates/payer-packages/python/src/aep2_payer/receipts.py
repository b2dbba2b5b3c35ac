"""Checking the SP's receipt that a payee returns in ``PAYMENT-RESPONSE``: ``mvp-evm`` (spec §6.1)
and native ``eip712`` (§6.3) receipts of ``eip712`` mandates, native ``ed25519`` receipts, with the
``lane`` member a receipt of a mandate under a spending lane states (spec §18.7)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import coincurve
from Crypto.Signature import eddsa

from . import codec
from .errors import Aep2Error
from .jcs import canonical
from .mandate import Ed25519Domain, Eip712Domain, SignedMandate, _uint, domain_from_json

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_PREFIX = b"\x19Ethereum Signed Message:\n32"
_RECEIPT_TYPEHASH = codec.keccak256(b"Receipt(address sp,bytes32 mandateDigest,uint256 enqueueDeadline)")
_LANE_RECEIPT_TYPEHASH = codec.keccak256(
    b"LaneReceipt(address sp,bytes32 mandateDigest,uint256 enqueueDeadline,bytes32 lane,uint256 remaining)"
)
_DOMAIN_TYPEHASH = codec.keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


def _recover(sig_text: Any, digest: bytes) -> bytes:
    """The address recovered from a 65-byte ``0x`` signature under the secp256k1 rules of §4.1.2."""
    if not isinstance(sig_text, str) or not re.fullmatch(r"0x([0-9a-fA-F]{2})*", sig_text):
        raise Aep2Error("signature_encoding", "the signature is not 0x hex")
    sig = bytes.fromhex(sig_text[2:])
    if len(sig) != 65:
        raise Aep2Error("signature_length", "the signature is not 65 bytes")
    if sig[64] not in (27, 28):
        raise Aep2Error("signature_v_invalid", "v is not 27 or 28")
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
    if not 0 < r < _N or not 0 < s <= _N // 2:
        raise Aep2Error("signature_invalid", "r or s out of range, or high s")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(sig[:64] + bytes([sig[64] - 27]), digest, hasher=None)
    except Exception:  # noqa: BLE001 - libsecp256k1 raises a bare Exception for unrecoverable input
        raise Aep2Error("signature_invalid", "no key recovers from the signature") from None
    return codec.keccak256(pub.format(compressed=False)[1:])[12:]


@dataclass(frozen=True)
class ReceiptLane:
    """A receipt's ``lane`` member (spec §18.7): the mandate's leaf lane and what the SP states can
    still be spent under it, its ancestors included, after this payment."""

    id: str
    remaining: int


@dataclass(frozen=True)
class ReceiptCheck:
    """What :func:`check_receipt` verified: the checks run, the SP, the promise, and the lane."""

    checks: list[str]
    sp: str
    enqueue_deadline: int
    lane: ReceiptLane | None = None


def _lane_member(v: Any) -> ReceiptLane:
    if not isinstance(v, dict):
        raise Aep2Error("field_type", "receipt.lane is not an object")
    for k in v:
        if k not in ("id", "remaining"):
            raise Aep2Error("unknown_field", f"receipt.lane member {k!r}")
    for k in ("id", "remaining"):
        if k not in v:
            raise Aep2Error("missing_field", f"receipt.lane member {k!r}")
    if not isinstance(v["id"], str) or not re.fullmatch(r"0x[0-9a-fA-F]{64}", v["id"]):
        raise Aep2Error("field_type", "receipt.lane.id is not 0x and 64 hex digits")
    return ReceiptLane("0x" + v["id"][2:].lower(), _uint(v["remaining"], "receipt.lane.remaining", 2**256 - 1))


def _lane_check(lane: ReceiptLane | None, signed: SignedMandate, checks: list[str]) -> None:
    # Check 5 (spec §18.7): the receipt of a mandate under a lane states that mandate's leaf.
    leaf = getattr(signed, "lane_id", "")
    if not leaf:
        return
    if lane is None:
        raise Aep2Error("receipt_lane_mismatch", "a receipt for a mandate under a lane must state the lane")
    if lane.id != leaf.lower():
        raise Aep2Error("receipt_lane_mismatch", f"the receipt states lane {lane.id}, the mandate's leaf is {leaf}")
    checks.append("lane")


def _policy(sp: bytes, digest_text: str, deadline: int, signed: SignedMandate, expected_sp: str | None) -> list[str]:
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


def _digest_and_deadline(receipt: dict[str, Any]) -> tuple[str, int]:
    digest_text = receipt["mandateDigest"]
    if not isinstance(digest_text, str) or not re.fullmatch(r"0x[0-9a-fA-F]{64}", digest_text):
        raise Aep2Error("field_type", "mandateDigest is not 0x and 64 hex digits")
    deadline = receipt["enqueueDeadline"]
    if isinstance(deadline, bool) or not isinstance(deadline, int) or not 0 <= deadline < 2**53:
        raise Aep2Error("field_type", "enqueueDeadline is not an integer")
    return digest_text, deadline


def verify_receipt(receipt: Any, signed: SignedMandate, expected_sp: str | None = None) -> list[str]:
    """Checks the receipt of an ``eip712`` mandate in either form; returns the checks performed.
    For a mandate signed under a lane (:func:`aep2_payer.sign_lane_mandate`) the receipt must state
    its leaf lane (``receipt_lane_mismatch``); :func:`check_receipt` also returns the lane's
    ``remaining``."""
    return check_receipt(receipt, signed, expected_sp).checks


def check_receipt(receipt: Any, signed: SignedMandate, expected_sp: str | None = None) -> ReceiptCheck:
    """Like :func:`verify_receipt`, returning the :class:`ReceiptCheck`: the checks, the SP, the
    ``enqueueDeadline`` and, for a receipt stating a lane, its ``id`` and ``remaining``."""
    if isinstance(receipt, dict) and "aep2" in receipt:
        if receipt.get("profile") == "ed25519":
            return _check_native_ed25519(receipt, signed, expected_sp)
        return _check_native_eip712(receipt, signed, expected_sp)
    return _check_mvp_evm(receipt, signed, expected_sp)


_ED25519_RECEIPT_TAG = b"AEP2/ed25519/receipt/v1\0"


def _check_native_ed25519(receipt: dict[str, Any], signed: SignedMandate, expected_sp: str | None) -> ReceiptCheck:
    """A native ``ed25519`` receipt (spec §6.3): schema, the Ed25519 signature by ``sp`` over
    ``"AEP2/ed25519/receipt/v1" ‖ 0x00 ‖ JCS({domain, receipt: {sp, mandateDigest, enqueueDeadline,
    lane?}})``, then the expected SP, the domain, the mandate digest, the deadline rule and the lane."""
    members = {"aep2", "kind", "profile", "domain", "sp", "mandateDigest", "enqueueDeadline", "signature"}
    if not members <= set(receipt) or not set(receipt) <= members | {"lane"}:
        raise Aep2Error("unknown_field", "not a native receipt")
    if receipt["aep2"] != 1 or receipt["kind"] != "receipt":
        raise Aep2Error("field_type", "not an AEP2 v1 receipt")
    domain = domain_from_json("ed25519", receipt["domain"])
    assert isinstance(domain, Ed25519Domain)
    sp_text = receipt["sp"]
    sp = codec.parse_key32(sp_text)
    digest_text, deadline = _digest_and_deadline(receipt)
    lane = _lane_member(receipt["lane"]) if "lane" in receipt else None
    body: dict[str, Any] = {"sp": sp_text, "mandateDigest": digest_text.lower(), "enqueueDeadline": deadline}
    if lane is not None:
        body["lane"] = {"id": lane.id, "remaining": str(lane.remaining)}
    msg = _ED25519_RECEIPT_TAG + canonical({"domain": domain.to_json(), "receipt": body}).encode("utf-8")
    sig_text = receipt["signature"]
    if not isinstance(sig_text, str) or not re.fullmatch(r"[1-9A-HJ-NP-Za-km-z]+", sig_text):
        raise Aep2Error("signature_encoding", "the signature is not base58")
    sig = codec.b58decode(sig_text)
    if len(sig) != 64:
        raise Aep2Error("signature_length", "the signature is not 64 bytes")
    try:
        eddsa.new(eddsa.import_public_key(sp), "rfc8032").verify(msg, sig)
    except ValueError:
        raise Aep2Error("signature_invalid", "the receipt was not signed by sp") from None
    checks = ["signature"]
    if expected_sp is not None:
        if expected_sp != sp_text:
            raise Aep2Error("receipt_sp_mismatch", "the receipt is from another SP")
        checks.append("sp")
    mandate_domain = getattr(signed, "domain", None) or (
        domain_from_json("ed25519", signed.envelope["domain"]) if "domain" in signed.envelope else None
    )
    if mandate_domain is not None and mandate_domain.to_json() != domain.to_json():
        raise Aep2Error("domain_mismatch", "the receipt names another deployment")
    if signed.profile != "ed25519" or digest_text.lower() != signed.mandate_id.lower():
        raise Aep2Error("receipt_digest_mismatch", "the receipt is for another mandate")
    checks.append("mandate-digest")
    if deadline > signed.mandate["deadline"]:
        raise Aep2Error("receipt_deadline_after_mandate", "the SP promises settlement after the deadline")
    checks.append("deadline-rule")
    _lane_check(lane, signed, checks)
    return ReceiptCheck(checks, sp_text, deadline, lane)


def verify_native_eip712_receipt(receipt: Any, signed: SignedMandate, expected_sp: str | None = None) -> list[str]:
    """Checks a native ``eip712`` receipt (spec §6.3): schema, the EIP-712 ``Receipt`` signature
    (``LaneReceipt`` for a receipt stating a ``lane``, spec §18.7) by ``sp`` under the receipt's own
    domain, then the domain is the mandate's (``domain_mismatch``), the expected SP, the mandate
    digest, the deadline rule, and for a mandate under a lane the lane it states."""
    return _check_native_eip712(receipt, signed, expected_sp).checks


def _check_native_eip712(receipt: Any, signed: SignedMandate, expected_sp: str | None) -> ReceiptCheck:
    members = {"aep2", "kind", "profile", "domain", "sp", "mandateDigest", "enqueueDeadline", "signature"}
    if not isinstance(receipt, dict) or not members <= set(receipt) or not set(receipt) <= members | {"lane"}:
        raise Aep2Error("unknown_field" if isinstance(receipt, dict) else "field_type", "not a native receipt")
    if receipt["aep2"] != 1 or receipt["kind"] != "receipt":
        raise Aep2Error("field_type", "not an AEP2 v1 receipt")
    if receipt["profile"] != "eip712" or signed.profile != "eip712":
        raise Aep2Error("receipt_digest_mismatch", "only eip712 native receipts are checked here")
    domain = domain_from_json("eip712", receipt["domain"])
    assert isinstance(domain, Eip712Domain)
    sp = codec.parse_address(receipt["sp"])
    digest_text, deadline = _digest_and_deadline(receipt)
    lane = _lane_member(receipt["lane"]) if "lane" in receipt else None
    separator = codec.keccak256(
        _DOMAIN_TYPEHASH
        + codec.keccak256(b"AEP2SettlementProcessor")
        + codec.keccak256(b"1")
        + domain.chain_id.to_bytes(32, "big")
        + b"\0" * 12
        + codec.parse_address(domain.verifying_contract)
    )
    body = _RECEIPT_TYPEHASH if lane is None else _LANE_RECEIPT_TYPEHASH
    body += b"\0" * 12 + sp + bytes.fromhex(digest_text[2:]) + deadline.to_bytes(32, "big")
    if lane is not None:
        body += bytes.fromhex(lane.id[2:]) + lane.remaining.to_bytes(32, "big")
    struct = codec.keccak256(body)
    if _recover(receipt["signature"], codec.keccak256(b"\x19\x01" + separator + struct)) != sp:
        raise Aep2Error("signature_invalid", "the receipt was not signed by sp")
    known = getattr(signed, "domain", None)
    mandate_domain = known.to_json() if known is not None else signed.envelope.get("domain")
    if mandate_domain is not None and domain.to_json() != domain_from_json("eip712", mandate_domain).to_json():
        raise Aep2Error("domain_mismatch", "the receipt names another deployment")
    checks = _policy(sp, digest_text, deadline, signed, expected_sp)
    _lane_check(lane, signed, checks)
    return ReceiptCheck(checks, codec.to_checksum(sp), deadline, lane)


def verify_mvp_evm_receipt(receipt: Any, signed: SignedMandate, expected_sp: str | None = None) -> list[str]:
    """Checks an ``mvp-evm`` receipt for an ``eip712`` mandate; returns the checks performed (see
    :func:`_check_mvp_evm`)."""
    return _check_mvp_evm(receipt, signed, expected_sp).checks


def _check_mvp_evm(receipt: Any, signed: SignedMandate, expected_sp: str | None = None) -> ReceiptCheck:
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
    digest_text, deadline = _digest_and_deadline(receipt)
    commitment = codec.keccak256(bytes.fromhex(digest_text[2:]) + deadline.to_bytes(32, "big"))
    if _recover(receipt["spEnqueueSig"], codec.keccak256(_PREFIX + commitment)) != sp:
        raise Aep2Error("signature_invalid", "spEnqueueSig was not made by sp")
    checks = _policy(sp, digest_text, deadline, signed, expected_sp)
    _lane_check(None, signed, checks)  # a mandate under a lane gets a native receipt stating it
    return ReceiptCheck(checks, codec.to_checksum(sp), deadline)
