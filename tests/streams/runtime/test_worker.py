"""The worker end to end through the real broker and Redis (kafka-python as the client)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer

from infra.worker_process import WorkerProcess
from streams.settings import DLQ_TOPIC, EVENTS_TOPIC, ITEMS_TOPIC, Settings
from tests.fixtures.helpers import dlq_reasons, eventually
from tests.fixtures.worker_io import changelog_state, now_ms, recs, send, user_id

pytestmark = pytest.mark.integration


def test_events_become_ranked_lists_in_redis(worker: WorkerProcess, producer: KafkaProducer,
                                             rclient: redis.Redis) -> None:
    tag = uuid.uuid4().hex[:6]
    a, b, c = f"{tag}-a", f"{tag}-b", 9_000_000 + int(tag, 16) % 1000
    for user in range(3):  # three users co-view a then b: b is a's neighbour
        send(producer, f"{tag}-u{user}", a)
        send(producer, f"{tag}-u{user}", b)
    send(producer, c, a)
    send(producer, c, 42, "order", price=9.99)
    producer.flush()
    payload = eventually(lambda: (p := recs(rclient, c)) and p["event_ts"] > 0 and
                         any(i["item_id"] == b for i in p["items"]) and p, what="c's list")
    assert payload["user_id"] == c  # integer user id keeps its type
    ids = [i["item_id"] for i in payload["items"]]
    # b is first through its co-visitation with a; its label names its larger part, and b is
    # popular too (three views), against a popularity that the session's other tests and wall
    # time decide: which part is larger is not this test's (tests/streams/channels/test_base.py)
    assert ids[0] == b and payload["items"][0]["source"] in ("covisit", "popular")
    assert 42 not in ids and a not in ids  # ordered and seen items are excluded
    assert all(isinstance(i["item_id"], int | str) for i in payload["items"])
    scores = [i["score"] for i in payload["items"]]
    assert scores == sorted(scores, reverse=True) and len(ids) == len(set(ids))
    assert payload["model_version"] and payload["updated_ms"] >= payload["event_ts"]
    assert 0 < rclient.ttl(f"sidstream:rec:{c}") <= 7 * 24 * 3600
    eventually(lambda: worker.metrics().get("sidstream_consumer_lag_messages") == 0,
               what="no consumer lag once everything is processed")


def test_malformed_events_go_to_the_dlq_with_reasons(worker: WorkerProcess,
                                                     producer: KafkaProducer,
                                                     settings: Settings,
                                                     rclient: redis.Redis) -> None:
    marker = uuid.uuid4().hex
    bad = {
        b"{not json " + marker.encode(): "bad_json",
        json.dumps({"event_id": marker + "1", "user_id": 1, "item_id": 2, "type": "click"}
                   ).encode(): "missing_field",
        json.dumps({"event_id": marker + "2", "user_id": 1, "item_id": 2, "type": "buy",
                    "ts": now_ms()}).encode(): "bad_event_type",
        json.dumps({"event_id": marker + "3", "user_id": 1, "item_id": 2, "type": "click",
                    "ts": 5}).encode(): "bad_timestamp",
        json.dumps({"event_id": marker + "4", "user_id": 1, "item_id": [2], "type": "click",
                    "ts": now_ms()}).encode(): "wrong_type",
    }
    for value in bad:
        producer.send(EVENTS_TOPIC, key=b"1", value=value)
    good_user = user_id("after-bad")
    send(producer, good_user, "x")
    producer.flush()
    found = dlq_reasons(settings, bad)
    assert found == bad  # original bytes, each with its reason
    eventually(lambda: recs(rclient, good_user), what="worker still processing")
    assert worker.alive
    snap = worker.metrics()
    assert snap.get("sidstream_events_invalid_total", reason="bad_json") >= 1


def test_a_redelivered_event_is_applied_once(worker: WorkerProcess, producer: KafkaProducer,
                                             settings: Settings, rclient: redis.Redis) -> None:
    user = user_id("dup")
    before = worker.metrics().get("sidstream_events_duplicate_total")
    eid = send(producer, user, "i1")
    producer.flush()
    eventually(lambda: recs(rclient, user), what="first list")
    send(producer, user, "i1", event_id=eid)
    send(producer, user, "i2")
    producer.flush()
    state = eventually(lambda: (s := changelog_state(settings, user)) and s["n"] == 2 and s,
                       what="second event applied")
    assert [e[0] for e in state["seq"]] == ["i1", "i2"]
    assert worker.metrics().get("sidstream_events_duplicate_total") == before + 1


def test_restarted_worker_recovers_sequences_from_the_changelog(
        worker: WorkerProcess, producer: KafkaProducer, settings: Settings,
        rclient: redis.Redis) -> None:
    user = user_id("restart")
    send(producer, user, "r1", "order")
    send(producer, user, "r2")
    send(producer, user, "r3")
    producer.flush()
    eventually(lambda: (s := changelog_state(settings, user)) and s["n"] == 3, what="3 events")
    time.sleep(1.5)  # let a commit happen; redelivery after the kill is deduplicated anyway
    worker.kill()  # no graceful shutdown: state must come back from the changelog
    worker.start().wait_ready(timeout_s=120)
    send(producer, user, "r4")
    producer.flush()
    state = eventually(lambda: (s := changelog_state(settings, user)) and s["n"] >= 4 and s,
                       timeout_s=60, what="event after restart")
    assert [e[0] for e in state["seq"]] == ["r1", "r2", "r3", "r4"]
    assert state["n"] == 4 and state["ordered"] == ["r1"]
    payload = eventually(lambda: (p := recs(rclient, user)) and p, what="list after restart")
    assert "r1" not in [i["item_id"] for i in payload["items"]]


def test_two_workers_split_the_partitions(worker: WorkerProcess, producer: KafkaProducer,
                                          settings: Settings, rclient: redis.Redis,
                                          tmp_path: Path) -> None:
    env = {**settings.env(), "SIDSTREAM_METRICS_PORT": "",
           "SIDSTREAM_DATA_DIR": str(tmp_path / "faust2")}
    second = WorkerProcess(env, tmp_path / "worker2.log").start()
    try:
        second.wait_ready(timeout_s=90)
        def split() -> bool:
            counts = [w.metrics().get("sidstream_assigned_partitions") for w in (worker, second)]
            ready = [w.metrics().get("sidstream_ready") for w in (worker, second)]
            return all(counts) and sum(counts) == settings.kafka.topic_partitions and all(ready)

        eventually(split, timeout_s=90, every_s=0.5, what="partitions split over two workers")
        users = [user_id("split") for _ in range(20)]
        for user in users:
            send(producer, user, "s1")
        producer.flush()
        eventually(lambda: all(recs(rclient, u) for u in users), timeout_s=60,
                   what="every user's list written by one of the two workers")
        done = [w.metrics().get("sidstream_events_total", type="click") for w in (worker, second)]
        assert all(done), f"both workers must apply events: {done}"
    finally:
        second.stop()
    eventually(lambda: worker.metrics().get("sidstream_assigned_partitions")
               == settings.kafka.topic_partitions, timeout_s=90, every_s=0.5,
               what="the remaining worker takes all partitions back")


def test_catalogue_upserts_are_mirrored_and_bad_ones_rejected(
        worker: WorkerProcess, producer: KafkaProducer, settings: Settings,
        rclient: redis.Redis) -> None:
    item = f"sku-{uuid.uuid4().hex[:8]}"
    producer.send(ITEMS_TOPIC, key=item.encode(), value=json.dumps(
        {"item_id": item, "title": "Red lipstick", "categories": ["Beauty", "Makeup"],
         "price": 9.5}).encode())
    bad = json.dumps({"item_id": item, "title": 42}).encode()
    producer.send(ITEMS_TOPIC, key=item.encode(), value=bad)
    producer.flush()
    doc = eventually(lambda: rclient.get(f"sidstream:item:{item}"), what="catalogue mirror")
    assert json.loads(doc) == {"item_id": item, "title": "Red lipstick", "brand": None,
                               "categories": [["Beauty", "Makeup"]], "price": 9.5}
    consumer = KafkaConsumer(DLQ_TOPIC, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=2000, group_id=None)
    headers = eventually(lambda: next((dict(m.headers) for m in consumer if m.value == bad),
                                      None), what="bad upsert in the DLQ")
    consumer.close()
    assert headers["sidstream-reason"] == b"wrong_type"
    assert headers["sidstream-source-topic"] == ITEMS_TOPIC.encode()
