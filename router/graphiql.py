"""GraphiQL for the router: the page, and the browser builds it loads, served by the router itself.

- ``page(request) -> HTMLResponse`` is the GraphiQL page for ``GET /graphql`` from a browser (with
  a nonce-based Content-Security-Policy). Queries and
  mutations are POSTed to the page's own path; subscriptions go over graphql-transport-ws to the
  same path, with the *Headers* tab (e.g. ``{"Authorization": "Bearer …"}``) sent as the
  ``connection_init`` payload.
- ``routes() -> list[Route]`` serves the pinned React, GraphiQL and graphql-ws browser builds under
  ``/graphiql/`` from ``router/graphiql_assets/node_modules`` (``npm ci`` there installs them), so
  GraphiQL works with no internet. When they are not installed the page loads the very same
  versions from a public CDN instead.
- ``ensure_assets() -> bool`` installs them with ``npm ci`` when they are missing and npm is
  available (what ``shopgraph dev`` calls); it never raises.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger("shopgraph.router.graphiql")

ASSETS_DIR = Path(__file__).resolve().parent / "graphiql_assets"
NODE_MODULES = ASSETS_DIR / "node_modules"
CDN = "https://unpkg.com"
PREFIX = "/graphiql/"
INSTALL_TIMEOUT = 300.0  # seconds for `npm ci`

# Pinned versions: the same as router/graphiql_assets/package.json (a unit test keeps them equal).
VERSIONS = {
    "react": "18.3.1",
    "react-dom": "18.3.1",
    "graphiql": "3.8.3",
    "graphql-ws": "5.16.2",
}


@dataclass(frozen=True)
class Asset:
    package: str
    path: str  # within the package
    media_type: str

    @property
    def file(self) -> Path:
        return NODE_MODULES / self.package / self.path

    @property
    def cdn_url(self) -> str:
        return f"{CDN}/{self.package}@{VERSIONS[self.package]}/{self.path}"


JS = "text/javascript; charset=utf-8"
ASSETS = {
    "react.production.min.js": Asset("react", "umd/react.production.min.js", JS),
    "react-dom.production.min.js": Asset("react-dom", "umd/react-dom.production.min.js", JS),
    "graphiql.min.js": Asset("graphiql", "graphiql.min.js", JS),
    "graphiql.min.css": Asset("graphiql", "graphiql.min.css", "text/css; charset=utf-8"),
    "graphql-ws.min.js": Asset("graphql-ws", "umd/graphql-ws.min.js", JS),
}
_SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "graphql-ws.min.js")


def assets_installed() -> bool:
    """Whether every asset the page needs is installed locally."""
    return all(a.file.is_file() for a in ASSETS.values())


def asset_urls(root_path: str = "") -> dict[str, str]:
    """Asset name -> the URL the page loads it from: the router's own copy when installed, else the CDN."""
    if assets_installed():
        return {name: f"{root_path}{PREFIX}{name}?v={VERSIONS[a.package]}" for name, a in ASSETS.items()}
    return {name: a.cdn_url for name, a in ASSETS.items()}


def page(request: Request, plan: bool = False) -> HTMLResponse:
    """The GraphiQL page for a browser's ``GET`` of the GraphQL path.

    ``plan``: the router exposes query plans (``query_plan.expose``): the page asks for them
    (``Apollo-Expose-Query-Plan: true``) and shows, in its *Query plan* panel, the plan of the
    operation just run and a waterfall of its subgraph fetches (``extensions.shopgraphTimings``).

    Its Content-Security-Policy lets its own two inline scripts run by a nonce fresh for each page,
    and scripts otherwise from this origin (or the CDN, when the assets are not installed) only;
    nothing may frame it."""
    urls = {k: html.escape(v, quote=True) for k, v in asset_urls(str(request.scope.get("root_path", ""))).items()}
    local = not urls["graphiql.min.js"].startswith(CDN)
    cross = "" if local else " crossorigin"
    scripts = "\n".join(f'<script{cross} src="{urls[name]}"></script>' for name in _SCRIPTS)
    nonce = secrets.token_urlsafe(16)
    body = _PAGE.format(
        css=urls["graphiql.min.css"],
        scripts=scripts,
        source=json.dumps("local" if local else "cdn"),
        plan=json.dumps(plan),
        plan_panel=_PLAN_PANEL,
        nonce=nonce,
    )
    cdn = "" if local else f" {CDN}"
    csp = (
        f"default-src 'self'; script-src 'self' 'nonce-{nonce}'{cdn}; style-src 'self' 'unsafe-inline'{cdn}; "
        f"img-src 'self' data:; font-src 'self' data:{cdn}; connect-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
    headers = {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",  # the nonce is for this page only
    }
    return HTMLResponse(body, headers=headers)


async def _asset(request: Request) -> Response:
    asset = ASSETS.get(str(request.path_params["name"]))
    if asset is None or not asset.file.is_file():
        return PlainTextResponse("Not found", status_code=404)
    return FileResponse(asset.file, media_type=asset.media_type, headers={"Cache-Control": "public, max-age=86400"})


async def _missing(_: Request) -> Response:
    return PlainTextResponse("Not found", status_code=404)


def routes(enabled: bool) -> list[Route]:
    """``GET /graphiql/…``: the listed GraphiQL assets when enabled; every other path under the
    prefix (or all of them, when GraphiQL is off) is a 404, never the storefront's page."""
    return [Route(PREFIX + "{name:path}", _asset if enabled else _missing, methods=["GET", "HEAD"])]


def ensure_assets(timeout: float = INSTALL_TIMEOUT) -> bool:
    """Install the GraphiQL assets with ``npm ci`` if they are missing; True when they are installed.

    Never raises: without npm, or when the install fails, it logs that GraphiQL loads from the CDN.
    """
    if assets_installed():
        return True
    npm = shutil.which("npm")
    if npm is None:
        log.warning("GraphiQL: npm not found, so its assets are not installed; the page loads them from %s", CDN)
        return False
    log.info("GraphiQL: installing its assets once with `npm ci` in %s …", ASSETS_DIR)
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=ASSETS_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("GraphiQL: `npm ci` failed (%s); the page loads its assets from %s", e, CDN)
        return False
    if done.returncode != 0 or not assets_installed():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        log.warning("GraphiQL: `npm ci` failed (%s); the page loads its assets from %s", " | ".join(tail), CDN)
        return False
    return True


# GraphiQL's "Query plan" panel (a GraphiQL plugin): the plan the router sent for the operation just
# run (``extensions.apolloQueryPlan.text``) and a waterfall of its subgraph fetches with their
# timings, planning time and entity-cache hits (``extensions.shopgraphTimings``). Plain JS
# (``React.createElement``): the page has no build step.
_PLAN_PANEL = """
window.shopgraphPlan = (() => {
  const h = React.createElement;
  let last = null;
  const listeners = new Set();
  const show = (extensions) => {
    if (!extensions.apolloQueryPlan && !extensions.shopgraphTimings) return;
    last = extensions;
    listeners.forEach((f) => f(last));
  };
  const ms = (v) => (v == null ? '-' : `${v.toFixed(1)} ms`);
  function Waterfall({ timings }) {
    const total = Math.max(timings.totalMs || 0, 0.001);
    const rows = timings.fetches.map((f, i) =>
      h('div', { key: i, className: 'sg-fetch', 'data-service': f.service,
                 style: { display: 'flex', alignItems: 'center', gap: '6px', margin: '2px 0' } },
        h('span', { style: { width: '70px', flex: 'none' } }, f.service),
        h('span', { style: { position: 'relative', flex: 1, height: '12px',
                             background: 'rgba(127,127,127,0.15)' } },
          h('span', { style: { position: 'absolute', left: `${(100 * f.startMs) / total}%`,
                               width: `${Math.max((100 * f.durationMs) / total, 0.5)}%`, top: 0, bottom: 0,
                               background: f.status === 200 ? '#3b82f6' : '#dc2626' } })),
        h('span', { style: { width: '80px', flex: 'none', textAlign: 'right' } }, ms(f.durationMs))));
    const cache = timings.entityCache.map((c, i) =>
      h('li', { key: i, className: 'sg-cache' },
        `${c.service}: ${c.hits} hit${c.hits === 1 ? '' : 's'}, ${c.misses} miss${c.misses === 1 ? '' : 'es'}`
        + (c.bypassed ? ' (cache bypassed: Redis away)' : '')));
    return h('div', null,
      h('p', { className: 'sg-summary' },
        `${timings.fetches.length} fetch${timings.fetches.length === 1 ? '' : 'es'} in ${ms(timings.totalMs)}; `
        + (timings.planningMs == null ? 'plan from the cache' : `planned in ${ms(timings.planningMs)}`)),
      ...rows,
      cache.length ? h('div', null, h('h4', null, 'Entity cache'), h('ul', null, ...cache)) : null);
  }
  function Panel() {
    const [value, setValue] = React.useState(last);
    React.useEffect(() => { listeners.add(setValue); return () => listeners.delete(setValue); }, []);
    if (!value) return h('div', { className: 'sg-plan' },
      h('h3', null, 'Query plan'), h('p', null, 'Run an operation to see its plan and its fetches here.'));
    const plan = value.apolloQueryPlan;
    return h('div', { className: 'sg-plan', style: { fontSize: '13px' } },
      h('h3', null, 'Fetches'),
      value.shopgraphTimings ? h(Waterfall, { timings: value.shopgraphTimings }) : null,
      h('h3', null, 'Query plan'),
      h('pre', { className: 'sg-plan-text', style: { whiteSpace: 'pre-wrap', fontSize: '12px' } },
        plan ? plan.text : 'no plan'));
  }
  const icon = () => h('span', { style: { fontWeight: 700, fontSize: '12px' } }, 'QP');
  return { show, plugin: { title: 'Query plan', icon, content: Panel } };
})();
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Shopgraph GraphiQL</title>
<link rel="icon" href="data:,">
<style>body{{margin:0;height:100vh}}#graphiql{{height:100vh}}</style>
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
{scripts}
<script nonce="{nonce}">{plan_panel}</script>
<script nonce="{nonce}">
  // Assets from the router itself ("local") or a CDN ("cdn").
  window.SHOPGRAPH_GRAPHIQL_ASSETS = {source};
  // Subscriptions go over graphql-transport-ws to this same path; the headers
  // tab (e.g. {{"Authorization": "Bearer ..."}}) is sent as connection_init payload.
  const subscriptionUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host
    + location.pathname;
  let wsHeaders = {{}};
  const wsClient = {{
    subscribe(payload, sink) {{
      const client = graphqlWs.createClient({{ url: subscriptionUrl, connectionParams: wsHeaders,
                                              retryAttempts: 0 }});
      const done = (f) => (x) => {{ f(x); client.dispose(); }};
      const stop = client.subscribe(payload, {{ next: (v) => sink.next(v),
        error: done((e) => sink.error(e instanceof CloseEvent
          ? new Error(`connection closed: ${{e.code}} ${{e.reason}}`) : e)),
        complete: done(() => sink.complete()) }});
      return () => {{ stop(); client.dispose(); }};
    }},
  }};
  // The router exposes query plans (query_plan.expose): ask for them, show them in a panel.
  const planEnabled = {plan};
  // Each HTTP answer's extensions (not the schema's introspection) go to the plan panel.
  const planFetch = (url, init) => window.fetch(url, init).then((response) => {{
    if (!String((init && init.body) || '').includes('IntrospectionQuery')) {{
      response.clone().json().then((body) => body && body.extensions && shopgraphPlan.show(body.extensions),
                                   () => {{}});
    }}
    return response;
  }});
  const base = GraphiQL.createFetcher({{ url: location.pathname, subscriptionUrl, wsClient,
    ...(planEnabled ? {{ headers: {{ 'Apollo-Expose-Query-Plan': 'true' }}, fetch: planFetch }} : {{}}) }});
  const fetcher = (params, opts) => {{
    wsHeaders = (opts && opts.headers) || {{}};
    return base(params, opts);
  }};
  const plugins = planEnabled ? [shopgraphPlan.plugin] : [];
  ReactDOM.createRoot(document.getElementById('graphiql'))
    .render(React.createElement(GraphiQL, {{ fetcher, shouldPersistHeaders: true, plugins }}));
</script>
</body>
</html>
"""
