"""The generative channel on real (tiny, trained) artifacts: exclusion, result and prefix caches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fixtures.model_pipelines import lists_of, make, rec


def pipe_state(table: dict[str, Any], out: Any) -> Any:
    from streams.pipeline.state import UserState

    table.update({k: v for k, (_, v) in out.states.items()})
    return UserState.from_json(table["u3"])


def test_ordered_items_are_excluded_inside_the_beam(model_dir: Path) -> None:
    pipe, _, _ = make(model_dir, exclude_seen=False, quota_covisit=0, quota_popular=0)
    table: dict[str, Any] = {}
    first = pipe.process([rec("u3", 5, "order", 1)], table.get)
    table.update({k: v for k, (_, v) in first.states.items()})
    out = pipe.process([rec("u3", 3, n=2), rec("u3", 4, n=3)], table.get)
    items = [c.item_id for c in lists_of(out)["u3"]]
    assert items and 5 not in items and 4 in items  # seen items allowed, ordered never
    # inside the beam: the excluded item's slot goes to another item, the list stays full
    state = pipe_state(table, out)
    rec_ = pipe.models.recaller
    assert rec_ is not None
    free = rec_.recall([[3, 4]], k=8, beam=8).items[0]
    held = rec_.recall([[3, 4]], k=8, beam=8, exclude=[{5}]).items[0]
    assert 5 in free and 5 not in held and (held > 0).sum() == (free > 0).sum()
    assert state.ordered == [5]


def test_unchanged_inputs_reuse_the_cached_recall(model_dir: Path) -> None:
    pipe, _, _ = make(model_dir)
    table: dict[str, Any] = {}
    first = pipe.process([rec("u7", 3, n=1)], table.get)
    table.update({k: v for k, (_, v) in first.states.items()})
    again = pipe.process([rec("u7", 3, n=1)], table.get)  # a redelivery: same inputs
    assert again.duplicates == 1 and lists_of(again)["u7"] == lists_of(first)["u7"]
    cache = pipe.metrics.recall_cache
    assert cache.labels("hit")._value.get() == 1 and cache.labels("miss")._value.get() == 1


def test_returning_users_reuse_their_encoded_history(model_dir: Path) -> None:
    pipe, _, _ = make(model_dir)
    recaller = pipe.models.recaller
    assert recaller is not None and recaller.prefix_cache is not None
    table: dict[str, Any] = {}
    for n, item in enumerate((3, 4, 5), start=1):
        out = pipe.process([rec("u8", item, n=n)], table.get)
        table.update({k: v for k, (_, v) in out.states.items()})
    assert recaller.prefix_cache.misses == 1 and recaller.prefix_cache.hits == 2
