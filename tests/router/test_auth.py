"""Client JWT verification against a JWKS and identity forwarding to subgraphs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from router.auth import AuthError, Identity, InternalTokens, JWKSVerifier
from router.config import ConfigError, Settings
from router.http import create_app
from tests.router.fixtures.shop import SERVICE_SECRET
from tests.router.router_harness import ThreadServer, compose


class Keys:
    def __init__(self) -> None:
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.fetches = 0
        self.add("k1")

    def add(self, kid: str) -> None:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, k in self.keys.items():
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(k.public_key()))
            jwk.update({"kid": kid, "alg": "ES256", "use": "sig"})
            out.append(jwk)
        return {"keys": out}

    def token(self, kid: str = "k1", **over: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": "shopgraph-users",
            "aud": "shopgraph",
            "sub": "u2",
            "uid": "u2",
            "role": "CUSTOMER",
            "iat": now,
            "exp": now + 300,
        }
        claims.update(over)
        return jwt.encode(claims, self.keys[kid], algorithm="ES256", headers={"kid": kid})


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def auth_router(keys: Keys, subgraphs: ThreadServer) -> Iterator[str]:
    async def jwks(_: Request) -> JSONResponse:
        keys.fetches += 1
        return JSONResponse(keys.jwks())

    with ThreadServer(Starlette(routes=[Route("/jwks", jwks)])) as js:
        settings = Settings(jwks_urls=(js.url + "/jwks",), service_secret=SERVICE_SECRET, jwks_min_refetch=0.5)
        with ThreadServer(create_app(compose("shop", subgraphs.url), settings)) as r:
            yield r.url + "/graphql"


async def _whoami(client: httpx.AsyncClient, url: str, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await client.post(url, json={"query": "{ whoami }"}, headers=headers)


async def test_anonymous_gets_internal_token_without_identity(client: httpx.AsyncClient, auth_router: str) -> None:
    r = await _whoami(client, auth_router, None)
    assert r.json() == {"data": {"whoami": "service:router|-|-"}}


async def test_valid_token_forwards_identity(client: httpx.AsyncClient, auth_router: str, keys: Keys) -> None:
    r = await _whoami(client, auth_router, keys.token(role="ADMIN"))
    assert r.json() == {"data": {"whoami": "service:router|u2|ADMIN"}}


def _none_token() -> str:
    import base64

    def b64(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64({'sub': 'u1', 'uid': 'u1'})}."


@pytest.mark.parametrize(
    "kind", ["expired", "none", "tampered", "garbage", "wrong_aud", "hs256", "internal", "refresh"]
)
async def test_bad_tokens_are_401(client: httpx.AsyncClient, auth_router: str, keys: Keys, kind: str) -> None:
    if kind == "expired":
        token = keys.token(exp=int(time.time()) - 10)
    elif kind == "none":
        token = _none_token()
    elif kind == "tampered":
        h, p, s = keys.token().split(".")
        token = f"{h}.{p[:-4]}AAAA.{s}"
    elif kind == "garbage":
        token = "not-a-jwt"
    elif kind == "refresh":
        token = keys.token(typ="refresh")
    elif kind == "wrong_aud":
        token = keys.token(aud="other")
    elif kind == "hs256":
        token = jwt.encode({"sub": "u1"}, "s" * 32, algorithm="HS256", headers={"kid": "k1"})
    else:  # a client forging the internal token
        token = jwt.encode(
            {
                "iss": "shopgraph-internal",
                "aud": "shopgraph-subgraphs",
                "sub": "service:router",
                "uid": "u1",
                "role": "ADMIN",
                "exp": int(time.time()) + 60,
            },
            SERVICE_SECRET,
            algorithm="HS256",
        )
    r = await _whoami(client, auth_router, token)
    assert r.status_code == 401, r.text
    err = r.json()["errors"][0]
    assert err["extensions"]["code"] == "UNAUTHENTICATED"
    assert err["message"]


async def test_unknown_kid_refetches_jwks(client: httpx.AsyncClient, auth_router: str, keys: Keys) -> None:
    await _whoami(client, auth_router, keys.token())
    await asyncio.sleep(0.6)
    before = keys.fetches
    keys.add("k2")
    r = await _whoami(client, auth_router, keys.token(kid="k2", uid="u3"))
    assert r.json() == {"data": {"whoami": "service:router|u3|CUSTOMER"}}
    assert keys.fetches == before + 1
    # unknown kids right after a fetch do not hammer the JWKS endpoint
    keys.add("k3")
    keys.add("k4")
    for kid in ("k3", "k4"):
        r = await _whoami(client, auth_router, keys.token(kid=kid))
        assert r.status_code == 401
    assert keys.fetches == before + 1


def test_a_router_without_a_key_source_refuses_to_start(subgraphs: ThreadServer) -> None:
    with pytest.raises(ConfigError, match="SHOPGRAPH_JWKS_URL"):
        create_app(compose("shop", subgraphs.url), Settings())


async def test_without_authentication_every_token_is_refused(
    client: httpx.AsyncClient, subgraphs: ThreadServer
) -> None:
    with ThreadServer(create_app(compose("shop", subgraphs.url), Settings(anonymous_only=True))) as r:
        for token in ("forged", "eyJhbGciOiJub25lIn0.e30."):
            resp = await client.post(
                r.url + "/graphql", json={"query": "{ whoami }"}, headers={"authorization": f"Bearer {token}"}
            )
            assert resp.status_code == 401
            assert resp.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        resp = await client.post(r.url + "/graphql", json={"query": "{ whoami }"})
        assert resp.json() == {"data": {"whoami": "no-token"}}  # no service secret: nothing forwarded


def _claims(header: str) -> dict[str, Any]:
    token = header.removeprefix("Bearer ")
    claims: dict[str, Any] = jwt.decode(
        token, SERVICE_SECRET, algorithms=["HS256"], audience="shopgraph-subgraph:accounts"
    )
    return claims


def test_the_forwarded_identity_expires_with_the_clients_token() -> None:
    tokens = InternalTokens(SERVICE_SECRET, ttl=60)
    client_expiry = time.time() + 3
    assert _claims(tokens.header(Identity("u2", "CUSTOMER", client_expiry), "ACCOUNTS"))["exp"] <= client_expiry
    assert _claims(tokens.header(None, "ACCOUNTS"))["exp"] > time.time() + 30
    # Scoped to the subgraph it is sent to: no other accepts it.
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(
            tokens.header(None, "PRODUCTS").removeprefix("Bearer "),
            SERVICE_SECRET,
            algorithms=["HS256"],
            audience="shopgraph-subgraph:accounts",
        )


async def test_an_unreachable_jwks_fails_fast_instead_of_queueing_every_request(keys: Keys) -> None:
    fetches = 0

    async def down(_: Request) -> JSONResponse:
        nonlocal fetches
        fetches += 1
        return JSONResponse({"error": "down"}, status_code=503)

    with ThreadServer(Starlette(routes=[Route("/jwks", down)])) as js:
        async with httpx.AsyncClient() as http:
            verifier = JWKSVerifier([js.url + "/jwks"], http, min_refetch=30)
            for _ in range(5):
                with pytest.raises(AuthError, match="JWKS unavailable"):
                    await verifier.verify(keys.token())
    assert fetches == 1  # one attempt; the next four were refused at once


async def test_rs256_and_eddsa_from_several_jwks_with_configured_issuer_and_audience() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()

    def jwk(public: Any, algorithm: Any, kid: str, alg: str) -> dict[str, Any]:
        return {**json.loads(algorithm.to_jwk(public)), "kid": kid, "alg": alg, "use": "sig"}

    rsa_jwks = {"keys": [jwk(rsa_key.public_key(), jwt.algorithms.RSAAlgorithm, "r1", "RS256")]}
    ed_jwks = {"keys": [jwk(ed_key.public_key(), jwt.algorithms.OKPAlgorithm, "e1", "EdDSA")]}

    async def serve_rsa(_: Request) -> JSONResponse:
        return JSONResponse(rsa_jwks)

    async def serve_ed(_: Request) -> JSONResponse:
        return JSONResponse(ed_jwks)

    def token(key: Any, kid: str, alg: str, **over: Any) -> str:
        claims = {"iss": "https://idp.example", "aud": "shop-api", "sub": "u7", "exp": int(time.time()) + 300}
        return jwt.encode({**claims, **over}, key, algorithm=alg, headers={"kid": kid})

    app = Starlette(routes=[Route("/rsa", serve_rsa), Route("/ed", serve_ed)])
    with ThreadServer(app) as js:
        async with httpx.AsyncClient() as http:
            verifier = JWKSVerifier(
                [js.url + "/rsa", js.url + "/ed"],
                http,
                issuer="https://idp.example",
                audience="shop-api",
                algorithms=["RS256", "EdDSA"],
            )
            assert (await verifier.verify(token(rsa_key, "r1", "RS256"))).uid == "u7"
            assert (await verifier.verify(token(ed_key, "e1", "EdDSA"))).uid == "u7"
            for bad in (
                token(rsa_key, "r1", "RS256", iss="shopgraph-users"),
                token(ed_key, "e1", "EdDSA", aud="shopgraph"),
                token(rsa_key, "e1", "RS256"),  # an RSA signature under the Ed25519 key's id
            ):
                with pytest.raises(AuthError):
                    await verifier.verify(bad)
            es = ec.generate_private_key(ec.SECP256R1())
            with pytest.raises(AuthError, match="not accepted"):
                await verifier.verify(jwt.encode({"sub": "x"}, es, algorithm="ES256", headers={"kid": "r1"}))


async def test_a_retired_key_stops_verifying_once_the_keys_are_refreshed() -> None:
    keys = Keys()
    keys.add("k2")

    async def jwks(_: Request) -> JSONResponse:
        return JSONResponse(keys.jwks())

    with ThreadServer(Starlette(routes=[Route("/jwks", jwks)])) as js:
        async with httpx.AsyncClient() as http:
            verifier = JWKSVerifier([js.url + "/jwks"], http, min_refetch=0.1, refresh=0.3)
            old = keys.token(kid="k1")
            assert (await verifier.verify(old)).uid == "u2"
            del keys.keys["k1"]  # rotated out at the identity provider
            await asyncio.sleep(0.4)
            with pytest.raises(AuthError, match="unknown key"):
                await verifier.verify(old)
            assert (await verifier.verify(keys.token(kid="k2"))).uid == "u2"
