"""The seed file: a worker starts from it, and refuses a damaged one instead of crashing."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

from streams.channels.covisit import CoVisitation, CoVisitConfig
from streams.channels.seed import SEED_FILE, load_seed, save_seed
from streams.settings import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, model_dir=tmp_path)


def test_no_seed_starts_empty(tmp_path: Path) -> None:
    covis, popularity, version = load_seed(_settings(tmp_path))
    assert len(covis) == 0 and version == "baseline"
    assert popularity.top(5) == []


def test_saved_seed_loads_with_its_counts(tmp_path: Path) -> None:
    covis = CoVisitation(CoVisitConfig(5, 100))
    covis.add_sequence([1, 2, 3])
    save_seed(tmp_path / SEED_FILE, covis, Counter({1: 5, 2: 3, 3: 1}), "seed-abc", "toy")
    loaded, popularity, version = load_seed(_settings(tmp_path))
    assert version == "baseline+seed-abc"
    assert loaded.to_rows() == covis.to_rows()
    assert [i for i, _ in popularity.top(3)] == [1, 2, 3]


def test_a_seed_of_another_format_or_damaged_is_refused(tmp_path: Path) -> None:
    path = tmp_path / SEED_FILE
    with gzip.open(path, "wt") as fh:
        json.dump({"format": 99, "version": "x", "covisit": [], "popularity": []}, fh)
    covis, _, version = load_seed(_settings(tmp_path))
    assert version == "baseline" and len(covis) == 0
    path.write_bytes(b"not gzip")
    assert load_seed(_settings(tmp_path))[2] == "baseline"
