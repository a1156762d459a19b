"""Every fault at test size (``make chaos`` runs the same scenarios at 20,000 events).

Each scenario starts a broker, Redis and real worker processes of its own, injects its fault in
the middle of a replay and checks the whole end state against a clean run (user states large
enough to hold every event): no event lost, none applied twice, each user's sequence, dedup ids
and ordered items as a clean run leaves them, every touched user's list in Redis from their last
event, and all of it still so after a settling pause.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.jobs.chaos_scenarios import (
    ChaosConfig,
    broker_restart,
    crash,
    graceful,
    redis_outage,
    scale_out,
    scale_out_3,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CFG = ChaosConfig(events=3_000, rate=600.0, kills=2, outage_s=6.0, timeout_s=150.0)


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
