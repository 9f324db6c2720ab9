"""The router serves the storefront's build at ``/`` (router/storefront.py), through the real app."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from router import shopper_address, storefront
from router.config import Bucket, Settings
from router.http import create_app
from router.shopper_address import ShopperSigner

SUPERGRAPH = Path(__file__).resolve().parents[2] / "schema" / "supergraph.graphql"
HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
INDEX = "<!doctype html><title>Shopgraph</title><script type=module src=/assets/index-abc.js></script>"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SUPERGRAPH.read_text(), Settings(anonymous_only=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router.test") as c:
        yield c


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-abc.js").write_text("console.log('shop')")
    (dist / "assets" / "index-abc.js.gz").write_bytes(gzip.compress(b"console.log('shop')"))
    (tmp_path / "secret.txt").write_text("not for the web")
    monkeypatch.setenv("SHOPGRAPH_STOREFRONT_DIR", str(dist))
    monkeypatch.delenv("SHOPGRAPH_STOREFRONT_SSR_URL", raising=False)  # the build on its own, unless a test says
    return dist


async def test_the_app_is_served_at_every_client_side_route(client: httpx.AsyncClient, build: Path) -> None:
    for path in ("/", "/products?q=lamp&inStock=1", "/orders/SG-100042", "/admin/sales"):
        page = await client.get(path, headers=HTML)
        assert page.status_code == 200, path
        assert page.text == INDEX
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"  # a new build is picked up at once
    asset = await client.get("/assets/index-abc.js", headers={"accept-encoding": "identity"})
    assert asset.status_code == 200 and asset.text == "console.log('shop')"
    assert "immutable" in asset.headers["cache-control"]
    packed = await client.get("/assets/index-abc.js", headers={"accept-encoding": "gzip, br"})
    assert packed.headers["content-encoding"] == "gzip" and packed.text == "console.log('shop')"  # the build's .gz
    assert packed.headers["content-type"].startswith("text/javascript") and "Accept-Encoding" in packed.headers["vary"]


async def test_missing_files_and_paths_outside_the_build_are_404(client: httpx.AsyncClient, build: Path) -> None:
    outside = ("/assets/../../secret.txt", "/../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt")
    for path in ("/assets/nope.js", *outside, "/favicon.ico"):
        assert (await client.get(path)).status_code == 404, path


async def test_the_graph_and_health_keep_their_paths(client: httpx.AsyncClient, build: Path) -> None:
    no_query = await client.post("/graphql", json={})  # answered by the GraphQL endpoint, not the app
    assert no_query.status_code == 400 and no_query.json()["errors"]
    assert "GraphiQL" in (await client.get("/graphql", headers=HTML)).text
    assert (await client.get("/health")).json()["status"] == "ok"


async def test_without_a_build_the_router_says_it_is_on_its_way_not_404(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: while `shopgraph dev` built the storefront, `/` answered 404 telling the user to run
    the command already running. Now: 503, a page that reloads itself, and what is happening."""
    monkeypatch.setenv("SHOPGRAPH_STOREFRONT_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("SHOPGRAPH_STOREFRONT_SSR_URL", raising=False)
    page = await client.get("/", headers=HTML)
    assert page.status_code == 503 and page.headers["retry-after"] == "3"
    assert '<meta http-equiv="refresh" content="3">' in page.text
    assert "being built" in page.text and "shopgraph dev" in page.text and "/graphql" in page.text
    assert page.headers["cache-control"] == "no-store" and "content-security-policy" in page.headers
    assert storefront.directory() == tmp_path / "none"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_renderer_that_does_not_answer_is_a_503_that_reloads(
    client: httpx.AsyncClient, build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPGRAPH_STOREFRONT_SSR_URL", f"http://127.0.0.1:{_free_port()}")  # nothing listens
    page = await client.get("/p/LAMP-1", headers=HTML)
    assert page.status_code == 503 and "renderer is starting" in page.text
    assert '<meta http-equiv="refresh" content="3">' in page.text


class _Renderer(BaseHTTPRequestHandler):
    """Stands in for the page renderer (frontend_contract/app/src/server): echoes what it was asked."""

    def do_GET(self) -> None:
        status = 404 if self.path.startswith("/missing") else 200
        self.send_response(status)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("set-cookie", "leak=1")  # not the renderer's to set
        self.send_header("content-security-policy", "default-src *")  # nor to loosen
        self.end_headers()
        asked = {
            "path": self.path,
            "host": self.headers["x-forwarded-host"],
            "proto": self.headers["x-forwarded-proto"],
            "for": self.headers["x-shopgraph-shopper"].split("|")[0],  # signed: see the test below
        }
        self.wfile.write(json.dumps(asked).encode())

    def log_message(self, *args: object) -> None:
        pass


async def test_pages_are_passed_to_the_renderer_with_the_page_headers(
    client: httpx.AsyncClient, build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Renderer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("SHOPGRAPH_STOREFRONT_SSR_URL", f"http://127.0.0.1:{server.server_address[1]}")
        page = await client.get("/products?q=lamp&inStock=1", headers=HTML)
        missing = await client.get("/missing/page", headers=HTML)
        robots = await client.get("/robots.txt")
        asset = await client.get("/assets/index-abc.js")  # still the build's file, not the renderer's
    finally:
        server.shutdown()
        thread.join()
    assert page.status_code == 200
    asked = {"path": "/products?q=lamp&inStock=1", "host": "router.test", "proto": "http", "for": "127.0.0.1"}
    assert page.json() == asked
    assert page.headers["content-type"] == "text/html; charset=utf-8" and page.headers["cache-control"] == "no-cache"
    assert "set-cookie" not in page.headers
    assert page.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    assert missing.status_code == 404 and missing.json()["path"] == "/missing/page"
    assert robots.json()["path"] == "/robots.txt"
    assert asset.text == "console.log('shop')"


async def test_the_page_forbids_framing_foreign_scripts_and_leaking_the_referrer(
    client: httpx.AsyncClient, build: Path
) -> None:
    """Issue 18, finding 18: the storefront's HTML had no CSP, frame or referrer headers."""
    page = await client.get("/products", headers=HTML)
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'" and "unsafe" not in directives["script-src"]
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_every_answer_carries_the_protections(client: httpx.AsyncClient, build: Path) -> None:
    """Issue 20: a strict CSP and the usual security headers on every page, asset, file and 404."""
    (build / "sw.js").write_text("self.addEventListener('fetch', () => {})")
    (build / "manifest.webmanifest").write_text('{"name": "Shopgraph"}')
    answers = {
        path: await client.get(path, headers=HTML)
        for path in ("/", "/p/LAMP-1", "/assets/index-abc.js", "/sw.js", "/manifest.webmanifest", "/nope.png")
    }
    for path, answer in answers.items():
        h = answer.headers
        directives = dict(d.strip().split(" ", 1) for d in h["content-security-policy"].split(";"))
        assert directives["script-src"] == "'self'", path  # no inline or eval'd script, ever
        assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'self'", path
        assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "camera=()" in h["permissions-policy"] and "geolocation=()" in h["permissions-policy"], path
        assert h["cross-origin-resource-policy"] == "same-origin"
        assert "strict-transport-security" not in h, path  # plain http: browsers would ignore it anyway
    assert answers["/nope.png"].status_code == 404
    # The service worker and the manifest are files of the build's top level, always revalidated.
    assert answers["/sw.js"].status_code == 200 and answers["/sw.js"].headers["cache-control"] == "no-cache"
    assert answers["/sw.js"].headers["content-type"].startswith("text/javascript")
    assert answers["/manifest.webmanifest"].headers["content-type"] == "application/manifest+json"
    assert (await client.get("/index.html")).text == INDEX  # the shell, which the service worker precaches
    secure = await client.get("https://router.test/products", headers=HTML)
    assert secure.headers["strict-transport-security"] == "max-age=31536000"


async def test_a_payment_providers_origins_are_allowed_only_when_configured(build: Path) -> None:
    """Issue 16: Stripe's Payment Element needs its script, frames and API allowed by the page's CSP;
    a configured value that is not an origin (a keyword, a second directive) is refused at start."""
    settings = Settings(
        anonymous_only=True,
        storefront_script_src=("https://js.stripe.com",),
        storefront_frame_src=("https://js.stripe.com", "https://hooks.stripe.com"),
        storefront_connect_src=("https://api.stripe.com",),
    )
    app = create_app(SUPERGRAPH.read_text(), settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router.test") as c:
        page = await c.get("/orders/SG-100042", headers=HTML)
    directives = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
    assert directives["script-src"] == "'self' https://js.stripe.com"
    assert directives["frame-src"] == "'self' https://js.stripe.com https://hooks.stripe.com"
    assert directives["connect-src"] == "'self' https://api.stripe.com"
    assert directives["frame-ancestors"] == "'none'"  # the shop's own page is still not framed by anyone
    assert 'payment=(self "https://js.stripe.com" "https://hooks.stripe.com")' in page.headers["permissions-policy"]
    for bad in ("'unsafe-inline'", "*", "https://js.stripe.com; script-src *", "javascript:", "https://a b"):
        with pytest.raises(ValueError, match="not an origin"):
            create_app(SUPERGRAPH.read_text(), Settings(anonymous_only=True, storefront_script_src=(bad,)))


def test_the_payment_origins_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "SHOPGRAPH_STOREFRONT_SCRIPT_SRC": "https://js.stripe.com",
            "SHOPGRAPH_STOREFRONT_FRAME_SRC": "https://js.stripe.com,https://hooks.stripe.com",
            "SHOPGRAPH_STOREFRONT_CONNECT_SRC": "https://api.stripe.com",
        }
    )
    assert settings.storefront_script_src == ("https://js.stripe.com",)
    assert settings.storefront_frame_src == ("https://js.stripe.com", "https://hooks.stripe.com")
    assert settings.storefront_connect_src == ("https://api.stripe.com",)


async def test_metrics_on_the_admin_listener_are_not_the_page_on_the_public_port(build: Path) -> None:
    """With a built storefront, /metrics on the public port was the page (200), as any unknown path."""
    settings = Settings(anonymous_only=True, admin_listen="127.0.0.1:0")
    app = create_app(SUPERGRAPH.read_text(), settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router.test") as c:
        assert (await c.get("/metrics")).status_code == 404
        assert (await c.get("/products", headers=HTML)).text == INDEX


async def test_graphiql_runs_only_its_own_inline_scripts(client: httpx.AsyncClient) -> None:
    """GraphiQL's page (an HTML answer too) lets its inline scripts run by a nonce new for each page."""
    pages = [await client.get("/graphql", headers=HTML) for _ in range(2)]
    nonces = set()
    for page in pages:
        directives = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
        (nonce,) = [s for s in directives["script-src"].split() if s.startswith("'nonce-")]
        assert "unsafe" not in directives["script-src"] and directives["frame-ancestors"] == "'none'"
        assert page.text.count(f'<script nonce="{nonce[7:-1]}">') == 2
        assert page.headers["x-content-type-options"] == "nosniff" and page.headers["cache-control"] == "no-store"
        nonces.add(nonce)
    assert len(nonces) == 2


async def test_the_renderers_graph_requests_count_against_the_shopper_the_router_vouched_for(build: Path) -> None:
    """One client requesting pages fast must not spend every other shopper's page reads: the router
    signs the shopper's address when it passes a page on, and the renderer's graph requests that
    carry it are rate-limited as that shopper (router/shopper_address.py)."""
    settings = Settings(anonymous_only=True, rate_anonymous=Bucket(0.001, 2), service_secret="s" * 32)
    signer = ShopperSigner(settings.service_secret)
    app = create_app(SUPERGRAPH.read_text(), settings)
    query = {"query": "{ __typename }"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router.test") as c:

        async def as_(header: str | None) -> int:
            headers = {shopper_address.HEADER: header} if header is not None else {}
            return (await c.post("/graphql", json=query, headers=headers)).status_code

        greedy = signer.sign("203.0.113.7")
        assert [await as_(greedy) for _ in range(3)] == [200, 200, 429]
        assert await as_(signer.sign("198.51.100.9")) == 200  # another shopper still served
        # forged, altered, expired or another key's: counted against the connection's own address
        assert await as_("198.51.100.10|9999999999|" + "0" * 64) == 200
        assert await as_(greedy.replace("203.0.113.7", "203.0.113.8")) == 200
        assert await as_(signer.sign("192.0.2.1", now=time.time() - 2 * shopper_address.LIFETIME)) == 429
        assert await as_(ShopperSigner("t" * 32).sign("192.0.2.2")) == 429
