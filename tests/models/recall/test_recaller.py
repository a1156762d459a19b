from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.artifacts import ArtifactError, load_manifest
from models.recall.recaller import GenerativeRecaller
from tests.fixtures.recall_models import DIM, N_ITEMS, clustered_vectors


def test_new_item_gets_a_sid_and_becomes_recallable(recaller: GenerativeRecaller) -> None:
    vec = clustered_vectors(n=N_ITEMS + 1, dim=DIM, seed=7)[-1]
    sid = recaller.add_item(1000, vector=vec)
    assert len(sid) == recaller.trie.depth and recaller.trie.lookup(sid) == 1000
    assert sid not in {s for i, s in recaller.table.sids.items() if i != 1000}
    assert recaller.add_item(1000, vector=vec * 0) == sid  # upsert of a known item: same SID
    # with every old item excluded, the new one is the only candidate left
    res = recaller.recall([[1, 2]], k=3, beam=64, exclude=[set(range(1, N_ITEMS + 1))])
    assert res.items[0].tolist() == [1000, -1, -1]
    # the new item can also appear in histories
    assert len(recaller.prefixes([[1000, 5]])[0]) == 2


def test_new_item_needs_text_or_vector(recaller: GenerativeRecaller) -> None:
    with pytest.raises(ValueError):
        recaller.add_item(2000)


def test_artifact_round_trip(recaller: GenerativeRecaller, tmp_path: Path) -> None:
    path = recaller.save(tmp_path, "abc123", {"note": "t"}, {"recall@10": 0.5})
    man = load_manifest(tmp_path, kind="recall")
    assert man.version == path.name and man.data_hash == "abc123"
    assert man.metrics["recall@10"] == 0.5
    loaded = GenerativeRecaller.load(tmp_path)  # via LATEST
    hist = [[1, 2, 3], [7]]
    a, b = recaller.recall(hist, k=5, beam=8), loaded.recall(hist, k=5, beam=8)
    assert np.array_equal(a.items, b.items)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    assert loaded.table.sids == recaller.table.sids


def test_corrupt_or_incompatible_artifacts_are_refused(recaller: GenerativeRecaller,
                                                       tmp_path: Path) -> None:
    path = recaller.save(tmp_path, "abc123", {}, {})
    with (path / "generative.pt").open("ab") as fh:
        fh.write(b"garbage")
    with pytest.raises(ArtifactError, match="checksum"):
        GenerativeRecaller.load(path)
    path2 = recaller.save(tmp_path / "b", "abc123", {}, {})
    man = json.loads((path2 / "manifest.json").read_text())
    man["format"] = 999
    (path2 / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ArtifactError, match="format"):
        GenerativeRecaller.load(path2)
    with pytest.raises(ArtifactError):
        GenerativeRecaller.load(tmp_path / "missing")
    with pytest.raises(ArtifactError, match="kind"):
        load_manifest(path2, kind="ranker")


def test_int8_serving_keeps_the_constraints_and_the_ranking(recaller: GenerativeRecaller,
                                                            tmp_path: Path) -> None:
    hist = [[1, 2, 3], [7], [4, 9, 11, 2]]
    excl = [{1, 2, 3}, {7}, set()]
    fp32 = recaller.recall(hist, k=10, beam=16, exclude=excl)
    path = recaller.save(tmp_path, "abc123", {}, {})
    served = GenerativeRecaller.load(path)
    served.enable_prefix_cache(10_000)
    served.quantize()
    assert served.int8 and served.prefix_cache is not None
    modules = list(served.model.modules())
    # every nn.Linear was swapped for its dynamically quantized version
    assert not any(isinstance(m, torch.nn.Linear) for m in modules)
    assert sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in modules) == 4 * \
        served.cfg.n_layers
    int8 = served.recall(hist, k=10, beam=16, exclude=excl, keys=["a", "b", "c"])
    for u, items in enumerate(int8.items):
        got = [int(i) for i in items if i > 0]
        assert got and all(served.trie.lookup(served.table.sids[i]) == i for i in got)
        assert not set(got) & excl[u]
        # quantization moves scores a little; the top of the list stays (mostly) the same
        assert len(set(got[:5]) & set(int(i) for i in fp32.items[u][:5])) >= 3
    np.testing.assert_allclose(int8.scores[:, 0], fp32.scores[:, 0], atol=0.25)


def test_a_copy_takes_an_upsert_by_its_sid_and_refuses_one_out_of_step() -> None:
    from tests.fixtures.recall_models import tiny_recaller

    here, there = tiny_recaller(), tiny_recaller()
    sid = here.add_item(1000, vector=clustered_vectors(n=N_ITEMS + 1, dim=DIM, seed=7)[-1])
    there.add_known(1000, sid)
    assert there.table.sids[1000] == sid and there.trie.lookup(sid) == 1000
    wrong = (*sid[:-1], sid[-1] + 2)  # this copy would give the next item sid[-1] + 1
    with pytest.raises(ValueError, match="assigned elsewhere"):
        there.add_known(1001, wrong)
