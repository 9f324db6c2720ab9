"""Order rules: checkout (idempotent, all or nothing) and the status lifecycle."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.address import clean_address
from subgraphs.kit.auth import Identity
from subgraphs.kit.db import Database
from subgraphs.kit.errors import UserErrorCode as Code
from subgraphs.kit.errors import UserInputError
from subgraphs.kit.money import to_decimal
from subgraphs.kit.outbox import record_event
from subgraphs.kit.service_client import ServiceClient

from . import clients
from .models import order_items, order_status_changes, orders, outbox

log = logging.getLogger("shopgraph.orders")

# Reservation ids are derived from (shopper, idempotency key): a retried
# checkout reserves under the same id, so stock is never taken twice.
RESERVATION_NAMESPACE = uuid.UUID("6c1f4a52-6f0e-4b1e-9a57-4f2d7c0e9b11")


class Status(Enum):
    PENDING = "PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.PAID, Status.CANCELLED}),
    Status.PAID: frozenset({Status.SHIPPED, Status.CANCELLED}),
    Status.SHIPPED: frozenset({Status.DELIVERED}),
    Status.DELIVERED: frozenset(),
    Status.CANCELLED: frozenset(),
}
# Shoppers may cancel their own order until it ships; everything else is ADMIN's.
OWNER_TRANSITIONS = frozenset({Status.CANCELLED})


def order_number(number: int) -> str:
    return f"SG-{number}"


def parse_order_number(text: str) -> int | None:
    digits = text.strip().upper().removeprefix("SG-")
    return int(digits) if digits.isdigit() and len(digits) < 18 else None


class Orders:
    def __init__(self, db: Database, catalog: ServiceClient, cart: ServiceClient) -> None:
        self.db = db
        self.catalog = catalog
        self.cart = cart

    async def checkout(self, viewer: Identity, idempotency_key: str, address: dict[str, Any]) -> Row[Any]:
        user_id = viewer.require_user()
        key = idempotency_key.strip()
        if not 1 <= len(key) <= 200:
            raise UserInputError(
                Code.INVALID, "Use an idempotency key of 1 to 200 characters.", ["input", "idempotencyKey"]
            )
        shipping = clean_address(address, partial=False, path=("input", "shippingAddress"))

        existing = await self._by_key(user_id, key)
        if existing is not None:
            await self._empty_cart(existing)
            return existing

        lines = await clients.cart_lines(self.cart, user_id, viewer.role)
        if not lines:
            # A concurrent retry with this key may have placed the order and
            # emptied the cart since we looked: then that order is the answer.
            placed = await self._by_key(user_id, key)
            if placed is not None:
                return placed
            raise UserInputError(Code.CART_EMPTY, "The cart is empty.", ["input"])
        reservation_id = uuid.uuid5(RESERVATION_NAMESPACE, f"{user_id}:{key}")
        priced = await clients.reserve_stock(self.catalog, reservation_id, lines)
        try:
            order = await self._create(user_id, key, reservation_id, priced, shipping)
        except IntegrityError:
            # A concurrent checkout with the same key won the insert: it is this order.
            winner = await self._by_key(user_id, key)
            if winner is None:
                await clients.release_stock(self.catalog, reservation_id)
                raise
            order = winner
        except Exception:
            await clients.release_stock(self.catalog, reservation_id)
            raise
        await self._empty_cart(order)
        return order

    async def _create(
        self,
        user_id: uuid.UUID,
        key: str,
        reservation_id: uuid.UUID,
        lines: Sequence[clients.PricedLine],
        shipping: dict[str, Any],
    ) -> Row[Any]:
        currency = lines[0].currency
        subtotal = sum(line.unit_price_minor * line.quantity for line in lines)
        async with self.db.transaction() as conn:
            order: Row[Any] = (
                await conn.execute(
                    insert(orders)
                    .values(
                        user_id=user_id,
                        idempotency_key=key,
                        reservation_id=reservation_id,
                        currency=currency,
                        subtotal_minor=subtotal,
                        total_minor=subtotal,
                        shipping_address=shipping,
                    )
                    .returning(orders)
                )
            ).one()
            await conn.execute(
                insert(order_items),
                [
                    {
                        "order_id": order.id,
                        "position": position,
                        "product_id": line.product_id,
                        "sku": line.sku,
                        "name": line.name,
                        "unit_price_minor": line.unit_price_minor,
                        "quantity": line.quantity,
                    }
                    for position, line in enumerate(lines)
                ],
            )
            await conn.execute(
                insert(order_status_changes).values(
                    order_id=order.id, to_status=Status.PENDING.value, changed_by=user_id
                )
            )
            await _record(
                conn,
                "order.created",
                order,
                [(line.product_id, line.quantity, line.unit_price_minor) for line in lines],
            )
            return order

    async def _empty_cart(self, order: Row[Any]) -> None:
        """Take the ordered lines out of the cart (idempotent per order).

        The order stands even if the cart cannot be reached now: the shopper's
        retry with the same key, which returns this order, tries again.
        """
        async with self.db.read() as conn:
            items = (
                await conn.execute(
                    select(order_items.c.product_id, order_items.c.quantity).where(order_items.c.order_id == order.id)
                )
            ).all()
        try:
            await clients.complete_checkout(
                self.cart, order.user_id, order.id, [(i.product_id, i.quantity) for i in items]
            )
        except Exception:
            log.warning("could not empty the cart for order %s", order.id, exc_info=True)

    async def _by_key(self, user_id: uuid.UUID, key: str) -> Row[Any] | None:
        async with self.db.read() as conn:
            row: Row[Any] | None = (
                await conn.execute(select(orders).where(orders.c.user_id == user_id, orders.c.idempotency_key == key))
            ).one_or_none()
            return row

    async def change_status(self, viewer: Identity, order_id: uuid.UUID | None, to: Status) -> Row[Any]:
        """Move an order along its lifecycle; a cancel puts the stock back."""
        actor = viewer.require_user()
        async with self.db.transaction() as conn:
            order: Row[Any] | None = (
                await conn.execute(select(orders).where(orders.c.id == order_id).with_for_update())
            ).one_or_none()
            if order is None or not (viewer.is_admin or order.user_id == actor):
                # Someone else's order is reported exactly like a missing one.
                raise UserInputError(Code.NOT_FOUND, "No such order.", ["input", "orderId"])
            current = Status(order.status)
            if not viewer.is_admin and to not in OWNER_TRANSITIONS:
                raise UserInputError(
                    Code.INVALID_STATUS_TRANSITION, "Only an administrator can do this.", ["input", "status"]
                )
            if to not in TRANSITIONS[current]:
                raise UserInputError(
                    Code.INVALID_STATUS_TRANSITION,
                    f"An order that is {current.value} cannot become {to.value}.",
                    ["input", "status"],
                )
            if to is Status.CANCELLED:
                # Under the row lock, before the commit: if the catalog cannot
                # take the stock back, the order stays as it was.
                await clients.release_stock(self.catalog, order.reservation_id)
            updated: Row[Any] = (
                await conn.execute(
                    update(orders)
                    .where(orders.c.id == order.id)
                    .values(status=to.value, updated_at=func.now())
                    .returning(orders)
                )
            ).one()
            await conn.execute(
                insert(order_status_changes).values(
                    order_id=order.id, from_status=current.value, to_status=to.value, changed_by=actor
                )
            )
            items = (
                await conn.execute(
                    select(order_items.c.product_id, order_items.c.quantity, order_items.c.unit_price_minor).where(
                        order_items.c.order_id == order.id
                    )
                )
            ).all()
            await _record(conn, f"order.{to.value.lower()}", updated, [tuple(i) for i in items])
            return updated


async def _record(conn: AsyncConnection, event_type: str, order: Row[Any], items: Sequence[tuple[Any, ...]]) -> None:
    await record_event(
        conn,
        outbox,
        event_type,
        order.id,
        {
            "type": event_type,
            "orderId": str(order.id),
            "number": order_number(order.number),
            "userId": str(order.user_id),
            "status": order.status,
            "total": {"amount": str(to_decimal(order.total_minor, order.currency)), "currencyCode": order.currency},
            "items": [
                {
                    "productId": str(product_id),
                    "quantity": quantity,
                    "unitPrice": str(to_decimal(unit_price, order.currency)),
                }
                for product_id, quantity, unit_price in items
            ],
            "occurredAt": datetime.now(UTC).isoformat(),
        },
    )
