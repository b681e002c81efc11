"""Property tests of the selfie decoder: whatever comes in, the only exception is ImageError,
every call is fast (deadline), and what decodes is HxWx3 uint8 within max_pixels.

FACECHECK_FUZZ_EXAMPLES raises the examples per property (default 300); bench/fuzz_decoder.py
runs the same generators for 100,000+ inputs."""

from __future__ import annotations

import base64
import binascii
import os
import random
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facecheck.images import ImageError, base64_to_bytes
from tests.imaging import (
    BASE64_ALPHABET,
    PREFIXES,
    as_text,
    checked_decode,
    mutate,
    random_dims,
    resized,
    seed_images,
)

EXAMPLES = int(os.environ.get("FACECHECK_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
SEEDS = seed_images()
NAMES = sorted(SEEDS)
MAX_PIXELS = 40_000_000

max_pixels = st.one_of(st.just(MAX_PIXELS), st.integers(1, 10**7))
randoms = st.randoms(use_true_random=False)
dims = st.one_of(st.integers(0, 70_000), st.integers(0, 2**32 - 1))


def fmt_of(name: str) -> str:
    return "png" if name.startswith("png") else "jpeg"


@FUZZ
@given(text=st.text(max_size=2000), limit=max_pixels)
def test_any_text(text: str, limit: int) -> None:
    checked_decode(text, limit)


@FUZZ
@given(prefix=st.sampled_from(PREFIXES), body=st.text(BASE64_ALPHABET + " \n\t", max_size=2000))
def test_base64_looking_text(prefix: str, body: str) -> None:
    checked_decode(prefix + body, MAX_PIXELS)


def stdlib_base64(text: str) -> bytes | None:
    """What the decoder promises, read with the standard library alone: whitespace ignored,
    the URL-safe alphabet accepted, padding optional, anything else refused."""
    raw = re.sub(r"\s+", "", text)
    if not raw or not re.fullmatch(r"[A-Za-z0-9+/\-_]*={0,2}", raw):
        return None
    raw = raw.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error:
        return None


@FUZZ
@given(
    body=st.text(BASE64_ALPHABET + " \n", max_size=24)
    | st.binary(max_size=48).map(lambda b: base64.b64encode(b).decode())
)
def test_base64_reading_matches_the_standard_library(body: str) -> None:
    """The fast SIMD path for canonical base64 and the lenient path read alike."""
    try:
        got = base64_to_bytes(body)
    except ImageError:
        got = None
    assert got == stdlib_base64(body)


@FUZZ
@given(data=st.binary(max_size=4000), limit=max_pixels)
def test_any_bytes(data: bytes, limit: int) -> None:
    checked_decode(data, limit)


@FUZZ
@given(magic=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]), data=st.binary(max_size=4000))
def test_bytes_behind_a_magic(magic: bytes, data: bytes) -> None:
    checked_decode(magic + data, MAX_PIXELS)


@FUZZ
@given(name=st.sampled_from(NAMES), rng=randoms, limit=max_pixels)
def test_mutated_images(name: str, rng: random.Random, limit: int) -> None:
    checked_decode(mutate(SEEDS[name], rng), limit)


@FUZZ
@given(name=st.sampled_from(NAMES), rng=randoms)
def test_mutated_images_as_text(name: str, rng: random.Random) -> None:
    checked_decode(as_text(mutate(SEEDS[name], rng), rng), MAX_PIXELS)


@FUZZ
@given(name=st.sampled_from(NAMES), width=dims, height=dims, limit=max_pixels)
def test_declared_sizes(name: str, width: int, height: int, limit: int) -> None:
    checked_decode(resized(SEEDS[name], fmt_of(name), width, height), limit)


@FUZZ
@given(name=st.sampled_from(NAMES), rng=randoms)
def test_declared_sizes_and_mutations(name: str, rng: random.Random) -> None:
    checked_decode(mutate(resized(SEEDS[name], fmt_of(name), *random_dims(rng)), rng), MAX_PIXELS)


@FUZZ
@given(name=st.sampled_from(NAMES), limit=st.integers(1, 4000))
def test_seeds_decode_exactly_within_the_limit(name: str, limit: int) -> None:
    # The seeds are 64x48 = 3072 pixels: refused above the limit, decoded within it.
    assert checked_decode(SEEDS[name], limit) == (limit >= 64 * 48)
