"""Worker settings: one frozen dataclass in sections, read from ``SIDSTREAM_*`` here only.

Each field ``foo_bar`` of a section is set by ``SIDSTREAM_FOO_BAR`` (field names are unique
across sections, so the variables stay flat; the README lists them all). Code reads
``settings.<section>.<field>``; :meth:`Settings.with_values` takes flat field names.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.contracts.events import EVENT_TYPES

ENV_PREFIX = "SIDSTREAM_"
INSTANCE_ID = re.compile(r"[A-Za-z0-9._-]{1,249}")  # Kafka's rule for group.instance.id

STORES = ("memory", "rocksdb")  # values of SIDSTREAM_STORE

# Topic names are part of the public contract.
EVENTS_TOPIC = "sidstream-events"
ITEMS_TOPIC = "sidstream-items"
DLQ_TOPIC = "sidstream-events-dlq"
USERS_TOPIC = "sidstream-users"  # user profiles (streams/contracts/profiles.py)


@dataclass(frozen=True)
class KafkaSettings:
    broker: str = "kafka://127.0.0.1:9092"
    broker_kind: str = "kafka"  # "kafka" or "tansu" (works around Tansu's end-offset quirk)
    app_id: str = "sidstream"  # faust app id: consumer group, changelog topic prefix
    topic_partitions: int = 8
    replication_factor: int = 1
    session_timeout_s: float = 10.0
    # static group membership (Kafka's group.instance.id), one per worker and kept across its
    # restarts (like its data dir): a restarted worker takes its partitions back at once,
    # without waiting for its old session to expire or a rebalance. Empty: dynamic membership
    group_instance_id: str = ""
    fetch_max_wait_ms: int = 20  # see streams.runtime.app.set_fetch_max_wait

    @property
    def heartbeat_interval_s(self) -> float:
        """Consumer-group heartbeat: a fifth of the session timeout, at least 1 s."""
        return max(1.0, self.session_timeout_s / 5)


@dataclass(frozen=True)
class WorkerSettings:
    metrics_port: int = 9108  # /metrics, /livez, /readyz
    data_dir: Path = Path(".sidstream")  # faust's local data (the rocksdb store's files)
    # user-state table: "memory" (rebuilt from the changelog on every start) or "rocksdb"
    # (on disk under data_dir; a restart reads only the changelog tail it has not seen)
    store: str = "memory"
    # warm copies of other workers' table partitions kept by each worker (faust's
    # table_standby_replicas): a failover then reads only the tail of the changelog
    standby_replicas: int = 1
    # the rocksdb store's memory, all partitions together (MiB): one block cache holding data,
    # index and filter blocks, the memtables charged to it (streams/runtime/disk_options.py)
    state_memory_mb: int = 256
    # item ids known to be in the catalogue (the unknown-item check); beyond it new ids are
    # not remembered locally and the Redis mirror answers for them (streams/runtime/catalogue.py)
    catalogue_max_items: int = 1_000_000
    # catalogue upserts kept to replay onto a swapped-in model (2 KB each with their text
    # embedding; the oldest dropped: a later model then serves them only if it knows them)
    upsert_log_max_items: int = 200_000
    # how often the sidstream_memory_* gauges are measured (streams/runtime/memory.py)
    memory_refresh_s: float = 15.0


@dataclass(frozen=True)
class IngestSettings:
    batch_max: int = 500  # micro-batch cap (stream.take)
    batch_within_s: float = 0.05  # how long a partial micro-batch waits
    # users one model-stage job may gather: while the models lag, new micro-batches join the
    # job waiting for them (fewer, larger searches) until it holds this many
    model_batch_max: int = 2000
    max_event_bytes: int = 16_384  # larger payloads go to the DLQ as too_large
    max_id_chars: int = 256
    future_skew_s: int = 3600  # events further in the future are rejected
    min_ts_ms: int = 946_684_800_000  # 2000-01-01: older timestamps are absurd
    trigger_types: str = "view,click,cart,order"  # event types that recompute a user's list
    debounce_ms: int = 0  # minimum interval between two recomputes of one user (0: none)
    # users whose last recompute time the debounce keeps (least recently recomputed forgotten)
    debounce_max_users: int = 1_000_000

    @property
    def triggers(self) -> frozenset[str]:
        """Event types that make a user's list be recomputed."""
        return frozenset(t.strip() for t in self.trigger_types.split(",") if t.strip())


@dataclass(frozen=True)
class StateSettings:
    seq_len: int = 50  # events kept per user
    dedup_window: int = 256  # recent event ids kept per user
    ordered_cap: int = 1000  # ordered items remembered per user (excluded from lists)
    # users whose state the worker holds in its heap: the memory store's whole table, the
    # rocksdb store's states not yet acknowledged by the changelog. A soft bound: the table is
    # the source of truth and is never evicted; past it the worker warns and the
    # SidstreamMemoryNearBound alert fires (use SIDSTREAM_STORE=rocksdb or more workers)
    state_max_users: int = 1_000_000


@dataclass(frozen=True)
class ChannelSettings:
    covisit_window: int = 5  # previous items a new item is co-counted with
    covisit_neighbors: int = 100  # neighbours kept per item
    # item rows kept (the least recently updated dropped): 7-24 KB each (README "Worker memory")
    covisit_max_items: int = 200_000
    history_items: int = 10  # most recent items a user's co-visitation recall starts from
    popularity_half_life_s: float = 3 * 24 * 3600
    popularity_max_items: int = 1_000_000  # items scored (the least popular now dropped)
    exclude_seen: bool = True  # also drop items in the kept sequence (ordered ones always)
    weight_covisit: float = 1.0  # channel weights of the blend used without a ranker
    weight_popular: float = 0.15
    weight_i2i: float = 0.5
    quota_generative: int = 50  # candidates per channel before ranking
    quota_covisit: int = 50
    quota_i2i: int = 30  # the DeepI2I table's channel, when an i2i artifact is loaded
    quota_popular: int = 20  # also fills lists of users with too few other candidates


@dataclass(frozen=True)
class ModelSettings:
    # load artifacts from model_dir/recall, /ranker and /i2i (streams/runtime/model_watcher.py)
    enabled: bool = field(default=True, metadata={"env": "MODELS"})
    model_dir: Path = Path("artifacts")
    model_poll_s: float = 10.0  # how often the worker looks for a newer artifact
    # torch / onnxruntime intra-op threads (0: one per core; more threads than idle cores
    # slow torch down by an order of magnitude: keep 1 unless the cores are the worker's alone)
    model_threads: int = 1
    beam: int = 20  # generative recall beam width
    # int8 linear layers in the generative model (GenerativeRecaller.quantize; see the README)
    model_int8: bool = True
    # the beam search in a child process (models/recall/search_process.py): off the GIL of the
    # event loop and faust's threads, on a core of its own
    model_process: bool = True
    recall_cache_users: int = 100_000  # LRU of generative results, reused while inputs match
    # encoded histories kept per user (3 KB per token at the default model size; 0: off)
    prefix_cache_tokens: int = 250_000


@dataclass(frozen=True)
class ColdStartSettings:
    """Cold start from profiles (models/coldstart/; needs a recall model with profiles)."""

    quota_coldstart: int = 50
    coldstart_max_events: int = 3  # users with fewer events get the cold-start channel
    coldstart_epsilon: float = 0.01  # SKUs kept when their bandit score exceeds it
    coldstart_prefixes: int = 5  # coarse SID prefixes ("products") generated per user
    coldstart_levels: int = 1  # SID levels of such a prefix
    coldstart_bandit: str = "ucb"  # or "thompson"
    # SKUs with bandit statistics (the least demanded dropped first past it)
    coldstart_max_items: int = 1_000_000


@dataclass(frozen=True)
class BlendSettings:
    """Ranking blend: w_click * pCTR + w_order * pCTCVR + w_value * price * pCTCVR."""

    w_click: float = 1.0
    w_order: float = 2.0
    w_value: float = 0.0


@dataclass(frozen=True)
class RedisSettings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    rec_size: int = 50  # items per written list
    rec_ttl_s: int = 7 * 24 * 3600
    redis_retries: int = 5
    redis_backoff_s: float = 0.1
    # lists held while Redis is unreachable (latest per user); when full, the model stage waits
    # for Redis (back-pressure: the worker stops consuming, nothing is dropped)
    redis_pending_max: int = 100_000
    model_version: str = ""  # empty: derived from the loaded seed/artifacts


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    state: StateSettings = field(default_factory=StateSettings)
    channels: ChannelSettings = field(default_factory=ChannelSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    coldstart: ColdStartSettings = field(default_factory=ColdStartSettings)
    blend: BlendSettings = field(default_factory=BlendSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``SIDSTREAM_*`` variables; ``overrides`` (flat field names) win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for _, f, var in _fields():
            raw = env.get(var)
            if raw is not None and raw != "":
                values[f.name] = _convert(var, raw, f.default)
        return cls().with_values(**{**values, **overrides})

    @staticmethod
    def given(environ: Mapping[str, str] | None = None) -> frozenset[str]:
        """Flat names of the fields that the environment sets (non-empty), e.g. ``model_dir``."""
        env = os.environ if environ is None else environ
        return frozenset(f.name for _, f, var in _fields() if env.get(var))

    def with_values(self, **values: Any) -> Settings:
        """A copy with flat field values changed (``with_values(seq_len=5)``), validated."""
        changes: dict[str, dict[str, Any]] = {}
        known = set()
        for section, f, _ in _fields():
            known.add(f.name)
            if f.name in values:
                changes.setdefault(section, {})[f.name] = values[f.name]
        unknown = set(values) - known
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}")
        out = dataclasses.replace(self, **{
            s: dataclasses.replace(getattr(self, s), **v) for s, v in changes.items()})
        out.validate()
        return out

    def validate(self) -> None:
        if self.kafka.broker_kind not in ("kafka", "tansu"):
            raise ValueError("SIDSTREAM_BROKER_KIND must be kafka or tansu: "
                             f"{self.kafka.broker_kind!r}")
        instance = self.kafka.group_instance_id
        if instance and not INSTANCE_ID.fullmatch(instance):
            raise ValueError("SIDSTREAM_GROUP_INSTANCE_ID must be 1-249 of A-Z a-z 0-9 . _ -: "
                             f"{instance!r}")
        if self.worker.store not in STORES:
            raise ValueError(f"SIDSTREAM_STORE must be one of {', '.join(STORES)}: "
                             f"{self.worker.store!r}")
        flat = {f.name: (var, getattr(getattr(self, s), f.name)) for s, f, var in _fields()}
        for name in ("topic_partitions", "seq_len", "dedup_window", "rec_size", "batch_max",
                     "model_batch_max", "rec_ttl_s", "max_event_bytes", "beam", "model_poll_s",
                     "covisit_max_items", "popularity_max_items", "debounce_max_users",
                     "redis_pending_max", "catalogue_max_items", "state_max_users",
                     "coldstart_max_items", "upsert_log_max_items",
                     "memory_refresh_s", "state_memory_mb"):
            if flat[name][1] <= 0:
                raise ValueError(f"{flat[name][0]} must be positive")
        for name in ("model_threads", "quota_generative", "quota_covisit", "quota_popular",
                     "quota_i2i", "quota_coldstart", "coldstart_max_events", "coldstart_epsilon",
                     "debounce_ms", "recall_cache_users", "prefix_cache_tokens", "standby_replicas",
                     "w_click", "w_order", "w_value"):
            value = flat[name][1]
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"{flat[name][0]} must be finite and >= 0: {value!r}")
        if self.redis.redis_pending_max < self.ingest.model_batch_max:
            raise ValueError("SIDSTREAM_REDIS_PENDING_MAX must be >= SIDSTREAM_MODEL_BATCH_MAX "
                             "(one job's lists must fit while Redis is away)")
        cold = self.coldstart
        if cold.coldstart_bandit not in ("ucb", "thompson") or cold.coldstart_prefixes < 1 \
                or cold.coldstart_levels < 1:
            raise ValueError("SIDSTREAM_COLDSTART_BANDIT must be ucb or thompson, "
                             "SIDSTREAM_COLDSTART_PREFIXES and _LEVELS positive")
        unknown = set(self.ingest.triggers) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"SIDSTREAM_TRIGGER_TYPES: unknown event types {sorted(unknown)}")

    @property
    def bootstrap_servers(self) -> list[str]:
        """``host:port`` list for plain Kafka clients from the faust-style broker URL."""
        return bootstrap_servers(self.kafka.broker)

    def env(self) -> dict[str, str]:
        """These settings as ``SIDSTREAM_*`` variables (to start a worker process with them)."""
        return {var: str(getattr(getattr(self, s), f.name)) for s, f, var in _fields()}


def _fields() -> Iterator[tuple[str, dataclasses.Field[Any], str]]:
    """(section, field, environment variable) of every setting."""
    for section in dataclasses.fields(Settings):
        for f in dataclasses.fields(section.default_factory):  # type: ignore[arg-type]
            yield section.name, f, ENV_PREFIX + f.metadata.get("env", f.name.upper())


def bootstrap_servers(broker_url: str) -> list[str]:
    """``kafka://a:9092;kafka://b:9092`` or ``kafka://a:9092,b:9092`` -> ``["a:9092", ...]``."""
    hosts = []
    for part in broker_url.replace(";", ",").split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        if part:
            hosts.append(part.rstrip("/"))
    if not hosts:
        raise ValueError(f"no broker address in {broker_url!r}")
    return hosts


def _convert(var: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
    except ValueError as exc:
        raise ValueError(f"{var}={raw!r}: {exc}") from exc
    return raw
