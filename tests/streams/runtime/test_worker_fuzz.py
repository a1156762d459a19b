"""Property-based fuzz of event payloads: pure validation, then through the real worker."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import defaultdict

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from infra.worker_process import WorkerProcess
from streams.contracts.events import Limits, Rejected, parse_event
from streams.jobs.chaos import read_states
from streams.settings import EVENTS_TOPIC, Settings
from tests.fixtures.fuzz_cases import KINDS, make_case
from tests.fixtures.helpers import dlq_reasons, eventually
from tests.fixtures.worker_io import recs


@given(st.sampled_from(KINDS), st.randoms(use_true_random=False))
@settings(max_examples=400, deadline=None)
def test_every_mutation_gets_its_verdict(kind: str, rng: random.Random) -> None:
    case = make_case(rng, kind, "p")
    now = int(time.time() * 1000)
    if case.reason is None:
        assert parse_event(case.value, case.key, now, Limits()).user_id == case.user
    else:
        with pytest.raises(Rejected) as info:
            parse_event(case.value, case.key, now, Limits())
        assert info.value.reason == case.reason


@pytest.mark.integration
def test_fuzzed_stream_valid_through_invalid_to_dlq(worker: WorkerProcess,
                                                     producer: KafkaProducer,
                                                     settings: Settings,
                                                     rclient: redis.Redis) -> None:
    rng = random.Random(2026)
    tag = uuid.uuid4().hex[:6]
    cases = [make_case(rng, rng.choice(KINDS), tag) for _ in range(300)]
    before = worker.metrics()
    for case in cases:
        producer.send(EVENTS_TOPIC, key=case.key, value=case.value)
    producer.flush()
    invalid = {c.value: c.reason for c in cases if c.reason}
    valid_users = {c.user for c in cases if c.reason is None}
    found = dlq_reasons(settings, invalid)
    assert found == invalid  # every invalid payload, with its reason, original bytes
    want_ids: dict[str, set[str]] = defaultdict(set)
    want_ts: dict[str, int] = {}
    for ev in (json.loads(c.value) for c in cases if c.reason is None):
        want_ids[ev["user_id"]].add(ev["event_id"])
        want_ts[ev["user_id"]] = max(want_ts.get(ev["user_id"], 0), ev["ts"])
    assert set(want_ids) == valid_users

    def applied() -> bool:  # each valid event in its user's state, once; nothing else there
        states = read_states(settings)
        return all((state := states.get(u)) is not None and set(state["ids"]) == ids
                   and state["n"] == len(ids) for u, ids in want_ids.items())

    eventually(applied, timeout_s=60, every_s=1.0, what="every valid event in its user's state")
    eventually(lambda: all((p := recs(rclient, u)) and p["event_ts"] == ts
                           for u, ts in want_ts.items()),
               timeout_s=60, what="a list answering each user's newest valid event")
    assert worker.alive
    after = worker.metrics()
    n_unknown = sum(1 for c in cases if c.reason is None and b"never-seen" in c.value)
    assert (after.get("sidstream_events_unknown_item_total")
            - before.get("sidstream_events_unknown_item_total")) >= n_unknown > 0
    assert json.loads(rclient.get(f"sidstream:rec:{next(iter(valid_users))}") or "{}")["items"] \
        is not None
