"""The refresh token as an ``HttpOnly`` cookie, for browsers: no script can read it.

Every mutation that starts or rotates a session sets ``shopgraph_refresh`` on its HTTP answer;
``refreshToken`` and ``logout`` spend the cookie when their input names no token, and an ended
session clears it. The router relays this one cookie between the browser and this subgraph
(``session_cookie`` in its configuration); apps that keep tokens themselves (mobile) keep
selecting ``refreshToken`` in the payload and sending it in the input, as before.

The cookie is ``Path=/graphql`` (never sent with pages or assets), ``SameSite=Strict`` and
``Secure`` whenever browsers accept that: the shop served over https, or on ``localhost`` /
``127.0.0.1``, which browsers count as secure even over plain http (so ``shopgraph dev`` works).
A shop on plain http elsewhere (a LAN host name) gets the cookie without ``Secure``.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from subgraphs.kit.context import RequestContext

NAME = "shopgraph_refresh"
PATH = "/graphql"
_SECURE_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def secure_for(public_url: str) -> bool:
    """Whether browsers keep a ``Secure`` cookie from the shop at ``public_url``."""
    url = urlsplit(public_url)
    return url.scheme == "https" or (url.hostname or "") in _SECURE_HOSTS


def _header(value: str, max_age: int, secure: bool) -> str:
    cookie: SimpleCookie = SimpleCookie()
    cookie[NAME] = value
    morsel = cookie[NAME]
    morsel["path"] = PATH
    morsel["max-age"] = str(max_age)
    morsel["httponly"] = True
    morsel["samesite"] = "Strict"
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()


def set_session(context: RequestContext, refresh_token: str) -> None:
    """Put the session's refresh token in the cookie (for as long as the token lives)."""
    if context.response_headers is not None:
        settings = context.runtime.settings
        header = _header(refresh_token, settings.refresh_token_ttl_seconds, secure_for(settings.public_url))
        context.response_headers.append("set-cookie", header)


def clear_session(context: RequestContext) -> None:
    if context.response_headers is not None:
        context.response_headers.append("set-cookie", _header("", 0, secure_for(context.runtime.settings.public_url)))


def sent_token(context: RequestContext) -> str | None:
    """The refresh token the browser's cookie carries (relayed by the router), if any."""
    request = context.request
    if request is None:
        return None
    return request.cookies.get(NAME) or None
