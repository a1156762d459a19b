"""Memory accounting: the sizes are honest, the gauges move with load and stay under bounds."""

from __future__ import annotations

import logging
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from models.data.dataset import ItemMeta
from streams.channels.covisit import CoVisitation, CoVisitConfig
from streams.channels.popularity import DecayedPopularity
from streams.contracts.output import Candidate, RecList
from streams.metrics import MEMORY_COMPONENTS, Metrics
from streams.pipeline.batch import Pipeline
from streams.pipeline.model_set import UpsertLog
from streams.pipeline.state import SeqEvent, UserState
from streams.runtime.catalogue import Catalogue
from streams.runtime.memory import (
    MemoryGauges,
    Sources,
    deep_size,
    prefix_stats,
    sampled_bytes,
    table_cache,
    table_users,
)
from streams.runtime.redis_writer import RecWriter
from streams.settings import Settings
from tests.fixtures.model_pipelines import make
from tests.fixtures.model_pipelines import rec as model_rec
from tests.fixtures.pipelines import NOW_S, rec

BOUNDS = {"covisit_max_items": 300, "popularity_max_items": 250, "coldstart_max_items": 200,
          "catalogue_max_items": 400, "upsert_log_max_items": 350, "debounce_max_users": 150,
          "state_max_users": 1000, "debounce_ms": 1000, "redis_pending_max": 2000}


def _user(i: int, n: int = 50) -> dict[str, Any]:
    seq = [SeqEvent(str(10_000 + (i * 7 + j) % 5000), "click", 1_700_000_000_000 + j)
           for j in range(n)]
    return UserState(f"user-{i}", seq=seq, recent_ids=[f"ev-{i}-{j}" for j in range(n)],
                     n_events=n, last_ts=seq[-1].ts).to_json()


def test_deep_size_agrees_with_what_tracemalloc_sees() -> None:
    """The per-entry method (sys.getsizeof recursion) against the allocator, on user states as
    the memory store holds them (JSON-decoded dicts)."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    states = {f"user-{i}": _user(i) for i in range(2000)}
    allocated = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    estimate = sampled_bytes(states)
    assert 0.8 * allocated < estimate < 1.3 * allocated


def test_a_sample_of_each_end_estimates_the_whole() -> None:
    rows = {f"item-{i}": {f"n-{i}-{j}": i + j / 64 for j in range(i % 40)} for i in range(5000)}
    whole = deep_size(rows)
    assert abs(sampled_bytes(rows) - whole) < 0.15 * whole
    shared = {i: {j: 1.0 for j in range(40)} for i in range(1000)}  # the same ids and float
    assert sampled_bytes(shared) > deep_size(shared)  # counted in each entry: from above
    assert sampled_bytes({}) == sampled_bytes(dict())  # an empty container: itself


def _sources(settings: Settings, pipe: Pipeline, table: dict[str, Any],
             writer: RecWriter) -> Sources:
    catalogue = Catalogue(max_items=settings.worker.catalogue_max_items)
    upserts = UpsertLog(settings.worker.upsert_log_max_items)
    return Sources(settings, pipe, lambda: (table,), catalogue, writer, upserts)


def _feed(pipe: Pipeline, src: Sources, table: dict[str, Any], users: range, items: int) -> None:
    """One event per user on items never seen before (catalogue churn), with its side
    effects on the runtime structures: catalogue, upsert log, lists pending for Redis."""
    assert src.catalogue is not None and src.upserts is not None and src.writer is not None
    records = [rec(f"load{u}", 10_000 + (u * 3) % items, "order") for u in users]
    records += [rec(f"load{u}", 10_000 + (u * 3 + 1) % items, "click") for u in users]
    pipe.clock = lambda: NOW_S + users.start  # the debounce sees time pass
    for start in range(0, len(records), 200):
        out = pipe.process(records[start:start + 200], table.get)
        table.update({k: v for k, (_, v) in out.states.items()})
        src.catalogue.add(out.items)
        for item in out.items:
            src.upserts.add(ItemMeta(item), None)
        src.writer.pending.update({r.user_id: r for r in out.lists[:50]})


def test_memory_gauges_move_with_load_and_stay_under_their_bounds(
        caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({}, **BOUNDS)
    ch, metrics = settings.channels, Metrics()
    pipe = Pipeline(settings, CoVisitation(CoVisitConfig(max_items=ch.covisit_max_items)),
                    DecayedPopularity(max_items=ch.popularity_max_items), metrics,
                    clock=lambda: NOW_S)
    table: dict[str, Any] = {}
    writer = RecWriter(SimpleNamespace(), metrics, 60, "v",  # type: ignore[arg-type]
                       max_pending=settings.redis.redis_pending_max)
    gauges = MemoryGauges(_sources(settings, pipe, table, writer), metrics)
    value = metrics.registry.get_sample_value

    def gauges_now() -> dict[str, tuple[float, float, float]]:
        gauges.refresh()
        return {c: tuple(value(f"sidstream_memory_{g}", {"component": c}) or 0.0  # type: ignore
                         for g in ("entries", "bound_entries", "bytes"))
                for c in MEMORY_COMPONENTS}

    history = [gauges_now()]  # before any load
    for users in (range(0, 40), range(40, 400), range(400, 800), range(800, 1200)):
        _feed(pipe, gauges.sources, table, users, 4000)  # on ever new items
        history.append(gauges_now())
        for c, (entries, bound, nbytes) in history[-1].items():
            if c != "user_state" and bound:  # the table's bound is soft: alerted on
                assert entries <= bound, (c, entries, bound)
            assert nbytes > 0 or entries == 0, c
    assert all(entries == 0 for entries, _, _ in history[0].values())
    for c in ("user_state", "redis_pending"):  # these grow with every user served
        grew = [h[c][0] for h in history]
        assert grew == sorted(grew) and len(set(grew)) == len(grew), (c, grew)
        assert [h[c][2] for h in history] == sorted(h[c][2] for h in history), c
    for c in ("covisit", "popularity", "catalogue", "upsert_log", "debounce",
              "coldstart_bandit"):  # these grow with the items (or users) up to their bound
        bound = history[-1][c][1]
        assert 0 < history[1][c][0] < 0.85 * bound <= max(h[c][0] for h in history), c
    assert history[-1]["user_state"][0] == 1200
    assert "user_state holds 1200 entries, over its bound 1000" in caplog.text


def test_the_search_process_cache_is_read_from_its_answers() -> None:
    remote = SimpleNamespace(cache_stats=(3, 120, 368_640), prefix_cache=None)
    assert prefix_stats(remote) == (3, 120, 368_640)
    local = SimpleNamespace(prefix_cache=SimpleNamespace(stats=lambda: (1, 10, 30_720)))
    assert prefix_stats(local) == (1, 10, 30_720)
    assert prefix_stats(None) == (0, 0, 0)


def test_table_users_are_the_heap_parts_of_either_store() -> None:
    memory_store = SimpleNamespace(data={"u": {"seq": []}}, _key_partition={"u": 3})
    assert [len(m) for m in table_users(SimpleNamespace(data=memory_store))] == [1, 1]
    disk_store = SimpleNamespace(unacked={b"u": b"{}", b"v": b"{}"})
    assert [len(m) for m in table_users(SimpleNamespace(data=disk_store))] == [2]


def test_the_state_cache_is_the_disk_stores_against_its_budget() -> None:
    options = SimpleNamespace(usage=lambda: 5 << 20, memory_bytes=256 << 20)
    got = table_cache(SimpleNamespace(data=SimpleNamespace(rocksdb_options=options)))
    assert got is not None and (got.entries, got.bound, got.bytes) == (5 << 20, 256 << 20, 5 << 20)
    assert table_cache(SimpleNamespace(data=SimpleNamespace(data={}))) is None  # memory store


def test_a_component_past_its_bound_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({}, state_max_users=2)
    pipe = Pipeline(settings, CoVisitation(), DecayedPopularity(), Metrics())
    table = {f"u{i}": _user(i, 3) for i in range(3)}
    gauges = MemoryGauges(Sources(settings, pipe, lambda: (table,)), pipe.metrics)
    with caplog.at_level(logging.WARNING, "streams.runtime.memory"):
        gauges.refresh()
        gauges.refresh()
    assert caplog.text.count("user_state holds 3 entries, over its bound 2") == 1
    assert pipe.metrics.registry.get_sample_value(
        "sidstream_memory_entries", {"component": "user_state"}) == 3


def test_pending_lists_are_measured_with_their_candidates() -> None:
    writer = RecWriter(SimpleNamespace(), Metrics(), 60, "v")  # type: ignore[arg-type]
    items = tuple(Candidate(i, 1.0 / i, "covisit") for i in range(1, 51))
    writer.pending = {f"u{i}": RecList(f"u{i}", items, 1) for i in range(100)}
    per_list = sampled_bytes(writer.pending) / 100
    assert 50 * 64 < per_list < 50 * 400  # 50 candidates (tuples, floats) and the rest


def test_the_generative_caches_move_with_load_and_stay_under_their_bounds(
        model_dir: Path) -> None:
    """A served recall model: its result LRU (users) and prefix cache (history tokens)."""
    pipe, _, _ = make(model_dir, recall_cache_users=5, prefix_cache_tokens=200)
    table: dict[str, Any] = {}
    gauges = MemoryGauges(Sources(pipe.settings, pipe, lambda: (table,)), pipe.metrics)
    seen = []
    for step in range(3):
        records = [model_rec(f"gen{u}", 1 + (u + step) % 30, n=step) for u in range(12)]
        out = pipe.process(records, table.get)
        table.update({k: v for k, (_, v) in out.states.items()})
        usage = gauges.refresh()
        seen.append((usage["recall_cache"], usage["prefix_cache"]))
    for recall, prefix in seen:
        assert 0 < recall.entries <= recall.bound == 5 and recall.bytes > 0
        assert 0 < prefix.entries <= prefix.bound == 200
        assert prefix.bytes >= prefix.entries * 3 * 2 * 4  # K and V per token, float32
    assert seen[-1][1].entries > seen[0][1].entries  # histories grew: more tokens
