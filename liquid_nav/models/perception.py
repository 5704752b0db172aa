"""Perception CNN: the published trunk (5 valid convolutions + dense 128) for any input size.

The module takes RGB uint8 images (N, H, W, 3) and does its own channel ordering and normalisation
(x / 255, then (x - mean) / sqrt(var)), so callers never normalise.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

from liquid_nav.models.preprocessing import PreprocessingConfig

# (out channels, kernel, stride) of the published trunk.
TRUNK = ((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (16, 3, 2))
# What bounds the features the head sees: "none" (the published linear layer), "layernorm", "tanh".
FEATURE_NORMS = ("none", "layernorm", "tanh")


def trunk_output_hw(height: int, width: int) -> Tuple[int, int]:
    """Spatial size after the valid-padded trunk."""
    for _, kernel, stride in TRUNK:
        height = (height - kernel) // stride + 1
        width = (width - kernel) // stride + 1
    if height < 1 or width < 1:
        raise ValueError(f"input too small for the perception trunk: output would be {height}x{width}")
    return height, width


class PerceptionCNN(nn.Module):
    """uint8 RGB (N, H, W, 3) -> features (N, feature_dim)."""

    def __init__(self, preprocessing: PreprocessingConfig, feature_dim: int = 128, dropout: float = 0.1,
                 feature_norm: str = "none"):
        super().__init__()
        if feature_norm not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {list(FEATURE_NORMS)}, got {feature_norm!r}")
        layers = []
        channels = 3
        for out_channels, kernel, stride in TRUNK:
            layers += [nn.Conv2d(channels, out_channels, kernel, stride), nn.ReLU()]
            channels = out_channels
        self.trunk = nn.Sequential(*layers)
        out_h, out_w = trunk_output_hw(preprocessing.height, preprocessing.width)
        self.dense = nn.Linear(channels * out_h * out_w, feature_dim)
        self.feature_norm = {"none": nn.Identity(), "layernorm": nn.LayerNorm(feature_dim),
                             "tanh": nn.Tanh()}[feature_norm]
        self.dropout = nn.Dropout(dropout)
        order = [2, 1, 0] if preprocessing.channel_order == "bgr" else [0, 1, 2]
        mean = torch.tensor(preprocessing.mean)[order]
        std = torch.tensor(preprocessing.var).sqrt()[order]
        # Fold x/255 and (x - mean)/std into one scale and shift per channel.
        self.register_buffer("channel_order", torch.tensor(order, dtype=torch.long))
        self.register_buffer("scale", (1.0 / (255.0 * std)).view(1, 3, 1, 1))
        self.register_buffer("shift", (-mean / std).view(1, 3, 1, 1))
        self.feature_dim = feature_dim

    def normalise(self, images_u8: Tensor) -> Tensor:
        """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 normalised, in the network's channel order."""
        x = images_u8.permute(0, 3, 1, 2).index_select(1, self.channel_order).float()
        return x * self.scale + self.shift

    def forward(self, images_u8: Tensor) -> Tensor:
        x = self.trunk(self.normalise(images_u8))
        return self.dropout(self.feature_norm(self.dense(x.flatten(1))))
