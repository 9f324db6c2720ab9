"""Calls from one subgraph to another, over HTTP/GraphQL with gql.

Subgraphs never read each other's tables; when orders needs the cart or
catalog needs nothing from anyone, it asks through the graph like any client,
with an internal token naming the calling service (and, when it acts for a
shopper, that shopper).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport

from .auth import mint_internal_token
from .errors import ApiError


class ServiceClient:
    """A pooled gql session to one subgraph, opened on first use."""

    def __init__(self, *, target: str, url: str, caller: str, secret: str) -> None:
        self.target = target
        self.caller = caller
        self._secret = secret
        self._client = Client(
            transport=HTTPXAsyncTransport(url=url, timeout=10.0),
            fetch_schema_from_transport=False,
        )
        self._session: AsyncClientSession | None = None
        self._connecting = asyncio.Lock()

    async def execute(
        self,
        document: GraphQLRequest,
        variables: dict[str, Any] | None = None,
        *,
        user_id: uuid.UUID | None = None,
        role: str | None = None,
    ) -> dict[str, Any]:
        token = mint_internal_token(self._secret, self.caller, user_id=user_id, role=role)
        try:
            session = self._session or await self._connect()
            request = GraphQLRequest(document, variable_values=variables)
            result: dict[str, Any] = await session.execute(
                request, extra_args={"headers": {"Authorization": f"Bearer {token}"}}
            )
        except TransportQueryError as exc:
            raise ApiError(f"The {self.target} service refused the call: {exc}", "SERVICE_ERROR") from exc
        except (TransportError, OSError) as exc:
            raise ApiError(f"The {self.target} service is unavailable.", "SERVICE_UNAVAILABLE") from exc
        return result

    async def _connect(self) -> AsyncClientSession:
        async with self._connecting:  # concurrent first calls share one connection pool
            if self._session is None:
                self._session = await self._client.connect_async()  # type: ignore[no-untyped-call]
            return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._client.close_async()  # type: ignore[no-untyped-call]
            self._session = None
