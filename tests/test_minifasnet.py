"""MiniFASNet inside the liveness file: its crop rule, the canvas, the component as
exported and the fused graph's arithmetic."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facecheck.faces import Face
from facecheck.models import FaceModel, read_model_info
from facecheck.preprocess import CropSpec, FitCrop, crop_face, fit_crop
from facecheck.settings import PROJECT_ROOT
from tests.conftest import SHIPPED_MODELS, data_file
from tests.fixture_models import brightness_model
from training.evaluate import roc_auc
from training.minifasnet import (
    COMMIT,
    CROP_REGIONS,
    MINIFASNET_CROP,
    MINIFASNET_FILE,
    SOURCE,
    MiniFASNetPair,
    augment_crops,
    export_pair,
    fuse,
    interpolate,
    tune,
)

COMPONENT = PROJECT_ROOT / "models" / MINIFASNET_FILE


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def test_fit_crop_shrinks_and_shifts_into_the_image_instead_of_padding() -> None:
    # a gradient image, so that every crop's content tells where it was cut
    ys, xs = np.mgrid[0:480, 0:640]
    image = np.dstack([xs * 255 // 639, ys * 255 // 479, np.full_like(xs, 128)]).astype(np.uint8)
    middle = Face(np.float32([270, 190, 100, 100]), np.zeros((5, 2), np.float32), 0.9)
    crop = fit_crop(image, middle, FitCrop(2.0, 80))  # 200 px around the box's centre, inside
    expected = cv2.resize(image[140:341, 220:421], (80, 80), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(crop, expected)
    near_top = Face(np.float32([270, 10, 100, 100]), np.zeros((5, 2), np.float32), 0.9)
    shifted = fit_crop(image, near_top, FitCrop(2.0, 80))  # moved down to start at row 0
    np.testing.assert_array_equal(shifted, cv2.resize(image[0:201, 220:421], (80, 80)))
    large = Face(np.float32([170, 40, 300, 300]), np.zeros((5, 2), np.float32), 0.9)
    shrunk = fit_crop(image, large, FitCrop(4.0, 80))  # 1200 px asked, 479 px fit
    assert shrunk.min() >= 0 and (shrunk[..., 2] == 128).all()  # image everywhere, no padding
    lowered = fit_crop(image, middle, FitCrop(2.0, 80, box_side=0.9, box_drop=0.1))
    assert lowered[..., 1].mean() > crop[..., 1].mean()  # further down the image


def test_canvas_holds_the_main_crop_and_the_extras_beside_it() -> None:
    spec = MINIFASNET_CROP
    assert spec.canvas == 304 and spec.extra_origins() == [(0, 224), (80, 224)]
    assert CropSpec.from_metadata(spec.to_metadata()) == spec
    assert CropSpec.from_metadata(CropSpec(2.0, 224).to_metadata()) == CropSpec(2.0, 224)
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    face = Face(
        np.float32([270, 190, 100, 120]),
        np.float32([[300, 230], [340, 232], [320, 260], [305, 280], [335, 281]]),
        0.9,
    )
    canvas = crop_face(image, face, spec)
    assert canvas.shape == (304, 304, 3)
    np.testing.assert_array_equal(canvas[:224, :224], crop_face(image, face, CropSpec(2.0, 224)))
    for extra, (top, left) in zip(spec.extras, spec.extra_origins(), strict=True):
        np.testing.assert_array_equal(canvas[top : top + 80, left : left + 80], fit_crop(image, face, extra))
    assert not canvas[160:, 224:].any()


def test_fused_file_mixes_the_two_models_logits(tmp_path: Path) -> None:
    ours = brightness_model(tmp_path / "ours.onnx", "liveness", CropSpec(2.0, 224), threshold=0.25)
    fused = tmp_path / "liveness.onnx"
    fuse(ours, COMPONENT, fused, weight=0.3)
    info = read_model_info(fused)
    assert info is not None
    assert info.crop == MINIFASNET_CROP and info.threshold == 0.25
    crops = np.random.default_rng(0).integers(0, 256, (5, 304, 304, 3), dtype=np.uint8)
    crops[:, :224, :224] //= np.arange(1, 6, dtype=np.uint8)[:, None, None, None]  # 5 brightnesses
    middle = np.ascontiguousarray(crops[:, :224, :224])
    expected_logit = 0.3 * logit(FaceModel(ours)(middle)) + 0.7 * logit(FaceModel(COMPONENT)(crops))
    got = FaceModel(fused)(crops)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-expected_logit)), atol=1e-5)


def test_fuse_needs_our_crop_as_the_canvas_main_crop(tmp_path: Path) -> None:
    ours = brightness_model(tmp_path / "ours.onnx", "liveness", CropSpec(scale=1.3, size=260))
    with pytest.raises(ValueError, match="not the main crop"):
        fuse(ours, COMPONENT, tmp_path / "fused.onnx", weight=0.3)


def test_shipped_liveness_file_is_fused_with_the_shipped_component() -> None:
    meta = read_model_info(SHIPPED_MODELS / "liveness.onnx")
    assert meta is not None and meta.crop == MINIFASNET_CROP
    import onnx

    props = {p.key: p.value for p in onnx.load(str(SHIPPED_MODELS / "liveness.onnx")).metadata_props}
    assert props["minifasnet_source"] == f"{SOURCE}@{COMMIT}"
    assert 0 < float(props["minifasnet_weight"]) < 1


def test_component_tells_nuaa_live_faces_from_prints() -> None:
    from facecheck.faces import YuNetDetector
    from facecheck.images import decode_bytes
    from facecheck.pipeline import check_crops
    from facecheck.settings import Settings

    model, detector, settings = FaceModel(COMPONENT), YuNetDetector(), Settings()
    scores, live = [], []
    for kind, subject in (("live", "0001"), ("attack", "0001"), ("live", "0004"), ("attack", "0004")):
        folder = data_file(f"liveness/images/nuaa/{kind}/{subject}")
        for path in sorted(folder.glob("*.jpg"))[:: max(1, len(list(folder.glob("*.jpg"))) // 6)][:6]:
            decoded = decode_bytes(path.read_bytes())
            crop = check_crops(decoded, detector, settings, {"liveness": model.crop})["liveness"]
            scores.append(float(model(crop)[0]))
            live.append(kind == "live")
    assert len(scores) >= 20
    assert roc_auc(np.array(scores), np.array(live)) > 0.9


def test_export_matches_the_shipped_component(tmp_path: Path) -> None:
    from training.data import MIRROR_ROOT
    from training.minifasnet import export, find_snapshot, snapshot_files

    mirror = MIRROR_ROOT
    if find_snapshot(mirror) is None:
        pytest.skip(f"no snapshot of {SOURCE} under {mirror}: the shipped file is not re-exported")
    out = tmp_path / MINIFASNET_FILE
    export(snapshot_files(mirror), out)
    crops = np.random.default_rng(1).integers(0, 256, (3, 304, 304, 3), dtype=np.uint8)
    crops[0] = cv2.GaussianBlur(crops[0], (0, 0), 5)
    np.testing.assert_allclose(FaceModel(out)(crops), FaceModel(COMPONENT)(crops), atol=1e-6)


class ToUnit(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / 255.0  # MiniFASNet takes 0-255 pixels as they are; a tiny net trains better on 0-1


def tiny_pair(seed: int) -> MiniFASNetPair:
    """Two small nets in MiniFASNet's place (3 classes, class 1 live), for the tuning plumbing."""
    torch.manual_seed(seed)
    nets = [
        torch.nn.Sequential(
            ToUnit(),
            torch.nn.Conv2d(3, 4, 3),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(4, 3),
        )
        for _ in MINIFASNET_CROP.extras
    ]
    return MiniFASNetPair(nets).eval()


def canvases_of_two_kinds(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Canvases whose extras are bright for live frames and dark for attacks; the main crop
    (which MiniFASNet never sees) is noise."""
    live = np.arange(n) % 2 == 0
    canvases = rng.integers(0, 256, (n, MINIFASNET_CROP.canvas, MINIFASNET_CROP.canvas, 3), dtype=np.uint8)
    for canvas, is_live in zip(canvases, live, strict=True):
        for extra, (top, left) in zip(MINIFASNET_CROP.extras, MINIFASNET_CROP.extra_origins(), strict=True):
            level = 190 if is_live else 60
            region = canvas[top : top + extra.size, left : left + extra.size]
            region[:] = np.clip(level + rng.normal(0, 20, region.shape), 0, 255).astype(np.uint8)
    return canvases, live


def test_tuning_learns_the_labels_on_its_crops_and_keeps_batch_norm() -> None:
    rng = np.random.default_rng(0)
    canvases, live = canvases_of_two_kinds(rng, 48)
    sources = np.array(["a", "b", "c"])[np.arange(48) % 3]
    pair = tiny_pair(0)
    statistics = {k: v.clone() for k, v in pair.state_dict().items() if "running" in k}
    with torch.no_grad():
        before = pair(torch.from_numpy(canvases)).numpy()
    tune(pair, canvases, live, sources, steps=60, lr=1e-2, colour_casts=0.5, rng=rng, batch_size=16)
    with torch.no_grad():
        after = pair(torch.from_numpy(canvases)).numpy()
    assert roc_auc(after, live) == 1.0
    assert after[live].mean() - after[~live].mean() > before[live].mean() - before[~live].mean() + 0.3
    for key, value in statistics.items():  # the published batch-norm statistics stay
        torch.testing.assert_close(pair.state_dict()[key], value)


def test_tuning_augments_the_chosen_canvases_in_place_and_only_their_crops() -> None:
    """Until 2026-12-07 the colour casts went to a copy of the batch (a boolean mask copies)."""
    rng = np.random.default_rng(0)
    canvases, _ = canvases_of_two_kinds(rng, 6)
    before = canvases.copy()
    chosen = np.array([True, False, True, False, False, True])
    augment_crops(canvases, chosen, lambda crop, _: 255 - crop, rng)
    for i, picked in enumerate(chosen):
        for top, left, size in CROP_REGIONS:
            region = (i, slice(top, top + size), slice(left, left + size))
            expected = 255 - before[region] if picked else before[region]
            np.testing.assert_array_equal(canvases[region], expected)
        outside = np.ones(canvases.shape[1:3], bool)
        for top, left, size in CROP_REGIONS:
            outside[top : top + size, left : left + size] = False
        np.testing.assert_array_equal(canvases[i][outside], before[i][outside])


def test_tuning_refuses_frames_of_one_class() -> None:
    canvases, _ = canvases_of_two_kinds(np.random.default_rng(0), 4)
    with pytest.raises(ValueError, match="live and attack"):
        tune(
            tiny_pair(0),
            canvases,
            np.ones(4, bool),
            np.array(["a"] * 4),
            1,
            1e-3,
            0.0,
            np.random.default_rng(0),
        )


def test_interpolation_goes_alpha_of_the_way_to_the_tuned_weights() -> None:
    published, tuned = tiny_pair(0).state_dict(), tiny_pair(1).state_dict()
    for alpha in (0.0, 0.5, 1.0):
        mixed = interpolate(tiny_pair(0), tiny_pair(1), alpha).state_dict()
        for key, value in mixed.items():
            if value.is_floating_point():
                torch.testing.assert_close(value, (1 - alpha) * published[key] + alpha * tuned[key])
            else:
                assert torch.equal(value, tuned[key])


def test_a_tuned_component_is_named_in_the_fused_file(tmp_path: Path) -> None:
    component = tmp_path / "minifasnet.onnx"
    export_pair(tiny_pair(0), component, tuned="2 steps at lr 0.001 on 10 frames, alpha 0.5")
    canvases, _ = canvases_of_two_kinds(np.random.default_rng(1), 4)
    with torch.no_grad():
        expected = tiny_pair(0)(torch.from_numpy(canvases)).numpy()
    np.testing.assert_allclose(FaceModel(component)(canvases), expected, atol=1e-5)
    ours = brightness_model(tmp_path / "ours.onnx", "liveness", CropSpec(2.0, 224))
    fuse(ours, component, tmp_path / "liveness.onnx", weight=0.4)
    import onnx

    props = {p.key: p.value for p in onnx.load(str(tmp_path / "liveness.onnx")).metadata_props}
    assert props["minifasnet_tuned"] == "2 steps at lr 0.001 on 10 frames, alpha 0.5"
    assert props["minifasnet_source"] == f"{SOURCE}@{COMMIT}"
    untouched = tmp_path / "untouched.onnx"
    fuse(ours, COMPONENT, untouched, weight=0.4)
    assert "minifasnet_tuned" not in {p.key for p in onnx.load(str(untouched)).metadata_props}
