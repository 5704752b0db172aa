"""Evaluation benchmark: episodes per minute through the executor layer (1 and 2 local workers, Ray on this
machine) and the split of one control step between physics, rendering, preprocessing and inference.

    PYTHONPATH=. .venv/bin/python bench/evaluate.py [--episodes 12] [--seconds 10]

The workload is the evaluation's own: an untrained cfc_ncp policy on the 72x128 input (the quick preset) behind
ONNX Runtime, the forest world, the default 256x144 camera, episodes of ``--seconds`` (an untrained policy
times out, so every episode is the same length). Throughput is steady state: each worker's first episode
(process start, model export, layout build) is left out, the rest is episodes over the wall time between
the first and the last result. The step split replays one episode's commands with rendering off (the physics
repeats exactly), so physics = steps without rendering, rendering = steps with it minus physics,
preprocessing = ``prepare_frame`` on the episode's frames, inference = the pilot's time minus preprocessing
(ControllerCore bookkeeping included). Goals: 2 workers >= 1.7x one; Ray within 15 % of the local pool;
inference <= 20 % of the step.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Dict, List

import numpy as np
from table import record

from liquid_nav.evaluate.episodes import EpisodeRunner, fly_task, start_worker
from liquid_nav.evaluate.experiment import ExperimentConfig, load_experiment
from liquid_nav.executor import map_unordered

GOAL_SPEEDUP, GOAL_RAY_OVERHEAD, GOAL_INFERENCE_SHARE = 1.7, 0.15, 0.20


def benchmark_experiment(directory: Path, episodes: int, seconds: float) -> ExperimentConfig:
    from liquid_nav.models.checkpoint import save_checkpoint
    from liquid_nav.models.policy import Policy, PolicyConfig

    checkpoint = directory / "cfc_ncp.lnav"
    save_checkpoint(checkpoint, Policy.from_config(PolicyConfig.small(head="cfc_ncp")).eval(), {"bench": True})
    return load_experiment(models=[str(checkpoint)], worlds=["forest"], episodes=episodes, max_episode_seconds=seconds)


def episodes_per_minute(experiment: ExperimentConfig, workers: int, executor: str) -> Dict[str, float]:
    """Steady-state episodes per minute of the model's tasks (the first result of each worker left out)."""
    tasks = [task for task in experiment.tasks() if task.model == experiment.models[0].label]
    started = time.perf_counter()
    arrivals: List[float] = []
    for _ in map_unordered(fly_task, tasks, workers, start_worker, (experiment,), executor):
        arrivals.append(time.perf_counter())
    steady = arrivals[workers - 1:]
    return {"episodes_per_minute": 60.0 * (len(steady) - 1) / (steady[-1] - steady[0]),
            "wall_s": arrivals[-1] - started}


class Replay:
    """Flies recorded commands (the same trajectory, deterministic physics)."""

    def __init__(self, commands: np.ndarray) -> None:
        self.commands = commands
        self.step = 0

    def reset(self, info) -> None:
        self.step = 0

    def act(self, observation, info) -> np.ndarray:
        self.step += 1
        return self.commands[self.step - 1]


def step_split(experiment: ExperimentConfig) -> Dict[str, float]:
    """Milliseconds per control step in physics, rendering, preprocessing and inference (one episode)."""
    from liquid_nav.models.preprocessing import prepare_frame
    from liquid_nav.sim.env import FlyToTargetEnv
    from liquid_nav.sim.rollout import run_episode

    runner = EpisodeRunner(experiment)
    try:
        task = experiment.tasks()[0]
        runner.fly(task)  # warm up: layout built, ONNX session created
        flown = runner.fly(task, keep_frames=True)
        record = flown.record
        model = experiment.model(task.model)
        env = FlyToTargetEnv(experiment.env_config(task.world, task.condition, render=False))  # physics only
        try:
            run_episode(env, Replay(record.commands), task.seed)  # builds the layout
            replayed = run_episode(env, Replay(record.commands), task.seed)
        finally:
            env.close()
        preprocessing = runner.policy_pilot(model).core.backend.preprocessing
        started = time.perf_counter()
        for frame in flown.seen:
            prepare_frame(frame, preprocessing)
        prepare = time.perf_counter() - started
    finally:
        runner.close()
    steps = record.steps
    assert np.allclose(replayed.positions, record.positions), "the replay did not repeat the physics"
    return {"physics": 1e3 * replayed.timing.env_step / steps,
            "rendering": 1e3 * (record.timing.env_step - replayed.timing.env_step) / steps,
            "preprocessing": 1e3 * prepare / steps,
            "inference": 1e3 * (record.timing.pilot - prepare) / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=12, help="episodes per configuration (default 12)")
    parser.add_argument("--seconds", type=float, default=10.0, help="simulated seconds per episode (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        experiment = benchmark_experiment(Path(directory), args.episodes, args.seconds)
        split = step_split(replace(experiment, episodes=1))
        rates = {"1 worker": episodes_per_minute(experiment, 1, "local"),
                 "2 workers": episodes_per_minute(experiment, 2, "local")}
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            rates["ray, 2 actors"] = episodes_per_minute(experiment, 2, "ray")
        finally:
            ray.shutdown()
    print(f"{args.episodes} episodes of {args.seconds:g} s (forest, 256x144 camera, cfc_ncp 72x128 on ONNX Runtime, "
          f"1 thread per worker), steady state:")
    for label, figures in rates.items():
        print(f"  {label:14s} {figures['episodes_per_minute']:6.1f} episodes/min  (wall {figures['wall_s']:.1f} s "
              f"with start-up)")
    one, two, ray_rate = (rates[key]["episodes_per_minute"] for key in ("1 worker", "2 workers", "ray, 2 actors"))
    overhead = 1.0 - ray_rate / two
    print(f"2 workers / 1: {two / one:.2f}x (goal >= {GOAL_SPEEDUP}x: {'met' if two / one >= GOAL_SPEEDUP else 'MISSED'})")
    print(f"Ray vs local pool: {100 * overhead:+.1f} % slower (goal <= {100 * GOAL_RAY_OVERHEAD:.0f} %: "
          f"{'met' if overhead <= GOAL_RAY_OVERHEAD else 'MISSED'})")
    total = sum(split.values())
    print(f"one control step: {total:.2f} ms = " + ", ".join(f"{name} {value:.2f} ms ({100 * value / total:.0f} %)"
                                                             for name, value in split.items()))
    record("evaluate", "episodes/min, 1 worker", one, "eps/min")
    record("evaluate", "episodes/min, 2 workers", two, "eps/min", one, "1 worker", f">= {GOAL_SPEEDUP}x",
           two / one >= GOAL_SPEEDUP)
    record("evaluate", "episodes/min, Ray 2 actors", ray_rate, "eps/min", two, "local pool 2 workers",
           f">= {1 - GOAL_RAY_OVERHEAD:.2f}x", overhead <= GOAL_RAY_OVERHEAD)
    share = split["inference"] / total
    record("evaluate", "inference share of a control step", 100 * share, "%", None, "",
           f"<= {100 * GOAL_INFERENCE_SHARE:.0f} %", share <= GOAL_INFERENCE_SHARE)
    print(f"inference share: {100 * share:.0f} % (goal <= {100 * GOAL_INFERENCE_SHARE:.0f} %: "
          f"{'met' if share <= GOAL_INFERENCE_SHARE else 'MISSED'})")


if __name__ == "__main__":
    main()
