from __future__ import annotations

import numpy as np
import pytest
import torch

from models.recall.model import SIDGPT, GenConfig
from models.recall.recaller import GenerativeRecaller
from models.sid.embeddings import EMB_DIM, encode_texts
from models.sid.rqvae import RQVAE, RQVAEConfig
from models.sid.table import build_sid_table

TEXTS = [f"{kind} {color} | Brand{b} | Beauty > {cat}" for kind, cat in
         [("lipstick", "Makeup"), ("shampoo", "Hair Care"), ("nail polish", "Nails")]
         for color in ("red", "blue", "green", "black") for b in range(2)]


@pytest.mark.slow
def test_upsert_text_goes_through_minilm_and_becomes_recallable() -> None:
    vecs = encode_texts(TEXTS)
    assert vecs.shape == (len(TEXTS), EMB_DIM)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-4)
    torch.manual_seed(0)
    rq = RQVAE(RQVAEConfig(hidden=(64,), latent_dim=8, n_levels=2, codebook_size=4,
                           kmeans_iters=5))
    rq.init_codebooks(torch.from_numpy(vecs))
    rq.eval()
    codes, cand = rq.encode_candidates(torch.from_numpy(vecs), 4)
    ids = np.arange(1, len(TEXTS) + 1)
    table = build_sid_table(ids, codes.numpy(), cand.numpy(), 4, dup_vocab=16)
    gen = GenConfig(vocab_sizes=table.vocab_sizes, n_items=len(ids) + 1, max_items=5,
                    d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0)
    rec = GenerativeRecaller(rq, table, SIDGPT(gen), max_hist=4)
    sid = rec.add_item(500, text="lipstick purple | Brand0 | Beauty > Makeup")
    assert rec.trie.lookup(sid) == 500
    res = rec.recall([[1, 2]], k=2, beam=16, exclude=[set(ids.tolist())])
    assert res.items[0, 0] == 500
