"""Where things are: the project's root, the dev ports, the dev data directory (cheap to import)."""

from __future__ import annotations

import os
from pathlib import Path

from subgraphs.kit.config import SUBGRAPHS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEV_PORT_BASE = 4000


def dev_data_dir() -> Path:
    """Where ``shopgraph dev`` keeps its embedded PostgreSQL cluster between runs."""
    return Path(os.environ.get("SHOPGRAPH_DATA_DIR") or PROJECT_ROOT / ".shopgraph")


def dev_ports(base: int = DEV_PORT_BASE) -> dict[str, int]:
    """router on ``base``, then users, catalog, cart, orders on base+1..base+4."""
    return {"router": base} | {name: base + 1 + i for i, name in enumerate(SUBGRAPHS)}
