"""``sidstream train-tokenizer | train-recall | train-sasrec | train-sidrec | train-ranker |
train-i2i | tune-recall``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from streams.cli.common import add_common, setup_torch
from streams.settings import Settings

log = logging.getLogger(__name__)


def _cmd_train_tokenizer(args: argparse.Namespace) -> int:
    setup_torch(args)
    # lazy: torch and the models load only when the command runs
    from models.data.dataset import load_dataset
    from models.i2i.collab import collaborative_embeddings
    from models.sid.rqvae import RQVAEConfig
    from models.sid.train import TokenizerTrainConfig, run_train_tokenizer, wants_collab

    cfg = TokenizerTrainConfig(rqvae=RQVAEConfig(n_levels=args.levels,
                                                 codebook_size=args.codebook_size),
                               epochs=args.epochs, dup_vocab=args.dup_vocab,
                               embedding=args.embedding, seed=args.seed)
    ds = load_dataset(args.data)
    embed = (lambda: collaborative_embeddings(ds, seed=args.seed)) if wants_collab(
        ds, args.embedding) else None
    path = run_train_tokenizer(ds, Path(args.out), cfg, embed=embed)
    print(path)
    return 0


def _cmd_train_recall(args: argparse.Namespace) -> int:
    setup_torch(args)
    # lazy: torch and the models load only when the command runs
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


def _cmd_train_sasrec(args: argparse.Namespace) -> int:
    setup_torch(args)
    # lazy: torch and the models load only when the command runs
    from models.data.dataset import load_dataset
    from models.recall.sasrec_train import SASRecTrainConfig, run_train_sasrec

    model = {"d_model": args.d_model, "n_layers": args.layers, "n_heads": args.heads,
             "dropout": args.dropout}
    cfg = SASRecTrainConfig(model=model, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, lr_schedule=args.lr_schedule,
                            warmup_epochs=args.warmup_epochs, eval_every=args.eval_every,
                            eval_users=args.eval_users, patience=args.patience, seed=args.seed)
    print(run_train_sasrec(load_dataset(args.data), Path(args.out), cfg, test=not args.no_test))
    return 0


def _cmd_train_sidrec(args: argparse.Namespace) -> int:
    setup_torch(args)
    # lazy: torch and the models load only when the command runs
    from models.data.dataset import load_dataset
    from models.recall.sidrec_train import SIDRecTrainConfig, run_train_sidrec

    model = {"d_model": args.d_model, "n_layers": args.layers, "n_heads": args.heads,
             "dropout": args.dropout, "id_embedding": not args.no_id_embedding,
             "id_drop": args.id_drop, "drop_neighbors": args.drop_neighbors,
             "sid_weight": args.sid_weight,
             "sid_detach": not args.sid_shapes_encoder, "sid_distill": args.sid_distill}
    cfg = SIDRecTrainConfig(model=model, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, lr_schedule=args.lr_schedule,
                            warmup_epochs=args.warmup_epochs, eval_every=args.eval_every,
                            eval_users=args.eval_users, patience=args.patience, beam=args.beam,
                            cold_items=args.cold_items, holdout_events=args.holdout_events,
                            content=args.content == "on", ema_epochs=args.ema_epochs,
                            seed=args.seed)
    print(run_train_sidrec(load_dataset(args.data), Path(args.tokenizer), Path(args.out), cfg,
                           test=not args.no_test))
    return 0


def _cmd_train_ranker(args: argparse.Namespace) -> int:
    # lazy: torch and the models load only when the command runs
    from export.ranker_job import TrainJob, run_train_job
    from models.rank.data import DataConfig
    from models.rank.train import TrainConfig

    model = {k: v for k, v in (("d", args.d), ("hidden", args.hidden)) if v is not None}
    out = Path(args.out) if args.out else Settings.from_env().models.model_dir / "ranker"
    job = TrainJob(dataset=args.dataset, out=out, sid_artifact=args.sid_artifact,
                   label_rule=args.label_rule, threads=args.threads, model=model,
                   data=DataConfig(max_hist=args.max_hist), holdout_events=args.holdout_events)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      max_minutes=args.max_minutes, eval_users=args.eval_users, seed=args.seed)
    run_train_job(job, cfg)
    return 0


def _cmd_train_i2i(args: argparse.Namespace) -> int:
    setup_torch(args)
    # lazy: torch and the models load only when the command runs
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
    setup_torch(args)
    # lazy: torch and the models load only when the command runs
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


def _add_item_level_args(p: argparse.ArgumentParser) -> None:
    """Size and optimiser of the item-level models (SASRec baseline, SIDRec), same defaults."""
    p.add_argument("--epochs", type=int, default=200, help="at most (early stopping)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                   help="cosine: decay to zero over --epochs (then --epochs is the budget)")
    p.add_argument("--warmup-epochs", type=float, default=0.0,
                   help="linear warm-up before the cosine decay")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.5)


def _add_stopping_args(p: argparse.ArgumentParser) -> None:
    """Their stopping rule: validation every N epochs, stop after ``patience`` without gain."""
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--eval-users", type=int, default=0, help="validation sample (0: all)")
    p.add_argument("--patience", type=int, default=4)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-tokenizer", help="item embeddings -> RQ-VAE -> semantic IDs")
    add_common(p)
    p.add_argument("--out", default="artifacts/tokenizer")
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--codebook-size", type=int, default=256)
    p.add_argument("--dup-vocab", type=int, default=64, help="cap of the collision token")
    p.add_argument("--embedding", choices=("auto", "text", "collab"), default="auto",
                   help="item vectors to quantize: text (MiniLM), collab (item2vec over the "
                        "training sequences), auto: text when any item has text")
    p.set_defaults(func=_cmd_train_tokenizer)

    p = sub.add_parser("train-recall", help="train the generative recall model (+ test eval)")
    add_common(p)
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

    p = sub.add_parser("train-sasrec", help="the SASRec full-softmax baseline (item ids, no SIDs)"
                       " in the recall harness: fixed epochs, early stop on validation")
    add_common(p)
    p.add_argument("--out", default="artifacts/sasrec")
    _add_item_level_args(p)
    _add_stopping_args(p)
    p.add_argument("--no-test", action="store_true", help="skip the final test evaluation")
    p.set_defaults(func=_cmd_train_sasrec)

    p = sub.add_parser("train-sidrec", help="SIDRec: item-level transformer over semantic-ID "
                       "item embeddings, SID beam + item head (+ test ablation, cold items)")
    add_common(p)
    p.add_argument("--tokenizer", default="artifacts/tokenizer", help="artifact or its root")
    p.add_argument("--out", default="artifacts/sidrec")
    _add_item_level_args(p)
    p.add_argument("--no-id-embedding", action="store_true", help="items by their codes only")
    p.add_argument("--id-drop", type=float, default=0.1,
                   help="share of items trained without their id part (as cold items serve)")
    p.add_argument("--drop-neighbors", type=int, default=0,
                   help="an id-dropped item in training gets the mean id part of its K nearest "
                        "warm items by vector, as new items can be served (0: none)")
    p.add_argument("--sid-weight", type=float, default=1.0, help="weight of the SID head's loss")
    p.add_argument("--sid-shapes-encoder", action="store_true",
                   help="let the SID head's loss train the encoder too (default: it only reads "
                        "the encoder's states)")
    p.add_argument("--sid-distill", type=int, default=0, metavar="K",
                   help="the SID head also learns the item head's K best items at each "
                        "position, weighted by its softmax over them (0: off)")
    _add_stopping_args(p)
    p.add_argument("--beam", type=int, default=20)
    p.add_argument("--cold-items", type=float, default=0.0,
                   help="share of items held out of training, added back through the catalogue "
                        "path for the cold-item evaluation")
    p.add_argument("--content", choices=("on", "off"), default="on",
                   help="embed items by the tokenizer's vectors (text or item2vec) too, beside "
                        "their codes")
    p.add_argument("--ema-epochs", type=float, default=0.0,
                   help="evaluate and keep a moving average of the weights over about this "
                        "many epochs of steps (0: off)")
    p.add_argument("--holdout-events", type=int, default=0,
                   help="train on the data before its last N interactions in replay order, so "
                        "that `sidstream promote --events N` judges it out of sample")
    p.add_argument("--no-test", action="store_true", help="skip the final test evaluation")
    p.set_defaults(func=_cmd_train_sidrec)
    p = sub.add_parser("train-ranker", help="train the CTR/CVR ranker, export ONNX, save artifact")
    p.add_argument("dataset", help="'movielens' or a shared-format directory")
    p.add_argument("--out", default=None,
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
    p.add_argument("--holdout-events", type=int, default=0,
                   help="train on the data before its last N interactions in replay order, so "
                        "that `sidstream promote --events N` judges it out of sample")
    p.set_defaults(func=_cmd_train_ranker)

    p = sub.add_parser("train-i2i", help="DeepI2I: skip-gram item vectors with long-tail walks "
                       "and text side information; top-50 similar-items table + HR@10")
    add_common(p)
    p.add_argument("--out", default="artifacts/i2i")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--walks", type=int, default=20, help="walks per long-tail item (0: none)")
    p.add_argument("--no-side-info", action="store_true", help="without text embeddings")
    p.set_defaults(func=_cmd_train_i2i)

    p = sub.add_parser("tune-recall", help="choose the decoding weights of a recall artifact "
                       "on the validation split (item-head rerank, beam look-ahead)")
    add_common(p)
    p.add_argument("--artifact", default="artifacts/recall")
    p.add_argument("--beam", type=int, default=20)
    p.add_argument("--eval-users", type=int, default=3000)
    p.set_defaults(func=_cmd_tune_recall)
