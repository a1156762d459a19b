"""The DeepI2I channel: neighbours of a user's recent items from the offline similar-items table.

The table (``models/i2i/deepi2i.py``, an ``i2i`` artifact under ``SIDSTREAM_MODEL_DIR``) holds the
top-k most similar items per item id, best first; it is strongest where co-visitation is weakest,
on long-tail items. A neighbour's score is the recency weight of the item it came from divided
by its rank (1, 1/2, 1/3, ...), summed over the user's recent items.
"""

from __future__ import annotations

import numpy as np

from streams.channels.base import Channel, RecallConfig
from streams.contracts.ids import model_item_id, stream_id
from streams.pipeline.state import UserState

I2I = "i2i"


def i2i_channel(state: UserState, table: np.ndarray, cfg: RecallConfig, per_item: int = 20
                ) -> Channel:
    like = state.seq[-1].item_id if state.seq else None
    out: Channel = {}
    for rank, item in enumerate(state.recent_items(cfg.history_items)):
        mid = model_item_id(item)
        if mid is None or mid >= len(table):
            continue
        weight = cfg.recency_decay ** rank
        for j, other in enumerate(table[mid, :per_item].tolist()):
            if other > 0:
                key = stream_id(int(other), like)
                out[key] = out.get(key, 0.0) + weight / (1 + j)
    return out
