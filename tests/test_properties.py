"""Property-based tests (Hypothesis): image reading, the tiling plan and the curve operations.

Reading: any small 8/16-bit image written by Pillow or OpenCV reads back exactly (value / 255 or
/ 65535), and any bytes behind an image signature either read as a finite image in [0, 1] or
fail with ImageReadError. Tiling: windows cover every pixel, start on the alignment, overlap
their neighbours by the overlap asked for, and blending reproduces a context-free function.
Curves: the monotone projections give non-decreasing curves from 0 to 1 for any finite input;
inverting a strictly increasing curve and applying it gives back the input; applying a curve
gives finite, non-decreasing values for any finite or infinite input (NaN is refused before it
gets there: by ``hdr_keras.io.read_ldr`` and by the serving signatures' checks).
"""

import io
import pathlib
import tempfile

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageOps

from hdr_keras import crf, ops, tiling
from hdr_keras import io as hio

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _images(dtype, channels):
    shape = st.tuples(st.integers(1, 12), st.integers(1, 12)).map(lambda hw: hw + ((channels,) if channels > 1 else ()))
    return hnp.arrays(dtype, shape, elements=st.integers(0, np.iinfo(dtype).max))


def _read_back(data, name):
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / name
        path.write_bytes(data)
        return hio.read_ldr(path, min_size=1)


def _expected(array, scale):
    if array.ndim == 2:
        array = array[..., None]
    return np.broadcast_to(array[..., :3], array.shape[:2] + (3,)).astype(np.float32) / scale


# ------------------------------------------------------------------------------ reading

LOSSLESS = {"png": "PNG", "bmp": "BMP", "tif": "TIFF", "webp": "WEBP"}


@SETTINGS
@given(
    array=st.one_of(_images(np.uint8, 1), _images(np.uint8, 3), _images(np.uint8, 4)),
    suffix=st.sampled_from(sorted(LOSSLESS)),
)
def test_8bit_images_read_back_exactly(array, suffix):
    if suffix == "webp" and array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)  # WebP stores colour only
    if suffix in ("bmp", "webp") and array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]  # BMP / WebP with alpha are lossless for colour only where alpha is 255
    buffer = io.BytesIO()
    options = {"lossless": True, "exact": True} if suffix == "webp" else {}
    Image.fromarray(array).save(buffer, format=LOSSLESS[suffix], **options)
    image = _read_back(buffer.getvalue(), f"x.{suffix}")
    np.testing.assert_array_equal(image, _expected(array, 255.0))


@SETTINGS
@given(
    array=st.one_of(_images(np.uint16, 1), _images(np.uint16, 3), _images(np.uint16, 4)),
    suffix=st.sampled_from(["png", "tif"]),
)
def test_16bit_images_read_back_exactly(array, suffix):
    ok, encoded = cv2.imencode(f".{suffix}", array if array.ndim == 2 else array[..., [2, 1, 0, 3][: array.shape[2]]])
    assert ok
    image = _read_back(encoded.tobytes(), f"x.{suffix}")
    np.testing.assert_array_equal(image, _expected(array, 65535.0))


@SETTINGS
@given(array=_images(np.uint8, 3), orientation=st.integers(1, 8))
def test_exif_orientation_gives_the_displayed_image(array, orientation):
    img = Image.fromarray(array)
    exif = img.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", exif=exif)
    with Image.open(io.BytesIO(buffer.getvalue())) as reference:
        displayed = np.asarray(ImageOps.exif_transpose(reference))
    np.testing.assert_array_equal(_read_back(buffer.getvalue(), "x.png"), displayed.astype(np.float32) / 255.0)


SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF\0\0\0\0WEBPVP8 ", b""]


@settings(max_examples=200, deadline=None)
@given(signature=st.sampled_from(SIGNATURES), body=st.binary(max_size=300))
def test_any_bytes_read_as_an_image_in_range_or_fail_with_image_read_error(signature, body):
    try:
        image = _read_back(signature + body, "x.png")
    except hio.ImageReadError:
        return
    assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3
    assert np.all(np.isfinite(image)) and image.min() >= 0 and image.max() <= 1


# ------------------------------------------------------------------------------- tiling


@st.composite
def _plans(draw):
    align = draw(st.sampled_from([1, 8, 16, 32]))
    tile = align * draw(st.integers(1, 40))
    overlap = draw(st.integers(0, tile - align))
    return draw(st.integers(1, 5000)), tile, overlap, align


@SETTINGS
@given(plan=_plans())
def test_plan_axis_covers_aligns_and_overlaps(plan):
    length, tile, overlap, align = plan
    spans = tiling.plan_axis(length, tile, overlap, align)
    covered = np.zeros(length, bool)
    for start, stop in spans:
        assert start % align == 0 and 0 <= start < stop <= length and stop - start <= tile
        covered[start:stop] = True
    assert covered.all()
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert s0 < s1 and e0 < e1 and e0 - s1 >= overlap
    for index in range(len(spans)):
        weight = tiling.axis_weight(spans, index)
        assert weight.shape == (spans[index][1] - spans[index][0],) and weight.min() > 0 and weight.max() <= 1


@SETTINGS
@given(
    shape=st.tuples(st.integers(1, 90), st.integers(1, 90)),
    plan=st.sampled_from([(16, 0, 1), (16, 4, 4), (32, 8, 8), (24, 8, 8)]),
    seed=st.integers(0, 2**16),
)
def test_blending_a_context_free_function_reproduces_it(shape, plan, seed):
    """Weights of overlapping windows sum to the normaliser: per pixel, a weighted mean of equal
    values, exact up to float32 rounding of the products and the division (a few ulps of 1)."""
    tile, overlap, align = plan
    image = np.random.default_rng(seed).uniform(0.0, 4.0, shape + (2,)).astype(np.float32)
    blended = tiling.run_tiled(image, lambda window: window * 3.0 + 1.0, tile, overlap, align)
    np.testing.assert_allclose(blended, image * 3.0 + 1.0, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------- curves

_CURVES = hnp.arrays(np.float64, (2, crf.NUM_SAMPLES), elements=st.floats(-1e6, 1e6, allow_nan=False))


def _increasing(seed):
    """A strictly increasing curve [1024] from 0 to 1 with random steps (some tiny)."""
    steps = np.random.default_rng(seed).exponential(1.0, crf.NUM_SAMPLES - 1) ** 3 + 1e-6
    curve = np.concatenate([[0.0], np.cumsum(steps)])
    return curve / curve[-1]


def _assert_monotone_0_to_1(curves, atol=0.0):
    assert np.all(np.isfinite(curves))
    assert np.all(np.diff(curves, axis=-1) >= -atol)
    np.testing.assert_array_equal(curves[..., 0], 0.0)
    np.testing.assert_allclose(curves[..., -1], 1.0, atol=atol)


@SETTINGS
@given(curves=_CURVES)
def test_monotone_projection_of_any_finite_curve(curves):
    projected = crf.monotone_projection(curves)
    _assert_monotone_0_to_1(projected)
    assert projected.max() <= 1.0


@SETTINGS
@given(curves=_CURVES)
def test_tensorflow_monotone_curve_of_any_finite_curve(curves):
    projected = np.asarray(ops.monotone_curve(curves.astype(np.float32)))
    # float32 cumulative sum of 1023 normalised steps: the last inner sample may exceed 1 by
    # rounding before the clamp; steps stay >= 0 up to one float32 ulp of 1 (6e-8).
    _assert_monotone_0_to_1(projected, atol=1.2e-7)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_inverting_a_strictly_increasing_curve_and_applying_it_gives_the_input(seed):
    curve = _increasing(seed)
    inverse = crf.invert_curve(curve)
    _assert_monotone_0_to_1(inverse)
    # The inverse of a piecewise-linear curve through (x_i, c_i) is piecewise linear through
    # (c_i, x_i): composing them is the identity up to the 1e-9 ramp invert_curve adds.
    np.testing.assert_allclose(np.interp(inverse, crf.GRID, curve), crf.GRID, atol=1e-8)
    np.testing.assert_allclose(crf.invert_curve(inverse), curve, atol=1e-3)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    values=hnp.arrays(np.float32, st.integers(1, 64), elements=st.floats(width=32, allow_nan=False)),
)
def test_apply_curve_is_finite_and_monotone_for_any_value(seed, values):
    curve = _increasing(seed).astype(np.float32)
    images = np.sort(values)[None, None, :, None]
    out = np.asarray(ops.apply_curve(images, curve[None]))[0, 0, :, 0]
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1
    assert np.all(np.diff(out) >= 0)
    # Linear interpolation at x * 1023 in float32: within a few ulps of the float64 reference.
    np.testing.assert_allclose(out, np.interp(np.clip(np.sort(values), 0, 1), crf.GRID, curve), atol=2e-6)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.finfo(np.float32).max, -np.finfo(np.float32).max, 0.0, 1.0])
def test_apply_curve_extremes(value):
    curve = _increasing(0).astype(np.float32)
    out = np.asarray(ops.apply_curve(np.full((1, 2, 2, 3), value, np.float32), curve[None]))
    np.testing.assert_allclose(out, curve[-1] if value >= 1 else 0.0, atol=1e-6)
