"""Outgoing mail: queued in ``mail_outbox`` with the change that causes it, drained by a mailer.

Writing the message in the same transaction as, say, the reset token means a
message is never sent for a change that rolled back, nor lost for one that
committed. No mail server is part of the shop: a real deployment drains the
table with its provider's client (claim unsent rows ``FOR UPDATE SKIP LOCKED``,
send, set ``sent_at``), which is what the console mailer below does for
``shopgraph dev``, printing each message instead of sending it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import TextIO

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from subgraphs.kit.context import Runtime
from subgraphs.kit.periodic import periodically

from .models import mail_outbox

log = logging.getLogger("shopgraph.users.mail")
CONSOLE_POLL_SECONDS = 1.0


async def queue_mail(conn: AsyncConnection, recipient: str, subject: str, body: str) -> None:
    await conn.execute(insert(mail_outbox).values(recipient=recipient, subject=subject, body=body))


async def print_unsent(runtime: Runtime, out: TextIO) -> int:
    """Print and mark sent the unsent messages; replicas never print one twice."""
    async with runtime.db.transaction() as conn:
        rows = (
            await conn.execute(
                select(mail_outbox)
                .where(mail_outbox.c.sent_at.is_(None))
                .order_by(mail_outbox.c.id)
                .limit(50)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            print(f"\n--- mail to {row.recipient}: {row.subject}\n{row.body}\n---", file=out, flush=True)
        if rows:
            await conn.execute(
                update(mail_outbox).where(mail_outbox.c.id.in_([r.id for r in rows])).values(sent_at=func.now())
            )
    return len(rows)


@contextlib.asynccontextmanager
async def console_mailer(runtime: Runtime) -> AsyncIterator[None]:
    """A ``background`` part of the users app (``SHOPGRAPH_MAIL_CONSOLE``): prints every queued message."""
    async with periodically(
        "users-console-mailer", CONSOLE_POLL_SECONDS, lambda: print_unsent(runtime, sys.stdout), log
    ):
        yield
