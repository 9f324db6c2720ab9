"""The ``stripe`` provider: PaymentIntents with manual capture, through the official library.

The storefront collects the card with Stripe's own element (the publishable
key and the intent's client secret are all it gets from the shop), so card
data never reaches the shop's servers. Every call carries the caller's
idempotency key; webhooks are verified with the library's ``Stripe-Signature``
check (``stripe.Webhook.construct_event``) against the endpoint's secret.
``api_base`` points the library elsewhere (the tests' local Stripe server).
"""

from __future__ import annotations

import logging
from typing import Any

import stripe as stripe_lib
from starlette.datastructures import Headers
from starlette.routing import BaseRoute

from . import Intent, InvalidWebhook, Outcome, ProviderError, ProviderEvent

log = logging.getLogger("shopgraph.payments.stripe")
STRIPE_JS = "https://js.stripe.com/v3"

_EVENT_OUTCOMES = {
    "payment_intent.amount_capturable_updated": Outcome.AUTHORISED,
    "payment_intent.requires_action": Outcome.REQUIRES_ACTION,
    "payment_intent.payment_failed": Outcome.FAILED,
    "payment_intent.succeeded": Outcome.CAPTURED,
    "payment_intent.canceled": Outcome.CANCELLED,
}
_STATUS_OUTCOMES = {
    "requires_payment_method": Outcome.PENDING,
    "requires_confirmation": Outcome.PENDING,
    "processing": Outcome.PENDING,
    "requires_action": Outcome.REQUIRES_ACTION,
    "requires_capture": Outcome.AUTHORISED,
    "succeeded": Outcome.CAPTURED,
    "canceled": Outcome.CANCELLED,
}


class StripeProvider:
    name = "stripe"

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        publishable_key: str | None,
        api_base: str | None = None,
        script_url: str = STRIPE_JS,
    ) -> None:
        if not secret_key or not webhook_secret:
            raise ValueError("the stripe provider needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET")
        self.publishable_key = publishable_key
        # Stripe requires Stripe.js to be loaded from js.stripe.com (never bundled); tests point it at a
        # stand-in served by their local Stripe server.
        self.script_url = script_url if publishable_key else None
        self.webhook_secret = webhook_secret
        self.client = stripe_lib.StripeClient(
            secret_key,
            http_client=stripe_lib.HTTPXClient(),
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=2,
        )

    async def _call(self, what: str, call: Any) -> Any:
        try:
            return await call
        except stripe_lib.CardError as exc:
            raise ProviderError(f"stripe {what}: {exc.user_message or exc}", permanent=True) from exc
        except stripe_lib.InvalidRequestError as exc:
            raise ProviderError(f"stripe {what}: {exc.user_message or exc}", permanent=True) from exc
        except stripe_lib.StripeError as exc:
            raise ProviderError(f"stripe {what}: {exc}") from exc

    async def create_intent(self, *, amount_minor: int, currency: str, reference: str, idempotency_key: str) -> Intent:
        intent = await self._call(
            "create",
            self.client.v1.payment_intents.create_async(
                params={
                    "amount": amount_minor,
                    "currency": currency.lower(),
                    "capture_method": "manual",
                    "automatic_payment_methods": {"enabled": True},
                    "metadata": {"order": reference},
                },
                options={"idempotency_key": idempotency_key},
            ),
        )
        return Intent(ref=intent.id, client_secret=intent.client_secret, next_action_url=None)

    async def capture(self, ref: str, amount_minor: int, *, idempotency_key: str) -> None:
        await self._call(
            "capture",
            self.client.v1.payment_intents.capture_async(
                ref, params={"amount_to_capture": amount_minor}, options={"idempotency_key": idempotency_key}
            ),
        )

    async def cancel(self, ref: str, *, idempotency_key: str) -> None:
        await self._call(
            "cancel", self.client.v1.payment_intents.cancel_async(ref, options={"idempotency_key": idempotency_key})
        )

    async def refund(self, ref: str, amount_minor: int, *, idempotency_key: str) -> str:
        refund = await self._call(
            "refund",
            self.client.v1.refunds.create_async(
                params={"payment_intent": ref, "amount": amount_minor}, options={"idempotency_key": idempotency_key}
            ),
        )
        return str(refund.id)

    async def look(self, ref: str) -> ProviderEvent:
        intent = _plain(await self._call("retrieve", self.client.v1.payment_intents.retrieve_async(ref)))
        return ProviderEvent(
            id=f"look_{ref}_{intent['status']}",
            ref=ref,
            outcome=_STATUS_OUTCOMES.get(intent["status"], Outcome.OTHER),
            method_summary=await self._method_summary(intent.get("payment_method")),
            reason=_failure(intent),
        )

    async def parse_webhook(self, body: bytes, headers: Headers) -> ProviderEvent | None:
        try:
            event = stripe_lib.Webhook.construct_event(
                body.decode(), headers.get("stripe-signature"), self.webhook_secret
            )
        except (ValueError, UnicodeDecodeError, stripe_lib.SignatureVerificationError) as exc:
            raise InvalidWebhook(str(exc)) from None
        outcome = _EVENT_OUTCOMES.get(event.type)
        if outcome is None:
            return None
        intent = _plain(event.data.object)
        return ProviderEvent(
            id=event.id,
            ref=str(intent["id"]),
            outcome=outcome,
            method_summary=await self._method_summary(intent.get("payment_method"))
            if outcome is Outcome.AUTHORISED
            else None,
            reason=_failure(intent),
        )

    async def _method_summary(self, payment_method: Any) -> str | None:
        if not payment_method:
            return None
        try:
            method = _plain(
                payment_method
                if not isinstance(payment_method, str)
                else await self.client.v1.payment_methods.retrieve_async(payment_method)
            )
            card = method.get("card") or {}
            if card.get("brand") and card.get("last4"):
                return f"{str(card['brand']).title()} •••• {card['last4']}"
        except stripe_lib.StripeError:
            log.warning("stripe: could not read payment method %s", payment_method, exc_info=True)
        return None

    def routes(self) -> list[BaseRoute]:
        return []  # Stripe serves its own pages; the webhook route is the payments app's


def _plain(obj: Any) -> dict[str, Any]:
    """A StripeObject (or a dict already) as plain dicts and lists."""
    plain: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return plain


def _failure(intent: dict[str, Any]) -> str | None:
    error = intent.get("last_payment_error")
    if not error:
        return None
    return str(error.get("decline_code") or error.get("code") or "declined")
