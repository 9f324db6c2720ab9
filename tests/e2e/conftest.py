"""The router and Apollo Gateway over the session's running stack (our four real subgraphs)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from deploy.stack import ThreadedStack
from tests.e2e.storefront import Storefront
from tests.support.apollo_gateway import for_apollo_gateway, start_gateway
from tests.support.npm import npm_ci_once

ROOT = Path(__file__).resolve().parents[2]
ORACLE = ROOT / "tests" / "router" / "oracle"
SUPERGRAPH = ROOT / "schema" / "supergraph.graphql"
_JOIN_GRAPH = re.compile(r'(@join__graph\(name: "(\w+)", url: ")([^"]*)(")')


def supergraph_for(urls: dict[str, str]) -> str:
    """The checked-in supergraph with each subgraph's ``join__Graph(url:)`` pointing at ``urls``."""
    text, count = _JOIN_GRAPH.subn(lambda m: m[1] + urls[m[2]] + m[4], SUPERGRAPH.read_text())
    assert count == len(urls), f"expected {len(urls)} @join__graph entries in schema/supergraph.graphql"
    return text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _oracle_ready() -> None:
    if shutil.which("node") is None:
        pytest.fail("node is required by the tests (Apollo Gateway runs on it): install Node.js and npm")
    if shutil.which("npm") is None:
        pytest.fail("npm is required by the tests (reference tools from npm): install Node.js and npm")
    npm_ci_once(ORACLE, lambda: all((ORACLE / "node_modules" / "@apollo" / p).is_dir() for p in ("gateway", "client")))


@pytest.fixture(scope="session")
def router_url(stack: ThreadedStack) -> str:
    """Our router (composed from the running subgraphs) served on the stack."""
    return stack.urls.get("router") or stack.start_router()


@pytest.fixture(scope="session")
def gateway_url(stack: ThreadedStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Apollo Gateway over schema/supergraph.graphql and the running subgraphs; forwards Authorization."""
    _oracle_ready()
    file = tmp_path_factory.mktemp("apollo-gateway") / "supergraph.graphql"
    file.write_text(for_apollo_gateway(supergraph_for({name: stack.urls[name] for name in stack.subgraphs})))
    port = _free_port()
    proc = start_gateway("gateway_forward_auth.mjs", ORACLE, str(file), str(port))
    try:
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
async def e2e_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        yield client


@pytest.fixture(scope="session")
def ours(router_url: str, e2e_client: httpx.AsyncClient) -> Storefront:
    return Storefront(router_url, e2e_client)


@pytest.fixture(scope="session")
def theirs(gateway_url: str, e2e_client: httpx.AsyncClient) -> Storefront:
    return Storefront(gateway_url, e2e_client)
