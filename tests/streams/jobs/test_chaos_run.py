"""``sidstream chaos`` refuses an unknown scenario before it starts anything."""

from __future__ import annotations

import pytest

from streams.jobs.chaos_run import run_chaos
from streams.jobs.chaos_scenarios import SCENARIOS, ChaosConfig


def test_unknown_scenario_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown scenario") as err:
        run_chaos(["crash", "meteor"], ChaosConfig(events=10))
    assert "meteor" in str(err.value)
    assert all(name in str(err.value) for name in SCENARIOS)
