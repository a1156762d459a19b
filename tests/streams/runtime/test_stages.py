"""The hand-over between the two stages (``streams.runtime.stages.submit``), without a broker."""

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from streams.pipeline.model_set import ModelSet
from streams.runtime.offsets import ProcessedOffsets
from streams.runtime.stages import StageJob, submit
from streams.settings import Settings
from tests.fixtures.pipelines import make_pipeline, rec


def prepared(pipe: Any, table: dict[str, Any], records: list[Any]) -> StageJob:
    out, job = pipe.prepare(records, table.get)
    table.update({k: v for k, (_, v) in out.states.items()})
    return StageJob(job, list(records), 0.0, set(out.items))


def runtime(pipe: Any, cap: int) -> Any:
    """What ``submit`` reads of a Runtime."""
    return SimpleNamespace(jobs=asyncio.Queue(1), inflight=0, metrics=pipe.metrics,
                           settings=Settings.from_env({}, model_batch_max=cap),
                           processed=ProcessedOffsets(["sidstream-events"]))


def test_a_lagging_model_stage_gets_one_larger_batch() -> None:
    pipe, metrics = make_pipeline()
    table: dict[str, Any] = {}
    first = prepared(pipe, table, [rec("a", 1), rec("b", 2)])
    second = prepared(pipe, table, [rec("b", 3, "order"), rec("c", 4)])

    async def scenario() -> Any:
        rt = runtime(pipe, cap=10)
        await submit(rt, first)
        await submit(rt, second)  # the model stage has not taken the first: it joins it
        return rt

    rt = asyncio.run(scenario())
    assert rt.jobs.qsize() == 1 and rt.inflight == 1
    assert metrics.merged_batches._value.get() == 1
    merged = rt.jobs.get_nowait()
    assert merged is first and len(merged.events) == 4 and merged.items == {1, 2, 3, 4}
    assert list(merged.job.states) == ["a", "b", "c"]
    # user b's state and exclusions are the later ones: the order of item 3 is in them
    assert [e.item_id for e in merged.job.states["b"].seq] == [2, 3]
    lists = {r.user_id: [c.item_id for c in r.items] for r in pipe.finish(merged.job)}
    assert set(lists) == {"a", "b", "c"} and 3 not in lists["b"] and 2 not in lists["b"]


def test_no_merge_past_the_cap_or_across_model_versions() -> None:
    pipe, metrics = make_pipeline()
    table: dict[str, Any] = {}
    first = prepared(pipe, table, [rec("a", 1), rec("b", 2)])
    second = prepared(pipe, table, [rec("c", 3)])

    async def scenario() -> None:
        rt = runtime(pipe, cap=2)
        await submit(rt, first)
        waiting = asyncio.create_task(submit(rt, second))
        await asyncio.sleep(0.1)  # 3 users > cap 2: it waits for room instead
        assert not waiting.done() and rt.processed.stalled  # no "dropped message" re-reads
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert not rt.processed.stalled and rt.inflight == 1
        assert rt.jobs.get_nowait() is first and first.job.states.keys() == {"a", "b"}

    asyncio.run(scenario())
    third = prepared(pipe, table, [rec("d", 5)])
    third.job.models = ModelSet()  # a hot swap happened between the two batches
    assert not first.absorb(third, cap=100)
    assert metrics.merged_batches._value.get() == 0
