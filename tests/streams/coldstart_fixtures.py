"""A real, tiny profile-conditioned recall artifact for the cold-start stream tests.

The walk catalogue of ``model_fixtures`` (40 items, 4 categories); each user's occupation names
the category their walk starts in, so the profile means something. Trained in seconds by
``models.coldstart.train`` (the code ``sidstream eval-coldstart`` trains with).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.coldstart.train import ProfileTrainConfig, new_recaller, profile_windows, train
from models.data.profile import Profile, ProfileVocab
from models.recall.model import GenConfig
from models.sid.rqvae import RQVAEConfig
from models.sid.train import TokenizerTrainConfig, load_tokenizer, run_train_tokenizer
from tests.streams.model_fixtures import CATEGORIES, N_ITEMS, walk_dataset

OCCUPATIONS = tuple(f"{c} fan" for c in CATEGORIES)


def build_profile_model_dir(root: Path) -> Path:
    """``root/models/recall`` with one profile recall version; returns ``root/models``."""
    ds = walk_dataset(n_users=120, seed=1)
    rng = np.random.default_rng(1)
    profiles = {}
    for u, seq in ds.sequences.items():
        profiles[u] = Profile(age=int(rng.integers(18, 70)), gender="FM"[u % 2],
                              occupation=OCCUPATIONS[(seq[0] - 1) % 4])
    tok = run_train_tokenizer(ds, root / "tokenizer", TokenizerTrainConfig(
        rqvae=RQVAEConfig(hidden=(64,), latent_dim=16, n_levels=2, codebook_size=8,
                          kmeans_iters=5), epochs=30, batch_size=64, dup_vocab=16),
        progress=False)
    rqvae, table, _ = load_tokenizer(tok)
    vocab = ProfileVocab.build(profiles.values())
    cfg = ProfileTrainConfig(gen=GenConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64,
                                           dropout=0.0, item_loss=1.0),
                             epochs=20, batch_size=32, lr=1e-2, warmup_steps=10, max_hist=8)
    rec = new_recaller(rqvae, table, vocab, cfg)
    train(rec, profile_windows(rec, ds, sorted(ds.sequences), vocab, profiles, 9), cfg,
          progress=False)
    models = root / "models"
    rec.save(models / "recall", ds.data_hash(), {}, {})
    assert rec.n_items == N_ITEMS
    return models
