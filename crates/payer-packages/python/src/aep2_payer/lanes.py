"""Spending lanes (spec §18): an owner's bounded, signed grant to an agent, narrowed link by link for
sub-agents (at most 3 links), and mandates the leaf's agent signs under the chain.

Byte for byte as the reference implementation (``crates/aep2/src/lane.rs``) writes and signs them:
the EIP-712 ``Lane`` and ``LaneMandate`` types under the debit wallet's domain (``eip712``), the
tags ``AEP2/ed25519/lane/v1`` and ``AEP2/ed25519/lane-mandate/v1`` with JCS (``ed25519``).

An agent loads the lane file that ``aep2 lane grant`` (or :func:`grant_lane`) printed for it with
:func:`load_lane_file` and signs with :func:`sign_lane_mandate`, or gives it to
:class:`aep2_payer.Aep2Payer` as ``lane=``.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from Crypto.Signature import eddsa

from . import codec
from .errors import Aep2Error
from .jcs import ENVELOPE as _ENVELOPE_LIMITS
from .jcs import canonical, compact
from .jcs import loads as _strict_loads
from .mandate import (
    _MAX_SAFE,
    _MAX_U64,
    _MAX_U256,
    Domain,
    Ed25519Domain,
    Ed25519Key,
    Eip712Domain,
    PayerKey,
    Secp256k1Key,
    SignedMandate,
    _uint,
    domain_from_json,
    normalize_mandate,
    unix_now,
)

#: The most links a chain has (owner → agent → sub-agent → its sub-agent), spec §18.3.
MAX_LANE_DEPTH = 3
#: The most payees a lane lists.
MAX_LANE_PAYEES = 8
#: The longest ``purpose``, in bytes of UTF-8.
MAX_PURPOSE_BYTES = 64
#: The members of a lane, in definition order (spec §18.1).
LANE_FIELDS = (
    "owner",
    "agent",
    "token",
    "perPayment",
    "total",
    "maxPayments",
    "period",
    "allowance",
    "payees",
    "validFrom",
    "validUntil",
    "purpose",
    "parent",
    "salt",
)
#: A root lane's ``parent``.
ZERO_ID = "0x" + "00" * 32
_MAX_HEADER_BYTES = 8192
_LANE_TYPEHASH = codec.keccak256(
    b"Lane(address owner,address agent,address token,uint256 perPayment,uint256 total,uint256 maxPayments,"
    b"uint256 period,uint256 allowance,address[] payees,uint256 validFrom,uint256 validUntil,string purpose,"
    b"bytes32 parent,bytes32 salt)"
)
_LANE_MANDATE_TYPEHASH = codec.keccak256(
    b"LaneMandate(address owner,address token,address payee,uint256 amount,uint256 nonce,uint256 deadline,"
    b"bytes32 ref,bytes32 lane)"
)
_ED25519_LANE_TAG = b"AEP2/ed25519/lane/v1\0"
_ED25519_LANE_MANDATE_TAG = b"AEP2/ed25519/lane-mandate/v1\0"
# Characters JSON escapes (spec §18.1): C0 and C1 controls, DEL, the quote and the backslash.
_PURPOSE_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f-\x9f"\\]')


def _check_profile(profile: str) -> None:
    if profile == "solana-mvp":
        raise Aep2Error("unsupported_profile", "solana-mvp has no lanes")
    if profile not in ("eip712", "ed25519"):
        raise Aep2Error("unsupported_profile", f"unknown profile {profile!r}")


def _closed(v: Any, what: str, names: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise Aep2Error("field_type", f"{what} must be an object")
    for k in v:
        if k not in names:
            raise Aep2Error("unknown_field", f"{what}: unknown member {k!r}")
    for k in names:
        if k not in v:
            raise Aep2Error("missing_field", f"{what}: missing member {k!r}")
    return v


def _account(profile: str, v: Any) -> bytes:
    if not isinstance(v, str):
        raise Aep2Error("field_type", "an account must be a string")
    return codec.parse_address(v) if profile == "eip712" else codec.parse_key32(v)


def _int53(v: Any, what: str) -> int:
    # A JSON integer token: a float (1.0, 1e3) or a negative number is not one (uint_invalid).
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Aep2Error("field_type", f"{what} must be a JSON integer")
    if isinstance(v, float) or v < 0:
        raise Aep2Error("uint_invalid", f"{what} must be a plain non-negative integer")
    if v > _MAX_SAFE:
        raise Aep2Error("uint_out_of_range", f"{what} exceeds 2^53 - 1")
    return v


def _bytes32(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise Aep2Error("field_type", f"{what} must be a string")
    codec.parse_hex32(v, "ref_invalid")
    return v


@dataclass(frozen=True)
class Lane:
    """A lane (spec §18.1), its members decoded: accounts as bytes, amounts as ints."""

    profile: str
    owner: bytes
    agent: bytes
    token: bytes
    per_payment: int
    total: int
    max_payments: int
    period: int
    allowance: int
    payees: tuple[bytes, ...]
    valid_from: int
    valid_until: int
    purpose: str
    parent: str
    salt: str

    def _key(self, b: bytes) -> str:
        return codec.to_checksum(b) if self.profile == "eip712" else codec.b58encode(b)

    def to_json(self) -> dict[str, Any]:
        """The lane object as the reference writes it: definition order, EIP-55 addresses."""
        return {
            "owner": self._key(self.owner),
            "agent": self._key(self.agent),
            "token": self._key(self.token),
            "perPayment": str(self.per_payment),
            "total": str(self.total),
            "maxPayments": self.max_payments,
            "period": self.period,
            "allowance": str(self.allowance),
            "payees": [self._key(p) for p in self.payees],
            "validFrom": self.valid_from,
            "validUntil": self.valid_until,
            "purpose": self.purpose,
            "parent": self.parent,
            "salt": self.salt,
        }

    @property
    def owner_text(self) -> str:
        """The owner as it appears in a mandate (EIP-55 or base58)."""
        return self._key(self.owner)

    @property
    def agent_text(self) -> str:
        """The agent as it appears in a mandate (EIP-55 or base58)."""
        return self._key(self.agent)


def parse_lane(profile: str, v: Any) -> Lane:
    """Parses a lane object (spec §18.1): member set (unknown, then missing), each member's type and
    format in definition order, then the value rules (``lane_invalid``)."""
    _check_profile(profile)
    _closed(v, "lane", LANE_FIELDS)
    top = _MAX_U256 if profile == "eip712" else _MAX_U64
    owner = _account(profile, v["owner"])
    agent = _account(profile, v["agent"])
    token = _account(profile, v["token"])
    per_payment = _uint(v["perPayment"], "lane.perPayment", top)
    if per_payment == 0:
        raise Aep2Error("amount_zero", "lane.perPayment must be at least 1")
    total = _uint(v["total"], "lane.total", top)
    if total == 0:
        raise Aep2Error("amount_zero", "lane.total must be at least 1")
    max_payments = _int53(v["maxPayments"], "lane.maxPayments")
    period = _int53(v["period"], "lane.period")
    allowance = _uint(v["allowance"], "lane.allowance", top)
    if not isinstance(v["payees"], list):
        raise Aep2Error("field_type", "lane.payees must be an array")
    payees = []
    for p in v["payees"]:
        if not isinstance(p, str):
            raise Aep2Error("field_type", "lane.payees: an element must be a string")
        payees.append(_account(profile, p))
    valid_from = _int53(v["validFrom"], "lane.validFrom")
    valid_until = _int53(v["validUntil"], "lane.validUntil")
    purpose = v["purpose"]
    if not isinstance(purpose, str):
        raise Aep2Error("field_type", "lane.purpose must be a string")
    parent = _bytes32(v["parent"], "lane.parent")
    salt = _bytes32(v["salt"], "lane.salt")
    lane = Lane(
        profile,
        owner,
        agent,
        token,
        per_payment,
        total,
        max_payments,
        period,
        allowance,
        tuple(payees),
        valid_from,
        valid_until,
        purpose,
        parent,
        salt,
    )
    _check_values(lane)
    return lane


def _check_values(lane: Lane) -> None:
    """The value rules of spec §18.1, in the order of its table (``lane_invalid``)."""
    if (lane.period == 0) != (lane.allowance == 0):
        raise Aep2Error("lane_invalid", 'allowance must be "0" exactly when period is 0, and at least 1 otherwise')
    if len(lane.payees) > MAX_LANE_PAYEES:
        raise Aep2Error("lane_invalid", f"{len(lane.payees)} payees, at most {MAX_LANE_PAYEES}")
    if len(set(lane.payees)) != len(lane.payees):
        raise Aep2Error("lane_invalid", "a payee is listed twice")
    if lane.valid_until < lane.valid_from:
        raise Aep2Error("lane_invalid", "validUntil is before validFrom")
    if len(lane.purpose.encode("utf-8", "surrogatepass")) > MAX_PURPOSE_BYTES:
        raise Aep2Error("lane_invalid", f"purpose above {MAX_PURPOSE_BYTES} bytes")
    if _PURPOSE_FORBIDDEN.search(lane.purpose):
        raise Aep2Error("lane_invalid", "purpose has a control character, a quote or a backslash")


@dataclass(frozen=True)
class SignedLane:
    """A lane with its grantor's signature (spec §18.2), as it travels in an envelope's ``lanes``."""

    lane: Lane
    signature: str

    def to_json(self) -> dict[str, Any]:
        """``{"lane": …, "signature": …}``."""
        return {"lane": self.lane.to_json(), "signature": self.signature}


def parse_signed_lane(profile: str, v: Any) -> SignedLane:
    """Parses ``{"lane", "signature"}``; the signature is checked by :func:`check_chain_signatures`."""
    _closed(v, "signed lane", ("lane", "signature"))
    lane = parse_lane(profile, v["lane"])
    if not isinstance(v["signature"], str):
        raise Aep2Error("field_type", "signed lane.signature must be a string")
    return SignedLane(lane, v["signature"])


def parse_chain(profile: str, v: Any) -> list[SignedLane]:
    """An envelope's ``lanes`` (spec §18.5): an array (else ``field_type``) of 1 to 3 signed lanes
    (else ``lane_depth_exceeded``), each read wholly before the next, root first."""
    if not isinstance(v, list):
        raise Aep2Error("field_type", "lanes must be an array")
    if not 1 <= len(v) <= MAX_LANE_DEPTH:
        raise Aep2Error("lane_depth_exceeded", f"{len(v)} links, from 1 to {MAX_LANE_DEPTH}")
    return [parse_signed_lane(profile, item) for item in v]


def _domain_json(domain: Domain) -> dict[str, Any]:
    return domain.to_json()


def lane_signing_input(lane: Lane, domain: Domain) -> tuple[bytes, str]:
    """``(signed bytes, lane id)`` of a lane under ``domain`` (spec §18.2): the 66 EIP-712 bytes
    and their keccak256, or the tagged JCS of ``{domain, lane}`` and its SHA-256."""
    if lane.profile == "eip712":
        if not isinstance(domain, Eip712Domain):
            raise Aep2Error("profile_mismatch", "an eip712 lane needs an eip712 domain")

        def word(n: int) -> bytes:
            return n.to_bytes(32, "big")

        def addr(b: bytes) -> bytes:
            return b"\0" * 12 + b

        struct = codec.keccak256(
            _LANE_TYPEHASH
            + addr(lane.owner)
            + addr(lane.agent)
            + addr(lane.token)
            + word(lane.per_payment)
            + word(lane.total)
            + word(lane.max_payments)
            + word(lane.period)
            + word(lane.allowance)
            + codec.keccak256(b"".join(addr(p) for p in lane.payees))
            + word(lane.valid_from)
            + word(lane.valid_until)
            + codec.keccak256(lane.purpose.encode("utf-8"))
            + bytes.fromhex(lane.parent[2:])
            + bytes.fromhex(lane.salt[2:])
        )
        data = b"\x19\x01" + domain.separator() + struct
        return data, codec.hex0x(codec.keccak256(data))
    if not isinstance(domain, Ed25519Domain):
        raise Aep2Error("profile_mismatch", "an ed25519 lane needs an ed25519 domain")
    data = _ED25519_LANE_TAG + canonical({"domain": _domain_json(domain), "lane": lane.to_json()}).encode("utf-8")
    return data, codec.hex0x(codec.sha256(data))


def lane_id(lane: Lane | dict[str, Any], domain: Domain, profile: str | None = None) -> str:
    """The id of a lane (a :class:`Lane`, or a lane object with ``profile``) under ``domain``."""
    if not isinstance(lane, Lane):
        lane = parse_lane(profile or ("eip712" if isinstance(domain, Eip712Domain) else "ed25519"), lane)
    return lane_signing_input(lane, domain)[1]


def lane_mandate_signing_input(profile: str, mandate: dict[str, Any], domain: Domain, leaf: str) -> tuple[bytes, str]:
    """``(signed bytes, mandate id)`` of a normalised mandate under the lane ``leaf`` (spec §18.4)."""
    codec.parse_hex32(leaf, "ref_invalid")
    if profile == "eip712":
        assert isinstance(domain, Eip712Domain)

        def word(v: int) -> bytes:
            return v.to_bytes(32, "big")

        struct = codec.keccak256(
            _LANE_MANDATE_TYPEHASH
            + b"\0" * 12
            + codec.parse_address(mandate["owner"])
            + b"\0" * 12
            + codec.parse_address(mandate["token"])
            + b"\0" * 12
            + codec.parse_address(mandate["payee"])
            + word(int(mandate["amount"]))
            + word(int(mandate["nonce"]))
            + word(mandate["deadline"])
            + codec.parse_hex32(mandate["ref"])
            + bytes.fromhex(leaf[2:])
        )
        data = b"\x19\x01" + domain.separator() + struct
        return data, codec.hex0x(codec.keccak256(data))
    assert isinstance(domain, Ed25519Domain)
    body = {"domain": _domain_json(domain), "lane": leaf, "mandate": mandate}
    data = _ED25519_LANE_MANDATE_TAG + canonical(body).encode("utf-8")
    return data, codec.hex0x(codec.sha256(data))


def wider_than(lane: Lane, parent: Lane) -> str | None:
    """``None`` when ``lane`` is no wider than ``parent`` on every dimension (spec §18.3 rules 1 to
    6), else the first dimension that is wider."""
    if lane.owner != parent.owner:
        return "owner differs from the parent's"
    if lane.token != parent.token:
        return "token differs from the parent's"
    if lane.per_payment > parent.per_payment:
        return "perPayment above the parent's"
    if lane.total > parent.total:
        return "total above the parent's"
    if parent.max_payments != 0 and (lane.max_payments == 0 or lane.max_payments > parent.max_payments):
        return "maxPayments above the parent's"
    if parent.period != 0 and (lane.period != parent.period or lane.allowance > parent.allowance):
        return "period or allowance wider than the parent's"
    if parent.payees and (not lane.payees or any(p not in parent.payees for p in lane.payees)):
        return "payees outside the parent's"
    if lane.valid_from < parent.valid_from or lane.valid_until > parent.valid_until:
        return "validity window outside the parent's"
    return None


def _signature_ok(profile: str, signature: str, data: bytes, signer: bytes) -> bool:
    try:
        if profile == "eip712":
            from .receipts import _recover

            return _recover(signature, codec.keccak256(data)) == signer
        if not re.fullmatch(r"[1-9A-HJ-NP-Za-km-z]+", signature):
            return False
        sig = codec.b58decode(signature)
        if len(sig) != 64:
            return False
        eddsa.new(eddsa.import_public_key(signer), "rfc8032").verify(data, sig)
        return True
    except (Aep2Error, ValueError):
        return False


def check_chain_signatures(profile: str, domain: Domain, chain: list[SignedLane]) -> list[str]:
    """The signature-stage checks of a chain (spec §18.6): for each link, root first, its ``parent``
    (``lane_chain_invalid``), then its grantor's signature (``lane_signature_invalid``). Returns the
    lane ids, root first."""
    if not 1 <= len(chain) <= MAX_LANE_DEPTH:
        raise Aep2Error("lane_depth_exceeded", f"{len(chain)} links, from 1 to {MAX_LANE_DEPTH}")
    ids: list[str] = []
    for i, link in enumerate(chain):
        expected = ids[-1] if ids else ZERO_ID
        if link.lane.parent != expected:
            raise Aep2Error("lane_chain_invalid", f"link {i}: parent is not {expected}")
        data, lid = lane_signing_input(link.lane, domain)
        grantor = link.lane.owner if i == 0 else chain[i - 1].lane.agent
        if not _signature_ok(profile, link.signature, data, grantor):
            raise Aep2Error("lane_signature_invalid", f"lanes[{i}]: not signed by its grantor")
        ids.append(lid)
    return ids


def _check_attenuation(chain: list[SignedLane]) -> None:
    for i in range(1, len(chain)):
        why = wider_than(chain[i].lane, chain[i - 1].lane)
        if why:
            raise Aep2Error("lane_attenuation_invalid", f"link {i}: {why}")


def check_chain_policy(profile: str, chain: list[SignedLane], mandate: dict[str, Any], now: int | None = None) -> None:
    """The policy-stage lane rules of spec §18.6 (1 to 6, in order) for a normalised mandate and a
    chain whose signatures are verified. Without ``now``, rule 4 checks only the deadline."""
    _check_attenuation(chain)
    root = chain[0].lane
    signer = mandate["owner" if profile == "eip712" else "payer"]
    if _account(profile, signer) != root.owner:
        raise Aep2Error("lane_agent_mismatch", "the mandate debits another owner than the lanes'")
    if _account(profile, mandate["token"]) != root.token:
        raise Aep2Error("lane_asset_mismatch", "the mandate pays in another token than the lanes'")
    if now is not None:
        for i, link in enumerate(chain):
            if now < link.lane.valid_from:
                raise Aep2Error("lane_not_yet_valid", f"link {i} is valid from {link.lane.valid_from}, now is {now}")
        for i, link in enumerate(chain):
            if now > link.lane.valid_until:
                raise Aep2Error("lane_expired", f"link {i} ended at {link.lane.valid_until}, now is {now}")
    for i, link in enumerate(chain):
        if mandate["deadline"] > link.lane.valid_until:
            raise Aep2Error("lane_expired", f"the deadline is after link {i}'s end {link.lane.valid_until}")
    amount = int(mandate["amount"])
    for i, link in enumerate(chain):
        if amount > link.lane.per_payment:
            raise Aep2Error("lane_payment_cap_exceeded", f"amount {amount} above link {i}'s perPayment")
    payee = _account(profile, mandate["payee"])
    for i, link in enumerate(chain):
        if link.lane.payees and payee not in link.lane.payees:
            raise Aep2Error("lane_payee_not_allowed", f"the payee is not in link {i}'s payees")


@dataclass(frozen=True)
class LaneFile:
    """A verified lane file: the leaf's id, the profile and domain, and the chain, root first."""

    id: str
    profile: str
    domain: Domain
    chain: tuple[SignedLane, ...]
    ids: tuple[str, ...] = field(default=())

    @property
    def leaf(self) -> Lane:
        """The lane this file grants."""
        return self.chain[-1].lane

    @property
    def agent(self) -> str:
        """Who signs under the lane: the leaf's agent."""
        return self.leaf.agent_text

    @property
    def owner(self) -> str:
        """Whose funds are debited."""
        return self.chain[0].lane.owner_text

    @property
    def lanes(self) -> list[dict[str, Any]]:
        """The chain as it travels in an envelope's ``lanes``."""
        return [link.to_json() for link in self.chain]

    def to_json(self) -> dict[str, Any]:
        """The lane file as ``aep2 lane grant`` prints it: ``{id, profile, domain, lane, signature,
        parents}``."""
        return {
            "id": self.id,
            "profile": self.profile,
            "domain": self.domain.to_json(),
            "lane": self.leaf.to_json(),
            "signature": self.chain[-1].signature,
            "parents": [link.to_json() for link in self.chain[:-1]],
        }


def verify_lane_chain(profile: str, domain: Domain, lanes: Any) -> LaneFile:
    """Verifies a chain (signed lane objects, root first) without a mandate: depth, each link's
    parent and signature, then attenuation."""
    _check_profile(profile)
    chain = parse_chain(profile, lanes)
    ids = check_chain_signatures(profile, domain, chain)
    _check_attenuation(chain)
    return LaneFile(ids[-1], profile, domain, tuple(chain), tuple(ids))


def _items(v: Any) -> list[Any]:
    if isinstance(v, list):
        return v
    if isinstance(v, dict) and "lane" in v and "signature" in v:
        parents = v.get("parents", [])
        if not isinstance(parents, list):
            raise Aep2Error("field_type", '"parents" must be an array')
        return [*parents, {"lane": v["lane"], "signature": v["signature"]}]
    raise Aep2Error("field_type", "not a lane file or a chain of signed lanes")


def load_lane_file(source: Any, profile: str | None = None, domain: Domain | None = None) -> LaneFile:
    """Reads and verifies a lane file as ``aep2 lane grant`` prints it (its text, the parsed object
    or a :class:`LaneFile`), or a bare chain (a list of signed lanes, root first, with ``profile``
    and ``domain``): schema, every link's parent and signature, attenuation, and a stated ``id``
    equal to the leaf's."""
    if isinstance(source, LaneFile):
        return source
    v = json.loads(source) if isinstance(source, (str, bytes)) else source
    if isinstance(v, dict):
        prof = v.get("profile", profile)
        if profile is not None and prof != profile:
            raise Aep2Error("profile_mismatch", f"the lane file is {prof}, expected {profile}")
        if not isinstance(prof, str):
            raise Aep2Error("field_type", 'a lane file has a "profile"')
        _check_profile(prof)
        dom = domain_from_json(prof, v["domain"]) if "domain" in v else domain
    else:
        prof, dom = profile or "", domain
        _check_profile(prof)
    if dom is None:
        raise Aep2Error("domain_invalid", "a lane is signed under a domain: the lane file has none")
    lf = verify_lane_chain(prof, dom, _items(v))
    if isinstance(v, dict) and "id" in v and v["id"] != lf.id:
        raise Aep2Error("lane_chain_invalid", f"the file states id {v['id']}, its lane's id is {lf.id}")
    return lf


def _check_key(profile: str, key: PayerKey) -> bytes:
    if profile == "eip712":
        if not isinstance(key, Secp256k1Key):
            raise Aep2Error("profile_mismatch", "an eip712 lane needs a secp256k1 key")
        return key.address_bytes
    if not isinstance(key, Ed25519Key):
        raise Aep2Error("profile_mismatch", "an ed25519 lane needs an Ed25519 key")
    return key.public_bytes


def _sign(key: PayerKey, data: bytes) -> str:
    if isinstance(key, Secp256k1Key):
        return key.sign_digest(codec.keccak256(data))
    return key.sign(data)


def sign_lane(
    profile: str, lane: dict[str, Any], domain: Domain, key: PayerKey, parent: Any = None
) -> LaneFile:
    """Signs a lane object as its grantor (spec §18.2): the owner for a root lane, the parent lane's
    agent for a sub-lane of ``parent`` (a lane file, its text or a chain). Refuses, as the reference
    ``sign_lane`` does: a lane that breaks a schema or value rule (its code), a chain already 3 links
    deep (``lane_depth_exceeded``), a ``parent`` member that is not the parent's id
    (``lane_chain_invalid``), a sub-lane wider than its parent (``lane_attenuation_invalid``), and a
    key that is not the grantor's (``signature_invalid``). Returns the new lane's file."""
    _check_profile(profile)
    parsed = parse_lane(profile, lane)
    parents = list(load_lane_file(parent, profile, domain).chain) if parent is not None else []
    if len(parents) >= MAX_LANE_DEPTH:
        raise Aep2Error("lane_depth_exceeded", f"the parent's chain has {len(parents)} links already")
    if not parents:
        if parsed.parent != ZERO_ID:
            raise Aep2Error("lane_chain_invalid", "a lane without a parent must have parent 0x00…00")
        grantor = parsed.owner
    else:
        p = parents[-1].lane
        if parsed.parent != lane_signing_input(p, domain)[1]:
            raise Aep2Error("lane_chain_invalid", "parent is not the given parent lane's id")
        why = wider_than(parsed, p)
        if why:
            raise Aep2Error("lane_attenuation_invalid", why)
        grantor = p.agent
    if _check_key(profile, key) != grantor:
        raise Aep2Error("signature_invalid", "the key is not the lane's grantor's")
    data, lid = lane_signing_input(parsed, domain)
    chain = (*parents, SignedLane(parsed, _sign(key, data)))
    ids = tuple(lane_signing_input(link.lane, domain)[1] for link in chain)
    return LaneFile(lid, profile, domain, chain, ids)


def grant_lane(
    profile: str,
    domain: Domain,
    key: PayerKey,
    *,
    agent: str,
    token: str,
    per_payment: int | str,
    total: int | str,
    valid_until: int,
    parent: Any = None,
    valid_from: int | None = None,
    payees: list[str] | None = None,
    max_payments: int | None = None,
    period: int | None = None,
    allowance: int | str | None = None,
    purpose: str = "",
    salt: str | None = None,
    now: int | None = None,
) -> LaneFile:
    """Grants a lane as ``aep2 lane grant`` does: the lane with its defaults, signed by
    :func:`sign_lane`. ``valid_from`` defaults to now (the parent's if later); ``payees``,
    ``max_payments``, ``period`` and ``allowance`` to none or, under ``parent``, the parent's;
    ``salt`` to 32 random bytes; the owner is the key's (a root lane) or the parent's."""
    parents = list(load_lane_file(parent, profile, domain).chain) if parent is not None else []
    p = parents[-1].lane if parents else None
    t = unix_now() if now is None else now
    lane = {
        "owner": p.owner_text if p else key.address,
        "agent": agent,
        "token": token,
        "perPayment": str(per_payment),
        "total": str(total),
        "maxPayments": max_payments if max_payments is not None else (p.max_payments if p else 0),
        "period": period if period is not None else (p.period if p else 0),
        "allowance": str(allowance) if allowance is not None else (str(p.allowance) if p else "0"),
        "payees": payees if payees else ([p._key(x) for x in p.payees] if p else []),
        "validFrom": valid_from if valid_from is not None else (max(t, p.valid_from) if p else t),
        "validUntil": valid_until,
        "purpose": purpose,
        "parent": lane_signing_input(p, domain)[1] if p else ZERO_ID,
        "salt": salt or codec.hex0x(secrets.token_bytes(32)),
    }
    return sign_lane(profile, lane, domain, key, [link.to_json() for link in parents] if parents else None)


@dataclass(frozen=True)
class LaneMandate(SignedMandate):
    """A mandate signed under a lane chain: a :class:`SignedMandate` whose envelope carries
    ``lanes``, with the leaf lane's id (what its receipt must state), the chain's ids, the domain
    it is signed under, and the leaf agent who signed it."""

    lane_id: str = ""
    lane_ids: tuple[str, ...] = ()
    domain: Domain | None = None
    signer: str = ""
    purposes: tuple[str, ...] = ()


def sign_lane_mandate(
    profile: str,
    mandate: dict[str, Any],
    lanes: Any,
    key: PayerKey,
    form: str = "mvp",
    domain: Domain | None = None,
) -> LaneMandate:
    """Signs ``mandate`` (its owner or payer is the lane owner) under a lane chain with the leaf
    agent's ``key`` (spec §18.4) and wraps it, with the chain as ``lanes``, in an envelope of
    ``form`` (spec §18.5). ``lanes`` is a lane file (text, object or :class:`LaneFile`) or a chain
    with ``domain``. Refuses, as the reference ``sign_lane_mandate`` does: a key that is not the
    leaf's agent's (``signature_invalid``), a broken chain (its code), a mandate for another owner
    (``lane_agent_mismatch``), in another token (``lane_asset_mismatch``), with a deadline after a
    link's ``validUntil`` (``lane_expired``), over a cap (``lane_payment_cap_exceeded``), to a payee
    not allowed (``lane_payee_not_allowed``), and a header over 8192 bytes (``header_too_large``)."""
    _check_profile(profile)
    m = normalize_mandate(profile, mandate)
    if form not in ("mvp", "native"):
        raise ValueError(f"form must be 'mvp' or 'native', not {form!r}")
    if isinstance(lanes, LaneFile):
        chain, dom = list(lanes.chain), lanes.domain
    else:
        v = json.loads(lanes) if isinstance(lanes, (str, bytes)) else lanes
        prof = v.get("profile", profile) if isinstance(v, dict) else profile
        if prof != profile:
            raise Aep2Error("profile_mismatch", f"the lane file is {prof}, the mandate {profile}")
        dom = domain_from_json(profile, v["domain"]) if isinstance(v, dict) and "domain" in v else domain
        if dom is None:
            raise ValueError("a chain without its lane file needs domain=")
        chain = parse_chain(profile, _items(v))
    if domain is not None and domain.to_json() != dom.to_json():
        raise Aep2Error("domain_mismatch", "the lane is granted under another deployment")
    if _check_key(profile, key) != chain[-1].lane.agent:
        raise Aep2Error("signature_invalid", "the key is not the leaf lane's agent's")
    ids = check_chain_signatures(profile, dom, chain)
    check_chain_policy(profile, chain, m, None)
    data, mandate_id = lane_mandate_signing_input(profile, m, dom, ids[-1])
    sig = _sign(key, data)
    wire = [link.to_json() for link in chain]
    if form == "mvp":
        envelope: dict[str, Any] = {"mandate": m, "payerSig": sig, "lanes": wire}
    else:
        envelope = {"aep2": 1, "profile": profile, "domain": dom.to_json(), "mandate": m, "signature": sig}
        envelope["lanes"] = wire
    purposes = tuple(link.lane.purpose for link in chain)
    agent = chain[-1].lane.agent_text
    signed = LaneMandate(profile, envelope, sig, data, mandate_id, ids[-1], tuple(ids), dom, agent, purposes)
    size = len(codec.b64encode(compact(envelope).encode("utf-8")))
    if size > _MAX_HEADER_BYTES:
        raise Aep2Error("header_too_large", f"the header would be {size} bytes, limit {_MAX_HEADER_BYTES}")
    return signed


def _closed_envelope(env: dict[str, Any], names: tuple[str, ...]) -> None:
    for k in env:
        if k not in names and k != "lanes":
            raise Aep2Error("unknown_field", f"envelope member {k!r}")
    for k in names:
        if k not in env:
            raise Aep2Error("missing_field", f"envelope member {k!r}")


def verify_lane_envelope(envelope: Any, profile: str, domain: Domain | None, now: int | None = None) -> LaneMandate:
    """Verifies an envelope of a mandate under lanes (spec §18.6) under the expected ``profile`` and
    ``domain``, with the deadline and the lanes' validity at ``now`` when given: schema (the
    envelope's members, then ``lanes``), signature (each link's parent and grantor's signature, then
    the leaf agent's over the lane-mandate input), policy (``domain_mismatch``, ``expired``, then
    attenuation, owner, token, validity, caps, payees). What a sub-agent signed, or a receipt's
    mandate, checked as a payee would. An envelope without ``lanes`` is not one (``ValueError``).
    Not implemented: the Ed25519 key checks of spec §4.2.2 beyond RFC 8032 (small-order keys)."""
    if not isinstance(envelope, dict):
        raise Aep2Error("field_type", "the envelope is not an object")
    native = "aep2" in envelope
    if native:
        _closed_envelope(envelope, ("aep2", "profile", "domain", "mandate", "signature"))
        if _int53(envelope["aep2"], "aep2") != 1:
            raise Aep2Error("unsupported_version", "aep2 must be 1")
        if not isinstance(envelope["profile"], str):
            raise Aep2Error("field_type", "profile is not a string")
        if envelope["profile"] not in ("eip712", "ed25519"):
            raise Aep2Error("unsupported_profile", f"profile {envelope['profile']!r}")
        if envelope["profile"] != profile:
            raise Aep2Error("profile_mismatch", f"profile {envelope['profile']}, expected {profile}")
        dom = domain_from_json(profile, envelope["domain"])
        sig_member = "signature"
    else:
        _closed_envelope(envelope, ("mandate", "payerSig"))
        dom, sig_member = domain, "payerSig"
    m = normalize_mandate(profile, envelope["mandate"])
    sig = envelope[sig_member]
    if not isinstance(sig, str):
        raise Aep2Error("field_type", "the signature is not a string")
    if "lanes" not in envelope:
        raise ValueError("a plain envelope (no lanes): this verifies mandates under lanes only")
    _check_profile(profile)
    chain = parse_chain(profile, envelope["lanes"])
    if dom is None:
        raise ValueError(f"{profile} needs a domain")
    ids = check_chain_signatures(profile, dom, chain)
    data, mandate_id = lane_mandate_signing_input(profile, m, dom, ids[-1])
    agent = chain[-1].lane.agent
    if profile == "eip712":
        from .receipts import _recover

        if _recover(sig, codec.keccak256(data)) != agent:
            raise Aep2Error("signature_invalid", "the signature does not verify for the leaf lane's agent")
    else:
        if not re.fullmatch(r"[1-9A-HJ-NP-Za-km-z]+", sig):
            raise Aep2Error("signature_encoding", "the signature is not base58")
        if len(codec.b58decode(sig)) != 64:
            raise Aep2Error("signature_length", "the signature is not 64 bytes")
        if not _signature_ok(profile, sig, data, agent):
            raise Aep2Error("signature_invalid", "the signature does not verify for the leaf lane's agent")
    if native and domain is not None and dom.to_json() != domain.to_json():
        raise Aep2Error("domain_mismatch", "the envelope is signed for another deployment")
    if now is not None and now > m["deadline"]:
        raise Aep2Error("expired", f"deadline {m['deadline']} is before now ({now})")
    check_chain_policy(profile, chain, m, now)
    wire = [link.to_json() for link in chain]
    env: dict[str, Any] = (
        {"aep2": 1, "profile": profile, "domain": dom.to_json(), "mandate": m, "signature": sig, "lanes": wire}
        if native
        else {"mandate": m, "payerSig": sig, "lanes": wire}
    )
    purposes = tuple(link.lane.purpose for link in chain)
    leaf = chain[-1].lane.agent_text
    return LaneMandate(profile, env, sig, data, mandate_id, ids[-1], tuple(ids), dom, leaf, purposes)


def decode_header(header: str) -> Any:
    """Decodes a header (spec §5.3): at most 8192 bytes, canonical base64, UTF-8, strict JSON within
    the envelope limits (integers kept as ints)."""
    if not isinstance(header, str):
        raise Aep2Error("field_type", "the header is not a string")
    if len(header.encode("utf-8")) > _MAX_HEADER_BYTES:
        raise Aep2Error("header_too_large", "header above 8192 bytes")
    raw = codec.b64decode_canonical(header)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Aep2Error("utf8_invalid", "the header is not UTF-8") from None
    _strict_loads(text, _ENVELOPE_LIMITS)  # duplicates, lone surrogates, limits
    return json.loads(text)
