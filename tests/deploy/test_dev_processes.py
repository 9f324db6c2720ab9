"""``shopgraph dev --processes``: each subgraph in a process of its own, so one can be stopped
and the router's partial results watched; the start-up reports each step with its time."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import AsyncIterator

import pytest

from deploy.progress import Progress
from deploy.stack import Stack, compose_router
from tests.support.graphql import gql
from tests.support.processes import alive, wait_gone

PARTIAL = '{ me { email } product(sku: "NO-SUCH-SKU") { name } }'
REGISTER = """mutation { register(input: {email: "procs@example.com", password: "a long secret", name: "P"}) {
  accessToken } }"""


@pytest.fixture
async def stack_in_processes() -> AsyncIterator[tuple[Stack, str]]:
    report = io.StringIO()
    stack = Stack(fresh_database=True, seed=False, router=compose_router, processes=True, progress=Progress(report))
    async with stack:
        yield stack, report.getvalue()


async def test_each_subgraph_runs_in_its_own_process_and_stopping_one_leaves_partial_results(
    stack_in_processes: tuple[Stack, str],
) -> None:
    stack, report = stack_in_processes
    assert set(stack.pids) == set(stack.subgraphs)
    assert len({*stack.pids.values(), os.getpid()}) == len(stack.subgraphs) + 1
    assert all(alive(pid) for pid in stack.pids.values())
    for step in ("migrations", "subgraphs", "router"):
        assert f"✓ {step}" in report, report
    assert "a process each" in report

    token = (await gql(stack.url("router"), REGISTER))["data"]["register"]["accessToken"]
    before = await gql(stack.url("router"), PARTIAL, token=token)
    assert before == {"data": {"me": {"email": "procs@example.com"}, "product": None}}

    os.kill(stack.pids["catalog"], signal.SIGKILL)
    assert wait_gone([stack.pids["catalog"]]) == []
    after = await gql(stack.url("router"), PARTIAL, token=token)
    # catalog's field fails alone: the router still answers what users serves.
    assert after["data"] == {"me": {"email": "procs@example.com"}, "product": None}
    assert [e["extensions"].get("serviceName") for e in after["errors"]] == ["catalog"]
