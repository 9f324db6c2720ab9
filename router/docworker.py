"""The document worker process: parse, shape limits, overlap count, validate and plan, away
from the router's interpreter (``python -m router.docworker``, started by router/docpool.py).

Run in a thread of the router's own process, that work took the interpreter lock from the
event loop for a switch interval at a time, thousands of times per second: a document that
took 300 ms to validate held every other request for longer than that (issue 18, finding
1). In a process of its own it only costs the router what it sends back.

The channel is the process's stdin/stdout: frames of an 8-byte length then a pickle. A
request is ``(kind, schema key, …)``; the answer ``(outcome, value, cpu seconds)`` where
outcome is ``ok``, ``refused`` (a RouterError: its errors, status, headers), ``unknown``
(a supergraph this worker dropped: the router loads it again) or ``error`` (anything else:
its traceback), and cpu the process CPU time the request took (the caller's
``rate_limits.prepare_seconds`` budget). Kinds:

- ``load``: ``(key, pickled (sdl, settings))``: build that supergraph's Schema (kept: the
  last few, so requests prepared on the previous one during a reload still find it);
- ``prepare``: ``(key, text, operation name, defer_off, document blob or None)``: the
  prepared operation as a blob (:func:`router.pipeline.payload`), and the validated
  document's blob when it was new (the router caches it as bytes and sends it back for
  the document's other operations: validated once);
- ``prune``: the same and the failed requirements: the operation pruned and planned again;
- ``introspect``: the same and the variables: the introspection fields' data.

The results are pickles of the prepared operation (syntax tree without locations, the
normalised operation, the plan): measured on the densest documents under the limits (30 to
60 KB, ~3,000 fields), 0.6-0.7 MB that the router unpickles in 10-25 ms (garbage collection
paused) against 300 ms of validating and planning.
"""

from __future__ import annotations

import contextlib
import copyreg
import gc
import io
import os
import pickle
import signal
import struct
import sys
import time
import traceback
import types
from collections import OrderedDict
from typing import Any

HEADER = struct.Struct(">Q")
SCHEMAS_KEPT = 4  # the current supergraph, the ones requests may still be prepared on (and other routers' in tests)


def _proxy(d: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    return types.MappingProxyType(d)


# Plans keep read-only views (MappingProxyType) that pickle refuses: sent as their dict.
_TABLE = copyreg.dispatch_table.copy()
_TABLE[types.MappingProxyType] = lambda m: (_proxy, (dict(m),))


def dumps(value: Any) -> bytes:
    out = io.BytesIO()
    p = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    p.dispatch_table = _TABLE
    p.dump(value)
    return out.getvalue()


def loads(blob: bytes) -> Any:
    """Unpickle with the collector paused: a prepared operation is tens of thousands of objects,
    and each allocation threshold crossed mid-way would scan the whole heap."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(blob)
    finally:
        if enabled:
            gc.enable()


def read_frame(fd: int) -> bytes | None:
    """One frame from ``fd`` (blocking), None at end of file."""
    head = _read_exactly(fd, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    return _read_exactly(fd, size)


def _read_exactly(fd: int, n: int) -> bytes | None:
    parts: list[bytes] = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def write_frame(fd: int, blob: bytes) -> None:
    view = memoryview(HEADER.pack(len(blob)) + blob)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class UnknownSchema(Exception):
    pass


class Handler:
    """The worker's state: the schemas it has loaded and the operations it prepared."""

    def __init__(self) -> None:
        from router.cache import LRU
        from router.pipeline import Prepared, Schema

        self.schemas: OrderedDict[str, Schema] = OrderedDict()
        # (schema key, text, operation, defer_off) -> prepared: prune and introspect find theirs here
        self.prepared: LRU[tuple[str, str, str | None, frozenset[str]], Prepared] = LRU(256, 32 * 1024 * 1024)

    def handle(self, message: tuple[Any, ...]) -> Any:
        from router import pipeline

        kind, key = message[0], message[1]
        if kind == "load":
            sdl, settings = loads(message[2])
            self.schemas[key] = pipeline.Schema(sdl, settings, None)
            while len(self.schemas) > SCHEMAS_KEPT:
                self.schemas.popitem(last=False)
            return None
        schema = self.schemas.get(key)
        if schema is None:  # (dropped for newer ones: the router loads it again)
            raise UnknownSchema(key)
        self.schemas.move_to_end(key)
        text, op_name, defer_off, doc_blob = message[2:6]
        if kind == "prepare":
            doc = loads(doc_blob) if doc_blob is not None else None
            p, new_doc = pipeline.prepare_new(schema, text, op_name, defer_off, doc)
            self.prepared.put((key, text, op_name, defer_off), p, len(text) * pipeline.PREPARED_BYTES_PER_CHAR)
            return pipeline.payload(p), dumps(new_doc) if new_doc is not None else None
        hit = self.prepared.get((key, text, op_name, defer_off))
        if hit is not None:
            p = hit
        else:  # (prepared by another worker, or before this one restarted)
            doc = loads(doc_blob) if doc_blob is not None else None
            p, _ = pipeline.prepare_new(schema, text, op_name, defer_off, doc)
            self.prepared.put((key, text, op_name, defer_off), p, len(text) * pipeline.PREPARED_BYTES_PER_CHAR)
        if kind == "prune":
            pruned, denials = pipeline.pruned(p, message[6])
            return pipeline.payload(pruned), denials
        if kind == "introspect":
            return pipeline.introspect(p, message[6])
        raise ValueError(f"unknown request {kind!r}")


def main() -> None:
    from router.errors import RouterError

    # Ctrl-C in `shopgraph dev` reaches the whole process group: the router decides when this ends
    # (its end closes our stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Below the router in the CPU queue (limits.document_worker_nice): on a busy machine its event loop runs
    # first, this in what is left (an attack's documents cost the attacker time, not the router's requests).
    nice = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    channel_in, channel_out = os.dup(0), os.dup(1)
    os.dup2(2, 1)  # a stray print goes to the router's log, not into the channel
    sys.stdout = sys.stderr
    handler = Handler()
    while True:
        frame = read_frame(channel_in)
        if frame is None:
            return
        start = time.process_time()
        reply: tuple[Any, ...]
        try:
            reply = ("ok", handler.handle(pickle.loads(frame)))
        except RouterError as e:
            reply = ("refused", (e.errors, e.status, e.headers))
        except UnknownSchema as e:
            reply = ("unknown", str(e))
        except Exception:
            reply = ("error", traceback.format_exc())
        write_frame(channel_out, dumps((*reply, time.process_time() - start)))


if __name__ == "__main__":
    main()
