"""Tiling of large images: tile planning and feathered blending (pure NumPy, no TensorFlow).

A large image is cut into overlapping ``tile`` x ``tile`` windows (:func:`plan_tiles`), each window
is processed on its own, and the results are blended back (:class:`TileBlender`) with weights that
ramp linearly from ~0 at a tile's inner edge to 1 over the overlap with its neighbour
(:func:`tile_weight`), normalised by the sum of the weights. Edges on the image border are not
ramped. Two neighbours' ramps over their shared band are complementary (they sum to 1), so a
function that does not depend on its context (e.g. the identity) is reproduced exactly, and
errors near a tile's inner edge, where the window cut off context, get almost no weight.

Along each axis, windows of ``tile`` pixels are spread evenly and start at multiples of ``align``
(:func:`plan_axis`); the last one ends at the image border and may be up to ``align - 1`` pixels
shorter. Aligned
starts matter for networks that pool: a window starting at a multiple of the network's total
downsampling factor sees the same pooling grid as the whole image, so its result differs from the
whole-image result only near its cut edges, not everywhere. An axis not longer than ``tile`` is
one window.

:func:`run_tiled` ties it together for a function ``fn(window) -> result`` of the same height and
width. Memory: the blender holds one float32 accumulator [H, W, C] and one weight sum [H, W];
only one window is processed at a time.
"""

import math
from typing import NamedTuple

import numpy as np


class Tile(NamedTuple):
    """One window: rows ``y0:y1`` and columns ``x0:x1`` of the image, at grid cell (row, col)."""

    y0: int
    y1: int
    x0: int
    x1: int
    row: int
    col: int


def _check(tile, overlap, align=1):
    if int(tile) != tile or tile < 1:
        raise ValueError(f"tile must be a positive integer, got {tile!r}")
    if int(align) != align or align < 1:
        raise ValueError(f"align must be a positive integer, got {align!r}")
    if int(overlap) != overlap or not 0 <= overlap <= tile - align:
        raise ValueError(
            f"overlap must be an integer in [0, tile - align], got {overlap!r} (tile {tile}, align {align})"
        )


def plan_axis(length, tile, overlap, align=1):
    """Windows ``[(start, stop), ...]`` covering ``[0, length)`` along one axis.

    ``length <= tile``: one window ``(0, length)``. Otherwise the last window is ``(S, length)``
    with ``S`` the smallest multiple of ``align`` not below ``length - tile``, and the others are
    ``tile`` pixels long, their starts spread evenly over ``[0, S]`` and rounded to multiples of
    ``align``, using the fewest windows for which neighbours overlap by at least ``overlap``. So
    every start is a multiple of ``align``, every window at most ``tile`` long (the last one more
    than ``tile - align``).
    """
    _check(tile, overlap, align)
    length = int(length)
    if length < 1:
        raise ValueError(f"length must be positive, got {length}")
    if length <= tile:
        return [(0, length)]
    last = -(-(length - tile) // align) * align
    units, max_step = last // align, tile - overlap
    count = -(-last // max_step) + 1
    while True:
        starts = [align * math.floor(i * units / (count - 1) + 0.5) for i in range(count)]
        if all(b - a <= max_step for a, b in zip(starts, starts[1:])):
            break
        count += 1
    return [(start, start + tile) for start in starts[:-1]] + [(last, length)]


def plan_tiles(height, width, tile, overlap, align=1):
    """All windows of an ``height`` x ``width`` image, row by row: a list of :class:`Tile`."""
    rows = plan_axis(height, tile, overlap, align)
    cols = plan_axis(width, tile, overlap, align)
    return [Tile(y0, y1, x0, x1, r, c) for r, (y0, y1) in enumerate(rows) for c, (x0, x1) in enumerate(cols)]


def axis_weight(spans, index):
    """1-D blending weight [stop - start] of window ``index`` among ``spans`` (from :func:`plan_axis`).

    Ramps ``(x + 0.5) / ov`` up from the start when a previous window overlaps it by ``ov``, and
    down to the stop likewise for the next window; 1 elsewhere (and on the image border). Always
    > 0, so every pixel gets weight from the windows that cover it.
    """
    start, stop = spans[index]
    size = stop - start
    centres = np.arange(size, dtype=np.float64) + 0.5
    weight = np.ones(size, np.float64)
    if index > 0:
        shared = spans[index - 1][1] - start
        if shared > 0:
            weight = np.minimum(weight, centres / shared)
    if index < len(spans) - 1:
        shared = stop - spans[index + 1][0]
        if shared > 0:
            weight = np.minimum(weight, (size - centres) / shared)
    return weight.astype(np.float32)


def tile_weight(height, width, tile, overlap, t, align=1):
    """2-D weight [t.y1 - t.y0, t.x1 - t.x0] of window ``t`` of an ``height`` x ``width`` image."""
    wy = axis_weight(plan_axis(height, tile, overlap, align), t.row)
    wx = axis_weight(plan_axis(width, tile, overlap, align), t.col)
    return np.outer(wy, wx)


class TileBlender:
    """Accumulates weighted windows into a float32 [H, W, C] image; :meth:`result` normalises."""

    def __init__(self, height, width, channels, tile, overlap, align=1):
        self.height, self.width, self.tile, self.overlap = int(height), int(width), int(tile), int(overlap)
        self._rows = plan_axis(self.height, self.tile, self.overlap, align)
        self._cols = plan_axis(self.width, self.tile, self.overlap, align)
        self._sum = np.zeros((self.height, self.width, int(channels)), np.float32)
        self._weight = np.zeros((self.height, self.width), np.float32)

    @property
    def tiles(self):
        """The windows to fill, as :func:`plan_tiles` lists them."""
        return [
            Tile(y0, y1, x0, x1, r, c)
            for r, (y0, y1) in enumerate(self._rows)
            for c, (x0, x1) in enumerate(self._cols)
        ]

    def add(self, t, values):
        """Adds ``values`` [t.y1 - t.y0, t.x1 - t.x0, C], the processed window ``t``."""
        values = np.asarray(values, np.float32)
        expected = (t.y1 - t.y0, t.x1 - t.x0, self._sum.shape[2])
        if values.shape != expected:
            raise ValueError(f"tile {t} result has shape {values.shape}, expected {expected}")
        weight = np.outer(axis_weight(self._rows, t.row), axis_weight(self._cols, t.col))
        self._sum[t.y0 : t.y1, t.x0 : t.x1] += values * weight[..., None]
        self._weight[t.y0 : t.y1, t.x0 : t.x1] += weight

    def result(self):
        """The blended image [H, W, C] float32 (computed in place; call once, after every tile)."""
        if not np.all(self._weight > 0):
            raise ValueError("some pixels were not covered by any added tile")
        self._sum /= self._weight[..., None]
        return self._sum


def run_tiled(image, fn, tile, overlap, align=1, on_tile=None):
    """Applies ``fn`` window by window to ``image`` [H, W, C_in] and blends: [H, W, C_out] float32.

    ``fn(window [h, w, C_in]) -> [h, w, C_out]``; ``on_tile(t)``, if given, is called after each
    window (e.g. to advance a progress bar).
    """
    image = np.asarray(image)
    height, width = image.shape[:2]
    blender = None
    for t in plan_tiles(height, width, tile, overlap, align):
        out = np.asarray(fn(image[t.y0 : t.y1, t.x0 : t.x1]))
        if blender is None:
            blender = TileBlender(height, width, out.shape[-1], tile, overlap, align)
        blender.add(t, out)
        if on_tile is not None:
            on_tile(t)
    return blender.result()
