"""Trie-constrained, KV-cached beam search over SIDs, batched across users.

The history of every user is encoded once (``prefill``); its keys/values are shared by that
user's beams, so a decoding step costs only ``U x B`` new tokens attending over the cached
prefix plus at most L-1 cached generated tokens. Each step masks codes the trie does not admit,
so only valid SIDs come out. Exclusions are applied inside the search: at the last level an
excluded item's leaf is masked, and one level earlier a prefix whose whole subtree is excluded is
dropped before it can take a beam slot.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from models.recall.model import KV, SIDGPT, TokenBatch
from models.sid.trie import SidTrie

NEG = float("-inf")
# users per search call: the search's [users, beam, codes] tensors then stay in the CPU caches
# (2-core machine, Beauty: 256 -> 32 users took the search from 4.7 to 2.8 ms per user)
SEARCH_CHUNK = 32


class RecallResult(NamedTuple):
    items: np.ndarray  # [U, k] int64 item ids, -1 where fewer than k valid items exist
    scores: np.ndarray  # [U, k] float32 log-probabilities of the SIDs (-inf for padding)


class RowMap(NamedTuple):
    """Item id -> row of the model's item-id embedding (0 = unknown), by binary search."""

    ids: torch.Tensor  # [N] sorted item ids
    rows: torch.Tensor  # [N]

    @classmethod
    def build(cls, index: dict[int, int], n_rows: int) -> RowMap:
        pairs = sorted((i, r) for i, r in index.items() if r < n_rows)
        ids = torch.tensor([p[0] for p in pairs] or [-1], dtype=torch.long)
        return cls(ids, torch.tensor([p[1] for p in pairs] or [0], dtype=torch.long))

    def lookup(self, items: torch.Tensor) -> torch.Tensor:
        idx = torch.searchsorted(self.ids, items).clamp(max=len(self.ids) - 1)
        return torch.where(self.ids[idx] == items, self.rows[idx], 0)


class Excluder:
    """Batched membership test of (user, item) pairs in per-user exclusion sets: a dense
    [users, max id + 1] bitmap when that is small (a gather per test), else sorted keys."""

    DENSE_LIMIT = 64_000_000  # cells of the bitmap (bytes)

    def __init__(self, exclude: list[set[int]] | None, n_users: int):
        self.active = bool(exclude) and any(exclude)  # type: ignore[arg-type]
        self.m = 1 + max((max(s) for s in exclude or [] if s), default=0)
        pairs = [(u, i) for u, s in enumerate(exclude or []) for i in s if i >= 0]
        self.users = torch.tensor([p[0] for p in pairs], dtype=torch.long)
        self.items = torch.tensor([p[1] for p in pairs], dtype=torch.long)
        self._dense: torch.Tensor | None = None  # built by the first ``mask``
        self._keys: torch.Tensor | None = None
        self.n_users = n_users

    def fill(self, scores: torch.Tensor, value: float) -> torch.Tensor:
        """``scores`` [U, rows] (rows = item ids) with every excluded (user, item) cell set to
        ``value``, in place: one scatter of the excluded pairs, no [U, rows] mask."""
        if self.active:
            keep = self.items < scores.shape[1]
            scores[self.users[keep], self.items[keep]] = value
        return scores

    def mask(self, items: torch.Tensor) -> torch.Tensor:
        """items [U, ...] (item ids, -1 = none) -> True where excluded for that user."""
        if not self.active:
            return torch.zeros_like(items, dtype=torch.bool)
        inside = (items >= 0) & (items < self.m)
        clamped = torch.where(inside, items, 0)
        users = torch.arange(self.n_users).view(-1, *([1] * (items.dim() - 1)))
        if self._dense is None and self._keys is None:
            if self.n_users * self.m <= self.DENSE_LIMIT:
                self._dense = torch.zeros(self.n_users, self.m, dtype=torch.bool)
                self._dense[self.users, self.items] = True
            else:
                self._keys = torch.sort(self.users * self.m + self.items).values
        if self._dense is not None:
            return self._dense[users.expand_as(items), clamped] & inside
        assert self._keys is not None
        return torch.isin(users * self.m + clamped, self._keys) & inside


def children(trie: SidTrie, level: int, nodes: torch.Tensor) -> torch.Tensor:
    """Child ids [*, V] of prefix ``nodes`` (-1 nodes give no children), int64."""
    table = trie.table(level)
    ch = table[nodes.clamp(min=0)].long()
    return ch.masked_fill((nodes < 0).unsqueeze(-1), -1)


def _reorder(own: list[KV], parent: torch.Tensor) -> list[KV]:
    """Gather per-beam caches [U, H, B, s, dh] by parent beam index [U, B']."""
    idx = parent[:, None, :, None, None]
    out = []
    for k, v in own:
        i = idx.expand(-1, k.shape[1], -1, k.shape[3], k.shape[4])
        out.append((k.gather(2, i), v.gather(2, i)))
    return out


def drop_excluded_subtrees(trie: SidTrie, cand: torch.Tensor, nodes: torch.Tensor,
                            excl: Excluder) -> torch.Tensor:
    """-inf for candidate prefix nodes [U, C] all of whose leaves are excluded."""
    leaves = children(trie, trie.depth - 1, nodes)  # [U, C, V_last] item ids
    alive = (leaves >= 0) & ~excl.mask(leaves)
    return cand.masked_fill(~alive.any(-1), NEG)


def keep_live_prefixes(trie: SidTrie, key: torch.Tensor, idx: torch.Tensor, nodes: torch.Tensor,
                       excl: Excluder, beam: int) -> tuple[torch.Tensor, torch.Tensor]:
    """From an oversampled selection (``key``, flat ``idx``, prefix ``nodes`` [U, 2B]) of the
    level before the leaves: the best ``beam`` whose leaves are not all excluded."""
    key = drop_excluded_subtrees(trie, key, nodes, excl)
    _, keep = key.topk(min(beam, key.shape[1]), dim=-1)
    return idx.gather(1, keep), nodes.gather(1, keep)


class Encoded(NamedTuple):
    """Encoded histories of a batch of users: what the search needs from the prefill."""

    kvs: list[KV]  # per layer K/V [U, H, T, dh]
    valid: torch.Tensor  # [U, T] key mask (real tokens)
    last: torch.Tensor  # [U, d] hidden state after the last history token
    next_pos: torch.Tensor  # [U, 1] item position of the item to generate


def encode_prefix(model: SIDGPT, prefix: TokenBatch, lengths: torch.Tensor) -> Encoded:
    """Prefill: right-padded history prefixes (see ``make_batch``) through the model."""
    n_users = prefix.tok.shape[0]
    h, kvs = model(prefix.tok, prefix.pos, prefix.iid)
    last = h[torch.arange(n_users), lengths - 1]
    valid = torch.arange(prefix.tok.shape[1])[None, :] < lengths[:, None]
    next_pos = (prefix.pos[torch.arange(n_users), lengths - 1] + 1).unsqueeze(1)
    return Encoded(kvs, valid, last, next_pos)


@torch.no_grad()
def beam_search(model: SIDGPT, trie: SidTrie, prefix: TokenBatch, lengths: torch.Tensor,
                beam: int = 20, k: int = 10, exclude: list[set[int]] | None = None,
                rows: RowMap | None = None, item_weight: float = 1.0, steer: float = 0.0
                ) -> RecallResult:
    """Top-``k`` items per user from right-padded history prefixes (see ``make_batch``).
    With ``rows`` and a model with an item head, the final candidates are ranked by SID
    log-prob + ``item_weight`` x next-item log-prob."""
    return search(model, trie, encode_prefix(model, prefix, lengths), beam, k, exclude, rows,
                  item_weight, steer)


@torch.no_grad()
def search(model: SIDGPT, trie: SidTrie, enc: Encoded, beam: int = 20, k: int = 10,
           exclude: list[set[int]] | None = None, rows: RowMap | None = None,
           item_weight: float = 1.0, steer: float = 0.0) -> RecallResult:
    """The constrained beam search over already encoded histories (``beam_search``).

    ``steer > 0`` (needs ``rows`` and an item head): beams are *selected* by their SID
    log-prob plus ``steer`` x the item head's log-probability mass of the prefix's subtree (a
    look-ahead at the final score, which adds the item log-prob at the leaf); scores stay SID
    log-probs."""
    cfg, n_users, depth = model.cfg, enc.last.shape[0], trie.depth
    if depth != cfg.levels or depth < 2:
        raise ValueError(f"trie depth {depth} != model SID length {cfg.levels} (or < 2)")
    excl = Excluder(exclude, n_users)
    kvs, valid, last, next_pos = enc
    item_logp = model.item_logp(last) if rows is not None and model.has_item_head else None

    mass = (_subtree_mass(trie, item_logp, rows) if steer > 0 and item_logp is not None
            and rows is not None else None)
    logp = model.level_logits(last, 0).log_softmax(-1)  # [U, V0]
    child = children(trie, 0, torch.zeros(n_users, dtype=torch.long))  # [U, V0]
    cand = logp.masked_fill(child < 0, NEG)
    _, code = _steered(cand, child, mass, 0, steer).topk(min(beam, cand.shape[1]), dim=-1)
    score, nodes = cand.gather(1, code), child.gather(1, code)
    own: list[KV] | None = None
    for level in range(1, depth):
        child = children(trie, level, nodes)  # [U, B, V]
        if level == depth - 1:  # the last token: only beams with several leaves need a step
            logp = _last_level(model, trie, code + cfg.offsets[level - 1], next_pos, kvs, valid,
                               own, child)
            total = (score.unsqueeze(-1) + logp).masked_fill(child < 0, NEG)
            total = total.masked_fill(excl.mask(child), NEG).view(n_users, -1)
            child = child.view(n_users, -1)
            if item_logp is not None and rows is not None:
                total = total + item_weight * item_logp.gather(1, rows.lookup(child))
            return _finish(total, child, k)
        tok = code + cfg.offsets[level - 1]
        hb, own = model.decode(tok, next_pos.expand_as(tok), kvs, valid, own)
        logp = model.level_logits(hb, level).log_softmax(-1)  # [U, B, V]
        total = (score.unsqueeze(-1) + logp).masked_fill(child < 0, NEG)
        v = total.shape[-1]
        flat, flat_child = total.view(n_users, -1), child.view(n_users, -1)
        check = excl.active and level == depth - 2  # next level is the leaves
        key, idx = _steered(flat, flat_child, mass, level, steer).topk(
            min(2 * beam if check else beam, flat.shape[1]), dim=-1)
        nodes = flat_child.gather(1, idx)
        if check:
            idx, nodes = keep_live_prefixes(trie, key, idx, nodes, excl, beam)
        score = flat.gather(1, idx)
        parent, code = idx // v, idx % v
        own = _reorder(own, parent)
    raise AssertionError("unreachable: the last level returns")


class SubtreeMass(NamedTuple):
    """The item head's probability mass under any prefix node, from one cumulative sum per
    user over the items in depth-first trie order (each subtree is one run of it)."""

    cum: torch.Tensor  # [U, N + 1] float64 running sums of item probabilities
    ranges: list[tuple[torch.Tensor, torch.Tensor]]  # per level 1..depth-1: (lo, hi) [n_nodes]

    def log_at(self, level: int, users: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """log mass of level-``level + 1`` prefix nodes ``nodes`` [M] of users ``users`` [M]."""
        lo, hi = self.ranges[level]
        m = (self.cum[users, hi[nodes]] - self.cum[users, lo[nodes]]).float()
        return m.clamp_min_(1e-30).log_()


def _subtree_mass(trie: SidTrie, item_logp: torch.Tensor, rows: RowMap) -> SubtreeMass:
    items, _ = trie.paths()
    p = item_logp.index_select(1, rows.lookup(items)).exp()  # [U, N] in trie order
    cum = torch.zeros(p.shape[0], p.shape[1] + 1, dtype=torch.float64)
    torch.cumsum(p, 1, dtype=torch.float64, out=cum[:, 1:])
    return SubtreeMass(cum, trie.ranges())


def _steered(total: torch.Tensor, child: torch.Tensor, mass: SubtreeMass | None,
             level: int, steer: float) -> torch.Tensor:
    """Selection key of candidate prefixes [U, C]: ``total`` (+ steer x subtree mass of
    ``child``), computed for valid children only (the trie is sparse: a few % of the slots)."""
    if mass is None:
        return total
    users, slots = (child >= 0).nonzero(as_tuple=True)
    key = torch.full_like(total, NEG)
    key[users, slots] = total[users, slots] + steer * mass.log_at(level, users,
                                                                   child[users, slots])
    return key


def _last_level(model: SIDGPT, trie: SidTrie, tok: torch.Tensor, next_pos: torch.Tensor,
                kvs: list[KV], valid: torch.Tensor, own: list[KV] | None, child: torch.Tensor
                ) -> torch.Tensor:
    """log p(last token | prefix), normalised over the prefix's leaves in the trie [U, B, V].

    The last token only tells apart items that share all other codes (the collision index),
    and most prefixes hold a single item (91.5 % on Beauty), whose log-prob is then exactly 0:
    the decoder step runs only for beams whose prefix has several leaves. They are packed to
    the front of each user's beams ([U', W], W = the most such beams of any user), so the
    step shares each user's encoded prefix like the other steps do.
    """
    logp = torch.zeros(child.shape)
    multi = (child >= 0).sum(-1) > 1  # [U, B]
    users = multi.any(1).nonzero().squeeze(1)
    if len(users) == 0 or own is None:
        return logp
    m = multi[users]
    width = int(m.sum(1).max())
    beams = torch.argsort((~m).to(torch.uint8), dim=1, stable=True)[:, :width]  # [U', W]
    keep = m.gather(1, beams)
    sub_own = _reorder([(k[users], v[users]) for k, v in own], beams)
    prefix = [(k[users], v[users]) for k, v in kvs]
    hb, _ = model.decode(tok[users].gather(1, beams), next_pos[users].expand(-1, width),
                         prefix, valid[users], sub_own)
    sub_child = child[users].gather(1, beams.unsqueeze(-1).expand(-1, -1, child.shape[-1]))
    lp = model.level_logits(hb, trie.depth - 1).masked_fill(sub_child < 0, NEG).log_softmax(-1)
    logp[users.unsqueeze(1).expand_as(beams)[keep], beams[keep]] = lp[keep]
    return logp


def _finish(total: torch.Tensor, items: torch.Tensor, k: int) -> RecallResult:
    kk = min(k, total.shape[1])
    score, idx = total.topk(kk, dim=-1)
    out = items.gather(1, idx).masked_fill(torch.isinf(score), -1)
    res_items = np.full((total.shape[0], k), -1, np.int64)
    res_scores = np.full((total.shape[0], k), NEG, np.float32)
    res_items[:, :kk], res_scores[:, :kk] = out.numpy(), score.float().numpy()
    return RecallResult(res_items, res_scores)
