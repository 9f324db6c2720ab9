"""GraphiQL's "Query plan" panel, in headless Chromium against the router of the dev stack
(``query_plan.expose`` on): a query over two subgraphs is run in GraphiQL, and the panel shows
its plan and a waterfall of its two fetches with their timings. A screenshot is left in
tests/e2e/artifacts/ (the README's, frontend_contract/screenshots/graphiql-plan.png, is one).

The extension itself, over HTTP: only for a client that asks, only when configured — the
production configuration (deploy/router.yaml) does not expose it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx

from deploy.stack import ThreadedStack
from router.config import load
from router.telemetry import TIMINGS_EXTENSION
from tests.e2e.test_graphiql_browser import BROWSER, CHROMIUM, browser_ready  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "tests" / "e2e" / "artifacts" / "graphiql-plan.png"
# Root fields the entity cache keeps (products) are answered from it the second time: a page size
# no other test asks for makes the first time a miss.
QUERY = '{ products(first: %d) { edges { node { name } } } guestCart(token: "no-such-token") { id } }'


async def test_the_plan_and_fetch_timings_come_only_to_a_client_that_asks(router_url: str) -> None:
    query = QUERY % 37
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        asked = (
            await client.post(router_url, json={"query": query}, headers={"Apollo-Expose-Query-Plan": "true"})
        ).json()
        again = (
            await client.post(router_url, json={"query": query}, headers={"Apollo-Expose-Query-Plan": "true"})
        ).json()
        plain = (await client.post(router_url, json={"query": query})).json()
    assert "extensions" not in plain
    assert plain["data"] == asked["data"] == again["data"]
    timings = asked["extensions"][TIMINGS_EXTENSION]
    assert sorted(f["service"] for f in timings["fetches"]) == ["cart", "catalog"]
    for fetch in timings["fetches"]:
        assert fetch["status"] == 200
        assert fetch["startMs"] >= 0 and fetch["durationMs"] > 0
        assert fetch["startMs"] + fetch["durationMs"] <= timings["totalMs"]
    assert 'Fetch(service: "catalog")' in asked["extensions"]["apolloQueryPlan"]["text"]
    # The second time the catalog's answer comes from the entity cache: a hit, no fetch.
    cached = again["extensions"][TIMINGS_EXTENSION]
    assert [f["service"] for f in cached["fetches"]] == ["cart"]
    assert {"service": "catalog", "hits": 1, "misses": 0, "bypassed": False} in cached["entityCache"]
    assert cached["planningMs"] is None  # the plan came from the plan cache
    # Production: the configuration shipped leaves it off.
    assert load(ROOT / "deploy" / "router.yaml", env={}).expose_query_plan is False


def test_graphiql_shows_the_plan_and_a_waterfall_of_the_fetches(
    browser_ready: None,  # noqa: F811
    stack: ThreadedStack,
    router_url: str,
) -> None:
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    done = subprocess.run(
        ["node", "graphiql_plan.mjs", router_url, QUERY % 23, str(SCREENSHOT)],
        cwd=BROWSER,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CHROMIUM": str(CHROMIUM)},
        check=False,
    )
    word, _, data = done.stdout.strip().splitlines()[-1].partition(" ") if done.stdout.strip() else ("", "", "{}")
    assert word == "done", done.stdout + done.stderr
    seen = json.loads(data)
    assert seen["offsite"] == [], seen["offsite"]
    assert 'Fetch(service: "catalog")' in seen["plan"] and 'Fetch(service: "cart")' in seen["plan"]
    assert sorted(f["service"] for f in seen["fetches"]) == ["cart", "catalog"]
    assert all(f["text"].endswith(" ms") and f["width"].endswith("%") for f in seen["fetches"])
    assert seen["summary"].startswith("2 fetches in "), seen["summary"]
    assert SCREENSHOT.stat().st_size > 10_000
