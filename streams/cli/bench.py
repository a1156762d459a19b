"""``sidstream bench stream | state | recall | rank | rank-cuda``: benchmarks that print (and save)
figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streams.cli.common import BEAUTY, add_common, setup_torch


def _cmd_bench_stream(args: argparse.Namespace) -> int:
    # lazy: the stack, faust and torch load only when the command runs
    from streams.jobs.bench_stream import StreamBenchConfig, run_bench_stream

    beams = tuple(int(b) for b in args.beams.split(","))
    run_bench_stream(StreamBenchConfig(
        data=args.data, model_dir=Path(args.model_dir), warm_events=args.warm_events,
        events=args.events, rates=tuple(float(r) for r in args.rates.split(",")),
        rate_seconds=args.rate_seconds, beams=beams,
        threads=args.threads, third_rate=not args.no_third_rate,
        json=Path(args.json) if args.json else None))
    return 0


def _cmd_bench_state(args: argparse.Namespace) -> int:
    # lazy: the stack, faust and the kafka clients load only when the command runs
    from streams.jobs.bench_state import StateBenchConfig, run_bench_state

    run_bench_state(StateBenchConfig(
        users=tuple(int(u) for u in args.users.split(",")),
        stores=tuple(s.strip() for s in args.stores.split(",")), events=args.events,
        items=args.items, data=args.data, session_timeout_s=args.session_timeout,
        wiped_restart=not args.no_wiped_restart, static_membership=args.static_membership,
        state_memory_mb=args.state_memory_mb, seed=args.seed,
        json=Path(args.json) if args.json else None))
    return 0


def _cmd_bench_recall(args: argparse.Namespace) -> int:
    setup_torch(args)
    # lazy: torch and the models load only when the command runs
    from models.recall.beam import SEARCH_CHUNK
    from models.recall.bench import bench_recall

    if args.synthetic_items:
        return _cmd_bench_scale(args)
    res = bench_recall(args.artifact, args.data, users=args.users,
                       batch_size=args.batch_size or SEARCH_CHUNK, beam=args.beam, k=args.k,
                       exclude=args.exclude, int8=args.int8)
    print(json.dumps(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


def _cmd_bench_scale(args: argparse.Namespace) -> int:
    # lazy: torch and the models load only when the command runs
    from models.recall.sidrec_scale import bench_scale

    rows = [bench_scale(int(n), users=args.users, beam=args.beam, seed=args.seed)
            for n in args.synthetic_items.split(",")]
    print(f"{'items':>9} {'beam u/s':>9} {'item u/s':>9} {'hybrid u/s':>10} {'trie MB':>8} "
          f"{'item table MB':>13}")
    for r in rows:
        print(f"{r['items']:>9} {r['beam_users_per_s']:>9.0f} {r['item_users_per_s']:>9.0f} "
              f"{r['hybrid_users_per_s']:>10.0f} {r['trie_mb']:>8.1f} {r['item_table_mb']:>13.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2))
    return 0


def _cmd_bench_rank_cuda(args: argparse.Namespace) -> int:
    # lazy: torch and onnxruntime load only when the command runs
    from export.cuda_check import CudaCheckConfig, CudaUnavailable, format_rows, run_cuda_check

    cfg = CudaCheckConfig(sizes=tuple(int(s) for s in args.sizes.split(",")),
                          seconds=args.seconds, tolerance=args.tolerance, artifact=args.artifact)
    try:
        result = run_cuda_check(cfg)
    except CudaUnavailable as exc:
        print(f"no CUDA check: {exc}")
        return 2
    print(format_rows(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if result["parity_ok"] else 1


def _cmd_bench_rank(args: argparse.Namespace) -> int:
    # lazy: torch and onnxruntime load only when the command runs
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


def add_commands(bench_sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--no-third-rate", action="store_true",
                   help="skip the freshness case at 1/3 of the full pipeline's throughput")
    p.add_argument("--json", default=None, help="also write the results to this file")
    p.set_defaults(func=_cmd_bench_stream)

    _add_state(bench_sub)

    p = bench_sub.add_parser("recall", help="users/s of batched constrained beam search")
    add_common(p)
    p.add_argument("--artifact", default="artifacts/recall")
    p.add_argument("--users", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=None,
                   help="users per search call (default: models.recall.beam.SEARCH_CHUNK)")
    p.add_argument("--beam", type=int, default=20)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--exclude", action="store_true", help="exclude each user's history")
    p.add_argument("--int8", action="store_true", help="int8 linear layers, as the worker serves")
    p.add_argument("--synthetic-items", default=None, metavar="N,N,...",
                   help="instead: SIDRec's users/s per decoding mode and memory on synthetic "
                        "catalogues of these sizes (random SIDs and weights: speed only), e.g. "
                        "10000,100000,1000000")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.set_defaults(func=_cmd_bench_recall)

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

    p = bench_sub.add_parser("rank-cuda", help="ranker on CUDA vs CPU (a GPU host with "
                             "'sidstream[gpu]'): score parity and candidates/s; exit 2 "
                             "without a usable CUDA device")
    p.add_argument("--artifact", default=None,
                   help="ranker artifact; default: a freshly initialised default-config model")
    p.add_argument("--sizes", default="100,1000,10000", help="candidates per call, comma-separated")
    p.add_argument("--seconds", type=float, default=2.0, help="timed per session and size")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest score difference")
    p.add_argument("--json", default=None, help="also write the result to this JSON file")
    p.set_defaults(func=_cmd_bench_rank_cuda)


def _add_state(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser("state", help="user-state table per store and number of users: "
                             "RSS, bytes per user, events/s, recovery after SIGKILL")
    p.add_argument("--users", default="100000,1000000", help="numbers of users, comma-separated")
    p.add_argument("--stores", default="memory,rocksdb", help="stores, comma-separated")
    p.add_argument("--events", type=int, default=30_000,
                   help="clicks of existing users pushed through each case's worker")
    p.add_argument("--items", type=int, default=100_000, help="catalogue size of the histories")
    p.add_argument("--data", default=BEAUTY, help="data set whose sequences give the history "
                   "lengths")
    p.add_argument("--session-timeout", type=float, default=10.0,
                   help="the worker's SIDSTREAM_SESSION_TIMEOUT_S (after a SIGKILL the group "
                   "join waits for it)")
    p.add_argument("--static-membership", action="store_true",
                   help="the worker joins as a static group member (SIDSTREAM_GROUP_INSTANCE_ID):"
                   " a restart takes its partitions back without waiting for the session timeout")
    p.add_argument("--no-wiped-restart", action="store_true",
                   help="rocksdb: skip the restart on a wiped data dir")
    p.add_argument("--state-memory-mb", type=int, default=256,
                   help="the worker's SIDSTREAM_STATE_MEMORY_MB: the rocksdb store's memory "
                   "budget, all partitions together")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the raw figures to this JSON file")
    p.set_defaults(func=_cmd_bench_state)
