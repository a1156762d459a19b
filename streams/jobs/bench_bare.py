"""The ``bare`` case of ``sidstream bench stream``: consume -> Redis SET, nothing else.

The same measured events, on a fresh embedded stack of the same kind, go through
``streams/runtime/bare_path.py`` (aiokafka consumer + one Redis pipeline per batch, no faust,
no state) in a child process, as the worker runs in one. Its events/s are the ceiling that the
no-model limit is compared with: what the broker, the client libraries and Redis give on this
machine, whatever its speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.embedded import embedded_stack
from streams.runtime.bare_path import BareResult
from streams.runtime.topics import ensure_topics
from streams.settings import Settings

Produce = Callable[[Settings, Any, list[Any], float], None]  # (settings, ds, todo, rate)


def run_bare_case(ds: Any, todo: list[Any], workdir: Path,
                  produce: Produce, timeout_s: float = 600.0) -> tuple[BareResult, float]:
    """Measure the bare path on ``todo``; returns its result and the wall seconds from the
    first event sent to the last one written. ``produce(settings, ds, todo, rate)`` sends."""
    workdir.mkdir(parents=True)
    with embedded_stack({}) as stack:
        env = {**os.environ, **stack.env(), "SIDSTREAM_APP_ID": "bench-bare"}
        settings = Settings.from_env(env)
        ensure_topics(settings)
        with (workdir / "bare.log").open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "streams.runtime.bare_path", str(len(todo))], env=env,
                stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
            try:
                return _measure(proc, settings, ds, todo, produce, timeout_s, workdir)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _measure(proc: subprocess.Popen[str], settings: Settings, ds: Any, todo: list[Any],
             produce: Produce, timeout_s: float, workdir: Path) -> tuple[BareResult, float]:
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"bare path did not start (log: {workdir / 'bare.log'})")
    t0 = time.monotonic()
    produce(settings, ds, todo, 0.0)
    out, _ = proc.communicate(timeout=timeout_s)
    wall = time.monotonic() - t0
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"bare path failed with {proc.returncode} "
                           f"(log: {workdir / 'bare.log'})")
    return BareResult(**json.loads(out.strip().splitlines()[-1])), wall
