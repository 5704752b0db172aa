"""VisualBackProp (Bojarski et al. 2018): which pixels of a frame drive a policy's perception trunk.

The channel-averaged feature maps of every convolution (after its ReLU) are multiplied from the deepest to the
shallowest, each product scaled up to the previous layer's size by a transposed convolution with an all-ones
kernel of the layer's size and stride; the last one lands on the input pixels. Maps are normalised to [0, 1]
per frame. It needs the policy's weights (a checkpoint), not an ONNX graph.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from liquid_nav.models.perception import PerceptionCNN


def visual_backprop(perception: PerceptionCNN, images_u8: np.ndarray) -> np.ndarray:
    """Saliency maps (N, H, W) in [0, 1] of RGB uint8 ``images_u8`` (N, H, W, 3) at the network's input size."""
    with torch.no_grad():
        x = perception.normalise(torch.from_numpy(np.ascontiguousarray(images_u8)))
        sizes, means, convolutions = [tuple(x.shape[-2:])], [], []
        for layer in perception.trunk:
            x = layer(x)
            if isinstance(layer, nn.Conv2d):
                convolutions.append(layer)
                sizes.append(tuple(x.shape[-2:]))
            elif isinstance(layer, nn.ReLU):
                means.append(x.mean(dim=1, keepdim=True))
        mask = means[-1]
        for index in reversed(range(len(convolutions))):
            mask = _spread(mask, convolutions[index], sizes[index])
            if index > 0:
                mask = mask * means[index - 1]
        maps = mask[:, 0]
        low = maps.flatten(1).min(dim=1).values[:, None, None]
        high = maps.flatten(1).max(dim=1).values[:, None, None]
        return ((maps - low) / (high - low).clamp_min(1e-12)).numpy()


def _spread(mask: torch.Tensor, convolution: nn.Conv2d, size) -> torch.Tensor:
    """``mask`` (N, 1, h, w) at a convolution's output -> (N, 1, *size) at its input (ones-kernel deconvolution)."""
    kernel = torch.ones((1, 1) + tuple(convolution.kernel_size), dtype=mask.dtype)
    stride = convolution.stride
    natural = [(mask.shape[2 + axis] - 1) * stride[axis] + kernel.shape[2 + axis] for axis in (0, 1)]
    padding = tuple(size[axis] - natural[axis] for axis in (0, 1))
    return F.conv_transpose2d(mask, kernel, stride=stride, output_padding=padding)
