"""Money in the graph: a decimal string amount and an ISO currency code.

Amounts are stored and computed as integer minor units (cents); only the graph
surface turns them into ``Decimal``. Floats never touch money.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import Enum

import strawberry

# Minor units per currency (ISO 4217 exponent); every code we accept is listed.
_EXPONENT = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "CHF": 2, "SEK": 2, "JPY": 0}


@strawberry.enum(description="ISO 4217 currency code.")
class CurrencyCode(Enum):
    USD = "USD"
    EUR = "EUR"
    GBP = "GBP"
    CAD = "CAD"
    AUD = "AUD"
    CHF = "CHF"
    SEK = "SEK"
    JPY = "JPY"


# A plain decimal string: ASCII digits, an optional sign and fraction. Python's
# Decimal() also reads other scripts' digits ("١٢"), underscores ("1_000"),
# exponents, spaces, NaN and Infinity; none of that is an amount a client means.
_PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,20})?")


def parse_amount(text: str) -> Decimal:
    """A client's amount as a Decimal; ValueError unless it is a plain ASCII decimal string."""
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(f"not a plain decimal amount: {text[:40]!r}")
    return Decimal(text)


def exponent(currency: str) -> int:
    return _EXPONENT[currency]


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def to_minor(amount: Decimal | str, currency: str) -> int:
    """Exact conversion; raises ValueError for non-numbers or sub-minor precision.

    For amounts we wrote ourselves (another subgraph's Money, an event); what a
    client sends is read by ``parse_amount`` first (the graph's Decimal scalar)."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a decimal amount: {amount!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value(rounding=ROUND_HALF_EVEN):
        raise ValueError(f"{amount} has more decimals than {currency} allows")
    return int(scaled)


@strawberry.federation.type(shareable=True, description="An amount of money in one currency.")
class Money:
    amount: Decimal = strawberry.field(description='Decimal string, e.g. "19.99".')
    currency_code: CurrencyCode

    @classmethod
    def of(cls, minor: int, currency: str) -> Money:
        return cls(amount=to_decimal(minor, currency), currency_code=CurrencyCode(currency))
