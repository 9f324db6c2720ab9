"""Payment providers behind one interface: ``test`` (dev and tests) and ``stripe``.

A provider holds the money side of a payment: it creates an intent the shopper
pays against (in the provider's own page or element: card data never reaches
this service with a real provider), captures, cancels and refunds it, and
tells this service what happened through webhooks. Every call carries an
idempotency key chosen by the caller, so a call repeated after a crash is the
same call to the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from starlette.datastructures import Headers
from starlette.routing import BaseRoute


class Outcome(Enum):
    """What a provider event (or a look at the intent) says happened."""

    PENDING = "pending"  # waiting for the shopper
    REQUIRES_ACTION = "requires_action"  # 3-D Secure or similar
    AUTHORISED = "authorised"  # the money is held, ready to capture
    FAILED = "failed"  # declined
    CAPTURED = "captured"
    CANCELLED = "cancelled"
    OTHER = "other"  # nothing this service acts on


@dataclass(frozen=True)
class Intent:
    ref: str  # the provider's id for it
    client_secret: str | None
    next_action_url: str | None  # where the shopper pays (the test provider's page), if any


@dataclass(frozen=True)
class ProviderEvent:
    """A provider's notification, verified: its id makes a duplicate recognisable."""

    id: str
    ref: str
    outcome: Outcome
    method_summary: str | None = None
    reason: str | None = None


class ProviderError(Exception):
    """A provider call failed; ``permanent`` when repeating it cannot succeed."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class InvalidWebhook(Exception):
    """A webhook whose signature or body does not check out: refused with 400, nothing changed."""


class Provider(Protocol):
    name: str
    publishable_key: str | None
    script_url: str | None  # the provider's client-side script for its element (Stripe.js)

    async def create_intent(
        self, *, amount_minor: int, currency: str, reference: str, idempotency_key: str
    ) -> Intent: ...

    async def capture(self, ref: str, amount_minor: int, *, idempotency_key: str) -> None: ...

    async def cancel(self, ref: str, *, idempotency_key: str) -> None: ...

    async def refund(self, ref: str, amount_minor: int, *, idempotency_key: str) -> str: ...

    async def look(self, ref: str) -> ProviderEvent:
        """Where the intent is now (for the reconciler), as an event with a synthetic id."""
        ...

    async def parse_webhook(self, body: bytes, headers: Headers) -> ProviderEvent | None:
        """Verify and read a webhook; None for event types this service ignores."""
        ...

    def routes(self) -> list[BaseRoute]:
        """HTTP routes the provider serves on the payments app (the test provider's pages)."""
        ...
