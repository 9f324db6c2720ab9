"""Resilient subgraph calls: retries for queries, and a circuit breaker per subgraph.

- **Retries** (``retries`` more attempts, queries only: a mutation may have been applied
  even when its answer was lost): after a refused or reset connection, or a 502/503/504
  answer, with full-jitter exponential backoff from ``retry_backoff`` seconds. A timeout is
  not retried (it already took the whole per-request time).
- **Circuit breaker**: ``breaker_failures`` failed calls in a row (a transport error or a 5xx
  answer, after its retries) *open* the circuit: calls to that subgraph fail at once, without
  a request, with ``SUBREQUEST_HTTP_ERROR`` (the rest of the plan still answers: partial
  data). After ``breaker_open_seconds`` one call goes through (*half-open*); its success closes
  the circuit, its failure opens it again. A GraphQL error in a 200 answer is the subgraph
  answering: it neither fails nor retries.

Per subgraph from ``subgraphs.resilience`` (router/config.py: ``default`` and per-name entries;
off unless configured). State changes are logged (WARNING open, INFO half-open/closed) and
counted; ``shopgraph_router_breaker_state`` is 0 closed, 1 open, 2 half-open.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from router.config import Resilience
from router.subgraph_client import Reply, SubgraphConnectionError

log = logging.getLogger("shopgraph.router")

STATE = Gauge("shopgraph_router_breaker_state", "Circuit per subgraph: 0 closed, 1 open, 2 half-open.", ["subgraph"])
TRANSITIONS = Counter(
    "shopgraph_router_breaker_transitions", "Circuit state changes per subgraph, by new state.", ["subgraph", "state"]
)
REFUSED = Counter(
    "shopgraph_router_breaker_refused", "Subgraph calls failed at once by an open circuit (no request).", ["subgraph"]
)
RETRIES = Counter("shopgraph_router_subgraph_retries", "Query fetches retried after a transient failure.", ["subgraph"])

RETRY_STATUSES = frozenset({502, 503, 504})
_CODES = {"closed": 0, "open": 1, "half-open": 2}


class CircuitOpen(Exception):
    """The subgraph's circuit is open: no request was sent."""


@dataclass
class Breaker:
    name: str
    failures_to_open: int
    open_seconds: float
    state: str = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = field(default=False)  # the half-open call is in flight

    def allow(self, now: float) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open" and now - self.opened_at >= self.open_seconds:
            self._to("half-open")
        if self.state == "half-open" and not self.probing:
            self.probing = True
            return True
        return False

    def succeeded(self) -> None:
        self.failures = 0
        self.probing = False
        if self.state != "closed":
            self._to("closed")

    def failed(self, now: float) -> None:
        self.failures += 1
        self.probing = False
        if self.state == "half-open" or (self.state == "closed" and self.failures >= self.failures_to_open):
            self.opened_at = now
            self._to("open")

    def _to(self, state: str) -> None:
        self.state = state
        STATE.labels(self.name).set(_CODES[state])
        TRANSITIONS.labels(self.name, state).inc()
        if state == "open":
            log.warning(
                "subgraph %s: circuit open after %d failed calls in a row; calls fail at once for %.1fs",
                self.name,
                self.failures,
                self.open_seconds,
            )
        else:
            log.info("subgraph %s: circuit %s", self.name, state)


class Resilient:
    """Calls to subgraphs through their retry and breaker policies (one per executor)."""

    def __init__(self, policies: dict[str, Resilience], default: Resilience | None) -> None:
        self.policies = policies  # subgraph name (lower case) -> policy
        self.default = default
        self.breakers: dict[str, Breaker] = {}
        self.rng = random.Random()  # backoff jitter (not security-relevant)

    def policy(self, name: str) -> Resilience | None:
        return self.policies.get(name.lower(), self.default)

    async def call(self, name: str, idempotent: bool, send: Callable[[], Awaitable[Reply]]) -> Reply:
        """``send()`` under ``name``'s policy; raises ``CircuitOpen`` when the circuit refuses."""
        policy = self.policy(name)
        if policy is None:
            return await send()
        breaker = self._breaker(name, policy)
        if breaker is not None and not breaker.allow(time.monotonic()):
            REFUSED.labels(name).inc()
            raise CircuitOpen(f"circuit open after {breaker.failures} failed calls in a row")
        attempts = 1 + (policy.retries if idempotent else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                reply = await send()
            except asyncio.CancelledError:
                if breaker is not None:
                    breaker.probing = False  # a cancelled half-open call must not hold the circuit
                raise
            except Exception as e:
                if last or not isinstance(e.__cause__ or e, SubgraphConnectionError):
                    if breaker is not None:
                        breaker.failed(time.monotonic())
                    raise
            else:
                if last or reply.status not in RETRY_STATUSES:
                    if breaker is not None:
                        if reply.status >= 500:
                            breaker.failed(time.monotonic())
                        else:
                            breaker.succeeded()
                    return reply
            RETRIES.labels(name).inc()
            await asyncio.sleep(self.rng.uniform(0, policy.retry_backoff * 2**attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _breaker(self, name: str, policy: Resilience) -> Breaker | None:
        if policy.breaker_failures <= 0:
            return None
        b = self.breakers.get(name)
        if b is None:
            b = self.breakers[name] = Breaker(name, policy.breaker_failures, policy.breaker_open_seconds)
            STATE.labels(name).set(0)
        return b
