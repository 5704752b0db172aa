"""Shared fixtures for the model tests: small policies keep the suite fast on 2 cores."""
from __future__ import annotations

import pytest
import torch

from liquid_nav.models.policy import Policy, PolicyConfig

torch.set_num_threads(2)

HEADS = ("cfc_ncp", "ltc_ncp", "cfc", "lstm", "gru", "ctrnn")


def small_policy(head: str = "cfc_ncp", seed: int = 0, **overrides) -> Policy:
    """An untrained policy on the small (72 x 128) image preset, in eval mode."""
    config = PolicyConfig.small(head=head, seed=seed, units=16, backbone_units=32, **overrides)
    return Policy.from_config(config).eval()


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


def random_images(batch: int, length: int, generator: torch.Generator, height: int = 72,
                  width: int = 128) -> torch.Tensor:
    return torch.randint(0, 256, (batch, length, height, width, 3), dtype=torch.uint8, generator=generator)
