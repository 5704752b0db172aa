"""The report of a run directory: ``results.json``, ``episodes.csv``, ``report.md`` and the plots.

Per cell (model x world x condition): success with a Wilson 95 % interval, outcome counts and the other metrics
aggregated. Path lengths are compared with the expert's on the same seed: ``path_ratio`` (flown / expert's,
both successful) and SPL (success weighted by expert length / max(flown, expert's); Anderson et al. 2018).
Between every two models on every cell: the exact McNemar test on the paired outcomes, with Holm-adjusted
p-values over all those tests, plus one test pooled over all cells of the pair.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
from itertools import combinations
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from liquid_nav.evaluate.conditions import NOMINAL, condition_label
from liquid_nav.evaluate.experiment import REFERENCE, ExperimentConfig, world_label
from liquid_nav.evaluate.rundir import load_run
from liquid_nav.evaluate.stats import holm_adjusted, mcnemar_exact, wilson_interval
from liquid_nav.files import atomic_write_text
from liquid_nav.sim.env import OUTCOMES

RESULTS_FORMAT = "liquid_nav.evaluation_results"
CSV_EXCLUDED = ("trajectory_xy", "target_xy")
MEAN_METRICS = ("duration_s", "start_distance_m", "final_distance_m", "min_clearance_m", "command_jerk",
                "frames_seen", "frame_interval_ms", "latency_ms_mean", "latency_ms_p95")
CellKey = Tuple[str, str, str]  # model, world, condition label


def _mean(values: Iterable[Optional[float]]) -> Optional[float]:
    present = [value for value in values if value is not None]
    return statistics.fmean(present) if present else None


def with_reference(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rows with ``path_ratio`` and ``spl`` against the expert's episode on the same world, condition and seed."""
    reference = {(row["world"], condition_label(row["condition"], row["strength"]), row["seed"]): row
                 for row in rows if row["model"] == REFERENCE}
    joined = []
    for row in rows:
        expert = reference.get((row["world"], condition_label(row["condition"], row["strength"]), row["seed"]))
        ratio = spl = None
        if expert is not None and expert["success"] and expert["path_length_m"] > 0:
            shortest = expert["path_length_m"]
            spl = float(row["success"]) * shortest / max(row["path_length_m"], shortest)
            ratio = row["path_length_m"] / shortest if row["success"] else None
        joined.append({**row, "path_ratio": ratio, "spl": spl})
    return joined


def cell_summary(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Success, its Wilson interval, outcome counts and the mean (median for path_ratio) of each metric."""
    successes = sum(bool(row["success"]) for row in rows)
    low, high = wilson_interval(successes, len(rows))
    ratios = [row["path_ratio"] for row in rows if row["path_ratio"] is not None]
    summary = {"episodes": len(rows), "successes": successes, "success_rate": successes / len(rows),
               "wilson_low": low, "wilson_high": high,
               "outcomes": {outcome: sum(row["outcome"] == outcome for row in rows) for outcome in OUTCOMES},
               "time_to_target_s": _mean(row["time_to_target_s"] for row in rows),
               "spl": _mean(row["spl"] for row in rows),
               "path_ratio_median": statistics.median(ratios) if ratios else None}
    summary.update({name: _mean(row[name] for row in rows) for name in MEAN_METRICS})
    return summary


def build_results(experiment: ExperimentConfig, rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The content of ``results.json`` (see docs/evaluation.md for the schema)."""
    rows = with_reference(rows)
    by_cell: Dict[CellKey, List[Dict[str, Any]]] = {}
    for row in rows:
        by_cell.setdefault((row["model"], row["world"], condition_label(row["condition"], row["strength"])),
                           []).append(row)
    labels = [model.label for model in experiment.models]
    cells = []
    for world in experiment.worlds:
        world_name = world_label(world)
        for condition in experiment.all_conditions():
            for model in labels:
                cell_rows = by_cell.get((model, world_name, condition.label))
                if cell_rows:
                    cells.append({"model": model, "world": world_name, "condition": condition.name,
                                  "strength": condition.strength, "label": condition.label,
                                  **cell_summary(cell_rows)})
    return {"format": RESULTS_FORMAT, "format_version": 1, "experiment": experiment.to_dict(),
            "cells": cells, "comparisons": _comparisons(labels, by_cell), "episodes": len(rows)}


def _comparisons(labels: List[str], by_cell: Dict[CellKey, List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """Exact McNemar per cell for every pair of models (Holm-adjusted over all), then pooled per pair."""
    per_cell: List[Dict[str, Any]] = []
    pooled: Dict[Tuple[str, str], List[int]] = {}
    cells = sorted({(world, label) for _, world, label in by_cell}, key=str)
    for model_a, model_b in combinations(labels, 2):
        totals = pooled.setdefault((model_a, model_b), [0, 0, 0, 0])
        for world, label in cells:
            a = {row["seed"]: bool(row["success"]) for row in by_cell.get((model_a, world, label), [])}
            b = {row["seed"]: bool(row["success"]) for row in by_cell.get((model_b, world, label), [])}
            seeds = sorted(a.keys() & b.keys())
            if not seeds:
                continue
            counts = [sum(a[s] and not b[s] for s in seeds), sum(b[s] and not a[s] for s in seeds),
                      sum(a[s] and b[s] for s in seeds), sum(not (a[s] or b[s]) for s in seeds)]
            totals[:] = [total + count for total, count in zip(totals, counts)]
            per_cell.append(_comparison(model_a, model_b, world, label, counts))
    for index, adjusted in enumerate(holm_adjusted([item["p_value"] for item in per_cell])):
        per_cell[index]["p_holm"] = adjusted
    overall = [_comparison(a, b, "all", "all", counts) for (a, b), counts in pooled.items() if sum(counts)]
    return per_cell + overall


def _comparison(model_a: str, model_b: str, world: str, label: str, counts: List[int]) -> Dict[str, Any]:
    only_a, only_b, both, neither = counts
    p_value = mcnemar_exact(only_a, only_b)
    better = None if p_value >= 0.05 else model_a if only_a > only_b else model_b
    return {"model_a": model_a, "model_b": model_b, "world": world, "condition": label,
            "pairs": sum(counts), "only_a": only_a, "only_b": only_b, "both": both, "neither": neither,
            "p_value": p_value, "better_at_5pct": better}


def episodes_csv(rows: List[Dict[str, Any]]) -> str:
    joined = with_reference(rows)
    columns = [name for name in joined[0] if name not in CSV_EXCLUDED] if joined else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(joined)
    return buffer.getvalue()


def _percent(cell: Optional[Dict[str, Any]], interval: bool = True) -> str:
    if cell is None:
        return "-"
    text = f"{100 * cell['success_rate']:.0f} %"
    return f"{text} [{100 * cell['wilson_low']:.0f}-{100 * cell['wilson_high']:.0f}]" if interval else text


def _number(value: Optional[float], digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report_markdown(results: Dict[str, Any], plots: List[str], media: Dict[str, List[str]]) -> str:
    """``report.md``: the models x worlds table, the condition tables, the paired tests and the pictures."""
    experiment = results["experiment"]
    cells = {(cell["model"], cell["world"], cell["label"]): cell for cell in results["cells"]}
    models = [model["label"] for model in experiment["models"]]
    worlds = list(dict.fromkeys(cell["world"] for cell in results["cells"]))
    lines = [f"# Evaluation: {experiment['name']}", "",
             f"{results['episodes']} episodes; {experiment['episodes']} seeds per cell from {experiment['first_seed']} "
             f"(the same seeds for every model: paired); backend {experiment['backend']}, camera "
             f"{experiment['camera']}, at most {experiment['max_episode_seconds']:g} s per episode. Success rates "
             f"with Wilson 95 % intervals in brackets.", "", "## Nominal: models x worlds", "",
             "| model | " + " | ".join(worlds) + " |", "|---|" + "---|" * len(worlds)]
    for model in models:
        lines.append(f"| {model} | " + " | ".join(_percent(cells.get((model, world, NOMINAL.label)))
                                                   for world in worlds) + " |")
    lines += ["", "| model | world | episodes | success | collision | timeout | out of bounds | SPL | path / expert "
              "| time to target (s) | min clearance (m) | jerk (m/s^3) | latency (ms, mean / p95) | frames |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for model in models:
        for world in worlds:
            cell = cells.get((model, world, NOMINAL.label))
            if cell is None:
                continue
            outcomes = cell["outcomes"]
            lines.append(f"| {model} | {world} | {cell['episodes']} | {_percent(cell)} | {outcomes['collision']} | "
                         f"{outcomes['timeout']} | {outcomes['out_of_bounds']} | {_number(cell['spl'])} | "
                         f"{_number(cell['path_ratio_median'])} | {_number(cell['time_to_target_s'], 1)} | "
                         f"{_number(cell['min_clearance_m'])} | {_number(cell['command_jerk'], 1)} | "
                         f"{_number(cell['latency_ms_mean'])} / {_number(cell['latency_ms_p95'])} | "
                         f"{_number(cell['frames_seen'], 0)} |")
    lines += _condition_tables(results, models, worlds, cells)
    lines += _comparison_table(results)
    lines += ["", "## Plots", ""] + [f"![{Path(plot).stem}]({plot})" for plot in plots]
    for title, files in (("Videos", media.get("videos", [])), ("Saliency (VisualBackProp)", media.get("saliency", [])),
                         ("MCAP bags (Foxglove)", media.get("bags", []))):
        if files:
            lines += ["", f"## {title}", ""]
            lines += [f"![{Path(name).stem}]({name})" if name.endswith(".png") else f"- [{name}]({name})"
                      for name in files]
    for note in media.get("notes", []):
        lines += ["", f"> {note}"]
    return "\n".join(lines) + "\n"


def _condition_tables(results: Dict[str, Any], models: List[str], worlds: List[str],
                      cells: Dict[Tuple[str, str, str], Dict[str, Any]]) -> List[str]:
    lines: List[str] = []
    conditions = list(dict.fromkeys((cell["condition"], cell["label"]) for cell in results["cells"]
                                    if cell["condition"] != NOMINAL.name))
    for name in dict.fromkeys(name for name, _ in conditions):
        labels = [NOMINAL.label] + [label for condition, label in conditions if condition == name]
        lines += ["", f"## Condition: {name}", "", "| model | world | " + " | ".join(labels) + " |",
                  "|---|---|" + "---|" * len(labels)]
        for model in models:
            for world in worlds:
                lines.append(f"| {model} | {world} | " + " | ".join(
                    _percent(cells.get((model, world, label)), interval=False) for label in labels) + " |")
    return lines


def _comparison_table(results: Dict[str, Any]) -> List[str]:
    rows = [item for item in results["comparisons"] if item["condition"] in (NOMINAL.label, "all")]
    if not rows:
        return []
    lines = ["", "## Paired comparisons (exact McNemar)", "",
             "Discordant seeds: *only A* = A reached the target and B did not. *p (Holm)* is adjusted over every "
             "per-cell test in results.json; the pooled rows (world *all*) pool every cell of the pair.", "",
             "| A | B | world | condition | pairs | only A | only B | p | p (Holm) | better (5 %) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for item in rows:
        holm = _number(item.get("p_holm"), 4)
        lines.append(f"| {item['model_a']} | {item['model_b']} | {item['world']} | {item['condition']} | "
                     f"{item['pairs']} | {item['only_a']} | {item['only_b']} | {item['p_value']:.4f} | {holm} | "
                     f"{item['better_at_5pct'] or '-'} |")
    return lines


def write_report(run_dir: Path) -> Path:
    """Write results.json, episodes.csv, report.md and plots/ for ``run_dir``; returns report.md's path."""
    from liquid_nav.evaluate.plots import write_plots
    from liquid_nav.evaluate.samples import media_files

    run_dir = Path(run_dir)
    experiment, rows = load_run(run_dir)
    results = build_results(experiment, rows)
    atomic_write_text(run_dir / "results.json", json.dumps(results, indent=1, allow_nan=False))
    atomic_write_text(run_dir / "episodes.csv", episodes_csv(rows))
    plots = write_plots(run_dir, experiment, results, with_reference(rows))
    report = run_dir / "report.md"
    atomic_write_text(report, report_markdown(results, plots, media_files(run_dir)))
    return report
