"""The forgotten-password journey in a real browser (headless Chromium, tests/e2e/browser/password_reset.mjs)
over the real stack: the sign-in page's "Forgot your password?" → the request → users' account event →
the notifications worker → a real SMTP server → the mailed link opens the storefront's reset page →
the new password is set there → signing in with it works. A bogus token and mistyped confirmation are
refused on the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deploy.devmail import MailSink
from deploy.stack import ThreadedStack
from tests.e2e.browser_steps import run_journey, storefront_served  # noqa: F401 (a fixture)
from tests.integration.helpers import unique_email
from tests.integration.notify_helpers import worker
from tests.support.graphql import gql

REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { userErrors { code } } }"


async def _browser(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return await run_journey("password_reset.mjs", config, "password reset journey", within=90)


async def test_a_shopper_resets_a_forgotten_password_from_the_mailed_link(
    storefront_served: Path,  # noqa: F811
    router_url: str,
    stack: ThreadedStack,
) -> None:
    base = router_url.removesuffix("/graphql")
    email, new_password = unique_email("browser-reset"), "the passphrase from my mail"
    registered = await gql(router_url, REGISTER, {"i": {"email": email, "password": "first passphrase", "name": "Bo"}})
    assert registered["data"]["register"]["userErrors"] == []
    async with MailSink() as sink, worker(stack, sink):
        requested = await _browser({"mode": "request", "url": base, "email": email})
        mail = await sink.wait_for(lambda m: email in m.recipients)
    assert requested["requested"]["heading"] == "Check your mail"
    assert email in requested["requested"]["status"] and requested["requested"]["path"] == "/forgot-password"
    (link,) = [u for u in mail.links if "/reset-password?token=" in u]
    opened = urlsplit(link)  # the shop's public origin in the mail; this test's router serves the same page
    steps = await _browser(
        {
            "mode": "reset",
            "url": base,
            "link": f"{base}{opened.path}?{opened.query}",
            "email": email,
            "password": new_password,
        }
    )
    assert steps["bogus"] == {"error": "This reset link is not valid (used, expired or mistyped).", "offers": 1}
    assert steps["mismatch"] == {"error": "The two passwords differ."}
    assert steps["changed"]["heading"] == "Password changed"
    assert steps["signed-in"] == {"path": "/", "hasSession": True}
