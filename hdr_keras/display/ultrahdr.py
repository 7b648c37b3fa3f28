"""Ultra HDR (gain-map) JPEG writer: the photo as the SDR base, the reconstruction in the gain map.

Format: Android "Ultra HDR Image Format v1" (developer.android.com/media/platform/hdr-image-format),
with the ISO 21496-1 gain-map metadata as well, so that readers of either find what they need::

    primary JPEG: SOI, [APP0 JFIF], APP1 XMP (hdrgm:Version, Container:Directory with the gain
                  map's length), APP2 ISO 21496-1 (version only), APP2 MPF (both images), the photo
    gain map JPEG: SOI, [APP0 JFIF], APP1 XMP (hdrgm:* parameters), APP2 ISO 21496-1 (parameters),
                  the map

The gain map holds, per pixel and channel (3 channels: hallucinated highlights may be coloured
where the photo is clipped white), ``log2((hdr + offset_hdr) / (sdr + offset_sdr))`` mapped
linearly from ``[gain_min, gain_max]`` (stops) to 0..255, gamma 1, at the base's resolution.
``sdr`` is the base JPEG as decoded (sRGB EOTF), so the base's compression error does not enter
the HDR rendition. A viewer with ``log2(display headroom) >= gain_max`` shows
``(sdr + offset_sdr) * 2 ** gain - offset_hdr``, i.e. the reconstruction with its gain over the
photo clamped to ``[2 ** gain_min, 2 ** gain_max]``; an SDR viewer shows the photo.
"""

import dataclasses
import io
import math
import struct

import numpy as np
from PIL import Image

DEFAULT_MAX_BOOST_STOPS = 2.3
"""Cap on the gain (stops above the photo): a ~1000-nit screen with SDR white at 203 nits (ITU-R
BT.2408) has log2(1000 / 203) = 2.3 stops of headroom. Viewers scale the gain by
log2(headroom) / gain_max on dimmer screens, so a higher cap dims mid highlights there."""
DEFAULT_QUALITY = 95
"""JPEG quality of the base image and the gain map (4:4:4 chroma)."""
OFFSET = 1.0 / 64
"""offset_sdr = offset_hdr (the format's suggested value): keeps the gain finite near black."""
DENOMINATOR = 1 << 16
"""Metadata values are multiples of 1 / DENOMINATOR (exact in XMP decimals and ISO fractions)."""

_XMP_NAMESPACE = b"http://ns.adobe.com/xap/1.0/\x00"
_ISO_NAMESPACE = b"urn:iso:std:iso:ts:21496:-1\x00"
_ISO_FLAGS = 0x40 | 0x08  # gain applied in the base's colour space | one common denominator
_MPF_LENGTH = 88  # APP2 length field of the MPF segment below (2 + 86 payload bytes)
_CODES = np.arange(256) / 255.0
_SRGB_TO_LINEAR = np.where(_CODES <= 0.04045, _CODES / 12.92, ((_CODES + 0.055) / 1.055) ** 2.4).astype(np.float32)
"""sRGB EOTF of the 8-bit code values."""


@dataclasses.dataclass(frozen=True)
class GainMap:
    """Gain-map parameters (log2 values in stops, as in the format's metadata)."""

    gain_min: float
    gain_max: float
    capacity_max: float
    """HDRCapacityMax: log2 of the display headroom at which the full gain applies (HDRCapacityMin = 0)."""
    quality: int

    def as_dict(self):
        """The parameters for a sidecar: stops, and the linear max boost."""
        return {
            "gain_min_stops": self.gain_min,
            "gain_max_stops": self.gain_max,
            "hdr_capacity_max_stops": self.capacity_max,
            "max_boost": 2.0**self.gain_max,
            "offset_sdr": OFFSET,
            "offset_hdr": OFFSET,
            "gamma": 1.0,
            "quality": self.quality,
            "white": "1.0 relative radiance = the photo's white = the display's SDR white",
        }


def write(path, photo, hdr, max_boost_stops=DEFAULT_MAX_BOOST_STOPS, quality=DEFAULT_QUALITY):
    """Writes :func:`encode` ``(photo, hdr)`` to ``path``; returns the :class:`GainMap`."""
    data, gain_map = encode(photo, hdr, max_boost_stops, quality)
    with open(path, "wb") as f:
        f.write(data)
    return gain_map


def encode(photo, hdr, max_boost_stops=DEFAULT_MAX_BOOST_STOPS, quality=DEFAULT_QUALITY):
    """An Ultra HDR JPEG whose base is ``photo`` and whose HDR rendition is ``hdr``.

    Args:
        photo: float array [H, W, 3], sRGB-encoded values in [0, 1] (as :func:`hdr_keras.io.read_ldr`).
        hdr: float array [H, W, 3], linear radiance at the photo's scale (1.0 = the photo's white,
            BT.709 primaries); negative and non-finite values count as 0.
        max_boost_stops: cap on ``gain_max`` (> 0); the gain's floor is ``-max_boost_stops``.
        quality: JPEG quality 1..100 of the base and of the gain map.

    Returns:
        (bytes of the file, :class:`GainMap`).
    """
    photo, hdr = np.asarray(photo), np.asarray(hdr)
    if photo.ndim != 3 or photo.shape[2] != 3 or hdr.shape != photo.shape:
        raise ValueError(f"expected photo and hdr of one shape [H, W, 3], got {photo.shape} and {hdr.shape}")
    if not (math.isfinite(max_boost_stops) and max_boost_stops > 0):
        raise ValueError(f"max_boost_stops must be > 0, got {max_boost_stops}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    base_codes = np.round(np.clip(photo, 0.0, 1.0) * 255.0).astype(np.uint8)
    base = _jpeg(base_codes, quality)
    hdr = np.where(np.isfinite(hdr), np.maximum(hdr, 0.0), 0.0).astype(np.float32) + np.float32(OFFSET)
    # The range comes from the reconstruction over the photo; the map, from the base as decoded.
    gain = hdr / (_SRGB_TO_LINEAR[base_codes] + np.float32(OFFSET))
    gain_map = _parameters(math.log2(gain.min()), math.log2(gain.max()), max_boost_stops, quality)
    with Image.open(io.BytesIO(base)) as decoded:
        sdr = _SRGB_TO_LINEAR[np.asarray(decoded.convert("RGB"))] + np.float32(OFFSET)
    log_gain = np.log2(np.divide(hdr, sdr, out=gain), out=gain)
    del hdr, sdr
    scale = np.float32(255.0 / (gain_map.gain_max - gain_map.gain_min))
    recovery = np.clip((log_gain - np.float32(gain_map.gain_min)) * scale, 0.0, 255.0)
    del log_gain
    secondary = _gain_map_jpeg(_jpeg(np.round(recovery).astype(np.uint8), quality), gain_map)
    return _container(base, secondary), gain_map


def _parameters(lowest, highest, max_boost_stops, quality):
    """:class:`GainMap` covering log gains in [lowest, highest], 0 included, within +-max_boost_stops."""
    cap = math.floor(max_boost_stops * DENOMINATOR)
    gain_max = min(math.ceil(max(highest, 0.0) * DENOMINATOR), cap) / DENOMINATOR
    gain_min = max(math.floor(min(lowest, 0.0) * DENOMINATOR), -cap) / DENOMINATOR
    gain_max = max(gain_max, gain_min + 1.0 / 256)
    return GainMap(gain_min, gain_max, max(gain_max, 1.0 / 256), int(quality))


def _jpeg(image_uint8, quality):
    """Baseline JPEG bytes of a uint8 [H, W, 3] image, 4:4:4 chroma (Pillow / libjpeg-turbo)."""
    buffer = io.BytesIO()
    Image.fromarray(image_uint8).save(buffer, format="JPEG", quality=int(quality), subsampling=0)
    return buffer.getvalue()


def _segment(marker, payload):
    if len(payload) + 2 > 0xFFFF:
        raise ValueError(f"JPEG APP segment of {len(payload)} bytes is too long")
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _app0_end(jpeg):
    """Offset just after SOI and any APP0 (JFIF) segments of ``jpeg``."""
    pos = 2
    while jpeg[pos : pos + 2] == b"\xff\xe0":
        pos += 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
    return pos


def _insert(jpeg, segments):
    """``jpeg`` with ``segments`` (bytes) inserted after SOI and any APP0 (JFIF) segments."""
    pos = _app0_end(jpeg)
    return jpeg[:pos] + b"".join(segments) + jpeg[pos:]


def _num(value):
    return f"{value:.10g}"


def _xmp(attributes, body=""):
    """XMP packet bytes: one rdf:Description with the hdrgm namespace, ``attributes`` and ``body``."""
    namespaces = ' xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/"'
    if body:
        namespaces += (
            ' xmlns:Container="http://ns.google.com/photos/1.0/container/"'
            ' xmlns:Item="http://ns.google.com/photos/1.0/container/item/"'
        )
    attrs = "".join(f'\n    hdrgm:{k}="{v}"' for k, v in attributes.items())
    end = f">\n{body}   </rdf:Description>" if body else "/>"
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="hdr_keras">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'  <rdf:Description rdf:about=""{namespaces}{attrs}{end}\n'
        " </rdf:RDF>\n</x:xmpmeta>"
    ).encode()


def _gain_map_jpeg(jpeg, gain_map):
    """The gain map JPEG with its XMP (hdrgm:*) and ISO 21496-1 metadata segments."""
    xmp = _xmp(
        {
            "Version": "1.0",
            "GainMapMin": _num(gain_map.gain_min),
            "GainMapMax": _num(gain_map.gain_max),
            "Gamma": "1",
            "OffsetSDR": _num(OFFSET),
            "OffsetHDR": _num(OFFSET),
            "HDRCapacityMin": "0",
            "HDRCapacityMax": _num(gain_map.capacity_max),
            "BaseRenditionIsHDR": "False",
        }
    )
    d = DENOMINATOR
    iso = struct.pack(
        ">HHBIIIiiIii",
        0,  # minimum_version
        0,  # writer_version
        _ISO_FLAGS,
        d,
        0,  # base_hdr_headroom (HDRCapacityMin) * d
        round(gain_map.capacity_max * d),  # alternate_hdr_headroom
        round(gain_map.gain_min * d),
        round(gain_map.gain_max * d),
        d,  # gamma 1
        round(OFFSET * d),  # base offset
        round(OFFSET * d),  # alternate offset
    )
    return _insert(jpeg, [_segment(0xE1, _XMP_NAMESPACE + xmp), _segment(0xE2, _ISO_NAMESPACE + iso)])


def _container(base, secondary):
    """Primary JPEG (``base`` with XMP, ISO version and MPF segments) followed by ``secondary``."""
    item = f'Item:Semantic="GainMap" Item:Mime="image/jpeg" Item:Length="{len(secondary)}"'
    directory = (
        "    <Container:Directory>\n     <rdf:Seq>\n"
        '      <rdf:li rdf:parseType="Resource">\n'
        '       <Container:Item Item:Semantic="Primary" Item:Mime="image/jpeg"/>\n      </rdf:li>\n'
        '      <rdf:li rdf:parseType="Resource">\n'
        f"       <Container:Item {item}/>\n      </rdf:li>\n"
        "     </rdf:Seq>\n    </Container:Directory>\n"
    )
    xmp = _segment(0xE1, _XMP_NAMESPACE + _xmp({"Version": "1.0"}, directory))
    head = xmp + _segment(0xE2, _ISO_NAMESPACE + bytes(4))  # ISO 21496-1 version only
    mpf_pos = _app0_end(base) + len(head)
    primary_size = len(base) + len(head) + 2 + _MPF_LENGTH
    # MP entry offsets count from the MPF TIFF header: 2 (marker) + 2 (length) + 4 ("MPF\0") bytes in.
    mpf = _segment(0xE2, _mpf(primary_size, len(secondary), primary_size - (mpf_pos + 8)))
    return _insert(base, [head, mpf]) + secondary


def _mpf(primary_size, secondary_size, secondary_offset):
    """CIPA DC-007 Multi-Picture Format APP2 payload (big-endian) listing the two images."""
    entries_offset = 8 + 2 + 3 * 12 + 4  # TIFF header, tag count, 3 tags, next-IFD offset
    ifd = struct.pack(">H", 3)
    ifd += struct.pack(">HHI4s", 0xB000, 7, 4, b"0100")  # MPFVersion
    ifd += struct.pack(">HHII", 0xB001, 4, 1, 2)  # NumberOfImages
    ifd += struct.pack(">HHII", 0xB002, 7, 32, entries_offset)  # MPEntry
    ifd += struct.pack(">I", 0)
    entries = struct.pack(">IIIHH", 0x030000, primary_size, 0, 0, 0)  # baseline MP primary image
    entries += struct.pack(">IIIHH", 0, secondary_size, secondary_offset, 0, 0)
    return b"MPF\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + ifd + entries
