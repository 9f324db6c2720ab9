"""The storefront on the router's own origin, at ``/``.

The graph stays at ``/graphql``; ``/assets/…`` are the build's hashed files (cached for a year).
Every other ``GET`` is a page:

- with ``SHOPGRAPH_STOREFRONT_SSR_URL`` set (the storefront's server-rendering process,
  ``frontend_contract/app/src/server``), the request is passed to it and its answer streamed back
  (status, body) with this page's security headers: server-rendered pages, ``/sitemap.xml``,
  ``/robots.txt`` and 404s for unknown paths all come from it;
- without it, the build's ``index.html`` (the app renders in the browser), so the app's
  client-side routes (``/products?q=…``, ``/orders/SG-100042``) survive a reload.

The build's directory is ``SHOPGRAPH_STOREFRONT_DIR``, by default the Vite build in
``frontend_contract/app/dist`` (what ``shopgraph dev`` builds). Both are looked up per request,
so a rebuild or a renderer started later is served without a restart. While there is neither a
build nor a renderer answering (``shopgraph dev`` builds in the background), a page answers 503
with a notice that reloads itself, never a 404. Files at the build's top level (the service worker
``sw.js``, ``manifest.webmanifest``, icons, the ``index.html`` shell it precaches) are served by
name, revalidated on every use, renderer or not. Every answer carries the page's protections
(:func:`page_headers`): a strict CSP, no framing, no sniffing, no referrer to other sites, unused
browser features off, HSTS over https.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from router import shopper_address
from router.shopper_address import ShopperSigner

log = logging.getLogger("shopgraph.router.storefront")

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "frontend_contract" / "app" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"  # Vite puts a content hash in every asset's name
RENDER_TIMEOUT = httpx.Timeout(30.0, connect=2.0)  # a page waits on the graph's answers: generous
# What the renderer's answer keeps (the security headers are this module's; hop-by-hop ones are not passed).
_PASSED = ("content-type", "content-encoding", "vary", "cache-control", "content-language", "location", "allow")


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


def _file_in(root: Path, name: str) -> Path | None:
    root = root.resolve()
    file = (root / name).resolve()
    return file if file.is_relative_to(root) and file.is_file() else None


def directory() -> Path:
    configured = os.environ.get("SHOPGRAPH_STOREFRONT_DIR")
    return Path(configured) if configured else DEFAULT_DIR


def renderer() -> str | None:
    """The server-rendering process's base URL, when pages are rendered on the server."""
    return os.environ.get("SHOPGRAPH_STOREFRONT_SSR_URL") or None


def _unavailable(headers: dict[str, str], why: str) -> Response:
    """503 and a page that reloads itself every few seconds: the shop is on its way, not missing."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="refresh" content="3"><title>Shopgraph is starting</title></head>'
        f"<body><h1>The shop is starting</h1><p>{html.escape(why)}</p>"
        '<p>This page reloads by itself. The graph is at <a href="/graphql">/graphql</a>.</p></body></html>'
    )
    return HTMLResponse(body, status_code=503, headers={**headers, "Cache-Control": "no-store", "Retry-After": "3"})


NOT_BUILT = (
    "The storefront is being built (`uv run shopgraph dev` builds it in the background; without npm, "
    "run `npm ci && npm run build` in frontend_contract/app)."
)
NOT_RENDERING = "The storefront's page renderer is starting."


async def _rendered(request: Request, base: str, headers: dict[str, str], signer: ShopperSigner) -> Response:
    """The renderer's answer to this page request, streamed as it renders."""
    # A TLS context only for an https renderer (building one costs 10-250 ms a request: the CA bundle
    # is loaded each time); never a proxy from the environment.
    https = base.startswith("https:")
    client = httpx.AsyncClient(base_url=base, timeout=RENDER_TIMEOUT, verify=https, trust_env=False)
    forwarded = {
        "x-forwarded-host": request.headers.get("host", ""),
        "x-forwarded-proto": request.url.scheme,
        "accept-language": request.headers.get("accept-language", ""),
        "accept-encoding": request.headers.get("accept-encoding", ""),
        # The shopper's address, signed: the renderer sends it back with the page's graph requests,
        # which are counted against that shopper (router/shopper_address.py).
        shopper_address.HEADER: signer.sign(request.client.host if request.client else "unknown"),
    }
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        upstream = await client.send(client.build_request(request.method, target, headers=forwarded), stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        log.info("storefront: the renderer at %s did not answer (%s)", base, type(exc).__name__)
        return _unavailable(headers, NOT_RENDERING)

    async def close() -> None:
        await upstream.aclose()
        await client.aclose()

    async def body() -> AsyncIterator[bytes]:
        async for chunk in upstream.aiter_raw():
            yield chunk

    kept = {name: upstream.headers[name] for name in _PASSED if name in upstream.headers}
    return StreamingResponse(
        body(), status_code=upstream.status_code, headers={**kept, **headers}, background=BackgroundTask(close)
    )


def _routes_of(headers: dict[str, str], signer: ShopperSigner) -> tuple[Callable[[Request], Awaitable[Response]], ...]:
    async def asset(request: Request) -> Response:
        protected = _protected(headers, request)
        file = _file_in(directory() / "assets", str(request.path_params["path"]))
        if file is None:
            return PlainTextResponse("Not found", status_code=404, headers=protected)
        cached = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding", **protected}
        packed = file.with_name(file.name + ".gz")  # written by the build (vite.config.ts) for scripts and styles
        if "gzip" in request.headers.get("accept-encoding", "") and packed.is_file():
            media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            return FileResponse(packed, media_type=media_type, headers={**cached, "Content-Encoding": "gzip"})
        return FileResponse(file, headers=cached)

    async def page(request: Request) -> Response:
        protected = _protected(headers, request)
        name = request.url.path.rsplit("/", 1)[-1]
        if "." in name and request.url.path.count("/") == 1:
            # A file of the build's top level (the service worker, the web app manifest, icons, the
            # shell it precaches): never cached unrevalidated, so a new service worker is found at once.
            file = _file_in(directory(), name)
            if file is not None:
                media = _MEDIA.get(file.suffix)
                return FileResponse(file, media_type=media, headers={"Cache-Control": "no-cache", **protected})
        base = renderer()
        if base is not None:
            return await _rendered(request, base, protected, signer)
        index = directory() / "index.html"
        if not index.is_file():
            return _unavailable(protected, NOT_BUILT)
        if "." in name:
            return PlainTextResponse("Not found", status_code=404, headers=protected)  # a missing file
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
    signer: ShopperSigner,
) -> list[BaseRoute]:
    """Put these after every other route: the page route matches any remaining path."""
    headers = page_headers(img_src, script_src=script_src, frame_src=frame_src, connect_src=connect_src)
    asset, page = _routes_of(headers, signer)
    return [
        Route("/assets/{path:path}", asset, methods=["GET", "HEAD"]),
        Route("/{path:path}", page, methods=["GET", "HEAD"]),
    ]
