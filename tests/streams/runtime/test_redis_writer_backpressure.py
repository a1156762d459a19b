"""The Redis writer's bound on pending lists: back-pressure, never a dropped list (a fake
client that fails while Redis is "down"; the real-Redis outage is test_redis_writer.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from streams.contracts.output import RecList
from streams.metrics import Metrics
from streams.runtime.redis_writer import RecWriter


class FakeRedis:
    def __init__(self) -> None:
        self.up = True
        self.data: dict[str, Any] = {}

    def pipeline(self, transaction: bool = False) -> FakePipe:
        return FakePipe(self)


class FakePipe:
    def __init__(self, client: FakeRedis) -> None:
        self.client, self.ops = client, []

    async def __aenter__(self) -> FakePipe:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def set(self, key: str, value: Any, ex: int) -> None:
        self.ops.append((key, value))

    async def execute(self) -> None:
        if not self.client.up:
            raise RedisConnectionError("down")
        self.client.data.update(self.ops)


def test_redis_pending_lists_stay_under_max_pending_and_none_is_lost() -> None:
    """While Redis is away the writer holds at most ``max_pending`` lists: a batch that does
    not fit waits (the stream stops) until Redis is back, then everything is written."""
    metrics = Metrics()
    fake = FakeRedis()
    writer = RecWriter(fake, metrics, ttl_s=60, model_version="v", retries=1,  # type: ignore
                       backoff_s=0.01, max_backoff_s=0.02, max_pending=10)

    async def scenario() -> None:
        fake.up = False
        for i in range(10):
            await writer.write([RecList(f"u{i}", (), 1000)])
        assert len(writer.pending) == 10 and not writer.healthy
        await writer.write([RecList("u3", (), 2000)])  # already pending: takes no room
        blocked = asyncio.create_task(writer.write([RecList("u10", (), 1000)]))
        await asyncio.sleep(0.1)
        assert not blocked.done() and len(writer.pending) == 10  # back-pressure
        fake.up = True
        await asyncio.wait_for(blocked, 2.0)
        await writer.flush()

    asyncio.run(scenario())
    assert not writer.pending and len(fake.data) == 11  # none dropped
    assert metrics.backpressure._value.get() > 0.05
