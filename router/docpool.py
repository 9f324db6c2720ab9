"""The router's side of the document worker processes (router/docworker.py).

``limits.document_workers`` processes (default 2, sized for the 2-core machines this runs on;
0: a thread of the router's own process, as before) each have a thread here that takes the
next task from one queue, writes it to its process and waits for the answer with the pipe's
file descriptor in ``select`` — the thread holds the interpreter lock only to hand bytes
over, so the event loop never waits for validation or planning to give the lock back.

A worker that dies (killed, crashed) or does not answer a task within
``limits.prepare_timeout_seconds`` (it is then killed) is replaced: its task fails with
:class:`WorkerFailed` (the request gets 503 ``ROUTER_WORKER_FAILED``, never a hang), the
tasks still queued go to the other workers or its replacement,
``shopgraph_router_document_worker_restarts_total{reason}`` counts it and a WARNING names
it. A replacement loads the current supergraph before it takes a task.

Supergraphs reach the workers by key (:meth:`DocumentPool.register`): a worker loads a
supergraph before the first task that needs it, and idle workers load the newest one (a hot
reload reaches every worker within half a second, before requests need it).

Pools are shared in a process by every pipeline with the same settings (one in a router;
tests start many routers in one process): :func:`shared`.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from router.docworker import HEADER, dumps, loads

log = logging.getLogger("shopgraph.router")
RESTARTS = Counter(
    "shopgraph_router_document_worker_restarts",
    "Document worker processes replaced, by reason: died (killed or crashed), hung (no answer "
    "within limits.prepare_timeout_seconds: killed).",
    ["reason"],
)
LOAD_TIMEOUT = 120.0  # building a supergraph's schema in a fresh worker (about a second; much more under load)
ROOT = Path(__file__).resolve().parents[1]
PIPE_BYTES = 1 << 20  # Linux's default maximum for an unprivileged process (/proc/sys/fs/pipe-max-size)
WAKE = "wake"  # a queue entry that only makes an idle worker look at the newest supergraph


class WorkerFailed(Exception):
    """The worker running a task died or hung (and was replaced)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class Reply:
    outcome: str  # ok | refused | error
    value: Any
    cpu: float  # the worker's CPU seconds on it


@dataclass
class Task:
    message: tuple[Any, ...]
    schema: str
    future: concurrent.futures.Future[Reply] = field(default_factory=concurrent.futures.Future)


class DocumentPool:
    def __init__(self, size: int, timeout: float, nice: int = 0) -> None:
        self.size = size
        self.timeout = timeout
        self.nice = nice
        self.tasks: queue.SimpleQueue[Task | str | None] = queue.SimpleQueue()
        self.schemas: OrderedDict[str, bytes] = OrderedDict()  # key -> pickled (sdl, settings), while in use
        self.users: dict[str, int] = {}  # key -> pipelines using it (identical ones share a key)
        self.latest: str | None = None
        self.lock = threading.Lock()
        self.slots: list[Slot] = []
        self.closed = False

    def register(self, key: str, sdl: str, settings: Any) -> None:
        """A supergraph tasks may name from now on (the newest: idle workers load it)."""
        with self.lock:
            if key not in self.schemas:
                self.schemas[key] = dumps((sdl, settings))
            self.users[key] = self.users.get(key, 0) + 1
            self.schemas.move_to_end(key)
            new, self.latest = self.latest != key, key
            wake = new and bool(self.slots)
        if wake:  # idle workers load it now, not at their next half-second poll
            for _ in range(self.size):
                self.tasks.put(WAKE)

    def unregister(self, key: str) -> None:
        """A supergraph no request will name any more (retired by a reload, its router closed)."""
        with self.lock:
            left = self.users.get(key, 0) - 1
            if left > 0:
                self.users[key] = left
                return
            self.users.pop(key, None)
            self.schemas.pop(key, None)
            if self.latest == key:
                self.latest = next(reversed(self.schemas), None)

    def schema(self, key: str) -> bytes | None:
        with self.lock:
            return self.schemas.get(key)

    def start(self) -> None:
        with self.lock:
            if self.slots or self.closed:
                return
            self.slots = [Slot(self, i) for i in range(self.size)]
        for s in self.slots:
            s.start()

    def submit(self, message: tuple[Any, ...], schema: str) -> concurrent.futures.Future[Reply]:
        self.start()
        task = Task(message, schema)
        self.tasks.put(task)
        return task.future

    def loaded(self, key: str) -> bool:
        """Whether a worker has loaded supergraph ``key`` (it can take its tasks)."""
        return any(key in s.known for s in self.slots)

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.slots if s.proc is not None]

    def close(self) -> None:
        self.closed = True
        for _ in self.slots:
            self.tasks.put(None)
        for s in self.slots:
            s.stop()


class Slot(threading.Thread):
    """One worker process and the thread that feeds it."""

    def __init__(self, pool: DocumentPool, index: int) -> None:
        super().__init__(name=f"shopgraph-docworker-{index}", daemon=True)
        self.pool = pool
        self.index = index
        self.proc: subprocess.Popen[bytes] | None = None
        self.known: set[str] = set()

    def run(self) -> None:
        failures = 0
        while not self.pool.closed:
            task: Task | None = None
            try:
                self._ready()
                latest = self.pool.latest
                if latest is not None and latest not in self.known:
                    self._load(latest)
                try:
                    entry = self.pool.tasks.get(timeout=0.5)
                except queue.Empty:
                    continue
                if entry is None:
                    return
                if not isinstance(entry, Task):  # (WAKE)
                    continue
                task = entry
                if not task.future.set_running_or_notify_cancel():
                    continue
                self._ready()  # (killed while this thread waited for a task)
                if task.schema not in self.known:
                    self._load(task.schema)
                reply = self._call(task.message, self.pool.timeout)
                if reply.outcome == "unknown":  # the worker dropped it for newer ones: loaded again
                    self.known.discard(task.schema)
                    self._load(task.schema)
                    reply = self._call(task.message, self.pool.timeout)
                    if reply.outcome == "unknown":
                        reply = Reply("error", f"supergraph {task.schema} is no longer served", reply.cpu)
                task.future.set_result(reply)
                failures = 0
            except WorkerFailed as e:
                if self.pool.closed:
                    return
                self._replace(e)  # (killed before its request hears of it)
                if task is not None and not task.future.done():
                    task.future.set_exception(e)
                failures += 1
                time.sleep(min(5.0, 0.05 * 2**failures) if failures > 1 else 0)  # a worker that cannot start
            except Exception as e:
                log.exception("document worker %d: unexpected failure; replacing it", self.index)
                self._replace(WorkerFailed("died", "unexpected failure"))
                if task is not None and not task.future.done():
                    task.future.set_exception(e)

    def _ready(self) -> None:
        """A live worker: a new one if there is none or it died between tasks (replaced before a task
        is sent to it: that task would fail)."""
        if self.proc is not None and self.proc.poll() is not None:
            self._replace(WorkerFailed("died", f"it exited ({self.proc.returncode}) while idle"))
        if self.proc is None:
            self._spawn()

    def _spawn(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "router.docworker", str(self.pool.nice)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env=env,
            cwd=ROOT,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        os.set_blocking(self.proc.stdin.fileno(), False)
        for f in (self.proc.stdin, self.proc.stdout):
            # a whole document (or prepared operation) in one write: the worker runs niced, and each
            # time a 64 KiB pipe fills, the other side must wait for it to be scheduled
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(f.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self.known = set()

    def _load(self, key: str) -> None:
        blob = self.pool.schema(key)
        if blob is None:
            return  # (retired before any task needed it; a task naming it fails below)
        reply = self._call(("load", key, blob), LOAD_TIMEOUT)
        if reply.outcome != "ok":
            log.error("document worker %d could not load a supergraph: %s", self.index, reply.value)
        self.known.add(key)

    def _call(self, message: tuple[Any, ...], timeout: float) -> Reply:
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        deadline = time.monotonic() + timeout
        blob = dumps(message)
        self._write(proc, memoryview(HEADER.pack(len(blob)) + blob), deadline, timeout)
        head = self._read(proc, HEADER.size, deadline, timeout)
        (size,) = HEADER.unpack(head)
        outcome, value, cpu = loads(self._read(proc, size, deadline, timeout))
        return Reply(outcome, value, cpu)

    def _write(self, proc: subprocess.Popen[bytes], view: memoryview, deadline: float, timeout: float) -> None:
        """All of ``view`` to the worker's stdin (non-blocking: a hung worker stops reading)."""
        assert proc.stdin is not None
        fd = proc.stdin.fileno()
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise WorkerFailed("hung", f"not reading its requests for {timeout:g}s")
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                continue
            except OSError as e:
                raise WorkerFailed("died", f"its pipe closed ({e})") from None
            view = view[n:]

    def _read(self, proc: subprocess.Popen[bytes], n: int, deadline: float, timeout: float) -> bytes:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        parts: list[bytes] = []
        while n > 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerFailed("hung", f"no answer within {timeout:g}s")
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                code = proc.poll()
                raise WorkerFailed("died", f"it exited ({code if code is not None else 'pipe closed'})")
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def _replace(self, e: WorkerFailed) -> None:
        pid = self.proc.pid if self.proc is not None else None
        self.stop()
        RESTARTS.labels(e.reason).inc()
        log.warning("document worker %d (pid %s) %s: %s; starting a new one", self.index, pid, e.reason, e)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        self.known = set()
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(Exception):
            proc.wait(5)
        for f in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if f is not None:
                    f.close()


_POOLS: dict[tuple[int, float, int], DocumentPool] = {}
_POOLS_LOCK = threading.Lock()


def shared(size: int, timeout: float, nice: int = 0) -> DocumentPool:
    """The process's pool of ``size`` workers (one per distinct setting)."""
    with _POOLS_LOCK:
        pool = _POOLS.get((size, timeout, nice))
        if pool is None:
            pool = _POOLS[(size, timeout, nice)] = DocumentPool(size, timeout, nice)
        return pool


@atexit.register
def _close_all() -> None:
    for pool in list(_POOLS.values()):
        pool.close()
