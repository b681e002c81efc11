"""Tiny stand-in ONNX models for plumbing tests only (never shipped): the score is the
crop's mean brightness, so a test can choose the verdict by choosing the image."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from facecheck.preprocess import CropSpec


def brightness_model(path: Path, name: str, crop: CropSpec, threshold: float = 0.5) -> Path:
    nodes = [
        helper.make_node("Cast", ["crops"], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["as_float", "axes"], ["mean"], keepdims=0),
        helper.make_node("Div", ["mean", "scale"], ["probability"]),
    ]
    graph = helper.make_graph(
        nodes,
        f"fixture_{name}",
        [helper.make_tensor_value_info("crops", TensorProto.UINT8, ["batch", crop.size, crop.size, 3])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])],
        initializer=[
            helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
            helper.make_tensor("scale", TensorProto.FLOAT, [], [255.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    for key, value in {"facecheck_model": name, "threshold": str(threshold), **crop.to_metadata()}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
