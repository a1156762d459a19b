import gc

from streams.metrics import Metrics
from streams.runtime.gc_pauses import unwatch_gc, watch_gc


def test_each_collection_is_observed_under_its_generation() -> None:
    metrics = Metrics()
    callback = watch_gc(metrics.gc_pause)
    try:
        gc.collect(2)
        gc.collect(0)
    finally:
        unwatch_gc(callback)
    gc.collect(2)  # no longer watched
    full = metrics.registry.get_sample_value("sidstream_gc_pause_seconds_count",
                                             {"generation": "2"})
    young = metrics.registry.get_sample_value("sidstream_gc_pause_seconds_count",
                                              {"generation": "0"})
    assert full == 1 and young is not None and young >= 1
    assert metrics.registry.get_sample_value("sidstream_gc_pause_seconds_sum",
                                             {"generation": "2"}) > 0
