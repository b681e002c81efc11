"""FACECHECK_LIVENESS_MODE and missing model files, over HTTP against the real service."""

from __future__ import annotations

import shutil
import time

import requests

from facecheck import contract


def test_both_mode_answers_both_kinds_of_client(service_factory, shipped_models, selfie) -> None:
    service = service_factory(FACECHECK_MODELS_DIR=str(shipped_models), FACECHECK_LIVENESS_MODE="both")
    resp = service.post("/liveness", {"hash_id": service.new_key(), "selfie_image": selfie})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == {"liveness_result", "message", "deepfake_result", "status"}
    assert body["message"] == body["status"] == "Success"
    assert set(body["deepfake_result"]) == {"deepfake_score", "is_deepfake", "message"}


def test_deepfake_mode_serves_old_deepfake_clients_on_liveness(
    service_factory, shipped_models, selfie
) -> None:
    service = service_factory(FACECHECK_MODELS_DIR=str(shipped_models), FACECHECK_LIVENESS_MODE="deepfake")
    key = service.new_key()
    resp = service.post("/liveness", {"hash_id": key, "selfie_image": selfie})
    assert resp.status_code == 201, resp.text
    assert set(resp.json()) == {"deepfake_result", "status"}
    resp = service.post("/liveness", {"hash_id": key, "selfie_image": "bm90IGFuIGltYWdl"})
    assert (resp.status_code, resp.json()) == (400, {"error": contract.CORRUPT_IMAGE_DEEPFAKE})


def test_missing_model_file_is_a_503_and_not_live(service_factory, shipped_models, selfie, tmp_path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(shipped_models / "liveness.onnx", models / "liveness.onnx")  # no deepfake.onnx
    service = service_factory(FACECHECK_MODELS_DIR=str(models))
    status = requests.get(f"{service.url}/status_check", timeout=10)
    assert (status.status_code, status.text) == (503, contract.STATUS_NOT_LIVE)
    key = service.new_key()
    resp = service.post("/deepfake", {"hash_id": key, "selfie_image": selfie})
    assert resp.status_code == 503
    assert resp.json() == {"error": contract.MODEL_UNAVAILABLE.format(model="deepfake")}
    assert service.post("/liveness", {"hash_id": key, "selfie_image": selfie}).status_code == 201


def test_access_log_is_off_by_default_and_on_when_asked(
    service, service_factory, shipped_models, selfie
) -> None:
    """The store records every request; BentoML's access log repeats it only when asked."""
    resp = service.post("/liveness", {"hash_id": service.new_key(), "selfie_image": selfie})
    assert resp.status_code == 201
    store = service.store()
    try:
        assert store.recent_records(1)[0].status == 201
    finally:
        store.close()
    assert "status=201" not in service.log()

    logged = service_factory(FACECHECK_MODELS_DIR=str(shipped_models), FACECHECK_ACCESS_LOG="1")
    resp = logged.post("/liveness", {"hash_id": logged.new_key(), "selfie_image": selfie})
    assert resp.status_code == 201
    deadline = time.monotonic() + 10
    while "status=201" not in logged.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "status=201" in logged.log()
