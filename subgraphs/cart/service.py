"""Cart rules: one cart per user (or a guest's, by its token), quantity limits checked against the catalog."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, delete, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.db import Database, Read
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.loaders import in_keys

from .catalog_client import ProductInfo
from .guest import Guest, refused
from .models import cart_items, carts, completed_checkouts
from .pricing import metrics as pricing_metrics
from .pricing.quote import Quote, any_rule, lines_of, price_checkout, release_checkout_redemptions
from .pricing.store import Destination

log = logging.getLogger("shopgraph.cart")

MAX_QUANTITY = 99
MAX_LINES = 100
# A checkout's claim on a cart older than this is abandoned (its process died
# between reading the cart and completing or releasing it): another may claim it.
CHECKOUT_HOLD = timedelta(minutes=5)

# A variant by its id (what a line sells), and the variant a bare product id means.
ProductLookup = Callable[[uuid.UUID], Awaitable[ProductInfo | None]]
DefaultVariantLookup = Callable[[uuid.UUID], Awaitable[uuid.UUID | None]]

CART_BY_ID = Read(select(carts).where(carts.c.id == bindparam("cart_id", type_=carts.c.id.type)))
CART_OF_USER = Read(select(carts).where(carts.c.user_id == bindparam("user_id", type_=carts.c.user_id.type)))

# Whose cart a change is for: a signed-in user's (by user id) or a guest's (by its verified token).
Owner = uuid.UUID | Guest


@dataclass(frozen=True)
class Notice:
    """Something a merge could not do as asked (the rest of it was done)."""

    code: str  # QUANTITY_CAPPED, PRODUCT_UNAVAILABLE, CART_FULL, ALREADY_MERGED
    product_id: uuid.UUID | None
    message: str
    requested: int = 0
    kept: int = 0


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
    def __init__(self, db: Database, product: ProductLookup, default_variant: DefaultVariantLookup) -> None:
        self.db = db
        self.product = product
        self.default_variant = default_variant

    async def set_quantity(
        self,
        user_id: Owner,
        product_id: uuid.UUID | None,
        quantity: int,
        *,
        add: bool,
        variant_id: uuid.UUID | None = None,
    ) -> None:
        """Add ``quantity`` to a line (``add``) or set it; the result must be 1..99 and in stock.

        The line is the variant's; a bare product id means its one line in the cart (setting), else
        its default variant."""
        field = ["input", "quantity"]
        if not 1 <= quantity <= MAX_QUANTITY:
            raise DomainError(Code.INVALID_QUANTITY, f"Quantity must be between 1 and {MAX_QUANTITY}.", field)
        if variant_id is None and product_id is not None:
            variant_id = None if add else await self._line_of(user_id, product_id)
            if variant_id is None:
                variant_id = await self.default_variant(product_id)
        product = await self.product(variant_id) if variant_id else None
        if product is None or variant_id is None or (product_id is not None and product.product_id != product_id):
            raise DomainError(Code.PRODUCT_NOT_FOUND, "No such product.", ["input", "productId"])
        if not product.active:
            raise DomainError(Code.PRODUCT_INACTIVE, f"{product.name} is no longer sold.", ["input", "productId"])
        async with self.db.transaction() as conn:
            cart = await self._lock_cart(conn, user_id)
            current = (
                await conn.execute(
                    select(cart_items.c.quantity).where(
                        cart_items.c.cart_id == cart.id, cart_items.c.variant_id == variant_id
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
                .values(cart_id=cart.id, product_id=product.product_id, variant_id=variant_id, quantity=wanted)
                .on_conflict_do_update(index_elements=["cart_id", "variant_id"], set_={"quantity": wanted})
            )
            await _touch(conn, cart.id)

    async def _line_of(self, owner: Owner, product_id: uuid.UUID) -> uuid.UUID | None:
        """The variant of the product's line in the cart; None if it has none, or several."""
        whose = (
            cart_items.c.cart_id == owner.cart_id
            if isinstance(owner, Guest)
            else cart_items.c.cart_id.in_(select(carts.c.id).where(carts.c.user_id == owner))
        )
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(cart_items.c.variant_id).where(whose, cart_items.c.product_id == product_id).limit(2)
                )
            ).all()
        if len(rows) > 1:
            raise DomainError(Code.INVALID, "Several variants of this product are in the cart.", ["input", "variantId"])
        return rows[0].variant_id if rows else None

    async def remove(self, user_id: Owner, product_id: uuid.UUID | None, variant_id: uuid.UUID | None = None) -> None:
        """Remove the variant's line; a bare product id removes every line of the product."""
        line = (
            cart_items.c.variant_id == variant_id if variant_id is not None else cart_items.c.product_id == product_id
        )
        async with self.db.transaction() as conn:
            cart = await self._lock_cart(conn, user_id)
            removed = (
                await conn.execute(
                    delete(cart_items).where(cart_items.c.cart_id == cart.id, line).returning(cart_items.c.id)
                )
            ).first()
            if removed is None:
                raise DomainError(Code.NOT_FOUND, "This product is not in the cart.", ["input", "productId"])
            await _touch(conn, cart.id)

    async def clear(self, user_id: Owner) -> None:
        async with self.db.transaction() as conn:
            cart = await self._lock_cart(conn, user_id)
            await conn.execute(delete(cart_items).where(cart_items.c.cart_id == cart.id))
            await _touch(conn, cart.id)

    async def begin_checkout(self, user_id: Owner, checkout_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
        """Claim the cart for one checkout and return its lines (product, variant, quantity).

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
                    select(cart_items.c.product_id, cart_items.c.variant_id, cart_items.c.quantity)
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
            return [(r.product_id, r.variant_id, r.quantity) for r in rows]

    async def release_checkout(self, user_id: Owner, checkout_id: uuid.UUID) -> bool:
        """Give the cart back to its shopper: this checkout failed and took nothing (nor any discount use)."""
        async with self.db.transaction() as conn:
            await release_checkout_redemptions(conn, checkout_id)
            released = (
                await conn.execute(
                    update(carts)
                    .where(_cart_of(user_id), carts.c.checkout_id == checkout_id)
                    .values(checkout_id=None, checkout_started_at=None)
                    .returning(carts.c.id)
                )
            ).one_or_none()
            return released is not None

    async def complete_checkout(
        self, user_id: Owner, checkout_id: uuid.UUID, lines: Sequence[tuple[uuid.UUID, int]]
    ) -> bool:
        """Take what an order bought out of the cart, once per checkout id.

        Only the ordered quantities go: a line the shopper added while the
        checkout ran stays in the cart. ``lines`` are (variant id, quantity).
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
                # The entered code went with the order; the next order starts without one.
                .values(checkout_id=None, checkout_started_at=None, discount_code=None)
            )
            if first_time is None:
                return False
            for variant_id, quantity in lines:
                line = (cart_items.c.cart_id == cart.id) & (cart_items.c.variant_id == variant_id)
                await conn.execute(delete(cart_items).where(line, cart_items.c.quantity <= quantity))
                await conn.execute(
                    update(cart_items)
                    .where(line, cart_items.c.quantity > quantity)
                    .values(quantity=cart_items.c.quantity - quantity)
                )
            await _touch(conn, cart.id)
            return True

    async def create_guest(self) -> Row[Any]:
        async with self.db.transaction() as conn:
            row: Row[Any] = (await conn.execute(insert(carts).values(user_id=None).returning(carts))).one()
        pricing_metrics.GUEST_CARTS.labels(event="created").inc()
        return row

    async def set_destination(self, owner: Owner, country: str | None, region: str | None) -> None:
        async with self.db.transaction() as conn:
            cart = await self._lock_cart(conn, owner)
            await conn.execute(
                update(carts).where(carts.c.id == cart.id).values(ship_country=country, ship_region=region)
            )
            await _touch(conn, cart.id)

    async def set_choice(self, owner: Owner, **values: Any) -> None:
        """Set the cart's shipping method or discount code (checked by the caller)."""
        async with self.db.transaction() as conn:
            cart = await self._lock_cart(conn, owner)
            await conn.execute(update(carts).where(carts.c.id == cart.id).values(**values))
            await _touch(conn, cart.id)

    async def merge_guest(self, user_id: uuid.UUID, guest: Guest) -> list[Notice]:
        """Move a guest cart's lines into the user's cart, once; quantities capped by stock and limits.

        The guest cart is dead afterwards: its token (a copy in another tab, a
        stolen one) opens nothing. Merging again into the same account changes
        nothing and says so; into another account it is refused.
        """
        async with self.db.read() as conn:
            ids = (
                (await conn.execute(select(cart_items.c.variant_id).where(cart_items.c.cart_id == guest.cart_id)))
                .scalars()
                .all()
            )
        products = dict(zip(ids, await asyncio.gather(*(self.product(i) for i in ids)), strict=True))
        notices: list[Notice] = []
        async with self.db.transaction() as conn:
            (mine,) = await ensure_carts(conn, [user_id])
            locked = {
                r.id: r
                for r in await conn.execute(
                    select(carts).where(carts.c.id.in_([mine.id, guest.cart_id])).order_by(carts.c.id).with_for_update()
                )
            }
            other = locked.get(guest.cart_id)
            if other is None or other.user_id is not None:
                raise refused("not valid")
            if other.merged_at is not None:
                if other.merged_into == mine.id:
                    pricing_metrics.GUEST_CARTS.labels(event="merge_repeat").inc()
                    return [Notice("ALREADY_MERGED", None, "This cart was merged into yours already.")]
                raise refused("used already")
            target = locked[mine.id]
            have = {
                r.variant_id: r.quantity
                for r in await conn.execute(
                    select(cart_items.c.variant_id, cart_items.c.quantity).where(cart_items.c.cart_id == mine.id)
                )
            }
            moving = (
                await conn.execute(
                    select(cart_items.c.product_id, cart_items.c.variant_id, cart_items.c.quantity)
                    .where(cart_items.c.cart_id == guest.cart_id)
                    .order_by(cart_items.c.added_at, cart_items.c.id)
                )
            ).all()
            upserts: list[dict[str, Any]] = []
            for line in moving:
                product = products.get(line.variant_id) or await self.product(line.variant_id)
                if product is None or not product.active:
                    notices.append(Notice("PRODUCT_UNAVAILABLE", line.product_id, "This product is no longer sold."))
                    continue
                current = have.get(line.variant_id, 0)
                if current == 0 and len(have) + len(upserts) >= MAX_LINES:
                    notices.append(Notice("CART_FULL", line.product_id, f"A cart holds at most {MAX_LINES} products."))
                    continue
                requested = current + line.quantity
                cap = min(MAX_QUANTITY, product.stock)
                kept = min(requested, cap)
                if kept < requested:
                    notices.append(
                        Notice(
                            "QUANTITY_CAPPED",
                            line.product_id,
                            f"Only {cap} of {product.name} can be in the cart.",
                            requested=requested,
                            kept=max(kept, current),
                        )
                    )
                if kept > current:
                    upserts.append(
                        {
                            "cart_id": mine.id,
                            "product_id": line.product_id,
                            "variant_id": line.variant_id,
                            "quantity": kept,
                        }
                    )
            if upserts:
                statement = insert(cart_items).values(upserts)
                await conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["cart_id", "variant_id"], set_={"quantity": statement.excluded.quantity}
                    )
                )
            # What the guest chose for pricing carries over where the account's cart has no choice of its own.
            carried = {
                name: getattr(other, name)
                for name in ("ship_country", "ship_region", "shipping_method_id", "discount_code")
                if getattr(target, name) is None and getattr(other, name) is not None
            }
            if carried:
                await conn.execute(update(carts).where(carts.c.id == mine.id).values(**carried))
            await conn.execute(delete(cart_items).where(cart_items.c.cart_id == guest.cart_id))
            await conn.execute(
                update(carts).where(carts.c.id == guest.cart_id).values(merged_at=func.now(), merged_into=mine.id)
            )
            await _touch(conn, mine.id)
        pricing_metrics.GUEST_CARTS.labels(event="merged").inc()
        log.info(
            "guest cart %s merged into %s (%d lines, %d notices)", guest.cart_id, mine.id, len(moving), len(notices)
        )
        return notices

    async def price_checkout(
        self,
        user_id: Owner,
        checkout_id: uuid.UUID,
        lines: Sequence[tuple[uuid.UUID, int]],
        destination: Destination,
        currency: str,
        *,
        customer: uuid.UUID,
    ) -> Quote | None:
        """The claimed cart priced for its order (at the catalog's current prices), its discount uses counted.

        None when no rule applies to this cart and destination (no shipping method,
        tax rate, promotion or code): the order costs its lines' prices, as the
        catalog reserves them, and the catalog is not asked twice.
        """
        if isinstance(user_id, Guest):
            found = await self.db.fetch(CART_BY_ID, cart_id=user_id.cart_id)
        else:
            found = await self.db.fetch(CART_OF_USER, user_id=user_id)
        cart = found[0] if found else None
        if cart is None or cart.checkout_id != checkout_id:
            raise DomainError(
                Code.CHECKOUT_IN_PROGRESS, "This checkout does not hold the cart.", ["input", "checkoutId"]
            )
        if not await any_rule(self.db, cart, destination):
            return None
        products = await asyncio.gather(*(self.product(pid) for pid, _ in lines))
        priced = lines_of(lines, products)
        if len(priced) != len(lines) or any(p.currency != currency for p in products if p is not None):
            raise DomainError(
                Code.PRODUCT_NOT_FOUND, "A product of this cart cannot be priced now.", ["input", "lines"]
            )
        return await price_checkout(self.db, cart, checkout_id, priced, destination, str(customer), currency)

    async def _lock_cart(self, conn: AsyncConnection, user_id: Owner) -> Row[Any]:
        # Every change to a cart holds its row lock: concurrent requests of one
        # shopper (or of two tabs sharing a guest token) are applied one after another.
        if isinstance(user_id, Guest):
            guest: Row[Any] | None = (
                await conn.execute(
                    select(carts).where(carts.c.id == user_id.cart_id, carts.c.user_id.is_(None)).with_for_update()
                )
            ).one_or_none()
            if guest is None:
                raise refused("not valid")
            if guest.merged_at is not None:
                raise refused("merged into an account already")
            return guest
        (cart,) = await ensure_carts(conn, [user_id])
        locked: Row[Any] = (await conn.execute(select(carts).where(carts.c.id == cart.id).with_for_update())).one()
        return locked


def _cart_of(owner: Owner) -> ColumnElement[bool]:
    """The cart row of a user, or of a guest (by its token's cart id)."""
    return carts.c.id == owner.cart_id if isinstance(owner, Guest) else carts.c.user_id == owner


async def _touch(conn: AsyncConnection, cart_id: uuid.UUID) -> None:
    await conn.execute(update(carts).where(carts.c.id == cart_id).values(updated_at=func.now()))
