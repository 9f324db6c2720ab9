"""The order pytest-xdist hands out the suite's files in (``--dist loadfile``).

xdist hands out whole files, largest (by number of tests) first, so files of one long test
(a chaos run, a browser journey, processes started) came last and the pass ended on one
worker running one of them while the other cores sat idle. Here the files known to take a
minute or more of a worker go first, longest first, and the rest follow as xdist orders them.

The randomized differential test (tests/router/test_planner_random.py) is a few minutes of
one worker as one file: its parameters (one fixture set each, its Apollo Gateway started on
first use) are handed out one by one instead, so the workers share it.
"""

from __future__ import annotations

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling
from xdist.workermanage import WorkerController

# Longest first (a full pass on the 2-core machine). An out-of-date list costs only balance.
HEAVY = (
    "tests/router/test_planner_random.py",
    "tests/deploy/test_saga_faults.py",
    "tests/router/test_edge_pipeline.py",
    "tests/deploy/test_compose_processes.py",
    "tests/frontend/test_storefront_app.py",
    "tests/integration/test_shop_query_counts.py",
    "tests/e2e/test_order_events_fanout.py",
    "tests/integration/test_orders.py",
    "tests/deploy/test_dev_traces.py",
    "tests/e2e/test_pricing_through_router.py",
    "tests/router/test_planner_fed2.py",
    "tests/router/test_edge.py",
    "tests/e2e/test_reconciler_bounds.py",
    "tests/e2e/test_payment_saga_through_router.py",
    "tests/e2e/test_stripe_element_browser.py",
    "tests/router/test_planner_families.py",
    "tests/router/test_subscriptions_attacks.py",
    "tests/integration/test_events.py",
    "tests/e2e/test_storefront_browser.py",
    "tests/e2e/test_router_trace_sampling.py",
    "tests/e2e/test_capture_on_fulfilment.py",
)
# Files whose tests are handed out one by one (their module fixtures start what each test uses).
SPLIT = frozenset({"tests/router/test_planner_random.py"})


class HeavyFirst(LoadFileScheduling):  # type: ignore[misc]  # xdist is untyped
    """``--dist loadfile``, the files in ``HEAVY`` first and those in ``SPLIT`` a test at a time."""

    def __init__(self, config: pytest.Config, log: Producer | None = None) -> None:
        super().__init__(config, log)
        self.rank = {path: i for i, path in enumerate(HEAVY)}

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return nodeid if path in SPLIT else path

    def _assign_work_unit(self, node: WorkerController) -> None:
        # The heaviest unit left goes next (ties: xdist's own order, the first in the queue).
        heaviest = min(self.workqueue, key=lambda scope: self.rank.get(scope.split("::", 1)[0], len(HEAVY)))
        self.workqueue.move_to_end(heaviest, last=False)
        super()._assign_work_unit(node)
