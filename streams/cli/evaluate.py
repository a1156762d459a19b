"""``sidstream eval-recall | eval-coldstart``: quality of recall artifacts."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from streams.cli.common import add_common, setup_torch

log = logging.getLogger(__name__)


def _cmd_eval_recall(args: argparse.Namespace) -> int:
    setup_torch(args)
    # lazy: torch and the models load only when the command runs
    from models.artifacts import resolve, update_metrics
    from models.data.dataset import load_dataset
    from models.recall.data import leave_one_out
    from models.recall.evaluate import evaluate, format_metrics
    from models.recall.recaller import GenerativeRecaller

    rec = GenerativeRecaller.load(args.artifact)
    if args.item_weight is not None:
        rec.rerank = args.item_weight
    if args.steer is not None:
        rec.steer = args.steer
    if args.int8:
        rec.quantize()
    ds = load_dataset(args.data)
    t0 = time.time()
    res = evaluate(rec, ds, leave_one_out(ds, args.split, rec.max_hist), args.split, args.beam)
    res["eval_seconds"], res["rerank"] = round(time.time() - t0, 1), rec.rerank
    res["steer"], res["int8"] = rec.steer, rec.int8
    print(format_metrics(res))
    name = (f"eval-{args.split}-beam{args.beam}-w{rec.rerank:g}-s{rec.steer:g}"
            f"{'-int8' if rec.int8 else ''}.json")
    out = Path(args.json) if args.json else resolve(Path(args.artifact)) / name
    out.write_text(json.dumps(res, indent=2))
    if args.update_manifest:
        update_metrics(resolve(Path(args.artifact)), {f"eval_{args.split}": res})
    log.info("metrics written to %s", out)
    return 0


def _cmd_eval_coldstart(args: argparse.Namespace) -> int:
    setup_torch(args)
    # lazy: torch and the models load only when the command runs
    from models.coldstart.evaluate import ColdStartEvalConfig, format_results, run_eval_coldstart
    from models.coldstart.prefix_recall import ColdStartConfig
    from models.coldstart.train import ProfileTrainConfig
    from models.data.dataset import load_dataset
    from models.sid.rqvae import RQVAEConfig
    from models.sid.train import TokenizerTrainConfig, run_train_tokenizer

    ds, out = load_dataset(args.data), Path(args.out)
    tok = Path(args.tokenizer) if args.tokenizer else run_train_tokenizer(
        ds, out / "tokenizer", TokenizerTrainConfig(
            rqvae=RQVAEConfig(codebook_size=args.codebook_size), epochs=150, seed=args.seed))
    cfg = ColdStartEvalConfig(
        train=ProfileTrainConfig(epochs=args.epochs, seed=args.seed),
        cold=ColdStartConfig(levels=args.levels, prefixes=args.prefixes, epsilon=args.epsilon,
                             bandit=args.bandit),
        test_frac=args.test_frac, seed=args.seed)
    res = run_eval_coldstart(ds, tok, cfg, out / "recall")
    (out / "eval-coldstart.json").write_text(json.dumps(res, indent=2))
    print(format_results(res))
    one = res["shown"][str(cfg.shown[0])]
    print(f"cold start, 0 events: HR@10 profile {one['profile: generative']['recall@10']:.4f}"
          f" / no profile {one['no profile: generative']['recall@10']:.4f} / popularity "
          f"{one['popularity']['recall@10']:.4f}; {res['test_users']} held-out users, "
          f"{res['wall_s']:.0f} s -> {out / 'eval-coldstart.json'}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-recall", help="Recall/NDCG@5/10 of a recall artifact + popularity")
    add_common(p)
    p.add_argument("--artifact", default="artifacts/recall")
    p.add_argument("--split", choices=("valid", "test"), default="test")
    p.add_argument("--beam", type=int, default=20)
    p.add_argument("--json", default=None, help="output file (default: <artifact>/eval-*.json)")
    p.add_argument("--update-manifest", action="store_true")
    p.add_argument("--int8", action="store_true", help="int8 linear layers, as the worker serves")
    p.add_argument("--item-weight", type=float, default=None,
                   help="weight of the item head's log-prob in the ranking (0: SID only; "
                   "default: the weight tuned on validation, stored in the artifact)")
    p.add_argument("--steer", type=float, default=None,
                   help="beam look-ahead by the item head (0: off; default: the artifact's)")
    p.set_defaults(func=_cmd_eval_recall)

    p = sub.add_parser("eval-coldstart", help="cold-start recall from user profiles on "
                       "MovieLens-100k: profile model vs no-profile model vs popularity")
    add_common(p)
    p.set_defaults(data="movielens")
    p.add_argument("--out", default="artifacts/coldstart",
                   help="tokenizer, profile recall artifact and eval-coldstart.json go here")
    p.add_argument("--tokenizer", default=None, help="tokenizer artifact (default: train one)")
    p.add_argument("--codebook-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--test-frac", type=float, default=0.2)
    p.add_argument("--levels", type=int, default=1, help="SID levels of a generated prefix")
    p.add_argument("--prefixes", type=int, default=5, help="prefixes generated per user")
    p.add_argument("--epsilon", type=float, default=0.01,
                   help="bandit score threshold (UCB of a SKU's share of its product's demand)")
    p.add_argument("--bandit", choices=("ucb", "thompson"), default="ucb")
    p.set_defaults(func=_cmd_eval_coldstart)
