"""Session services: the real Kafka-compatible broker (Tansu) and a real redis-server.

Both start once per session on free loopback ports (``infra.embedded``, the code ``sidstream up``
runs); nothing is mocked. Workers run as real ``sidstream worker`` processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kafka import KafkaProducer

from infra.embedded import Stack, embedded_stack, free_port
from infra.worker_process import WorkerProcess
from streams.runtime.topics import ensure_topics
from streams.settings import Settings


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


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model dir with one recall and one ranker version (do not modify: copy it)."""
    import torch

    from tests.fixtures.stream_models import build_model_dir

    torch.set_num_threads(1)
    return build_model_dir(tmp_path_factory.mktemp("trained"))
