import json
import time
import urllib.error
import urllib.request

from infra.embedded import free_port
from streams.metrics import Metrics
from streams.runtime.health import Health, serve


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_endpoints_report_liveness_readiness_and_metrics() -> None:
    port, health, metrics = free_port(), Health(live_timeout_s=0.5), Metrics()
    metrics.events.labels("click").inc(3)
    server = serve(port, metrics.registry, health, host="127.0.0.1")
    try:
        code, body = get(port, "/readyz")
        assert code == 503 and json.loads(body)["broker"] is False
        health.broker = health.redis = health.models = True
        assert get(port, "/readyz")[0] == 200 and get(port, "/livez")[0] == 200
        code, body = get(port, "/metrics")
        assert code == 200 and b'sidstream_events_total{type="click"} 3.0' in body
        time.sleep(0.6)  # no heartbeat: the event loop is stuck
        assert get(port, "/livez")[0] == 503 and get(port, "/readyz")[0] == 503
        health.beat()
        assert get(port, "/livez")[0] == 200
        assert get(port, "/nope")[0] == 404
    finally:
        server.shutdown()


def test_a_failed_model_stage_is_not_live() -> None:
    health = Health()
    health.broker = health.redis = health.models = True
    assert health.live()[0] and health.ready()[0]
    health.failed = "model stage: SearchProcessError('search process 7 died')"
    ok, checks = health.live()
    assert not ok and "died" in str(checks["failed"]) and not health.ready()[0]
