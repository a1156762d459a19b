"""``bench state``: the synthetic states it seeds, its arithmetic, its end condition, and one tiny
run of both stores end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.jobs.bench_state import (
    StateBenchConfig,
    extrapolate,
    run_bench_state,
    slope,
    store_summary,
    verdicts,
)
from streams.jobs.state_seed import (
    changelog_record,
    history_lengths,
    partition_of,
    synthetic_state,
)
from streams.pipeline.state import UserState
from streams.settings import EVENTS_TOPIC, Settings

NOW_MS = 1_765_000_000_000


def test_history_lengths_leave_out_the_user_column(tiny: Path) -> None:
    assert history_lengths(tiny / "sequences.txt") == [3, 2, 3]


def test_history_lengths_refuse_an_empty_data_set(tmp_path: Path) -> None:
    (tmp_path / "sequences.txt").write_text("\n")
    with pytest.raises(ValueError, match="no sequences"):
        history_lengths(tmp_path / "sequences.txt")


def test_seeded_record_reads_back_as_the_state_it_encodes() -> None:
    settings = Settings()
    state = synthetic_state(random.Random(1), 7, [9], 100, NOW_MS, settings)
    key, value = changelog_record(state)
    assert key == b'"u7"'  # the table's json key: a worker looks the user up by these bytes
    back = UserState.from_json(json.loads(value))
    assert back == state
    assert back.n_events == len(back.seq) == len(back.recent_ids) == 9
    assert all(len(i) == 32 for i in back.recent_ids)  # event ids of a real client's size
    assert [e.ts for e in back.seq] == sorted(e.ts for e in back.seq)
    assert back.last_ts == back.seq[-1].ts <= NOW_MS
    assert set(back.ordered) == {e.item_id for e in back.seq if e.type == "order"}
    assert back.consumed == {f"{EVENTS_TOPIC}:{partition_of('u7', 8)}": 0}


def test_long_histories_are_trimmed_to_the_state_limits() -> None:
    settings = Settings().with_values(seq_len=5, dedup_window=8)
    state = synthetic_state(random.Random(2), 0, [30], 100, NOW_MS, settings)
    assert state.n_events == 30 and len(state.seq) == 5 and len(state.recent_ids) == 8


def test_history_lengths_are_drawn_from_the_data_set() -> None:
    rng, settings = random.Random(3), Settings()
    got = {synthetic_state(rng, i, [2, 11], 100, NOW_MS, settings).n_events for i in range(50)}
    assert got == {2, 11}


def test_seeded_user_goes_to_the_partition_its_events_go_to() -> None:
    partitioner = DefaultPartitioner()
    for i in range(200):
        key = f"u{i}"
        assert partition_of(key, 8) == partitioner(key.encode(), list(range(8)), list(range(8)))


def test_slope_and_extrapolation_follow_the_least_squares_line() -> None:
    pts = [(100_000.0, 400.0), (1_000_000.0, 2200.0)]
    assert slope(pts) == pytest.approx(0.002)
    assert extrapolate(pts, 10_000_000) == pytest.approx(20_200.0)
    assert slope([(1.0, 1.0), (1.0, 5.0)]) is None and extrapolate([(5.0, 1.0)], 10) is None


def _start(records: int, recovery_s: float, rss: float = 300.0, ready_s: float = 5.0
           ) -> dict[str, float]:
    return {"restored_records": records, "recovery_s": recovery_s, "ready_s": ready_s,
            "rss_mb": rss, "open_s": 0.5}


def _case(store: str, users: int, rss: float, after: float, wiped: bool = True
          ) -> dict[str, object]:
    case: dict[str, object] = {
        "store": store, "users": users, "first_start": _start(users, users / 1000, rss),
        "stream": {"rss_mb": after}, "restart_intact": _start(0, 0.1, rss)}
    if store == "rocksdb":
        case["disk_bytes"] = users * 500
        if wiped:
            case["restart_wiped"] = _start(2 * users, users / 1000)
    else:
        case["restart_intact"] = _start(2 * users, users / 250)  # a slower replay
    return case


def test_store_summary_gives_bytes_per_user_from_the_slope_and_extrapolates_it() -> None:
    mem = store_summary([_case("memory", 1000, 300.0, 310.0),
                         _case("memory", 11_000, 310.0, 330.0)], to=101_000)
    assert mem["rss_ready_mb"]["per_user"] == 1049.0  # 10 MiB over 10,000 users, 4 digits
    assert mem["rss_after_events_mb"]["per_user"] == 2097.0
    assert mem["first_start_recovery_s"]["per_user"] == 0.001  # seconds per user, not rounded away
    assert mem["rss_ready_mb"]["at_101000"] == pytest.approx(400.0)
    assert mem["first_start_recovery_s"]["at_101000"] == pytest.approx(101.0)
    assert mem["disk_bytes"]["per_user"] is None  # the memory store writes no files
    assert mem["recovery_records_per_s"] == pytest.approx(1000.0)
    disk = store_summary([_case("rocksdb", 1000, 300.0, 300.0),
                          _case("rocksdb", 3000, 300.0, 300.0)], to=10_000)
    assert disk["disk_bytes"]["per_user"] == pytest.approx(500.0)
    assert disk["rss_ready_mb"]["per_user"] == 0.0
    one = store_summary([_case("rocksdb", 1000, 300.0, 300.0)], to=10_000)
    assert one["rss_ready_mb"] == {"per_user": None, "at_10000": None}  # one size: no slope


def test_verdicts_miss_when_rocksdb_rss_outgrows_its_caches_or_intact_restart_is_slow() -> None:
    bound = 256.0  # the store's memory budget, MiB
    flat = [_case("rocksdb", 1000, 300.0, 320.0), _case("rocksdb", 100_000, 350.0, 400.0)]
    got = verdicts(flat, bound)
    assert got["rocksdb_rss_growth_mb"]["ok"] and got["rocksdb_intact_ready_s"]["ok"]
    assert got["rocksdb_rss_growth_mb"]["target"] == bound
    growing = [flat[0], _case("rocksdb", 100_000, 350.0, 320.0 + bound + 1)]
    assert not verdicts(growing, bound)["rocksdb_rss_growth_mb"]["ok"]
    slow = [_case("rocksdb", 1000, 300.0, 320.0)]
    slow[0]["restart_intact"] = _start(0, 0.1, ready_s=10.0)
    assert not verdicts(slow, bound)["rocksdb_intact_ready_s"]["ok"]


def test_config_refuses_an_unknown_store() -> None:
    with pytest.raises(ValueError, match="stores"):
        StateBenchConfig(stores=("disk",))
    with pytest.raises(ValueError, match="positive"):
        StateBenchConfig(users=(0,))
    with pytest.raises(ValueError, match="positive"):
        StateBenchConfig(state_memory_mb=0)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.extended  # ~1 min: five worker starts
def test_seeded_users_are_recovered_updated_in_place_and_restored_per_store(
        tiny: Path, tmp_path: Path) -> None:
    users, events = 300, 600
    cfg = StateBenchConfig(users=(users,), events=events, items=1000, data=str(tiny),
                           session_timeout_s=3.0, workdir=tmp_path / "work",
                           json=tmp_path / "out.json")
    doc = run_bench_state(cfg)
    assert json.loads((tmp_path / "out.json").read_text())["cases"] == doc["cases"]
    mem, disk = doc["cases"]
    for case in (mem, disk):
        # every seeded record is recovered (Tansu's end offset) and the worker's writes
        # replace the seeded states (same key bytes and partition): no second copy of a user
        assert case["first_start"]["restored_records"] == users
        assert case["first_start"]["users_in_state"] == users
        assert case["stream"]["users_in_state"] == users
        assert case["stream"]["events"] == events and case["stream"]["events_per_s"] > 0
    assert disk["restart_intact"]["restored_records"] == 0
    assert disk["restart_intact"]["users_in_state"] == users
    replayed = disk["restart_wiped"]["restored_records"]
    assert replayed > users and mem["restart_intact"]["restored_records"] > users
    assert disk["restart_wiped"]["users_in_state"] == mem["restart_intact"]["users_in_state"] \
        == users
    assert disk["disk_bytes"] > 0 and doc["verdicts"]["rocksdb_intact_recovery_s"]["ok"]
