import math

from infra.scrape import Snapshot, accounted, histogram_quantile, parse
from streams.metrics import Metrics


def test_quantiles_from_a_real_histogram() -> None:
    m = Metrics()
    for v in [0.004] * 50 + [0.09] * 49 + [20.0]:
        m.freshness.observe(v)
    from prometheus_client import generate_latest

    snap = parse(generate_latest(m.registry).decode())
    assert snap.get("sidstream_freshness_seconds_count") == 100
    assert 0 < snap.quantile("sidstream_freshness_seconds", 0.5) <= 0.005
    assert 0.075 < snap.quantile("sidstream_freshness_seconds", 0.99) <= 0.1
    assert math.isnan(histogram_quantile(0.5, []))


def test_an_event_counts_once_its_list_is_in_redis_not_once_applied() -> None:
    """The benches' throughput counts what reached Redis (and duplicates and rejects, whose
    outcome is final too), never ``sidstream_events_total`` (applied to the state)."""
    def snap(**totals: float) -> Snapshot:
        return Snapshot({(name, ()): value for name, value in totals.items()})

    before = snap(sidstream_events_total=100, sidstream_events_accounted_total=90)
    now = snap(sidstream_events_total=200, sidstream_events_accounted_total=150,
               sidstream_events_duplicate_total=3, sidstream_events_invalid_total=2)
    assert accounted(now) - accounted(before) == 65  # 60 lists written, 3 duplicates, 2 rejects
