"""Run compose.yaml's services as local processes: its commands, its environments.

No Docker here, so ``ComposeProcesses`` does what ``docker compose up`` would with
the image's entrypoint (``shopgraph``), translated only where a laptop differs from
a compose network:

- ``${VAR:-default}`` is interpolated from the mapping given as the shell, and
  ``${VAR:?message}`` fails without it (:class:`MissingVariable`), as compose does;
- only services without ``profiles`` start, plus those of the ``profiles`` given
  (``--profile demo``);
- a ``--config FILE`` (the router's) is copied with its host names and ports
  translated likewise, its ``admin.listen`` on a free port (``admin_url(name)``);
- service host names (``http://users:4001``) become 127.0.0.1 and every port
  compose declares (``--port 4001``, URLs, health-check URLs) a free one;
- ``DATABASE_URL`` / ``REDIS_URL`` point at the test's own database and Redis,
  and ``SHOPGRAPH_REDIS_PREFIX`` keeps its keys apart (the only added variable).

Start order follows ``depends_on`` (the one-shot ``migrate`` first, to completion,
then services once their ``healthcheck`` command passes). ``replica(name)``
starts one more instance of a service, as ``--scale`` would, optionally with
some of its variables changed. Each process's stderr goes to a file
(``logs(name)``).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

ROOT = Path(__file__).resolve().parents[2]
SHOPGRAPH = str(Path(sys.executable).parent / "shopgraph")  # the image's ENTRYPOINT
_VAR = re.compile(r"\$\{(\w+)(?:(:?)([-?])([^}]*))?\}")
_HOST_PORT = re.compile(r"//([a-z0-9.-]+):(\d+)")


class MissingVariable(Exception):
    """``${VAR:?message}`` without VAR: ``docker compose`` refuses to start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _listening(instance: Instance) -> bool:
    """Whether every port ``instance`` declares accepts a connection."""
    for port in instance.ports.values():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
    return True


@dataclass
class Instance:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    ports: dict[int, int]  # compose port -> local port
    admin_port: int | None = None  # the router's admin listener (--config's admin.listen)


@dataclass
class ComposeProcesses:
    database_url: str
    redis_url: str
    redis_prefix: str
    workdir: Path
    shell: Mapping[str, str] = field(default_factory=dict)
    profiles: frozenset[str] = frozenset()
    # What the image holds that a checkout may not (the storefront's build: SHOPGRAPH_STOREFRONT_DIR).
    image_env: Mapping[str, str] = field(default_factory=dict)
    compose_file: Path = ROOT / "compose.yaml"
    instances: dict[str, Instance] = field(default_factory=dict)
    # Variables changed per service from the first start (as an override file would).
    changes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spec: dict[str, Any] = yaml.safe_load(self.compose_file.read_text())
        self.services: dict[str, Any] = {
            name: service
            for name, service in self.spec["services"].items()
            if not service.get("profiles") or set(service["profiles"]) & self.profiles
        }
        # Every port a service is reached on in compose -> a free local one.
        self.port_map: dict[int, int] = {}
        for name in self.services:
            for port in self._declared_ports(name):
                self.port_map.setdefault(port, free_port())

    # -- translation ---------------------------------------------------------------------------

    def _declared_ports(self, name: str) -> list[int]:
        command = [str(a) for a in self.services[name].get("command", [])]
        return [int(command[i + 1]) for i, a in enumerate(command) if a in ("--port", "--metrics-port")]

    def interpolate(self, value: str) -> str:
        def one(m: re.Match[str]) -> str:
            name, colon, kind, word = m.groups()
            given = self.shell.get(name)
            missing = given is None or (colon == ":" and given == "")
            if kind == "?" and missing:
                raise MissingVariable(f"required variable {name} is missing a value: {word}")
            if kind == "-" and missing:
                return word
            return given or ""

        return _VAR.sub(one, value)

    def localise(self, value: str, ports: Mapping[int, int]) -> str:
        """compose host names and ports -> 127.0.0.1 and this run's ports."""
        return _HOST_PORT.sub(lambda m: f"//127.0.0.1:{ports.get(int(m.group(2)), int(m.group(2)))}", value)

    def command(self, name: str, ports: Mapping[int, int], config: Path | None = None) -> list[str]:
        args = [self.interpolate(str(a)) for a in self.services[name]["command"]]
        out: list[str] = []
        for i, arg in enumerate(args):
            if i > 0 and args[i - 1] == "--host":
                arg = "127.0.0.1"
            elif i > 0 and args[i - 1] in ("--port", "--metrics-port"):
                arg = str(ports[int(arg)])
            elif i > 0 and args[i - 1] == "--config" and config is not None:
                arg = str(config)
            out.append(self.localise(arg, ports))
        return out

    def config_file(self, name: str) -> Path | None:
        command = [str(a) for a in self.services[name].get("command", [])]
        return ROOT / command[command.index("--config") + 1] if "--config" in command else None

    def localise_config(self, source: Path, target: Path, ports: Mapping[int, int]) -> int | None:
        """``source`` with this run's addresses, written to ``target``; the admin port chosen, if any."""

        def walk(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: walk(v) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            return self.localise(value, ports) if isinstance(value, str) else value

        config: dict[str, Any] = walk(yaml.safe_load(source.read_text()))
        admin_port = None
        if (config.get("admin") or {}).get("listen"):
            admin_port = free_port()
            config["admin"]["listen"] = f"127.0.0.1:{admin_port}"
        target.write_text(yaml.safe_dump(config))
        return admin_port

    def environment(self, name: str, ports: Mapping[int, int], changes: Mapping[str, str]) -> dict[str, str]:
        env = {k: self.localise(self.interpolate(str(v)), ports) for k, v in self.services[name]["environment"].items()}
        env["DATABASE_URL"] = self.database_url
        env["REDIS_URL"] = self.redis_url
        env["SHOPGRAPH_REDIS_PREFIX"] = self.redis_prefix
        env.update(self.image_env)
        env.update(changes)
        # The process environment of a container: PATH and the like, nothing of the test's own settings.
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV")}
        return base | env

    def healthcheck(self, name: str, ports: Mapping[int, int]) -> list[str] | None:
        check = self.services[name].get("healthcheck")
        if not check:
            return None
        test = [self.localise(self.interpolate(str(a)), ports) for a in check["test"]]
        assert test[0] == "CMD" and test[1] == "shopgraph", test
        return [SHOPGRAPH, *test[2:]]

    # -- running ---------------------------------------------------------------------------------

    def url(self, name: str, path: str = "/graphql") -> str:
        """``path`` on the one port instance ``name`` listens on."""
        (port,) = self.instances[name].ports.values()
        return f"http://127.0.0.1:{port}{path}"

    def admin_url(self, name: str, path: str = "/metrics") -> str:
        """``path`` on instance ``name``'s admin listener."""
        port = self.instances[name].admin_port
        assert port is not None, f"{name} has no admin listener"
        return f"http://127.0.0.1:{port}{path}"

    def start(self, name: str, *, instance: str | None = None, changes: Mapping[str, str] | None = None) -> Instance:
        """Start ``name`` (as ``instance``, for a replica) and return once it is healthy."""
        started, ports = self._spawn(name, instance, changes or {})
        self._wait_healthy(name, started, ports)
        return started

    def _spawn(self, name: str, instance: str | None, changes: Mapping[str, str]) -> tuple[Instance, dict[int, int]]:
        key = instance or name
        ports = dict(self.port_map)
        if instance is not None:  # a replica listens on ports of its own
            ports |= {p: free_port() for p in self._declared_ports(name)}
        log = self.workdir / f"{key}.log"
        source, config, admin_port = self.config_file(name), None, None
        if source is not None:
            config = self.workdir / f"{key}.{source.name}"
            admin_port = self.localise_config(source, config, ports)
        process = subprocess.Popen(
            [SHOPGRAPH, *self.command(name, ports, config)],
            env=self.environment(name, ports, changes),
            cwd=ROOT,  # the image's WORKDIR holds the repository's files
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        own = {p: ports[p] for p in self._declared_ports(name)}
        self.instances[key] = spawned = Instance(key, process, log, own, admin_port)
        return spawned, ports

    def run_to_completion(self, name: str, timeout: float = 300) -> None:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            done = subprocess.run(
                [SHOPGRAPH, *self.command(name, self.port_map)],
                env=self.environment(name, self.port_map, {}),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        assert done.returncode == 0, f"{name} exited {done.returncode}:\n{log.read_text()[-3000:]}"

    def up(self) -> None:
        """Everything, in ``depends_on`` order (services whose dependencies are up start together)."""
        # Services not built from the shop's image (postgres, redis: the test's own; the mail catcher,
        # which nothing here needs: the worker just retries) are not started.
        done: set[str] = {name for name, spec in self.services.items() if "build" not in spec}
        pending = [name for name in self.services if name not in done]
        while pending:
            ready = [n for n in pending if set(self.services[n].get("depends_on", {})) <= done]
            assert ready, f"depends_on cycle among {pending}"
            for name in ready:
                if self.services[name].get("restart") == "no":
                    self.run_to_completion(name)
            wave = [
                (n, *self._spawn(n, None, self.changes.get(n, {})))
                for n in ready
                if self.services[n].get("restart") != "no"
            ]
            for name, instance, ports in wave:
                self._wait_healthy(name, instance, ports)
            done.update(ready)
            pending = [n for n in pending if n not in done]

    def _wait_healthy(self, name: str, instance: Instance, ports: Mapping[int, int], timeout: float = 120) -> None:
        check = self.healthcheck(name, ports)
        deadline = time.monotonic() + timeout
        while True:
            if instance.process.poll() is not None:
                raise AssertionError(
                    f"{instance.name} exited {instance.process.returncode}:\n{self.logs(instance.name)}"
                )
            # The check command is a process of its own (~0.2 s of CPU each): run only once the
            # service listens, not every 0.3 s while it imports.
            if check is None or (
                _listening(instance) and subprocess.run(check, capture_output=True, check=False).returncode == 0
            ):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{instance.name} not healthy in {timeout}s:\n{self.logs(instance.name)}")
            time.sleep(0.3)

    def logs(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str) -> None:
        instance = self.instances.pop(name)
        instance.process.terminate()
        try:
            instance.process.wait(20)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            instance.process.wait()

    def __enter__(self) -> Self:
        try:
            self.up()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for name in reversed(list(self.instances)):
            self.stop(name)
