"""Tokenizer training: the RQ-VAE fit."""

from __future__ import annotations

import torch

from models.sid.rqvae import RQVAEConfig
from models.sid.train import TokenizerTrainConfig, train_rqvae
from tests.fixtures.recall_models import clustered_vectors


def test_rqvae_reconstructs_and_uses_codes() -> None:
    vecs = clustered_vectors(n=256, dim=16)
    cfg = TokenizerTrainConfig(rqvae=RQVAEConfig(hidden=(32,), latent_dim=8, n_levels=2,
                                                 codebook_size=8, kmeans_iters=5),
                               epochs=60, batch_size=64, lr=3e-3)
    model, metrics = train_rqvae(vecs, cfg, progress=False)
    x = torch.from_numpy(vecs)
    # reconstruction (standardised space) well below the variance of the input (= 1)
    assert metrics["recon_loss"] < 0.5
    assert all(u >= 0.75 for u in metrics["codebook_usage"]), metrics["codebook_usage"]
    codes = model(x).codes
    assert codes.shape == (256, 2) and codes.min() >= 0 and codes.max() < 8
