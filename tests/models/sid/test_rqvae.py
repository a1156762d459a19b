from __future__ import annotations

import numpy as np
import torch

from models.sid.rqvae import RQVAE, RQVAEConfig, kmeans
from models.sid.train import TokenizerTrainConfig, train_rqvae
from tests.fixtures.recall_models import clustered_vectors


def test_kmeans_separates_clusters() -> None:
    x = torch.cat([torch.zeros(20, 2), torch.full((20, 2), 5.0)])
    cent = kmeans(x, 2, 10, torch.Generator().manual_seed(0))
    assert sorted(cent[:, 0].round().tolist()) == [0.0, 5.0]


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


def test_dead_codes_are_reset() -> None:
    model = RQVAE(RQVAEConfig(in_dim=4, hidden=(8,), latent_dim=2, n_levels=1, codebook_size=4))
    q = model.quantizers[0]
    q.codebook.data[:] = torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 5.0], [50.0, -9.0]])
    model.train()
    r = torch.zeros(16, 2) + 0.01 * torch.randn(16, 2)
    for _ in range(5):
        q(r)  # only code 0 is ever used
    assert q.reset_dead(r, dead_after=2) == 3
    assert float(q.codebook.data[1:].abs().max()) < 1.0  # moved onto the residuals


def test_encode_candidates_ranks_last_level() -> None:
    torch.manual_seed(0)
    model = RQVAE(RQVAEConfig(in_dim=16, hidden=(16,), latent_dim=4, n_levels=2,
                              codebook_size=8)).eval()
    model.init_codebooks(torch.from_numpy(clustered_vectors(n=64, dim=16)))
    codes, cand = model.encode_candidates(torch.from_numpy(clustered_vectors(n=10, dim=16)), 3)
    assert cand.shape == (10, 3)
    assert np.array_equal(codes[:, -1].numpy(), cand[:, 0].numpy())
    assert all(len(set(row)) == 3 for row in cand.tolist())
