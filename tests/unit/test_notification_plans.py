"""The notifications worker's pure parts: which mail an event causes, its key, and what renders.

Hostile data in events (markup in a name, a header injection in an order number, missing
totals) must neither break a mail nor reach it unescaped.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from subgraphs.kit.outbox import OutboxEvent
from subgraphs.notifications.config import NotifySettings
from subgraphs.notifications.plans import BadEvent, plan
from subgraphs.notifications.render import render

ORDER = uuid.uuid4()
USER = uuid.uuid4()
BASE: dict[str, Any] = {
    "order_id": str(ORDER),
    "number": "SG-100001",
    "user_id": str(USER),
    "currency": "JPY",
    "subtotal_minor": 1500,
    "total_minor": 1500,
    "lines": [{"name": "Tea <b>bowl</b>", "sku": "TB-1", "quantity": 3, "unit_price_minor": 500}],
}


def event(event_type: str, payload: dict[str, Any], event_id: int = 7) -> OutboxEvent:
    return OutboxEvent(event_id, event_type, ORDER, payload, datetime.now(UTC))


def rendered(event_type: str, payload: dict[str, Any]) -> Any:
    planned = plan("orders", event(event_type, payload), "https://shop.example")
    assert planned is not None
    return render(
        planned.template.name,
        planned.context,
        sender="Shop <shop@example.com>",
        recipient="ann@example.com",
        message_id=planned.message_id,
        headers={},
    )


def test_keys_name_the_order_for_once_per_order_mail_and_the_event_otherwise() -> None:
    paid = plan("orders", event("order.paid", BASE, 7), "https://shop.example")
    paid_again = plan("orders", event("order.paid", BASE, 9), "https://shop.example")
    failed = plan("orders", event("order.payment_failed", BASE, 7), "https://shop.example")
    failed_again = plan("orders", event("order.payment_failed", BASE, 9), "https://shop.example")
    assert paid is not None and paid_again is not None and failed is not None and failed_again is not None
    assert paid.idempotency_key == paid_again.idempotency_key == f"order:{ORDER}:order_confirmation"
    assert paid.message_id == paid_again.message_id
    # A declined payment is one mail per order too (its payment_failed and cancelled events share it).
    assert failed.idempotency_key == failed_again.idempotency_key == f"order:{ORDER}:payment_failed"
    assert plan("orders", event("order.created", BASE), "https://shop.example") is None


def test_money_is_rendered_from_minor_units_in_the_orders_currency() -> None:
    message = rendered("order.paid", BASE)
    text = message.get_body(("plain",)).get_content()
    assert "3 x Tea <b>bowl</b> (TB-1) at 500 JPY: 1500 JPY" in text and "Total: 1500 JPY" in text
    assert message["Subject"] == "Your order SG-100001 is confirmed — 1500 JPY"


def test_markup_in_event_data_is_escaped_in_html() -> None:
    html = rendered("order.paid", BASE).get_body(("html",)).get_content()
    assert "Tea &lt;b&gt;bowl&lt;/b&gt;" in html and "<b>bowl</b>" not in html


def test_a_line_break_in_data_cannot_add_a_header() -> None:
    message = rendered("order.paid", BASE | {"number": "SG-1\r\nBcc: victim@example.com"})
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]


@pytest.mark.parametrize(
    "broken",
    [
        {"total_minor": None},
        {"total_minor": "15.00"},
        {"total_minor": True},
        {"total_minor": -1},
        {"lines": []},
        {"lines": [{"name": "x", "quantity": "2", "unit_price_minor": 1}]},
        {"order_id": "not-a-uuid"},
        {"number": ""},
    ],
)
def test_an_event_missing_what_its_mail_needs_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(BadEvent):
        plan("orders", event("order.paid", BASE | broken), "https://shop.example")


def test_settings_from_the_environment_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPGRAPH_SMTP_PORT", "2525")
    monkeypatch.setenv("SHOPGRAPH_NOTIFY_MAX_ATTEMPTS", "3")
    settings = NotifySettings.from_env()
    assert (settings.smtp_port, settings.max_attempts) == (2525, 3)
    monkeypatch.setenv("SHOPGRAPH_NOTIFY_BACKOFF_SECONDS", "soon")
    with pytest.raises(ValueError, match="SHOPGRAPH_NOTIFY_BACKOFF_SECONDS"):
        NotifySettings.from_env()
    monkeypatch.setenv("SHOPGRAPH_NOTIFY_BACKOFF_SECONDS", "-1")
    with pytest.raises(ValueError, match="positive"):
        NotifySettings.from_env()


def test_an_order_cancelled_because_its_payment_was_voided_says_so() -> None:
    """Issue 16: the saga cancels an order whose authorisation the provider voided (``payment_voided``)."""
    text = rendered("order.cancelled", BASE | {"reason": "payment_voided"}).get_body(("plain",)).get_content()
    assert "because your bank or card provider cancelled the payment before it was taken" in text
