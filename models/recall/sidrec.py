"""SIDRec: an item-level transformer over semantic-ID item embeddings, with two heads.

Each item is embedded as the sum of its SID code embeddings (the content levels: the collision
token says nothing about the item), optionally a learned projection of the vector the tokenizer
quantized (``content_dim``: the text embedding, or item2vec for a catalogue without text; finer
than the codes and shared by new items), plus, for items seen in training, a learned item-id
embedding. A causal transformer over a user's last ``max_len`` items (SASRec's encoder) gives a
state ``h`` per position, read by two heads trained together:

* the **item head**: full-softmax scores ``h . e_i`` against every catalogue item's embedding
  (tied to the input embedding). An item added after training has codes but no id row, so it is
  scored by its codes alone; ``id_drop`` trains that case (a random share of the catalogue loses
  its id part in each batch, as input and as target);
* the **SID head** (generative): ``log p(s_0 .. s_L-1 | h)`` one level at a time, each level a
  residual MLP over ``h`` plus the embeddings of the codes chosen so far, decoded by
  trie-constrained beam search (``models/recall/sidrec_search.py``). Its cost does not grow with
  the catalogue.

The catalogue lives in buffers: ``codes`` [rows, L] (-1: no item in that row), ``has_id``
[rows] and, with ``content_dim``, ``vectors`` [rows, content_dim]. Rows are item ids;
``add_items`` grows them in place for catalogue upserts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

NEG = float("-inf")


@dataclass(frozen=True)
class SIDRecConfig:
    vocab_sizes: tuple[int, ...]  # codes per SID level (the last: the collision index)
    n_items: int  # rows of the item-id embedding: ids 1..n_items (row 0 = padding)
    max_len: int = 20  # history positions
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    dropout: float = 0.5
    id_embedding: bool = True  # learned id part for items seen in training
    id_drop: float = 0.1  # share of items trained without their id part (as cold items serve)
    sid_weight: float = 1.0  # weight of the SID head's cross-entropy (summed over levels)
    sid_detach: bool = True  # the SID head reads the encoder's states without shaping them
    sid_distill: int = 0  # >0: the SID head also learns the item head's top-k items at each
    # position, weighted by the item head's softmax over them (the teacher), beside the one
    # observed next item: the beam learns the item head's ranking, not one item per position
    content_dim: int = 0  # >0: the tokenizer's input vector of each item (text or item2vec),
    # projected, joins its codes in the item embedding (0: codes only)
    drop_neighbors: int = 0  # >0: an id-dropped item in training gets the id part new items
    # are served with by ``item_table(neighbors=k)`` (its k nearest warm items', not learned
    # through) instead of none, so the model learns to score such items
    id_stand_in: bool = True  # items added after training get a stand-in id part: regressed
    # from their vector (``stand_in``, fitted after training by models/recall/sidrec_stand_in.py)
    # or their nearest warm items' (``item_table(neighbors=k)``)

    @property
    def levels(self) -> int:
        return len(self.vocab_sizes)

    @property
    def content_levels(self) -> int:
        """SID levels summed into the item embedding: all but the collision index."""
        return self.levels - 1

    def offsets(self, n: int) -> list[int]:
        """Start of each of the first ``n`` levels in a vocabulary that stacks them."""
        return [sum(self.vocab_sizes[:lv]) for lv in range(n)]


class SeqBatch(NamedTuple):
    """Left-padded training windows: ``inputs`` predict ``targets`` position by position."""

    inputs: torch.Tensor  # [B, T] item rows (0 = padding)
    targets: torch.Tensor  # [B, T] next item rows (0 = nothing to predict)


class LevelMLP(nn.Module):
    """One SID level: residual MLP over the query, then logits over that level's codes."""

    def __init__(self, d: int, vocab: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d),
                                 nn.Dropout(dropout))
        self.out = nn.Linear(d, vocab)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return self.out(q + self.mlp(self.norm(q)))


class SIDRec(nn.Module):
    codes: torch.Tensor  # buffers, see the module docstring
    has_id: torch.Tensor
    vectors: torch.Tensor
    stand_in: torch.Tensor  # [content_dim + 1, d]: vector (and 1) -> id part of a new item
    causal: torch.Tensor

    def __init__(self, cfg: SIDRecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.code_emb = nn.Embedding(sum(cfg.vocab_sizes[: cfg.content_levels]), d)
        self.id_emb = nn.Embedding(cfg.n_items + 1, d, padding_idx=0) if cfg.id_embedding \
            else None
        self.pos = nn.Embedding(cfg.max_len, d)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(d, cfg.n_heads, 4 * d, cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.content = nn.Linear(cfg.content_dim, d, bias=False) if cfg.content_dim else None
        self.prefix_emb = nn.Embedding(sum(cfg.vocab_sizes[:-1]), d)
        self.heads = nn.ModuleList(LevelMLP(d, v, cfg.dropout) for v in cfg.vocab_sizes)
        for emb in (self.code_emb, self.pos, self.prefix_emb, *([self.id_emb] if self.id_emb
                                                               else [])):
            nn.init.normal_(emb.weight, std=0.02)
        if self.id_emb is not None:
            with torch.no_grad():
                self.id_emb.weight[0].zero_()
        self.register_buffer("codes", torch.full((cfg.n_items + 1, cfg.levels), -1))
        self.register_buffer("has_id", torch.zeros(cfg.n_items + 1, dtype=torch.bool))
        self.register_buffer("vectors", torch.zeros(cfg.n_items + 1, cfg.content_dim),
                             persistent=cfg.content_dim > 0)
        self.register_buffer("stand_in", torch.zeros(cfg.content_dim + 1, d))
        self._drop_nbrs: tuple[torch.Tensor, torch.Tensor] | None = None  # see _dropped_id_parts
        causal = torch.triu(torch.ones(cfg.max_len, cfg.max_len, dtype=torch.bool), 1)
        self.register_buffer("causal", causal, persistent=False)

    # ------------------------------------------------------------------ catalogue
    @property
    def n_rows(self) -> int:
        return int(self.codes.shape[0])

    def add_items(self, rows: torch.Tensor, codes: torch.Tensor, trained: bool = False,
                  vectors: torch.Tensor | None = None) -> None:
        """Put items (rows = item ids) with their SIDs [N, L] (and, with ``content_dim``, their
        tokenizer vectors [N, content_dim]) into the catalogue, growing the buffers as needed;
        ``trained`` marks rows whose id embedding is learned."""
        if self.cfg.content_dim and vectors is None and bool((codes >= 0).any()):
            raise ValueError("this model embeds items by their vectors too: give them")
        need = int(rows.max()) + 1 if len(rows) else 0
        if need > self.n_rows:
            grow = need - self.n_rows
            self.codes = torch.cat([self.codes, self.codes.new_full((grow, self.cfg.levels), -1)])
            self.has_id = torch.cat([self.has_id, self.has_id.new_zeros(grow)])
            self.vectors = torch.cat([self.vectors, self.vectors.new_zeros(grow,
                                                                           self.cfg.content_dim)])
        self.codes[rows] = codes.to(self.codes.dtype)
        if vectors is not None and self.cfg.content_dim:
            self.vectors[rows] = vectors.to(self.vectors.dtype).view(len(rows), -1)
        self.has_id[rows] = trained and self.id_emb is not None
        self.has_id[rows] &= rows <= self.cfg.n_items

    @property
    def present(self) -> torch.Tensor:
        """[rows] True where the row holds a catalogue item."""
        return self.codes[:, 0] >= 0

    def item_table(self, id_mask: torch.Tensor | None = None, neighbors: int = 0
                   ) -> torch.Tensor:
        """Embedding of every row [rows, d]: its content codes, plus its id part where
        ``has_id`` (and ``id_mask``, the training-time id drop) allow. An item added after
        training gets a stand-in id part: with ``neighbors`` > 0 the similarity-weighted mean
        id part of its nearest warm items by vector (``neighbor_id_parts``), else the
        ``stand_in`` regression of its vector (zero until fitted)."""
        codes = self.codes[:, : self.cfg.content_levels]
        off = torch.tensor(self.cfg.offsets(self.cfg.content_levels))
        e = (self.code_emb((codes + off).clamp(min=0)) * (codes >= 0).unsqueeze(-1)).sum(1)
        if self.content is not None:
            e = e + self.content(self.vectors)  # rows without an item hold zero vectors
        if self.id_emb is not None:
            keep = self.has_id if id_mask is None else self.has_id & id_mask
            n = self.cfg.n_items + 1
            ids = self.id_emb.weight * keep[:n].unsqueeze(-1)
            e = torch.cat([e[:n] + ids, e[n:]])
            if id_mask is not None and self.cfg.drop_neighbors > 0:
                dropped = (self.has_id & ~id_mask).nonzero().squeeze(-1)
                e = e.index_add(0, dropped, self._dropped_id_parts(dropped))
            new = (self.present & ~self.has_id).nonzero().squeeze(-1)
            if self.training or not self.cfg.id_stand_in or not len(new):
                return e
            if neighbors > 0:
                e = e.index_add(0, new, self.neighbor_id_parts(new, neighbors))
            elif bool(self.stand_in.any()):
                x = torch.cat([self.vectors[new], self.vectors.new_ones(len(new), 1)], 1)
                e = e.index_add(0, new, x @ self.stand_in)
        return e

    def _dropped_id_parts(self, rows: torch.Tensor) -> torch.Tensor:
        """The neighbour stand-in of id-dropped warm ``rows`` in training: their nearest other
        warm items by vector (found once, then cached) and those items' current id parts,
        detached."""
        if self._drop_nbrs is None:
            warm = self.has_id.nonzero().squeeze(-1)
            idx = torch.zeros(self.n_rows, self.cfg.drop_neighbors, dtype=torch.long)
            w = torch.zeros(self.n_rows, self.cfg.drop_neighbors)
            with torch.no_grad():
                idx[warm], w[warm] = self._warm_neighbors(warm, self.cfg.drop_neighbors,
                                                          exclude_self=True)
            self._drop_nbrs = (idx, w)
        idx, w = self._drop_nbrs
        assert self.id_emb is not None
        parts = self.id_emb.weight.detach()[idx[rows]]  # [R, k, d]
        return torch.einsum("rk,rkd->rd", w[rows], parts)

    def neighbor_id_parts(self, rows: torch.Tensor, k: int) -> torch.Tensor:
        """[len(rows), d]: for each row, the mean learned id part of the ``k`` warm items whose
        vectors are most similar to its own (cosine), weighted by that similarity (negative
        ones count 0). Needs ``content_dim``; zeros without."""
        if self.id_emb is None or not self.cfg.content_dim or not bool(self.has_id.any()):
            return self.vectors.new_zeros(len(rows), self.cfg.d_model)
        idx, w = self._warm_neighbors(rows, k)
        return torch.einsum("nk,nkd->nd", w, self.id_emb.weight[idx])

    def _warm_neighbors(self, rows: torch.Tensor, k: int, exclude_self: bool = False,
                        chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
        """For each of ``rows``: its ``k`` (at most the warm items') most similar warm items by
        vector cosine ([R, k] rows) and their weights (the similarities, negative ones 0,
        summing to 1); ``exclude_self`` leaves a warm row out of its own neighbours."""
        warm = self.has_id.nonzero().squeeze(-1)
        k = min(k, len(warm) - int(exclude_self))
        vecs = F.normalize(self.vectors[warm], dim=1)
        idx = torch.zeros(len(rows), k, dtype=torch.long)
        w = torch.zeros(len(rows), k)
        for s in range(0, len(rows), chunk):
            part = rows[s: s + chunk]
            sims = F.normalize(self.vectors[part], dim=1) @ vecs.T
            if exclude_self:
                sims[part[:, None] == warm[None, :]] = -2.0
            top, at = sims.topk(k, dim=1)
            top = top.clamp(min=0)
            idx[s: s + chunk] = warm[at]
            w[s: s + chunk] = top / top.sum(1, keepdim=True).clamp(min=1e-12)
        return idx, w

    # ------------------------------------------------------------------ encoder
    def encode(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """``seq`` [B, T] item rows, left-padded with 0 -> hidden states [B, T, d]."""
        t = seq.shape[1]
        x = table[seq] * self.cfg.d_model ** 0.5 + self.pos.weight[-t:]
        # causal, no padded key; a padded query sees itself only (no NaN rows)
        mask = self.causal[:t, :t] | (seq == 0)[:, None, :]
        mask &= ~torch.eye(t, dtype=torch.bool)
        mask = mask.repeat_interleave(self.cfg.n_heads, 0)
        return self.norm(self.blocks(self.drop(x), mask=mask))

    def item_logits(self, h: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Scores of every row [*, rows]; rows without an item (and row 0) at -inf."""
        out = h @ table.T
        return out.masked_fill(~self.present, NEG)

    # ------------------------------------------------------------------ SID head
    def level_logits(self, h: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Logits over level ``prefix.shape[-1]``'s codes given the codes chosen so far
        (``prefix`` [..., l], ``h`` broadcastable to [..., d])."""
        level = prefix.shape[-1]
        q = h
        if level:
            off = torch.tensor(self.cfg.offsets(level))
            q = h + self.prefix_emb(prefix + off).sum(-2)
        return self.heads[level](q)

    def sid_logp(self, h: torch.Tensor, sids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced log p(SID | h): h [..., d], sids [..., L] -> [...]."""
        total = h.new_zeros(sids.shape[:-1])
        h = h.expand(*sids.shape[:-1], h.shape[-1])
        for level in range(self.cfg.levels):
            logp = self.level_logits(h, sids[..., :level]).log_softmax(-1)
            total = total + logp.gather(-1, sids[..., level: level + 1]).squeeze(-1)
        return total

    # ------------------------------------------------------------------ training
    def loss(self, batch: SeqBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Item-head CE (full softmax) + ``sid_weight`` x SID-head CE, over every position
        that has a target; also returns both parts for logging."""
        mask = None
        if self.training and self.cfg.id_drop > 0:
            mask = torch.rand(self.n_rows) >= self.cfg.id_drop
        table = self.item_table(mask)
        keep = (batch.inputs > 0) & (batch.targets > 0)
        h = self.encode(batch.inputs, table)[keep]
        tgt = batch.targets[keep]
        logits = self.item_logits(h, table)
        item = F.cross_entropy(logits, tgt)
        hs = h.detach() if self.cfg.sid_detach else h
        sid = -self.sid_logp(hs, self.codes[tgt]).mean()
        if self.cfg.sid_distill > 0:
            sid = sid + self.distill_loss(hs, logits.detach())
        return item + self.cfg.sid_weight * sid, {"item": item.item(), "sid": sid.item()}

    def distill_loss(self, h: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the SID head (teacher-forced on each SID) against the item head's
        ``sid_distill`` best items at each position, weighted by the item head's softmax over
        them: ``h`` [P, d], ``logits`` [P, rows] the item head's scores (the teacher: detached)."""
        k = min(self.cfg.sid_distill, int(self.present.sum()))
        top, rows = logits.topk(k, dim=-1)
        weights = top.softmax(-1)
        logp = self.sid_logp(h.unsqueeze(-2), self.codes[rows])  # [P, k]
        return -(weights * logp).sum(-1).mean()
