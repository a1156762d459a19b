import json
from pathlib import Path

import pytest

from streams.channels.seed import load_seed
from streams.jobs.seed import build_seed
from streams.settings import Settings


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    (tmp_path / "sequences.txt").write_text("1 1 2 3\n2 2 3\n3 1 3 4\n")
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps(
        {"item_id": i, "title": f"item {i}", "brand": "b", "categories": [["c"]]})
        for i in range(1, 5)))
    return tmp_path


def test_seed_round_trip(tiny: Path, tmp_path: Path) -> None:
    settings = Settings.from_env({"SIDSTREAM_MODEL_DIR": str(tmp_path / "m")})
    path = build_seed(str(tiny), settings=settings)
    assert path == tmp_path / "m" / "seed.json.gz"
    covis, pop, version = load_seed(settings)
    assert version.startswith("baseline+seed-")
    assert covis.neighbors(1, 1)[0][0] in {2, 3}
    assert pop.top(1)[0][0] == 3  # item 3 is in every sequence
    path.write_bytes(b"corrupt")
    covis, _, version = load_seed(settings)  # refused with a log line, worker still starts
    assert version == "baseline" and len(covis) == 0
