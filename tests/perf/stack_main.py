"""The four subgraphs for the benchmark, in a process of their own.

usage: python stack_main.py [--processes]   -> one line ``ready {json}`` on stdout (subgraph URLs,
JWKS URL, service secret, demo accounts, the orders database URL, Redis, and with ``--processes``
the process id of each subgraph, each then ``shopgraph serve NAME`` in a process of its own, so
its CPU time can be read alone), then serves until stdin closes.

A fresh database (dropped at exit) on DATABASE_URL, else on an embedded server,
migrated and seeded with the demo data, exactly as the test suite's stack.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from deploy.stack import Stack


async def main() -> None:
    loop = asyncio.get_running_loop()
    async with Stack(fresh_database=True, seed=True, processes="--processes" in sys.argv) as stack:
        assert stack.settings is not None
        info = {
            "urls": stack.urls,
            "jwks_url": stack.settings.jwks_url,
            "service_secret": stack.settings.service_secret,
            "accounts": stack.seeded.accounts,
            "orders_database_url": stack.settings.database_url_for("orders"),
            "redis_url": stack.settings.redis_url,
            "redis_prefix": stack.settings.redis_prefix,
            "pids": stack.pids,
        }
        if os.environ.get("SHOPGRAPH_PROFILE"):
            _profile_on_signals(loop, Path(os.environ["SHOPGRAPH_PROFILE"]))
        print("ready " + json.dumps(info), flush=True)
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


def _profile_on_signals(loop: asyncio.AbstractEventLoop, out: Path) -> None:
    """SIGUSR1 starts pyinstrument on the event loop's thread (every subgraph runs there), SIGUSR2
    stops it and writes its text report to ``out`` (a flat one and an HTML one beside it): ``profile_subgraphs.py``."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")

    def start() -> None:
        profiler.reset()  # type: ignore[no-untyped-call]
        profiler.start()

    def stop() -> None:
        profiler.stop()
        out.write_text(profiler.output_text(unicode=True, show_all=False))
        out.with_suffix(".flat.txt").write_text(profiler.output_text(unicode=True, flat=True))
        out.with_suffix(".html").write_text(profiler.output_html())

    loop.add_signal_handler(signal.SIGUSR1, start)
    loop.add_signal_handler(signal.SIGUSR2, stop)


if __name__ == "__main__":
    import uvloop  # comes with uvicorn[standard], as the subgraphs' servers use it

    uvloop.run(main())
