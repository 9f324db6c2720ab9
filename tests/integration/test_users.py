"""The users subgraph end to end: accounts, sign-in, sessions, tokens, profile, addresses, roles.

Every test registers its own accounts (unique emails), so tests are independent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from deploy.stack import ThreadedStack
from subgraphs.kit.auth import ACCESS_AUDIENCE, ACCESS_ISSUER, JwksClient, TokenVerifier, mint_internal_token
from subgraphs.kit.context import CLIENT_ADDRESS_HEADER
from tests.integration.helpers import (
    LOGIN,
    LOGOUT,
    ME,
    REFRESH,
    REGISTER,
    STRONG_PASSWORD,
    Account,
    admin_token,
    data,
    error_codes,
    internal_token,
    login,
    login_payload,
    register,
    signing_key,
    unique_email,
    user_error_codes,
)
from tests.support.graphql import gql


@pytest.fixture
async def admin(stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]) -> str:
    return await admin_token(stack, demo_accounts)


async def me(stack: ThreadedStack, token: str | None, client: httpx.AsyncClient) -> dict[str, Any] | None:
    result: dict[str, Any] | None = data(await gql(stack.url("users"), ME, token=token, client=client))["me"]
    return result


# --- registration ---------------------------------------------------------------------


async def test_register_creates_a_signed_in_customer(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    email = unique_email("New.Shopper")
    result = await gql(
        stack.url("users"),
        REGISTER,
        {"input": {"email": f"  {email} ", "password": STRONG_PASSWORD, "name": "  Nia Newcomer "}},
        client=client,
    )
    payload = data(result)["register"]
    assert payload["userErrors"] == []
    assert payload["user"]["email"] == email  # trimmed, case kept as typed
    assert payload["user"]["name"] == "Nia Newcomer"
    assert payload["user"]["role"] == "CUSTOMER"
    assert payload["expiresIn"] == stack.settings.access_token_ttl_seconds
    claims = jwt.decode(payload["accessToken"], options={"verify_signature": False})
    assert claims["sub"] == payload["user"]["id"] and claims["role"] == "CUSTOMER"
    assert claims["exp"] - int(claims["iat"]) == stack.settings.access_token_ttl_seconds
    assert jwt.get_unverified_header(payload["accessToken"])["alg"] == "ES256"
    assert await me(stack, payload["accessToken"], client) == payload["user"]


async def test_emails_are_unique_whatever_their_case(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    first = await register(stack, email=unique_email("Case"), client=client)
    for variant in (first.email.lower(), f" {first.email.swapcase()} "):
        result = await gql(
            stack.url("users"),
            REGISTER,
            {"input": {"email": variant, "password": "another-good-password", "name": "Copycat"}},
            client=client,
        )
        payload = data(result)["register"]
        assert user_error_codes(payload) == ["EMAIL_TAKEN"]
        assert payload["userErrors"][0]["field"] == ["input", "email"]
        assert payload["user"] is None and payload["accessToken"] is None and payload["refreshToken"] is None
    # The original account is untouched: its password still works.
    assert (await login(stack, first.email.upper(), first.password, client=client)).id == first.id


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short1!", "WEAK_PASSWORD"),  # under 8 characters
        ("", "WEAK_PASSWORD"),
        ("aaaaaaaaaaaa", "WEAK_PASSWORD"),  # too few distinct characters
        ("abababab", "WEAK_PASSWORD"),
        (None, "WEAK_PASSWORD"),  # the email itself
        ("x" * 60 + "yz" * 40, "TOO_LONG"),  # 140 characters
    ],
    ids=["short", "empty", "one-char", "two-chars", "equals-email", "too-long"],
)
async def test_weak_passwords_are_refused(
    stack: ThreadedStack, client: httpx.AsyncClient, password: str | None, code: str
) -> None:
    email = unique_email("weak")
    result = await gql(
        stack.url("users"),
        REGISTER,
        {"input": {"email": email, "password": password if password is not None else email.upper(), "name": "W"}},
        client=client,
    )
    payload = data(result)["register"]
    assert user_error_codes(payload) == [code]
    assert payload["userErrors"][0]["field"] == ["input", "password"]
    assert payload["user"] is None and payload["accessToken"] is None


async def test_a_refused_registration_creates_nothing(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    email = unique_email("retry")
    variables = {"input": {"email": email, "password": "weak", "name": "Retry"}}
    refused = data(await gql(stack.url("users"), REGISTER, variables, client=client))["register"]
    assert user_error_codes(refused) == ["WEAK_PASSWORD"]
    assert (await register(stack, email=email, client=client)).email == email


@pytest.mark.parametrize(
    ("email", "code"),
    [
        ("not-an-email", "INVALID"),
        ("no-domain@", "INVALID"),
        ("two@@example.com", "INVALID"),
        ("no-tld@example", "INVALID"),
        ("spaces in@example.com", "INVALID"),
        ("x" * 250 + "@example.com", "INVALID"),
        ("   ", "REQUIRED"),
        ("", "REQUIRED"),
    ],
)
async def test_invalid_emails_are_refused(
    stack: ThreadedStack, client: httpx.AsyncClient, email: str, code: str
) -> None:
    result = await gql(
        stack.url("users"),
        REGISTER,
        {"input": {"email": email, "password": STRONG_PASSWORD, "name": "Bad Email"}},
        client=client,
    )
    payload = data(result)["register"]
    assert payload["userErrors"] == [
        {"code": code, "field": ["input", "email"], "message": payload["userErrors"][0]["message"]}
    ]
    assert payload["user"] is None


@pytest.mark.parametrize(("name", "code"), [("  ", "REQUIRED"), ("n" * 201, "TOO_LONG")])
async def test_register_checks_the_name(stack: ThreadedStack, client: httpx.AsyncClient, name: str, code: str) -> None:
    result = await gql(
        stack.url("users"),
        REGISTER,
        {"input": {"email": unique_email(), "password": STRONG_PASSWORD, "name": name}},
        client=client,
    )
    payload = data(result)["register"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, ["input", "name"])]


async def test_register_without_a_required_argument_is_a_graphql_error(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        stack.url("users"),
        json={"query": REGISTER, "variables": {"input": {"email": unique_email(), "name": "No Password"}}},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert ["password" in e["message"] for e in body["errors"]] == [True]
    assert "INTERNAL_SERVER_ERROR" not in error_codes(body)


NUL_INPUTS = {
    "register-name": (REGISTER, {"input": {"email": "nul@example.com", "password": STRONG_PASSWORD, "name": "a\x00b"}}),
    "login-email": (LOGIN, {"input": {"email": "n\x00ul@example.com", "password": STRONG_PASSWORD}}),
}


@pytest.mark.parametrize("case", sorted(NUL_INPUTS))
async def test_nul_characters_in_input_are_not_a_server_error(
    stack: ThreadedStack, client: httpx.AsyncClient, case: str
) -> None:
    query, variables = NUL_INPUTS[case]
    result = await gql(stack.url("users"), query, variables, client=client)
    assert error_codes(result) == ["BAD_USER_INPUT"], result


# --- sign-in and lock-out ----------------------------------------------------------------


async def test_login_with_any_case_and_surrounding_spaces(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    account = await register(stack, email=unique_email("Login"), client=client)
    session = await login(stack, f"  {account.email.upper()}  ", account.password, client=client)
    assert session.id == account.id
    assert session.access_token != account.access_token
    assert session.refresh_token != account.refresh_token
    assert (await me(stack, session.access_token, client) or {})["id"] == account.id


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    account = await register(stack, client=client)
    wrong = await login_payload(stack, account.email, account.password + "x", client=client)
    unknown = await login_payload(stack, unique_email("nobody"), account.password, client=client)
    for payload in (wrong, unknown):
        assert user_error_codes(payload) == ["INVALID_CREDENTIALS"]
        assert payload["user"] is None and payload["accessToken"] is None and payload["refreshToken"] is None
    assert wrong["userErrors"][0]["message"] == unknown["userErrors"][0]["message"]


async def test_repeated_failures_lock_the_account_even_for_the_right_password(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    account = await register(stack, client=client)
    bystander = await _shared_account(stack, client)
    limit = stack.settings.login_max_failures
    assert limit == 5
    # Failures count per account whatever the case of the email typed.
    for attempt in range(limit):
        email = account.email.upper() if attempt % 2 else account.email
        payload = await login_payload(stack, email, f"wrong-password-{attempt}", client=client)
        assert user_error_codes(payload) == ["INVALID_CREDENTIALS"], attempt
    for password in (account.password, "still-wrong-password"):
        locked = await login_payload(stack, account.email, password, client=client)
        assert user_error_codes(locked) == ["ACCOUNT_LOCKED"]
        assert locked["accessToken"] is None and locked["user"] is None
        assert "minute" in locked["userErrors"][0]["message"]
    # Another account is not affected, and the locked account's live session keeps working.
    assert (await login(stack, bystander.email, bystander.password, client=client)).id == bystander.id
    assert (await me(stack, account.access_token, client) or {})["id"] == account.id


async def test_concurrent_guesses_cannot_get_past_the_lock_out(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    account = await register(stack, client=client)
    limit = stack.settings.login_max_failures
    guesses = await asyncio.gather(
        *(login_payload(stack, account.email, f"guess-{n}-password", client=client) for n in range(limit + 3))
    )
    codes = sorted(user_error_codes(payload)[0] for payload in guesses)
    # At most `limit` passwords were actually tried; the rest were refused unchecked.
    assert codes == ["ACCOUNT_LOCKED"] * 3 + ["INVALID_CREDENTIALS"] * limit
    assert user_error_codes(await login_payload(stack, account.email, account.password, client=client)) == [
        "ACCOUNT_LOCKED"
    ]


async def _login_from(
    stack: ThreadedStack, client: httpx.AsyncClient, email: str, password: str, address: str
) -> dict[str, Any]:
    """Sign in as the router does for a client at ``address`` (internal token + its client header)."""
    token = mint_internal_token(stack.settings.service_secret, "router")
    response = await client.post(
        stack.url("users"),
        json={"query": LOGIN, "variables": {"input": {"email": email, "password": password}}},
        headers={"Authorization": f"Bearer {token}", CLIENT_ADDRESS_HEADER: address},
    )
    payload: dict[str, Any] = data(response.json())["login"]
    return payload


async def test_a_guesser_locks_out_only_itself(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    account = await register(stack, client=client)
    for attempt in range(stack.settings.login_max_failures):
        payload = await _login_from(stack, client, account.email, f"guess-{attempt}", "203.0.113.7")
        assert user_error_codes(payload) == ["INVALID_CREDENTIALS"]
    locked = await _login_from(stack, client, account.email, account.password, "203.0.113.7")
    assert user_error_codes(locked) == ["ACCOUNT_LOCKED"]
    # The owner, signing in from elsewhere, is not locked out by someone else's guesses.
    owner = await _login_from(stack, client, account.email, account.password, "198.51.100.20")
    assert user_error_codes(owner) == [] and owner["accessToken"]


async def test_guessing_spread_over_many_addresses_still_locks_the_account(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    account = await register(stack, client=client)
    limit = stack.settings.login_max_failures
    for attempt in range(limit * 10):
        address = f"203.0.113.{attempt // (limit - 1)}"  # never `limit` failures from one address
        payload = await _login_from(stack, client, account.email, f"guess-{attempt}", address)
        assert user_error_codes(payload) == ["INVALID_CREDENTIALS"], attempt
    locked = await _login_from(stack, client, account.email, account.password, "198.51.100.20")
    assert user_error_codes(locked) == ["ACCOUNT_LOCKED"]


async def test_clients_cannot_name_their_own_address(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    # Without the router's token the header is ignored: a guesser cannot rotate fake addresses.
    account = await register(stack, client=client)
    for attempt in range(stack.settings.login_max_failures):
        response = await client.post(
            stack.url("users"),
            json={"query": LOGIN, "variables": {"input": {"email": account.email, "password": f"g-{attempt}"}}},
            headers={CLIENT_ADDRESS_HEADER: f"203.0.113.{attempt}"},
        )
        assert user_error_codes(data(response.json())["login"]) == ["INVALID_CREDENTIALS"]
    assert user_error_codes(await login_payload(stack, account.email, account.password, client=client)) == [
        "ACCOUNT_LOCKED"
    ]


async def test_a_successful_login_resets_the_failure_count(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    account = await register(stack, client=client)
    limit = stack.settings.login_max_failures
    for attempt in range(limit - 1):
        payload = await login_payload(stack, account.email, f"wrong-password-{attempt}", client=client)
        assert user_error_codes(payload) == ["INVALID_CREDENTIALS"]
    assert (await login(stack, account.email, account.password, client=client)).id == account.id
    # Without the reset this failure would be the limit-th and lock the account.
    assert user_error_codes(await login_payload(stack, account.email, "wrong-again", client=client)) == [
        "INVALID_CREDENTIALS"
    ]
    assert (await login(stack, account.email, account.password, client=client)).id == account.id


# --- refresh tokens --------------------------------------------------------------------


async def refresh(stack: ThreadedStack, token: str, client: httpx.AsyncClient) -> dict[str, Any]:
    result = await gql(stack.url("users"), REFRESH, {"input": {"refreshToken": token}}, client=client)
    payload: dict[str, Any] = data(result)["refreshToken"]
    return payload


async def test_refresh_rotates_the_token(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    account = await register(stack, client=client)
    first = await refresh(stack, account.refresh_token, client)
    assert first["userErrors"] == []
    assert first["user"]["id"] == account.id
    assert first["refreshToken"] not in (None, account.refresh_token)
    assert first["accessToken"] not in (None, account.access_token)
    assert (await me(stack, first["accessToken"], client) or {})["id"] == account.id
    second = await refresh(stack, first["refreshToken"], client)
    assert second["userErrors"] == []
    assert len({account.refresh_token, first["refreshToken"], second["refreshToken"]}) == 3


async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    account = await register(stack, client=client)
    other_device = await login(stack, account.email, account.password, client=client)
    newest = (await refresh(stack, account.refresh_token, client))["refreshToken"]
    reused = await refresh(stack, account.refresh_token, client)
    assert user_error_codes(reused) == ["TOKEN_REUSED"]
    assert reused["userErrors"][0]["field"] == ["input", "refreshToken"]
    assert reused["accessToken"] is None and reused["refreshToken"] is None
    # The newest token of the family (possibly the thief's) stops working too...
    assert user_error_codes(await refresh(stack, newest, client)) == ["INVALID_TOKEN"]
    # ...and so does every later replay, while another sign-in (another family) is unaffected.
    assert user_error_codes(await refresh(stack, account.refresh_token, client)) == ["INVALID_TOKEN"]
    assert (await refresh(stack, other_device.refresh_token, client))["userErrors"] == []


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "not-a-uuid.secret",
        "5f0c7a52-3d4e-4b8a-9c61-2e7f8d90a1b3.secret",  # a well-formed id no token has (ids are random)
        "5f0c7a52-3d4e-4b8a-9c61-2e7f8d90a1b3",
        "." * 3,
    ],
)
async def test_malformed_refresh_tokens_are_refused(
    stack: ThreadedStack, client: httpx.AsyncClient, token: str
) -> None:
    payload = await refresh(stack, token, client)
    assert user_error_codes(payload) == ["INVALID_TOKEN"]
    assert payload["accessToken"] is None


async def test_a_refresh_token_with_a_wrong_secret_is_refused_and_spends_nothing(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    account = await register(stack, client=client)
    token_id, _, secret = account.refresh_token.partition(".")
    forged = f"{token_id}.{secret[:-2]}{'AA' if not secret.endswith('AA') else 'BB'}"
    assert user_error_codes(await refresh(stack, forged, client)) == ["INVALID_TOKEN"]
    # The genuine token was not spent by the forgery.
    assert (await refresh(stack, account.refresh_token, client))["userErrors"] == []


async def test_logout_revokes_the_session_family(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    account = await register(stack, client=client)
    other_device = await login(stack, account.email, account.password, client=client)
    current = (await refresh(stack, account.refresh_token, client))["refreshToken"]
    result = data(await gql(stack.url("users"), LOGOUT, {"input": {"refreshToken": current}}, client=client))
    assert result["logout"] == {"ok": True, "userErrors": []}
    assert user_error_codes(await refresh(stack, current, client)) == ["INVALID_TOKEN"]
    assert user_error_codes(await refresh(stack, account.refresh_token, client)) == ["INVALID_TOKEN"]
    assert (await refresh(stack, other_device.refresh_token, client))["userErrors"] == []


# Fixed values: xdist's workers must collect the same test ids.
@pytest.mark.parametrize("token", ["garbage", "8b1e4c07-6a2d-4f39-b5e8-0c9d3a7f6e21.secret"])
async def test_logout_with_an_invalid_token(stack: ThreadedStack, client: httpx.AsyncClient, token: str) -> None:
    result = data(await gql(stack.url("users"), LOGOUT, {"input": {"refreshToken": token}}, client=client))
    assert result["logout"]["ok"] is False
    assert [e["code"] for e in result["logout"]["userErrors"]] == ["INVALID_TOKEN"]


# --- access tokens ---------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _claims(account: Account, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ACCESS_ISSUER,
        "aud": ACCESS_AUDIENCE,
        "sub": account.id,
        "role": "CUSTOMER",
        "typ": "access",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return claims


def _expired(stack: ThreadedStack, account: Account) -> str:
    kid, pem = signing_key(stack)
    past = int(time.time()) - 3600
    return jwt.encode(_claims(account, iat=past, exp=past + 900), pem, algorithm="ES256", headers={"kid": kid})


def _tampered_payload(stack: ThreadedStack, account: Account) -> str:
    header, payload, signature = account.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "ADMIN"
    return ".".join([header, _b64(json.dumps(claims).encode()), signature])


def _tampered_signature(stack: ThreadedStack, account: Account) -> str:
    header, payload, signature = account.access_token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[10] ^= 0x01
    return ".".join([header, payload, _b64(bytes(raw))])


def _alg_none(stack: ThreadedStack, account: Account) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(_claims(account, role='ADMIN')).encode())}."


def _hs256_with_public_key(stack: ThreadedStack, account: Account) -> str:
    kid, pem = signing_key(stack)
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(_claims(account, role="ADMIN")).encode())
    signature = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def _hs256_wrong_secret(stack: ThreadedStack, account: Account) -> str:
    secret = "not-the-service-secret-" + "x" * 20
    return mint_internal_token(secret, "router", user_id=uuid.UUID(account.id), role="ADMIN")


def _foreign_key(stack: ThreadedStack, account: Account) -> str:
    kid, _ = signing_key(stack)
    attacker = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(_claims(account), attacker, algorithm="ES256", headers={"kid": kid})


def _unknown_kid(stack: ThreadedStack, account: Account) -> str:
    _, pem = signing_key(stack)
    return jwt.encode(_claims(account), pem, algorithm="ES256", headers={"kid": "no-such-key"})


def _wrong_audience(stack: ThreadedStack, account: Account) -> str:
    kid, pem = signing_key(stack)
    return jwt.encode(_claims(account, aud="someone-else"), pem, algorithm="ES256", headers={"kid": kid})


def _wrong_issuer(stack: ThreadedStack, account: Account) -> str:
    kid, pem = signing_key(stack)
    return jwt.encode(_claims(account, iss="evil-issuer"), pem, algorithm="ES256", headers={"kid": kid})


def _not_a_jwt(stack: ThreadedStack, account: Account) -> str:
    return "not.a.jwt"


BAD_TOKENS: dict[str, Callable[[ThreadedStack, Account], str]] = {
    "expired": _expired,
    "tampered-payload": _tampered_payload,
    "tampered-signature": _tampered_signature,
    "alg-none": _alg_none,
    "hs256-signed-with-public-key": _hs256_with_public_key,
    "hs256-wrong-secret": _hs256_wrong_secret,
    "foreign-key": _foreign_key,
    "unknown-kid": _unknown_kid,
    "wrong-audience": _wrong_audience,
    "wrong-issuer": _wrong_issuer,
    "not-a-jwt": _not_a_jwt,
}


@pytest.mark.parametrize("subgraph", ["users", "catalog"])
@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_bad_access_tokens_get_401_unauthenticated(
    stack: ThreadedStack, client: httpx.AsyncClient, subgraph: str, kind: str
) -> None:
    account = await _shared_account(stack, client)
    token = BAD_TOKENS[kind](stack, account)
    query = ME if subgraph == "users" else "{ categories { id } }"
    response = await client.post(
        stack.url(subgraph), json={"query": query}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert "data" not in body
    assert token not in response.text


_accounts: dict[tuple[str, str], Account] = {}


async def _shared_account(stack: ThreadedStack, client: httpx.AsyncClient, purpose: str = "reader") -> Account:
    """One account per purpose for cases that change nothing on it (each registration costs an argon2 hash)."""
    key = (stack.url("users"), purpose)
    if key not in _accounts:
        _accounts[key] = await register(stack, client=client)
    return _accounts[key]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "Bearer a b"])
async def test_malformed_authorization_headers_get_401(
    stack: ThreadedStack, client: httpx.AsyncClient, header: str
) -> None:
    response = await client.post(stack.url("users"), json={"query": ME}, headers={"Authorization": header})
    assert response.status_code == 401
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAUTHENTICATED"]


async def test_a_well_formed_forged_token_is_accepted_only_when_really_signed(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    """Control for the bad-token cases: the same claims signed with the real key do work."""
    account = await _shared_account(stack, client)
    kid, pem = signing_key(stack)
    token = jwt.encode(_claims(account), pem, algorithm="ES256", headers={"kid": kid})
    assert (await me(stack, token, client) or {})["id"] == account.id


async def test_me_is_null_when_anonymous(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    response = await client.post(stack.url("users"), json={"query": ME})
    assert response.status_code == 200
    assert response.json() == {"data": {"me": None}}


async def test_jwks_publishes_the_public_signing_key(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    account = await _shared_account(stack, client)
    response = await client.get(stack.settings.jwks_url)
    assert response.status_code == 200
    keys = response.json()["keys"]
    kid = jwt.get_unverified_header(account.access_token)["kid"]
    published = {k["kid"]: k for k in keys}
    assert published[kid]["kty"] == "EC" and published[kid]["crv"] == "P-256"
    assert published[kid]["alg"] == "ES256" and published[kid]["use"] == "sig"
    assert all("d" not in k for k in keys), "a private key component is published"
    # What another subgraph does: verify a real token with the published keys.
    verifier = TokenVerifier(JwksClient(stack.settings.jwks_url).get, stack.settings.service_secret)
    identity = await verifier.verify(account.access_token)
    assert str(identity.user_id) == account.id and identity.role == "CUSTOMER"


# --- profile -----------------------------------------------------------------------------

UPDATE_PROFILE = """
    mutation($input: UpdateProfileInput!) {
        updateProfile(input: $input) { user { id email name role } userErrors { code field message } }
    }
"""


async def update_profile(
    stack: ThreadedStack, token: str | None, changes: dict[str, Any], client: httpx.AsyncClient
) -> dict[str, Any]:
    return await gql(stack.url("users"), UPDATE_PROFILE, {"input": changes}, token, client=client)


async def test_update_profile_changes_name_and_email(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    account = await register(stack, name="Old Name", client=client)
    new_email = unique_email("Renamed")
    payload = data(
        await update_profile(stack, account.access_token, {"name": " New Name ", "email": new_email}, client)
    )
    assert payload["updateProfile"] == {
        "user": {"id": account.id, "email": new_email, "name": "New Name", "role": "CUSTOMER"},
        "userErrors": [],
    }
    current = await me(stack, account.access_token, client) or {}
    assert {k: current[k] for k in ("id", "email", "name", "role")} == payload["updateProfile"]["user"]
    # Signing in now takes the new email; the old one is free again.
    assert (await login(stack, new_email.upper(), account.password, client=client)).id == account.id
    assert (await register(stack, email=account.email, client=client)).id != account.id


async def test_update_profile_leaves_out_fields_not_sent(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    account = await register(stack, name="Keep Me", client=client)
    payload = data(await update_profile(stack, account.access_token, {"name": "Only Name"}, client))
    assert payload["updateProfile"]["user"]["email"] == account.email
    payload = data(await update_profile(stack, account.access_token, {}, client))
    assert payload["updateProfile"]["user"]["name"] == "Only Name"


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"email": "not-an-email"}, "INVALID", "email"),
        ({"email": None}, "REQUIRED", "email"),
        ({"name": "   "}, "REQUIRED", "name"),
        ({"name": None}, "REQUIRED", "name"),
        ({"name": "n" * 201}, "TOO_LONG", "name"),
    ],
)
async def test_update_profile_validation(
    stack: ThreadedStack, client: httpx.AsyncClient, changes: dict[str, Any], code: str, field: str
) -> None:
    account = await _shared_account(stack, client)
    before = await me(stack, account.access_token, client)
    payload = data(await update_profile(stack, account.access_token, changes, client))["updateProfile"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, ["input", field])]
    assert payload["user"] is None
    assert await me(stack, account.access_token, client) == before


async def test_update_profile_refuses_an_email_taken_in_another_case(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    mine, theirs = await register(stack, client=client), await register(stack, client=client)
    payload = data(await update_profile(stack, mine.access_token, {"email": theirs.email.upper()}, client))
    assert user_error_codes(payload["updateProfile"]) == ["EMAIL_TAKEN"]
    assert (await me(stack, mine.access_token, client) or {})["email"] == mine.email
    # Changing one's own email to another case of itself is fine.
    payload = data(await update_profile(stack, mine.access_token, {"email": mine.email.upper()}, client))
    assert payload["updateProfile"]["user"]["email"] == mine.email.upper()


async def test_update_profile_needs_a_signed_in_user(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    result = await update_profile(stack, None, {"name": "Nobody"}, client)
    assert error_codes(result) == ["UNAUTHENTICATED"]
    assert result["data"] is None


# --- addresses ---------------------------------------------------------------------------

ADDRESS_FIELDS = "id name line1 line2 city region postalCode country phone isDefault"
ADDRESS_PAYLOAD = f"address {{ {ADDRESS_FIELDS} }} user {{ addresses {{ id isDefault }} }} userErrors {{ code field }}"
ADD_ADDRESS = f"mutation($input: AddAddressInput!) {{ addAddress(input: $input) {{ {ADDRESS_PAYLOAD} }} }}"
UPDATE_ADDRESS = f"mutation($input: UpdateAddressInput!) {{ updateAddress(input: $input) {{ {ADDRESS_PAYLOAD} }} }}"
DELETE_ADDRESS = f"mutation($input: DeleteAddressInput!) {{ deleteAddress(input: $input) {{ {ADDRESS_PAYLOAD} }} }}"
MY_ADDRESSES = f"{{ me {{ addresses {{ {ADDRESS_FIELDS} }} defaultAddress {{ id }} }} }}"


def address_input(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "city": "London",
        "postalCode": "SW1Y 4JH",
        "country": "gb",
    }
    values.update(changes)
    return values


async def add_address(
    stack: ThreadedStack, token: str | None, client: httpx.AsyncClient, **changes: Any
) -> dict[str, Any]:
    return await gql(stack.url("users"), ADD_ADDRESS, {"input": address_input(**changes)}, token, client=client)


async def my_addresses(stack: ThreadedStack, token: str, client: httpx.AsyncClient) -> dict[str, Any]:
    result: dict[str, Any] = data(await gql(stack.url("users"), MY_ADDRESSES, token=token, client=client))["me"]
    return result


def defaults(addresses: list[dict[str, Any]]) -> list[str]:
    return [a["id"] for a in addresses if a["isDefault"]]


async def test_first_address_becomes_the_default_and_only_one_default_exists(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    account = await register(stack, client=client)
    token = account.access_token
    first = data(await add_address(stack, token, client, line2=" Flat 2 ", phone=""))["addAddress"]
    assert first["userErrors"] == []
    assert first["address"]["isDefault"] is True  # not asked for, but it is the first
    assert first["address"]["country"] == "GB" and first["address"]["line2"] == "Flat 2"
    assert first["address"]["phone"] is None and first["address"]["region"] is None
    second = data(await add_address(stack, token, client, city="Paris", country="FR"))["addAddress"]["address"]
    assert second["isDefault"] is False
    third = data(await add_address(stack, token, client, city="Rome", country="IT", isDefault=True))["addAddress"]
    assert defaults(third["user"]["addresses"]) == [third["address"]["id"]]

    listed = await my_addresses(stack, token, client)
    assert {a["id"] for a in listed["addresses"]} == {first["address"]["id"], second["id"], third["address"]["id"]}
    assert defaults(listed["addresses"]) == [third["address"]["id"]] == [listed["defaultAddress"]["id"]]

    # Making another one the default moves the flag; there is never more than one.
    moved = data(
        await gql(
            stack.url("users"), UPDATE_ADDRESS, {"input": {"id": second["id"], "isDefault": True}}, token, client=client
        )
    )["updateAddress"]
    assert moved["address"]["isDefault"] is True and moved["address"]["city"] == "Paris"
    assert defaults(moved["user"]["addresses"]) == [second["id"]]


async def test_update_address_changes_only_the_fields_sent(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    account = await register(stack, client=client)
    token = account.access_token
    address = data(await add_address(stack, token, client, line2="Floor 3", phone="+44 20 7946 0000"))["addAddress"]
    change = {"id": address["address"]["id"], "city": " Manchester ", "line2": None}
    updated = data(await gql(stack.url("users"), UPDATE_ADDRESS, {"input": change}, token, client=client))
    after = updated["updateAddress"]["address"]
    assert after == {**address["address"], "city": "Manchester", "line2": None}
    # isDefault: false does not take the flag away from the only address.
    assert after["isDefault"] is True


async def test_deleting_the_default_promotes_the_oldest_remaining(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    token = (await register(stack, client=client)).access_token
    ids = [
        data(await add_address(stack, token, client, city=f"City {n}"))["addAddress"]["address"]["id"] for n in range(3)
    ]
    result = data(await gql(stack.url("users"), DELETE_ADDRESS, {"input": {"id": ids[0]}}, token, client=client))
    payload = result["deleteAddress"]
    assert payload["userErrors"] == [] and payload["address"] is None
    assert [a["id"] for a in payload["user"]["addresses"]] == [ids[1], ids[2]]
    assert defaults(payload["user"]["addresses"]) == [ids[1]]
    # Deleting a non-default address leaves the default alone.
    result = data(await gql(stack.url("users"), DELETE_ADDRESS, {"input": {"id": ids[2]}}, token, client=client))
    assert defaults(result["deleteAddress"]["user"]["addresses"]) == [ids[1]]


async def test_another_users_address_cannot_be_updated_or_deleted(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    owner, intruder = await register(stack, client=client), await register(stack, client=client)
    theirs = data(await add_address(stack, owner.access_token, client))["addAddress"]["address"]
    mine = data(await add_address(stack, intruder.access_token, client))["addAddress"]["address"]
    attempts = [
        (UPDATE_ADDRESS, "updateAddress", {"id": theirs["id"], "city": "Stolen"}),
        (UPDATE_ADDRESS, "updateAddress", {"id": theirs["id"], "isDefault": True}),
        (UPDATE_ADDRESS, "updateAddress", {"id": theirs["id"]}),
        (DELETE_ADDRESS, "deleteAddress", {"id": theirs["id"]}),
    ]
    for query, field, variables in attempts:
        result = data(await gql(stack.url("users"), query, {"input": variables}, intruder.access_token, client=client))
        assert [(e["code"], e["field"]) for e in result[field]["userErrors"]] == [("NOT_FOUND", ["input", "id"])]
        assert result[field]["address"] is None
    # Nothing changed on either side (the refused isDefault did not clear the intruder's default).
    assert (await my_addresses(stack, owner.access_token, client))["addresses"] == [theirs]
    assert (await my_addresses(stack, intruder.access_token, client))["addresses"] == [mine]


@pytest.mark.parametrize("address_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000", ""])
async def test_unknown_or_malformed_address_ids(
    stack: ThreadedStack, client: httpx.AsyncClient, address_id: str
) -> None:
    token = (await _shared_account(stack, client)).access_token
    for query, field in ((UPDATE_ADDRESS, "updateAddress"), (DELETE_ADDRESS, "deleteAddress")):
        result = data(await gql(stack.url("users"), query, {"input": {"id": address_id}}, token, client=client))
        assert user_error_codes(result[field]) == ["NOT_FOUND"]


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"country": "USA"}, "INVALID", "country"),
        ({"country": "1A"}, "INVALID", "country"),
        ({"line1": "   "}, "REQUIRED", "line1"),
        ({"name": ""}, "REQUIRED", "name"),
        ({"postalCode": "1" * 21}, "TOO_LONG", "postalCode"),
        ({"city": "c" * 101}, "TOO_LONG", "city"),
        ({"phone": "5" * 41}, "TOO_LONG", "phone"),
    ],
)
async def test_address_validation(
    stack: ThreadedStack, client: httpx.AsyncClient, changes: dict[str, Any], code: str, field: str
) -> None:
    token = (await _shared_account(stack, client, "address-validation")).access_token
    before = (await my_addresses(stack, token, client))["addresses"]
    if not before:
        assert data(await add_address(stack, token, client))["addAddress"]["userErrors"] == []
        before = (await my_addresses(stack, token, client))["addresses"]
    payload = data(await add_address(stack, token, client, **changes))["addAddress"]
    assert payload["userErrors"] == [{"code": code, "field": ["input", field]}]
    assert payload["address"] is None
    # The same rules hold for updates.
    variables = {"input": {"id": before[0]["id"], **changes}}
    result = data(await gql(stack.url("users"), UPDATE_ADDRESS, variables, token, client=client))
    assert result["updateAddress"]["userErrors"] == [{"code": code, "field": ["input", field]}]
    assert (await my_addresses(stack, token, client))["addresses"] == before


async def test_required_address_fields_cannot_be_nulled_by_an_update(
    stack: ThreadedStack, client: httpx.AsyncClient
) -> None:
    token = (await register(stack, client=client)).access_token
    good = data(await add_address(stack, token, client))["addAddress"]["address"]
    for field in ("name", "line1", "city", "postalCode", "country"):
        variables = {"input": {"id": good["id"], field: None}}
        result = data(await gql(stack.url("users"), UPDATE_ADDRESS, variables, token, client=client))
        assert result["updateAddress"]["userErrors"] == [{"code": "REQUIRED", "field": ["input", field]}]
    assert (await my_addresses(stack, token, client))["addresses"] == [good]


async def test_address_book_is_capped(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    token = (await register(stack, client=client)).access_token
    # Sent all at once: the cap (and the single default) must hold for concurrent adds too.
    added = await asyncio.gather(*(add_address(stack, token, client, city=f"City {n}") for n in range(23)))
    codes = sorted(tuple(user_error_codes(data(result)["addAddress"])) for result in added)
    assert codes == [()] * 20 + [("INVALID",)] * 3
    listed = (await my_addresses(stack, token, client))["addresses"]
    assert len(listed) == 20 and len(defaults(listed)) == 1
    refused = data(await add_address(stack, token, client, city="One Too Many"))["addAddress"]
    assert user_error_codes(refused) == ["INVALID"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (ADD_ADDRESS, {"input": address_input()}),
        (UPDATE_ADDRESS, {"input": {"id": str(uuid.uuid4()), "city": "X"}}),
        (DELETE_ADDRESS, {"input": {"id": str(uuid.uuid4())}}),
    ],
    ids=["add", "update", "delete"],
)
async def test_addresses_need_a_signed_in_user(
    stack: ThreadedStack, client: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> None:
    result = await gql(stack.url("users"), query, variables, client=client)
    assert error_codes(result) == ["UNAUTHENTICATED"]


# --- administration ----------------------------------------------------------------------

USER_BY_ID = "query($id: ID!) { user(id: $id) { id email role addresses { id } } }"
SET_ROLE = """
    mutation($input: SetUserRoleInput!) {
        setUserRole(input: $input) { user { id role } userErrors { code field } }
    }
"""


async def test_admin_reads_any_user_and_changes_roles(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str
) -> None:
    account = await register(stack, client=client)
    found = data(await gql(stack.url("users"), USER_BY_ID, {"id": account.id}, admin, client=client))["user"]
    assert found == {"id": account.id, "email": account.email, "role": "CUSTOMER", "addresses": []}
    for unknown in ("00000000-0000-4000-8000-000000000000", "garbage"):
        assert data(await gql(stack.url("users"), USER_BY_ID, {"id": unknown}, admin, client=client))["user"] is None

    promoted = data(
        await gql(
            stack.url("users"), SET_ROLE, {"input": {"userId": account.id, "role": "ADMIN"}}, admin, client=client
        )
    )["setUserRole"]
    assert promoted == {"user": {"id": account.id, "role": "ADMIN"}, "userErrors": []}
    # The role is in the next token: the new admin can now do admin things...
    new_admin = await login(stack, account.email, account.password, client=client)
    assert jwt.decode(new_admin.access_token, options={"verify_signature": False})["role"] == "ADMIN"
    other = await _shared_account(stack, client)
    result = await gql(stack.url("users"), USER_BY_ID, {"id": other.id}, new_admin.access_token, client=client)
    assert data(result)["user"]["id"] == other.id
    # ...and a refresh also picks up a demotion.
    demoted = data(
        await gql(
            stack.url("users"), SET_ROLE, {"input": {"userId": account.id, "role": "CUSTOMER"}}, admin, client=client
        )
    )["setUserRole"]
    assert demoted["user"]["role"] == "CUSTOMER"
    # The demotion holds at once: the token that still says ADMIN is refused...
    stale = await gql(stack.url("users"), USER_BY_ID, {"id": other.id}, new_admin.access_token, client=client)
    assert error_codes(stale) == ["UNAUTHENTICATED"]
    refreshed = await refresh(stack, new_admin.refresh_token, client)
    assert jwt.decode(refreshed["accessToken"], options={"verify_signature": False})["role"] == "CUSTOMER"
    denied = await gql(stack.url("users"), USER_BY_ID, {"id": other.id}, refreshed["accessToken"], client=client)
    assert error_codes(denied) == ["FORBIDDEN"]


@pytest.mark.parametrize("user_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid"])
async def test_set_role_of_an_unknown_user(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str, user_id: str
) -> None:
    result = await gql(
        stack.url("users"), SET_ROLE, {"input": {"userId": user_id, "role": "ADMIN"}}, admin, client=client
    )
    assert data(result)["setUserRole"] == {
        "user": None,
        "userErrors": [{"code": "NOT_FOUND", "field": ["input", "userId"]}],
    }


@pytest.mark.parametrize("caller", ["customer", "anonymous", "service-for-customer"])
async def test_admin_operations_are_refused_to_non_admins(
    stack: ThreadedStack, client: httpx.AsyncClient, admin: str, caller: str
) -> None:
    victim = await _shared_account(stack, client)
    customer = await _shared_account(stack, client, "customer")
    token = {
        "customer": customer.access_token,
        "anonymous": None,
        # The router forwarding a customer's verified identity: still a customer.
        "service-for-customer": internal_token(stack, "router", user_id=customer.id, role="CUSTOMER"),
    }[caller]
    expected = ["UNAUTHENTICATED"] if caller == "anonymous" else ["FORBIDDEN"]
    read = await gql(stack.url("users"), USER_BY_ID, {"id": victim.id}, token, client=client)
    assert error_codes(read) == expected and read["data"] == {"user": None}
    for target in (victim.id, customer.id):
        variables = {"input": {"userId": target, "role": "ADMIN"}}
        write = await gql(stack.url("users"), SET_ROLE, variables, token, client=client)
        assert error_codes(write) == expected and write["data"] is None
    # Neither account was promoted.
    for account in (victim, customer):
        found = data(await gql(stack.url("users"), USER_BY_ID, {"id": account.id}, admin, client=client))["user"]
        assert found["role"] == "CUSTOMER"


async def test_router_forwarded_identity_is_honoured(stack: ThreadedStack, client: httpx.AsyncClient) -> None:
    account = await register(stack, client=client)
    token = internal_token(stack, "router", user_id=account.id, role="CUSTOMER")
    assert (await me(stack, token, client) or {})["id"] == account.id
    # The router on its own (no user) is anonymous to users: it sees nobody's data.
    assert await me(stack, internal_token(stack, "router"), client) is None
