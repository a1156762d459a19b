"""The shared data-set format: sequences, item metadata, and a clear error for anything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.data.dataset import load_dataset


def test_shared_format_loads_items_with_and_without_metadata(tmp_path: Path) -> None:
    (tmp_path / "sequences.txt").write_text("1 3 1 2\n2 4 3\n")
    (tmp_path / "items.jsonl").write_text(json.dumps(
        {"item_id": 3, "title": "Red lipstick", "brand": "b", "categories": [["Beauty"]]}) + "\n")
    ds = load_dataset(tmp_path)
    assert ds.sequences == {1: [3, 1, 2], 2: [4, 3]} and ds.n_interactions == 5
    assert ds.items[3].title == "Red lipstick" and ds.items[4].title is None  # no metadata
    assert ds.data_hash() == load_dataset(tmp_path).data_hash()
    (tmp_path / "sequences.txt").write_text("1 3 1 2\n2 4 3 1\n")
    assert load_dataset(tmp_path).data_hash() != ds.data_hash()


def test_a_directory_without_sequences_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"sequences\.txt"):
        load_dataset(tmp_path)


def test_movielens_lists_each_film_once() -> None:
    """ML-100k has 18 films under two ids ("Chasing Amy": 246 and 268): merged into the lowest,
    a user's second rating of the same film dropped, so a list never shows a title twice."""
    from collections import Counter

    from models.data.dataset import MOVIELENS

    ds = load_dataset(MOVIELENS)
    films = Counter((m.title, m.extra.get("year")) for m in ds.items.values())
    assert max(films.values()) == 1 and len(ds.items) == 1682 - 18
    assert 246 in ds.items and 268 not in ds.items
    assert all(len(seq) == len(set(seq)) for seq in ds.sequences.values())
    assert ds.n_interactions == 100_000 - 307
    assert all(len(ds.timestamps[u]) == len(seq) for u, seq in ds.sequences.items())  # type: ignore[index]
