"""Models for ``sidstream demo``: trained on MovieLens-100k once, then reused.

The demo should show the whole system, generative recall and ONNX ranking included, on a fresh
machine; so when its model directory has no artifacts it trains them (a few minutes on two
cores, the code paths of ``make recall-model`` and ``train-ranker``: tokenizer, SIDRec with the
cosine schedule over ``DEMO_RECALL_EPOCHS``, ranker) and keeps them under ``artifacts/demo``.
The recall model is the kind the README measures (SIDRec, same size), not a smaller stand-in.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from models.artifacts import ArtifactError, load_manifest
from models.data.dataset import MOVIELENS, load_dataset
from models.data.timeline import before_window
from streams.channels.seed import SEED_FILE
from streams.jobs.seed import build_seed

log = logging.getLogger(__name__)

DEMO_DIR = Path("artifacts/demo")
# the schedule of ``make recall-model`` over fewer epochs (~10 s each on MovieLens-100k and 2
# idle cores), so that a fresh demo trains in minutes; epochs decide the model, never the clock
DEMO_RECALL_EPOCHS = 10
# the last interactions the demo models never see: `sidstream promote`'s default window, so the
# promotion gate judges them (and challengers trained the same way) out of sample
DEMO_HOLDOUT_EVENTS = 5000


def have_models(root: Path, data_hash: str | None = None) -> bool:
    """Recall and ranker artifacts this code reads (older formats are trained again), trained
    on the data of ``data_hash`` when given (models of an older MovieLens loading too)."""
    from models.rank import artifact as ranker  # lazy: torch, only to read the format numbers
    from models.recall import sidrec_recaller as recall

    for sub, kind, fmt in (("recall", recall.KIND, recall.FORMAT),
                           ("ranker", ranker.KIND, ranker.FORMAT)):
        try:
            man = load_manifest(root / sub, kind=kind, fmt=fmt, verify=False)
        except ArtifactError:
            return False
        if data_hash is not None and man.data_hash != data_hash:
            return False
    return True


def ensure_demo_models(root: Path = DEMO_DIR, threads: int = 2) -> Path:
    """``root`` with recall/, ranker/ and seed.json.gz for MovieLens (trained if missing)."""
    ds = load_dataset(MOVIELENS)
    trained_on = before_window(ds, DEMO_HOLDOUT_EVENTS).data_hash()
    if have_models(root, trained_on) and (root / SEED_FILE).is_file():
        return root
    import torch  # lazy: torch and training load only when the demo has no models yet

    from models.recall.sidrec_train import SIDRecTrainConfig, run_train_sidrec
    from models.sid.train import TokenizerTrainConfig, run_train_tokenizer

    torch.set_num_threads(threads)
    t0 = time.time()
    print(f"training demo models on MovieLens-100k into {root} (once; a few minutes) ...",
          flush=True)
    tok = run_train_tokenizer(ds, root / "tokenizer", TokenizerTrainConfig(epochs=150))
    run_train_sidrec(ds, tok, root / "recall", SIDRecTrainConfig(
        epochs=DEMO_RECALL_EPOCHS, lr_schedule="cosine", holdout_events=DEMO_HOLDOUT_EVENTS),
        test=False)
    _train_ranker(root, threads)
    build_seed(MOVIELENS, str(root / SEED_FILE))
    log.info("demo models ready in %.0f s", time.time() - t0)
    return root


def _train_ranker(root: Path, threads: int) -> None:
    """What ``sidstream train-ranker movielens --sid-artifact ROOT/recall --epochs 3
    --holdout-events 5000`` runs."""
    from export.ranker_job import TrainJob, run_train_job  # lazy: torch, onnx
    from models.rank.train import TrainConfig  # lazy: torch
    job = TrainJob(dataset=MOVIELENS, out=root / "ranker", sid_artifact=str(root / "recall"),
                   threads=threads, holdout_events=DEMO_HOLDOUT_EVENTS)
    run_train_job(job, TrainConfig(epochs=3))
