from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from models.recall.recaller import GenerativeRecaller
from models.recall.search_process import RemoteRecaller, RemoteSIDRec, SearchProcessError
from models.recall.sidrec_recaller import SIDRecRecaller
from tests.fixtures.recall_models import (
    DIM,
    N_ITEMS,
    clustered_vectors,
    tiny_recaller,
    tiny_sidrec,
)

HISTORIES = [[1, 2, 3], [7], [4, 5, 6, 7, 8, 9, 10, 11, 12]]


def test_the_child_answers_like_the_local_recaller_and_follows_upserts(tmp_path: Path) -> None:
    path = tiny_recaller(item_loss=1.0).save(tmp_path, "abc", {}, {})
    local = GenerativeRecaller.load(path)
    remote = RemoteRecaller.start(GenerativeRecaller.load(path), path, int8=False,
                                  cache_tokens=10_000)
    try:
        excl = [set(h) for h in HISTORIES]
        want = local.recall(HISTORIES, k=5, beam=8, exclude=excl)
        got = remote.recall(HISTORIES, k=5, beam=8, exclude=excl, keys=["a", "b", "c"])
        assert np.array_equal(got.items, want.items)
        assert np.allclose(got.scores, want.scores, atol=1e-5)
        entries, tokens, nbytes = remote.cache_stats  # the child's cache, sent with its answer
        assert entries == 3 and 0 < tokens <= 10_000 and nbytes > 0
        # an upsert gets its SID here; the child inserts the same SID before the next recall
        vec = clustered_vectors(n=N_ITEMS + 1, dim=DIM, seed=7)[-1]
        sid = remote.add_item(1000, vector=vec)
        assert remote.table.sids[1000] == sid
        res = remote.recall([[1, 2]], k=3, beam=64, exclude=[set(range(1, N_ITEMS + 1))])
        assert res.items[0].tolist() == [1000, -1, -1]
    finally:
        remote.close()
    with pytest.raises(SearchProcessError):
        remote.recall(HISTORIES, k=5, beam=8)


def test_a_sidrec_child_answers_like_the_local_one_and_follows_upserts(tmp_path: Path) -> None:
    """SIDRec serves from the child too (its item head off the worker's GIL): same items, and
    an upsert made here is scored there by its codes before the next recall."""
    served = tiny_sidrec(held_out=frozenset({7}))
    served.mode = "item"  # the artifact's decoding: the child reads it from there
    path = served.save(tmp_path, "abc", {}, {})
    local = SIDRecRecaller.load(path)
    remote = RemoteSIDRec.start(SIDRecRecaller.load(path), path, int8=False, cache_tokens=0)
    try:
        excl = [set(h) for h in HISTORIES]
        want = local.recall(HISTORIES, k=5, exclude=excl)
        got = remote.recall(HISTORIES, k=5, exclude=excl)
        assert np.array_equal(got.items, want.items)
        assert np.allclose(got.scores, want.scores, atol=1e-5)
        vec = clustered_vectors()[6]
        sid = remote.add_item(7, vector=vec)
        assert local.add_item(7, vector=vec) == sid == remote.table.sids[7]
        others = [set(range(1, N_ITEMS + 1)) - {7}]
        assert remote.recall([[1, 2]], k=3, exclude=others).items[0].tolist() == [7, -1, -1]
    finally:
        remote.close()


def test_a_sidrec_child_embeds_an_upsert_by_the_vector_the_parent_got(tmp_path: Path) -> None:
    """A model that embeds items by their vectors: the upsert's vector travels to the child,
    which then scores the new item as this process does (a child given only the SID would
    embed it by its codes alone)."""
    served = tiny_sidrec(held_out=frozenset({7}), content=True)
    served.mode = "item"
    path = served.save(tmp_path, "abc", {}, {})
    local = SIDRecRecaller.load(path)
    remote = RemoteSIDRec.start(SIDRecRecaller.load(path), path, int8=False, cache_tokens=0)
    try:
        vec = clustered_vectors()[6] * 5.0
        remote.add_item(7, vector=vec)
        local.add_item(7, vector=vec)
        want = local.recall(HISTORIES, k=N_ITEMS)
        got = remote.recall(HISTORIES, k=N_ITEMS)
        assert np.array_equal(got.items, want.items)
        assert np.allclose(got.scores, want.scores, atol=1e-5)
    finally:
        remote.close()


def test_a_child_that_cannot_load_is_reported(tmp_path: Path) -> None:
    path = tiny_recaller().save(tmp_path, "abc", {}, {})
    local = GenerativeRecaller.load(path)
    (path / "generative.pt").write_bytes(b"corrupt")
    with pytest.raises(SearchProcessError, match="search process"):
        RemoteRecaller.start(local, path, int8=False, cache_tokens=0)


def test_outstanding_searches_are_answered_in_order_and_a_dropped_one_stops_its_child(
        tmp_path: Path) -> None:
    path = tiny_recaller(item_loss=1.0).save(tmp_path, "abc", {}, {})
    local = GenerativeRecaller.load(path)
    remote = RemoteRecaller.start(GenerativeRecaller.load(path), path, int8=False,
                                  cache_tokens=0)
    first = remote.submit(HISTORIES[:1], k=4, beam=8)
    second = remote.submit(HISTORIES[1:], k=4, beam=8)
    # claimed out of order: the replies are matched to their requests
    assert np.array_equal(second().items, local.recall(HISTORIES[1:], k=4, beam=8).items)
    assert np.array_equal(first().items, local.recall(HISTORIES[:1], k=4, beam=8).items)
    proc = remote.proc
    del remote, first, second
    gc.collect()
    proc.join(10)
    assert not proc.is_alive()
