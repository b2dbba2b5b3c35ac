"""The aep2 scheme inside the real x402 SDK, and safe retry against a loopback HTTP server."""

import asyncio
import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from x402 import x402Client
from x402.http.clients.httpx import PaymentError
from x402.schemas import PaymentRequired

from aep2_payer import Aep2Error, Secp256k1Key, http_request_hash, quote_hash
from aep2_payer.x402 import _BOUND, Aep2Payer, BoundRequest

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


def sdk_client(payer):
    client = payer.register(x402Client())
    client.set_spend_controls({"allowed_assets": [{"network": "eip155:84532", "asset": TOKEN}]})
    return client


def required(**extra):
    return PaymentRequired.model_validate(
        {"x402Version": 2, "resource": {"url": "http://api.test/paid"}, "accepts": [entry(**extra)]}
    )


def test_sdk_builds_a_request_bound_payload():
    payer = Aep2Payer(KEY)
    client = sdk_client(payer)
    token = _BOUND.set(BoundRequest("GET", "http://api.test/paid?x=1"))
    try:
        payload = asyncio.run(client.create_payment_payload(required()))
    finally:
        _BOUND.reset(token)
    envelope = payload.payload
    assert envelope["mandate"]["ref"] == http_request_hash("GET", "http://api.test/paid?x=1")[0]
    assert envelope["mandate"]["owner"] == KEY.address and envelope["mandate"]["amount"] == "1000"
    assert payload.accepted.scheme == "aep2"
    # The header the SDK sends carries the envelope object as payload (spec §10.3).
    wire = json.loads(base64.b64decode(base64.b64encode(payload.model_dump_json(by_alias=True).encode())))
    assert wire["payload"]["payerSig"] == envelope["payerSig"]


def test_intent_mode_needs_the_request():
    payer = Aep2Payer(KEY)
    with pytest.raises(Aep2Error) as e:
        payer.mandate_for(entry())
    assert e.value.code == "request_descriptor_invalid"


def test_order_mode_signs_the_quote_hash():
    quote = {
        "aep2": 1,
        "kind": "payment-request",
        "profile": "eip712",
        "domain": DOMAIN,
        "requestId": "q-1",
        "payee": PAYEE,
        "asset": TOKEN,
        "amount": "1000",
        "expiry": 4102444800,
        "description": "x",
        "settlementProcessor": "0x" + "66" * 20,
        "settlementWindow": 310,
    }
    signed = Aep2Payer(KEY).mandate_for(entry(quote=quote))
    assert signed.mandate["ref"] == quote_hash(quote)
    with pytest.raises(Aep2Error) as e:
        Aep2Payer(KEY).mandate_for(entry(quote=dict(quote, amount="999")))
    assert e.value.code == "amount_not_exact"


def test_same_request_same_mandate_until_the_outcome_is_known():
    payer = Aep2Payer(KEY)
    bound = BoundRequest("POST", "http://api.test/paid", b"{}")
    first = payer.mandate_for(entry(), bound)
    # While it is being presented, a concurrent identical call is another call: its own mandate.
    concurrent = payer.mandate_for(entry(), bound)
    assert concurrent.signature != first.signature
    payer.finish(concurrent.signature)
    payer.release(first.signature)  # its outcome is unknown
    assert payer.mandate_for(entry(), bound) is first  # presented again, not replaced
    assert payer.mandate_for(entry(), bound) is not first  # (and in flight again)
    assert payer.mandate_for(entry(), BoundRequest("POST", "http://api.test/paid", b"[]")) is not first
    payer.finish(first.signature)
    again = payer.mandate_for(entry(), bound)
    assert again.mandate["nonce"] != first.mandate["nonce"]  # a new payment for a new call


def test_spend_cap():
    with pytest.raises(Aep2Error) as e:
        Aep2Payer(KEY, max_amount=999).mandate_for(entry(), BoundRequest("GET", "http://a.test/"))
    assert e.value.code == "spend_limit"


class Server:
    """A loopback HTTP server: 402 without payment, then the scripted statuses for paid requests."""

    def __init__(self, script):
        self.script = list(script)
        self.paid = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                sig = self.headers.get("payment-signature")
                if sig is None:
                    pr = {
                        "x402Version": 2,
                        "resource": {"url": f"http://{self.headers['host']}{self.path}"},
                        "accepts": [entry()],
                    }
                    self.send_response(402)
                    self.send_header("PAYMENT-REQUIRED", base64.b64encode(json.dumps(pr).encode()).decode())
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                    return
                outer.paid.append(sig)
                status = outer.script.pop(0) if outer.script else 200
                body = json.dumps({"reason": "settlement_unavailable"} if status == 503 else {"ok": True}).encode()
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("script,final,presented", [([503, 503], 200, 3), ([503] * 5, 503, 4)])
def test_safe_retry_presents_the_same_mandate(script, final, presented):
    server = Server(script)
    try:
        payer = Aep2Payer(KEY, retry_delay=0.01, max_retries=3)

        async def go():
            async with payer.httpx_client(sdk_client(payer)) as http:
                return await http.get(server.url + "/paid")

        r = asyncio.run(go())
        assert r.status_code == final
        assert len(server.paid) == presented and len(set(server.paid)) == 1
        assert len(payer.signed) == 1
        # Retries exhausted: the mandate stays unfinished and is presented again next time.
        assert (payer.unfinished() == [payer.signed[0]]) == (final == 503)
    finally:
        server.close()


def test_transport_error_after_retries_keeps_the_mandate():
    payer = Aep2Payer(KEY, retry_delay=0.01, max_retries=1)
    server = Server([])

    class Refuse(httpx.AsyncBaseTransport):
        def __init__(self):
            self.inner = httpx.AsyncHTTPTransport()
            self.paid = []

        async def handle_async_request(self, request):
            if "payment-signature" in request.headers:
                self.paid.append(request.headers["payment-signature"])
                raise httpx.ConnectError("refused", request=request)
            return await self.inner.handle_async_request(request)

    base = Refuse()

    async def go():
        async with payer.httpx_client(sdk_client(payer), base=base) as http:
            await http.get(server.url + "/paid")

    try:
        with pytest.raises(PaymentError):  # the SDK wraps the last transport error
            asyncio.run(go())
        assert len(base.paid) == 2 and len(set(base.paid)) == 1
        assert payer.unfinished() == payer.signed
        # The next payment of the same request presents the same mandate (no second signature).
        base2 = httpx.AsyncHTTPTransport()

        async def again():
            async with payer.httpx_client(sdk_client(payer), base=base2) as http:
                return await http.get(server.url + "/paid")

        r = asyncio.run(again())
        assert r.status_code == 200
        assert server.paid == [base.paid[0]]
        assert len(payer.signed) == 1 and payer.unfinished() == []
    finally:
        server.close()


def test_concurrent_identical_calls_each_pay_once():
    server = Server([])
    try:
        payer = Aep2Payer(KEY, retry_delay=0.01)

        async def go():
            async with payer.httpx_client(sdk_client(payer)) as http:
                return await asyncio.gather(*(http.get(server.url + "/paid") for _ in range(3)))

        rs = asyncio.run(go())
        assert [r.status_code for r in rs] == [200, 200, 200]
        assert len(set(server.paid)) == 3 and len(payer.signed) == 3
        assert payer.unfinished() == []
    finally:
        server.close()


def test_requests_adapter_binds_and_retries_with_the_same_mandate():
    from x402 import x402ClientSync

    from aep2_payer.requests import session

    server = Server([503])
    try:
        payer = Aep2Payer(KEY, retry_delay=0.01)
        client = payer.register(x402ClientSync())
        client.set_spend_controls({"allowed_assets": [{"network": "eip155:84532", "asset": TOKEN}]})
        with session(client, payer) as http:
            r = http.get(server.url + "/paid?x=1")
        assert r.status_code == 200
        assert len(server.paid) == 2 and len(set(server.paid)) == 1 and len(payer.signed) == 1
        assert payer.signed[0].mandate["ref"] == http_request_hash("GET", server.url + "/paid?x=1")[0]
        assert payer.unfinished() == []
    finally:
        server.close()


@pytest.mark.parametrize(
    "change,code",
    [
        ({"settlementProcessor": None}, "missing_field"),
        ({"extra_member": 1}, "unknown_field"),
        ({"expiry": "soon"}, "field_type"),
    ],
)
def test_malformed_quote_is_refused_before_signing(change, code):
    quote = {"aep2": 1, "kind": "payment-request", "profile": "eip712", "domain": DOMAIN, "requestId": "q-1",
             "payee": PAYEE, "asset": TOKEN, "amount": "1000", "expiry": 4102444800, "description": "x",
             "settlementProcessor": "0x" + "66" * 20, "settlementWindow": 310}  # fmt: skip
    for k, v in change.items():
        if v is None:
            del quote[k]
        else:
            quote[k] = v
    payer = Aep2Payer(KEY)
    with pytest.raises(Aep2Error) as e:
        payer.mandate_for(entry(quote=quote))
    assert e.value.code == code
    assert payer.signed == []
