"""What the agents do with a micro-batch: plain async functions over a :class:`Runtime`.

A micro-batch goes through two stages. On the event loop (``handle_event_batch``): validation,
state, co-visitation/popularity, the cheap recall channels, the changelog and the DLQ. Then the
model stage (``model_stage``, fed by a one-job queue): the generative search (in the search
process), ranking in a worker thread, the Redis write, and only then are its offsets
committable. The loop, the search and the ranking work on three consecutive jobs at once. While
the models lag, each new micro-batch joins the job waiting for them (``submit``, up to
``SIDSTREAM_MODEL_BATCH_MAX`` users): batches grow, not queues or memory.

State writes go to the changelog partition of the event that caused them (``put_state``):
faust's default would use the *last* event of a micro-batch that spans partitions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from faust.types import EventT, TopicT
from redis.exceptions import RedisError

from streams.contracts.events import Rejected, parse_item
from streams.contracts.output import item_key
from streams.metrics import Metrics
from streams.pipeline.batch import Job, Pipeline, Record, Reject
from streams.runtime.catalogue import Catalogue
from streams.runtime.health import Health
from streams.runtime.model_watcher import ModelWatcher
from streams.runtime.offsets import ProcessedOffsets
from streams.runtime.redis_writer import RecWriter
from streams.settings import Settings

log = logging.getLogger(__name__)

REASON_HEADER = "sidstream-reason"


@dataclass
class StageJob:
    """A micro-batch between the two stages."""

    job: Job
    events: list[EventT]  # marked processed once their lists are written
    start: float  # perf_counter when the batch's handling began
    items: set[Any]  # items of the applied events (unknown-item check)

    def absorb(self, later: StageJob, cap: int) -> bool:
        """Join a later micro-batch to this one while it waits for the models (at most ``cap``
        users): while the models lag, batches grow instead of the queue."""
        if len(self.job.states) + len(later.job.states) > cap or not self.job.absorb(later.job):
            return False
        self.events += later.events
        self.items |= later.items
        return True


@dataclass
class Runtime:
    """What the agents share: the pipeline, the Redis writer and the topics."""

    settings: Settings
    pipeline: Pipeline
    writer: RecWriter
    redis: aioredis.Redis
    metrics: Metrics
    dlq: TopicT
    table: Any  # faust.Table; Any because faust's generic Table type is awkward to name
    health: Health
    catalogue: Catalogue
    processed: ProcessedOffsets
    watcher: ModelWatcher
    inflight: int = 0  # micro-batches being handled (graceful shutdown waits for them)
    # held while the model stage runs (in a thread, see ``model_stage``) and by everything on
    # the loop that changes what it reads: model swaps, catalogue upserts
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # prepared micro-batches waiting for the model stage (bounded: backpressure)
    jobs: asyncio.Queue[StageJob] = field(default_factory=lambda: asyncio.Queue(1))


def record_of(event: EventT) -> Record:
    msg = event.message
    return Record(msg.key, msg.value, msg.topic, msg.partition, msg.offset)


def put_state(table: Any, partition: int, key: str, value: dict[str, Any]) -> None:
    """Set ``table[key]`` and changelog it to ``partition`` (the source event's partition)."""
    table.data[key] = value
    table.send_changelog(partition, key, value)


async def send_rejects(rt: Runtime, rejects: list[Reject]) -> None:
    """Original bytes to the DLQ, the reason and origin in headers."""
    for rej in rejects:
        rec = rej.record
        headers = [(REASON_HEADER, rej.reason.encode()),
                   ("sidstream-detail", rej.detail.encode()[:1000]),
                   ("sidstream-source-topic", rec.topic.encode()),
                   ("sidstream-source-partition", str(rec.partition).encode()),
                   ("sidstream-source-offset", str(rec.offset).encode())]
        await rt.dlq.send(key=rec.key, value=rec.value or b"", headers=headers)
        log.debug("rejected %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, rej.reason)


async def handle_event_batch(rt: Runtime, events: list[EventT]) -> None:
    """One micro-batch, shielded from cancellation: faust acks a batch whose handling was
    cancelled, so it must never stop half-way (state written, list not, or the reverse)."""
    rt.inflight += 1
    try:
        await asyncio.shield(_handle_event_batch(rt, events))
    finally:
        rt.inflight -= 1


async def _handle_event_batch(rt: Runtime, events: list[EventT]) -> None:
    events = rt.processed.admit(events)  # in partition order, none after a dropped message
    if not events:
        return
    start = time.perf_counter()
    outcome, job = rt.pipeline.prepare([record_of(e) for e in events], rt.table.get)
    if outcome.rejects:
        with_stage = time.perf_counter()
        await send_rejects(rt, outcome.rejects)
        rt.metrics.stage.labels("dlq").observe(time.perf_counter() - with_stage)
    for key, (partition, state) in outcome.states.items():
        put_state(rt.table, partition, key, state)
    await submit(rt, StageJob(job, events, start, outcome.items))


async def submit(rt: Runtime, job: StageJob) -> None:
    """Hand a prepared batch to the model stage: it joins the batch already waiting there if
    it can (``StageJob.absorb``), else it waits for room in the queue."""
    if not rt.jobs.empty():
        queued = rt.jobs.get_nowait()  # no await until it is back: nothing else sees the gap
        merged = queued.absorb(job, rt.settings.ingest.model_batch_max)
        rt.jobs.put_nowait(queued)
        if merged:
            rt.metrics.merged_batches.inc()
            return
    rt.inflight += 1
    stalled = rt.jobs.full()
    rt.processed.stalled += stalled
    try:
        await rt.jobs.put(job)
    except BaseException:
        rt.inflight -= 1
        raise
    finally:
        if stalled:
            rt.processed.resume()


async def model_stage(rt: Runtime) -> None:
    """The second stage, forever: a search loop and a rank loop (see their docs); a failure in
    either stops both and marks the worker not live."""
    searched: asyncio.Queue[StageJob] = asyncio.Queue(1)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_search_loop(rt, searched))
            group.create_task(_rank_loop(rt, searched))
    except Exception as group:  # a bug or a dead search process: nothing more gets written
        exc = group.exceptions[0] if isinstance(group, ExceptionGroup) else group
        log.error("model stage failed; the worker is no longer live", exc_info=exc)
        rt.health.failed = f"model stage: {exc!r}"[:300]
        raise


async def _search_loop(rt: Runtime, searched: asyncio.Queue[StageJob]) -> None:
    """Submit the next job's generative search as soon as the one before it is done: the
    search process never waits for the ranking, and the job that waited meanwhile has gathered
    every micro-batch that came (``submit``): one larger search."""
    while True:
        sj = await rt.jobs.get()
        rt.metrics.job_users.observe(len(sj.job.states))
        start = time.perf_counter()
        rt.pipeline.start(sj.job)
        pending = sj.job.pending
        if pending is not None and pending.result is not None:
            await asyncio.to_thread(pending.wait)
            rt.metrics.stage.labels("search").observe(time.perf_counter() - start)
        await searched.put(sj)


async def _rank_loop(rt: Runtime, searched: asyncio.Queue[StageJob]) -> None:
    """Rank, write and commit each searched job, in order, while the next one is searched."""
    while True:
        sj = await searched.get()
        await asyncio.shield(_finish(rt, sj))
        rt.inflight -= 1


async def _finish(rt: Runtime, sj: StageJob) -> None:
    async with rt.lock:  # torch and onnxruntime release the GIL: the loop keeps going
        lists = await asyncio.to_thread(rt.pipeline.finish, sj.job)
    redis_start = time.perf_counter()
    await rt.writer.write(lists)
    if sj.items:
        unknown = await rt.catalogue.unknown(rt.redis, sj.items)
        rt.metrics.unknown_items.inc(len(unknown))
    now = time.perf_counter()
    rt.metrics.stage.labels("redis").observe(now - redis_start)
    if sj.events:
        rt.metrics.stage.labels("batch").observe(now - sj.start)
    mark_processed(rt, sj.events)


async def run_deferred(rt: Runtime) -> None:
    """Recomputes the debounce postponed whose time has come (no new events needed)."""
    if not rt.pipeline.debounce.deferred:
        return
    _, job = rt.pipeline.prepare([], rt.table.get)
    if job.states:
        await submit(rt, StageJob(job, [], time.perf_counter(), set()))


async def drain(rt: Runtime, timeout_s: float = 10.0) -> bool:
    """Wait until every admitted micro-batch has its lists written (before partitions move)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while rt.inflight and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return not rt.inflight


async def swap_models(rt: Runtime) -> None:
    """Hot swap when a new artifact version is published (see ``streams.runtime.model_watcher``)."""
    new = await rt.watcher.poll(rt.pipeline.models)
    if new is not None:
        async with rt.lock:
            rt.pipeline.models = new
            rt.pipeline.generative.cache.clear()


def mark_processed(rt: Runtime, events: list[EventT]) -> None:
    """Only offsets marked here may be committed (see ``streams.runtime.faust_patches``)."""
    for ev in events:
        rt.processed.mark(ev.message.tp, ev.message.offset)


async def handle_item_batch(rt: Runtime, events: list[EventT]) -> None:
    """Validate catalogue upserts and mirror them to Redis (``sidstream:item:{id}``)."""
    events = rt.processed.admit(events)
    limits = rt.pipeline.limits  # parse_item uses its size and id bounds
    rejects, docs = [], {}
    for ev in events:
        rec = record_of(ev)
        try:
            item = parse_item(rec.value, limits)
        except Rejected as exc:
            rejects.append(Reject(rec, exc.reason, exc.detail))
            rt.metrics.invalid.labels(exc.reason).inc()
            continue
        rt.catalogue.add([item.item_id])
        docs[item_key(item.item_id)] = json.dumps(
            {"item_id": item.item_id, "title": item.title, "brand": item.brand,
             "categories": [list(p) for p in item.categories], "price": item.price})
    await send_rejects(rt, rejects)
    if docs:
        try:
            await rt.redis.mset(docs)
            rt.metrics.items.inc(len(docs))
        except (RedisError, OSError) as exc:
            rt.metrics.redis_errors.inc()
            log.warning("catalogue mirror write failed: %s", exc)
    mark_processed(rt, events)
