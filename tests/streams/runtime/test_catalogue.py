"""Known items: local, then the Redis mirror; when Redis cannot tell, nothing is flagged."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis
import redis.asyncio as aioredis

from infra.embedded import free_port
from streams.contracts.output import item_key
from streams.runtime.catalogue import Catalogue
from streams.settings import Settings

pytestmark = pytest.mark.integration


def test_unknown_items_are_looked_up_in_the_mirror_and_remembered(
        settings: Settings, rclient: redis.Redis) -> None:
    rclient.set(item_key("cat-mirrored"), json.dumps({"item_id": "cat-mirrored"}))
    catalogue = Catalogue(["cat-local"])

    async def run() -> tuple[set[object], set[object]]:
        client = aioredis.Redis.from_url(settings.redis.redis_url)
        try:
            first = await catalogue.unknown(client, {"cat-local", "cat-mirrored", "cat-none"})
            rclient.delete(item_key("cat-mirrored"))  # remembered: not asked again
            second = await catalogue.unknown(client, {"cat-mirrored"})
        finally:
            await client.aclose()
        return first, second

    first, second = asyncio.run(run())
    assert first == {"cat-none"} and second == set()
    assert "cat-mirrored" in catalogue.known and len(catalogue) == 2


def test_an_unreachable_redis_flags_nothing() -> None:
    async def run() -> set[object]:
        client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0",
                                         socket_connect_timeout=0.5)
        try:
            return await Catalogue().unknown(client, {"anything"})
        finally:
            await client.aclose()

    assert asyncio.run(run()) == set()
