"""Session services: the real Kafka-compatible broker (Tansu) and a real redis-server.

Both start once per session on free loopback ports (``infra.embedded``, the code ``sidstream up``
runs); nothing is mocked. Workers run as real ``sidstream worker`` processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer

from infra.embedded import Stack, embedded_stack, free_port
from infra.worker_process import WorkerProcess
from streams.runtime.topics import ensure_topics
from streams.settings import DLQ_TOPIC, Settings

T = TypeVar("T")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with embedded_stack({}) as s:
        yield s


@pytest.fixture(scope="session")
def settings(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("sidstream")
    s = Settings.from_env({**stack.env(), "SIDSTREAM_APP_ID": "sidstream-test",
                           "SIDSTREAM_TOPIC_PARTITIONS": "4",
                           "SIDSTREAM_DATA_DIR": str(root / "faust"),
                           "SIDSTREAM_MODEL_DIR": str(root / "models"),
                           "SIDSTREAM_METRICS_PORT": str(free_port())})
    ensure_topics(s)
    return s


@pytest.fixture(scope="session")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[WorkerProcess]:
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    w = WorkerProcess(settings.env(), log).start()
    w.wait_ready(timeout_s=90)
    yield w
    w.stop()


@pytest.fixture(scope="session")
def producer(settings: Settings) -> Iterator[KafkaProducer]:
    p = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks=1, linger_ms=1)
    yield p
    p.close()


@pytest.fixture(scope="session")
def rclient(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis.redis_url, decode_responses=True)


def eventually(fn: Callable[[], T | None], timeout_s: float = 30.0, every_s: float = 0.1,
               what: str = "condition") -> T:
    """Poll ``fn`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met after {timeout_s}s")
        time.sleep(every_s)


def dlq_reasons(settings: Settings, wanted: Iterable[bytes], timeout_s: float = 90.0
                ) -> dict[bytes, str]:
    """Reason header of each ``wanted`` original payload found in the DLQ topic."""
    wanted = set(wanted)
    consumer = KafkaConsumer(DLQ_TOPIC, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=1000, group_id=None,
                             max_partition_fetch_bytes=1 << 20)
    found: dict[bytes, str] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < len(wanted) and time.monotonic() < deadline:
            for msg in consumer:
                if msg.value in wanted:
                    found[msg.value] = dict(msg.headers)["sidstream-reason"].decode()
    finally:
        consumer.close()
    return found


def log_tail(path: Path | None, n: int = 40) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def any_dict(value: Any) -> dict[str, Any]:
    assert isinstance(value, dict)
    return value
