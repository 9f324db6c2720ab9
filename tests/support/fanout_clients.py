"""Many graphql-transport-ws subscribers in a process of their own (fan-out tests and benchmarks).

usage: python -m tests.support.fanout_clients WS_URL TOKEN SUBSCRIBERS PER_CONNECTION QUERY_FIELD QUERY

Opens ceil(SUBSCRIBERS / PER_CONNECTION) WebSocket connections to WS_URL, each
initialised with TOKEN and carrying PER_CONNECTION subscriptions of QUERY.
Every ``next`` is stamped with the wall clock (``time.time()``) as soon as the
bytes completing its frame arrive, and recorded as (subscription, event id)
where the id is ``payload.data[QUERY_FIELD].id``. The WebSocket client is a bare
asyncio protocol (``WebSocketClient``): a general-purpose client library spends
~20 µs of CPU per message, which at 10,000 subscribers is 0.2 s an event taken
from the router on a 2-core machine.

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
import base64
import contextlib
import itertools
import json
import math
import os
import sys
import time
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

PROTOCOL = "graphql-transport-ws"


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A final, masked client frame (RFC 6455 §5.2, §5.3)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    mask = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return header + key + (int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big")


class WebSocketClient(asyncio.Protocol):
    """A bare WebSocket client on an asyncio protocol: the benchmark's subscribers, whose
    per-message cost (a frame header, one ``orjson.loads``) must stay far below the
    router's, since they share its two cores. Text messages go to ``on_text(data, at)``
    with the arrival time of the bytes that completed them."""

    def __init__(self, host: str, path: str, on_text: Any) -> None:
        self.host = host
        self.path = path
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.rest = b""
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.handshaken = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {PROTOCOL}\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, *texts: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"".join(client_frame(t) for t in texts))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame((1000).to_bytes(2, "big"), opcode=8))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.rest + data if self.rest else data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.rest = buf
                return
            status = buf[: buf.find(b"\r\n")]
            if b" 101 " not in status + b" ":
                self.open.set_exception(ConnectionError(status.decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            self.handshaken = True
            self.open.set_result(None)
            buf = buf[end + 4 :]
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, at = b1 & 0x7F, pos + 2
            if n == 126:
                if size - at < 2:
                    break
                n, at = int.from_bytes(buf[at : at + 2], "big"), at + 2
            elif n == 127:
                if size - at < 8:
                    break
                n, at = int.from_bytes(buf[at : at + 8], "big"), at + 8
            if size - at < n:
                break
            opcode, payload = b0 & 0x0F, buf[at : at + n]
            pos = at + n
            if opcode == 1:
                self.on_text(payload, now)
            elif opcode == 9:  # ping
                self.send_control(payload, 10)
            elif opcode == 8:  # close: answer it
                self.close()
        self.rest = buf[pos:]

    def send_control(self, payload: bytes, opcode: int) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(payload, opcode))


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
        self.conns: list[WebSocketClient] = []

    async def open(self) -> None:
        parts = urlsplit(self.url)
        assert parts.hostname is not None and parts.port is not None, self.url
        host, port = parts.hostname, parts.port
        loop = asyncio.get_running_loop()

        async def one(first: int) -> WebSocketClient:
            acked: asyncio.Future[None] = loop.create_future()

            def on_text(data: bytes, at: float) -> None:
                if acked.done():
                    self.on_message(data, at)
                elif orjson.loads(data).get("type") == "connection_ack":
                    acked.set_result(None)
                else:
                    acked.set_exception(AssertionError(data.decode()))

            _, ws = await loop.create_connection(
                lambda: WebSocketClient(parts.netloc, parts.path or "/", on_text), host, port
            )
            await asyncio.wait_for(ws.open, 60)
            ws.send(orjson.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}}))
            await asyncio.wait_for(acked, 60)
            last = min(self.count, first + self.per_connection)
            ws.send(
                *(
                    orjson.dumps({"id": str(i), "type": "subscribe", "payload": {"query": self.query}})
                    for i in range(first, last)
                )
            )
            return ws

        starts = range(0, self.count, self.per_connection)
        sem = asyncio.Semaphore(50)  # do not stampede the accept queue

        async def guarded(first: int) -> WebSocketClient:
            async with sem:
                return await one(first)

        self.conns = list(await asyncio.gather(*(guarded(s) for s in starts)))

    def on_message(self, data: bytes, now: float) -> None:
        msg = orjson.loads(data)
        kind = msg.get("type")
        if kind == "next":
            payload = msg.get("payload") or {}
            event = (payload.get("data") or {}).get(self.field)
            if event is None or payload.get("errors"):
                self.errors.append(str(msg)[:500])
                return
            self.received[msg["id"]].append((int(event["id"]), now))
            if self.sample is None:
                self.sample = payload
            self.changed.set()
        elif kind in ("error", "complete"):
            self.errors.append(str(msg)[:500])

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
    for ws in subs.conns:
        ws.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(ws.closed for ws in subs.conns)), 10)
    print("result " + json.dumps(_report(subs, ids, commits)), flush=True)


if __name__ == "__main__":
    import gc

    import uvloop

    # The deliveries recorded (10,000 subscribers x events) make full collections take 0.1 s
    # and more, stalling the stamping: this short-lived process makes no cycles worth collecting.
    gc.disable()
    uvloop.run(main(sys.argv[1:]))
