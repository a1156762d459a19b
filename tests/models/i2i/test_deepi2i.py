from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from models.i2i.deepi2i import (
    I2IConfig,
    covisit_neighbors,
    evaluate_i2i,
    random_walks,
    similar_table,
    train_i2i,
)


def test_walks_follow_the_graph() -> None:
    graph = covisit_neighbors([[1, 2, 3], [3, 4]], window=1)
    walks = random_walks(graph, [1, 4], I2IConfig(walks_per_item=3, walk_length=5),
                         np.random.default_rng(0))
    assert len(walks) == 6 and all(len(w) == 5 for w in walks)
    for w in walks:
        assert all(b in graph[a] for a, b in itertools.pairwise(w))


def test_embeddings_learn_pairs_and_text_helps_rare_items() -> None:
    rng = np.random.default_rng(0)
    # items come in pairs (2k-1, 2k) that follow each other; item 40 is rare
    seqs = [[int(a), int(a) + 1] * 3 for a in rng.choice(np.arange(1, 39, 2), 400)]
    seqs.append([39, 40])
    text = np.zeros((41, 4), np.float32)
    text[np.arange(1, 41), (np.arange(1, 41) - 1) // 2 % 4] = 1.0
    cfg = I2IConfig(dim=16, epochs=3, batch_size=512, lr=0.05, low_freq=3, walks_per_item=5)
    model = train_i2i(seqs, 41, cfg, text, progress=False)
    table = similar_table(model, np.arange(1, 41), k=3)
    assert table.shape == (41, 3) and (table[1:] != np.arange(1, 41)[:, None]).all()
    paired = np.mean([(i + 1 if i % 2 else i - 1) in table[i] for i in range(1, 39)])
    assert paired > 0.9
    res = evaluate_i2i(table, [[*s, s[-1] + 1] if s[-1] % 2 else s for s in seqs[:50]], cfg,
                       k=3)
    assert set(res) >= {"i2i/hr@3", "covisit/hr@3", "i2i/hr@3_tail", "users"}
    # the rare item 40 has one co-occurrence (39); its other neighbours come from its text
    # (group 3: the pairs 7-8, 15-16, ...) only when the text is side information
    group = (np.arange(41) - 1) // 2 % 4
    blind = similar_table(train_i2i(seqs, 41, dataclasses.replace(cfg, side_info=False), text,
                                    progress=False), np.arange(1, 41), k=3)
    assert 39 in table[40] and (group[table[40]] == 3).all()
    assert (group[blind[40]] == 3).sum() < 3
