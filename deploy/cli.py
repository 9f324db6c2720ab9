"""The ``shopgraph`` command: dev, migrate, seed, compose, router, relay."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from subgraphs.kit.config import SUBGRAPHS

from .stack import (
    DEV_PORT_BASE,
    PROJECT_ROOT,
    Stack,
    available_subgraphs,
    backing_services,
    compose_router,
    dev_data_dir,
    dev_ports,
    freeze_startup_objects,
    migrate_all,
    router_available,
    seed_all,
    subgraph_sdl,
)

# -- dev ---------------------------------------------------------------------------------------


def _graphiql_assets() -> None:
    """Install the router's GraphiQL assets if missing (a cheap check; without npm, GraphiQL uses a CDN)."""
    importlib.import_module("router.graphiql").ensure_assets()


async def _dev(host: str, port_base: int, with_router: bool) -> int:
    if with_router and router_available():
        _graphiql_assets()  # before the signal handlers: Ctrl-C stops an install like any start-up
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

    router = compose_router if with_router and router_available() else None
    stack = Stack(
        seed=True,
        host=host,
        ports=dev_ports(port_base),
        data_dir=dev_data_dir(),
        router=router,
        # Password-reset mail is printed here, links pointing at this stack's storefront.
        settings_overrides={"mail_console": True, "public_url": f"http://{host}:{port_base}"},
    )
    try:
        async with stack:
            up = True
            _print_banner(stack)
            await stop.wait()
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
    print("Stopped.", flush=True)
    return 0


def _print_banner(stack: Stack) -> None:
    lines = ["", "Shopgraph is running:"]
    lines += [f"  {name:<8} {url}" for name, url in stack.urls.items()]
    if "router" in stack.urls:
        lines.append(f"GraphiQL: {stack.urls['router']} (in a browser)")
    else:
        lines.append("  router   not started (--no-router, or the router package is not available)")
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

    with backing_services(dev_data_dir()) as (database_url, redis_url):
        settings = Settings.from_env(database_url=database_url, redis_url=redis_url)
        for name, versions in (await migrate_all(settings, available_subgraphs())).items():
            print(f"{name}: {', '.join(versions) if versions else 'up to date'}")
    return 0


async def _seed() -> int:
    from subgraphs.kit.config import Settings

    with backing_services(dev_data_dir()) as (database_url, redis_url):
        settings = Settings.from_env(database_url=database_url, redis_url=redis_url)
        subgraphs = available_subgraphs()
        await migrate_all(settings, subgraphs)
        result = await seed_all(settings, subgraphs)
    print(f"Seeded {result.products} products.")
    for role, email, password in result.accounts:
        print(f"  {role:<8} {email}  password: {password}")
    return 0


# -- compose -----------------------------------------------------------------------------------


def _compose(out: Path, port_base: int) -> int:
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
    app = importlib.import_module(f"subgraphs.{subgraph}.app").create_app(settings)
    freeze_startup_objects()
    uvicorn.run(app, host=host, port=port, log_level="info")
    return 0


# -- relay -------------------------------------------------------------------------------------


async def _relay() -> int:
    """The orders outbox relay on its own (run the apps with SHOPGRAPH_OUTBOX_RELAY=0 then)."""
    from subgraphs.kit.config import Settings
    from subgraphs.orders.events import relay

    settings = Settings.from_env()
    if not settings.database_url or not settings.redis_url:
        print("shopgraph relay: set DATABASE_URL and REDIS_URL", file=sys.stderr)
        return 2
    task = asyncio.create_task(relay(settings).run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    print(f"relaying orders.outbox to {settings.redis_prefix}orders:events", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return 0


def _plan(supergraph: Path, query: Path, operation_name: str | None) -> int:
    from router.planner import PlanningError, plan_document
    from router.supergraph import Supergraph

    try:
        print(plan_document(Supergraph(supergraph.read_text()), query.read_text(), operation_name))
    except PlanningError as e:
        print(f"shopgraph plan: {e}", file=sys.stderr)
        return 1
    return 0


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
    commands.add_parser("relay", help="publish the orders outbox to Redis (DATABASE_URL, REDIS_URL)")
    plan = commands.add_parser("plan", help="print the query plan of an operation (Apollo's notation)")
    plan.add_argument("--supergraph", type=Path, required=True)
    plan.add_argument("query", type=Path, help="file holding the operation")
    plan.add_argument("--operation-name", default=None)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if args.command == "dev":
            return asyncio.run(_dev(args.host, args.port_base, args.router))
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
            return asyncio.run(_relay())
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
