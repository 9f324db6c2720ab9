"""Issue 18, finding 9: a stamp that cannot be written does not lose its invalidation.

Attack (black box): a router with a Redis of its own caches a product listing;
the product's price changes at the catalog subgraph, and the change event
reaches the router's stream at the moment Redis becomes full (``maxmemory``: reads
still work, writes fail). Before the fix the change-stream follower moved past
the event whose stamp failed, and once the few seconds of bypass were over the
old price was served again, until the entry's TTL (600 s). Now the cache stays
bypassed until the stamp is written, and the position does not move past it.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from deploy.embedded import EmbeddedRedis
from deploy.stack import ThreadedStack
from router.config import Settings
from router.http import create_app
from tests.e2e.conftest import supergraph_for
from tests.integration.helpers import admin_token, create_product
from tests.router.router_harness import ThreadServer
from tests.support.graphql import gql
from tests.support.wait import until

pytestmark = pytest.mark.asyncio(loop_scope="session")

UPDATE = "mutation($i: UpdateProductInput!) { updateProduct(input: $i) { userErrors { code } } }"


async def _price(client: httpx.AsyncClient, url: str, word: str) -> str:
    query = f'{{ products(search: "{word}") {{ edges {{ node {{ price {{ amount }} }} }} }} }}'
    r = await client.post(url, json={"query": query})
    assert r.status_code == 200 and not r.json().get("errors"), r.text
    return str(r.json()["data"]["products"]["edges"][0]["node"]["price"]["amount"])


async def test_an_unwritten_stamp_keeps_the_cache_bypassed(
    stack: ThreadedStack, demo_accounts: dict[str, tuple[str, str]]
) -> None:
    word = "stamp" + uuid.uuid4().hex[:10]
    admin = await admin_token(stack, demo_accounts)
    product = await create_product(stack, admin, name=f"{word} lamp", price="10.00")
    own = EmbeddedRedis()
    own.start()
    prefix = f"shopgraph_test_{uuid.uuid4().hex}:"
    sdl = supergraph_for({n: stack.urls[n] for n in stack.subgraphs})
    settings = Settings(anonymous_only=True, redis_url=own.url, redis_prefix=prefix, rate_limits=False)
    redis = aioredis.from_url(own.url)
    try:
        with ThreadServer(create_app(sdl, settings)) as router:
            url = router.url + "/graphql"
            async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
                assert await _price(client, url, word) == "10.00"
                assert await _price(client, url, word) == "10.00"  # cached now
                # The change, made where this router does not see it...
                result = await gql(stack.url("catalog"), UPDATE, {"i": {"id": product["id"], "price": "12.00"}}, admin)
                assert result["data"]["updateProduct"]["userErrors"] == [], result
                # ...and its event, arriving as Redis fills up.
                event = {
                    "aggregate": product["id"],
                    "payload": orjson.dumps({"typename": "Product"}),
                    "prev": "0",
                    "type": "ProductChanged",
                }
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.xadd(f"{prefix}catalog:events", event)  # type: ignore[arg-type]
                    pipe.config_set("maxmemory", 1)
                    await pipe.execute()

                # The router reads its change stream on its own (a blocking XREAD): until it has read
                # the event, a cached answer is still the newest it knows of. Wait until it has read it
                # and failed to write the stamp (what the attack is about), then watch past the bypass.
                async def stamp_failed() -> bool:
                    text = (await client.get(router.url + "/metrics")).text
                    return 'shopgraph_router_redis_degraded_total{feature="entity_cache"' in text

                await until(stamp_failed, within=15, what="the router reading the change event")
                # Past the entity cache's bypass after a failure (5 s): the old price must not come back.
                deadline = time.monotonic() + 6.5
                while time.monotonic() < deadline:
                    assert await _price(client, url, word) == "12.00"
                    await asyncio.sleep(0.25)
                await redis.config_set("maxmemory", 0)  # room again: the stamp is written
                for _ in range(3):
                    assert await _price(client, url, word) == "12.00"
                metrics = (await client.get(router.url + "/metrics")).text
        assert 'shopgraph_router_redis_degraded_total{feature="entity_cache"' in metrics
    finally:
        await redis.aclose()
        own.stop()
