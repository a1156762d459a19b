from __future__ import annotations

import numpy as np
import pytest
import torch

from models.recall import beam
from models.recall.data import ItemTokens, make_batch
from models.recall.model import SIDGPT
from models.recall.recaller import GenerativeRecaller
from models.sid.trie import SidTrie
from tests.fixtures.recall_models import N_ITEMS, tiny_recaller

HISTORIES = [[3, 4, 5], [10], [], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]


def exhaustive_scores(model: SIDGPT, tokens: ItemTokens, history: list[int],
                      n_hist: int) -> dict[int, float]:
    """log p(SID of item | history) for every item by teacher forcing, no cache, no beam; the
    last token's distribution is normalised over the leaves of the item's prefix (as in the
    search: the trie admits nothing else)."""
    rows = tokens.rows(history)[-n_hist:]
    lv = model.cfg.levels
    leaves: dict[tuple[int, ...], list[int]] = {}
    for row in tokens.index.values():
        leaves.setdefault(tuple(tokens.tokens[row][:-1]), []).append(
            int(tokens.tokens[row][-1]) - model.cfg.offsets[-1])
    out = {}
    for item, row in tokens.index.items():
        seq = np.concatenate([rows, [row]]).astype(np.int64)
        batch, _ = make_batch([seq], tokens, model.cfg, train=True)
        h, _ = model(batch.tok, batch.pos, batch.iid)
        total = 0.0
        for p in range(len(seq) * lv - lv, len(seq) * lv):
            logits = model.level_logits(h[0, p], p % lv)
            if p % lv == lv - 1:  # restricted to the prefix's leaves
                allowed = torch.full_like(logits, float("-inf"))
                codes = leaves[tuple(tokens.tokens[row][:-1])]
                allowed[codes] = 0.0
                logits = logits + allowed
            total += float(logits.log_softmax(-1)[batch.target[0, p]])
        if model.has_item_head:  # next-item log-prob at the boundary before the item
            total += float(model.item_logp(h[0, len(seq) * lv - lv])[row])
        out[item] = total
    return out


@pytest.mark.parametrize("item_loss", [0.0, 1.0])
@torch.no_grad()
def test_wide_beam_equals_exhaustive_ranking(item_loss: float) -> None:
    """With a beam covering every prefix, the KV-cached constrained search is exact."""
    recaller = tiny_recaller(item_loss=item_loss)
    res = recaller.recall(HISTORIES, k=5, beam=64)
    for u, hist in enumerate(HISTORIES):
        ex = exhaustive_scores(recaller.model, recaller.tokens, hist, recaller.max_hist)
        best = sorted(ex, key=lambda i: -ex[i])[:5]
        assert res.items[u].tolist() == best
        np.testing.assert_allclose(res.scores[u], [ex[i] for i in best], atol=1e-4)


def test_results_are_valid_sorted_and_deterministic() -> None:
    a = tiny_recaller(seed=3).recall(HISTORIES, k=10, beam=4)
    b = tiny_recaller(seed=3).recall(HISTORIES, k=10, beam=4)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.scores, b.scores)
    valid = a.items[a.items >= 0]
    assert set(valid.tolist()) <= set(range(1, N_ITEMS + 1))
    for row, sc in zip(a.items, a.scores, strict=True):
        real = row[row >= 0]
        assert len(set(real.tolist())) == len(real)  # no duplicates
        assert np.all(np.diff(sc[np.isfinite(sc)]) <= 1e-6)  # best first


@pytest.mark.parametrize("beam", [2, 8, 64])
def test_excluded_items_never_returned(recaller: GenerativeRecaller, beam: int) -> None:
    plain = recaller.recall(HISTORIES, k=10, beam=beam)
    exclude = [{i for i in plain.items[u, :3].tolist() if i >= 0} | set(h)
               for u, h in enumerate(HISTORIES)]
    res = recaller.recall(HISTORIES, k=10, beam=beam, exclude=exclude)
    for u, ex in enumerate(exclude):
        assert not ex & set(res.items[u].tolist())
        found = int((res.items[u] >= 0).sum())
        assert found >= 1
        if beam == 64:  # exhaustive: every non-excluded item is reachable
            assert found == min(10, N_ITEMS - len(ex))


def test_everything_excluded_gives_padding(recaller: GenerativeRecaller) -> None:
    res = recaller.recall([[1]], k=5, beam=8, exclude=[set(range(1, N_ITEMS + 1))])
    assert res.items.tolist() == [[-1] * 5]
    assert np.all(np.isneginf(res.scores))


def test_dense_and_sparse_exclusion_agree(recaller: GenerativeRecaller,
                                          monkeypatch: pytest.MonkeyPatch) -> None:

    exclude = [{3, 4, 5, 6}, {10, 11}, set(), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}]
    dense = recaller.recall(HISTORIES, k=8, beam=6, exclude=exclude)
    monkeypatch.setattr(beam.Excluder, "DENSE_LIMIT", 0)
    sparse = recaller.recall(HISTORIES, k=8, beam=6, exclude=exclude)
    assert np.array_equal(dense.items, sparse.items)
    for row, ex in zip(dense.items, exclude, strict=True):
        assert not set(row.tolist()) & ex


@pytest.mark.parametrize("steer", [0.5, 2.0])
def test_look_ahead_keeps_results_valid_and_exclusions(steer: float) -> None:
    rec = tiny_recaller(item_loss=1.0)
    plain = rec.recall(HISTORIES, k=8, beam=4)
    exclude = [set(h) | {int(plain.items[u, 0])} for u, h in enumerate(HISTORIES)]
    rec.steer = steer
    res = rec.recall(HISTORIES, k=8, beam=4, exclude=exclude)
    for u, ex in enumerate(exclude):
        got = [int(i) for i in res.items[u] if i >= 0]
        assert got and not set(got) & ex and len(set(got)) == len(got)
        assert all(rec.trie.lookup(rec.table.sids[i]) == i for i in got)
    wide = rec.recall(HISTORIES, k=5, beam=64)  # a beam that holds every prefix: no effect
    rec.steer = 0.0
    assert np.array_equal(wide.items, rec.recall(HISTORIES, k=5, beam=64).items)


def test_subtree_mass_is_the_item_heads_mass_under_each_prefix() -> None:
    from models.recall.beam import RowMap, _subtree_mass

    sids = [(a, b, c) for a in range(3) for b in range(2) for c in range(2) if (a + b + c) % 3]
    trie = SidTrie.from_sids((3, 2, 2), [(s, 10 + i) for i, s in enumerate(sids)])
    rows = RowMap.build({10 + i: 1 + i for i in range(len(sids))}, len(sids) + 1)
    logp = torch.randn(2, len(sids) + 1).log_softmax(-1)
    mass = _subtree_mass(trie, logp, rows)
    items, nodes = trie.paths()
    for lv in range(trie.depth - 1):
        n = trie.n_nodes(lv + 1)
        got = mass.log_at(lv, torch.arange(2).repeat_interleave(n),
                          torch.arange(n).repeat(2)).exp().view(2, n)
        for node in range(trie.n_nodes(lv + 1)):
            under = items[nodes[:, lv] == node]
            want = logp[:, rows.lookup(under)].exp().sum(1)
            assert torch.allclose(got[:, node], want, rtol=1e-5)


def test_excluder_fill_and_mask_agree_on_every_cell() -> None:
    # item-head recall scatters the excluded pairs instead of a [users, catalogue] mask;
    # both must hide exactly the same cells (ids past the score rows ignored)
    exclude = [{0, 3, 9}, set(), {1, 2, 40}]
    ex = beam.Excluder(exclude, 3)
    rows = torch.arange(10).expand(3, 10)
    filled = ex.fill(torch.zeros(3, 10), float("-inf"))
    assert torch.equal(torch.isinf(filled), ex.mask(rows))
    assert torch.isinf(filled).sum() == 5
    assert not torch.isinf(beam.Excluder(None, 3).fill(torch.zeros(3, 10), -1.0)).any()
