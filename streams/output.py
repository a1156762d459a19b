"""Redis output: the recommendation payload contract and the batched, retrying writer.

Key ``sidstream:rec:{user_id}`` holds a JSON string (see README "Redis output"). The writer keeps
only the latest payload per user while Redis is unreachable, retries with exponential backoff,
and flushes everything pending in one pipeline once Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streams.events import Id
from streams.metrics import Metrics
from streams.recall import Candidate

log = logging.getLogger(__name__)

REC_PREFIX = "sidstream:rec:"
ITEM_PREFIX = "sidstream:item:"


def rec_key(user_id: Id) -> str:
    return f"{REC_PREFIX}{user_id}"


def item_key(item_id: Id) -> str:
    return f"{ITEM_PREFIX}{item_id}"


def build_payload(user_id: Id, items: Sequence[Candidate], model_version: str,
                  updated_ms: int, event_ts: int) -> str:
    """The JSON string stored under :func:`rec_key`; item ids keep their producer type."""
    return json.dumps({
        "user_id": user_id,
        "items": [{"item_id": c.item_id, "score": c.score, "source": c.source} for c in items],
        "model_version": model_version,
        "updated_ms": updated_ms,
        "event_ts": event_ts,
    }, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class RecList:
    """One user's ranked list, ready to write."""

    user_id: Id
    items: tuple[Candidate, ...]
    event_ts: int  # latest event behind this list (for freshness)


class RecWriter:
    """Writes lists in one pipeline per batch; never raises on Redis outages."""

    def __init__(self, client: aioredis.Redis, metrics: Metrics, ttl_s: int, model_version: str,
                 retries: int = 5, backoff_s: float = 0.1) -> None:
        self.client = client
        self.metrics = metrics
        self.ttl_s = ttl_s
        self.model_version = model_version
        self.retries = retries
        self.backoff_s = backoff_s
        self.pending: dict[Id, RecList] = {}
        self.healthy = True

    async def write(self, lists: Sequence[RecList]) -> int:
        """Queue ``lists`` (latest per user wins) and try to flush; returns lists written."""
        for rec in lists:
            self.pending[rec.user_id] = rec
        return await self.flush()

    async def flush(self) -> int:
        if not self.pending:
            return 0
        batch = dict(self.pending)
        for attempt in range(self.retries):
            try:
                written = await self._write_pipeline(list(batch.values()))
            except (RedisError, OSError) as exc:
                self.metrics.redis_errors.inc()
                self.healthy = False
                delay = min(self.backoff_s * 2**attempt, 2.0)
                log.warning("redis write failed (%s), attempt %d/%d, retry in %.2fs",
                            exc, attempt + 1, self.retries, delay)
                await asyncio.sleep(delay)
                continue
            for user in batch:  # keep newer lists queued meanwhile
                if self.pending.get(user) is batch[user]:
                    del self.pending[user]
            self.healthy = True
            self.metrics.pending_writes.set(len(self.pending))
            return written
        self.metrics.pending_writes.set(len(self.pending))
        log.error("redis unreachable: %d lists kept pending until it is back", len(self.pending))
        return 0

    async def _write_pipeline(self, lists: list[RecList]) -> int:
        now_ms = int(time.time() * 1000)
        async with self.client.pipeline(transaction=False) as pipe:
            for rec in lists:
                payload = build_payload(rec.user_id, rec.items, self.model_version, now_ms,
                                        rec.event_ts)
                pipe.set(rec_key(rec.user_id), payload, ex=self.ttl_s)
            await pipe.execute()
        done_s = time.time()
        for rec in lists:
            self.metrics.freshness.observe(max(0.0, done_s - rec.event_ts / 1000.0))
        self.metrics.recs_written.inc(len(lists))
        return len(lists)
