"""Tensor functions shared by the layers and the camera model (``keras.ops``, any backend).

Images are NHWC, float32 unless a function says otherwise. Every function here works with dynamic H
and W and exports to TFLite builtin ops (convolutions, gathers, slices, reshapes, depth_to_space;
no ``tf.searchsorted``, no dynamic pads). A few take a TensorFlow-only fast path (:func:`tensorflow`).
"""

import keras
import numpy as np
from keras import ops

from hdr_keras.metrics import REC709_LUMA

CURVE_SAMPLES = 1024


def tensorflow():
    """The ``tensorflow`` module when Keras runs on it, else None (for TensorFlow-only fast paths)."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf


def bias_add(images, bias):
    """``images + bias`` over the last axis; TensorFlow's ``BiasAdd`` op on that backend, which its
    CPU graph optimiser fuses into the convolution before it (with a following add or activation).
    """
    tf = tensorflow()
    return images + bias if tf is None else tf.nn.bias_add(images, bias)


def concat_conv(tensors, kernel, bias, padding="valid"):
    """``conv(concatenate(tensors, -1), kernel, padding) + bias``, stride 1, without the concatenation.

    tensors: [N, H, W, C_i]; kernel [k, k, sum C_i, F]; bias [F]. One convolution per tensor over
    its rows of the kernel, added: no concatenated copy, and on CPU the first convolution, the
    bias and the add fuse into one op.
    """
    start, total = 0, None
    for tensor in tensors:
        channels = tensor.shape[-1]
        part = ops.conv(tensor, kernel[:, :, start : start + channels], padding=padding)
        total = bias_add(part, bias) if total is None else total + part
        start += channels
    return total


def gather(table, indices):
    """``table[indices]`` for a 1-D table and int32 indices known to be in range.

    ``ops.take`` on TensorFlow first maps negative indices (three passes over the indices).
    """
    tf = tensorflow()
    return ops.take(table, indices) if tf is None else tf.gather(table, indices)


def apply_curve(images, curves):
    """Applies one curve per image: images [N, H, W, C], curves [N, 1024] -> [N, H, W, C].

    Linear interpolation at position ``x * 1023`` with ``x`` clamped to [0, 1]; the same curve
    for every channel (docs/design.md#curves). Always computed and returned in float32, whatever the input
    dtypes: in bfloat16 the position ``x * 1023`` rounds to steps of up to 4 samples (and to 1024).
    """
    images = ops.cast(images, "float32")
    curves = ops.cast(curves, "float32")
    shape = ops.shape(images)
    batch = shape[0]
    flat = ops.reshape(ops.clip(images, 0.0, 1.0), (batch, -1)) * (CURVE_SAMPLES - 1)
    index = ops.minimum(ops.cast(flat, "int32"), CURVE_SAMPLES - 2)  # flat >= 0: truncation is floor
    frac = flat - ops.cast(index, "float32")
    steps = ops.pad(curves[:, 1:] - curves[:, :-1], ((0, 0), (0, 1)))
    if not (isinstance(batch, int) and batch == 1):
        index = index + ops.expand_dims(ops.arange(batch, dtype="int32") * CURVE_SAMPLES, 1)
    low = gather(ops.reshape(curves, (-1,)), index)
    return ops.reshape(low + frac * gather(ops.reshape(steps, (-1,)), index), shape)


def luminance(images):
    """Rec. 709 luminance [N, H, W, 1] of RGB images [N, H, W, 3] (linear or display values)."""
    return ops.sum(images * ops.convert_to_tensor(REC709_LUMA, images.dtype), axis=-1, keepdims=True)


def saturate(images, factor):
    """``Y + factor (x - Y)``, ``Y`` the :func:`luminance`: more colour above 1, less below (0: grey);
    ``factor`` broadcasts against [N, H, W, 3] (e.g. [N, 1, 1, 1])."""
    luma = luminance(images)
    return luma + factor * (images - luma)


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


LEGACY_CONV_MAX_CHANNELS = 32
"""Widest 16-bit input :func:`upsample2x_legacy_bilinear` computes as a convolution: its kernel is
block-diagonal, 16 C^2 multiply-adds per input pixel, cheap only for few channels, and in float32
not faster than the elementwise form (measured: lite's Dequantization-Net at 1 MP, 0.201 vs
0.187 s in float32, 0.081 vs 0.096 s in bfloat16)."""

# _LEGACY_PHASES[dy, dx, p]: weight of input pixel (i + dy, j + dx) in output pixel (2i + a, 2j + b),
# phase p = 2a + b, of the TF1 legacy bilinear x2 (even outputs copy, odd ones average neighbours).
_LEGACY_PHASES = np.zeros((2, 2, 4), np.float32)
_LEGACY_PHASES[0, 0, 0] = 1.0
_LEGACY_PHASES[0, :, 1] = 0.5
_LEGACY_PHASES[:, 0, 2] = 0.5
_LEGACY_PHASES[:, :, 3] = 0.25


def upsample2x_legacy_bilinear(images):
    """x2 bilinear upsampling with TF1 legacy alignment [N, H, W, C] -> [N, 2H, 2W, C].

    ``tf.compat.v1.image.resize_bilinear(align_corners=False)`` without half-pixel centres:
    output pixel ``i`` samples input position ``i / 2``, so even outputs copy the input and odd
    outputs average a pixel with its next neighbour (the last one repeats at the border).
    In bfloat16 / float16 with few channels it is one 2x2 convolution of the input, edge-padded at
    the bottom and right, to the 4 phases of every channel, then ``depth_to_space``: two passes
    over the output where averaging and interleaving rows and columns take eight.
    """
    channels = images.shape[-1]
    if channels > LEGACY_CONV_MAX_CHANNELS or keras.backend.standardize_dtype(images.dtype) == "float32":
        shape = ops.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        down = ops.concatenate([images[:, 1:], images[:, -1:]], axis=1)
        rows = ops.reshape(ops.stack([images, 0.5 * (images + down)], axis=2), (batch, 2 * height, width, channels))
        right = ops.concatenate([rows[:, :, 1:], rows[:, :, -1:]], axis=2)
        return ops.reshape(ops.stack([rows, 0.5 * (rows + right)], axis=3), (batch, 2 * height, 2 * width, channels))
    kernel = np.einsum("yxp,io->yxipo", _LEGACY_PHASES, np.eye(channels, dtype=np.float32))
    kernel = ops.convert_to_tensor(kernel.reshape(2, 2, channels, 4 * channels), images.dtype)
    padded = ops.concatenate([images, images[:, -1:]], axis=1)
    padded = ops.concatenate([padded, padded[:, :, -1:]], axis=2)
    return ops.depth_to_space(ops.conv(padded, kernel, padding="valid"), 2)


def edge_pad1(images):
    """Pads H and W of images [N, H, W, C] by one pixel on each side, repeating the edge."""
    images = ops.concatenate([images[:, :1], images, images[:, -1:]], axis=1)
    return ops.concatenate([images[:, :, :1], images, images[:, :, -1:]], axis=2)


# _PHASE_TAPS[p][u][r]: for output row phase p (even, odd) of a x2 nearest upsampling, reflect pad 1
# and 3x3 VALID convolution, the weight of that convolution's tap r in tap u of a 3x3 VALID
# convolution of the input edge-padded by 1 (padded rows i, i+1, i+2 = input rows i-1, i, i+1).
# Even output row 2i reads upsampled rows 2i-1, 2i, 2i+1 = input rows i-1, i, i; odd row 2i+1
# reads 2i, 2i+1, 2i+2 = input rows i, i, i+1. The reflected border row of the upsampled image is
# the input's edge row repeated, so the identity also holds at the borders. The same for columns.
_PHASE_TAPS = ((1, 0, 0), (0, 1, 1), (0, 0, 0)), ((0, 0, 0), (1, 1, 0), (0, 0, 1))


def upsample2x_nearest_conv3x3(images, kernel, bias):
    """``conv(reflect_pad(nearest_x2(images), 1, 1, 1, 1), kernel, "valid") + bias``, as phases.

    images [N, H, W, C]; kernel [3, 3, C, F]; bias [F] -> phases [N, H, W, 4F] in the images'
    dtype: channel ``(2a + b) F + f`` is filter ``f`` of output pixel ``(2i + a, 2j + b)``, the
    layout of ``depth_to_space`` (:func:`phases_to_space` makes the [N, 2H, 2W, F] image).
    Computed as one 3x3 VALID convolution of ``edge_pad1(images)`` whose kernel sums the original
    taps in float32: the same multiply-adds on a 4x smaller image, with no upsampled copy and no
    padding gather. Per-filter operations (activation, batch norm) can run on the phases.
    """
    taps = ops.convert_to_tensor(_PHASE_TAPS, "float32")
    channels, filters = kernel.shape[2], kernel.shape[3]
    phases = ops.einsum("aur,bvs,rscf->uvcabf", taps, taps, ops.cast(kernel, "float32"))
    phases = ops.cast(ops.reshape(phases, (3, 3, channels, 4 * filters)), images.dtype)
    return bias_add(ops.conv(edge_pad1(images), phases, padding="valid"), ops.tile(ops.cast(bias, images.dtype), 4))


def phases_to_space(phases):
    """[N, H, W, 4F] phases (:func:`upsample2x_nearest_conv3x3`) -> [N, 2H, 2W, F] image."""
    return ops.depth_to_space(phases, 2)


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
