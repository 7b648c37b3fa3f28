"""hdr_keras: single-image HDR reconstruction by reversing the camera pipeline (Liu et al., CVPR 2020).

Modules: :mod:`crf` (camera curves, NumPy), :mod:`camera` (forward camera model, TensorFlow),
:mod:`ops` and :mod:`layers` (Keras building blocks), :mod:`models` (the four stages and
:class:`~hdr_keras.models.SingleHDR`), :mod:`io` (image files), :mod:`metrics` (evaluation).
"""

__version__ = "0.1.0"
