"""The Redis writer against a real redis-server, including an outage."""

import asyncio
import json
import time

import pytest
import redis
import redis.asyncio as aioredis

from infra.embedded import free_port, start_redis, stop_process
from streams.contracts.output import Candidate, RecList
from streams.metrics import Metrics
from streams.runtime.redis_writer import RecWriter

pytestmark = pytest.mark.integration


def test_lists_are_written_and_survive_an_outage() -> None:
    port = free_port()
    url, proc = start_redis(port)
    metrics = Metrics()

    async def scenario() -> None:
        nonlocal proc
        client = aioredis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        writer = RecWriter(client, metrics, ttl_s=60, model_version="v", retries=2,
                           backoff_s=0.01)
        ok = RecList("u1", (Candidate(5, 1.0, "covisit"),), 1000)
        assert await writer.write([ok]) == 1 and writer.healthy
        stop_process(proc)
        assert await writer.write([RecList("u1", (Candidate(6, 1.0, "popular"),), 2000),
                                   RecList("u2", (), 2000)]) == 0
        assert not writer.healthy and set(writer.pending) == {"u1", "u2"}
        assert await writer.write([RecList("u3", (), 3000)]) == 0  # unhealthy: only queued
        assert set(writer.pending) == {"u1", "u2", "u3"}
        _, proc = start_redis(port)  # Redis is back: the latest lists go out once due
        await asyncio.sleep(writer.next_try - time.monotonic() + 0.01)
        assert await writer.flush_due() == 3 and writer.healthy and not writer.pending
        await client.aclose()

    try:
        asyncio.run(scenario())
        sync = redis.Redis.from_url(url)
        payload = json.loads(sync.get("sidstream:rec:u1") or b"{}")
        assert payload["items"] == [{"item_id": 6, "score": 1.0, "source": "popular"}]
        assert 0 < sync.ttl("sidstream:rec:u1") <= 60
        assert metrics.redis_errors._value.get() >= 2
        assert metrics.recs_written._value.get() == 4
    finally:
        stop_process(proc)
