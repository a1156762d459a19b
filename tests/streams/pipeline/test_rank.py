"""Candidate selection by channel quotas, the click/order/value blend, and the channel blend
used without a ranker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.serving import pad_candidates
from streams.channels.base import COVISIT, POPULAR
from streams.channels.generative import GENERATIVE
from streams.contracts.output import Candidate
from streams.pipeline.model_set import ModelSet
from streams.pipeline.rank import blend, select_candidates, top_per_user
from streams.settings import BlendSettings, Settings
from tests.fixtures.model_pipelines import make, rec


def test_select_candidates_quotas_priority_exclusion_and_fill() -> None:
    channels = {GENERATIVE: {1: 0.9, 2: 0.5, 3: 0.1},
                COVISIT: {2: 9.0, 4: 5.0, 5: 4.0},
                POPULAR: {6: 3.0, 7: 2.0, 8: 1.0, 1: 0.5}}
    quotas = {GENERATIVE: 2, COVISIT: 1, POPULAR: 1}
    got = select_candidates(channels, quotas, exclude={1}, fill_to=4)
    assert [(c.item_id, c.source) for c in got] == [
        (2, GENERATIVE), (3, GENERATIVE), (4, COVISIT), (6, POPULAR)]
    cold = select_candidates({GENERATIVE: {}, COVISIT: {}, POPULAR: channels[POPULAR]}, quotas,
                             exclude=set(), fill_to=3)
    assert [c.item_id for c in cold] == [6, 7, 8]  # popularity fills lists of cold users
    off = select_candidates({POPULAR: channels[POPULAR]}, {POPULAR: 0}, set(), fill_to=3)
    assert off == []


@pytest.mark.parametrize("users", [1, 7])
def test_no_ranker_blends_channels(model_dir: Path, users: int) -> None:
    pipe, _, _ = make(model_dir)
    pipe.models = ModelSet(recaller=pipe.models.recaller,
                           recall_version=pipe.models.recall_version)
    out = pipe.process([rec(f"w{u}", 3 + u, n=u) for u in range(users)], {}.get)
    assert len(out.lists) == users
    assert all(r.items and r.model_version.startswith("recall:") and "ranker" not in
               r.model_version for r in out.lists)


def test_blend_weights_from_env_and_formula() -> None:
    assert Settings.from_env({}).blend == BlendSettings(1.0, 2.0, 0.0)
    w = Settings.from_env({"SIDSTREAM_W_CLICK": "0.5", "SIDSTREAM_W_ORDER": "3",
                           "SIDSTREAM_W_VALUE": "0.1"}).blend
    assert w == BlendSettings(0.5, 3.0, 0.1)
    for bad in ("x", "-1", "inf"):
        with pytest.raises(ValueError, match="SIDSTREAM_W_ORDER"):
            Settings.from_env({"SIDSTREAM_W_ORDER": bad})
    pctr, pctcvr = np.array([0.5, 0.2, 0.4]), np.array([0.1, 0.15, 0.2])
    price = np.array([10.0, np.nan, 20.0])
    np.testing.assert_allclose(blend(pctr, pctcvr, price, w),
                               [0.25 + 0.3 + 0.1, 0.1 + 0.45, 0.2 + 0.6 + 0.4], rtol=1e-6)
    np.testing.assert_allclose(blend(pctr, pctcvr), pctr + 2 * pctcvr, rtol=1e-6)


def test_one_sort_for_the_batch_ranks_each_user_like_sorting_alone() -> None:
    """``top_per_user`` sorts the padded [users, candidates] matrix once: each user's list, tie
    order (candidate order) and NaN scores (last) must be those of sorting that user alone."""
    rng = np.random.default_rng(3)
    counts = [0, 1, 7, 30, 12]
    cands = [[Candidate(f"u{u}i{j}", 0.0, "covisit") for j in range(c)]
             for u, c in enumerate(counts)]
    flat_users = np.repeat(np.arange(len(counts)), counts)
    _, rows, cols = pad_candidates(np.zeros(len(flat_users), np.int64), flat_users, len(counts))
    final = rng.integers(0, 4, (len(counts), max(counts))).astype(np.float32) / 4  # many ties
    final[2, 3] = np.nan  # user 2 has padding after its 7 candidates
    for n in (1, 5, 50):
        got = top_per_user(final, rows, cols, cands, n)
        for u, c in enumerate(counts):
            s = final[u, :c]
            order = np.argsort(-s, kind="stable")[:n]
            want = [Candidate(cands[u][i].item_id, float(np.round(s[i], 6)), "covisit")
                    for i in order]
            assert [x.item_id for x in got[u]] == [x.item_id for x in want], (u, n)
            assert np.allclose([x.score for x in got[u]], [x.score for x in want],
                               equal_nan=True)
