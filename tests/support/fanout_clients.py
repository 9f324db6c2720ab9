"""Many graphql-transport-ws subscribers in a process of their own (fan-out tests and benchmarks).

usage: python -m tests.support.fanout_clients WS_URL TOKEN SUBSCRIBERS PER_CONNECTION QUERY_FIELD QUERY

Opens ceil(SUBSCRIBERS / PER_CONNECTION) WebSocket connections to WS_URL, each
initialised with TOKEN and carrying PER_CONNECTION subscriptions of QUERY.
Every ``next`` is stamped with the wall clock (``time.time()``) as soon as the
frame is handed over by the socket, and recorded as (subscription, event id)
where the id is ``payload.data[QUERY_FIELD].id``. Nothing else is decoded on
the hot path.

Protocol with the parent, one line each way:

- stdout ``ready`` once every subscription has been sent;
- stdout ``primed`` once every subscription has received at least one event
  (the parent sends warm-up events until then: that is how it knows each one
  has reached the subgraph);
- stdin ``finish {"ids": [...], "commits": {id: t}, "within": s}``: wait (at most
  ``within`` s) until every subscription has the last of ``ids``, then close
  everything and print ``result {json}`` (see ``_report``) and exit.

Being a separate process, client-side decoding does not compete with the
router's event loop or the stack's (it still shares the machine's cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import sys
import time
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")


class Subscribers:
    def __init__(self, url: str, token: str, count: int, per_connection: int, field: str, query: str) -> None:
        self.url = url
        self.token = token
        self.count = count
        self.per_connection = per_connection
        self.field = field
        self.query = query
        # subscription id -> [(event id, received at)]
        self.received: dict[str, list[tuple[int, float]]] = {str(i): [] for i in range(count)}
        self.errors: list[str] = []
        self.sample: dict[str, Any] | None = None  # one full payload, for the parent to check enrichment
        self.changed = asyncio.Event()
        self.conns: list[ClientConnection] = []

    async def open(self) -> None:
        async def one(first: int) -> ClientConnection:
            ws = await connect(self.url, subprotocols=[PROTOCOL], max_size=None, open_timeout=60, ping_interval=None)
            await ws.send(
                orjson.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}}).decode()
            )
            ack = orjson.loads(await ws.recv())
            assert ack["type"] == "connection_ack", ack
            for i in range(first, min(self.count, first + self.per_connection)):
                msg = {"id": str(i), "type": "subscribe", "payload": {"query": self.query}}
                await ws.send(orjson.dumps(msg).decode())
            return ws

        starts = range(0, self.count, self.per_connection)
        sem = asyncio.Semaphore(50)  # do not stampede the accept queue

        async def guarded(first: int) -> ClientConnection:
            async with sem:
                return await one(first)

        self.conns = list(await asyncio.gather(*(guarded(s) for s in starts)))

    async def read(self, ws: ClientConnection) -> None:
        field = self.field
        received = self.received
        async for raw in ws:
            now = time.time()
            msg = orjson.loads(raw)
            kind = msg.get("type")
            if kind == "next":
                payload = msg.get("payload") or {}
                event = (payload.get("data") or {}).get(field)
                if event is None or payload.get("errors"):
                    self.errors.append(str(msg)[:500])
                    continue
                received[msg["id"]].append((int(event["id"]), now))
                if self.sample is None:
                    self.sample = payload
                self.changed.set()
            elif kind in ("error", "complete"):
                self.errors.append(str(msg)[:500])
            elif kind == "ping":
                await ws.send('{"type":"pong"}')

    def everyone_has(self, predicate: Any) -> bool:
        return all(predicate(got) for got in self.received.values())


def _report(subs: Subscribers, ids: list[int], commits: dict[int, float]) -> dict[str, Any]:
    """Per-subscription completeness/order over ``ids``, and commit -> delivery latencies (ms)."""
    wanted = set(ids)
    complete = in_order = duplicates = 0
    latencies: list[float] = []
    for got in subs.received.values():
        seen = [e for e, _ in got]
        if len(set(seen)) != len(seen):
            duplicates += 1
        if all(a < b for a, b in itertools.pairwise(seen)):
            in_order += 1
        if [e for e in seen if e in wanted] == ids:
            complete += 1
        latencies.extend((t - commits[e]) * 1000 for e, t in got if e in commits)
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, math.ceil(p * len(latencies)) - 1)], 2) if latencies else None

    return {
        "subscribers": subs.count,
        "events": len(ids),
        "deliveries": len(latencies),
        "complete": complete,
        "in_order": in_order,
        "with_duplicates": duplicates,
        "errors": subs.errors[:5],
        "sample": subs.sample,
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1], 2) if latencies else None,
    }


class Fanout:
    """The parent's side: ``async with Fanout(...) as clients`` starts the process and waits for ``ready``."""

    def __init__(
        self,
        url: str,
        token: str,
        count: int,
        *,
        per_connection: int,
        field: str,
        query: str,
        start_within: float = 120,
    ) -> None:
        self.args = [url, token, str(count), str(per_connection), field, query]
        self.start_within = start_within
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Fanout:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.fanout_clients",
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert await self._line(self.start_within) == "ready"
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.kill()
        await proc.wait()

    async def _line(self, within: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), within)
        if not line:
            raise RuntimeError(f"the subscriber process ended (exit {await self.proc.wait()})")
        return line.decode().strip()

    async def prime(self, send_one: Any, *, every: float = 0.2, within: float = 120) -> int:
        """Call ``send_one()`` (a warm-up event) every ``every`` s until all subscriptions have had one."""
        assert self.proc is not None and self.proc.stdout is not None
        primed = asyncio.ensure_future(self._line(within))
        sent = 0
        try:
            while not primed.done():
                await send_one()
                sent += 1
                await asyncio.wait([primed], timeout=every)
        finally:
            if not primed.done():
                primed.cancel()
        assert primed.result() == "primed", primed.result()
        return sent

    async def finish(
        self, ids: list[int], commits: dict[int, float] | None = None, within: float = 60
    ) -> dict[str, Any]:
        """Wait for the last of ``ids`` everywhere (at most ``within`` s); the report (see ``_report``)."""
        assert self.proc is not None and self.proc.stdin is not None
        spec = {"ids": ids, "commits": {str(k): v for k, v in (commits or {}).items()}, "within": within}
        self.proc.stdin.write(b"finish " + orjson.dumps(spec) + b"\n")
        await self.proc.stdin.drain()
        line = await self._line(within + 60)
        await self.proc.wait()
        assert line.startswith("result "), line
        report: dict[str, Any] = json.loads(line.removeprefix("result "))
        return report


async def main(argv: list[str]) -> None:
    url, token, count, per_connection, field, query = argv
    subs = Subscribers(url, token, int(count), int(per_connection), field, query)
    await subs.open()
    readers = [asyncio.create_task(subs.read(ws)) for ws in subs.conns]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.ensure_future(loop.run_in_executor(None, sys.stdin.readline))
    while not subs.everyone_has(bool) and not stdin.done():
        subs.changed.clear()
        await asyncio.wait([asyncio.ensure_future(subs.changed.wait()), stdin], return_when=asyncio.FIRST_COMPLETED)
    if subs.everyone_has(bool):
        print("primed", flush=True)
    line = await stdin
    command, _, body = line.partition(" ")
    assert command == "finish", line
    spec = json.loads(body)
    ids = [int(i) for i in spec["ids"]]
    commits = {int(k): float(v) for k, v in spec.get("commits", {}).items()}
    deadline = time.monotonic() + float(spec.get("within", 60))
    last = ids[-1] if ids else 0
    while not subs.everyone_has(lambda got: bool(got) and got[-1][0] >= last):
        subs.changed.clear()
        left = deadline - time.monotonic()
        if left <= 0:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subs.changed.wait(), min(left, 0.5))
    await asyncio.gather(*(ws.close() for ws in subs.conns), return_exceptions=True)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    print("result " + json.dumps(_report(subs, ids, commits)), flush=True)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(sys.argv[1:]))
