"""The SP receipts of spec §6.1 and §6.3 (worked examples), and their refusals."""

import pytest

from aep2_payer import Aep2Error, Eip712Domain, Secp256k1Key, sign_mandate
from aep2_payer.receipts import verify_receipt

SP = "0x405B10be927D3BF157196C995d8131c6A097673c"
DIGEST = "0xacffc66c2eab7d0e63e893c1027af74f82090d2718062bdb0c174f653e2e43ca"
DOMAIN = {"chainId": 84532, "verifyingContract": "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"}


def mandate(form):
    key = Secp256k1Key.from_hex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    m = {
        "owner": key.address,
        "token": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payee": "0x2222222222222222222222222222222222222222",
        "amount": "1000",
        "nonce": "1",
        "deadline": 1700000600,
        "ref": "0xc01aa5533230e792b6b341f2c78c606ef0b50bf56ee18ca7a8fa956d5235fe98",
    }
    return sign_mandate("eip712", m, Eip712Domain(84532, DOMAIN["verifyingContract"]), key, form)


MVP = {
    "sp": SP,
    "mandateDigest": DIGEST,
    "enqueueDeadline": 1700000600,
    "spEnqueueSig": "0x8720cfb7c7da6868e5a1ba12094c0b7e64e227b56054ddbcb9bcff79937fd8a3"
    "6baa078810bdc97fc99d9d0bbc3f0fd2dc171f48a6804894038804f402da1c8a1b",
}
NATIVE = {
    "aep2": 1,
    "kind": "receipt",
    "profile": "eip712",
    "domain": DOMAIN,
    "sp": SP,
    "mandateDigest": DIGEST,
    "enqueueDeadline": 1700000600,
    "signature": "0xd10bd3960a9776b8fd55ce8a493e37c11ba3527509bd5b8d2d5abf8aab76064f"
    "1a5396f7e383af4d7fca7c4bbc2db11cd9b7dcd430bf922e1c99b077124dd93d1c",
}
ALL = ["signature", "sp", "mandate-digest", "deadline-rule"]


@pytest.mark.parametrize("receipt,form", [(MVP, "mvp"), (NATIVE, "native")])
def test_worked_examples_verify(receipt, form):
    assert verify_receipt(receipt, mandate(form), expected_sp=SP) == ALL
    assert verify_receipt(receipt, mandate(form)) == ["signature", "mandate-digest", "deadline-rule"]


@pytest.mark.parametrize(
    "receipt,change,code",
    [
        (MVP, {"enqueueDeadline": 1700000601}, "signature_invalid"),
        (NATIVE, {"enqueueDeadline": 1700000601}, "signature_invalid"),
        (MVP, {"spEnqueueSig": MVP["spEnqueueSig"][:-2] + "1d"}, "signature_v_invalid"),
        (NATIVE, {"domain": dict(DOMAIN, chainId=1)}, "signature_invalid"),
        (MVP, {"extra": 1}, "unknown_field"),
    ],
)
def test_tampered_receipts_are_refused(receipt, change, code):
    with pytest.raises(Aep2Error) as e:
        verify_receipt(dict(receipt, **change), mandate("native" if "aep2" in receipt else "mvp"))
    assert e.value.code == code


def test_another_sp_is_refused():
    with pytest.raises(Aep2Error) as e:
        verify_receipt(MVP, mandate("mvp"), expected_sp="0x" + "11" * 20)
    assert e.value.code == "receipt_sp_mismatch"
