"""Order numbers: SG-<ASCII digits>, parsed without surprises."""

from __future__ import annotations

import pytest

from subgraphs.orders.service import order_number, parse_order_number


@pytest.mark.parametrize(
    ("text", "number"),
    [("SG-100001", 100001), ("sg-42", 42), (" SG-7 ", 7), ("100001", 100001), ("SG-" + "9" * 17, 10**17 - 1)],
)
def test_parses_what_it_prints(text: str, number: int) -> None:
    assert parse_order_number(text) == number
    assert parse_order_number(order_number(number)) == number


# Superscripts pass str.isdigit() but int() refuses them; other scripts' digits int() would read.
@pytest.mark.parametrize(
    "text",
    [
        "SG-\u00b2",
        "SG-1\u00b2",
        "SG-\u0661",
        "SG-\uff11\uff12",
        "SG-",
        "",
        "SG--1",
        "SG-+1",
        "SG-1_000",
        "SG-1 2",
        "SG-" + "9" * 18,
    ],
)
def test_anything_else_is_no_number(text: str) -> None:
    assert parse_order_number(text) is None
