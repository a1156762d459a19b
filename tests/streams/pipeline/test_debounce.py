"""Per-user debounce of recomputes in a pipeline with real artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.pipeline.batch import Record
from tests.fixtures.model_pipelines import lists_of, make, rec


def test_debounce_defers_then_recomputes_once(model_dir: Path) -> None:
    pipe, clock, _ = make(model_dir, debounce_ms=1000)
    table: dict[str, Any] = {}

    def run(records: list[Record]) -> Any:
        out = pipe.process(records, table.get)
        table.update({k: v for k, (_, v) in out.states.items()})
        return out

    assert "u5" in lists_of(run([rec("u5", 3, n=1)]))
    clock.t += 0.2
    out = run([rec("u5", 4, n=2)])
    assert not out.lists and out.deferred == 1 and out.applied == 1
    clock.t += 0.3
    assert not run([rec("u5", 6, n=3)]).lists  # still inside the interval: one deferral
    assert not run([]).lists
    clock.t += 0.6
    later = lists_of(run([]))["u5"]
    assert later and not {3, 4, 6} & {c.item_id for c in later}
