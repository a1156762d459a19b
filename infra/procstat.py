"""CPU and memory of a process and its children, read from /proc (benchmarks)."""

from __future__ import annotations

import os
from pathlib import Path


def tree(pid: int) -> list[int]:
    """The process and its direct children (a worker and its search process)."""
    out = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process and its children so far."""
    total = 0.0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident MB of the process and its children together."""
    rss = peak = 0.0
    for p in tree(pid):
        try:
            text = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key == "VmRSS":
                rss += int(rest.split()[0]) / 1024
            elif key == "VmHWM":
                peak += int(rest.split()[0]) / 1024
    return round(rss, 1), round(peak, 1)
