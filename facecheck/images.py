"""Selfie decoding: base64 or data URL -> validated PNG/JPEG bytes -> BGR image.

Every check that can be made on the bytes is made before OpenCV sees them: the format
by magic bytes, the declared dimensions (decompression bombs), and JPEG truncation.
EXIF orientation is honoured; large JPEGs are decoded at reduced size."""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import pybase64

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
# Decode large JPEGs at 1/2, 1/4 or 1/8 while the long side stays at least this big.
DECODE_MIN_LONG_SIDE = 640
# Each scan of a multi-scan (progressive) JPEG is a pass over the whole image, however few
# bytes it takes, so a small file with thousands of scans keeps libjpeg busy for minutes
# (libjpeg-turbo's LJT-01-003). Encoders write 1 (baseline) or about 10 (progressive).
MAX_JPEG_SCANS = 32

_DATA_URL = re.compile(rb"^data:[\w/+.\-]*(;[\w=.\-]+)*;base64,", re.IGNORECASE)
_BASE64_CHARS = re.compile(rb"^[A-Za-z0-9+/\-_]*={0,2}$")
_WHITESPACE = re.compile(rb"\s+")
_REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_ARITHMETIC = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}

cv2.setNumThreads(1)


class ImageError(ValueError):
    """The selfie is not a decodable PNG/JPEG within limits."""


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # HxWx3 uint8 BGR, upright
    scale: float  # decoded size / original size (1.0, 0.5, 0.25 or 0.125)
    format: str  # "png" or "jpeg"


def base64_to_bytes(text: str) -> bytes:
    """Bare base64 or a data URL of any declared type; whitespace and the URL-safe
    alphabet are accepted. The real format is judged later, from the bytes."""
    raw = text.encode("ascii", errors="strict") if text.isascii() else None
    if raw is None:
        raise ImageError("not base64")
    match = _DATA_URL.match(raw)
    if match:
        raw = raw[match.end() :]
    if raw and len(raw) % 4 == 0 and not raw.endswith(b"==="):
        # the common case, canonical base64, validated and decoded in one SIMD pass: the
        # regexes below and binascii hold the GIL that the front's event loop needs far longer
        # (docs/performance.md, "Settings in the code")
        try:
            return pybase64.b64decode(raw, validate=True)
        except binascii.Error:
            pass
    raw = _WHITESPACE.sub(b"", raw)
    if not raw or not _BASE64_CHARS.match(raw):
        raise ImageError("not base64")
    raw = raw.replace(b"-", b"+").replace(b"_", b"/")
    raw += b"=" * (-len(raw) % 4)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("not base64") from None


def image_format(data: bytes) -> str:
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    raise ImageError("not PNG or JPEG")


def png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageError("PNG without IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int]]:
    """(marker, offset) of each marker segment, up to and including the first start of scan.

    Strict where libjpeg is lenient: libjpeg skips stray bytes and FF 00 pairs between
    segments, so a walker that read them as a segment would fall out of step with it and
    could be shown a small frame header hidden inside a segment libjpeg skips."""
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ImageError("JPEG segment chain broken")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x00:
            raise ImageError("JPEG segment chain broken")
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise ImageError("JPEG segment length")
        yield marker, pos
        if marker == 0xDA:
            return
        pos += 2 + length


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from the first SOF marker, walking the segment chain."""
    for marker, pos in _jpeg_segments(data):
        if marker in _JPEG_SOF and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker in _JPEG_SOF or marker == 0xDA:  # cut short, or a scan before any frame header
            break
    raise ImageError("JPEG without frame header")


def declared_size(data: bytes, fmt: str) -> tuple[int, int]:
    return png_size(data) if fmt == "png" else jpeg_size(data)


def _jpeg_problem(data: bytes, width: int, height: int) -> str | None:
    """Why libjpeg must not be given this JPEG (whose frame header declared width x height),
    or None. libjpeg fills missing data with grey and only warns, so a cut scan or a scan
    far too short for the declared size would "decode"."""
    sof = sos = -1
    for marker, pos in _jpeg_segments(data):  # the segment walk skips thumbnails in APP1
        if marker in _JPEG_SOF and sof == -1:
            sof = marker
        elif marker == 0xDA:
            sos = pos
    # An end-of-image marker after the first start of scan (cameras may append trailers).
    if sos == -1 or data.rfind(b"\xff\xd9") < sos:
        return "truncated image"
    # Huffman coding spends at least one bit per 8x8 block of the full-resolution component
    # (its DC difference). Arithmetic coding has no such floor (and no browser decodes it).
    if sof in _JPEG_ARITHMETIC:
        return "arithmetic-coded JPEG"
    if (len(data) - sos) * 8 < ((width + 7) // 8) * ((height + 7) // 8):
        return "truncated image"
    # Entropy-coded data never holds FF DA (an FF there is followed by 00 or a restart
    # marker), so this counts every scan; bytes after the end of image only add to it.
    if data.count(b"\xff\xda", sos) > MAX_JPEG_SCANS:
        return "too many JPEG scans"
    return None


_PNG_CHUNK = struct.Struct(">I4s")


def _png_problem(data: bytes) -> str | None:
    """None if every chunk up to IEND lies inside the data. OpenCV allocates (and zeroes)
    a chunk's declared length before reading it: a 200-byte PNG whose IDAT claims 4 GB
    costs 4 GB."""
    pos, n = 8, len(data)
    while pos + 12 <= n:
        length, kind = _PNG_CHUNK.unpack_from(data, pos)
        if length > 0x7FFFFFFF or pos + 12 + length > n:
            break
        if kind == b"IEND":
            return None
        pos += 12 + length
    return "truncated image"


def reduction_for(width: int, height: int, fmt: str) -> int:
    if fmt != "jpeg":
        return 1
    factor = 1
    while factor < 8 and max(width, height) // (factor * 2) >= DECODE_MIN_LONG_SIDE:
        factor *= 2
    return factor


def decode_bytes(data: bytes, max_pixels: int = 40_000_000) -> DecodedImage:
    fmt = image_format(data)
    width, height = declared_size(data, fmt)
    if width < 1 or height < 1:
        raise ImageError("empty image")
    if width * height > max_pixels:
        raise ImageError("image too large")
    problem = _jpeg_problem(data, width, height) if fmt == "jpeg" else _png_problem(data)
    if problem:
        raise ImageError(problem)
    factor = reduction_for(width, height, fmt)
    # IMREAD_COLOR (and the reduced variants) apply EXIF orientation and convert
    # grey, 16-bit, alpha and CMYK inputs to 8-bit BGR.
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED_FLAGS[factor])
    if pixels is None or pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.size == 0:
        raise ImageError("undecodable image")
    # Belt and braces: what was decoded is what the header declared (at the reduced
    # scale, possibly turned by EXIF orientation), so the pixel limit held.
    rows, cols = -(-height // factor), -(-width // factor)
    if pixels.shape[:2] not in ((rows, cols), (cols, rows)):
        raise ImageError("decoded size differs from the declared size")
    return DecodedImage(pixels=pixels, scale=1.0 / factor, format=fmt)


def decode_selfie(text: str, max_pixels: int = 40_000_000) -> DecodedImage:
    return decode_bytes(base64_to_bytes(text), max_pixels)
