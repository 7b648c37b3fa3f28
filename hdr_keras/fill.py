"""Tensor functions of the whole-image highlight fill (``keras.ops``; dynamic H and W; TFLite builtins).

The :class:`~hdr_keras.models.ContextHallucinationNet` works at a reduced *working resolution*
(the image area-averaged by an integer factor so that its long side fits ``working_side``), where a
whole clipped region fits the network's view; :func:`propagate` carries the colour of the unclipped
surroundings into clipped regions (push-pull normalised convolution), and
:func:`masked_upsample` brings a fill back to full resolution from the clipped working pixels only,
so that the colour of an unclipped neighbour never bleeds into a fill.
"""

from keras import ops

from hdr_keras import ops as hdr_ops

EPS = 1e-4


def _int_or_tensor_max(a, b):
    return max(a, b) if isinstance(a, int) and isinstance(b, int) else ops.maximum(a, b)


def working_factor(height, width, working_side):
    """Integer factor ``f = ceil(max(H, W) / working_side)`` (>= 1); Python int for static sizes."""
    longest = _int_or_tensor_max(height, width)
    return _int_or_tensor_max((longest + working_side - 1) // working_side, 1)


def area_downscale(images, factor):
    """[N, H, W, C] -> [N, ceil(H / f), ceil(W / f), C], means of f x f blocks (edge blocks reflect-padded)."""
    if isinstance(factor, int) and factor == 1:
        return images
    shape = ops.shape(images)
    height, width, channels = shape[1], shape[2], images.shape[-1]
    pad_h, pad_w = (-height) % factor, (-width) % factor
    padded = hdr_ops.reflect_pad(images, 0, pad_h, 0, pad_w)
    h, w = (height + pad_h) // factor, (width + pad_w) // factor
    blocks = ops.reshape(padded, (-1, h, factor, w, factor, channels))
    return ops.mean(blocks, axis=(2, 4))


def resize_bilinear(images, height, width):
    """Bilinear resize (half-pixel centres) of [N, h, w, C] to [N, height, width, C]; sizes may be dynamic."""
    tf = hdr_ops.tensorflow()
    if tf is not None:
        return tf.image.resize(images, tf.stack([height, width]), method="bilinear")
    return ops.image.resize(images, (height, width), interpolation="bilinear")


def upsample(images, factor, height, width):
    """Bilinear x``factor`` of [N, h, w, C], cropped to [N, height, width, C] (inverse of :func:`area_downscale`)."""
    if isinstance(factor, int) and factor == 1:
        return images
    shape = ops.shape(images)
    up = resize_bilinear(images, shape[1] * factor, shape[2] * factor)
    return up[:, :height, :width, :]


def propagate(values, weights, levels):
    """Push-pull fill: ``values`` [N, H, W, C] where ``weights`` [N, H, W, 1] in [0, 1] trust them,
    carried into the rest; H and W multiples of 2^levels. Returns (filled [N, H, W, C], confidence
    [N, H, W, 1] in [0, 1]: the share of trusted pixels in the neighbourhood that decided).

    Push: 2x2 means of ``values * weights`` and ``weights`` per level. Pull, coarse to fine: each
    level keeps its own normalised mean where its weight is high (``alpha = min(1, 4 w)``) and
    takes the bilinear x2 of the coarser level elsewhere. No trusted pixel at all gives 0.
    """
    sums, totals = [values * weights], [weights]
    for _ in range(levels):
        sums.append(ops.average_pool(sums[-1], 2, 2, padding="valid"))
        totals.append(ops.average_pool(totals[-1], 2, 2, padding="valid"))
    filled = sums[-1] / (totals[-1] + EPS)
    confidence = ops.minimum(4.0 * totals[-1], 1.0)
    for level in range(levels - 1, -1, -1):
        shape = ops.shape(sums[level])
        coarse = resize_bilinear(ops.concatenate([filled, confidence], axis=-1), shape[1], shape[2])
        alpha = ops.minimum(4.0 * totals[level], 1.0)
        own = sums[level] / (totals[level] + EPS)
        filled = alpha * own + (1.0 - alpha) * coarse[..., :-1]
        confidence = alpha + (1.0 - alpha) * coarse[..., -1:]
    return filled, confidence


def masked_upsample(values, mask, factor, height, width):
    """Full-resolution [N, height, width, C] of working-resolution ``values`` taken only where ``mask``
    [N, h, w, 1] in [0, 1] is on: ``up(values * mask) / up(mask)``, plain ``up(values)`` where no
    masked working pixel is near (a clipped spot smaller than one working pixel)."""
    if isinstance(factor, int) and factor == 1:
        return values
    both = upsample(ops.concatenate([values * mask, mask, values], axis=-1), factor, height, width)
    channels = values.shape[-1]
    weighted, weight, plain = both[..., :channels], both[..., channels : channels + 1], both[..., channels + 1 :]
    return (weighted + 1e-3 * plain) / (weight + 1e-3)
