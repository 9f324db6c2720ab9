"""``shopgraph dev``'s mail catcher: a real SMTP server (aiosmtpd) that keeps what it receives,
prints each message's subject and links, and shows them at ``/dev/mail`` on the router's port.

Dev only: ``deploy.cli`` mounts the page in front of the router's app when it runs
``dev``; the router itself knows nothing of it, and no production configuration
(``shopgraph router``, compose, Kubernetes) serves it. The tests use the same
sink as a real SMTP server on a free port (``MailSink(port=0)``), and can make it
refuse recipients (``refuse_with``) or stop and start again to play a mail server
that is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, TextIO

from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

MAIL_PATH = "/dev/mail"
_LINK = re.compile(r"https?://[^\s<>\"')]+")


@dataclass(frozen=True)
class CaughtMail:
    id: int
    received_at: datetime
    mail_from: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return str(body.get_content()) if body is not None else ""

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")

    @property
    def links(self) -> list[str]:
        return list(dict.fromkeys(_LINK.findall(self.text)))

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "receivedAt": self.received_at.isoformat(),
            "from": self.mail_from,
            "to": list(self.recipients),
            "subject": self.subject,
            "messageId": str(self.message["Message-ID"] or ""),
            "template": str(self.message["X-Shopgraph-Template"] or ""),
            "links": self.links,
            "text": self.text,
            "html": self.html,
        }


class MailSink:
    """An SMTP server in the running event loop, keeping the last ``limit`` messages."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, echo: TextIO | None = None, limit: int = 500):
        self.host = host
        self.port = port
        self.echo = echo
        self.limit = limit
        self.mails: list[CaughtMail] = []
        # "550 No such mailbox" (permanent) or "451 Try later" (transient): refuse every recipient.
        self.refuse_with: str | None = None
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()

    async def start(self) -> MailSink:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(_Handler(self), hostname="shopgraph-dev-mail", ident="shopgraph dev mail"),
            self.host,
            self.port,
            reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MailSink:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def received(self, envelope: Envelope) -> None:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        mail = CaughtMail(
            next(self._ids), datetime.now(UTC), str(envelope.mail_from), tuple(envelope.rcpt_tos), message
        )
        self.mails.append(mail)
        del self.mails[: -self.limit]
        if self.echo is not None:
            lines = [f"\n--- mail to {', '.join(mail.recipients)}: {mail.subject}"]
            lines += [f"    {link}" for link in mail.links]
            print("\n".join(lines), file=self.echo, flush=True)
        async with self._arrived:
            self._arrived.notify_all()

    async def wait_for(self, match: Callable[[CaughtMail], bool], within: float = 15.0) -> CaughtMail:
        """The first message (already here or arriving within ``within`` seconds) that ``match`` accepts."""
        deadline = time.monotonic() + within
        async with self._arrived:
            while True:
                found = next((m for m in self.mails if match(m)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no such mail arrived")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), left)

    def to(self, address: str) -> list[CaughtMail]:
        return [m for m in self.mails if address in m.recipients]


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.sink.refuse_with:
            return self.sink.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self.sink.received(envelope)
        return "250 Message accepted"


# -- the page ----------------------------------------------------------------------------------------


def mail_pages(sink: MailSink) -> Starlette:
    """``/dev/mail`` (the list), ``/dev/mail/{id}`` (one message), ``/dev/mail.json`` (for scripts)."""

    async def index(request: Request) -> Response:
        rows = "".join(
            f"<tr><td>{m.received_at:%H:%M:%S}</td><td>{html.escape(', '.join(m.recipients))}</td>"
            f'<td><a href="{MAIL_PATH}/{m.id}">{html.escape(m.subject)}</a></td></tr>'
            for m in reversed(sink.mails)
        )
        body = (
            f"<h1>Mail sent by this dev stack</h1><p>SMTP sink on {sink.host}:{sink.port}; "
            f"{len(sink.mails)} message(s), newest first. <a href='{MAIL_PATH}'>Refresh</a></p>"
            f"<table><tr><th>time</th><th>to</th><th>subject</th></tr>{rows}</table>"
        )
        return HTMLResponse(_page("Dev mail", body))

    async def one(request: Request) -> Response:
        mail = next((m for m in sink.mails if str(m.id) == request.path_params["id"]), None)
        if mail is None:
            return HTMLResponse(_page("Not found", "<p>No such message (the sink keeps the latest ones).</p>"), 404)
        links = "".join(f'<li><a href="{html.escape(u)}">{html.escape(u)}</a></li>' for u in mail.links)
        body = (
            f"<p><a href='{MAIL_PATH}'>← all mail</a></p><h1>{html.escape(mail.subject)}</h1>"
            f"<p>To {html.escape(', '.join(mail.recipients))} from {html.escape(mail.mail_from)}, "
            f"{mail.received_at:%Y-%m-%d %H:%M:%S} UTC</p><h2>Links</h2><ul>{links}</ul>"
            # The HTML part in a sandbox: no scripts, no access to this page.
            f'<h2>HTML</h2><iframe sandbox style="width:100%;height:28rem;border:1px solid #ccc" '
            f'srcdoc="{html.escape(mail.html)}"></iframe>'
            f"<h2>Text</h2><pre>{html.escape(mail.text)}</pre>"
        )
        return HTMLResponse(_page(mail.subject, body))

    async def as_json(request: Request) -> Response:
        return JSONResponse([m.summary() for m in reversed(sink.mails)])

    return Starlette(
        routes=[
            Route(MAIL_PATH, index),
            Route(MAIL_PATH + ".json", as_json),
            Route(MAIL_PATH + "/{id}", one),
        ]
    )


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}td,th{padding:.2rem .6rem;text-align:left}</style>"
        f"</head><body>{body}</body></html>"
    )


def with_mail_pages(app: ASGIApp, sink: MailSink) -> ASGIApp:
    """``app`` with ``/dev/mail*`` answered by the sink's pages (HTTP only; everything else to ``app``)."""
    pages = mail_pages(sink)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(MAIL_PATH):
            await pages(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch
