"""Account events: the users outbox, relayed to ``<prefix>users:events``.

What the shop must tell an account holder (today: the password reset link) is
an event written in the transaction of the change that causes it; the
notifications worker consumes the stream and sends the mail. Users holds no
mail and no mail server settings.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from subgraphs.kit.config import Settings
from subgraphs.kit.context import Runtime
from subgraphs.kit.periodic import stop_task
from subgraphs.kit.relay import OutboxRelay

PASSWORD_RESET_REQUESTED = "account.password_reset_requested"


def stream_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}users:events"


def relay(settings: Settings) -> OutboxRelay:
    return OutboxRelay(
        database_url=settings.database_url_for("users"),
        schema="users",
        redis_url=settings.redis_url,
        stream=stream_key(settings),
    )


@contextlib.asynccontextmanager
async def account_events(runtime: Runtime) -> AsyncIterator[None]:
    """A ``background`` part of the users app: its outbox relay (unless ``shopgraph relay`` runs it)."""
    settings = runtime.settings
    task = asyncio.create_task(relay(settings).run(), name="users-relay") if settings.outbox_relay else None
    try:
        yield
    finally:
        if task is not None:
            await stop_task(task)
