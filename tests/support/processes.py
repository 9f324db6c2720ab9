"""Which processes are alive, from /proc (Linux), for no-leftover-process checks."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return text[text.rindex(")") + 2 :].split()


def alive(pid: int) -> bool:
    """Running (zombies, which are only waiting to be reaped, count as gone)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    """Wait for ``pids`` to end; return those still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def dev_banner(proc: subprocess.Popen[str], within: float) -> str:
    """What ``shopgraph dev`` (started with its stdout piped, as text) printed up to its banner's
    last line ("Press Ctrl-C"); fails with the output so far if it exits or takes over ``within`` s."""
    assert proc.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + within
    while not any("Press Ctrl-C" in line for line in output):
        line = proc.stdout.readline()
        assert line or proc.poll() is None, "".join(output)
        assert time.monotonic() < deadline, "".join(output)
        output.append(line)
    return "".join(output)
