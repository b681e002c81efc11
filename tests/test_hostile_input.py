"""Hostile input against the real service: a hand-written corpus of malformed, oversized,
odd and malicious requests. None may get a 5xx, every refusal is a 4xx with a JSON body
that leaks nothing, the service stays live, and no image or key ends up in its log or store."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest
import requests

from facecheck.settings import PROJECT_ROOT
from tests.imaging import blank_png, cmyk_jpeg, data_url, jpeg_bytes, png_bytes, with_jpeg_size, with_png_size

MB = 1024 * 1024
PNG = "image/png"
FACE = {201, 422}  # a valid image: scored, or refused for its face (never a verdict on bad input)
LEAKS = ("Traceback", 'File "', ".py", "site-packages", str(PROJECT_ROOT), "/tmp/")


@dataclass
class Case:
    name: str
    expected: set[int]
    body: object = None  # sent as JSON unless `raw` is set
    raw: bytes | None = None
    method: str = "POST"
    endpoint: str = "/liveness"
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False  # send `raw` in 1 MB chunks, without a Content-Length


def image_cases(key: str, live_frame: np.ndarray) -> list[Case]:
    jpeg = jpeg_bytes(live_frame)
    grey = cv2.cvtColor(live_frame, cv2.COLOR_BGR2GRAY)
    rgba = np.dstack([live_frame, np.full(grey.shape, 200, np.uint8)])
    tiny = np.zeros((1, 1, 3), np.uint8)
    bare = base64.b64encode(jpeg).decode()
    images = {
        "truncated jpeg": (data_url(jpeg[: len(jpeg) // 2]), {400}),
        "png declaring 50000x50000": (data_url(with_png_size(png_bytes(tiny), 50000, 50000), PNG), {400}),
        "jpeg declaring 65535x65535": (data_url(with_jpeg_size(jpeg_bytes(tiny), 65535, 65535)), {400}),
        "png bomb 12000x12000 (over the pixel limit)": (data_url(blank_png(12000, 12000), PNG), {400}),
        "png bomb 6000x6000 (under the pixel limit)": (data_url(blank_png(6000, 6000), PNG), {422}),
        "cmyk jpeg": (data_url(cmyk_jpeg(grey)), {201}),
        "16-bit png": (data_url(png_bytes(live_frame.astype(np.uint16) * 257), PNG), {201}),
        "grayscale jpeg": (data_url(jpeg_bytes(grey)), {201}),
        "grayscale png": (data_url(png_bytes(grey), PNG), {201}),
        "rgba png": (data_url(png_bytes(rgba), PNG), {201}),
        "1x1 jpeg": (data_url(jpeg_bytes(tiny)), {422}),
        "1x1 png": (data_url(png_bytes(tiny), PNG), {422}),
        "base64 with newlines": ("\n".join(bare[i : i + 76] for i in range(0, len(bare), 76)), FACE),
        "base64 with spaces and tabs": (" \t".join(bare[i : i + 50] for i in range(0, len(bare), 50)), FACE),
        "url-safe base64, unpadded": (base64.urlsafe_b64encode(jpeg).decode().rstrip("="), FACE),
        "data url naming gif": (data_url(jpeg, "image/gif"), FACE),
        "data url naming png for a jpeg": (data_url(jpeg, PNG), FACE),
        "data url naming text/html": (data_url(b"<script>alert(1)</script>", "text/html"), {400}),
    }
    cases = [
        Case(name, expected, {"hash_id": key, "selfie_image": image})
        for name, (image, expected) in images.items()
    ]
    cases.append(Case("truncated jpeg on /deepfake", {400}, cases[0].body, endpoint="/deepfake"))
    return cases


def request_cases(key: str, selfie: str) -> list[Case]:
    def with_id(hash_id: object) -> dict:
        return {"hash_id": hash_id, "selfie_image": selfie}

    valid = json.dumps(with_id(key)).encode()
    deep = b"[" * 100_000 + b"]" * 100_000
    huge = json.dumps(with_id("A" * (50 * MB))).encode()
    return [
        Case("50 MB base64 string", {413}, raw=huge),
        Case("50 MB base64 string, chunked", {413}, raw=huge, chunked=True),
        Case("hash_id as an operator object", {401}, with_id({"$ne": None})),
        Case("hash_id as a list", {401}, with_id([key])),
        Case("hash_id of 10 kB", {401}, with_id("k" * 10_000)),
        Case("hash_id in unicode", {401}, with_id("ключ🔑" + "\u202e" + "\ufeff")),
        Case("hash_id with NUL bytes", {401}, with_id("fc_\x00\x00" + "\x00" * 40)),
        Case("valid hash_id followed by NUL", {401}, with_id(key + "\x00")),
        Case("hash_id as a number", {401}, with_id(1e308)),
        Case("hash_id as a boolean", {401}, with_id(True)),
        Case("hash_id as a 5000-digit integer", {400}, raw=b'{"hash_id": ' + b"9" * 5000 + b"}"),
        Case("hash_id as NaN", {401}, raw=b'{"hash_id": NaN, "selfie_image": "x"}'),
        Case("extra fields", {201}, with_id(key) | {"extra": [1, {"a": None}], "__proto__": {"admin": 1}}),
        Case("duplicate hash_id field, bad one last", {401}, raw=valid[:-1] + b', "hash_id": "nope"}'),
        Case("selfie_image as an object", {400}, {"hash_id": key, "selfie_image": {"data": selfie}}),
        Case("content-type text/plain", {201}, raw=valid, headers={"Content-Type": "text/plain"}),
        Case(
            "content-type form, form body",
            {400},
            raw=b"hash_id=x&selfie_image=y",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        Case(
            "content-type multipart",
            {400},
            raw=b"--b\r\n\r\n--b--",
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        ),
        Case("empty body", {400}, raw=b""),
        Case("JSON null", {400}, raw=b"null"),
        Case("invalid UTF-8", {400}, raw=b'{"hash_id": "\xff\xfe"}'),
        Case("JSON nested 100k deep", {400}, raw=deep),
        Case("JSON nested 100k deep in hash_id", {400}, raw=b'{"hash_id": ' + deep + b"}"),
        Case("GET /liveness", {405}, method="GET"),
        Case("GET /deepfake", {405}, method="GET", endpoint="/deepfake"),
        Case("PUT /deepfake", {405}, with_id(key), method="PUT", endpoint="/deepfake"),
    ]


def send(service, case: Case) -> requests.Response:
    kwargs: dict = {"headers": case.headers, "timeout": 120}
    if case.raw is not None:
        kwargs["data"] = (
            (case.raw[i : i + MB] for i in range(0, len(case.raw), MB)) if case.chunked else case.raw
        )
    elif case.body is not None:
        kwargs["json"] = case.body
    return requests.request(case.method, f"{service.url}{case.endpoint}", **kwargs)


def fragments(image: str) -> list[str]:
    """Three 40-character pieces of an image's base64, prefix and whitespace removed."""
    text = "".join(image.split(",", 1)[-1].split())
    return [text[i : i + 40] for i in (0, len(text) // 2, max(len(text) - 40, 0)) if len(text) >= 40]


@pytest.fixture(scope="module")
def key(service) -> str:
    return service.new_key(name="hostile")


@pytest.fixture(scope="module")
def answers(service, key, selfie, live_frame) -> list[tuple[Case, requests.Response]]:
    cases = image_cases(key, live_frame) + request_cases(key, selfie)
    print(f"\nhostile-input corpus: {len(cases)} cases")
    return [(case, send(service, case)) for case in cases]


def test_every_case_is_answered_as_expected(answers) -> None:
    wrong = [
        f"{case.name}: {resp.status_code} {resp.text[:200]}"
        for case, resp in answers
        if resp.status_code not in case.expected
    ]
    assert not wrong, "\n".join(wrong)


def test_no_5xx_and_errors_are_clean_json(answers) -> None:
    for case, resp in answers:
        assert resp.status_code < 500, f"{case.name}: {resp.status_code} {resp.text[:300]}"
        if resp.status_code >= 400:
            assert isinstance(resp.json(), dict), case.name
            leaked = [s for s in LEAKS if s in resp.text]
            assert not leaked, f"{case.name} leaks {leaked}: {resp.text[:300]}"


def test_service_still_live(answers, service) -> None:
    resp = requests.get(f"{service.url}/status_check", timeout=10)
    assert (resp.status_code, resp.text) == (200, "Service is Live")


def test_no_image_or_key_in_log_or_store(answers, service, key) -> None:
    images = [case.body.get("selfie_image") for case, _ in answers if isinstance(case.body, dict)]
    secrets = [piece for image in images if isinstance(image, str) for piece in fragments(image)]
    assert len(secrets) > 20
    secrets += [key, key.split("_", 2)[2]]  # the whole key and its secret part
    store = service.store()
    try:
        records = "\n".join(repr(r) for r in store.recent_records(10000))
    finally:
        store.close()
    raw = b"".join(p.read_bytes() for p in service.db_path.parent.glob("facecheck.db*"))
    log = service.log()
    for secret in secrets:
        assert secret not in log, f"in the service log: {secret[:12]}..."
        assert secret not in records, f"in a store record: {secret[:12]}..."
        assert secret.encode() not in raw, f"in the database file: {secret[:12]}..."
