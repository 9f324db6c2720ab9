"""Demand control on the product's own supergraph: the storefront's operations pass the
default maximum with a wide margin, the issue's attack does not (pure: no servers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from router.config import Settings
from router.cost import CostEstimator, CostModel
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


def test_the_storefronts_operations_pass_with_a_wide_margin_and_the_attack_does_not() -> None:
    est = _estimator()
    manifest = json.loads((ROOT / "frontend_contract" / "manifest.json").read_text())
    # Every page size at its maximum (100): the heaviest the storefront can ask for.
    costs = {op["name"]: _cost(est, op["body"], {"first": 100}) for op in manifest["operations"]}
    heaviest = max(costs.values())
    assert heaviest * 10 <= DEFAULTS.max_cost, costs
    attack = _cost(est, COST_ATTACK, {})
    assert attack >= 4 * DEFAULTS.max_cost, attack


def test_slicing_arguments_and_variables_size_lists() -> None:
    est = _estimator()
    q = "query($n: Int) { products(first: $n) { edges { node { id category { name } } } } }"
    assert _cost(est, q, {"n": 10}) == 1 + 10 * (1 + 1 + 1)
    assert _cost(est, q, {"n": 100}) == 1 + 100 * (1 + 1 + 1)
    assert _cost(est, q, {}) == 1 + 20 * 3  # assumedSize when `first` is absent
    # A list without @listSize: the default list size.
    assert _cost(est, "{ categories { name } }", {}) == DEFAULTS.default_list_size
