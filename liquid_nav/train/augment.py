"""Photometric augmentation of uint8 training windows, one draw per sequence (a camera's look changes
between flights, not between frames), plus per-frame pixel noise."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from liquid_nav.train.config import AugmentConfig

_GREY = torch.tensor([0.299, 0.587, 0.114])


def augment_windows(images_u8: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Augmented copy of ``images_u8`` (B, L, H, W, 3) uint8 RGB, still uint8 (the policy normalises it)."""
    batch = images_u8.shape[0]
    x = images_u8.float().div_(255.0)

    def draw(scale: float) -> Tensor:  # (B, 1, 1, 1, 1) uniform in [-scale, scale]
        return (torch.rand(batch, 1, 1, 1, 1, generator=generator) * 2 - 1) * scale

    if config.hue > 0:
        x = _rotate_hue(x, draw(config.hue) * 2 * math.pi)
    if config.saturation > 0:
        grey = (x * _GREY).sum(-1, keepdim=True)
        x = grey + (x - grey) * (1 + draw(config.saturation))
    if config.contrast > 0:
        mean = x.mean(dim=(1, 2, 3, 4), keepdim=True)
        x = mean + (x - mean) * (1 + draw(config.contrast))
    if config.brightness > 0:
        x = x + draw(config.brightness)
    if config.blur_probability > 0:
        blurred = torch.rand(batch, generator=generator) < config.blur_probability
        if blurred.any():
            x[blurred] = _box_blur(x[blurred])
    if config.noise > 0:
        x = x + torch.randn(x.shape, generator=generator) * config.noise
    return x.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)


def _rotate_hue(x: Tensor, angle: Tensor) -> Tensor:
    """Rotate colours about the grey axis by ``angle`` (B, 1, 1, 1, 1) radians."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    root = math.sqrt(1.0 / 3.0)
    # Rodrigues rotation about (1, 1, 1) / sqrt(3), applied per pixel
    mean = x.mean(-1, keepdim=True)
    r, g, b = x[..., 0:1], x[..., 1:2], x[..., 2:3]
    cross = torch.cat([g - b, b - r, r - g], dim=-1) * root
    return x * cos + cross * sin + mean * (1 - cos)


def _box_blur(x: Tensor) -> Tensor:
    """3x3 box blur of (N, L, H, W, 3) images."""
    n, length, height, width, channels = x.shape
    planes = x.permute(0, 1, 4, 2, 3).reshape(n * length * channels, 1, height, width)
    blurred = torch.nn.functional.avg_pool2d(planes, 3, stride=1, padding=1, count_include_pad=False)
    return blurred.reshape(n, length, channels, height, width).permute(0, 1, 3, 4, 2)
