"""Tensor functions shared by the layers and the camera model (``keras.ops``, any backend).

Images are NHWC float32. Every function here works with dynamic H and W and exports to
TFLite builtin ops (gathers, slices and reshapes only; no ``tf.searchsorted``, no dynamic pads).
"""

from keras import ops

CURVE_SAMPLES = 1024


def apply_curve(images, curves):
    """Applies one curve per image: images [N, H, W, C], curves [N, 1024] -> [N, H, W, C].

    Linear interpolation at position ``x * 1023`` with ``x`` clamped to [0, 1]; the same curve
    for every channel (docs/design.md#curves). Always computed and returned in float32, whatever the input
    dtypes: in bfloat16 the position ``x * 1023`` rounds to steps of up to 4 samples (and to 1024).
    """
    images = ops.cast(images, "float32")
    shape = ops.shape(images)
    batch = shape[0]
    flat = ops.reshape(ops.clip(images, 0.0, 1.0), (batch, -1)) * (CURVE_SAMPLES - 1)
    lower = ops.clip(ops.floor(flat), 0.0, CURVE_SAMPLES - 2)
    frac = flat - lower
    offsets = ops.expand_dims(ops.arange(batch, dtype="int32") * CURVE_SAMPLES, 1)
    index = ops.cast(lower, "int32") + offsets
    table = ops.reshape(ops.cast(curves, "float32"), (-1,))
    v0 = ops.take(table, index)
    v1 = ops.take(table, index + 1)
    return ops.reshape(v0 + frac * (v1 - v0), shape)


def reflect_indices(size, pad_before, pad_after):
    """Source indices [pad_before + size + pad_after] for reflect padding of any width.

    Reflection without repeating the edge (``tf.pad`` REFLECT), folded as often as needed, so
    pads wider than the image are allowed; a size-1 axis repeats its single element.
    """
    period = ops.maximum(2 * size - 2, 1)
    index = ops.mod(ops.arange(-pad_before, size + pad_after, dtype="int32"), period)
    return ops.minimum(index, period - index)


def reflect_pad(images, top, bottom, left, right):
    """Reflect-pads images [N, H, W, C] by the given (possibly dynamic) amounts."""
    shape = ops.shape(images)
    images = ops.take(images, reflect_indices(shape[1], top, bottom), axis=1)
    return ops.take(images, reflect_indices(shape[2], left, right), axis=2)


def pad_to_multiple(images, multiple):
    """Reflect-pads H and W at the bottom/right up to a multiple; returns (padded, (H, W))."""
    shape = ops.shape(images)
    height, width = shape[1], shape[2]
    pad_h = (-height) % multiple if isinstance(height, int) else ops.mod(-height, multiple)
    pad_w = (-width) % multiple if isinstance(width, int) else ops.mod(-width, multiple)
    return reflect_pad(images, 0, pad_h, 0, pad_w), (height, width)


def crop_to(images, size):
    """Crops images [N, H', W', C] to their top-left ``size = (H, W)``."""
    return images[:, : size[0], : size[1], :]


def upsample2x_legacy_bilinear(images):
    """x2 bilinear upsampling with TF1 legacy alignment [N, H, W, C] -> [N, 2H, 2W, C].

    ``tf.compat.v1.image.resize_bilinear(align_corners=False)`` without half-pixel centres:
    output pixel ``i`` samples input position ``i / 2``, so even outputs copy the input and odd
    outputs average a pixel with its next neighbour (the last one repeats at the border).
    """
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    down = ops.concatenate([images[:, 1:], images[:, -1:]], axis=1)
    rows = ops.reshape(ops.stack([images, 0.5 * (images + down)], axis=2), (batch, 2 * height, width, channels))
    right = ops.concatenate([rows[:, :, 1:], rows[:, :, -1:]], axis=2)
    return ops.reshape(ops.stack([rows, 0.5 * (rows + right)], axis=3), (batch, 2 * height, 2 * width, channels))


def upsample2x_nearest(images):
    """x2 nearest-neighbour upsampling [N, H, W, C] -> [N, 2H, 2W, C]."""
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    rows = ops.reshape(ops.stack([images, images], axis=2), (batch, 2 * height, width, channels))
    return ops.reshape(ops.stack([rows, rows], axis=3), (batch, 2 * height, 2 * width, channels))


def monotone_curve(curves):
    """Monotone projection of curves [N, 1024] (:func:`hdr_keras.crf.monotone_projection`), float32.

    Non-decreasing, exactly 0 at 0 and 1 at 1: negative steps become 0, steps are normalised.
    """
    curves = ops.cast(curves, "float32")
    diffs = ops.relu(curves[:, 1:] - curves[:, :-1])
    diffs = diffs + 1e-10  # a flat curve (all differences 0) becomes the identity, not 0 / 0
    diffs = diffs / ops.sum(diffs, axis=1, keepdims=True)
    inner = ops.minimum(ops.cumsum(diffs[:, :-1], axis=1), 1.0)
    zeros = ops.zeros_like(curves[:, :1])
    return ops.concatenate([zeros, inner, zeros + 1.0], axis=1)
