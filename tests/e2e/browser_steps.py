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
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.npm import npm_ci_once, storefront_build

BROWSER = Path(__file__).resolve().parent / "browser"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
JOURNEY_TIMEOUT = 180.0  # seconds for a whole journey (the long scripts give up by themselves at 150 s)


@pytest.fixture(scope="module")
def storefront_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Chromium, playwright-core, and this run's build of the app, which the router serves at ``/``."""
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
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHOPGRAPH_STOREFRONT_DIR", str(dist))  # router/storefront.py reads it per request
        yield dist


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
