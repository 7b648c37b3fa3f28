"""Files for HDR screens (pure NumPy + Pillow + imagecodecs, no TensorFlow).

:mod:`ultrahdr` writes Ultra HDR gain-map JPEGs (the photo as the SDR base, the reconstruction in
the gain map), :mod:`avif` 10-bit BT.2100 PQ AVIF. Both take predict's relative radiance: linear
BT.709 / sRGB primaries, 1.0 = the photo's white.
"""
