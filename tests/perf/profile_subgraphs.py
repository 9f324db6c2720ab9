"""Profile the subgraphs (pyinstrument) under one case of the router benchmark, our router, cache off.

usage: uv run python -m tests.perf.profile_subgraphs [storefront-home|admin-varying-vars] [seconds] [out]

The stack runs in one process (``stack_main.py``, every subgraph on its event loop's thread) with
``SHOPGRAPH_PROFILE`` set: after a warm-up the profiler is started (SIGUSR1), the case is loaded
through ``shopgraph router`` with autocannon for ``seconds``, and the profiler is stopped (SIGUSR2),
which writes its text report to ``out`` (default tests/perf/results/profile-<case>.txt) and an HTML
one beside it. Idle time shows under the event loop's ``select``: read the rest.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from tests.perf import bench
from tests.perf.test_router_bench import scenarios, seed


def main() -> None:
    case = sys.argv[1] if len(sys.argv) > 1 else "admin-varying-vars"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 8.0
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else bench.RESULTS / f"profile-{case}.txt"
    out.parent.mkdir(exist_ok=True)
    os.environ["SHOPGRAPH_PROFILE"] = str(out.resolve())
    bench.npm_ci(bench.HERE, "autocannon")
    with tempfile.TemporaryDirectory() as tmp_dir, bench.stack_process() as stack:
        tmp = Path(tmp_dir)
        info = stack.info
        shopper, admin = seed(info)
        sc = next(s for s in scenarios(shopper, admin) if s.name == case)
        supergraph = bench.supergraph_for(info["urls"], tmp / "supergraph.graphql")
        with bench.our_router(supergraph, info["jwks_url"], info["service_secret"]) as router:
            headers = {"authorization": f"Bearer {sc.token}"}
            bench.load(router.url, headers, sc.bodies, 2, 16, tmp)
            stack.popen.send_signal(signal.SIGUSR1)
            before = stack.cpu()
            r = bench.load(router.url, headers, sc.bodies, seconds, 16, tmp)
            cpu = bench.cpu_delta(before, stack.cpu())
            stack.popen.send_signal(signal.SIGUSR2)
            time.sleep(3)  # the report is written on the stack's loop
    per_request = cpu * 1000 / max(int(r["requests"]), 1)
    print(f"{case}: {r['requests']} requests, {r['rps']:.0f}/s, subgraphs {per_request:.2f} ms CPU/request")
    print(f"profile: {out} (+ .html)")


if __name__ == "__main__":
    main()
