"""The A2A helpers on v1.0 and v0.3 messages and tasks."""

import pytest

from aep2_payer import Aep2Error, Secp256k1Key, a2a_request_hash, quote_hash
from aep2_payer.a2a import (
    EXTENSION_URI,
    MANDATE,
    STATUS,
    pay_message,
    pay_quote,
    payment_status,
    receipt_of,
    requirements_of,
)
from aep2_payer.x402 import Aep2Payer

KEY = Secp256k1Key.from_hex("22" * 32)
TOKEN = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PAYEE = "0x4444444444444444444444444444444444444444"
DOMAIN = {"chainId": 84532, "verifyingContract": "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"}


def entry(**extra):
    return {
        "scheme": "aep2",
        "network": "eip155:84532",
        "amount": "1000",
        "asset": TOKEN,
        "payTo": PAYEE,
        "maxTimeoutSeconds": 60,
        "extra": {"domain": DOMAIN, "settlementWindow": 310, **extra},
    }


@pytest.mark.parametrize(
    "message",
    [
        {"messageId": "m-1", "contextId": "ctx-1", "role": "ROLE_USER", "parts": [{"text": "Translate: good morning"}]},
        {
            "kind": "message",
            "messageId": "m-1",
            "contextId": "ctx-1",
            "role": "user",
            "parts": [{"kind": "text", "text": "Translate: good morning"}],
        },
    ],
)
def test_intent_mode_binds_the_message(message):
    paid = pay_message(Aep2Payer(KEY), message, entry())
    h = a2a_request_hash(message)[0]
    assert paid["metadata"][STATUS] == "payment-submitted"
    assert paid["metadata"][MANDATE]["mandate"]["ref"] == h
    assert EXTENSION_URI in paid["extensions"]
    # Metadata and extensions are outside the descriptor: the paid message has the same hash.
    assert a2a_request_hash(paid)[0] == h
    assert "metadata" not in message  # the input is not changed


def test_order_mode_pays_the_tasks_quote():
    quote = {
        "aep2": 1,
        "kind": "payment-request",
        "profile": "eip712",
        "domain": DOMAIN,
        "requestId": "q-3",
        "payee": PAYEE,
        "asset": TOKEN,
        "amount": "1000",
        "expiry": 4102444800,
        "description": "translation",
        "settlementProcessor": "0x" + "66" * 20,
        "settlementWindow": 310,
    }
    task = {
        "id": "task-7",
        "contextId": "ctx-1",
        "status": {
            "state": "TASK_STATE_INPUT_REQUIRED",
            "message": {
                "messageId": "s-1",
                "role": "ROLE_AGENT",
                "parts": [{"text": "Payment required"}],
                "extensions": [EXTENSION_URI],
                "metadata": {STATUS: "payment-required", "aep2.dev/requirements": [entry(quote=quote)]},
            },
        },
    }
    assert payment_status(task) == "payment-required"
    assert requirements_of(task)[0]["extra"]["quote"] == quote
    reply = pay_quote(Aep2Payer(KEY), task, {"messageId": "m-2", "role": "ROLE_USER", "parts": [{"text": "ok"}]})
    assert reply["taskId"] == "task-7"
    assert reply["metadata"][MANDATE]["mandate"]["ref"] == quote_hash(quote)


def test_reads_receipts_and_refuses_foreign_requirements():
    done = {
        "status": {
            "state": "TASK_STATE_COMPLETED",
            "message": {
                "messageId": "s-2",
                "role": "ROLE_AGENT",
                "parts": [{"text": "done"}],
                "metadata": {
                    STATUS: "payment-verified",
                    "aep2.dev/receipt": {"mandateId": "0x" + "cd" * 32, "payer": KEY.address, "amount": "1000"},
                },
            },
        }
    }
    assert receipt_of(done)["amount"] == "1000"
    bad = {
        "status": {
            "message": {"metadata": {STATUS: "payment-required", "aep2.dev/requirements": [{"scheme": "exact"}]}}
        }
    }
    with pytest.raises(Aep2Error) as e:
        requirements_of(bad)
    assert e.value.code == "x402_scheme_unsupported"
