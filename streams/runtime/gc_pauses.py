"""Garbage-collector pauses as a metric: a full collection stops the worker's event loop,
its model threads and its consumer at once, so it shows up in freshness tails; this makes it
visible (``sidstream_gc_pause_seconds{generation}``)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram

GcCallback = Callable[[str, dict[str, Any]], None]


def watch_gc(pauses: Histogram) -> GcCallback:
    """Observe every collection's wall time in ``pauses`` (labelled by generation); returns the
    callback, for ``unwatch_gc``."""
    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.labels(str(info["generation"])).observe(time.perf_counter() - started[0])

    gc.callbacks.append(on_gc)
    return on_gc


def unwatch_gc(callback: GcCallback) -> None:
    if callback in gc.callbacks:
        gc.callbacks.remove(callback)
