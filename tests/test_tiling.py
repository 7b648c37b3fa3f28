"""Tests for hdr_keras.tiling: tile planning and feathered blending (pure NumPy)."""

import numpy as np
import pytest

from hdr_keras import tiling


def _check_axis(spans, length, tile, overlap, align):
    assert spans[0][0] == 0 and spans[-1][1] == length
    for start, stop in spans:
        assert start % align == 0
        assert 0 < stop - start <= tile
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert s0 < s1 and e0 < e1
        assert e0 - s1 >= overlap  # neighbours overlap by at least `overlap`
    if len(spans) > 1:
        assert all(e - s == tile for s, e in spans[:-1])
        assert spans[-1][1] - spans[-1][0] > tile - align


@pytest.mark.parametrize("align", [1, 8, 32])
@pytest.mark.parametrize("tile,overlap", [(64, 0), (64, 16), (96, 32), (128, 48), (1024, 128)])
def test_plan_axis_covers_with_overlap_and_alignment(tile, overlap, align):
    if overlap > tile - align:
        pytest.skip("invalid combination")
    for length in list(range(1, 3 * tile + 7, 5)) + [tile, tile + 1, 4000, 3001]:
        spans = tiling.plan_axis(length, tile, overlap, align)
        if length <= tile:
            assert spans == [(0, length)]
        else:
            _check_axis(spans, length, tile, overlap, align)


def test_plan_axis_examples():
    assert tiling.plan_axis(1024, 1024, 128) == [(0, 1024)]
    assert tiling.plan_axis(1025, 1024, 128, 32) == [(0, 1024), (32, 1025)]
    # 12 MP (4000 x 3000) with the CLI defaults: 5 x 4 tiles.
    assert len(tiling.plan_axis(4000, 1024, 128, 32)) == 5
    assert len(tiling.plan_axis(3000, 1024, 128, 32)) == 4
    assert tiling.plan_axis(300, 128, 48, 32) == [(0, 128), (64, 192), (128, 256), (192, 300)]


@pytest.mark.parametrize("args", [(10, 0, 0), (10, 8, 4, 5), (0, 4, 1), (10, 4, 10), (10, 4, -1), (10, 4, 2, 0)])
def test_plan_axis_rejects_bad_arguments(args):
    length, tile, overlap, *align = args
    with pytest.raises(ValueError):
        tiling.plan_axis(length, tile, overlap, *align)


def test_plan_tiles_row_major_grid():
    tiles = tiling.plan_tiles(100, 150, 64, 16, 16)
    rows = tiling.plan_axis(100, 64, 16, 16)
    cols = tiling.plan_axis(150, 64, 16, 16)
    assert len(tiles) == len(rows) * len(cols)
    assert tiles[0] == tiling.Tile(0, 64, 0, 64, 0, 0)
    assert [(t.row, t.col) for t in tiles] == [(r, c) for r in range(len(rows)) for c in range(len(cols))]
    assert tiling.plan_tiles(20, 30, 64, 16) == [tiling.Tile(0, 20, 0, 30, 0, 0)]


def test_axis_weights_ramp_inside_flat_on_border_and_complementary():
    spans = tiling.plan_axis(300, 128, 48, 32)
    weights = [tiling.axis_weight(spans, i) for i in range(len(spans))]
    assert all(np.all(w > 0) and np.all(w <= 1) for w in weights)
    assert weights[0][0] == 1 and weights[-1][-1] == 1  # image border: no ramp
    assert weights[0][-1] < 0.05 and weights[1][0] < 0.05  # cut edges: almost no weight
    total = np.zeros(300)
    for (s, e), w in zip(spans, weights):
        total[s:e] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)  # neighbours' ramps sum to 1


def test_tile_weight_is_outer_product_and_small_at_inner_corners():
    tiles = tiling.plan_tiles(200, 260, 128, 48, 32)
    t = tiles[0]
    w = tiling.tile_weight(200, 260, 128, 48, t, 32)
    assert w.shape == (t.y1 - t.y0, t.x1 - t.x0)
    assert w[0, 0] == 1 and w[-1, -1] < 1e-3


@pytest.mark.parametrize("shape", [(37, 53), (200, 260), (128, 128), (129, 300), (5, 700)])
@pytest.mark.parametrize("align", [1, 32])
def test_blending_reproduces_a_context_free_function_exactly(shape, align):
    image = np.random.default_rng(0).random(shape + (3,), dtype=np.float32)
    calls = []
    out = tiling.run_tiled(image, lambda w: w * 2.0 + 1.0, 64, 16, align, on_tile=calls.append)
    np.testing.assert_allclose(out, image * 2.0 + 1.0, rtol=1e-6, atol=1e-6)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert len(calls) == len(tiling.plan_tiles(*shape, 64, 16, align))


def test_blending_changes_channel_count():
    image = np.random.default_rng(1).random((90, 130, 3), dtype=np.float32)
    out = tiling.run_tiled(image, lambda w: w.sum(-1, keepdims=True), 64, 16, 16)
    np.testing.assert_allclose(out, image.sum(-1, keepdims=True), rtol=1e-5)


def _box_blur(window, radius):
    """A context-dependent function: box blur with reflect padding at the window's edges."""
    padded = np.pad(window, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    cumulative = np.cumsum(np.cumsum(np.pad(padded, ((1, 0), (1, 0), (0, 0))), 0), 1)
    k = 2 * radius + 1
    h, w = window.shape[:2]
    return (
        cumulative[k : k + h, k : k + w] - cumulative[:h, k : k + w] - cumulative[k : k + h, :w] + cumulative[:h, :w]
    ) / k**2


def test_feathering_hides_seams_of_a_context_dependent_function():
    """Errors of a window near its cut edges get little weight: the blend is far closer to the
    whole-image result than hard-cut tiles (no overlap) are."""
    rng = np.random.default_rng(2)
    image = rng.random((160, 224, 3)).astype(np.float32)
    radius = 4
    whole = _box_blur(image, radius)
    feathered = tiling.run_tiled(image, lambda w: _box_blur(w, radius), 64, 32)
    hard = np.zeros_like(image)
    for t in tiling.plan_tiles(160, 224, 64, 0):
        hard[t.y0 : t.y1, t.x0 : t.x1] = _box_blur(image[t.y0 : t.y1, t.x0 : t.x1], radius)
    err_feathered = np.abs(feathered - whole).mean()
    err_hard = np.abs(hard - whole).mean()
    assert err_feathered < 0.25 * err_hard, (err_feathered, err_hard)
    # Far from every cut edge (> radius) a window is exact; the ramps keep edge errors small.
    assert np.abs(feathered - whole).max() < 0.1


def test_blender_checks_shapes_and_coverage():
    blender = tiling.TileBlender(50, 70, 3, 32, 8)
    t = blender.tiles[0]
    with pytest.raises(ValueError, match="shape"):
        blender.add(t, np.zeros((t.y1 - t.y0, t.x1 - t.x0, 4), np.float32))
    blender.add(t, np.ones((t.y1 - t.y0, t.x1 - t.x0, 3), np.float32))
    with pytest.raises(ValueError, match="not covered"):
        blender.result()
