"""The payments subgraph's settings, read from the environment once, when its app is built."""

from __future__ import annotations

import os
from dataclasses import dataclass

from subgraphs.kit.config import Settings

from .service import CaptureMode


@dataclass(frozen=True)
class PaymentsSettings:
    provider: str = "test"  # SHOPGRAPH_PAYMENTS_PROVIDER: test | stripe
    capture: CaptureMode = CaptureMode.IMMEDIATE  # SHOPGRAPH_PAYMENTS_CAPTURE: immediate | on_fulfilment
    public_url: str = ""  # SHOPGRAPH_PAYMENTS_PUBLIC_URL: where browsers reach this app (the test pages)
    reconcile_seconds: float = 30.0  # SHOPGRAPH_PAYMENTS_RECONCILE_SECONDS: between reconciler passes
    stale_seconds: float = 120.0  # SHOPGRAPH_PAYMENTS_STALE_SECONDS: an open payment this quiet is looked at
    reconcile_batch: int = 100  # SHOPGRAPH_PAYMENTS_RECONCILE_BATCH: provider look-ups per reconciler pass
    stripe_secret_key: str = ""  # STRIPE_SECRET_KEY
    stripe_webhook_secret: str = ""  # STRIPE_WEBHOOK_SECRET
    stripe_publishable_key: str = ""  # STRIPE_PUBLISHABLE_KEY
    stripe_api_base: str = ""  # STRIPE_API_BASE (tests: a local Stripe-shaped server)
    stripe_js_url: str = "https://js.stripe.com/v3"  # STRIPE_JS_URL (tests: the local server's stand-in)

    @classmethod
    def from_env(cls, settings: Settings) -> PaymentsSettings:
        env = os.environ
        provider = env.get("SHOPGRAPH_PAYMENTS_PROVIDER", "").strip() or "test"
        if provider not in ("test", "stripe"):
            raise ValueError(f"SHOPGRAPH_PAYMENTS_PROVIDER={provider!r}: use test or stripe")
        capture = env.get("SHOPGRAPH_PAYMENTS_CAPTURE", "").strip() or "immediate"
        try:
            mode = CaptureMode(capture)
        except ValueError:
            raise ValueError(f"SHOPGRAPH_PAYMENTS_CAPTURE={capture!r}: use immediate or on_fulfilment") from None
        public = env.get("SHOPGRAPH_PAYMENTS_PUBLIC_URL", "").strip()
        if not public and "payments" in settings.subgraph_urls:
            public = settings.url_of("payments").rsplit("/graphql", 1)[0]
        return cls(
            provider=provider,
            capture=mode,
            public_url=public.rstrip("/"),
            reconcile_seconds=_seconds("SHOPGRAPH_PAYMENTS_RECONCILE_SECONDS", cls.reconcile_seconds),
            stale_seconds=_seconds("SHOPGRAPH_PAYMENTS_STALE_SECONDS", cls.stale_seconds),
            reconcile_batch=batch("SHOPGRAPH_PAYMENTS_RECONCILE_BATCH", cls.reconcile_batch),
            stripe_secret_key=env.get("STRIPE_SECRET_KEY", ""),
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", ""),
            stripe_publishable_key=env.get("STRIPE_PUBLISHABLE_KEY", ""),
            stripe_api_base=env.get("STRIPE_API_BASE", ""),
            stripe_js_url=env.get("STRIPE_JS_URL", "").strip() or cls.stripe_js_url,
        )


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {text!r}") from None
    if not value > 0:
        raise ValueError(f"{name} must be positive, not {text!r}")
    return value


def batch(name: str, default: int) -> int:
    """A positive whole number from the environment (a reconciler's per-pass bound)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {text!r}")
    return int(text)
