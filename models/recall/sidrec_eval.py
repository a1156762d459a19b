"""Side-by-side evaluation of a SIDRec artifact: each decoding mode, and cold items.

``ablation`` scores the same weights three ways on one split (SID beam alone, item head
alone, their combination), with the users/s of each on this machine. ``cold_items`` adds the
held-out items through the catalogue path (text -> frozen tokenizer -> trie and item table) and
reports Recall@10 on the users whose target is one of them, and overall.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from models.data.dataset import SeqDataset
from models.recall.data import Split
from models.recall.evaluate import rank_metrics, recaller_ranking
from models.recall.sidrec_recaller import SIDRecRecaller

log = logging.getLogger(__name__)


def _metrics(rec: SIDRecRecaller, data: Split, beam: int, exclude: bool) -> dict[str, float]:
    t0 = time.perf_counter()
    ranked = recaller_ranking(rec, data, 10, beam, exclude, batch_size=256, progress=False)
    seconds = time.perf_counter() - t0
    return {**rank_metrics(ranked, data.targets), "users_per_s": round(len(data.targets)
                                                                       / seconds, 1)}


def ablation(rec: SIDRecRecaller, data: Split, beam: int, hybrid_weight: float = 1.0
             ) -> dict[str, Any]:
    """R@K/N@K (history kept and excluded) and users/s of every mode, the served one marked;
    the hybrid at ``hybrid_weight`` (its best on validation) unless it is the one served."""
    served = (rec.mode, rec.weight)
    out: dict[str, Any] = {"served": {"mode": served[0], "weight": served[1]}}
    modes = [("beam", 0.0), ("item", 0.0), ("hybrid", served[1] if served[0] == "hybrid"
                                            else hybrid_weight)]
    for mode, weight in modes:
        rec.mode, rec.weight = mode, weight
        out[mode] = {"weight": weight, "all": _metrics(rec, data, beam, False),
                     "exclude_history": _metrics(rec, data, beam, True)}
        log.info("%s: R@10 %.4f N@10 %.4f, %.0f users/s", mode, out[mode]["all"]["recall@10"],
                 out[mode]["all"]["ndcg@10"], out[mode]["all"]["users_per_s"])
    rec.mode, rec.weight = served
    return out


def add_held_out(rec: SIDRecRecaller, ds: SeqDataset, held_out: set[int]) -> dict[str, int]:
    """Upsert held-out items by their text. Items without text cannot be added this way, nor
    any item when the tokenizer quantizes collaborative vectors (a catalogue without text)."""
    added = skipped = 0
    for item in sorted(held_out):
        meta = ds.items.get(item)
        text = meta.text() if meta is not None else ""
        try:
            if not text.strip():
                raise ValueError(f"item {item} has no text")
            rec.add_item(item, text)  # ValueError: text vectors, collaborative tokenizer
            added += 1
        except ValueError:
            skipped += 1
    return {"added": added, "not_addable": skipped}


def cold_items(rec: SIDRecRecaller, ds: SeqDataset, data: Split, held_out: set[int],
               beam: int) -> dict[str, Any]:
    """Add the held-out items, then Recall/NDCG@10 on cold-target users and on all users."""
    added = add_held_out(rec, ds, held_out)
    cold = np.array([t in held_out for t in data.targets])
    sub = Split(data.users[cold], [h for h, c in zip(data.histories, cold, strict=True) if c],
                data.targets[cold], [s for s, c in zip(data.seen, cold, strict=True) if c])
    out: dict[str, Any] = {"held_out_items": len(held_out), **added,
                           "cold_target_users": int(cold.sum())}
    out["cold"] = _metrics(rec, sub, beam, False) if len(sub.targets) else {}
    out["all"] = _metrics(rec, data, beam, False)
    cold_r = out["cold"].get("recall@10", float("nan"))
    log.info("cold items: %d held out (%d added), %d cold-target users: R@10 %.4f; all users "
             "R@10 %.4f", len(held_out), added["added"], out["cold_target_users"], cold_r,
             out["all"]["recall@10"])
    return out
