"""Guest cart tokens: a signed-out shopper's cart, reached with a token the cart subgraph signs.

A token is ``g1.<cart id>.<expiry, unix seconds>.<HMAC-SHA256>`` keyed by a key
derived from the service secret, so only this subgraph can issue one and it
cannot be pointed at another cart or made to last longer. The token is a bearer
credential for that cart (like Shopify's cart id): anyone who holds it may add to
the cart until it expires or is merged into an account, after which it opens
nothing (``carts.merged_at``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass

from subgraphs.kit.domain import DomainError, Unavailable
from subgraphs.kit.domain import ErrorCode as Code

from .pricing import metrics

PREFIX = "g1"
TTL_SECONDS = 30 * 24 * 3600
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class Guest:
    """A guest cart as the caller's token names it (signature and expiry checked; the row is checked later)."""

    cart_id: uuid.UUID


def _key(secret: str) -> bytes:
    if not secret:
        raise Unavailable("Guest carts need a service secret (SHOPGRAPH_SERVICE_SECRET).")
    return hmac.new(secret.encode(), b"shopgraph guest cart token v1", hashlib.sha256).digest()


def _sign(secret: str, body: str) -> str:
    mac = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def issue(secret: str, cart_id: uuid.UUID, *, now: float | None = None, ttl: int = TTL_SECONDS) -> str:
    expires = int((now if now is not None else time.time()) + ttl)
    body = f"{PREFIX}.{cart_id}.{expires}"
    return f"{body}.{_sign(secret, body)}"


def refused(reason: str) -> DomainError:
    metrics.GUEST_CARTS.labels(event="token_refused").inc()
    return DomainError(Code.INVALID_TOKEN, f"This cart token is {reason}; start a new cart.", ["input", "cartToken"])


def verify(secret: str, token: str, *, now: float | None = None) -> Guest:
    """The cart a token names; INVALID_TOKEN if it is malformed, forged or expired."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise refused("not valid")
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != PREFIX:
        raise refused("not valid")
    body = ".".join(parts[:3])
    if not hmac.compare_digest(_sign(secret, body), parts[3]):
        raise refused("not valid")
    try:
        cart_id, expires = uuid.UUID(parts[1]), int(parts[2])
    except ValueError:
        raise refused("not valid") from None
    if expires <= (now if now is not None else time.time()):
        raise refused("expired")
    return Guest(cart_id)
