"""Cold-start recall from a profile: generate coarse SID prefixes, map them to SKUs by bandit.

The seed system (LLM4CB) lets a generator infer the *products* a new user needs from their
profile and context, then maps each product to concrete SKUs whose explore-exploit score is
above a threshold. Here the generator is a profile-conditioned SIDGPT (``GenConfig.
profile_sizes``): reading ``[profile tokens, BOS, history...]`` (the history may be empty), a
constrained beam over the first ``levels`` SID codes yields the ``prefixes`` most probable
coarse prefixes -- the "products", groups of similar items. The items under each prefix (the
trie's subtree) are scored by an :class:`models.coldstart.bandit.ItemBandit`; those scoring above
``epsilon`` are kept, ranked by ``p(prefix) x bandit score``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from models.coldstart.bandit import ItemBandit
from models.recall.beam import NEG, Encoded, RecallResult, _reorder, children
from models.recall.model import KV, SIDGPT
from models.recall.recaller import GenerativeRecaller
from models.sid.trie import SidTrie


@dataclass(frozen=True)
class ColdStartConfig:
    levels: int = 1  # SID levels of a generated "product" (coarse prefix)
    prefixes: int = 5  # products generated per user
    epsilon: float = 0.01  # SKUs are kept when their bandit score (demand share) exceeds it
    bandit: str = "ucb"  # or "thompson"


class Prefixes(NamedTuple):
    nodes: np.ndarray  # [U, n] trie node ids at level ``levels`` (-1: none)
    logp: np.ndarray  # [U, n] float32 log-probabilities of the prefixes (-inf: none)


@torch.no_grad()
def prefix_search(model: SIDGPT, trie: SidTrie, enc: Encoded, levels: int, n: int
                  ) -> Prefixes:
    """The ``n`` most probable valid SID prefixes of ``levels`` codes per user (exact for one
    level, a beam of width ``n`` beyond), from encoded histories."""
    if not 1 <= levels < trie.depth:
        raise ValueError(f"prefix levels must be in [1, {trie.depth - 1}], got {levels}")
    users = enc.last.shape[0]
    child = children(trie, 0, torch.zeros(users, dtype=torch.long))  # [U, V0]
    total = model.level_logits(enc.last, 0).log_softmax(-1).masked_fill(child < 0, NEG)
    score, code = total.topk(min(n, total.shape[1]), dim=-1)
    nodes = child.gather(1, code)
    own: list[KV] | None = None
    for level in range(1, levels):
        tok = code + model.cfg.offsets[level - 1]
        hb, own = model.decode(tok, enc.next_pos.expand_as(tok), enc.kvs, enc.valid, own)
        child = children(trie, level, nodes)  # [U, B, V]
        total = (score.unsqueeze(-1) + model.level_logits(hb, level).log_softmax(-1))
        flat = total.masked_fill(child < 0, NEG).view(users, -1)
        score, idx = flat.topk(min(n, flat.shape[1]), dim=-1)
        nodes = child.view(users, -1).gather(1, idx)
        code = idx % child.shape[-1]
        own = _reorder(own, idx // child.shape[-1])
    nodes = nodes.masked_fill(torch.isinf(score), -1)
    return Prefixes(nodes.numpy(), score.float().numpy())


class PrefixIndex:
    """Items under each trie node of one level (rebuilt when the trie grows)."""

    def __init__(self, trie: SidTrie, levels: int) -> None:
        items, nodes = trie.paths()
        key = nodes[:, levels - 1].numpy()
        order = np.argsort(key, kind="stable")
        self.items, self.key = items.numpy()[order], key[order]
        self.n_items, self.levels = trie.n_items, levels

    def under(self, node: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.key, [node, node + 1])
        return self.items[lo:hi]


class ColdStartRecaller:
    """Profile model + bandit -> cold-start candidates (used offline and by the stream)."""

    def __init__(self, rec: GenerativeRecaller, cfg: ColdStartConfig) -> None:
        # a model without profile tokens works too (the profiles are then ignored): the
        # evaluation's baseline
        self.rec, self.cfg = rec, cfg
        self._index: PrefixIndex | None = None

    def index(self) -> PrefixIndex:
        if self._index is None or self._index.n_items != self.rec.trie.n_items:
            self._index = PrefixIndex(self.rec.trie, self.cfg.levels)
        return self._index

    @torch.no_grad()
    def prefixes(self, histories: list[list[int]], profiles: Sequence[np.ndarray],
                 batch_size: int = 256) -> Prefixes:
        rows = self.rec.prefixes(histories)
        parts = [prefix_search(self.rec.model, self.rec.trie,
                               self.rec.encode(rows[s: s + batch_size],
                                               profiles[s: s + batch_size]),
                               self.cfg.levels, self.cfg.prefixes)
                 for s in range(0, len(rows), batch_size)]
        return Prefixes(np.concatenate([p.nodes for p in parts]),
                        np.concatenate([p.logp for p in parts]))

    def recall(self, histories: list[list[int]], profiles: Sequence[np.ndarray],
               bandit: ItemBandit, k: int, exclude: list[set[int]] | None = None,
               rng: np.random.Generator | None = None) -> tuple[RecallResult, Prefixes]:
        """Top-``k`` items per user (scores: p(prefix) x bandit score; -1 / 0 padding) and the
        generated prefixes."""
        pre = self.prefixes(histories, profiles)
        items = np.full((len(histories), k), -1, np.int64)
        scores = np.zeros((len(histories), k), np.float32)
        for u in range(len(histories)):
            cand, val = self._map(pre.nodes[u], pre.logp[u], bandit,
                                  exclude[u] if exclude else set(), rng)
            top = np.argsort(-val, kind="stable")[:k]
            items[u, : len(top)], scores[u, : len(top)] = cand[top], val[top]
        return RecallResult(items, scores), pre

    def _map(self, nodes: np.ndarray, logp: np.ndarray, bandit: ItemBandit,
             exclude: set[int], rng: np.random.Generator | None
             ) -> tuple[np.ndarray, np.ndarray]:
        """SKUs under the generated prefixes whose bandit score exceeds epsilon."""
        index = self.index()
        cand, val = [], []
        for node, lp in zip(nodes.tolist(), logp.tolist(), strict=True):
            if node < 0:
                continue
            under = index.under(node)
            if exclude:
                under = under[~np.isin(under, list(exclude))]
            s = bandit.score(under, self.cfg.bandit, rng)
            keep = s > self.cfg.epsilon
            cand.append(under[keep])
            val.append(np.exp(lp) * s[keep])
        if not cand:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        return np.concatenate(cand), np.concatenate(val)
