"""Metric names carry their unit, histograms their explicit buckets (the SRE contract)."""

from __future__ import annotations

from prometheus_client import Histogram

from streams.metrics import BATCH_BUCKETS, FRESHNESS_BUCKETS, STAGE_BUCKETS, Metrics

UNITS = ("_total", "_seconds", "_messages", "_lists", "_users", "_items", "_partitions",
         "_size", "_info", "_ready", "_bytes", "_entries")


def test_every_metric_is_namespaced_and_names_its_unit() -> None:
    m = Metrics()
    families = list(m.registry.collect())
    assert len(families) >= 25
    for mf in families:
        assert mf.name.startswith("sidstream_"), mf.name
        # a counter family is named without its _total suffix, which every sample carries
        assert mf.type == "counter" or any(u in mf.name for u in UNITS), mf.name


def test_histograms_use_the_declared_buckets() -> None:
    m = Metrics()
    hists = {name: h for name, h in vars(m).items() if isinstance(h, Histogram)}
    assert set(hists) == {"freshness", "stage", "batch_size", "job_users", "gc_pause"}
    declared = {"freshness": FRESHNESS_BUCKETS, "stage": STAGE_BUCKETS,
                "batch_size": BATCH_BUCKETS, "job_users": BATCH_BUCKETS,
                "gc_pause": STAGE_BUCKETS}
    labelled = {"stage": "batch", "gc_pause": "2"}
    m.stage.labels("batch").observe(0.01)
    for name, h in hists.items():
        sample_owner = h.labels(labelled[name]) if name in labelled else h
        bounds = [b for b in sample_owner._upper_bounds if b != float("inf")]
        assert tuple(bounds) == tuple(float(b) for b in declared[name]), name


def test_two_workers_in_one_process_do_not_share_a_registry() -> None:
    a, b = Metrics(), Metrics()
    a.recs_written.inc(3)
    assert b.registry.get_sample_value("sidstream_recs_written_total") == 0
    assert a.registry.get_sample_value("sidstream_recs_written_total") == 3


def test_known_label_values_exist_at_zero_before_their_first_count() -> None:
    """A series born at 1 gives ``increase`` nothing to compare: the first refused model or
    dead-lettered event would neither show on the dashboard nor fire its alert."""
    from streams.contracts.events import EVENT_TYPES, REASONS
    from streams.metrics import OUTCOMES
    from streams.runtime.model_watcher import KINDS, ModelWatcher
    from streams.settings import Settings
    from tests.fixtures.pipelines import make_pipeline

    _, m = make_pipeline()
    ModelWatcher(Settings.from_env({}), m)
    value = m.registry.get_sample_value
    for kind in KINDS:
        assert value("sidstream_model_refused_total", {"kind": kind}) == 0
        assert value("sidstream_model_swaps_total", {"kind": kind}) == 0
    for reason in REASONS:
        assert value("sidstream_events_invalid_total", {"reason": reason}) == 0
    for etype in EVENT_TYPES:
        assert value("sidstream_events_total", {"type": etype}) == 0
    for outcome in OUTCOMES:
        assert value("sidstream_events_accounted_total", {"outcome": outcome}) == 0
    for result in ("hit", "miss"):
        assert value("sidstream_recall_cache_total", {"result": result}) == 0
