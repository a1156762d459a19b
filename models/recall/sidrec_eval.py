"""Side-by-side evaluation of a SIDRec artifact: each decoding mode, and cold items.

``ablation`` scores the same weights three ways on one split (SID beam alone, item head
alone, their combination), with the users/s of each on this machine. ``cold_items`` adds the
held-out items through the catalogue path (text -> frozen tokenizer -> trie and item table) and
reports Recall@10 on the users whose target is one of them, and overall.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

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
# and penalties, for new items with no stand-in id part: a model trained with id dropout
# scores such items by their codes and vector alone, and too high (they flood the lists)
PENALTIES = (-3.0, -2.0, -1.0, -0.5)
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


def held_out_reference(rec: SIDRecRecaller, data: Split, held_out: set[int], beam: int
                       ) -> dict[str, Any]:
    """R@K/N@K of a model trained *with* ``held_out`` on the users whose target is one of them
    (and on the others): the bar for the cold protocol's cold-target users, measured on the
    same users with a model that saw their items in training. ``held_out`` is the set a cold
    run of the same seed and share holds out (``sidrec_train.held_out_items``)."""
    cold = np.array([t in held_out for t in data.targets])
    return {"held_out_items": len(held_out), "cold_target_users": int(cold.sum()),
            **_by_group(rec, data, cold, beam)}


NEIGHBORS = (1, 5, 20)  # warm neighbours a new item's id part is averaged from, tried


class Variant(NamedTuple):
    """How new items are scored: their stand-in id part ("none", "ridge": the regression of
    their vector, "neighbors": the mean of their ``neighbors`` nearest warm items'), the logit
    bonus and the guaranteed slots."""

    stand_in: str
    neighbors: int
    boost: float
    slots: int


def _variants(rec: SIDRecRecaller) -> list[Variant]:
    """The ridge stand-in only where it is fitted, neighbours only for a model that embeds
    items by their vectors, slots only for the item head (the decoding that has them)."""
    ins = [("none", 0)] + ([("ridge", 0)] if bool(rec.model.stand_in.any()) else [])
    if rec.wants_vectors and rec.model.id_emb is not None:
        ins += [("neighbors", k) for k in NEIGHBORS]
    slots = SLOTS if rec.mode == "item" else (0,)
    return [Variant(kind, k, b, n) for kind, k in ins
            for b in (PENALTIES + BOOSTS if kind == "none" else BOOSTS) for n in slots]


def choose(scored: list[tuple[Variant, dict[str, dict[str, float]]]], tolerance: float
           ) -> Variant:
    """The variant with the best cold-target validation R@10 among those whose all-user
    validation R@10 is within ``tolerance`` (a share) of the best one's: how much recall of
    the other users the shop gives up to show new items. 0: the best all-user R@10. Ties: the
    plainest (no boost, no slots)."""
    best = max(groups["all"]["recall@10"] for _, groups in scored)
    ok = [(v, g) for v, g in scored if g["all"]["recall@10"] >= (1 - tolerance) * best - 1e-12]
    return max(ok, key=lambda t: (round(t[1]["cold"].get("recall@10", 0.0), 6) if tolerance
                                  else 0.0, round(t[1]["all"]["recall@10"], 6),
                                  -abs(t[0].boost), -t[0].slots))[0]


def _set(rec: SIDRecRecaller, fitted: torch.Tensor, variant: Variant) -> None:
    rec.model.stand_in.copy_(fitted if variant.stand_in == "ridge" else torch.zeros_like(fitted))
    rec.stand_in_neighbors = variant.neighbors if variant.stand_in == "neighbors" else 0
    rec.new_item_boost, rec.new_item_slots = variant.boost, variant.slots
    rec.reset_item_table()


def cold_items(rec: SIDRecRecaller, ds: SeqDataset, valid: Split, test: Split,
               held_out: set[int], beam: int, tolerance: float = 0.0) -> dict[str, Any]:
    """Add the held-out items through the catalogue path, choose how new items are scored
    (their stand-in id part, new-item boost, new-item slots) on validation (:func:`choose`), then
    report test R@K/N@K of all, cold-target and warm-target users for: codes and vector alone
    (no stand-in, boost or slots), each stand-in alone, and the choice. ``rec`` keeps the
    choice."""
    added = add_held_out(rec, ds, held_out)
    v_cold = np.array([t in held_out for t in valid.targets])
    t_cold = np.array([t in held_out for t in test.targets])
    fitted = rec.model.stand_in.clone()
    scored = []
    for variant in _variants(rec):
        _set(rec, fitted, variant)
        scored.append((variant, _by_group(rec, valid, v_cold, beam)))
    chosen = choose(scored, tolerance)
    out: dict[str, Any] = {"held_out_items": len(held_out), **added, "tolerance": tolerance,
                           "cold_target_users": int(t_cold.sum()),
                           "valid_cold_target_users": int(v_cold.sum()),
                           "valid": [{**v._asdict(), **groups} for v, groups in scored],
                           "chosen": chosen._asdict()}
    # test: each stand-in alone (no boost, no slots), then the choice
    alone = {v.stand_in + (str(v.neighbors) if v.neighbors else ""): v
             for v, _ in scored if v.boost == 0 and v.slots == 0}
    for name, variant in (*alone.items(), ("served", chosen)):
        _set(rec, fitted, variant)
        out[name] = _by_group(rec, test, t_cold, beam)
        log.info("cold items, %s (%s): cold-target R@10 %.4f, warm %.4f, all %.4f", name,
                 variant, out[name]["cold"].get("recall@10", float("nan")),
                 out[name]["warm"].get("recall@10", float("nan")),
                 out[name]["all"]["recall@10"])
    out["cold"], out["all"] = out["served"]["cold"], out["served"]["all"]
    return out
