"""Image message fields -> RGB arrays for every supported encoding and padding (bad images: tests/bad_inputs)."""
import numpy as np
import pytest

from liquid_nav.runtime.image_conversion import (
    ImageConversionError,
    ImageSizeLimits,
    image_to_rgb,
    rgb_to_image_fields,
)

RNG = np.random.default_rng(3)
RGB = RNG.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)


def encode(rgb: np.ndarray, encoding: str, padding: int = 0) -> tuple:
    if encoding == "rgb8":
        pixels = rgb
    elif encoding == "bgr8":
        pixels = rgb[:, :, ::-1]
    elif encoding == "rgba8":
        pixels = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 77, np.uint8)], axis=2)
    elif encoding == "bgra8":
        pixels = np.concatenate([rgb[:, :, ::-1], np.full(rgb.shape[:2] + (1,), 77, np.uint8)], axis=2)
    else:
        raise AssertionError(encoding)
    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels)
    padded = np.concatenate([rows, np.full((height, padding), 255, np.uint8)], axis=1)
    return height, width, encoding, width * channels + padding, padded.tobytes()


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
@pytest.mark.parametrize("padding", [0, 5])
def test_colour_encodings_round_trip_to_rgb(encoding, padding):
    out = image_to_rgb(*encode(RGB, encoding, padding))
    assert out.dtype == np.uint8 and out.shape == RGB.shape and out.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize("padding", [0, 3])
def test_mono8_is_replicated_to_three_channels(padding):
    grey = RGB[:, :, 1]
    rows = np.concatenate([grey, np.zeros((grey.shape[0], padding), np.uint8)], axis=1)
    out = image_to_rgb(grey.shape[0], grey.shape[1], "mono8", grey.shape[1] + padding, rows.tobytes())
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], grey)


def test_accepts_array_and_numpy_buffers():
    import array

    height, width, encoding, step, data = encode(RGB, "rgb8")
    for buffer in (array.array("B", data), np.frombuffer(data, np.uint8), bytearray(data)):
        np.testing.assert_array_equal(image_to_rgb(height, width, encoding, step, buffer), RGB)


def test_an_image_of_the_expected_size_passes():
    fields = encode(RGB, "rgb8")
    np.testing.assert_array_equal(image_to_rgb(*fields, limits=ImageSizeLimits(20, 12)), RGB)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_publishing_fields_round_trip(encoding):
    fields = rgb_to_image_fields(RGB, encoding)
    assert fields["step"] == 60 and fields["encoding"] == encoding
    np.testing.assert_array_equal(image_to_rgb(**fields), RGB)


def test_publishing_rejects_non_rgb_arrays():
    with pytest.raises(ImageConversionError, match="expected an"):
        rgb_to_image_fields(RGB.astype(np.float32))
    with pytest.raises(ImageConversionError, match="not supported for publishing"):
        rgb_to_image_fields(RGB, "mono8")
