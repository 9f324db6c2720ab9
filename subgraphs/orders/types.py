"""The orders subgraph's types: its context, Order and its parts, the entities it extends.

The bottom layer: ``schema.py`` (queries, mutations) and ``subscriptions.py``
(events) both build on these, and neither imports the other's module.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import strawberry
from sqlalchemy import Row
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.types import Info

from subgraphs.kit.address import ADDRESS_FIELDS
from subgraphs.kit.breakdown import PriceBreakdown
from subgraphs.kit.context import RequestContext
from subgraphs.kit.errors import bad_input
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.money import Money
from subgraphs.kit.pagination import (
    CONNECTION_SIZE,
    Connection,
    build_connection,
    cursor_timestamp,
    decode_cursor,
    page_size,
)
from subgraphs.orders.guest import is_guest_customer

from .loaders import Loaders, PageKey
from .saga import orders_service
from .service import Orders, Status, order_number


@dataclass
class OrdersContext(RequestContext):
    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.runtime.db)

    @cached_property
    def orders(self) -> Orders:
        service: Orders = orders_service(self.runtime)
        return service


OrdersInfo = Info[OrdersContext, None]

OrderStatus = strawberry.enum(
    Status,
    name="OrderStatus",
    description=(
        "PENDING_PAYMENT → PAID → SHIPPED → DELIVERED; CANCELLED before shipping (unpaid, declined or cancelled)."
    ),
)


@strawberry.federation.type(keys=[Key(fields=FieldSet("id"), resolvable=False)])
class Product:
    id: strawberry.ID


@strawberry.federation.type(keys=[Key(fields=FieldSet("id"), resolvable=False)])
class ProductVariant:
    id: strawberry.ID


@strawberry.type(description="Where an order ships: a copy taken at checkout.")
class ShippingAddress:
    name: str
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str
    country: str
    phone: str | None


@strawberry.type(description="A line of an order, priced when the order was placed.")
class OrderItem:
    id: strawberry.ID
    sku: str
    name: str
    quantity: int
    unit_price: Money
    line_total: Money
    tax: Money = strawberry.field(description="Tax on this line as placed (after its share of the discounts).")
    discount: Money = strawberry.field(description="This line's share of the order's discounts as placed.")
    product_id: strawberry.Private[uuid.UUID]
    variant_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The variant bought (the item keeps its own sku and name).")
    def variant(self) -> ProductVariant:
        return ProductVariant(id=strawberry.ID(str(self.variant_id)))

    # Nullable on purpose: a product the catalog cannot resolve (or a catalog
    # outage) nulls this field only, not the whole order history / cart.
    @strawberry.field(description="Null only if the catalog cannot resolve it; the item keeps its own sku and name.")
    def product(self) -> Product | None:
        return Product(id=strawberry.ID(str(self.product_id)))

    @classmethod
    def from_row(cls, row: Row[Any], currency: str) -> OrderItem:
        return cls(
            id=strawberry.ID(str(row.id)),
            sku=row.sku,
            name=row.name,
            quantity=row.quantity,
            unit_price=Money.of(row.unit_price_minor, currency),
            line_total=Money.of(row.unit_price_minor * row.quantity, currency),
            tax=Money.of(row.tax_minor, currency),
            discount=Money.of(row.discount_minor, currency),
            product_id=row.product_id,
            variant_id=row.variant_id,
        )


@strawberry.federation.type(keys=["id"])
class User:
    id: strawberry.ID

    @strawberry.field(
        description="The user's orders, newest first; null unless you are this user or an administrator.",
        directives=[CONNECTION_SIZE],
    )
    async def orders(
        self, info: OrdersInfo, first: int | None = None, after: str | None = None, status: Status | None = None
    ) -> Connection[Order] | None:
        user_id = parse_uuid(self.id)
        if user_id is None or not info.context.identity.can_see_user(user_id):
            return None
        return await user_orders(info, user_id, first, after, status)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> User:
        return cls(id=id)


@strawberry.federation.type(keys=["id"])
class Order:
    id: strawberry.ID
    number: str = strawberry.field(description='Human-readable, e.g. "SG-100042".')
    status: Status
    subtotal: Money
    total: Money
    cost: PriceBreakdown = strawberry.field(description="The priced breakdown the order was placed at.")
    shipping_method: str | None = strawberry.field(description="The shipping method and its estimate, as chosen.")
    discount_codes: list[str] = strawberry.field(description="The codes and promotions applied.")
    shipping_address: ShippingAddress
    created_at: datetime
    updated_at: datetime
    guest_email: str | None = strawberry.field(
        description="The e-mail address a guest checked out with (null for an account's own checkout)."
    )
    pk: strawberry.Private[uuid.UUID]
    user_id: strawberry.Private[uuid.UUID]
    currency: strawberry.Private[str]

    @strawberry.field(
        description="The account that placed the order; null for a guest's order (see guestEmail) until an "
        "account claims it."
    )
    def user(self) -> User | None:
        # A guest's customer id is no account's (subgraphs/orders/guest.py): users cannot resolve it.
        return None if is_guest_customer(self.user_id) else User(id=strawberry.ID(str(self.user_id)))

    # Synchronous when the items were read with the order (no await): otherwise it returns the
    # loader's awaitable, which the executor awaits like an async resolver's.
    @strawberry.field(graphql_type=list[OrderItem])
    def items(self, info: OrdersInfo) -> list[OrderItem] | Awaitable[list[OrderItem]]:
        rows = info.context.loaders.read_items.get(self.pk)
        if rows is not None:
            return [OrderItem.from_row(r, self.currency) for r in rows]
        return self._load_items(info)

    async def _load_items(self, info: OrdersInfo) -> list[OrderItem]:
        return [OrderItem.from_row(r, self.currency) for r in await info.context.loaders.items.load(self.pk)]

    @strawberry.field
    async def item_count(self, info: OrdersInfo) -> int:
        return sum(r.quantity for r in await info.context.loaders.items.load(self.pk))

    @classmethod
    def from_row(cls, row: Row[Any]) -> Order:
        address = row.shipping_address
        return cls(
            id=strawberry.ID(str(row.id)),
            number=order_number(row.number),
            status=Status(row.status),
            subtotal=Money.of(row.subtotal_minor, row.currency),
            total=Money.of(row.total_minor, row.currency),
            cost=PriceBreakdown.of(
                row.currency,
                subtotal=row.subtotal_minor,
                discounts=row.discounts_minor,
                shipping=row.shipping_minor,
                tax=row.tax_minor,
                total=row.total_minor,
                tax_included=row.tax_included,
            ),
            shipping_method=row.shipping_method,
            discount_codes=list(row.discount_codes),
            shipping_address=ShippingAddress(**{k: address.get(k) for k in ADDRESS_FIELDS}),
            created_at=row.created_at,
            updated_at=row.updated_at,
            guest_email=row.guest_email,
            pk=row.id,
            user_id=row.user_id,
            currency=row.currency,
        )

    @classmethod
    async def resolve_reference(cls, info: OrdersInfo, id: strawberry.ID) -> Order | None:
        return await visible_order(info, parse_uuid(id))


async def visible_order(info: OrdersInfo, order_id: uuid.UUID | None) -> Order | None:
    """An order, if the caller may see it: its owner, an admin, or another subgraph."""
    row = await info.context.loaders.order.load(order_id) if order_id else None
    if row is None or not info.context.identity.can_see_user(row.user_id):
        return None
    return Order.from_row(row)


def after_bound(after: str | None) -> tuple[datetime, uuid.UUID] | None:
    if after is None:
        return None
    created, order_id = decode_cursor(after, 2)
    try:
        return cursor_timestamp(created), uuid.UUID(str(order_id))
    except ValueError as exc:
        raise bad_input("Invalid cursor.") from exc


def cursor_key(row: Row[Any]) -> list[str]:
    return [row.created_at.isoformat(), str(row.id)]


async def user_orders(
    info: OrdersInfo, user_id: uuid.UUID, first: int | None, after: str | None, status: Status | None
) -> Connection[Order]:
    size = page_size(first)
    state = status.value if status else None
    key = PageKey(user_id, size + 1, after_bound(after), state)
    rows = await info.context.loaders.page.load(key)
    return build_connection(
        rows,
        size,
        after=after,
        key_of=cursor_key,
        node_of=Order.from_row,
        count=lambda: info.context.loaders.count.load((user_id, state)),
    )
