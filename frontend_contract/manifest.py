"""Load the storefront's operations, validate them, and write the persisted-query manifest.

The manifest follows Apollo's persisted query manifest format::

    {"format": "apollo-persisted-query-manifest", "version": 1,
     "operations": [{"id": <sha256 hex of body>, "name": ..., "type": "query", "body": ...}]}

``body`` is the operation printed by graphql-core (comments and layout
normalised), so the id does not change when a file is only reformatted.

    uv run python -m frontend_contract.manifest          # rewrite manifest.json
    uv run python -m frontend_contract.manifest --check  # exit 1 if stale or invalid
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import (
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    print_ast,
    validate,
)

from router.supergraph import Supergraph

PACKAGE_DIR = Path(__file__).resolve().parent
OPERATIONS_DIR = PACKAGE_DIR / "operations"
MANIFEST_PATH = PACKAGE_DIR / "manifest.json"
SUPERGRAPH_PATH = PACKAGE_DIR.parent / "schema" / "supergraph.graphql"
FORMAT = "apollo-persisted-query-manifest"


class ContractError(ValueError):
    """An operation file that breaks the contract's rules (the message names the file)."""


@dataclass(frozen=True)
class Operation:
    """One storefront operation, as the client sends it."""

    name: str
    type: str  # "query" | "mutation" | "subscription"
    body: str  # printed document: the operation and any fragments it defines
    path: Path

    @property
    def id(self) -> str:
        return hashlib.sha256(self.body.encode()).hexdigest()

    def entry(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "type": self.type, "body": self.body}


def load_operation(path: Path) -> Operation:
    """Parse one file: exactly one named operation, named like the file, plus optional fragments."""
    try:
        document = parse(path.read_text(encoding="utf-8"))
    except GraphQLError as exc:
        raise ContractError(f"{path.name}: syntax error: {exc.message}") from exc
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    others = [d for d in document.definitions if not isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)]
    if len(operations) != 1 or others:
        raise ContractError(f"{path.name}: must hold exactly one operation (and only fragments besides)")
    operation = operations[0]
    if operation.name is None or operation.name.value != path.stem:
        found = operation.name.value if operation.name else "an anonymous operation"
        raise ContractError(f"{path.name}: the operation must be named {path.stem!r}, found {found}")
    return Operation(name=path.stem, type=operation.operation.value, body=print_ast(document), path=path)


def load_operations(directory: Path = OPERATIONS_DIR) -> list[Operation]:
    """Every ``*.graphql`` file of ``directory``, sorted by name."""
    operations = [load_operation(path) for path in sorted(directory.glob("*.graphql"))]
    if not operations:
        raise ContractError(f"no .graphql operations in {directory}")
    seen: dict[str, str] = {}
    for op in operations:
        if op.id in seen:
            raise ContractError(f"{op.path.name}: same document as {seen[op.id]}")
        seen[op.id] = op.path.name
    return operations


def by_name(operations: Iterable[Operation] | None = None) -> dict[str, Operation]:
    return {op.name: op for op in (load_operations() if operations is None else operations)}


def build_manifest(operations: Sequence[Operation]) -> dict[str, Any]:
    return {"format": FORMAT, "version": 1, "operations": [op.entry() for op in operations]}


def render_manifest(operations: Sequence[Operation]) -> str:
    """The manifest file's exact text (stable: sorted operations, two-space indent, final newline)."""
    return json.dumps(build_manifest(operations), indent=2, ensure_ascii=False) + "\n"


def api_schema(supergraph_path: Path = SUPERGRAPH_PATH) -> GraphQLSchema:
    """The API schema the router serves for the checked-in supergraph."""
    return Supergraph(supergraph_path.read_text(encoding="utf-8")).api_schema


def validation_errors(operations: Iterable[Operation], schema: GraphQLSchema) -> dict[str, list[str]]:
    """Operation name -> its validation errors against ``schema`` (only operations with errors)."""
    problems: dict[str, list[str]] = {}
    for op in operations:
        errors = validate(schema, parse(op.body))
        if errors:
            problems[op.name] = [error.message for error in errors]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m frontend_contract.manifest", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when stale or invalid")
    parser.add_argument("--supergraph", type=Path, default=SUPERGRAPH_PATH, help="validate against this supergraph")
    args = parser.parse_args(argv)
    try:
        operations = load_operations()
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    problems = validation_errors(operations, api_schema(args.supergraph))
    for name, messages in problems.items():
        for message in messages:
            print(f"error: {name}: {message}", file=sys.stderr)
    text = render_manifest(operations)
    current = MANIFEST_PATH.read_text(encoding="utf-8") if MANIFEST_PATH.exists() else None
    if args.check:
        if current != text:
            print(
                f"error: {MANIFEST_PATH.name} is stale; run: uv run python -m frontend_contract.manifest",
                file=sys.stderr,
            )
            return 1
        return 1 if problems else 0
    if problems:
        return 1
    if current != text:
        MANIFEST_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {MANIFEST_PATH} ({len(operations)} operations)")
    else:
        print(f"{MANIFEST_PATH.name} is up to date ({len(operations)} operations)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
