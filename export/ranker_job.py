"""``sidstream train-ranker``: data -> training -> AUC/GAUC -> ONNX export + parity -> artifact."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from export.onnx_export import INPUT_NAMES, OPSET, export_and_verify
from models.data.dataset import load_dataset
from models.data.timeline import before_window
from models.rank.artifact import save_artifact
from models.rank.data import DataConfig, Examples, LabelRule, eval_negatives, histories, last_age
from models.rank.features import ServingInputs, load_item_sid, serving_inputs
from models.rank.model import Ranker
from models.rank.train import model_config, prepare_data, train

log = logging.getLogger(__name__)


@dataclass
class TrainJob:
    dataset: str  # shared-format directory or "movielens"
    out: Path  # artifact root; the version directory goes below it
    sid_artifact: str | None = None  # item_sid.npy (or a directory holding it)
    label_rule: str = "auto"
    threads: int = 1
    model: dict[str, Any] = field(default_factory=dict)  # RankerConfig overrides (d, hidden, ...)
    data: DataConfig = field(default_factory=DataConfig)
    parity_users: int = 256  # real test users whose batches are checked for ONNX parity
    holdout_events: int = 0  # train on the data before its last N interactions (replay order)


def real_batches(data: Any, n_users: int) -> list[ServingInputs]:
    """Serving inputs of the first ``n_users`` test examples (positive + eval negatives)."""
    ex = Examples(data.test.user[:n_users], data.test.pos[:n_users])
    negatives = eval_negatives(data.corpus, ex, data.covisit, data.cfg, seed=7)
    hist, events = histories(data.corpus, ex, data.cfg.max_hist)
    cands = np.concatenate([data.corpus.items[ex.pos][:, None], negatives], axis=1)
    return [serving_inputs(data.features, hist, events, last_age(data.corpus, ex), cands,
                           data.cfg.max_hist)]


def run_train_job(job: TrainJob, train_cfg: Any) -> Path:
    """Train, evaluate, export and save; returns the artifact version directory."""


    torch.set_num_threads(job.threads)
    t0 = time.monotonic()
    ds = before_window(load_dataset(job.dataset), job.holdout_events)
    item_sid = load_item_sid(job.sid_artifact, max(ds.items)) if job.sid_artifact else None
    rule = None if job.label_rule == "auto" else LabelRule(job.label_rule)
    data = prepare_data(ds, job.data, rule, item_sid)
    model = Ranker(model_config(data.features, job.data.max_hist, **job.model))
    log.info("ranker: %d parameters, config %s", sum(p.numel() for p in model.parameters()),
             model.cfg)
    result = train(model, data, train_cfg)
    for split, m in result.metrics.items():
        log.info("%s: AUC %.4f GAUC %.4f | CTCVR AUC %.4f GAUC %.4f | CVR AUC (clicked) %.4f",
                 split, m["auc_ctr"], m["gauc_ctr"], m["auc_ctcvr"], m["gauc_ctcvr"],
                 m["auc_cvr_clicked"])
    real = real_batches(data, job.parity_users)

    def write_onnx(path: Path) -> dict[str, Any]:
        diff = export_and_verify(result.model, path, real)
        return {"opset": OPSET, "parity_max_abs_diff": diff, "inputs": INPUT_NAMES,
                "dynamic_axes": ["rows", "users", "cands"]}

    directory = save_artifact(
        job.out, result.model, data.features,
        data={"name": data.name, "hash": data.data_hash, "source": job.dataset,
              "users": len(ds.sequences), "items": data.features.n_trained_items},
        metrics=result.metrics,
        extra={"label_rule": data.rule.value, "train": dataclasses.asdict(train_cfg),
               "data_config": dataclasses.asdict(job.data), "losses": result.losses,
               "train_seconds": round(result.seconds, 1), "holdout_events": job.holdout_events,
               "sid": {"source": job.sid_artifact, "levels": data.features.n_sid_levels}},
        write_onnx=write_onnx)
    test = result.metrics["test"]
    print(f"ranker {directory.name}: test AUC {test['auc_ctr']:.4f} GAUC {test['gauc_ctr']:.4f}"
          f" (CTCVR AUC {test['auc_ctcvr']:.4f}), {data.name}, label rule {data.rule.value},"
          f" {time.monotonic() - t0:.0f} s -> {directory}")
    return directory
