"""Condition nodes against real fixture subgraphs: a fetch there only for a
selection under a false @include/@skip is never sent; answers equal Apollo Gateway's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.router.fed2_harness import Fed2Stacks, fed2_stacks
from tests.router.router_harness import gql
from tests.router.test_differential import _norm

# (query, variables, subgraphs of the `hop` set the router must call)
CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    # price: listing -> ids (upc -> id) -> pricing, all of it under the condition
    ("query($a: Boolean!) { products { name price @include(if: $a) } }", {"a": True}, ["listing", "ids", "pricing"]),
    ("query($a: Boolean!) { products { name price @include(if: $a) } }", {"a": False}, ["listing"]),
    (
        "query($s: Boolean!) { products { name ... @skip(if: $s) { price } } }",
        {"s": False},
        ["listing", "ids", "pricing"],
    ),
    ("query($s: Boolean!) { products { name ... @skip(if: $s) { price } } }", {"s": True}, ["listing"]),
    # a constant condition: no Condition node, the fetches run
    ("{ products { name price @include(if: true) } }", {}, ["listing", "ids", "pricing"]),
]


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed2Stacks]:
    with fed2_stacks(tmp_path_factory.mktemp("conditions")) as s:
        yield s


@pytest.mark.parametrize(("query", "variables", "called"), CASES)
async def test_false_condition_skips_the_subgraph_call(
    client: httpx.AsyncClient, stacks: Fed2Stacks, query: str, variables: dict[str, Any], called: list[str]
) -> None:
    stack = stacks.get("hop")
    assert stack.gateway_url is not None
    stacks.log.paths.clear()
    ours = await gql(client, stack.router_url, query, variables)
    assert sorted(p.strip("/").split("/")[1] for p in stacks.log.paths) == sorted(called), stacks.log.paths
    theirs = await gql(client, stack.gateway_url, query, variables)
    assert _norm(ours) == _norm(theirs)
    assert "errors" not in ours and ours["data"]["products"], ours
    assert all(("price" in p) == (len(called) > 1) for p in ours["data"]["products"]), ours
