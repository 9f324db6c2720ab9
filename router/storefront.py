"""The built storefront (a single-page app) on the router's own origin, at ``/``.

The graph stays at ``/graphql``; ``/assets/…`` are the build's hashed files (cached for a year);
every other ``GET`` that accepts HTML answers ``index.html``, so the app's client-side routes
(``/products?q=…``, ``/orders/SG-100042``) survive a reload. The directory is
``SHOPGRAPH_STOREFRONT_DIR``, by default the Vite build in ``frontend_contract/app/dist`` (what
``shopgraph dev`` builds). It is looked up per request, so a rebuild is served without a restart
and a router without a build answers 404 with how to build it.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "frontend_contract" / "app" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"  # Vite puts a content hash in every asset's name


def directory() -> Path:
    configured = os.environ.get("SHOPGRAPH_STOREFRONT_DIR")
    return Path(configured) if configured else DEFAULT_DIR


def _not_built() -> Response:
    return PlainTextResponse(
        "The storefront is not built: `uv run shopgraph dev` builds it (needs npm), "
        "or run `npm ci && npm run build` in frontend_contract/app. The graph is at /graphql.",
        status_code=404,
    )


async def _asset(request: Request) -> Response:
    root = (directory() / "assets").resolve()
    file = (root / str(request.path_params["path"])).resolve()
    if not file.is_relative_to(root) or not file.is_file():
        return PlainTextResponse("Not found", status_code=404)
    return FileResponse(file, headers={"Cache-Control": IMMUTABLE})


async def _page(request: Request) -> Response:
    index = directory() / "index.html"
    if not index.is_file():
        return _not_built()
    if "." in request.url.path.rsplit("/", 1)[-1]:
        return PlainTextResponse("Not found", status_code=404)  # a missing file, not an app route
    return FileResponse(index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


def routes() -> list[BaseRoute]:
    """Put these after every other route: the page route matches any remaining path."""
    return [
        Route("/assets/{path:path}", _asset, methods=["GET", "HEAD"]),
        Route("/{path:path}", _page, methods=["GET", "HEAD"]),
    ]
