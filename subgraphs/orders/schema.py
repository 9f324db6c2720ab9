"""The orders subgraph's graph surface: checkout, orders, User.orders, status changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import strawberry
from sqlalchemy import Row, func, select, tuple_
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.types import Info

from subgraphs.kit.address import ADDRESS_FIELDS
from subgraphs.kit.app import RequestContext
from subgraphs.kit.errors import UserError, bad_input, payload_or_user_errors
from subgraphs.kit.inputs import sent_fields
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
from subgraphs.kit.schema import federated_schema

from .loaders import Loaders, PageKey
from .models import orders
from .service import Orders, Status, order_number, parse_order_number
from .subscriptions import Subscription


@dataclass
class OrdersContext(RequestContext):
    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.runtime.db)

    @cached_property
    def orders(self) -> Orders:
        return Orders(self.runtime.db, self.runtime.client("catalog"), self.runtime.client("cart"))


OrdersInfo = Info[OrdersContext, None]

OrderStatus = strawberry.enum(
    Status, name="OrderStatus", description="PENDING → PAID → SHIPPED → DELIVERED; CANCELLED before shipping."
)


@strawberry.federation.type(keys=[Key(fields=FieldSet("id"), resolvable=False)])
class Product:
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
    product_id: strawberry.Private[uuid.UUID]

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
            product_id=row.product_id,
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
    shipping_address: ShippingAddress
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[uuid.UUID]
    user_id: strawberry.Private[uuid.UUID]
    currency: strawberry.Private[str]

    @strawberry.field
    def user(self) -> User:
        return User(id=strawberry.ID(str(self.user_id)))

    @strawberry.field
    async def items(self, info: OrdersInfo) -> list[OrderItem]:
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
            shipping_address=ShippingAddress(**{k: address.get(k) for k in ADDRESS_FIELDS}),
            created_at=row.created_at,
            updated_at=row.updated_at,
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


def _after(after: str | None) -> tuple[datetime, uuid.UUID] | None:
    if after is None:
        return None
    created, order_id = decode_cursor(after, 2)
    try:
        return cursor_timestamp(created), uuid.UUID(str(order_id))
    except ValueError as exc:
        raise bad_input("Invalid cursor.") from exc


def _cursor_key(row: Row[Any]) -> list[str]:
    return [row.created_at.isoformat(), str(row.id)]


async def user_orders(
    info: OrdersInfo, user_id: uuid.UUID, first: int | None, after: str | None, status: Status | None
) -> Connection[Order]:
    size = page_size(first)
    state = status.value if status else None
    key = PageKey(user_id, size + 1, _after(after), state)
    rows = await info.context.loaders.page.load(key)
    return build_connection(
        rows,
        size,
        after=after,
        key_of=_cursor_key,
        node_of=Order.from_row,
        count=lambda: info.context.loaders.count.load((user_id, state)),
    )


async def all_orders(
    info: OrdersInfo, first: int | None, after: str | None, status: Status | None
) -> Connection[Order]:
    size = page_size(first)
    conditions = [orders.c.status == status.value] if status else []
    page = select(orders).where(*conditions)
    bound = _after(after)
    if bound is not None:
        page = page.where(tuple_(orders.c.created_at, orders.c.id) < tuple_(*bound))
    page = page.order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(size + 1)
    db = info.context.runtime.db
    async with db.read() as conn:
        rows = list((await conn.execute(page)).all())

    async def count() -> int:
        async with db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(orders).where(*conditions))).scalar_one())

    return build_connection(rows, size, after=after, key_of=_cursor_key, node_of=Order.from_row, count=count)


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in shopper's orders, newest first.", directives=[CONNECTION_SIZE])
    async def orders(
        self, info: OrdersInfo, first: int | None = None, after: str | None = None, status: Status | None = None
    ) -> Connection[Order]:
        return await user_orders(info, info.context.identity.require_user(), first, after, status)

    @strawberry.field(
        description="Every shopper's orders, newest first (administrators only).", directives=[CONNECTION_SIZE]
    )
    async def all_orders(
        self, info: OrdersInfo, first: int | None = None, after: str | None = None, status: Status | None = None
    ) -> Connection[Order]:
        info.context.identity.require_admin()
        return await all_orders(info, first, after, status)

    @strawberry.field(description="One of your orders by id or number (administrators: any order).")
    async def order(self, info: OrdersInfo, id: strawberry.ID | None = None, number: str | None = None) -> Order | None:
        info.context.identity.require_user()
        if (id is None) == (number is None):
            raise bad_input("Give exactly one of `id` and `number`.")
        if id is not None:
            return await visible_order(info, parse_uuid(id))
        parsed = parse_order_number(number or "")
        if parsed is None:
            return None
        async with info.context.runtime.db.read() as conn:
            order_id = (await conn.execute(select(orders.c.id).where(orders.c.number == parsed))).scalar_one_or_none()
        return await visible_order(info, order_id)


@strawberry.input
class ShippingAddressInput:
    name: str
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    phone: str | None = None


@strawberry.input
class CheckoutInput:
    idempotency_key: str = strawberry.field(
        description="Chosen by the client per checkout attempt; retrying with the same key returns the same order."
    )
    shipping_address: ShippingAddressInput


@strawberry.input
class CancelOrderInput:
    order_id: strawberry.ID


@strawberry.input
class UpdateOrderStatusInput:
    order_id: strawberry.ID
    status: Status


@strawberry.type
class OrderPayload:
    order: Order | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Turn the cart into an order: stock reserved, prices fixed, cart emptied.")
    async def checkout(self, info: OrdersInfo, input: CheckoutInput) -> OrderPayload:
        viewer = info.context.identity
        viewer.require_user()

        async def run() -> OrderPayload:
            address = sent_fields(input.shipping_address, ADDRESS_FIELDS)
            row = await info.context.orders.checkout(viewer, input.idempotency_key, address)
            return OrderPayload(order=Order.from_row(row))

        return await payload_or_user_errors(OrderPayload, run())

    @strawberry.mutation(description="Cancel your order before it ships; its stock goes back on sale.")
    async def cancel_order(self, info: OrdersInfo, input: CancelOrderInput) -> OrderPayload:
        info.context.identity.require_user()
        return await _change_status(info, input.order_id, Status.CANCELLED)

    @strawberry.mutation(description="Move an order along its lifecycle (administrators only).")
    async def update_order_status(self, info: OrdersInfo, input: UpdateOrderStatusInput) -> OrderPayload:
        info.context.identity.require_admin()
        return await _change_status(info, input.order_id, input.status)


async def _change_status(info: OrdersInfo, order_id: strawberry.ID, status: Status) -> OrderPayload:
    async def run() -> OrderPayload:
        row = await info.context.orders.change_status(info.context.identity, parse_uuid(order_id), status)
        info.context.reset_loaders()
        return OrderPayload(order=Order.from_row(row))

    return await payload_or_user_errors(OrderPayload, run())


schema = federated_schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[Order, User, Product],
)
