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
