"""Compiled bytecode for ``shopgraph dev`` when the environment asks Python not to write it."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_bytecode_in(directory: Path) -> bool:
    """Write and reuse ``.pyc`` files under ``directory`` if ``PYTHONDONTWRITEBYTECODE`` is set.

    Containers and CI images often set it so that no ``__pycache__`` lands beside the
    sources; then every ``shopgraph dev`` compiled SQLAlchemy, strawberry, graphql-core,
    redis and our apps from source again: ~1.4 s of CPU, most of a restart. A cache in
    the dev data directory (``sys.pycache_prefix``) keeps the sources' tree clean and
    makes restarts reuse it. The environment is updated too, so ``dev --processes``
    children use the same cache. Returns whether the cache was turned on.
    """
    if not sys.dont_write_bytecode or sys.pycache_prefix is not None:
        return False
    prefix = directory.resolve() / "pycache"
    sys.pycache_prefix = str(prefix)
    sys.dont_write_bytecode = False
    os.environ["PYTHONPYCACHEPREFIX"] = str(prefix)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return True
