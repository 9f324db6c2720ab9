"""Process-wide logging: JSON lines for machines, short text lines for people.

``SHOPGRAPH_LOG_FORMAT`` picks ``json`` (the default of ``serve``, ``router`` and
``relay``: one object per line, ready for a log pipeline) or ``text`` (the default
of ``dev`` and the one-shot commands). ``SHOPGRAPH_LOG_LEVEL`` sets the level
(``INFO``). Every JSON line carries the trace and span ids of the current
OpenTelemetry span (when tracing is on) and the request id the router gave the
request (``request_id``, set by ``router.telemetry`` / ``subgraphs.kit.telemetry``),
so a line can be found from a trace and the other way round.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace

FORMATS = ("json", "text")
# LogRecord attributes that are not extra fields of the caller's (uvicorn adds a coloured copy of its message).
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line["trace_id"] = format(context.trace_id, "032x")
            line["span_id"] = format(context.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")


def log_format(default: str) -> str:
    chosen = (os.environ.get("SHOPGRAPH_LOG_FORMAT") or default).strip().lower()
    if chosen not in FORMATS:
        raise ValueError(f"SHOPGRAPH_LOG_FORMAT={chosen!r}: use json or text")
    return chosen


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (a test runner replaces and closes it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure_logging(default_format: str) -> str:
    """Send every logger (ours, uvicorn's, libraries') to stderr in the chosen format; return it."""
    chosen = log_format(default_format)
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((os.environ.get("SHOPGRAPH_LOG_LEVEL") or "INFO").upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # The router's access log (router.telemetry) replaces uvicorn's; httpx logs every request at INFO.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return chosen
