"""Memory accounting: every structure of a worker that grows with its users or items, with the
setting that bounds it and an estimate of its bytes (the ``sidstream_memory_*`` gauges).

Components (``streams.metrics.MEMORY_COMPONENTS``), entries counted in, bound by:

- ``user_state``: users held in the heap (the memory store's whole table; the rocksdb store's
  states awaiting their changelog acknowledgement), ``SIDSTREAM_STATE_MAX_USERS`` (soft: the
  table is never evicted, the worker warns past it);
- ``covisit``: item rows, ``SIDSTREAM_COVISIT_MAX_ITEMS``; ``popularity``: items,
  ``SIDSTREAM_POPULARITY_MAX_ITEMS``; ``coldstart_bandit``: SKUs with statistics,
  ``SIDSTREAM_COLDSTART_MAX_ITEMS``;
- ``recall_cache``: users, ``SIDSTREAM_RECALL_CACHE_USERS``; ``prefix_cache``: history tokens,
  ``SIDSTREAM_PREFIX_CACHE_TOKENS`` (in the search process when there is one: its answers carry
  the size, ``models/recall/search_process.py``);
- ``state_cache`` (rocksdb store only): bytes in RocksDB's shared block cache, the memtables
  charged to it included, ``SIDSTREAM_STATE_MEMORY_MB`` (its entries and bound are bytes too);
- ``debounce``: users with a recompute time (or deferred), ``SIDSTREAM_DEBOUNCE_MAX_USERS``;
- ``catalogue``: known item ids, ``SIDSTREAM_CATALOGUE_MAX_ITEMS``; ``upsert_log``: catalogue
  upserts kept for model swaps, ``SIDSTREAM_UPSERT_LOG_MAX_ITEMS``; ``redis_pending``: lists
  waiting for Redis, ``SIDSTREAM_REDIS_PENDING_MAX``.

Bytes: tensors from their shapes (exact but for views, see ``models/recall/prefix_cache.py``);
everything else is ``len(container) x`` the mean *deep size* of a sample of its entries
(:func:`deep_size`: ``sys.getsizeof`` of the entry's key, value and everything they hold,
numpy arrays by ``nbytes``) plus the container itself. The sample is the ``SAMPLE`` oldest and
newest entries (insertion order), so a refresh costs the same at 10 or 10 million entries.
Objects an entry shares with others (interned ids, the same item id in many rows) are counted
in each: an estimate from above. Against ``tracemalloc`` (100k synthetic entries of each, the
README's "Worker memory" table) the estimates are within 5 %, co-visitation rows and the upsert
log 30 % above (their ids and strings are shared). The gauges are refreshed every
``SIDSTREAM_MEMORY_REFRESH_S`` on the event loop (a few milliseconds), never per event.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from streams.metrics import Metrics
from streams.pipeline.batch import Pipeline
from streams.pipeline.model_set import UpsertLog
from streams.runtime.catalogue import Catalogue
from streams.runtime.redis_writer import RecWriter
from streams.settings import Settings

log = logging.getLogger(__name__)

SAMPLE = 32  # entries measured at each end of a container
_ATOMS = (int, float, bool, str, bytes, type(None))


@dataclass(frozen=True, slots=True)
class Usage:
    entries: int
    bound: int  # the entries the setting allows (0: no bound)
    bytes: int


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """``sys.getsizeof`` of ``obj`` and of everything it holds, each object once."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, _ATOMS):
        return sys.getsizeof(obj)
    if isinstance(obj, np.ndarray):
        return sys.getsizeof(obj) + (obj.nbytes if obj.base is not None else 0)
    size = sys.getsizeof(obj)
    if isinstance(obj, Mapping):
        return size + sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return size + sum(deep_size(x, seen) for x in obj)
    slots = getattr(type(obj), "__slots__", ())
    held = [getattr(obj, s) for s in ([slots] if isinstance(slots, str) else slots)
            if hasattr(obj, s)]
    if hasattr(obj, "__dict__"):
        held.append(obj.__dict__)
    return size + sum(deep_size(x, seen) for x in held)


def sampled_bytes(container: Any) -> int:
    """Bytes of a dict or set: its own, plus its length x the mean deep size of ``SAMPLE``
    entries from each end (keys and values; a set's first ``2 x SAMPLE``)."""
    n = len(container)
    own = sys.getsizeof(container)
    if not n:
        return own
    try:
        if isinstance(container, Mapping):
            keys = list(islice(iter(container), SAMPLE))
            if n > SAMPLE:
                keys += islice(reversed(container), min(SAMPLE, n - SAMPLE))
            sizes = [deep_size(k) + deep_size(container[k]) for k in keys]
        else:
            sizes = [deep_size(x) for x in islice(iter(container), 2 * SAMPLE)]
    except (RuntimeError, KeyError):  # changed while read (another thread): next refresh
        return own
    return own + int(sum(sizes) / len(sizes) * n)


def _bytes(*containers: Any) -> int:
    return sum(sampled_bytes(c) for c in containers)


@dataclass
class Sources:
    """What a worker's memory is made of (``users``: the heap-held parts of the table)."""

    settings: Settings
    pipeline: Pipeline
    users: Callable[[], Sequence[Mapping[Any, Any]]] = lambda: ()
    catalogue: Catalogue | None = None
    writer: RecWriter | None = None
    upserts: UpsertLog | None = None
    state_cache: Callable[[], Usage | None] = lambda: None  # the disk store's, see table_cache


def channel_usage(src: Sources) -> dict[str, Usage]:
    """The recall channels' statistics: co-visitation, popularity, the cold-start bandit."""
    p = src.pipeline
    cv, pop, bandit = p.covis, p.popularity, p.coldstart.bandit
    return {
        "covisit": Usage(len(cv.rows), cv.config.max_items,
                         _bytes(*cv.structures())),
        "popularity": Usage(len(pop.items), pop.max_items, _bytes(pop.items)),
        "coldstart_bandit": Usage(max(len(bandit.clicks), len(bandit.orders)),
                                  p.coldstart.max_items, _bytes(bandit.clicks, bandit.orders)),
    }


def cache_usage(src: Sources) -> dict[str, Usage]:
    """The generative recall's caches: results per user, encoded histories (prefix cache)."""
    p, models = src.pipeline, src.settings.models
    gen = p.generative
    with gen.lock:  # the model stage's thread updates it
        recall = Usage(len(gen.cache), gen.cache_users, _bytes(gen.cache))
    _, tokens, nbytes = prefix_stats(p.models.recaller)
    # token-level recallers have one (``prefix_cache``: None in the parent of a search process)
    bound = models.prefix_cache_tokens if hasattr(p.models.recaller, "prefix_cache") else 0
    return {"recall_cache": recall, "prefix_cache": Usage(tokens, bound, nbytes)}


def prefix_stats(recaller: Any) -> tuple[int, int, int]:
    """(entries, tokens, bytes) of a recaller's prefix cache: reported by its search process,
    or its own (in this process); zeros without one."""
    stats = getattr(recaller, "cache_stats", None)
    if stats is not None:
        return stats
    cache = getattr(recaller, "prefix_cache", None)
    return cache.stats() if cache is not None else (0, 0, 0)


def runtime_usage(src: Sources) -> dict[str, Usage]:
    """Per-user and per-item structures of the runtime: the table, the debounce, the
    catalogue, the upsert log, the lists waiting for Redis."""
    s, p = src.settings, src.pipeline
    users = src.users()
    deb = p.debounce
    out = {
        "user_state": Usage(len(users[0]) if users else 0, s.state.state_max_users,
                            _bytes(*users)),
        "debounce": Usage(max(len(deb.last), len(deb.deferred)), deb.max_users,
                          _bytes(deb.last, deb.deferred, p.unanswered)),
    }
    cache = src.state_cache()
    if cache is not None:
        out["state_cache"] = cache
    if src.catalogue is not None:
        out["catalogue"] = Usage(len(src.catalogue), src.catalogue.max_items,
                                 _bytes(src.catalogue.known))
    if src.upserts is not None:
        out["upsert_log"] = Usage(len(src.upserts), src.upserts.max_items,
                                  _bytes(src.upserts.items))
    if src.writer is not None:
        out["redis_pending"] = Usage(len(src.writer.pending), src.writer.max_pending,
                                     _bytes(src.writer.pending))
    return out


def measure(src: Sources) -> dict[str, Usage]:
    """Every component's usage now."""
    return {**runtime_usage(src), **channel_usage(src), **cache_usage(src)}


class MemoryGauges:
    """Sets the ``sidstream_memory_*`` gauges from :func:`measure` (call :meth:`refresh` on a
    timer); warns once each time a component goes past its bound."""

    def __init__(self, sources: Sources, metrics: Metrics) -> None:
        self.sources = sources
        self.metrics = metrics
        self.over: set[str] = set()

    def refresh(self) -> dict[str, Usage]:
        usage = measure(self.sources)
        m = self.metrics
        for name, u in usage.items():
            m.memory_entries.labels(name).set(u.entries)
            m.memory_bound.labels(name).set(u.bound)
            m.memory_bytes.labels(name).set(u.bytes)
        self._warn(usage)
        return usage

    def _warn(self, usage: Mapping[str, Usage]) -> None:
        over = {n for n, u in usage.items() if u.bound and u.entries > u.bound}
        for name in sorted(over - self.over):
            u = usage[name]
            log.warning("memory: %s holds %d entries, over its bound %d (%.0f MB)", name,
                        u.entries, u.bound, u.bytes / 1e6)
        self.over = over


def table_users(table: Any) -> Sequence[Mapping[Any, Any]]:
    """The parts of the user-state table in this process's heap: the memory store's dict and
    its key -> partition index, or the rocksdb store's unacknowledged states."""
    store = getattr(table, "data", None)
    unacked = getattr(store, "unacked", None)
    if unacked is not None:
        return (unacked,)
    parts: Iterable[Any] = (getattr(store, "data", None), getattr(store, "_key_partition", None))
    return tuple(p for p in parts if isinstance(p, Mapping))


def table_cache(table: Any) -> Usage | None:
    """The rocksdb store's memory now against its budget, in bytes (None for the memory
    store): its shared block cache, which the memtables are charged to."""
    options = getattr(getattr(table, "data", None), "rocksdb_options", None)
    if options is None or not hasattr(options, "usage"):
        return None
    used = options.usage()
    return Usage(used, options.memory_bytes, used)
