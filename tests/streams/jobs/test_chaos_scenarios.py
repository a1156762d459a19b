"""Every fault at test size (``make chaos`` runs the same scenarios at 20,000 events).

Each scenario starts a broker, Redis and real worker processes of its own, injects its fault in
the middle of a replay and checks the whole end state against a clean run (user states large
enough to hold every event): no event lost, none applied twice, each user's sequence, dedup ids
and ordered items as a clean run leaves them, every touched user's list in Redis from their last
event, and all of it still so after a settling pause.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from streams.jobs.chaos_scenarios import (
    ChaosConfig,
    broker_restart,
    crash,
    crash_corrupt,
    crash_wipe,
    graceful,
    redis_outage,
    scale_out,
    scale_out_3,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CFG = ChaosConfig(events=3_000, rate=600.0, kills=2, outage_s=6.0, timeout_s=150.0,
                  store="memory")
DISK = dataclasses.replace(CFG, store="rocksdb")  # SIDSTREAM_STORE=rocksdb


def test_redis_outage_is_survived_and_lists_catch_up(tmp_path: Path) -> None:
    result = redis_outage(CFG, tmp_path)
    assert result.ok, result.line()
    assert result.notes["redis_errors"] > 0 and result.notes["ready_after"]
    assert result.notes["settled_s"] > 0


def test_sigkilled_worker_restarted_twice_loses_and_repeats_nothing(tmp_path: Path) -> None:
    result = crash(CFG, tmp_path)
    assert result.ok, result.line()


@pytest.mark.parametrize("scenario", [scale_out, scale_out_3], ids=["2-workers", "3-workers"])
def test_worker_joining_and_leaving_mid_replay_loses_and_repeats_nothing(
        scenario: object, tmp_path: Path) -> None:
    result = scenario(CFG, tmp_path)  # type: ignore[operator]
    assert result.ok, result.line()


def test_sigterm_commits_and_flushes_so_the_successor_redoes_nothing(tmp_path: Path) -> None:
    result = graceful(CFG, tmp_path)
    assert result.ok, result.line()
    assert result.notes["exit_code"] == 0 and result.notes["redelivered_after_sigterm"] == 0


def test_after_a_broker_restart_restarted_workers_serve_every_new_event_once(
        tmp_path: Path) -> None:
    """The embedded broker is in memory: what it held is lost (counted), but events sent once
    the restarted worker is ready are applied exactly once and answered in Redis."""
    result = broker_restart(CFG, tmp_path)
    assert result.ok, result.line()
    assert result.events > 0 and result.notes["lost_with_broker"] > 0


# --- the same faults with the user state on disk (SIDSTREAM_STORE=rocksdb) ---
# `make test` runs the crash on the disk store; wiped, corrupted and ahead-of-changelog local
# state are covered by tests/streams/runtime/test_worker_disk_store.py. The other scenarios on
# the disk store are `extended` (`pytest -m extended`): the suite has a 20-minute budget.


def test_sigkilled_disk_worker_restarted_on_its_local_state_loses_and_repeats_nothing(
        tmp_path: Path) -> None:
    result = crash(DISK, tmp_path)
    assert result.ok, result.line()
    assert result.notes["discarded_unreadable"] == result.notes["discarded_ahead"] == 0


@pytest.mark.extended
def test_sigkilled_disk_worker_restarted_on_a_wiped_disk_rebuilds_the_exact_state(
        tmp_path: Path) -> None:
    result = crash_wipe(CFG, tmp_path)
    assert result.ok, result.line()
    assert result.notes["restored_records"] > 0 and result.notes["files_damaged"][0] > 0


@pytest.mark.extended
def test_sigkilled_disk_worker_restarted_on_corrupt_files_rebuilds_not_half_serves(
        tmp_path: Path) -> None:
    result = crash_corrupt(CFG, tmp_path)
    assert result.ok, result.line()
    assert result.notes["discarded_unreadable"] > 0 and result.notes["restored_records"] > 0


@pytest.mark.extended
def test_disk_workers_joining_and_leaving_with_standby_replicas_lose_nothing(
        tmp_path: Path) -> None:
    result = scale_out(DISK, tmp_path)
    assert result.ok, result.line()


@pytest.mark.extended
def test_sigterm_then_restart_on_the_same_disk_state_redoes_nothing(tmp_path: Path) -> None:
    result = graceful(DISK, tmp_path)
    assert result.ok, result.line()
    assert result.notes["redelivered_after_sigterm"] == 0
    assert result.notes["discarded_unreadable"] == result.notes["discarded_ahead"] == 0


@pytest.mark.extended
def test_disk_state_of_a_broker_that_lost_its_log_is_discarded_not_served(
        tmp_path: Path) -> None:
    result = broker_restart(DISK, tmp_path)
    assert result.ok, result.line()
    assert result.notes["discarded_ahead"] > 0


def test_the_scenarios_store_is_sidstream_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """``SIDSTREAM_STORE=rocksdb sidstream chaos ...`` runs every scenario on the disk store."""
    monkeypatch.setenv("SIDSTREAM_STORE", "rocksdb")
    assert ChaosConfig().store == "rocksdb"
    monkeypatch.delenv("SIDSTREAM_STORE")
    assert ChaosConfig().store == "memory"
