"""Tiny curve plots for TensorBoard, drawn with NumPy (no plotting library needed)."""

import numpy as np


def plot_curves(predicted, true, size=128):
    """Curves [k, 1024] in [0, 1] -> RGB plots float32 [k, size, size, 3] in [0, 1].

    White background, grey diagonal, the true curve in green and the prediction in red
    (x: brightness 0..1 left to right, y: irradiance 0..1 bottom to top).
    """
    predicted, true = np.atleast_2d(predicted), np.atleast_2d(true)
    images = np.ones((len(predicted), size, size, 3), np.float32)
    columns = np.arange(size)
    grid = np.linspace(0.0, 1.0, predicted.shape[-1])
    for image, pred, ref in zip(images, predicted, true):
        image[size - 1 - columns, columns] = 0.8
        for curve, colour in ((ref, (0.0, 0.6, 0.0)), (pred, (0.85, 0.0, 0.0))):
            values = np.interp(np.linspace(0.0, 1.0, size * 4), grid, np.clip(curve, 0.0, 1.0))
            rows = np.round((1.0 - values) * (size - 1)).astype(int)
            cols = np.round(np.linspace(0.0, 1.0, size * 4) * (size - 1)).astype(int)
            image[rows, cols] = colour
    return images
