"""The payments subgraph's graph surface: payments by id and through orders, refunds, internal calls."""

from __future__ import annotations

import uuid
from decimal import Decimal

import strawberry

from subgraphs.kit import order_lookup
from subgraphs.kit.auth import ADMIN_ONLY
from subgraphs.kit.domain import DomainError
from subgraphs.kit.domain import ErrorCode as Code
from subgraphs.kit.errors import ApiError, UserError, bad_input
from subgraphs.kit.loaders import parse_uuid
from subgraphs.kit.mutations import admin, internal, mutate
from subgraphs.kit.schema import federated_schema

from .service import OPEN, PaymentState
from .types import Order, Payment, PaymentsInfo, visible


@strawberry.type
class Query:
    @strawberry.field(description="A payment by id: the order's shopper or an administrator.")
    async def payment(self, info: PaymentsInfo, id: strawberry.ID) -> Payment | None:
        info.context.identity.require_user()
        payment_id = parse_uuid(id)
        row = await info.context.loaders.by_id.load(payment_id) if payment_id else None
        return visible(info, row)

    @strawberry.field(
        description="A guest order's payment, by the order's lookup token (guestCheckout), while it waits to be "
        "paid (PENDING or REQUIRES_ACTION); null otherwise or if the token is forged; an error coded TOKEN_EXPIRED "
        "once the token has expired."
    )
    async def guest_payment(self, info: PaymentsInfo, lookup_token: str) -> Payment | None:
        # The token is the guest's credential for this one order (kit/order_lookup.py); once paid,
        # the guest follows the order's status (guestOrder), the payment's details stay private.
        try:
            order_id = order_lookup.verify(info.context.runtime.settings.service_secret, lookup_token)
        except order_lookup.ExpiredToken:
            raise ApiError(order_lookup.EXPIRED_MESSAGE, "TOKEN_EXPIRED") from None
        row = await info.context.loaders.by_order.load(order_id) if order_id else None
        if row is None or row.status not in OPEN:
            return None
        return Payment.from_row(row)

    @strawberry.federation.field(inaccessible=True, description="Internal: the orders reconciler.")
    async def payment_status_of_order(self, info: PaymentsInfo, order_id: strawberry.ID) -> PaymentState | None:
        info.context.identity.require_service("orders")
        order = parse_uuid(order_id)
        if order is None:
            raise bad_input("orderId must be a UUID.")
        row = await info.context.payments.by_order(order)
        return PaymentState(row.status) if row is not None else None


@strawberry.input
class RefundPaymentInput:
    payment_id: strawberry.ID
    amount: Decimal | None = strawberry.field(
        default=None, description="In the payment's currency; left out: everything not refunded yet."
    )


@strawberry.federation.input(inaccessible=True)
class PreparePaymentInput:
    order_id: strawberry.ID
    number: str
    user_id: strawberry.ID
    amount_minor: int
    currency_code: str


@strawberry.type
class PaymentPayload:
    payment: Payment | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        directives=[ADMIN_ONLY], description="Refund a captured payment in full or in part (administrators only)."
    )
    async def refund_payment(self, info: PaymentsInfo, input: RefundPaymentInput) -> PaymentPayload:
        async def perform(_: uuid.UUID) -> PaymentPayload:
            row = await info.context.payments.refund(info.context.identity, parse_uuid(input.payment_id), input.amount)
            info.context.reset_loaders()
            return PaymentPayload(payment=Payment.from_row(row))

        return await mutate(info, PaymentPayload, perform, allow=admin)

    @strawberry.federation.mutation(inaccessible=True, description="Internal: the orders subgraph at checkout.")
    async def prepare_payment(self, info: PaymentsInfo, input: PreparePaymentInput) -> PaymentPayload:
        async def perform(_: str) -> PaymentPayload:
            order_id, user_id = parse_uuid(input.order_id), parse_uuid(input.user_id)
            if order_id is None or user_id is None:
                raise DomainError(Code.INVALID, "orderId and userId must be UUIDs.", ["input"])
            row = await info.context.payments.prepare(
                order_id, input.number, user_id, input.amount_minor, input.currency_code
            )
            return PaymentPayload(payment=Payment.from_row(row))

        return await mutate(info, PaymentPayload, perform, allow=internal("orders"))


schema = federated_schema(query=Query, mutation=Mutation, types=[Order, Payment])
