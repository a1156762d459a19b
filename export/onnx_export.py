"""Export the ranker to ONNX (dynamic user and candidate axes) and check parity with torch.

The graph takes the host-built inputs of ``models.ranker_features.ModelInputs`` and returns
pCTR, pCVR and pCTCVR, [U, C] each. Users (U) and candidates per user (C) are dynamic; the
history length N is fixed to ``RankerConfig.max_hist`` (the host pads/truncates to it).
Export uses the TorchScript-based exporter (``dynamo=False``): it needs no extra packages.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from models.ranker import Ranker
from models.ranker_features import ModelInputs

log = logging.getLogger(__name__)

INPUT_NAMES = list(ModelInputs._fields)  # hist_feats, hist_events, context, cand_feats
OUTPUT_NAMES = ["pctr", "pcvr", "pctcvr"]
OPSET = 17
PARITY_TOL = 1e-4


def random_inputs(model: Ranker, n_users: int, n_cands: int, seed: int = 0,
                  empty_users: int = 0) -> ModelInputs:
    """Random valid inputs: per-field ids in range, random-length right-aligned histories."""
    cfg = model.cfg
    rng = np.random.default_rng(seed)
    sizes = np.array(cfg.field_sizes())

    def feats(shape: tuple[int, ...]) -> np.ndarray:
        return rng.integers(0, sizes, (*shape, len(sizes))).astype(np.int64)

    hist = feats((n_users, cfg.max_hist))
    hist[..., 0] = rng.integers(1, cfg.n_items + 2, hist.shape[:2])
    lengths = rng.integers(0, cfg.max_hist + 1, n_users)
    lengths[:empty_users] = 0
    pad = np.arange(cfg.max_hist)[None, :] < (cfg.max_hist - lengths)[:, None]
    hist[pad] = 0
    events = np.where(pad, 0, rng.integers(1, cfg.n_event_types, pad.shape)).astype(np.int64)
    cand = feats((n_users, n_cands))
    cand[..., 0] = rng.integers(1, cfg.n_items + 2, cand.shape[:2])
    context = rng.random((n_users, cfg.n_context)).astype(np.float32)
    return ModelInputs(hist, events, context, cand)


def export_onnx(model: Ranker, path: Path) -> Path:
    """Write ``model`` (eval mode) to ``path`` as ONNX; return the path."""
    model.eval()
    example = tuple(torch.from_numpy(a) for a in random_inputs(model, 3, 5))
    dynamic = {"hist_feats": {0: "users"}, "hist_events": {0: "users"}, "context": {0: "users"},
               "cand_feats": {0: "users", 1: "cands"}}
    dynamic.update({name: {0: "users", 1: "cands"} for name in OUTPUT_NAMES})
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation / tracer notes
        torch.onnx.export(model, example, str(path), input_names=INPUT_NAMES,
                          output_names=OUTPUT_NAMES, dynamic_axes=dynamic, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)
    log.info("exported ranker to %s (%.1f kB)", path, path.stat().st_size / 1024)
    return path


def torch_scores(model: Ranker, inputs: ModelInputs) -> list[np.ndarray]:
    with torch.inference_mode():
        outs = model(*(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs))
    return [o.numpy() for o in outs]


def parity(model: Ranker, path: Path, batches: list[ModelInputs]) -> float:
    """Max |torch - onnxruntime| over all outputs of ``batches`` (CPU session)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    for inputs in batches:
        ort_out = sess.run(OUTPUT_NAMES, dict(zip(INPUT_NAMES, inputs, strict=True)))
        for a, b in zip(torch_scores(model, inputs), ort_out, strict=True):
            worst = max(worst, float(np.abs(a - np.asarray(b)).max(initial=0.0)))
    return worst


def export_and_verify(model: Ranker, path: Path, real: list[ModelInputs] | None = None
                      ) -> float:
    """Export, then check parity on random batches of several shapes (and ``real`` ones)."""
    export_onnx(model, path)
    shapes = [(1, 1, 0), (1, 100, 1), (7, 13, 2), (50, 200, 5)]
    batches = [random_inputs(model, u, c, seed=i, empty_users=e)
               for i, (u, c, e) in enumerate(shapes)]
    diff = parity(model, path, batches + list(real or []))
    if diff > PARITY_TOL:
        raise ValueError(f"ONNX parity failed: max abs diff {diff:.2e} > {PARITY_TOL:.0e}")
    log.info("ONNX parity: max abs diff %.2e over %d batches", diff, len(batches) + len(real or []))
    return diff
