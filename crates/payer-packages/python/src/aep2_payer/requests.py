"""The same request binding and safe retry for the SDK's ``requests`` integration (sync).

``x402HTTPAdapter`` (the SDK's ``requests.HTTPAdapter``) sends both the unpaid and the paid request
through ``super().send``. :class:`Aep2HTTPAdapter` puts itself on both sides of it by cooperative
inheritance: its own ``send`` binds the request for the scheme (as ``RequestBindingTransport``
does for httpx), and ``_SafeRetryAdapter``, next in the method resolution order, is the
``super()`` the SDK calls, so it sees every paid attempt and re-presents it while its outcome is
unknown. Use it with ``x402ClientSync`` (the scheme is synchronous). Needs ``aep2-payer[requests]``.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import requests
from requests.adapters import HTTPAdapter
from x402.http.clients.requests import x402HTTPAdapter

from .x402 import _BOUND, Aep2Payer, BoundRequest, payment_signature_of


def _signature(headers: Any) -> str | None:
    return payment_signature_of(httpx.Headers(dict(headers)))


class _SafeRetryAdapter(HTTPAdapter):
    """Re-presents a paid request (the same headers, so the same mandate) while its outcome is unknown."""

    payer: Aep2Payer

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Sends ``request``; retries a paid one on a connection error, a timeout or a 503."""
        sig = _signature(request.headers)
        if sig is None:
            return super().send(request, **kwargs)
        attempt = 0
        try:
            while True:
                try:
                    response = super().send(request, **kwargs)
                except (requests.ConnectionError, requests.Timeout):
                    if attempt >= self.payer.max_retries:
                        raise
                    time.sleep(self.payer.retry_delay * 2**attempt)
                    attempt += 1
                    continue
                if response.status_code == 503 and attempt < self.payer.max_retries:
                    after = response.headers.get("retry-after", "")
                    delay = float(after) if after.isdigit() else self.payer.retry_delay * 2**attempt
                    time.sleep(min(delay, self.payer.max_retry_wait))
                    attempt += 1
                    continue
                if response.status_code == 503:
                    self.payer.release(sig)  # retries ran out, the outcome is still unknown
                else:
                    self.payer.finish(sig)
                return response
        except BaseException:
            self.payer.release(sig)
            raise


class Aep2HTTPAdapter(x402HTTPAdapter, _SafeRetryAdapter):
    """The SDK's payment adapter with request binding and safe retry for ``payer``."""

    def __init__(self, x402_client: Any, payer: Aep2Payer, **kwargs: Any) -> None:
        self.payer = payer
        super().__init__(x402_client, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Binds ``request`` for the ``aep2`` scheme, then lets the SDK handle a 402."""
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, bytes):
            raise TypeError("a paid request needs its body as bytes or str (not a stream), to hash it")
        token = _BOUND.set(BoundRequest(request.method or "GET", request.url or "", body))
        try:
            return super().send(request, **kwargs)
        finally:
            _BOUND.reset(token)


def session(x402_client: Any, payer: Aep2Payer) -> requests.Session:
    """A ``requests.Session`` paying 402s with ``payer`` through ``x402_client`` (an ``x402ClientSync``)."""
    s = requests.Session()
    adapter = Aep2HTTPAdapter(x402_client, payer)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s
