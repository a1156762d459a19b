import socket

import pytest
import redis

from infra.embedded import embedded_stack

pytestmark = pytest.mark.integration


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_embedded_stack_starts_real_services_and_stops_what_it_started() -> None:
    with embedded_stack({}) as stack:
        assert stack.broker_kind == "tansu" and len(stack.procs) == 2
        started = list(stack.procs)  # stop() clears stack.procs: keep the handles
        assert all(p.poll() is None for p in started)
        assert redis.Redis.from_url(stack.redis_url).ping()
        broker_port = int(stack.broker.rsplit(":", 1)[1])
        redis_port = int(stack.redis_url.rsplit(":", 1)[1].split("/")[0])
        assert port_open(broker_port)
    assert stack.procs == [] and all(p.poll() is not None for p in started)
    assert not port_open(broker_port) and not port_open(redis_port)


def test_given_urls_are_used_not_started() -> None:
    env = {"SIDSTREAM_BROKER": "kafka://127.0.0.1:1", "SIDSTREAM_REDIS_URL": "redis://x:1/0"}
    with embedded_stack(env) as stack:
        assert stack.procs == [] and stack.broker == "kafka://127.0.0.1:1"
