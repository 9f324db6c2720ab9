"""The ``shopgraph`` command: dev, migrate, seed, compose, router, relay."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from subgraphs.kit.config import SUBGRAPHS

if TYPE_CHECKING:
    from subgraphs.kit.config import Settings

    from .stack import Stack

# Only cheap modules here: `shopgraph dev` starts PostgreSQL while the heavy ones
# (SQLAlchemy, strawberry, the apps: seconds of imports) load in a thread.
from .bytecode import cache_bytecode_in
from .embedded import backing_detail, backing_services
from .layout import DEV_PORT_BASE, PROJECT_ROOT, dev_data_dir, dev_ports
from .logs import configure_logging, log_format
from .progress import Progress
from .tracing import service, setup_tracing

K8S_SUPERGRAPH = PROJECT_ROOT / "deploy" / "k8s" / "base" / "supergraph.graphql"

# -- dev ---------------------------------------------------------------------------------------


def _graphiql_assets(progress: Progress) -> None:
    """Install the router's GraphiQL assets if missing, beside the rest of the start-up.

    ``npm ci`` takes ~10 s; until it is done GraphiQL loads the same versions from a CDN
    (without npm, always). The thread is a daemon: Ctrl-C does not wait for it.
    """
    graphiql = importlib.import_module("router.graphiql")
    if graphiql.assets_installed():
        return

    def install() -> None:
        with progress.step("GraphiQL assets (npm ci, in the background)"):
            graphiql.ensure_assets()

    threading.Thread(target=install, name="graphiql-assets", daemon=True).start()


STOREFRONT_PORT_OFFSET = 80  # the page renderer listens on the router's port + 80 (4080), on the same host


def _storefront(progress: Progress, servers: contextlib.ExitStack, host: str, port_base: int) -> str:
    """Build the storefront when missing or stale (npm ci + vite build), in the background like
    GraphiQL's assets, then start its page renderer (node) and point the router at it: the router
    looks both up per request, answering 503 "starting" pages until they are there. Returns what
    the banner says of it."""
    if importlib.util.find_spec("frontend_contract") is None:
        return "not part of this install, so GraphiQL only"
    build = importlib.import_module("frontend_contract.build")
    ready = build.up_to_date()
    if not ready and shutil.which("npm") is None:
        return "not built (it needs npm), so GraphiQL only"
    port = port_base + STOREFRONT_PORT_OFFSET
    started: list[Any] = []

    def stop() -> None:
        for process in started:
            process.terminate()
            with contextlib.suppress(Exception):
                process.wait(timeout=5)

    servers.callback(stop)

    def run() -> None:
        if not ready:
            with progress.step("storefront (npm ci + vite build, in the background)"):
                if not build.ensure_built():
                    return
        try:
            started.append(build.renderer(build.DIST_DIR, f"http://{host}:{port_base}", port, host))
        except build.BuildError as exc:
            logging.getLogger("shopgraph.storefront").warning("storefront: pages not rendered (%s)", exc)
            return
        # router/storefront.py reads it per request: pages are passed to the renderer from now on.
        os.environ["SHOPGRAPH_STOREFRONT_SSR_URL"] = f"http://{host}:{port}"

    threading.Thread(target=run, name="storefront-build", daemon=True).start()
    rendered = f"rendered on the server by node on {host}:{port}"
    return rendered if ready else f"building in the background (a few seconds), then {rendered}"


def _preload(subgraphs: Sequence[str], router: bool) -> None:
    """Import the stack and what it serves (errors surface again where they are used)."""
    modules = ["deploy.stack", *(f"subgraphs.{name}.app" for name in subgraphs)]
    if router:
        modules += ["router.compose", "router.http"]
    for module in modules:
        with contextlib.suppress(Exception):
            importlib.import_module(module)


def _router_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("router.compose", "router.http"))


async def _dev(host: str, port_base: int, with_router: bool, processes: bool) -> int:
    progress = Progress()
    with_router = with_router and _router_available()
    # Seconds of imports run beside the servers' start (mostly waits on other processes).
    preload = threading.Thread(target=_preload, args=(SUBGRAPHS, with_router), name="preload", daemon=True)
    preload.start()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    stop = asyncio.Event()
    up = False

    def on_signal() -> None:
        # Before the stack is up, abandon the start-up (it cleans up after itself).
        if stop.is_set():
            return
        stop.set()
        print("\nStopping…", flush=True)
        if not up:
            main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    # Before any app is built (they add their tracing middleware when it is on). One process serves
    # the router and the subgraphs (or only the router, with --processes): a service name each.
    tracing = setup_tracing("shopgraph-dev", per_service=True)
    try:
        with contextlib.ExitStack() as servers:
            with progress.step("PostgreSQL + Redis") as step:
                step.detail = backing_detail(dev_data_dir())
                backing = servers.enter_context(backing_services(dev_data_dir()))
            with progress.step("Python modules (loaded beside the servers)"):
                preload.join()  # imports are not safe from two threads at once: only now the main one imports
            storefront = ""
            if with_router:
                _graphiql_assets(progress)
                storefront = _storefront(progress, servers, host, port_base)
            from starlette.types import ASGIApp

            from subgraphs.notifications.config import NotifySettings
            from subgraphs.notifications.worker import Worker

            from .devmail import MailSink, with_mail_pages
            from .stack import Stack, compose_router

            with progress.step("mail catcher (SMTP)") as step:
                # Every mail the shop sends lands here: printed (subject, links) and shown at /dev/mail.
                try:
                    sink = await MailSink(host, port_base + 25, echo=sys.stdout).start()
                except OSError as exc:
                    raise RuntimeError(f"cannot listen on {host}:{port_base + 25} (SMTP): {exc.strerror}") from exc
                step.detail = f"{host}:{sink.port}"

            def router_with_mail(stack: Stack) -> ASGIApp:
                return with_mail_pages(compose_router(stack), sink)

            stack = Stack(
                seed=True,
                host=host,
                ports=dev_ports(port_base),
                data_dir=dev_data_dir(),
                router=router_with_mail if with_router else None,
                progress=progress,
                backing=backing,
                processes=processes,
                # Links in mail point at this stack's storefront.
                settings_overrides={"public_url": f"http://{host}:{port_base}"},
            )
            try:
                async with stack:
                    assert stack.settings is not None
                    notify = NotifySettings(
                        smtp_host=host, smtp_port=sink.port, backoff_seconds=0.5, backoff_max_seconds=10.0
                    )
                    with progress.step("notifications worker"), service("shopgraph-notifications"):
                        mailer = Worker(stack.settings, notify).running()
                        await mailer.__aenter__()
                    try:
                        up = True
                        progress.note(f"ready in {progress.total():.1f} s")
                        _print_banner(stack, storefront, sink.port, tracing)
                        await stop.wait()
                    finally:
                        await mailer.__aexit__(None, None, None)
            finally:
                await sink.stop()
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
    print("Stopped.", flush=True)
    return 0


def _print_banner(stack: Stack, storefront: str = "", smtp_port: int | None = None, tracing: bool = False) -> None:
    lines = ["", "Shopgraph is running:"]
    lines += [
        f"  {name:<8} {url}" + (f"  (pid {stack.pids[name]})" if name in stack.pids else "")
        for name, url in stack.urls.items()
    ]
    if "router" in stack.urls:
        home = stack.urls["router"].removesuffix("graphql")
        lines.append(f"Storefront: {home} (admin dashboard at /admin): {storefront}")
        lines.append(f"GraphiQL: {stack.urls['router']} (in a browser)")
        if smtp_port is not None:
            lines.append(f"Mail: {home}dev/mail (every message the shop sends; SMTP sink on port {smtp_port})")
    else:
        lines.append("  router   not started (--no-router, or the router package is not available)")
    # Where to look: each port's /metrics holds its own component's series only (deploy.metrics_scope).
    lines.append("Metrics: " + ", ".join(f"{stack.base_url(name)}/metrics" for name in stack.urls))
    if tracing:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        lines.append(
            f"Traces: exported over OTLP to {endpoint} (with the compose profile: Jaeger at http://localhost:16686)"
        )
    else:
        lines.append(
            "Traces: off (set OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://localhost:4318 with the compose profile)"
        )
    if stack.seeded.accounts:
        lines.append("Demo accounts:")
        lines += [f"  {role:<8} {email}  password: {password}" for role, email, password in stack.seeded.accounts]
    if stack.seeded.products:
        lines.append(f"Demo catalog: {stack.seeded.products} products")
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


# -- migrate / seed ----------------------------------------------------------------------------


async def _migrate() -> int:
    from subgraphs.kit.config import Settings

    from .stack import available_subgraphs, migrate_all

    with backing_services(dev_data_dir()) as (database_url, redis_url):
        settings = Settings.from_env(database_url=database_url, redis_url=redis_url)
        applied = await migrate_all(settings, available_subgraphs())
        applied["notifications"] = await _migrate_notifications(settings)
        for name, versions in applied.items():
            print(f"{name}: {', '.join(versions) if versions else 'up to date'}")
    return 0


async def _migrate_notifications(settings: Settings) -> list[str]:
    """The notifications worker's schema (the worker also applies it when it starts)."""
    from subgraphs.notifications.worker import migrate_schema

    return await migrate_schema(settings)


async def _seed() -> int:
    from subgraphs.kit.config import Settings

    from .stack import available_subgraphs, migrate_all, seed_all

    with backing_services(dev_data_dir()) as (database_url, redis_url):
        settings = Settings.from_env(database_url=database_url, redis_url=redis_url)
        subgraphs = available_subgraphs()
        await migrate_all(settings, subgraphs)
        await _migrate_notifications(settings)
        result = await seed_all(settings, subgraphs)
    print(f"Seeded {result.products} products.")
    for role, email, password in result.accounts:
        print(f"  {role:<8} {email}  password: {password}")
    return 0


# -- compose -----------------------------------------------------------------------------------


def _compose(out: Path, port_base: int) -> int:
    from .stack import available_subgraphs, subgraph_sdl

    out.mkdir(parents=True, exist_ok=True)
    ports = dev_ports(port_base)
    subgraphs: list[tuple[str, str, str]] = []  # (name, url, sdl)
    for name in available_subgraphs():
        sdl = subgraph_sdl(name)
        (out / f"{name}.graphql").write_text(sdl)
        subgraphs.append((name, f"http://127.0.0.1:{ports[name]}/graphql", sdl))
        print(f"wrote {out / f'{name}.graphql'}")
    # The supergraph, from the router's own composition (router.compose).
    if importlib.util.find_spec("router.compose") is None:
        print("router.compose is not available yet: supergraph.graphql not written", file=sys.stderr)
        return 0
    compose = importlib.import_module("router.compose")
    sources = [compose.SubgraphSource(name=name, url=url, sdl=sdl) for name, url, sdl in subgraphs]
    try:
        supergraph: str = compose.compose(sources)
    except compose.CompositionError as exc:
        print(f"composition failed:\n{exc}", file=sys.stderr)
        return 1
    (out / "supergraph.graphql").write_text(supergraph)
    print(f"wrote {out / 'supergraph.graphql'}")
    if out == PROJECT_ROOT / "schema":  # the Kubernetes ConfigMap's copy (kustomize reads only its own directory)
        K8S_SUPERGRAPH.write_text(supergraph)
        print(f"wrote {K8S_SUPERGRAPH}")
    return 0


# -- router ------------------------------------------------------------------------------------


def _router(config: Path | None, supergraph: str | None, host: str, port: int) -> int:
    if supergraph is not None and not supergraph.startswith(("http://", "https://")) and not Path(supergraph).is_file():
        print(f"shopgraph router: no supergraph file at {supergraph} (try `shopgraph compose`)", file=sys.stderr)
        return 2
    try:
        http = importlib.import_module("router.http")
    except ImportError as exc:
        print(f"the router is not available yet ({exc})", file=sys.stderr)
        return 1
    setup_tracing("shopgraph-router", edge=True)
    try:
        http.serve(str(config) if config else None, supergraph, host, port)
    except http.ConfigError as exc:
        print(f"shopgraph router: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


# -- serve -------------------------------------------------------------------------------------


def _serve(subgraph: str, host: str, port: int) -> int:
    """One subgraph on its own, configured only by the environment (how it runs in production)."""
    import uvicorn

    from subgraphs.kit.config import Settings

    from .stack import freeze_startup_objects

    settings = Settings.from_env()
    missing = [
        name
        for name, value in (
            ("DATABASE_URL", settings.database_url_for(subgraph)),
            ("REDIS_URL", settings.redis_url),
            ("SHOPGRAPH_SERVICE_SECRET", settings.service_secret),
            ("SHOPGRAPH_SUBGRAPH_USERS_URL", settings.subgraph_urls.get("users")),
        )
        if not value
    ]
    if missing:
        print(f"shopgraph serve {subgraph}: set {', '.join(missing)}", file=sys.stderr)
        return 2
    setup_tracing(f"shopgraph-{subgraph}")
    app = importlib.import_module(f"subgraphs.{subgraph}.app").create_app(settings)
    freeze_startup_objects()
    # Logging as configure_logging set it (JSON by default); no uvicorn access log: the router has one.
    # X-Forwarded-For only from SHOPGRAPH_TRUSTED_PROXIES (none by default; uvicorn's default believes 127.0.0.1).
    trusted = [a.strip() for a in os.environ.get("SHOPGRAPH_TRUSTED_PROXIES", "").split(",") if a.strip()]
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )
    return 0


# -- relay -------------------------------------------------------------------------------------


def outbox_relays() -> dict[str, Any]:
    """Every subgraph's outbox relay factory (``subgraphs.<name>.events.relay``), from the registry."""
    found: dict[str, Any] = {}
    for name in SUBGRAPHS:
        if importlib.util.find_spec(f"subgraphs.{name}.events") is None:
            continue
        factory = getattr(importlib.import_module(f"subgraphs.{name}.events"), "relay", None)
        if factory is not None:
            found[name] = factory
    return found


async def _relay(metrics_host: str, metrics_port: int | None) -> int:
    """The outbox relays on their own: one per subgraph with an outbox (orders, catalog, users, payments;
    run the apps with SHOPGRAPH_OUTBOX_RELAY=0 then)."""
    from subgraphs.kit.config import Settings

    settings = Settings.from_env()
    if not settings.database_url or not settings.redis_url:
        print("shopgraph relay: set DATABASE_URL and REDIS_URL", file=sys.stderr)
        return 2
    setup_tracing("shopgraph-relay")
    if metrics_port is not None:
        import prometheus_client

        prometheus_client.start_http_server(metrics_port, metrics_host)
    relays = [factory(settings) for factory in outbox_relays().values()]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: [t.cancel() for t in tasks])
    logging.getLogger("shopgraph.relay").info(
        "relaying %s", ", ".join(f"{relay.schema}.{relay.table} to {relay.stream}" for relay in relays)
    )
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks)
    return 0


# -- notify ------------------------------------------------------------------------------------


async def _notify(metrics_host: str, metrics_port: int | None) -> int:
    """The notifications worker: order and account events -> mail over SMTP (SHOPGRAPH_SMTP_*)."""
    from subgraphs.kit.config import Settings
    from subgraphs.notifications.config import NotifySettings
    from subgraphs.notifications.worker import Worker

    try:
        settings = Settings.from_env()
        notify = NotifySettings.from_env()
    except ValueError as exc:
        print(f"shopgraph notify: {exc}", file=sys.stderr)
        return 2
    missing = [
        name
        for name, value in (
            ("DATABASE_URL", settings.database_url),
            ("REDIS_URL", settings.redis_url),
            ("SHOPGRAPH_SERVICE_SECRET", settings.service_secret),
            ("SHOPGRAPH_SUBGRAPH_USERS_URL", settings.subgraph_urls.get("users")),
        )
        if not value
    ]
    if missing:
        print(f"shopgraph notify: set {', '.join(missing)}", file=sys.stderr)
        return 2
    setup_tracing("shopgraph-notifications")
    if metrics_port is not None:
        import prometheus_client

        prometheus_client.start_http_server(metrics_port, metrics_host)
    task = asyncio.create_task(Worker(settings, notify).run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return 0


# -- plan --------------------------------------------------------------------------------------


def _plan(supergraph: Path, query: Path, operation_name: str | None) -> int:
    from router.planner import PlanningError, plan_document
    from router.supergraph import Supergraph

    try:
        print(plan_document(Supergraph(supergraph.read_text()), query.read_text(), operation_name))
    except PlanningError as e:
        print(f"shopgraph plan: {e}", file=sys.stderr)
        return 1
    return 0


# -- storefront ---------------------------------------------------------------------------------


def _storefront_server(host: str, port: int, router_url: str, public_url: str | None) -> int:
    """The storefront's page renderer (node on the build's dist/server/main.js), in place of this
    process: the router passes page requests to it (SHOPGRAPH_STOREFRONT_SSR_URL)."""
    build = importlib.import_module("frontend_contract.build")
    # The build the router serves /assets from (router/storefront.py reads the same variable).
    configured = os.environ.get("SHOPGRAPH_STOREFRONT_DIR")
    entry = build.server_entry(Path(configured) if configured else build.DIST_DIR)
    node = shutil.which("node")
    if node is None:
        print("shopgraph storefront: cannot render pages: node is not installed", file=sys.stderr)
        return 1
    if not entry.is_file():
        # In the image the build is there; from a checkout, it is waited for (the router answers 503 meanwhile).
        print(f"shopgraph storefront: waiting for {entry} (npm ci && npm run build)", file=sys.stderr, flush=True)
        while not entry.is_file():
            time.sleep(2)
    env = {**os.environ, "HOST": host, "PORT": str(port), "SHOPGRAPH_ROUTER": router_url}
    env["SHOPGRAPH_LOG_FORMAT"] = log_format("json")  # its lines as the other deployed processes' (server/log.ts)
    if public_url:
        env["SHOPGRAPH_PUBLIC_URL"] = public_url
    os.execve(node, [node, str(entry)], env)  # signals (compose stop, k8s) go straight to node


# -- probe -------------------------------------------------------------------------------------


def _probe(url: str, timeout: float) -> int:
    """A health check for images without curl: 0 on HTTP 200, 1 otherwise."""
    import httpx

    try:
        status = httpx.get(url, timeout=timeout, trust_env=False).status_code
    except httpx.HTTPError as exc:
        print(f"{url}: {exc!r}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"{url}: HTTP {status}", file=sys.stderr)
    return 0 if status == 200 else 1


# -- entry point -------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="shopgraph", description="Shopgraph: federated GraphQL shop backend.")
    commands = cli.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="run the whole stack locally (embedded PG/Redis unless URLs are set)")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument(
        "--port-base",
        type=int,
        default=DEV_PORT_BASE,
        help="router on BASE, subgraphs on BASE+1..BASE+4 (default %(default)s)",
    )
    dev.add_argument("--no-router", dest="router", action="store_false", help="serve the subgraphs only")
    dev.add_argument(
        "--processes",
        action="store_true",
        help="each subgraph in a process of its own (stop one to see the graph's partial results)",
    )
    commands.add_parser("migrate", help="apply every subgraph's migrations")
    commands.add_parser("seed", help="load the demo catalog and accounts (idempotent)")

    compose = commands.add_parser("compose", help="write schema/<subgraph>.graphql (and the supergraph)")
    compose.add_argument("--out", type=Path, default=PROJECT_ROOT / "schema")
    compose.add_argument("--port-base", type=int, default=DEV_PORT_BASE, help="for the subgraph URLs")

    router = commands.add_parser("router", help="run the router against a supergraph SDL file")
    router.add_argument("--config", type=Path, help="router.yaml (every option: see the README)")
    router.add_argument("--supergraph", help="supergraph SDL file or URL (overrides supergraph.path)")
    router.add_argument("--host", default="127.0.0.1")
    router.add_argument("--port", type=int, default=DEV_PORT_BASE)

    serve = commands.add_parser(
        "serve", help="run one subgraph (configured by the environment; router-only unless SHOPGRAPH_ROUTER_ONLY=0)"
    )
    serve.add_argument("subgraph", choices=SUBGRAPHS)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    relay = commands.add_parser(
        "relay", help="publish every subgraph's outbox (orders, catalog, users, payments) to Redis"
    )
    relay.add_argument("--metrics-port", type=int, help="serve Prometheus metrics (and liveness) on this port")
    relay.add_argument("--metrics-host", default="0.0.0.0")
    notify = commands.add_parser("notify", help="run the notifications worker (events -> mail over SMTP)")
    notify.add_argument("--metrics-port", type=int, help="serve Prometheus metrics (and liveness) on this port")
    notify.add_argument("--metrics-host", default="0.0.0.0")
    storefront = commands.add_parser(
        "storefront", help="render the storefront's pages (node; the router passes page requests to it)"
    )
    storefront.add_argument("--host", default="127.0.0.1")
    storefront.add_argument("--port", type=int, default=DEV_PORT_BASE + STOREFRONT_PORT_OFFSET)
    storefront.add_argument("--router", default=f"http://127.0.0.1:{DEV_PORT_BASE}", help="the router's base URL")
    storefront.add_argument("--public-url", help="the shop's public origin for canonical URLs (default: the Host)")
    probe = commands.add_parser("probe", help="exit 0 if URL answers HTTP 200 (container health checks)")
    probe.add_argument("url")
    probe.add_argument("--timeout", type=float, default=4.0)
    plan = commands.add_parser("plan", help="print the query plan of an operation (Apollo's notation)")
    plan.add_argument("--supergraph", type=Path, required=True)
    plan.add_argument("query", type=Path, help="file holding the operation")
    plan.add_argument("--operation-name", default=None)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Services log JSON lines for a log pipeline; commands a person runs log text.
    configure_logging("json" if args.command in ("serve", "router", "relay", "notify", "storefront") else "text")
    try:
        if args.command == "dev":
            cache_bytecode_in(dev_data_dir())
            return asyncio.run(_dev(args.host, args.port_base, args.router, args.processes))
        if args.command == "migrate":
            return asyncio.run(_migrate())
        if args.command == "seed":
            return asyncio.run(_seed())
        if args.command == "compose":
            return _compose(args.out, args.port_base)
        if args.command == "router":
            return _router(args.config, args.supergraph, args.host, args.port)
        if args.command == "serve":
            return _serve(args.subgraph, args.host, args.port)
        if args.command == "relay":
            return asyncio.run(_relay(args.metrics_host, args.metrics_port))
        if args.command == "notify":
            return asyncio.run(_notify(args.metrics_host, args.metrics_port))
        if args.command == "probe":
            return _probe(args.url, args.timeout)
        if args.command == "storefront":
            return _storefront_server(args.host, args.port, args.router, args.public_url)
        if args.command == "plan":
            return _plan(args.supergraph, args.query, args.operation_name)
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:  # start-up problems we can explain (port taken, server failed)
        print(f"shopgraph {args.command}: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
