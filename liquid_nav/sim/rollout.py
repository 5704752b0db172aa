"""The one closed-loop rollout: any pilot flies one episode of a ``FlyToTargetEnv``.

Collection (the expert), DAgger (a policy, labelled by the expert), evaluation and the demo all fly
through :func:`run_episode`; nothing else loops over ``env.step``.

Alignment of an :class:`EpisodeRecord` with ``T`` commands: observation ``k`` (``k = 0 .. T``) is the
frame and privileged state at ``stamps_ns[k]``; command ``k`` (``k < T``) is what the pilot answered to
observation ``k`` and acted from ``stamps_ns[k]`` (plus the camera timing model's latency, if any) until
the next command took over; ``labels[k]`` is the
labeler's answer to the same observation. The final observation ``T`` ends the episode.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol

import numpy as np

from liquid_nav.stamps import DtRule, sequence_dts

Info = Dict[str, Any]


class Pilot(Protocol):
    """Anything that flies: the privileged expert, a policy behind an inference backend, a fixed command."""

    def reset(self, info: Info) -> None:
        """Start a new episode whose first observation carries ``info``."""

    def act(self, observation: np.ndarray, info: Info) -> np.ndarray:
        """The body FLU command (vx, vy, vz, yaw_rate) for this observation."""


class HoverPilot:
    """The floor of every comparison: always commands zero velocity."""

    def reset(self, info: Info) -> None:
        pass

    def act(self, observation: np.ndarray, info: Info) -> np.ndarray:
        return np.zeros(4, dtype=np.float32)


def stamp_ns(info: Info) -> int:
    """The stamp of the frame an env ``info`` belongs to (episode sim time in integer nanoseconds)."""
    return round(float(info["time"]) * 1e9)


@dataclass
class RolloutTiming:
    """Wall seconds spent in each part of an episode."""

    reset: float = 0.0
    env_step: float = 0.0
    pilot: float = 0.0
    labeler: float = 0.0


@dataclass
class EpisodeRecord:
    """Everything one episode produced (see the module docstring for the alignment)."""

    seed: int
    world: str
    outcome: str
    reason: str
    stamps_ns: np.ndarray  # (T + 1,) int64, frame stamps (episode sim time)
    dts: np.ndarray  # (T + 1,) float32, the dt each frame gets by the package's dt rule
    commands: np.ndarray  # (T, 4) float32, executed body FLU commands
    positions: np.ndarray  # (T + 1, 3) world positions
    quaternions: np.ndarray  # (T + 1, 4) xyzw
    velocities_body: np.ndarray  # (T + 1, 3) FLU m/s
    yaws: np.ndarray  # (T + 1,) rad
    distances: np.ndarray  # (T + 1,) horizontal distance to the target centre, m
    bearings: np.ndarray  # (T + 1,) rad, body frame, CCW +
    collisions: np.ndarray  # (T + 1,) bool
    target_position: np.ndarray  # (3,) centre of the target
    labels: Optional[np.ndarray] = None  # (T, 4) float32, the labeler's commands
    frames: Optional[np.ndarray] = None  # (T + 1, H, W, 3) uint8 observations
    timing: RolloutTiming = field(default_factory=RolloutTiming)

    @property
    def steps(self) -> int:
        return len(self.commands)

    @property
    def duration(self) -> float:
        """Simulated seconds from the first to the last frame."""
        return float(self.stamps_ns[-1] - self.stamps_ns[0]) * 1e-9

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    @property
    def path_length(self) -> float:
        """Metres flown (3-D polyline through the recorded positions)."""
        return float(np.linalg.norm(np.diff(self.positions, axis=0), axis=1).sum())


_STATE_KEYS = ("position", "quaternion", "velocity_body", "yaw", "distance", "bearing", "collision")


def run_episode(env, pilot: Pilot, seed: int, labeler: Optional[Pilot] = None, record_frames: bool = False,
                max_steps: Optional[int] = None, dt_rule: Optional[DtRule] = None) -> EpisodeRecord:
    """Reset ``env`` to scene ``seed`` and let ``pilot`` fly until the episode ends.

    ``labeler`` (e.g. the expert during DAgger) answers every observation too, without flying.
    ``max_steps`` cuts the episode short (outcome ``"cut"``); ``dt_rule`` computes the recorded dts.
    """
    timing = RolloutTiming()
    started = time.perf_counter()
    observation, info = env.reset(seed=seed)
    pilot.reset(info)
    if labeler is not None:
        labeler.reset(info)
    timing.reset = time.perf_counter() - started
    states: Dict[str, List[Any]] = {key: [info[key]] for key in _STATE_KEYS}
    stamps = [stamp_ns(info)]
    frames: List[np.ndarray] = [observation] if record_frames else []
    commands: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    outcome: Optional[str] = None
    while outcome is None:
        if max_steps is not None and len(commands) >= max_steps:
            outcome, info = "cut", dict(info, reason=f"stopped after {max_steps} steps")
            break
        tick = time.perf_counter()
        command = np.asarray(pilot.act(observation, info), dtype=np.float32).reshape(4)
        tock = time.perf_counter()
        timing.pilot += tock - tick
        if labeler is not None:
            labels.append(np.asarray(labeler.act(observation, info), dtype=np.float32).reshape(4))
            timing.labeler += time.perf_counter() - tock
        tick = time.perf_counter()
        observation, _, terminated, truncated, info = env.step(command)
        timing.env_step += time.perf_counter() - tick
        commands.append(command)
        stamps.append(stamp_ns(info))
        for key in _STATE_KEYS:
            states[key].append(info[key])
        if record_frames:
            frames.append(observation)
        if terminated or truncated:
            outcome = info["outcome"]
    stamps_array = np.asarray(stamps, dtype=np.int64)
    return EpisodeRecord(
        seed=int(seed), world=str(info["world"]), outcome=outcome, reason=str(info["reason"]),
        stamps_ns=stamps_array, dts=sequence_dts(stamps_array, dt_rule or DtRule()),
        commands=np.asarray(commands, dtype=np.float32).reshape(-1, 4),
        positions=np.asarray(states["position"], dtype=np.float64),
        quaternions=np.asarray(states["quaternion"], dtype=np.float64),
        velocities_body=np.asarray(states["velocity_body"], dtype=np.float64),
        yaws=np.asarray(states["yaw"], dtype=np.float64),
        distances=np.asarray(states["distance"], dtype=np.float64),
        bearings=np.asarray(states["bearing"], dtype=np.float64),
        collisions=np.asarray(states["collision"], dtype=bool),
        target_position=np.asarray(info["target_position"], dtype=np.float64),
        labels=np.asarray(labels, dtype=np.float32).reshape(-1, 4) if labeler is not None else None,
        frames=np.stack(frames) if record_frames else None,
        timing=timing,
    )
