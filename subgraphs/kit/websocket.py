"""Who is on a WebSocket: graphql-transport-ws with the token in ``connection_init``.

HTTP requests are authenticated by the app's middleware from their headers; a
WebSocket carries its token in the ``connection_init`` payload instead
(``{"Authorization": "Bearer <token>"}``; ``authorization`` and a bare
``token`` are accepted too), falling back to the upgrade request's
``Authorization`` header. The identity then holds for the whole connection:

- a bad token closes the connection with 4401 and the reason (never silently
  anonymous);
- a token's expiry closes the connection with 4401 "Token expired", and so
  does its revocation ("Token revoked": the account was deleted, its role
  changed, its sessions ended; checked every ``REVOCATION_CHECK_SECONDS``), so a
  subscription never outlives the credential that authorised it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

import jwt
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage

from .auth import ROUTER_ONLY_MESSAGE, Identity, InvalidToken, KeysUnavailable, admitted, bearer_token
from .context import RequestContext, Runtime

log = logging.getLogger("shopgraph.websocket")

# Close codes, in graphql-ws' 44xx family: 4401 is its "Unauthorized".
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN = 1013  # RFC 6455: try again later
_MAX_REASON_BYTES = 123  # a close frame's reason must fit in 123 bytes
# How often an open connection's token is checked against its account (one Redis GET).
REVOCATION_CHECK_SECONDS = 5.0


def close_reason(text: str) -> str:
    return text.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")


def connection_token(payload: dict[str, Any], header: str | None) -> str | None:
    """The bearer token of a connection: from connection_init's payload, else the upgrade header."""
    for key in ("Authorization", "authorization"):
        value = payload.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise InvalidToken("Authorization must be 'Bearer <token>'")
            return bearer_token(value)
    token = payload.get("token")
    if token is not None:
        if not isinstance(token, str) or not token.strip():
            raise InvalidToken("token must be a non-empty string")
        return token.strip()
    return bearer_token(header)


def token_expiry(token: str) -> float | None:
    """``exp`` of a token already verified (so its claims can be trusted)."""
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    return float(exp) if isinstance(exp, int | float) else None


class AuthenticatingTransportWS(BaseGraphQLTransportWSHandler[RequestContext, None]):
    """strawberry's graphql-transport-ws handler, authenticating at connection_init."""

    _expiry: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload")
        if self.connection_init_received or self.connection_timed_out or not isinstance(payload, dict | None):
            await super().handle_connection_init(message)  # strawberry refuses these itself
            return
        context = self.context
        runtime: Runtime = context.runtime
        header = context.request.headers.get("authorization") if context.request is not None else None
        try:
            token = connection_token(payload or {}, header)
            if token is not None:
                context.identity = await runtime.identify(token)
                self._expiry = asyncio.create_task(self._watch(runtime, context.identity, token_expiry(token)))
        except InvalidToken as exc:
            await self.websocket.close(CLOSE_UNAUTHORIZED, close_reason(f"Invalid token: {exc}"))
            return
        except KeysUnavailable:
            log.exception("token verification unavailable")
            await self.websocket.close(CLOSE_TRY_AGAIN, "Cannot verify tokens right now.")
            return
        if not admitted(context.identity, router_only=runtime.settings.router_only):
            await self.websocket.close(CLOSE_FORBIDDEN, ROUTER_ONLY_MESSAGE)
            return
        await super().handle_connection_init(message)

    async def _watch(self, runtime: Runtime, identity: Identity, expires_at: float | None) -> None:
        """Close the connection once its token expires or no longer speaks for its account."""
        while True:
            remaining = math.inf if expires_at is None else expires_at - time.time()
            if remaining <= 0:
                log.info("closing a WebSocket: its token expired")
                await self._close("Token expired")
                return
            await asyncio.sleep(min(remaining, REVOCATION_CHECK_SECONDS))
            try:
                await runtime.check_account(identity)
            except InvalidToken:
                log.info("closing a WebSocket: its token was revoked")
                await self._close("Token revoked")
                return
            except KeysUnavailable:
                log.warning("cannot check a WebSocket's account now; trying again", exc_info=True)

    async def _close(self, reason: str) -> None:
        with contextlib.suppress(Exception):  # the peer may be gone already
            await self.websocket.close(CLOSE_UNAUTHORIZED, reason)

    async def shutdown(self) -> None:
        watch = self._expiry
        if watch is not None and watch is not asyncio.current_task():
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        await super().shutdown()
