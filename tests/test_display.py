"""Tests for the HDR-screen writers (hdr_keras.display): files decoded by independent readers.

Ultra HDR: libultrahdr (``imagecodecs.ultrahdr_check`` / ``ultrahdr_decode``) judges the container
and renders the HDR; Pillow decodes the SDR base. AVIF: libavif (``imagecodecs.avif_decode``) gives
back the 10-bit code values, Pillow's AVIF plugin opens the rewritten boxes.
"""

import io
import re
import struct

import imagecodecs
import numpy as np
import pytest
from PIL import Image, features

from hdr_keras.display import avif, ultrahdr

OFFSET = ultrahdr.OFFSET


def _srgb_to_linear(v):
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _pair(h=67, w=93, seed=0, highlight=(6.0, 3.0, 1.5)):
    """(photo [h, w, 3] in [0, 1], hdr): a smooth photo with a clipped disc, the disc coloured and bright."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    photo = 0.45 + 0.3 * np.sin(6 * x + 2 * y)[..., None] * np.array([1.0, 0.8, 0.6]) + rng.normal(0, 0.005, (h, w, 3))
    photo = np.clip(photo, 0, 1).astype(np.float32)
    disc = (x - 0.6) ** 2 + (y - 0.3) ** 2 < 0.02
    photo[disc] = 1.0
    hdr = 1.1 * _srgb_to_linear(photo) ** 1.1
    hdr[disc] = highlight
    return photo, hdr.astype(np.float32), disc


def _rendition_target(photo, hdr, gain_min, gain_max):
    """What the gain map promises at full boost: ``hdr`` with its gain over the photo clamped."""
    sdr = _srgb_to_linear(np.round(photo * 255) / 255)
    gain = np.clip((hdr + OFFSET) / (sdr + OFFSET), 2.0**gain_min, 2.0**gain_max)
    return (sdr + OFFSET) * gain - OFFSET


def _relative_error(got, want):
    return np.abs(got - want) / (want + OFFSET)


# ------------------------------------------------------------------------------ Ultra HDR


def test_uhdr_base_is_the_photo_and_libultrahdr_accepts_it():
    photo, hdr, _ = _pair()
    data, gain_map = ultrahdr.encode(photo, hdr)
    assert imagecodecs.ultrahdr_check(data) is True
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.size == (93, 67)
        base = np.asarray(im.convert("RGB"), np.float32) / 255
        mp = im.info["mp"]  # Pillow found the MPF segment
    psnr = 10 * np.log10(1 / np.mean((base - photo) ** 2))
    assert psnr >= 35, psnr
    (count,) = struct.unpack(">I", mp[8 + 2 + 12 + 8 : 8 + 2 + 12 + 12])  # NumberOfImages tag value
    assert count == 2
    # The XMP of the gain map carries the chosen parameters; the primary names the gain map's length.
    text = data.decode("latin-1")
    assert f'hdrgm:GainMapMax="{gain_map.gain_max:.10g}"' in text
    assert 'hdrgm:BaseRenditionIsHDR="False"' in text
    length = int(re.search(r'Item:Semantic="GainMap" Item:Mime="image/jpeg" Item:Length="(\d+)"', text).group(1))
    assert data[-length:][:2] == b"\xff\xd8" and data.count(b"urn:iso:std:iso:ts:21496:-1\x00") == 2


def test_uhdr_hdr_rendition_matches_the_radiance_up_to_the_cap():
    photo, hdr, disc = _pair()
    data, gain_map = ultrahdr.encode(photo, hdr)
    assert gain_map.gain_max == pytest.approx(ultrahdr.DEFAULT_MAX_BOOST_STOPS, abs=1e-4)  # 6.0 is above the cap
    rendition = imagecodecs.ultrahdr_decode(data, boost=2.0**gain_map.gain_max)[..., :3].astype(np.float32)
    target = _rendition_target(photo, hdr, gain_map.gain_min, gain_map.gain_max)
    error = _relative_error(rendition, target)
    # Bound: an 8-bit log gain (steps of (gain_max - gain_min) / 255 = 0.01 stops here, 0.7 %) coded as
    # a JPEG q95 that blurs the photo's noise and sharp highlight edges: median 2 %, 99th percentile 10 %.
    assert np.median(error) < 0.02 and np.percentile(error, 99) < 0.10, (np.median(error), np.percentile(error, 99))
    # Coloured highlight: green and blue below the cap come back, red is capped at 2 ** 2.3 = 4.92.
    np.testing.assert_allclose(rendition[disc].mean(axis=0), [2.0**gain_map.gain_max, 3.0, 1.5], rtol=0.03)
    # A screen without headroom shows the SDR base (linear), as Pillow decodes it.
    sdr = imagecodecs.ultrahdr_decode(data, boost=1.0)[..., :3].astype(np.float32)
    with Image.open(io.BytesIO(data)) as im:
        base = np.asarray(im.convert("RGB"), np.float32) / 255
    assert np.abs(sdr - _srgb_to_linear(base)).max() < 0.01


def test_uhdr_xmp_alone_gives_the_same_rendition():
    """Hiding the ISO 21496-1 segments (same length) makes libultrahdr read the Ultra HDR v1 XMP."""
    photo, hdr, _ = _pair(h=40, w=51)
    data, gain_map = ultrahdr.encode(photo, hdr)
    namespace = b"urn:iso:std:iso:ts:21496:-1\x00"
    xmp_only = data.replace(namespace, b"urn:example:not-iso:21496-1\x00")
    assert len(xmp_only) == len(data) and imagecodecs.ultrahdr_check(xmp_only)
    boost = 2.0**gain_map.gain_max
    both = imagecodecs.ultrahdr_decode(data, boost=boost).astype(np.float32)
    xmp = imagecodecs.ultrahdr_decode(xmp_only, boost=boost).astype(np.float32)
    np.testing.assert_allclose(xmp, both, rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("peak, cap, want", [(3.0, 2.3, None), (20.0, 2.3, 2.3), (20.0, 1.0, 1.0)])
def test_uhdr_peak_boost_comes_from_the_reconstruction_within_the_cap(peak, cap, want):
    photo, hdr, _ = _pair(h=32, w=40, highlight=(peak,) * 3)
    _, gain_map = ultrahdr.encode(photo, hdr, max_boost_stops=cap)
    expected = np.log2((peak + OFFSET) / (1 + OFFSET)) if want is None else want
    assert gain_map.gain_max == pytest.approx(expected, abs=1e-4)
    assert gain_map.capacity_max == gain_map.gain_max and -cap <= gain_map.gain_min <= 0


def test_uhdr_sdr_only_reconstruction_and_bad_arguments():
    photo, _, _ = _pair(h=16, w=24)
    data, gain_map = ultrahdr.encode(photo, _srgb_to_linear(photo))  # HDR == SDR: no boost anywhere
    assert imagecodecs.ultrahdr_check(data) and -0.05 < gain_map.gain_min < 0 < gain_map.gain_max < 0.05
    with pytest.raises(ValueError, match="one shape"):
        ultrahdr.encode(photo, photo[:8])
    with pytest.raises(ValueError, match="max_boost_stops"):
        ultrahdr.encode(photo, photo, max_boost_stops=0)
    with pytest.raises(ValueError, match="quality"):
        ultrahdr.encode(photo, photo, quality=0)


# ------------------------------------------------------------------------------------ AVIF


def test_pq_and_primaries_follow_the_standards():
    # ST 2084: 10000 nits -> 1; BT.2408: 203 nits (HDR reference white) -> 58 % PQ.
    np.testing.assert_allclose(avif.pq_encode([0.0, 203.0, 10000.0]), [0.0, 0.5806, 1.0], atol=5e-4)
    nits = np.geomspace(0.01, 10000, 50)
    np.testing.assert_allclose(avif.pq_decode(avif.pq_encode(nits)), nits, rtol=1e-4)
    bt2087 = [[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]]
    np.testing.assert_allclose(avif.BT709_TO_BT2020, bt2087, atol=1e-4)


def _property(data, kind):
    meta = next((pos, size) for name, pos, size in avif.boxes(data) if name == "meta")
    iprp = avif.child(data, meta, "iprp", 12)
    pos, size = avif.child(data, avif.child(data, iprp, "ipco"), kind)
    return data[pos + 8 : pos + size]


def test_avif_decodes_to_pq_codes_of_the_radiance_with_cicp_and_light_levels():
    photo, hdr, disc = _pair()
    hdr[disc] = (40.0, 20.0, 10.0)  # BT.2020 red 32.1 x 203 = 6520 nits
    data, info = avif.encode(hdr)
    codes = imagecodecs.avif_decode(data)
    assert codes.dtype == np.uint16 and codes.shape == hdr.shape
    want, nits = avif.to_pq_codes(hdr)
    error = np.abs(codes.astype(np.int32) - want)
    # Bound at quality 95, 4:4:4: mean <= 2.5 code values of 1023, 99 % of them within 12 (one code is
    # ~1 % in nits); back in relative radiance, median error <= 2.5 %.
    assert error.mean() <= 2.5 and np.percentile(error, 99) <= 12, (error.mean(), np.percentile(error, 99))
    radiance = avif.from_pq_codes(codes)
    assert np.median(_relative_error(radiance, hdr)) < 0.025
    # nclx colr: BT.2020 primaries (9), PQ (16), BT.2020 NCL matrix (9), full range.
    assert _property(data, "colr") == b"nclx" + struct.pack(">HHHB", 9, 16, 9, 0x80)
    assert _property(data, "pixi") == bytes(4) + bytes([3, 10, 10, 10])
    max_cll, max_fall = struct.unpack(">HH", _property(data, "clli"))
    assert (max_cll, max_fall) == (info["max_cll"], info["max_fall"])
    assert max_cll == int(np.ceil(nits.max())) == 6520
    assert max_fall == int(np.ceil(nits.max(axis=-1).mean()))


@pytest.mark.skipif(not features.check("avif"), reason="Pillow without AVIF support")
def test_avif_with_clli_opens_in_another_reader():
    _, hdr, _ = _pair(h=33, w=45)
    data, _ = avif.encode(hdr)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.format == "AVIF" and im.size == (45, 33)
