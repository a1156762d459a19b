"""SIDRec decoding: the beam yields valid SIDs with exact log-probs, exclusions hold, the item
head and the hybrid agree with brute force."""

from __future__ import annotations

import numpy as np
import torch

from models.recall.beam import Excluder, RecallResult
from models.recall.sidrec import NEG
from models.recall.sidrec_search import beam_sids, rank, with_new_slots
from tests.fixtures.recall_models import N_ITEMS, tiny_sidrec


def _setup(seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    rec = tiny_sidrec(seed)
    with torch.no_grad():
        for p in rec.model.parameters():
            p.normal_(std=0.5)
    h = torch.randn(3, rec.model.cfg.d_model)
    return rec, h


def _all_sid_logp(rec, h):  # type: ignore[no-untyped-def]
    items = torch.arange(1, N_ITEMS + 1)
    return items, rec.model.sid_logp(h[:, None, :], rec.model.codes[items].expand(len(h), -1, -1))


def test_a_beam_as_wide_as_the_catalogue_finds_the_exact_top_sids() -> None:
    rec, h = _setup()
    items, logp = _all_sid_logp(rec, h)
    got, score = beam_sids(rec.model, rec.trie, h, beam=N_ITEMS, excl=Excluder(None, 3))
    top = logp.topk(5, dim=1)
    assert got[:, :5].tolist() == items[top.indices].tolist()
    torch.testing.assert_close(score[:, :5], top.values)


def test_the_beam_returns_only_catalogue_items_and_never_an_excluded_one() -> None:
    rec, h = _setup(1)
    items, logp = _all_sid_logp(rec, h)
    best = items[logp.argmax(1)].tolist()
    got, _ = beam_sids(rec.model, rec.trie, h, beam=4,
                       excl=Excluder([{best[0]}, {best[1]}, set()], 3))
    assert best[0] not in got[0].tolist() and best[1] not in got[1].tolist()
    assert best[2] in got[2].tolist()
    assert set(got.flatten().tolist()) <= set(range(1, N_ITEMS + 1))


def test_item_mode_is_the_full_catalogue_top_k() -> None:
    rec, h = _setup(2)
    table = rec.model.item_table()
    res = rank(rec.model, rec.trie, h, table, k=5, beam=4, mode="item")
    logits = rec.model.item_logits(h, table)
    assert res.items.tolist() == logits.topk(5, dim=1).indices.tolist()


def test_hybrid_scores_are_item_plus_weighted_sid_log_probs_without_duplicates() -> None:
    rec, h = _setup(3)
    table = rec.model.item_table()
    res = rank(rec.model, rec.trie, h, table, k=6, beam=4, mode="hybrid", weight=0.5)
    _, sid = _all_sid_logp(rec, h)
    item_logp = rec.model.item_logits(h, table).log_softmax(-1)[:, 1:]
    expected = item_logp + 0.5 * sid
    for u in range(3):
        row = [i for i in res.items[u].tolist() if i > 0]
        assert len(row) == len(set(row)) >= 4
        torch.testing.assert_close(torch.from_numpy(res.scores[u, : len(row)]),
                                   expected[u, torch.tensor(row) - 1])


def test_the_new_item_boost_lifts_only_items_added_after_training() -> None:
    rec, h = _setup(4)
    head = rec.table.sids[3][:-1]
    rec.add_known(41, (*head, rec.table.prefix_count[head]))  # no id row: a new item
    table = rec.model.item_table()
    plain = rank(rec.model, rec.trie, h, table, k=3, beam=4, mode="item")
    boosted = rank(rec.model, rec.trie, h, table, k=3, beam=4, mode="item", new_item_boost=50.0)
    assert (boosted.items[:, 0] == 41).all() and not (plain.items[:, 0] == 41).all()
    rest = [[i for i in row if i != 41] for row in boosted.items.tolist()]
    assert all(r == p[: len(r)] for r, p in zip(rest, plain.items.tolist(), strict=True))


def test_new_item_slots_replace_the_lowest_warm_items_with_the_best_new_ones() -> None:
    """Two slots, two new items pushed to the bottom (boost -50): they take the last two
    places (best new first), the three best warm items keep theirs; an excluded new item
    never enters, and a top-k that already holds enough new items is unchanged."""
    rec, h = _setup(4)
    for item, src in ((41, 3), (42, 5)):
        head = rec.table.sids[src][:-1]
        rec.add_known(item, (*head, rec.table.prefix_count[head]))  # no id row: new items
    table = rec.model.item_table()

    def top5(boost: float, slots: int, excl: Excluder | None = None) -> RecallResult:
        return rank(rec.model, rec.trie, h, table, k=5, beam=4, mode="item", excl=excl,
                    new_item_boost=boost, new_item_slots=slots)

    plain, got = top5(-50.0, 0), top5(-50.0, 2)
    assert not {41, 42} & set(plain.items.flatten().tolist())
    logp = rec.model.item_logits(h, table).log_softmax(-1).detach()
    for u in range(3):
        new = sorted((41, 42), key=lambda i: -float(logp[u, i]))
        assert got.items[u].tolist() == plain.items[u, :3].tolist() + new
        assert (got.scores[u, :-1] >= got.scores[u, 1:]).all()
    ex = top5(-50.0, 2, Excluder([{41}, set(), set()], 3))
    assert ex.items[0].tolist() == [*plain.items[0, :4].tolist(), 42]
    assert top5(50.0, 2).items.tolist() == top5(50.0, 0).items.tolist()  # two new already


def test_new_item_slots_count_the_new_items_already_in_the_top_k() -> None:
    """Slots are a floor, not extra places: a top-4 holding one new item of two slots gets
    one more (the best other new item), not two."""
    logp = torch.tensor([[NEG, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0]])
    new = torch.tensor([False, False, True, False, False, True, True, False])
    res = RecallResult(np.array([[1, 2, 3, 4]]), np.array([[-1.0, -2.0, -3.0, -4.0]], np.float32))
    got = with_new_slots(res, logp, new, slots=2)
    assert got.items.tolist() == [[1, 2, 3, 5]] and got.scores[0, -1] == -5.0
    assert with_new_slots(res, logp, new, slots=1).items.tolist() == [[1, 2, 3, 4]]


def test_rerank_ranks_the_beams_items_and_the_new_ones_by_the_item_head_alone() -> None:
    """LIGER's inference: a new item (no id row, never decoded by a beam that is too narrow
    to reach it) competes with the beam's candidates only, by the item head's score; an item
    neither in the beam nor new is never returned, an excluded one neither."""
    rec, h = _setup(5)
    head = rec.table.sids[3][:-1]
    rec.add_known(41, (*head, rec.table.prefix_count[head]))  # no id row: a new item
    table = rec.model.item_table()
    beam_items, _ = beam_sids(rec.model, rec.trie, h, beam=3, excl=Excluder(None, 3))
    res = rank(rec.model, rec.trie, h, table, k=4, beam=3, mode="rerank")
    logits = rec.model.item_logits(h, table).detach()
    for u in range(3):
        cand = {*beam_items[u].tolist(), 41} - {-1}
        expected = sorted(cand, key=lambda i: -float(logits[u, i]))[:4]
        assert res.items[u].tolist() == expected
        torch.testing.assert_close(torch.from_numpy(res.scores[u]),
                                   logits[u, torch.tensor(expected)])
    excluded = rank(rec.model, rec.trie, h, table, k=4, beam=3, mode="rerank",
                    excl=Excluder([{41}, set(), set()], 3))
    assert 41 not in excluded.items[0].tolist() and 41 in excluded.items[1].tolist()
    boosted = rank(rec.model, rec.trie, h, table, k=4, beam=3, mode="rerank",
                   new_item_boost=50.0)
    assert (boosted.items[:, 0] == 41).all()
