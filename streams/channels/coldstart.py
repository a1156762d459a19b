"""The cold-start channel: users with few events get SKUs of the products their profile implies.

For the users of a batch with fewer than ``SIDSTREAM_COLDSTART_MAX_EVENTS`` events, when the
served recall model was trained with profile tokens: their profile (``UserState.profile``; all
fields unknown without one), the request time (hour, weekday) and their few events go through one
batched prefix search (``models/coldstart/prefix_recall.py``); the SKUs under each generated coarse
SID prefix whose bandit score exceeds ``SIDSTREAM_COLDSTART_EPSILON`` become candidates, scored
``p(prefix) x bandit score``. The bandit's click/order statistics are learnt from every applied
event (``Pipeline.learn``); like co-visitation they are per worker and start empty (every SKU of a
product then has the same score: pure exploration). At most ``SIDSTREAM_COLDSTART_MAX_ITEMS``
SKUs keep clicks (and as many orders): past it the least demanded tenth is dropped in one pass,
amortised over the new SKUs that fill it again (a dropped SKU is explored like a new one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from models.coldstart.bandit import ItemBandit
from models.coldstart.prefix_recall import ColdStartConfig, ColdStartRecaller
from models.recall.recaller import GenerativeRecaller
from streams.channels.base import Channel
from streams.contracts.events import Event, Id
from streams.contracts.ids import model_item_id, stream_id
from streams.pipeline.state import UserState, model_history
from streams.settings import Settings

if TYPE_CHECKING:
    from models.recall.serving import ServedRecaller

COLDSTART = "coldstart"


class ColdStartChannel:
    def __init__(self, settings: Settings, seed: int | None = None) -> None:
        cold = settings.coldstart
        self.cfg = ColdStartConfig(cold.coldstart_levels, cold.coldstart_prefixes,
                                   cold.coldstart_epsilon, cold.coldstart_bandit)
        self.max_events = cold.coldstart_max_events
        self.max_items = cold.coldstart_max_items
        self.bandit = ItemBandit()
        self.rng = np.random.default_rng(seed)  # Thompson draws
        self._cold: tuple[Any, ColdStartRecaller] | None = None

    def learn(self, ev: Event) -> None:
        mid = model_item_id(ev.item_id)
        if mid is not None:
            self.bandit.update(mid, ev.type)
            b = self.bandit
            if len(b.clicks) > self.max_items or len(b.orders) > self.max_items:
                self._prune()

    def _prune(self) -> None:
        """Keep the 90 % most demanded of ``max_items`` SKUs in each statistic."""
        keep = max(1, self.max_items - self.max_items // 10)
        b = self.bandit
        for stats in (b.clicks, b.orders):
            if len(stats) > self.max_items:
                for item in sorted(stats, key=stats.__getitem__)[:len(stats) - keep]:
                    del stats[item]

    def wants(self, state: UserState) -> bool:
        return state.n_events < self.max_events

    def _recaller(self, rec: GenerativeRecaller) -> ColdStartRecaller:
        if self._cold is None or self._cold[0] is not rec:
            self._cold = (rec, ColdStartRecaller(rec, self.cfg))
        return self._cold[1]

    def recall(self, rec: ServedRecaller | None, states: dict[str, UserState],
               excluded: dict[str, set[Id]], k: int, now_ms: int) -> dict[str, Channel]:
        """Channel per user key, for the cold users among ``states``."""
        # only a token-level model trained with profile tokens reads profiles
        if (not isinstance(rec, GenerativeRecaller) or not rec.cfg.n_profile
                or rec.profile_vocab is None or k <= 0):
            return {}
        keys = [key for key, st in states.items() if self.wants(st)]
        if not keys:
            return {}
        hist = [list(model_history(states[key], rec.max_hist)) for key in keys]
        profiles = [rec.profile_vocab.encode(states[key].profile, now_ms) for key in keys]
        exclude = [{m for m in map(model_item_id, excluded[key]) if m is not None}
                   for key in keys]
        res, _ = self._recaller(rec).recall(hist, profiles, self.bandit, k, exclude, self.rng)
        out: dict[str, Channel] = {}
        for row, key in enumerate(keys):
            seq = states[key].seq
            like = seq[-1].item_id if seq else None
            out[key] = {stream_id(int(i), like): float(s)
                        for i, s in zip(res.items[row], res.scores[row], strict=True) if i > 0}
        return out
