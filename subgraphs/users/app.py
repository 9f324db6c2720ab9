"""ASGI app of the users subgraph (also serves the JWKS of its signing keys)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.websockets import WebSocket

from subgraphs.kit.app import create_app as create_subgraph_app
from subgraphs.kit.auth import Identity
from subgraphs.kit.config import Settings
from subgraphs.kit.context import RequestContext, Runtime

from .events import account_events
from .keys import KeyStore
from .schema import UsersContext, schema
from .service import Accounts


def create_app(settings: Settings) -> Starlette:
    keys = KeyStore()

    async def start(runtime: Runtime) -> None:
        await keys.load(runtime.db)
        # Tokens are checked against the account's state: users reads it from its own table.
        runtime.account_lookup = Accounts(runtime, keys).account_state

    def make_context(runtime: Runtime, identity: Identity, request: Request | WebSocket) -> RequestContext:
        return UsersContext(runtime=runtime, identity=identity, request=request, keys=keys)

    async def jwks(request: Request) -> JSONResponse:
        # Public keys only; cacheable, but short enough that rotation propagates.
        return JSONResponse(keys.jwks(), headers={"Cache-Control": "public, max-age=300"})

    return create_subgraph_app(
        name="users",
        schema=schema,
        settings=settings,
        make_context=make_context,
        routes=[Route("/.well-known/jwks.json", jwks)],
        public_key=keys.public_key,
        on_startup=start,
        background=[account_events],
    )
