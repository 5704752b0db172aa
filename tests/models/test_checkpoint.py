"""Checkpoints: round trip, atomic write, refused metadata (bad files: tests/bad_inputs/test_bad_checkpoints.py)."""
from __future__ import annotations

import pytest
import torch

from liquid_nav.models.checkpoint import load_checkpoint, save_checkpoint
from tests.models.conftest import HEADS, random_images, small_policy


@pytest.mark.parametrize("head", HEADS)
def test_round_trip_restores_weights_config_and_metadata(head, tmp_path, rng):
    policy = small_policy(head, seed=7)
    metadata = {"dataset": {"episodes": 12, "worlds": ["forest"]}, "val_loss": 0.25}
    path = save_checkpoint(tmp_path / "policy.lnav", policy, metadata)
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded_meta == metadata
    assert loaded.config == policy.config
    assert not loaded.training
    images, dts = random_images(2, 3, rng), torch.full((2, 3), 0.04)
    torch.testing.assert_close(loaded(images, dts), policy(images, dts), rtol=0, atol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["policy.lnav"]  # no temporary file left behind


def _saved(tmp_path, **kwargs):
    return save_checkpoint(tmp_path / "p.lnav", small_policy(**kwargs), {"note": "x"})


def test_unserialisable_metadata_is_refused_and_old_file_kept(tmp_path):
    path = _saved(tmp_path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_checkpoint(path, small_policy(), {"loss": float("nan")})
    assert path.read_bytes() == before


def test_loading_leaves_the_global_random_state_alone(tmp_path):
    path = _saved(tmp_path)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    load_checkpoint(path)
    torch.testing.assert_close(torch.rand(3), expected, rtol=0, atol=0)
