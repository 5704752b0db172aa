"""The safety layer between the network and the vehicle, as a ROS-free state machine.

``SafetyGate`` decides, for every controller command and every watchdog tick, what (if anything) is
sent to the autopilot. All times are seconds on one clock (sim time or wall time, never mixed).

Modes:
- ``disarmed``: nothing is published; arming is explicit.
- ``active``: armed and the input is fresh; commands pass through per-axis, norm and yaw-rate
  clamps and an acceleration rate limit.
- ``hold``: armed, but the newest command's image stamp is older than ``stale_timeout`` (or newer
  than the clock by more than ``future_tolerance``: the clock jumped back): zero
  velocity (hover) immediately, repeated at ``heartbeat_rate``; the controller's state should be
  reset (``TickResult.reset_controller``). Fresh input resumes ``active``.
- ``lost``: the input has been stale for longer than ``lost_timeout``: ``lost_action`` (hover, land
  or stop publishing so the autopilot's own offboard-loss failsafe takes over). Latched until
  disarmed and re-armed.
- ``estop``: latched by ``estop()``; zero velocity while armed, nothing while disarmed. Cleared only
  by ``reset_estop()`` while disarmed.

Safety stops (hold, lost, estop) take effect immediately; the acceleration limit only shapes
commands that come from the network, including the ramp back up after a hold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Optional, Tuple

import numpy as np


class SafetyMode(str, Enum):
    DISARMED = "disarmed"
    ACTIVE = "active"
    HOLD = "hold"
    LOST = "lost"
    ESTOP = "estop"


LOST_ACTIONS = ("hover", "land", "stop")


@dataclass
class SafetyConfig:
    """Limits and timeouts of the safety gate (velocities in m/s, rates in rad/s, times in s)."""

    max_vx: float = 2.0
    max_vy: float = 1.5
    max_vz: float = 1.0
    max_speed: float = 2.5
    max_yaw_rate: float = 1.0
    max_accel: float = 4.0
    max_yaw_accel: float = 4.0
    stale_timeout: float = 0.1
    lost_timeout: float = 1.0
    lost_action: str = "land"
    land_speed: float = 0.3
    heartbeat_rate: float = 20.0
    future_tolerance: float = 0.05

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "lost_action":
                if value not in LOST_ACTIONS:
                    raise ValueError(f"SafetyConfig.lost_action is {value!r}; expected one of {LOST_ACTIONS}")
            elif not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"SafetyConfig.{item.name} is {value!r}; expected a finite number > 0")
        if self.land_speed > self.max_vz:
            raise ValueError(f"SafetyConfig.land_speed ({self.land_speed}) must be <= max_vz ({self.max_vz})")
        if self.lost_timeout < self.stale_timeout:
            raise ValueError(
                f"SafetyConfig.lost_timeout ({self.lost_timeout}) must be >= stale_timeout ({self.stale_timeout})"
            )


def load_safety_config(params_file, node: str = "safety_node") -> SafetyConfig:
    """The ``SafetyConfig`` a ROS 2 params file gives ``node`` (``/**/safety_node: ros__parameters: ...``).

    Keys that are not safety limits (topics, rates of the node itself) are ignored; missing ones keep their
    defaults. A file without that node's section, or with a bad value, raises ValueError naming the file.
    """
    from liquid_nav.files import read_yaml

    document = read_yaml(params_file, ValueError)
    sections = [body for key, body in (document or {}).items()
                if isinstance(key, str) and key.rsplit("/", 1)[-1] == node and isinstance(body, dict)]
    if not sections or not isinstance(sections[0].get("ros__parameters"), dict):
        raise ValueError(f"{params_file}: no '{node}: ros__parameters:' section")
    parameters = sections[0]["ros__parameters"]
    try:
        return SafetyConfig(**{item.name: parameters[item.name] for item in fields(SafetyConfig)
                               if item.name in parameters})
    except ValueError as error:
        raise ValueError(f"{params_file}: {error}") from None


@dataclass
class SafetyOutput:
    """A command for the autopilot: body FLU (vx, vy, vz, yaw_rate) and the stamp to send it with."""

    command: np.ndarray
    stamp: float
    mode: SafetyMode


@dataclass
class TickResult:
    output: Optional[SafetyOutput]
    reset_controller: bool


@dataclass
class SafetyCounters:
    accepted: int = 0
    rejected_nonfinite: int = 0
    rejected_out_of_order: int = 0
    rejected_stale: int = 0
    rejected_future: int = 0
    clamped: int = 0
    rate_limited: int = 0
    controller_resets: int = 0

    def as_dict(self) -> dict:
        return {item.name: getattr(self, item.name) for item in fields(self)}


_ZERO = np.zeros(4, dtype=np.float64)


@dataclass
class _GateState:
    armed: bool = False
    armed_at: float = 0.0
    estopped: bool = False
    lost_latched: bool = False
    last_stamp: Optional[float] = None
    input_fresh: bool = False
    latest_command: np.ndarray = field(default_factory=lambda: _ZERO.copy())
    previous_output: np.ndarray = field(default_factory=lambda: _ZERO.copy())
    last_publish: Optional[float] = None
    last_published_mode: Optional[SafetyMode] = None


class SafetyGate:
    """Arming, latched e-stop, stamp-age watchdog, clamps and rate limits (see module docstring)."""

    def __init__(self, config: Optional[SafetyConfig] = None) -> None:
        self.config = config or SafetyConfig()
        config = self.config
        self._limits = np.array([config.max_vx, config.max_vy, config.max_vz, config.max_yaw_rate])
        self._accel_limits = np.array([config.max_accel] * 3 + [config.max_yaw_accel])
        self.counters = SafetyCounters()
        self._state = _GateState()
        self.last_rejection = ""

    @property
    def armed(self) -> bool:
        return self._state.armed

    # ----- operator commands -------------------------------------------------------------------
    def arm(self, now: float) -> Tuple[bool, str]:
        """Engage the network. Refused while the e-stop is latched."""
        state = self._state
        if state.estopped:
            return False, "refused: e-stop is latched (disarm, reset the e-stop, then arm)"
        if state.armed:
            return True, "already armed"
        state.armed = True
        state.armed_at = now
        state.lost_latched = False
        state.previous_output = _ZERO.copy()
        state.last_publish = None
        state.last_published_mode = None
        return True, "armed"

    def disarm(self) -> Tuple[bool, str]:
        """Stop sending commands; clears a latched ``lost`` state."""
        self._state.armed = False
        self._state.lost_latched = False
        return True, "disarmed"

    def estop(self) -> Tuple[bool, str]:
        """Latch the emergency stop: zero velocity from now on, the network is ignored."""
        self._state.estopped = True
        return True, "e-stop latched"

    def reset_estop(self) -> Tuple[bool, str]:
        """Clear the e-stop; only allowed while disarmed."""
        state = self._state
        if not state.estopped:
            return True, "e-stop was not latched"
        if state.armed:
            return False, "refused: disarm before resetting the e-stop"
        state.estopped = False
        return True, "e-stop cleared"

    # ----- inputs ------------------------------------------------------------------------------
    def mode(self, now: float) -> SafetyMode:
        """The mode at time ``now`` (pure: latches are applied by ``tick`` / ``on_command``)."""
        state = self._state
        if state.estopped:
            return SafetyMode.ESTOP
        if not state.armed:
            return SafetyMode.DISARMED
        if state.lost_latched:
            return SafetyMode.LOST
        reference = state.armed_at if state.last_stamp is None else max(state.last_stamp, state.armed_at)
        age = now - reference
        if age > self.config.lost_timeout:
            return SafetyMode.LOST
        if not self._is_fresh(now):
            return SafetyMode.HOLD
        return SafetyMode.ACTIVE

    def on_command(self, command, stamp: float, now: float) -> Optional[SafetyOutput]:
        """A controller command stamped with its source image's stamp; returns what to publish now."""
        state = self._state
        self._latch(now)  # input lost before this command arrived stays lost, even between ticks
        try:
            values = np.asarray(command, dtype=np.float64)
        except (TypeError, ValueError):  # ragged or non-numeric
            values = np.full(0, np.nan)
        if values.shape == (1, 4):  # a batch of one, as backends return it
            values = values[0]
        if values.shape != (4,) or not np.all(np.isfinite(values)) or not math.isfinite(stamp):
            self.counters.rejected_nonfinite += 1
            self.last_rejection = f"non-finite or malformed command {repr(command)[:120]} at stamp {stamp}"
            return None
        if state.last_stamp is not None and stamp <= state.last_stamp:
            self.counters.rejected_out_of_order += 1
            self.last_rejection = f"stamp {stamp:.6f} is not newer than the last accepted {state.last_stamp:.6f}"
            return None
        if stamp > now + self.config.future_tolerance:
            self.counters.rejected_future += 1
            self.last_rejection = f"stamp {stamp:.6f} is {stamp - now:.3f} s in the future (clock mismatch?)"
            return None
        if now - stamp > self.config.stale_timeout:
            self.counters.rejected_stale += 1
            self.last_rejection = f"command arrived {now - stamp:.3f} s after its image (stale)"
            return None
        self.counters.accepted += 1
        state.last_stamp = stamp
        state.latest_command = values
        state.input_fresh = True
        if self._latch(now) is not SafetyMode.ACTIVE:
            return None
        return self._emit(self._shape(values, now), stamp, now, SafetyMode.ACTIVE)

    def tick(self, now: float) -> TickResult:
        """Watchdog tick (call at a fixed rate well above ``heartbeat_rate``)."""
        state = self._state
        reset_controller = False
        fresh = self._is_fresh(now)
        if state.input_fresh and not fresh:
            reset_controller = True
            self.counters.controller_resets += 1
        state.input_fresh = fresh
        mode = self._latch(now)
        command = self._hold_command(mode)
        if command is None:
            return TickResult(None, reset_controller)
        changed = mode is not state.last_published_mode
        due = state.last_publish is None or now - state.last_publish >= 1.0 / self.config.heartbeat_rate
        if not (changed or due):
            return TickResult(None, reset_controller)
        return TickResult(self._emit(command, now, now, mode), reset_controller)

    # ----- internals ---------------------------------------------------------------------------
    def _is_fresh(self, now: float) -> bool:
        """The newest accepted stamp is at most ``stale_timeout`` old and not ahead of a clock that jumped back."""
        stamp = self._state.last_stamp
        return stamp is not None and -self.config.future_tolerance <= now - stamp <= self.config.stale_timeout

    def _latch(self, now: float) -> SafetyMode:
        mode = self.mode(now)
        if mode is SafetyMode.LOST:
            self._state.lost_latched = True
        return mode

    def _hold_command(self, mode: SafetyMode) -> Optional[np.ndarray]:
        """What the watchdog publishes in ``mode`` (None: nothing)."""
        if mode is SafetyMode.DISARMED or not self._state.armed:
            return None
        if mode is SafetyMode.ACTIVE:
            return self._state.previous_output
        if mode is SafetyMode.LOST:
            if self.config.lost_action == "stop":
                return None
            if self.config.lost_action == "land":
                return np.array([0.0, 0.0, -self.config.land_speed, 0.0])
        return _ZERO

    def _shape(self, command: np.ndarray, now: float) -> np.ndarray:
        """Clamp a network command and limit its change from the previous output."""
        config = self.config
        shaped = self._limit_speed(np.clip(command, -self._limits, self._limits))
        if not np.allclose(shaped, command):
            self.counters.clamped += 1
        state = self._state
        elapsed = 0.0 if state.last_publish is None else min(max(now - state.last_publish, 0.0), 0.1)
        step_limit = elapsed * self._accel_limits
        # Per-axis steps from one in-limit command towards another can leave the speed ball (box corners).
        limited = self._limit_speed(
            state.previous_output + np.clip(shaped - state.previous_output, -step_limit, step_limit))
        if not np.allclose(limited, shaped):
            self.counters.rate_limited += 1
        return limited

    def _limit_speed(self, command: np.ndarray) -> np.ndarray:
        """Scale (vx, vy, vz) in place down to ``max_speed`` where its norm exceeds it."""
        speed = float(np.linalg.norm(command[:3]))
        if speed > self.config.max_speed:
            command[:3] *= self.config.max_speed / speed
        return command

    def _emit(self, command: np.ndarray, stamp: float, now: float, mode: SafetyMode) -> SafetyOutput:
        state = self._state
        state.previous_output = np.array(command, dtype=np.float64)
        state.last_publish = now
        state.last_published_mode = mode
        return SafetyOutput(command=state.previous_output.copy(), stamp=stamp, mode=mode)
