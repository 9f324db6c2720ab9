"""Calls from one subgraph to another, over HTTP/GraphQL with gql.

Subgraphs never read each other's tables; when orders needs the cart or
catalog needs nothing from anyone, it asks through the graph like any client,
with an internal token naming the calling service (and, when it acts for a
shopper, that shopper).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportConnectionFailed, TransportError, TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport

from .auth import mint_internal_token
from .errors import ApiError
from .telemetry import outgoing_call

log = logging.getLogger("shopgraph.service_client")


class ServiceClient:
    """A pooled gql session to one subgraph, opened on first use."""

    def __init__(self, *, target: str, url: str, caller: str, secret: str) -> None:
        self.target = target
        self.caller = caller
        self._secret = secret
        self._client = Client(
            # Idle connections are dropped before the server's keep-alive (uvicorn: 5 s)
            # closes them, so a request rarely lands on a connection being closed.
            transport=HTTPXAsyncTransport(
                url=url, timeout=10.0, limits=httpx.Limits(max_connections=100, keepalive_expiry=2.0)
            ),
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
        token = mint_internal_token(self._secret, self.caller, user_id=user_id, role=role, audience=self.target)
        request = GraphQLRequest(document, variable_values=variables)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            session = self._session or await self._connect()
            with outgoing_call(self.target, headers):  # the callee's request joins this trace
                try:
                    result: dict[str, Any] = await session.execute(request, extra_args={"headers": headers})
                except TransportConnectionFailed:
                    # A pooled connection closed under us: retry once on a fresh one. Every
                    # internal operation is idempotent (reads, or keyed by a reservation /
                    # checkout id), so a repeat cannot apply a change twice.
                    result = await session.execute(request, extra_args={"headers": headers})
        except TransportQueryError as exc:
            # The detail names internal operations: it goes to the log, not to the client.
            log.error("%s -> %s refused a call: %s", self.caller, self.target, exc)
            raise ApiError(f"The {self.target} service could not complete the request.", "SERVICE_ERROR") from exc
        except (TransportError, OSError) as exc:
            log.warning("%s -> %s failed: %s", self.caller, self.target, repr(exc))
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
