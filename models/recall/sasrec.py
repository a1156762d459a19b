"""SASRec with full-softmax cross-entropy: the strong item-id baseline, in the same harness.

A causal transformer over item-id embeddings (plus learned positions) predicts the next item at
every position of a user's window, scored against the whole catalogue by the tied item
embedding (full softmax, no sampled negatives: what makes SASRec-CE strong). ``SASRecRecaller``
has the recaller API of the generative model (``recall(histories, k, exclude=...)``), so
``models/recall/evaluate.py`` scores both side by side. It cannot recall an item it never saw in
training (no embedding row): the semantic-ID model's reason to exist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.artifacts import ArtifactError, load_manifest, resolve, write_artifact
from models.recall.beam import RecallResult

KIND, FORMAT, WEIGHTS = "sasrec", 1, "sasrec.pt"


@dataclass(frozen=True)
class SASRecConfig:
    n_items: int  # item ids 1..n_items; row 0 is padding
    max_len: int = 20  # history positions (the protocol's 20 most recent items)
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    dropout: float = 0.5


class SASRec(nn.Module):
    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.items = nn.Embedding(cfg.n_items + 1, cfg.d_model, padding_idx=0)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, 4 * cfg.d_model,
                                           cfg.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        nn.init.normal_(self.items.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        causal = torch.triu(torch.ones(cfg.max_len, cfg.max_len, dtype=torch.bool), 1)
        self.register_buffer("causal", causal, persistent=False)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """``seq`` [B, T] item ids, left-padded with 0 -> hidden states [B, T, d]."""
        t = seq.shape[1]
        x = self.items(seq) * self.cfg.d_model ** 0.5 + self.pos.weight[-t:]
        # causal, and no padded key; a padded query sees itself only (a query with no key at
        # all would be NaN, and NaN leaks through zero attention weights)
        mask = self.causal[:t, :t] | (seq == 0)[:, None, :]  # type: ignore[index]
        mask &= ~torch.eye(t, dtype=torch.bool)
        mask = mask.repeat_interleave(self.cfg.n_heads, 0)
        return self.norm(self.blocks(self.drop(x), mask=mask))

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Scores of every catalogue item (padding row at -inf), tied to the item embedding."""
        out = h @ self.items.weight.T
        out[..., 0] = float("-inf")
        return out


def left_pad(histories: list[list[int]], max_len: int, n_items: int) -> torch.Tensor:
    """[U, T] item ids, most recent last; unknown ids (beyond the catalogue) are dropped."""
    rows = [[i for i in h if 0 < i <= n_items][-max_len:] for h in histories]
    width = max((len(r) for r in rows), default=1) or 1
    out = np.zeros((len(rows), width), np.int64)
    for u, r in enumerate(rows):
        if r:
            out[u, width - len(r):] = r
    return torch.from_numpy(out)


class SASRecRecaller:
    """Full-catalogue top-k of a trained :class:`SASRec`, with the generative recaller's API."""

    def __init__(self, model: SASRec) -> None:
        self.model = model.eval()
        self.max_hist = model.cfg.max_len

    @torch.inference_mode()
    def recall(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, batch_size: int = 256) -> RecallResult:
        """Top-``k`` items per history (``beam`` is ignored: there is no search)."""
        items, scores = [], []
        for s in range(0, len(histories), batch_size):
            seq = left_pad(histories[s: s + batch_size], self.max_hist, self.model.cfg.n_items)
            logp = torch.log_softmax(self.model.logits(self.model(seq)[:, -1]), -1)
            empty = (seq == 0).all(1)
            logp[empty] = float("-inf")  # no known item: nothing to say
            if exclude is not None:
                for u, ex in enumerate(exclude[s: s + batch_size]):
                    known = [i for i in ex if 0 < i <= self.model.cfg.n_items]
                    if known:
                        logp[u, known] = float("-inf")
            top = logp.topk(min(k, logp.shape[1]), -1)
            items.append(torch.where(torch.isfinite(top.values), top.indices, -1).numpy())
            scores.append(top.values.numpy().astype(np.float32))
        if not items:
            return RecallResult(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
        return RecallResult(np.concatenate(items), np.concatenate(scores))

    def save(self, root: Path, data_hash: str, config: dict[str, Any],
             metrics: dict[str, Any]) -> Path:
        def writer(d: Path) -> None:
            torch.save(self.model.state_dict(), d / WEIGHTS)

        return write_artifact(root, KIND, FORMAT, data_hash,
                              {"model": asdict(self.model.cfg), **config}, metrics, writer)

    @classmethod
    def load(cls, path: Path | str) -> SASRecRecaller:
        man = load_manifest(Path(path), kind=KIND, fmt=FORMAT)
        directory = resolve(Path(path))
        try:
            model = SASRec(SASRecConfig(**man.config["model"]))
            model.load_state_dict(torch.load(directory / WEIGHTS, map_location="cpu",
                                             weights_only=True))
        except (KeyError, TypeError, RuntimeError) as exc:
            raise ArtifactError(f"{directory}: cannot load a SASRec artifact: {exc}") from exc
        return cls(model)
