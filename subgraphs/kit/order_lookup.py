"""Order-lookup tokens: what a guest holds to reach their order, ``o2.<order id>.<expiry>.<HMAC-SHA256>``.

Keyed from the service secret, so only the stack's subgraphs can issue one and it opens that one
order only, until its expiry (Unix seconds, signed with the rest: ``Settings.order_lookup_ttl_seconds``
after it was issued, 30 days by default). Orders issues them (guest checkout) and answers
``guestOrder``; payments answers ``guestPayment`` with them; notifications puts a fresh one in each
mail to a guest (subgraphs never import each other: the format lives here). The first format,
``o1``, never expired: such tokens open nothing any more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

from .domain import Unavailable

PREFIX = "o2"
MAX_TOKEN_LENGTH = 200
DEFAULT_TTL_SECONDS = 30 * 24 * 3600


class ExpiredToken(Exception):
    """A genuine lookup token past its expiry: the guest needs a newer one (or an account)."""

    def __init__(self, order_id: uuid.UUID) -> None:
        super().__init__(f"the lookup token of order {order_id} has expired")
        self.order_id = order_id


EXPIRED_MESSAGE = "This order link has expired: use the link in your latest mail about the order."


def _key(secret: str) -> bytes:
    if not secret:
        raise Unavailable("Guest orders need a service secret (SHOPGRAPH_SERVICE_SECRET).")
    return hmac.new(secret.encode(), b"shopgraph order lookup token v2", hashlib.sha256).digest()


def _sign(secret: str, body: str) -> str:
    mac = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def issue(secret: str, order_id: uuid.UUID, *, ttl: int = DEFAULT_TTL_SECONDS, now: float | None = None) -> str:
    """A token opening ``order_id`` for ``ttl`` seconds from ``now`` (default: the current time)."""
    expires = int((now if now is not None else time.time()) + ttl)
    body = f"{PREFIX}.{order_id}.{expires}"
    return f"{body}.{_sign(secret, body)}"


def verify(secret: str, token: str) -> uuid.UUID | None:
    """The order a lookup token names, or None if it is malformed or forged.

    Raises ``ExpiredToken`` for a genuine token past its expiry (the signature is checked first,
    so a forged token never reads as expired)."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != PREFIX:
        return None
    if not hmac.compare_digest(_sign(secret, ".".join(parts[:3])), parts[3]):
        return None
    try:
        order_id, expires = uuid.UUID(parts[1]), int(parts[2])
    except ValueError:
        return None
    if expires <= time.time():
        raise ExpiredToken(order_id)
    return order_id
