"""The storefront app's contract, checked with its own tools (Node.js and npm are required).

- the API schema it is typed against (frontend_contract/schema.graphql) is the router's current
  one, and no breaking change to it goes unrecorded (frontend_contract/api_schema.py);
- the generated types (frontend_contract/app/src/gql) are what GraphQL Code Generator makes of
  that schema and the operations (``graphql-codegen --check``);
- the app and its tests type-check (``tsc --noEmit``) and its Vitest unit and component tests pass;
- ESLint finds nothing and the sources are as Prettier formats them (``npm run lint``, ``format:check``);
- the production build's initial JavaScript stays within the 250 KB gzipped budget.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from graphql import build_schema

from frontend_contract import api_schema, build
from frontend_contract.manifest import api_schema as current_api_schema
from tests.support.npm import npm_ci_once, storefront_build

BUDGET_GZIP_BYTES = 250 * 1024


@pytest.fixture(scope="module")
def app_installed() -> Path:
    """The app's npm packages, installed with ``npm ci`` from the committed lock when missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js and npm are required by the storefront tests: install Node.js 20 or later")
    npm_ci_once(build.APP_DIR, build.installed)
    assert build.installed()
    return build.APP_DIR


def _npx(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npx", "--no-install", *args], cwd=app, capture_output=True, text=True, timeout=600, check=False
    )


def test_no_unrecorded_breaking_change_to_the_api_schema() -> None:
    now = api_schema.status()
    assert not now.breaking, (
        "breaking changes to the API schema the storefront is typed against:\n  "
        + "\n  ".join(now.breaking)
        + '\nrecord them with `uv run python -m frontend_contract.api_schema --accept-breaking "why"`, '
        "then `npm run codegen` in frontend_contract/app and make the app type-check"
    )
    assert api_schema.main(["--check"]) == 0


def test_the_cli_refuses_a_breaking_change_unless_accepted_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = api_schema.SCHEMA_PATH.read_text(encoding="utf-8")
    schema_path, record_path = tmp_path / "schema.graphql", tmp_path / "breaking_changes.json"
    # The app was typed against a schema with a field the router no longer has.
    schema_path.write_text(committed.replace("type Product {\n", "type Product {\n  colour: String\n", 1))
    monkeypatch.setattr(api_schema, "SCHEMA_PATH", schema_path)
    monkeypatch.setattr(api_schema, "RECORD_PATH", record_path)
    assert api_schema.main(["--check"]) == 1
    assert api_schema.main([]) == 1 and not record_path.exists()
    assert api_schema.main(["--accept-breaking", "colour moved to variants"]) == 0
    assert schema_path.read_text(encoding="utf-8") == committed
    [entry] = json.loads(record_path.read_text(encoding="utf-8"))
    assert entry["why"] == "colour moved to variants"
    assert entry["changes"] == ["FIELD_REMOVED: Field Product.colour was removed."]


def test_the_gate_sees_a_removed_field_and_an_added_one_is_not_breaking() -> None:
    committed = api_schema.SCHEMA_PATH.read_text(encoding="utf-8")
    schema = current_api_schema()
    assert api_schema.breaking_changes(committed, schema) == []
    without_stock = committed.replace("  stock: Int!\n", "", 1)
    assert without_stock != committed
    assert api_schema.breaking_changes(without_stock, schema) == []  # adding a field breaks nothing
    assert api_schema.breaking_changes(committed, build_schema(without_stock)) == [
        "FIELD_REMOVED: Field Product.stock was removed."
    ]


def test_generated_types_are_current(app_installed: Path) -> None:
    done = _npx(app_installed, "graphql-codegen", "--config", "codegen.ts", "--check")
    assert done.returncode == 0, f"generated types are stale: run `npm run codegen`\n{done.stdout}{done.stderr}"


def test_app_type_checks(app_installed: Path) -> None:
    done = _npx(app_installed, "tsc", "--noEmit", "-p", "tsconfig.json")
    assert done.returncode == 0, f"tsc --noEmit failed:\n{done.stdout}{done.stderr}"


def test_eslint_finds_nothing(app_installed: Path) -> None:
    done = _npx(app_installed, "eslint", ".")
    assert done.returncode == 0, f"eslint found problems:\n{done.stdout}{done.stderr}"


def test_sources_are_formatted_by_prettier(app_installed: Path) -> None:
    done = _npx(app_installed, "prettier", "--check", ".")
    assert done.returncode == 0, f"not formatted (`npm run format` fixes it):\n{done.stdout}{done.stderr}"


def test_vitest_unit_tests_pass(app_installed: Path) -> None:
    done = _npx(app_installed, "vitest", "run", "--reporter=dot")
    assert done.returncode == 0, f"vitest failed:\n{done.stdout}{done.stderr}"
    assert "passed" in done.stdout


def test_initial_javascript_is_within_budget(app_installed: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    out = storefront_build(tmp_path_factory)  # this run's production build of the current sources
    first = build.initial_js(out)
    raw_kib, gzip_kib = first.raw_bytes / 1024, first.gzip_bytes / 1024
    print(f"initial JS: {', '.join(first.files)}: {raw_kib:.1f} KB, {gzip_kib:.1f} KB gzipped")
    assert all("AdminPage" not in name for name in first.files), "the admin area must load on demand"
    assert first.gzip_bytes <= BUDGET_GZIP_BYTES, f"initial JS is {first.gzip_bytes / 1024:.1f} KB gzipped (> 250 KB)"


def test_without_npm_dev_runs_graphiql_only_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
    monkeypatch.setattr(build, "INSTALLED_MARKER", tmp_path / "missing")
    with caplog.at_level(logging.WARNING, logger="shopgraph.storefront"):
        assert build.ensure_built(tmp_path / "dist") is False
    assert not (tmp_path / "dist").exists()
    assert "GraphiQL only" in caplog.text and "npm not found" in caplog.text
