"""``sidstream bench stream`` end to end on tiny models (figures are not asserted: a smoke run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.jobs.bench_stream import StreamBenchConfig, cases, run_bench_stream

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_cases_cover_limit_beams_and_fixed_load() -> None:
    names = [c.name for c in cases(StreamBenchConfig(beams=(20, 5), rates=(300, 100)))]
    assert names == ["limit", "full beam 20", "full beam 5", "full beam 20 @ 300/s",
                     "full beam 20 @ 100/s"]


def test_bench_stream_runs_every_case(trained_models: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    data = trained_models.parent / "data"
    out = tmp_path / "bench.json"
    results = run_bench_stream(StreamBenchConfig(
        data=str(data), model_dir=trained_models, warm_events=300, events=300, rates=(100,),
        rate_seconds=2, beams=(4,), json=out))
    assert [r.name for r in results] == ["limit", "full beam 4", "full beam 4 @ 100/s"]
    assert all(r.events_per_s > 0 and r.rss_mb > 0 and r.cpu_cores > 0 for r in results)
    assert "generative" in results[1].stages_ms and "generative" not in results[0].stages_ms
    assert "search" in results[1].stages_ms and results[1].mean_job_users >= 1
    assert set(results[-1].freshness_ms) == {"p50", "p95", "p99"}
    assert "stream bench: full pipeline" in capsys.readouterr().out
    assert len(json.loads(out.read_text())["results"]) == 3
    for r in results:  # every measured event ends with its list in Redis, or coalesced into one
        assert sum(r.accounted.values()) >= r.events, (r.name, r.accounted)
        assert r.accounted["list_written"] > 0 and set(r.accounted) <= {
            "list_written", "coalesced", "duplicate"}, (r.name, r.accounted)
