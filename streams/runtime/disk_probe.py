"""Crashed partition databases opened first in child processes, within a time limit.

After a crash a partition's database has a write-ahead log to replay, and this RocksDB
(rocksdict 0.3.29) spins forever replaying some corrupt logs (``log::Reader::ReadRecord``),
whatever the recovery mode (8 of 30 random corruptions did): such a database is rebuilt from
the changelog, not waited for. A child process opens and closes it; that open replays the log
into a table file, so the worker's own open has nothing left to replay. The probes of all the
partitions on disk start together when the first one is needed: each is a Python start-up of
about 0.1 s, and one after another they took most of a restart's open (8 partitions: 1.0 s).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

PROBE_TIMEOUT_S = 30.0  # opening a database in a child process (its log replayed) may take
PROBE = ("import sys, rocksdict; "
         "rocksdict.Rdict(sys.argv[1], options=rocksdict.Options(raw_mode=True)).close()")


def log_to_replay(path: Path) -> bool:
    """Whether the database at ``path`` has a write-ahead log with records (after a crash;
    a clean stop flushes them into tables)."""
    return any(f.stat().st_size > 0 for f in path.glob("*.log"))


class Probes:
    """Probes started together and collected one database at a time."""

    def __init__(self) -> None:
        self._running: dict[Path, tuple[subprocess.Popen[bytes], float]] = {}

    def start(self, paths: Iterable[Path]) -> None:
        """A probe of each database of ``paths`` that has a log to replay and none yet."""
        for path in paths:
            if path not in self._running and log_to_replay(path):
                child = subprocess.Popen([sys.executable, "-c", PROBE, str(path)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                self._running[path] = (child, time.monotonic())

    def result(self, path: Path) -> str | None:
        """Wait for the probe of ``path`` (started now if there is none), at most
        ``PROBE_TIMEOUT_S`` from its start: None if the database opened, else what went
        wrong."""
        self.start([path])
        if path not in self._running:  # no log to replay
            return None
        child, started = self._running.pop(path)
        try:
            _, err = child.communicate(
                timeout=max(0.0, started + PROBE_TIMEOUT_S - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            return f"hangs replaying its write-ahead log (over {PROBE_TIMEOUT_S:.0f} s)"
        if child.returncode == 0:
            return None
        lines = err.decode(errors="replace").strip().splitlines()
        return f"cannot be opened: {lines[-1] if lines else child.returncode}"

    def stop(self) -> None:
        """Kill and collect the probes nobody waited for (partitions never opened)."""
        for child, _ in self._running.values():
            child.kill()
            child.communicate()
        self._running.clear()


def probe_open(path: Path) -> str | None:
    """Open (and close) the database at ``path`` in a child process (:class:`Probes`)."""
    return Probes().result(path)
