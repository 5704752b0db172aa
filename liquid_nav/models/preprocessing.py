"""Network input preprocessing: the one place where camera frames are resized to the network input.

Normalisation (x / 255, per-channel mean and variance) and the channel order the network was trained
with live in :class:`PreprocessingConfig`, which travels inside the policy config and the checkpoint;
callers always hand RGB uint8 frames to the policy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Tuple

import cv2
import numpy as np

from liquid_nav.validation import check_field_types, is_number_list

# Dataset statistics of the published model (Chahine et al., Science Robotics 2023), RGB order.
PUBLISHED_MEAN = (0.41718618, 0.48529191, 0.38133072)
PUBLISHED_VAR = (0.057, 0.05, 0.061)
IMAGE_PRESETS = {"default": (144, 256), "small": (72, 128)}


@dataclass(frozen=True)
class PreprocessingConfig:
    """Network input size (H x W), channel order fed to the CNN, and RGB-order normalisation constants."""

    height: int = 144
    width: int = 256
    channel_order: str = "rgb"
    mean: Tuple[float, float, float] = PUBLISHED_MEAN
    var: Tuple[float, float, float] = PUBLISHED_VAR

    def __post_init__(self) -> None:
        check_field_types(self, ValueError, "preprocessing")
        if self.channel_order not in ("rgb", "bgr"):
            raise ValueError(f"preprocessing.channel_order must be 'rgb' or 'bgr', got {self.channel_order!r}")
        if self.height < 32 or self.width < 32:
            raise ValueError(f"preprocessing: input must be at least 32x32 pixels, got {self.height}x{self.width}")
        for name in ("mean", "var"):
            values = getattr(self, name)
            if not is_number_list(values, 3):
                raise ValueError(f"preprocessing.{name} needs 3 finite numbers (R, G, B), got {values!r}")
        if min(self.var) <= 0:
            raise ValueError(f"preprocessing.var must be > 0, got {self.var}")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "var", tuple(float(v) for v in self.var))

    @classmethod
    def preset(cls, name: str) -> "PreprocessingConfig":
        """``default`` = 144 x 256 (published), ``small`` = 72 x 128."""
        if name not in IMAGE_PRESETS:
            raise ValueError(f"unknown image preset {name!r}; expected one of {sorted(IMAGE_PRESETS)}")
        height, width = IMAGE_PRESETS[name]
        return cls(height=height, width=width)

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(H, W, 3) of the uint8 network input."""
        return (self.height, self.width, 3)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["mean"], data["var"] = list(self.mean), list(self.var)
        return data


def prepare_frame(rgb_u8: np.ndarray, preprocessing: PreprocessingConfig) -> np.ndarray:
    """Resize an RGB uint8 frame (h, w, 3) of any size to the network input (H, W, 3) uint8 (INTER_AREA)."""
    frame = np.asarray(rgb_u8)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"prepare_frame expects an RGB uint8 array (h, w, 3), got dtype {frame.dtype} "
                         f"shape {frame.shape}")
    if frame.shape[:2] == (preprocessing.height, preprocessing.width):
        return np.ascontiguousarray(frame)
    return cv2.resize(np.ascontiguousarray(frame), (preprocessing.width, preprocessing.height),
                      interpolation=cv2.INTER_AREA)
