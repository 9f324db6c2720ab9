"""The payments subgraph's moving parts: its outbox relay, its reader of the orders stream, the
provider-call worker and the reconciler (all in ``payments_runtime``, entered by the app)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from subgraphs.kit.config import Settings
from subgraphs.kit.consumer import StreamConsumer, consuming
from subgraphs.kit.context import Runtime
from subgraphs.kit.periodic import in_background, periodically
from subgraphs.kit.relay import OutboxRelay

from .config import PaymentsSettings
from .models import stream_positions
from .providers import Provider
from .providers.test import TestProvider
from .service import Payments, action_worker

log = logging.getLogger("shopgraph.payments.reconciler")


def stream_key(settings: Settings) -> str:
    """Where the payments outbox is relayed (``payment.*`` events)."""
    return f"{settings.redis_prefix}payments:events"


def orders_stream_key(settings: Settings) -> str:
    """The orders subgraph's stream, read by name only (subgraphs meet through events)."""
    return f"{settings.redis_prefix}orders:events"


def relay(settings: Settings) -> OutboxRelay:
    return OutboxRelay(
        database_url=settings.database_url_for("payments"),
        schema="payments",
        redis_url=settings.redis_url,
        stream=stream_key(settings),
    )


def build_provider(runtime: Runtime, config: PaymentsSettings) -> Provider:
    if config.provider == "stripe":
        from .providers.stripe import StripeProvider

        return StripeProvider(
            secret_key=config.stripe_secret_key,
            webhook_secret=config.stripe_webhook_secret,
            publishable_key=config.stripe_publishable_key or None,
            api_base=config.stripe_api_base or None,
            script_url=config.stripe_js_url,
        )
    return TestProvider(
        runtime.db,
        webhook_secret=runtime.settings.service_secret,
        public_base=config.public_url,
        shop_url=runtime.settings.public_url,
    )


def payments_runtime(config: PaymentsSettings) -> Callable[[Runtime], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def run(runtime: Runtime) -> AsyncIterator[None]:
        settings = runtime.settings
        provider = build_provider(runtime, config)
        service = Payments(runtime.db, provider, config.capture)
        wake = asyncio.Event()
        service.kick = wake.set
        if isinstance(provider, TestProvider):

            async def deliver(body: bytes, headers: object) -> None:
                from starlette.datastructures import Headers

                assert isinstance(headers, Headers)
                await service.webhook(body, headers)

            provider.deliver = deliver
        runtime.provide(service)
        consumer = StreamConsumer(
            name="payments",
            db=runtime.db,
            positions=stream_positions,
            redis_url=settings.redis_url,
            stream=orders_stream_key(settings),
            handle=service.on_order_event,
        )

        async def reconcile() -> None:
            result = await service.reconcile(stale_after=config.stale_seconds, limit=config.reconcile_batch)
            if result.repaired or result.intents_created or result.actions_overdue:
                log.warning("payments reconciler: %s", result)

        async with contextlib.AsyncExitStack() as parts:
            if settings.outbox_relay:
                await parts.enter_async_context(in_background("payments-relay", relay(settings).run))
            await parts.enter_async_context(consuming(consumer))
            await parts.enter_async_context(in_background("payments-actions", lambda: action_worker(service, wake)))
            await parts.enter_async_context(
                periodically("payments-reconciler", config.reconcile_seconds, reconcile, log)
            )
            yield

    return run
