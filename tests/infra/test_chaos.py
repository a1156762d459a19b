"""Faults at test size (``make chaos`` runs them at 20,000 events).

The scale-out scenario runs in ``make chaos`` only: about one run in five still loses one event
to a rebalance at the start of a fresh consumer group (see the README, "known issue").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.chaos_scenarios import ChaosConfig, crash, graceful, redis_outage

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CFG = ChaosConfig(events=3_000, rate=600.0, kills=2, outage_s=6.0, timeout_s=150.0)


def test_worker_crash_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    result = crash(CFG, tmp_path)
    assert result.ok, result.line()


def test_redis_outage_is_survived_and_lists_catch_up(tmp_path: Path) -> None:
    result = redis_outage(CFG, tmp_path)
    assert result.ok, result.line()
    assert result.notes["redis_errors"] > 0 and result.notes["ready_after"]


def test_sigterm_finishes_the_batch_and_commits(tmp_path: Path) -> None:
    result = graceful(CFG, tmp_path)
    assert result.ok, result.line()
    assert result.notes["exit_code"] == 0 and result.notes["redelivered_after_sigterm"] == 0
