"""GraphQL subscriptions from tests: a real ``gql`` client over graphql-transport-ws.

``async with subscription(url, query, variables, token) as feed:`` runs the
subscription in a background task; ``await feed.wait(n)`` returns once ``n``
results have arrived (or fails with what ended it, or after ``within`` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport


def ws_url(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")


def transport(url: str, token: str | None = None) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=ws_url(url),
        init_payload={"Authorization": f"Bearer {token}"} if token else {},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        connect_timeout=10,
        close_timeout=2,
        ack_timeout=10,
    )


class Feed:
    """What a running subscription received so far."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.finished = False
        self._changed = asyncio.Event()

    def add(self, result: dict[str, Any]) -> None:
        self.results.append(result)
        self._changed.set()

    def end(self, error: BaseException | None) -> None:
        self.finished = True
        self.error = error
        self._changed.set()

    async def wait(self, count: int, within: float = 30.0) -> list[dict[str, Any]]:
        """The first ``count`` results; raises if the subscription ends or stalls before."""
        async with asyncio.timeout(within):
            while len(self.results) < count:
                if self.finished:
                    raise AssertionError(f"subscription ended after {len(self.results)} results: {self.error!r}")
                self._changed.clear()
                await self._changed.wait()
        return self.results[:count]

    async def wait_end(self, within: float = 30.0) -> BaseException | None:
        async with asyncio.timeout(within):
            while not self.finished:
                self._changed.clear()
                await self._changed.wait()
        return self.error


@contextlib.asynccontextmanager
async def subscription(
    url: str, query: str, variables: Mapping[str, Any] | None = None, token: str | None = None
) -> AsyncIterator[Feed]:
    feed = Feed()

    async def run() -> None:
        try:
            request = gql(query)
            request.variable_values = dict(variables or {})
            async with Client(transport=transport(url, token), fetch_schema_from_transport=False) as session:
                async for result in session.subscribe(request):
                    feed.add(result)
        except Exception as exc:
            feed.end(exc)
        else:
            feed.end(None)

    task = asyncio.create_task(run())
    try:
        yield feed
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
