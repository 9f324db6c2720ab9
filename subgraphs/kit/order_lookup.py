"""Order-lookup tokens: what a guest holds to reach their order, ``o1.<order id>.<HMAC-SHA256>``.

Keyed from the service secret, so only the stack's subgraphs can issue one and it opens that one
order only. Orders issues them (guest checkout) and answers ``guestOrder``; payments answers
``guestPayment`` with them (subgraphs never import each other: the format lives here).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from .domain import Unavailable

PREFIX = "o1"
MAX_TOKEN_LENGTH = 200


def _key(secret: str) -> bytes:
    if not secret:
        raise Unavailable("Guest orders need a service secret (SHOPGRAPH_SERVICE_SECRET).")
    return hmac.new(secret.encode(), b"shopgraph order lookup token v1", hashlib.sha256).digest()


def _sign(secret: str, body: str) -> str:
    mac = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def issue(secret: str, order_id: uuid.UUID) -> str:
    body = f"{PREFIX}.{order_id}"
    return f"{body}.{_sign(secret, body)}"


def verify(secret: str, token: str) -> uuid.UUID | None:
    """The order a lookup token names, or None if it is malformed or forged."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    if not hmac.compare_digest(_sign(secret, ".".join(parts[:2])), parts[2]):
        return None
    try:
        return uuid.UUID(parts[1])
    except ValueError:
        return None
