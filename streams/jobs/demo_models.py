"""Models for ``sidstream demo``: trained on MovieLens-100k once, then reused.

The demo should show the whole system, generative recall and ONNX ranking included, on a fresh
machine; so when its model directory has no artifacts it trains small ones (a few minutes on two
cores, same code paths as the training CLIs) and keeps them under ``artifacts/demo``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from models.data.dataset import MOVIELENS

log = logging.getLogger(__name__)

DEMO_DIR = Path("artifacts/demo")


def have_models(root: Path) -> bool:
    return all((root / kind / "LATEST").is_file() for kind in ("recall", "ranker"))


def ensure_demo_models(root: Path = DEMO_DIR, threads: int = 2) -> Path:
    """``root`` with recall/, ranker/ and seed.json.gz for MovieLens (trained if missing)."""
    if have_models(root) and (root / "seed.json.gz").is_file():
        return root
    import torch

    from models.data.dataset import load_dataset
    from models.recall.model import GenConfig
    from models.recall.train import RecallTrainConfig, run_train_recall
    from models.sid.train import TokenizerTrainConfig, run_train_tokenizer
    from streams.jobs.seed import build_seed

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
    build_seed(MOVIELENS, str(root / "seed.json.gz"))
    log.info("demo models ready in %.0f s", time.time() - t0)
    return root


def _train_ranker(root: Path, threads: int) -> None:
    from streams.cli.main import main

    if main(["train-ranker", MOVIELENS, "--out", str(root / "ranker"), "--sid-artifact",
             str(root / "recall"), "--epochs", "3", "--threads", str(threads)]) != 0:
        raise RuntimeError("demo ranker training failed")
