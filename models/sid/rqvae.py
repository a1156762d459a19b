"""RQ-VAE item tokenizer: MLP encoder -> residual quantizer (L levels x K codes) -> MLP decoder.

Codebooks are k-means initialised on the first residuals they see, trained with the usual VQ
codebook + commitment losses and straight-through gradients, and codes unused for
``dead_after`` steps are reset to random current residuals (against codebook collapse).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class RQVAEConfig:
    in_dim: int = 384
    hidden: tuple[int, ...] = (512, 256, 128)
    latent_dim: int = 32
    n_levels: int = 3
    codebook_size: int = 256
    beta: float = 0.25  # commitment weight
    kmeans_iters: int = 25
    dead_after: int = 50  # steps without use before a code is reset


class RQOutput(NamedTuple):
    recon: torch.Tensor  # [B, in_dim], standardised space
    codes: torch.Tensor  # [B, L] int64
    recon_loss: torch.Tensor
    rq_loss: torch.Tensor


def kmeans(x: torch.Tensor, k: int, iters: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """Plain Lloyd k-means (k-means++-lite init by random rows); returns [k, D] centroids."""
    idx = torch.randperm(x.shape[0], generator=gen)[:k]
    if idx.numel() < k:  # fewer points than codes: repeat with jitter
        idx = idx[torch.arange(k) % max(idx.numel(), 1)]
    cent = x[idx].clone() + 1e-4 * torch.randn(k, x.shape[1], generator=gen)
    for _ in range(iters):
        assign = torch.cdist(x, cent).argmin(1)
        sums = torch.zeros_like(cent).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)
        cent = torch.where(counts > 0, sums / counts.clamp(min=1), cent)
    return cent


class Quantizer(nn.Module):
    """One level of residual quantization."""

    initialised: torch.Tensor
    last_used: torch.Tensor  # step at which each code was last chosen
    step: torch.Tensor

    def __init__(self, k: int, dim: int):
        super().__init__()
        self.codebook = nn.Parameter(torch.randn(k, dim) / math.sqrt(dim))
        self.register_buffer("initialised", torch.tensor(False))
        self.register_buffer("last_used", torch.zeros(k, dtype=torch.long))
        self.register_buffer("step", torch.tensor(0, dtype=torch.long))

    def distances(self, r: torch.Tensor) -> torch.Tensor:
        return torch.cdist(r, self.codebook)

    def forward(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        codes = self.distances(r).argmin(1)
        q = self.codebook[codes]
        loss = F.mse_loss(q, r.detach())  # moves the codebook
        commit = F.mse_loss(r, q.detach())
        if self.training:
            self.step += 1
            self.last_used[codes.unique()] = self.step.item()
        return q, codes, torch.stack([loss, commit])

    @torch.no_grad()
    def reset_dead(self, r: torch.Tensor, dead_after: int) -> int:
        """Move codes unused for ``dead_after`` steps onto random residuals of this batch."""
        dead = (self.step - self.last_used) > dead_after
        n = int(dead.sum())
        if n:
            pick = torch.randint(0, r.shape[0], (n,))
            self.codebook.data[dead] = r[pick] + 1e-3 * torch.randn(n, r.shape[1])
            self.last_used[dead] = self.step.item()
        return n


def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RQVAE(nn.Module):
    x_mean: torch.Tensor
    x_std: torch.Tensor

    def __init__(self, cfg: RQVAEConfig):
        super().__init__()
        self.cfg = cfg
        dims = [cfg.in_dim, *cfg.hidden, cfg.latent_dim]
        self.encoder = _mlp(dims)
        self.decoder = _mlp(dims[::-1])
        self.levels = nn.ModuleList(
            Quantizer(cfg.codebook_size, cfg.latent_dim) for _ in range(cfg.n_levels))
        # inputs are standardised per dimension (unit-norm sentence vectors have tiny
        # coordinates, and then the quantization loss collapses the latents to zero)
        self.register_buffer("x_mean", torch.zeros(cfg.in_dim))
        self.register_buffer("x_std", torch.ones(cfg.in_dim))

    @property
    def quantizers(self) -> list[Quantizer]:
        return [q for q in self.levels if isinstance(q, Quantizer)]

    def _enc(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder((x - self.x_mean) / self.x_std)

    @torch.no_grad()
    def init_codebooks(self, x: torch.Tensor, gen: torch.Generator | None = None) -> None:
        """Fit the input scaler and k-means initialise every level on the residuals of ``x``
        (call once, on many rows)."""
        self.x_mean.copy_(x.mean(0))
        self.x_std.copy_(x.std(0).clamp(min=1e-6))
        r = self._enc(x)
        for q in self.quantizers:
            q.codebook.data.copy_(kmeans(r, self.cfg.codebook_size, self.cfg.kmeans_iters, gen))
            q.initialised.fill_(True)
            r = r - q.codebook[q.distances(r).argmin(1)]

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Residual quantization of latents ``z``: (quantized sum, codes [B, L], losses [2])."""
        r, total = z, torch.zeros_like(z)
        codes, losses = [], torch.zeros(2)
        for q in self.quantizers:
            qv, c, lv = q(r)
            total = total + qv
            r = r - qv.detach()
            codes.append(c)
            losses = losses + lv
        return total, torch.stack(codes, 1), losses

    def forward(self, x: torch.Tensor) -> RQOutput:
        z = self._enc(x)
        qz, codes, losses = self.quantize(z)
        qz_st = z + (qz - z).detach()  # straight-through estimator
        recon = self.decoder(qz_st)  # in standardised space
        rq_loss = losses[0] + self.cfg.beta * losses[1]
        target = (x - self.x_mean) / self.x_std
        return RQOutput(recon, codes, F.mse_loss(recon, target), rq_loss)

    @torch.no_grad()
    def residuals(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Residual entering each level (used for dead-code reset)."""
        r, out = self._enc(x), []
        for q in self.quantizers:
            out.append(r)
            r = r - q.codebook[q.distances(r).argmin(1)]
        return out

    @torch.no_grad()
    def encode_candidates(self, x: torch.Tensor, n_last: int = 8) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
        """Codes [B, L] plus the ``n_last`` nearest last-level codes [B, n_last] (for overflow)."""
        r = self._enc(x)
        codes = []
        for q in self.quantizers[:-1]:
            c = q.distances(r).argmin(1)
            codes.append(c)
            r = r - q.codebook[c]
        last = self.quantizers[-1].distances(r)
        cand = last.topk(min(n_last, last.shape[1]), largest=False).indices
        codes.append(cand[:, 0])
        return torch.stack(codes, 1), cand
