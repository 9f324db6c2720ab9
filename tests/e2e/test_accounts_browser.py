"""Issue 20: the account pages in a real browser (tests/e2e/browser/accounts_journey.mjs) over the real
stack: no token readable by the page, the refresh token an HttpOnly cookie, a reload still signed in,
addresses added, edited, made default and removed, the password changed, and sign-out everywhere
ending another browser's session too."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.browser_steps import run_journey, storefront_served  # noqa: F401 (a fixture)
from tests.e2e.storefront import ADDRESS
from tests.integration.helpers import unique_email


async def test_accounts_keep_tokens_from_scripts_and_manage_sessions_and_addresses(
    storefront_served: Path,  # noqa: F811
    router_url: str,
) -> None:
    config = {
        "url": router_url.removesuffix("/graphql"),
        "email": unique_email("browser-account"),
        "password": "my first passphrase",
        "newPassword": "my second passphrase",
        "address": ADDRESS,
    }
    steps = await run_journey("accounts_journey.mjs", config, "accounts journey", within=150)

    signed_up = steps["signed-up"]
    assert signed_up["name"] == "Ada Account"
    assert signed_up["cookie"] == {"httpOnly": True, "secure": True, "sameSite": "Strict", "path": "/graphql"}
    assert signed_up["accessTokens"] >= 1  # the page had one: it is kept where scripts cannot see it
    assert signed_up["tokenReadable"] is False, signed_up
    assert signed_up["documentCookie"] == ""
    assert signed_up["storage"] == ["shopgraph.signedIn=1"]  # a hint, not a token

    assert steps["reloaded"] == {"path": "/account", "name": "Ada Account"}

    addresses = steps["addresses"]
    first = [a for a in addresses["edited"] if ADDRESS["line1"] in a]
    assert len(first) == 1 and "York" in first[0], addresses
    (left,) = addresses["left"]
    assert "22 Second Street" in left and "Default" in left

    password = steps["password"]
    assert password["refused"], "the wrong current password is refused next to its field"
    assert password["changed"].startswith("Password changed.")
    assert password["stillSignedIn"] == "Ada Account"

    everywhere = steps["everywhere"]
    assert everywhere["notice"] == "You were signed out on every device."
    assert everywhere["cookiesLeftHere"] == 0
    assert everywhere["otherTabSignIn"] == 1  # the other tab of this browser followed without a reload
    assert everywhere["therePath"] == "/signin" and everywhere["thereSignInLink"] >= 1
    assert steps["done"]["console"] == [], steps["done"]
