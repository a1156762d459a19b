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


def _writer(url: str, metrics: Metrics, retries: int) -> RecWriter:
    client = aioredis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    return RecWriter(client, metrics, ttl_s=60, model_version="v", retries=retries,
                     backoff_s=0.01)


def test_lists_are_written_and_survive_an_outage() -> None:
    port = free_port()
    url, proc = start_redis(port)
    metrics = Metrics()

    async def scenario() -> None:
        nonlocal proc
        writer = _writer(url, metrics, retries=2)
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
        await writer.client.aclose()

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


def _accounted(metrics: Metrics) -> dict[str, float]:
    return {o: metrics.registry.get_sample_value("sidstream_events_accounted_total",
                                                 {"outcome": o}) or 0.0
            for o in ("list_written", "coalesced")}


def test_events_count_only_once_their_list_is_in_redis() -> None:
    """The accounting the stream benchmark reads: never ahead of Redis, nothing counted twice
    (a list replaced while Redis is down carries its events; one replaced while it was being
    written gives them back)."""
    port = free_port()
    url, proc = start_redis(port)
    metrics = Metrics()

    async def scenario() -> None:
        nonlocal proc
        writer = _writer(url, metrics, retries=1)
        await writer.write([RecList("a", (), 1000, events=3), RecList("b", (), 1000, events=1),
                            RecList("c", (), 1000, events=0)])
        assert _accounted(metrics) == {"list_written": 2, "coalesced": 2}
        stop_process(proc)
        await writer.write([RecList("a", (), 2000, events=2)])
        await writer.write([RecList("a", (), 3000, events=1)])  # replaces the pending one
        assert _accounted(metrics) == {"list_written": 2, "coalesced": 2}  # Redis is down
        assert writer.pending["a"].events == 3
        _, proc = start_redis(port)
        await asyncio.sleep(writer.next_try - time.monotonic() + 0.01)
        flushing = asyncio.ensure_future(writer.flush_due())
        await asyncio.sleep(0)  # the flush has taken its batch: a list arriving now waits
        later = asyncio.ensure_future(writer.write([RecList("a", (), 4000, events=1)]))
        await asyncio.sleep(0)
        assert writer.pending["a"].events == 4  # it took over the 3 being written
        assert await flushing == 1
        assert writer.pending["a"].events == 1  # the written list's 3 events were given back
        assert await later == 1 and not writer.pending
        assert _accounted(metrics) == {"list_written": 4, "coalesced": 4}
        await writer.client.aclose()

    try:
        asyncio.run(scenario())
    finally:
        stop_process(proc)
