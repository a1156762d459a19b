"""Reading a worker's Prometheus endpoint: totals and histogram quantiles (demo, benches, tests)."""

from __future__ import annotations

import math
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Snapshot:
    """Samples of one scrape: ``values[(name, labels)]``."""

    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> float:
        return self.values.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str) -> float:
        """Sum of a metric over all its label values."""
        return sum(v for (n, _), v in self.values.items() if n == name)

    def buckets(self, name: str, **labels: str) -> list[tuple[float, float]]:
        """Cumulative ``(le, count)`` pairs of a histogram, sorted by bound."""
        out = []
        for (n, lab), v in self.values.items():
            d = dict(lab)
            if n == f"{name}_bucket" and all(d.get(k) == x for k, x in labels.items()):
                out.append((float(d["le"]), v))
        return sorted(out)

    def quantile(self, name: str, q: float, since: Snapshot | None = None, **labels: str
                 ) -> float:
        """``histogram_quantile`` of a histogram, over what it observed after ``since`` (an
        earlier snapshot of the same process) when given."""
        buckets = self.buckets(name, **labels)
        if since is not None:
            before = dict(since.buckets(name, **labels))
            buckets = [(le, count - before.get(le, 0.0)) for le, count in buckets]
        return histogram_quantile(q, buckets)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile``: linear interpolation inside the bucket."""
    if not buckets or buckets[-1][1] == 0:
        return math.nan
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            width = count - prev_count
            frac = (rank - prev_count) / width if width > 0 else 1.0
            return prev_le + (le - prev_le) * frac
        prev_le, prev_count = le, count
    return prev_le


def parse(text: str) -> Snapshot:
    snap = Snapshot()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            snap.values[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return snap


def scrape(port: int, host: str = "127.0.0.1", timeout_s: float = 2.0) -> Snapshot:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout_s) as resp:
        return parse(resp.read().decode())


def accounted(snap: Snapshot) -> float:
    """Messages of ``sidstream-events`` whose outcome is final: an applied event once the list
    answering it is in Redis (or it triggers no recompute), a duplicate, a reject."""
    return (snap.total("sidstream_events_accounted_total")
            + snap.total("sidstream_events_duplicate_total")
            + snap.total("sidstream_events_invalid_total"))


def processed(snap: Snapshot) -> float:
    """Messages of ``sidstream-events`` the worker has finished with (applied, dup or rejected)."""
    return (snap.total("sidstream_events_total") + snap.total("sidstream_events_duplicate_total")
            + snap.total("sidstream_events_invalid_total"))
