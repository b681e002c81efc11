"""Shared fixtures: the real service started with `bentoml serve`, keys in its real
SQLite file, and selfies built from the developer data in ../shared/data."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.launcher import RunningService, start_service
from facecheck.settings import PROJECT_ROOT
from tests.imaging import data_url, jpeg_bytes
from tests.mongo_servers import real_mongodb_uri, standin_uri  # noqa: F401 (shared fixtures)
from training.data import DATA_ROOT

os.environ["BENTOML_DO_NOT_TRACK"] = "True"
# the models under test: the shipped ones unless FACECHECK_TEST_MODELS_DIR names others
SHIPPED_MODELS = Path(os.environ.get("FACECHECK_TEST_MODELS_DIR", PROJECT_ROOT / "models"))


@pytest.fixture(scope="session")
def service_factory(tmp_path_factory) -> Iterator[Callable[..., RunningService]]:
    started: list[RunningService] = []

    def make(**env: str) -> RunningService:
        service = start_service(tmp_path_factory.mktemp("service"), {"FACECHECK_WORKERS": "1"} | env)
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()


@pytest.fixture(scope="session")
def shipped_models() -> Path:
    missing = [n for n in ("liveness.onnx", "deepfake.onnx") if not (SHIPPED_MODELS / n).exists()]
    if missing:
        pytest.fail(f"shipped models missing from models/: {missing}")
    return SHIPPED_MODELS


@pytest.fixture(scope="session")
def service(service_factory, shipped_models) -> RunningService:
    """The service as shipped: real models, default liveness mode, its own SQLite file."""
    running = service_factory(FACECHECK_MODELS_DIR=str(shipped_models))
    running.wait_until_live()
    return running


# ---- selfies ---------------------------------------------------------------------------------


def data_file(relative: str) -> Path:
    path = DATA_ROOT / relative
    if not path.exists():
        pytest.skip(f"developer data not found at {DATA_ROOT} (set FACECHECK_DATA)")
    return path


LIVE_FRAME = "liveness/images/nuaa/live/0001/0001_00_00_01_109.jpg"


@pytest.fixture(scope="session")
def live_frame() -> np.ndarray:
    """A 640x480 NUAA webcam frame of a live person (one clear face)."""
    image = cv2.imread(str(data_file(LIVE_FRAME)))
    assert image is not None
    return image


@pytest.fixture(scope="session")
def selfie(live_frame) -> str:
    return data_url(jpeg_bytes(live_frame, 92))
