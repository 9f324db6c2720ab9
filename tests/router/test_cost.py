"""Demand control on the product's own supergraph: the storefront's operations pass the
default maximum with a wide margin, the issue's attack does not (pure: no servers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from router.config import Settings
from router.cost import CostEstimator, CostModel, manifest_cap
from router.pipeline import FALLBACK_MAX_COST, Schema
from router.supergraph import Supergraph
from tests.e2e.test_router_edge import COST_ATTACK

ROOT = Path(__file__).resolve().parents[2]
SDL = (ROOT / "schema" / "supergraph.graphql").read_text()
DEFAULTS = Settings()


def _estimator() -> CostEstimator:
    return CostEstimator(Supergraph(SDL).api_schema, CostModel.from_supergraph(SDL), DEFAULTS.default_list_size)


def _cost(est: CostEstimator, text: str, variables: dict[str, Any]) -> float:
    doc = parse(text)
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    op = next(d for d in doc.definitions if isinstance(d, OperationDefinitionNode))
    return est.estimate(op, frags, variables)


def test_list_sizes_come_from_the_supergraph() -> None:
    model = CostModel.from_supergraph(SDL)
    for field in (("Query", "products"), ("Category", "products"), ("User", "orders"), ("Query", "allOrders")):
        assert model.fields[field].slicing == ("first",), field
        assert set(model.fields[field].sized) == {"edges", "nodes"}


def test_the_default_cap_is_twice_the_storefronts_heaviest_operation_and_the_attacks_are_over_it() -> None:
    est = _estimator()
    manifest = json.loads((ROOT / "frontend_contract" / "manifest.json").read_text())
    # Every page size at its maximum (100): the heaviest the storefront can ask for.
    costs = {op["name"]: _cost(est, op["body"], {"first": 100}) for op in manifest["operations"]}
    heaviest = max(costs.values())
    assert DEFAULTS.max_cost is None  # derived
    cap = Schema(SDL, DEFAULTS, None).max_cost
    assert cap == manifest_cap(est, [op["body"] for op in manifest["operations"]], 2.0, 100)
    assert cap == int(2 * heaviest), (cap, costs)
    assert _cost(est, COST_ATTACK, {}) >= 40 * cap
    # The 48,020-cost query, under the old 50,000 cap: categories x 100 products x category x 10.
    single = (
        "query($p: Decimal) { categories { products(first: 100, filter: {minPrice: $p}) { edges { node { "
        "category { products(first: 10) { edges { node { id name } } } } } } } } }"
    )
    assert _cost(est, single, {}) > 5 * cap


def test_a_supergraph_without_a_manifest_gets_the_fallback_cap(tmp_path: Path) -> None:
    other = tmp_path / "manifest.json"
    other.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "operations": [{"id": "x", "name": "X", "type": "query", "body": "{ nosuchfield }"}],
            }
        )
    )
    assert Schema(SDL, Settings(cost_manifest=str(other)), None).max_cost == FALLBACK_MAX_COST
    assert Schema(SDL, Settings(max_cost=1234), None).max_cost == 1234


def test_a_page_larger_than_subgraphs_serve_costs_the_largest_page() -> None:
    est = CostEstimator(Supergraph(SDL).api_schema, CostModel.from_supergraph(SDL), 20, 100)
    q = "query($n: Int) { products(first: $n) { edges { node { id } } } }"
    assert _cost(est, q, {"n": 5000}) == _cost(est, q, {"n": 100}) == 1 + 100 * 2  # edges, node


def test_slicing_arguments_and_variables_size_lists() -> None:
    est = _estimator()
    q = "query($n: Int) { products(first: $n) { edges { node { id category { name } } } } }"
    assert _cost(est, q, {"n": 10}) == 1 + 10 * (1 + 1 + 1)
    assert _cost(est, q, {"n": 100}) == 1 + 100 * (1 + 1 + 1)
    assert _cost(est, q, {}) == 1 + 20 * 3  # assumedSize when `first` is absent
    # A list without @listSize: the default list size.
    assert _cost(est, "{ categories { name } }", {}) == DEFAULTS.default_list_size
