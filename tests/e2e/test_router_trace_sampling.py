"""Issue 18, finding 18: a client's ``traceparent`` sampled flag does not force trace export.

Attack (black box): a router process exporting to an OTLP collector (this test's)
with sampling 0 is sent requests whose ``traceparent`` says "sampled". Before the
fix every one was exported (the SDK's default sampler follows a remote parent).
The same router told to trust clients (``SHOPGRAPH_TRUST_CLIENT_SAMPLING=1``)
exports them: the collector works, and the choice is configuration.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from deploy.stack import ThreadedStack
from tests.e2e.router_process import client_from, own_address, start
from tests.router.router_harness import ThreadServer


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[list[bytes], str]]:
    received: list[bytes] = []

    async def traces(request: Request) -> Response:
        received.append(await request.body())
        return Response(b"", media_type="application/x-protobuf")

    with ThreadServer(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])) as server:
        yield received, server.url


@pytest.mark.parametrize("trusted", [False, True])
async def test_a_clients_sampled_flag_is_not_followed_unless_configured(
    stack: ThreadedStack, collector: tuple[list[bytes], str], tmp_path: Path, trusted: bool
) -> None:
    received, endpoint = collector
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **({"SHOPGRAPH_TRUST_CLIENT_SAMPLING": "1"} if trusted else {}),
    }
    for router in start(stack, tmp_path, {}, env):
        received.clear()
        async with client_from(own_address(), timeout=30) as client:
            for _ in range(10):
                traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
                r = await client.post(
                    router.graphql, json={"query": "{ __typename }"}, headers={"traceparent": traceparent}
                )
                assert r.status_code == 200
        await asyncio.sleep(1.5)  # several export periods
        assert bool(received) == trusted, len(received)
