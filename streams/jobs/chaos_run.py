"""``sidstream chaos``: run fault scenarios on the embedded stack and print a result table."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from streams.jobs.chaos_scenarios import SCENARIOS, ChaosConfig


def run_chaos(names: list[str], cfg: ChaosConfig, seeds: tuple[int, ...] | None = None,
              json_path: str | None = None) -> int:
    """Each scenario of ``names`` once per seed (default: ``cfg.seed``); 1 if any failed."""
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; choose from {sorted(SCENARIOS)}")
    rows: list[dict[str, Any]] = []
    for name in names:  # each scenario starts a broker and Redis of its own
        for seed in seeds or (cfg.seed,):
            start = time.monotonic()
            result = SCENARIOS[name](dataclasses.replace(cfg, seed=seed), None)
            rows.append({"name": name, "seed": seed, "seconds": round(time.monotonic() - start),
                         "ok": result.ok, **dataclasses.asdict(result)})
            print(result.line(), f"seed={seed} ({rows[-1]['seconds']} s)", flush=True)
    print("\n| scenario | seed | events | users | lost | duplicated | stale lists | diverged | "
          "failed checks | result | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['seed']} | {r['events']} | {r['users']} | {r['lost']} | "
              f"{r['duplicated']} | {r['stale_lists']} | {r['diverged']} | "
              f"{', '.join(r['failed_checks']) or '-'} | {'PASS' if r['ok'] else 'FAIL'} | "
              f"{r['seconds']} |")
    failed = sum(not r["ok"] for r in rows)
    print(f"chaos: {len(rows) - failed}/{len(rows)} runs passed")
    if json_path:
        Path(json_path).write_text(json.dumps({"config": dataclasses.asdict(cfg), "runs": rows},
                                              indent=2, default=str))
    return 1 if failed else 0
