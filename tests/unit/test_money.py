"""Money: exact conversion between decimal amounts and integer minor units; no floats, no rounding."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import pytest

from subgraphs.kit.money import CurrencyCode, Money, exponent, to_decimal, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("19.99", "USD", 1999),
        ("0.10", "USD", 10),
        ("0.1", "EUR", 10),
        ("1.500", "GBP", 150),  # trailing zeros are not extra precision
        ("1e2", "USD", 10000),
        ("0", "USD", 0),
        ("-4.20", "USD", -420),
        ("  7.05 ", "CHF", 705),
        ("1234", "JPY", 1234),
        ("1234.0", "JPY", 1234),
        (Decimal("0.01"), "USD", 1),
        ("92233720368547758.07", "USD", 9223372036854775807),
    ],
)
def test_to_minor_is_exact(amount: str | Decimal, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("0.001", "USD"),
        ("19.999", "EUR"),
        ("0.5", "JPY"),
        ("1.005", "USD"),  # never rounded, not even half-even
    ],
)
def test_to_minor_refuses_sub_minor_precision(amount: str, currency: str) -> None:
    with pytest.raises(ValueError, match="more decimals"):
        to_minor(amount, currency)


@pytest.mark.parametrize("amount", ["", "abc", "1,50", "$5", "NaN", "sNaN", "Infinity", "-Infinity", "1.2.3"])
def test_to_minor_refuses_non_amounts(amount: str) -> None:
    with pytest.raises(ValueError):
        to_minor(amount, "USD")


def test_to_minor_refuses_non_strings_that_are_not_decimals() -> None:
    with pytest.raises(ValueError):
        to_minor(cast(Any, None), "USD")
    with pytest.raises(ValueError):
        to_minor(cast(Any, [1, 2]), "USD")


def test_a_float_never_sneaks_in_as_an_inexact_amount() -> None:
    # 0.1 as a float is 0.1000000000000000055511151231257827...: not a cent amount.
    with pytest.raises(ValueError):
        to_minor(cast(Any, 0.1), "USD")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(1999, "USD", "19.99"), (10, "USD", "0.10"), (0, "EUR", "0.00"), (-5, "USD", "-0.05"), (1234, "JPY", "1234")],
)
def test_to_decimal_keeps_the_currency_scale(minor: int, currency: str, text: str) -> None:
    value = to_decimal(minor, currency)
    assert isinstance(value, Decimal)
    assert str(value) == text


@pytest.mark.parametrize("minor", [0, 1, 99, 100, 1999, 10**12, -1, -250])
@pytest.mark.parametrize("currency", [c.value for c in CurrencyCode])
def test_round_trip(minor: int, currency: str) -> None:
    assert to_minor(to_decimal(minor, currency), currency) == minor
    assert to_minor(str(to_decimal(minor, currency)), currency) == minor


def test_every_currency_code_has_an_exponent() -> None:
    assert {c.value: exponent(c.value) for c in CurrencyCode} == {
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "CAD": 2,
        "AUD": 2,
        "CHF": 2,
        "SEK": 2,
        "JPY": 0,
    }


def test_money_of_minor_units() -> None:
    money = Money.of(2550, "EUR")
    assert money.amount == Decimal("25.50") and str(money.amount) == "25.50"
    assert money.currency_code is CurrencyCode.EUR
    assert str(Money.of(500, "JPY").amount) == "500"


def test_sums_in_minor_units_are_exact() -> None:
    # The reason for integer cents: ten 0.10 add up to exactly 1.00.
    total = sum(to_minor("0.10", "USD") for _ in range(10))
    assert to_decimal(total, "USD") == Decimal("1.00")
    assert sum([0.1] * 10) != 1.0  # what floats would have done
