"""The one mutation base every subgraph's mutations go through.

permission → perform → domain errors to ``userErrors``, as Saleor's
``BaseMutation`` does it: a resolver states who may call it and what to do,

    return await mutate(info, CartPayload, lambda user_id: ..., allow=signed_in)

and gets the rest the same way everywhere. The permission check raises a
GraphQL error (UNAUTHENTICATED / FORBIDDEN: the caller, not the input, is
wrong); a ``DomainError`` from the service becomes ``payload(userErrors=[…])``
with the payload's other fields empty; anything else is left to the masking
extension (``InvalidArgument``, ``Unavailable`` and bugs get their codes there).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from strawberry.types import Info

from .auth import Identity
from .context import RequestContext
from .domain import DomainError
from .errors import user_error

P = TypeVar("P")
T = TypeVar("T")


def anyone(identity: Identity) -> Identity:
    return identity


def signed_in(identity: Identity) -> uuid.UUID:
    return identity.require_user()


def admin(identity: Identity) -> uuid.UUID:
    return identity.require_admin()


def internal(*services: str) -> Callable[[Identity], str]:
    """Only the named subgraphs (never the router, never a client)."""

    def check(identity: Identity) -> str:
        return identity.require_service(*services)

    return check


async def mutate(
    info: Info[Any, Any],
    payload: Callable[..., P],
    perform: Callable[[T], Awaitable[P]],
    *,
    allow: Callable[[Identity], T],
) -> P:
    """Check ``allow`` on the caller, run ``perform`` with what it returned, map domain errors.

    ``payload`` is the payload type: every payload gives its fields but
    ``userErrors`` a default, so ``payload(user_errors=…)`` is the failed result.
    """
    context: RequestContext = info.context
    granted = allow(context.identity)
    try:
        return await perform(granted)
    except DomainError as error:
        return payload(user_errors=[user_error(error)])
