"""The shopper's address, vouched for by the router, on the page renderer's graph requests.

The router passes page requests to the storefront's renderer, which asks the router's graph
for the page's data. Without more, every such request comes from the renderer's address, so
one client requesting pages fast would spend the renderer's single anonymous budget and every
other shopper's pages would be refused. Trusting the renderer's ``X-Forwarded-For`` needs its
addresses in ``server.trusted_proxies`` (unknown in advance on Kubernetes). Instead the router
signs the address it saw when it passes a page on (``x-shopgraph-shopper``: address, expiry,
HMAC); the renderer sends that header back with the page's graph requests, and the router
counts them against the signed address. A client cannot forge one (the key is derived from
``subgraphs.service_secret``, shared by every router replica, else random per process) and
a signed value is good for ``LIFETIME`` seconds only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HEADER = "x-shopgraph-shopper"
LIFETIME = 60  # seconds: longer than any render (storefront.RENDER_TIMEOUT)


class ShopperSigner:
    def __init__(self, service_secret: str | None) -> None:
        seed = service_secret.encode() if service_secret else secrets.token_bytes(32)
        self._key = hmac.new(seed, b"shopgraph shopper address", hashlib.sha256).digest()

    def _mac(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def sign(self, address: str, now: float | None = None) -> str:
        payload = f"{address}|{int((now if now is not None else time.time()) + LIFETIME)}"
        return f"{payload}|{self._mac(payload)}"

    def verify(self, value: str, now: float | None = None) -> str | None:
        """The address a value vouches for, or None when it is forged, altered or expired."""
        payload, _, mac = value.rpartition("|")
        address, _, expires = payload.rpartition("|")
        if not address or not expires.isdigit() or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        return address if int(expires) >= (now if now is not None else time.time()) else None
