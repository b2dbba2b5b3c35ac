"""Spending lanes (spec §18): the valid vectors of vectors/lanes.json re-signed byte for byte from
their public test keys, the lane receipts of vectors/receipts.json, grants and mandates under a
2-link chain with the signer's refusals, a payer paying under a lane file, and (when the aep2 CLI is
built: ``AEP2_BIN``, else the workspace's ``target/debug/aep2``) the Rust verifier's verdict on what
this package signs and this package's reading of a lane file ``aep2 lane grant`` prints."""

import base64
import hashlib
import json
import os
import subprocess

import pytest
from conftest import VECTORS

from aep2_payer import (
    Aep2Error,
    Ed25519Domain,
    Ed25519Key,
    Eip712Domain,
    Secp256k1Key,
    domain_from_json,
    grant_lane,
    lane_id,
    load_lane_file,
    sign_lane,
    sign_lane_mandate,
    verify_lane_envelope,
)
from aep2_payer.codec import keccak256
from aep2_payer.lanes import decode_header
from aep2_payer.receipts import check_receipt
from aep2_payer.x402 import Aep2Payer


def vectors(name):
    with open(os.path.join(VECTORS, name)) as f:
        return json.load(f)


def decode(header):
    return json.loads(base64.b64decode(header))


def keys(profile):
    """The vectors' public test keys (crates/aep2-vectors/src/generate/mod.rs: secp_secret, ed_seed)."""
    labels = ("owner", "agent", "sub-agent", "sub-sub-agent")
    if profile == "eip712":
        return [Secp256k1Key(keccak256(f"aep2-vectors/secp256k1/lanes/{x}".encode())) for x in labels]
    return [Ed25519Key(hashlib.sha256(f"aep2-vectors/ed25519/lanes/{x}".encode()).digest()) for x in labels]


def resign(profile, domain, env):
    """The envelope `env` signed again here: each link by its grantor, the mandate by the leaf's agent."""
    ks = keys(profile)
    file = None
    for i, link in enumerate(env["lanes"]):
        file = sign_lane(profile, link["lane"], domain, ks[i], file)
        assert file.chain[-1].signature == link["signature"], f"link {i}"
    form = "native" if "aep2" in env else "mvp"
    return sign_lane_mandate(profile, env["mandate"], file, ks[len(env["lanes"])], form)


def valid_lane_cases():
    for g in vectors("lanes.json")["testGroups"]:
        if g["group"].endswith("-valid"):
            for t in g["tests"]:
                yield pytest.param(g["context"], t, id=t["id"])


@pytest.mark.parametrize("ctx,case", list(valid_lane_cases()))
def test_valid_lane_vectors_resign_byte_for_byte(ctx, case):
    p = ctx["profile"]
    s = resign(p, domain_from_json(p, ctx["domain"]), decode(case["input"]["header"]))
    assert s.header == case["input"]["header"]
    assert s.mandate_id == case["intermediates"]["mandateId"]
    assert "0x" + s.signing_bytes.hex() == case["intermediates"]["signingBytes"]


def lane_envelope_cases():
    for g in vectors("lanes.json")["testGroups"]:
        for t in g["tests"]:
            if "lanes" in decode(t["input"]["header"]):
                yield pytest.param(g["context"], t, id=t["id"])


@pytest.mark.parametrize("ctx,case", list(lane_envelope_cases()))
def test_lane_vectors_verify(ctx, case):
    # Every case of vectors/lanes.json whose envelope has lanes (the 2 others are plain mandates).
    p = ctx["profile"]
    domain = domain_from_json(p, ctx.get("domain"))
    expected = case["expected"]
    if expected["result"] == "invalid":
        with pytest.raises(Aep2Error) as e:
            verify_lane_envelope(decode_header(case["input"]["header"]), p, domain, ctx.get("now"))
        assert e.value.code == expected["reason"], case["comment"]
        return
    m = verify_lane_envelope(decode_header(case["input"]["header"]), p, domain, ctx.get("now"))
    assert m.mandate_id == case["intermediates"]["mandateId"]
    assert m.signer == case["intermediates"]["signer"]


def test_there_are_lane_vectors():
    assert len(list(lane_envelope_cases())) == 144


def lane_receipt_cases():
    for g in vectors("receipts.json")["testGroups"]:
        if g["group"] in ("lane-eip712", "lane-ed25519"):
            for t in g["tests"]:
                yield pytest.param(g["context"], t, id=t["id"])


@pytest.mark.parametrize("ctx,case", list(lane_receipt_cases()))
def test_lane_receipt_vectors(ctx, case):
    # The receipts' mandate is re-signed here (byte-identical, checked) and verified, then the receipt checked.
    p = ctx["profile"]
    domain = domain_from_json(p, ctx["domain"])
    signed = resign(p, domain, decode(case["input"]["mandateHeader"]))
    assert signed.header == case["input"]["mandateHeader"]
    assert verify_lane_envelope(decode_header(signed.header), p, domain).mandate_id == signed.mandate_id
    expected = case["expected"]
    if expected["result"] == "invalid":
        with pytest.raises(Aep2Error) as e:
            check_receipt(case["input"]["receipt"], signed, ctx["sp"])
        assert e.value.code == expected["reason"], case["comment"]
        return
    r = check_receipt(case["input"]["receipt"], signed, ctx["sp"])
    assert r.lane is not None and r.lane.id == signed.lane_id and r.lane.remaining == 1600
    assert r.checks == ["signature", "sp", "mandate-digest", "deadline-rule", "lane"]


DOMAINS = {
    "eip712": Eip712Domain(84532, "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"),
    "ed25519": Ed25519Domain("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "AnZDD6eXMV3xfhLqXWi6DUp8ebJwYCYfce8sYawVgdan"),
}
TOKENS = {
    "eip712": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    "ed25519": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
}
NOW = 1_800_000_000


def two_links(profile):
    owner, agent, sub, payee_key = keys(profile)
    d = DOMAINS[profile]
    root = grant_lane(
        profile, d, owner, agent=agent.address, token=TOKENS[profile], per_payment=1000, total=10000,
        max_payments=50, valid_from=NOW - 60, valid_until=NOW + 86_400, payees=[payee_key.address],
        purpose="research", now=NOW,
    )
    leaf = grant_lane(
        profile, d, agent, parent=root.to_json(), agent=sub.address, token=TOKENS[profile], per_payment=500,
        total=2000, valid_until=NOW + 3600, purpose="sub-agent", now=NOW,
    )
    mandate = {
        "owner" if profile == "eip712" else "payer": owner.address,
        "token": TOKENS[profile],
        "payee": payee_key.address,
        "amount": "400",
        "nonce": "12345",
        "deadline": NOW + 600,
        "ref": "0x" + "4c" * 32,
    }
    return root, leaf, mandate, (owner, agent, sub, payee_key)


@pytest.mark.parametrize("profile", ["eip712", "ed25519"])
def test_grant_two_links_and_sign_under_them(profile):
    root, leaf, mandate, (owner, agent, sub, payee) = two_links(profile)
    assert leaf.chain[-1].lane.parent == root.id
    assert leaf.ids == (root.id, leaf.id)
    assert leaf.leaf.payees == root.leaf.payees and leaf.leaf.max_payments == 50
    text = json.dumps(leaf.to_json())
    loaded = load_lane_file(text)
    assert loaded.id == leaf.id and loaded.agent == sub.address and loaded.owner == owner.address
    assert lane_id(leaf.leaf, DOMAINS[profile]) == leaf.id
    for form in ("mvp", "native"):
        s = sign_lane_mandate(profile, mandate, text, sub, form)
        assert s.lane_id == leaf.id and len(s.envelope["lanes"]) == 2
        assert ("aep2" in s.envelope) == (form == "native")
        v = verify_lane_envelope(decode_header(s.header), profile, DOMAINS[profile], NOW)
        assert v.mandate_id == s.mandate_id and v.signer == sub.address and v.purposes == ("research", "sub-agent")
        for now, reason in ((NOW + 3601, "expired"), (NOW - 61, "lane_not_yet_valid")):
            with pytest.raises(Aep2Error) as e:
                verify_lane_envelope(decode_header(s.header), profile, DOMAINS[profile], now)
            assert e.value.code == reason


@pytest.mark.parametrize("profile", ["eip712", "ed25519"])
def test_refusals_carry_the_reference_codes(profile):
    root, leaf, mandate, (owner, agent, sub, payee) = two_links(profile)
    d = DOMAINS[profile]
    kw = dict(agent=sub.address, token=TOKENS[profile], per_payment=500, total=2000, valid_until=NOW + 3600, now=NOW)

    def code(f, *a, **k):
        with pytest.raises(Aep2Error) as e:
            f(*a, **k)
        return e.value.code

    assert code(grant_lane, profile, d, agent, parent=root, **{**kw, "per_payment": 1001}) == "lane_attenuation_invalid"
    assert code(grant_lane, profile, d, agent, parent=root, **{**kw, "valid_until": NOW + 86_401}) == (
        "lane_attenuation_invalid"
    )
    assert code(grant_lane, profile, d, owner, parent=root, **kw) == "signature_invalid"
    assert code(sign_lane, profile, root.leaf.to_json(), d, agent) == "signature_invalid"
    assert code(sign_lane, profile, leaf.leaf.to_json(), d, agent) == "lane_chain_invalid"
    assert code(grant_lane, profile, d, agent, parent=root, **{**kw, "purpose": 'a "quote"'}) == "lane_invalid"
    signer = "owner" if profile == "eip712" else "payer"

    def sign(change, key=sub, lanes=leaf):
        return code(sign_lane_mandate, profile, {**mandate, **change}, lanes, key)

    assert sign({}, key=agent) == "signature_invalid"
    assert sign({signer: agent.address}) == "lane_agent_mismatch"
    assert sign({"amount": "501"}) == "lane_payment_cap_exceeded"
    assert sign({"payee": owner.address}) == "lane_payee_not_allowed"
    assert sign({"deadline": NOW + 3601}) == "lane_expired"
    assert sign({"token": payee.address}) == "lane_asset_mismatch"
    tampered = leaf.to_json()
    tampered["lane"]["total"] = "1999"
    del tampered["id"]
    assert code(load_lane_file, tampered) == "lane_signature_invalid"
    assert sign({}, lanes=tampered) == "lane_signature_invalid"


@pytest.mark.parametrize("profile", ["eip712", "ed25519"])
def test_payer_under_a_lane_signs_for_the_owner_with_random_nonces(profile):
    _, leaf, _, (owner, agent, sub, payee) = two_links(profile)
    payer = Aep2Payer(sub, lane=json.dumps(leaf.to_json()))
    assert payer.max_amount == 500
    req = {
        "scheme": "aep2",
        "network": "eip155:84532" if profile == "eip712" else DOMAINS["ed25519"].network,
        "amount": "300",
        "asset": TOKENS[profile],
        "payTo": payee.address,
        "extra": {"domain": DOMAINS[profile].to_json(), "settlementWindow": 300},
    }
    a = payer.mandate_for(req, request_hash="0x" + "11" * 32)
    b = payer.mandate_for(dict(req, amount="301"), request_hash="0x" + "11" * 32)
    assert a.mandate["owner" if profile == "eip712" else "payer"] == owner.address
    assert a.mandate["nonce"] != b.mandate["nonce"] and a.lane_id == leaf.id
    with pytest.raises(Aep2Error) as e:
        Aep2Payer(agent, lane=leaf)
    assert e.value.code == "signature_invalid"


def _aep2_bin():
    env = os.environ.get("AEP2_BIN")
    if env:
        return env
    built = os.path.join(VECTORS, "..", "target", "debug", "aep2")
    return built if os.path.exists(built) else None


AEP2 = _aep2_bin()


def domain_args(profile):
    d = DOMAINS[profile]
    if profile == "eip712":
        return ["--chain-id", str(d.chain_id), "--verifying-contract", d.verifying_contract]
    return ["--network", d.network, "--wallet", d.wallet]


@pytest.mark.skipif(AEP2 is None, reason="the aep2 CLI is not built (set AEP2_BIN)")
@pytest.mark.parametrize("profile", ["eip712", "ed25519"])
def test_the_rust_cli_verifies_what_this_package_signs_under_two_links(profile, tmp_path):
    root, leaf, mandate, (owner, agent, sub, payee) = two_links(profile)
    verify = [AEP2, "verify", "--profile", profile, *domain_args(profile), "--now", str(NOW), "--header"]
    for form in ("mvp", "native"):
        s = sign_lane_mandate(profile, mandate, leaf, sub, form)
        out = json.loads(subprocess.run([*verify, s.header], capture_output=True, text=True).stdout)
        assert out["valid"] is True, out
        assert out["digest"] == s.mandate_id
    # A sub-lane granted by the CLI under the root lane granted here, loaded and signed under.
    (tmp_path / "root.json").write_text(json.dumps(root.to_json()))
    printed = subprocess.run(
        [AEP2, "lane", "grant", "--profile", profile, *domain_args(profile), "--key", "0x" + _secret(agent),
         "--agent", sub.address, "--asset", TOKENS[profile], "--per-payment", "500", "--total", "2000",
         "--valid-until", str(NOW + 3600), "--parent", f"@{tmp_path / 'root.json'}"],
        capture_output=True, text=True, check=True,
    ).stdout
    from_cli = load_lane_file(printed)
    assert from_cli.ids[0] == root.id and len(from_cli.chain) == 2
    s = sign_lane_mandate(profile, mandate, from_cli, sub)
    out = json.loads(subprocess.run([*verify, s.header], capture_output=True, text=True).stdout)
    assert out["valid"] is True, out


def _secret(key):
    labels = ("owner", "agent", "sub-agent", "sub-sub-agent")
    for x in labels:
        if isinstance(key, Secp256k1Key):
            secret = keccak256(f"aep2-vectors/secp256k1/lanes/{x}".encode())
            if Secp256k1Key(secret).address == key.address:
                return secret.hex()
        else:
            seed = hashlib.sha256(f"aep2-vectors/ed25519/lanes/{x}".encode()).digest()
            if Ed25519Key(seed).address == key.address:
                return seed.hex()
    raise AssertionError("not a test key")
