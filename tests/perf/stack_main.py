"""The four subgraphs for the benchmark, in a process of their own.

usage: python stack_main.py   -> one line ``ready {json}`` on stdout (subgraph URLs,
JWKS URL, service secret, demo accounts, the orders database URL, Redis), then serves until stdin closes.

A fresh database (dropped at exit) on DATABASE_URL, else on an embedded server,
migrated and seeded with the demo data, exactly as the test suite's stack.
"""

from __future__ import annotations

import asyncio
import json
import sys

from deploy.stack import Stack


async def main() -> None:
    loop = asyncio.get_running_loop()
    async with Stack(fresh_database=True, seed=True) as stack:
        assert stack.settings is not None
        info = {
            "urls": stack.urls,
            "jwks_url": stack.settings.jwks_url,
            "service_secret": stack.settings.service_secret,
            "accounts": stack.seeded.accounts,
            "orders_database_url": stack.settings.database_url_for("orders"),
            "redis_url": stack.settings.redis_url,
            "redis_prefix": stack.settings.redis_prefix,
        }
        print("ready " + json.dumps(info), flush=True)
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


if __name__ == "__main__":
    import uvloop  # comes with uvicorn[standard], as the subgraphs' servers use it

    uvloop.run(main())
