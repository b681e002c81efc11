"""Mirror averaging rewrites a model file's graph: each crop and its mirror image are
scored and the mean is returned, so callers and the threshold see one probability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from facecheck.models import DEEPFAKE_FILE, FaceModel
from facecheck.settings import PROJECT_ROOT
from training.export import add_mirror_averaging


def left_column_model(path: Path, size: int = 8) -> Path:
    """probability = mean brightness of the crop's leftmost column / 255: not symmetric."""
    nodes = [
        helper.make_node("Slice", ["crops", "start", "end", "axis"], ["column"]),
        helper.make_node("Cast", ["column"], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["as_float", "axes"], ["mean"], keepdims=0),
        helper.make_node("Div", ["mean", "scale"], ["probability"]),
    ]
    graph = helper.make_graph(
        nodes,
        "left_column",
        [helper.make_tensor_value_info("crops", TensorProto.UINT8, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])],
        initializer=[
            helper.make_tensor("start", TensorProto.INT64, [1], [0]),
            helper.make_tensor("end", TensorProto.INT64, [1], [1]),
            helper.make_tensor("axis", TensorProto.INT64, [1], [2]),
            helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
            helper.make_tensor("scale", TensorProto.FLOAT, [], [255.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    for key, value in {
        "facecheck_model": "test",
        "threshold": "0.5",
        "crop_scale": "1.0",
        "crop_size": str(size),
    }.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def test_mirror_averaging_returns_the_mean_of_both_sides(tmp_path: Path) -> None:
    path = left_column_model(tmp_path / "m.onnx")
    crops = np.zeros((3, 8, 8, 3), np.uint8)
    crops[:, :, 0] = np.array([10, 100, 255])[:, None, None]  # left column
    crops[:, :, -1] = np.array([30, 0, 255])[:, None, None]  # right column
    assert FaceModel(path)(crops) == pytest.approx([10 / 255, 100 / 255, 1.0], abs=1e-6)
    add_mirror_averaging(path)
    assert FaceModel(path)(crops) == pytest.approx([20 / 255, 50 / 255, 1.0], abs=1e-6)
    assert FaceModel(path)(crops[:1]) == pytest.approx([20 / 255], abs=1e-6)  # batch of one
    with pytest.raises(ValueError, match="already"):
        add_mirror_averaging(path)


def test_shipped_deepfake_model_is_what_its_training_summary_says() -> None:
    """The shipped deepfake file is Lite2 at 260 px without mirror averaging (twice its
    cost would break the 30 ms per face; models/deepfake.md), with the summary's threshold."""
    path = PROJECT_ROOT / "models" / DEEPFAKE_FILE
    summary = json.loads(path.with_suffix(".train.json").read_text())
    model = FaceModel(path)
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    assert summary["backbone"] == "lite2" and not summary["mirror_averaged"]
    assert "mirror_averaged" not in props and (model.crop.size, model.crop.scale) == (260, 1.3)
    assert model.threshold == pytest.approx(summary["threshold"], abs=1e-6)
