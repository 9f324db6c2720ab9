"""Install and build the storefront app (``app/``) with npm, and measure what a browser loads first.

- ``ensure_built() -> bool`` — what ``shopgraph dev`` calls: ``npm ci`` when the packages are
  missing, ``vite build`` when ``app/dist`` is missing or older than the app's sources. Never
  raises: without npm, or when a step fails, it logs why (the router then serves GraphiQL only).
- ``npm_ci()`` / ``build(out_dir)`` — the two steps, raising ``BuildError`` with npm's output:
  the browser's build in ``out_dir`` and the server renderer in ``out_dir/server/main.js``.
- ``renderer(dist, router_url, port)`` — the server renderer's process (``node dist/server/main.js``).
- ``initial_js(dist) -> InitialJs`` — the JavaScript ``index.html`` loads before the first render
  (its module script and the chunks it preloads), raw and gzipped: the budget's figure.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("shopgraph.storefront")

APP_DIR = Path(__file__).resolve().parent / "app"
DIST_DIR = APP_DIR / "dist"
LOCK = APP_DIR / "package-lock.json"
# npm writes this on every install: older than the lock means the lock changed since (a pull).
INSTALLED_MARKER = APP_DIR / "node_modules" / ".package-lock.json"
# What the build reads besides node_modules: if any is newer than dist/index.html, rebuild.
SOURCES = ("src", "sw", "public", "index.html", "vite.config.ts", "package-lock.json", "../manifest.json")
TIMEOUT = 600.0  # seconds for one npm step


class BuildError(RuntimeError):
    """An npm step failed; the message holds the command and the end of its output."""


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm not found: install Node.js (20 or later) to build the storefront")
    return npm


def _run(*args: str, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            [_npm(), *args],
            cwd=APP_DIR,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise BuildError(f"npm {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        raise BuildError(f"npm {' '.join(args)} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def installed() -> bool:
    """Whether node_modules holds what package-lock.json pins (installed since it last changed)."""
    return INSTALLED_MARKER.is_file() and INSTALLED_MARKER.stat().st_mtime >= LOCK.stat().st_mtime


def npm_ci() -> None:
    """Install the app's packages exactly as package-lock.json pins them."""
    _run("ci", "--no-audit", "--no-fund", "--loglevel=error")


def build(out_dir: Path = DIST_DIR, *, persisted_queries: bool = False) -> Path:
    """``vite build`` into ``out_dir`` (emptied first), then the server renderer into ``out_dir/server``."""
    env = {"SHOPGRAPH_PERSISTED_QUERIES": "1" if persisted_queries else "0"}
    _run("run", "build:client", "--", "--outDir", str(out_dir), "--emptyOutDir", env=env)
    _run("run", "build:server", "--", "--outDir", str(out_dir / "server"), env=env)
    return out_dir


def server_entry(dist: Path = DIST_DIR) -> Path:
    return dist / "server" / "main.js"


def renderer(dist: Path, router_url: str, port: int, host: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    """Start the server renderer of ``dist`` on ``host:port``, reading the graph at ``router_url``
    (its base, without /graphql); it exits with the process that started it."""
    node = shutil.which("node")
    if node is None:
        raise BuildError("node not found: install Node.js (20 or later) to render the storefront's pages")
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": host,
        "SHOPGRAPH_ROUTER": router_url,
        "SHOPGRAPH_EXIT_WITH_PARENT": "1",
    }
    return subprocess.Popen([node, str(server_entry(dist))], env=env, cwd=dist)


def _newest_source() -> float:
    newest = 0.0
    for name in SOURCES:
        path = (APP_DIR / name).resolve()
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


def up_to_date(dist: Path = DIST_DIR) -> bool:
    index = dist / "index.html"
    built = index.is_file() and server_entry(dist).is_file()
    return built and min(index.stat().st_mtime, server_entry(dist).stat().st_mtime) >= _newest_source()


def ensure_built(dist: Path = DIST_DIR) -> bool:
    """Install and build the app if needed; True when ``dist`` holds a current build."""
    if up_to_date(dist):
        return True
    try:
        if not installed():
            log.info("storefront: installing its packages once with `npm ci` in %s …", APP_DIR)
            npm_ci()
        log.info("storefront: building it with `vite build` …")
        build(dist)
    except BuildError as exc:
        log.warning("storefront: not built, so the router serves GraphiQL only (%s)", exc)
        return False
    return True


@dataclass(frozen=True)
class InitialJs:
    files: tuple[str, ...]  # asset paths, as index.html names them
    raw_bytes: int
    gzip_bytes: int


_REFERENCES = re.compile(r'<(?:script[^>]*\ssrc|link[^>]*rel="modulepreload"[^>]*\shref)="([^"]+\.js)"')


def initial_js(dist: Path = DIST_DIR) -> InitialJs:
    """The scripts ``index.html`` loads up front (lazy chunks such as the admin area excluded)."""
    html = (dist / "index.html").read_text(encoding="utf-8")
    files = tuple(dict.fromkeys(_REFERENCES.findall(html)))
    if not files:
        raise BuildError(f"{dist / 'index.html'} loads no scripts")
    raw = gz = 0
    for name in files:
        data = (dist / name.lstrip("/")).read_bytes()
        raw += len(data)
        gz += len(gzip.compress(data, compresslevel=9))
    return InitialJs(files=files, raw_bytes=raw, gzip_bytes=gz)
