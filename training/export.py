"""Export a trained classifier to one self-contained ONNX file and check ONNX Runtime
against torch on real crops; optionally mirror-average the file's graph.

Mirror averaging: the graph scores each crop and its mirror image and returns the mean of
the two probabilities. A face and its mirror image are the same presentation, so averaging
takes out part of the model's noise; living in the graph, it needs no change in any caller,
and the file's threshold is calibrated on the averaged scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from facecheck.models import FaceModel
from facecheck.preprocess import CropSpec
from training.model import FaceClassifier, Probability

PARITY_TOLERANCE = 1e-4
MAX_BATCH = 1024


def save_graph(
    module: torch.nn.Module, example: torch.Tensor, path: Path, names: tuple[str, str], dynamic_shapes: dict
) -> None:
    """`module` as one self-contained ONNX file (the dynamo exporter, no external data), its
    input and output named `names`; `dynamic_shapes` is keyed by the forward argument's name."""
    torch.onnx.export(
        module,
        (example,),
        str(path),
        input_names=[names[0]],
        output_names=[names[1]],
        dynamic_shapes=dynamic_shapes,
        dynamo=True,
        external_data=False,
        optimize=True,
    )


def batch_dim() -> torch.export.Dim:
    return torch.export.Dim("batch", min=1, max=MAX_BATCH)


def export_onnx(
    model: FaceClassifier, crop: CropSpec, path: Path, task: str, check_crops: np.ndarray
) -> float:
    """Write `path` and return the largest |onnxruntime - torch| on `check_crops`."""
    wrapped = Probability(model).eval()
    example = torch.from_numpy(check_crops[:2])
    save_graph(wrapped, example, path, ("crops", "probability"), {"crops_uint8": {0: batch_dim()}})
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


MIRROR_KEY = "mirror_averaged"


def add_mirror_averaging(path: Path) -> None:
    """Rewrite the facecheck model at `path` (crops: N x S x S x 3 -> probability: N) so
    that it returns the mean of each crop's and its mirror image's probability."""
    model = onnx.load(str(path))
    if any(p.key == MIRROR_KEY for p in model.metadata_props):
        raise ValueError(f"{path} is already mirror-averaged")
    graph = model.graph
    (crops,), (probability,) = graph.input, graph.output
    both, pairs = "crops_and_mirrors", "probability_pairs"
    for node in graph.node:
        node.input[:] = [both if name == crops.name else name for name in node.input]
        node.output[:] = [pairs if name == probability.name else name for name in node.output]
    constants = [
        helper.make_tensor(name, TensorProto.INT64, [len(values)], values)
        for name, values in (
            ("mirror_starts", [-1]),
            ("mirror_ends", [np.iinfo(np.int64).min]),
            ("mirror_axes", [2]),  # N, H, W, C: the width axis
            ("mirror_steps", [-1]),
            ("pair_shape", [2, -1]),
            ("pair_axis", [0]),
        )
    ]
    graph.initializer.extend(constants)
    head = [
        helper.make_node(
            "Slice",
            [crops.name, "mirror_starts", "mirror_ends", "mirror_axes", "mirror_steps"],
            ["mirrors"],
        ),
        helper.make_node("Concat", [crops.name, "mirrors"], [both], axis=0),
    ]
    tail = [
        helper.make_node("Reshape", [pairs, "pair_shape"], ["pairs"]),
        helper.make_node("ReduceMean", ["pairs", "pair_axis"], [probability.name], keepdims=0),
    ]
    nodes = [*head, *graph.node, *tail]
    del graph.node[:]
    graph.node.extend(nodes)
    model.metadata_props.add(key=MIRROR_KEY, value="1")
    onnx.checker.check_model(model)
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
