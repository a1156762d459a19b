from models.recall.sidrec_eval import PENALTIES, Variant, choose


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
