"""Run an experiment into a run directory (``liquid_nav.evaluate.rundir``): every episode through the executor
layer (in this process, a local process pool or Ray), appended as it finishes, so that re-running the same
command skips what is done; then the sample media and the report."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, Optional

from liquid_nav.evaluate.episodes import fly_task, start_worker, stop_worker
from liquid_nav.evaluate.experiment import ExperimentConfig
from liquid_nav.evaluate.report import write_report
from liquid_nav.evaluate.rundir import EPISODES_FILE, EpisodeLog, prepare_run_directory, row_key
from liquid_nav.evaluate.samples import write_samples
from liquid_nav.executor import map_unordered


def evaluate(experiment: ExperimentConfig, out: Path, workers: Optional[int] = 1, executor: str = "local",
             ray_address: Optional[str] = None, progress: bool = True, media: bool = True) -> Path:
    """Fly every episode of ``experiment`` not yet in ``out``, then write samples and the report; returns
    the report's path."""
    fly_episodes(experiment, out, workers, executor, ray_address, progress)
    if media:
        write_samples(Path(out))
    return write_report(Path(out))


def fly_episodes(experiment: ExperimentConfig, out: Path, workers: Optional[int] = 1, executor: str = "local",
                 ray_address: Optional[str] = None, progress: bool = True) -> int:
    """Fly the episodes of ``experiment`` that ``out`` does not hold yet, appending each as it finishes;
    returns how many were flown."""
    out = Path(out)
    prepare_run_directory(out, experiment)
    log = EpisodeLog(out / EPISODES_FILE)
    done = {row_key(row) for row in log.rows()}
    tasks = experiment.tasks()
    todo = [task for task in tasks if task.key not in done]
    results = map_unordered(fly_task, todo, workers, start_worker, (experiment,), executor, ray_address,
                            finalizer=stop_worker)
    _record(results, log, total=len(tasks), done=len(tasks) - len(todo), progress=progress,
            label=f"evaluate {experiment.name}")
    return len(todo)


def _record(results: Iterable[Dict[str, Any]], log: EpisodeLog, total: int, done: int, progress: bool,
            label: str) -> None:
    from tqdm import tqdm

    successes = flown = 0
    with tqdm(total=total, initial=done, desc=label, unit="episode", disable=not progress, smoothing=0.05) as bar:
        for row in results:
            log.append(row)
            flown += 1
            successes += bool(row["success"])
            bar.update(1)
            bar.set_postfix(success=f"{successes}/{flown}", last=f"{row['model']} {row['outcome']}")
