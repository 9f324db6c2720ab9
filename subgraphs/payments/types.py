"""The payments subgraph's types: its context, Payment and its history, the Order it extends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import strawberry
from sqlalchemy import Row
from strawberry.types import Info

from subgraphs.kit.context import RequestContext
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.money import Money

from .loaders import Loaders
from .service import Payments, PaymentState


@dataclass
class PaymentsContext(RequestContext):
    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.runtime.db)

    @property
    def payments(self) -> Payments:
        return self.runtime.get(Payments)


PaymentsInfo = Info[PaymentsContext, None]

PaymentStatus = strawberry.enum(
    PaymentState,
    name="PaymentStatus",
    description="PENDING → (REQUIRES_ACTION) → AUTHORISED → CAPTURED; or FAILED (declined) / CANCELLED (voided).",
)


@strawberry.type(description="One step of a payment: an attempt, its outcome, a capture, a refund.")
class PaymentHistoryEntry:
    kind: str = strawberry.field(
        description="attempt, requires_action, authorised, failed, captured, cancelled, refund_requested, refunded, …"
    )
    amount: Money | None
    detail: str | None
    at: datetime


@strawberry.federation.type(keys=["id"], description="What an order's shopper pays, and where it stands.")
class Payment:
    id: strawberry.ID
    status: PaymentState
    amount: Money
    captured: Money
    refunded: Money
    provider: str
    provider_reference: str | None = strawberry.field(description="The provider's id for it (a PaymentIntent id).")
    method_summary: str | None = strawberry.field(description='e.g. "Visa •••• 4242", once known.')
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[uuid.UUID]
    currency: strawberry.Private[str]
    secret: strawberry.Private[str | None]
    action_url: strawberry.Private[str | None]

    @strawberry.field(description="For the provider's client-side element (Stripe.js); null once paid.")
    def client_secret(self) -> str | None:
        return self.secret if self.status in (PaymentState.PENDING, PaymentState.REQUIRES_ACTION) else None

    @strawberry.field(description="Where the shopper pays or completes 3-D Secure (the test provider's page).")
    def next_action_url(self) -> str | None:
        return self.action_url if self.status in (PaymentState.PENDING, PaymentState.REQUIRES_ACTION) else None

    @strawberry.field(description="The provider's publishable key, for its element (null: pay at nextActionUrl).")
    def publishable_key(self, info: PaymentsInfo) -> str | None:
        return info.context.payments.provider.publishable_key

    @strawberry.field(
        description="The provider's client-side script the element comes from (Stripe.js); null when "
        "publishableKey is. The storefront's CSP must admit its origin (storefront.script_src)."
    )
    def element_script_url(self, info: PaymentsInfo) -> str | None:
        return info.context.payments.provider.script_url

    @strawberry.field
    async def history(self, info: PaymentsInfo) -> list[PaymentHistoryEntry]:
        rows = await info.context.loaders.history.load(self.pk)
        return [
            PaymentHistoryEntry(
                kind=r.kind,
                amount=Money.of(r.amount_minor, self.currency) if r.amount_minor is not None else None,
                detail=r.detail,
                at=r.at,
            )
            for r in rows
        ]

    @classmethod
    def from_row(cls, row: Row[Any]) -> Payment:
        return cls(
            id=strawberry.ID(str(row.id)),
            status=PaymentState(row.status),
            amount=Money.of(row.amount_minor, row.currency),
            captured=Money.of(row.captured_minor, row.currency),
            refunded=Money.of(row.refunded_minor, row.currency),
            provider=row.provider,
            provider_reference=row.provider_ref,
            method_summary=row.method_summary,
            failure_reason=row.failure_reason,
            created_at=row.created_at,
            updated_at=row.updated_at,
            pk=row.id,
            currency=row.currency,
            secret=row.client_secret,
            action_url=row.next_action_url,
        )

    @classmethod
    async def resolve_reference(cls, info: PaymentsInfo, id: strawberry.ID) -> Payment | None:
        payment_id = parse_uuid(id)
        row = await info.context.loaders.by_id.load(payment_id) if payment_id else None
        return visible(info, row)


def visible(info: PaymentsInfo, row: Row[Any] | None) -> Payment | None:
    """A payment, if the caller may see it: the order's shopper, an admin, or another subgraph."""
    if row is None or not info.context.identity.can_see_user(row.user_id):
        return None
    return Payment.from_row(row)


@strawberry.federation.type(keys=["id"])
class Order:
    id: strawberry.ID

    @strawberry.field(description="The order's payment (null until it exists, or if it is not yours).")
    async def payment(self, info: PaymentsInfo) -> Payment | None:
        order_id = parse_uuid(self.id)
        row = await info.context.loaders.by_order.load(order_id) if order_id else None
        return visible(info, row)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Order:
        return cls(id=id)
