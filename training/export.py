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


# the batch norm after each convolution (the export folds it into the convolution)
_BATCH_NORM_AFTER = {
    "_conv_stem": "_bn0",
    "_expand_conv": "_bn0",
    "_depthwise_conv": "_bn1",
    "_project_conv": "_bn2",
}


def _batch_norm_after(conv_name: str) -> str:
    parent, _, leaf = conv_name.rpartition(".")
    # in the head (an nn.Sequential) the batch norm is the next layer
    return f"{parent}.{int(leaf) + 1}" if leaf.isdigit() else f"{parent}.{_BATCH_NORM_AFTER[leaf]}"


def load_onnx_weights(model: FaceClassifier, path: Path) -> None:
    """The weights of a file written by `export_onnx` back into `model` (same architecture).

    The export folded every batch norm into the convolution before it: each convolution
    takes the folded weight, and its batch norm becomes the identity plus the folded bias
    (mean 0, variance 1 - eps, scale 1). In eval mode the model then computes what the
    file does; train it with its batch norms in eval mode (the statistics are gone)."""
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    modules = dict(model.named_modules())
    loaded = 0
    for name, module in modules.items():
        if isinstance(module, torch.nn.Conv2d) and f"model.{name}.weight_bias" in weights:
            bn = modules[_batch_norm_after(name)]
            assert isinstance(bn, torch.nn.BatchNorm2d), f"no batch norm after {name}"
            with torch.no_grad():
                module.weight.copy_(weights[f"model.{name}.weight"])
                bn.running_mean.zero_()
                bn.running_var.fill_(1 - bn.eps)
                bn.weight.fill_(1)
                bn.bias.copy_(weights[f"model.{name}.weight_bias"])
            loaded += 1
        elif isinstance(module, torch.nn.Linear):
            with torch.no_grad():
                module.weight.copy_(weights[f"model.{name}.weight"])
                module.bias.copy_(weights[f"model.{name}.bias"])
            loaded += 1
    expected = sum(
        isinstance(m, torch.nn.Conv2d) for n, m in modules.items() if not n.startswith("mask_head")
    )
    if loaded != expected + 1:
        raise ValueError(f"{path}: {loaded} layers loaded, expected {expected + 1}")
