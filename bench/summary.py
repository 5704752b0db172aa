"""Print the rows the benchmarks recorded (``bench/table.py``) as one table: figure, value, ratio to its anchor.

    LIQUID_NAV_BENCH_TABLE=out/bench/table.jsonl python bench/summary.py   (make bench does this)
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from table import TABLE_ENV


def main() -> int:
    path = Path(os.environ.get(TABLE_ENV, "out/bench/table.jsonl"))
    if not path.is_file():
        print(f"error: {path}: no benchmark rows recorded (run make bench)", file=sys.stderr)
        return 1
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"\n== liquid_nav benchmarks: {len(rows)} figures (anchors and baselines measured as described in bench/*.py) ==")
    print(f"{'bench':8s} {'figure':52s} {'value':>12s} {'unit':10s} {'ratio':>7s}  {'vs':28s} {'goal':16s} status")
    for row in rows:
        reference = row["reference"]
        ratio = f"{row['value'] / reference:6.2f}x" if reference else ""
        status = {True: "met", False: "MISSED", None: ""}[row["met"]]
        print(f"{row['bench']:8s} {row['figure'][:52]:52s} {row['value']:12.4g} {row['unit'][:10]:10s} {ratio:>7s}  "
              f"{row['reference_name'][:28]:28s} {row['goal'][:16]:16s} {status}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
