"""The worker's settings (``NotifySettings.from_env``): the mail server, retries, streams."""

from __future__ import annotations

import os
from dataclasses import dataclass

from subgraphs.kit.config import env_flag


@dataclass(frozen=True)
class NotifySettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "Shopgraph <shop@shopgraph.dev>"
    # Attempts before a message is dead-lettered; the wait after attempt n is
    # backoff_seconds * 2**(n-1) (plus up to 20% jitter), at most backoff_max_seconds.
    max_attempts: int = 8
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    # A sender's claim on a message; after it lapses (the sender died) another sends it.
    lease_seconds: float = 60.0
    concurrency: int = 8
    # Events older than this when first read are not mailed (a week-old shipping
    # notice, say, after the worker was down): counted and logged instead.
    max_event_age_seconds: float = 24 * 3600
    block_ms: int = 2000

    @classmethod
    def from_env(cls, **overrides: object) -> NotifySettings:
        env = os.environ
        values: dict[str, object] = {}
        texts = {"smtp_host": "SHOPGRAPH_SMTP_HOST", "smtp_username": "SHOPGRAPH_SMTP_USERNAME"}
        texts |= {"smtp_password": "SHOPGRAPH_SMTP_PASSWORD", "mail_from": "SHOPGRAPH_MAIL_FROM"}
        for field_name, name in texts.items():
            if env.get(name):
                values[field_name] = env[name]
        numbers: dict[str, tuple[str, type[int] | type[float]]] = {
            "smtp_port": ("SHOPGRAPH_SMTP_PORT", int),
            "max_attempts": ("SHOPGRAPH_NOTIFY_MAX_ATTEMPTS", int),
            "backoff_seconds": ("SHOPGRAPH_NOTIFY_BACKOFF_SECONDS", float),
            "backoff_max_seconds": ("SHOPGRAPH_NOTIFY_BACKOFF_MAX_SECONDS", float),
            "max_event_age_seconds": ("SHOPGRAPH_NOTIFY_MAX_EVENT_AGE_SECONDS", float),
        }
        for field_name, (name, kind) in numbers.items():
            raw = env.get(name, "").strip()
            if not raw:
                continue
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{name} must be a number, not {raw!r}") from None
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {raw!r}")
            values[field_name] = value
        values["smtp_starttls"] = env_flag("SHOPGRAPH_SMTP_STARTTLS", default=False)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
