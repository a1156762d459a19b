"""Train the RQ-VAE on item embeddings and assign every catalogue item a unique SID.

Writes a ``tokenizer`` artifact: ``rqvae.pt`` (config + weights), ``sids.npz`` (item ids and
SIDs) and a manifest with reconstruction loss, per-level codebook usage and collision figures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from models.artifacts import write_artifact
from models.data.dataset import SeqDataset
from models.sid.embeddings import ItemEmbeddings, item_embeddings
from models.sid.rqvae import RQVAE, RQVAEConfig
from models.sid.table import SidTable, build_sid_table
from models.sid.tokenizer import FORMAT, KIND, save_item_vectors, save_tokenizer_files

log = logging.getLogger(__name__)



@dataclass
class TokenizerTrainConfig:
    rqvae: RQVAEConfig = field(default_factory=RQVAEConfig)
    epochs: int = 400
    batch_size: int = 1024
    lr: float = 1e-3
    dup_vocab: int = 64  # cap of the 4th (collision) token
    n_last_candidates: int = 16  # alternatives when a prefix's collision slots are full
    # item vectors: "text" (MiniLM; items without text get their co-occurring items' mean),
    # "collab" (item2vec over training sequences, models/i2i/collab.py), "auto": text when
    # any item has text, else collab (chosen by the caller: ``wants_collab``)
    embedding: str = "auto"
    seed: int = 0


def _epoch(model: RQVAE, x: torch.Tensor, opt: torch.optim.Optimizer, batch_size: int,
           gen: torch.Generator) -> tuple[float, float, int]:
    model.train()
    perm = torch.randperm(x.shape[0], generator=gen)
    rec_sum, rq_sum, resets = 0.0, 0.0, 0
    for i in range(0, x.shape[0], batch_size):
        xb = x[perm[i: i + batch_size]]
        out = model(xb)
        loss = out.recon_loss + out.rq_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        rec_sum += out.recon_loss.item() * len(xb)
        rq_sum += out.rq_loss.item() * len(xb)
        for q, r in zip(model.quantizers, model.residuals(xb), strict=True):
            resets += q.reset_dead(r, model.cfg.dead_after)
    return rec_sum / len(x), rq_sum / len(x), resets


def train_rqvae(vectors: np.ndarray, cfg: TokenizerTrainConfig, progress: bool = True
                ) -> tuple[RQVAE, dict[str, Any]]:
    """Fit the RQ-VAE; returns the model (eval mode) and its metrics."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    rcfg = RQVAEConfig(**{**asdict(cfg.rqvae), "in_dim": x.shape[1]})
    model = RQVAE(rcfg)
    model.init_codebooks(x, gen)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    bar = tqdm(range(cfg.epochs), desc="rq-vae", disable=not progress, mininterval=2.0)
    resets = 0
    for _ in bar:
        rec, rq, n = _epoch(model, x, opt, cfg.batch_size, gen)
        resets += n
        bar.set_postfix(recon=f"{rec:.5f}", rq=f"{rq:.5f}", resets=resets)
    model.eval()
    metrics = evaluate_rqvae(model, x)
    metrics["dead_code_resets"] = resets
    return model, metrics


@torch.no_grad()
def evaluate_rqvae(model: RQVAE, x: torch.Tensor) -> dict[str, Any]:
    model.eval()
    out = model(x)
    k = model.cfg.codebook_size
    usage = [len(torch.unique(out.codes[:, lv])) / k for lv in range(out.codes.shape[1])]
    return {"recon_loss": float(out.recon_loss), "rq_loss": float(out.rq_loss),
            "codebook_usage": usage,
            "unique_code_prefixes": len({tuple(r) for r in out.codes.tolist()})}


def assign_sids(model: RQVAE, emb: ItemEmbeddings, cfg: TokenizerTrainConfig) -> SidTable:
    codes, cand = model.encode_candidates(torch.from_numpy(emb.vectors), cfg.n_last_candidates)
    return build_sid_table(emb.item_ids, codes.numpy(), cand.numpy(),
                           model.cfg.codebook_size, cfg.dup_vocab)


def wants_collab(ds: SeqDataset, choice: str) -> bool:
    """Whether the tokenizer should quantize collaborative vectors (``choice``: the config's
    ``embedding``) rather than text embeddings."""
    if choice not in ("auto", "text", "collab"):
        raise ValueError(f"embedding must be auto, text or collab, got {choice!r}")
    return choice == "collab" or (choice == "auto" and not any(
        m.text().strip() for m in ds.items.values()))


def run_train_tokenizer(ds: SeqDataset, out_root: Path, cfg: TokenizerTrainConfig,
                        progress: bool = True,
                        embed: Callable[[], ItemEmbeddings] | None = None) -> Path:
    """Embeddings -> RQ-VAE -> SIDs -> tokenizer artifact; returns its directory. ``embed``
    gives the item vectors to quantize (default: text embeddings, ``item_embeddings``); see
    ``wants_collab`` for catalogues without text."""
    t0 = time.time()
    emb = embed() if embed is not None else item_embeddings(ds, progress=progress)
    model, metrics = train_rqvae(emb.vectors, cfg, progress=progress)
    table = assign_sids(model, emb, cfg)
    metrics.update(table.stats())
    metrics["items_without_text"] = int((~emb.from_text).sum())
    metrics["embedding"] = "text" if emb.from_text.any() else "collab"
    metrics["wall_s"] = round(time.time() - t0, 1)
    def writer(d: Path) -> None:
        save_tokenizer_files(d, model, table)
        save_item_vectors(d, emb.item_ids, emb.vectors)

    path = write_artifact(out_root, KIND, FORMAT, ds.data_hash(), asdict(cfg), metrics, writer)
    log.info("tokenizer: recon %.5f, usage %s, collision rate %.3f (max depth %d), %.0fs -> %s",
             metrics["recon_loss"], [round(u, 3) for u in metrics["codebook_usage"]],
             metrics["collision_rate"], metrics["max_collision_depth"], metrics["wall_s"], path)
    return path
