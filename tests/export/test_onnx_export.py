"""ONNX export: dynamic user / candidate axes, parity with torch on random and real inputs."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
import pytest
import torch

from export.onnx_export import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    PARITY_TOL,
    export_and_verify,
    export_onnx,
    parity,
    random_serving_inputs,
)
from export.ranker_job import real_batches
from models.rank.data import DataConfig
from models.rank.model import Ranker
from models.rank.toy import toy_dataset
from models.rank.train import RankerData, model_config, prepare_data

torch.set_num_threads(1)


class Exported(NamedTuple):
    model: Ranker
    path: Path
    data: RankerData


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    sid = np.random.default_rng(0).integers(-1, 7, (41, 3))  # with SID features, some unknown
    data = prepare_data(toy_dataset(n_users=60, n_items=40), DataConfig(max_hist=6), item_sid=sid)
    torch.manual_seed(0)
    model = Ranker(model_config(data.features, 6, d=16, hidden=16)).eval()
    with torch.no_grad():  # non-trivial weights everywhere (biases and the null key start at 0)
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "ranker.onnx")
    return Exported(model, path, data)


def test_graph_has_dynamic_user_and_candidate_axes(exported: Exported) -> None:
    _, path, _ = exported
    graph = onnx.load(str(path)).graph
    onnx.checker.check_model(onnx.load(str(path)))
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
              for i in graph.input}
    assert list(inputs) == INPUT_NAMES and [o.name for o in graph.output] == OUTPUT_NAMES
    assert inputs["cand_items"] == ["users", "cands"] and inputs["hist_items"][0] == "users"
    assert inputs["item_table"][0] == "rows"  # the catalogue grows without re-export
    assert not any(i.name == "item_table" for i in graph.initializer)


def test_parity_random_inputs_many_shapes(exported: Exported) -> None:
    model, path, _ = exported
    batches = [random_serving_inputs(model, u, c, seed=u + c, empty_users=e, n_rows=r)
               for u, c, e, r in [(1, 1, 0, 0), (1, 1, 1, 0), (2, 300, 1, 90), (37, 11, 5, 0),
                                  (5, 2, 0, 7)]]
    assert parity(model, path, batches) <= PARITY_TOL


def test_parity_real_inputs(exported: Exported) -> None:
    model, path, data = exported
    real = real_batches(data, len(data.test.user))
    assert (real[0].hist_items == 0).any()  # real short histories with padding
    assert np.isfinite(real[0].last_age_s).any()  # real recency features
    assert parity(model, path, real) <= PARITY_TOL


def test_export_and_verify_raises_on_mismatch(exported: Exported,
                                              tmp_path: Path) -> None:
    model, _, _ = exported
    path = tmp_path / "r.onnx"
    assert export_and_verify(model, path) <= PARITY_TOL
    other = Ranker(model.cfg).eval()  # different weights than the exported file
    with pytest.raises(AssertionError):
        assert parity(other, path, [random_serving_inputs(model, 2, 3)]) <= PARITY_TOL
