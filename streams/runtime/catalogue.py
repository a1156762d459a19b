"""Which item ids the worker knows, so that events on unknown items can be flagged.

Known: items of the offline seed, upserts this worker consumed, and (for the others, since
``sidstream-items`` partitions are split between workers) the catalogue mirror in Redis. Events on
unknown items are accepted (a catalogue upsert may simply be late) and counted in
``sidstream_events_unknown_item_total``. At most ``max_items`` ids are remembered
(``SIDSTREAM_CATALOGUE_MAX_ITEMS``): past it new ids are not, and the Redis mirror answers for
them on each check (one ``MGET`` per micro-batch, as for any item not known here).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streams.contracts.events import Id
from streams.contracts.output import item_key


class Catalogue:
    def __init__(self, known: Iterable[Id] = (), max_items: int = 1_000_000) -> None:
        self.max_items = max_items
        self.known: set[Id] = set()
        self.add(known)

    def __len__(self) -> int:
        return len(self.known)

    def add(self, items: Iterable[Id]) -> None:
        """Remember ``items``, as many as fit under ``max_items``."""
        known = self.known
        for item in items:
            if len(known) >= self.max_items:
                return
            known.add(item)

    async def unknown(self, client: aioredis.Redis, items: set[Id]) -> set[Id]:
        """Items neither known locally nor in the Redis mirror (empty if Redis cannot tell)."""
        misses = [i for i in items if i not in self.known]
        if not misses:
            return set()
        try:
            docs = await client.mget([item_key(i) for i in misses])
        except (RedisError, OSError):
            return set()
        found = {i for i, doc in zip(misses, docs, strict=True) if doc is not None}
        self.add(found)
        return set(misses) - found
