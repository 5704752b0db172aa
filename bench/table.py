"""One table for ``make bench``: every benchmark records its headline figures here, ``bench/summary.py`` prints them.

A benchmark calls :func:`record` next to the line it prints; with ``LIQUID_NAV_BENCH_TABLE`` set (``make bench``
sets it) each call appends one JSON line to that file, otherwise it does nothing, so every script still runs
on its own.
"""
from __future__ import annotations

import json
import os
from typing import Optional

TABLE_ENV = "LIQUID_NAV_BENCH_TABLE"


def record(bench: str, figure: str, value: float, unit: str = "", reference: Optional[float] = None,
           reference_name: str = "", goal: str = "", met: Optional[bool] = None) -> None:
    """One row: ``value`` (in ``unit``) and its ratio to ``reference`` (an anchor or a baseline of the same run)."""
    path = os.environ.get(TABLE_ENV)
    if not path:
        return
    row = {"bench": bench, "figure": figure, "value": float(value), "unit": unit,
           "reference": None if reference is None else float(reference), "reference_name": reference_name,
           "goal": goal, "met": met}
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(row) + "\n")
