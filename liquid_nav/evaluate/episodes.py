"""Fly one evaluation episode and measure it: the worker side of an evaluation.

An :class:`EpisodeRunner` keeps, per process, one env (one PyBullet client) per recent cell configuration and
one inference session per model, with thread counts pinned so that parallel workers do not fight over the
cores. Models fly behind the controller node's own :class:`BackendPilot` (the backend the experiment names,
ONNX Runtime by default); the baselines fly from the privileged state in an env that does not render.
:func:`start_worker` / :func:`fly_task` / :func:`stop_worker` are that runner for
:func:`liquid_nav.executor.map_unordered`.
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from liquid_nav.evaluate.conditions import Condition
from liquid_nav.evaluate.experiment import EpisodeTask, ExperimentConfig, ModelSpec
from liquid_nav.evaluate.pilots import BackendPilot, EvaluatedPilot
from liquid_nav.sim.env import EnvConfig, FlyToTargetEnv
from liquid_nav.sim.rollout import EpisodeRecord, HoverPilot, Pilot, run_episode
from liquid_nav.sim.worlds import Scene

TRAJECTORY_POINTS = 200  # at most this many (x, y) samples of each flight are kept in the results
MAX_ENVS = 4  # envs kept per process (one PyBullet client and built layout each)


@dataclass
class FlownEpisode:
    """One flown task: its result row, the full record, the frames the pilot saw (when kept) and the scene."""

    row: Dict[str, Any]
    record: EpisodeRecord
    seen: List[np.ndarray]
    scene: Scene


def command_jerk(record: EpisodeRecord) -> float:
    """RMS over the episode of the second time derivative of the linear velocity command (m/s^3)."""
    if record.steps < 3:
        return 0.0
    times = record.stamps_ns[:-1] * 1e-9
    velocity = record.commands[:, :3].astype(np.float64)
    jerk = np.gradient(np.gradient(velocity, times, axis=0), times, axis=0)
    return float(np.sqrt((jerk**2).sum(axis=1).mean()))


def _trajectory(positions: np.ndarray) -> List[List[float]]:
    """About ``TRAJECTORY_POINTS`` evenly spaced (x, y) samples, the last position included, to the centimetre."""
    step = max(1, math.ceil(len(positions) / TRAJECTORY_POINTS))
    indices = np.unique(np.append(np.arange(0, len(positions), step), len(positions) - 1))
    return np.round(positions[indices, :2], 2).tolist()


def episode_row(task: EpisodeTask, record: EpisodeRecord, scene: Scene, drone_radius: float,
                act_seconds: List[float], wall_seconds: float) -> Dict[str, Any]:
    """The per-episode results (JSON-serialisable; only ``latency_*`` and ``wall_s`` are wall-clock)."""
    clearance = scene.layout.footprints.distance(record.positions[:, :2]) - drone_radius
    latency = np.asarray(act_seconds, dtype=np.float64) * 1e3
    intervals = np.diff(record.stamps_ns) * 1e-6
    return {
        "model": task.model, "world": task.world, "condition": task.condition.name,
        "strength": task.condition.strength, "seed": task.seed,
        "outcome": record.outcome, "reason": record.reason, "success": record.success,
        "time_to_target_s": record.duration if record.success else None,
        "duration_s": record.duration, "path_length_m": record.path_length,
        "start_distance_m": float(record.distances[0]), "final_distance_m": float(record.distances[-1]),
        "min_clearance_m": float(clearance.min()), "command_jerk": command_jerk(record),
        "frames_seen": record.steps, "frame_interval_ms": float(intervals.mean()) if len(intervals) else 0.0,
        "latency_ms_mean": float(latency.mean()) if len(latency) else 0.0,
        "latency_ms_p95": float(np.percentile(latency, 95)) if len(latency) else 0.0,
        "wall_s": wall_seconds,
        "target_xy": [round(float(v), 3) for v in record.target_position[:2]],
        "trajectory_xy": _trajectory(record.positions),
    }


class EpisodeRunner:
    """Flies :class:`EpisodeTask` s of one experiment in this process (see the module docstring)."""

    def __init__(self, experiment: ExperimentConfig, threads: int = 1) -> None:
        import cv2
        import torch

        if threads:
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
        self.experiment = experiment
        self.threads = threads
        self._envs: "OrderedDict[EnvConfig, Tuple[FlyToTargetEnv, Dict[str, Pilot]]]" = OrderedDict()
        self._policies: Dict[str, BackendPilot] = {}

    def fly(self, task: EpisodeTask, keep_frames: bool = False) -> FlownEpisode:
        """Fly ``task``; with ``keep_frames`` the record holds the camera view and ``seen`` the pilot's (the
        baselines then fly with the camera on too: rendering changes nothing in the physics)."""
        model = self.experiment.model(task.model)
        env, pilot = self._env_and_pilot(model, task.world, task.condition, render=model.looks or keep_frames)
        evaluated = EvaluatedPilot(pilot, task.condition.frame_filter if model.looks else None, keep_frames)
        started = time.perf_counter()
        record = run_episode(env, evaluated, task.seed, record_frames=keep_frames)
        wall = time.perf_counter() - started
        drone_radius = math.hypot(*env.sim.vehicle.collision_half_extents[:2])
        row = episode_row(task, record, env.scene, drone_radius, evaluated.act_seconds, wall)
        return FlownEpisode(row, record, evaluated.seen, env.scene)

    def _entry(self, config: EnvConfig) -> Tuple[FlyToTargetEnv, Dict[str, Pilot]]:
        if config in self._envs:
            self._envs.move_to_end(config)
        else:
            self._envs[config] = (FlyToTargetEnv(config), {})
            if len(self._envs) > MAX_ENVS:
                self._envs.popitem(last=False)[1][0].close()
        return self._envs[config]

    def _env_and_pilot(self, model: ModelSpec, world: str, condition: Condition,
                       render: bool) -> Tuple[FlyToTargetEnv, Pilot]:
        env, baselines = self._entry(self.experiment.env_config(world, condition, render))
        if model.kind == "expert":
            if "expert" not in baselines:
                from liquid_nav.expert import PrivilegedExpert

                baselines["expert"] = PrivilegedExpert.from_env(env)
            return env, baselines["expert"]
        if model.kind == "hover":
            return env, HoverPilot()
        return env, self.policy_pilot(model)

    def policy_pilot(self, model: ModelSpec) -> BackendPilot:
        """The model behind the experiment's inference backend (one session per model and process)."""
        if model.label not in self._policies:
            from liquid_nav.runtime.backends import make_backend

            backend = make_backend(self.experiment.backend, model.source, threads=self.threads)
            self._policies[model.label] = BackendPilot(backend, safety=self.experiment.safety_config())
        return self._policies[model.label]

    def close(self) -> None:
        for env, _ in self._envs.values():
            env.close()
        self._envs.clear()
        self._policies.clear()


_runner: Optional[EpisodeRunner] = None


def start_worker(experiment: ExperimentConfig) -> None:
    global _runner
    _runner = EpisodeRunner(experiment)


def fly_task(task: EpisodeTask) -> Dict[str, Any]:
    return _runner.fly(task).row


def stop_worker() -> None:
    global _runner
    if _runner is not None:
        _runner.close()
        _runner = None
