"""The router's GraphiQL page and the assets it serves itself (router/graphiql.py), through the real app."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from router import graphiql
from router.config import Settings
from router.http import create_app

SUPERGRAPH = Path(__file__).resolve().parents[2] / "schema" / "supergraph.graphql"
HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _client(settings: Settings | None = None) -> httpx.AsyncClient:
    app = create_app(SUPERGRAPH.read_text(), settings or Settings(anonymous_only=True))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router.test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client() as c:
        yield c


@pytest.fixture
def fake_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed-looking node_modules with a small file in place of each asset."""
    for name, asset in graphiql.ASSETS.items():
        file = tmp_path / asset.package / asset.path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"/* {name} */")
    monkeypatch.setattr(graphiql, "NODE_MODULES", tmp_path)
    return tmp_path


def test_pinned_versions_are_the_npm_projects() -> None:
    package = json.loads((graphiql.ASSETS_DIR / "package.json").read_text())
    lock = json.loads((graphiql.ASSETS_DIR / "package-lock.json").read_text())
    for name, version in graphiql.VERSIONS.items():
        assert package["dependencies"][name] == version
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


async def test_the_page_loads_the_routers_own_assets_when_installed(
    client: httpx.AsyncClient, fake_assets: Path
) -> None:
    page = await client.get("/graphql", headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert graphiql.CDN not in page.text
    for name, asset in graphiql.ASSETS.items():
        url = f"/graphiql/{name}?v={graphiql.VERSIONS[asset.package]}"
        assert url in page.text
        got = await client.get(url)
        assert got.status_code == 200
        assert got.text == f"/* {name} */"
        assert got.headers["content-type"] == asset.media_type
        assert "max-age" in got.headers["cache-control"]


async def test_the_page_falls_back_to_the_cdn_when_not_installed(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graphiql, "NODE_MODULES", tmp_path / "missing")
    page = await client.get("/graphql", headers=HTML)
    assert page.status_code == 200
    for asset in graphiql.ASSETS.values():
        assert f'"{graphiql.CDN}/{asset.package}@{graphiql.VERSIONS[asset.package]}/{asset.path}"' in page.text
    assert "/graphiql/" not in page.text
    assert (await client.get("/graphiql/graphiql.min.js")).status_code == 404


async def test_only_the_listed_assets_are_served(client: httpx.AsyncClient, fake_assets: Path) -> None:
    for path in ("/graphiql/package.json", "/graphiql/..%2Fgraphiql%2Fpackage.json", "/graphiql/react"):
        assert (await client.get(path)).status_code == 404, path


async def test_no_graphiql_routes_when_graphiql_is_off(fake_assets: Path) -> None:
    async with _client(Settings(anonymous_only=True, graphiql=False)) as c:
        assert (await c.get("/graphiql/graphiql.min.js")).status_code == 404
        assert "GraphiQL" not in (await c.get("/graphql", headers=HTML)).text


def test_ensure_assets_without_npm_falls_back_with_a_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(graphiql, "NODE_MODULES", tmp_path / "missing")
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
    with caplog.at_level(logging.INFO, logger="shopgraph.router.graphiql"):
        assert graphiql.ensure_assets() is False
    assert "npm not found" in caplog.text and graphiql.CDN in caplog.text


def test_ensure_assets_is_a_cheap_no_op_when_installed(fake_assets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")  # would fail if it tried to run npm
    assert graphiql.ensure_assets() is True


def test_ensure_assets_survives_a_failing_npm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text("#!/bin/sh\necho 'npm ERR! offline' >&2\nexit 1\n")
    npm.chmod(0o755)
    monkeypatch.setattr(graphiql, "NODE_MODULES", tmp_path / "missing")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert shutil.which("npm") == str(npm)
    with caplog.at_level(logging.INFO, logger="shopgraph.router.graphiql"):
        assert graphiql.ensure_assets() is False
    assert "npm ERR! offline" in caplog.text and graphiql.CDN in caplog.text
