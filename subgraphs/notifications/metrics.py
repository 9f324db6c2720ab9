"""Prometheus metrics of the notifications worker (``shopgraph notify --metrics-port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MAILS_SENT = Counter("shopgraph_mails_sent", "Messages the SMTP server accepted, by template.", ["template"])
MAIL_FAILURES = Counter(
    "shopgraph_mail_failures",
    "Failed send attempts (retried later unless dead-lettered), by template and kind (transient, permanent).",
    ["template", "kind"],
)
MAILS_DEAD = Counter(
    "shopgraph_mails_dead_lettered", "Messages given up on (see notifications.dead_letters), by template.", ["template"]
)
MAILS_NOT_SENT = Counter(
    "shopgraph_mails_not_sent",
    "Messages deliberately not sent, by template and reason (preference off, no such account).",
    ["template", "reason"],
)
DELIVERY_LAG = Histogram(
    "shopgraph_mail_delivery_lag_seconds",
    "From the event's outbox insert to the SMTP server's acceptance of its message, by template.",
    ["template"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0),
)
EVENTS_READ = Counter(
    "shopgraph_notify_events",
    "Events taken in from a stream, by stream and outcome (planned, ignored, stale, bad).",
    ["stream", "outcome"],
)
STREAM_GAPS = Counter(
    "shopgraph_notify_stream_gaps",
    "Events a stream lost before the worker read them (Redis restarted empty or trimmed), by stream.",
    ["stream"],
)
EVENTS_RECOVERED = Counter(
    "shopgraph_notify_events_recovered",
    "Events a stream lost that the worker recovered from their producer (orders' outbox), by stream.",
    ["stream"],
)
PENDING = Gauge("shopgraph_mails_pending", "Messages waiting to be sent (due now or retrying), as of the last pass.")
