"""Per-user cache of encoded histories (the prefill's keys/values), LRU-bounded.

A stream worker recalls for the same users again and again, each time with one or a few items
appended to a history it has already encoded. The decoder is causal and positions are absolute
item positions, so while the history window has not slid (at most ``max_hist`` items) the keys
and values of the old tokens are unchanged: only the new items' tokens need encoding, attending
to the cached ones (``SIDGPT.extend``). A user whose window slid, or who is not cached, is encoded
in full. :meth:`PrefixCache.encode` returns the same :class:`models.recall.beam.Encoded` a full
prefill would (up to float rounding), for any mix of hits and misses.

Memory: ``n_layers x 2 x d_model x 4`` bytes per history token (3 KB per token, ~110 KB for a
Beauty user at the default size), so the cache is bounded by ``max_tokens`` over all users. A
user encoded in a batch of misses keeps a view into that batch's tensors (no copy), which live
until all its users are evicted or re-encoded: up to ~2x the counted bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.recall.beam import Encoded, encode_prefix
from models.recall.data import ItemTokens, make_batch
from models.recall.model import KV, SIDGPT


@dataclass
class Entry:
    rows: tuple[int, ...]  # history rows encoded
    kv: list[KV]  # per layer K/V [H, T, dh] of the T history tokens
    last: torch.Tensor  # [d] hidden state after the last token

    @property
    def tokens(self) -> int:
        return self.kv[0][0].shape[1]


class PrefixCache:
    def __init__(self, max_tokens: int = 2_000_000) -> None:
        self.max_tokens = max_tokens
        self.entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self.tokens = 0
        self.hits = self.misses = 0
        self.token_bytes = 0  # K/V bytes per history token, from the first entry cached
        self.entry_bytes = 0  # bytes per entry besides its tokens (the last hidden state)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def nbytes(self) -> int:
        """Bytes of the cached tensors, counted per token from their shapes. A user encoded in
        a batch of misses holds a view of that batch's tensors: the storage kept alive can be
        up to ~2x this (see the module doc)."""
        return self.tokens * self.token_bytes + len(self.entries) * self.entry_bytes

    def stats(self) -> tuple[int, int, int]:
        """(entries, tokens, bytes): what a search process reports with each answer."""
        return len(self.entries), self.tokens, self.nbytes

    @torch.no_grad()
    def encode(self, model: SIDGPT, item_tokens: ItemTokens, keys: Sequence[Hashable],
               rows: Sequence[np.ndarray]) -> Encoded:
        """Encoded histories for users ``keys`` with history rows ``rows`` (updates the cache)."""
        entries: list[Entry | None] = [None] * len(keys)
        extend: list[tuple[int, Entry, tuple[int, ...]]] = []
        full: list[int] = []
        for i, (key, r) in enumerate(zip(keys, rows, strict=True)):
            cur = tuple(int(x) for x in r)
            old = self.entries.get(key)
            if old is not None and cur[: len(old.rows)] == old.rows and old.rows:
                self.hits += 1
                if len(cur) == len(old.rows):
                    entries[i] = old
                else:
                    extend.append((i, old, cur))
            else:
                self.misses += 1
                full.append(i)
        if keys and len(full) == len(keys):  # all misses: one plain prefill
            enc, made = self._full(model, item_tokens, list(rows))
            for key, e in zip(keys, made, strict=True):
                self._put(key, e)
            return enc
        if full:
            _, made = self._full(model, item_tokens, [rows[i] for i in full])
            for i, e in zip(full, made, strict=True):
                entries[i] = e
        if extend:
            for (i, _, _), e in zip(extend, self._extend(model, item_tokens, extend),
                                    strict=True):
                entries[i] = e
        done = [e for e in entries if e is not None]
        for key, e in zip(keys, done, strict=True):
            self._put(key, e)
        return _batch(done)

    def _full(self, model: SIDGPT, item_tokens: ItemTokens, rows: list[np.ndarray]
              ) -> tuple[Encoded, list[Entry]]:
        """A plain prefill, and its users' entries: views into the batch's K/V (no copies;
        a batch's tensors live while any of its users is cached)."""
        batch, lengths = make_batch(rows, item_tokens, model.cfg, train=False)
        enc = encode_prefix(model, batch, lengths)
        entries = [Entry(tuple(int(x) for x in r), [(k[u, :, :n], v[u, :, :n]) for k, v in enc.kvs],
                         enc.last[u])
                   for u, (r, n) in enumerate(zip(rows, lengths.tolist(), strict=True))]
        return enc, entries

    def _extend(self, model: SIDGPT, item_tokens: ItemTokens,
                todo: list[tuple[int, Entry, tuple[int, ...]]]) -> list[Entry]:
        """Encode only the appended items' tokens, attending to the cached ones."""
        full_batch, lengths = make_batch([np.array(c, np.int64) for _, _, c in todo],
                                         item_tokens, model.cfg, train=False)
        past_len = [e.tokens for _, e, _ in todo]
        new_len = [int(n) - p for n, p in zip(lengths.tolist(), past_len, strict=True)]
        tp, tn = max(past_len), max(new_len)
        u = len(todo)
        tok, pos, iid = (torch.zeros(u, tn, dtype=torch.long) for _ in range(3))
        for j, (p, n) in enumerate(zip(past_len, new_len, strict=True)):
            tok[j, :n] = full_batch.tok[j, p: p + n]
            pos[j, :n] = full_batch.pos[j, p: p + n]
            iid[j, :n] = full_batch.iid[j, p: p + n]
        past = [_pad([e.kv[layer] for _, e, _ in todo], tp) for layer in range(len(todo[0][1].kv))]
        past_valid = torch.arange(tp)[None, :] < torch.tensor(past_len)[:, None]
        h, kvs = model.extend(tok, pos, iid, past, past_valid)
        out = []
        for j, ((_, e, cur), n) in enumerate(zip(todo, new_len, strict=True)):
            kv = [(torch.cat([pk, k[j, :, :n]], 1), torch.cat([pv, v[j, :, :n]], 1))
                  for (pk, pv), (k, v) in zip(e.kv, kvs, strict=True)]
            out.append(Entry(cur, kv, h[j, n - 1].clone()))
        return out

    def _put(self, key: Hashable, e: Entry) -> None:
        old = self.entries.pop(key, None)
        if old is not None:
            self.tokens -= old.tokens
        self.entries[key] = e
        self.tokens += e.tokens
        if not self.token_bytes:
            self.token_bytes = sum((k.element_size() * k.shape[0] * k.shape[2]) * 2
                                   for k, _ in e.kv)
            self.entry_bytes = e.last.element_size() * e.last.numel()
        while self.tokens > self.max_tokens and len(self.entries) > 1:
            _, dropped = self.entries.popitem(last=False)
            self.tokens -= dropped.tokens


def _pad(kvs: list[KV], t: int) -> KV:
    """Per-user K/V [H, T_i, dh] -> batch [U, H, t, dh], right-padded with zeros."""
    h, _, dh = kvs[0][0].shape
    k = torch.zeros(len(kvs), h, t, dh)
    v = torch.zeros(len(kvs), h, t, dh)
    for i, (ki, vi) in enumerate(kvs):
        k[i, :, : ki.shape[1]] = ki
        v[i, :, : vi.shape[1]] = vi
    return k, v


def _batch(entries: list[Entry]) -> Encoded:
    lengths = torch.tensor([e.tokens for e in entries])
    t = int(lengths.max())
    kvs = [_pad([e.kv[layer] for e in entries], t) for layer in range(len(entries[0].kv))]
    valid = torch.arange(t)[None, :] < lengths[:, None]
    last = torch.stack([e.last for e in entries])
    next_pos = torch.tensor([[len(e.rows) + 1] for e in entries])
    return Encoded(kvs, valid, last, next_pos)
