"""facecheck.images: selfie string -> validated, upright BGR image. Every input is built here."""

from __future__ import annotations

import base64
import struct
import time

import cv2
import numpy as np
import pytest

from facecheck import images
from facecheck.images import ImageError, decode_bytes, decode_selfie, reduction_for
from tests.imaging import (
    b64,
    blank_png,
    cmyk_jpeg,
    corner_pattern,
    data_url,
    encoded,
    encoded_jpeg,
    jpeg_bytes,
    png_bytes,
    png_with_exif_orientation,
    raw_png,
    sof_offset,
    stored_for,
    with_chunk,
    with_exif_orientation,
    with_jpeg_size,
    with_png_size,
    with_repeated_scans,
)

RNG = np.random.default_rng(0)
COLOUR = RNG.integers(0, 256, (60, 80, 3), dtype=np.uint8)
GREY = cv2.cvtColor(COLOUR, cv2.COLOR_BGR2GRAY)
PNG = png_bytes(COLOUR)
JPEG = jpeg_bytes(COLOUR)


def assert_bgr(pixels: np.ndarray, shape: tuple[int, int]) -> None:
    assert pixels.dtype == np.uint8
    assert pixels.shape == (*shape, 3)


@pytest.fixture
def no_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if OpenCV's decoder is reached."""

    def boom(*_: object) -> None:
        raise AssertionError("the decoder ran")

    monkeypatch.setattr(images.cv2, "imdecode", boom)


# --- valid inputs and their encodings ------------------------------------------------------------


def spellings(data: bytes, mime: str) -> dict[str, str]:
    if len(data) % 3 == 0:
        data += b"\x00"  # trailing bytes after IEND / EOI are ignored; this makes padding appear
    text = b64(data)
    url_safe = base64.urlsafe_b64encode(data).decode()
    assert "=" in text and ("+" in text or "/" in text)
    return {
        "bare": text,
        "data_url": data_url(data, mime),
        "data_url_upper": data_url(data, mime.upper()).replace("base64", "BASE64"),
        "newlines": "\n".join(text[i : i + 76] for i in range(0, len(text), 76)) + "\n",
        "spaces": " " + " ".join(text[i : i + 10] for i in range(0, len(text), 10)) + "\t",
        "url_safe": url_safe,
        "no_padding": text.rstrip("="),
        "url_safe_url_no_padding": data_url(b"", mime) + url_safe.rstrip("="),
    }


STYLES = list(spellings(PNG, "image/png"))


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg", "image/jpg"])
@pytest.mark.parametrize("fmt", ["png", "jpeg"])
@pytest.mark.parametrize("style", STYLES)
def test_valid_spellings_decode(fmt: str, mime: str, style: str) -> None:
    data = PNG if fmt == "png" else JPEG
    result = decode_selfie(spellings(data, mime)[style])
    assert result.format == fmt  # judged by the bytes, whatever the data URL says
    assert result.scale == 1.0
    assert_bgr(result.pixels, COLOUR.shape[:2])
    if fmt == "png":
        assert np.array_equal(result.pixels, COLOUR)
    else:
        assert np.array_equal(result.pixels, cv2.imdecode(np.frombuffer(JPEG, np.uint8), cv2.IMREAD_COLOR))


def test_data_url_parameters_are_ignored() -> None:
    result = decode_selfie("data:image/jpeg;name=selfie.jpg;charset=binary;base64," + b64(JPEG))
    assert result.format == "jpeg"


@pytest.mark.parametrize(
    "data, shape",
    [
        (png_bytes(GREY), GREY.shape),
        (jpeg_bytes(GREY), GREY.shape),
        (png_bytes(np.dstack([COLOUR, GREY])), GREY.shape),
        (png_bytes(GREY.astype(np.uint16) * 257), GREY.shape),
        (png_bytes(COLOUR.astype(np.uint16) * 257), GREY.shape),
        (png_bytes(np.dstack([COLOUR, GREY]).astype(np.uint16) * 257), GREY.shape),
        (cmyk_jpeg(GREY), GREY.shape),
        (encoded_jpeg(COLOUR, progressive=True), GREY.shape),
        (png_bytes(np.full((1, 1, 3), 200, np.uint8)), (1, 1)),
        (jpeg_bytes(np.full((1, 1, 3), 200, np.uint8)), (1, 1)),
        (blank_png(30, 20), (20, 30)),
        (raw_png(GREY // 16, 3, bytes(np.repeat(np.arange(0, 256, 16, dtype=np.uint8), 3))), GREY.shape),
        (raw_png(COLOUR[:, :, ::-1], 2, interlace=True), GREY.shape),
    ],
    ids=[
        "png_grey",
        "jpeg_grey",
        "png_rgba",
        "png_grey16",
        "png_rgb16",
        "png_rgba16",
        "jpeg_cmyk",
        "jpeg_progressive",
        "png_1x1",
        "jpeg_1x1",
        "png_1bit",
        "png_palette",
        "png_interlaced",
    ],
)
def test_other_layouts_become_8bit_bgr(data: bytes, shape: tuple[int, int]) -> None:
    # 1x1 decodes: rejecting it is face detection's job, not the decoder's.
    assert_bgr(decode_selfie(b64(data)).pixels, shape)


def test_interlaced_png_is_exact() -> None:
    assert np.array_equal(decode_bytes(raw_png(COLOUR[:, :, ::-1], 2, interlace=True)).pixels, COLOUR)


def test_16bit_png_is_scaled_to_8bit() -> None:
    pixels = decode_bytes(png_bytes(COLOUR.astype(np.uint16) * 257)).pixels
    assert np.array_equal(pixels, COLOUR)


def test_cmyk_jpeg_is_really_four_components() -> None:
    data = cmyk_jpeg(GREY)
    pos = sof_offset(data)
    assert data[pos + 9] == 4
    assert b"Adobe" in data
    # A smooth ramp stays monotonic through the CMYK -> BGR conversion.
    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))
    row = decode_bytes(cmyk_jpeg(ramp, quality=100)).pixels[8, :, 0].astype(int)
    assert np.all(np.diff(row[::4]) >= 0) and row[-1] > row[0] + 100


def test_jpeg_with_trailer_after_eoi_decodes() -> None:
    assert_bgr(decode_bytes(JPEG + b"camera trailer \xff\xd8 junk").pixels, COLOUR.shape[:2])


# --- rejected inputs -----------------------------------------------------------------------------

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


@pytest.mark.parametrize(
    "text",
    [
        b64(GIF),
        b64(encoded(COLOUR, ".bmp")),
        b64(encoded(COLOUR, ".webp")),
        b64(encoded(COLOUR, ".tiff")),
        data_url(GIF, "image/gif"),
        data_url(encoded(COLOUR, ".webp"), "image/png"),
        "hello, this is not an image",
        "",
        "   \n",
        "data:image/png;base64,",
        "data:image/png;base64",
        "ÿØÿ selfie ☺",
        "iVBORw0KGgo=" + "é",
        b64(np.random.default_rng(1).bytes(5000)),
        b64(b"\x89PNG\r\n\x1a\n"),
        b64(b"\xff\xd8\xff"),
        b64(PNG)[:-3] + "!==",
        b64(PNG) + "====",
        "data:image/png;base64," + b64(PNG) + ",",
    ],
    ids=[
        "gif",
        "bmp",
        "webp",
        "tiff",
        "gif_url",
        "webp_as_png",
        "text",
        "empty",
        "blank",
        "empty_url",
        "no_comma",
        "non_ascii",
        "non_ascii_tail",
        "random",
        "png_magic_only",
        "jpeg_magic_only",
        "bad_char",
        "extra_padding",
        "trailing_comma",
    ],
)
def test_rejected(text: str) -> None:
    with pytest.raises(ImageError):
        decode_selfie(text)


@pytest.mark.parametrize("fraction", [0.5, 0.9])
@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_truncated(fmt: str, fraction: float) -> None:
    data = PNG if fmt == "png" else JPEG
    with pytest.raises(ImageError):
        decode_bytes(data[: int(len(data) * fraction)])


def test_truncated_png_with_iend_in_text() -> None:
    data = with_chunk(PNG, b"tEXt", b"Comment\x00IEND")
    assert_bgr(decode_bytes(data).pixels, COLOUR.shape[:2])
    with pytest.raises(ImageError, match="truncated"):
        decode_bytes(data[: len(data) // 2])


def test_png_with_trailer_after_iend_decodes() -> None:
    assert_bgr(decode_bytes(PNG + b"trailer IDAT \xff\xff\xff\xff").pixels, COLOUR.shape[:2])


@pytest.mark.parametrize("kind", [b"IDAT", b"tEXt"])
def test_png_chunk_claiming_4gb(no_decoder: None, kind: bytes) -> None:
    # OpenCV 4.14 allocates the declared length first: this 300-byte file cost 4 GB and 12 s.
    data = with_chunk(PNG, kind, b"\x00" * 100, length=0xFFFFFFFF)
    start = time.perf_counter()
    with pytest.raises(ImageError, match="truncated"):
        decode_bytes(data)
    assert time.perf_counter() - start < 0.5


def test_truncated_progressive_jpeg() -> None:
    data = encoded_jpeg(COLOUR, progressive=True)
    with pytest.raises(ImageError):
        decode_bytes(data[: int(len(data) * 0.7)])


def test_truncated_jpeg_with_thumbnail(no_decoder: None) -> None:
    # An EXIF-like APP1 holding a whole thumbnail JPEG (its own SOS ... EOI) must not make
    # a truncated main image look complete.
    body = b"Exif\x00\x00" + jpeg_bytes(COLOUR[::4, ::4])
    whole = JPEG[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + JPEG[2:]
    with pytest.raises(ImageError, match="truncated"):
        decode_bytes(whole[: len(whole) - len(JPEG) // 2])


def test_jpeg_with_thumbnail_decodes() -> None:
    body = b"Exif\x00\x00" + jpeg_bytes(COLOUR[::4, ::4])
    whole = JPEG[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + JPEG[2:]
    assert_bgr(decode_bytes(whole).pixels, COLOUR.shape[:2])


# --- decompression bombs: refused from the header, before the decoder runs ------------------------


def test_png_declaring_50000_squared(no_decoder: None) -> None:
    bomb = with_png_size(PNG, 50_000, 50_000)
    start = time.perf_counter()
    with pytest.raises(ImageError, match="too large"):
        decode_selfie(b64(bomb))
    assert time.perf_counter() - start < 0.5


def test_png_zip_bomb(no_decoder: None) -> None:
    bomb = blank_png(12_000, 12_000)  # 144 M pixels, valid, ~20 kB
    assert len(bomb) < 500_000
    start = time.perf_counter()
    with pytest.raises(ImageError, match="too large"):
        decode_bytes(bomb, max_pixels=40_000_000)
    assert time.perf_counter() - start < 0.5


def test_blank_png_is_a_real_png() -> None:
    pixels = decode_bytes(blank_png(1000, 700)).pixels
    assert pixels.shape == (700, 1000, 3) and not pixels.any()


@pytest.mark.parametrize("width, height", [(65535, 65535), (10_000, 5_000), (40_001, 1000)])
def test_jpeg_sof_declaring_huge_size(no_decoder: None, width: int, height: int) -> None:
    start = time.perf_counter()
    with pytest.raises(ImageError, match="too large"):
        decode_bytes(with_jpeg_size(JPEG, width, height))
    assert time.perf_counter() - start < 0.5


def test_jpeg_data_too_short_for_its_size(no_decoder: None) -> None:
    # 6000x6000 = 562,500 blocks need >= 70 kB of scan data (1 bit per block at least);
    # libjpeg would "decode" these 3 kB into a grey 6000x6000 canvas.
    with pytest.raises(ImageError, match="truncated"):
        decode_bytes(with_jpeg_size(JPEG, 6000, 6000))


def test_jpeg_plausible_size_change_decodes() -> None:
    # 80x60 -> 160x120: 300 blocks, far below the floor; libjpeg fills what is missing.
    assert_bgr(decode_bytes(with_jpeg_size(JPEG, 160, 120)).pixels, (120, 160))


def test_arithmetic_coded_jpeg(no_decoder: None) -> None:
    pos = sof_offset(JPEG)
    data = JPEG[: pos + 1] + b"\xc9" + JPEG[pos + 2 :]
    with pytest.raises(ImageError, match="arithmetic"):
        decode_bytes(data)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_zero_dimension(no_decoder: None, fmt: str) -> None:
    data = with_png_size(PNG, 0, 60) if fmt == "png" else with_jpeg_size(JPEG, 80, 0)
    with pytest.raises(ImageError):
        decode_bytes(data)


def test_max_pixels_is_honoured(no_decoder: None) -> None:
    with pytest.raises(ImageError, match="too large"):
        decode_bytes(PNG, max_pixels=80 * 60 - 1)


def hidden_frame_header(jpeg: bytes, width: int, height: int) -> bytes:
    """A JPEG whose real frame header declares width x height, with the original small
    one hidden inside an APP1 segment. libjpeg skips the FF 00 pair and the two bytes after
    it as stray data and reads the big header; a walker that takes FF 00 for a segment jumps
    over the big header straight to the small one."""
    pos = sof_offset(jpeg)
    sof = jpeg[pos : pos + 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]]
    big = sof[:5] + struct.pack(">HH", height, width) + sof[9:]
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + len(sof)) + sof
    stray = b"\xff\x00" + struct.pack(">H", 2 + len(big) + 4)
    return jpeg[:2] + stray + big + app1 + jpeg[2:pos] + jpeg[pos + len(sof) :]


def test_jpeg_hidden_frame_header(no_decoder: None) -> None:
    # Before the fix this 1.4 kB file decoded to 20000x20000 (2.3 GB, 5 s).
    with pytest.raises(ImageError):
        decode_bytes(hidden_frame_header(JPEG, 20_000, 20_000))


def test_jpeg_hidden_frame_header_is_what_libjpeg_reads() -> None:
    evil = hidden_frame_header(JPEG, 200, 100)
    pixels = cv2.imdecode(np.frombuffer(evil, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None and pixels.shape == (100, 200, 3)


def test_progressive_jpeg_with_many_scans(no_decoder: None) -> None:
    data = with_repeated_scans(encoded_jpeg(COLOUR, progressive=True), 4)
    assert data.count(b"\xff\xda") == 40
    with pytest.raises(ImageError, match="scans"):
        decode_bytes(data)


def test_progressive_jpeg_with_repeated_scans_is_valid_for_libjpeg() -> None:
    data = with_repeated_scans(encoded_jpeg(COLOUR, progressive=True), 4)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == COLOUR.shape


# --- EXIF orientation ----------------------------------------------------------------------------


def assert_upright(pixels: np.ndarray, upright: np.ndarray) -> None:
    assert pixels.shape == upright.shape
    assert np.abs(pixels.astype(int) - upright).mean() < 8  # JPEG noise only
    square = upright.shape[0] // 4
    assert pixels[:square, :square].mean() > 200  # the white square is top-left
    assert pixels[-square:, -square:].mean() < 50


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(orientation: int) -> None:
    upright = corner_pattern(100, 200, 40)
    stored = stored_for(upright, orientation)
    if orientation >= 5:
        assert stored.shape == (200, 100, 3)
    result = decode_bytes(with_exif_orientation(jpeg_bytes(stored), orientation))
    assert result.scale == 1.0
    assert_upright(result.pixels, upright)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_png_exif_orientation(orientation: int) -> None:
    # OpenCV (4.14) honours a PNG eXIf chunk too, as browsers do.
    upright = corner_pattern(100, 200, 40)
    result = decode_bytes(png_with_exif_orientation(png_bytes(stored_for(upright, orientation)), orientation))
    assert np.array_equal(result.pixels, upright)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_on_reduced_decode(orientation: int) -> None:
    upright = corner_pattern(1280, 2560, 400)
    stored = stored_for(upright, orientation)
    result = decode_bytes(with_exif_orientation(jpeg_bytes(stored), orientation))
    assert result.scale == 0.25
    assert_upright(result.pixels, cv2.resize(upright, (640, 320), interpolation=cv2.INTER_AREA))


# --- reduced decoding ----------------------------------------------------------------------------


def smooth(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 255 // width, y * 255 // height, (x + y) % 256]).astype(np.uint8)


@pytest.mark.parametrize(
    "fmt, width, height, scale, out",
    [
        ("jpeg", 2560, 1920, 0.25, (480, 640)),
        ("jpeg", 1280, 960, 0.5, (480, 640)),
        ("jpeg", 1279, 960, 1.0, (960, 1279)),
        ("jpeg", 1920, 2560, 0.25, (640, 480)),
        ("png", 1280, 960, 1.0, (960, 1280)),
    ],
)
def test_reduced_decode(fmt: str, width: int, height: int, scale: float, out: tuple[int, int]) -> None:
    img = smooth(height, width)
    result = decode_bytes(jpeg_bytes(img) if fmt == "jpeg" else png_bytes(img, compression=1))
    assert result.scale == scale
    assert_bgr(result.pixels, out)
    reference = cv2.resize(img, out[::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(result.pixels.astype(int) - reference).mean() < 4


@pytest.mark.parametrize(
    "width, height, fmt, factor",
    [
        (640, 480, "jpeg", 1),
        (1279, 1279, "jpeg", 1),
        (1280, 10, "jpeg", 2),
        (10, 2560, "jpeg", 4),
        (5120, 3840, "jpeg", 8),
        (20000, 20000, "jpeg", 8),
        (5120, 3840, "png", 1),
    ],
)
def test_reduction_for(width: int, height: int, fmt: str, factor: int) -> None:
    assert reduction_for(width, height, fmt) == factor
