"""Guest orders: checkout with an e-mail address, an order-lookup token, and the claim by an account.

A guest's order belongs to the guest's *customer id*, ``uuid5(GUEST_CUSTOMERS, e-mail)``: no
account has such an id (users issues uuid4s), the idempotency keys, the reservation ids and the
per-customer discount limits all work per address, and the saga and payments see an ordinary
order. The guest reaches the order with its lookup token,
``o2.<order id>.<expiry>.<HMAC-SHA256>`` keyed from the service secret (only the stack can issue
one; it opens that one order only, until it expires: ``Settings.order_lookup_ttl_seconds``, 30
days by default; an expired token is refused with ``TOKEN_EXPIRED``, and each mail to the guest
carries a fresh one). An account claims the order with the token *and* the same
e-mail address: the token proves the claimant placed it (the address alone would not, since
users does not verify addresses yet), the address keeps a leaked token from giving the order
to a stranger. Once claimed the order is the account's (``user_id`` becomes the account's, an
``order.claimed`` event tells payments) and the token opens nothing any more.
"""

from __future__ import annotations

import re
import uuid

from prometheus_client import Counter

from subgraphs.kit import order_lookup
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code

GUEST_CUSTOMERS = uuid.UUID("0b8e1f0c-9d4f-4d59-8a55-3c1f4f0d2a71")
MAX_EMAIL_LENGTH = 254
# At most this many tokens per claim (a claim reads one order per token).
MAX_CLAIM = 20
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def is_guest_customer(customer: uuid.UUID) -> bool:
    """A guest's customer id (uuid5 of its address), never an account's (users issues uuid4s)."""
    return customer.version == 5


GUEST_ORDERS = Counter(
    "shopgraph_guest_orders",
    "Guest orders: placed, looked_up, lookup_refused (forged, claimed or unknown token), lookup_expired, "
    "claimed, claim_refused.",
    ["event"],
)


def clean_email(raw: str, field: list[str]) -> str:
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH:
        raise DomainError(Code.TOO_LONG, "Use an e-mail address of at most 254 characters.", field)
    if not _EMAIL.fullmatch(email):
        raise DomainError(Code.INVALID, "Enter a valid e-mail address.", field)
    return email


def customer_id(email: str) -> uuid.UUID:
    """The guest's customer id for a (clean) e-mail address."""
    return uuid.uuid5(GUEST_CUSTOMERS, email)


# The lookup token's format is shared with payments (guestPayment): kit/order_lookup.py.
issue = order_lookup.issue
verify = order_lookup.verify
