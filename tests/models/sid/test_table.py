from __future__ import annotations

import numpy as np
import pytest

from models.sid.table import SidOverflowError, SidTable, build_sid_table


def test_collisions_get_unique_fourth_token() -> None:
    codes = np.array([[1, 2, 3]] * 3 + [[1, 2, 4]])
    cand = codes[:, -1:]
    table = build_sid_table(np.array([10, 11, 12, 13]), codes, cand, 8, dup_vocab=4)
    assert table.sids[10] == (1, 2, 3, 0)
    assert table.sids[11] == (1, 2, 3, 1)
    assert table.sids[12] == (1, 2, 3, 2)
    assert table.sids[13] == (1, 2, 4, 0)
    assert len(set(table.sids.values())) == 4
    st = table.stats()
    assert st["collision_rate"] == pytest.approx(3 / 4)
    assert st["max_collision_depth"] == 3


def test_overflow_moves_to_next_candidate_and_errors_when_full() -> None:
    table = SidTable(n_levels=2, codebook_size=4, dup_vocab=2)
    codes, cand = np.array([0, 1]), np.array([1, 2])
    sids = [table.add(i, codes, cand) for i in range(4)]
    assert sids == [(0, 1, 0), (0, 1, 1), (0, 2, 0), (0, 2, 1)]
    assert table.moved == 2
    with pytest.raises(SidOverflowError):
        table.add(99, codes, cand)


def test_add_is_idempotent_and_array_marks_unknown() -> None:
    table = SidTable(n_levels=1, codebook_size=4, dup_vocab=4)
    assert table.add(5, np.array([2])) == table.add(5, np.array([3])) == (2, 0)
    arr = table.array(np.array([5, 6]))
    assert arr.tolist() == [[2, 0], [-1, -1]]
