"""The orders subgraph's subscriptions: order events (all, or one order's) and live sales figures.

Served over graphql-transport-ws at /graphql (token in connection_init, see
``kit.websocket``) and over HTTP multipart. Each is authorised as the matching
query would be, and fails with a coded GraphQL error (UNAUTHENTICATED,
FORBIDDEN, ...) before any event is sent.

An event's ``order`` is the ``Order`` entity, so a router can enrich it with
fields from other subgraphs. It shows the order as of the event (its status
then, so a replayed ``CREATED`` says PENDING); lines, totals and address are
as placed. Its rows are loaded once per batch of events, not per subscriber.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from enum import Enum
from typing import Any, NamedTuple, TypeVar, cast

import strawberry
from sqlalchemy import Row, select

from subgraphs.kit.address import ADDRESS_FIELDS
from subgraphs.kit.breakdown import PriceBreakdown
from subgraphs.kit.errors import ApiError, bad_input, forbidden
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.money import Money, to_minor
from subgraphs.kit.streams import HubClosed, SubscriberTooSlow

from .events import FINAL_EVENTS, OrderEventRecord, OrderEvents
from .models import orders, outbox
from .service import Status
from .stats import SalesFigures
from .types import Order, OrdersInfo, Product, ShippingAddress

MAX_WINDOW_MINUTES = 7 * 24 * 60
T = TypeVar("T")


@strawberry.enum(description="What happened to the order.")
class OrderEventType(Enum):
    CREATED = "order.created"
    PAID = "order.paid"
    SHIPPED = "order.shipped"
    DELIVERED = "order.delivered"
    CANCELLED = "order.cancelled"
    REFUNDED = "order.refunded"
    CLAIMED = "order.claimed"  # a guest's order claimed by an account (orders/guest.py)


@strawberry.type(description="Something that happened to an order. Ids increase in commit order; resume after one.")
class OrderEvent:
    id: strawberry.ID
    type: OrderEventType
    occurred_at: datetime
    record: strawberry.Private[OrderEventRecord]

    @strawberry.field(description="The order as of this event: its status then; lines, totals and address as placed.")
    async def order(self, info: OrdersInfo) -> Order:
        record = self.record
        if record.order is None:
            order, items = _order_from_payload(record)
        else:
            order, items = Order.from_row(record.order), list(record.items)
        info.context.loaders.items.prime(order.pk, items)
        status = record.payload.get("status")
        return dataclasses.replace(
            order,
            status=Status(status) if status in Status.__members__ else order.status,
            updated_at=record.occurred_at,
        )

    @classmethod
    def of(cls, record: OrderEventRecord) -> OrderEvent:
        return cls(
            id=strawberry.ID(str(record.id)),
            type=OrderEventType(record.event_type),
            occurred_at=record.occurred_at,
            record=record,
        )


class _PayloadItem(NamedTuple):
    """An order line rebuilt from an event payload (the shape of an ``order_items`` row)."""

    id: uuid.UUID
    sku: str
    name: str
    quantity: int
    unit_price_minor: int
    product_id: uuid.UUID
    variant_id: uuid.UUID
    # Events do not carry the lines' tax and discount shares.
    tax_minor: int = 0
    discount_minor: int = 0


def _order_from_payload(record: OrderEventRecord) -> tuple[Order, list[Row[Any]]]:
    """The order from what its event carried, for an order whose row is gone."""
    payload = record.payload
    total = payload.get("total") or {}
    currency = str(total.get("currencyCode", "USD"))
    total_minor = to_minor(str(total.get("amount", "0")), currency)
    address = payload.get("shippingAddress") or {}
    items = [
        _PayloadItem(
            id=uuid.uuid5(record.order_id, str(position)),
            sku=str(item.get("sku", "")),
            name=str(item.get("name", "")),
            quantity=int(item["quantity"]),
            unit_price_minor=to_minor(str(item["unitPrice"]), currency),
            product_id=uuid.UUID(item["productId"]),
            # Events from before variants name the product, whose only variant shares its id.
            variant_id=uuid.UUID(item.get("variantId") or item["productId"]),
        )
        for position, item in enumerate(payload.get("items") or [])
    ]
    order = Order(
        id=strawberry.ID(str(record.order_id)),
        number=str(payload.get("number", "")),
        status=Status(payload.get("status", "PENDING_PAYMENT")),
        subtotal=Money.of(total_minor, currency),
        total=Money.of(total_minor, currency),
        # An event carries the total only: the breakdown of an order whose row is gone is its total.
        cost=PriceBreakdown.of(
            currency, subtotal=total_minor, discounts=0, shipping=0, tax=0, total=total_minor, tax_included=False
        ),
        shipping_method=None,
        discount_codes=[],
        shipping_address=ShippingAddress(**{k: address.get(k, "") for k in ADDRESS_FIELDS}),
        created_at=record.occurred_at,
        updated_at=record.occurred_at,
        guest_email=None,
        pk=record.order_id,
        user_id=uuid.UUID(payload["userId"]),
        currency=currency,
    )
    return order, cast(list[Row[Any]], items)


@strawberry.type(description="A product's sales within the window.")
class ProductSales:
    product_id: strawberry.Private[uuid.UUID]
    quantity: int
    revenue: Money

    @strawberry.field
    def product(self) -> Product:
        return Product(id=strawberry.ID(str(self.product_id)))


@strawberry.type(
    description="Sales over the last `windowMinutes`, paid orders (paid, shipped, delivered) in the shop's currency."
)
class SalesStats:
    window_minutes: int
    revenue: Money
    order_count: int
    average_order_value: Money
    top_products: list[ProductSales] = strawberry.field(description="Best sellers by quantity, at most five.")

    @classmethod
    def of(cls, figures: SalesFigures) -> SalesStats:
        currency = figures.currency
        return cls(
            window_minutes=figures.window_minutes,
            revenue=Money.of(figures.revenue_minor, currency),
            order_count=figures.order_count,
            average_order_value=Money.of(figures.average_minor, currency),
            top_products=[
                ProductSales(product_id=p.product_id, quantity=p.quantity, revenue=Money.of(p.revenue_minor, currency))
                for p in figures.top_products
            ],
        )


def _events(info: OrdersInfo) -> OrderEvents:
    return info.context.runtime.get(OrderEvents)


def _event_id(after: strawberry.ID | None) -> int | None:
    if after is None:
        return None
    text = str(after).strip()
    if not text.isdigit() or len(text) > 18:
        raise bad_input("`after` must be an event id (the `id` of an OrderEvent).")
    return int(text)


async def _stream_errors(events: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """Turn the hub's ends into coded errors a client can act on."""
    try:
        async for event in events:
            yield event
    except SubscriberTooSlow as exc:
        raise ApiError(str(exc), "SUBSCRIBER_TOO_SLOW") from exc
    except HubClosed as exc:
        raise ApiError(str(exc), "SERVICE_UNAVAILABLE") from exc


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every order event, in order (administrators only). "
        "Give `after` the last event id you saw to get exactly the events you missed, then live ones."
    )
    async def order_events(
        self, info: OrdersInfo, after: strawberry.ID | None = None
    ) -> AsyncGenerator[OrderEvent, None]:
        info.context.identity.require_admin()
        start = _event_id(after)
        async for record in _stream_errors(_events(info).hub.events(start)):
            info.context.reset_loaders()  # a long-lived connection must not keep every order loaded
            yield OrderEvent.of(record)

    @strawberry.subscription(
        description="One order's events: its latest at once, then each change; completes once it is "
        "delivered or cancelled. The order's owner or an administrator."
    )
    async def order_updated(self, info: OrdersInfo, id: strawberry.ID) -> AsyncGenerator[OrderEvent, None]:
        viewer = info.context.identity
        user_id = viewer.require_user()
        order_id = parse_uuid(id)
        db = info.context.runtime.db
        async with db.read() as conn:
            owner = (await conn.execute(select(orders.c.user_id).where(orders.c.id == order_id))).scalar_one_or_none()
        if owner is None and viewer.is_admin:
            raise ApiError("No such order.", "NOT_FOUND")
        if owner != user_id and not viewer.is_admin:
            raise forbidden("You can only follow your own orders.")
        assert order_id is not None
        hub = _events(info).hub
        # Before reading the latest event (nothing falls in between); keyed: the hub hands it this order's only.
        subscription = hub.subscribe(order_id)
        try:
            async with db.read() as conn:
                latest = (
                    await conn.execute(
                        select(outbox.c.id)
                        .where(outbox.c.aggregate_id == order_id, outbox.c.id <= subscription.head)
                        .order_by(outbox.c.id.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
            current = list(await hub.replay(latest - 1, upto=latest)) if latest is not None else []
            async for record in _stream_errors(_concat(current, subscription.events(subscription.head))):
                info.context.reset_loaders()
                yield OrderEvent.of(record)
                if record.event_type in FINAL_EVENTS:
                    return
        finally:
            subscription.close()

    @strawberry.subscription(
        description="Revenue, order count, average order value and top products over a sliding window "
        "(administrators only): sent at once, then whenever they change."
    )
    async def sales_stats(self, info: OrdersInfo, window_minutes: int = 60) -> AsyncGenerator[SalesStats, None]:
        info.context.identity.require_admin()
        if not 1 <= window_minutes <= MAX_WINDOW_MINUTES:
            raise bad_input(f"`windowMinutes` must be between 1 and {MAX_WINDOW_MINUTES}.")
        async for figures in _events(info).sales.watch(window_minutes):
            yield SalesStats.of(figures)


async def _concat(first: list[T], then: AsyncIterator[T]) -> AsyncIterator[T]:
    for item in first:
        yield item
    async for item in then:
        yield item
