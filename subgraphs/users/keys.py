"""Access-token signing: ES256 keys kept in the users schema, published as JWKS."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import insert, select, text

from subgraphs.kit.auth import ACCESS_ALGORITHM, ACCESS_AUDIENCE, ACCESS_ISSUER
from subgraphs.kit.db import Database

from .models import signing_keys


class KeyStore:
    """The active signing key and every published public key, loaded once per process."""

    def __init__(self) -> None:
        self._active: tuple[str, Any] | None = None
        self._public: dict[str, dict[str, Any]] = {}

    async def load(self, db: Database) -> None:
        """Ensure a signing key exists (first replica to start creates it) and load the keys."""
        async with db.transaction() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('users:signing_keys'))"))
            rows = (
                await conn.execute(
                    select(signing_keys)
                    .where(signing_keys.c.retired_at.is_(None))
                    .order_by(signing_keys.c.created_at.desc())
                )
            ).all()
            if not rows:
                await conn.execute(insert(signing_keys).values(**_new_key()))
                rows = (await conn.execute(select(signing_keys).where(signing_keys.c.retired_at.is_(None)))).all()
        newest = rows[0]
        private = serialization.load_pem_private_key(newest.private_pem.encode(), password=None)
        self._active = (newest.kid, private)
        self._public = {row.kid: dict(row.public_jwk) for row in rows}

    def jwks(self) -> dict[str, Any]:
        return {"keys": list(self._public.values())}

    async def public_key(self, kid: str) -> dict[str, Any] | None:
        return self._public.get(kid)

    def issue_access_token(self, user_id: uuid.UUID, role: str, ttl: int) -> str:
        assert self._active is not None, "KeyStore.load() runs at start-up"
        kid, private = self._active
        # Issue time to the microsecond: a token issued just after a revocation must not
        # look older than it (kit.revocation compares the two).
        now = time.time()
        claims = {
            "iss": ACCESS_ISSUER,
            "aud": ACCESS_AUDIENCE,
            "sub": str(user_id),
            "role": role,
            "typ": "access",
            "iat": now,
            "exp": int(now) + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, private, algorithm=ACCESS_ALGORITHM, headers={"kid": kid})


def _new_key() -> dict[str, Any]:
    private = ec.generate_private_key(ec.SECP256R1())
    kid = uuid.uuid4().hex[:16]
    public_jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    public_jwk.update({"kid": kid, "alg": ACCESS_ALGORITHM, "use": "sig"})
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {"kid": kid, "private_pem": pem, "public_jwk": public_jwk}
