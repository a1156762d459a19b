"""The faust app: topics, the user-state table and thin agents around :class:`Pipeline`.

Agents only move records in and results out; the logic is in ``streams.pipeline``. Table writes
go to the changelog partition of the event that caused them (``put_state``): faust's default would
use the *last* event of a multi-partition micro-batch.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import redis.asyncio as aioredis
from faust.types import EventT, TopicT
from redis.exceptions import RedisError

from streams.events import Limits, Rejected, parse_item
from streams.metrics import Metrics
from streams.output import RecWriter, item_key
from streams.pipeline import Pipeline, Record, Reject
from streams.settings import DLQ_TOPIC, EVENTS_TOPIC, ITEMS_TOPIC, Settings

log = logging.getLogger(__name__)

TABLE_NAME = "user-state"
REASON_HEADER = "sidstream-reason"


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


def set_fetch_max_wait(ms: int) -> None:
    """Cap how long a fetch may wait for data (faust hard-codes 1,500 ms).

    Kafka answers a fetch as soon as data arrives, but Tansu holds it for the full wait, which
    would add ~0.4 s median latency; a short wait costs a few idle fetches per second on Kafka.
    """
    from faust.transport.drivers import aiokafka as driver

    cls = driver.AIOKafkaConsumerThread
    original = getattr(cls, "_sidstream_original_create", cls._create_worker_consumer)

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms  # read by AIOKafkaConsumer.start()
        return consumer

    cls._sidstream_original_create = original  # type: ignore[attr-defined]
    cls._create_worker_consumer = create  # type: ignore[method-assign]


def make_faust_app(settings: Settings) -> faust.App:
    set_fetch_max_wait(settings.fetch_max_wait_ms)
    return faust.App(
        settings.app_id,
        broker=settings.broker,
        store="memory://",
        datadir=str(settings.data_dir),
        autodiscover=False,
        web_enabled=False,
        processing_guarantee="at_least_once",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 5),
        broker_commit_interval=1.0,
        # Tansu reports a partition's end offset as the last batch's first offset + 1: with
        # single-record batches changelog recovery is exact.
        producer_max_batch_size=1 if settings.broker_kind == "tansu" else 16_384,
        producer_linger=0.0 if settings.broker_kind == "tansu" else 0.005,
    )


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
    start = time.perf_counter()
    outcome = rt.pipeline.process([record_of(e) for e in events], rt.table.get)
    if outcome.rejects:
        with_stage = time.perf_counter()
        await send_rejects(rt, outcome.rejects)
        rt.metrics.stage.labels("dlq").observe(time.perf_counter() - with_stage)
    for key, (partition, state) in outcome.states.items():
        put_state(rt.table, partition, key, state)
    redis_start = time.perf_counter()
    await rt.writer.write(outcome.lists)
    now = time.perf_counter()
    rt.metrics.stage.labels("redis").observe(now - redis_start)
    rt.metrics.stage.labels("batch").observe(now - start)


async def handle_item_batch(rt: Runtime, events: list[EventT]) -> None:
    """Validate catalogue upserts and mirror them to Redis (``sidstream:item:{id}``)."""
    limits = Limits(max_bytes=rt.settings.max_event_bytes, max_id_chars=rt.settings.max_id_chars)
    rejects, docs = [], {}
    for ev in events:
        rec = record_of(ev)
        try:
            item = parse_item(rec.value, limits)
        except Rejected as exc:
            rejects.append(Reject(rec, exc.reason, exc.detail))
            rt.metrics.invalid.labels(exc.reason).inc()
            continue
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


def micro_batches(stream: Any, settings: Settings) -> AsyncIterator[Sequence[EventT]]:
    """``stream.take_events``: like ``take`` but keeps each message's partition and offset."""
    it: AsyncIterator[Sequence[EventT]] = stream.take_events(settings.batch_max,
                                                             settings.batch_within_s)
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

    @app.timer(interval=1.0)
    async def housekeeping() -> None:
        await rt.writer.flush()  # lists kept pending while Redis was away
        assignment = app.consumer.assignment() if app.consumer else set()
        n_assigned = sum(1 for tp in assignment if tp.topic == EVENTS_TOPIC)
        rt.metrics.assigned.set(n_assigned)
        recovering = app.rebalancing or getattr(app, "in_recovery", False)
        rt.metrics.ready.set(1 if n_assigned and not recovering else 0)
        rt.metrics.users.set(len(rt.table.data))
        rt.metrics.covisit_items.set(len(rt.pipeline.covis))


def build_app(settings: Settings, pipeline: Pipeline, metrics: Metrics
              ) -> tuple[faust.App, Runtime]:
    """The faust app with its topics, table and agents, wired to ``pipeline``."""
    app = make_faust_app(settings)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    events_topic = app.topic(EVENTS_TOPIC, partitions=settings.topic_partitions, **raw)
    items_topic = app.topic(ITEMS_TOPIC, partitions=settings.topic_partitions, **raw)
    dlq = app.topic(DLQ_TOPIC, partitions=settings.topic_partitions, **raw)
    # keys and values are JSON on the changelog (faust's default for untyped tables)
    table = app.Table(TABLE_NAME, default=None, partitions=settings.topic_partitions)
    client = aioredis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    writer = RecWriter(client, metrics, settings.rec_ttl_s, pipeline.model_version,
                       settings.redis_retries, settings.redis_backoff_s)
    rt = Runtime(settings, pipeline, writer, client, metrics, dlq, table)
    register_agents(app, rt, events_topic, items_topic)
    return app, rt
