from __future__ import annotations

import numpy as np

from models.recall.data import make_batch, train_windows
from models.recall.model import BOS, PAD
from models.recall.recaller import GenerativeRecaller
from tests.fixtures.recall_models import synthetic_dataset


def test_train_windows_hold_out_valid_and_test_items() -> None:
    ds = synthetic_dataset()
    ds.sequences = {1: list(range(1, 31)), 2: [1, 2, 3], 3: [4, 5, 6, 7]}
    wins = train_windows(ds, max_items=21, stride=10)
    assert [1, 2] not in wins  # user 2 keeps a single training item: dropped
    assert [4, 5] in wins
    long = [w for w in wins if w[0] < 20 and len(w) > 2]
    assert long[0] == list(range(1, 22)) and long[-1] == list(range(8, 29))
    assert all(28 not in w or w[-1] == 28 for w in wins) and not any(29 in w for w in wins)


def test_batches_align_inputs_targets_and_item_ids(recaller: GenerativeRecaller) -> None:
    it, cfg = recaller.tokens, recaller.model.cfg
    lv = cfg.levels
    rows = [it.rows([3, 4]), it.rows([5])]
    batch, lengths = make_batch(rows, it, cfg, train=True)
    assert batch.tok.shape == (2, 2 * lv) and lengths.tolist() == [2 * lv, lv]
    assert batch.tok[0, 0] == BOS and batch.tok[1, lv:].eq(PAD).all()
    off = np.array(cfg.offsets)
    flat = (it.tokens[rows[0]] - off).reshape(-1)
    assert batch.target[0].tolist() == flat.tolist()  # position p predicts token p + 1
    assert batch.tok[0, 1:].tolist() == it.tokens[rows[0]].reshape(-1)[:-1].tolist()
    assert batch.pos[0].tolist() == [0] + [1] * lv + [2] * (lv - 1)
    # item id only on the last token of a history item, never on the item being predicted
    assert batch.iid[0].tolist() == [0] * lv + [rows[0][0]] + [0] * (lv - 1)
    # the auxiliary next-item target of each item boundary (BOS, last token of each item)
    assert batch.next_item.tolist() == [rows[0].tolist(), [rows[1][0], -100]]
    prefix, plen = make_batch(rows, it, cfg, train=False)
    assert plen.tolist() == [2 * lv + 1, lv + 1]
    assert prefix.iid[0, 2 * lv] == rows[0][1]
