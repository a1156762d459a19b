"""The fault scenarios' end-state check: what it counts as lost, doubled or diverged."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.contracts.events import Event
from streams.jobs import chaos
from streams.jobs.chaos import Result, _user_diff, compare, converge, whole_state_env
from streams.jobs.chaos_scenarios import ChaosConfig, label
from streams.pipeline.state import StateLimits, UserState, apply_events
from streams.settings import Settings

LIMITS = StateLimits(seq_len=100, dedup_window=100)


def _events(n: int, user: int = 7) -> list[Event]:
    return [Event(f"e{i}", user, 100 + i, "order" if i % 3 == 0 else "click", 1_000 + i)
            for i in range(n)]


def _state(events: list[Event]) -> dict[str, object]:
    state = UserState(events[0].user_id)
    for ev in events:  # one at a time: a doubled event is applied again as a new one would be
        apply_events(state, [ev], LIMITS)
    return state.to_json()


def test_a_lost_and_a_doubled_event_that_cancel_out_are_both_caught() -> None:
    """The count alone matches (a lost event early on, another applied twice): the whole
    sequence and dedup ids show both."""
    events = _events(60)
    want = UserState(7)
    apply_events(want, events, LIMITS)
    got = _state(events[:2] + events[3:])  # e2 lost
    e40 = events[40]
    got["ids"].insert(40, e40.event_id)  # type: ignore[attr-defined]  # e40 applied twice
    got["seq"].insert(40, [e40.item_id, e40.type, e40.ts])  # type: ignore[attr-defined]
    got["n"] = want.n_events  # the count cannot tell
    lost, dup, fields = _user_diff(want, got)
    assert (lost, dup) == (1, 1)
    assert fields == ["ids", "seq"]


def test_events_in_another_order_are_a_divergence_not_a_loss() -> None:
    events = _events(10)
    want = UserState(7)
    apply_events(want, events, LIMITS)
    got = _state([*events[:4], events[5], events[4], *events[6:]])
    assert _user_diff(want, got) == (0, 0, ["ids", "seq"])
    assert _user_diff(want, _state(events)) == (0, 0, [])
    assert _user_diff(want, None) == (10, 0, ["missing"])


def test_the_check_refuses_a_state_too_small_to_hold_every_event() -> None:
    events = _events(12)
    assert whole_state_env(events) == {"SIDSTREAM_SEQ_LEN": "12",
                                       "SIDSTREAM_DEDUP_WINDOW": "12"}
    small = Settings.from_env({"SIDSTREAM_SEQ_LEN": "11", "SIDSTREAM_DEDUP_WINDOW": "12"})
    with pytest.raises(ValueError, match="SIDSTREAM_SEQ_LEN and SIDSTREAM_DEDUP_WINDOW >= 12"):
        compare("x", small, events)


def test_a_late_write_after_the_first_clean_check_fails_the_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``converge`` passes only if the state still matches after settling."""
    results = iter([Result("x", 1, 1, lost=1), Result("x", 1, 1), Result("x", 1, 1,
                                                                        duplicated=1)])
    monkeypatch.setattr(chaos, "compare", lambda *a: next(results))
    monkeypatch.setattr(chaos.time, "sleep", lambda s: None)
    out = converge("x", Settings(), [], timeout_s=60, settle_s=0.0)
    assert not out.ok and out.duplicated == 1


def test_disk_damage_hits_every_table_file_and_nothing_else(tmp_path: Path) -> None:
    """What the crash-wipe and crash-corrupt scenarios do to a worker's data dir."""
    db = tmp_path / "v1" / "tables" / "user-state-3.db"
    db.mkdir(parents=True)
    for name, data in (("CURRENT", b"MANIFEST-000005\n"), ("000004.log", b"x" * 1000),
                       ("LOCK", b"")):
        (db / name).write_bytes(data)
    other = tmp_path / "v1" / "other.txt"
    other.write_bytes(b"keep")
    assert [f.name for f in chaos.table_files(tmp_path)] == ["000004.log", "CURRENT"]
    assert chaos.corrupt_local_state(tmp_path) == 2
    assert (db / "CURRENT").read_bytes() != b"MANIFEST-000005\n"
    assert (db / "000004.log").stat().st_size == 1000 and (db / "LOCK").read_bytes() == b""
    assert other.read_bytes() == b"keep"
    assert chaos.wipe_local_state(tmp_path) == 2 and not tmp_path.exists()


def test_static_members_are_one_per_data_dir_and_a_restart_is_the_same_member(
        tmp_path: Path) -> None:
    """Two workers sharing one group.instance.id fence each other; a restart under a new id
    would wait out the old member's session."""
    static = Settings.from_env({}, group_instance_id="chaos")
    first, second = tmp_path / "faust0", tmp_path / "faust1"
    ids = [chaos.worker_env(static, d)["SIDSTREAM_GROUP_INSTANCE_ID"]
           for d in (first, second, first)]
    assert ids[0] != ids[1] and ids[0] == ids[2] == "chaos-faust0"
    env = chaos.worker_env(Settings.from_env({}), first)
    assert env["SIDSTREAM_GROUP_INSTANCE_ID"] == "" and env["SIDSTREAM_DATA_DIR"] == str(first)
    assert Settings.from_env(env).kafka.group_instance_id == ""  # dynamic, as configured


def test_a_static_membership_run_takes_its_id_from_the_shell_and_says_so() -> None:
    """SIDSTREAM_GROUP_INSTANCE_ID of the shell must reach the scenario's config (its settings
    are built from an explicit environment, which dropped it) and show in the result's name."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIDSTREAM_GROUP_INSTANCE_ID", "chaos")
        mp.setenv("SIDSTREAM_STORE", "rocksdb")
        cfg = ChaosConfig()
    assert cfg.group_instance_id == "chaos"
    assert label("sigterm", cfg) == "sigterm [rocksdb, static members]"
    assert label("sigterm", ChaosConfig(store="memory", group_instance_id="")) == "sigterm"
