"""schema/ holds the checked-in SDL; it must match what the code serves."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from router.compose import SubgraphSource, compose
from subgraphs.kit.config import SUBGRAPHS

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"
STALE = "schema/ is stale: run `uv run shopgraph compose`"


@pytest.mark.parametrize("name", SUBGRAPHS)
def test_subgraph_sdl_is_current(name: str) -> None:
    schema = importlib.import_module(f"subgraphs.{name}.schema").schema
    checked_in = (SCHEMA_DIR / f"{name}.graphql").read_text()
    assert checked_in.strip() == schema.as_str().strip(), STALE


def test_supergraph_is_current() -> None:
    checked_in = (SCHEMA_DIR / "supergraph.graphql").read_text()
    urls = {name: _url(checked_in, name) for name in SUBGRAPHS}
    sources = [SubgraphSource(name, urls[name], (SCHEMA_DIR / f"{name}.graphql").read_text()) for name in SUBGRAPHS]
    assert compose(sources).strip() == checked_in.strip(), STALE


def _url(supergraph: str, name: str) -> str:
    marker = f'@join__graph(name: "{name}", url: "'
    start = supergraph.index(marker) + len(marker)
    return supergraph[start : supergraph.index('"', start)]
