"""The run directory of an evaluation: its files, the append-only episode log and loading it back.

Run directory::

    run.json          the experiment and the settings its episodes depend on (model / world SHA-256s)
    episodes.jsonl    one JSON object per finished episode (liquid_nav.evaluate.episodes.episode_row)
    results.json, episodes.csv, report.md, plots/   (liquid_nav.evaluate.report)
    videos/, saliency/, samples/ (episode store), bags/ (MCAP)   (liquid_nav.evaluate.samples)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

from liquid_nav.evaluate.conditions import condition_label
from liquid_nav.evaluate.experiment import (ExperimentConfig, ExperimentError, experiment_from_dict, merged_settings,
                                            settings_difference)
from liquid_nav.files import atomic_write_text

RUN_FILE = "run.json"
EPISODES_FILE = "episodes.jsonl"
RUN_FORMAT = "liquid_nav.evaluation"
RUN_FORMAT_VERSION = 1

RowKey = Tuple[str, str, str, int]


def row_key(row: Dict[str, Any]) -> RowKey:
    """The task key (model, world, condition label, seed) of a result row."""
    return row["model"], row["world"], condition_label(row["condition"], row["strength"]), int(row["seed"])


class EpisodeLog:
    """The append-only per-episode results of a run (JSON lines). A line cut short by a killed run is dropped
    when the log is opened, so appending always continues on a whole line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_file():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(self.path, "r+b") as stream:
                    stream.truncate(data.rfind(b"\n") + 1)

    def rows(self) -> List[Dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def append(self, row: Dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(row, allow_nan=False) + "\n")
            stream.flush()
            os.fsync(stream.fileno())


def prepare_run_directory(out: Path, experiment: ExperimentConfig) -> None:
    """Create ``out`` or check that its episodes were flown with the same settings; write ``run.json``."""
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / RUN_FILE
    settings = experiment.settings()
    if run_file.is_file():
        stored = json.loads(run_file.read_text(encoding="utf-8"))
        difference = settings_difference(stored["settings"], settings)
        if difference:
            raise ExperimentError(f"{out} holds episodes flown with other settings ({difference}); "
                                  f"evaluate into a new --out directory")
        settings = merged_settings(stored["settings"], settings)
    atomic_write_text(run_file, json.dumps({"format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION,
                                            "experiment": experiment.to_dict(), "settings": settings}, indent=1))


def load_run(run_dir: Path) -> Tuple[ExperimentConfig, List[Dict[str, Any]]]:
    """The experiment of a run directory and its finished episodes (latest row per task, in task order)."""
    run_file = Path(run_dir) / RUN_FILE
    if not run_file.is_file():
        raise ExperimentError(f"{run_dir} is not an evaluation run directory (no {RUN_FILE})")
    data = json.loads(run_file.read_text(encoding="utf-8"))
    if data.get("format") != RUN_FORMAT or data.get("format_version") != RUN_FORMAT_VERSION:
        raise ExperimentError(f"{run_file}: not a {RUN_FORMAT} v{RUN_FORMAT_VERSION} file")
    experiment = experiment_from_dict(data["experiment"])
    rows = {row_key(row): row for row in EpisodeLog(Path(run_dir) / EPISODES_FILE).rows()}
    return experiment, [rows[task.key] for task in experiment.tasks() if task.key in rows]
