"""The frozen tokenizer's files: what training writes, serving reads back unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.sid.embeddings import ItemEmbeddings
from models.sid.rqvae import RQVAE, RQVAEConfig
from models.sid.table import SidTable
from models.sid.tokenizer import load_item_vectors, load_tokenizer_files, save_tokenizer_files
from models.sid.train import TokenizerTrainConfig, run_train_tokenizer
from tests.fixtures.recall_models import DIM, N_ITEMS, clustered_vectors, synthetic_dataset


def test_rqvae_and_sid_table_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = RQVAE(RQVAEConfig(in_dim=8, hidden=(16,), latent_dim=4, n_levels=2,
                              codebook_size=4)).eval()
    table = SidTable(2, 4, 3)
    for item, codes in ((1, (0, 1)), (2, (0, 1)), (3, (2, 3))):
        table.add(item, np.array(codes))
    save_tokenizer_files(tmp_path, model, table)
    model2, table2 = load_tokenizer_files(tmp_path)
    assert table2.sids == table.sids and table2.prefix_count == table.prefix_count
    x = torch.randn(5, 8)
    for a, b in zip(model2.encode_candidates(x), model.encode_candidates(x), strict=True):
        torch.testing.assert_close(a, b)


def test_a_table_saved_without_an_item_never_reuses_a_collision_index(tmp_path: Path) -> None:
    model = RQVAE(RQVAEConfig(in_dim=8, hidden=(16,), latent_dim=4, n_levels=2,
                              codebook_size=4)).eval()
    table = SidTable(2, 4, 4)
    for item in (1, 2, 3):
        table.add(item, np.array((0, 1)))  # SIDs (0, 1, 0), (0, 1, 1), (0, 1, 2)
    del table.sids[2]  # held out of training: the saved table has a gap
    save_tokenizer_files(tmp_path, model, table)
    _, loaded = load_tokenizer_files(tmp_path)
    assert loaded.add(2, np.array((0, 1))) == (0, 1, 3)  # not item 3's (0, 1, 2)


def test_the_tokenizer_artifact_keeps_the_vectors_it_quantized(tmp_path: Path) -> None:
    """SIDRec's content part reads these: each item must get back its own vector (an artifact
    that kept none, or kept them in another order, would embed items by the wrong content)."""
    ds = synthetic_dataset(n_users=30)
    vecs = clustered_vectors()
    ids = np.arange(1, N_ITEMS + 1)
    emb = ItemEmbeddings(ids, vecs, np.ones(N_ITEMS, bool))
    cfg = TokenizerTrainConfig(rqvae=RQVAEConfig(in_dim=DIM, hidden=(16,), latent_dim=4,
                                                 n_levels=2, codebook_size=4, kmeans_iters=3),
                               epochs=2, batch_size=16)
    path = run_train_tokenizer(ds, tmp_path, cfg, progress=False, embed=lambda: emb)
    got = load_item_vectors(path)
    assert sorted(got) == ids.tolist()
    for item, row in zip(ids.tolist(), vecs, strict=True):
        np.testing.assert_array_equal(got[item], row)
    (path / "item_vectors.npz").unlink()
    with pytest.raises(ValueError, match="retrain the tokenizer"):
        load_item_vectors(path)
