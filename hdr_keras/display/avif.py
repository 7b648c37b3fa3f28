"""HDR AVIF writer: 10-bit BT.2100 PQ (BT.2020 primaries, SMPTE ST 2084), with content light levels.

Mapping from predict's relative radiance (linear BT.709 primaries, 1.0 = the photo's white) to
display light: ``nits = DIFFUSE_WHITE_NITS * radiance`` (ITU-R BT.2408 HDR reference white), the
primaries converted to BT.2020, clipped to PQ's 0..10000 nits (49.3 x the photo's white), PQ-encoded
and rounded to 10 bits. The image is coded by libavif (through imagecodecs) as full-range YUV 4:4:4
with BT.2020 non-constant-luminance matrix; CICP (nclx ``colr``: primaries 9, transfer 16,
matrix 9, full range) says so. libavif there cannot set the content light level, so a ``clli``
property (MaxCLL, MaxFALL in nits, CTA-861.3) is added to the primary item afterwards.
"""

import struct

import numpy as np

DIFFUSE_WHITE_NITS = 203.0
"""Nits of relative radiance 1.0 (the photo's white): HDR reference white of ITU-R BT.2408."""
PQ_MAX_NITS = 10000.0
DEFAULT_QUALITY = 95
"""libavif quality 0..100 (100 lossless)."""
DEFAULT_SPEED = 8
"""libavif encoder speed 0 (slowest) .. 10 (fastest)."""
BIT_DEPTH = 10

_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32


def _rgb_to_xyz(primaries, white=(0.3127, 0.3290)):
    """3x3 matrix from linear RGB with the given xy ``primaries`` (r, g, b) and white point to XYZ."""
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in (*primaries, white)]).T
    scale = np.linalg.solve(xyz[:, :3], xyz[:, 3])
    return xyz[:, :3] * scale


BT709_TO_BT2020 = np.linalg.solve(
    _rgb_to_xyz(((0.708, 0.292), (0.170, 0.797), (0.131, 0.046))),
    _rgb_to_xyz(((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))),
).astype(np.float32)
"""Linear BT.709 RGB -> linear BT.2020 RGB (ITU-R BT.2087), rows sum to 1."""


def pq_encode(nits):
    """SMPTE ST 2084 inverse EOTF: nits in [0, 10000] -> signal in [0, 1]."""
    y = np.power(np.clip(np.asarray(nits, np.float32) / np.float32(PQ_MAX_NITS), 0.0, 1.0), np.float32(_M1))
    return np.power((np.float32(_C1) + np.float32(_C2) * y) / (1 + np.float32(_C3) * y), np.float32(_M2))


def pq_decode(signal):
    """SMPTE ST 2084 EOTF: signal in [0, 1] -> nits in [0, 10000]."""
    e = np.power(np.clip(np.asarray(signal, np.float32), 0.0, 1.0), np.float32(1 / _M2))
    y = np.maximum(e - np.float32(_C1), 0.0) / (np.float32(_C2) - np.float32(_C3) * e)
    return np.float32(PQ_MAX_NITS) * np.power(y, np.float32(1 / _M1))


def to_pq_codes(hdr):
    """Relative radiance [H, W, 3] (BT.709) -> (10-bit PQ BT.2020 codes uint16 [H, W, 3], nits [H, W, 3])."""
    hdr = np.where(np.isfinite(hdr), np.maximum(hdr, 0.0), 0.0).astype(np.float32)
    nits = np.clip(hdr @ (BT709_TO_BT2020.T * np.float32(DIFFUSE_WHITE_NITS)), 0.0, PQ_MAX_NITS)
    codes = np.round(pq_encode(nits) * np.float32(2**BIT_DEPTH - 1)).astype(np.uint16)
    return codes, nits


def from_pq_codes(codes):
    """Inverse of :func:`to_pq_codes`: 10-bit PQ BT.2020 codes -> relative radiance (BT.709)."""
    nits = pq_decode(np.asarray(codes, np.float32) / np.float32(2**BIT_DEPTH - 1))
    return nits @ (np.linalg.inv(BT709_TO_BT2020).T / DIFFUSE_WHITE_NITS).astype(np.float32)


def encode(hdr, quality=DEFAULT_QUALITY, speed=DEFAULT_SPEED):
    """AVIF bytes of ``hdr`` (float [H, W, 3], relative radiance) and a dict of what was written."""
    hdr = np.asarray(hdr)
    if hdr.ndim != 3 or hdr.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got shape {hdr.shape}")
    if not 0 <= quality <= 100:
        raise ValueError(f"quality must be in 0..100, got {quality}")
    import imagecodecs  # here, so that importing this module (predict --help) stays light

    codes, nits = to_pq_codes(hdr)
    brightest = nits.max(axis=-1)
    del nits
    max_cll = int(np.ceil(brightest.max()))
    max_fall = int(np.ceil(brightest.mean(dtype=np.float64)))
    del brightest
    avif = imagecodecs.AVIF
    data = imagecodecs.avif_encode(
        codes,
        level=int(quality),
        speed=int(speed),
        bitspersample=BIT_DEPTH,
        pixelformat=avif.PIXEL_FORMAT.YUV444,
        primaries=avif.COLOR_PRIMARIES.BT2020,
        transfer=avif.TRANSFER_CHARACTERISTICS.PQ,
        matrix=avif.MATRIX_COEFFICIENTS.BT2020_NCL,
    )
    info = {
        "transfer": "PQ (SMPTE ST 2084)",
        "primaries": "BT.2020",
        "bit_depth": BIT_DEPTH,
        "diffuse_white_nits": DIFFUSE_WHITE_NITS,
        "max_cll": max_cll,
        "max_fall": max_fall,
        "quality": int(quality),
    }
    return add_content_light_level(bytes(data), max_cll, max_fall), info


def write(path, hdr, quality=DEFAULT_QUALITY, speed=DEFAULT_SPEED):
    """Writes :func:`encode` ``(hdr)`` to ``path``; returns its info dict."""
    data, info = encode(hdr, quality, speed)
    with open(path, "wb") as f:
        f.write(data)
    return info


# --------------------------------------------------------------------------- ISOBMFF boxes


def boxes(data, start=0, end=None):
    """[(type str, offset, size)] of the boxes in ``data[start:end]`` (32-bit sizes only)."""
    end = len(data) if end is None else end
    found, pos = [], start
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8 or pos + size > end:
            raise ValueError(f"malformed box {kind!r} at offset {pos} (size {size})")
        found.append((kind.decode("latin-1"), pos, size))
        pos += size
    return found


def child(data, parent, kind, header=8):
    """(offset, size) of the first ``kind`` box inside box ``parent`` = (offset, size)."""
    for name, pos, size in boxes(data, parent[0] + header, parent[0] + parent[1]):
        if name == kind:
            return pos, size
    raise ValueError(f"no {kind!r} box")


def _box(kind, payload):
    return struct.pack(">I4s", 8 + len(payload), kind.encode()) + payload


def add_content_light_level(data, max_cll, max_fall):
    """AVIF ``data`` with a ``clli`` property associated with its primary item.

    Rewrites ``meta/iprp`` (the property added to ``ipco``, its index to the item's ``ipma`` entry)
    and shifts the ``iloc`` file offsets of the data after ``meta`` by the size added.
    """
    top = {name: (pos, size) for name, pos, size in boxes(data)}
    meta = top["meta"]
    iprp = child(data, meta, "iprp", 12)
    ipco, ipma = child(data, iprp, "ipco"), child(data, iprp, "ipma")
    pitm = child(data, meta, "pitm", 12)
    primary = struct.unpack(">H" if data[pitm[0] + 8] == 0 else ">I", data[pitm[0] + 12 : pitm[0] + pitm[1]])[0]
    clli = _box("clli", struct.pack(">HH", min(max_cll, 0xFFFF), min(max_fall, 0xFFFF)))
    index = len(boxes(data, ipco[0] + 8, ipco[0] + ipco[1])) + 1
    new_ipco = data[ipco[0] : ipco[0] + ipco[1]] + clli
    new_ipco = struct.pack(">I", len(new_ipco)) + new_ipco[4:]
    new_ipma = _ipma_with(data[ipma[0] : ipma[0] + ipma[1]], primary, index)
    parts = {ipco[0]: new_ipco, ipma[0]: new_ipma}
    children = boxes(data, iprp[0] + 8, iprp[0] + iprp[1])
    body = b"".join(parts.get(pos, data[pos : pos + size]) for _, pos, size in children)
    new_iprp = _box("iprp", body)
    new_meta = data[meta[0] : iprp[0]] + new_iprp + data[iprp[0] + iprp[1] : meta[0] + meta[1]]
    new_meta = struct.pack(">I", len(new_meta)) + new_meta[4:]
    shift = len(new_meta) - meta[1]
    iloc = child(data, meta, "iloc", 12)
    new_meta = _shift_iloc(new_meta, iloc[0] - meta[0], meta[0] + meta[1], shift)
    return data[: meta[0]] + new_meta + data[meta[0] + meta[1] :]


def _ipma_with(ipma, item, index):
    """``ipma`` box bytes with a non-essential association of property ``index`` added to ``item``."""
    version, flags = ipma[8], int.from_bytes(ipma[9:12], "big")
    wide_index = flags & 1
    if index >= (1 << 15 if wide_index else 1 << 7):
        raise ValueError(f"property index {index} does not fit the ipma entries")
    (count,) = struct.unpack(">I", ipma[12:16])
    pos, out, found = 16, [ipma[8:16]], False
    for _ in range(count):
        id_size = 2 if version < 1 else 4
        item_id = int.from_bytes(ipma[pos : pos + id_size], "big")
        n = ipma[pos + id_size]
        size = id_size + 1 + n * (2 if wide_index else 1)
        entry = ipma[pos : pos + size]
        if item_id == item:
            found = True
            added = struct.pack(">H", index) if wide_index else struct.pack(">B", index)
            entry = entry[:id_size] + bytes([n + 1]) + entry[id_size + 1 :] + added
        out.append(entry)
        pos += size
    if not found:
        raise ValueError(f"no ipma entry for the primary item {item}")
    return _box("ipma", b"".join(out))


def _shift_iloc(meta, iloc_pos, after, shift):
    """``meta`` bytes with the file offsets in its ``iloc`` box (at ``iloc_pos``) that are >= ``after`` shifted."""
    meta = bytearray(meta)
    version = meta[iloc_pos + 8]
    pos = iloc_pos + 12
    offset_size, length_size = meta[pos] >> 4, meta[pos] & 15
    base_size, index_size = meta[pos + 1] >> 4, (meta[pos + 1] & 15) if version in (1, 2) else 0
    pos += 2
    count_size = 2 if version < 2 else 4
    count = int.from_bytes(meta[pos : pos + count_size], "big")
    pos += count_size

    def shifted(at, size):
        if size:
            value = int.from_bytes(meta[at : at + size], "big")
            if value >= after:
                meta[at : at + size] = (value + shift).to_bytes(size, "big")
        return at + size

    for _ in range(count):
        pos += count_size  # item_ID
        method = 0
        if version in (1, 2):
            method = int.from_bytes(meta[pos : pos + 2], "big") & 15
            pos += 2
        pos += 2  # data_reference_index
        if method != 0:
            raise ValueError(f"iloc construction method {method} is not supported")
        pos = shifted(pos, base_size)
        extents = int.from_bytes(meta[pos : pos + 2], "big")
        pos += 2
        for _ in range(extents):
            pos += index_size
            pos = shifted(pos, offset_size)
            pos += length_size
    return bytes(meta)
