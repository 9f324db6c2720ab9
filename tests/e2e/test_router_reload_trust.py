"""Issue 18, finding 10: a hot-reloaded supergraph cannot send the callers' identities elsewhere,
and an internal token one subgraph received is refused by every other.

Attack (black box): the watched supergraph file is replaced by one that moves the
catalog subgraph to an address the attacker listens on; an administrator then
asks for categories. Before the fix the file was loaded within 2 s, the address
received the administrator's internal token, and the users and orders subgraphs
accepted it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deploy.stack import ThreadedStack
from router.config import Settings
from router.http import create_app
from tests.e2e.conftest import supergraph_for
from tests.integration.helpers import admin_token
from tests.router.router_harness import ThreadServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

CATEGORIES = "{ categories { name } }"
SUBGRAPHS = ("users", "catalog", "cart", "orders", "payments")


class Listener:
    """The attacker's address: records the Authorization headers it is sent, answers like a catalog."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

        async def graphql(request: Request) -> JSONResponse:
            self.tokens.append(request.headers.get("authorization", ""))
            return JSONResponse({"data": {"categories": [{"__typename": "Category", "name": "evil"}]}})

        self.app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])


@pytest.fixture
def listener() -> Iterator[tuple[Listener, str]]:
    lst = Listener()
    with ThreadServer(lst.app) as server:
        yield lst, server.url + "/graphql"


def _router(stack: ThreadedStack, file: Path, **settings: Any) -> ThreadServer:
    s = Settings(
        jwks_urls=(stack.settings.jwks_url,),
        service_secret=stack.settings.service_secret,
        supergraph_path=str(file),
        supergraph_poll=0.1,
        rate_limits=False,
        **settings,
    )
    return ThreadServer(create_app(file.read_text(), s))


async def _categories(client: httpx.AsyncClient, url: str, token: str) -> list[str]:
    r = await client.post(url, json={"query": CATEGORIES}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return [c["name"] for c in r.json()["data"]["categories"]]


async def _reloaded(client: httpx.AsyncClient, url: str, token: str, *, expect_evil: bool) -> bool:
    """Ask until the answer comes from the listener, or: 3 s (30 polls of the file) when it must
    not, 20 s when it must (loading a supergraph builds its schema, planner and cost cap off the
    loop: about a second of CPU alone, several on a busy machine with the whole stack in process)."""
    deadline = time.monotonic() + (20 if expect_evil else 3)
    while time.monotonic() < deadline:
        if (await _categories(client, url, token)) == ["evil"]:
            return True
        await asyncio.sleep(0.05 if expect_evil else 0.2)
    return False


async def test_a_supergraph_moving_a_subgraph_elsewhere_is_refused(
    stack: ThreadedStack,
    listener: tuple[Listener, str],
    tmp_path: Path,
    demo_accounts: dict[str, tuple[str, str]],
) -> None:
    lst, evil = listener
    urls = {n: stack.urls[n] for n in SUBGRAPHS}
    file = tmp_path / "supergraph.graphql"
    file.write_text(supergraph_for(urls))
    admin = await admin_token(stack, demo_accounts)
    with _router(stack, file) as router:
        url = router.url + "/graphql"
        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
            real = await _categories(client, url, admin)
            file.write_text(supergraph_for({**urls, "catalog": evil}))
            assert not await _reloaded(client, url, admin, expect_evil=False)
            assert await _categories(client, url, admin) == real
            metrics = (await client.get(router.url + "/metrics")).text
    assert lst.tokens == []
    assert 'shopgraph_router_supergraph_reloads_total{outcome="refused"} 1.0' in metrics


async def test_an_internal_token_is_refused_by_every_other_subgraph(
    stack: ThreadedStack,
    listener: tuple[Listener, str],
    tmp_path: Path,
    demo_accounts: dict[str, tuple[str, str]],
) -> None:
    """Even at an address the operator allowed (a subgraph taken over), the administrator's
    internal token works nowhere else."""
    lst, evil = listener
    urls = {n: stack.urls[n] for n in SUBGRAPHS}
    file = tmp_path / "supergraph.graphql"
    file.write_text(supergraph_for(urls))
    admin = await admin_token(stack, demo_accounts)
    allowed = (*urls.values(), evil)
    with _router(stack, file, allowed_subgraph_urls=allowed) as router:
        url = router.url + "/graphql"
        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
            file.write_text(supergraph_for({**urls, "catalog": evil}))
            assert await _reloaded(client, url, admin, expect_evil=True)
            assert lst.tokens
            stolen = lst.tokens[-1]
            others = [n for n in SUBGRAPHS if n != "catalog"]
            assert "payments" in others
            for name in others:
                r = await client.post(
                    stack.urls[name],
                    json={"query": "{ me { id } }" if name == "users" else "{ __typename }"},
                    headers={"Authorization": stolen},
                )
                assert r.status_code == 401 or r.json().get("errors"), (name, r.text)
                assert "UNAUTHENTICATED" in r.text, (name, r.text)


async def test_a_supergraph_outside_the_allow_list_is_refused_at_start(stack: ThreadedStack, tmp_path: Path) -> None:
    from router.config import ConfigError

    file = tmp_path / "supergraph.graphql"
    file.write_text(supergraph_for({n: stack.urls[n] for n in SUBGRAPHS}))
    with pytest.raises(ConfigError, match=r"subgraphs\.allowed_urls"):
        create_app(
            file.read_text(),
            Settings(anonymous_only=True, allowed_subgraph_urls=(f"http://{uuid.uuid4().hex}.invalid/",)),
        )
