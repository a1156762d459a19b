"""Profile the worker of `sidstream bench stream`'s ``limit`` case (no models) with py-spy.

One-off measurement script kept beside its result (``profile-limit-2026-12-06.json``, the
collapsed stacks in ``profile-limit-2026-12-06.collapsed.gz``): the case runs as the bench runs
it (fresh embedded Tansu + Redis, one worker, the warm-up, then the measured events), and py-spy
records the worker's GIL-holding thread while the measured events go through.

    .venv/bin/pip install py-spy
    .venv/bin/python benchmarks/profile_limit.py --out /tmp/limit.collapsed

Needs only the data set (no model artifacts: the case runs without models).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from models.data.dataset import load_dataset
from streams.channels.seed import SEED_FILE
from streams.jobs import bench_stream
from streams.jobs.replay import interactions
from streams.jobs.seed import build_seed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm-events", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--seconds", type=int, default=20, help="py-spy's recording time")
    ap.add_argument("--out", required=True, help="py-spy's collapsed stacks (raw format)")
    args = ap.parse_args()
    cfg = bench_stream.StreamBenchConfig(warm_events=args.warm_events, events=args.events)
    ds = load_dataset(cfg.data)
    work = Path(tempfile.mkdtemp(prefix="profile-limit-"))
    (work / "models").mkdir()
    build_seed(cfg.data, str(work / "models" / SEED_FILE))
    measure = bench_stream._measure
    py_spy = shutil.which("py-spy") or str(Path(__file__).parents[1] / ".venv/bin/py-spy")

    def profiled(case: Any, settings: Any, ds_: Any, todo: list[Any], worker: Any) -> Any:
        spy = subprocess.Popen([py_spy, "record", "-p", str(worker.proc.pid), "-o", args.out,
                                "-f", "raw", "-r", "100", "-d", str(args.seconds), "--gil",
                                "--nonblocking"])
        time.sleep(1)  # py-spy attached before the measured events are produced
        try:
            return measure(case, settings, ds_, todo, worker)
        finally:
            spy.wait()

    bench_stream._measure = profiled  # the bench's own case, with py-spy attached
    res = bench_stream._run_case(bench_stream.Case("limit", {"SIDSTREAM_MODELS": "false"}), cfg,
                                 ds, interactions(ds), args.events, work / "models",
                                 work / "limit")
    print(json.dumps(bench_stream.asdict(res), indent=1))


if __name__ == "__main__":
    main()
