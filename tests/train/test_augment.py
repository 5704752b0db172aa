"""Photometric augmentation: uint8 in and out, one draw per window, deterministic per generator."""
import torch

from liquid_nav.train.augment import augment_windows
from liquid_nav.train.config import AugmentConfig


def windows():
    generator = torch.Generator().manual_seed(0)
    return torch.randint(30, 220, (4, 3, 12, 16, 3), dtype=torch.uint8, generator=generator)


def test_output_is_uint8_same_shape_and_deterministic():
    images = windows()
    first = augment_windows(images, AugmentConfig(), torch.Generator().manual_seed(5))
    again = augment_windows(images, AugmentConfig(), torch.Generator().manual_seed(5))
    other = augment_windows(images, AugmentConfig(), torch.Generator().manual_seed(6))
    assert first.dtype == torch.uint8 and first.shape == images.shape
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_off_is_identity_and_brightness_is_one_draw_per_window():
    images = windows()
    off = AugmentConfig(brightness=0, contrast=0, saturation=0, hue=0, noise=0, blur_probability=0)
    assert torch.equal(augment_windows(images, off, torch.Generator().manual_seed(1)), images)
    shifted = augment_windows(images, AugmentConfig(brightness=0.2, contrast=0, saturation=0, hue=0, noise=0,
                                                    blur_probability=0), torch.Generator().manual_seed(1))
    delta = shifted.float() - images.float()
    per_window = delta.mean(dim=(2, 3, 4))  # (B, L): the same shift on every frame of a window
    assert torch.allclose(per_window, per_window[:, :1].expand_as(per_window), atol=0.6)
    assert per_window[:, 0].abs().max() > 3


def test_hue_rotation_keeps_grey_and_moves_colour():
    grey = torch.full((1, 1, 2, 2, 3), 128, dtype=torch.uint8)
    red = torch.zeros((1, 1, 2, 2, 3), dtype=torch.uint8)
    red[..., 0] = 200
    hue_only = AugmentConfig(brightness=0, contrast=0, saturation=0, hue=0.25, noise=0, blur_probability=0)
    assert torch.equal(augment_windows(grey, hue_only, torch.Generator().manual_seed(3)), grey)
    moved = augment_windows(red, hue_only, torch.Generator().manual_seed(3))
    assert moved[..., 1:].float().max() > 20  # some red went to green or blue
