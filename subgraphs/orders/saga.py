"""The order saga, in one place: price → reserve stock → order → pay, or compensate.

1. ``Orders.checkout`` (service.py) claims the cart, has catalog price and
   reserve the stock, and writes the order ``PENDING_PAYMENT`` with a payment
   deadline (``payment_due_at``) and its ``order.created`` event, in one
   transaction.
2. ``start_payment``: the payments subgraph is asked for the order's payment
   at once (``preparePayment``), so the checkout's answer carries what the
   client pays with (``order.payment { clientSecret nextActionUrl }``).
   Payments also creates it from ``order.created`` on the orders stream: with
   payments down at checkout the order stands and is paid for later.
3. ``Saga.on_payment_event`` reads the payments stream (``kit.consumer``:
   once per entry): ``payment.authorised`` → ``PAID`` (``order.paid``);
   ``payment.failed`` → ``CANCELLED`` (reason ``payment_declined``) and the
   stock released; ``payment.refunded`` → ``order.refunded``.
4. A cancel (shopper, admin, or here) writes ``order.cancelled``; payments
   reads it and voids the authorisation or refunds the capture.
5. ``Saga.reconcile`` (the sweeper's pass): an order still ``PENDING_PAYMENT``
   past its deadline is checked with payments: paid → ``PAID`` (an event was
   lost: repaired, logged, counted); otherwise ``CANCELLED``
   (``payment_abandoned``) and its stock released.

Stock is released after the cancel commits (``stock_released_at`` NULL until
catalog confirms; the sweeper retries), so it is released once, never for a
paid order.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from gql import gql
from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.config import Settings
from subgraphs.kit.consumer import StreamConsumer, StreamEntry, consuming
from subgraphs.kit.context import Runtime
from subgraphs.kit.metrics import RECONCILER_BACKLOG, RECONCILER_REPAIRS, SAGA_STEPS
from subgraphs.kit.service_client import ServiceClient
from subgraphs.kit.telemetry import tracer

from .models import orders, stream_positions

log = logging.getLogger("shopgraph.orders.saga")

PREPARE = gql(
    """
    mutation PreparePayment($input: PreparePaymentInput!) {
      preparePayment(input: $input) { payment { id status } userErrors { code message } }
    }
    """
)
STATUS = gql("query PaymentStatusOfOrder($orderId: ID!) { paymentStatusOfOrder(orderId: $orderId) }")

PAID_PAYMENT_STATES = ("AUTHORISED", "CAPTURED")


async def start_payment(payments: ServiceClient | None, order: Row[Any]) -> None:
    """Ask payments for the order's payment now (best effort: the orders stream gets it there too)."""
    if payments is None or order.status != "PENDING_PAYMENT":
        return
    from .service import order_number

    variables = {
        "input": {
            "orderId": str(order.id),
            "number": order_number(order.number),
            "userId": str(order.user_id),
            "amountMinor": order.total_minor,
            "currencyCode": order.currency,
        }
    }
    with tracer.start_as_current_span("saga.start_payment"):
        try:
            await payments.execute(PREPARE, variables)
            SAGA_STEPS.labels("orders", "payment_started").inc()
        except Exception as exc:
            log.warning(
                "order %s: payments not reached at checkout (%s); the orders stream will get it there", order.id, exc
            )


@dataclass(frozen=True)
class SagaSettings:
    """The orders app's saga settings (``runtime.get(SagaSettings)``)."""

    payment_seconds: float


def orders_service(runtime: Runtime) -> Any:
    """The ``Orders`` service of this process, with payments when the stack has it."""
    from .service import PAYMENT_SECONDS, Orders

    settings = runtime.settings
    payments = runtime.client("payments") if "payments" in settings.subgraph_urls else None
    saga = runtime.parts.get(SagaSettings)
    return Orders(
        runtime.db,
        runtime.client("catalog"),
        runtime.client("cart"),
        payments,
        saga.payment_seconds if saga is not None else PAYMENT_SECONDS,
    )


def payments_stream_key(settings: Settings) -> str:
    """The payments subgraph's stream, read by name only (subgraphs meet through events)."""
    return f"{settings.redis_prefix}payments:events"


def saga_part(payment_seconds: float) -> Callable[[Runtime], AbstractAsyncContextManager[None]]:
    """The orders app's side of the saga: its settings, and its reader of the payments stream."""

    @contextlib.asynccontextmanager
    async def run(runtime: Runtime) -> AsyncIterator[None]:
        runtime.provide(SagaSettings(payment_seconds))
        saga = Saga(lambda: orders_service(runtime))
        consumer = StreamConsumer(
            name="orders",
            db=runtime.db,
            positions=stream_positions,
            redis_url=runtime.settings.redis_url,
            stream=payments_stream_key(runtime.settings),
            handle=saga.on_payment_event,
        )
        async with consuming(consumer):
            yield

    return run


@dataclass(frozen=True)
class ReconcileResult:
    paid: int = 0  # paid at the provider, but the event never arrived
    abandoned: int = 0  # not paid in time: cancelled, stock released
    declined: int = 0  # the payment failed, but the event never arrived
    left: int = 0  # orders past their deadline beyond this pass's bound: the next passes take them


class Saga:
    """``service``: the ``Orders`` service, or a function making it on first use (a stack without
    catalog or cart builds no clients for them until a payment event needs one)."""

    def __init__(self, service: Any) -> None:
        self._service = service

    @property
    def service(self) -> Any:
        if callable(self._service):
            self._service = self._service()
        return self._service

    async def on_payment_event(self, conn: AsyncConnection, entry: StreamEntry) -> Callable[[], Awaitable[None]] | None:
        """Apply a ``payment.*`` event in the consumer's transaction; the stock release runs after it."""
        from .service import Status, record_order_event, transition

        order_id = uuid.UUID(str(entry.payload.get("order_id", "")))
        order = (await conn.execute(select(orders).where(orders.c.id == order_id).with_for_update())).one_or_none()
        if order is None:
            log.warning("%s for unknown order %s ignored", entry.event_type, order_id)
            return None
        pending = order.status == Status.PENDING_PAYMENT.value
        if entry.event_type == "payment.authorised" and pending:
            await transition(conn, order, Status.PAID, None)
            SAGA_STEPS.labels("orders", "order_paid").inc()
            log.info("order %s paid (%s)", order.number, entry.payload.get("method_summary"))
            return None
        if entry.event_type == "payment.failed" and pending:
            cancelled = await transition(conn, order, Status.CANCELLED, None, reason="payment_declined")
            SAGA_STEPS.labels("orders", "order_cancelled_payment_declined").inc()
            log.info("order %s cancelled: payment declined (%s)", order.number, entry.payload.get("reason"))
            return self._release_after(cancelled)
        if entry.event_type == "payment.cancelled" and order.status in (
            Status.PAID.value,
            Status.PENDING_PAYMENT.value,
        ):
            # Voided at the provider while the order still counts on it: an authorisation that lapsed
            # before its capture on fulfilment (Stripe's hold ends after 7 days), or an intent cancelled in
            # the provider's dashboard. No money will come: the order is cancelled and its stock released,
            # rather than shipped unpaid. (Our own void follows the order's cancel: that order is CANCELLED.)
            cancelled = await transition(conn, order, Status.CANCELLED, None, reason="payment_voided")
            SAGA_STEPS.labels("orders", "order_cancelled_payment_voided").inc()
            log.warning(
                "order %s cancelled: its payment was voided at the provider while %s", order.number, order.status
            )
            return self._release_after(cancelled)
        if entry.event_type == "payment.refunded":
            amount = int(entry.payload.get("refund_minor") or 0)
            updated = (
                await conn.execute(
                    update(orders)
                    .where(orders.c.id == order.id)
                    .values(refunded_minor=orders.c.refunded_minor + amount, updated_at=func.now())
                    .returning(orders)
                )
            ).one()
            await record_order_event(
                conn,
                "order.refunded",
                updated,
                amount_minor=amount,
                refunded_minor=updated.refunded_minor,
                full=bool(entry.payload.get("full")),
            )
            SAGA_STEPS.labels("orders", "order_refunded").inc()
            log.info("order %s refunded %s %s", order.number, amount, order.currency)
            return None
        # payment.captured / cancelled, or an outcome for an order that has moved on (payments compensates).
        return None

    def _release_after(self, order: Row[Any]) -> Callable[[], Awaitable[None]]:
        async def release() -> None:
            await self.service.release_cancelled(order.id, order.reservation_id)
            SAGA_STEPS.labels("orders", "stock_released").inc()

        return release

    async def reconcile(self, limit: int = 100) -> ReconcileResult:
        """Orders still waiting for payment past their deadline: paid after all, or given up."""
        from .service import Status, transition

        paid = abandoned = declined = 0
        is_due = (orders.c.status == Status.PENDING_PAYMENT.value, orders.c.payment_due_at < func.now())
        async with self.service.db.read() as conn:
            due = (
                (await conn.execute(select(orders.c.id).where(*is_due).order_by(orders.c.payment_due_at).limit(limit)))
                .scalars()
                .all()
            )
            total = (await conn.execute(select(func.count()).select_from(orders).where(*is_due))).scalar_one()
        # A pass is bounded (each order asks payments once): a burst of abandoned orders is worked
        # off over several passes, and the gauge says how far behind the reconciler is.
        left = max(0, int(total) - len(due))
        RECONCILER_BACKLOG.labels("orders").set(left)
        if left:
            log.warning(
                "reconciler: %s orders unpaid past their deadline; this pass takes %s, the next passes the rest",
                total,
                len(due),
            )
        for order_id in due:
            state = await self._payment_state(order_id)
            async with self.service.db.transaction() as conn:
                order = (
                    await conn.execute(select(orders).where(orders.c.id == order_id).with_for_update(skip_locked=True))
                ).one_or_none()
                if order is None or order.status != Status.PENDING_PAYMENT.value:
                    continue
                if state in PAID_PAYMENT_STATES:
                    await transition(conn, order, Status.PAID, None)
                    paid += 1
                    RECONCILER_REPAIRS.labels("orders", "order_paid").inc()
                    log.warning("reconciler: order %s was paid but still PENDING_PAYMENT: marked PAID", order.number)
                    continue
                reason = "payment_declined" if state == "FAILED" else "payment_abandoned"
                cancelled = await transition(conn, order, Status.CANCELLED, None, reason=reason)
            if reason == "payment_declined":
                declined += 1
            else:
                abandoned += 1
            RECONCILER_REPAIRS.labels("orders", f"order_cancelled_{reason}").inc()
            log.warning("reconciler: order %s unpaid past its deadline (payment %s): cancelled", order.number, state)
            try:
                await self.service.release_cancelled(cancelled.id, cancelled.reservation_id)
            except Exception:
                log.warning("could not release the stock of order %s yet", cancelled.id, exc_info=True)
        return ReconcileResult(paid=paid, abandoned=abandoned, declined=declined, left=left)

    async def _payment_state(self, order_id: uuid.UUID) -> str | None:
        """What payments says (None: no payment, or payments unreachable: the order is given up)."""
        if self.service.payments is None:
            return None
        try:
            data = await self.service.payments.execute(STATUS, {"orderId": str(order_id)})
        except Exception as exc:
            log.warning("reconciler: payments not reached for order %s (%s)", order_id, exc)
            return None
        state = data.get("paymentStatusOfOrder")
        return str(state) if state is not None else None
