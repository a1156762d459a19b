"""The demo's pacing defaults and its progress lines (the run itself: README, `make demo`)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import generate_latest

from infra.scrape import Snapshot, parse
from streams.cli.main import main
from streams.jobs import demo
from streams.metrics import Metrics


@pytest.mark.parametrize(("argv", "rate", "limit"), [
    ([], demo.DEFAULT_RATE, demo.DEFAULT_LIMIT),  # paced by default: lists stay fresh
    (["--fast"], 0.0, demo.DEFAULT_LIMIT),  # as fast as the producer goes
    (["--rate", "50", "--limit", "0"], 50.0, 0),
])
def test_the_demo_is_paced_unless_asked_to_flood(monkeypatch: pytest.MonkeyPatch,
                                                  argv: list[str], rate: float, limit: int
                                                  ) -> None:
    seen: list[demo.DemoConfig] = []
    monkeypatch.setattr(demo, "run_demo", lambda cfg: seen.append(cfg) or 0)
    assert main(["demo", *argv]) == 0
    assert (seen[0].rate, seen[0].limit) == (rate, limit)
    assert demo.DEFAULT_RATE > 0


def _snap(m: Metrics) -> Snapshot:
    return parse(generate_latest(m.registry).decode())


def test_progress_shows_queued_events_and_the_freshness_of_the_interval() -> None:
    m = Metrics()
    for _ in range(100):
        m.freshness.observe(60.0)  # a stale start: not part of the next interval
    prev = _snap(m)
    m.events.labels("click").inc(500)
    m.accounted.labels("list_written").inc(300)
    m.accounted.labels("coalesced").inc(100)
    m.recs_written.inc(300)
    m.lag.set(250)
    for _ in range(300):
        m.freshness.observe(0.04)
    progress = demo.Progress(worker=Any, every_s=1.0)  # type: ignore[arg-type]
    line = progress.line(_snap(m), prev, dt=2.0)
    # 400 answered in 2 s; queued = 250 unread + 100 applied but not yet answered
    assert "answered     200 events/s" in line and "150 lists/s" in line
    assert "queued     350 events" in line and progress.max_queued == 350
    assert "freshness p99       50 ms" in line  # the interval's lists only (0.025-0.05 bucket)
