"""Bad camera images for the controller: ``image_to_rgb`` refuses each with an ``ImageConversionError`` naming
the field and what was expected.

``CASES`` is the table: changes to the fields of a valid 20 x 12 rgb8 image (and the size limits in force).
"""
from __future__ import annotations

import pytest

from liquid_nav.runtime.image_conversion import ImageConversionError, ImageSizeLimits, image_to_rgb

WIDTH, HEIGHT = 20, 12
VALID = {"height": HEIGHT, "width": WIDTH, "encoding": "rgb8", "step": WIDTH * 3, "data": bytes(WIDTH * 3 * HEIGHT)}


def _case(case_id: str, match: str, limits: ImageSizeLimits = ImageSizeLimits(), **change):
    return pytest.param({**VALID, **change}, limits, match, id=case_id)


CASES = [
    _case("encoding-rgb16", "encoding 'rgb16' is not supported", encoding="rgb16"),
    _case("encoding-yuv422", "not supported", encoding="yuv422"),
    _case("encoding-upper-case", "not supported", encoding="RGB8"),
    _case("encoding-empty", "encoding '' is not supported; expected one of rgb8", encoding=""),
    _case("encoding-missing", "encoding None is not supported", encoding=None),
    _case("encoding-jpeg", "encoding 'jpeg' is not supported", encoding="jpeg"),
    _case("step-one-short", "step is 59 bytes", step=59),
    _case("step-negative", "step is -60 bytes but a rgb8 row of width 20 needs at least 60", step=-60),
    _case("step-zero", "step is 0 bytes", step=0),
    _case("step-too-small-for-rgba8", "step is 60 bytes but a rgba8 row of width 20 needs at least 80",
          encoding="rgba8"),
    _case("padded-step-without-padding", "data holds 720 bytes; step 64 x height 12 = 768 expected", step=64),
    _case("data-too-short", "data holds 100 bytes", data=bytes(100)),
    _case("data-one-byte-short", "data holds 719 bytes", data=bytes(719)),
    _case("data-one-byte-long", "data holds 721 bytes", data=bytes(721)),
    _case("data-empty", "data holds 0 bytes", data=b""),
    _case("height-one-more-than-data", "data holds 720 bytes", height=13),
    _case("huge-size-with-small-data", "data holds 720 bytes; step 300000 x height 100000",
          height=100_000, width=100_000, step=300_000),
    _case("smaller-than-min-side", "each side must be at least", width=4, step=12, data=bytes(144)),
    _case("height-zero", "is 20x0 \\(width x height\\)", height=0, data=b""),
    _case("width-negative", "is -20x12", width=-20),
    _case("below-configured-min-side", "each side must be at least 16 pixels", ImageSizeLimits(min_side=16)),
    _case("width-not-expected", "width is 20; this controller expects 256", ImageSizeLimits(256, 0)),
    _case("height-not-expected", "height is 12; this controller expects 144", ImageSizeLimits(0, 144)),
]


@pytest.mark.parametrize("fields, limits, match", CASES)
def test_bad_images_name_the_field_and_the_expectation(fields, limits, match):
    with pytest.raises(ImageConversionError, match=match) as raised:
        image_to_rgb(**fields, limits=limits)
    assert str(raised.value).startswith("Image") and "\n" not in str(raised.value)


def test_the_valid_image_of_the_table_converts():
    assert image_to_rgb(**VALID).shape == (HEIGHT, WIDTH, 3)
