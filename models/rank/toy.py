"""A small synthetic data set with a planted preference, for ranker tests and smoke runs.

Items fall into ``n_clusters`` categories (two brands each). Every user has a favourite
category; each interaction comes from it with probability ``p_fav``, otherwise from anywhere.
Ratings are 5 inside the favourite category and 2 outside, so ``rating >= 4`` ("order") is
learnable too. Timestamps increase by a few minutes per event.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.data.dataset import ItemMeta, SeqDataset


def toy_dataset(n_users: int = 200, n_items: int = 60, n_clusters: int = 6, min_len: int = 6,
                max_len: int = 14, p_fav: float = 0.8, seed: int = 0) -> SeqDataset:
    rng = np.random.default_rng(seed)
    cluster = (np.arange(n_items + 1) - 1) % n_clusters  # item -> category (row 0 unused)
    items = {i: ItemMeta(i, title=f"item {i}", brand=f"brand{cluster[i]}-{i % 2}",
                         categories=((f"cat{cluster[i]}",),)) for i in range(1, n_items + 1)}
    by_cluster = [np.flatnonzero(cluster[1:] == c) + 1 for c in range(n_clusters)]
    sequences, ratings, timestamps = {}, {}, {}
    for user in range(1, n_users + 1):
        fav = int(rng.integers(n_clusters))
        n = int(rng.integers(min_len, max_len + 1))
        from_fav = rng.random(n) < p_fav
        seq = np.where(from_fav, rng.choice(by_cluster[fav], n), rng.integers(1, n_items + 1, n))
        sequences[user] = [int(i) for i in seq]
        ratings[user] = [5.0 if cluster[i] == fav else 2.0 for i in seq]
        timestamps[user] = [int(t) for t in 1_600_000_000 + np.cumsum(rng.integers(60, 600, n))]
    return SeqDataset("toy", sequences, items, timestamps=timestamps, ratings=ratings)


def write_shared_format(ds: SeqDataset, directory: Path) -> Path:
    """Write ``ds`` as a shared-format directory (sequences.txt, items.jsonl)."""

    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "sequences.txt").open("w") as fh:
        for user, seq in sorted(ds.sequences.items()):
            fh.write(" ".join(map(str, [user, *seq])) + "\n")
    with (directory / "items.jsonl").open("w") as fh:
        for item, meta in sorted(ds.items.items()):
            fh.write(json.dumps({"item_id": item, "title": meta.title, "brand": meta.brand,
                                 "categories": [list(p) for p in meta.categories]}) + "\n")
    return directory
