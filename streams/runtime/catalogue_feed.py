"""Every worker follows the whole catalogue topic, so its models know every new item.

``sidstream-items`` partitions are split between the workers of the group (the items agent
validates, dead-letters and mirrors upserts to Redis for its share). The models, though, live in
each worker: a new item must get a SID, a trie leaf and a ranker feature row in *all* of them, or
it would be recallable for some users only. So each worker also runs this feed: a plain
consumer without a group, assigned every partition, reading from the beginning (an item already
known keeps its SID, so a replay costs little) and applying upserts in micro-batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from models.data.dataset import ItemMeta
from streams.contracts.events import ItemUpsert, Limits, Rejected, parse_item
from streams.contracts.ids import model_item_id
from streams.metrics import Metrics
from streams.pipeline.model_set import ModelSet, UpsertLog, apply_upserts, embed_missing
from streams.settings import ITEMS_TOPIC, Settings

log = logging.getLogger(__name__)


def item_meta(item: ItemUpsert) -> Any:
    """A validated upsert as the models' ``ItemMeta`` (None for non-integer item ids)."""

    mid = model_item_id(item.item_id)
    if mid is None:
        return None
    return ItemMeta(mid, item.title, item.brand, tuple(tuple(p) for p in item.categories),
                    item.price)


def parse_records(values: list[bytes | None], limits: Limits) -> list[Any]:
    """Valid upserts among raw ``values`` as ``ItemMeta``, the latest per item (invalid ones
    are the items agent's to dead-letter)."""
    metas = {}
    for raw in values:
        try:
            meta = item_meta(parse_item(raw, limits))
        except Rejected:
            continue
        if meta is not None:
            metas[meta.item_id] = meta
    return list(metas.values())


async def apply_records(values: list[bytes | None], models: Callable[[], ModelSet],
                        upserts: UpsertLog, limits: Limits, lock: asyncio.Lock | None = None
                        ) -> int:
    """Parse, embed new items' texts in a thread, apply on the loop (to the models serving
    *then*: a hot swap may happen meanwhile) holding ``lock``, the pipeline's (its search
    reads the trie in a thread); returns the number of items applied."""
    metas = parse_records(values, limits)
    if not metas:
        return 0
    vectors = await asyncio.to_thread(embed_missing, models(), metas)
    async with lock or contextlib.nullcontext():
        apply_upserts(models(), metas, upserts, vectors)
    return len(metas)


class CatalogueFeed:
    def __init__(self, settings: Settings, models: Callable[[], ModelSet], upserts: UpsertLog,
                 limits: Limits, metrics: Metrics, lock: asyncio.Lock | None = None) -> None:
        self.settings, self.models, self.upserts = settings, models, upserts
        self.limits, self.metrics, self.lock = limits, metrics, lock
        self.applied = 0
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers,
                                    group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest",
                                    fetch_max_wait_ms=self.settings.kafka.fetch_max_wait_ms * 10,
                                    client_id=f"{self.settings.kafka.app_id}-catalogue-feed")
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic(ITEMS_TOPIC) or range(
                self.settings.kafka.topic_partitions)
            tps = [TopicPartition(ITEMS_TOPIC, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                values = [m.value for msgs in batches.values() for m in msgs]
                if values:
                    n = await apply_records(values, self.models, self.upserts, self.limits,
                                            self.lock)
                    self.applied += n
                    self.metrics.catalogue_models.inc(n)
                elif not self.caught_up.is_set():
                    self.caught_up.set()
                    log.info("catalogue feed caught up: %d upserts applied", self.applied)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
