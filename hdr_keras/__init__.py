"""hdr_keras: single-image HDR reconstruction by reversing the camera pipeline (Liu et al., CVPR 2020).

Modules: :mod:`crf` (camera curves, NumPy), :mod:`camera` and :mod:`seeds` (the forward camera
model), :mod:`ops` and :mod:`layers` (Keras building blocks), :mod:`presets` (model configs, as
data), :mod:`models` (the four stages and :class:`~hdr_keras.models.SingleHDR`), :mod:`pretrained`
(shipped weights, the one strict weights loader), :mod:`quiet` (TensorFlow without its C++ start-up
noise), :mod:`io` (image files), :mod:`predict` and :mod:`tiling` (the ``predict``
command), :mod:`evaluate` and :mod:`metrics` (the ``evaluate`` command), :mod:`data` and
:mod:`training` (training), :mod:`export` (SavedModel and TFLite).
"""

__version__ = "0.1.0"
