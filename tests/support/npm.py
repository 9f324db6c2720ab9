"""npm installs and builds from tests, safe when pytest-xdist workers ask for them at once.

Two workers running ``npm ci`` (or ``vite build``) in the same directory corrupt each
other's ``node_modules``. ``exclusive(directory)`` holds an inter-process lock on that
directory (``fcntl.flock`` on a file in the temporary directory, released if the
worker dies); ``npm_ci_once(directory, marker)`` installs under it unless ``marker``
shows the packages are there, so the first worker installs and the others wait and reuse.
``storefront_build(tmp_path_factory)`` builds the storefront app once per test run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from frontend_contract import build


@contextlib.contextmanager
def exclusive(directory: Path) -> Iterator[None]:
    """Hold the lock on ``directory``'s npm work until the block ends (blocks while another process holds it)."""
    key = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
    with (Path(tempfile.gettempdir()) / f"shopgraph-npm-{key}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def npm_ci_once(directory: Path, installed: Path | Callable[[], bool], timeout: float = 600) -> None:
    """``npm ci`` in ``directory`` unless ``installed`` (a path that exists, or a check) says it is done."""

    def done() -> bool:
        # npm writes node_modules/.package-lock.json last: without it an install was cut short.
        hidden_lock = directory / "node_modules" / ".package-lock.json"
        finished = (
            hidden_lock.is_file() and hidden_lock.stat().st_mtime >= (directory / "package-lock.json").stat().st_mtime
        )
        return finished and (installed() if callable(installed) else installed.exists())

    if done():
        return
    with exclusive(directory):
        if done():  # another worker installed while this one waited
            return
        npm = shutil.which("npm")
        if npm is None:
            raise AssertionError("npm is required by the tests (reference tools from npm): install Node.js and npm")
        run = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert run.returncode == 0, f"npm ci in {directory} failed:\n{run.stdout}\n{run.stderr}"
        assert done(), f"npm ci in {directory} did not install what the tests need"


def run_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary directory shared by every xdist worker of this test run (pytest removes old ones)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def storefront_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One production build (``vite build``) of the storefront app per test run, made by the first
    worker to ask and used by all (the budget test and the browser journey read the same files)."""
    out = run_temp_dir(tmp_path_factory) / "storefront-build" / "dist"
    npm_ci_once(build.APP_DIR, build.installed)
    with exclusive(build.APP_DIR):  # vite build writes its config bundle and caches under the app
        if not (out / "index.html").is_file():
            build.build(out)
    return out
