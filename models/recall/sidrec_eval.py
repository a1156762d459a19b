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
import torch

from models.data.dataset import SeqDataset
from models.recall.data import Split
from models.recall.evaluate import rank_metrics, recaller_ranking
from models.recall.sidrec_recaller import SIDRecRecaller

log = logging.getLogger(__name__)


def _ranked(rec: SIDRecRecaller, data: Split, beam: int, exclude: bool
            ) -> tuple[np.ndarray, float]:
    """Top-10 of every user of ``data``, and the users/s it took."""
    t0 = time.perf_counter()
    ranked = recaller_ranking(rec, data, 10, beam, exclude, batch_size=256, progress=False)
    return ranked, round(len(data.targets) / (time.perf_counter() - t0), 1)


def _metrics(rec: SIDRecRecaller, data: Split, beam: int, exclude: bool) -> dict[str, float]:
    ranked, per_s = _ranked(rec, data, beam, exclude)
    return {**rank_metrics(ranked, data.targets), "users_per_s": per_s}


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


BOOSTS = (0.0, 0.5, 1.0)  # new-item logit bonuses tried on validation
SLOTS = (0, 1, 2)  # new items guaranteed in each top-10 (item head), tried on validation


def _by_group(rec: SIDRecRecaller, data: Split, cold: np.ndarray, beam: int
              ) -> dict[str, dict[str, float]]:
    """R@K/N@K of all users, of those whose target is a cold item, and of the others: one
    ranking of every user (history kept), with its users/s."""
    ranked, per_s = _ranked(rec, data, beam, False)
    out = {"all": {**rank_metrics(ranked, data.targets), "users_per_s": per_s}}
    for name, rows in (("cold", cold), ("warm", ~cold)):
        out[name] = rank_metrics(ranked[rows], data.targets[rows]) if rows.any() else {}
    return out


Variant = tuple[bool, float, int]  # id stand-in on, new-item boost, new-item slots


def _variants(rec: SIDRecRecaller) -> list[Variant]:
    """How new items may be scored: the stand-in only where it is fitted, slots only for the
    item head (the decoding that has them)."""
    ons = (False, True) if bool(rec.model.stand_in.any()) else (False,)
    slots = SLOTS if rec.mode == "item" else (0,)
    return [(on, b, n) for on in ons for b in BOOSTS for n in slots]


def _set(rec: SIDRecRecaller, fitted: torch.Tensor, variant: Variant) -> None:
    on, boost, slots = variant
    rec.model.stand_in.copy_(fitted if on else torch.zeros_like(fitted))
    rec.new_item_boost, rec.new_item_slots = boost, slots
    rec.reset_item_table()


def cold_items(rec: SIDRecRecaller, ds: SeqDataset, valid: Split, test: Split,
               held_out: set[int], beam: int) -> dict[str, Any]:
    """Add the held-out items through the catalogue path, choose how new items are scored
    (id stand-in on or off, new-item boost, new-item slots) by all-user validation R@10, then
    report test R@K/N@K of all, cold-target and warm-target users for: codes and vector alone
    (no stand-in, boost or slots), the stand-in alone, and the choice. ``rec`` keeps the
    choice."""
    added = add_held_out(rec, ds, held_out)
    v_cold = np.array([t in held_out for t in valid.targets])
    t_cold = np.array([t in held_out for t in test.targets])
    fitted = rec.model.stand_in.clone()
    scored = []
    for variant in _variants(rec):
        _set(rec, fitted, variant)
        scored.append((variant, _by_group(rec, valid, v_cold, beam)))
    # ties: the plainest variant (no boost, no slots)
    chosen, _ = max(scored, key=lambda t: (round(t[1]["all"]["recall@10"], 6), -t[0][1],
                                           -t[0][2]))
    keys = ("stand_in", "boost", "slots")
    tried = [{**dict(zip(keys, variant, strict=True)), **groups} for variant, groups in scored]
    out: dict[str, Any] = {"held_out_items": len(held_out), **added,
                           "cold_target_users": int(t_cold.sum()),
                           "valid_cold_target_users": int(v_cold.sum()), "valid": tried,
                           "chosen": dict(zip(keys, chosen, strict=True))}
    for name, variant in (("plain", (False, 0.0, 0)), ("stand_in", (True, 0.0, 0)),
                          ("served", chosen)):
        if variant[0] and not bool(fitted.any()):
            continue
        _set(rec, fitted, variant)
        out[name] = _by_group(rec, test, t_cold, beam)
        log.info("cold items, %s (stand-in %s, boost %g, slots %d): cold-target R@10 %.4f, "
                 "warm %.4f, all %.4f", name, *variant,
                 out[name]["cold"].get("recall@10", float("nan")),
                 out[name]["warm"].get("recall@10", float("nan")),
                 out[name]["all"]["recall@10"])
    out["cold"], out["all"] = out["served"]["cold"], out["served"]["all"]
    return out
