"""Sending one message over SMTP (aiosmtplib), and what a failure means for its retries."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from .config import NotifySettings


class SendFailed(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


async def send(settings: NotifySettings, message: EmailMessage) -> None:
    """Hand ``message`` to the SMTP server; ``SendFailed`` says whether trying again can help.

    A 5xx reply (no such mailbox, message refused) is permanent; no connection,
    a timeout or a 4xx reply (try later) is transient.
    """
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        permanent = all(r.code >= 500 for r in exc.recipients)
        raise SendFailed(f"recipient refused: {exc}", permanent=permanent) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise SendFailed(f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}", permanent=False) from exc
