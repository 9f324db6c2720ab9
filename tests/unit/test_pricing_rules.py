"""The pricing rules, pure (subgraphs/cart/pricing/rules.py): rates, tax both ways, discounts and their refusals,
rounding that never loses or invents a cent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from subgraphs.cart.guest import issue, verify
from subgraphs.cart.pricing.rules import (
    NO_TAX,
    Band,
    Discount,
    DiscountKind,
    Line,
    RateType,
    Refusal,
    ShippingMethod,
    TaxRate,
    Usage,
    price,
    spread,
)
from subgraphs.kit.domain import DomainError

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
A, B = uuid.uuid4(), uuid.uuid4()


def method(rate_type: RateType, flat: int = 0, bands: tuple[Band, ...] = ()) -> ShippingMethod:
    return ShippingMethod(uuid.uuid4(), "Zone", "Method", rate_type, flat, bands, 2, 4)


def discount(kind: DiscountKind, value: int = 0, **kw: object) -> Discount:
    return Discount(uuid.uuid4(), kw.pop("code", "CODE"), "A discount", kind, value, **kw)  # type: ignore[arg-type]


def run(lines: list[Line], **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "currency": "USD",
        "method": None,
        "tax": NO_TAX,
        "promotions": [],
        "code": None,
        "entered": None,
        "usage": {},
        "now": NOW,
    }
    args.update(kw)
    return price(lines, **args)  # type: ignore[arg-type]


def test_rates_flat_by_subtotal_and_by_weight() -> None:
    flat = method(RateType.FLAT, flat=500)
    by_subtotal = method(RateType.BY_SUBTOTAL, bands=(Band(5000, 700), Band(None, 0)))
    by_weight = method(RateType.BY_WEIGHT, bands=(Band(1000, 300), Band(5000, 900)))
    assert flat.rate(123, 99999) == 500
    assert by_subtotal.rate(4999, 0) == 700
    assert by_subtotal.rate(5000, 0) == 0
    assert by_weight.rate(0, 999) == 300
    assert by_weight.rate(0, 1000) == 900
    assert by_weight.rate(0, 5000) is None  # no band covers it: the method is unavailable


def test_tax_exclusive_is_added_per_line_and_inclusive_is_the_part_of_the_price() -> None:
    lines = [Line(A, 3, 333), Line(B, 1, 1000)]
    out = run(lines, tax=TaxRate(2000, False))
    assert (out.subtotal, out.tax, out.total) == (1999, 200 + 200, 1999 + 400)
    assert out.line_tax == {A: 200, B: 200}  # 999 * 20 % = 199.8 -> 200
    inclusive = run([Line(A, 1, 1200)], tax=TaxRate(2000, True))
    assert (inclusive.tax, inclusive.total, inclusive.prices_include_tax) == (200, 1200, True)


def test_discounts_stack_percentage_first_and_never_exceed_the_subtotal() -> None:
    lines = [Line(A, 1, 1000), Line(B, 1, 3000)]
    pct = discount(DiscountKind.PERCENTAGE, 1000, code=None)
    fixed = discount(DiscountKind.FIXED_AMOUNT, 10_000)
    out = run(lines, promotions=[pct], code="CODE", entered=fixed)
    assert out.discounts == 4000  # 400 off, then the fixed amount capped at what is left
    assert out.total == 0
    assert sum(out.line_discount.values()) == out.discounts
    assert [u.amount_minor for u in out.uses] == [400, 3600]


def test_free_shipping_waives_the_chosen_rate_and_shows_what_it_saved() -> None:
    out = run(
        [Line(A, 1, 1000)],
        method=method(RateType.FLAT, flat=650),
        code="SHIP",
        entered=discount(DiscountKind.FREE_SHIPPING),
    )
    assert (out.shipping, out.discounts, out.total) == (0, 0, 1000)
    assert out.uses[0].amount_minor == 650


def test_tax_is_on_what_a_line_costs_after_its_share_of_the_discounts() -> None:
    out = run([Line(A, 1, 1000)], tax=TaxRate(1000, False), code="C", entered=discount(DiscountKind.FIXED_AMOUNT, 200))
    assert (out.discounts, out.tax, out.total) == (200, 80, 880)


@pytest.mark.parametrize(
    ("change", "usage", "reason"),
    [
        ({"active": False}, Usage(), Refusal.DISABLED),
        ({"starts_at": NOW + timedelta(days=1)}, Usage(), Refusal.NOT_STARTED),
        ({"ends_at": NOW}, Usage(), Refusal.EXPIRED),
        ({"min_subtotal_minor": 1001}, Usage(), Refusal.MINIMUM_NOT_MET),
        ({"usage_limit": 3}, Usage(total=3), Refusal.USAGE_LIMIT_REACHED),
        ({"per_customer_limit": 1}, Usage(total=1, by_customer=1), Refusal.CUSTOMER_LIMIT_REACHED),
    ],
)
def test_each_reason_a_code_does_not_apply(change: dict[str, object], usage: Usage, reason: Refusal) -> None:
    code = discount(DiscountKind.PERCENTAGE, 5000, **change)
    out = run([Line(A, 1, 1000)], code="CODE", entered=code, usage={code.id: usage})
    assert [(u.applicable, u.reason) for u in out.uses] == [(False, reason)]
    assert (out.discounts, out.total) == (0, 1000)


def test_an_unknown_code_is_not_found() -> None:
    out = run([Line(A, 1, 1000)], code="NOPE", entered=None)
    assert [(u.code, u.reason) for u in out.uses] == [("NOPE", Refusal.NOT_FOUND)]


def test_spread_is_exact_and_proportional() -> None:
    assert spread(100, [1, 1, 1]) == [34, 33, 33]
    assert sum(spread(999, [7, 13, 0, 5])) == 999
    assert spread(0, [1, 2]) == [0, 0]


def test_guest_tokens_refuse_forgery_other_secrets_and_expiry() -> None:
    cart = uuid.uuid4()
    token = issue("s3cret", cart, now=1000.0, ttl=60)
    assert verify("s3cret", token, now=1059.0).cart_id == cart
    other = uuid.uuid4()
    forged = token.replace(str(cart), str(other))
    for bad, secret, now in [
        (token, "s3cret", 1060.0),
        (token, "other", 1000.0),
        (forged, "s3cret", 1000.0),
        ("g1.x.y.z", "s3cret", 1000.0),
        ("a" * 500, "s3cret", 1000.0),
    ]:
        with pytest.raises(DomainError) as refused:
            verify(secret, bad, now=now)
        assert refused.value.code.value == "INVALID_TOKEN"
