"""MiniFASNet (Minivision's public Silent-Face models, Apache-2.0) as a component of the
liveness file.

    python -m training.minifasnet [--mirror ../.mirror] [--out models/minifasnet.onnx]

exports the repository's two public weights (MiniFASNetV2 on a 2.7x face box crop,
MiniFASNetV1SE on a 4.0x one, both 80 px) into one facecheck model file: the canvas of
MINIFASNET_CROP in (facecheck's own 2.0x liveness crop, their two crops beside it), the mean of
the two models' live probabilities out. Their model code is imported from a snapshot fetched
with the `fetch` tool, never copied into the project; the snapshot is found by COMMIT, the one
their weights were read at.

Their crops follow their own rule (facecheck.preprocess.FitCrop: shrunk to fit inside the
image rather than padded, not turned): padded or levelled crops, which they never saw, cost
them most of their accuracy (models/liveness.md). Their detector's box is square and a little
smaller and lower than YuNet's; THEIR_BOX puts it where their detector would.

`fuse` builds the shipped liveness file: facecheck's own liveness model on the canvas's
main crop and MiniFASNet on its extras, their logits mixed:
sigmoid(w * logit(ours) + (1 - w) * logit(minifasnet)). models/liveness.md has the figures."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from facecheck.models import FaceModel
from facecheck.preprocess import CropSpec, FitCrop
from facecheck.settings import PROJECT_ROOT
from training import augment
from training.data import MIRROR_ROOT
from training.export import batch_dim, save_graph, set_metadata
from training.sources import git_dir

SOURCE = "Minivision Silent-Face"  # credit, as the files' metadata give it
COMMIT = "b6d5f04ad78778917853b25c778acef6d5626d15"
LICENCE = "Apache-2.0"
MINIFASNET_FILE = "minifasnet.onnx"
# (weights file, their crop scale): the repository's resources/anti_spoof_models
WEIGHTS = (("2.7_80x80_MiniFASNetV2.pth", 2.7), ("4_0_0_80x80_MiniFASNetV1SE.pth", 4.0))
INPUT_SIZE = 80
# their detector's box against YuNet's (label-free geometry, measured on 289 webcam frames)
THEIR_BOX = {"box_side": 0.894, "box_drop": 0.06}
# facecheck's own liveness crop, with MiniFASNet's two crops beside it (FitCrop)
MINIFASNET_CROP = CropSpec(
    scale=2.0, size=224, extras=tuple(FitCrop(scale, INPUT_SIZE, **THEIR_BOX) for _, scale in WEIGHTS)
)
LOGIT_CLIP = 1e-6  # probabilities are clipped to [eps, 1 - eps] before their logits are mixed
# (top, left, side) of each net's crop on the canvas, in the order of WEIGHTS
CROP_REGIONS = [
    (top, left, e.size)
    for e, (top, left) in zip(MINIFASNET_CROP.extras, MINIFASNET_CROP.extra_origins(), strict=True)
]


class MiniFASNetPair(torch.nn.Module):
    """uint8 N x S x S x 3 BGR crops -> N live probabilities (mean over the two models)."""

    def __init__(self, nets: list[torch.nn.Module]):
        super().__init__()
        self.nets = torch.nn.ModuleList(nets)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        # their input: BGR, 0-255, no normalisation
        x = crops.permute(0, 3, 1, 2).float()
        live = []
        for net, (top, left, side) in zip(self.nets, CROP_REGIONS, strict=True):
            live.append(torch.softmax(net(x[:, :, top : top + side, left : left + side]), dim=1)[:, 1])
        return torch.stack(live, dim=1).mean(dim=1)


def load_pair(snapshot: Path) -> MiniFASNetPair:
    """The two public models, built with the repository's own code from `snapshot` (its
    files at COMMIT)."""
    sys.path.insert(0, str(snapshot))
    try:
        from src.model_lib.MiniFASNet import MiniFASNetV1SE, MiniFASNetV2  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(snapshot))
    classes = {"MiniFASNetV2": MiniFASNetV2, "MiniFASNetV1SE": MiniFASNetV1SE}
    kernel = ((INPUT_SIZE + 15) // 16,) * 2  # their get_kernel
    nets = []
    for name, _ in WEIGHTS:
        net = classes[name.removesuffix(".pth").split("_")[-1]](conv6_kernel=kernel)
        state = torch.load(snapshot / "resources" / "anti_spoof_models" / name, map_location="cpu")
        net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        nets.append(net.eval())
    return MiniFASNetPair(nets).eval()


def export(snapshot: Path, out: Path) -> None:
    export_pair(load_pair(snapshot), out)


def export_pair(pair: MiniFASNetPair, out: Path, tuned: str = "") -> None:
    """`pair` as a facecheck file of MINIFASNET_CROP; `tuned` says how it was fine-tuned, if it was."""
    example = torch.zeros((2, MINIFASNET_CROP.canvas, MINIFASNET_CROP.canvas, 3), dtype=torch.uint8)
    save_graph(pair.eval(), example, out, ("crops", "probability"), {"crops": {0: batch_dim()}})
    meta = {"facecheck_model": "minifasnet", "threshold": "0.5", "source": f"{SOURCE}@{COMMIT}"}
    meta |= {"tuned": tuned} if tuned else {}
    set_metadata(out, meta | {"licence": LICENCE} | MINIFASNET_CROP.to_metadata())
    crops = np.random.default_rng(0).integers(0, 256, (4, *example.shape[1:]), dtype=np.uint8)
    with torch.no_grad():
        expected = pair(torch.from_numpy(crops)).numpy()
    diff = float(np.abs(FaceModel(out)(crops) - expected).max())
    print(f"exported {out} ({out.stat().st_size / 1e6:.1f} MB); max |ort - torch| = {diff:.2e}")


def augment_crops(
    canvases: np.ndarray,
    chosen: np.ndarray,
    change: Callable[[np.ndarray, np.random.Generator], np.ndarray],
    rng: np.random.Generator,
) -> None:
    """`change` each net's crop (CROP_REGIONS) of the `chosen` canvases, in place."""
    for i in np.flatnonzero(chosen):  # an integer index is a view; a boolean mask would copy
        for top, left, side in CROP_REGIONS:
            canvases[i, top : top + side, left : left + side] = change(
                canvases[i, top : top + side, left : left + side], rng
            )


def tune(
    pair: MiniFASNetPair,
    canvases: np.ndarray,
    live: np.ndarray,
    sources: np.ndarray,
    steps: int,
    lr: float,
    colour_casts: float,
    rng: np.random.Generator,
    batch_size: int = 32,
    tilts: float = 0.0,
    low_lights: float = 0.0,
) -> MiniFASNetPair:
    """Fine-tune both nets of `pair` in place on labelled MINIFASNET_CROP canvases: each batch
    half live, half attacks, every source of a class drawn alike, `colour_casts` of the draws
    tinted (augment.colour_cast, on their crops), `tilts` of them turned (augment.tilt),
    `low_lights` of them dimmed (augment.low_light). Batch norm keeps the published statistics
    (eval mode): a few thousand frames of a few cameras would overwrite what was learnt on far
    more. The loss is the binary cross-entropy of the live probability the file gives."""
    pools = {
        is_live: [
            np.flatnonzero((live == is_live) & (sources == s)) for s in np.unique(sources[live == is_live])
        ]
        for is_live in (True, False)
    }
    if not pools[True] or not pools[False]:
        raise ValueError("tuning needs live and attack canvases")
    optimiser = torch.optim.AdamW(pair.parameters(), lr=lr, weight_decay=1e-4)
    pair.eval()
    for _ in range(steps):
        labels = rng.random(batch_size) < 0.5
        picks = [rng.choice(pools[bool(y)][rng.integers(len(pools[bool(y)]))]) for y in labels]
        batch = canvases[picks].copy()
        augment_crops(batch, rng.random(batch_size) < colour_casts, augment.colour_cast, rng)
        if tilts:  # drawn only when on, so that runs without it keep their random stream
            augment_crops(batch, rng.random(batch_size) < tilts, augment.tilt, rng)
        if low_lights:
            augment_crops(batch, rng.random(batch_size) < low_lights, augment.low_light, rng)
        p = pair(torch.from_numpy(batch)).clamp(LOGIT_CLIP, 1 - LOGIT_CLIP)
        loss = torch.nn.functional.binary_cross_entropy(p, torch.from_numpy(labels.astype(np.float32)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return pair.eval()


def interpolate(published: MiniFASNetPair, tuned: MiniFASNetPair, alpha: float) -> MiniFASNetPair:
    """`tuned`, its weights set `alpha` of the way from the published ones to its own (WiSE-FT,
    Wortsman et al. 2022). Tuned alone forgets what the training frames do not show: held out
    of NUAA, the only camera with many prints, it ranked NUAA's prints at AUC 0.77 (published:
    1.00); 0.3 of the way keeps 1.00 and most of the gain (models/liveness.md)."""
    weights, own = published.state_dict(), tuned.state_dict()
    tuned.load_state_dict(
        {k: (1 - alpha) * weights[k] + alpha * v if v.is_floating_point() else v for k, v in own.items()}
    )
    return tuned.eval()


def fuse(liveness: Path, minifasnet: Path, out: Path, weight: float) -> None:
    """Write `out`: one facecheck file at minifasnet's crop (its canvas) that runs `liveness`
    on the canvas's main crop, which must be liveness's own crop, and mixes the two models'
    logits, `weight` on liveness's."""
    ours, theirs = onnx.load(str(liveness)), onnx.load(str(minifasnet))
    meta = {p.key: p.value for p in ours.metadata_props}
    their_meta = {p.key: p.value for p in theirs.metadata_props}
    inner, outer = CropSpec.from_metadata(meta), CropSpec.from_metadata(their_meta)
    if inner.extras or (inner.scale, inner.size) != (outer.scale, outer.size):
        raise ValueError(f"{inner} is not the main crop of {outer}")
    ours = onnx.compose.add_prefix(ours, "ours/")
    theirs = onnx.compose.add_prefix(theirs, "minifasnet/")
    crops = helper.make_tensor_value_info(
        "crops", TensorProto.UINT8, ["batch", outer.canvas, outer.canvas, 3]
    )
    probability = helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])
    constants = [
        helper.make_tensor("fuse/starts", TensorProto.INT64, [2], [0, 0]),
        helper.make_tensor("fuse/ends", TensorProto.INT64, [2], [inner.size] * 2),
        helper.make_tensor("fuse/axes", TensorProto.INT64, [2], [1, 2]),
        helper.make_tensor("fuse/eps", TensorProto.FLOAT, [], [LOGIT_CLIP]),
        helper.make_tensor("fuse/one_minus_eps", TensorProto.FLOAT, [], [1 - LOGIT_CLIP]),
        helper.make_tensor("fuse/one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("fuse/w_ours", TensorProto.FLOAT, [], [weight]),
        helper.make_tensor("fuse/w_theirs", TensorProto.FLOAT, [], [1 - weight]),
    ]
    nodes = [
        helper.make_node(
            "Slice", ["crops", "fuse/starts", "fuse/ends", "fuse/axes"], [ours.graph.input[0].name]
        ),
        helper.make_node("Identity", ["crops"], [theirs.graph.input[0].name]),
        *ours.graph.node,
        *theirs.graph.node,
    ]
    mixed = []
    for prefix, model in (("ours", ours), ("theirs", theirs)):
        p, n = f"fuse/{prefix}", model.graph.output[0].name
        nodes += [
            helper.make_node("Clip", [n, "fuse/eps", "fuse/one_minus_eps"], [f"{p}/p"]),
            helper.make_node("Sub", ["fuse/one", f"{p}/p"], [f"{p}/q"]),
            helper.make_node("Div", [f"{p}/p", f"{p}/q"], [f"{p}/odds"]),
            helper.make_node("Log", [f"{p}/odds"], [f"{p}/logit"]),
            helper.make_node("Mul", [f"{p}/logit", f"fuse/w_{prefix}"], [f"{p}/weighted"]),
        ]
        mixed.append(f"{p}/weighted")
    nodes += [
        helper.make_node("Add", mixed, ["fuse/logit"]),
        helper.make_node("Sigmoid", ["fuse/logit"], ["probability"]),
    ]
    graph = helper.make_graph(
        nodes,
        "liveness_with_minifasnet",
        [crops],
        [probability],
        initializer=[*ours.graph.initializer, *theirs.graph.initializer, *constants],
        value_info=[*ours.graph.value_info, *theirs.graph.value_info],
    )
    opsets: dict[str, int] = {}
    for opset in [*ours.opset_import, *theirs.opset_import]:
        opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
        ir_version=max(ours.ir_version, theirs.ir_version),
    )
    model.functions.extend([*ours.functions, *theirs.functions])
    onnx.checker.check_model(model)
    props = (
        meta
        | outer.to_metadata()
        | {"minifasnet_weight": f"{weight:g}", "minifasnet_source": f"{SOURCE}@{COMMIT}"}
    )
    props |= {"minifasnet_tuned": their_meta["tuned"]} if "tuned" in their_meta else {}
    for key, value in sorted(props.items()):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(out))


def find_snapshot(mirror: Path) -> Path | None:
    """The git directory of the fetched snapshot under `mirror` whose history holds COMMIT."""
    for gd in sorted(git_dir(mirror, d.name) for d in mirror.glob("*+*") if d.is_dir()):
        found = subprocess.run(
            ["git", f"--git-dir={gd}", "cat-file", "-e", f"{COMMIT}^{{commit}}"], capture_output=True
        )
        if found.returncode == 0:
            return gd
    return None


def snapshot_files(mirror: Path) -> Path:
    """The repository's files at COMMIT, from its fetched snapshot, in a temporary folder."""
    gd = find_snapshot(mirror)
    if gd is None:
        raise SystemExit(f"no snapshot under {mirror} holds commit {COMMIT} ({SOURCE}; models/minifasnet.md)")
    folder = Path(tempfile.mkdtemp(prefix="minifasnet-"))
    archive = subprocess.run(
        ["git", f"--git-dir={gd}", "archive", COMMIT, "src", "resources/anti_spoof_models"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mirror", type=Path, default=MIRROR_ROOT)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "models" / MINIFASNET_FILE)
    args = parser.parse_args()
    export(snapshot_files(args.mirror), args.out)


if __name__ == "__main__":
    main()
