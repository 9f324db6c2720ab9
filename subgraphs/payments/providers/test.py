"""The ``test`` provider: deterministic test cards, a card page and a 3-D Secure page, no network.

It stands in for an external payment service, with books of its own
(``testpay_*`` tables, touched by nothing else) and the well-known Stripe test
cards' meanings:

- 4242 4242 4242 4242 is authorised;
- 4000 0000 0000 0002 is declined;
- 4000 0027 6000 3184 needs a 3-D Secure step, completed (or failed) on
  ``/pay/test/<intent>/3ds``.

The shopper pays at ``/pay/test/<intent>?secret=...`` (the intent's
``next_action_url``): the form posts only to this provider's page, never to the
shop's GraphQL API. The outcome is then sent to the payments service as a
signed webhook (delivered in-process; the same body is accepted at
``POST /webhooks/test``), with an id that makes a repeat a duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from subgraphs.kit.db import Database
from subgraphs.kit.money import to_decimal

from ..models import testpay_intents, testpay_requests
from . import Intent, InvalidWebhook, Outcome, ProviderError, ProviderEvent

log = logging.getLogger("shopgraph.payments.test_provider")

SIGNATURE_HEADER = "testpay-signature"
TOLERANCE_SECONDS = 300

CARD_SUCCEEDS = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_3DS = "4000002760003184"

_OUTCOME_OF_STATUS = {
    "requires_payment": Outcome.PENDING,
    "requires_action": Outcome.REQUIRES_ACTION,
    "authorised": Outcome.AUTHORISED,
    "failed": Outcome.FAILED,
    "captured": Outcome.CAPTURED,
    "canceled": Outcome.CANCELLED,
}


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Testpay-Signature`` header for ``body`` (Stripe's scheme: HMAC-SHA256 of ``t.body``)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def luhn_ok(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


class TestProvider:
    name = "test"
    publishable_key: str | None = None
    script_url: str | None = None

    def __init__(self, db: Database, *, webhook_secret: str, public_base: str, shop_url: str) -> None:
        self.db = db
        self.webhook_secret = webhook_secret
        self.public_base = public_base.rstrip("/")
        self.shop_url = shop_url.rstrip("/")
        # Set by the payments service: where this provider's webhooks go (in-process).
        self.deliver: Callable[[bytes, Headers], Awaitable[None]] | None = None

    # -- the provider's API --------------------------------------------------------------------

    async def create_intent(self, *, amount_minor: int, currency: str, reference: str, idempotency_key: str) -> Intent:
        ref = "tpi_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        async with self.db.transaction() as conn:
            await conn.execute(
                pg_insert(testpay_intents)
                .values(
                    id=ref,
                    secret=secrets.token_urlsafe(18),
                    amount_minor=amount_minor,
                    currency=currency,
                    status="requires_payment",
                    captured_minor=0,
                    refunded_minor=0,
                )
                .on_conflict_do_nothing()
            )
            row = (await conn.execute(select(testpay_intents).where(testpay_intents.c.id == ref))).one()
        client_secret = f"{ref}_secret_{row.secret}"
        return Intent(ref=ref, client_secret=client_secret, next_action_url=self._page(ref, row.secret))

    def _page(self, ref: str, secret: str, step: str = "") -> str:
        return f"{self.public_base}/pay/test/{ref}{step}?{urlencode({'secret': secret})}"

    async def capture(self, ref: str, amount_minor: int, *, idempotency_key: str) -> None:
        async with self.db.transaction() as conn:
            row = await self._locked(conn, ref)
            if row.status == "captured":
                return  # the same capture again: already done
            if row.status != "authorised":
                raise ProviderError(f"intent {ref} is {row.status}: nothing to capture", permanent=True)
            await conn.execute(
                update(testpay_intents)
                .where(testpay_intents.c.id == ref)
                .values(status="captured", captured_minor=min(amount_minor, row.amount_minor))
            )

    async def cancel(self, ref: str, *, idempotency_key: str) -> None:
        async with self.db.transaction() as conn:
            row = await self._locked(conn, ref)
            if row.status == "canceled":
                return
            if row.status == "captured":
                raise ProviderError(f"intent {ref} is captured: refund it instead", permanent=True)
            await conn.execute(update(testpay_intents).where(testpay_intents.c.id == ref).values(status="canceled"))

    async def refund(self, ref: str, amount_minor: int, *, idempotency_key: str) -> str:
        async with self.db.transaction() as conn:
            done = (
                await conn.execute(
                    select(testpay_requests.c.response).where(testpay_requests.c.idempotency_key == idempotency_key)
                )
            ).scalar_one_or_none()
            if done is not None:
                return str(done["refund"])
            row = await self._locked(conn, ref)
            if row.status != "captured" or amount_minor > row.captured_minor - row.refunded_minor:
                raise ProviderError(f"intent {ref}: cannot refund {amount_minor}", permanent=True)
            refund_id = "tpr_" + secrets.token_hex(8)
            await conn.execute(
                update(testpay_intents)
                .where(testpay_intents.c.id == ref)
                .values(refunded_minor=row.refunded_minor + amount_minor)
            )
            await conn.execute(
                insert(testpay_requests).values(idempotency_key=idempotency_key, response={"refund": refund_id})
            )
            return refund_id

    async def look(self, ref: str) -> ProviderEvent:
        async with self.db.read() as conn:
            row = (await conn.execute(select(testpay_intents).where(testpay_intents.c.id == ref))).one_or_none()
        if row is None:
            raise ProviderError(f"no intent {ref}", permanent=True)
        return ProviderEvent(
            id=f"look_{ref}_{row.status}",
            ref=ref,
            outcome=_OUTCOME_OF_STATUS.get(row.status, Outcome.OTHER),
            method_summary=_summary(row.card_brand, row.card_last4),
            reason=row.failure,
        )

    async def parse_webhook(self, body: bytes, headers: Headers) -> ProviderEvent | None:
        header = headers.get(SIGNATURE_HEADER, "")
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        try:
            stamp = int(parts.get("t", ""))
        except ValueError:
            raise InvalidWebhook("no timestamp in the signature header") from None
        expected = sign(body, self.webhook_secret, stamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            raise InvalidWebhook("signature mismatch")
        if abs(time.time() - stamp) > TOLERANCE_SECONDS:
            raise InvalidWebhook("timestamp outside the tolerance")
        try:
            event = orjson.loads(body)
            outcome = Outcome(event["outcome"])
            return ProviderEvent(
                id=str(event["id"]),
                ref=str(event["intent"]),
                outcome=outcome,
                method_summary=event.get("method"),
                reason=event.get("reason"),
            )
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
            raise InvalidWebhook(f"unreadable event: {exc}") from None

    # -- the pages the shopper pays on -------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/pay/test/{ref}", self.card_page, methods=["GET", "POST"]),
            Route("/pay/test/{ref}/3ds", self.challenge_page, methods=["GET", "POST"]),
        ]

    async def _locked(self, conn: Any, ref: str) -> Any:
        row = (
            await conn.execute(select(testpay_intents).where(testpay_intents.c.id == ref).with_for_update())
        ).one_or_none()
        if row is None:
            raise ProviderError(f"no intent {ref}", permanent=True)
        return row

    async def _intent_for(self, request: Request, secret: str) -> Any:
        ref = request.path_params["ref"]
        async with self.db.read() as conn:
            row = (await conn.execute(select(testpay_intents).where(testpay_intents.c.id == ref))).one_or_none()
        if row is None or not hmac.compare_digest(row.secret, secret):
            return None
        return row

    def _return_to(self, value: str | None) -> str:
        """Only back to the shop (no open redirect): a path is the shop's, an absolute URL must be on
        the shop's origin; anything else is the shop's orders page."""
        if value:
            target, shop = urlsplit(value), urlsplit(self.shop_url)
            if not target.scheme and not target.netloc and value.startswith("/") and not value.startswith("//"):
                return self.shop_url + value
            if target.scheme == shop.scheme and target.netloc == shop.netloc:
                return value
        return self.shop_url + "/orders"

    async def card_page(self, request: Request) -> Response:
        form = await _form(request) if request.method == "POST" else None
        source = form if form is not None else request.query_params
        secret = str(source.get("secret") or request.query_params.get("secret") or "")
        return_to = self._return_to(str(source.get("return_to") or "") or None)
        row = await self._intent_for(request, secret)
        if row is None:
            return HTMLResponse(_page("Payment not found", "<p>This payment link is not valid.</p>"), 404)
        if row.status != "requires_payment":
            return HTMLResponse(_done_page(row.status, return_to))
        if form is None:
            return HTMLResponse(_card_form(row, secret, return_to, error=None))
        number = "".join(str(form.get("card_number") or "").split())
        cvc = str(form.get("cvc") or "").strip()
        error = None
        if not number.isascii() or not number.isdigit() or not 12 <= len(number) <= 19 or not luhn_ok(number):
            error = "Your card number is incorrect."
        elif number not in (CARD_SUCCEEDS, CARD_DECLINED, CARD_3DS):
            error = "This is the test provider: use 4242 4242 4242 4242, 4000 0000 0000 0002 or 4000 0027 6000 3184."
        elif not (cvc.isascii() and cvc.isdigit() and 3 <= len(cvc) <= 4):
            error = "Your card's security code is incorrect."
        if error is not None:
            return HTMLResponse(_card_form(row, secret, return_to, error=error), 400)
        brand, last4 = "Visa", number[-4:]
        if number == CARD_3DS:
            await self._settle(row.id, "requires_action", brand, last4, None, Outcome.REQUIRES_ACTION)
            return RedirectResponse(
                f"{self.public_base}/pay/test/{row.id}/3ds?{urlencode({'secret': secret, 'return_to': return_to})}", 303
            )
        if number == CARD_DECLINED:
            await self._settle(row.id, "failed", brand, last4, "card_declined", Outcome.FAILED)
        else:
            await self._settle(row.id, "authorised", brand, last4, None, Outcome.AUTHORISED)
        return RedirectResponse(return_to, 303)

    async def challenge_page(self, request: Request) -> Response:
        form = await _form(request) if request.method == "POST" else None
        source = form if form is not None else request.query_params
        secret = str(source.get("secret") or "")
        return_to = self._return_to(str(source.get("return_to") or "") or None)
        row = await self._intent_for(request, secret)
        if row is None:
            return HTMLResponse(_page("Payment not found", "<p>This payment link is not valid.</p>"), 404)
        if row.status != "requires_action":
            return HTMLResponse(_done_page(row.status, return_to))
        if form is None:
            return HTMLResponse(_challenge_form(row, secret, return_to))
        if form.get("action") == "complete":
            await self._settle(row.id, "authorised", row.card_brand, row.card_last4, None, Outcome.AUTHORISED)
        else:
            await self._settle(
                row.id, "failed", row.card_brand, row.card_last4, "authentication_failed", Outcome.FAILED
            )
        return RedirectResponse(return_to, 303)

    async def _settle(
        self, ref: str, status: str, brand: str | None, last4: str | None, failure: str | None, outcome: Outcome
    ) -> None:
        """Record the outcome in the provider's books, then send the webhook (a lost one is found by
        the reconciler's ``look``)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                update(testpay_intents)
                .where(testpay_intents.c.id == ref)
                .values(status=status, card_brand=brand, card_last4=last4, failure=failure)
            )
        body = orjson.dumps(
            {
                "id": f"evt_{ref}_{status}",
                "intent": ref,
                "outcome": outcome.value,
                "method": _summary(brand, last4),
                "reason": failure,
            }
        )
        if self.deliver is None:
            return
        try:
            await self.deliver(body, Headers({SIGNATURE_HEADER: sign(body, self.webhook_secret)}))
        except Exception:
            log.warning("test provider: webhook for %s not delivered; the reconciler will look", ref, exc_info=True)


MAX_FORM_BYTES = 16 * 1024


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (what the pages post), without python-multipart; oversized ones read as empty."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    except ValueError:
        return {}
    return {name: values[0] for name, values in fields.items()}


def _summary(brand: str | None, last4: str | None) -> str | None:
    return f"{brand} •••• {last4}" if brand and last4 else None


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>body{{font:16px system-ui;max-width:28rem;margin:3rem auto;"
        "padding:0 1rem}}label{{display:block;margin:.8rem 0 .2rem}}input{{font:inherit;padding:.4rem;width:100%;"
        "box-sizing:border-box}}button{{font:inherit;padding:.5rem 1rem;margin:.8rem .5rem 0 0}}"
        ".error{{color:#b00020}}.note{{color:#555;font-size:.9rem}}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _card_form(row: Any, secret: str, return_to: str, *, error: str | None) -> str:
    amount = f"{to_decimal(row.amount_minor, row.currency)} {row.currency}"
    return _page(
        "Pay with the test provider",
        f"<p>Amount: <strong data-testid=amount>{html.escape(amount)}</strong></p>"
        + (f"<p class=error role=alert data-testid=card-error>{html.escape(error)}</p>" if error else "")
        + f'<form method=post action="/pay/test/{html.escape(row.id)}">'
        f'<input type=hidden name=secret value="{html.escape(secret)}">'
        f'<input type=hidden name=return_to value="{html.escape(return_to)}">'
        "<label for=card_number>Card number</label>"
        "<input id=card_number name=card_number inputmode=numeric autocomplete=off required>"
        '<label for=exp>Expiry (MM/YY)</label><input id=exp name=exp value="12/34" autocomplete=off>'
        '<label for=cvc>CVC</label><input id=cvc name=cvc value="123" inputmode=numeric autocomplete=off>'
        "<button type=submit>Pay</button></form>"
        "<p class=note>Test cards: 4242 4242 4242 4242 (succeeds), 4000 0000 0000 0002 (declined), "
        "4000 0027 6000 3184 (3-D Secure).</p>",
    )


def _challenge_form(row: Any, secret: str, return_to: str) -> str:
    return _page(
        "3-D Secure check",
        "<p>Your bank asks you to confirm this payment.</p>"
        f'<form method=post action="/pay/test/{html.escape(row.id)}/3ds">'
        f'<input type=hidden name=secret value="{html.escape(secret)}">'
        f'<input type=hidden name=return_to value="{html.escape(return_to)}">'
        "<button name=action value=complete>Complete authentication</button>"
        "<button name=action value=fail>Fail authentication</button></form>",
    )


def _done_page(status: str, return_to: str) -> str:
    return _page(
        "Payment",
        f"<p>This payment is {html.escape(status.replace('_', ' '))}.</p>"
        f'<p><a href="{html.escape(return_to)}">Back to the shop</a></p>',
    )
