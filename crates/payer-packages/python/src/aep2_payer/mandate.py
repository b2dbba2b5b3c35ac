"""Mandates of spec §3, signed under the profiles of §4 and wrapped in the envelopes of §5.

secp256k1 signing is libsecp256k1 (``coincurve``: RFC 6979 nonces, low ``s``), Ed25519 is
``pycryptodome``'s RFC 8032 signer; both are deterministic, so signatures are byte-identical to
the reference implementation's.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Union

import coincurve
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from . import codec
from .errors import Aep2Error
from .jcs import canonical, compact

PROFILES = ("eip712", "ed25519", "solana-mvp")
_MANDATE_TYPEHASH = codec.keccak256(
    b"Mandate(address owner,address token,address payee,uint256 amount,uint256 nonce,uint256 deadline,bytes32 ref)"
)
_DOMAIN_TYPEHASH = codec.keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_ED25519_TAG = b"AEP2/ed25519/mandate/v1\0"
_MAX_U64 = 2**64 - 1
_MAX_U256 = 2**256 - 1
_MAX_SAFE = 2**53 - 1


@dataclass(frozen=True)
class Eip712Domain:
    """An ``eip712`` deployment: the chain and the debit-wallet contract."""

    chain_id: int
    verifying_contract: str

    def to_json(self) -> dict[str, Any]:
        """The native envelope's ``domain`` object."""
        return {
            "chainId": self.chain_id,
            "verifyingContract": codec.to_checksum(codec.parse_address(self.verifying_contract)),
        }

    @property
    def network(self) -> str:
        """The x402 network (CAIP-2) of this deployment."""
        return f"eip155:{self.chain_id}"

    def separator(self) -> bytes:
        """The EIP-712 domain separator (spec §4.1.1)."""
        return codec.keccak256(
            _DOMAIN_TYPEHASH
            + codec.keccak256(b"AEP2DebitWallet")
            + codec.keccak256(b"1")
            + self.chain_id.to_bytes(32, "big")
            + b"\0" * 12
            + codec.parse_address(self.verifying_contract)
        )


@dataclass(frozen=True)
class Ed25519Domain:
    """An ``ed25519`` deployment: the CAIP-2 network and the debit-wallet program (base58)."""

    network: str
    wallet: str

    def to_json(self) -> dict[str, Any]:
        """The native envelope's ``domain`` object."""
        return {"network": self.network, "wallet": self.wallet}


Domain = Union[Eip712Domain, Ed25519Domain]


def domain_from_json(profile: str, value: Any) -> Domain | None:
    """A domain from its JSON object (``None`` for ``solana-mvp``); ``domain_invalid`` when malformed."""
    if profile == "solana-mvp":
        return None
    try:
        if not isinstance(value, dict):
            raise Aep2Error("domain_invalid", "the domain is not an object")
        if profile == "eip712":
            if set(value) != {"chainId", "verifyingContract"}:
                raise Aep2Error("domain_invalid", "eip712 domain members are chainId, verifyingContract")
            cid = value["chainId"]
            if isinstance(cid, float) and cid.is_integer():
                cid = int(cid)
            if not isinstance(cid, int) or isinstance(cid, bool) or not 1 <= cid <= _MAX_SAFE:
                raise Aep2Error("domain_invalid", "chainId is not an integer 1 ..= 2^53-1")
            codec.parse_address(value["verifyingContract"])
            return Eip712Domain(cid, value["verifyingContract"])
        if profile == "ed25519":
            if set(value) != {"network", "wallet"}:
                raise Aep2Error("domain_invalid", "ed25519 domain members are network, wallet")
            net = value["network"]
            if not isinstance(net, str) or not re.fullmatch(r"[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}", net):
                raise Aep2Error("domain_invalid", "network is not CAIP-2")
            codec.parse_key32(value["wallet"])
            return Ed25519Domain(net, value["wallet"])
    except Aep2Error as e:
        raise Aep2Error("domain_invalid", e.message) from None
    raise Aep2Error("unsupported_profile", f"unknown profile {profile!r}")


class Secp256k1Key:
    """A payer's secp256k1 key (``eip712``)."""

    def __init__(self, secret: bytes) -> None:
        self._key = coincurve.PrivateKey(secret)
        pub = self._key.public_key.format(compressed=False)[1:]
        self.address_bytes = codec.keccak256(pub)[12:]

    @classmethod
    def from_hex(cls, text: str) -> Secp256k1Key:
        """From ``0x`` + 64 hex digits."""
        return cls(bytes.fromhex(text.removeprefix("0x")))

    @property
    def address(self) -> str:
        """The EIP-55 address of the key."""
        return codec.to_checksum(self.address_bytes)

    def sign_digest(self, digest: bytes) -> str:
        """``0x`` ‖ r ‖ s ‖ v with v ∈ {27, 28}, low s (libsecp256k1 normalises)."""
        sig = self._key.sign_recoverable(digest, hasher=None)
        return codec.hex0x(sig[:64] + bytes([27 + sig[64]]))


class Ed25519Key:
    """A payer's Ed25519 key (``ed25519``, ``solana-mvp``), from its 32-byte RFC 8032 seed."""

    def __init__(self, seed: bytes) -> None:
        self._key = ECC.construct(curve="Ed25519", seed=seed)
        self.public_bytes = self._key.public_key().export_key(format="raw")

    @classmethod
    def from_hex(cls, text: str) -> Ed25519Key:
        """From ``0x`` + 64 hex digits (the seed)."""
        return cls(bytes.fromhex(text.removeprefix("0x")))

    @property
    def address(self) -> str:
        """The base58 public key."""
        return codec.b58encode(self.public_bytes)

    def sign(self, message: bytes) -> str:
        """The base58 RFC 8032 signature of ``message``."""
        return codec.b58encode(eddsa.new(self._key, "rfc8032").sign(message))


PayerKey = Union[Secp256k1Key, Ed25519Key]


def _uint(value: Any, name: str, maximum: int) -> int:
    if not isinstance(value, str):
        raise Aep2Error("field_type", f"{name} must be a decimal string")
    if not re.fullmatch(r"0|[1-9][0-9]*", value):
        raise Aep2Error("uint_invalid", f"{name} is not a canonical decimal")
    n = int(value) if len(value) <= 78 else _MAX_U256 + 1
    if n > maximum:
        raise Aep2Error("uint_out_of_range", f"{name} is out of range")
    return n


def normalize_mandate(profile: str, m: dict[str, Any]) -> dict[str, Any]:
    """Checks the seven members (spec §3) and returns them in order, addresses in EIP-55 form."""
    if profile not in PROFILES:
        raise Aep2Error("unsupported_profile", f"unknown profile {profile!r}")
    signer = "owner" if profile == "eip712" else "payer"
    names = [signer, "token", "payee", "amount", "nonce", "deadline", "ref"]
    if not isinstance(m, dict):
        raise Aep2Error("field_type", "the mandate is not an object")
    for k in m:
        if k not in names:
            raise Aep2Error("unknown_field", f"unknown mandate member {k!r}")
    for k in names:
        if k not in m:
            raise Aep2Error("missing_field", f"missing mandate member {k!r}")
    out: dict[str, Any] = {}
    for k in (signer, "token", "payee"):
        if profile == "eip712":
            out[k] = codec.to_checksum(codec.parse_address(m[k]))
        else:
            codec.parse_key32(m[k])
            out[k] = m[k]
    wide = profile == "eip712"
    out["amount"] = m["amount"]
    if _uint(m["amount"], "amount", _MAX_U256 if wide else _MAX_U64) == 0:
        raise Aep2Error("amount_zero", "amount is zero")
    out["nonce"] = m["nonce"]
    _uint(m["nonce"], "nonce", _MAX_U256 if wide else _MAX_U64)
    d = m["deadline"]
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if isinstance(d, bool) or not isinstance(d, int):
        raise Aep2Error("field_type", "deadline must be an integer")
    if not 0 <= d <= _MAX_SAFE:
        raise Aep2Error("uint_out_of_range", "deadline is out of range")
    out["deadline"] = d
    ref = m["ref"]
    if not isinstance(ref, str):
        raise Aep2Error("field_type", "ref must be a string")
    if profile == "solana-mvp":
        if not 1 <= len(ref.encode("utf-8", "surrogatepass")) <= 32:
            raise Aep2Error("ref_invalid", "a solana-mvp ref is 1 to 32 bytes of UTF-8")
    else:
        codec.parse_hex32(ref)
    out["ref"] = ref
    return out


@dataclass(frozen=True)
class SignedMandate:
    """A signed mandate: its envelope (the JSON object), header text and identifiers."""

    profile: str
    envelope: dict[str, Any]
    signature: str
    signing_bytes: bytes
    mandate_id: str

    @property
    def header(self) -> str:
        """The ``X-Payment-Mandate`` value: base64 of the envelope's compact JSON."""
        return codec.b64encode(compact(self.envelope).encode("utf-8"))

    @property
    def mandate(self) -> dict[str, Any]:
        """The seven members."""
        return self.envelope["mandate"]


def signing_input(profile: str, mandate: dict[str, Any], domain: Domain | None) -> tuple[bytes, str]:
    """``(signed bytes, mandate id)`` of a normalised mandate (spec §4)."""
    if profile == "eip712":
        assert isinstance(domain, Eip712Domain)

        def word(v: int) -> bytes:
            return v.to_bytes(32, "big")

        struct = codec.keccak256(
            _MANDATE_TYPEHASH
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
        )
        data = b"\x19\x01" + domain.separator() + struct
        return data, codec.hex0x(codec.keccak256(data))
    if profile == "ed25519":
        assert isinstance(domain, Ed25519Domain)
        data = _ED25519_TAG + canonical({"domain": domain.to_json(), "mandate": mandate}).encode("utf-8")
    else:
        data = compact(mandate).encode("utf-8")
    return data, codec.hex0x(codec.sha256(data))


def sign_mandate(
    profile: str,
    mandate: dict[str, Any],
    domain: Domain | None,
    key: PayerKey,
    form: str = "mvp",
) -> SignedMandate:
    """Signs ``mandate`` (spec §4 "Signing"): refuses a key that is not the signer's
    (``signature_invalid``) and a ``solana-mvp`` mandate in the native form (``unsupported_profile``)."""
    m = normalize_mandate(profile, mandate)
    if form not in ("mvp", "native"):
        raise ValueError(f"form must be 'mvp' or 'native', not {form!r}")
    if profile == "eip712":
        if not isinstance(key, Secp256k1Key) or codec.parse_address(m["owner"]) != key.address_bytes:
            raise Aep2Error("signature_invalid", "the key is not the mandate owner's")
    elif not isinstance(key, Ed25519Key) or codec.parse_key32(m["payer"]) != key.public_bytes:
        raise Aep2Error("signature_invalid", "the key is not the mandate payer's")
    if profile == "solana-mvp" and form == "native":
        raise Aep2Error("unsupported_profile", "solana-mvp travels only in the MVP envelope")
    if profile != "solana-mvp" and domain is None:
        raise ValueError(f"{profile} needs a domain")
    data, mandate_id = signing_input(profile, m, domain)
    if isinstance(key, Secp256k1Key):
        sig = key.sign_digest(codec.keccak256(data))
    else:
        sig = key.sign(data)
    if form == "mvp":
        envelope: dict[str, Any] = {"mandate": m, "payerSig": sig}
    else:
        assert domain is not None
        envelope = {"aep2": 1, "profile": profile, "domain": domain.to_json(), "mandate": m, "signature": sig}
    return SignedMandate(profile, envelope, sig, data, mandate_id)


def new_nonce(profile: str) -> str:
    """A random nonce: 128 bits for ``eip712``, 63 bits for the u64 profiles."""
    return str(secrets.randbits(128 if profile == "eip712" else 63))


def unix_now() -> int:
    """The wall clock, unix seconds."""
    return int(time.time())
