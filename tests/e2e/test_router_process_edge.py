"""Issue 18 against a `shopgraph router` process (uvloop, httptools, the CLI's text logs):
findings 12 (X-Forwarded-For), 15 (lost and forged access-log lines), 7 (/metrics).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from deploy.stack import ThreadedStack
from tests.e2e.router_process import RouterProcess, client_from, own_address, start
from tests.router.router_harness import free_port
from tests.support.wait import until

BURST = 5


@pytest.fixture(scope="module")
def router(stack: ThreadedStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    config = {"rate_limits": {"anonymous": {"rate": 0.05, "burst": BURST}}}
    yield from start(stack, tmp_path_factory.mktemp("router-process"), config, {"SHOPGRAPH_LOG_FORMAT": "text"})


async def test_a_rotating_x_forwarded_for_does_not_escape_the_rate_limit(router: RouterProcess) -> None:
    """Finding 12: uvicorn believed X-Forwarded-For from 127.0.0.1: 0 of 2,160 rotated requests were refused."""
    # From 127.0.0.1: the address uvicorn believed X-Forwarded-For from by default.
    async with client_from("127.0.0.1", timeout=30) as client:
        statuses = [
            (
                await client.post(
                    router.graphql,
                    json={"query": "{ __typename }"},
                    headers={"x-forwarded-for": f"10.{i}.{i}.{i}", "x-real-ip": f"10.{i}.0.1"},
                )
            ).status_code
            for i in range(3 * BURST)
        ]
    assert statuses.count(200) == BURST, statuses
    assert statuses.count(429) == 2 * BURST, statuses


async def _exchange(address: str, url: str, requests: list[bytes]) -> list[bytes]:
    """Send ``requests`` at once (pipelined) on one keep-alive connection; the status lines."""
    u = urlsplit(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port, local_addr=(address, 0))
    heads = []
    try:
        writer.write(b"".join(requests))
        await writer.drain()
        for _ in requests:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            heads.append(head.split(b"\r\n", 1)[0])
    finally:
        writer.close()
    return heads


def _post(host: str, body: bytes, request_id: str) -> bytes:
    return (
        f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"X-Request-ID: {request_id}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def test_no_access_log_line_is_lost_after_a_large_body(router: RouterProcess) -> None:
    """Finding 15: after a body over 64 KB on a keep-alive connection the next line was lost
    (KeyError 'request_id': the first request's context leaked into the second)."""
    host = urlsplit(router.url).netloc
    big = json.dumps({"query": "#" + "x" * 70_000 + "\n{ __typename }"}).encode()
    small = json.dumps({"query": "{ __typename }"}).encode()
    before = len([line for line in router.lines() if "POST /graphql 200" in line])
    ids = [f"big-{uuid.uuid4().hex[:8]}", f"next-{uuid.uuid4().hex[:8]}", f"last-{uuid.uuid4().hex[:8]}"]
    heads = await _exchange(
        own_address(), router.url, [_post(host, big, ids[0]), _post(host, small, ids[1]), _post(host, small, ids[2])]
    )
    assert all(h.endswith(b" 200 OK") for h in heads), heads

    def logged() -> list[str]:  # the lines are written after the responses
        lines = router.lines()
        broken = [line for line in lines if "Logging error" in line or "KeyError" in line]
        return lines if broken or len([line for line in lines if "POST /graphql 200" in line]) >= before + 3 else []

    lines = await until(logged, what="the three requests' access lines (or a logging error)")
    assert not [line for line in lines if "Logging error" in line or "KeyError" in line]
    assert len([line for line in lines if "POST /graphql 200" in line]) == before + 3


async def test_a_newline_in_the_path_cannot_forge_a_log_line(router: RouterProcess) -> None:
    marker = f"FORGED{uuid.uuid4().hex[:8]}"
    async with client_from(own_address(), timeout=30) as client:
        r = await client.get(router.url + f"/x%0A12:00:00%20INFO%20shopgraph.router.access:%20{marker}%0D%0A")
        assert r.status_code < 500
    mine = await until(lambda: [line for line in router.lines() if marker in line], what="the request's access line")
    assert all("shopgraph.router.access: GET /x%0A" in line for line in mine), mine


@pytest.fixture(scope="module")
def admin_router(stack: ThreadedStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    config = {"admin": {"listen": f"127.0.0.1:{free_port()}"}}
    yield from start(stack, tmp_path_factory.mktemp("router-admin"), config)


async def test_metrics_are_on_the_admin_listener_only_and_bounded(admin_router: RouterProcess) -> None:
    """Finding 7: /metrics was public; ~2,600 junk operation names made it 2.7 MB."""
    assert admin_router.admin_url is not None
    async with client_from(own_address(), timeout=30) as client:
        public = await client.get(admin_router.url + "/metrics")
        assert "shopgraph_router_requests" not in public.text
        for i in range(300):
            r = await client.post(
                admin_router.graphql, json={"query": f"query Junk{i} {{ __typename }}", "operationName": f"Junk{i}"}
            )
            assert r.status_code == 200, r.text
        scraped = (await client.get(admin_router.admin_url + "/metrics")).text
    labels = set(re.findall(r'shopgraph_router_requests_total\{[^}]*operation="([^"]*)"', scraped))
    assert "other" in labels, [line for line in scraped.splitlines() if "router_requests" in line][:5]
    assert len(labels) <= 101 + 2, len(labels)  # the cap, "other", "anonymous"
