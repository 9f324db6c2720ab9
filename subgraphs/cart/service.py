"""Cart rules: one cart per user, quantity limits checked against the catalog."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Row, delete, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.db import Database
from subgraphs.kit.errors import UserErrorCode as Code
from subgraphs.kit.errors import UserInputError

from .catalog_client import ProductInfo
from .models import cart_items, carts, completed_checkouts

MAX_QUANTITY = 99
MAX_LINES = 100

ProductLookup = Callable[[uuid.UUID], Awaitable[ProductInfo | None]]


async def ensure_carts(conn: AsyncConnection, user_ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
    """The carts of these users, created on first use (one statement each way, any number of users)."""
    if not user_ids:
        return []
    await conn.execute(
        insert(carts).values([{"user_id": u} for u in user_ids]).on_conflict_do_nothing(index_elements=["user_id"])
    )
    return list((await conn.execute(select(carts).where(carts.c.user_id.in_(user_ids)))).all())


class Carts:
    def __init__(self, db: Database, product: ProductLookup) -> None:
        self.db = db
        self.product = product

    async def set_quantity(self, user_id: uuid.UUID, product_id: uuid.UUID | None, quantity: int, *, add: bool) -> None:
        """Add ``quantity`` to a line (``add``) or set it; the result must be 1..99 and in stock."""
        field = ["input", "quantity"]
        if not 1 <= quantity <= MAX_QUANTITY:
            raise UserInputError(Code.INVALID_QUANTITY, f"Quantity must be between 1 and {MAX_QUANTITY}.", field)
        product = await self.product(product_id) if product_id else None
        if product is None or product_id is None:
            raise UserInputError(Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "productId"])
        if not product.active:
            raise UserInputError(Code.PRODUCT_INACTIVE, f"{product.name} is no longer sold.", ["input", "productId"])
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
                raise UserInputError(Code.NOT_FOUND, "This product is not in the cart.", ["input", "productId"])
            wanted = (current or 0) + quantity if add else quantity
            if wanted > MAX_QUANTITY:
                raise UserInputError(Code.INVALID_QUANTITY, f"At most {MAX_QUANTITY} of one product per order.", field)
            if wanted > product.stock:
                raise UserInputError(
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
                    raise UserInputError(Code.INVALID, f"A cart holds at most {MAX_LINES} products.", ["input"])
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
                raise UserInputError(Code.NOT_FOUND, "This product is not in the cart.", ["input", "productId"])
            await _touch(conn, cart.id)

    async def clear(self, user_id: uuid.UUID) -> None:
        async with self.db.transaction() as conn:
            cart = await self._lock_cart(conn, user_id)
            await conn.execute(delete(cart_items).where(cart_items.c.cart_id == cart.id))
            await _touch(conn, cart.id)

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
