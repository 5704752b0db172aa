"""The sim node's ROS-free core: a ``FlyToTargetEnv`` driven like a vehicle behind an autopilot.

- One ``step()`` is one control period. The simulated clock starts at one control period and is monotonic
  across episodes (each new episode starts one control period after the last frame of the previous one), so
  the ROS graph can run on sim time without time jumping backwards.
- The last velocity command is held for ``command_timeout`` simulated seconds, then the vehicle
  hovers (zero velocity), as an autopilot does when its offboard setpoints stop.
- ``answered``: whether a command stamped with the current frame's stamp has arrived; ``sim_node``'s lock-step
  mode advances only then (or after a timeout), so a closed loop over ROS repeats the in-process one.
- With a ``pilot`` (e.g. the privileged expert, injected by ``sim_node``), every frame also carries that
  pilot's command for the frame (the "expert as policy" that closes the loop through the ROS graph
  without a trained network).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

import numpy as np

from liquid_nav.sim.env import EnvConfig, FlyToTargetEnv
from liquid_nav.sim.rollout import Pilot
from liquid_nav.validation import require_positive


@dataclass(frozen=True)
class SimBridgeConfig:
    """The env to run and how the bridge behaves like an autopilot between commands."""

    env: EnvConfig = field(default_factory=EnvConfig)
    command_timeout: float = 0.2  # sim seconds a command is held before the vehicle hovers
    auto_reset: bool = True  # start the next episode (seed + 1) when one ends

    def __post_init__(self) -> None:
        require_positive(self, ("command_timeout",))
        if not isinstance(self.env, EnvConfig):
            raise ValueError(f"SimBridgeConfig.env must be an EnvConfig, got {self.env!r}")


@dataclass
class SimFrame:
    """One published instant: the camera image and privileged state at ``clock_ns`` (sim time)."""

    clock_ns: int
    image: np.ndarray
    info: Dict[str, Any]
    angular_velocity_body: np.ndarray
    applied_command: np.ndarray
    pilot_command: Optional[np.ndarray]  # the injected pilot's command for this frame
    episode: int
    seed: int
    new_episode: bool


class SimBridge:
    """Steps a ``FlyToTargetEnv`` with held commands; see the module docstring.

    ``pilot_factory`` builds the pilot whose command every frame carries from the bridge's env
    (e.g. ``PrivilegedExpert.from_env``); None: frames carry no pilot command.
    """

    def __init__(self, config: Optional[SimBridgeConfig] = None,
                 pilot_factory: Optional[Callable[[FlyToTargetEnv], Pilot]] = None) -> None:
        self.config = config or SimBridgeConfig()
        self.env = FlyToTargetEnv(self.config.env)
        self.pilot = pilot_factory(self.env) if pilot_factory is not None else None
        self._period_ns = round(1e9 / self.config.env.control_hz)
        self._episode_base_ns = self._period_ns  # the clock starts one period in: ROS reads 0 as "no time yet"
        self._clock_ns = 0
        self._command = np.zeros(4)
        self._command_clock_ns: Optional[int] = None
        self._command_stamp_ns: Optional[int] = None
        self._frame: Optional[SimFrame] = None
        self.episode = 0
        self.seed = 0
        self.outcome: Optional[str] = None
        self.hover_steps = 0
        self.commands_received = 0

    @property
    def clock_ns(self) -> int:
        return self._clock_ns

    @property
    def answered(self) -> bool:
        """A command stamped with the current frame's stamp has arrived (see ``set_command``)."""
        return self._frame is not None and self._command_stamp_ns == self._clock_ns

    @property
    def running(self) -> bool:
        """False after an episode ended (until the next ``start_episode``)."""
        return self._frame is not None and self.outcome is None

    def start_episode(self, seed: int) -> SimFrame:
        """Sample and build the scene for ``seed``; returns the first frame."""
        if self._frame is not None:
            self._episode_base_ns = self._clock_ns + self._period_ns
        image, info = self.env.reset(seed=int(seed))
        self.episode += 1
        self.seed = int(seed)
        self.outcome = None
        self._command = np.zeros(4)
        self._command_clock_ns = None
        self._command_stamp_ns = None
        if self.pilot is not None:
            self.pilot.reset(info)
        return self._make_frame(image, info, np.zeros(4), new_episode=True)

    def set_command(self, command, stamp_ns: Optional[int] = None) -> None:
        """A velocity command (vx, vy, vz, yaw_rate) body FLU; held for ``command_timeout``.

        ``stamp_ns``: the command's stamp (a controller stamps it with its source frame's stamp).
        """
        values = np.asarray(command, dtype=np.float64).reshape(-1)
        if values.shape != (4,) or not np.all(np.isfinite(values)):
            raise ValueError(f"command must be 4 finite numbers (vx, vy, vz, yaw_rate), got {command!r}")
        self._command = values
        self._command_clock_ns = self._clock_ns
        self._command_stamp_ns = stamp_ns
        self.commands_received += 1

    def step(self) -> SimFrame:
        """Advance one control period; at an episode end starts the next one if ``auto_reset``."""
        if self._frame is None:
            raise RuntimeError("SimBridge.step() before start_episode()")
        if self.outcome is not None:
            if not self.config.auto_reset:
                raise RuntimeError("the episode has ended and auto_reset is off; call start_episode(seed)")
            return self.start_episode(self.seed + 1)
        applied = self._held_command()
        image, _, terminated, truncated, info = self.env.step(applied)
        if terminated or truncated:
            self.outcome = info["outcome"]
        return self._make_frame(image, info, applied, new_episode=False)

    def _held_command(self) -> np.ndarray:
        timeout_ns = self.config.command_timeout * 1e9
        if self._command_clock_ns is not None and self._clock_ns - self._command_clock_ns < timeout_ns:
            return self._command
        self.hover_steps += 1
        return np.zeros(4)

    def _make_frame(self, image: np.ndarray, info: Dict[str, Any], applied: np.ndarray, new_episode: bool) -> SimFrame:
        self._clock_ns = self._episode_base_ns + round(info["time"] * 1e9)
        state = self.env.sim.state()
        rotation = state.rotation_matrix()
        pilot_command = None
        if self.pilot is not None and info["outcome"] is None:
            pilot_command = np.asarray(self.pilot.act(image, info), dtype=np.float64)
        self._frame = SimFrame(
            clock_ns=self._clock_ns, image=image, info=info,
            angular_velocity_body=rotation.T @ state.angular_velocity_world, applied_command=applied,
            pilot_command=pilot_command, episode=self.episode, seed=self.seed, new_episode=new_episode,
        )
        return self._frame

    def close(self) -> None:
        self.env.close()
