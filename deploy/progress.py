"""Start-up progress for people: each step with its time, a bar for long counted work.

``shopgraph dev`` prints, e.g.::

    ✓ PostgreSQL + Redis (embedded, first run: new cluster)     1.9 s
    ✓ migrations (users, catalog, cart, orders)                  0.2 s
      demo data  [##########----------]  600/1200 products
    ✓ demo data (1,200 products, 2 accounts)                     0.9 s

On a terminal the bar redraws in place; elsewhere (a log file, CI) only the
finished lines are printed. The stack reports through ``Progress``; tests pass
none and print nothing.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

BAR_WIDTH = 24


class Step:
    def __init__(self, progress: Progress, title: str) -> None:
        self.progress = progress
        self.title = title
        self.detail = ""
        self.started = time.perf_counter()

    def count(self, done: int, total: int, unit: str) -> None:
        """Counted work: redraw the bar (terminals only)."""
        self.progress.bar(self.title, done, total, unit)


class Progress:
    """Where start-up steps are reported; ``Progress(enabled=False)`` reports nothing."""

    def __init__(self, out: TextIO | None = None, *, enabled: bool = True) -> None:
        self.out = out or sys.stdout
        self.enabled = enabled
        self.tty = enabled and self.out.isatty()
        self._lock = threading.Lock()  # background steps (GraphiQL's npm ci) report from a thread
        self._bar_shown = False
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Step]:
        step = Step(self, title)
        yield step
        self.done(step)

    def done(self, step: Step) -> None:
        seconds = time.perf_counter() - step.started
        label = f"{step.title} ({step.detail})" if step.detail else step.title
        self._write(f"✓ {label:<58} {seconds:5.1f} s\n")

    def note(self, text: str) -> None:
        self._write(f"  {text}\n")

    def bar(self, title: str, done: int, total: int, unit: str) -> None:
        if not self.tty or total <= 0:
            return
        filled = BAR_WIDTH * done // total
        line = f"  {title}  [{'#' * filled}{'-' * (BAR_WIDTH - filled)}]  {done:,}/{total:,} {unit}"
        with self._lock:
            self.out.write("\r\x1b[2K" + line)
            self.out.flush()
            self._bar_shown = True

    def total(self) -> float:
        return time.perf_counter() - self.started

    def _write(self, text: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._bar_shown:
                self.out.write("\r\x1b[2K")
                self._bar_shown = False
            self.out.write(text)
            self.out.flush()
