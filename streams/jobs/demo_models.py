"""Models for ``sidstream demo``: trained on MovieLens-100k once, then reused.

The demo should show the whole system, generative recall and ONNX ranking included, on a fresh
machine; so when its model directory has no artifacts it trains small ones (a few minutes on two
cores, same code paths as the training CLIs) and keeps them under ``artifacts/demo``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from models.artifacts import ArtifactError, load_manifest
from models.data.dataset import MOVIELENS, load_dataset
from streams.channels.seed import SEED_FILE
from streams.jobs.seed import build_seed

log = logging.getLogger(__name__)

DEMO_DIR = Path("artifacts/demo")


def have_models(root: Path) -> bool:
    """Recall and ranker artifacts this code reads (older formats are trained again)."""
    from models.rank import artifact as ranker  # lazy: torch, only to read the format numbers
    from models.recall import recaller

    for kind, fmt in ((recaller.KIND, recaller.FORMAT), (ranker.KIND, ranker.FORMAT)):
        try:
            load_manifest(root / kind, kind=kind, fmt=fmt, verify=False)
        except ArtifactError:
            return False
    return True


def ensure_demo_models(root: Path = DEMO_DIR, threads: int = 2) -> Path:
    """``root`` with recall/, ranker/ and seed.json.gz for MovieLens (trained if missing)."""
    if have_models(root) and (root / SEED_FILE).is_file():
        return root
    import torch  # lazy: torch and training load only when the demo has no models yet

    from models.recall.model import GenConfig
    from models.recall.train import RecallTrainConfig, run_train_recall
    from models.sid.train import TokenizerTrainConfig, run_train_tokenizer

    torch.set_num_threads(threads)
    t0 = time.time()
    print(f"training demo models on MovieLens-100k into {root} (once; a few minutes) ...",
          flush=True)
    ds = load_dataset(MOVIELENS)
    tok = run_train_tokenizer(ds, root / "tokenizer", TokenizerTrainConfig(epochs=150))
    cfg = RecallTrainConfig(gen=GenConfig(item_loss=1.0), epochs=12, max_minutes=4.0,
                            eval_every=4, eval_users=500, item_weights=(1.0,))
    run_train_recall(ds, tok, root / "recall", cfg, test=False)
    _train_ranker(root, threads)
    build_seed(MOVIELENS, str(root / SEED_FILE))
    log.info("demo models ready in %.0f s", time.time() - t0)
    return root


def _train_ranker(root: Path, threads: int) -> None:
    """What ``sidstream train-ranker movielens --sid-artifact ROOT/recall --epochs 3`` runs."""
    from export.ranker_job import TrainJob, run_train_job  # lazy: torch, onnx
    from models.rank.train import TrainConfig  # lazy: torch
    job = TrainJob(dataset=MOVIELENS, out=root / "ranker", sid_artifact=str(root / "recall"),
                   threads=threads)
    run_train_job(job, TrainConfig(epochs=3))
