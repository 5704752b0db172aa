"""What the controller node reports about itself, without ROS: lost frames, silence, refused frames.

``FrameLossCounter`` finds frames that never arrived from the image header stamps: a gap of ``k``
frame periods (rounded) between consecutive stamps means ``k - 1`` frames were lost between the
camera and the controller. Gaps longer than ``max_gap`` are interruptions of the stream (camera
stopped, bag paused), not losses.

``ControllerHealth`` keeps the outcome of every image received in the last ``window`` seconds (by
receipt time on a monotonic clock) and grades it:

- ERROR: no image for ``window`` seconds (or none since start), or every frame of the window refused
  (image conversion, duplicate stamp, non-finite output, backend error), i.e. no command left.
- WARN: waiting for the first image (less than ``window`` since start), some frames of the window
  refused, or more than ``loss_warn_fraction`` of the expected frames lost.
- OK otherwise. Refusals and losses age out of the window, so good frames bring OK back.
"""
from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Deque, Dict, Optional, Tuple


class HealthLevel(IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2


class FrameLossCounter:
    """Counts frames missing between consecutive image stamps (integer nanoseconds)."""

    def __init__(self, period: float, max_gap: float) -> None:
        self.period = period
        self.max_gap = max_gap
        self.lost = 0
        self.interruptions = 0
        self._last_ns: Optional[int] = None

    def observe(self, stamp_ns: int) -> int:
        """Record one received frame; returns how many frames are missing just before it."""
        previous, self._last_ns = self._last_ns, stamp_ns
        if previous is None or stamp_ns <= previous:  # first frame, duplicate, or a new sequence
            return 0
        gap = (stamp_ns - previous) * 1e-9
        if gap > self.max_gap:
            self.interruptions += 1
            return 0
        missing = max(math.floor(gap / self.period + 0.5) - 1, 0)
        self.lost += missing
        return missing


@dataclass(frozen=True)
class HealthConfig:
    """``period``: the camera's frame period (s); ``window``: seconds judged, and the no-image timeout."""

    period: float = 1.0 / 30.0
    window: float = 1.0
    loss_warn_fraction: float = 0.1

    def __post_init__(self) -> None:
        for name in ("period", "window", "loss_warn_fraction"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"HealthConfig.{name} is {value!r}; expected a finite number > 0")
        if self.period > self.window:
            raise ValueError(f"HealthConfig.period ({self.period}) must be <= window ({self.window})")


@dataclass
class HealthReport:
    level: HealthLevel
    message: str
    values: Dict[str, object] = field(default_factory=dict)


class ControllerHealth:
    """Grades the controller's recent frames; times are seconds on one monotonic clock."""

    def __init__(self, config: HealthConfig, start_time: float) -> None:
        self.config = config
        self.loss = FrameLossCounter(config.period, config.window)
        self.images_received = 0
        self.incompatible_publishers = 0
        self._start = start_time
        self._last_image: Optional[float] = None
        self._recent: Deque[Tuple[float, Optional[str], int]] = deque()  # (receipt time, refusal kind, lost before)
        self._last_refusal = ""

    def record(self, now: float, stamp_ns: int, refused: Optional[str] = None, reason: str = "") -> None:
        """One received image: ``refused`` is None when it became a command, else the kind of refusal."""
        self.images_received += 1
        self._last_image = now
        self._recent.append((now, refused, self.loss.observe(stamp_ns)))
        if refused is not None:
            self._last_refusal = f"{refused}: {reason}" if reason else refused

    def incompatible_publisher(self) -> None:
        """A camera publisher's QoS cannot match the subscription (e.g. best effort vs reliable)."""
        self.incompatible_publishers += 1

    def evaluate(self, now: float) -> HealthReport:
        window = self.config.window
        while self._recent and self._recent[0][0] < now - window:
            self._recent.popleft()
        frames = len(self._recent)
        refusals = Counter(kind for _, kind, _ in self._recent if kind is not None)
        refused = sum(refusals.values())
        lost = sum(missing for _, _, missing in self._recent)
        silent = now - (self._start if self._last_image is None else self._last_image)
        values = {
            "images_received": self.images_received, "lost_frames": self.loss.lost,
            "stream_interruptions": self.loss.interruptions, "incompatible_publishers": self.incompatible_publishers,
            "window_images": frames, "window_refused": refused, "window_lost": lost,
            "seconds_since_image": round(silent, 3) if self._last_image is not None else "never",
        }
        span = f"the last {window:g} s"
        if silent > window:
            message = (f"no image for {silent:.1f} s" if self._last_image is not None
                       else f"no image received in {silent:.1f} s since start")
            if self.incompatible_publishers:
                message += (f"; {self.incompatible_publishers} camera publisher(s) with incompatible QoS "
                            "(check image_reliability)")
            return HealthReport(HealthLevel.ERROR, message, values)
        if self._last_image is None:
            return HealthReport(HealthLevel.WARN, "waiting for the first image", values)
        breakdown = ", ".join(f"{kind} {count}" for kind, count in sorted(refusals.items()))
        if refused == frames:
            return HealthReport(HealthLevel.ERROR, f"all {frames} frames of {span} refused ({breakdown}); "
                                                   f"last: {self._last_refusal}", values)
        if refused:
            return HealthReport(HealthLevel.WARN, f"{refused} of {frames} frames of {span} refused ({breakdown}); "
                                                  f"last: {self._last_refusal}", values)
        if lost > self.config.loss_warn_fraction * (frames + lost):
            return HealthReport(HealthLevel.WARN, f"{lost} frames lost in {span} ({frames} received): "
                                                  "check the image transport (docs/deployment.md)", values)
        return HealthReport(HealthLevel.OK, "running", values)
