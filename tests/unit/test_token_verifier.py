"""Token verification (kit/auth.py): what is accepted, and every way a forged or stale token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from graphql import GraphQLError
from jwt.algorithms import ECAlgorithm

from subgraphs.kit.auth import (
    ACCESS_AUDIENCE,
    ACCESS_ISSUER,
    ANONYMOUS,
    INTERNAL_AUDIENCE,
    INTERNAL_ISSUER,
    Identity,
    InvalidToken,
    TokenVerifier,
    bearer_token,
    mint_internal_token,
)

SECRET = "unit-test-service-secret-0123456789abcdef"
KID = "key-1"
USER_ID = uuid.UUID("6f1d5c1e-2f57-4b47-9d0e-7e6a3b9f1c20")

_private = ec.generate_private_key(ec.SECP256R1())
_other_private = ec.generate_private_key(ec.SECP256R1())


def _jwk(private: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": "ES256", "use": "sig"})
    return jwk


PUBLISHED = {KID: _jwk(_private, KID)}


async def _lookup(kid: str) -> dict[str, Any] | None:
    return PUBLISHED.get(kid)


def verifier(secret: str = SECRET) -> TokenVerifier:
    return TokenVerifier(_lookup, secret, "orders")


def access_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ACCESS_ISSUER,
        "aud": ACCESS_AUDIENCE,
        "sub": str(USER_ID),
        "role": "CUSTOMER",
        "typ": "access",
        "iat": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def access_token(key: Any = _private, kid: str | None = KID, **changes: Any) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(access_claims(**changes), key, algorithm="ES256", headers=headers)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hs256(claims: dict[str, Any], secret: bytes, **header: Any) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", **header}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


async def refused(token: str, reason: str | None = None, secret: str = SECRET) -> None:
    with pytest.raises(InvalidToken, match=reason):
        await verifier(secret).verify(token)


# --- access tokens -------------------------------------------------------------------------


async def test_a_valid_access_token_gives_the_user_and_role() -> None:
    issued = time.time()
    for role in ("CUSTOMER", "ADMIN"):
        identity = await verifier().verify(access_token(role=role, iat=issued))
        # The issue time to the microsecond: tokens older than a revocation are refused (kit.revocation).
        assert identity == Identity(user_id=USER_ID, role=role, service=None, issued_at=issued)
    assert (await verifier().verify(access_token(role="ADMIN"))).is_admin


async def test_access_tokens_work_without_a_service_secret() -> None:
    assert (await verifier(secret="").verify(access_token())).user_id == USER_ID


async def test_an_expired_access_token_is_refused() -> None:
    past = int(time.time()) - 3600
    await refused(access_token(iat=past, exp=past + 900), "expired")


async def test_expiry_allows_only_a_few_seconds_of_clock_skew() -> None:
    now = int(time.time())
    assert (await verifier().verify(access_token(exp=now - 2))).user_id == USER_ID
    await refused(access_token(exp=now - 30), "expired")


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "sub"])
async def test_required_claims(missing: str) -> None:
    await refused(access_token(**{missing: None}), "invalid token")


async def test_a_tampered_payload_is_refused() -> None:
    head, body, signature = access_token().split(".")
    claims = json.loads(_unb64(body))
    claims["role"] = "ADMIN"
    await refused(".".join([head, _b64(json.dumps(claims).encode()), signature]), "invalid token")


async def test_a_tampered_signature_is_refused() -> None:
    head, body, signature = access_token().split(".")
    raw = bytearray(_unb64(signature))
    raw[-1] ^= 0x01
    await refused(".".join([head, body, _b64(bytes(raw))]), "invalid token")
    await refused(f"{head}.{body}.", "invalid token")


async def test_alg_none_is_refused() -> None:
    head = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": KID}).encode())
    body = _b64(json.dumps(access_claims(role="ADMIN")).encode())
    for token in (f"{head}.{body}.", f"{head}.{body}.c2lnbmF0dXJl"):
        await refused(token, "unsupported token algorithm 'none'")
    # Other spellings of "none" and other algorithms fare no better.
    for alg in ("None", "NONE", "RS256", "ES384", "HS512", "EdDSA"):
        head = _b64(json.dumps({"alg": alg, "kid": KID}).encode())
        await refused(f"{head}.{body}.c2ln", "unsupported token algorithm")


async def test_hs256_signed_with_the_public_key_is_refused() -> None:
    """Algorithm confusion: an HMAC 'signed' with the published public key (PEM or JWK text) is not accepted."""
    public_pem = _private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for key in (public_pem, json.dumps(PUBLISHED[KID]).encode()):
        token = _hs256(access_claims(role="ADMIN"), key, kid=KID)
        await refused(token, "invalid token")
        # Without a service secret, HS256 is not accepted at all.
        await refused(token, "unsupported token algorithm 'HS256'", secret="")


async def test_hs256_with_the_wrong_secret_is_refused() -> None:
    await refused(mint_internal_token("some-other-secret-of-a-decent-length!", "orders"), "invalid token")
    await refused(mint_internal_token(SECRET + "x", "router", user_id=USER_ID, role="ADMIN"), "invalid token")


async def test_an_access_token_signed_with_the_service_secret_is_not_an_access_token() -> None:
    # HS256 tokens are checked as internal tokens: the access issuer/audience do not pass there.
    await refused(_hs256(access_claims(role="ADMIN"), SECRET.encode()), "invalid token")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "someone-else"}, "invalid token"),
        ({"iss": INTERNAL_ISSUER}, "invalid token"),
        ({"aud": "another-app"}, "invalid token"),
        ({"aud": INTERNAL_AUDIENCE}, "invalid token"),
        ({"typ": "refresh"}, "not an access token"),
        ({"typ": None}, "not an access token"),
        ({"sub": "not-a-uuid"}, "bad subject"),
        ({"role": "SUPERUSER"}, "bad role"),
        ({"role": None}, "bad role"),
        ({"nbf": int(time.time()) + 3600}, "invalid token"),
    ],
    # Ids without the clock's value: xdist's workers must collect the same ids.
    ids=lambda v: (json.dumps(v) if "nbf" not in v else '{"nbf": "in an hour"}') if isinstance(v, dict) else v,
)
async def test_wrong_claims_are_refused(changes: dict[str, Any], reason: str) -> None:
    await refused(access_token(**changes), reason)


async def test_unknown_or_missing_kid_is_refused() -> None:
    await refused(access_token(kid="no-such-key"), "unknown signing key")
    await refused(access_token(kid=None), "unknown signing key")
    head = _b64(json.dumps({"alg": "ES256", "kid": 7}).encode())
    await refused(head + "." + access_token().split(".", 1)[1])  # a non-string kid


async def test_a_key_not_ours_under_our_kid_is_refused() -> None:
    await refused(access_token(key=_other_private), "invalid token")


async def test_a_key_embedded_in_the_header_is_ignored() -> None:
    attacker_jwk = _jwk(_other_private, KID)
    token = jwt.encode(
        access_claims(role="ADMIN"), _other_private, algorithm="ES256", headers={"kid": KID, "jwk": attacker_jwk}
    )
    await refused(token, "invalid token")


@pytest.mark.parametrize("token", ["", "garbage", "a.b", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9"])
async def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        await verifier().verify(token)


async def test_refusals_never_echo_the_token() -> None:
    token = access_token(aud="another-app")
    with pytest.raises(InvalidToken) as caught:
        await verifier().verify(token)
    assert token not in str(caught.value)
    assert token.split(".")[1] not in str(caught.value)


# --- internal tokens -------------------------------------------------------------------


async def test_internal_token_of_a_service() -> None:
    identity = await verifier().verify(mint_internal_token(SECRET, "orders"))
    assert identity == Identity(user_id=None, role=None, service="orders")
    token = mint_internal_token(SECRET, "orders")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="shopgraph-subgraph:orders")
    assert claims["iss"] == INTERNAL_ISSUER and claims["sub"] == "service:orders"
    assert 0 < claims["exp"] - claims["iat"] <= 300


async def test_an_internal_token_for_another_subgraph_is_refused() -> None:
    """Issue 18, finding 10: a token sent to catalog cannot be replayed to orders."""
    with pytest.raises(InvalidToken, match="invalid token"):
        await verifier().verify(mint_internal_token(SECRET, "router", audience="catalog"))
    for legacy in (INTERNAL_AUDIENCE, ["shopgraph-subgraph:catalog", "shopgraph-subgraph:users"]):
        with pytest.raises(InvalidToken, match="invalid token"):
            await verifier().verify(jwt.encode(_internal_claims(aud=legacy), SECRET, algorithm="HS256"))


async def test_internal_token_acting_for_a_user() -> None:
    token = mint_internal_token(SECRET, "router", user_id=USER_ID, role="ADMIN")
    assert await verifier().verify(token) == Identity(user_id=USER_ID, role="ADMIN", service="router")


async def test_an_expired_internal_token_is_refused() -> None:
    await refused(mint_internal_token(SECRET, "orders", ttl=-60), "expired")


async def test_a_verified_internal_token_is_remembered_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """The router reuses its token for seconds: decoded once, then looked up, but never past its expiry."""
    v = verifier()
    token = mint_internal_token(SECRET, "router", user_id=USER_ID, role="ADMIN", ttl=60)
    decoded: list[str] = []
    read_header = jwt.get_unverified_header

    def counted(t: str) -> dict[str, Any]:
        decoded.append(t)
        return read_header(t)

    monkeypatch.setattr(jwt, "get_unverified_header", counted)
    first = await v.verify(token)
    assert await v.verify(token) == first == Identity(user_id=USER_ID, role="ADMIN", service="router")
    assert decoded == [token]
    exp = jwt.decode(token, SECRET, algorithms=["HS256"], audience="shopgraph-subgraph:orders")["exp"]
    monkeypatch.setattr(time, "time", lambda: exp + 6)  # past the few seconds of allowed skew
    await v.verify(token)  # (PyJWT's own clock is not moved: it still accepts the token)
    assert decoded == [token, token]  # decoded again, not taken from memory


async def test_a_refused_token_is_not_remembered() -> None:
    v = verifier()
    token = jwt.encode(_internal_claims(sub="orders"), SECRET, algorithm="HS256")
    for _ in range(2):
        with pytest.raises(InvalidToken, match="bad internal token subject"):
            await v.verify(token)


def _internal_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": INTERNAL_ISSUER,
        "aud": "shopgraph-subgraph:orders",
        "sub": "service:orders",
        "iat": now,
        "exp": now + 60,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sub": "orders"}, "bad internal token subject"),
        ({"sub": "user:123"}, "bad internal token subject"),
        ({"iss": ACCESS_ISSUER}, "invalid token"),
        ({"aud": ACCESS_AUDIENCE}, "invalid token"),
        ({"exp": None}, "invalid token"),
        ({"uid": "not-a-uuid", "role": "CUSTOMER"}, "bad subject"),
        ({"uid": str(USER_ID)}, "bad role"),
        ({"uid": str(USER_ID), "role": "ROOT"}, "bad role"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else v,
)
async def test_bad_internal_tokens_are_refused(changes: dict[str, Any], reason: str) -> None:
    await refused(jwt.encode(_internal_claims(**changes), SECRET, algorithm="HS256"), reason)


async def test_an_internal_token_with_a_non_string_subject_is_refused() -> None:
    with pytest.raises(InvalidToken):
        await verifier().verify(jwt.encode(_internal_claims(sub=42), SECRET, algorithm="HS256"))


async def test_an_es256_token_with_internal_claims_is_not_a_service() -> None:
    """A service identity only comes from the shared secret, never from a users-signed token."""
    now = int(time.time())
    claims = _internal_claims(iat=now, exp=now + 60)
    await refused(jwt.encode(claims, _private, algorithm="ES256", headers={"kid": KID}), "invalid token")


# --- the Authorization header and the identity ------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [(None, None), ("", None), ("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer  xyz ", "xyz"), ("BEARER t", "t")],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc", "abc.def.ghi"])
def test_malformed_authorization_headers(header: str) -> None:
    with pytest.raises(InvalidToken):
        bearer_token(header)


def _code(call: Callable[[], object]) -> Any:
    with pytest.raises(GraphQLError) as caught:
        call()
    return (caught.value.extensions or {}).get("code")


def test_identity_checks() -> None:
    customer = Identity(user_id=USER_ID, role="CUSTOMER")
    admin = Identity(user_id=uuid.uuid4(), role="ADMIN")
    orders = Identity(service="orders")
    router_for_admin = Identity(user_id=admin.user_id, role="ADMIN", service="router")

    assert _code(ANONYMOUS.require_user) == "UNAUTHENTICATED"
    assert _code(ANONYMOUS.require_admin) == "UNAUTHENTICATED"
    assert _code(orders.require_user) == "UNAUTHENTICATED"
    assert customer.require_user() == USER_ID
    assert _code(customer.require_admin) == "FORBIDDEN"
    assert admin.require_admin() == admin.user_id and router_for_admin.require_admin() == admin.user_id
    assert not Identity(role="ADMIN").is_admin  # a role without a user is nobody

    assert orders.require_service("orders") == "orders"
    for caller in (ANONYMOUS, customer, admin, router_for_admin, Identity(service="cart")):
        assert _code(lambda caller=caller: caller.require_service("orders")) == "FORBIDDEN"  # type: ignore[misc]

    other = uuid.uuid4()
    assert customer.can_see_user(USER_ID) and not customer.can_see_user(other)
    assert admin.can_see_user(other) and orders.can_see_user(other)
    assert not ANONYMOUS.can_see_user(USER_ID)
    assert not Identity(service="router").can_see_user(USER_ID)  # the router alone is anonymous
