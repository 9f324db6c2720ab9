"""The docs: no link leaves the repository, and the README's GraphQL examples work verbatim.

Every ```graphql block's operations validate against the router's API schema; the
queries and the sign-in among them run on the seeded test stack (what a fresh
``shopgraph dev`` has) through the router, as the demo shopper, without errors.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import DocumentNode, FieldNode, OperationDefinitionNode, OperationType, parse, print_ast, validate

from deploy.stack import ThreadedStack
from router.supergraph import Supergraph
from tests.support.graphql import gql

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *(ROOT / p / "README.md" for p in ("router", "subgraphs", "deploy", "frontend_contract"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_URL = re.compile(r"\bhttps?://[^\s)`'\"<>|]+")
_FENCED = re.compile(r"^```.*?^```", re.S | re.M)
_LOCAL = re.compile(r"^https?://(127\.0\.0\.1|localhost)([:/]|$)")


def _admin_only_query_fields() -> set[str]:
    """Query fields the supergraph gives only to administrators (``@requiresScopes role:admin``)."""
    text = (ROOT / "schema" / "supergraph.graphql").read_text()
    query = text[text.index("type Query") :]
    query = query[: query.index("\n}")]
    return set(re.findall(r'^\s+(\w+)\b.*@requiresScopes\(scopes: \[\["role:admin"\]\]\)', query, re.M))


def _examples() -> list[OperationDefinitionNode]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```graphql\n(.*?)```", text, re.DOTALL)
    operations = [d for block in blocks for d in parse(block).definitions]
    assert all(isinstance(o, OperationDefinitionNode) for o in operations)
    return [o for o in operations if isinstance(o, OperationDefinitionNode)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_link_nothing_outside_the_repository(doc: Path) -> None:
    # Addresses inside code blocks are examples (a router.yaml naming its subgraphs), not links.
    text = _FENCED.sub("", doc.read_text())
    outside = [url for url in _URL.findall(text) if not _LOCAL.match(url)]
    assert outside == [], f"{doc.name} links outside the repository: {outside}"
    for target in _LINK.findall(text):
        if _LOCAL.match(target) or target.startswith("#"):
            continue
        assert (doc.parent / target.split("#")[0]).resolve().is_relative_to(ROOT), target
        assert (doc.parent / target.split("#")[0]).exists(), f"{doc.name}: {target} does not exist"


def test_every_graphql_example_in_the_readme_is_valid_against_the_graph() -> None:
    schema = Supergraph((ROOT / "schema" / "supergraph.graphql").read_text()).api_schema
    operations = _examples()
    assert len(operations) >= 10
    for operation in operations:
        errors = validate(schema, DocumentNode(definitions=(operation,)))
        assert not errors, f"{print_ast(operation)}\n{errors}"


async def test_the_readme_queries_and_sign_in_work_verbatim_on_a_seeded_stack(
    stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    router = stack.urls.get("router") or stack.start_router()
    operations = _examples()
    sign_in = [o for o in operations if "login" in print_ast(o) and "…" not in print_ast(o)]
    assert sign_in, "the README signs the demo shopper in"
    (login,) = sign_in
    signed_in = await gql(router, print_ast(login))
    assert signed_in["data"]["login"]["userErrors"] == []
    token = signed_in["data"]["login"]["accessToken"]
    assert demo_accounts["CUSTOMER"][0] in print_ast(login)

    # The README marks the dashboard's queries (ADMIN): they run as the demo administrator.
    customer, admin = demo_accounts["CUSTOMER"], demo_accounts["ADMIN"]
    as_admin = print_ast(login).replace(customer[0], admin[0]).replace(customer[1], admin[1])
    admin_token = (await gql(router, as_admin))["data"]["login"]["accessToken"]
    admin_only = _admin_only_query_fields()
    queries = [o for o in operations if o.operation is OperationType.QUERY]
    assert len(queries) >= 4
    for query in queries:
        roots = {s.name.value for s in query.selection_set.selections if isinstance(s, FieldNode)}
        result = await gql(router, print_ast(query), token=admin_token if roots & admin_only else token)
        assert "errors" not in result, (print_ast(query), result)
        assert all(value not in (None, [], {}) for value in result["data"].values()), result
