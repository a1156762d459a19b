"""The ``sidstream`` command line: one entry point, a sub-command per job.

Stream commands live here; model and export commands register themselves through
``streams.cli.models_cmds.add_commands`` and ``streams.cli.export_cmds.add_commands`` /
``add_bench_commands`` so that
this module stays light: nothing heavy (torch, faust) is imported until a command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


def _cmd_up(args: argparse.Namespace) -> int:
    from infra.embedded import run_up

    return run_up()


def _cmd_worker(args: argparse.Namespace) -> int:
    from streams.runtime.worker import run_worker

    return run_worker(loglevel=args.loglevel)


def _cmd_replay(args: argparse.Namespace) -> int:
    from streams.jobs.replay import ReplayConfig, run_replay

    cfg = ReplayConfig(dataset=args.dataset, rate=args.rate, limit=args.limit,
                       items=not args.no_items, seed=args.seed)
    run_replay(cfg)
    return 0


def _cmd_recs(args: argparse.Namespace) -> int:
    from streams.jobs.recs import print_recs

    return print_recs(args.user_id, as_json=args.json)


def _cmd_demo(args: argparse.Namespace) -> int:
    from streams.jobs.demo import DemoConfig, run_demo

    return run_demo(DemoConfig(limit=args.limit, rate=args.rate, users=args.users,
                               models=not args.no_models))


def _cmd_seed(args: argparse.Namespace) -> int:
    from streams.jobs.seed import build_seed

    build_seed(args.dataset, args.out)
    return 0


def _cmd_chaos(args: argparse.Namespace) -> int:
    from streams.jobs.chaos_run import run_chaos
    from streams.jobs.chaos_scenarios import ChaosConfig

    cfg = ChaosConfig(events=args.events, rate=args.rate, kills=args.kills,
                      outage_s=args.outage_s, seed=args.seed)
    return run_chaos(args.scenarios, cfg)


def _cmd_promote(args: argparse.Namespace) -> int:
    from pathlib import Path

    from streams.jobs.promote import PromoteConfig, run_promote

    doc = run_promote(PromoteConfig(Path(args.challenger), data=args.data, events=args.events,
                                    k=args.k, dry_run=args.dry_run))
    for arm in ("champion", "challenger"):
        if arm in doc:
            r = doc[arm]
            print(f"{arm:<10} {r['version']}: click rate@{doc['k']} {r['click_rate']:.4f} "
                  f"({r['clicks']} clicks), order rate@{doc['k']} {r['order_rate']:.4f} "
                  f"({r['orders']} orders)")
    print(f"{'PROMOTED' if doc['promoted'] else 'kept the champion'}: {doc['reason']}")
    return 0


def _cmd_bench_stream(args: argparse.Namespace) -> int:
    from pathlib import Path

    from streams.jobs.bench_stream import StreamBenchConfig, run_bench_stream

    beams = tuple(int(b) for b in args.beams.split(","))
    run_bench_stream(StreamBenchConfig(
        data=args.data, model_dir=Path(args.model_dir), warm_events=args.warm_events,
        events=args.events, rates=tuple(float(r) for r in args.rates.split(",")),
        rate_seconds=args.rate_seconds, beams=beams,
        threads=args.threads, json=Path(args.json) if args.json else None))
    return 0


def _add_bench_stream(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser("stream", help="full pipeline vs no-model limit: events/s, "
                             "freshness, CPU, memory, beam widths")
    p.add_argument("--data", default="../shared/data/amazon-beauty-2014")
    p.add_argument("--model-dir", default="artifacts", help="holds recall/ and ranker/")
    p.add_argument("--warm-events", type=int, default=100_000,
                   help="events replayed (without models) before measuring")
    p.add_argument("--events", type=int, default=20_000, help="events per throughput case")
    p.add_argument("--rates", default="300", help="offered events/s of the freshness cases")
    p.add_argument("--rate-seconds", type=float, default=30.0)
    p.add_argument("--beams", default="20,10,5", help="beam widths (the first: freshness case)")
    p.add_argument("--threads", type=int, default=1, help="worker model threads (0: per core)")
    p.add_argument("--json", default=None, help="also write the results to this file")
    p.set_defaults(func=_cmd_bench_stream)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidstream", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("up", help="embedded broker + Redis on loopback (foreground, Ctrl-C stops)"
                   ).set_defaults(func=_cmd_up)
    p = sub.add_parser("worker", help="run the faust worker with the SIDSTREAM_* settings")
    p.add_argument("--loglevel", default="info")
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser("replay", help="replay a data set as events onto sidstream-events")
    p.add_argument("dataset", help="'movielens' or a shared-format directory")
    p.add_argument("--rate", type=float, default=0.0, help="events/s (0: as fast as possible)")
    p.add_argument("--limit", type=int, default=0, help="stop after N events (0: all)")
    p.add_argument("--no-items", action="store_true", help="do not send catalogue upserts first")
    p.add_argument("--seed", type=int, default=0, help="seed for event ids and spread timing")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("recs", help="print a user's recommendation list from Redis")
    p.add_argument("user_id")
    p.add_argument("--json", action="store_true", help="print the raw JSON payload")
    p.set_defaults(func=_cmd_recs)

    p = sub.add_parser("demo", help="embedded stack + worker + MovieLens replay + sample lists")
    p.add_argument("--limit", type=int, default=0, help="events to replay (0: all 100,000)")
    p.add_argument("--rate", type=float, default=0.0, help="events/s (0: as fast as possible)")
    p.add_argument("--users", type=int, default=3, help="users whose lists are printed")
    p.add_argument("--no-models", action="store_true",
                   help="cheap channels only (default: train MovieLens models once into "
                   "artifacts/demo, then serve them)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("promote", help="champion/challenger: promote an artifact version only "
                       "if the order rate rises and the click rate drops by < 10%%")
    p.add_argument("challenger", help="artifact version directory (recall or ranker)")
    p.add_argument("--data", default="movielens", help="'movielens' or a shared-format dir")
    p.add_argument("--events", type=int, default=5000, help="most recent events replayed")
    p.add_argument("-k", type=int, default=10, help="list length the hit rates are taken at")
    p.add_argument("--dry-run", action="store_true", help="report, write nothing")
    p.set_defaults(func=_cmd_promote)

    p = sub.add_parser("seed", help="build the co-visitation/popularity seed from a data set")
    p.add_argument("dataset", help="'movielens' or a shared-format directory")
    p.add_argument("--out", default=None, help="output file (default: $SIDSTREAM_MODEL_DIR/seed)")
    p.set_defaults(func=_cmd_seed)

    p = sub.add_parser("chaos", help="fault-injection scenarios on the embedded stack")
    p.add_argument("scenarios", nargs="*", default=["crash", "scale", "redis", "sigterm"],
                   help="crash, scale, redis, sigterm (default: all)")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--rate", type=float, default=1_000.0, help="offered events/s")
    p.add_argument("--kills", type=int, default=4, help="SIGKILLs in the crash scenario")
    p.add_argument("--outage-s", type=float, default=20.0, help="Redis outage length")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_chaos)

    bench = sub.add_parser("bench", help="benchmarks that print figures")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    _register_optional(sub, bench_sub)
    _add_bench_stream(bench_sub)
    return parser


def _register_optional(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction
                       ) -> None:
    """Model, export and benchmark commands; each module keeps heavy imports in its handlers."""
    from streams.cli import export_cmds as export_cli
    from streams.cli import models_cmds as models_cli

    models_cli.add_commands(sub)
    models_cli.add_bench_commands(bench_sub)
    export_cli.add_commands(sub)
    export_cli.add_bench_commands(bench_sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python is chatty at INFO
    func: Handler = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
