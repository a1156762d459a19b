"""The micro-batch with real (tiny, trained) generative recall and ONNX ranker artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.channels.generative import GENERATIVE
from tests.fixtures.model_pipelines import lists_of, make, rec


def test_click_gives_generative_items_ranked_by_the_ranker(model_dir: Path) -> None:
    pipe, _, _ = make(model_dir, quota_covisit=0, quota_popular=0)
    table: dict[str, Any] = {}
    out = pipe.process([rec("u1", 3, n=1), rec("u1", 4, n=2)], table.get)
    items = lists_of(out)["u1"]
    assert items and {c.source for c in items} == {GENERATIVE}
    assert items[0].item_id == 5  # the walk: next = last + 1, first after ranking too
    assert not {3, 4} & {c.item_id for c in items}  # seen items are excluded
    assert out.lists[0].model_version.startswith("recall:") and "+ranker:" in \
        out.lists[0].model_version
    scores = [c.score for c in items]
    assert scores == sorted(scores, reverse=True)


def test_non_trigger_events_update_state_only(model_dir: Path) -> None:
    pipe, _, _ = make(model_dir, trigger_types="click,order")
    out = pipe.process([rec("u6", 3, "view", 1)], {}.get)
    assert out.applied == 1 and not out.lists and "u6" in out.states
