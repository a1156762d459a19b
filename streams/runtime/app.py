"""The faust app: topics, the user-state table, thin agents and the housekeeping timer.

Agents only move micro-batches into ``streams.runtime.stages``; the logic is in
``streams.pipeline.batch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust
import redis.asyncio as aioredis
from faust.types import EventT, TopicT
from redis.exceptions import RedisError

from streams.metrics import Metrics
from streams.pipeline.batch import Pipeline
from streams.runtime.catalogue import Catalogue
from streams.runtime.catalogue_feed import CatalogueFeed
from streams.runtime.faust_patches import (
    EagerTableManager,
    guard_acks,
    reseek_skipped,
    set_fetch_max_wait,
)
from streams.runtime.health import Health
from streams.runtime.memory import MemoryGauges, Sources, table_cache, table_users
from streams.runtime.model_watcher import ModelWatcher
from streams.runtime.offsets import ProcessedOffsets
from streams.runtime.recovery_check import guard_recovery
from streams.runtime.redis_writer import RecWriter
from streams.runtime.stages import (
    Runtime,
    drain,
    handle_event_batch,
    handle_item_batch,
    model_stage,
    run_deferred,
    swap_models,
)
from streams.runtime.state_table import make_table, store_url
from streams.settings import DLQ_TOPIC, EVENTS_TOPIC, ITEMS_TOPIC, USERS_TOPIC, Settings

log = logging.getLogger(__name__)


def make_faust_app(settings: Settings) -> faust.App:
    set_fetch_max_wait(settings.kafka.fetch_max_wait_ms)
    return faust.App(
        settings.kafka.app_id,
        broker=settings.kafka.broker,
        store=store_url(settings),  # the user-state table's (streams/runtime/state_table.py)
        datadir=str(settings.worker.data_dir),
        table_standby_replicas=settings.worker.standby_replicas,
        autodiscover=False,
        web_enabled=False,
        processing_guarantee="at_least_once",
        topic_partitions=settings.kafka.topic_partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=settings.kafka.heartbeat_interval_s,
        consumer_group_instance_id=settings.kafka.group_instance_id or None,
        broker_commit_interval=1.0,
        TableManager=EagerTableManager,
        # Tansu reports a partition's end offset as the last batch's first offset + 1: with
        # single-record batches changelog recovery is exact.
        producer_max_batch_size=1 if settings.kafka.broker_kind == "tansu" else 16_384,
        producer_linger=0.0 if settings.kafka.broker_kind == "tansu" else 0.005,
    )


def micro_batches(stream: Any, settings: Settings) -> AsyncIterator[Sequence[EventT]]:
    """``stream.take_events``: like ``take`` but keeps each message's partition and offset."""
    it: AsyncIterator[Sequence[EventT]] = stream.take_events(settings.ingest.batch_max,
                                                             settings.ingest.batch_within_s)
    return it


def register_agents(app: faust.App, rt: Runtime, events_topic: TopicT, items_topic: TopicT
                    ) -> None:
    settings = rt.settings

    @app.agent(events_topic, name="sidstream.events")
    async def process_events(stream: faust.StreamT) -> None:
        async for batch in micro_batches(stream, settings):
            await handle_event_batch(rt, list(batch))

    @app.agent(items_topic, name="sidstream.items")
    async def process_items(stream: faust.StreamT) -> None:
        async for batch in micro_batches(stream, settings):
            await handle_item_batch(rt, list(batch))

    @app.timer(interval=0.2)
    async def readiness() -> None:  # while not ready, become ready within 0.2 s of recovery
        if not rt.health.broker:
            await refresh_health(app, rt)

    @app.timer(interval=1.0)
    async def housekeeping() -> None:
        await refresh_health(app, rt)
        await reseek_skipped(app, rt.processed)
        await rt.writer.flush_due()  # lists kept pending while Redis was away
        await swap_models(rt)
        rt.metrics.users.set(len(rt.table.data))
        rt.metrics.covisit_items.set(len(rt.pipeline.covis))
        rt.metrics.refused_acks.set(rt.processed.refused)

    gauges = MemoryGauges(Sources(settings, rt.pipeline, lambda: table_users(rt.table),
                                  rt.catalogue, rt.writer, rt.watcher.upserts,
                                  state_cache=lambda: table_cache(rt.table)), rt.metrics)

    @app.timer(interval=settings.worker.memory_refresh_s)
    async def memory_gauges() -> None:  # sidstream_memory_* (streams/runtime/memory.py)
        gauges.refresh()

    if settings.ingest.debounce_ms > 0:
        @app.timer(interval=max(0.02, settings.ingest.debounce_ms / 2000.0))
        async def deferred_recomputes() -> None:
            await run_deferred(rt)

    @app.task
    async def models_and_output() -> None:  # the second stage of every micro-batch
        await model_stage(rt)

    feed = CatalogueFeed(settings, lambda: rt.pipeline.models, rt.watcher.upserts,
                         rt.pipeline.limits, rt.metrics, rt.lock)

    @app.task
    async def follow_catalogue() -> None:
        await feed.run()

    async def forget_deferred(sender: Any, *args: Any, **kwargs: Any) -> None:
        rt.pipeline.forget_deferred()  # those users' partitions may have moved
        if not await drain(rt):  # their new owner must not see lists land after its own
            log.warning("rebalance: %d micro-batches still in the model stage", rt.inflight)

    app.on_partitions_revoked.connect(forget_deferred)  # type: ignore[arg-type]

    async def flush_on_shutdown(sender: Any, **kwargs: Any) -> None:
        """SIGTERM, after faust stopped fetching: let the last micro-batch finish, commit its
        offsets (so a successor redoes nothing), then a last try at pending Redis writes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while loop.time() < deadline:  # messages already in a stream or the take buffer
            unacked = [m for m in getattr(app.consumer, "_unacked_messages", ()) if not m.acked]
            if not unacked and not rt.inflight:
                break
            await asyncio.sleep(0.02)
        # a commit already running (the periodic one) makes faust's commit() wait for it and
        # return without committing what was applied since: commit once more after it
        for _ in range(2):
            await app.consumer.commit()
        if rt.writer.pending:
            rt.writer.next_try = 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.writer.flush(), timeout=5.0)
        log.info("shutdown: offsets committed, %d lists still pending", len(rt.writer.pending))

    app.on_before_shutdown.connect(flush_on_shutdown)  # type: ignore[arg-type]


def consumer_lag(app: faust.App, assignment: set[Any]) -> int:
    """Sum over assigned event partitions of high watermark - next offset to read."""
    lag = 0
    read = getattr(app.consumer, "_read_offset", {})
    for tp in assignment:
        if tp.topic != EVENTS_TOPIC:
            continue
        try:
            high = app.consumer.highwater(tp)
        except Exception:  # partition not fetched yet: no watermark known
            continue
        position = read.get(tp)
        if high is not None and position is not None:
            lag += max(0, high - (position + 1))
    return lag


async def refresh_health(app: faust.App, rt: Runtime) -> None:
    rt.health.beat()
    assignment = app.consumer.assignment() if app.consumer else set()
    n_assigned = sum(1 for tp in assignment if tp.topic == EVENTS_TOPIC)
    recovering = app.rebalancing or getattr(app, "in_recovery", False)
    rt.health.broker = bool(n_assigned) and not recovering
    rt.metrics.assigned.set(n_assigned)
    rt.metrics.lag.set(consumer_lag(app, assignment))
    rt.metrics.ready.set(1 if rt.health.broker else 0)
    if rt.writer.healthy and not rt.writer.pending:
        try:
            rt.health.redis = bool(await rt.redis.ping())
        except (RedisError, OSError):
            rt.health.redis = False
    else:
        rt.health.redis = rt.writer.healthy


def build_app(settings: Settings, pipeline: Pipeline, metrics: Metrics, health: Health,
              catalogue: Catalogue, watcher: ModelWatcher | None = None
              ) -> tuple[faust.App, Runtime]:
    """The faust app with its topics, table and agents, wired to ``pipeline``."""
    app = make_faust_app(settings)
    # a micro-batch changelogs up to batch_max states at once: past faust's 100-record buffer,
    # every put waits for a send (a task and a timeout per record) and logs a warning
    app.producer.buffer.max_messages = max(100, 4 * settings.ingest.batch_max)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    # profiles share the events agent: one writer of the user state (streams/contracts/profiles.py)
    events_topic = app.topic(EVENTS_TOPIC, USERS_TOPIC, partitions=settings.kafka.topic_partitions,
                             **raw)
    items_topic = app.topic(ITEMS_TOPIC, partitions=settings.kafka.topic_partitions, **raw)
    dlq = app.topic(DLQ_TOPIC, partitions=settings.kafka.topic_partitions, **raw)
    table = make_table(app, settings, metrics)
    if settings.worker.store == "rocksdb":
        guard_recovery()  # local state ahead of the changelog is rebuilt, not served
    client = aioredis.from_url(settings.redis.redis_url, socket_timeout=5, socket_connect_timeout=2)
    writer = RecWriter(client, metrics, settings.redis.rec_ttl_s, pipeline.model_version,
                       settings.redis.redis_retries, settings.redis.redis_backoff_s,
                       max_pending=settings.redis.redis_pending_max)
    processed = ProcessedOffsets([EVENTS_TOPIC, ITEMS_TOPIC, USERS_TOPIC])
    guard_acks(processed)
    rt = Runtime(settings, pipeline, writer, client, metrics, dlq, table, health, catalogue,
                 processed, watcher or ModelWatcher(settings, metrics))
    register_agents(app, rt, events_topic, items_topic)
    return app, rt
