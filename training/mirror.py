"""Mirror averaging inside a model file: the graph scores each crop and its mirror image
and returns the mean of the two probabilities. A face and its mirror image are the same
presentation, so averaging takes out part of the model's noise; living in the graph, it
needs no change in any caller, and the file's threshold is calibrated on the averaged
scores.

    python -m training.mirror liveness --out=/tmp/m   (/tmp/m/liveness.onnx, re-calibrated)
    python -m training.mirror deepfake --out=/tmp/m   (the shipped deepfake file already is)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

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


def main() -> None:
    from training import train

    if sys.argv[1:2] not in (["liveness"], ["deepfake"]):
        raise SystemExit(__doc__)
    train.apply_overrides(sys.argv[1:])
    path = Path(train.out) / f"{train.task}.onnx"
    x, y = train.val_crops(*train.val_crop_args(), np.random.default_rng(train.seed))
    add_mirror_averaging(path)
    threshold = train.calibrate_threshold(path, x, y)
    summary_path = path.with_suffix(".train.json")
    summary = json.loads(summary_path.read_text()) | {"threshold": threshold, "mirror_averaged": True}
    summary_path.write_text(json.dumps(summary, indent=2))
    print(f"{path}: mirror-averaged, threshold {threshold:.6f}")


if __name__ == "__main__":
    main()
