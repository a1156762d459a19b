"""The ``bare`` and ``faust floor`` cases of ``sidstream bench stream``: consume -> Redis SET.

The same measured events, on a fresh embedded stack of the same kind, go through
``streams/runtime/bare_path.py`` (aiokafka consumer + one Redis pipeline per batch, no faust,
no state) or ``streams/runtime/faust_floor.py`` (the same carried by the worker's faust app) in
a child process, as the worker runs in one. The bare path's events/s are the ceiling that the
no-model limit is compared with: what the broker, the client libraries and Redis give on this
machine, whatever its speed; the floor's, what is left of it once faust carries the messages.
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


BARE = "streams.runtime.bare_path"
FAUST_FLOOR = "streams.runtime.faust_floor"


def run_bare_case(ds: Any, todo: list[Any], workdir: Path, produce: Produce,
                  timeout_s: float = 600.0, module: str = BARE) -> tuple[BareResult, float]:
    """Measure the path ``module`` runs on ``todo``; returns its result and the wall seconds
    from the first event sent to the last one written. ``produce(settings, ds, todo, rate)``
    sends."""
    workdir.mkdir(parents=True)
    with embedded_stack({}) as stack:
        env = {**os.environ, **stack.env(), "SIDSTREAM_APP_ID": "bench-bare",
               "SIDSTREAM_DATA_DIR": str(workdir / "data"), "SIDSTREAM_BROKER_KIND": "kafka"}
        settings = Settings.from_env(env)
        ensure_topics(settings)
        with (workdir / "bare.log").open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, str(len(todo))], env=env,
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
    for line in proc.stdout:  # faust's worker may say other things first
        if line.strip() == "ready":
            break
    else:
        raise RuntimeError(f"bare path did not start (log: {workdir / 'bare.log'})")
    t0 = time.monotonic()
    produce(settings, ds, todo, 0.0)
    out, _ = proc.communicate(timeout=timeout_s)
    wall = time.monotonic() - t0
    results = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not results:
        raise RuntimeError(f"bare path failed with {proc.returncode} "
                           f"(log: {workdir / 'bare.log'})")
    return BareResult(**json.loads(results[-1])), wall
