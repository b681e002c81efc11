"""Export a trained classifier to one self-contained ONNX file and check ONNX Runtime
against torch on real crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch

from facecheck.models import FaceModel
from facecheck.preprocess import CropSpec
from training.model import FaceClassifier, Probability

PARITY_TOLERANCE = 1e-4


def export_onnx(
    model: FaceClassifier, crop: CropSpec, path: Path, task: str, check_crops: np.ndarray
) -> float:
    """Write `path` and return the largest |onnxruntime - torch| on `check_crops`."""
    wrapped = Probability(model).eval()
    example = torch.from_numpy(check_crops[:2])
    torch.onnx.export(
        wrapped,
        (example,),
        str(path),
        input_names=["crops"],
        output_names=["probability"],
        dynamic_shapes={"crops_uint8": {0: torch.export.Dim("batch", min=1, max=1024)}},
        dynamo=True,
        external_data=False,
        optimize=True,
    )
    set_metadata(path, {"facecheck_model": task, "threshold": "0.5", **crop.to_metadata()})
    with torch.no_grad():
        expected = wrapped(torch.from_numpy(check_crops)).numpy()
    got = FaceModel(path)(check_crops)
    diff = float(np.abs(expected - got).max())
    if diff > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX Runtime differs from torch by {diff:.2e}")
    print(f"exported {path} ({path.stat().st_size / 1e6:.1f} MB); max |ort - torch| = {diff:.2e}")
    return diff


def set_metadata(path: Path, values: dict[str, str]) -> None:
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props} | values
    del model.metadata_props[:]
    for key, value in sorted(props.items()):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
