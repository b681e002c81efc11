"""The old containers' HTTP contract, byte for byte, against the real service over HTTP
(bentoml serve, shipped ONNX models, its own SQLite file)."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request

import cv2
import numpy as np
import pytest
import requests

from facecheck import contract
from facecheck.faces import YuNetDetector
from facecheck.models import DEEPFAKE_FILE, LIVENESS_FILE, read_model_info
from facecheck.settings import Settings
from tests.imaging import b64, data_url, jpeg_bytes, png_bytes

LIVENESS_CORRUPT = {"error": contract.CORRUPT_IMAGE}
DEEPFAKE_CORRUPT = {"error": contract.CORRUPT_IMAGE_DEEPFAKE}


def test_status_check_is_live(service) -> None:
    resp = requests.get(f"{service.url}/status_check", timeout=10)
    assert resp.status_code == 200
    assert resp.text == "Service is Live"


def test_liveness_success_body(service, selfie, shipped_models) -> None:
    resp = service.post("/liveness", {"hash_id": service.new_key(), "selfie_image": selfie})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == {"liveness_result", "message"}
    assert body["message"] == "Success"
    result = body["liveness_result"]
    assert set(result) == {"is_live", "liveness_score"}
    assert type(result["is_live"]) is int and type(result["liveness_score"]) is float
    assert 0.0 <= result["liveness_score"] <= 1.0
    threshold = read_model_info(shipped_models / LIVENESS_FILE).threshold
    assert result["is_live"] == int(result["liveness_score"] >= threshold)


def test_deepfake_success_body(service, selfie, shipped_models) -> None:
    resp = service.post("/deepfake", {"hash_id": service.new_key(), "selfie_image": selfie})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == {"deepfake_result", "status"}
    assert body["status"] == "Success"
    result = body["deepfake_result"]
    assert set(result) == {"deepfake_score", "is_deepfake", "message"}
    threshold = read_model_info(shipped_models / DEEPFAKE_FILE).threshold
    assert result["is_deepfake"] == int(result["deepfake_score"] >= threshold)
    expected = "Provided image is deepfake!" if result["is_deepfake"] else "Provided image is not deepfake!"
    assert result["message"] == expected


def test_bare_base64_and_every_data_url_prefix(service, live_frame) -> None:
    key = service.new_key()
    jpeg, png = jpeg_bytes(live_frame), png_bytes(live_frame)
    bare = b64(jpeg)
    for image in (
        bare,
        f"data:image/jpeg;base64,{bare}",
        f"data:image/jpg;base64,{bare}",
        data_url(png, "image/png"),
    ):
        resp = service.post("/liveness", {"hash_id": key, "selfie_image": image})
        assert resp.status_code == 201, resp.text


@pytest.mark.parametrize(
    "hash_id", [None, "", "nope", 12345, ["a"], {"$ne": None}, "fc_000000000000_" + "x" * 43]
)
def test_invalid_credentials(service, selfie, hash_id) -> None:
    for endpoint in ("/liveness", "/deepfake"):
        resp = service.post(endpoint, {"hash_id": hash_id, "selfie_image": selfie})
        assert resp.status_code == 401
        assert resp.json() == {"message": "Invalid credentials"}


def test_missing_hash_id_and_disabled_key(service, selfie) -> None:
    assert service.post("/liveness", {"selfie_image": selfie}).json() == {"message": "Invalid credentials"}
    key = service.new_key()
    store = service.store()
    store.set_disabled(key.split("_")[1], True)
    store.close()
    resp = service.post("/liveness", {"hash_id": key, "selfie_image": selfie})
    assert (resp.status_code, resp.json()) == (401, {"message": "Invalid credentials"})


@pytest.mark.parametrize("image", [None, "", "   ", 0, []])
def test_missing_image(service, image) -> None:
    key = service.new_key()
    for body in ({"hash_id": key, "selfie_image": image}, {"hash_id": key}):
        for endpoint in ("/liveness", "/deepfake"):
            resp = service.post(endpoint, body)
            assert resp.status_code == 400
            assert resp.json() == {"error": "Selfie_image is required and must be a JPEG, JPG or PNG."}


def corrupt_images(live_frame: np.ndarray) -> dict[str, str]:
    jpeg = jpeg_bytes(live_frame)
    png = bytearray(png_bytes(live_frame[:8, :8]))
    png[16:24] = (50000).to_bytes(4, "big") * 2  # IHDR declares 50000 x 50000
    ok, webp = cv2.imencode(".webp", live_frame)
    ok, bmp = cv2.imencode(".bmp", live_frame[:16, :16])
    return {
        "not base64": "this is not an image!",
        "text": b64(b"hello, I am a text file"),
        "gif": "data:image/gif;base64," + b64(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
        "bmp": b64(bmp.tobytes()),
        "webp": "data:image/png;base64," + b64(webp.tobytes()),
        "truncated jpeg": b64(jpeg[: len(jpeg) // 2]),
        "bomb png": b64(bytes(png)),
    }


def test_corrupt_image_wording_per_endpoint(service, live_frame) -> None:
    key = service.new_key()
    for name, image in corrupt_images(live_frame).items():
        resp = service.post("/liveness", {"hash_id": key, "selfie_image": image})
        assert (resp.status_code, resp.json()) == (400, LIVENESS_CORRUPT), name
        resp = service.post("/deepfake", {"hash_id": key, "selfie_image": image})
        assert (resp.status_code, resp.json()) == (400, DEEPFAKE_CORRUPT), name
    usage = service.store().usage(key.split("_")[1])
    assert usage is not None and usage["used"] == 0  # bad input changes nothing


def test_not_json_and_too_large(service) -> None:
    for raw in (b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"{" * 100000):
        resp = requests.post(f"{service.url}/liveness", data=raw, timeout=30)
        assert resp.status_code == 400
        assert resp.json() == {"error": contract.NOT_JSON}
    big = json.dumps({"hash_id": "x", "selfie_image": "A" * (11 * 1024 * 1024)})
    resp = requests.post(f"{service.url}/liveness", data=big, timeout=60)
    assert resp.status_code == 413
    assert resp.json() == {"error": contract.BODY_TOO_LARGE}


def test_too_large_reaches_a_client_that_sends_before_reading(service) -> None:
    """urllib and http.client write the whole body before they read the answer (they never
    wait for `100 Continue`): a 12 MB body still gets its 413, not a reset connection,
    with a Content-Length and chunked."""
    mb = 1024 * 1024
    big = json.dumps({"hash_id": "x", "selfie_image": "A" * (12 * mb)}).encode()
    request = urllib.request.Request(
        f"{service.url}/liveness", data=big, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as declared:
        urllib.request.urlopen(request, timeout=60)
    assert declared.value.code == 413
    assert json.loads(declared.value.read()) == {"error": contract.BODY_TOO_LARGE}

    url = urllib.parse.urlsplit(service.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        # an iterable body without a Content-Length goes out chunked
        connection.request("POST", "/liveness", body=(big[i : i + mb] for i in range(0, len(big), mb)))
        chunked = connection.getresponse()
        assert chunked.status == 413
        assert json.loads(chunked.read()) == {"error": contract.BODY_TOO_LARGE}
    finally:
        connection.close()


def test_quota_counts_scored_requests_only(service, selfie, live_frame) -> None:
    key = service.new_key(limit=2)
    blank = data_url(jpeg_bytes(np.full((480, 640, 3), 128, np.uint8)))
    assert service.post("/liveness", {"hash_id": key, "selfie_image": blank}).status_code == 422
    for _ in range(2):
        assert service.post("/liveness", {"hash_id": key, "selfie_image": selfie}).status_code == 201
    for endpoint in ("/liveness", "/deepfake"):
        resp = service.post(endpoint, {"hash_id": key, "selfie_image": selfie})
        assert resp.status_code == 429
        assert resp.json() == {"message": "Your request limit has been reached."}


def test_face_errors_are_not_verdicts(service, live_frame) -> None:
    key = service.new_key()
    blank = np.full((480, 640, 3), 128, np.uint8)
    small = cv2.resize(live_frame, None, fx=0.16, fy=0.16, interpolation=cv2.INTER_AREA)
    canvas = np.full((240, 320, 3), 128, np.uint8)
    canvas[60 : 60 + small.shape[0], 80 : 80 + small.shape[1]] = small  # a face detected at ~34 px
    pair = np.hstack([live_frame, live_frame])
    cases = {
        "no face": (blank, contract.NO_FACE),
        "too small": (canvas, contract.FACE_TOO_SMALL),
        "two faces": (pair, contract.MULTIPLE_FACES),
    }
    for name, (image, message) in cases.items():
        for endpoint in ("/liveness", "/deepfake"):
            resp = service.post(endpoint, {"hash_id": key, "selfie_image": data_url(jpeg_bytes(image))})
            assert (resp.status_code, resp.json()) == (422, {"error": message}), name


def test_liveness_refuses_a_face_cut_out_of_its_photo(service, live_frame) -> None:
    """A face cropped out of its frame leaves the liveness model nothing but the face (a
    printed photo cropped so passed half the time, models/liveness.md): /liveness answers
    422 and counts nothing; /deepfake, whose crop is the face itself, still judges it."""
    key = service.new_key(limit=1)
    x, y, w, h = YuNetDetector().detect(live_frame)[0].box.astype(int).tolist()
    cut = data_url(jpeg_bytes(cv2.resize(live_frame[y : y + h, x : x + w], (300, 300))))
    resp = service.post("/liveness", {"hash_id": key, "selfie_image": cut})
    assert (resp.status_code, resp.json()) == (422, {"error": contract.FACE_FILLS_IMAGE})
    resp = service.post("/deepfake", {"hash_id": key, "selfie_image": cut})
    assert resp.status_code == 201 and resp.json()["status"] == "Success"  # the one unit of quota


def test_exif_orientation_is_honoured(service, live_frame) -> None:
    """A phone photo stored sideways with an orientation tag is judged upright: a
    lossless PNG (eXIf chunk) scores exactly as the upright image; a JPEG is judged."""
    from tests.imaging import png_with_exif_orientation, stored_for, with_exif_orientation

    key = service.new_key()
    sideways = stored_for(live_frame, 6)  # as a phone held sideways stores it

    def score(data: bytes, mime: str) -> float:
        resp = service.post("/liveness", {"hash_id": key, "selfie_image": data_url(data, mime)})
        assert resp.status_code == 201, resp.text
        return resp.json()["liveness_result"]["liveness_score"]

    upright = score(png_bytes(live_frame), "image/png")
    assert score(png_with_exif_orientation(png_bytes(sideways), 6), "image/png") == pytest.approx(
        upright, abs=1e-6
    )
    score(with_exif_orientation(jpeg_bytes(sideways), 6), "image/jpeg")


def test_turned_selfies_are_judged_upright(service, live_frame) -> None:
    """A selfie stored sideways or upside down without an orientation tag scores exactly
    as the upright one: the models never judge a turned face (print attacks turned 90
    degrees used to pass the liveness check half the time, models/liveness.md)."""
    key = service.new_key()

    def score(image: np.ndarray) -> float:
        resp = service.post(
            "/liveness", {"hash_id": key, "selfie_image": data_url(png_bytes(image), "image/png")}
        )
        assert resp.status_code == 201, resp.text
        return resp.json()["liveness_result"]["liveness_score"]

    upright = score(live_frame)
    for turns in (1, 2, 3):
        assert score(np.ascontiguousarray(np.rot90(live_frame, turns))) == pytest.approx(upright, abs=1e-6)


def test_requests_are_recorded_without_images(service, selfie) -> None:
    key = service.new_key()
    key_id = key.split("_")[1]
    service.post("/liveness", {"hash_id": key, "selfie_image": selfie})
    service.post("/deepfake", {"hash_id": key, "selfie_image": "garbage!"})
    store = service.store()
    records = [r for r in store.recent_records(1000) if r.key_id == key_id]
    store.close()
    assert {(r.endpoint, r.status, r.outcome) for r in records} == {
        ("/liveness", 201, "success"),
        ("/deepfake", 400, "corrupt_image"),
    }
    scored = next(r for r in records if r.status == 201)
    assert scored.liveness_score is not None and scored.latency_ms > 0
    raw = b"".join(p.read_bytes() for p in service.db_path.parent.glob("facecheck.db*"))
    assert selfie.split(",")[1][:200].encode() not in raw
    assert key.encode() not in raw  # only the hash is stored


def test_keep_alive_connections_are_rotated(service) -> None:
    """Every FACECHECK_KEEPALIVE_REQUESTS-th response on one connection asks the client to
    reconnect, so keep-alive clients spread over the front workers; the client's next
    request goes out on a new connection and is served as usual."""
    every = Settings.keepalive_requests
    with requests.Session() as session:
        answers = [session.get(f"{service.url}/status_check", timeout=10) for _ in range(2 * every + 1)]
    assert all((a.status_code, a.text) == (200, contract.STATUS_LIVE) for a in answers)
    closing = [i for i, a in enumerate(answers) if a.headers.get("connection", "").lower() == "close"]
    assert closing == [every - 1, 2 * every - 1]
