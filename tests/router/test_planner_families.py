"""Differential tests of the six Federation 2 families of issue 19 (part 1):
our router vs Apollo Gateway over the same fixture subgraphs
(fixtures/families.py), graphql-core over the fixture world as the referee
where the two disagree (world_oracle.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from router.supergraph import Supergraph
from tests.router.fed2_harness import Fed2Stacks, fed2_stacks
from tests.router.fixtures.families import FAMILIES
from tests.router.router_harness import gql
from tests.router.test_differential import _norm
from tests.router.world_oracle import WorldOracle

# Sets whose subgraphs answer a @shareable field differently on purpose (to see
# which one served it): the world referee can't tell which answer is right, so
# there Apollo Gateway's is the one (the field taken where the selection is).
GATEWAY_ONLY = {"sharediface"}
CASES = [(name, q, v) for name, (_, ops) in FAMILIES.items() for q, v in ops]


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed2Stacks]:
    with fed2_stacks(tmp_path_factory.mktemp("families")) as s:
        yield s


@pytest.mark.parametrize(("set_name", "query", "variables"), CASES)
async def test_family_same_as_gateway(
    client: httpx.AsyncClient, stacks: Fed2Stacks, set_name: str, query: str, variables: dict[str, Any]
) -> None:
    stack = stacks.get(set_name)
    assert stack.gateway_url is not None
    ours = await gql(client, stack.router_url, query, variables)
    theirs = await gql(client, stack.gateway_url, query, variables)
    # never a silent null: no data without an error saying why
    assert ours.get("data") is not None or ours.get("errors"), ours
    if set_name in GATEWAY_ONLY:
        assert _norm(ours) == _norm(theirs), (ours, theirs)
    elif _norm(ours) != _norm(theirs):
        # the referee: the operation run by graphql-core over the fixture world
        oracle = WorldOracle(FAMILIES[set_name][0], Supergraph(stack.supergraph).api_schema)
        spec = await oracle.answer(query, variables)
        assert _norm(ours) == _norm(spec) != _norm(theirs), (ours, theirs, spec)
