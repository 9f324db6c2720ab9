"""Demo accounts: one administrator and one customer, with a saved address."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from subgraphs.kit.config import Settings
from subgraphs.kit.db import Database

from .models import addresses, users
from .service import hash_password

DEMO_ACCOUNTS = (
    ("ADMIN", "admin@shopgraph.dev", "admin-demo-pass", "Ada Admin"),
    ("CUSTOMER", "shopper@shopgraph.dev", "shopper-demo-pass", "Sam Shopper"),
)


async def seed(settings: Settings) -> list[tuple[str, str, str]]:
    """Create the demo accounts if missing; returns (role, email, password) of each."""
    db = Database(settings.database_url_for("users"), "users", pool_size=1)
    try:
        async with db.transaction() as conn:
            for role, email, password, name in DEMO_ACCOUNTS:
                exists = (
                    await conn.execute(select(users.c.id).where(func.lower(users.c.email) == email))
                ).one_or_none()
                if exists:
                    continue
                user_id = (
                    await conn.execute(
                        insert(users)
                        .values(email=email, name=name, role=role, password_hash=await hash_password(password))
                        .returning(users.c.id)
                    )
                ).scalar_one()
                await conn.execute(
                    insert(addresses).values(
                        user_id=user_id,
                        name=name,
                        line1="1 Demo Street",
                        city="Springfield",
                        postal_code="12345",
                        country="US",
                        is_default=True,
                    )
                )
    finally:
        await db.dispose()
    return [(role, email, password) for role, email, password, _ in DEMO_ACCOUNTS]
