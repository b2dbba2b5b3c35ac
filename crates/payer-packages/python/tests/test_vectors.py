"""Every vector of the payer's kinds, and the spec's worked examples, through the public API."""

import json
import os

import pytest
from conftest import VECTORS

from aep2_payer import (
    Aep2Error,
    Ed25519Domain,
    Ed25519Key,
    Eip712Domain,
    Secp256k1Key,
    a2a_request_hash,
    domain_from_json,
    http_request_hash,
    mcp_request_hash,
    quote_hash,
    sign_mandate,
)

KINDS = ("sign_mandate", "http_request_hash", "a2a_request_hash", "mcp_request_hash")


def cases():
    for name in sorted(os.listdir(VECTORS)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(VECTORS, name)) as f:
            doc = json.load(f)
        for group in doc["testGroups"]:
            if group["kind"] in KINDS:
                for t in group["tests"]:
                    yield pytest.param(group["kind"], group.get("context", {}), t, id=f"{name}:{t['tcId']}")


def run(kind, ctx, inp):
    if kind == "sign_mandate":
        p = ctx["profile"]
        key = Secp256k1Key.from_hex(inp["key"]) if p == "eip712" else Ed25519Key.from_hex(inp["key"])
        s = sign_mandate(p, inp["mandate"], domain_from_json(p, ctx.get("domain")), key, ctx.get("form", "mvp"))
        return {
            "signature": s.signature,
            "header": s.header,
            "signingBytes": "0x" + s.signing_bytes.hex(),
            "mandateId": s.mandate_id,
        }
    if kind == "http_request_hash":
        h, d = http_request_hash(inp["method"], inp["url"], bytes.fromhex(inp["body"]))
    elif kind == "mcp_request_hash":
        h, d = mcp_request_hash(inp["name"], inp.get("arguments"))
    else:
        h, d = a2a_request_hash(inp["a2aMessage"])
    return {"requestHash": h, "descriptor": d}


@pytest.mark.parametrize("kind,ctx,case", list(cases()))
def test_vector(kind, ctx, case):
    expected = case["expected"]
    if expected["result"] == "invalid":
        with pytest.raises(Aep2Error) as e:
            run(kind, ctx, case["input"])
        assert e.value.code == expected["reason"]
        return
    got = run(kind, ctx, case["input"])
    inter = case.get("intermediates", {})
    compared = 0
    for k, v in got.items():
        for source in (inter, expected):
            if k in source:
                assert v == source[k], k
                compared += 1
    # A valid case is judged on its digest or signature, never on the verdict alone.
    assert compared >= 1


def test_there_are_vectors():
    assert len(list(cases())) >= 60


def test_eip712_worked_example():
    """spec §4.1.1 and §5.2: the digest and the native envelope's signature."""
    key = Secp256k1Key.from_hex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    mandate = {
        "owner": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "token": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payee": "0x2222222222222222222222222222222222222222",
        "amount": "1000",
        "nonce": "1",
        "deadline": 1700000600,
        "ref": "0xc01aa5533230e792b6b341f2c78c606ef0b50bf56ee18ca7a8fa956d5235fe98",
    }
    s = sign_mandate(
        "eip712", mandate, Eip712Domain(84532, "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"), key, "native"
    )
    assert s.mandate_id == "0xacffc66c2eab7d0e63e893c1027af74f82090d2718062bdb0c174f653e2e43ca"
    assert s.signature == (
        "0xd7ff6c5d02ded4432ad3fc3f2f65503cdb27f41cbe39f61dba994f6e936c8b9f"
        "518fe0bb6aca24d678c6e63986679c5d20e8a6d1b82609291f9ea685587b3b7c1c"
    )
    assert s.envelope["domain"] == {"chainId": 84532, "verifyingContract": "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"}


def test_ed25519_worked_example():
    """spec §4.2.1: signing input, mandate id and signature."""
    key = Ed25519Key.from_hex("0625abc24eb009fab119bfb4d4e09804fefaf6bf46af33a549d2c3f52aa86118")
    assert key.address == "73LczaJo17YVrSW9ULFfLdS5H3THPxY97SBvtJrDrhx3"
    mandate = {
        "payer": key.address,
        "token": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
        "payee": "AxjwQw2GwyvsESkERYTMeFXPxeiHSkymdifN7RjSDQMw",
        "amount": "750",
        "nonce": "987654321",
        "deadline": 1893456000,
        "ref": "0x4591d180dfb6b869743b60d5fb5fdd97ca78aa883236f07fab0b6bbb243216b7",
    }
    domain = Ed25519Domain("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "AnZDD6eXMV3xfhLqXWi6DUp8ebJwYCYfce8sYawVgdan")
    s = sign_mandate("ed25519", mandate, domain, key, "native")
    assert len(s.signing_bytes) == 453
    assert s.mandate_id == "0xeae409fd3a7d69e2d1272bfcdb5732f7426b0181140ec3c59773ab2874a5d0fa"
    assert s.signature == "2fCLX8uaysPyYmDcRMa3LZFaWpK3yYdKvVv6Xqhwe3xhfaiuwVDaZVGM32PjizqJaspEjhvTmFdeDFseYHzLBofR"


def test_quote_hash_worked_example():
    """spec §9.2, also with the payee in lowercase hex (the same hash)."""
    quote = {
        "aep2": 1,
        "kind": "payment-request",
        "profile": "eip712",
        "domain": {"chainId": 84532, "verifyingContract": "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"},
        "requestId": "order-2026-0001",
        "payee": "0xaAD167617dF02Dd30208722c88d9027a2fDD8812",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "amount": "1000",
        "expiry": 1800000300,
        "description": "Market report: EU solar, Q3",
        "settlementProcessor": "0x405B10be927D3BF157196C995d8131c6A097673c",
        "settlementWindow": 300,
    }
    h = "0xce5bef34a9b51df459f0f66c0ea247891fd4a68ab2dbb069c00c589b6aaba1dd"
    assert quote_hash(quote) == h
    assert quote_hash(dict(quote, payee=quote["payee"].lower())) == h


def test_signer_refuses_another_key():
    key = Secp256k1Key.from_hex("11" * 32)
    mandate = {
        "owner": "0x2222222222222222222222222222222222222222",
        "token": "0x" + "33" * 20,
        "payee": "0x" + "44" * 20,
        "amount": "1",
        "nonce": "0",
        "deadline": 1,
        "ref": "0x" + "00" * 32,
    }
    with pytest.raises(Aep2Error) as e:
        sign_mandate("eip712", mandate, Eip712Domain(1, "0x" + "55" * 20), key)
    assert e.value.code == "signature_invalid"


@pytest.mark.parametrize(
    "field,value,code",
    [
        ("amount", "0", "amount_zero"),
        ("amount", "01", "uint_invalid"),
        ("amount", 1, "field_type"),
        ("ref", "0x" + "AB" * 32, "ref_invalid"),
        ("token", "0x036cbD53842c5426634e7929541eC2318f3dCF7e", "address_checksum"),
    ],
)
def test_mandate_fields_checked(field, value, code):
    key = Secp256k1Key.from_hex("11" * 32)
    mandate = {
        "owner": key.address,
        "token": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payee": "0x" + "44" * 20,
        "amount": "1",
        "nonce": "0",
        "deadline": 1,
        "ref": "0x" + "00" * 32,
    }
    mandate[field] = value
    with pytest.raises(Aep2Error) as e:
        sign_mandate("eip712", mandate, Eip712Domain(1, "0x" + "55" * 20), key)
    assert e.value.code == code
