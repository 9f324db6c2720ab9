"""Fixtures for the composition tests: fixture subgraph sets and the npm oracle."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# pytest puts tests/ on sys.path (tests/conftest.py has no package), where the
# tests/router/ package would shadow the real `router`; make the repo win.
_REPO = str(Path(__file__).resolve().parents[2])
if sys.path[0] != _REPO:
    sys.path.insert(0, _REPO)
    if "router" in sys.modules and not (sys.modules["router"].__file__ or "").startswith(_REPO + "/router/"):
        del sys.modules["router"]

from router.compose import SubgraphSource  # noqa: E402
from tests.support.npm import npm_ci_once  # noqa: E402

ORACLE = Path(__file__).parent / "oracle"


class Oracle:
    """`@apollo/composition` from npm, run through tests/compose/oracle/compose.js."""

    def compose(self, subgraphs: list[SubgraphSource]) -> dict[str, Any]:
        payload = json.dumps([{"name": s.name, "url": s.url, "sdl": s.sdl} for s in subgraphs])
        out = subprocess.run(
            ["node", str(ORACLE / "compose.js")],
            input=payload,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        result: dict[str, Any] = json.loads(out.stdout)
        return result


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    """Installs the pinned npm packages on first use (node_modules is not committed)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed to run the @apollo/composition oracle")
    npm_ci_once(ORACLE, ORACLE / "node_modules" / "@apollo" / "composition")
    return Oracle()
