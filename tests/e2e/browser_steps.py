"""Running a browser journey (tests/e2e/browser/*.mjs) and reading its steps, for the browser tests.

Every journey script takes one JSON config argument, prints one ``<step> <json>`` line per step on
stdout, and ``error <json>`` (then exits 1) when it fails. The script runs in a process group of its
own so that Chromium, which it starts, is killed with it on the way out (a timeout included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontend_contract import build
from tests.support.npm import npm_ci_once, storefront_build
from tests.support.wait import until_sync

BROWSER = Path(__file__).resolve().parent / "browser"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
JOURNEY_TIMEOUT = 180.0  # seconds for a whole journey (the long scripts give up by themselves at 150 s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def storefront_served(tmp_path_factory: pytest.TempPathFactory, router_url: str) -> Iterator[Path]:
    """Chromium, playwright-core, and this run's build of the app, which the router serves at ``/``:
    its assets from the build, its pages rendered by the build's server renderer (node), started here
    against the router, as ``shopgraph dev`` starts it."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get install -y chromium; .ci/run does this).",
            pytrace=False,
        )
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.fail("Node.js and npm are required by the browser tests: install Node.js 20 or later")
    npm_ci_once(BROWSER, BROWSER / "node_modules" / "playwright-core" / "package.json")
    dist = storefront_build(tmp_path_factory)  # this run's build of the current sources
    port = _free_port()
    renderer = build.renderer(dist, router_url.removesuffix("/graphql"), port)
    try:
        health = f"http://127.0.0.1:{port}/healthz"
        until_sync(lambda: _answers(health) or renderer.poll() is not None, within=60, what="the page renderer")
        assert renderer.poll() is None, f"the page renderer exited ({renderer.returncode})"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SHOPGRAPH_STOREFRONT_DIR", str(dist))  # router/storefront.py reads both per request
            patch.setenv("SHOPGRAPH_STOREFRONT_SSR_URL", f"http://127.0.0.1:{port}")
            yield dist
    finally:
        renderer.terminate()
        renderer.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.asynccontextmanager
async def journey(script: str, config: dict[str, Any]) -> AsyncIterator[asyncio.subprocess.Process]:
    """``node <script> <config>`` in tests/e2e/browser, killed (browser and all) on the way out."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        script,
        json.dumps(config),
        cwd=BROWSER,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "CHROMIUM": str(CHROMIUM)},
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def read_steps(
    proc: asyncio.subprocess.Process, name: str, within: float = JOURNEY_TIMEOUT
) -> dict[str, dict[str, Any]]:
    """Every ``<step> <json>`` line of the script by step; fails with the script's account on ``error``."""
    assert proc.stdout is not None
    steps: dict[str, dict[str, Any]] = {}
    other: list[str] = []
    async with asyncio.timeout(within):
        async for raw in proc.stdout:
            line = raw.decode().rstrip("\n")
            word, _, data = line.partition(" ")
            if word == "error":
                account = json.dumps(json.loads(data), indent=2)
                raise AssertionError(f"the {name} failed after {list(steps)}: {account}\n{other[-40:]}")
            if data.startswith("{"):
                steps[word] = json.loads(data)
            else:
                other.append(line)
        await proc.wait()
    assert proc.returncode == 0, f"the browser script exited {proc.returncode}: {other}"
    return steps


async def run_journey(
    script: str, config: dict[str, Any], name: str, within: float = JOURNEY_TIMEOUT
) -> dict[str, dict[str, Any]]:
    """Runs the script to its end and returns its steps (for journeys the test does not act during)."""
    async with journey(script, config) as proc:
        return await read_steps(proc, name, within)
