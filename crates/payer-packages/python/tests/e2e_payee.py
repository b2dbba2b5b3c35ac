"""End to end against `aep2 serve payee` + `aep2 serve sp` (run by crates/aep2-cli/tests/payer_python.rs).

Usage: python e2e_payee.py PAYEE_URL SP_URL PAYER_KEY SP_ADDRESS TOKEN SP_PID

Pays through the official x402 SDK (x402Client + its httpx transport) with the aep2 scheme:
Intent Mode (request-bound), Order Mode (quote), then the safe-retry cases: a paid attempt that
fails before it reaches the payee, one whose response is lost, and one during an SP stall (503).
Every charge is counted at the SP. Prints one JSON line of results; exits non-zero on a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading

import httpx
from x402 import x402Client

from aep2_payer import Secp256k1Key, http_request_hash, quote_hash
from aep2_payer.receipts import verify_receipt
from aep2_payer.x402 import Aep2Payer, decode_payment_response

PAYEE, SP, KEY, SP_ADDR, TOKEN, SP_PID = sys.argv[1:7]
PRICE = 1000


def check(cond: bool, what: str) -> None:
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


class Flaky(httpx.AsyncBaseTransport):
    """A real transport that fails the first paid attempt: before sending it, or after (lost response)."""

    def __init__(self, mode: str | None) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.mode = mode
        self.paid_headers: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("payment-signature")
        if header is not None:
            self.paid_headers.append(header)
            if self.mode == "before" and len(self.paid_headers) == 1:
                raise httpx.ConnectError("injected: connection refused before sending", request=request)
            if self.mode == "after" and len(self.paid_headers) == 1:
                response = await self.inner.handle_async_request(request)
                await response.aread()
                raise httpx.ReadTimeout("injected: the response was lost", request=request)
        return await self.inner.handle_async_request(request)


def sp_get(path: str) -> httpx.Response:
    return httpx.get(SP + path, timeout=10)


def charged(mandate_id: str) -> bool:
    r = sp_get(f"/v1/mandates/{mandate_id}")
    check(r.status_code in (200, 404), f"SP mandate lookup {r.status_code} {r.text}")
    return r.status_code == 200


def available(address: str) -> int:
    r = sp_get(f"/v1/accounts?payer={address}")
    check(r.status_code == 200, f"SP accounts {r.text}")
    return int(r.json()["accounts"][0]["available"])


def new_payer(**kw) -> tuple[Aep2Payer, x402Client, list]:
    payer = Aep2Payer(Secp256k1Key.from_hex(KEY), max_amount=PRICE, **kw)
    client = payer.register(x402Client())
    # The SDK's own spend controls: this token, at most the price per payment.
    client.set_spend_controls(
        {"allowed_assets": [{"network": "eip155:84532", "asset": TOKEN, "max_amount_per_payment": str(PRICE)}]}
    )
    selected: list = []
    client.on_after_payment_creation(lambda ctx: selected.append(ctx.selected_requirements))
    return payer, client, selected


def served(r: httpx.Response, payer: Aep2Payer, what: str) -> dict:
    check(r.status_code == 200, f"{what}: status {r.status_code} {r.text[:300]}")
    check(r.json().get("paidBy") == payer.key.address, f"{what}: paidBy {r.text[:200]}")
    pr = decode_payment_response(r.headers["payment-response"])
    signed = payer.signed[-1]
    check(pr["extra"]["mandateId"] == signed.mandate_id, f"{what}: mandateId")
    check(pr["extra"]["status"] == "receipted", f"{what}: status receipted")
    checks = verify_receipt(pr["extra"]["receipt"], signed, expected_sp=SP_ADDR)
    check(checks == ["signature", "sp", "mandate-digest", "deadline-rule"], f"{what}: receipt checks {checks}")
    check(charged(signed.mandate_id), f"{what}: the SP holds the mandate")
    return pr


async def main() -> None:
    out: dict = {}
    address = Secp256k1Key.from_hex(KEY).address

    # Intent Mode: the mandate's ref is the HTTP request hash of exactly this request.
    payer, client, selected = new_payer()
    async with payer.httpx_client(client) as http:
        before = available(address)
        url = PAYEE + "/paid/intent?symbol=ETH"
        r = await http.get(url)
        served(r, payer, "intent")
        check(payer.signed[-1].mandate["ref"] == http_request_hash("GET", url)[0], "intent: ref is the request hash")
        check("quote" not in (selected[-1].extra or {}), "intent: no quote")
        check(available(address) == before - PRICE, "intent: charged once")
        out["intent"] = payer.signed[-1].mandate_id

        # Order Mode: 402 with a quote, ref = the quote hash.
        before = available(address)
        r = await http.get(PAYEE + "/paid/order")
        served(r, payer, "order")
        quote = selected[-1].extra["quote"]
        check(payer.signed[-1].mandate["ref"] == quote_hash(quote), "order: ref is the quote hash")
        check(available(address) == before - PRICE, "order: charged once")
        out["order"] = payer.signed[-1].mandate_id
        check(payer.unfinished() == [], "nothing left unfinished")

    # The native envelope form: the SP answers with a native receipt.
    payer, client, _ = new_payer(form="native")
    async with payer.httpx_client(client) as http:
        r = await http.get(PAYEE + "/paid/intent?form=native")
        pr = served(r, payer, "native envelope")
        check(pr["extra"]["receipt"].get("aep2") == 1, "native envelope: a native receipt")
        out["native"] = payer.signed[-1].mandate_id

    # The SDK's requests integration (x402ClientSync + x402HTTPAdapter), a POST with a body.
    from x402 import x402ClientSync

    from aep2_payer.requests import session

    payer = Aep2Payer(Secp256k1Key.from_hex(KEY), max_amount=PRICE)
    sync_client = payer.register(x402ClientSync())
    sync_client.set_spend_controls({"allowed_assets": [{"network": "eip155:84532", "asset": TOKEN}]})
    before = available(address)
    body = b'{"symbol":"ETH"}'
    with session(sync_client, payer) as s:
        r = s.post(PAYEE + "/paid/intent", data=body, headers={"content-type": "application/json"})
    served(r, payer, "requests POST")
    check(
        payer.signed[-1].mandate["ref"] == http_request_hash("POST", PAYEE + "/paid/intent", body)[0],
        "requests: ref is the hash of the POST with its body",
    )
    check(available(address) == before - PRICE, "requests: charged once")
    out["requestsPost"] = payer.signed[-1].mandate_id

    # A paid attempt that never reaches the payee: the same mandate is sent again and served once.
    payer, client, _ = new_payer(retry_delay=0.2)
    flaky = Flaky("before")
    async with payer.httpx_client(client, base=flaky) as http:
        before = available(address)
        r = await http.get(PAYEE + "/paid/intent?case=connect-error")
        served(r, payer, "retry after a connect error")
        check(len(payer.signed) == 1, "retry: one mandate signed")
        check(
            len(flaky.paid_headers) == 2 and flaky.paid_headers[0] == flaky.paid_headers[1],
            "retry: the same PAYMENT-SIGNATURE presented twice",
        )
        check(available(address) == before - PRICE, "retry: charged once")
        out["connectError"] = {"attempts": len(flaky.paid_headers), "mandates": len(payer.signed)}

    # The response is lost after the payee served: the same mandate again, refused as delivered.
    payer, client, _ = new_payer(retry_delay=0.2)
    flaky = Flaky("after")
    async with payer.httpx_client(client, base=flaky) as http:
        before = available(address)
        r = await http.get(PAYEE + "/paid/intent?case=lost-response")
        check(
            r.status_code == 402 and r.json().get("reason") == "mandate_replayed",
            f"lost response: {r.status_code} {r.text[:200]}",
        )
        check(
            len(payer.signed) == 1 and len(flaky.paid_headers) == 2 and flaky.paid_headers[0] == flaky.paid_headers[1],
            "lost response: the same mandate presented again, no second one signed",
        )
        check(charged(payer.signed[0].mandate_id), "lost response: the SP holds the mandate")
        check(available(address) == before - PRICE, "lost response: charged once")
        out["lostResponse"] = {
            "attempts": len(flaky.paid_headers),
            "mandates": len(payer.signed),
            "second": "mandate_replayed",
        }

    # An SP stall: 503 settlement_unavailable, then the same mandate is served once the SP is back.
    payer, client, _ = new_payer(retry_delay=1.0, max_retries=4)
    pid = int(SP_PID)
    before = available(address)
    os.kill(pid, signal.SIGSTOP)
    # Resumed 3 s after the payee's 5 s SP timeout: the first attempt is answered 503 even on a slow machine.
    timer = threading.Timer(8.0, lambda: os.kill(pid, signal.SIGCONT))
    timer.start()
    try:
        # A client timeout above the payee's 5 s SP timeout, so the payee's 503 is what comes back.
        async with payer.httpx_client(client, timeout=20) as http:
            before_stall = len(payer.signed)
            r = await http.get(PAYEE + "/paid/intent?case=sp-stall")
    finally:
        timer.join()
        os.kill(pid, signal.SIGCONT)
    attempts = [o for _, o in http._transport._inner._transport.attempts]  # noqa: SLF001 - test introspection
    served(r, payer, "retry after an SP stall")
    check(len(payer.signed) == before_stall + 1, "stall: one mandate signed")
    check(any(a.startswith("503") for a in attempts), f"stall: a 503 was seen {attempts}")
    check(available(address) == before - PRICE, "stall: charged once")
    out["spStall"] = attempts
    print(json.dumps(out))


asyncio.run(main())
