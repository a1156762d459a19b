from __future__ import annotations

import numpy as np
import torch

from models.sid.rqvae import RQVAE, RQVAEConfig, kmeans
from tests.fixtures.recall_models import clustered_vectors


def test_kmeans_separates_clusters() -> None:
    x = torch.cat([torch.zeros(20, 2), torch.full((20, 2), 5.0)])
    cent = kmeans(x, 2, 10, torch.Generator().manual_seed(0))
    assert sorted(cent[:, 0].round().tolist()) == [0.0, 5.0]


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
