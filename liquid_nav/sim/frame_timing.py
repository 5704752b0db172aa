"""Camera frame timing: when the frames of an episode arrive, as a real camera delivers them.

A :class:`FrameTiming` describes a camera: its nominal rate, interval jitter, single frame drops, bursts of
drops and a fixed latency between a frame and its command taking effect. A :class:`FrameClock` turns it
into the frame times of one episode, deterministic per episode seed. Named presets:
:data:`PRESETS` (``FrameTiming.preset(name)``); ``fixed30`` is the default.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, Tuple, Type

import numpy as np

from liquid_nav.validation import MappingReader, check_field_types, is_number, require_positive

_TIMING_SALT = 0x7F1A  # seeds frame times apart from the scene sampling of the same episode seed


@dataclass(frozen=True)
class FrameTiming:
    """How one camera delivers frames (seconds and probabilities per camera frame).

    Each camera frame comes ``1 / rate_hz`` after the previous one plus Gaussian noise of ``jitter_s``
    standard deviation; it is lost with ``drop_probability``, or starts a burst of ``burst_length``
    (``[min, max]`` frames, uniform) consecutive losses with ``burst_probability``. A delivered frame's
    command takes effect ``latency_s`` after the frame; the previous command acts until then.
    """

    rate_hz: float = 30.0
    jitter_s: float = 0.0
    drop_probability: float = 0.0
    burst_probability: float = 0.0
    burst_length: Tuple[int, int] = (2, 5)
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        check_field_types(self, ValueError, "FrameTiming")
        require_positive(self, ("rate_hz",))
        for name in ("jitter_s", "latency_s"):
            value = getattr(self, name)
            if not (is_number(value) and value >= 0):
                raise ValueError(f"FrameTiming.{name} is {value!r}; expected a finite number >= 0 (seconds)")
        half_period = 0.5 / self.rate_hz
        if self.jitter_s > half_period:
            raise ValueError(f"FrameTiming.jitter_s is {self.jitter_s!r}; expected at most half the nominal "
                             f"period ({half_period:.4g} s)")
        for name in ("drop_probability", "burst_probability"):
            value = getattr(self, name)
            if not (is_number(value) and 0 <= value < 1):
                raise ValueError(f"FrameTiming.{name} is {value!r}; expected a probability in [0, 1)")
        length = self.burst_length
        whole = isinstance(length, (list, tuple)) and len(length) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in length)
        if not (whole and 1 <= length[0] <= length[1]):
            raise ValueError(f"FrameTiming.burst_length is {length!r}; expected [min, max] whole frames, "
                             f"1 <= min <= max")
        object.__setattr__(self, "burst_length", (length[0], length[1]))

    @property
    def period(self) -> float:
        """The nominal frame period (s)."""
        return 1.0 / self.rate_hz

    @staticmethod
    def preset(name: str) -> "FrameTiming":
        """A named camera (see :data:`PRESETS`)."""
        if name not in PRESETS:
            raise ValueError(f"unknown frame timing preset {name!r}; expected one of {sorted(PRESETS)}")
        return PRESETS[name]

    @classmethod
    def from_yaml(cls, value: Any, source: str = "<yaml>", path: str = "timing",
                  error: Type[Exception] = ValueError) -> "FrameTiming":
        """A preset name or a mapping of field names (missing ones take the defaults) read from YAML.

        Errors are raised as ``error`` and name ``source`` and the key: an unknown key by its path
        (``timing.rate``), a bad value by its field (``key 'timing': FrameTiming.drop_probability is 1.5``).
        """
        if isinstance(value, str):
            if value not in PRESETS:
                raise error(f"{source}: key '{path}': expected a preset name, one of {sorted(PRESETS)}, or a "
                            f"mapping of FrameTiming fields, got {value!r}")
            return PRESETS[value]
        reader = MappingReader(source, path, value, error)
        defaults = cls()
        values = {item.name: reader.raw(item.name, getattr(defaults, item.name)) for item in fields(cls)}
        reader.finish()
        try:
            return cls(**values)
        except ValueError as problem:
            raise error(f"{source}: key '{path}': {problem}") from None


PRESETS: Dict[str, FrameTiming] = {
    **{f"fixed{rate}": FrameTiming(rate_hz=rate) for rate in (10, 15, 20, 30, 60)},
    "jitter30": FrameTiming(jitter_s=0.005),
    "drops30": FrameTiming(drop_probability=0.2),
    "bursts30": FrameTiming(burst_probability=0.03, burst_length=(3, 8)),
    "latency30": FrameTiming(latency_s=0.05),
    "mixed": FrameTiming(jitter_s=0.004, drop_probability=0.1, burst_probability=0.02, burst_length=(2, 6),
                         latency_s=0.025),
}


class FrameClock:
    """The delivered frames of one episode in whole physics steps, from a :class:`FrameTiming`.

    Camera frame times accumulate on a continuous clock and are rounded to physics steps (at least one
    step apart), so the mean rate is the nominal one even when the period is no whole number of steps.
    The random draws come from a generator seeded by ``episode_seed`` and a fixed salt only: the same seed
    gives the same frames whatever the pilot does.
    """

    def __init__(self, timing: FrameTiming, physics_hz: int, episode_seed: int) -> None:
        self.timing = timing
        self.latency_steps = round(timing.latency_s * physics_hz)
        self._period_steps = physics_hz / timing.rate_hz
        self._jitter_steps = timing.jitter_s * physics_hz
        self._rng = np.random.default_rng([int(episode_seed), _TIMING_SALT])
        self._camera_clock = 0.0  # physics steps since the episode start, continuous
        self._frame_step = 0  # physics step of the last delivered frame
        self._burst_left = 0

    def next_frame(self) -> int:
        """Physics steps from the last delivered frame to the next one (>= 1); dropped frames add theirs."""
        while True:
            interval = self._period_steps
            if self._jitter_steps > 0:
                interval = max(0.0, interval + self._rng.normal(0.0, self._jitter_steps))
            self._camera_clock += interval
            if not self._dropped():
                break
        step = max(self._frame_step + 1, round(self._camera_clock))
        steps, self._frame_step = step - self._frame_step, step
        return steps

    def _dropped(self) -> bool:
        timing = self.timing
        if self._burst_left > 0:
            self._burst_left -= 1
            return True
        if timing.burst_probability > 0 and self._rng.random() < timing.burst_probability:
            low, high = timing.burst_length
            self._burst_left = int(self._rng.integers(low, high + 1)) - 1
            return True
        return timing.drop_probability > 0 and bool(self._rng.random() < timing.drop_probability)

