"""The worker's HTTP endpoint: ``/metrics`` (Prometheus), ``/livez`` and ``/readyz``.

Liveness: the event loop ticks (the 1 s housekeeping timer beats). Readiness: partitions assigned
and the table recovered (so the broker is connected), Redis answering, models loaded. Both answer
200 or 503 with the checks as JSON; docker-compose's healthcheck uses ``/readyz``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)


@dataclass
class Health:
    live_timeout_s: float = 15.0
    heartbeat: float = field(default_factory=time.monotonic)
    broker: bool = False
    redis: bool = False
    models: bool = False
    failed: str = ""  # an unrecoverable error (the model stage died): not live, restart me

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    def live(self) -> tuple[bool, dict[str, object]]:
        age = time.monotonic() - self.heartbeat
        checks: dict[str, object] = {"event_loop_age_s": round(age, 2)}
        if self.failed:
            checks["failed"] = self.failed
        return age < self.live_timeout_s and not self.failed, checks

    def ready(self) -> tuple[bool, dict[str, object]]:
        checks: dict[str, object] = {"broker": self.broker, "redis": self.redis,
                                     "models": self.models}
        return all(checks.values()) and self.live()[0], checks


def serve(port: int, registry: CollectorRegistry, health: Health, host: str = "0.0.0.0"
          ) -> ThreadingHTTPServer:
    """Start the endpoint in a daemon thread; returns the server (``shutdown()`` stops it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in ("/livez", "/readyz"):
                ok, checks = health.live() if path == "/livez" else health.ready()
                body = json.dumps({"ok": ok, **checks}).encode()
                self._send(200 if ok else 503, body, "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sidstream-http", daemon=True).start()
    return server
