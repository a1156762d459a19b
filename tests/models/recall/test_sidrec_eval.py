from types import SimpleNamespace

import numpy as np

from models.recall.data import Split
from models.recall.sidrec_eval import PENALTIES, Variant, choose, held_out_reference


def _groups(all_r: float, cold_r: float) -> dict[str, dict[str, float]]:
    return {"all": {"recall@10": all_r}, "cold": {"recall@10": cold_r}}


SCORED = [(Variant("none", 0, 0.0, 0), _groups(0.100, 0.04)),
          (Variant("none", 0, -1.0, 0), _groups(0.099, 0.09)),  # 1 % below the best
          (Variant("none", 0, 0.0, 2), _groups(0.090, 0.12)),  # 10 % below
          (Variant("ridge", 0, 0.0, 0), _groups(0.101, 0.01))]


def test_without_tolerance_new_items_are_scored_for_the_best_all_user_recall() -> None:
    assert choose(SCORED, 0.0) == Variant("ridge", 0, 0.0, 0)


def test_a_tolerance_buys_the_best_cold_recall_it_allows_and_no_more() -> None:
    """The rule behind the served new-item scoring: the 1 % variant, not the one with the
    best cold recall that costs other users 10 %."""
    assert choose(SCORED, 0.02) == Variant("none", 0, -1.0, 0)
    assert choose(SCORED, 0.15) == Variant("none", 0, 0.0, 2)


def test_ties_go_to_the_plainest_variant() -> None:
    tied = [(Variant("none", 0, b, n), _groups(0.1, 0.05)) for b in (0.5, -0.5, 0.0)
            for n in (1, 0)]
    assert choose(tied, 0.0) == Variant("none", 0, 0.0, 0)
    assert choose(tied, 0.1) == Variant("none", 0, 0.0, 0)
    assert all(p < 0 for p in PENALTIES)


class _FixedRanking:
    """A recaller that ranks items 1..10 for every user."""

    def recall(self, histories: list[list[int]], k: int, beam: int, exclude: object,
               batch_size: int) -> SimpleNamespace:
        return SimpleNamespace(items=np.tile(np.arange(1, k + 1), (len(histories), 1)))


def test_cold_reference_scores_exactly_the_users_whose_target_is_held_out() -> None:
    data = Split(users=np.arange(4), histories=[[20], [21], [22], [23]],
                 targets=np.array([3, 50, 4, 60]), seen=[set()] * 4)
    ref = held_out_reference(_FixedRanking(), data, {3, 4}, beam=1)  # type: ignore[arg-type]
    assert ref["cold_target_users"] == 2 and ref["held_out_items"] == 2
    assert ref["cold"]["recall@10"] == 1.0 and ref["warm"]["recall@10"] == 0.0
    assert ref["all"]["recall@10"] == 0.5
