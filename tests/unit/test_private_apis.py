"""The private parts of libraries we subclass still have the shape our code relies on.

pyproject.toml bounds these libraries from above (uvicorn, strawberry-graphql, graphql-core,
httptools, cross-web); when a bound is raised, this test is the check that says, loudly and by
name, which hook moved, before a connection limit or a WebSocket batch silently stops working.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from router.connection_limits import GuardedHttpToolsProtocol
from router.ws_frames import BatchingWebSocketProtocol
from subgraphs.kit.websocket import AuthenticatingTransportWS

# (our subclass, its private base, the base's methods we override or call, attributes we read)
HOOKS: list[tuple[type, type, list[str], list[str]]] = [
    (
        GuardedHttpToolsProtocol,
        HttpToolsProtocol,
        ["connection_made", "on_headers_complete", "on_response_complete", "connection_lost"],
        ["pipeline", "cycle", "client", "transport", "loop"],
    ),
    (
        BatchingWebSocketProtocol,
        WebSocketsSansIOProtocol,
        ["handle_connect", "send"],
        ["response", "scope", "disconnected", "close_sent", "handshake_complete", "writable", "transport", "conn"],
    ),
    (
        AuthenticatingTransportWS,
        BaseGraphQLTransportWSHandler,
        ["handle_connection_init"],
        ["connection_init_received", "connection_timed_out", "context", "websocket"],
    ),
]


@pytest.mark.parametrize(("ours", "base", "methods", "attributes"), HOOKS, ids=lambda v: getattr(v, "__name__", ""))
def test_overridden_hooks_still_exist_with_their_arity(
    ours: type, base: type, methods: list[str], attributes: list[str]
) -> None:
    assert issubclass(ours, base)
    for name in methods:
        theirs = getattr(base, name, None)
        assert callable(theirs), f"{base.__qualname__}.{name} is gone: {ours.__qualname__} overrides it"
        if name in vars(ours):
            want = len(inspect.signature(theirs).parameters)
            got = len(inspect.signature(vars(ours)[name]).parameters)
            assert got >= want, f"{base.__qualname__}.{name} takes {want} parameters now; ours takes {got}"
    source = inspect.getsource(base)
    for attribute in attributes:
        assert f"self.{attribute}" in source or hasattr(base, attribute), (
            f"{base.__qualname__} no longer sets {attribute!r}, which {ours.__qualname__} reads"
        )


def test_graphql_core_internals_we_import() -> None:
    from graphql.execution.values import get_variable_values
    from graphql.language.block_string import print_block_string
    from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef

    params: Any = inspect.signature(get_variable_values).parameters
    assert list(params)[:3] == ["schema", "var_def_nodes", "inputs"] and "hide_suggestions" in params, list(params)
    assert print_block_string("a") == '"""a"""'
    assert SchemaMetaFieldDef.type is not None and TypeMetaFieldDef.type is not None
