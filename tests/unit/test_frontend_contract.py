"""The storefront's operations still validate against the graph, and their manifest is current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frontend_contract.manifest import (
    FORMAT,
    MANIFEST_PATH,
    ContractError,
    api_schema,
    load_operation,
    load_operations,
    main,
    render_manifest,
    validation_errors,
)

# What the storefront and its back office cannot do without.
REQUIRED = {
    "ProductList", "ProductDetail", "ProductDetailBySku", "CategoryNav", "Register", "Login", "RefreshSession",
    "Logout", "Me", "AccountPage", "AddToCart", "UpdateCartItem", "RemoveFromCart", "CartPage", "Checkout",
    "OrderHistory", "OrderDetail", "CancelOrder", "StorefrontHome", "AdminCreateProduct", "AdminAdjustStock",
    "AdminUpdateOrderStatus", "AdminAllOrders",
}  # fmt: skip


def test_every_operation_validates_against_the_router_api_schema() -> None:
    assert validation_errors(load_operations(), api_schema()) == {}


def test_manifest_is_current() -> None:
    expected = render_manifest(load_operations())
    assert MANIFEST_PATH.read_text(encoding="utf-8") == expected, (
        "frontend_contract/manifest.json is stale: run `uv run python -m frontend_contract.manifest`"
    )


def test_manifest_is_an_apollo_persisted_query_manifest() -> None:
    manifest = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    assert (manifest["format"], manifest["version"]) == (FORMAT, 1)
    names = [entry["name"] for entry in manifest["operations"]]
    assert set(names) >= REQUIRED
    assert names == sorted(names) and len(set(names)) == len(names)
    for entry, op in zip(manifest["operations"], load_operations(), strict=True):
        assert set(entry) == {"id", "name", "type", "body"}
        assert entry == {"id": op.id, "name": op.name, "type": op.type, "body": op.body}
        assert entry["type"] in ("query", "mutation", "subscription")
        assert len(entry["id"]) == 64


def test_check_command_passes_on_the_repository() -> None:
    assert main(["--check"]) == 0


def test_an_operation_that_breaks_the_schema_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "Broken.graphql"
    path.write_text("query Broken { me { id shoeSize } products(first: 1) { edges { node { nope } } } }")
    problems = validation_errors([load_operation(path)], api_schema())
    assert problems == {
        "Broken": [
            "Cannot query field 'shoeSize' on type 'User'.",
            "Cannot query field 'nope' on type 'Product'. Did you mean 'name'?",
        ]
    }


def test_internal_fields_are_not_in_the_api_schema(tmp_path: Path) -> None:
    path = tmp_path / "Sneaky.graphql"
    path.write_text("mutation Sneaky { completeCheckout(input: {userId: 1, checkoutId: 2, lines: []}) { removed } }")
    assert "Sneaky" in validation_errors([load_operation(path)], api_schema())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("query Other { me { id } }", "must be named 'Named'"),
        ("{ me { id } }", "must be named 'Named'"),
        ("query Named { me { id } } query Named2 { me { id } }", "exactly one operation"),
        ("query Named { me { id }", "syntax error"),
    ],
)
def test_operation_files_follow_the_rules(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "Named.graphql"
    path.write_text(text)
    with pytest.raises(ContractError, match=message):
        load_operation(path)
