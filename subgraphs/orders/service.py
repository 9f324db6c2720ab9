"""Order rules: checkout (idempotent, all or nothing) and the status lifecycle."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.address import clean_address
from subgraphs.kit.auth import Identity
from subgraphs.kit.db import Database
from subgraphs.kit.domain import DomainError, Unavailable
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.metrics import SAGA_STEPS
from subgraphs.kit.money import to_decimal
from subgraphs.kit.outbox import record_events
from subgraphs.kit.service_client import ServiceClient

from . import clients, guest, pricing, saga
from .metrics import ORDER_REVENUE, ORDERS_PLACED
from .models import order_items, order_status_changes, orders, outbox, pending_checkouts

log = logging.getLogger("shopgraph.orders")

# Reservation ids are derived from (shopper, idempotency key): a retried
# checkout reserves under the same id, so stock is never taken twice.
RESERVATION_NAMESPACE = uuid.UUID("6c1f4a52-6f0e-4b1e-9a57-4f2d7c0e9b11")
# Reserve-then-write rounds one checkout tries when its reservation is released under it.
CHECKOUT_ROUNDS = 3
# At most this many rows per sweep pass, and the pass stops after this many catalog failures.
SWEEP_BATCH = 100
SWEEP_MAX_FAILURES = 3
# An order not paid within this many seconds is cancelled and its stock released (the reconciler;
# env SHOPGRAPH_ORDERS_PAYMENT_SECONDS, read in app.py).
PAYMENT_SECONDS = 900.0


class Status(Enum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING_PAYMENT: frozenset({Status.PAID, Status.CANCELLED}),
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
    # ASCII digits only: str.isdigit() also accepts superscripts (which int() refuses)
    # and the digits of other scripts (which int() reads).
    digits = text.strip().upper().removeprefix("SG-")
    return int(digits) if re.fullmatch(r"[0-9]{1,17}", digits) else None


@dataclass(frozen=True)
class Buyer:
    """Who checks out: a signed-in shopper (their cart), or a guest (the cart their token names, an
    e-mail address, and the address's customer id as ``user_id``: guest.py)."""

    user_id: uuid.UUID
    role: str | None
    cart_token: str | None = None
    email: str | None = None


class _ReservationReleased(Exception):
    """The checkout's pending row was swept or released while it reserved: its stock may be gone."""


@dataclass
class SweepResult:
    """What one sweep pass did."""

    checkouts_released: int = 0  # abandoned checkouts whose reservation was given back
    checkouts_cleared: int = 0  # leftover rows of checkouts whose order holds the stock
    cancels_released: int = 0  # cancelled orders whose stock was given back
    failures: int = 0  # catalog calls that failed (retried next pass)


class Orders:
    def __init__(
        self,
        db: Database,
        catalog: ServiceClient,
        cart: ServiceClient,
        payments: ServiceClient | None = None,
        payment_seconds: float = PAYMENT_SECONDS,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.cart = cart
        self.payments = payments
        self.payment_seconds = payment_seconds

    async def checkout(self, viewer: Identity, idempotency_key: str, address: dict[str, Any]) -> Row[Any]:
        """Turn the shopper's cart into an order, once.

        The same key and request give the same order; the same key with another
        shipping address or another cart is refused. The cart is claimed before it
        is read (``beginPricedCheckout``), so concurrent checkouts of one cart under
        different keys make one order: the others are refused and change nothing.
        """
        return await self._checkout(Buyer(viewer.require_user(), viewer.role), idempotency_key, address)

    async def guest_checkout(
        self, cart_token: str, email: str, idempotency_key: str, address: dict[str, Any]
    ) -> Row[Any]:
        """A signed-out shopper's checkout of their guest cart, under their e-mail address (guest.py);
        the same rules as ``checkout``, per address."""
        clean = guest.clean_email(email, ["input", "email"])
        buyer = Buyer(guest.customer_id(clean), None, cart_token=cart_token, email=clean)
        order = await self._checkout(buyer, idempotency_key, address)
        guest.GUEST_ORDERS.labels(event="placed").inc()
        log.info("guest order %s placed", order_number(order.number))
        return order

    async def _checkout(self, buyer: Buyer, idempotency_key: str, address: dict[str, Any]) -> Row[Any]:
        user_id = buyer.user_id
        key = idempotency_key.strip()
        if not 1 <= len(key) <= 200:
            raise DomainError(
                Code.INVALID, "Use an idempotency key of 1 to 200 characters.", ["input", "idempotencyKey"]
            )
        shipping = clean_address(address, partial=False, path=("input", "shippingAddress"))
        reservation_id = uuid.uuid5(RESERVATION_NAMESPACE, f"{user_id}:{key}")

        existing = await self._by_key(user_id, key)
        if existing is not None:
            replayed = await self._replay(existing, buyer, shipping)
            await saga.start_payment(self.payments, replayed)
            return replayed
        # price: the cart is claimed and priced for the address (its discount uses counted) in one call.
        lines, quote = await pricing.begin_checkout(
            self.cart, user_id, reservation_id, shipping, cart_token=buyer.cart_token
        )
        if not lines:
            # A concurrent retry with this key may have placed the order and
            # emptied the cart since we looked: then that order is the answer.
            placed = await self._by_key(user_id, key)
            if placed is not None:
                return await self._replay(placed, buyer, shipping)
            raise DomainError(Code.CART_EMPTY, "The cart is empty.", ["input"])
        try:
            order = await self._place(buyer, key, reservation_id, lines, shipping, quote)
        except BaseException:
            # Nothing was ordered (or a same-key attempt's order decides): the cart is the shopper's again.
            await self._release_cart(buyer, reservation_id)
            raise
        if order.shipping_address != shipping:
            raise _key_reused(["input", "shippingAddress"])
        await self._empty_cart(order, buyer.cart_token)
        # The saga's next step: the order waits for its payment (see saga.py).
        await saga.start_payment(self.payments, order)
        return order

    async def _place(
        self,
        buyer: Buyer,
        key: str,
        reservation_id: uuid.UUID,
        lines: list[tuple[uuid.UUID, int]],
        shipping: dict[str, Any],
        quote: pricing.Quote | None,
    ) -> Row[Any]:
        """Reserve the stock and write the order; a concurrent attempt with the same key may write it instead."""
        user_id = buyer.user_id
        for _ in range(CHECKOUT_ROUNDS):
            # Noted before the stock is taken: if this request never gets to write its
            # order (the process dies, the task is cancelled, the database fails), the
            # sweeper finds the row and gives the stock back.
            await self._note_pending(user_id, key, reservation_id)
            try:
                priced = await clients.reserve_stock(self.catalog, reservation_id, lines)
            except DomainError:
                raise  # refused: nothing was taken (the sweeper drops the row)
            except Exception:
                # Catalog failed or timed out: it may have taken the stock all the same.
                await self._give_back(reservation_id)
                raise
            try:
                order = await self._create(buyer, key, reservation_id, priced, shipping, quote)
                # Committed by this call (a concurrent attempt's order is counted by that attempt).
                ORDERS_PLACED.labels(order.currency).inc()
                ORDER_REVENUE.labels(order.currency).inc(order.total_minor)
                return order
            except _ReservationReleased:
                # Released under us (by the sweeper, or by a failed attempt with the same
                # key): the order a concurrent attempt wrote is the answer; else reserve
                # again (catalog takes a released reservation's stock anew).
                placed = await self._by_key(user_id, key)
                if placed is not None:
                    return placed
            except IntegrityError:
                # A concurrent checkout with the same key won the insert: it is this order.
                winner = await self._by_key(user_id, key)
                if winner is None:
                    await self._give_back(reservation_id)
                    raise
                return winner
            except Exception:
                await self._give_back(reservation_id)
                raise
        raise Unavailable("The stock for this checkout could not be held; please try again.")

    async def _replay(self, order: Row[Any], buyer: Buyer, shipping: dict[str, Any]) -> Row[Any]:
        """A key already used: the same order for the same request, else a refusal that changes nothing.

        The same request is the same shipping address and a cart that is either
        empty (this order took it) or still holds exactly this order's lines (the
        cart could not be emptied last time: it is now).
        """
        if order.shipping_address != shipping:
            raise _key_reused(["input", "shippingAddress"])
        if buyer.cart_token is not None:
            cart = await clients.guest_cart_lines(self.cart, buyer.cart_token)
        else:
            cart = await clients.cart_lines(self.cart, order.user_id, buyer.role)
        if cart and sorted(cart) != sorted(await self._lines_of(order)):
            raise _key_reused(["input", "idempotencyKey"])
        await self._empty_cart(order, buyer.cart_token)
        return order

    async def _release_cart(self, buyer: Buyer, checkout_id: uuid.UUID) -> None:
        """Best effort: an unreleased claim lapses on its own after the cart's hold time."""
        try:
            await clients.release_checkout(self.cart, buyer.user_id, checkout_id, buyer.cart_token)
        except Exception:
            log.warning("could not release the cart claim of checkout %s", checkout_id, exc_info=True)

    async def _note_pending(self, user_id: uuid.UUID, key: str, reservation_id: uuid.UUID) -> None:
        """Record (or renew, for a retry) the pending checkout of this reservation."""
        statement = pg_insert(pending_checkouts).values(
            reservation_id=reservation_id, user_id=user_id, idempotency_key=key, created_at=func.now()
        )
        async with self.db.transaction() as conn:
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[pending_checkouts.c.reservation_id],
                    set_={"created_at": func.now(), "released_at": None},
                )
            )

    async def _give_back(self, reservation_id: uuid.UUID) -> None:
        """Release what a failed attempt reserved, unless an order holds it.

        Runs under the pending row's lock, the lock an attempt writing its order
        takes first: a concurrent attempt with the same key either has written its
        order (then the stock is that order's and stays) or will see the row marked
        released and reserve again. The row itself stays for the sweeper, which
        releases once more (a no-op unless an attempt reserved after us and then
        died) before deleting it. Never raises: the caller is reporting its own error.
        """
        try:
            async with self.db.transaction() as conn:
                pending = (
                    await conn.execute(
                        select(pending_checkouts.c.reservation_id)
                        .where(pending_checkouts.c.reservation_id == reservation_id)
                        .with_for_update(skip_locked=True)
                    )
                ).one_or_none()
                # No row: an attempt is writing its order (its outcome decides) or it is done.
                if pending is None or await _order_status(conn, reservation_id) is not None:
                    return
                await clients.release_stock(self.catalog, reservation_id)
                await conn.execute(
                    update(pending_checkouts)
                    .where(pending_checkouts.c.reservation_id == reservation_id)
                    .values(released_at=func.now())
                )
        except Exception:
            log.warning("could not release reservation %s now; the sweeper will", reservation_id, exc_info=True)

    async def _create(
        self,
        buyer: Buyer,
        key: str,
        reservation_id: uuid.UUID,
        lines: Sequence[clients.PricedLine],
        shipping: dict[str, Any],
        quote: pricing.Quote | None,
    ) -> Row[Any]:
        # Reserved at the quoted prices, or PRICE_CHANGED (the stock is given back); no quote: no rule
        # applied, the order costs its lines at the reserved prices.
        quote = pricing.settled(quote, lines)
        async with self.db.transaction() as conn:
            # First, and under its row lock: the sweeper (or a failed attempt) cannot
            # release this reservation while the order is being written.
            pending = (
                await conn.execute(
                    delete(pending_checkouts)
                    .where(pending_checkouts.c.reservation_id == reservation_id)
                    .returning(pending_checkouts.c.released_at)
                )
            ).one_or_none()
            if pending is None or pending.released_at is not None:
                raise _ReservationReleased
            order: Row[Any] = (
                await conn.execute(
                    insert(orders)
                    .values(
                        user_id=buyer.user_id,
                        guest_email=buyer.email,
                        idempotency_key=key,
                        reservation_id=reservation_id,
                        currency=quote.currency,
                        shipping_address=shipping,
                        payment_due_at=func.now() + timedelta(seconds=self.payment_seconds),
                        **quote.order_values(),
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
                        "variant_id": line.variant_id,
                        "sku": line.sku,
                        "name": line.name,
                        "unit_price_minor": line.unit_price_minor,
                        "quantity": line.quantity,
                        "tax_minor": quote.lines[line.variant_id].tax_minor,
                        "discount_minor": quote.lines[line.variant_id].discount_minor,
                    }
                    for position, line in enumerate(lines)
                ],
            )
            await conn.execute(
                insert(order_status_changes).values(
                    order_id=order.id,
                    to_status=Status.PENDING_PAYMENT.value,
                    changed_by=buyer.user_id if buyer.email is None else None,
                )
            )
            await record_order_event(conn, "order.created", order)
            return order

    async def _empty_cart(self, order: Row[Any], cart_token: str | None = None) -> None:
        """Take the ordered lines out of the cart (idempotent per order).

        The order stands even if the cart cannot be reached now: the shopper's
        retry with the same key, which returns this order, tries again.
        """
        try:
            lines = await self._lines_of(order)
            await clients.complete_checkout(self.cart, order.user_id, order.reservation_id, lines, cart_token)
        except Exception:
            log.warning("could not empty the cart for order %s", order.id, exc_info=True)

    async def _lines_of(self, order: Row[Any]) -> list[tuple[uuid.UUID, int]]:
        async with self.db.read() as conn:
            items = (
                await conn.execute(
                    select(order_items.c.variant_id, order_items.c.quantity).where(order_items.c.order_id == order.id)
                )
            ).all()
        return [(i.variant_id, i.quantity) for i in items]

    async def _by_key(self, user_id: uuid.UUID, key: str) -> Row[Any] | None:
        async with self.db.read() as conn:
            row: Row[Any] | None = (
                await conn.execute(select(orders).where(orders.c.user_id == user_id, orders.c.idempotency_key == key))
            ).one_or_none()
            return row

    async def claim_guest_orders(
        self, user_id: uuid.UUID, email: str, order_ids: Sequence[uuid.UUID]
    ) -> tuple[list[Row[Any]], set[uuid.UUID]]:
        """Make guest orders placed with ``email`` the account's: (the orders now the account's, the ids
        refused: unknown, placed with another address, or claimed by another account). Claiming again
        is a no-op that returns the order."""
        wanted = list(dict.fromkeys(order_ids))
        email = email.strip().lower()
        async with self.db.transaction() as conn:
            rows = (
                await conn.execute(
                    select(orders).where(orders.c.id.in_(wanted)).order_by(orders.c.id).with_for_update()
                )
            ).all()
            mine = [r for r in rows if r.claimed_at is not None and r.user_id == user_id]
            claimable = [r for r in rows if r.claimed_at is None and r.guest_email == email]
            claimed: list[Row[Any]] = []
            if claimable:
                claimed = list(
                    (
                        await conn.execute(
                            update(orders)
                            .where(orders.c.id.in_([r.id for r in claimable]))
                            .values(user_id=user_id, claimed_at=func.now(), updated_at=func.now())
                            .returning(orders)
                        )
                    ).all()
                )
            guest_of = {r.id: r.user_id for r in claimable}
            # payments moves each order's payment to the account (it is read by user id).
            await record_order_events(
                conn, "order.claimed", [(row, {"guest_customer_id": str(guest_of[row.id])}) for row in claimed]
            )
        done = {r.id for r in mine} | {r.id for r in claimed}
        refused = {i for i in wanted if i not in done}
        for row in claimed:
            log.info("guest order %s claimed by account %s", order_number(row.number), user_id)
        guest.GUEST_ORDERS.labels(event="claimed").inc(len(claimed))
        if refused:
            guest.GUEST_ORDERS.labels(event="claim_refused").inc(len(refused))
            log.warning("guest order claim by %s refused for %d order(s)", user_id, len(refused))
        by_id = {r.id: r for r in [*mine, *claimed]}
        return [by_id[i] for i in wanted if i in by_id], refused

    async def change_status(
        self, viewer: Identity, order_id: uuid.UUID | None, to: Status, *, status_field: Sequence[str]
    ) -> Row[Any]:
        """Move an order along its lifecycle; a cancel puts the stock back once it has committed.

        ``status_field`` is the input field that asked for ``to`` (cancelOrder has
        none: its refusal names the order)."""
        actor = viewer.require_user()
        async with self.db.transaction() as conn:
            order: Row[Any] | None = (
                await conn.execute(select(orders).where(orders.c.id == order_id).with_for_update())
            ).one_or_none()
            if order is None or not (viewer.is_admin or order.user_id == actor):
                # Someone else's order is reported exactly like a missing one.
                raise DomainError(Code.NOT_FOUND, "No such order.", ["input", "orderId"])
            current = Status(order.status)
            if not viewer.is_admin and to not in OWNER_TRANSITIONS:
                raise DomainError(Code.INVALID_STATUS_TRANSITION, "Only an administrator can do this.", status_field)
            if current is Status.PENDING_PAYMENT and to is Status.PAID:
                # Money state comes only from the payment (the saga's payment.authorised):
                # marking it paid by hand would capture nothing and leave the payment open.
                raise DomainError(
                    Code.INVALID_STATUS_TRANSITION,
                    "An order becomes PAID only when its payment is authorised; it cannot be marked paid by hand.",
                    status_field,
                )
            if to not in TRANSITIONS[current]:
                raise DomainError(
                    Code.INVALID_STATUS_TRANSITION,
                    f"An order that is {current.value} cannot become {to.value}.",
                    status_field,
                )
            reason = (
                ("admin" if viewer.is_admin and order.user_id != actor else "customer")
                if to is Status.CANCELLED
                else None
            )
            updated = await transition(conn, order, to, actor, reason=reason)
        if to is Status.CANCELLED:
            SAGA_STEPS.labels("orders", f"order_cancelled_{reason}").inc()
            # After the commit, never before: a cancel that did not commit must not put
            # the stock back on sale. If catalog cannot be reached now (or this task is
            # cancelled), stock_released_at stays NULL and the sweeper releases it.
            try:
                await self.release_cancelled(updated.id, updated.reservation_id)
            except Exception:
                log.warning("could not release the stock of cancelled order %s yet", updated.id, exc_info=True)
        return updated

    async def release_cancelled(self, order_id: uuid.UUID, reservation_id: uuid.UUID) -> None:
        await clients.release_stock(self.catalog, reservation_id)  # idempotent: only the first call gives back
        async with self.db.transaction() as conn:
            await conn.execute(
                update(orders)
                .where(orders.c.id == order_id, orders.c.stock_released_at.is_(None))
                .values(stock_released_at=func.now())
            )

    # --- the sweeper's passes (several replicas may run them at once: rows are claimed with SKIP LOCKED) ---

    async def sweep(self, *, pending_older_than: float) -> SweepResult:
        """Give back stock no order keeps: abandoned checkouts older than ``pending_older_than``
        seconds, and cancelled orders whose release has not been confirmed."""
        result = SweepResult()
        await self._sweep_pending(pending_older_than, result)
        await self._sweep_cancelled(result)
        return result

    async def _sweep_pending(self, older_than: float, result: SweepResult) -> None:
        failed: list[uuid.UUID] = []
        for _ in range(SWEEP_BATCH):
            if len(failed) >= SWEEP_MAX_FAILURES:
                return
            try:
                async with self.db.transaction() as conn:
                    query = (
                        select(pending_checkouts.c.reservation_id)
                        .where(pending_checkouts.c.created_at < func.now() - timedelta(seconds=older_than))
                        .order_by(pending_checkouts.c.created_at)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                    if failed:
                        query = query.where(pending_checkouts.c.reservation_id.not_in(failed))
                    reservation_id = (await conn.execute(query)).scalar_one_or_none()
                    if reservation_id is None:
                        return
                    status = await _order_status(conn, reservation_id)
                    # An order that exists keeps its stock, unless it was cancelled (then
                    # releasing again is harmless and catches a late re-reservation).
                    released = status is None or status == Status.CANCELLED.value
                    if released:
                        await _release_or_fail(self.catalog, reservation_id)
                    await conn.execute(
                        delete(pending_checkouts).where(pending_checkouts.c.reservation_id == reservation_id)
                    )
            except _CatalogFailed as failure:
                failed.append(failure.reservation_id)
                result.failures += 1
                continue
            if released:
                result.checkouts_released += 1
            else:
                result.checkouts_cleared += 1

    async def _sweep_cancelled(self, result: SweepResult) -> None:
        failed: list[uuid.UUID] = []
        for _ in range(SWEEP_BATCH):
            if len(failed) >= SWEEP_MAX_FAILURES:
                return
            try:
                async with self.db.transaction() as conn:
                    query = (
                        select(orders.c.id, orders.c.reservation_id)
                        .where(orders.c.status == Status.CANCELLED.value, orders.c.stock_released_at.is_(None))
                        .order_by(orders.c.updated_at)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                    if failed:
                        query = query.where(orders.c.reservation_id.not_in(failed))
                    order = (await conn.execute(query)).one_or_none()
                    if order is None:
                        return
                    await _release_or_fail(self.catalog, order.reservation_id)
                    await conn.execute(
                        update(orders).where(orders.c.id == order.id).values(stock_released_at=func.now())
                    )
            except _CatalogFailed as failure:
                failed.append(failure.reservation_id)
                result.failures += 1
                continue
            result.cancels_released += 1


def _key_reused(field: list[str]) -> DomainError:
    return DomainError(
        Code.IDEMPOTENCY_KEY_REUSED,
        "This idempotency key was used for another checkout; use a new key for a new order.",
        field,
    )


class _CatalogFailed(Exception):
    """A release the sweeper could not get done now (its transaction rolls back; the next pass retries)."""

    def __init__(self, reservation_id: uuid.UUID) -> None:
        super().__init__(str(reservation_id))
        self.reservation_id = reservation_id


async def _release_or_fail(catalog: ServiceClient, reservation_id: uuid.UUID) -> None:
    try:
        await clients.release_stock(catalog, reservation_id)
    except Exception as exc:
        log.warning("sweeper: could not release reservation %s: %s", reservation_id, exc)
        raise _CatalogFailed(reservation_id) from exc


async def _order_status(conn: AsyncConnection, reservation_id: uuid.UUID) -> str | None:
    """The status of the order holding this reservation (the one of its shopper and key), if any."""
    status: str | None = (
        await conn.execute(select(orders.c.status).where(orders.c.reservation_id == reservation_id))
    ).scalar_one_or_none()
    return status


async def transition(
    conn: AsyncConnection, order: Row[Any], to: Status, actor: uuid.UUID | None, *, reason: str | None = None
) -> Row[Any]:
    """Move the locked ``order`` to ``to``: the row, its history and its event, in the caller's transaction."""
    values: dict[str, Any] = {"status": to.value, "updated_at": func.now()}
    if reason is not None:
        values["cancel_reason"] = reason
    updated: Row[Any] = (
        await conn.execute(update(orders).where(orders.c.id == order.id).values(**values).returning(orders))
    ).one()
    await conn.execute(
        insert(order_status_changes).values(
            order_id=order.id, from_status=order.status, to_status=to.value, changed_by=actor
        )
    )
    await record_order_event(conn, f"order.{to.value.lower()}", updated, **({"reason": reason} if reason else {}))
    return updated


async def record_order_event(conn: AsyncConnection, event_type: str, order: Row[Any], **extra: Any) -> None:
    """An ``order.*`` event in the orders outbox; call it last in the transaction (``record_order_events``)."""
    await record_order_events(conn, event_type, [(order, extra)])


async def record_order_events(
    conn: AsyncConnection, event_type: str, orders_and_extras: Sequence[tuple[Row[Any], dict[str, Any]]]
) -> None:
    """An ``order.*`` event per order (with its ``extra`` keys) in the orders outbox, in three statements
    however many orders; call it last in the transaction.

    The payload is the contract other services rely on (payments, notifications):
    ``order_id``, ``number``, ``user_id``, ``status``, ``currency``, ``subtotal_minor``, ``shipping_minor``,
    ``total_minor``, ``lines`` [{``name``, ``sku``, ``quantity``, ``unit_price_minor``}],
    plus ``reason`` on ``order.cancelled`` and ``amount_minor`` on ``order.refunded``, ``guest_email``
    on a guest's order until an account claims it;
    and the older camelCase keys (``orderId``, ``userId``, ``total``, ``items``) the
    subscriptions read.
    """
    if not orders_and_extras:
        return
    lines: dict[uuid.UUID, list[Any]] = {order.id: [] for order, _ in orders_and_extras}
    found = (
        await conn.execute(
            select(
                order_items.c.order_id,
                order_items.c.product_id,
                order_items.c.sku,
                order_items.c.name,
                order_items.c.quantity,
                order_items.c.unit_price_minor,
                order_items.c.variant_id,
            )
            .where(order_items.c.order_id.in_(list(lines)))
            .order_by(order_items.c.order_id, order_items.c.position)
        )
    ).all()
    for line in found:
        lines[line.order_id].append(line)
    events = [
        (event_type, order.id, _order_event_payload(event_type, order, lines[order.id], extra))
        for order, extra in orders_and_extras
    ]
    await record_events(conn, outbox, events)


def _order_event_payload(
    event_type: str, order: Row[Any], items: Sequence[Any], extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": event_type,
        "order_id": str(order.id),
        "orderId": str(order.id),
        "number": order_number(order.number),
        "user_id": str(order.user_id),
        "userId": str(order.user_id),
        "status": order.status,
        "currency": order.currency,
        "subtotal_minor": order.subtotal_minor,
        "shipping_minor": order.shipping_minor,
        "total_minor": order.total_minor,
        "total": {"amount": str(to_decimal(order.total_minor, order.currency)), "currencyCode": order.currency},
        "lines": [
            {"name": i.name, "sku": i.sku, "quantity": i.quantity, "unit_price_minor": i.unit_price_minor}
            for i in items
        ],
        "items": [
            {
                "productId": str(i.product_id),
                "variantId": str(i.variant_id),
                "sku": i.sku,
                "name": i.name,
                "quantity": i.quantity,
                "unitPrice": str(to_decimal(i.unit_price_minor, order.currency)),
            }
            for i in items
        ],
        "occurredAt": datetime.now(UTC).isoformat(),
        # A guest's order (not claimed yet): notifications mails this address.
        **({"guest_email": order.guest_email} if order.guest_email and order.claimed_at is None else {}),
        **extra,
    }
