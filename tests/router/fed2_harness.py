"""Serve the Federation 2 fixture sets (fixtures/fed2.py) beside Apollo Gateway."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from router.config import Settings
from router.http import create_app
from tests.router.fixtures.authz import AUTHZ
from tests.router.fixtures.families import FAMILIES
from tests.router.fixtures.fed2 import SETS, FixtureSet
from tests.router.fixtures.sdl_subgraph import SdlSubgraph
from tests.router.router_harness import DIFFERENTIAL_COST_BUDGET, ORACLE, Gateway, Stack, ThreadServer, _npm_ready

# every fixture set served: issue 7's (fed2.py), issue 19's families (families.py) and its
# authorization directives (authz.py)
FIXTURE_SETS: dict[str, FixtureSet] = {
    **{name: fs for name, (fs, _) in SETS.items()},
    **{name: fs for name, (fs, _) in FAMILIES.items()},
    "authz": AUTHZ,
}


class RequestLog:
    """Records the path of every request the subgraphs get (to count subgraph calls)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


def fed2_app() -> RequestLog:
    routes = []
    for set_name, fs in FIXTURE_SETS.items():
        for spec in fs.subgraphs:
            routes.append(Mount(f"/{set_name}/{spec.name}", SdlSubgraph(spec, fs.world, fs.implements).app()))
    return RequestLog(Starlette(routes=routes))


def compose_set(fs: FixtureSet, base_url: str) -> str:
    _npm_ready()
    services = [{"name": s.name, "url": f"{base_url}/{s.name}/", "sdl": s.sdl} for s in fs.subgraphs]
    r = subprocess.run(
        ["node", "compose.mjs"], cwd=ORACLE, input=json.dumps(services), capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        raise RuntimeError(f"composition failed:\n{r.stderr}")
    return r.stdout


class Fed2Stacks:
    """One router + one Apollo Gateway per fixture set, started on first use."""

    def __init__(self, subgraphs_url: str, tmp: Path, log: RequestLog) -> None:
        self.base = subgraphs_url
        self.log = log  # every subgraph request, router's and gateway's
        self.tmp = tmp
        self.stacks: dict[str, Stack] = {}
        self.exits = contextlib.ExitStack()

    def get(self, set_name: str, **settings: Any) -> Stack:
        hit = self.stacks.get(set_name)
        if hit is not None:
            return hit
        sdl = compose_set(FIXTURE_SETS[set_name], f"{self.base}/{set_name}")
        router = self.exits.enter_context(
            ThreadServer(
                create_app(
                    sdl, Settings(**{"anonymous_only": True, "rate_expensive": DIFFERENTIAL_COST_BUDGET, **settings})
                )
            )
        )
        d = self.tmp / set_name
        d.mkdir()
        try:
            gw = self.exits.enter_context(Gateway(sdl, d))
        except RuntimeError:
            # its free port can be taken meanwhile on a busy machine: once more, on another
            gw = self.exits.enter_context(Gateway(sdl, d))
        stack = self.stacks[set_name] = Stack(sdl, router.url + "/graphql", gw.url, None)  # type: ignore[arg-type]
        return stack

    def close(self) -> None:
        self.exits.close()


@contextlib.contextmanager
def fed2_stacks(tmp: Path) -> Iterator[Fed2Stacks]:
    app = fed2_app()
    with ThreadServer(app) as subgraphs:
        stacks = Fed2Stacks(subgraphs.url, tmp, app)
        try:
            yield stacks
        finally:
            stacks.close()
