import math

from infra.scrape import histogram_quantile, parse
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
