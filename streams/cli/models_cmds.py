"""``sidstream train-tokenizer | train-recall | eval-recall`` and ``sidstream bench recall``.

Registered by ``streams.cli.main`` through ``add_commands`` / ``add_bench_commands``. Nothing heavy
is
imported here: torch and the models load inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

BEAUTY = "../shared/data/amazon-beauty-2014"


def _setup(args: argparse.Namespace) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)


def _cmd_train_tokenizer(args: argparse.Namespace) -> int:
    _setup(args)
    from models.data.dataset import load_dataset
    from models.sid.rqvae import RQVAEConfig
    from models.sid.train import TokenizerTrainConfig, run_train_tokenizer

    cfg = TokenizerTrainConfig(rqvae=RQVAEConfig(n_levels=args.levels,
                                                 codebook_size=args.codebook_size),
                               epochs=args.epochs, dup_vocab=args.dup_vocab, seed=args.seed)
    path = run_train_tokenizer(load_dataset(args.data), Path(args.out), cfg)
    print(path)
    return 0


def _cmd_train_recall(args: argparse.Namespace) -> int:
    _setup(args)
    from models.data.dataset import load_dataset
    from models.recall.model import GenConfig
    from models.recall.train import RecallTrainConfig, run_train_recall

    gen = GenConfig(d_model=args.d_model, n_layers=args.layers, n_heads=args.heads,
                    d_ff=4 * args.d_model, dropout=args.dropout, item_loss=args.item_loss)
    cfg = RecallTrainConfig(gen=gen, id_embedding=not args.no_id_embedding, epochs=args.epochs,
                            batch_size=args.batch_size, lr=args.lr, max_minutes=args.max_minutes,
                            eval_every=args.eval_every, eval_users=args.eval_users,
                            patience=args.patience, beam=args.beam, seed=args.seed)
    path = run_train_recall(load_dataset(args.data), Path(args.tokenizer), Path(args.out), cfg,
                            test=not args.no_test)
    print(path)
    return 0


def _cmd_eval_recall(args: argparse.Namespace) -> int:
    _setup(args)
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


def _cmd_train_i2i(args: argparse.Namespace) -> int:
    _setup(args)
    from dataclasses import asdict

    import numpy as np

    from models.artifacts import write_artifact
    from models.data.dataset import load_dataset
    from models.i2i.deepi2i import FORMAT, KIND, TABLE_FILE, I2IConfig, run_i2i

    ds = load_dataset(args.data)
    cfg = I2IConfig(dim=args.dim, epochs=args.epochs, side_info=not args.no_side_info,
                    walks_per_item=args.walks, seed=args.seed)
    table, metrics = run_i2i(ds, cfg)

    def writer(d: Path) -> None:  # [max item id + 1, 50] most similar items, row = item id
        np.save(d / TABLE_FILE, table)

    path = write_artifact(Path(args.out), KIND, FORMAT, ds.data_hash(), asdict(cfg), metrics,
                          writer)
    print(json.dumps(metrics))
    print(f"i2i: HR@10 {metrics['i2i/hr@10']:.4f} (co-visitation {metrics['covisit/hr@10']:.4f}),"
          f" long-tail query items {metrics['i2i/hr@10_tail']:.4f} (co-visitation "
          f"{metrics['covisit/hr@10_tail']:.4f}) -> {path}")
    return 0


def _cmd_tune_recall(args: argparse.Namespace) -> int:
    _setup(args)
    from models.artifacts import resolve, update_config
    from models.data.dataset import load_dataset
    from models.recall.recaller import GenerativeRecaller
    from models.recall.train import RecallTrainConfig, tune_decoding, validation_sample

    rec = GenerativeRecaller.load(args.artifact)
    cfg = RecallTrainConfig(eval_users=args.eval_users, beam=args.beam, seed=args.seed,
                            max_hist=rec.max_hist)
    valid = validation_sample(load_dataset(args.data), cfg)
    weight, steer = tune_decoding(rec, valid, cfg)
    update_config(resolve(Path(args.artifact)), {"item_weight": weight, "steer": steer})
    print(f"item_weight {weight:g}, steer {steer:g} (validation sample of {len(valid.targets)}"
          " users) -> manifest")
    return 0


def _cmd_bench_recall(args: argparse.Namespace) -> int:
    _setup(args)
    from models.recall.beam import SEARCH_CHUNK
    from models.recall.bench import bench_recall

    res = bench_recall(args.artifact, args.data, users=args.users,
                       batch_size=args.batch_size or SEARCH_CHUNK, beam=args.beam, k=args.k,
                       exclude=args.exclude, int8=args.int8)
    print(json.dumps(res))
    return 0


def _cmd_eval_coldstart(args: argparse.Namespace) -> int:
    _setup(args)
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


def _common(p: argparse.ArgumentParser, data: bool = True) -> None:
    if data:
        p.add_argument("--data", default=BEAUTY, help="shared-format data set directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-tokenizer", help="item embeddings -> RQ-VAE -> semantic IDs")
    _common(p)
    p.add_argument("--out", default="artifacts/tokenizer")
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--codebook-size", type=int, default=256)
    p.add_argument("--dup-vocab", type=int, default=64, help="cap of the collision token")
    p.set_defaults(func=_cmd_train_tokenizer)

    p = sub.add_parser("train-recall", help="train the generative recall model (+ test eval)")
    _common(p)
    p.add_argument("--tokenizer", default="artifacts/tokenizer", help="artifact or its root")
    p.add_argument("--out", default="artifacts/recall")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--max-minutes", type=float, default=40.0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--no-id-embedding", action="store_true")
    p.add_argument("--item-loss", type=float, default=1.0,
                   help="weight of the auxiliary next-item softmax (0: off; also re-ranks)")
    p.add_argument("--eval-every", type=int, default=2)
    p.add_argument("--eval-users", type=int, default=3000)
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--beam", type=int, default=20)
    p.add_argument("--no-test", action="store_true", help="skip the final test evaluation")
    p.set_defaults(func=_cmd_train_recall)

    p = sub.add_parser("eval-recall", help="Recall/NDCG@5/10 of a recall artifact + popularity")
    _common(p)
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

    p = sub.add_parser("train-i2i", help="DeepI2I: skip-gram item vectors with long-tail walks "
                       "and text side information; top-50 similar-items table + HR@10")
    _common(p)
    p.add_argument("--out", default="artifacts/i2i")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--walks", type=int, default=20, help="walks per long-tail item (0: none)")
    p.add_argument("--no-side-info", action="store_true", help="without text embeddings")
    p.set_defaults(func=_cmd_train_i2i)

    p = sub.add_parser("tune-recall", help="choose the decoding weights of a recall artifact "
                       "on the validation split (item-head rerank, beam look-ahead)")
    _common(p)
    p.add_argument("--artifact", default="artifacts/recall")
    p.add_argument("--beam", type=int, default=20)
    p.add_argument("--eval-users", type=int, default=3000)
    p.set_defaults(func=_cmd_tune_recall)


    p = sub.add_parser("eval-coldstart", help="cold-start recall from user profiles on "
                       "MovieLens-100k: profile model vs no-profile model vs popularity")
    _common(p)
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


def add_bench_commands(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser("recall", help="users/s of batched constrained beam search")
    _common(p)
    p.add_argument("--artifact", default="artifacts/recall")
    p.add_argument("--users", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=None,
                   help="users per search call (default: models.beam.SEARCH_CHUNK)")
    p.add_argument("--beam", type=int, default=20)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--exclude", action="store_true", help="exclude each user's history")
    p.add_argument("--int8", action="store_true", help="int8 linear layers, as the worker serves")
    p.set_defaults(func=_cmd_bench_recall)
