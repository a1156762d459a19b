"""Serving: score many users' candidates at once with onnxruntime (or torch eager, same API).

The stream calls :meth:`RankerSession.score` once per micro-batch with every user it touched:

    session = RankerSession.from_artifact("artifacts/ranker")   # LATEST; validated
    batch = RankBatch(hist_items, hist_events, last_age_s, cand_items)
    scores = session.score(batch)          # RankScores: pctr, pcvr, pctcvr, [U, C] each
    final = blend(scores.pctr, scores.pctcvr, session.features.prices(cand_items),
                  settings.blend)  # streams/pipeline/rank.py

- ``hist_items`` int [U, N'] item ids, right-aligned (most recent last), 0 = padding; any N'
  (the session keeps the model's last ``max_hist`` columns);
- ``hist_events`` int [U, N'] ``models.rank.features.EVENT_IDS`` (view 1, click 2, cart 3,
  order 4; 0 padding);
- ``last_age_s`` float [U] seconds since the user's last event (NaN: unknown), or None;
- ``cand_items`` int [U, C] candidate item ids, 0 = padding (scores 0 there).

Users with different numbers of candidates: build the [U, C] array from a flat list with
:func:`pad_candidates` and read the flat scores back with ``scores.pctr[rows, cols]``.

The host work per call is only cutting histories to ``max_hist`` and fixing dtypes
(:func:`models.rank.features.serving_inputs`): the graph (``models.rank.model.ServingRanker``)
gathers the item feature rows from the live :class:`models.rank.features.ItemFeatures` table
and computes the user context itself. The table is a graph *input* with a dynamic row axis, not
an initializer, passed zero-copy on every call: in-place upserts are seen at once, and a grown
table (a new array) is simply the next call's input -- no re-export, no re-binding.
Items upserted after training are scored from their category / brand / price / SID features
with the shared unknown-item id embedding.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from models.rank.artifact import load_artifact
from models.rank.features import ItemFeatures, ServingInputs, serving_inputs
from models.rank.model import ServingRanker

if TYPE_CHECKING:
    from models.rank.model import Ranker

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
ORT_ERROR = 3  # onnxruntime log severity: 0 verbose .. 3 error, 4 fatal
OPSET_PROBE = 13


class RankBatch(NamedTuple):
    hist_items: np.ndarray  # int [U, N'], right-aligned, 0 = padding
    hist_events: np.ndarray  # int [U, N'], EVENT_IDS
    last_age_s: np.ndarray | None  # float [U] seconds since the last event, NaN unknown
    cand_items: np.ndarray  # int [U, C], 0 = padding


class RankScores(NamedTuple):
    pctr: np.ndarray  # float32 [U, C]
    pcvr: np.ndarray
    pctcvr: np.ndarray


def pad_candidates(cand_items: np.ndarray, cand_user: np.ndarray, n_users: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat candidates with user rows -> ([U, C_max] padded ids, rows, cols) of each input."""
    cand_items = np.asarray(cand_items, np.int64)
    cand_user = np.asarray(cand_user, np.int64)
    counts = np.bincount(cand_user, minlength=n_users)
    order = np.argsort(cand_user, kind="stable")
    start = np.cumsum(counts) - counts
    cols = np.empty(len(cand_user), np.int64)
    cols[order] = np.arange(len(order)) - start[cand_user[order]]
    out = np.zeros((n_users, int(counts.max(initial=0))), np.int64)
    out[cand_user, cols] = cand_items
    return out, cand_user, cols


def _cuda_usable(ort_module: Any) -> bool:
    """CUDA only if onnxruntime lists it and a device is really there.

    A CUDA build of torch answers cheaply (``torch.cuda.is_available()``); otherwise a one-node
    session is created on CUDA with all output silenced, and CUDA counts if it stayed in use.
    """
    if CUDA not in ort_module.get_available_providers():
        return False
    if torch.version.cuda is not None:
        return bool(torch.cuda.is_available())
    return _probe_cuda(ort_module)


def _probe_cuda(ort_module: Any) -> bool:
    from onnx import TensorProto, helper  # lazy: only to probe for a usable CUDA device

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET_PROBE)])
    opts = ort_module.SessionOptions()
    opts.log_severity_level = 4
    with _quiet():
        try:
            sess = ort_module.InferenceSession(model.SerializeToString(), opts,
                                               providers=[CUDA, CPU])
        except Exception:
            return False
    return CUDA in sess.get_providers()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence stdout, stderr (Python's and the descriptors native code writes to), warnings."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    sink = io.StringIO()
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module (lazy: loads when a session is built), or an error that says
    which package to install: ``sidstream[cpu]`` or, on a CUDA host, ``sidstream[gpu]`` (one of
    the two: both install the same module)."""
    try:
        import onnxruntime as ort  # lazy: loads when a session is built
    except ImportError as exc:
        raise ImportError("onnxruntime is not installed: pip install 'sidstream[cpu]', or "
                          "'sidstream[gpu]' on a CUDA host (onnxruntime-gpu)") from exc
    return ort


@functools.lru_cache(maxsize=2)
def choose_providers(prefer_cuda: bool = True) -> tuple[str, ...]:
    """``(CUDA, CPU)`` when CUDA is really usable, else ``(CPU,)``; decided (and logged) once
    per process."""
    ort = import_onnxruntime()
    if not prefer_cuda:
        return (CPU,)
    if CUDA not in ort.get_available_providers():
        log.info("onnxruntime %s: CPU (this build has no CUDA provider; onnxruntime-gpu, "
                 "'sidstream[gpu]', has)", ort.__version__)
        return (CPU,)
    if _cuda_usable(ort):
        log.info("onnxruntime %s: CUDA (CPU as fallback)", ort.__version__)
        return (CUDA, CPU)
    log.info("onnxruntime %s: CPU (CUDA provider present, no usable device)", ort.__version__)
    return (CPU,)


class RankerSession:
    """onnxruntime session over ``ranker.onnx`` (the serving graph: ids + feature table in).

    The table goes into every ``run`` as a plain numpy input: onnxruntime wraps CPU numpy
    buffers without copying (a 64 MB table costs nothing extra per call), so this is the same as
    a pre-bound OrtValue, sees in-place upserts and re-allocation alike, and stays thread-safe
    (a shared IO binding would not be). IO binding with per-call outputs measured no faster.
    """

    def __init__(self, onnx_path: Path | str, features: ItemFeatures, max_hist: int,
                 intra_op_threads: int = 1, inter_op_threads: int = 1,
                 prefer_cuda: bool = True) -> None:
        ort = import_onnxruntime()
        ort.set_default_logger_severity(ORT_ERROR)
        opts = ort.SessionOptions()
        opts.log_severity_level = ORT_ERROR
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = inter_op_threads
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = list(choose_providers(prefer_cuda))
        try:
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=providers)
        except Exception:  # CUDA listed but unusable after all: CPU, quietly
            if providers == [CPU]:
                raise
            log.debug("CUDA session failed; using CPU", exc_info=True)
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=[CPU])
        self.providers = self.session.get_providers()
        self.features, self.max_hist = features, max_hist
        self.version = ""  # artifact version, when loaded from one
        self.input_names = [i.name for i in self.session.get_inputs()]
        log.info("ranker session on %s (intra-op threads %d)", self.providers[0], intra_op_threads)

    @classmethod
    def from_artifact(cls, path: Path | str, intra_op_threads: int = 1,
                      prefer_cuda: bool = True) -> RankerSession:
        """Session over a validated ranker artifact (version dir, or root with ``LATEST``)."""

        art = load_artifact(path)
        sess = cls(art.onnx_path, art.features, art.config.max_hist,
                   intra_op_threads=intra_op_threads, prefer_cuda=prefer_cuda)
        sess.version = art.version
        return sess

    def inputs(self, batch: RankBatch) -> ServingInputs:
        return serving_inputs(self.features, batch.hist_items, batch.hist_events,
                              batch.last_age_s, batch.cand_items, self.max_hist)

    def run(self, inputs: ServingInputs) -> RankScores:
        outs = self.session.run(None, dict(zip(self.input_names, inputs, strict=True)))
        return RankScores(*outs)

    def score(self, batch: RankBatch) -> RankScores:
        return self.run(self.inputs(batch))


class TorchRanker:
    """The same API over the plain PyTorch model (eager): the reference and the baseline.

    Runs the same serving graph (``ServingRanker``: in-graph gather + context) under
    ``torch.inference_mode()``; the feature table is wrapped zero-copy and re-wrapped on growth.
    """

    def __init__(self, model: Ranker, features: ItemFeatures) -> None:
        self.model = model.eval()
        self.graph = ServingRanker(self.model).eval()
        self.features, self.max_hist = features, model.cfg.max_hist
        self._table: tuple[np.ndarray, Any] | None = None  # (numpy table, its torch view)

    def inputs(self, batch: RankBatch) -> ServingInputs:
        return serving_inputs(self.features, batch.hist_items, batch.hist_events,
                              batch.last_age_s, batch.cand_items, self.max_hist)

    def run(self, inputs: ServingInputs) -> RankScores:
        if self._table is None or self._table[0] is not inputs.item_table:
            self._table = (inputs.item_table, torch.from_numpy(inputs.item_table))
        with torch.inference_mode():
            outs = self.graph(self._table[1], *(torch.from_numpy(a) for a in inputs[1:]))
        return RankScores(*(o.numpy() for o in outs))

    def score(self, batch: RankBatch) -> RankScores:
        return self.run(self.inputs(batch))
