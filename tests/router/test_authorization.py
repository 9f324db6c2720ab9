"""The authorization directives at the router (issue 19, part 3) over fixture subgraphs
(fixtures/authz.py), with subgraph calls counted where they arrive.

Apollo Gateway (open source) does not enforce @authenticated / @requiresScopes / @policy: it
refuses to load a supergraph linking them ("feature https://specs.apollo.dev/authenticated/v0.1
is for: SECURITY but is unsupported"), so it serves the same supergraph with them taken out,
calling the subgraphs for everything. The differential here is: a caller allowed everything
gets exactly that gateway's answer; a refused field gets what Apollo Router
documents (null, an UNAUTHORIZED_FIELD_OR_TYPE error at the field's path, a non-null one
nulling its nearest nullable parent, no subgraph call for a fetch serving only refused fields;
or, with reject_unauthorized, no data at all), asserted below.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from router import metrics
from router.config import ConfigError, Settings
from router.http import create_app
from router.supergraph import Supergraph
from tests.router.fed2_harness import Fed2Stacks, compose_set, fed2_stacks
from tests.router.fixtures.authz import AUTHZ, CALLS
from tests.router.router_harness import Gateway, ThreadServer
from tests.router.test_auth import Keys
from tests.router.test_differential import _norm

HOOK = "tests.router.fixtures.authz:policies"
_MULTIPART = "multipart/mixed;deferSpec=20220824, application/json"

DENIED = "UNAUTHORIZED_FIELD_OR_TYPE"


@dataclass
class World:
    stacks: Fed2Stacks
    keys: Keys
    router: str  # null mode, sync hook
    gateway: str
    jwks: str
    supergraph: str

    def calls(self, subgraph: str) -> int:
        return sum(1 for p in self.stacks.log.paths if p.startswith(f"/authz/{subgraph}"))

    def router_with(self, **settings: Any) -> ThreadServer:
        s = Settings(jwks_urls=(self.jwks,), **settings)
        return ThreadServer(create_app(self.supergraph, s))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    keys = Keys()

    async def jwks(_: Request) -> JSONResponse:
        return JSONResponse(keys.jwks())

    tmp = tmp_path_factory.mktemp("authz")
    with (
        ThreadServer(Starlette(routes=[Route("/jwks", jwks)])) as js,
        fed2_stacks(tmp) as stacks,
    ):
        sdl = compose_set(AUTHZ, f"{stacks.base}/authz")
        settings = Settings(jwks_urls=(js.url + "/jwks",), policy_hook=HOOK)
        with ThreadServer(create_app(sdl, settings)) as router, Gateway(sdl, tmp) as gw:
            yield World(stacks, keys, router.url + "/graphql", gw.url, js.url + "/jwks", sdl)


def _token(keys: Keys, who: str) -> str | None:
    if who == "anonymous":
        return None
    if who == "admin":
        return keys.token(role="ADMIN", scope="read:email billing")
    if who == "scoped":  # a customer whose token carries the scopes
        return keys.token(scope="read:email billing")
    if who == "auditor":
        return keys.token(sub="auditor", uid="auditor")
    return keys.token()  # a customer


async def _post(
    client: httpx.AsyncClient, url: str, query: str, token: str | None, variables: dict[str, Any] | None = None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await client.post(url, json={"query": query, "variables": variables or {}}, headers=headers)


async def _ask(w: World, client: httpx.AsyncClient, query: str, who: str, **kw: Any) -> tuple[Any, dict[str, int]]:
    """The router's answer and the calls each subgraph got for it."""
    before = {g: w.calls(g) for g in ("accounts", "billing")}
    r = await _post(client, kw.pop("url", w.router), query, _token(w.keys, who), kw.pop("variables", None))
    assert r.status_code == kw.pop("status", 200), r.text
    return r.json(), {g: w.calls(g) - n for g, n in before.items()}


def _denied(body: dict[str, Any]) -> list[list[str | int]]:
    errs = body.get("errors") or []
    assert all(e["extensions"]["code"] == DENIED and e["message"] == "Unauthorized field or type" for e in errs), errs
    return sorted((e["path"] for e in errs), key=str)


# Every operation of the tests: an admin holding every scope and policy gets the gateway's answer.
OPERATIONS = [
    "{ me { name } }",
    "{ users { id name balance } }",
    "{ users { name email card { last4 } } }",
    "{ stats { revenue } motd }",
    "{ audit motd }",
    "{ motd secret }",
    "{ users { ... on User { email } name } }",
    "fragment F on User { email balance } { me { ...F } users { id ...F } }",
    "{ users { email } }",
]


@pytest.mark.parametrize("query", OPERATIONS)
async def test_allowed_caller_gets_the_gateways_answer(client: httpx.AsyncClient, world: World, query: str) -> None:
    ours, _ = await _ask(world, client, query, "admin")
    theirs = (await _post(client, world.gateway, query, None)).json()
    assert "errors" not in ours, ours
    assert _norm(ours) == _norm(theirs)


async def test_anonymous_authenticated_root_field_is_null_and_nothing_is_called(
    client: httpx.AsyncClient, world: World
) -> None:
    body, calls = await _ask(world, client, "{ me { name } }", "anonymous")
    assert body["data"] == {"me": None}
    assert _denied(body) == [["me"]]
    assert calls == {"accounts": 0, "billing": 0}


async def test_non_null_refused_field_nulls_its_nearest_nullable_parent(
    client: httpx.AsyncClient, world: World
) -> None:
    # User.balance (billing) is Int! @authenticated: each user is null (the list's items are nullable)
    body, calls = await _ask(world, client, "{ users { id name balance } }", "anonymous")
    assert body["data"] == {"users": [None, None]}
    assert _denied(body) == [["users", 0, "balance"], ["users", 1, "balance"]]
    assert calls == {"accounts": 1, "billing": 0}  # billing only served balance: not called
    # a non-null root field nulls data itself
    body, calls = await _ask(world, client, "{ motd secret }", "anonymous")
    assert body["data"] is None and _denied(body) == [["secret"]]
    assert calls == {"accounts": 1, "billing": 0}


async def test_scopes_and_typed_requirements(client: httpx.AsyncClient, world: World) -> None:
    q = "{ users { name email card { last4 } } }"
    body, calls = await _ask(world, client, q, "customer")
    # email needs read:email (or role:admin); card returns Card, a type needing the billing scope
    assert body["data"] == {
        "users": [{"name": "Ann", "email": None, "card": None}, {"name": "Bob", "email": None, "card": None}]
    }
    assert _denied(body) == [["users", i, f] for i in (0, 1) for f in ("card", "email")]
    assert calls == {"accounts": 1, "billing": 0}
    body, calls = await _ask(world, client, q, "scoped")  # the token's scope claim grants both
    assert "errors" not in body and body["data"]["users"][0] == {
        "name": "Ann",
        "email": "ann@example.com",
        "card": {"last4": "4242"},
    }
    assert calls == {"accounts": 1, "billing": 1}


async def test_role_scope_and_the_rest_of_the_operation(client: httpx.AsyncClient, world: World) -> None:
    body, _ = await _ask(world, client, "{ stats { revenue } motd }", "customer")
    assert body["data"] == {"stats": None, "motd": "hello"} and _denied(body) == [["stats"]]
    body, _ = await _ask(world, client, "{ stats { revenue } motd }", "admin")  # role:admin
    assert body == {"data": {"stats": {"revenue": 1200}, "motd": "hello"}}


async def test_a_field_left_with_nothing_to_select_is_refused_itself(client: httpx.AsyncClient, world: World) -> None:
    # every field `users` selects is refused: users itself is (its [User]! nulls data)
    body, calls = await _ask(world, client, "{ users { email } motd }", "customer")
    assert body["data"] is None and _denied(body) == [["users"]]
    assert calls == {"accounts": 1, "billing": 0}


async def test_fragments_conditions_and_aliases(client: httpx.AsyncClient, world: World) -> None:
    q = "fragment F on User { email balance } { me { ...F } users { id ...F } }"
    body, _ = await _ask(world, client, q, "customer")  # authenticated (balance) but no read:email
    assert body["data"] == {
        "me": {"email": None, "balance": 10},
        "users": [{"id": "u1", "email": None, "balance": 10}, {"id": "u2", "email": None, "balance": 0}],
    }
    assert _denied(body) == [["me", "email"], ["users", 0, "email"], ["users", 1, "email"]]
    # a refused field under @include(if: false) is not in the response: no error either
    q = "query($b: Boolean!) { users { name mail: email @include(if: $b) } }"
    body, _ = await _ask(world, client, q, "customer", variables={"b": False})
    assert body == {"data": {"users": [{"name": "Ann"}, {"name": "Bob"}]}}
    body, _ = await _ask(world, client, q, "customer", variables={"b": True})
    assert body["data"]["users"][1] == {"name": "Bob", "mail": None}
    assert _denied(body) == [["users", 0, "mail"], ["users", 1, "mail"]]


def _payloads(r: httpx.Response) -> list[dict[str, Any]]:
    """The JSON payloads of an answer: one, or each part of a multipart one."""
    if r.headers["content-type"].startswith("application/json"):
        return [r.json()]
    return [json.loads(chunk.split(b"\r\n\r\n", 1)[1]) for chunk in r.content.split(b"\r\n---")[1:-1]]


async def test_a_deferred_fragment_with_refused_fields_comes_at_once(client: httpx.AsyncClient, world: World) -> None:
    """@defer is a hint: a fragment with refused fields is not deferred, so their nulls and errors
    come in the first payload (a deferred part is planned from what is left, without them)."""
    q = "{ users { name ... @defer { email id } } }"
    headers = {"authorization": f"Bearer {_token(world.keys, 'customer')}", "accept": _MULTIPART}
    (only,) = _payloads(await client.post(world.router, json={"query": q}, headers=headers))
    assert only["data"]["users"][0] == {"name": "Ann", "email": None, "id": "u1"}, only
    assert _denied(only) == [["users", 0, "email"], ["users", 1, "email"]]
    headers["authorization"] = f"Bearer {_token(world.keys, 'admin')}"  # allowed: deferred as asked
    first, rest = _payloads(await client.post(world.router, json={"query": q}, headers=headers))
    assert first["data"]["users"][0] == {"name": "Ann"} and rest["incremental"][0]["data"]["email"]


async def test_policy_hook_decides(client: httpx.AsyncClient, world: World) -> None:
    for who, granted in (("auditor", True), ("admin", True), ("customer", False), ("anonymous", False)):
        body, _ = await _ask(world, client, "{ audit motd }", who)
        if granted:
            assert body == {"data": {"audit": ["login u1", "ban u2"], "motd": "hello"}}, who
        else:
            assert body["data"] == {"audit": None, "motd": "hello"} and _denied(body) == [["audit"]], who


async def test_refused_mutation_is_never_run(client: httpx.AsyncClient, world: World) -> None:
    before = CALLS["Mutation.ban"]
    body, calls = await _ask(world, client, 'mutation { ban(id: "u2") }', "customer")
    assert body["data"] == {"ban": None} and _denied(body) == [["ban"]]
    assert calls == {"accounts": 0, "billing": 0} and CALLS["Mutation.ban"] == before
    body, _ = await _ask(world, client, 'mutation { ban(id: "u2") }', "admin")
    assert body == {"data": {"ban": True}} and CALLS["Mutation.ban"] == before + 1


async def test_refusals_are_counted_by_directive(client: httpx.AsyncClient, world: World) -> None:
    def count(directive: str) -> float:
        return float(metrics.AUTHZ_REFUSALS.labels(directive, "null")._value.get())

    before = {d: count(d) for d in ("authenticated", "requiresScopes", "policy", "selection")}
    await _ask(world, client, "{ me { name } audit stats { revenue } users { email } }", "anonymous")
    assert {d: count(d) - n for d, n in before.items()} == {
        "authenticated": 1,
        "requiresScopes": 1,  # stats (users { email } counts as its selection)
        "policy": 1,
        "selection": 1,
    }


async def test_reject_mode_refuses_the_whole_request(client: httpx.AsyncClient, world: World) -> None:
    with world.router_with(reject_unauthorized=True, policy_hook=HOOK) as r:
        url = r.url + "/graphql"
        body, calls = await _ask(world, client, "{ stats { revenue } motd }", "customer", url=url, status=403)
        assert "data" not in body and _denied(body) == [["stats"]]
        assert calls == {"accounts": 0, "billing": 0}
        body, _ = await _ask(world, client, "{ stats { revenue } motd }", "admin", url=url)
        assert body == {"data": {"stats": {"revenue": 1200}, "motd": "hello"}}


async def test_async_hook_and_a_broken_hook_fails_closed(client: httpx.AsyncClient, world: World) -> None:
    with world.router_with(policy_hook="tests.router.fixtures.authz:policies_async") as r:
        body, _ = await _ask(world, client, "{ audit }", "auditor", url=r.url + "/graphql")
        assert body == {"data": {"audit": ["login u1", "ban u2"]}}
    with world.router_with(policy_hook="tests.router.fixtures.authz:policies_broken") as r:
        body, calls = await _ask(world, client, "{ audit motd }", "admin", url=r.url + "/graphql")
        assert body["data"] == {"audit": None, "motd": "hello"} and _denied(body) == [["audit"]]
        assert calls == {"accounts": 1, "billing": 0}
    with world.router_with() as r:  # no hook configured: no policy holds
        body, _ = await _ask(world, client, "{ audit }", "admin", url=r.url + "/graphql")
        assert body["data"] == {"audit": None}
    with world.router_with(authorization_directives=False) as r:  # switched off: the gateway's behaviour
        body, _ = await _ask(world, client, "{ audit secret }", "anonymous", url=r.url + "/graphql")
        assert body == {"data": {"audit": ["login u1", "ban u2"], "secret": "s3cret"}}


@pytest.mark.parametrize(
    ("hook", "says"),
    [
        ("nowhere.at.all:f", "cannot import"),
        ("tests.router.fixtures.authz", "expected 'module:function'"),
        ("tests.router.fixtures.authz:NOT_CALLABLE", "not a callable"),
        ("tests.router.fixtures.authz:missing", "not a callable"),
        ("tests.router.fixtures.authz:policies_wrong_shape", "must take (identity, policies)"),
    ],
)
def test_a_bad_policy_hook_stops_the_start(world: World, hook: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_app(world.supergraph, Settings(jwks_urls=(world.jwks,), policy_hook=hook))
    assert says in str(info.value)


async def test_callers_at_once_each_get_their_own_answer(client: httpx.AsyncClient, world: World) -> None:
    """Pruned plans are shared per combination of failed requirements: concurrent callers with
    different rights never see each other's."""
    q = "{ users { name email balance card { last4 } } stats { orders } }"
    who = ["admin", "customer", "scoped", "anonymous"] * 8
    answers = await asyncio.gather(*(_post(client, world.router, q, _token(world.keys, w)) for w in who))
    want = {}
    for w in ("admin", "customer", "scoped", "anonymous"):
        want[w] = (await _post(client, world.router, q, _token(world.keys, w))).json()
    assert len({str(v) for v in want.values()}) == 4  # four different answers
    for w, r in zip(who, answers, strict=True):
        assert r.json() == want[w], w


def test_the_supergraph_keeps_the_directives_and_the_api_schema_hides_them(world: World) -> None:
    sdl = world.supergraph
    assert '@link(url: "https://specs.apollo.dev/requiresScopes/v0.1", for: SECURITY)' in sdl
    email = 'email: String @join__field(graph: ACCOUNTS) @requiresScopes(scopes: [["read:email"], ["role:admin"]])'
    assert email in sdl
    api = Supergraph(sdl).api_schema
    assert {"authenticated", "requiresScopes", "policy"}.isdisjoint(d.name for d in api.directives)
    assert "requiresScopes__Scope" not in api.type_map and "policy__Policy" not in api.type_map
