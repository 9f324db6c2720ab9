"""The orders subgraph's graph surface: queries and mutations (types in types.py, events in subscriptions.py)."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

import strawberry
from gql import gql
from sqlalchemy import Integer, bindparam, func, select, tuple_

from subgraphs.kit import order_lookup
from subgraphs.kit.address import ADDRESS_FIELDS
from subgraphs.kit.auth import ADMIN_ONLY, Identity
from subgraphs.kit.db import Read
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.errors import ApiError, UserError, bad_input
from subgraphs.kit.inputs import sent_fields
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.money import Money
from subgraphs.kit.mutations import admin, anyone, mutate, signed_in
from subgraphs.kit.outbox_replay import replayed_as
from subgraphs.kit.pagination import CONNECTION_SIZE, Connection, build_connection, page_size, selects, selects_total
from subgraphs.kit.schema import federated_schema

from . import guest
from .history import DEFAULT_BUCKET, Bucket, SeriesError, Window, sales_series
from .models import order_items, orders, outbox
from .service import Status, parse_order_number
from .subscriptions import Subscription
from .types import Order, OrdersInfo, Product, ProductVariant, User, after_bound, cursor_key, user_orders, visible_order


@functools.cache
def _all_orders_page(by_status: bool, after: bool, with_total: bool, with_items: bool) -> Read:
    """Every shopper's orders, newest first, from a cursor or not, of one status or any; ``with_total``:
    each row also carries the count of every order of the listing (``total``), before the LIMIT;
    ``with_items``: a row per item of each order (``item_*`` columns), in their positions."""
    columns = [*orders.c, func.count().over().label("total")] if with_total else [*orders.c]
    page = select(*columns)
    if by_status:
        page = page.where(orders.c.status == bindparam("status"))
    if after:
        at, order_id = (
            bindparam("after_at", type_=orders.c.created_at.type),
            bindparam("after_id", type_=orders.c.id.type),
        )
        page = page.where(tuple_(orders.c.created_at, orders.c.id) < tuple_(at, order_id))
    newest_first = page.order_by(orders.c.created_at.desc(), orders.c.id.desc())
    page = newest_first.limit(bindparam("limit", type_=Integer))
    if not with_items:
        return Read(page)
    o = page.subquery("o")
    items = [c.label(f"item_{c.name}") for c in order_items.c if c.name != "order_id"]
    return Read(
        select(o, *items)
        .select_from(o.outerjoin(order_items, order_items.c.order_id == o.c.id))
        .order_by(o.c.created_at.desc(), o.c.id.desc(), order_items.c.position)
    )


@functools.cache
def _all_orders_count(by_status: bool) -> Read:
    count = select(func.count().label("n")).select_from(orders)
    if by_status:
        return Read(count.where(orders.c.status == bindparam("status")))
    return Read(count)


async def all_orders(
    info: OrdersInfo, first: int | None, after: str | None, status: Status | None
) -> Connection[Order]:
    size = page_size(first)
    bound = after_bound(after)
    params: dict[str, Any] = {"status": status.value if status else None}
    if bound is not None:
        params |= {"after_at": bound[0], "after_id": bound[1]}
    db = info.context.runtime.db
    # The first page counts in its own statement (a window count); later pages' rows are only those
    # after the cursor, so they count apart, when asked to.
    with_total = bound is None and selects_total(info)
    with_items = selects(info, "edges", "node", "items")
    page = _all_orders_page(status is not None, bound is not None, with_total, with_items)
    rows = await db.fetch(page, limit=size + 1, **params)
    if with_items:
        rows = info.context.loaders.prime_items(rows)

    async def count() -> int:
        if with_total:
            return int(rows[0]["total"]) if rows else 0
        return int((await db.fetch(_all_orders_count(status is not None), **params))[0]["n"])

    return build_connection(rows, size, after=after, key_of=cursor_key, node_of=Order.from_row, count=count)


@strawberry.federation.type(inaccessible=True, description="Internal: one order event as its outbox row holds it.")
class OrderOutboxEvent:
    id: str = strawberry.field(description="The outbox id (the stream entry's id), a decimal string.")
    type: str
    aggregate: strawberry.ID
    payload: str = strawberry.field(description="The event's JSON payload, as published.")
    created: str = strawberry.field(description="ISO 8601, as published.")


strawberry.enum(Window, name="SalesWindow", description="How far back a sales series goes from now.")
strawberry.enum(Bucket, name="SalesBucket", description="How long each point of a sales series is.")


@strawberry.type(description="One bucket of a sales series: paid orders placed in it and their revenue.")
class SalesPoint:
    start: datetime = strawberry.field(description="When the bucket starts (buckets are aligned to UTC).")
    orders: int = strawberry.field(description="Orders placed in the bucket that were paid for.")
    revenue: Money = strawberry.field(description="Their totals, in the shop's currency.")


@strawberry.type(
    description="Paid orders (paid, shipped, delivered) and revenue per bucket over a window, oldest first; "
    "every bucket is listed (empty ones as zero), the last one is still filling."
)
class SalesSeries:
    window: Window
    bucket: Bucket
    points: list[SalesPoint]


@strawberry.type
class Query:
    @strawberry.field(
        description="Sales over the last hour, day or week in buckets (administrators only); the default bucket is "
        "a minute for an hour, an hour for a day, six hours for a week. At most 400 points.",
        directives=[ADMIN_ONLY],
    )
    async def sales_series(
        self,
        info: OrdersInfo,
        window: Window = Window.HOUR,
        bucket: Bucket | None = None,
    ) -> SalesSeries:
        info.context.identity.require_admin()
        size: Bucket = bucket or DEFAULT_BUCKET[window]
        currency = info.context.runtime.settings.currency
        try:
            figures = await sales_series(info.context.runtime.db, window, size, currency)
        except SeriesError as exc:
            raise bad_input(f"{exc}.") from exc
        points = [
            SalesPoint(start=p.start, orders=p.orders, revenue=Money.of(p.revenue_minor, currency)) for p in figures
        ]
        return SalesSeries(window=window, bucket=size, points=points)

    @strawberry.field(description="The signed-in shopper's orders, newest first.", directives=[CONNECTION_SIZE])
    async def orders(
        self, info: OrdersInfo, first: int | None = None, after: str | None = None, status: Status | None = None
    ) -> Connection[Order]:
        return await user_orders(info, info.context.identity.require_user(), first, after, status)

    @strawberry.field(
        description="Every shopper's orders, newest first (administrators only).",
        directives=[CONNECTION_SIZE, ADMIN_ONLY],
    )
    async def all_orders(
        self, info: OrdersInfo, first: int | None = None, after: str | None = None, status: Status | None = None
    ) -> Connection[Order]:
        info.context.identity.require_admin()
        return await all_orders(info, first, after, status)

    @strawberry.federation.field(
        inaccessible=True,
        description="Internal: order events with after < id <= upto, oldest first, at most 500 (the notifications "
        "worker's recovery of stream entries it never got: Redis restarted empty, or the stream trimmed).",
    )
    async def order_events_between(self, info: OrdersInfo, after: str, upto: str) -> list[OrderOutboxEvent]:
        info.context.identity.require_service("notifications")
        return await replayed_as(OrderOutboxEvent, info.context.runtime.db, outbox, after, upto)

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

    @strawberry.field(
        description="A guest's order by the lookup token its checkout returned; null if the token is forged, "
        "or once an account has claimed the order; an error coded TOKEN_EXPIRED once the token has expired."
    )
    async def guest_order(self, info: OrdersInfo, token: str) -> Order | None:
        try:
            order_id = guest.verify(info.context.runtime.settings.service_secret, token)
        except order_lookup.ExpiredToken:
            guest.GUEST_ORDERS.labels(event="lookup_expired").inc()
            raise ApiError(order_lookup.EXPIRED_MESSAGE, "TOKEN_EXPIRED") from None
        row = await info.context.loaders.order.load(order_id) if order_id else None
        if row is None or row.guest_email is None or row.claimed_at is not None:
            guest.GUEST_ORDERS.labels(event="lookup_refused").inc()
            return None
        guest.GUEST_ORDERS.labels(event="looked_up").inc()
        return Order.from_row(row)


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
class GuestCheckoutInput:
    idempotency_key: str = strawberry.field(
        description="Chosen by the client per checkout attempt; retrying with the same key returns the same order."
    )
    cart_token: str = strawberry.field(description="The guest cart's token (createGuestCart).")
    email: str = strawberry.field(description="Where the order's mail goes; an account with it can claim the order.")
    shipping_address: ShippingAddressInput


@strawberry.type
class GuestCheckoutPayload:
    order: Order | None = None
    lookup_token: str | None = strawberry.field(
        default=None, description="Opens this order (guestOrder) and lets an account with the e-mail claim it."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ClaimGuestOrdersInput:
    lookup_tokens: list[str] = strawberry.field(description=f"The orders' lookup tokens (at most {guest.MAX_CLAIM}).")


@strawberry.type
class ClaimGuestOrdersPayload:
    orders: list[Order] = strawberry.field(default_factory=list, description="The orders now yours.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


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
        async def perform(_: uuid.UUID) -> OrderPayload:
            address = sent_fields(input.shipping_address, ADDRESS_FIELDS)
            row = await info.context.orders.checkout(info.context.identity, input.idempotency_key, address)
            return OrderPayload(order=Order.from_row(row))

        return await mutate(info, OrderPayload, perform, allow=signed_in)

    @strawberry.mutation(
        description="A signed-out shopper's checkout of their guest cart with an e-mail address; the payload's "
        "lookupToken opens the order afterwards."
    )
    async def guest_checkout(self, info: OrdersInfo, input: GuestCheckoutInput) -> GuestCheckoutPayload:
        async def perform(_: Identity) -> GuestCheckoutPayload:
            address = sent_fields(input.shipping_address, ADDRESS_FIELDS)
            row = await info.context.orders.guest_checkout(
                input.cart_token, input.email, input.idempotency_key, address
            )
            settings = info.context.runtime.settings
            # Its life runs from the order's placing: a replay with the same key gets the same token.
            token = guest.issue(
                settings.service_secret,
                row.id,
                ttl=settings.order_lookup_ttl_seconds,
                now=row.created_at.timestamp(),
            )
            return GuestCheckoutPayload(order=Order.from_row(row), lookup_token=token)

        return await mutate(info, GuestCheckoutPayload, perform, allow=anyone)

    @strawberry.mutation(
        description="Make the guest orders you placed with your account's e-mail address yours (by their lookup "
        "tokens): they show in your order history, and their tokens open nothing any more."
    )
    async def claim_guest_orders(self, info: OrdersInfo, input: ClaimGuestOrdersInput) -> ClaimGuestOrdersPayload:
        async def perform(user_id: uuid.UUID) -> ClaimGuestOrdersPayload:
            return await _claim(info, user_id, input.lookup_tokens)

        return await mutate(info, ClaimGuestOrdersPayload, perform, allow=signed_in)

    @strawberry.mutation(description="Cancel your order before it ships; its stock goes back on sale.")
    async def cancel_order(self, info: OrdersInfo, input: CancelOrderInput) -> OrderPayload:
        async def perform(_: uuid.UUID) -> OrderPayload:
            return await _change_status(info, input.order_id, Status.CANCELLED, ["input", "orderId"])

        return await mutate(info, OrderPayload, perform, allow=signed_in)

    @strawberry.mutation(
        directives=[ADMIN_ONLY], description="Move an order along its lifecycle (administrators only)."
    )
    async def update_order_status(self, info: OrdersInfo, input: UpdateOrderStatusInput) -> OrderPayload:
        async def perform(_: uuid.UUID) -> OrderPayload:
            return await _change_status(info, input.order_id, input.status, ["input", "status"])

        return await mutate(info, OrderPayload, perform, allow=admin)


ACCOUNT_EMAIL = gql("query AccountEmail { me { email } }")


async def _claim(info: OrdersInfo, user_id: uuid.UUID, tokens: list[str]) -> ClaimGuestOrdersPayload:
    if len(tokens) > guest.MAX_CLAIM:
        raise DomainError(Code.INVALID, f"Claim at most {guest.MAX_CLAIM} orders at once.", ["input", "lookupTokens"])
    secret = info.context.runtime.settings.service_secret
    ids: list[uuid.UUID | None] = []
    errors: list[UserError] = []
    for i, token in enumerate(tokens):
        field = ["input", "lookupTokens", str(i)]
        try:
            ids.append(guest.verify(secret, token))
        except order_lookup.ExpiredToken:
            ids.append(None)
            errors.append(UserError(code=Code.TOKEN_EXPIRED, field=field, message="This token has expired."))
            continue
        if ids[-1] is None:
            errors.append(UserError(code=Code.INVALID_TOKEN, field=field, message="This token is not valid."))
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return ClaimGuestOrdersPayload(user_errors=errors)
    # The account's address, as users has it (asked as the account, so users' own checks apply).
    users = info.context.runtime.client("users")
    me = (await users.execute(ACCOUNT_EMAIL, user_id=user_id, role=info.context.identity.role))["me"]
    if me is None:
        raise DomainError(Code.NOT_FOUND, "No such account.", ["input"])
    rows, refused = await info.context.orders.claim_guest_orders(user_id, str(me["email"]), wanted)
    errors += [
        UserError(
            code=Code.NOT_FOUND,
            field=["input", "lookupTokens", str(i)],
            message="No guest order placed with your account's e-mail address has this token.",
        )
        for i, order_id in enumerate(ids)
        if order_id in refused
    ]
    info.context.reset_loaders()
    return ClaimGuestOrdersPayload(orders=[Order.from_row(r) for r in rows], user_errors=errors)


async def _change_status(info: OrdersInfo, order_id: strawberry.ID, status: Status, field: list[str]) -> OrderPayload:
    row = await info.context.orders.change_status(
        info.context.identity, parse_uuid(order_id), status, status_field=field
    )
    info.context.reset_loaders()
    return OrderPayload(order=Order.from_row(row))


schema = federated_schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[Order, User, Product, ProductVariant],
)
