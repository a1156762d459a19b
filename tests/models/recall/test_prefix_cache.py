from __future__ import annotations

import numpy as np

from tests.fixtures.recall_models import tiny_recaller


def test_cached_encoding_gives_the_same_recall_as_a_full_prefill() -> None:
    plain = tiny_recaller(item_loss=1.0)
    cached = tiny_recaller(item_loss=1.0)
    cached.enable_prefix_cache(max_tokens=10_000)
    keys = ["a", "b", "c", "d"]
    steps = [  # each user's history over four calls: appends, a repeat, a slid window, a reset
        [[1], [5, 6], [], [9, 10, 11, 12, 13, 14, 15, 16]],
        [[1, 2], [5, 6], [3], [10, 11, 12, 13, 14, 15, 16, 17]],  # d: window slid (max_hist 8)
        [[1, 2, 3, 4], [5, 6, 7], [3, 4], [10, 11, 12, 13, 14, 15, 16, 17]],
        [[8], [5, 6, 7, 9], [3, 4, 20], [1, 2]],  # a: different history
    ]
    for hist in steps:
        a = plain.recall(hist, k=6, beam=6, exclude=[set(h) for h in hist])
        b = cached.recall(hist, k=6, beam=6, exclude=[set(h) for h in hist], keys=keys)
        assert np.array_equal(a.items, b.items)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    cache = cached.prefix_cache
    assert cache is not None and cache.hits >= 6 and cache.misses >= 5


def test_cache_is_bounded_by_tokens() -> None:
    rec = tiny_recaller()
    rec.enable_prefix_cache(max_tokens=30)
    hist = [[i, i + 1, i + 2] for i in range(1, 20)]  # BOS + 3 items x 3 tokens = 10 each
    rec.recall(hist, k=3, beam=3, keys=list(range(len(hist))))
    assert rec.prefix_cache is not None
    assert rec.prefix_cache.tokens <= 30 and len(rec.prefix_cache) == 3


def test_cache_reports_the_bytes_of_its_tensors() -> None:
    """``nbytes`` (the prefix_cache memory gauge) is what the cached K/V and states hold."""
    rec = tiny_recaller()
    rec.enable_prefix_cache(max_tokens=1000)
    hist = [[i, i + 1] for i in range(1, 6)]
    rec.recall(hist, k=3, beam=3, keys=list(range(len(hist))))
    cache = rec.prefix_cache
    assert cache is not None
    held = sum(t.element_size() * t.numel() for e in cache.entries.values()
               for kv in e.kv for t in kv)
    held += sum(e.last.element_size() * e.last.numel() for e in cache.entries.values())
    assert cache.stats() == (5, cache.tokens, held) and held > 0
