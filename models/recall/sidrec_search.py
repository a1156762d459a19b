"""Recall with a trained SIDRec (``models/recall/sidrec.py``): three ways to rank items.

* ``beam``: the SID head alone, trie-constrained beam search over the SID levels, batched across
  users. Each step scores ``users x beam`` prefixes with one small MLP; the cost does not depend
  on the catalogue size. Only valid SIDs come out.
* ``item``: the item head alone, its top-k over the whole catalogue (cost grows with it).
* ``hybrid``: candidates from both (the beam's items and the item head's top-``beam``), each
  scored by ``log p_item + weight x log p_sid``, both exact (the SID log-prob of an item-head
  candidate is computed teacher-forced).
* ``rerank``: LIGER's inference: the beam's items and every item added after training (no id
  row: the new items) are the candidates, ranked by the item head's score of those alone. Its
  cost grows with the beam and the new items, not with the catalogue.

Exclusions (items the user has seen) are applied inside the search: at the last level an
excluded leaf is masked and, one level earlier, a prefix whose leaves are all excluded is
dropped before it takes a beam slot.
"""

from __future__ import annotations

import numpy as np
import torch

from models.recall.beam import Excluder, RecallResult, children, keep_live_prefixes
from models.recall.sidrec import NEG, SIDRec
from models.sid.trie import SidTrie

MODES = ("hybrid", "beam", "item", "rerank")


def beam_sids(model: SIDRec, trie: SidTrie, h: torch.Tensor, beam: int, excl: Excluder
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Trie-constrained beam search: user states [U, d] -> items [U, B] (-1: none) and their
    SID log-probs [U, B] (-inf: none)."""
    n_users, depth = h.shape[0], trie.depth
    if depth != model.cfg.levels:
        raise ValueError(f"trie depth {depth} != model SID length {model.cfg.levels}")
    nodes = torch.zeros(n_users, 1, dtype=torch.long)
    score = torch.zeros(n_users, 1)
    prefix = torch.zeros(n_users, 1, 0, dtype=torch.long)
    hq = h.unsqueeze(1)
    for level in range(depth):
        child = children(trie, level, nodes)  # [U, B, V]
        logp = model.level_logits(hq, prefix).log_softmax(-1)
        total = (score.unsqueeze(-1) + logp).masked_fill(child < 0, NEG)
        if level == depth - 1:
            total = total.masked_fill(excl.mask(child), NEG)
        v = total.shape[-1]
        flat, flat_child = total.view(n_users, -1), child.view(n_users, -1)
        check = excl.active and level == depth - 2  # next level is the leaves
        key, idx = flat.topk(min(2 * beam if check else beam, flat.shape[1]), dim=-1)
        nodes = flat_child.gather(1, idx)
        if check:  # oversampled: drop prefixes whose leaves are all excluded
            idx, nodes = keep_live_prefixes(trie, key, idx, nodes, excl, beam)
        score = flat.gather(1, idx)
        parent, code = idx // v, idx % v
        prefix = torch.cat([prefix.gather(1, parent.unsqueeze(-1).expand(-1, -1, level)),
                            code.unsqueeze(-1)], -1)
    return nodes.masked_fill(torch.isinf(score), -1), score


def item_logp(model: SIDRec, h: torch.Tensor, table: torch.Tensor, excl: Excluder,
              new_item_boost: float = 0.0) -> torch.Tensor:
    """Item-head log-probs [U, rows] over the catalogue; excluded items at -inf afterwards
    (the softmax is over the whole catalogue, as in training). ``new_item_boost`` is added to
    the logits of items without an id row (added after training): a freshness knob."""
    logits = model.item_logits(h, table)
    if new_item_boost:
        logits = logits + new_item_boost * (model.present & ~model.has_id)
    return excl.fill(logits.log_softmax(-1), NEG)


def rerank(model: SIDRec, trie: SidTrie, h: torch.Tensor, table: torch.Tensor, k: int,
           beam: int, excl: Excluder, new_item_boost: float = 0.0) -> RecallResult:
    """Top-``k`` of the beam's items and the new items (``present`` without an id row), by
    the item head's logits of those candidates (a softmax over the whole catalogue would only
    shift each user's scores by one constant); ``new_item_boost`` as in :func:`item_logp`."""
    beam_items, _ = beam_sids(model, trie, h, beam, excl)
    new = (model.present & ~model.has_id).nonzero().squeeze(-1)
    cand = torch.cat([beam_items, new.unsqueeze(0).expand(h.shape[0], -1)], 1)
    safe = cand.clamp(min=0)
    score = torch.einsum("ud,ucd->uc", h, table[safe])
    if new_item_boost:
        score = score + new_item_boost * ~model.has_id[safe]
    return _top(cand, score.masked_fill((cand < 0) | excl.mask(cand), NEG), k)


def _top(items: torch.Tensor, score: torch.Tensor, k: int) -> RecallResult:
    """Best ``k`` of candidate items [U, C] (duplicates and -inf dropped) as a padded result."""
    order = torch.argsort(items, dim=1, stable=True)
    it, sc = items.gather(1, order), score.gather(1, order)
    dup = torch.zeros_like(it, dtype=torch.bool)
    dup[:, 1:] = it[:, 1:] == it[:, :-1]
    sc = sc.masked_fill(dup | (it < 0), NEG)
    kk = min(k, sc.shape[1])
    top, idx = sc.topk(kk, dim=-1)
    out_items = np.full((len(it), k), -1, np.int64)
    out_scores = np.full((len(it), k), NEG, np.float32)
    out_items[:, :kk] = it.gather(1, idx).masked_fill(torch.isinf(top), -1).numpy()
    out_scores[:, :kk] = top.numpy()
    return RecallResult(out_items, out_scores)


def with_new_slots(res: RecallResult, logp: torch.Tensor, new: torch.Tensor, slots: int
                   ) -> RecallResult:
    """At least ``slots`` of each user's top-k are items added after training (``new``
    [rows]): where the top-k holds fewer, its lowest warm items make room for the best-scored
    new items not in it, appended last (they score below every item kept, so the list stays
    sorted). A freshness quota, as TIGER's cold-start protocol bounds the share of new items."""
    if slots <= 0 or not bool(new.any()):
        return res
    # the new items a top-k holds are the best-scored new ones: the best ``slots`` new items
    # not in it are what it lacks
    best, best_items = logp.masked_fill(~new, NEG).topk(min(slots, logp.shape[1]), dim=-1)
    fresh = new.numpy()
    items, scores = res.items.copy(), res.scores.copy()
    for u, (cand, cand_s) in enumerate(zip(best_items.numpy(), best.numpy(), strict=True)):
        row = items[u]
        add = [(i, s) for i, s in zip(cand, cand_s, strict=True)
               if np.isfinite(s) and i not in row]
        if not add:
            continue
        warm = [p for p in range(len(row)) if row[p] <= 0 or not fresh[row[p]]]
        drop = set(warm[-len(add):])
        keep = [p for p in range(len(row)) if p not in drop]
        items[u] = np.concatenate([row[keep], [i for i, _ in add]])
        scores[u] = np.concatenate([scores[u][keep], [s for _, s in add]])
    return RecallResult(items, scores)


@torch.no_grad()
def rank(model: SIDRec, trie: SidTrie, h: torch.Tensor, table: torch.Tensor, k: int,
         beam: int, mode: str = "hybrid", weight: float = 1.0, excl: Excluder | None = None,
         new_item_boost: float = 0.0, new_item_slots: int = 0) -> RecallResult:
    """Top-``k`` items for user states ``h`` [U, d] (``table``: ``model.item_table()``);
    ``new_item_slots`` (item mode): see :func:`with_new_slots`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if new_item_slots and mode != "item":
        raise ValueError(f"new-item slots are an item-head option, not {mode!r}'s")
    excl = excl or Excluder(None, h.shape[0])
    if mode == "beam":
        items, score = beam_sids(model, trie, h, beam, excl)
        return _top(items, score, k)
    if mode == "rerank":
        return rerank(model, trie, h, table, k, beam, excl, new_item_boost)
    logp = item_logp(model, h, table, excl, new_item_boost)
    if mode == "item":
        score, items = logp.topk(min(k, logp.shape[1]), dim=-1)
        res = _top(items.masked_fill(torch.isinf(score), -1), score, k)
        return with_new_slots(res, logp, model.present & ~model.has_id, new_item_slots)
    beam_items, _ = beam_sids(model, trie, h, beam, excl)
    _, head_items = logp.topk(min(beam, logp.shape[1]), dim=-1)
    cand = torch.cat([beam_items, head_items], 1)
    safe = cand.clamp(min=0)
    sid = model.sid_logp(h.unsqueeze(1), model.codes[safe].clamp(min=0))
    score = logp.gather(1, safe) + weight * sid
    return _top(cand, score.masked_fill(cand < 0, NEG), k)
