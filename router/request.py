"""The one GraphQL request every transport produces, and what it knows of its caller.

HTTP POST bodies, GET query strings, graphql-ws ``subscribe`` payloads, SSE and
multipart requests all become a :class:`GraphQLRequest` through
:func:`from_params`, so they are checked the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from router.errors import RouterError

Json = dict[str, Any]


@dataclass(frozen=True)
class GraphQLRequest:
    query: str | None  # None: a persisted query sent by id/hash only
    operation_name: str | None = None
    variables: Json | None = None
    extensions: Json | None = None
    method: str = "POST"  # GET only serves queries (and subscriptions on a stream)


@dataclass(frozen=True)
class Client:
    """Where a request comes from: its token, address and headers to propagate."""

    token: str | None
    address: str
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased client headers
    session_cookie: str | None = None  # the browser's session cookie (router/session_cookie.py), HTTP POST only


def bad(message: str) -> RouterError:
    return RouterError.of(message, "BAD_REQUEST")


def from_params(params: Any, method: str = "POST") -> GraphQLRequest:
    """A request from decoded JSON params (POST body, WS payload); shape checked."""
    if not isinstance(params, dict):
        raise bad("The request must be a JSON object (batching is not supported).")
    query = params.get("query")
    if query is not None and not isinstance(query, str):
        raise bad("'query' must be a string.")
    name = params.get("operationName")
    if name is not None and not isinstance(name, str):
        raise bad("'operationName' must be a string.")
    variables = params.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise bad("'variables' must be a JSON object.")
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise bad("'extensions' must be a JSON object.")
    if (query is None or not query.strip()) and not (extensions and "persistedQuery" in extensions):
        raise bad("The request has no 'query' string.")
    return GraphQLRequest(query if query and query.strip() else None, name or None, variables, extensions, method)


def from_query_string(qp: Mapping[str, str]) -> GraphQLRequest:
    """A GET request: ``variables`` and ``extensions`` are JSON in the query string."""
    params: Json = {"query": qp.get("query"), "operationName": qp.get("operationName") or None}
    for k in ("variables", "extensions"):
        raw = qp.get(k)
        if raw:
            try:
                params[k] = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise bad(f"The '{k}' parameter is not valid JSON.") from e
    return from_params(params, "GET")
