"""``sidstream bench stream`` end to end on tiny models (figures not asserted), and its checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.jobs.bench_stream import (
    CaseResult,
    StreamBenchConfig,
    cases,
    checks,
    history_lengths,
    run_bench_stream,
    shares,
    third_rate_case,
)
from streams.jobs.replay import Interaction


def _res(name: str, eps: float, offered: float = 0.0, **kw: object) -> CaseResult:
    return CaseResult(name, 100, 1.0, eps, offered, **kw)  # type: ignore[arg-type]


def test_checks_compare_full_with_limit_and_limit_with_bare() -> None:
    got = checks([_res("bare", 4000), _res("limit", 1900), _res("full beam 20", 1200),
                  _res("full beam 20 @ 1/3 = 400/s", 400, 400.0, freshness_ms={"p99": 620.0}),
                  _res("full beam 20 @ 300/s", 300, 300.0, freshness_ms={"p99": 120.0})], beam=20)
    assert got["full_over_limit"]["value"] == pytest.approx(1200 / 1900, abs=1e-3)
    assert got["full_over_limit"]["ok"] and got["full_events_per_s"]["ok"]
    assert got["limit_over_bare"]["value"] == pytest.approx(1900 / 4000, abs=1e-3)
    assert not got["limit_over_bare"]["ok"]  # 47 % < 50 %
    assert not got["p99_ms_at_one_third"]["ok"] and got["p99_ms_at_300"]["ok"]


def test_shares_split_the_gap_between_framework_and_worker() -> None:
    got = shares([_res("bare", 20000), _res("faust floor", 5000), _res("limit", 2000)])
    assert got == {"floor_over_bare": 0.25, "limit_over_floor": 0.4}
    assert shares([_res("bare", 20000), _res("limit", 2000)]) == {}  # no floor measured


def test_third_rate_case_runs_at_a_third_of_the_measured_throughput() -> None:
    cfg = StreamBenchConfig(beams=(20,), warm_events=100, rate_seconds=10)
    case = third_rate_case(cfg, _res("full beam 20", 1200), n_order=100_000)
    assert case.rate == 400 and case.env == {"SIDSTREAM_BEAM": "20"} and "1/3" in case.name
    # never more events than the data set has after the warm-up
    assert third_rate_case(cfg, _res("full beam 20", 1200), n_order=1100).rate == 100


def test_history_lengths_count_each_users_earlier_events() -> None:
    order = [Interaction(u, 1, "order", p) for u, p in
             ((1, 0), (2, 0), (1, 1), (1, 2), (2, 1), (3, 0))]
    got = history_lengths(order, warm=2, n=3)  # measured: user 1 (1, 2 before), user 2 (1)
    assert got["measured_mean"] == pytest.approx(4 / 3, abs=0.01)
    assert got["all_events_mean"] == pytest.approx((0 + 0 + 1 + 2 + 1 + 0) / 6, abs=0.01)


@pytest.mark.integration
@pytest.mark.slow
def test_cases_cover_limit_beams_and_fixed_load() -> None:
    names = [c.name for c in cases(StreamBenchConfig(beams=(20, 5), rates=(300, 100)))]
    assert names == ["limit", "full beam 20", "full beam 5", "full beam 20 @ 300/s",
                     "full beam 20 @ 100/s"]


@pytest.mark.integration
@pytest.mark.slow
def test_bench_stream_runs_every_case(trained_models: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    data = trained_models.parent / "data"
    out = tmp_path / "bench.json"
    results = run_bench_stream(StreamBenchConfig(
        data=str(data), model_dir=trained_models, warm_events=300, events=300, rates=(100,),
        rate_seconds=2, beams=(4,), json=out))
    names = [r.name for r in results]
    assert names[:4] == ["bare", "faust floor", "limit", "full beam 4"]
    assert names[-1] == "full beam 4 @ 100/s" and names[4].startswith("full beam 4 @ 1/3 = ")
    bare, floor, limit, full = results[:4]
    for path in (bare, floor):  # every measured event SET, through aiokafka or faust
        assert path.accounted == {"set": 300} and path.events_per_s > 0 and path.peak_rss_mb > 0
    assert all(r.events_per_s > 0 and r.rss_mb > 0 and r.cpu_cores > 0 for r in results[2:])
    assert "generative" in full.stages_ms and "generative" not in limit.stages_ms
    assert "search" in full.stages_ms and full.mean_job_users >= 1
    assert set(results[-1].freshness_ms) == {"p50", "p95", "p99"}
    assert results[4].offered_per_s == pytest.approx(round(full.events_per_s / 3), abs=1) or (
        results[4].offered_per_s < full.events_per_s / 3)  # capped by the data set's events
    assert "stream bench: full pipeline" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert len(doc["results"]) == 6 and doc["history"]["measured_mean"] > 0
    assert {"full_over_limit", "limit_over_bare", "p99_ms_at_one_third"} <= set(doc["checks"])
    assert set(doc["shares"]) == {"floor_over_bare", "limit_over_floor"}
    for r in results[2:]:  # every measured event ends with its list in Redis, or coalesced
        assert sum(r.accounted.values()) >= r.events, (r.name, r.accounted)
        assert r.accounted["list_written"] > 0 and set(r.accounted) <= {
            "list_written", "coalesced", "duplicate"}, (r.name, r.accounted)
