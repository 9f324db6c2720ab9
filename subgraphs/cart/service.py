"""Cart rules: one cart per user, quantity limits checked against the catalog."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, delete, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.db import Database
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.loaders import in_keys

from .catalog_client import ProductInfo
from .models import cart_items, carts, completed_checkouts

MAX_QUANTITY = 99
MAX_LINES = 100
# A checkout's claim on a cart older than this is abandoned (its process died
# between reading the cart and completing or releasing it): another may claim it.
CHECKOUT_HOLD = timedelta(minutes=5)

ProductLookup = Callable[[uuid.UUID], Awaitable[ProductInfo | None]]


async def ensure_carts(conn: AsyncConnection, user_ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
    """The carts of these users, created on first use (one statement each way, any number of users)."""
    if not user_ids:
        return []
    await conn.execute(
        insert(carts).values([{"user_id": u} for u in user_ids]).on_conflict_do_nothing(index_elements=["user_id"])
    )
    return await carts_of(conn, user_ids)


async def carts_of(conn: AsyncConnection, user_ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
    """The carts these users already have (one statement, any number of users)."""
    return list((await conn.execute(select(carts).where(in_keys(carts.c.user_id, user_ids)))).all())


class Carts:
    def __init__(self, db: Database, product: ProductLookup) -> None:
        self.db = db
        self.product = product

    async def set_quantity(self, user_id: uuid.UUID, product_id: uuid.UUID | None, quantity: int, *, add: bool) -> None:
        """Add ``quantity`` to a line (``add``) or set it; the result must be 1..99 and in stock."""
        field = ["input", "quantity"]
        if not 1 <= quantity <= MAX_QUANTITY:
            raise DomainError(Code.INVALID_QUANTITY, f"Quantity must be between 1 and {MAX_QUANTITY}.", field)
        product = await self.product(product_id) if product_id else None
        if product is None or product_id is None:
            raise DomainError(Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "productId"])
        if not product.active:
            raise DomainError(Code.PRODUCT_INACTIVE, f"{product.name} is no longer sold.", ["input", "productId"])
        async with self.db.transaction() as conn:
            cart = await self._lock_cart(conn, user_id)
            current = (
                await conn.execute(
                    select(cart_items.c.quantity).where(
                        cart_items.c.cart_id == cart.id, cart_items.c.product_id == product_id
                    )
                )
            ).scalar_one_or_none()
            if current is None and not add:
                raise DomainError(Code.NOT_FOUND, "This product is not in the cart.", ["input", "productId"])
            wanted = (current or 0) + quantity if add else quantity
            if wanted > MAX_QUANTITY:
                raise DomainError(Code.INVALID_QUANTITY, f"At most {MAX_QUANTITY} of one product per order.", field)
            if wanted > product.stock:
                raise DomainError(
                    Code.OUT_OF_STOCK,
                    f"Only {product.stock} of {product.name} in stock."
                    if product.stock
                    else f"{product.name} is sold out.",
                    field,
                )
            if current is None:
                lines = (
                    await conn.execute(
                        select(func.count()).select_from(cart_items).where(cart_items.c.cart_id == cart.id)
                    )
                ).scalar_one()
                if lines >= MAX_LINES:
                    raise DomainError(Code.INVALID, f"A cart holds at most {MAX_LINES} products.", ["input"])
            await conn.execute(
                insert(cart_items)
                .values(cart_id=cart.id, product_id=product_id, quantity=wanted)
                .on_conflict_do_update(index_elements=["cart_id", "product_id"], set_={"quantity": wanted})
            )
            await _touch(conn, cart.id)

    async def remove(self, user_id: uuid.UUID, product_id: uuid.UUID | None) -> None:
        async with self.db.transaction() as conn:
            cart = await self._lock_cart(conn, user_id)
            removed = (
                await conn.execute(
                    delete(cart_items)
                    .where(cart_items.c.cart_id == cart.id, cart_items.c.product_id == product_id)
                    .returning(cart_items.c.id)
                )
            ).one_or_none()
            if removed is None:
                raise DomainError(Code.NOT_FOUND, "This product is not in the cart.", ["input", "productId"])
            await _touch(conn, cart.id)

    async def clear(self, user_id: uuid.UUID) -> None:
        async with self.db.transaction() as conn:
            cart = await self._lock_cart(conn, user_id)
            await conn.execute(delete(cart_items).where(cart_items.c.cart_id == cart.id))
            await _touch(conn, cart.id)

    async def begin_checkout(self, user_id: uuid.UUID, checkout_id: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
        """Claim the cart for one checkout and return its lines.

        The same checkout (a retry under the same idempotency key) may claim it
        again; another one is refused while the claim holds, so one cart never
        becomes two orders. An empty cart is not claimed.
        """
        async with self.db.transaction() as conn:
            cart = await self._lock_cart(conn, user_id)
            held = select(carts.c.id).where(
                carts.c.id == cart.id,
                carts.c.checkout_id != checkout_id,  # NULL (no claim) compares as not held
                carts.c.checkout_started_at > func.now() - CHECKOUT_HOLD,
            )
            if (await conn.execute(held)).one_or_none() is not None:
                raise DomainError(
                    Code.CHECKOUT_IN_PROGRESS, "This cart is being checked out already.", ["input", "idempotencyKey"]
                )
            rows = (
                await conn.execute(
                    select(cart_items.c.product_id, cart_items.c.quantity)
                    .where(cart_items.c.cart_id == cart.id)
                    .order_by(cart_items.c.added_at, cart_items.c.id)
                )
            ).all()
            if rows:
                await conn.execute(
                    update(carts)
                    .where(carts.c.id == cart.id)
                    .values(checkout_id=checkout_id, checkout_started_at=func.now())
                )
            return [(r.product_id, r.quantity) for r in rows]

    async def release_checkout(self, user_id: uuid.UUID, checkout_id: uuid.UUID) -> bool:
        """Give the cart back to its shopper: this checkout failed and took nothing."""
        async with self.db.transaction() as conn:
            released = (
                await conn.execute(
                    update(carts)
                    .where(carts.c.user_id == user_id, carts.c.checkout_id == checkout_id)
                    .values(checkout_id=None, checkout_started_at=None)
                    .returning(carts.c.id)
                )
            ).one_or_none()
            return released is not None

    async def complete_checkout(
        self, user_id: uuid.UUID, checkout_id: uuid.UUID, lines: Sequence[tuple[uuid.UUID, int]]
    ) -> bool:
        """Take what an order bought out of the cart, once per checkout id.

        Only the ordered quantities go: a line the shopper added while the
        checkout ran stays in the cart.
        """
        async with self.db.transaction() as conn:
            cart = await self._lock_cart(conn, user_id)
            first_time: Row[Any] | None = (
                await conn.execute(
                    insert(completed_checkouts)
                    .values(id=checkout_id, cart_id=cart.id)
                    .on_conflict_do_nothing(index_elements=["id"])
                    .returning(literal_column("1"))
                )
            ).one_or_none()
            await conn.execute(
                update(carts)
                .where(carts.c.id == cart.id, carts.c.checkout_id == checkout_id)
                .values(checkout_id=None, checkout_started_at=None)
            )
            if first_time is None:
                return False
            for product_id, quantity in lines:
                line = (cart_items.c.cart_id == cart.id) & (cart_items.c.product_id == product_id)
                await conn.execute(delete(cart_items).where(line, cart_items.c.quantity <= quantity))
                await conn.execute(
                    update(cart_items)
                    .where(line, cart_items.c.quantity > quantity)
                    .values(quantity=cart_items.c.quantity - quantity)
                )
            await _touch(conn, cart.id)
            return True

    async def _lock_cart(self, conn: AsyncConnection, user_id: uuid.UUID) -> Row[Any]:
        # Every change to a cart holds its row lock: concurrent requests of one
        # shopper are applied one after another, never interleaved.
        (cart,) = await ensure_carts(conn, [user_id])
        locked: Row[Any] = (await conn.execute(select(carts).where(carts.c.id == cart.id).with_for_update())).one()
        return locked


async def _touch(conn: AsyncConnection, cart_id: uuid.UUID) -> None:
    await conn.execute(update(carts).where(carts.c.id == cart_id).values(updated_at=func.now()))
