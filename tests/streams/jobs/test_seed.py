from pathlib import Path

from streams.channels.seed import load_seed
from streams.jobs.seed import build_seed
from streams.settings import Settings


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
