"""The ``aep2`` scheme for the official x402 Python SDK, request binding and safe retry.

The SDK's scheme API (``create_payment_payload(requirements)``) sees only the payment requirements,
not the request being paid, yet an Intent Mode mandate's ``ref`` must be that request's hash
(spec §8.4, §10.5). The httpx transport stack built by :meth:`Aep2Payer.transport` solves it:

    RequestBinding  → sets a context variable to (method, URL, body) of the request
      x402AsyncTransport (the SDK: 402 → create_payment_payload → paid retry)
        SafeRetry   → re-sends a paid request whose outcome is unknown, with the SAME mandate

The scheme reads the context variable (the SDK calls it inside the same asyncio task), so the
mandate binds exactly the request that gets the 402. In Order Mode the ``ref`` is the hash of the
quote in ``extra.quote`` (spec §9.3) and no request is needed.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import codec
from .errors import Aep2Error
from .hashes import http_request_hash, quote_hash
from .lanes import LaneFile, load_lane_file, sign_lane_mandate
from .mandate import (
    Ed25519Key,
    PayerKey,
    Secp256k1Key,
    SignedMandate,
    domain_from_json,
    new_nonce,
    sign_mandate,
    unix_now,
)

#: The x402 scheme name.
SCHEME = "aep2"
_PAYMENT_HEADERS = ("payment-signature", "x-payment")


@dataclass(frozen=True)
class BoundRequest:
    """The request a mandate is being made for: what the HTTP request hash covers."""

    method: str
    url: str
    body: bytes = b""


_BOUND: contextvars.ContextVar[BoundRequest | None] = contextvars.ContextVar("aep2_bound_request", default=None)


class SpendRefused(Aep2Error):
    """The payer's own limits refuse the terms (no mandate is signed): code ``spend_limit``, a
    payer-local code that never travels on the wire."""


@dataclass
class _Pending:
    key: tuple[str, ...]
    signed: SignedMandate
    deadline: int
    # Being presented now: a concurrent call for the same request is another call, with its own mandate.
    in_flight: bool = True


#: Unfinished mandates kept at most (the oldest are forgotten first).
MAX_UNFINISHED = 1024


@dataclass
class Aep2Payer:
    """A payer: its key, its limits, and the mandates whose outcome it does not know yet.

    ``max_amount`` caps one payment (atomic units); ``deadline_margin`` is added to the payee's
    settlement window to choose the deadline; ``form`` is the envelope form sent. With ``lane`` (a
    lane file of ``aep2 lane grant`` or :func:`aep2_payer.grant_lane`: its text, object or
    :class:`aep2_payer.LaneFile`) the payer is that lane's agent (``key`` is the leaf agent's): every
    mandate is signed under the lane for its owner (spec §18.4), only for the lane's deployment, and
    ``max_amount`` defaults to the chain's smallest ``perPayment``.
    """

    key: PayerKey
    max_amount: int | None = None
    deadline_margin: int = 60
    form: str = "mvp"
    max_retries: int = 3
    retry_delay: float = 0.5
    max_retry_wait: float = 15.0
    lane: Any = None
    _pending: dict[str, _Pending] = field(default_factory=dict, repr=False)
    #: Every mandate this payer signed, newest last (bounded; for receipts and audits).
    signed: list[SignedMandate] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.lane is not None:
            self.lane = load_lane_file(self.lane)
            if self.key.address != self.lane.agent:
                raise Aep2Error("signature_invalid", f"the key is not the lane's agent's ({self.lane.agent})")
            if self.max_amount is None:
                self.max_amount = min(link.lane.per_payment for link in self.lane.chain)

    # --- the x402 SchemeNetworkClient protocol -----------------------------------------------

    @property
    def scheme(self) -> str:
        """The x402 scheme this client implements."""
        return SCHEME

    def create_payment_payload(self, requirements: Any) -> dict[str, Any]:
        """The envelope (spec §5) for one x402 ``PaymentRequirements`` entry (spec §10.2).

        Returns the envelope of an unfinished mandate for the same request and terms when there
        is one (its outcome is unknown), and signs a new mandate only otherwise.
        """
        return self.mandate_for(_requirements_dict(requirements), _BOUND.get()).envelope

    def register(self, client: Any, networks: tuple[str, ...] | None = None) -> Any:
        """Registers this scheme with an ``x402Client`` for the key's networks; returns the client."""
        if networks is None:
            networks = ("eip155:*",) if isinstance(self.key, Secp256k1Key) else ("solana:*",)
        for n in networks:
            client.register(n, self)
        return client

    # --- mandates -----------------------------------------------------------------------------

    def mandate_for(
        self, req: dict[str, Any], bound: BoundRequest | None = None, request_hash: str | None = None
    ) -> SignedMandate:
        """Signs (or re-uses) the mandate that pays ``req``: for its quote (Order Mode), else for
        ``request_hash`` (an MCP or A2A request hash) or the HTTP request ``bound`` (Intent Mode)."""
        if req.get("scheme") != SCHEME:
            raise Aep2Error("x402_scheme_unsupported", f"scheme {req.get('scheme')!r} is not aep2")
        network = req.get("network", "")
        profile = "eip712" if network.startswith("eip155:") else "ed25519"
        if profile == "eip712" and not isinstance(self.key, Secp256k1Key):
            raise Aep2Error("profile_mismatch", "an eip712 entry needs a secp256k1 key")
        if profile == "ed25519" and not isinstance(self.key, Ed25519Key):
            raise Aep2Error("profile_mismatch", "an ed25519 entry needs an Ed25519 key")
        extra = req.get("extra") or {}
        domain = domain_from_json(profile, extra.get("domain"))
        lane: LaneFile | None = self.lane
        if lane is not None:
            if profile != lane.profile:
                raise Aep2Error("profile_mismatch", f"the lane is {lane.profile}, the entry {profile}")
            if domain is None or domain.to_json() != lane.domain.to_json():
                raise Aep2Error("domain_mismatch", "the payee asks for another deployment than the lane's")
        if profile == "eip712" and network != domain.network:  # type: ignore[union-attr]
            raise Aep2Error("x402_network_mismatch", f"{network} is not the network of extra.domain")
        amount = req.get("amount")
        if not isinstance(amount, str) or not amount.isdigit():
            raise Aep2Error("uint_invalid", "amount is not a decimal string")
        if self.max_amount is not None and int(amount) > self.max_amount:
            raise SpendRefused("spend_limit", f"price {amount} is above this payer's cap {self.max_amount}")
        quote = extra.get("quote")
        if quote is not None:
            _check_quote(quote, req, profile, extra.get("domain"))
            ref = quote_hash(quote)
        elif request_hash is not None:
            ref = codec.hex0x(codec.parse_hex32(request_hash, "request_descriptor_invalid"))
        elif bound is not None:
            ref, _ = http_request_hash(bound.method, bound.url, bound.body)
        else:
            raise Aep2Error(
                "request_descriptor_invalid",
                "Intent Mode needs the request: send through Aep2Payer.transport() or pass bound=",
            )
        window = extra.get("settlementWindow", 0)
        if not isinstance(window, int) or window < 0:
            raise Aep2Error("field_type", "extra.settlementWindow is not an integer")
        cache_key = (ref, network, req.get("payTo", ""), req.get("asset", ""), amount)
        now = unix_now()
        self._purge(now)
        for pending in self._pending.values():
            if pending.key == cache_key and not pending.in_flight:
                pending.in_flight = True
                return pending.signed  # outcome unknown: present the same mandate again
        mandate = {
            "owner" if profile == "eip712" else "payer": lane.owner if lane is not None else self.key.address,
            "token": req.get("asset"),
            "payee": req.get("payTo"),
            "amount": amount,
            "nonce": new_nonce(profile),
            "deadline": now + window + self.deadline_margin,
            "ref": ref,
        }
        if lane is not None:
            signed: SignedMandate = sign_lane_mandate(profile, mandate, lane, self.key, self.form, domain)
        else:
            signed = sign_mandate(profile, mandate, domain, self.key, self.form)
        self._pending[signed.signature] = _Pending(cache_key, signed, mandate["deadline"])
        while len(self._pending) > MAX_UNFINISHED:
            self._pending.pop(next(iter(self._pending)))
        self.signed.append(signed)
        del self.signed[:-256]
        return signed

    def finish(self, signature: str) -> None:
        """Forgets the unfinished mandate with this signature: its outcome is known."""
        self._pending.pop(signature, None)

    def release(self, signature: str) -> None:
        """Marks the mandate with this signature as no longer being presented, its outcome unknown:
        the next payment of the same request and terms presents it again."""
        pending = self._pending.get(signature)
        if pending is not None:
            pending.in_flight = False

    def unfinished(self) -> list[SignedMandate]:
        """Mandates presented whose outcome is unknown (they are presented again, never replaced)."""
        return [p.signed for p in self._pending.values()]

    def _purge(self, now: int) -> None:
        for sig, p in list(self._pending.items()):
            if p.deadline < now:
                self._pending.pop(sig, None)

    # --- httpx --------------------------------------------------------------------------------

    def transport(self, x402_client: Any, base: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncBaseTransport:
        """The httpx transport: request binding around the SDK's transport around safe retry."""
        from x402.http.clients.httpx import x402AsyncTransport

        retry = SafeRetryTransport(self, base or httpx.AsyncHTTPTransport())
        return RequestBindingTransport(x402AsyncTransport(x402_client, transport=retry))

    def httpx_client(
        self, x402_client: Any, base: httpx.AsyncBaseTransport | None = None, **kwargs: Any
    ) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` that pays 402s with this payer through ``x402_client``."""
        return httpx.AsyncClient(transport=self.transport(x402_client, base), **kwargs)


def _requirements_dict(requirements: Any) -> dict[str, Any]:
    if isinstance(requirements, dict):
        return requirements
    dump = getattr(requirements, "model_dump", None)
    if dump is None:
        raise TypeError("requirements must be a dict or an x402 PaymentRequirements")
    return dump(by_alias=True, exclude_none=True)


def _check_quote(quote: Any, req: dict[str, Any], profile: str, domain: Any) -> None:
    """The payer's checks of spec §9.3 before it signs for a quote."""
    if not isinstance(quote, dict) or quote.get("kind") != "payment-request" or quote.get("aep2") != 1:
        raise Aep2Error("field_type", "extra.quote is not a payment request")
    if quote.get("profile") != profile:
        raise Aep2Error("profile_mismatch", "the quote is for another profile")
    if domain is not None and quote.get("domain") != domain:
        raise Aep2Error("domain_mismatch", "the quote names another deployment than extra.domain")
    same = codec.parse_address if profile == "eip712" else codec.parse_key32
    if same(quote.get("payee")) != same(req.get("payTo")):
        raise Aep2Error("payee_mismatch", "the quote's payee is not payTo")
    if same(quote.get("asset")) != same(req.get("asset")):
        raise Aep2Error("asset_mismatch", "the quote's asset is not the entry's")
    if quote.get("amount") != req.get("amount"):
        raise Aep2Error("amount_not_exact", "the quote's amount is not the entry's")
    if isinstance(quote.get("expiry"), int) and quote["expiry"] < unix_now():
        raise Aep2Error("quote_expired", "the quote has expired")


def payment_signature_of(headers: httpx.Headers) -> str | None:
    """The mandate signature inside a request's x402 payment header, if any."""
    for name in _PAYMENT_HEADERS:
        value = headers.get(name)
        if value:
            try:
                payload = json.loads(base64.b64decode(value))["payload"]
                return payload.get("payerSig") or payload.get("signature")
            except (ValueError, KeyError, TypeError, AttributeError):
                return None
    return None


def decode_payment_response(value: str) -> dict[str, Any]:
    """The ``PAYMENT-RESPONSE`` object (spec §10.4) of a served paid response."""
    if len(value) > 65536:
        raise Aep2Error("header_too_large", "PAYMENT-RESPONSE is longer than 65536 bytes")
    try:
        obj = json.loads(codec.b64decode_canonical(value))
    except (ValueError, Aep2Error) as e:
        raise Aep2Error("base64_invalid", f"PAYMENT-RESPONSE does not decode: {e}") from None
    if not isinstance(obj, dict) or obj.get("success") is not True or not isinstance(obj.get("extra"), dict):
        raise Aep2Error("field_type", "PAYMENT-RESPONSE is not a successful AEP2 payment response")
    return obj


class RequestBindingTransport(httpx.AsyncBaseTransport):
    """Makes the request being sent known to the ``aep2`` scheme (a context variable)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Binds ``request`` for the duration of the exchange."""
        body = await request.aread()
        token = _BOUND.set(BoundRequest(request.method, str(request.url), body))
        try:
            return await self._inner.handle_async_request(request)
        finally:
            _BOUND.reset(token)

    async def aclose(self) -> None:
        """Closes the inner transports."""
        await self._inner.aclose()


#: 503 reasons after which the same mandate is presented again (spec §8.6, §10.6).
RETRY_REASONS = ("settlement_unavailable", "payment_in_progress", "replay_store_unavailable")


class SafeRetryTransport(httpx.AsyncBaseTransport):
    """Presents a paid request again, byte for byte (the same mandate), when its outcome is unknown.

    Unknown: a transport error (connect, read, timeout: spec §8.6 "present the same mandate
    again"), or a ``503`` (``settlement_unavailable``, ``payment_in_progress`` after
    ``Retry-After``, ``replay_store_unavailable``). At most ``max_retries`` further attempts. Any
    other answer is the outcome: the payer forgets the mandate. When retries run out the mandate
    stays unfinished, so the next payment for the same request and terms presents it again.
    """

    def __init__(self, payer: Aep2Payer, inner: httpx.AsyncBaseTransport) -> None:
        self._payer = payer
        self._inner = inner
        #: Attempts per paid request, for observability (``(signature, outcome)`` pairs).
        self.attempts: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Sends ``request``; retries a paid one while its outcome is unknown."""
        sig = payment_signature_of(request.headers)
        if sig is None:
            return await self._inner.handle_async_request(request)
        try:
            return await self._present(request, sig)
        except BaseException:
            # Cancelled, or retries ran out: the outcome is unknown and the mandate is kept.
            self._payer.release(sig)
            raise

    async def _present(self, request: httpx.Request, sig: str) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError as e:
                self.attempts.append((sig, type(e).__name__))
                if attempt >= self._payer.max_retries:
                    raise
                await asyncio.sleep(self._payer.retry_delay * 2**attempt)
                attempt += 1
                continue
            if response.status_code == 503 and attempt < self._payer.max_retries:
                await response.aread()
                reason = _reason(response)
                self.attempts.append((sig, f"503 {reason}"))
                await response.aclose()
                await asyncio.sleep(self._wait(response, attempt))
                attempt += 1
                continue
            self.attempts.append((sig, str(response.status_code)))
            if response.status_code == 503:
                self._payer.release(sig)
            else:
                self._payer.finish(sig)
            return response

    def _wait(self, response: httpx.Response, attempt: int) -> float:
        after = response.headers.get("retry-after", "")
        delay = float(after) if after.isdigit() else self._payer.retry_delay * 2**attempt
        return min(delay, self._payer.max_retry_wait)

    async def aclose(self) -> None:
        """Closes the inner transport."""
        await self._inner.aclose()


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", ""))
    except (ValueError, AttributeError):
        return ""
