"""The notifications worker: order and account events in, mail out.

Two halves, each safe to run in several replicas at once:

- **Intake** (one loop per stream: ``<prefix>orders:events``, ``<prefix>users:events``).
  It reads the relay's stream from the position kept in ``stream_cursors`` and,
  in one transaction with that position's row locked, records the message each
  event causes (``plans.plan``) under its idempotency key and advances the
  position. A crash before the commit reads the same entries again; after it,
  never again: a restart resumes from the last event id with nothing lost and
  nothing recorded twice. A redelivered event (the relay publishes at least
  once) finds its key taken and adds nothing.
- **Sending**. Due messages are leased (``FOR UPDATE SKIP LOCKED``), rendered
  and handed to the SMTP server; accepted → ``sent``; a transient failure
  (server down, 4xx, users unreachable) → retried after ``backoff_seconds *
  2**(attempt-1)``; a permanent one (5xx) or the last attempt → ``dead`` with a
  row in ``dead_letters``, an ERROR log line and ``shopgraph_mails_dead_lettered``.
  A crash between the server's acceptance and ``sent`` sends the message again
  when its lease lapses (at least once): its ``Message-ID`` is the same, derived
  from the idempotency key, so the copy can be recognised.

The worker reads no other schema: recipients and preferences come from users
(``recipients.py``), order data from the events themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import jinja2
import redis.asyncio as aioredis
from opentelemetry import propagate, trace
from opentelemetry.util.types import AnyValue

from subgraphs.kit.config import Settings
from subgraphs.kit.db import connect_args
from subgraphs.kit.errors import ApiError
from subgraphs.kit.migrate import libpq_url, migrate
from subgraphs.kit.periodic import stop_task
from subgraphs.kit.service_client import ServiceClient
from subgraphs.kit.streams import decode_entry

from . import metrics, store
from .config import NotifySettings
from .plans import PASSWORD_RESET, TEMPLATES, BadEvent, Planned, Template, plan
from .recipients import recipient_of
from .render import render
from .replay import PRODUCERS, missing_events
from .smtp import SendFailed, send

log = logging.getLogger("shopgraph.notifications")
tracer = trace.get_tracer("shopgraph.notifications")

SCHEMA = "notifications"
MIGRATIONS = Path(__file__).parent / "migrations"
STREAMS = ("orders", "users")
BATCH = 200


def stream_key(settings: Settings, stream: str) -> str:
    return f"{settings.redis_prefix}{stream}:events"


async def migrate_schema(settings: Settings) -> list[str]:
    return await migrate(settings.database_url_for(SCHEMA), SCHEMA, MIGRATIONS)


@dataclass
class Worker:
    settings: Settings
    notify: NotifySettings = field(default_factory=NotifySettings)
    streams: Sequence[str] = STREAMS
    _pool: asyncpg.Pool | None = None
    _users: ServiceClient | None = None
    _producers: dict[str, ServiceClient] = field(default_factory=dict)  # stream -> its producer (gap recovery)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Worker]:
        """Migrate, then take in and send until the context closes."""
        await migrate_schema(self.settings)
        url = self.settings.database_url_for(SCHEMA)
        self._pool = await asyncpg.create_pool(libpq_url(url), min_size=1, max_size=4, **connect_args(url, SCHEMA))
        self._users = ServiceClient(
            target="users",
            url=self.settings.url_of("users"),
            caller="notifications",
            secret=self.settings.service_secret,
        )
        for stream in self.streams:
            if stream in PRODUCERS:
                producer = PRODUCERS[stream][0]
                self._producers[stream] = ServiceClient(
                    target=producer,
                    url=self.settings.url_of(producer),
                    caller="notifications",
                    secret=self.settings.service_secret,
                )
        tasks = [asyncio.create_task(self._intake(s), name=f"notify-intake-{s}") for s in self.streams]
        tasks.append(asyncio.create_task(self._sender(), name="notify-sender"))
        log.info(
            "notifications: reading %s; sending through %s:%d",
            ", ".join(stream_key(self.settings, s) for s in self.streams),
            self.notify.smtp_host,
            self.notify.smtp_port,
        )
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                await stop_task(task)
            # Bounded: a stuck connection must not hold up a shutdown (a restart is always safe).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._users.close(), 5)
            for client in self._producers.values():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.close(), 5)
            self._producers = {}
            try:
                await asyncio.wait_for(self._pool.close(), 10)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                self._pool.terminate()

    async def run(self) -> None:
        async with self.running():
            await asyncio.Event().wait()

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "the worker is not running"
        return self._pool

    # -- intake ------------------------------------------------------------------------------

    async def _intake(self, stream: str) -> None:
        key = stream_key(self.settings, stream)
        redis: aioredis.Redis | None = None
        cursor: int | None = None
        backoff = 0.05
        try:
            while True:
                try:
                    if cursor is None:
                        async with self.pool.acquire() as conn:
                            cursor = await store.read_cursor(conn, stream)
                    if redis is None:
                        redis = aioredis.from_url(
                            self.settings.redis_url,
                            socket_timeout=self.notify.block_ms / 1000 + 5,
                            socket_connect_timeout=2,
                        )
                    reply: Any = await redis.xread({key: f"{cursor}-0"}, count=BATCH, block=self.notify.block_ms)
                    if reply:
                        cursor = await self.take(stream, reply[0][1])
                        self._wake.set()
                    backoff = 0.05
                except Exception as exc:
                    log.warning("notifications: reading %s failed (%s); retrying in %.2fs", key, exc, backoff)
                    cursor = None  # read it again from PostgreSQL: the failed batch may not have committed
                    if redis is not None:
                        with contextlib.suppress(Exception):
                            await redis.aclose()
                        redis = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
        finally:
            if redis is not None:
                with contextlib.suppress(Exception):
                    await redis.aclose()

    async def take(self, stream: str, entries: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> int:
        """Record the messages of these stream entries and advance the stream's position, at once."""
        async with self.pool.acquire() as conn, conn.transaction():
            cursor, first_start = await store.lock_cursor(conn, stream)
            for entry_id, fields in entries:
                event_id = int(entry_id.split(b"-", 1)[0])
                if event_id <= cursor:
                    continue  # taken already (a replica, or a retry of this batch)
                previous = int(fields.get(b"prev", b"0"))
                if previous > cursor and not (first_start and cursor == 0):
                    await self._recover(conn, stream, cursor, previous)
                await self._take_event(conn, stream, decode_entry(event_id, fields))
                cursor = event_id
            await store.advance_cursor(conn, stream, cursor)
        return cursor

    async def _recover(self, conn: asyncpg.Connection, stream: str, cursor: int, previous: int) -> None:
        """The stream lost ``(cursor, previous]``: take those events from their producer, in this
        transaction. A producer that does not answer fails the batch (rolled back, read again after
        a backoff): the position does not move past events whose mail would then never be sent."""
        client = self._producers.get(stream)
        if client is None:
            metrics.STREAM_GAPS.labels(stream).inc(previous - cursor)
            log.error(
                "notifications: the %s stream lost events %d..%d before they were read "
                "(Redis restarted empty or trimmed): their mail is not sent",
                stream,
                cursor + 1,
                previous,
            )
            return
        recovered = await missing_events(client, stream, cursor, previous)
        for event in recovered:
            await self._take_event(conn, stream, event)
        metrics.STREAM_GAPS.labels(stream).inc(previous - cursor)
        metrics.EVENTS_RECOVERED.labels(stream).inc(len(recovered))
        log.warning(
            "notifications: the %s stream lost events %d..%d before they were read (Redis restarted empty "
            "or trimmed); recovered %d from %s",
            stream,
            cursor + 1,
            previous,
            len(recovered),
            PRODUCERS[stream][0],
        )

    async def _take_event(self, conn: asyncpg.Connection, stream: str, event: Any) -> None:
        try:
            planned = plan(
                stream,
                event,
                self.settings.public_url,
                self.settings.service_secret,
                self.settings.order_lookup_ttl_seconds,
            )
        except BadEvent as exc:
            template = TEMPLATES.get(_template_name(event.event_type), PASSWORD_RESET)
            bad = Planned(f"{stream}:{event.id}:{template.name}", template, None, None, {}, None)
            await store.add_delivery(conn, stream, event, bad, status="dead", error=f"bad event: {exc}")
            metrics.EVENTS_READ.labels(stream, "bad").inc()
            metrics.MAILS_DEAD.labels(template.name).inc()
            log.error(
                "notifications: event %s %d cannot be mailed (%s): dead-lettered", event.event_type, event.id, exc
            )
            return
        if planned is None:
            metrics.EVENTS_READ.labels(stream, "ignored").inc()
            return
        if self._stale(event, planned):
            metrics.EVENTS_READ.labels(stream, "stale").inc()
            log.warning("notifications: event %s %d is too old to mail; skipped", event.event_type, event.id)
            return
        added = await store.add_delivery(conn, stream, event, planned)
        metrics.EVENTS_READ.labels(stream, "planned" if added else "duplicate").inc()

    def _stale(self, event: Any, planned: Planned) -> bool:
        now = datetime.now(UTC)
        if (now - event.created_at).total_seconds() > self.notify.max_event_age_seconds:
            return True
        if planned.template is PASSWORD_RESET:  # a link that no longer works is no use to anyone
            with contextlib.suppress(ValueError, KeyError):
                return datetime.fromisoformat(planned.context["expires_at"]) <= now
        return False

    # -- sending -----------------------------------------------------------------------------

    async def _sender(self) -> None:
        while True:
            self._wake.clear()
            try:
                batch = await store.claim(self.pool, self.notify.concurrency, self.notify.lease_seconds)
                if batch:
                    for result in await asyncio.gather(*(self.deliver(d) for d in batch), return_exceptions=True):
                        if isinstance(result, Exception):
                            log.warning("notifications: recording a send failed (%s); retried later", result)
                    continue
                wait, pending = await store.next_due(self.pool)
                metrics.PENDING.set(pending)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("notifications: PostgreSQL unavailable (%s); retrying", exc)
                wait = 1.0
            timeout = 1.0 if wait is None else min(max(wait, 0.01), 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def deliver(self, delivery: store.Delivery) -> None:
        """One attempt at one message; its outcome recorded on its row."""
        template = TEMPLATES[delivery.template]
        with _send_span(delivery):
            recipient = delivery.recipient
            try:
                if recipient is None:
                    assert self._users is not None and delivery.user_id is not None
                    found = await recipient_of(self._users, delivery.user_id)
                    if found is None:
                        await self._not_sent(delivery, "skipped", "no_account", "the account no longer exists")
                        return
                    if not template.transactional and not found.order_update_emails:
                        await self._not_sent(delivery, "suppressed", "preference_off", "the account opted out")
                        return
                    recipient = found.email
                message = render(
                    delivery.template,
                    delivery.context,
                    sender=self.notify.mail_from,
                    recipient=recipient,
                    message_id=delivery.message_id,
                    headers=_headers(delivery, template),
                )
                await send(self.notify, message)
            except SendFailed as exc:
                await self._failed(delivery, recipient, str(exc), permanent=exc.permanent)
                return
            except ApiError as exc:
                await self._failed(delivery, recipient, f"users: {exc}", permanent=False)
                return
            except (jinja2.TemplateError, ValueError, KeyError, TypeError) as exc:
                await self._failed(delivery, recipient, f"cannot render: {exc!r}", permanent=True)
                return
            except Exception as exc:
                # A bug or an error nobody classified: counted as an attempt like any transient
                # failure (so it ends as a dead letter, not as a message retried for ever).
                log.exception("notifications: unexpected failure sending %s", delivery.idempotency_key)
                await self._failed(delivery, recipient, f"unexpected: {exc!r}", permanent=False)
                return
        await store.mark_sent(self.pool, delivery.id, recipient)
        metrics.MAILS_SENT.labels(delivery.template).inc()
        lag = (datetime.now(UTC) - delivery.event_created_at).total_seconds()
        metrics.DELIVERY_LAG.labels(delivery.template).observe(max(0.0, lag))
        log.info(
            "notifications: sent %s (%s) after %d failed attempt(s), %.2fs after its event",
            delivery.template,
            delivery.idempotency_key,
            delivery.attempts,
            lag,
        )

    async def _not_sent(self, delivery: store.Delivery, status: str, reason: str, detail: str) -> None:
        await store.mark_not_sent(self.pool, delivery.id, status, detail)
        metrics.MAILS_NOT_SENT.labels(delivery.template, reason).inc()
        log.info("notifications: %s not sent (%s): %s", delivery.template, delivery.idempotency_key, detail)

    async def _failed(self, delivery: store.Delivery, recipient: str | None, error: str, *, permanent: bool) -> None:
        attempt = delivery.attempts + 1
        metrics.MAIL_FAILURES.labels(delivery.template, "permanent" if permanent else "transient").inc()
        if permanent or attempt >= self.notify.max_attempts:
            if await store.mark_dead(self.pool, delivery, recipient, error):
                metrics.MAILS_DEAD.labels(delivery.template).inc()
                log.error(
                    "notifications: %s (%s) dead-lettered after %d attempt(s): %s",
                    delivery.template,
                    delivery.idempotency_key,
                    attempt,
                    error,
                )
            return
        delay = self.backoff(attempt)
        await store.mark_retry(self.pool, delivery.id, delay, error)
        log.warning(
            "notifications: %s (%s) attempt %d of %d failed (%s); next in %.2fs",
            delivery.template,
            delivery.idempotency_key,
            attempt,
            self.notify.max_attempts,
            error,
            delay,
        )

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based): doubling, capped, with up to 20% jitter."""
        base: float = min(self.notify.backoff_seconds * 2.0 ** (attempt - 1), self.notify.backoff_max_seconds)
        return base * (1.0 + random.uniform(0.0, 0.2))


def _template_name(event_type: str) -> str:
    from .plans import BY_EVENT

    template: Template | None = BY_EVENT.get(event_type)
    return template.name if template else ""


def _headers(delivery: store.Delivery, template: Template) -> dict[str, str]:
    headers = {"X-Shopgraph-Template": delivery.template, "X-Shopgraph-Idempotency-Key": delivery.idempotency_key}
    if not template.transactional and "account_url" in delivery.context:
        headers["List-Unsubscribe"] = f"<{delivery.context['account_url']}>"
    return headers


@contextlib.contextmanager
def _send_span(delivery: store.Delivery) -> Any:
    """A span per attempt, linked to the trace that wrote the event (the checkout, the reset request)."""
    links = []
    if delivery.traceparent:
        origin = trace.get_current_span(propagate.extract({"traceparent": delivery.traceparent})).get_span_context()
        if origin.is_valid:
            links.append(trace.Link(origin))
    attributes: dict[str, AnyValue] = {
        "shopgraph.mail.template": delivery.template,
        "shopgraph.mail.idempotency_key": delivery.idempotency_key,
        "shopgraph.mail.attempt": delivery.attempts + 1,
        "shopgraph.event.type": delivery.event_type,
    }
    with tracer.start_as_current_span(
        f"send {delivery.template}",
        context=trace.set_span_in_context(trace.INVALID_SPAN),
        kind=trace.SpanKind.PRODUCER,
        links=links,
        attributes=attributes,
    ) as span:
        yield span
