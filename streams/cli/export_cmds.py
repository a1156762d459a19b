"""Ranker commands for the ``sidstream`` CLI: ``train-ranker`` and ``bench rank``.

Registered by ``streams.cli.main``; nothing heavy (torch, onnxruntime) is imported until a handler
runs, so ``sidstream --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def _default_root() -> str:
    return str(Path(os.environ.get("SIDSTREAM_MODEL_DIR") or "artifacts") / "ranker")


def _cmd_train_ranker(args: argparse.Namespace) -> int:
    from export.ranker_job import TrainJob, run_train_job
    from models.rank.data import DataConfig
    from models.rank.train import TrainConfig

    model = {k: v for k, v in (("d", args.d), ("hidden", args.hidden)) if v is not None}
    job = TrainJob(dataset=args.dataset, out=Path(args.out), sid_artifact=args.sid_artifact,
                   label_rule=args.label_rule, threads=args.threads, model=model,
                   data=DataConfig(max_hist=args.max_hist))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      max_minutes=args.max_minutes, eval_users=args.eval_users, seed=args.seed)
    run_train_job(job, cfg)
    return 0


def _cmd_bench_rank(args: argparse.Namespace) -> int:
    from export.bench import BenchConfig, format_table, run_bench

    sizes = tuple(int(s) for s in args.sizes.split(","))
    bc = BenchConfig(sizes=sizes, cands_per_user=args.cands_per_user, threads=args.threads,
                     seconds=args.seconds, artifact=args.artifact, seed=args.seed)
    rows, source = run_bench(bc)
    print(format_table(rows, bc, source))
    if args.json:
        Path(args.json).write_text(json.dumps({"source": source, "threads": bc.threads,
                                               "rows": [r._asdict() for r in rows]}, indent=2))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-ranker", help="train the CTR/CVR ranker, export ONNX, save artifact")
    p.add_argument("dataset", help="'movielens' or a shared-format directory")
    p.add_argument("--out", default=_default_root(),
                   help="artifact root; a version directory is created below it "
                        "(default: $SIDSTREAM_MODEL_DIR/ranker)")
    p.add_argument("--sid-artifact", default=None,
                   help="item_sid.npy [n_items+1, levels] (or its directory); default: no SID")
    p.add_argument("--label-rule", default="auto",
                   choices=["auto", "rating", "brand-repeat", "all"],
                   help="how order labels are derived (auto: rating if the data has ratings, "
                        "else brand-repeat)")
    p.add_argument("--epochs", type=int, default=8, help="the best epoch (validation GAUC) is kept")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--max-minutes", type=float, default=0.0, help="training time cap (0: none)")
    p.add_argument("--eval-users", type=int, default=4000,
                   help="validation users scored after each epoch (final metrics use all)")
    p.add_argument("--max-hist", type=int, default=20)
    p.add_argument("--d", type=int, default=None, help="embedding width (default: RankerConfig)")
    p.add_argument("--hidden", type=int, default=None, help="trunk width (default: RankerConfig)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_train_ranker)


def add_bench_commands(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser("rank", help="ranker: torch eager vs onnxruntime, candidates/s")
    p.add_argument("--artifact", default=None,
                   help="ranker artifact (version dir or root with LATEST); default: a freshly "
                        "initialised default-config model")
    p.add_argument("--sizes", default="100,1000,10000", help="candidates per call, comma-separated")
    p.add_argument("--cands-per-user", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads, both backends")
    p.add_argument("--seconds", type=float, default=2.0, help="timed per backend and size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.set_defaults(func=_cmd_bench_rank)
