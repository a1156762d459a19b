"""One micro-batch through the pipeline, as plain functions: testable without a broker.

``validate -> group by user -> apply to state (dedup) -> update co-visitation/popularity ->
debounce -> recall (generative beam search for all users at once, co-visitation, popularity)
-> quotas -> rank (one ONNX call for all users) -> lists``. Without a ranker artifact the channels'
normalised scores are blended instead. The faust agent (``streams.runtime.app``) only moves records
in and results out.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from streams.channels.base import (
    COVISIT,
    POPULAR,
    Channel,
    RecallConfig,
    covisit_channel,
    merge_channels,
    popular_channel,
    share,
)
from streams.channels.coldstart import COLDSTART, ColdStartChannel
from streams.channels.covisit import TYPE_WEIGHTS, CoVisitation
from streams.channels.generative import GENERATIVE, GenerativeChannel, PendingRecall, RecallRequest
from streams.channels.i2i import I2I, i2i_channel
from streams.channels.popularity import DecayedPopularity
from streams.contracts.events import (
    EVENT_TYPES,
    REASONS,
    Event,
    Id,
    Limits,
    Rejected,
    parse_event,
)
from streams.contracts.output import Candidate, RecList
from streams.contracts.profiles import ProfileUpdate, parse_profile
from streams.metrics import OUTCOMES, Metrics
from streams.pipeline.debounce import Debouncer
from streams.pipeline.model_set import ModelSet
from streams.pipeline.rank import rank_batch, ranked, select_candidates
from streams.pipeline.state import StateLimits, UserState, apply_events
from streams.settings import USERS_TOPIC, Settings

StateLoader = Callable[[str], dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed Kafka message, as the pipeline sees it."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Reject:
    record: Record
    reason: str
    detail: str


@dataclass
class UserBatch:
    """A user's valid events in one micro-batch (coalesced into one recompute)."""

    partition: int
    events: list[Event] = field(default_factory=list)
    positions: list[tuple[str, int]] = field(default_factory=list)  # per event: source, offset
    profile: ProfileUpdate | None = None  # the last profile message of the batch

    def add(self, ev: Event, rec: Record) -> None:
        self.events.append(ev)
        self.positions.append((f"{rec.topic}:{rec.partition}", rec.offset))

    def redelivered(self, state: UserState) -> tuple[list[Event], int]:
        """Events not yet applied by offset (``UserState.consumed``), and how many were
        already; moves the state's next offsets past this batch."""
        fresh, old = [], 0
        for ev, (src, offset) in zip(self.events, self.positions, strict=True):
            if offset < state.consumed.get(src, -1):
                old += 1
                continue
            fresh.append(ev)
            state.consumed[src] = offset + 1
        return fresh, old

    @property
    def user_id(self) -> Id:
        return self.events[0].user_id if self.events or self.profile is None \
            else self.profile.user_id

    def triggers(self, types: frozenset[str]) -> bool:
        return self.profile is not None or any(e.type in types for e in self.events)


@dataclass
class BatchOutcome:
    rejects: list[Reject] = field(default_factory=list)
    states: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # key->(part, st)
    lists: list[RecList] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    items: set[Any] = field(default_factory=set)  # items of the applied events
    applied_by_user: dict[str, int] = field(default_factory=dict)
    deferred: int = 0  # users whose recompute the debounce postponed


@dataclass
class Job:
    """A prepared micro-batch for the model stage: users to recompute, their cheap channels."""

    states: dict[str, UserState]
    models: ModelSet
    version: str  # model_version of the lists
    now_ms: int
    excluded: dict[str, set[Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Channel]] = field(default_factory=dict)  # key -> channels
    popular: Channel = field(default_factory=dict)
    pending: PendingRecall | None = None  # its generative search, once submitted (``start``)
    events: dict[str, int] = field(default_factory=dict)  # key -> applied events answered

    def absorb(self, later: Job) -> bool:
        """Take in a later micro-batch's users (not yet started, same models): its states,
        exclusions and channels replace this job's for users in both. False if it can't."""
        if self.pending is not None or later.pending is not None or \
                later.models is not self.models or later.version != self.version:
            return False
        self.states.update(later.states)
        for key, n in later.events.items():  # the later list answers the earlier events too
            self.events[key] = self.events.get(key, 0) + n
        self.excluded.update(later.excluded)
        self.channels.update(later.channels)
        self.popular, self.now_ms = later.popular, later.now_ms
        return True


class Pipeline:
    def __init__(self, settings: Settings, covis: CoVisitation, popularity: DecayedPopularity,
                 metrics: Metrics, model_version: str = "baseline",
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.model_version = settings.redis.model_version or model_version
        self.covis = covis
        self.popularity = popularity
        self.metrics = metrics
        for reason in REASONS:  # at zero from the start: see streams/metrics.py
            metrics.invalid.labels(reason)
        for etype in EVENT_TYPES:
            metrics.events.labels(etype)
        for outcome in OUTCOMES:
            metrics.accounted.labels(outcome)
        self.clock = clock
        ingest, ch = settings.ingest, settings.channels
        self.limits = Limits(max_bytes=ingest.max_event_bytes, max_id_chars=ingest.max_id_chars,
                             min_ts_ms=ingest.min_ts_ms, future_skew_ms=ingest.future_skew_s * 1000)
        self.state_limits = StateLimits(settings.state.seq_len, settings.state.dedup_window,
                                        settings.state.ordered_cap)
        self.recall_cfg = RecallConfig(history_items=settings.channels.history_items)
        self.weights = {GENERATIVE: 1.0, COLDSTART: 1.0, COVISIT: ch.weight_covisit,
                        I2I: ch.weight_i2i, POPULAR: ch.weight_popular}
        self.quotas = {GENERATIVE: ch.quota_generative, COVISIT: ch.quota_covisit,
                       I2I: ch.quota_i2i, POPULAR: ch.quota_popular,
                       COLDSTART: settings.coldstart.quota_coldstart}
        self.models = ModelSet()  # swapped as a whole by streams.runtime.model_watcher.ModelWatcher
        self.generative = GenerativeChannel(metrics, settings.models.recall_cache_users)
        self.coldstart = ColdStartChannel(settings)
        self.debounce = Debouncer(settings.ingest.debounce_ms / 1000.0,
                                  settings.ingest.debounce_max_users)
        self.triggers = settings.ingest.triggers
        # applied events of users whose recompute is deferred: answered by its list
        self.unanswered: dict[str, int] = {}

    @property
    def version(self) -> str:
        """``model_version`` of the lists written now."""
        return self.settings.redis.model_version or (
            self.models.version if self.models.recaller or self.models.ranker
            else self.model_version)

    def process(self, records: list[Record], load: StateLoader) -> BatchOutcome:
        """A micro-batch; with no records it only runs deferred recomputes that are due."""
        out, job = self.prepare(records, load)
        out.lists = self.finish(job)
        return out

    def prepare(self, records: list[Record], load: StateLoader) -> tuple[BatchOutcome, Job]:
        """Everything of a micro-batch but the model work: validation, state, co-visitation
        and popularity updates, debounce, the cheap recall channels. The stream worker runs it
        on the event loop and hands the :class:`Job` to the model stage (``finish``)."""
        out = BatchOutcome()
        if records:
            self.metrics.batch_size.observe(len(records))
        with self._stage("validate"):
            users = self._validate(records, out)
        with self._stage("state"):
            touched = self._apply(users, load, out)
        now = self.clock()
        triggered = [k for k, b in users.items() if b.triggers(self.triggers)]
        self._account(out.applied_by_user, set(triggered))
        compute, later = self.debounce.split(triggered, now)
        out.deferred = len(later)
        self.metrics.debounced.inc(len(later))
        todo = {k: touched[k] for k in compute}
        for key in self.debounce.due(now):  # postponed recomputes whose time has come
            if key in todo or key in later:
                continue
            state = touched.get(key)
            if state is None:
                raw = load(key)
                state = UserState.from_json(raw) if raw else None
            if state is not None:
                todo[key] = state
        self.debounce.computed(todo, now)
        self.metrics.deferred.set(len(self.debounce.deferred))
        job = self.recall_cheap(todo)
        job.events = {k: self.unanswered.pop(k) for k in todo if k in self.unanswered}
        return out, job

    def _account(self, applied: dict[str, int], triggered: set[str]) -> None:
        """Applied events wait for the list that answers them (``unanswered``, until the user's
        recompute); a user whose events trigger none is accounted at once."""
        no_recompute = 0
        for key, n in applied.items():
            if key in triggered:
                self.unanswered[key] = self.unanswered.get(key, 0) + n
            else:
                no_recompute += n
        if no_recompute:
            self.metrics.accounted.labels("no_recompute").inc(no_recompute)

    def forget_deferred(self) -> None:
        """A rebalance: deferred recomputes are dropped (the users' partitions may have moved;
        their new owner recomputes on the next event), and so are the events they would answer."""
        self.debounce.clear()
        dropped = sum(self.unanswered.values())
        self.unanswered.clear()
        if dropped:
            self.metrics.accounted.labels("dropped_deferred").inc(dropped)

    def recommend(self, state: UserState) -> list[Candidate]:
        """The ranked list for one user (the same path ``process`` takes)."""
        return self.recommend_many({str(state.user_id): state})[str(state.user_id)]

    def recommend_many(self, states: dict[str, UserState]) -> dict[str, list[Candidate]]:
        """Ranked lists for many users: batched recall, one ranker call."""
        return self.rank(self.recall_cheap(states))

    def recall_cheap(self, states: dict[str, UserState]) -> Job:
        """The channels that read the live co-visitation, popularity and bandit statistics
        (which the next micro-batch updates): computed before the model stage runs."""
        models = self.models  # one consistent set for the whole batch
        job = Job(states, models, self.version, int(self.clock() * 1000))
        if not states:
            return job
        self.metrics.recomputes.inc(len(states))
        with self._stage("recall"):
            job.excluded = {k: self.excluded(st) for k, st in states.items()}
            with self._stage("coldstart"):
                cold = self.coldstart.recall(models.recaller, states, job.excluded,
                                             self.quotas[COLDSTART], job.now_ms)
            job.popular = popular_channel(self.popularity, self.recall_cfg)  # same for all
            for k, st in states.items():  # dict order = channel priority for the quotas
                job.channels[k] = {GENERATIVE: {}, COLDSTART: cold.get(k, {}),
                                   COVISIT: covisit_channel(st, self.covis, self.recall_cfg)}
                if models.i2i is not None and self.quotas[I2I] > 0:
                    job.channels[k][I2I] = i2i_channel(st, models.i2i, self.recall_cfg)
                job.channels[k][POPULAR] = job.popular
        return job

    def start(self, job: Job) -> None:
        """Submit the job's generative search, if not yet: a search process starts on it at
        once, so it can run while this process ranks the micro-batch before."""
        models = job.models
        if (job.pending is None and job.states and models.recaller is not None
                and self.quotas[GENERATIVE] > 0):
            job.pending = self.generative.start(
                models.recaller, models.recall_version,
                [RecallRequest(k, st, job.excluded[k]) for k, st in job.states.items()],
                self.quotas[GENERATIVE], self.settings.models.beam)

    def finish(self, job: Job) -> list[RecList]:
        """The model stage of a prepared micro-batch: its users' lists."""
        return [RecList(job.states[key].user_id, tuple(items), job.states[key].last_ts,
                        job.version, job.events.get(key, 0))
                for key, items in self.rank(job).items()]

    def rank(self, job: Job) -> dict[str, list[Candidate]]:
        """Generative recall for all of a job's users at once, then quotas and one ranker
        call (or the score blend without a ranker). Reads only the job and the models."""
        states, models, channels, excluded = job.states, job.models, job.channels, job.excluded
        if not states:
            return {}
        self.start(job)
        if job.pending is not None:
            with self._stage("generative"):
                for k, ch in self.generative.finish(job.pending).items():
                    channels[k][GENERATIVE] = ch
        with self._stage("rank"):
            if models.ranker is None:
                size = self.settings.redis.rec_size
                popular = share(POPULAR, job.popular, self.weights)  # the same for everyone
                return {k: merge_channels(ch, self.weights, excluded[k], size, popular)
                        for k, ch in channels.items()}
            keys = list(states)
            top_popular = ranked(job.popular)  # the same for everyone: ranked once
            cands = [select_candidates({**channels[k], POPULAR: top_popular}, self.quotas,
                                       excluded[k], self.settings.redis.rec_size) for k in keys]
            sources = Counter(c.source for cs in cands for c in cs)
            for source, n in sources.items():
                self.metrics.candidates.labels(source).inc(n)
            with self._stage("ranker"):
                lists = rank_batch(models.ranker, self.settings.blend, [states[k] for k in keys],
                                   cands, job.now_ms, self.settings.redis.rec_size)
        return dict(zip(keys, lists, strict=True))

    def excluded(self, state: UserState) -> set[Any]:
        """Items never recommended to this user: ordered ones, and seen ones if configured."""
        out: set[Any] = set(state.ordered)
        if self.settings.channels.exclude_seen:
            out.update(e.item_id for e in state.seq)
        return out

    def _validate(self, records: list[Record], out: BatchOutcome) -> dict[str, UserBatch]:
        now_ms = int(self.clock() * 1000)
        users: dict[str, UserBatch] = {}
        for rec in records:
            try:
                if rec.topic == USERS_TOPIC:  # a profile (streams/contracts/profiles.py)
                    upd = parse_profile(rec.value, rec.key, self.limits)
                    users.setdefault(upd.user_key, UserBatch(rec.partition)).profile = upd
                    continue
                ev = parse_event(rec.value, rec.key, now_ms, self.limits)
            except Rejected as exc:
                out.rejects.append(Reject(rec, exc.reason, exc.detail))
                self.metrics.invalid.labels(exc.reason).inc()
                continue
            users.setdefault(ev.user_key, UserBatch(rec.partition)).add(ev, rec)
        return users

    def _apply(self, users: dict[str, UserBatch], load: StateLoader, out: BatchOutcome
               ) -> dict[str, UserState]:
        """Apply each user's events; returns every user with events (their lists are rewritten).

        Only changed states are changelogged (``out.states``); a user whose events were all
        redeliveries still gets its list rewritten, so at-least-once delivery converges even when
        a worker died between the changelog write and the Redis write.
        """
        touched: dict[str, UserState] = {}
        types: Counter[str] = Counter()
        for key, batch in users.items():
            raw = load(key)
            state = UserState.from_json(raw) if raw else UserState(batch.user_id)
            before = [e.item_id for e in state.seq]
            fresh, redelivered = batch.redelivered(state)
            result = apply_events(state, fresh, self.state_limits)
            out.duplicates += len(result.duplicates) + redelivered
            if result.duplicates or redelivered:
                self.metrics.duplicates.inc(len(result.duplicates) + redelivered)
            touched[key] = state  # duplicates too: a redelivery may follow a lost Redis write
            if batch.profile is not None:
                state.profile = batch.profile.profile
                self.metrics.profiles.inc()
                out.states[key] = (batch.partition, state.to_json())
            if not result.applied:
                continue
            for ev in result.applied:
                out.items.add(ev.item_id)
                self.learn(before, ev)
                types[ev.type] += 1
            out.applied += len(result.applied)
            out.applied_by_user[key] = len(result.applied)
            out.states[key] = (batch.partition, state.to_json())
        for typ, n in types.items():
            self.metrics.events.labels(typ).inc(n)
        return touched

    def learn(self, before: list[Any], ev: Event) -> None:
        """An applied event into co-visitation (with the user's ``before`` items, which it
        extends) and popularity, weighted by event type."""
        weight = TYPE_WEIGHTS[ev.type]
        self.coldstart.learn(ev)
        self.covis.update(before, ev.item_id, weight)
        self.popularity.add(ev.item_id, weight, ev.ts)
        before.append(ev.item_id)

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.metrics.stage.labels(name).observe(time.perf_counter() - start)
