"""The API schema the storefront is typed from, and the gate on breaking changes to it.

``schema.graphql`` (beside this file) is the router's API schema as last accepted: GraphQL Code
Generator types the app from it and the operations. When ``schema/supergraph.graphql`` changes,
this module compares the new API schema with the committed one (graphql-core's
``find_breaking_changes``, the reference implementation's port):

    uv run python -m frontend_contract.api_schema           # refresh schema.graphql (refused on breaking changes)
    uv run python -m frontend_contract.api_schema --check   # exit 1 on an unrecorded breaking change
    uv run python -m frontend_contract.api_schema --accept-breaking "why it is fine"

A breaking change (a removed field, a narrowed argument, …) is accepted only with
``--accept-breaking``: it appends the changes and the reason to ``breaking_changes.json`` and then
writes the schema, after which the app must still type-check (``npm run codegen`` then ``tsc``,
which the frontend tests run) for CI to pass. Compatible additions (a new field, type or
mutation) never fail the check: the committed schema may lag them until someone refreshes it to
use them, and the next breaking change is still measured from what the app was typed against.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphql import GraphQLSchema, build_schema, find_breaking_changes, print_schema

from frontend_contract.manifest import PACKAGE_DIR, SUPERGRAPH_PATH, api_schema

SCHEMA_PATH = PACKAGE_DIR / "schema.graphql"
RECORD_PATH = PACKAGE_DIR / "breaking_changes.json"
HEADER = (
    "# The router's API schema as the storefront was last typed against it.\n"
    "# Written by `uv run python -m frontend_contract.api_schema`; do not edit by hand.\n\n"
)


def render(schema: GraphQLSchema) -> str:
    """The exact text of ``schema.graphql`` for ``schema``."""
    return HEADER + print_schema(schema) + "\n"


def breaking_changes(old_sdl: str, new: GraphQLSchema) -> list[str]:
    """Each breaking change from ``old_sdl`` to ``new``, as ``TYPE: description``, sorted."""
    changes = find_breaking_changes(build_schema(old_sdl), new)
    return sorted(f"{change.type.name}: {change.description}" for change in changes)


@dataclass(frozen=True)
class Status:
    """How the committed schema stands against the one the supergraph gives now."""

    current: str  # the text schema.graphql should hold
    stale: bool
    breaking: list[str]  # breaking changes from the committed schema to the current one


def status(supergraph_path: Path = SUPERGRAPH_PATH, schema_path: Path | None = None) -> Status:
    schema_path = schema_path or SCHEMA_PATH
    new = api_schema(supergraph_path)
    current = render(new)
    committed = schema_path.read_text(encoding="utf-8") if schema_path.exists() else None
    if committed is None:
        return Status(current=current, stale=True, breaking=[])
    return Status(current=current, stale=committed != current, breaking=breaking_changes(committed, new))


def record(changes: Sequence[str], why: str, record_path: Path | None = None) -> None:
    """Append one accepted set of breaking changes (with the reason) to the record."""
    record_path = record_path or RECORD_PATH
    entries: list[dict[str, Any]] = json.loads(record_path.read_text(encoding="utf-8")) if record_path.exists() else []
    entries.append({"accepted": datetime.now(UTC).strftime("%Y-%m-%d"), "why": why, "changes": list(changes)})
    record_path.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m frontend_contract.api_schema", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only check; exit 1 on unrecorded breaking changes")
    mode.add_argument("--accept-breaking", metavar="WHY", help="record the breaking changes with this reason")
    parser.add_argument("--supergraph", type=Path, default=SUPERGRAPH_PATH)
    args = parser.parse_args(argv)
    now = status(args.supergraph)
    for change in now.breaking:
        print(f"breaking: {change}", file=sys.stderr)
    if args.check:
        if now.breaking:
            print(
                "error: the API schema has breaking changes for the storefront; if they are intended, run\n"
                '  uv run python -m frontend_contract.api_schema --accept-breaking "why"\n'
                "then `npm run codegen` in frontend_contract/app and make the app type-check again",
                file=sys.stderr,
            )
            return 1
        if now.stale:
            print(f"note: {SCHEMA_PATH.name} lags compatible additions; refresh it to use them", file=sys.stderr)
        return 0
    if now.breaking and not args.accept_breaking:
        print("refused: breaking changes; pass --accept-breaking WHY to record and accept them", file=sys.stderr)
        return 1
    if now.breaking:
        record(now.breaking, args.accept_breaking)
        print(f"recorded {len(now.breaking)} breaking change(s) in {RECORD_PATH.name}")
    if now.stale:
        SCHEMA_PATH.write_text(now.current, encoding="utf-8")
        print(f"wrote {SCHEMA_PATH}; now run `npm run codegen` in frontend_contract/app")
    else:
        print(f"{SCHEMA_PATH.name} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
