"""Redis output: the batched, retrying writer of the lists (``streams/contracts/output.py``).

The writer keeps only the latest payload per user while Redis is unreachable, retries with
exponential backoff, and flushes everything pending in one pipeline once Redis is back. At most
``max_pending`` lists wait (``SIDSTREAM_REDIS_PENDING_MAX``): a write that would hold more waits
until Redis takes them (back-pressure: the model stage stops, then the consumer; no list is
dropped), counted in ``sidstream_redis_backpressure_seconds_total``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streams.contracts.events import Id
from streams.contracts.output import RecList, build_payload, rec_key
from streams.metrics import Metrics

log = logging.getLogger(__name__)

class RecWriter:
    """Writes lists in one pipeline per batch; never raises on Redis outages.

    Healthy: a failed write is retried ``retries`` times inline with exponential backoff. Once
    that fails the writer is unhealthy: batches only queue their lists (latest per user, at most
    ``max_pending``: past it :meth:`write` waits for Redis) and :meth:`flush_due`, called by the
    worker's 1 s timer, tries again with a growing delay (at most ``max_backoff_s``) until Redis
    answers.
    """

    def __init__(self, client: aioredis.Redis, metrics: Metrics, ttl_s: int, model_version: str,
                 retries: int = 5, backoff_s: float = 0.1, max_backoff_s: float = 5.0,
                 max_pending: int = 100_000) -> None:
        self.client = client
        self.metrics = metrics
        self.ttl_s = ttl_s
        self.model_version = model_version
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_pending = max_pending
        self.pending: dict[Id, RecList] = {}
        self.healthy = True
        self.failures = 0  # consecutive failed attempts
        self.next_try = 0.0  # monotonic time of the next attempt while unhealthy
        # one flush at a time: two overlapping pipelines (a batch's write and the timer's retry)
        # could land in either order and leave a user's older list in Redis
        self._flushing = asyncio.Lock()

    async def write(self, lists: Sequence[RecList]) -> int:
        """Queue ``lists`` (latest per user wins) and try to flush; returns lists written.
        Waits first while they would not fit under ``max_pending`` (see :meth:`_room`)."""
        await self._room(lists)
        for rec in lists:
            old = self.pending.get(rec.user_id)
            # a list replaced before it was written: the newer one answers its events too
            self.pending[rec.user_id] = rec if old is None else replace(
                rec, events=rec.events + old.events)
        if self.healthy:
            return await self.flush()
        self.metrics.pending_writes.set(len(self.pending))
        return await self.flush_due()

    async def _room(self, lists: Sequence[RecList]) -> None:
        """Back-pressure: wait, retrying Redis when due, until the users of ``lists`` fit
        under ``max_pending`` (users already pending take no more room)."""
        if len(self.pending) + len(lists) <= self.max_pending:
            return  # the common case, without building a set

        def over() -> bool:
            new = {r.user_id for r in lists} - self.pending.keys()
            return bool(self.pending) and len(self.pending) + len(new) > self.max_pending

        if not over():
            return
        log.warning("redis away: %d lists pending (at most %d): the stream waits for it",
                    len(self.pending), self.max_pending)
        start = time.monotonic()
        while over():
            await asyncio.sleep(min(1.0, max(0.01, self.next_try - time.monotonic())))
            await self.flush_due()
        self.metrics.backpressure.inc(time.monotonic() - start)

    async def flush_due(self) -> int:
        """Flush if there is something pending and the backoff delay has passed."""
        if not self.pending or time.monotonic() < self.next_try:
            return 0
        return await self.flush()

    async def flush(self) -> int:
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        if not self.pending:
            return 0
        batch = dict(self.pending)
        attempts = self.retries if self.healthy else 1
        for attempt in range(attempts):
            try:
                written = await self._write_pipeline(list(batch.values()))
            except (RedisError, OSError) as exc:
                delay = self._failed(exc)
                if attempt + 1 < attempts:
                    await asyncio.sleep(delay)
                continue
            for user, rec in batch.items():  # keep lists that were replaced meanwhile
                current = self.pending.get(user)
                if current is rec:
                    del self.pending[user]
                elif current is not None:  # it took over rec's events, answered just now
                    self.pending[user] = replace(current, events=current.events - rec.events)
            if not self.healthy:
                log.info("redis is back: %d pending lists written", written)
            self.healthy, self.failures = True, 0
            self.metrics.pending_writes.set(len(self.pending))
            return written
        self.metrics.pending_writes.set(len(self.pending))
        return 0

    def _failed(self, exc: Exception) -> float:
        self.metrics.redis_errors.inc()
        self.failures += 1
        delay = min(self.backoff_s * 2 ** (self.failures - 1), self.max_backoff_s)
        self.next_try = time.monotonic() + delay
        if self.healthy or self.failures % 10 == 0:
            log.warning("redis write failed (%s); %d lists pending, next try in %.1fs",
                        exc, len(self.pending), delay)
        if self.failures >= self.retries:
            self.healthy = False
        return delay

    async def _write_pipeline(self, lists: list[RecList]) -> int:
        now_ms = int(time.time() * 1000)
        async with self.client.pipeline(transaction=False) as pipe:
            for rec in lists:
                payload = build_payload(rec.user_id, rec.items,
                                        rec.model_version or self.model_version, now_ms,
                                        rec.event_ts)
                pipe.set(rec_key(rec.user_id), payload, ex=self.ttl_s)
            await pipe.execute()
        done_s = time.time()
        for rec in lists:
            if rec.event_ts > 0:  # 0: a list made from a profile alone, no event behind it
                self.metrics.freshness.observe(max(0.0, done_s - rec.event_ts / 1000.0))
        self.metrics.recs_written.inc(len(lists))
        answered = [rec.events for rec in lists if rec.events > 0]
        if answered:
            self.metrics.accounted.labels("list_written").inc(len(answered))
            self.metrics.accounted.labels("coalesced").inc(sum(answered) - len(answered))
        return len(lists)
