"""The generative recall channel in the stream: one batched beam search per micro-batch.

Every user touched in a micro-batch goes into one ``GenerativeRecaller.recall`` call; items the
user must not get (ordered ones, seen ones when configured) are excluded *inside* the beam
search, so the beam's slots are spent on admissible items. Results are kept in an LRU keyed by
user; an entry is reused only while its inputs are identical (model version, the model's view
of the history, the exclusions), which is what happens on redeliveries, on events the model
cannot see (unknown items) and on debounced recomputes: the answer would be the same, so the
beam search is skipped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from streams.channels.base import Channel
from streams.contracts.events import Id
from streams.contracts.ids import model_item_id, stream_id
from streams.metrics import Metrics
from streams.pipeline.state import UserState, model_history

if TYPE_CHECKING:
    from models.recall.beam import RecallResult
    from models.recall.serving import ServedRecaller

GENERATIVE = "generative"


@dataclass(frozen=True, slots=True)
class RecallRequest:
    key: str  # user key
    state: UserState
    exclude: set[Id]  # stream item ids


@dataclass
class PendingRecall:
    """A micro-batch's generative recall between ``start`` and ``finish``."""

    out: dict[str, Channel] = field(default_factory=dict)  # cache hits, then everyone
    todo: list[tuple[RecallRequest, tuple[int, ...], set[int], Hashable]] = field(
        default_factory=list)
    result: Callable[[], RecallResult] | None = None  # the submitted search of ``todo``
    found: RecallResult | None = None  # its result, once ``wait`` returned

    def wait(self) -> None:
        """Block until the search is done (blocking: call it from a thread)."""
        if self.result is not None and self.found is None:
            self.found = self.result()


class GenerativeChannel:
    def __init__(self, metrics: Metrics, cache_users: int = 100_000) -> None:
        self.metrics = metrics
        for result in ("hit", "miss"):  # at zero from the start: see streams/metrics.py
            metrics.recall_cache.labels(result)
        self.cache_users = cache_users
        self.cache: OrderedDict[str, tuple[Hashable, Channel]] = OrderedDict()
        # the model stage starts a batch's lookups while the batch before it is stored
        self.lock = threading.Lock()

    def recall(self, rec: ServedRecaller, version: str, requests: Sequence[RecallRequest],
               k: int, beam: int) -> dict[str, Channel]:
        """Channel (item -> probability of its SID path) per user key; users whose model view of
        the history is empty get nothing (popularity covers them)."""
        return self.finish(self.start(rec, version, requests, k, beam))

    def start(self, rec: ServedRecaller, version: str, requests: Sequence[RecallRequest],
              k: int, beam: int) -> PendingRecall:
        """Cache lookups, then one search for the misses, submitted (a search process starts
        it at once: see ``streams.runtime.stages.model_stage``)."""
        pending = PendingRecall()
        for req in requests:
            hist = model_history(req.state, rec.max_hist)
            if not hist:
                continue
            excl = {m for m in map(model_item_id, req.exclude) if m is not None}
            inputs = (version, hist, frozenset(excl), k, beam)
            with self.lock:
                hit = self.cache.get(req.key)
                if hit is not None and hit[0] == inputs:
                    self.cache.move_to_end(req.key)
            if hit is not None and hit[0] == inputs:
                pending.out[req.key] = hit[1]
                continue
            pending.todo.append((req, hist, excl, inputs))
        self.metrics.recall_cache.labels("hit").inc(len(pending.out))
        self.metrics.recall_cache.labels("miss").inc(len(pending.todo))
        if pending.todo:
            pending.result = rec.submit([list(t[1]) for t in pending.todo], k=k, beam=beam,
                                        exclude=[t[2] for t in pending.todo],
                                        keys=[t[0].key for t in pending.todo])
        return pending

    def finish(self, pending: PendingRecall) -> dict[str, Channel]:
        out = pending.out
        if pending.result is None:
            return out
        pending.wait()
        res = pending.found
        assert res is not None
        probs = np.exp(res.scores.astype(np.float64))  # log-prob -> prob (padding -> 0)
        for row, (req, _, _, key_inputs) in enumerate(pending.todo):
            like = req.state.seq[-1].item_id if req.state.seq else None
            channel = {stream_id(int(i), like): float(p)
                       for i, p in zip(res.items[row], probs[row], strict=True) if i > 0}
            out[req.key] = channel
            self._remember(req.key, key_inputs, channel)
        return out

    def _remember(self, key: str, inputs: Hashable, channel: Channel) -> None:
        if self.cache_users <= 0:
            return
        with self.lock:
            self.cache[key] = (inputs, channel)
            self.cache.move_to_end(key)
            while len(self.cache) > self.cache_users:
                self.cache.popitem(last=False)
