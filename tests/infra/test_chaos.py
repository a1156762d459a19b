"""The Redis-outage fault at test size (``make chaos`` runs every scenario at 20,000 events).

Crash, scale-out and SIGTERM run in ``make chaos`` only: rebalances in the middle of a replay
still lose an event now and then (see the README, "known issue"), and a flaky test would hide
real failures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.chaos_scenarios import ChaosConfig, redis_outage

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CFG = ChaosConfig(events=3_000, rate=600.0, kills=2, outage_s=6.0, timeout_s=150.0)


def test_redis_outage_is_survived_and_lists_catch_up(tmp_path: Path) -> None:
    result = redis_outage(CFG, tmp_path)
    assert result.ok, result.line()
    assert result.notes["redis_errors"] > 0 and result.notes["ready_after"]
