"""A local HTTP server answering the documented Stripe API shapes for the calls the shop makes.

PaymentIntents (create, retrieve, capture, cancel), Refunds (create) and
PaymentMethods (retrieve), form-encoded as the official library sends them,
with ``Idempotency-Key`` honoured like Stripe does (the same key returns the
first response). ``confirm(intent, card)`` plays the shopper's part in Stripe's
element: the intent becomes ``requires_capture`` (or fails for the decline card).
Every request is kept in ``calls`` for the tests to count.

For browsers it also plays Stripe.js (issue 16): ``GET /v3`` is a stand-in for
``https://js.stripe.com/v3`` (``Stripe(pk).elements({clientSecret}).create('payment')``
mounts a card frame served from this origin, ``confirmPayment`` has that frame post the card
to ``POST /v1/payment_intents/{id}/confirm`` here, then sends the browser to ``return_url``),
and with ``webhook_url`` set it posts the resulting event to the shop, signed with the
library's own scheme, as Stripe does. Card numbers reach this server only (``cards_seen``).
"""

from __future__ import annotations

import itertools
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

DECLINE = "4000000000000002"
THREE_D_SECURE = "4000002760003184"


@dataclass
class FakeStripe:
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, idempotency key)
    publishable_key: str = "pk_test_local_only"
    webhook_url: str | None = None  # where confirmations are posted as Stripe events (the shop's endpoint)
    webhook_secret: str = ""
    cards_seen: list[str] = field(default_factory=list)  # card numbers the element frame sent here
    webhooks_sent: list[tuple[str, int]] = field(default_factory=list)  # (event type, the shop's status)
    # Held events wait for ``POST /_test/release`` (a late webhook, on a test's cue).
    hold_webhooks: bool = False
    _held: list[dict[str, Any]] = field(default_factory=list)
    _by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/payment_intents", self._create_intent, methods=["POST"]),
                Route("/v1/payment_intents/{id}", self._retrieve_intent, methods=["GET"]),
                Route("/v1/payment_intents/{id}/capture", self._capture, methods=["POST"]),
                Route("/v1/payment_intents/{id}/cancel", self._cancel, methods=["POST"]),
                Route("/v1/refunds", self._create_refund, methods=["POST"]),
                Route("/v1/payment_methods/{id}", self._payment_method, methods=["GET"]),
                Route("/v1/payment_intents/{id}/confirm", self._confirm_from_element, methods=["POST"]),
                Route("/v3", self._stripe_js, methods=["GET"]),
                Route("/elements/payment", self._element_frame, methods=["GET"]),
                Route("/_test/release", self._release, methods=["POST"]),
                Route("/3ds/{id}", self._challenge_page, methods=["GET"]),
                Route("/3ds/{id}/answer", self._challenge_answer, methods=["POST"]),
            ]
        )

    def confirm(self, intent_id: str, card: str) -> dict[str, Any]:
        """The shopper confirms with Stripe's element (what Stripe.js would do)."""
        intent = self.intents[intent_id]
        intent["payment_method"] = f"pm_{card[-4:]}"
        if card.replace(" ", "") == THREE_D_SECURE:
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "use_stripe_sdk"}
        elif card.replace(" ", "") == DECLINE:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
            }
        else:
            intent["status"] = "requires_capture"
            intent["amount_capturable"] = intent["amount"]
        return dict(intent)

    def count(self, method: str, path_end: str) -> int:
        return sum(1 for m, p, _ in self.calls if m == method and p.endswith(path_end))

    async def _params(self, request: Request) -> dict[str, str]:
        body = (await request.body()).decode()
        return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    def _replay(self, request: Request) -> tuple[str | None, JSONResponse | None]:
        key = request.headers.get("idempotency-key")
        self.calls.append((request.method, request.url.path, key))
        if key is not None and key in self._by_key:
            return key, JSONResponse(self._by_key[key])
        return key, None

    def _remember(self, key: str | None, body: dict[str, Any]) -> JSONResponse:
        if key is not None:
            self._by_key[key] = dict(body)
        return JSONResponse(body)

    async def _create_intent(self, request: Request) -> JSONResponse:
        key, replay = self._replay(request)
        if replay is not None:
            return replay
        params = await self._params(request)
        intent_id = f"pi_{next(self._ids):06d}{secrets.token_hex(4)}"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "amount_capturable": 0,
            "amount_received": 0,
            "currency": params["currency"],
            "capture_method": params.get("capture_method", "automatic"),
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "status": "requires_payment_method",
            "payment_method": None,
            "last_payment_error": None,
            "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
            "livemode": False,
        }
        self.intents[intent_id] = intent
        return self._remember(key, intent)

    async def _retrieve_intent(self, request: Request) -> JSONResponse:
        self.calls.append((request.method, request.url.path, None))
        intent = self.intents.get(request.path_params["id"])
        if intent is None:
            return _error(404, "resource_missing", "No such payment_intent")
        if "client_secret" in request.query_params:  # Stripe.js, with the publishable key, from a browser
            query = request.query_params
            if not self._client_may(query.get("key", ""), intent, query["client_secret"]):
                return _error(401, "invalid_client_secret", "Invalid client secret", cors=True)
            public = {k: intent[k] for k in ("id", "object", "amount", "currency", "status", "client_secret")}
            return JSONResponse(public, headers=CORS)
        return JSONResponse(intent)

    def _client_may(self, key: str, intent: dict[str, Any], client_secret: str) -> bool:
        """Stripe.js authenticates with the publishable key and the intent's client secret (in the
        query or the form, so a browser sends it without a CORS preflight)."""
        return key == self.publishable_key and client_secret == intent["client_secret"]

    async def _confirm_from_element(self, request: Request) -> Response:
        """What Stripe's element frame sends: the card, with the publishable key and client secret."""
        self.calls.append((request.method, request.url.path, None))
        intent = self.intents.get(request.path_params["id"])
        params = await self._params(request)
        if intent is None or not self._client_may(params.get("key", ""), intent, params.get("client_secret", "")):
            return _error(401, "invalid_client_secret", "Invalid client secret")
        if intent["status"] != "requires_payment_method":
            return _error(400, "payment_intent_unexpected_state", f"This PaymentIntent is {intent['status']}")
        card = params.get("payment_method_data[card][number]", "").replace(" ", "")
        self.cards_seen.append(card)
        confirmed = self.confirm(intent["id"], card)
        declined = confirmed["status"] == "requires_payment_method"
        kind = {
            "requires_payment_method": "payment_intent.payment_failed",
            "requires_action": "payment_intent.requires_action",
        }.get(confirmed["status"], "payment_intent.amount_capturable_updated")
        task = BackgroundTask(self._deliver, event(kind, confirmed)) if self.webhook_url else None
        if declined:
            body = {"error": {**confirmed["last_payment_error"], "message": "Your card was declined."}}
            return JSONResponse(body, 402, background=task)
        return JSONResponse(confirmed, background=task)

    async def _challenge_page(self, request: Request) -> HTMLResponse:
        """The bank's 3-D Secure page Stripe.js frames (hooks.stripe.com in production)."""
        return HTMLResponse(CHALLENGE_FRAME)

    async def _challenge_answer(self, request: Request) -> JSONResponse:
        intent = self.intents.get(request.path_params["id"])
        params = await self._params(request)
        if intent is None or params.get("client_secret") != intent["client_secret"]:
            return _error(401, "invalid_client_secret", "Invalid client secret")
        if intent["status"] != "requires_action":
            return _error(400, "payment_intent_unexpected_state", f"This PaymentIntent is {intent['status']}")
        intent.pop("next_action", None)
        if params.get("outcome") == "complete":
            intent["status"] = "requires_capture"
            intent["amount_capturable"] = intent["amount"]
            kind = "payment_intent.amount_capturable_updated"
        else:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {"type": "card_error", "code": "payment_intent_authentication_failure"}
            kind = "payment_intent.payment_failed"
        task = BackgroundTask(self._deliver, event(kind, dict(intent))) if self.webhook_url else None
        return JSONResponse({"id": intent["id"], "status": intent["status"]}, background=task)

    async def _release(self, request: Request) -> JSONResponse:
        held, self._held = self._held, []
        for payload in held:
            await self._deliver(payload, held=False)
        return JSONResponse({"released": len(held)})

    async def _deliver(self, payload: dict[str, Any], *, held: bool | None = None) -> None:
        """Post an event to the shop's webhook endpoint, signed as Stripe signs it."""
        assert self.webhook_url is not None
        if self.hold_webhooks if held is None else held:
            self._held.append(payload)
            return
        body = orjson.dumps(payload).decode()
        header = stripe.WebhookSignature.generate_signature_header(body, self.webhook_secret)
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                self.webhook_url, content=body, headers={"Stripe-Signature": header, "Content-Type": "application/json"}
            )
        self.webhooks_sent.append((payload["type"], answer.status_code))

    async def _stripe_js(self, request: Request) -> Response:
        return Response(STRIPE_JS, media_type="application/javascript")

    async def _element_frame(self, request: Request) -> HTMLResponse:
        return HTMLResponse(ELEMENT_FRAME)

    async def _capture(self, request: Request) -> JSONResponse:
        key, replay = self._replay(request)
        if replay is not None:
            return replay
        intent = self.intents.get(request.path_params["id"])
        if intent is None:
            return _error(404, "resource_missing", "No such payment_intent")
        if intent["status"] != "requires_capture":
            return _error(400, "payment_intent_unexpected_state", f"This PaymentIntent is {intent['status']}")
        params = await self._params(request)
        intent["amount_received"] = int(params.get("amount_to_capture", intent["amount"]))
        intent["amount_capturable"] = 0
        intent["status"] = "succeeded"
        return self._remember(key, intent)

    async def _cancel(self, request: Request) -> JSONResponse:
        key, replay = self._replay(request)
        if replay is not None:
            return replay
        intent = self.intents.get(request.path_params["id"])
        if intent is None:
            return _error(404, "resource_missing", "No such payment_intent")
        if intent["status"] == "succeeded":
            return _error(400, "payment_intent_unexpected_state", "This PaymentIntent is succeeded")
        intent["status"] = "canceled"
        return self._remember(key, intent)

    async def _create_refund(self, request: Request) -> JSONResponse:
        key, replay = self._replay(request)
        if replay is not None:
            return replay
        params = await self._params(request)
        intent = self.intents.get(params.get("payment_intent", ""))
        if intent is None or intent["status"] != "succeeded":
            return _error(400, "charge_not_refundable", "Nothing to refund")
        refunded = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"])
        amount = int(params.get("amount", intent["amount_received"] - refunded))
        if amount > intent["amount_received"] - refunded:
            return _error(400, "amount_too_large", "Refund amount is greater than unrefunded amount")
        refund = {
            "id": f"re_{secrets.token_hex(6)}",
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        return self._remember(key, refund)

    async def _payment_method(self, request: Request) -> JSONResponse:
        self.calls.append((request.method, request.url.path, None))
        pm = request.path_params["id"]
        return JSONResponse(
            {"id": pm, "object": "payment_method", "type": "card", "card": {"brand": "visa", "last4": pm[-4:]}}
        )


def _error(status: int, code: str, message: str, *, cors: bool = False) -> JSONResponse:
    body = {"error": {"type": "invalid_request_error", "code": code, "message": message}}
    return JSONResponse(body, status, headers=CORS if cors else None)


CORS = {"Access-Control-Allow-Origin": "*"}

# The stand-in for Stripe.js: the calls the storefront makes (Stripe(), elements(), create('payment'),
# mount(), destroy(), confirmPayment()), with the card typed into a frame from this origin, as
# Stripe's element does, so the page that embeds it never sees the card.
STRIPE_JS = r"""
(function () {
  var ORIGIN = new URL(document.currentScript.src).origin;
  function succeeded(id, options) {
    var back = new URL(options.confirmParams.return_url);
    back.searchParams.set('payment_intent', id);
    back.searchParams.set('redirect_status', 'succeeded');
    window.location.assign(back.toString());
  }
  // 3-D Secure: the bank's page in a modal frame over the shop's page, as Stripe.js shows it;
  // ``done(intent)`` with the intent's id and status, or ``done(null)`` when the bank said no.
  function challenge(id, secret, done) {
    var frame = document.createElement('iframe');
    frame.title = '3D Secure authentication';
    frame.style.cssText = 'position:fixed;inset:10%;width:80%;height:80%;z-index:1000;background:#fff';
    frame.src = ORIGIN + '/3ds/' + id + '#' + new URLSearchParams({ client_secret: secret }).toString();
    function answer(e) {
      if (e.origin !== ORIGIN || e.source !== frame.contentWindow) return;
      window.removeEventListener('message', answer);
      frame.remove();
      done(e.data.status === 'requires_capture' ? { id: id, status: e.data.status } : null);
    }
    window.addEventListener('message', answer);
    document.body.appendChild(frame);
  }
  var AUTHENTICATION_FAILED = {
    type: 'card_error',
    message: 'We are unable to authenticate your payment method. '
      + 'Please choose a different payment method and try again.',
  };
  window.Stripe = function (publishableKey) {
    return {
      handleNextAction: function (options) {
        var secret = options.clientSecret;
        return new Promise(function (resolve) {
          challenge(secret.split('_secret_')[0], secret, function (intent) {
            resolve(intent ? { paymentIntent: intent } : { error: AUTHENTICATION_FAILED });
          });
        });
      },
      elements: function (options) {
        var secret = options.clientSecret;
        var elements = { frame: null, secret: secret };
        // Stripe.js reads the intent with the publishable key from the browser (connect-src).
        fetch(ORIGIN + '/v1/payment_intents/' + secret.split('_secret_')[0] + '?' +
              new URLSearchParams({ key: publishableKey, client_secret: secret }).toString());
        elements.create = function (kind) {
          return {
            mount: function (node) {
              var frame = document.createElement('iframe');
              frame.title = 'Secure payment input frame';
              frame.style.cssText = 'border:0;width:100%;height:150px';
              frame.src = ORIGIN + '/elements/' + kind + '#' +
                new URLSearchParams({ key: publishableKey, client_secret: secret }).toString();
              node.appendChild(frame);
              elements.frame = frame;
            },
            destroy: function () { if (elements.frame) elements.frame.remove(); elements.frame = null; },
          };
        };
        return elements;
      },
      confirmPayment: function (options) {
        var frame = options.elements.frame;
        return new Promise(function (resolve) {
          function answer(e) {
            if (e.origin !== ORIGIN || !frame || e.source !== frame.contentWindow) return;
            window.removeEventListener('message', answer);
            if (e.data.error) { resolve({ error: e.data.error }); return; }
            if (e.data.status === 'requires_action') {
              challenge(e.data.id, options.elements.secret, function (intent) {
                if (intent) succeeded(intent.id, options); else resolve({ error: AUTHENTICATION_FAILED });
              });
              return;
            }
            succeeded(e.data.id, options);
          }
          window.addEventListener('message', answer);
          frame.contentWindow.postMessage({ type: 'confirm' }, ORIGIN);
        });
      },
    };
  };
})();
"""

CHALLENGE_FRAME = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>3D Secure</title></head>
<body style="font-family:sans-serif;margin:16px">
<h1>Your bank: confirm this payment</h1>
<button id="complete">Complete authentication</button> <button id="fail">Fail authentication</button>
<script>
  var secret = new URLSearchParams(location.hash.slice(1)).get('client_secret');
  var id = location.pathname.split('/')[2];
  function answer(outcome) {
    fetch('/3ds/' + id + '/answer', {
      method: 'POST', body: new URLSearchParams({ client_secret: secret, outcome: outcome }),
    }).then(function (r) { return r.json(); }).then(function (json) {
      window.parent.postMessage({ id: json.id, status: json.status }, '*');
    });
  }
  document.getElementById('complete').onclick = function () { answer('complete'); };
  document.getElementById('fail').onclick = function () { answer('fail'); };
</script>
</body></html>
"""

ELEMENT_FRAME = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Card</title></head>
<body style="font-family:sans-serif;margin:4px">
<label>Card number <input id="number" autocomplete="cc-number" inputmode="numeric"></label><br>
<label>Expiry <input id="expiry" value="12 / 34"></label>
<label>CVC <input id="cvc" value="123"></label>
<script>
  var given = new URLSearchParams(location.hash.slice(1));
  window.addEventListener('message', function (e) {
    if (e.source !== window.parent || !e.data || e.data.type !== 'confirm') return;
    var secret = given.get('client_secret');
    var body = new URLSearchParams({
      key: given.get('key'),
      client_secret: secret,
      'payment_method_data[type]': 'card',
      'payment_method_data[card][number]': document.getElementById('number').value,
    });
    fetch('/v1/payment_intents/' + secret.split('_secret_')[0] + '/confirm', {
      method: 'POST', body: body,
    }).then(function (r) { return r.json(); }).then(function (json) {
      // The answer carries no card data: the intent's id, or the error the element shows.
      e.source.postMessage(json.error ? { error: { type: json.error.type, message: json.error.message } }
                                      : { id: json.id, status: json.status }, e.origin);
    });
  });
</script>
</body></html>
"""


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # run in a thread: no signal handlers
        pass


@contextmanager
def serving(fake: FakeStripe) -> Iterator[str]:
    """Run ``fake`` on a free 127.0.0.1 port in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(fake.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the fake Stripe server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def event(event_type: str, intent: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """A Stripe Event object wrapping ``intent``, as Stripe posts it to a webhook endpoint."""
    return {
        "id": event_id or f"evt_{secrets.token_hex(8)}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1_700_000_000,
        "type": event_type,
        "livemode": False,
        "pending_webhooks": 1,
        "data": {"object": intent},
    }
