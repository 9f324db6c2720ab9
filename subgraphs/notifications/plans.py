"""Which mail an event causes: templates, idempotency keys, and what they render.

Pure functions of the event (no I/O), so a redelivered event always plans the
same messages under the same keys. Order events follow the event contract
(``order_id``, ``number``, ``user_id``, ``currency``, ``subtotal_minor``,
``total_minor``, ``lines``); account events name their recipient themselves.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from subgraphs.kit import order_lookup
from subgraphs.kit.outbox import OutboxEvent
from subgraphs.kit.telemetry import TRACE_KEY


@dataclass(frozen=True)
class Template:
    name: str
    # Transactional mail is always sent; the rest only if the account wants it.
    transactional: bool
    # Once per order (the key names the order, not the event): a second `order.paid`
    # for one order, whatever its cause, never sends a second confirmation.
    once_per_order: bool


ORDER_CONFIRMATION = Template("order_confirmation", transactional=True, once_per_order=True)
# One mail for a declined payment: ``order.payment_failed`` and the ``order.cancelled`` with reason
# ``payment_declined`` that follows it plan the same message under the same per-order key.
PAYMENT_FAILED = Template("payment_failed", transactional=True, once_per_order=True)
ORDER_CANCELLED = Template("order_cancelled", transactional=True, once_per_order=True)
ORDER_REFUNDED = Template("order_refunded", transactional=True, once_per_order=False)
ORDER_SHIPPED = Template("order_shipped", transactional=False, once_per_order=True)
ORDER_DELIVERED = Template("order_delivered", transactional=False, once_per_order=True)
PASSWORD_RESET = Template("password_reset", transactional=True, once_per_order=False)

BY_EVENT: dict[str, Template] = {
    "order.paid": ORDER_CONFIRMATION,
    "order.payment_failed": PAYMENT_FAILED,
    "order.cancelled": ORDER_CANCELLED,
    "order.refunded": ORDER_REFUNDED,
    "order.shipped": ORDER_SHIPPED,
    "order.delivered": ORDER_DELIVERED,
    "account.password_reset_requested": PASSWORD_RESET,
}
TEMPLATES = {t.name: t for t in BY_EVENT.values()}

CANCEL_REASONS = {
    "payment_declined": "the payment was declined",
    "payment_abandoned": "the payment was not completed in time",
    "payment_voided": "your bank or card provider cancelled the payment before it was taken",
    "customer": "you cancelled it",
    "admin": "the shop cancelled it",
}


class BadEvent(ValueError):
    """The event lacks what its mail needs: recorded as dead at once (a producer's bug)."""


@dataclass(frozen=True)
class Planned:
    idempotency_key: str
    template: Template
    user_id: uuid.UUID | None
    recipient: str | None
    context: dict[str, Any]
    traceparent: str | None

    @property
    def message_id(self) -> str:
        """The same for every attempt: a receiver can drop a copy sent again after a crash."""
        return f"<{hashlib.sha256(self.idempotency_key.encode()).hexdigest()[:40]}@shopgraph.notifications>"


def plan(
    stream: str,
    event: OutboxEvent,
    public_url: str,
    secret: str = "",
    lookup_ttl: int = order_lookup.DEFAULT_TTL_SECONDS,
) -> Planned | None:
    """The message ``event`` causes, or None (events no mail follows, e.g. ``order.created``).

    A guest's order (``guest_email`` in the event) is mailed to that address, its link the order's
    lookup page (``secret``: the service secret its token is signed with, kit/order_lookup.py; a fresh
    token, opening the order for ``lookup_ttl`` seconds from the mail)."""
    template = BY_EVENT.get(event.event_type)
    if template is None:
        return None
    payload = event.payload
    if template is ORDER_CANCELLED and payload.get("reason") == "payment_declined":
        template = PAYMENT_FAILED
    traceparent = payload.get(TRACE_KEY) if isinstance(payload.get(TRACE_KEY), str) else None
    if template is PASSWORD_RESET:
        context = {
            "name": _text(payload, "name"),
            "reset_url": _text(payload, "reset_url"),
            "ttl_minutes": int(payload.get("ttl_minutes") or 30),
            "expires_at": _text(payload, "expires_at"),
            "public_url": public_url,
        }
        return Planned(
            f"{stream}:{event.id}:{template.name}",
            template,
            _uuid(payload.get("user_id")),
            _text(payload, "email"),
            context,
            traceparent,
        )
    order_id = _uuid(payload.get("order_id") or payload.get("orderId"))
    user_id = _uuid(payload.get("user_id") or payload.get("userId"))
    if order_id is None or user_id is None:
        raise BadEvent(f"{event.event_type} {event.id} names no order or user")
    number = _text(payload, "number")
    context = {
        "number": number,
        "order_url": f"{public_url}/orders/{number}",
        "account_url": f"{public_url}/account",
        "public_url": public_url,
        "currency": _text(payload, "currency"),
        "subtotal_minor": _minor(payload, "subtotal_minor"),
        "shipping_minor": int(payload.get("shipping_minor") or 0),
        "total_minor": _minor(payload, "total_minor"),
        "lines": [_line(line) for line in payload.get("lines") or []],
        "reason": CANCEL_REASONS.get(str(payload.get("reason") or ""), ""),
        "amount_minor": int(payload["amount_minor"]) if isinstance(payload.get("amount_minor"), int) else None,
    }
    if template is ORDER_CONFIRMATION and not context["lines"]:
        raise BadEvent(f"{event.event_type} {event.id} carries no lines")
    key = f"order:{order_id}:{template.name}" if template.once_per_order else f"{stream}:{event.id}:{template.name}"
    guest = payload.get("guest_email")
    if isinstance(guest, str) and guest and secret:
        context["order_url"] = f"{public_url}/order-status?token={order_lookup.issue(secret, order_id, ttl=lookup_ttl)}"
        context.pop("account_url")  # no account: no preferences to change
        return Planned(key, template, None, guest, context, traceparent)
    return Planned(key, template, user_id, None, context, traceparent)


def _text(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise BadEvent(f"the event has no {key}")
    return value


def _minor(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadEvent(f"the event has no {key} (integer minor units)")
    return value


def _line(line: Any) -> dict[str, Any]:
    if not isinstance(line, dict):
        raise BadEvent("an order line is not an object")
    quantity, unit = line.get("quantity"), line.get("unit_price_minor")
    if not isinstance(quantity, int) or not isinstance(unit, int):
        raise BadEvent("an order line has no quantity or unit_price_minor")
    return {
        "name": str(line.get("name") or ""),
        "sku": str(line.get("sku") or ""),
        "quantity": quantity,
        "unit_price_minor": unit,
        "line_total_minor": quantity * unit,
    }


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
