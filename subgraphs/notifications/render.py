"""Templates → a MIME message with a text and an HTML part (Jinja2, ``templates/``).

Each template ``T`` is three files: ``T.subject.txt``, ``T.txt`` and ``T.html``
(the HTML one extends ``base.html``; it is autoescaped, the text ones are not).
Money is rendered from integer minor units by the ``money`` filter.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import jinja2

from subgraphs.kit.money import to_decimal

TEMPLATE_DIR = Path(__file__).parent / "templates"


def money(minor: int, currency: str) -> str:
    return f"{to_decimal(minor, currency)} {currency}"


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,  # a missing value is an error, never an empty total
        keep_trailing_newline=True,
    )
    env.filters["money"] = money
    return env


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


def render(
    template: str, context: dict[str, Any], *, sender: str, recipient: str, message_id: str, headers: dict[str, str]
) -> EmailMessage:
    subject = _TEXT.get_template(f"{template}.subject.txt").render(context).strip()
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = " ".join(subject.split())  # one line, whatever the data held
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name] = value
    message.set_content(_TEXT.get_template(f"{template}.txt").render(context))
    message.add_alternative(_HTML.get_template(f"{template}.html").render(context), subtype="html")
    return message
