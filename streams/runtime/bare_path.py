"""The bare consume -> Redis SET path: the floor ``bench stream`` measures a worker against.

An aiokafka group consumer of ``sidstream-events``, one Redis pipeline of ``SET`` per fetched
batch (the event bytes under ``sidstream:bare:{user key}``, with the lists' TTL), and the
batch's offsets committed after the write, as the worker commits only what was written. No
faust, no validation, no user state, no models: what a worker costs beyond this is the price of
its state and lists.

    python -m streams.runtime.bare_path 20000     # settings from SIDSTREAM_*

prints ``ready`` once it holds partitions, then, after ``N`` events are written, one JSON line:
``{"events": N, "first_s": .., "t10_s": .., "t90_s": .., "last_s": .., "cpu_s": ..,
"peak_rss_mb": ..}`` (seconds since ready at which the first, 10 %, 90 % and last event was
written; its CPU seconds over that time and peak resident memory).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from dataclasses import asdict, dataclass, field

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from streams.settings import EVENTS_TOPIC, Settings

KEY_PREFIX = "sidstream:bare:"


@dataclass(frozen=True)
class BareResult:
    events: int
    first_s: float
    t10_s: float
    t90_s: float
    last_s: float
    cpu_s: float  # this process's CPU seconds from ready to the last write
    peak_rss_mb: float

    @property
    def events_per_s(self) -> float:
        """Sustained between 10 % and 90 % of the events written."""
        span = self.t90_s - self.t10_s
        return 0.8 * self.events / span if span > 0 else self.events / max(self.last_s, 1e-9)


@dataclass
class Progress:
    """When the first, 10 %, 90 % and last of ``n`` events were written (seconds since the
    path was ready), and its CPU seconds meanwhile."""

    n: int
    t0: float = field(default_factory=time.monotonic)
    cpu0: float = field(default_factory=time.process_time)
    done: int = 0
    marks: dict[str, float] = field(default_factory=dict)

    def written(self, k: int) -> bool:
        """``k`` more events written; True once all ``n`` are."""
        self.done += k
        now = time.monotonic() - self.t0
        for name, frac in (("first", 0.0), ("t10", 0.1), ("t90", 0.9), ("last", 1.0)):
            if name not in self.marks and self.done >= max(1.0, frac * self.n):
                self.marks[name] = round(now, 4)
        return self.done >= self.n

    def result(self) -> BareResult:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        m = self.marks
        return BareResult(self.done, m["first"], m["t10"], m["t90"], m["last"],
                          round(time.process_time() - self.cpu0, 3), round(peak, 1))


async def run_bare(settings: Settings, n: int) -> BareResult:
    consumer = AIOKafkaConsumer(
        EVENTS_TOPIC, bootstrap_servers=settings.bootstrap_servers,
        group_id=f"{settings.kafka.app_id}-bare", enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        session_timeout_ms=int(settings.kafka.session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.kafka.heartbeat_interval_s * 1000))
    redis = aioredis.from_url(settings.redis.redis_url)
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        print("ready", flush=True)
        return await _consume(consumer, redis, settings, n)
    finally:
        await consumer.stop()
        await redis.aclose()


async def _consume(consumer: AIOKafkaConsumer, redis: aioredis.Redis, settings: Settings,
                   n: int) -> BareResult:
    progress = Progress(n)
    while progress.done < n:
        batches = await consumer.getmany(timeout_ms=100,
                                         max_records=settings.ingest.batch_max)
        msgs = [m for part in batches.values() for m in part]
        if not msgs:
            continue
        pipe = redis.pipeline(transaction=False)
        for m in msgs:
            pipe.set(KEY_PREFIX + (m.key or b"").decode(), m.value, ex=settings.redis.rec_ttl_s)
        await pipe.execute()
        await consumer.commit()
        progress.written(len(msgs))
    return progress.result()


def main(argv: list[str]) -> int:
    res = asyncio.run(run_bare(Settings.from_env(), int(argv[0])))
    print(json.dumps(asdict(res)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
