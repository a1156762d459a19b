"""Prometheus metrics of a worker, on their own registry (no global state at import time).

Units are in the names; every histogram has explicit buckets. Labelled counters whose label
values are known are created at zero by their owners (the pipeline, the model watcher, the
generative channel): a series that first appears at 1 gives ``rate``/``increase`` nothing to
compare, so the first refused model or dead-lettered event would not show or alert.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FRESHNESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0,
                     2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)

# What answered an applied event (label values of sidstream_events_accounted_total).
OUTCOMES = ("list_written", "coalesced", "no_recompute", "dropped_deferred")

# Why a partition's local table state was deleted and rebuilt from the changelog (label values
# of sidstream_state_discarded_total; streams/runtime/disk_store.py, recovery_check.py).
DISCARD_REASONS = ("unreadable", "ahead_of_changelog")

# Structures of a worker that grow with its users or items (label values of the
# sidstream_memory_* gauges; measured by streams/runtime/memory.py, where each is described).
MEMORY_COMPONENTS = ("user_state", "state_cache", "covisit", "popularity", "recall_cache",
                     "prefix_cache", "debounce", "catalogue", "upsert_log", "redis_pending",
                     "coldstart_bandit")

# Pipeline stages (label values of sidstream_stage_seconds).
STAGES = ("validate", "state", "recall", "generative", "coldstart", "rank", "ranker", "redis",
          "dlq", "batch")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("sidstream_events_total", "Valid events applied, by type",
                              ["type"], registry=r)
        self.invalid = Counter("sidstream_events_invalid_total",
                               "Messages rejected to the dead-letter topic, by reason",
                               ["reason"], registry=r)
        self.duplicates = Counter("sidstream_events_duplicate_total",
                                  "Redelivered events skipped by the dedup window", registry=r)
        self.unknown_items = Counter("sidstream_events_unknown_item_total",
                                     "Events accepted on items missing from the catalogue",
                                     registry=r)
        self.items = Counter("sidstream_items_total", "Catalogue upserts applied", registry=r)
        self.profiles = Counter("sidstream_profiles_total", "User profiles applied", registry=r)
        self.accounted = Counter("sidstream_events_accounted_total",
                                 "Applied events by what answered them: list_written (the "
                                 "newest event behind a list now in Redis), coalesced (answered "
                                 "by that same write), no_recompute (a type that triggers none), "
                                 "dropped_deferred (a deferred recompute dropped on a rebalance)",
                                 ["outcome"], registry=r)
        self.recs_written = Counter("sidstream_recs_written_total",
                                    "Recommendation lists written to Redis", registry=r)
        self.redis_errors = Counter("sidstream_redis_errors_total",
                                    "Failed Redis write attempts", registry=r)
        self.freshness = Histogram("sidstream_freshness_seconds",
                                   "Latest event timestamp to Redis write, per list",
                                   buckets=FRESHNESS_BUCKETS, registry=r)
        self.stage = Histogram("sidstream_stage_seconds", "Wall time per pipeline stage per batch",
                               ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.gc_pause = Histogram("sidstream_gc_pause_seconds",
                                  "Pauses of Python's cyclic garbage collector, by generation "
                                  "(the whole process stops meanwhile)", ["generation"],
                                  buckets=STAGE_BUCKETS, registry=r)
        self.batch_size = Histogram("sidstream_batch_size", "Messages per micro-batch",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.job_users = Histogram("sidstream_model_job_users",
                                   "Users per model-stage job (micro-batches joined while the "
                                   "models lag)", buckets=BATCH_BUCKETS, registry=r)
        self.pending_writes = Gauge("sidstream_redis_pending_lists",
                                    "Lists waiting for Redis to come back", registry=r)
        self.assigned = Gauge("sidstream_assigned_partitions",
                              "Event partitions assigned to this worker", registry=r)
        self.ready = Gauge("sidstream_ready",
                           "1 when partitions are assigned and table recovery is done",
                           registry=r)
        self.refused_acks = Gauge("sidstream_skipped_messages",
                                  "Messages faust skipped in a rebalance/stop, left uncommitted "
                                  "to be fetched again", registry=r)
        self.lag = Gauge("sidstream_consumer_lag_messages",
                         "Events not yet read from this worker's partitions (broker high "
                         "watermark minus read position)", registry=r)
        self.users = Gauge("sidstream_users_in_state", "Users held in this worker's table",
                           registry=r)
        # --- the user-state table's local store (streams/runtime/state_table.py) ---
        self.state_restored = Counter("sidstream_state_restored_records_total",
                                      "Changelog records applied to the local user-state table "
                                      "(recovery after a start or rebalance, standby replicas)",
                                      registry=r)
        self.state_discarded = Counter("sidstream_state_discarded_total",
                                       "Table partitions whose local state was deleted and "
                                       "rebuilt from the changelog, by reason", ["reason"],
                                       registry=r)
        for reason in DISCARD_REASONS:
            self.state_discarded.labels(reason)
        self.covisit_items = Gauge("sidstream_covisit_items", "Items in the co-visitation index",
                                   registry=r)
        # --- models (streams/runtime/model_watcher.py) and incremental work ---
        self.model_info = Gauge("sidstream_model_info", "1 for each model version being served",
                                ["kind", "version"], registry=r)
        self.model_refused = Counter("sidstream_model_refused_total",
                                     "Artifacts refused as corrupt or incompatible", ["kind"],
                                     registry=r)
        self.model_swaps = Counter("sidstream_model_swaps_total",
                                   "Hot swaps to a new artifact version", ["kind"], registry=r)
        self.candidates = Counter("sidstream_recall_candidates_total",
                                  "Candidates recalled, by channel (after quotas)", ["channel"],
                                  registry=r)
        self.recomputes = Counter("sidstream_recomputes_total",
                                  "Users whose list was recomputed", registry=r)
        self.debounced = Counter("sidstream_recomputes_debounced_total",
                                 "Recomputes postponed by the per-user debounce interval",
                                 registry=r)
        self.merged_batches = Counter("sidstream_batches_merged_total",
                                      "Micro-batches that joined one waiting for the models "
                                      "(the models lag: batches grow)", registry=r)
        self.deferred = Gauge("sidstream_recomputes_deferred_users",
                              "Users with a postponed recompute", registry=r)
        self.recall_cache = Counter("sidstream_recall_cache_total",
                                    "Generative recall LRU lookups, by result", ["result"],
                                    registry=r)
        # --- memory (streams/runtime/memory.py) ---
        self.resident = Gauge("sidstream_process_resident_bytes",
                              "Resident set size of the worker process (not its search "
                              "process), read from /proc at each scrape", registry=r)
        self.resident.set_function(resident_bytes)
        self.memory_bytes = Gauge("sidstream_memory_bytes",
                                  "Estimated heap bytes of a structure that grows with users or "
                                  "items (sampled deep sizes; tensors exactly)", ["component"],
                                  registry=r)
        self.memory_entries = Gauge("sidstream_memory_entries",
                                    "Entries (users, items, lists, tokens) of such a structure",
                                    ["component"], registry=r)
        self.memory_bound = Gauge("sidstream_memory_bound_entries",
                                  "The setting that bounds sidstream_memory_entries (0: none)",
                                  ["component"], registry=r)
        for component in MEMORY_COMPONENTS:
            for gauge in (self.memory_bytes, self.memory_entries, self.memory_bound):
                gauge.labels(component)
        self.backpressure = Counter("sidstream_redis_backpressure_seconds_total",
                                    "Time the model stage waited for Redis because "
                                    "SIDSTREAM_REDIS_PENDING_MAX lists were pending", registry=r)
        self.catalogue_models = Counter("sidstream_catalogue_items_modelled_total",
                                        "Catalogue upserts given a SID and ranker features",
                                        registry=r)


def resident_bytes() -> float:
    """This process's resident set size (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return float(int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return 0.0
