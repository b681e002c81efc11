"""FaceModel: one shipped-format ONNX file, scored in runs of bounded size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facecheck.models import FaceModel
from facecheck.preprocess import CropSpec
from tests.fixture_models import brightness_model


@pytest.mark.parametrize("max_run", [0, 1, 8, 20, 64])
def test_runs_of_bounded_size_return_every_score_in_order(tmp_path: Path, max_run: int) -> None:
    model = FaceModel(brightness_model(tmp_path / "m.onnx", "m", CropSpec(1.0, 4)), max_run=max_run)
    levels = np.arange(20, dtype=np.uint8) * 12
    crops = np.broadcast_to(levels[:, None, None, None], (20, 4, 4, 3)).copy()
    np.testing.assert_allclose(model(crops), levels / 255.0, atol=1e-6)
    assert model(crops[:0]).shape == (0,)
