"""The router's one error model and its mapping to every transport.

A request that cannot be served raises :class:`RouterError`: GraphQL errors
(each with ``extensions.code``), the HTTP status the failure deserves and any
response headers (``Retry-After``, ``Allow``, ``WWW-Authenticate``). Each
transport turns it into its wire form in exactly one place here:
:func:`http_status` (GraphQL-over-HTTP), :func:`ws_message` (graphql-ws) and
:func:`sse_event` / :func:`multipart_part` (streams). Errors that come back from
subgraphs go through :func:`sanitize` before they reach a client.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

Json = dict[str, Any]

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"

# Statuses that describe the request itself rather than the GraphQL document: they
# keep their status whatever the response media type.
_TRANSPORT_STATUSES = frozenset({401, 403, 405, 406, 413, 415, 429})


def error(message: str, code: str, **extensions: Any) -> Json:
    return {"message": message, "extensions": {"code": code, **extensions}}


def unauthorized_error(path: list[str | int]) -> Json:
    """A field the caller may not see (router/authorization.py): null, with this error at its path
    (Apollo Router's message and code)."""
    return {"message": "Unauthorized field or type", "path": path, "extensions": {"code": "UNAUTHORIZED_FIELD_OR_TYPE"}}


class RouterError(Exception):
    """The request fails with ``errors`` (and no data)."""

    def __init__(self, errors: list[Json], status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(errors[0]["message"] if errors else "bad request")
        self.errors = errors
        self.status = status
        self.headers = headers or {}

    @classmethod
    def of(
        cls, message: str, code: str, status: int = 400, headers: dict[str, str] | None = None, **extensions: Any
    ) -> RouterError:
        return cls([error(message, code, **extensions)], status, headers)

    @property
    def code(self) -> str | None:
        ext = self.errors[0].get("extensions") if self.errors else None
        return ext.get("code") if isinstance(ext, dict) else None


def unauthenticated(reason: str) -> RouterError:
    return RouterError.of(reason, "UNAUTHENTICATED", 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def http_status(e: RouterError, media: str) -> int:
    """GraphQL-over-HTTP: with ``application/graphql-response+json`` a request error
    keeps its 4xx; legacy ``application/json`` clients get 200 for errors in the
    GraphQL request itself (parse, validation, variables, cost), a 4xx only for what
    is wrong with the HTTP request (auth, method, size, media type, rate)."""
    if media == GRAPHQL_RESPONSE or e.status >= 500 or e.status in _TRANSPORT_STATUSES:
        return e.status
    if e.status == 400 and e.code in ("BAD_REQUEST", "CSRF_PREVENTION"):
        return 400  # not a GraphQL request at all
    return 200


def body(e: RouterError) -> bytes:
    return orjson.dumps({"errors": e.errors})


# graphql-ws: an operation refused by the pipeline gets an ``error`` message; the
# connection stays open (other operations keep running).
def ws_message(op_id: str, e: RouterError) -> Json:
    return {"id": op_id, "type": "error", "payload": e.errors}


def sse_event(e: RouterError) -> bytes:
    return b"event: next\ndata: " + orjson.dumps({"errors": e.errors}) + b"\n\n"


def multipart_part(e: RouterError) -> bytes:
    return orjson.dumps({"payload": None, "errors": e.errors})


# -- subgraph errors ---------------------------------------------------------------------------

# Network locations a subgraph error could reveal: URLs, IPv4/IPv6 addresses with ports, host:port.
_ADDRESS = re.compile(
    r"[a-z][a-z0-9+.-]*://[^\s'\"]+"  # URLs
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"  # IPv4[:port]
    r"|\[[0-9a-f:]+\](?::\d+)?"  # [IPv6][:port]
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*:\d{2,5}\b",  # host:port
    re.IGNORECASE,
)


def scrub(message: str) -> str:
    """The message without internal network addresses."""
    return _ADDRESS.sub("<internal>", message)


def sanitize(errors: Iterable[Json], allowed: frozenset[str]) -> list[Json]:
    """Errors as clients may see them: addresses scrubbed from messages and only
    allow-listed extensions (no stack traces, exception details, SQL…)."""
    out = []
    for e in errors:
        clean: Json = {"message": scrub(str(e.get("message", "Subgraph error")))}
        for key in ("locations", "path"):
            if key in e:
                clean[key] = e[key]
        ext = e.get("extensions")
        if isinstance(ext, dict):
            kept = {k: v for k, v in ext.items() if k in allowed}
            if kept:
                clean["extensions"] = kept
        out.append(clean)
    return out
