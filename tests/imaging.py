"""Builders of test images (all generated in memory) and mutators of valid image bytes.

Shared by tests/test_images.py, tests/test_decoder_fuzz.py and bench/fuzz_decoder.py."""

from __future__ import annotations

import base64
import random
import struct
import zlib

import cv2
import numpy as np

from facecheck.images import ImageError, decode_bytes, decode_selfie

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Adam7 passes: (x0, y0, dx, dy).
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
# Orientation tag value -> the transform that turns the upright image into the stored one
# (the inverse of what a viewer applies when it honours the tag).
_TO_STORED = {
    1: lambda img: img,
    2: lambda img: cv2.flip(img, 1),
    3: lambda img: cv2.rotate(img, cv2.ROTATE_180),
    4: lambda img: cv2.flip(img, 0),
    5: lambda img: cv2.transpose(img),
    6: lambda img: cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE),
    7: lambda img: cv2.rotate(cv2.transpose(img), cv2.ROTATE_180),
    8: lambda img: cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE),
}


def jpeg_bytes(img: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def encoded_jpeg(img: np.ndarray, progressive: bool = False, quality: int = 90) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    ok, buf = cv2.imencode(".jpg", img, params)
    assert ok
    return buf.tobytes()


def png_bytes(img: np.ndarray, compression: int = 3) -> bytes:
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    assert ok
    return buf.tobytes()


def encoded(img: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, img, params or [])
    assert ok
    return buf.tobytes()


def data_url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def corner_pattern(height: int = 100, width: int = 200, square: int = 40) -> np.ndarray:
    """Black BGR image with a white square in the top-left corner: asymmetric under all
    eight EXIF orientations when height != width."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:square, :square] = 255
    return img


def stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """Pixel data a camera would store so that `orientation` displays `upright`."""
    return _TO_STORED[orientation](upright)


def exif_orientation(orientation: int) -> bytes:
    """A little-endian TIFF structure whose only IFD entry is the orientation tag."""
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)  # SHORT, padded to 4 bytes
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert an EXIF APP1 segment holding only the orientation tag right after SOI."""
    assert jpeg[:2] == b"\xff\xd8"
    payload = b"Exif\x00\x00" + exif_orientation(orientation)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def png_with_exif_orientation(png: bytes, orientation: int) -> bytes:
    """Insert an eXIf chunk (PNG 1.5) holding only the orientation tag after IHDR."""
    return with_chunk(png, b"eXIf", exif_orientation(orientation))


def with_png_size(png: bytes, width: int, height: int) -> bytes:
    """Rewrite the IHDR width/height and fix the chunk CRC so libpng accepts the header."""
    assert png[12:16] == b"IHDR"
    ihdr = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def sof_offset(jpeg: bytes) -> int:
    """Offset of the first SOF marker (walking the segment chain)."""
    pos = 2
    while pos + 4 <= len(jpeg):
        marker = jpeg[pos + 1]
        if marker in _JPEG_SOF:
            return pos
        pos += 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
    raise ValueError("no SOF")


def with_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """Rewrite the height/width fields of the first SOF segment."""
    pos = sof_offset(jpeg)
    return jpeg[: pos + 5] + struct.pack(">HH", height, width) + jpeg[pos + 9 :]


def _segments(jpeg: bytes) -> list[tuple[int, bytes]]:
    """(marker, whole segment) up to the first SOS; the last item is SOS + entropy data + EOI."""
    out, pos = [], 2
    while True:
        marker = jpeg[pos + 1]
        if marker == 0xDA:
            out.append((marker, jpeg[pos:]))
            return out
        end = pos + 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
        out.append((marker, jpeg[pos:end]))
        pos = end


def cmyk_jpeg(gray: np.ndarray, quality: int = 90) -> bytes:
    """A 4-component (Adobe CMYK) baseline JPEG, built from a greyscale one: the frame
    header declares four components sharing table 0, and the single greyscale scan is
    repeated as four non-interleaved scans, one per component. OpenCV cannot write CMYK."""
    segments = _segments(jpeg_bytes(gray, quality))
    out = [b"\xff\xd8"]
    # APP14 "Adobe", version 100, flags 0, 0, transform 0 (CMYK, no colour transform).
    adobe = b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0)
    out.append(b"\xff\xee" + struct.pack(">H", len(adobe) + 2) + adobe)
    for marker, seg in segments:
        if marker in _JPEG_SOF:
            precision, height, width = seg[4], *struct.unpack(">HH", seg[5:9])
            comps = b"".join(bytes([cid, 0x11, 0]) for cid in (1, 2, 3, 4))
            body = bytes([precision]) + struct.pack(">HH", height, width) + b"\x04" + comps
            out.append(seg[:2] + struct.pack(">H", len(body) + 2) + body)
        elif marker == 0xDA:
            scan = seg[:-2]  # without EOI
            assert scan[4] == 1, "greyscale scan has one component"
            for cid in (1, 2, 3, 4):
                out.append(scan[:5] + bytes([cid]) + scan[6:])
            out.append(b"\xff\xd9")
        else:
            out.append(seg)
    return b"".join(out)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_chunk(png: bytes, kind: bytes, body: bytes, length: int | None = None) -> bytes:
    """Insert a chunk right after IHDR; `length` overrides the declared length (CRC kept)."""
    chunk = _chunk(kind, body)
    if length is not None:
        chunk = struct.pack(">I", length) + chunk[4:]
    return png[:33] + chunk + png[33:]


def blank_png(width: int, height: int) -> bytes:
    """A real, valid 1-bit greyscale PNG of zeros, built without materialising the pixels:
    the decompression-bomb shape (144 M pixels in ~20 kB for 12000x12000)."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    block = row * max(1, (1 << 20) // len(row))
    rows_per_block = len(block) // len(row)
    parts, left = [], height
    while left:
        n = min(left, rows_per_block)
        parts.append(packer.compress(block[: n * len(row)]))
        left -= n
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunks = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")
    return PNG_MAGIC + chunks


def with_repeated_scans(jpeg: bytes, times: int) -> bytes:
    """All scans of a (progressive) JPEG repeated `times` times: the same valid image, but
    each extra scan is another pass over every block (libjpeg-turbo's LJT-01-003)."""
    first, end = jpeg.find(b"\xff\xda"), jpeg.rfind(b"\xff\xd9")
    return jpeg[:first] + jpeg[first:end] * times + jpeg[end:]


def raw_png(pixels: np.ndarray, colour_type: int, palette: bytes = b"", interlace: bool = False) -> bytes:
    """An 8-bit PNG written by hand: grey (0), RGB (2, pixels in R, G, B order) or palette (3,
    pixels are indices), optionally Adam7-interlaced. OpenCV writes neither palette nor
    interlaced PNGs."""
    height, width = pixels.shape[:2]
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, int(interlace))
    chunks = _chunk(b"IHDR", ihdr) + (_chunk(b"PLTE", palette) if palette else b"")
    chunks += _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
    return PNG_MAGIC + chunks


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute the CRC of every chunk that fits, so libpng looks past the CRCs."""
    buf, pos = bytearray(data), 8
    while pos + 12 <= len(buf):
        length = struct.unpack_from(">I", buf, pos)[0]
        end = pos + 8 + length
        if end + 4 > len(buf):
            break
        struct.pack_into(">I", buf, end, zlib.crc32(buf[pos + 4 : end]))
        pos = end + 4
    return bytes(buf)


# --- mutators of valid image bytes (fuzzing) ---------------------------------------------------


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(buf))
        buf[i] = rng.randrange(256) if rng.random() < 0.5 else buf[i] ^ (1 << rng.randrange(8))
    return bytes(buf)


def flip_header(data: bytes, rng: random.Random) -> bytes:
    """Like flip_bytes, within the first 700 bytes: segment lengths, tables, IHDR fields."""
    head = min(len(data), 700)
    return flip_bytes(data[:head], rng) + data[head:]


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def insert_bytes(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    chunk = rng.choice([b"\xff\xd9", b"\xff\xda", b"\xff\xc0", b"IEND", b"\x00" * 16, b"\xff" * 8])
    if rng.random() < 0.5:
        chunk = rng.randbytes(rng.randint(1, 32))
    return data[:i] + chunk + data[i:]


def delete_bytes(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 64) :]


def splice(data: bytes, rng: random.Random) -> bytes:
    """Copy a run of the file over another place (duplicated markers, repeated chunks)."""
    i, j = rng.randrange(len(data)), rng.randrange(len(data))
    run = data[i : i + rng.randint(1, 128)]
    return data[:j] + run + data[j:]


MUTATORS = (flip_bytes, flip_header, truncate, insert_bytes, delete_bytes, splice)


def mutate(data: bytes, rng: random.Random, rounds: int = 3) -> bytes:
    """1 to `rounds` random mutations (a mutation that would empty the data is skipped); half
    of the mutated PNGs get their CRCs repaired."""
    for _ in range(rng.randint(1, rounds)):
        if data:
            data = rng.choice(MUTATORS)(data, rng)
    if data.startswith(PNG_MAGIC) and rng.random() < 0.5:
        data = fix_png_crcs(data)
    return data


def random_dims(rng: random.Random) -> tuple[int, int]:
    """Width/height spread over small, typical, huge and the field maxima."""

    def one() -> int:
        return rng.choice(
            [
                0,
                1,
                rng.randint(2, 64),
                rng.randint(64, 8000),
                rng.randint(8000, 65535),
                65535,
                rng.randint(65536, 2**31 - 1),
                2**31 - 1,
                2**32 - 1,
            ]
        )

    return one(), one()


def resized(data: bytes, fmt: str, width: int, height: int) -> bytes:
    """Valid image bytes with the declared size patched (JPEG fields are 16 bit)."""
    if fmt == "png":
        return with_png_size(data, width, height)
    return with_jpeg_size(data, width & 0xFFFF, height & 0xFFFF)


def seed_images() -> dict[str, bytes]:
    """Small valid images of each supported flavour, the fuzzers' starting points."""
    rng = np.random.default_rng(7)
    colour = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    colour[10:30, 10:30] = (0, 0, 255)
    grey = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    rgba = np.dstack([colour, np.full(grey.shape, 128, np.uint8)])
    indices = (grey // 16).astype(np.uint8)
    palette = bytes(np.repeat(np.arange(0, 256, 16, dtype=np.uint8), 3))
    return {
        "png": png_bytes(colour),
        "png_grey": png_bytes(grey),
        "png_rgba": png_bytes(rgba),
        "png_16bit": png_bytes(colour.astype(np.uint16) * 257),
        "png_palette": raw_png(indices, 3, palette),
        "png_interlaced": raw_png(colour[:, :, ::-1], 2, interlace=True),
        "png_grey_interlaced": raw_png(grey, 0, interlace=True),
        "png_exif": png_with_exif_orientation(png_bytes(colour), 8),
        "jpeg": jpeg_bytes(colour),
        "jpeg_grey": jpeg_bytes(grey),
        "jpeg_progressive": encoded_jpeg(colour, progressive=True),
        "jpeg_444_restarts": encoded(
            colour,
            ".jpg",
            [
                cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
                cv2.IMWRITE_JPEG_RST_INTERVAL,
                2,
            ],
        ),
        "jpeg_exif": with_exif_orientation(jpeg_bytes(colour), 6),
        "jpeg_cmyk": cmyk_jpeg(grey),
    }


# --- fuzzing: random inputs and the property every decode must keep ------------------------------

BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_="
PREFIXES = (
    "",
    "data:image/png;base64,",
    "data:image/jpeg;base64,",
    "data:image/jpg;base64,",
    "data:;base64,",
    "DATA:IMAGE/PNG;BASE64,",
    "data:image/png,",
    "data:image/png;base64",
)


def as_text(data: bytes, rng: random.Random) -> str:
    """Image bytes spelled as a selfie string: bare or data URL, maybe URL-safe, unpadded, wrapped."""
    text = base64.urlsafe_b64encode(data).decode() if rng.random() < 0.2 else b64(data)
    if rng.random() < 0.2:
        text = text.rstrip("=")
    if rng.random() < 0.2:
        step = rng.randint(1, 100)
        text = "\n".join(text[i : i + step] for i in range(0, len(text), step))
    return rng.choice(PREFIXES[:4]) + text


def random_text(rng: random.Random) -> str:
    kind = rng.randrange(4)
    size = rng.choice([0, 1, 2, 3, 4, 5, rng.randint(0, 64), rng.randint(0, 2000)])
    if kind == 0:  # any unicode (mostly BMP)
        return "".join(chr(rng.choice([rng.randint(0, 127), rng.randint(0, 0xFFFF)])) for _ in range(size))
    if kind == 1:  # base64-looking, with a random prefix and stray whitespace
        body = "".join(rng.choice(BASE64_ALPHABET + " \n\t") for _ in range(size))
        return rng.choice(PREFIXES) + body
    if kind == 2:  # valid base64 of random bytes, maybe behind an image magic
        magic = rng.choice([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"])
        return as_text(magic + rng.randbytes(size), rng)
    return rng.choice(PREFIXES) + "".join(chr(rng.randint(32, 126)) for _ in range(size))


def random_bytes(rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 3, 8, rng.randint(0, 64), rng.randint(0, 4000)])
    magic = rng.choice([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"])
    return magic + rng.randbytes(size)


def random_max_pixels(rng: random.Random) -> int:
    return 40_000_000 if rng.random() < 0.8 else rng.choice([1, rng.randint(1, 5000), rng.randint(1, 10**7)])


def fuzz_case(rng: random.Random, seeds: dict[str, bytes]) -> tuple[str, str | bytes, int]:
    """One random input: (kind, bytes for decode_bytes or text for decode_selfie, max_pixels)."""
    kind = rng.choice(["text", "bytes", "mutated", "mutated_text", "resized", "resized_mutated"])
    name = rng.choice(sorted(seeds))
    seed = seeds[name]
    payload: str | bytes
    if kind == "text":
        payload = random_text(rng)
    elif kind == "bytes":
        payload = random_bytes(rng)
    elif kind.startswith("mutated"):
        payload = mutate(seed, rng)
        if kind == "mutated_text":
            payload = as_text(payload, rng)
    else:
        payload = resized(seed, "png" if name.startswith("png") else "jpeg", *random_dims(rng))
        if kind == "resized_mutated":
            payload = mutate(payload, rng)
    return kind, payload, random_max_pixels(rng)


def checked_decode(payload: str | bytes, max_pixels: int) -> bool:
    """Decode text (decode_selfie) or bytes (decode_bytes). True if decoded, False if refused
    with ImageError; any other exception escapes. A decoded image must be HxWx3 uint8 within
    max_pixels."""
    try:
        if isinstance(payload, str):
            result = decode_selfie(payload, max_pixels)
        else:
            result = decode_bytes(payload, max_pixels)
    except ImageError:
        return False
    pixels = result.pixels
    assert isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8, pixels.dtype
    assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.size > 0, pixels.shape
    assert pixels.shape[0] * pixels.shape[1] <= max_pixels, (pixels.shape, max_pixels)
    assert result.format in ("png", "jpeg") and result.scale in (1.0, 0.5, 0.25, 0.125)
    return True
