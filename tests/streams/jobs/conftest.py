"""A tiny shared-format data set for the job tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    (tmp_path / "sequences.txt").write_text("1 1 2 3\n2 2 3\n3 1 3 4\n")
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps(
        {"item_id": i, "title": f"item {i}", "brand": "b", "categories": [["c"]]})
        for i in range(1, 5)))
    return tmp_path
