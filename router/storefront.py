"""The built storefront (a single-page app) on the router's own origin, at ``/``.

The graph stays at ``/graphql``; ``/assets/…`` are the build's hashed files (cached for a year);
every other ``GET`` that accepts HTML answers ``index.html``, so the app's client-side routes
(``/products?q=…``, ``/orders/SG-100042``) survive a reload. The directory is
``SHOPGRAPH_STOREFRONT_DIR``, by default the Vite build in ``frontend_contract/app/dist`` (what
``shopgraph dev`` builds). It is looked up per request, so a rebuild is served without a restart
and a router without a build answers 404 with how to build it. Files at the build's top level (the
service worker ``sw.js``, ``manifest.webmanifest``, icons) are served by name, revalidated on every
use. Every answer carries the page's protections (:func:`page_headers`): a strict CSP, no framing,
no sniffing, no referrer to other sites, unused browser features off, HSTS over https.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "frontend_contract" / "app" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"  # Vite puts a content hash in every asset's name


# A CSP source the configuration may add: an origin (or URL prefix), never a keyword such as
# 'unsafe-inline', a wildcard or a second directive smuggled in with ';'.
_SOURCE = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")


def _sources(kind: str, configured: tuple[str, ...]) -> tuple[str, ...]:
    for source in configured:
        if not _SOURCE.match(source):
            raise ValueError(f"storefront.{kind}: {source!r} is not an origin (https://host[:port][/path])")
    return configured


def page_headers(
    img_src: tuple[str, ...] = (),
    *,
    script_src: tuple[str, ...] = (),
    frame_src: tuple[str, ...] = (),
    connect_src: tuple[str, ...] = (),
) -> dict[str, str]:
    """The page's protections (issue 18, finding 18): scripts, styles and connections from this origin
    only (the build has no inline script; React sets style attributes), no framing, no referrer to other
    sites; images also from ``img_src`` (where the catalog serves its media, when not over https).

    ``script_src``, ``frame_src`` and ``connect_src`` add the origins a payment provider's client-side
    element needs (Stripe: https://js.stripe.com for the script and its frames, https://hooks.stripe.com
    for 3-D Secure frames, https://api.stripe.com for its calls): without them the browser refuses
    Stripe.js and the Payment Element never shows (issue 16)."""
    images = " ".join(("'self'", "data:", "https:", *img_src))
    scripts = " ".join(("'self'", *_sources("script_src", script_src)))
    frames = " ".join(("'self'", *_sources("frame_src", frame_src)))
    connects = " ".join(("'self'", *_sources("connect_src", connect_src)))
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; img-src {images}; "
            f"connect-src {connects}; frame-src {frames}; font-src 'self'; object-src 'none'; base-uri 'self'; "
            "form-action 'self'; frame-ancestors 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Content-Type-Options": "nosniff",
        # Powerful features the shop never uses are off for it and anything it frames; payment (the
        # Payment Request API of a provider's wallet buttons) only for itself and the provider's frames.
        "Permissions-Policy": ", ".join(
            (
                *(f"{feature}=()" for feature in _UNUSED_FEATURES),
                "payment=(" + " ".join(("self", *(f'"{o}"' for o in frame_src))) + ")",
            )
        ),
        "Cross-Origin-Resource-Policy": "same-origin",
    }


# Browser features no page of the shop uses (Permissions-Policy turns them off).
_UNUSED_FEATURES = ("accelerometer", "camera", "geolocation", "gyroscope", "magnetometer", "microphone", "usb")
HSTS = "max-age=31536000"  # browsers heed it over https only: sent when the page was asked for over https


def _protected(headers: dict[str, str], request: Request) -> dict[str, str]:
    return {**headers, "Strict-Transport-Security": HSTS} if request.url.scheme == "https" else headers


def directory() -> Path:
    configured = os.environ.get("SHOPGRAPH_STOREFRONT_DIR")
    return Path(configured) if configured else DEFAULT_DIR


def _not_built(headers: dict[str, str]) -> Response:
    return PlainTextResponse(
        "The storefront is not built: `uv run shopgraph dev` builds it (needs npm), "
        "or run `npm ci && npm run build` in frontend_contract/app. The graph is at /graphql.",
        status_code=404,
        headers=headers,
    )


def _file_in(root: Path, name: str) -> Path | None:
    root = root.resolve()
    file = (root / name).resolve()
    return file if file.is_relative_to(root) and file.is_file() else None


def _routes_of(headers: dict[str, str]) -> tuple[Callable[[Request], Awaitable[Response]], ...]:
    async def asset(request: Request) -> Response:
        file = _file_in(directory() / "assets", str(request.path_params["path"]))
        if file is None:
            return PlainTextResponse("Not found", status_code=404, headers=_protected(headers, request))
        return FileResponse(file, headers={"Cache-Control": IMMUTABLE, **_protected(headers, request)})

    async def page(request: Request) -> Response:
        protected = _protected(headers, request)
        index = directory() / "index.html"
        if not index.is_file():
            return _not_built(protected)
        name = request.url.path.rsplit("/", 1)[-1]
        if "." in name:
            # A file of the build's top level (the service worker, the web app manifest, icons, the
            # shell it precaches): never cached unrevalidated, so a new service worker is found at
            # once. Anything else is missing.
            file = _file_in(directory(), name) if request.url.path.count("/") == 1 else None
            if file is None:
                return PlainTextResponse("Not found", status_code=404, headers=protected)
            media = _MEDIA.get(file.suffix)
            return FileResponse(file, media_type=media, headers={"Cache-Control": "no-cache", **protected})
        return FileResponse(
            index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache", **protected}
        )

    return asset, page


_MEDIA = {".webmanifest": "application/manifest+json", ".js": "text/javascript; charset=utf-8"}


def routes(
    img_src: tuple[str, ...] = (),
    *,
    script_src: tuple[str, ...] = (),
    frame_src: tuple[str, ...] = (),
    connect_src: tuple[str, ...] = (),
) -> list[BaseRoute]:
    """Put these after every other route: the page route matches any remaining path."""
    headers = page_headers(img_src, script_src=script_src, frame_src=frame_src, connect_src=connect_src)
    asset, page = _routes_of(headers)
    return [
        Route("/assets/{path:path}", asset, methods=["GET", "HEAD"]),
        Route("/{path:path}", page, methods=["GET", "HEAD"]),
    ]
