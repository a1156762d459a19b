"""``sidstream chaos``: run fault scenarios on the embedded stack and print a result table."""

from __future__ import annotations

import time

from streams.jobs.chaos_scenarios import SCENARIOS, ChaosConfig


def run_chaos(names: list[str], cfg: ChaosConfig) -> int:
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; choose from {sorted(SCENARIOS)}")
    rows = []
    for name in names:  # each scenario starts a broker and Redis of its own
        start = time.monotonic()
        result = SCENARIOS[name](cfg, None)
        rows.append((result, time.monotonic() - start))
        print(result.line(), f"({rows[-1][1]:.0f} s)", flush=True)
    print("\n| scenario | events | users | lost | duplicated | stale lists | result |")
    print("|---|---|---|---|---|---|---|")
    for r, _ in rows:
        print(f"| {r.scenario} | {r.events} | {r.users} | {r.lost} | {r.duplicated} | "
              f"{r.stale_lists} | {'PASS' if r.ok else 'FAIL'} |")
    failed = sum(not r.ok for r, _ in rows)
    print(f"chaos: {len(rows) - failed}/{len(rows)} scenarios passed")
    return 1 if failed else 0
