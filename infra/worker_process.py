"""A ``sidstream worker`` child process: start, wait until ready, stop or kill (demo and tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from infra.embedded import free_port
from infra.scrape import Snapshot, accounted, processed, scrape


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path | None = None,
                 loglevel: str = "warning") -> None:
        self.loglevel = loglevel
        self.port = int(env.get("SIDSTREAM_METRICS_PORT") or free_port())
        self.env = {**os.environ, **env, "SIDSTREAM_METRICS_PORT": str(self.port)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli.main", "worker", "--loglevel", self.loglevel],
            env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def metrics(self) -> Snapshot:
        return scrape(self.port)

    def wait_ready(self, timeout_s: float = 60.0) -> Snapshot:
        """Block until the worker has partitions and its table is recovered."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"worker exited with {self.proc and self.proc.returncode}"
                                   f" (log: {self.log_path})")
            try:
                snap = self.metrics()
                if snap.get("sidstream_ready") == 1:
                    return snap
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout_s}s (log: {self.log_path})")

    def wait_processed(self, n: float, timeout_s: float = 120.0) -> Snapshot:
        """Block until the worker has finished with ``n`` event messages."""
        return self._wait_count(processed, "processed", n, timeout_s)

    def wait_accounted(self, n: float, timeout_s: float = 120.0) -> Snapshot:
        """Block until ``n`` event messages are accounted: their lists in Redis (or coalesced,
        duplicate, rejected)."""
        return self._wait_count(accounted, "accounted", n, timeout_s)

    def _wait_count(self, count: Callable[[Snapshot], float], what: str, n: float,
                    timeout_s: float) -> Snapshot:
        deadline = time.monotonic() + timeout_s
        snap = Snapshot()
        while time.monotonic() < deadline:
            snap = self.metrics()
            if count(snap) >= n:
                return snap
            time.sleep(0.1)
        raise TimeoutError(f"worker {what} {count(snap):.0f} of {n:.0f} events")

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (graceful: in-flight batch, offsets, Redis flush), then SIGKILL if stuck."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
