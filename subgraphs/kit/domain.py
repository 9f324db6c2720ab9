"""Domain errors: what service code raises, with no GraphQL in sight.

Services (``service.py``) state their rules in plain Python. An expected
failure is a ``DomainError`` carrying a plain ``ErrorCode`` and the input
field at fault; the schema layer turns it into a ``UserError`` in a mutation's
payload (``kit.mutations``). ``InvalidArgument`` is a bad query argument (a
GraphQL error with ``BAD_USER_INPUT``) and ``Unavailable`` a dependency that
failed (``SERVICE_UNAVAILABLE``): both mapped by the schema layer, never here.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum


class ErrorCode(Enum):
    """Why an input was refused; the graph exposes these as the ``UserErrorCode`` enum."""

    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    NOT_FOUND = "NOT_FOUND"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    INVALID_TOKEN = "INVALID_TOKEN"
    TOKEN_REUSED = "TOKEN_REUSED"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    SKU_TAKEN = "SKU_TAKEN"
    SLUG_TAKEN = "SLUG_TAKEN"
    INVALID_PRICE = "INVALID_PRICE"
    STOCK_BELOW_ZERO = "STOCK_BELOW_ZERO"
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"
    PRODUCT_INACTIVE = "PRODUCT_INACTIVE"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    CART_EMPTY = "CART_EMPTY"
    INVALID_STATUS_TRANSITION = "INVALID_STATUS_TRANSITION"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    CHECKOUT_IN_PROGRESS = "CHECKOUT_IN_PROGRESS"
    DISCOUNT_NOT_APPLICABLE = "DISCOUNT_NOT_APPLICABLE"
    SHIPPING_UNAVAILABLE = "SHIPPING_UNAVAILABLE"
    PRICE_CHANGED = "PRICE_CHANGED"
    CODE_TAKEN = "CODE_TAKEN"


class DomainError(Exception):
    """An expected failure of a command: becomes a ``UserError`` (code, field path, message)."""

    def __init__(self, code: ErrorCode, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field) if field is not None else None


class InvalidArgument(Exception):
    """A query argument the client got wrong (a bad cursor, too long a search)."""


class Unavailable(Exception):
    """Something the command depends on failed for now; the client may retry."""
