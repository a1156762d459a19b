"""Export the ranker's serving graph to ONNX (dynamic axes) and check parity with torch.

The graph is ``models.rank.model.ServingRanker``: it takes ``models.rank.features.ServingInputs``
(the item feature table and item ids; the feature gather and user context run in the graph)
and returns pCTR, pCVR and pCTCVR, [U, C] each. Table rows (R), users (U) and candidates per
user (C) are dynamic; the history length N is fixed to ``RankerConfig.max_hist`` (the host
pads/truncates to it). Parity is checked against the training path: host-side numpy gather and
context (``model_inputs``) + ``Ranker``. Export uses the TorchScript-based exporter
(``dynamo=False``): it needs no extra packages.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from models.rank.features import ModelInputs, ServingInputs, model_inputs
from models.rank.model import Ranker, ServingRanker

log = logging.getLogger(__name__)

INPUT_NAMES = list(ServingInputs._fields)  # item_table, hist_items, hist_events, last_age_s, ...
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


def random_serving_inputs(model: Ranker, n_users: int, n_cands: int, seed: int = 0,
                          empty_users: int = 0, n_rows: int = 0) -> ServingInputs:
    """Random ids over a random valid feature table of ``n_rows`` rows (default: n_items + 2).

    Ids run past the table and below 0 (the clip to sentinel / padding); ages include NaN.
    """
    cfg = model.cfg
    rng = np.random.default_rng(seed)
    rows = n_rows or cfg.n_items + 2
    table = random_inputs(model, 1, rows, seed=seed).cand_feats[0]
    table[0] = 0
    table[-1] = 0
    table[-1, 0] = cfg.n_items + 1  # the unknown-item sentinel
    hist = rng.integers(-1, rows + 3, (n_users, cfg.max_hist))
    lengths = rng.integers(0, cfg.max_hist + 1, n_users)
    lengths[:empty_users] = 0
    hist[np.arange(cfg.max_hist)[None, :] < (cfg.max_hist - lengths)[:, None]] = 0
    events = rng.integers(0, cfg.n_event_types, hist.shape)  # the graph zeroes them at padding
    age = rng.exponential(3600.0, n_users).astype(np.float32)
    age[rng.random(n_users) < 0.2] = np.nan
    cands = rng.integers(-1, rows + 3, (n_users, n_cands))
    return ServingInputs(table, hist, events, age, cands)


def export_onnx(model: Ranker, path: Path) -> Path:
    """Write ``model``'s serving graph (eval mode) to ``path`` as ONNX; return the path."""
    model.eval()
    graph = ServingRanker(model).eval()
    example = tuple(torch.from_numpy(a) for a in random_serving_inputs(model, 3, 5, n_rows=50))
    dynamic = {"item_table": {0: "rows"}, "hist_items": {0: "users"},
               "hist_events": {0: "users"}, "last_age_s": {0: "users"},
               "cand_items": {0: "users", 1: "cands"}}
    dynamic.update({name: {0: "users", 1: "cands"} for name in OUTPUT_NAMES})
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation / tracer notes
        torch.onnx.export(graph, example, str(path), input_names=INPUT_NAMES,
                          output_names=OUTPUT_NAMES, dynamic_axes=dynamic, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)
    model.eval()  # the exporter restores the wrapper's mode recursively
    log.info("exported ranker to %s (%.1f kB)", path, path.stat().st_size / 1024)
    return path


def torch_scores(model: Ranker, inputs: ModelInputs | ServingInputs) -> list[np.ndarray]:
    """Scores of the training path: ``ServingInputs`` are gathered on the host (numpy) first."""
    if isinstance(inputs, ServingInputs):
        inputs = model_inputs(inputs)
    with torch.inference_mode():
        outs = model(*(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs))
    return [o.numpy() for o in outs]


def parity(model: Ranker, path: Path, batches: list[ServingInputs]) -> float:
    """Max |torch - onnxruntime| over all outputs of ``batches`` (CPU session).

    The reference is the training path (host gather + context, ``Ranker``), so this also checks
    the graph's own gather and context against the numpy ones.
    """

    from export.serving import import_onnxruntime  # lazy: the installed build (cpu or gpu extra)

    ort = import_onnxruntime()
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


def export_and_verify(model: Ranker, path: Path, real: list[ServingInputs] | None = None
                      ) -> float:
    """Export, then check parity on random batches of several shapes (and ``real`` ones)."""
    export_onnx(model, path)
    shapes = [(1, 1, 0), (1, 100, 1), (7, 13, 2), (50, 200, 5)]
    batches = [random_serving_inputs(model, u, c, seed=i, empty_users=e)
               for i, (u, c, e) in enumerate(shapes)]
    diff = parity(model, path, batches + list(real or []))
    if diff > PARITY_TOL:
        raise ValueError(f"ONNX parity failed: max abs diff {diff:.2e} > {PARITY_TOL:.0e}")
    log.info("ONNX parity: max abs diff %.2e over %d batches", diff, len(batches) + len(real or []))
    return diff
