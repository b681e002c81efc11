"""One small class per shipped ONNX model: load, check, run.

A facecheck model file takes uint8 BGR crops (N x S x S x 3) and returns one
probability per crop; its metadata names the crop it expects and its threshold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecheck.onnx_session import cpu_session
from facecheck.preprocess import CropSpec

LIVENESS_FILE = "liveness.onnx"
DEEPFAKE_FILE = "deepfake.onnx"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    crop: CropSpec
    threshold: float

    @classmethod
    def from_metadata(cls, meta: dict[str, str], path: Path) -> ModelInfo:
        return cls(
            meta.get("facecheck_model", path.stem), CropSpec.from_metadata(meta), float(meta["threshold"])
        )


def read_model_info(path: Path) -> ModelInfo | None:
    """The crop and threshold a model file declares, without starting a session."""
    if not path.exists():
        return None
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return ModelInfo.from_metadata({p.key: p.value for p in model.metadata_props}, path)


class FaceModel:
    def __init__(self, path: Path, threads: int = 1, max_run: int = 0):
        """`max_run` > 0: a call runs ONNX Runtime on at most that many crops at a time (its
        memory arena grows to the largest batch it has run)."""
        self.session = cpu_session(path, threads)
        self.max_run = max_run
        self.path = path
        self.info = ModelInfo.from_metadata(self.session.get_modelmeta().custom_metadata_map, path)
        self.name, self.crop, self.threshold = self.info.name, self.info.crop, self.info.threshold
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """N x S x S x 3 uint8 -> N float32 probabilities."""
        side = self.crop.canvas
        if crops.shape[1:] != (side, side, 3) or crops.dtype != np.uint8:
            raise ValueError(f"{self.name} expects Nx{side}x{side}x3 uint8")
        step = self.max_run or len(crops) or 1
        runs = [
            self.session.run(None, {self.input_name: crops[i : i + step]})[0]
            for i in range(0, len(crops), step)
        ]
        return np.concatenate(runs).astype(np.float32) if runs else np.zeros(0, np.float32)


def load_model(models_dir: Path, filename: str, threads: int = 1, max_run: int = 0) -> FaceModel | None:
    path = models_dir / filename
    return FaceModel(path, threads, max_run) if path.exists() else None
