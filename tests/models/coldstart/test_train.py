"""Profile-conditioned recall models: profile tokens in SIDGPT and the cold-start training.

The training test uses a synthetic catalogue where the profile *determines* the items: a user's
occupation names one of 4 item clusters and every item they consume comes from it. A model that
reads its profile tokens must then beat the same model without them at 0 events; one that
ignored them could not. Its cold-start figures come from ``models/coldstart/evaluate.py``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.coldstart.evaluate import (
    ColdStartEvalConfig,
    evaluate_case,
    make_cases,
    train_statistics,
)
from models.coldstart.prefix_recall import ColdStartConfig
from models.coldstart.train import ProfileTrainConfig, new_recaller, profile_windows, train
from models.data.dataset import SeqDataset
from models.data.profile import Profile, ProfileVocab
from models.recall.data import make_batch
from models.recall.model import GenConfig
from models.recall.recaller import GenerativeRecaller
from tests.fixtures.recall_models import N_ITEMS, tiny_recaller

TINY = GenConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0, item_loss=1.0)


def cluster_dataset(n_users: int = 160, seed: int = 0
                    ) -> tuple[SeqDataset, dict[int, Profile]]:
    """Occupation ``job{c}`` -> only items of cluster c (item ids with (id - 1) % 4 == c)."""
    rng = np.random.default_rng(seed)
    seqs, profiles = {}, {}
    for u in range(1, n_users + 1):
        c = int(rng.integers(4))
        pool = np.arange(c, N_ITEMS, 4) + 1
        seqs[u] = rng.permutation(pool)[: int(rng.integers(6, 9))].tolist()
        profiles[u] = Profile(occupation=f"job{c}", age=int(rng.integers(18, 60)))
    return SeqDataset("clusters", seqs, {}), profiles


def profile_recaller(profile: bool, vocab: ProfileVocab) -> GenerativeRecaller:
    base = tiny_recaller()
    return new_recaller(base.rqvae, base.table, vocab,
                        ProfileTrainConfig(gen=TINY, profile=profile, max_hist=8))


def test_plain_config_is_unchanged_and_profile_tokens_come_first() -> None:
    assert GenConfig().vocab == 2 + 3 * 256 + 64 and GenConfig().n_profile == 0
    vocab = ProfileVocab.build([Profile(occupation="a")])
    rec = profile_recaller(True, vocab)
    cfg = rec.cfg
    assert cfg.profile_sizes == vocab.sizes and cfg.vocab == 2 + sum(cfg.vocab_sizes) + \
        sum(vocab.sizes)
    rows = [rec.tokens.rows([1, 2]), rec.tokens.rows([])]
    codes = [vocab.encode(Profile(age=30, occupation="a")), vocab.encode(None)]
    batch, lengths = make_batch(rows, rec.tokens, cfg, train=False, profiles=codes)
    f = cfg.n_profile
    assert lengths.tolist() == [f + 1 + 2 * cfg.levels, f + 1]
    assert batch.tok[0, :f].tolist() == (np.array(cfg.profile_offsets) + codes[0]).tolist()
    assert batch.tok[1, :f].tolist() == list(cfg.profile_offsets)  # all unknown
    assert batch.tok[0, f] == 1 and (batch.pos[:, :f] == 0).all()  # BOS after the profile
    train_batch, _ = make_batch(rows[:1], rec.tokens, cfg, train=True, profiles=codes[:1])
    assert (train_batch.target[0, :f] == -100).all()
    assert torch.isfinite(rec.model.loss(train_batch))
    plain = tiny_recaller()
    a, la = make_batch(rows[:1], plain.tokens, plain.cfg, train=True)
    b, lb = make_batch(rows[:1], plain.tokens, plain.cfg, train=True, profiles=codes[:1])
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)) and torch.equal(la, lb)


@pytest.mark.slow
def test_profile_conditioning_beats_the_model_without_profiles(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    ds, profiles = cluster_dataset()
    train_users, test_users = list(range(1, 121)), list(range(121, 161))
    vocab = ProfileVocab.build(profiles[u] for u in train_users)
    cfg = ProfileTrainConfig(gen=TINY, epochs=30, batch_size=32, lr=1e-2, warmup_steps=10,
                             max_hist=8, p_field=0.1, p_all=0.05)
    models = {}
    for name, with_profile in (("profile", True), ("no profile", False)):
        rec = profile_recaller(with_profile, vocab)
        win = profile_windows(rec, ds, train_users, vocab, profiles, cfg.max_hist + 1)
        losses = train(rec, win, replace(cfg, profile=with_profile), progress=False)
        assert losses[-1] < losses[0]
        models[name] = rec
    ecfg = ColdStartEvalConfig(cold=ColdStartConfig(levels=1, prefixes=2))
    res = evaluate_case(models, make_cases(ds, test_users, 0, vocab, profiles), ecfg,
                        train_statistics(ds, train_users, profiles))
    hr = {name: m["recall@10"] for name, m in res.items()}
    assert hr["profile: generative"] >= hr["no profile: generative"] + 0.3, res
    assert hr["profile: prefixes + bandit"] >= hr["no profile: prefixes + bandit"] + 0.2, res
    assert res["profile: prefixes + bandit"]["match@prefixes"] > \
        res["no profile: prefixes + bandit"]["match@prefixes"]
    # the profile model round-trips as a recall artifact, vocabulary included
    path = models["profile"].save(tmp_path / "recall", "test", {}, {})
    loaded = GenerativeRecaller.load(path)
    assert loaded.profile_vocab == vocab and loaded.cfg == models["profile"].cfg
    codes = [vocab.encode(profiles[u]) for u in test_users[:5]]
    a = models["profile"].recall([[]] * 5, k=5, profiles=codes).items
    assert (loaded.recall([[]] * 5, k=5, profiles=codes).items == a).all()
