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


def test_debounce_remembers_at_most_max_users() -> None:
    """Recompute times of users who never come back must not pile up: the least recently
    recomputed are forgotten past the bound, and the deferred set is bounded too."""
    from streams.pipeline.debounce import Debouncer

    deb = Debouncer(interval_s=60.0, max_users=100)
    for step in range(1000):
        deb.computed([f"u{step}"], now=float(step) / 1000)
        assert len(deb.last) <= 100
    assert "u999" in deb.last and "u0" not in deb.last
    now, later = deb.split([f"u{i}" for i in range(800, 1000)], now=1.0)
    assert len(later) == 100 and len(now) == 100  # u800-u899 were forgotten: at once
    deb.computed(now, 1.0)  # they push u900-u999 (deferred) out of ``last`` ...
    now, later = deb.split(now, 1.5)  # ... and would be deferred on top of them
    assert not later and len(deb.deferred) == 100 and len(deb.last) <= 100
