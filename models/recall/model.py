"""Decoder-only transformer over flattened semantic-ID tokens (nanoGPT style).

A user's history of items ``i_1 .. i_n`` becomes ``[BOS, s_1^0, s_1^1, s_1^2, s_1^3, s_2^0, ...]``
where ``s_j^l`` is level ``l`` of item ``j``'s SID. Token ids are level-offset (one vocabulary, a
slice per level), so the token embedding also tells the level; an item-position embedding says
which item a token belongs to. Optionally the last token of each *history* item also carries a
learned item-id embedding (never the tokens of the item being generated, so nothing leaks).
Trained with next-token cross-entropy on every position at once (teacher forcing); the output
layer of level ``l`` is the tied embedding slice of that level. ``prefill`` + ``decode`` give the
KV-cached path used by constrained beam search (models/recall/beam.py): the history is encoded once
per user and shared by all beams; only the <= 3 generated tokens are cached per beam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

PAD, BOS = 0, 1  # special tokens; level l codes start at offsets[l]


@dataclass
class GenConfig:
    vocab_sizes: tuple[int, ...] = (256, 256, 256, 64)  # per SID level (last: collisions)
    n_items: int = 0  # rows of the item-id embedding (0 disables it); row 0 = unknown item
    max_items: int = 21  # history 20 + the target
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    d_ff: int = 512
    dropout: float = 0.2
    # auxiliary next-item softmax at item boundaries, tied to the item-id embedding (needs
    # n_items); its log-prob is added to the SID log-prob when ranking the beam's candidates
    item_loss: float = 0.0
    # codes per profile/context field (models/data/profile.py), read as one token each before BOS;
    # () = no profile tokens (the plain model)
    profile_sizes: tuple[int, ...] = ()

    @property
    def n_profile(self) -> int:
        return len(self.profile_sizes)

    @property
    def profile_offsets(self) -> tuple[int, ...]:
        """Token id of each profile field's code 0 (after the SID vocabulary)."""
        out, acc = [], 2 + sum(self.vocab_sizes)
        for v in self.profile_sizes:
            out.append(acc)
            acc += v
        return tuple(out)

    @property
    def levels(self) -> int:
        return len(self.vocab_sizes)

    @property
    def offsets(self) -> tuple[int, ...]:
        out, acc = [], 2
        for v in self.vocab_sizes:
            out.append(acc)
            acc += v
        return tuple(out)

    @property
    def vocab(self) -> int:
        return 2 + sum(self.vocab_sizes) + sum(self.profile_sizes)


class TokenBatch(NamedTuple):
    tok: torch.Tensor  # [B, T] token ids (right-padded with PAD)
    pos: torch.Tensor  # [B, T] item positions (0 for BOS/PAD, j for item j, 1-based)
    iid: torch.Tensor  # [B, T] item-id rows, non-zero only on last tokens of history items
    target: torch.Tensor  # [B, T] next token's code within its level, -100 where ignored
    next_item: torch.Tensor  # [B, T // L] id row of the item each boundary predicts (-100: none)


KV = tuple[torch.Tensor, torch.Tensor]  # keys, values [B, H, T, dh]


class Attention(nn.Module):
    def __init__(self, cfg: GenConfig):
        super().__init__()
        self.h, self.dh = cfg.n_heads, cfg.d_model // cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.drop = cfg.dropout

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        *lead, _ = x.shape  # [..., T, 3d] -> 3 x [..., H, T, dh]
        q, k, v = self.qkv(x).split(self.h * self.dh, dim=-1)
        shape = (*lead[:-1], lead[-1], self.h, self.dh)
        return (q.view(shape).transpose(-3, -2), k.view(shape).transpose(-3, -2),
                v.view(shape).transpose(-3, -2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, KV]:
        """Causal self-attention over a full (right-padded) sequence; returns output and K/V."""
        q, k, v = self._split(x)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.drop if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(x.shape)), (k, v)

    def extend(self, x: torch.Tensor, past: KV, past_valid: torch.Tensor
               ) -> tuple[torch.Tensor, KV]:
        """New tokens x [U, Tn, d] after an encoded prefix (K/V [U, H, Tp, dh], key mask
        ``past_valid`` [U, Tp]): they attend to the valid past keys and causally to each
        other.
        Returns the output and the new tokens' K/V (the prefix cache of
        models/recall/prefix_cache.py)."""
        q, k, v = self._split(x)
        tn = x.shape[1]
        causal = torch.ones(tn, tn, dtype=torch.bool).tril()
        mask = torch.cat([past_valid[:, None, :].expand(-1, tn, -1),
                          causal.expand(x.shape[0], -1, -1)], -1)  # [U, Tn, Tp + Tn]
        y = F.scaled_dot_product_attention(q, torch.cat([past[0], k], 2),
                                           torch.cat([past[1], v], 2), attn_mask=mask[:, None])
        return self.proj(y.transpose(1, 2).reshape(x.shape)), (k, v)

    def decode(self, x: torch.Tensor, prefix: KV, valid: torch.Tensor, own: KV | None
               ) -> tuple[torch.Tensor, KV]:
        """One new token per beam. x [U, B, d]; prefix K/V [U, H, T, dh] shared by the U's
        beams, ``valid`` [U, T] its key mask; ``own`` [U, H, B, s, dh] this beam's earlier
        generated tokens. Returns [U, B, d] and the extended ``own``."""
        q, k, v = self._split(x)  # [U, H, B, dh]
        k, v = k.unsqueeze(3), v.unsqueeze(3)
        ok, ov = (k, v) if own is None else (torch.cat([own[0], k], 3), torch.cat([own[1], v], 3))
        scale = 1.0 / math.sqrt(self.dh)
        s_pre = (q @ prefix[0].transpose(-1, -2)) * scale  # [U, H, B, T]
        s_pre = s_pre.masked_fill(~valid[:, None, None, :], float("-inf"))
        s_own = (q.unsqueeze(3) * ok).sum(-1) * scale  # [U, H, B, s]
        att = torch.cat([s_pre, s_own], -1).softmax(-1)
        t = s_pre.shape[-1]
        y = att[..., :t] @ prefix[1] + (att[..., t:].unsqueeze(-1) * ov).sum(3)
        return self.proj(y.transpose(1, 2).reshape(x.shape)), (ok, ov)


class Block(nn.Module):
    def __init__(self, cfg: GenConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(),
                                 nn.Linear(cfg.d_ff, cfg.d_model), nn.Dropout(cfg.dropout))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, KV]:
        a, kv = self.attn(self.ln1(x))
        x = x + self.drop(a)
        return x + self.mlp(self.ln2(x)), kv

    def extend(self, x: torch.Tensor, past: KV, past_valid: torch.Tensor
               ) -> tuple[torch.Tensor, KV]:
        a, kv = self.attn.extend(self.ln1(x), past, past_valid)
        x = x + a
        return x + self.mlp(self.ln2(x)), kv

    def decode(self, x: torch.Tensor, prefix: KV, valid: torch.Tensor, own: KV | None
               ) -> tuple[torch.Tensor, KV]:
        a, own = self.attn.decode(self.ln1(x), prefix, valid, own)
        x = x + a
        return x + self.mlp(self.ln2(x)), own


class SIDGPT(nn.Module):
    def __init__(self, cfg: GenConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab, cfg.d_model, padding_idx=PAD)
        self.pos_emb = nn.Embedding(cfg.max_items + 1, cfg.d_model)
        self.id_emb = nn.Embedding(cfg.n_items, cfg.d_model, padding_idx=0) if cfg.n_items else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.apply(self._init)
        with torch.no_grad():  # padding rows stay zero: decode() relies on id row 0 being 0
            self.tok_emb.weight[PAD].zero_()
            if self.id_emb is not None:
                self.id_emb.weight[0].zero_()

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    @property
    def layers(self) -> list[Block]:
        return [b for b in self.blocks if isinstance(b, Block)]

    def embed(self, tok: torch.Tensor, pos: torch.Tensor, iid: torch.Tensor) -> torch.Tensor:
        x = self.tok_emb(tok) + self.pos_emb(pos)
        if self.id_emb is not None:
            x = x + self.id_emb(iid.clamp(max=self.cfg.n_items - 1))
        return self.drop(x)

    def forward(self, tok: torch.Tensor, pos: torch.Tensor, iid: torch.Tensor
                ) -> tuple[torch.Tensor, list[KV]]:
        """Hidden states [B, T, d] (after the final norm) and each layer's K/V."""
        x, kvs = self.embed(tok, pos, iid), []
        for block in self.blocks:
            x, kv = block(x)
            kvs.append(kv)
        return self.ln_f(x), kvs

    def extend(self, tok: torch.Tensor, pos: torch.Tensor, iid: torch.Tensor, past: list[KV],
               past_valid: torch.Tensor) -> tuple[torch.Tensor, list[KV]]:
        """``forward`` for tokens that follow an already encoded prefix (its per-layer K/V and
        key mask): hidden states of the new tokens and their K/V."""
        x, kvs = self.embed(tok, pos, iid), []
        for i, block in enumerate(self.layers):
            x, kv = block.extend(x, past[i], past_valid)
            kvs.append(kv)
        return self.ln_f(x), kvs

    def level_logits(self, h: torch.Tensor, level: int) -> torch.Tensor:
        """Logits over level ``level``'s codes (tied output embedding slice)."""
        off = self.cfg.offsets[level]
        return h @ self.tok_emb.weight[off: off + self.cfg.vocab_sizes[level]].T

    @property
    def has_item_head(self) -> bool:
        return self.id_emb is not None and self.cfg.item_loss > 0

    def item_logp(self, h: torch.Tensor) -> torch.Tensor:
        """Log-probs [*, n_items] of the next item from boundary states; row 0 (unknown item)
        is masked in the softmax and then given the uniform log-prob."""
        assert self.id_emb is not None
        logits = h @ self.id_emb.weight.T
        logits[..., 0] = float("-inf")
        out = logits.log_softmax(-1)
        out[..., 0] = -math.log(self.cfg.n_items - 1)
        return out

    def loss(self, batch: TokenBatch) -> torch.Tensor:
        """Mean next-token CE over all non-ignored positions (position p predicts level
        p % L), plus ``item_loss`` x the next-item CE at item boundaries."""
        h, _ = self(batch.tok, batch.pos, batch.iid)
        lv, target = self.cfg.levels, batch.target
        if self.cfg.n_profile:  # the profile tokens predict nothing
            h, target = h[:, self.cfg.n_profile:].contiguous(), target[:, self.cfg.n_profile:]
        b, t, d = h.shape
        h = h.view(b, t // lv, lv, d)
        aux = self._item_loss(h[:, :, 0], batch.next_item) if self.has_item_head else 0.0
        tgt = target.reshape(b, t // lv, lv)
        total, count = h.new_zeros(()), 0
        for level in range(lv):
            y = tgt[:, :, level].reshape(-1)
            keep = y >= 0
            logits = self.level_logits(h[:, :, level].reshape(-1, d)[keep], level)
            total = total + F.cross_entropy(logits, y[keep], reduction="sum")
            count += int(keep.sum())
        return total / max(count, 1) + self.cfg.item_loss * aux

    def _item_loss(self, hb: torch.Tensor, next_item: torch.Tensor) -> torch.Tensor:
        y = next_item.reshape(-1)
        keep = y > 0
        assert self.id_emb is not None
        logits = hb.reshape(-1, hb.shape[-1])[keep] @ self.id_emb.weight.T
        logits[:, 0] = float("-inf")
        return F.cross_entropy(logits, y[keep])

    def decode(self, tok: torch.Tensor, pos: torch.Tensor, prefix: list[KV], valid: torch.Tensor,
               own: list[KV] | None) -> tuple[torch.Tensor, list[KV]]:
        """One generated token per beam: tok [U, B], pos [U, B] -> hidden [U, B, d], caches."""
        x = self.tok_emb(tok) + self.pos_emb(pos)
        new_own = []
        for i, block in enumerate(self.layers):
            x, kv = block.decode(x, prefix[i], valid, None if own is None else own[i])
            new_own.append(kv)
        return self.ln_f(x), new_own
