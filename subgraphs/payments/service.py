"""Payment rules: one payment per order, moved only by the provider's word and the order's events.

States: PENDING (waiting for the shopper) → REQUIRES_ACTION (3-D Secure) →
AUTHORISED (money held) → CAPTURED; or FAILED (declined) / CANCELLED (voided).
Refunds add up in ``refunded_minor`` (never above ``captured_minor``).

Exactly once in effect:
- a provider event is applied once per event id (``provider_events``);
- an order event once per stream entry (``kit.consumer``'s position);
- a provider call (capture, cancel, refund) is a ``payment_actions`` row
  written in the transaction that decided it, made with the row's id as the
  idempotency key, and marked done in the transaction that records its
  effect: a crash in between repeats the same call, which the provider answers
  with the same result. At most one capture and one cancel row per payment.
Every change writes its ``payment.*`` event to the outbox in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Row, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import Headers

from subgraphs.kit.auth import Identity
from subgraphs.kit.consumer import StreamEntry
from subgraphs.kit.db import Database
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.metrics import RECONCILER_BACKLOG, RECONCILER_REPAIRS, SAGA_STEPS
from subgraphs.kit.money import to_minor
from subgraphs.kit.outbox import record_event
from subgraphs.kit.telemetry import tracer

from .metrics import PAYMENTS, PROVIDER_CALLS, WEBHOOKS
from .models import outbox, payment_actions, payment_history, payments, provider_events
from .providers import Outcome, Provider, ProviderError, ProviderEvent

log = logging.getLogger("shopgraph.payments")

ACTION_BATCH = 50
RECONCILE_BATCH = 100  # open payments a reconciler pass asks the provider about, at most
MAX_BACKOFF_SECONDS = 30.0


class PaymentState(Enum):
    PENDING = "PENDING"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    AUTHORISED = "AUTHORISED"
    CAPTURED = "CAPTURED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


OPEN = ("PENDING", "REQUIRES_ACTION")


class CaptureMode(Enum):
    IMMEDIATE = "immediate"  # captured as soon as it is authorised
    ON_FULFILMENT = "on_fulfilment"  # captured when the order ships


@dataclass
class ReconcileResult:
    looked: int = 0  # open payments whose provider was asked where they are
    repaired: int = 0  # of those, the ones the provider's answer moved
    intents_created: int = 0  # payments that had no provider intent yet
    actions_overdue: int = 0  # provider calls still pending past the deadline
    left: int = 0  # stuck payments beyond this pass's bound: the next passes take them


class Payments:
    def __init__(self, db: Database, provider: Provider, capture_mode: CaptureMode = CaptureMode.IMMEDIATE) -> None:
        self.db = db
        self.provider = provider
        self.capture_mode = capture_mode
        # Set by the app: wakes the action worker when a call was queued.
        self.kick: Callable[[], None] = lambda: None

    # -- a payment for an order ----------------------------------------------------------------

    async def insert(
        self, conn: AsyncConnection, order_id: uuid.UUID, number: str, user_id: uuid.UUID, amount: int, currency: str
    ) -> None:
        await conn.execute(
            pg_insert(payments)
            .values(
                order_id=order_id,
                order_number=number,
                user_id=user_id,
                provider=self.provider.name,
                status=PaymentState.PENDING.value,
                amount_minor=amount,
                currency=currency,
                order_cancelled=False,
                updated_at=func.now(),
            )
            .on_conflict_do_nothing(index_elements=[payments.c.order_id])
        )

    async def prepare(
        self, order_id: uuid.UUID, number: str, user_id: uuid.UUID, amount: int, currency: str
    ) -> Row[Any]:
        """The order's payment, created (with its provider intent) if it is not yet: idempotent."""
        if amount < 0 or len(currency) != 3:
            raise DomainError(Code.INVALID, "A payment needs a non-negative amount and a currency.", ["input"])
        async with self.db.transaction() as conn:
            await self.insert(conn, order_id, number, user_id, amount, currency)
        return await self.ensure_intent(order_id)

    async def ensure_intent(self, order_id: uuid.UUID) -> Row[Any]:
        """Create the provider's intent once (the same idempotency key on every try)."""
        row = await self.by_order(order_id)
        assert row is not None
        if row.provider_ref is not None or row.status != PaymentState.PENDING.value or row.order_cancelled:
            return row
        with tracer.start_as_current_span("payments.create_intent") as span:
            span.set_attribute("shopgraph.payment_id", str(row.id))
            try:
                intent = await self.provider.create_intent(
                    amount_minor=row.amount_minor,
                    currency=row.currency,
                    reference=str(row.order_id),
                    idempotency_key=f"payment-{row.id}-create",
                )
            except ProviderError:
                PROVIDER_CALLS.labels(self.provider.name, "create", "failed").inc()
                raise
        PROVIDER_CALLS.labels(self.provider.name, "create", "ok").inc()
        async with self.db.transaction() as conn:
            updated = (
                await conn.execute(
                    update(payments)
                    .where(payments.c.id == row.id, payments.c.provider_ref.is_(None))
                    .values(
                        provider_ref=intent.ref,
                        client_secret=intent.client_secret,
                        next_action_url=intent.next_action_url,
                        updated_at=func.now(),
                    )
                    .returning(payments)
                )
            ).one_or_none()
            if updated is not None:
                await _history(conn, row.id, "attempt", row.amount_minor, f"{self.provider.name} {intent.ref}")
                SAGA_STEPS.labels("payments", "intent_created").inc()
                log.info("payment %s for order %s: intent %s", row.id, row.order_number, intent.ref)
        fresh = await self.by_order(order_id)
        assert fresh is not None
        return fresh

    async def by_order(self, order_id: uuid.UUID) -> Row[Any] | None:
        async with self.db.read() as conn:
            row: Row[Any] | None = (
                await conn.execute(select(payments).where(payments.c.order_id == order_id))
            ).one_or_none()
        return row

    # -- the provider's word ---------------------------------------------------------------------

    async def webhook(self, body: bytes, headers: Headers) -> str:
        """A provider webhook (already verified by ``parse_webhook``'s caller): what became of it."""
        event = await self.provider.parse_webhook(body, headers)
        if event is None:
            WEBHOOKS.labels(self.provider.name, "ignored").inc()
            return "ignored"
        result = await self.apply_provider_event(event)
        WEBHOOKS.labels(self.provider.name, result).inc()
        return result

    async def apply_provider_event(self, event: ProviderEvent) -> str:
        """Apply an event once per id: ``applied``, ``duplicate`` or ``unknown`` (no such intent)."""
        with tracer.start_as_current_span("payments.provider_event") as span:
            span.set_attribute("shopgraph.provider_event", event.id)
            span.set_attribute("shopgraph.outcome", event.outcome.value)
            async with self.db.transaction() as conn:
                row = (
                    await conn.execute(select(payments).where(payments.c.provider_ref == event.ref).with_for_update())
                ).one_or_none()
                if row is None:
                    # Not ours, or not recorded yet: refused, so the provider sends it again.
                    log.warning("provider event %s for unknown intent %s", event.id, event.ref)
                    return "unknown"
                first = (
                    await conn.execute(
                        pg_insert(provider_events)
                        .values(provider=self.provider.name, event_id=event.id, received_at=func.now())
                        .on_conflict_do_nothing()
                        .returning(provider_events.c.event_id)
                    )
                ).one_or_none()
                if first is None:
                    log.info("provider event %s already applied", event.id)
                    return "duplicate"
                queued = await self._move(conn, row, event)
        if queued:
            self.kick()
        return "applied"

    async def _move(self, conn: AsyncConnection, row: Row[Any], event: ProviderEvent) -> bool:
        """Apply the outcome to the locked payment row; True if a provider call was queued."""
        state = row.status
        summary = event.method_summary or row.method_summary
        if event.outcome is Outcome.REQUIRES_ACTION and state == "PENDING":
            await self._set(conn, row, status="REQUIRES_ACTION", method_summary=summary)
            await _history(conn, row.id, "requires_action", None, "3-D Secure")
            return False
        if event.outcome in (Outcome.AUTHORISED, Outcome.CAPTURED) and state in OPEN:
            updated = await self._set(conn, row, status="AUTHORISED", method_summary=summary)
            await _history(conn, row.id, "authorised", row.amount_minor, summary)
            await self._event(conn, "payment.authorised", updated)
            PAYMENTS.labels(self.provider.name, "authorised").inc()
            SAGA_STEPS.labels("payments", "payment_authorised").inc()
            log.info("payment %s for order %s authorised (%s)", row.id, row.order_number, summary)
            if row.order_cancelled:
                return await _queue(conn, row.id, "cancel", 0)
            if self.capture_mode is CaptureMode.IMMEDIATE:
                return await _queue(conn, row.id, "capture", row.amount_minor)
            return False
        if event.outcome is Outcome.FAILED and state in OPEN:
            reason = event.reason or "declined"
            updated = await self._set(conn, row, status="FAILED", method_summary=summary, failure_reason=reason)
            await _history(conn, row.id, "failed", row.amount_minor, reason)
            await self._event(conn, "payment.failed", updated, reason=reason)
            PAYMENTS.labels(self.provider.name, "failed").inc()
            SAGA_STEPS.labels("payments", "payment_failed").inc()
            log.info("payment %s for order %s failed: %s", row.id, row.order_number, reason)
            return False
        if event.outcome is Outcome.CANCELLED and state in (*OPEN, "AUTHORISED"):
            updated = await self._set(conn, row, status="CANCELLED")
            await _history(conn, row.id, "cancelled", None, "by the provider")
            await self._event(conn, "payment.cancelled", updated)
            return False
        # Anything else repeats what is known (Stripe's `succeeded` after our own capture) or comes late.
        log.info("payment %s is %s: provider event %s (%s) changes nothing", row.id, state, event.id, event.outcome)
        return False

    async def _set(self, conn: AsyncConnection, row: Row[Any], **values: Any) -> Row[Any]:
        updated: Row[Any] = (
            await conn.execute(
                update(payments)
                .where(payments.c.id == row.id)
                .values(updated_at=func.now(), **values)
                .returning(payments)
            )
        ).one()
        return updated

    async def _event(self, conn: AsyncConnection, event_type: str, row: Row[Any], **extra: Any) -> None:
        await record_event(
            conn,
            outbox,
            event_type,
            row.id,
            {
                "type": event_type,
                "payment_id": str(row.id),
                "order_id": str(row.order_id),
                "number": row.order_number,
                "user_id": str(row.user_id),
                "status": row.status,
                "amount_minor": row.amount_minor,
                "currency": row.currency,
                "captured_minor": row.captured_minor,
                "refunded_minor": row.refunded_minor,
                "method_summary": row.method_summary,
                "occurredAt": datetime.now(UTC).isoformat(),
                **extra,
            },
        )

    # -- the order's events (kit.consumer calls this in its transaction) ----------------------------

    async def on_order_event(self, conn: AsyncConnection, entry: StreamEntry) -> Callable[[], Awaitable[None]] | None:
        payload = entry.payload
        order_id = entry.aggregate_id
        if entry.event_type == "order.created":
            total = payload.get("total_minor")
            if not isinstance(total, int):
                log.error("order.created %s carries no total_minor; ignored", entry.id)
                return None
            await self.insert(
                conn,
                order_id,
                str(payload.get("number", "")),
                uuid.UUID(str(payload["user_id"])),
                total,
                str(payload["currency"]),
            )

            async def create_intent() -> None:
                await self.ensure_intent(order_id)

            return create_intent
        row = (
            await conn.execute(select(payments).where(payments.c.order_id == order_id).with_for_update())
        ).one_or_none()
        if row is None:
            return None
        queued = False
        if entry.event_type == "order.claimed":
            # A guest's order claimed by an account (orders/guest.py): its payment is the account's now.
            owner = uuid.UUID(str(payload["user_id"]))
            await conn.execute(update(payments).where(payments.c.id == row.id).values(user_id=owner))
            return None
        if entry.event_type == "order.cancelled":
            queued = await self._order_cancelled(conn, row)
        elif (
            entry.event_type == "order.shipped"
            and self.capture_mode is CaptureMode.ON_FULFILMENT
            and row.status == "AUTHORISED"
        ):
            queued = await _queue(conn, row.id, "capture", row.amount_minor)
        if not queued:
            return None

        async def wake() -> None:
            self.kick()

        return wake

    async def _order_cancelled(self, conn: AsyncConnection, row: Row[Any]) -> bool:
        """Compensation: a cancelled order's payment is voided if held, refunded if captured."""
        if row.order_cancelled:
            return False
        await conn.execute(update(payments).where(payments.c.id == row.id).values(order_cancelled=True))
        SAGA_STEPS.labels("payments", "order_cancelled_seen").inc()
        if row.status in (*OPEN, "AUTHORISED"):
            # A capture not made yet is not made at all.
            await conn.execute(
                update(payment_actions)
                .where(
                    payment_actions.c.payment_id == row.id,
                    payment_actions.c.kind == "capture",
                    payment_actions.c.status == "pending",
                )
                .values(status="skipped", done_at=func.now())
            )
            return await _queue(conn, row.id, "cancel", 0)
        if row.status == "CAPTURED":
            owed = row.captured_minor - row.refunded_minor - await _pending_refunds(conn, row.id)
            if owed > 0:
                return await _queue(conn, row.id, "refund", owed)
        return False

    # -- refunds by an administrator ------------------------------------------------------------

    async def refund(self, viewer: Identity, payment_id: uuid.UUID | None, amount: Decimal | None) -> Row[Any]:
        """Refund a captured payment in full (``amount`` None) or in part (administrators only)."""
        viewer.require_admin()
        async with self.db.transaction() as conn:
            row = (
                await conn.execute(select(payments).where(payments.c.id == payment_id).with_for_update())
            ).one_or_none()
            if row is None:
                raise DomainError(Code.NOT_FOUND, "No such payment.", ["input", "paymentId"])
            if row.status != "CAPTURED":
                raise DomainError(
                    Code.INVALID_STATUS_TRANSITION,
                    f"A payment that is {row.status} cannot be refunded (only captured payments can).",
                    ["input", "paymentId"],
                )
            refundable = row.captured_minor - row.refunded_minor - await _pending_refunds(conn, row.id)
            try:
                wanted = refundable if amount is None else to_minor(amount, row.currency)
            except ValueError:
                raise DomainError(
                    Code.INVALID, f"Give the amount in {row.currency}, to the cent at most.", ["input", "amount"]
                ) from None
            if wanted <= 0 or wanted > refundable:
                raise DomainError(
                    Code.INVALID,
                    f"Refund between 0 and {refundable} minor units of {row.currency} (what is left to refund).",
                    ["input", "amount"],
                )
            await _queue(conn, row.id, "refund", wanted)
            await _history(conn, row.id, "refund_requested", wanted, f"by {viewer.user_id}")
        log.info("refund of %s %s requested on payment %s by %s", wanted, row.currency, row.id, viewer.user_id)
        await self.run_actions()
        async with self.db.read() as conn:
            fresh: Row[Any] = (await conn.execute(select(payments).where(payments.c.id == row.id))).one()
        return fresh

    # -- provider calls ---------------------------------------------------------------------------

    async def run_actions(self, limit: int = ACTION_BATCH) -> int:
        """Make the provider calls that are due; return how many were settled (done, skipped, failed)."""
        settled = 0
        for _ in range(limit):
            async with self.db.read() as conn:
                due = (
                    await conn.execute(
                        select(payment_actions.c.id, payment_actions.c.payment_id)
                        .where(payment_actions.c.status == "pending", payment_actions.c.next_attempt_at <= func.now())
                        .order_by(payment_actions.c.created_at)
                        .limit(1)
                    )
                ).one_or_none()
            if due is None:
                return settled
            if await self._run_action(due.id, due.payment_id):
                settled += 1
        return settled

    async def _run_action(self, action_id: uuid.UUID, payment_id: uuid.UUID) -> bool:
        async with self.db.transaction() as conn:
            # The payment first, then the action: the order everyone locks in.
            row = (await conn.execute(select(payments).where(payments.c.id == payment_id).with_for_update())).one()
            action = (
                await conn.execute(
                    select(payment_actions).where(payment_actions.c.id == action_id).with_for_update(skip_locked=True)
                )
            ).one_or_none()
            if action is None or action.status != "pending":
                return False
            key = f"action-{action.id}"
            with tracer.start_as_current_span(f"payments.{action.kind}") as span:
                span.set_attribute("shopgraph.payment_id", str(row.id))
                try:
                    await self._perform(conn, row, action, key)
                except ProviderError as exc:
                    if exc.permanent:
                        PROVIDER_CALLS.labels(self.provider.name, action.kind, "failed").inc()
                        log.error("payment %s: %s refused by the provider: %s", row.id, action.kind, exc)
                        await _settle(conn, action.id, "failed", str(exc))
                        await _history(conn, row.id, f"{action.kind}_failed", action.amount_minor, str(exc))
                        return True
                    PROVIDER_CALLS.labels(self.provider.name, action.kind, "retry").inc()
                    delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(action.attempts, 6))
                    log.warning("payment %s: %s failed (%s); again in %.1fs", row.id, action.kind, exc, delay)
                    await conn.execute(
                        update(payment_actions)
                        .where(payment_actions.c.id == action.id)
                        .values(
                            attempts=action.attempts + 1,
                            last_error=str(exc)[:500],
                            next_attempt_at=func.now() + timedelta(seconds=delay),
                        )
                    )
                    return False
            PROVIDER_CALLS.labels(self.provider.name, action.kind, "ok").inc()
            return True

    async def _perform(self, conn: AsyncConnection, row: Row[Any], action: Row[Any], key: str) -> None:
        kind = action.kind
        if kind == "capture":
            if row.status != "AUTHORISED":
                await _settle(conn, action.id, "skipped", f"payment is {row.status}")
                return
            await self.provider.capture(row.provider_ref, action.amount_minor, idempotency_key=key)
            updated = await self._set(conn, row, status="CAPTURED", captured_minor=action.amount_minor)
            await _history(conn, row.id, "captured", action.amount_minor, None)
            await self._event(conn, "payment.captured", updated)
            PAYMENTS.labels(self.provider.name, "captured").inc()
            SAGA_STEPS.labels("payments", "payment_captured").inc()
            log.info("payment %s for order %s captured: %s", row.id, row.order_number, action.amount_minor)
        elif kind == "cancel":
            if row.status == "CAPTURED":
                # Captured before the cancel got here: give the money back instead.
                owed = row.captured_minor - row.refunded_minor - await _pending_refunds(conn, row.id)
                if owed > 0:
                    await _queue(conn, row.id, "refund", owed)
                    self.kick()
                await _settle(conn, action.id, "skipped", "captured: refunded instead")
                return
            if row.status in ("FAILED", "CANCELLED"):
                await _settle(conn, action.id, "skipped", f"payment is {row.status}")
                return
            if row.provider_ref is not None:
                await self.provider.cancel(row.provider_ref, idempotency_key=key)
            updated = await self._set(conn, row, status="CANCELLED")
            await _history(conn, row.id, "cancelled", None, "order cancelled")
            await self._event(conn, "payment.cancelled", updated)
            PAYMENTS.labels(self.provider.name, "cancelled").inc()
            SAGA_STEPS.labels("payments", "payment_voided").inc()
            log.info("payment %s for order %s voided", row.id, row.order_number)
        elif kind == "refund":
            left = row.captured_minor - row.refunded_minor
            amount = min(action.amount_minor, left)
            if row.status != "CAPTURED" or amount <= 0:
                await _settle(conn, action.id, "skipped", "nothing left to refund")
                return
            refund_ref = await self.provider.refund(row.provider_ref, amount, idempotency_key=key)
            updated = await self._set(conn, row, refunded_minor=row.refunded_minor + amount)
            await _history(conn, row.id, "refunded", amount, refund_ref)
            await self._event(
                conn,
                "payment.refunded",
                updated,
                refund_minor=amount,
                full=updated.refunded_minor >= row.captured_minor,
            )
            PAYMENTS.labels(self.provider.name, "refunded").inc()
            SAGA_STEPS.labels("payments", "payment_refunded").inc()
            log.info("payment %s for order %s refunded %s", row.id, row.order_number, amount)
        await _settle(conn, action.id, "done", None)

    # -- the reconciler -----------------------------------------------------------------------------

    async def reconcile(self, *, stale_after: float, limit: int = RECONCILE_BATCH) -> ReconcileResult:
        """Repair what is stuck past ``stale_after`` seconds: open payments (a webhook lost: ask the
        provider), payments without an intent, provider calls not done yet.

        One pass asks the provider about ``limit`` payments at most (each is an API call, and the
        provider rate-limits), those asked longest ago first (``looked_at``), so every stuck payment
        gets its turn; how many are left for later passes is ``left`` and the gauge
        ``shopgraph_reconciler_backlog{subgraph="payments"}``."""
        result = ReconcileResult()
        cutoff = func.now() - timedelta(seconds=stale_after)
        is_stuck = (payments.c.status.in_(OPEN), payments.c.updated_at < cutoff)
        async with self.db.read() as conn:
            stuck = (
                await conn.execute(
                    select(payments.c.id, payments.c.order_id, payments.c.provider_ref, payments.c.status)
                    .where(*is_stuck)
                    .order_by(payments.c.looked_at.asc().nulls_first(), payments.c.updated_at)
                    .limit(limit)
                )
            ).all()
            total = (await conn.execute(select(func.count()).select_from(payments).where(*is_stuck))).scalar_one()
            overdue = (
                await conn.execute(
                    select(func.count())
                    .select_from(payment_actions)
                    .where(payment_actions.c.status == "pending", payment_actions.c.created_at < cutoff)
                )
            ).scalar_one()
        result.left = max(0, int(total) - len(stuck))
        RECONCILER_BACKLOG.labels("payments").set(result.left)
        if result.left:
            log.warning(
                "reconciler: %s open payments stuck past %ss; this pass takes %s, the next passes the rest",
                total,
                stale_after,
                len(stuck),
            )
        if stuck:
            async with self.db.transaction() as conn:
                await conn.execute(
                    update(payments).where(payments.c.id.in_([s.id for s in stuck])).values(looked_at=func.now())
                )
        for _, order_id, ref, status in stuck:
            try:
                if ref is None:
                    await self.ensure_intent(order_id)
                    result.intents_created += 1
                    RECONCILER_REPAIRS.labels("payments", "intent_created").inc()
                    continue
                result.looked += 1
                event = await self.provider.look(ref)
                if event.outcome.value.upper() == status or event.outcome is Outcome.PENDING:
                    continue
                if await self.apply_provider_event(event) == "applied":
                    result.repaired += 1
                    RECONCILER_REPAIRS.labels("payments", f"provider_{event.outcome.value}").inc()
                    log.warning(
                        "reconciler: payment of order %s was %s; the provider says %s",
                        order_id,
                        status,
                        event.outcome.value,
                    )
            except Exception:
                log.warning("reconciler: could not repair the payment of order %s", order_id, exc_info=True)
        if overdue:
            result.actions_overdue = int(overdue)
            RECONCILER_REPAIRS.labels("payments", "action_retried").inc(int(overdue))
            log.warning("reconciler: %s provider calls overdue; retrying them now", overdue)
            await conn_free_retry(self)
        return result


async def conn_free_retry(service: Payments) -> None:
    """Make every pending provider call due now and run them (the reconciler's push)."""
    async with service.db.transaction() as conn:
        await conn.execute(
            update(payment_actions).where(payment_actions.c.status == "pending").values(next_attempt_at=func.now())
        )
    await service.run_actions()


async def _queue(conn: AsyncConnection, payment_id: uuid.UUID, kind: str, amount: int) -> bool:
    """Queue a provider call (a capture or cancel at most once per payment); True if it was new."""
    statement = pg_insert(payment_actions).values(
        payment_id=payment_id, kind=kind, amount_minor=amount, status="pending", attempts=0, next_attempt_at=func.now()
    )
    if kind in ("capture", "cancel"):
        statement = statement.on_conflict_do_nothing(
            index_elements=[payment_actions.c.payment_id, payment_actions.c.kind],
            # Literal, not bound parameters: PostgreSQL infers the partial unique index only from a
            # predicate it can read at planning time (``kind IN ($1, $2)`` matches no index).
            index_where=text("kind IN ('capture', 'cancel')"),
        )
    return (await conn.execute(statement.returning(payment_actions.c.id))).one_or_none() is not None


async def _settle(conn: AsyncConnection, action_id: uuid.UUID, status: str, error: str | None) -> None:
    await conn.execute(
        update(payment_actions)
        .where(payment_actions.c.id == action_id)
        .values(status=status, last_error=error, done_at=func.now())
    )


async def _pending_refunds(conn: AsyncConnection, payment_id: uuid.UUID) -> int:
    pending = (
        await conn.execute(
            select(func.coalesce(func.sum(payment_actions.c.amount_minor), 0)).where(
                payment_actions.c.payment_id == payment_id,
                payment_actions.c.kind == "refund",
                payment_actions.c.status == "pending",
            )
        )
    ).scalar_one()
    return int(pending)


async def _history(
    conn: AsyncConnection, payment_id: uuid.UUID, kind: str, amount: int | None, detail: str | None
) -> None:
    await conn.execute(
        insert(payment_history).values(
            payment_id=payment_id, kind=kind, amount_minor=amount, detail=detail, at=func.now()
        )
    )


async def action_worker(service: Payments, wake: asyncio.Event, poll_seconds: float = 1.0) -> None:
    """Run due provider calls whenever woken, and every ``poll_seconds`` (retries come due)."""
    while True:
        wake.clear()
        try:
            await service.run_actions()
        except Exception:
            log.warning("payment actions: pass failed", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll_seconds)
