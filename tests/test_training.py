"""The training and evaluation commands, run for a few steps on a small subset: proves
the pipeline runs end to end (data -> crops -> train -> ONNX -> calibrate -> evaluate).
CI never trains the shipped models."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from facecheck.models import DEEPFAKE_FILE, FaceModel
from facecheck.settings import PROJECT_ROOT
from training.data import (
    DATA_ROOT,
    MASK_SIZE,
    MIRROR_ROOT,
    SHARED_LIVENESS_FOLDS,
    Sample,
    _swap_mask_one,
    read_manifest,
)
from training.evaluate import cut_out_scenes, liveness_report, roc_auc, score_locally
from training.export import load_onnx_weights
from training.minifasnet import find_snapshot
from training.model import deepfake_model, imagenet_state, liveness_model
from training.train import (
    DEEPFAKE_HELD_OUT_CAMERAS,
    TASK_DEFAULTS,
    deepfake_crop,
    is_other_camera,
    saturation_balanced_weights,
    split_samples,
)


def run(*args: str, timeout: int = 600) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module", autouse=True)
def developer_data() -> None:
    if not (DATA_ROOT / "liveness" / "manifest.csv").exists():
        pytest.skip(f"developer data not found at {DATA_ROOT} (set FACECHECK_DATA)")


# the liveness file takes its 224 px crop with MiniFASNet's two 80 px crops beside it
@pytest.mark.parametrize("task, size", [("liveness", 304), ("deepfake", 260)])
def test_train_command_smoke(task: str, size: int, tmp_path: Path) -> None:
    tune_steps = 2 if find_snapshot(MIRROR_ROOT) is not None else 0
    out = run(
        "training.train",
        task,
        "--steps=3",
        "--limit=24",
        "--eval_every=3",
        "--batch_size=4",
        f"--out={tmp_path}",
        f"--checkpoint_dir={tmp_path / 'checkpoints'}",
        "--finetune_steps=2",  # the deepfake recipe's second stage, and liveness's too
        *(["--finetune_pairs=1"] if task == "deepfake" else []),
        # the liveness recipe tunes MiniFASNet too, where its snapshot is fetched
        *([f"--minifasnet_tune_steps={tune_steps}"] if task == "liveness" else []),
    )
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["steps"] == 5 and summary["onnx_parity_max_abs"] < 1e-4
    assert [s["steps"] for s in summary["stages"]] == [3, 2]
    assert [h["step"] for h in summary["history"]] == [3, 5]  # each stage ends with a validation
    model = FaceModel(tmp_path / f"{task}.onnx")
    assert (model.crop.canvas, model.name) == (size, task)
    # the shipped liveness recipe: mixed 0.3 with MiniFASNet, real attacks only, colour casts
    recipe = ("minifasnet_weight", "synthetic_attacks", "colour_casts")
    expected = (0.3, 0.0, 0.5) if task == "liveness" else (0.0, 0.3, 0.0)
    assert tuple(summary[key] for key in recipe) == expected
    if task == "liveness":
        assert TASK_DEFAULTS["liveness"]["minifasnet_tune_steps"] == 300
        assert summary["minifasnet_tune_alpha"] == 0.3
        assert summary["minifasnet_tune_steps"] == tune_steps
        props = {p.key: p.value for p in onnx.load(str(tmp_path / "liveness.onnx")).metadata_props}
        tuned = props.get("minifasnet_tuned", "")
        assert tuned.startswith("2 steps at lr 0.0001") if tune_steps else not tuned
        assert not (tmp_path / "minifasnet").exists()  # kept beside fold models only
    assert 0.0 <= model.threshold <= 1.0 and model.threshold == pytest.approx(summary["threshold"], abs=1e-5)
    crops = np.random.default_rng(0).integers(0, 256, (2, size, size, 3), np.uint8)
    scores = model(crops)
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))
    assert not summary["mirror_averaged"]  # neither recipe pays for mirror averaging
    assert summary["backbone"] == ("lite2" if task == "deepfake" else "lite0")


@pytest.mark.parametrize("averaging", [[], ["--ema_decay=0.5"]], ids=["last_weights", "ema"])
def test_interrupted_run_resumes_to_the_same_model(averaging: list[str], tmp_path: Path) -> None:
    """A run split in two sittings (--stop_after, then --resume=1) ends where one
    uninterrupted run ends: same validation history, same threshold, same scores; with
    --ema_decay, the moving average is carried over too."""
    common = ["training.train", "liveness", "--steps=4", "--limit=24", "--eval_every=2", "--batch_size=4"]
    common += ["--minifasnet_tune_steps=0"]  # tuning has a test of its own
    common += averaging
    whole = json.loads(
        run(*common, f"--out={tmp_path / 'whole'}", f"--checkpoint_dir={tmp_path / 'ck1'}").splitlines()[-1]
    )
    split = [*common, f"--out={tmp_path / 'split'}", f"--checkpoint_dir={tmp_path / 'ck2'}"]
    first = run(*split, "--stop_after=2")
    assert "stopped after step 2" in first and not (tmp_path / "split").exists()
    resumed_out = run(*split, "--resume=1")
    assert "at step 3" in resumed_out
    resumed = json.loads(resumed_out.splitlines()[-1])
    assert resumed["history"] == whole["history"] and len(whole["history"]) == 2
    # a quantile of the scores, so held to the scores' tolerance: ONNX Runtime's float noise,
    # scaled by the mixing weight, moved it by 1.1e-6 once on a clean clone
    assert resumed["threshold"] == pytest.approx(whole["threshold"], abs=1e-5)
    crops = np.random.default_rng(0).integers(0, 256, (4, 304, 304, 3), dtype=np.uint8)
    a = FaceModel(tmp_path / "whole" / "liveness.onnx")(crops)
    b = FaceModel(tmp_path / "split" / "liveness.onnx")(crops)
    assert np.allclose(a, b, atol=1e-5)


def test_ema_run_exports_the_moving_average_not_the_last_weights(tmp_path: Path) -> None:
    """With --ema_decay the file holds the averaged network: torch's averaged weights from the
    run's checkpoint reproduce its scores, and the last step's weights do not."""
    common = ["training.train", "liveness", "--steps=3", "--limit=24", "--eval_every=3", "--batch_size=4"]
    run(
        *common,
        "--ema_decay=0.5",
        "--minifasnet_weight=0",
        "--minifasnet_tune_steps=0",
        f"--out={tmp_path}",
        f"--checkpoint_dir={tmp_path / 'ck'}",
    )
    state = torch.load(next((tmp_path / "ck").glob("*-ema0.5*.pt")), weights_only=False)
    crops = np.random.default_rng(0).integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    exported = FaceModel(tmp_path / "liveness.onnx")(crops)
    scores = {}
    for key, weights in (("last", state["model"]), ("averaged", state["averaged"])):
        model = liveness_model()
        prefix = "module." if key == "averaged" else ""
        model.load_state_dict({k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)})
        with torch.no_grad():
            scores[key] = torch.sigmoid(model.eval()(torch.from_numpy(crops))).numpy()
    assert np.allclose(scores["averaged"], exported, atol=1e-4)
    assert np.abs(scores["last"] - exported).max() > 1e-3


def test_saturation_balance_draws_both_classes_of_a_source_alike() -> None:
    """--saturation_balance: where a source's attacks are saturated and its live frames are
    not, the weights bring the two classes' saturation spreads together, each class keeps its
    number of draws, and a source of one class is drawn as before."""
    rng = np.random.default_rng(0)
    live_sat, attack_sat, lone = rng.uniform(0, 120, 200), rng.uniform(60, 180, 300), rng.uniform(0, 255, 50)
    sources = np.array(["a"] * 500 + ["b"] * 50)
    live = np.array([True] * 200 + [False] * 300 + [True] * 50)
    saturation = np.concatenate([live_sat, attack_sat, lone])
    weights = saturation_balanced_weights(sources, live, saturation)
    is_live, is_attack = live & (sources == "a"), ~live & (sources == "a")
    assert weights[is_live].sum() == pytest.approx(200) and weights[is_attack].sum() == pytest.approx(300)
    assert np.all(weights[sources == "b"] == 1.0)
    gap_before = attack_sat.mean() - live_sat.mean()
    gap_after = np.average(attack_sat, weights=weights[is_attack]) - np.average(
        live_sat, weights=weights[is_live]
    )
    assert gap_after < 0.5 * gap_before


def test_deepfake_training_reads_other_cameras_but_not_the_held_out_ones() -> None:
    """The deepfake model's genuine faces of other cameras come from the liveness set's train
    split; its val split and the held-out repositories stay its unseen-camera test."""
    faces = split_samples("liveness", "train", np.random.default_rng(0), is_other_camera)
    sources = {s.source for s in faces}
    train = read_manifest(DATA_ROOT / "liveness")
    assert {s.split for s in faces} == {"train"}
    assert sources.isdisjoint(DEEPFAKE_HELD_OUT_CAMERAS)
    assert set(DEEPFAKE_HELD_OUT_CAMERAS) <= {s.source for s in train if s.split == "train"}
    assert {"nuaa"} < sources and {"live", "attack"} <= {s.label for s in faces}


def test_webcam_reals_join_the_deepfake_real_faces_except_the_held_out_fold(monkeypatch) -> None:
    """--webcam_reals adds the fetched sources' train frames, live or not (none is AI-made), to
    the deepfake model's other-camera faces; --hold_out_fold leaves out that fold's sources, the
    shared set's among them (NUAA is fold 1). Without it the shared set alone, as before."""
    from training import train

    shared = read_manifest(DATA_ROOT / "liveness", SHARED_LIVENESS_FOLDS)
    fetched = [
        Sample(Path(f"{source}-{label}.jpg"), label, kind, source, source, split, fold)
        for source, split, fold in (("cam2", "train", 2), ("cam3", "train", 3), ("newcam", "test", 7))
        for label, kind in (("live", "live"), ("attack", "replay"))
    ]
    monkeypatch.setattr(train, "liveness_samples", lambda with_sources=True: shared + fetched * with_sources)
    monkeypatch.setattr(train, "task", "deepfake")

    def other_cameras() -> set[str]:
        faces = split_samples("liveness", "train", np.random.default_rng(0), is_other_camera)
        return {s.source for s in faces}

    assert other_cameras().isdisjoint({"cam2", "cam3", "newcam"}) and "nuaa" in other_cameras()
    monkeypatch.setattr(train, "webcam_reals", True)
    assert {"nuaa", "cam2", "cam3"} <= other_cameras() and "newcam" not in other_cameras()
    faces = split_samples("liveness", "train", np.random.default_rng(0), is_other_camera)
    assert {s.label for s in faces if s.source == "cam2"} == {"live", "attack"}
    monkeypatch.setattr(train, "hold_out_fold", 2)
    assert "cam2" not in other_cameras() and {"nuaa", "cam3"} <= other_cameras()
    monkeypatch.setattr(train, "hold_out_fold", 1)
    assert "nuaa" not in other_cameras() and {"cam2", "cam3"} <= other_cameras()


@pytest.mark.parametrize(
    "settings, message",
    [
        (["liveness", "--webcam_reals=1"], "webcam_reals is a deepfake setting"),
        (["deepfake", "--hold_out_fold=2"], "give --webcam_reals=1"),
        (["liveness", "--backbone=lite2"], "Lite0"),
        (["deepfake", "--saturation_balance=1"], "saturation_balance is a liveness setting"),
        (["liveness", "--fetched_share=0.2"], "fetched_share are deepfake settings"),
        (["deepfake", "--fetched_share=1.0"], "fetched_share is a share of the draws"),
        (
            ["deepfake", "--ema_decay=0.9", "--head_only=10", "--init=models/deepfake.onnx"],
            "head_only takes none",
        ),
    ],
)
def test_settings_are_refused_where_they_mean_nothing(settings: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "training.train", *settings, "--steps=1"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and message in result.stderr


def test_a_grey_input_liveness_model_judges_a_colour_crop_as_its_greyscale_copy() -> None:
    """--grey_input: the model's own first step keeps luminance only, so a red room and the
    same room in grey are one input to it; the colour model, same weights, tells them apart."""
    torch.manual_seed(0)
    grey_model, colour_model = liveness_model(grey=True), liveness_model()
    grey_model.load_imagenet()
    colour_model.load_state_dict(grey_model.state_dict())
    crops = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    crops[0, ..., 2] = 230  # a red cast
    greyed = np.stack([cv2.cvtColor(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR) for c in crops])
    with torch.no_grad():
        grey_model.eval()
        colour_model.eval()
        a, b = (grey_model(torch.from_numpy(x)) for x in (crops, greyed))
        c, d = (colour_model(torch.from_numpy(x)) for x in (crops, greyed))
    assert (a - b).abs().max() < 0.01  # the greyscale copy is rounded to whole grey levels
    assert (c - d).abs().max() > 0.1


def _deepfake_images(kind: str, n: int) -> list[Path]:
    return [s.path for s in read_manifest(DATA_ROOT / "deepfake") if s.split == "val" and s.kind == kind][:n]


def test_an_exported_file_loads_back_into_torch() -> None:
    """The shipped deepfake file's weights, put back into the torch model (batch norms
    folded into the convolutions by the export), score what the file scores."""
    model = deepfake_model(mask_tap=10, variant="lite2")
    load_onnx_weights(model, PROJECT_ROOT / "models" / DEEPFAKE_FILE)
    model.eval()
    crops = np.stack([cv2.resize(cv2.imread(str(p)), (260, 260)) for p in _deepfake_images("faceswap", 6)])
    with torch.no_grad():
        x = torch.from_numpy(crops)
        scores = torch.sigmoid(model(x))
        _, mask_logits = model.forward_with_mask(x)
    expected = FaceModel(PROJECT_ROOT / "models" / DEEPFAKE_FILE)(crops)
    np.testing.assert_allclose(scores.numpy(), expected, atol=1e-5)
    assert mask_logits.shape == (6, 17, 17)  # block 10's grid: 260 / 16, rounded up


def two_deepfake_steps(tmp_path: Path, *settings: str) -> dict:
    """The deepfake training command for 2 steps of 4 crops on a small subset: its summary."""
    out = run(
        "training.train",
        "deepfake",
        *settings,
        "--steps=2",
        "--finetune_steps=0",
        "--limit=24",
        "--eval_every=2",
        "--batch_size=4",
        f"--out={tmp_path}",
        f"--checkpoint_dir={tmp_path / 'checkpoints'}",
    )
    return json.loads(out.strip().splitlines()[-1])


def test_fine_tune_from_an_exported_file_with_a_mask_head(tmp_path: Path) -> None:
    summary = two_deepfake_steps(
        tmp_path, f"--init={PROJECT_ROOT / 'models' / DEEPFAKE_FILE}", "--pairs=1", "--mask_weight=1"
    )
    assert summary["mask_weight"] == 1.0 and summary["init"].endswith(DEEPFAKE_FILE)
    # the mask head is training-only: the file holds the classifier alone
    assert summary["parameters"] == sum(p.numel() for p in deepfake_model(variant="lite2").parameters())
    assert summary["onnx_parity_max_abs"] < 1e-4
    # the crop it was trained on
    assert FaceModel(tmp_path / DEEPFAKE_FILE).crop == FaceModel(PROJECT_ROOT / "models" / DEEPFAKE_FILE).crop


def test_lite2_loads_every_imagenet_weight_of_its_wheel() -> None:
    model = deepfake_model(variant="lite2")
    model.load_imagenet()
    state = imagenet_state("lite2")
    backbone = model.backbone.state_dict()
    assert set(backbone) <= set(state) and len(model.backbone._blocks) == 21
    for name, value in backbone.items():
        assert torch.equal(value, state[name]), name
    assert torch.equal(model.head[0].weight, state["_conv_head.weight"])  # 352 -> 1280
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 260, 260, 3, dtype=torch.uint8)).shape == (2,)


def test_deepfake_training_with_the_lite0_backbone_mirror_averaged(tmp_path: Path) -> None:
    """The recipe shipped until 2026-11-28: Lite0 at 224 px, each crop scored with its
    mirror image inside the file."""
    summary = two_deepfake_steps(tmp_path, "--backbone=lite0", "--frozen_blocks=6", "--mirror=1")
    assert summary["backbone"] == "lite0" and summary["mirror_averaged"]
    assert summary["parameters"] == sum(p.numel() for p in deepfake_model(variant="lite0").parameters())
    assert summary["onnx_parity_max_abs"] < 1e-4
    exported = FaceModel(tmp_path / DEEPFAKE_FILE)
    assert exported.crop.size == 224 and exported.crop.scale == 1.3  # the file tells serving its crop
    crops = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), np.uint8)
    np.testing.assert_allclose(exported(np.ascontiguousarray(crops[:, :, ::-1])), exported(crops), atol=1e-6)
    assert (tmp_path / "checkpoints" / "deepfake-2-seed1234-limit24.pt").exists()


def test_swap_mask_marks_where_a_fake_differs_from_its_source_frame(tmp_path: Path) -> None:
    real = cv2.imread(str(_deepfake_images("real", 1)[0]))
    fake = real.copy()
    fake[92:132, 92:132] = np.clip(fake[92:132, 92:132].astype(int) + 80, 0, 255)  # the face's centre
    cv2.imwrite(str(tmp_path / "real.png"), real)
    cv2.imwrite(str(tmp_path / "fake.png"), fake)
    mask, usable = _swap_mask_one((tmp_path / "fake.png", tmp_path / "real.png", deepfake_crop()))
    assert usable and mask.shape == (MASK_SIZE, MASK_SIZE)
    marked = np.argwhere(mask > 127)
    assert mask.max() > 240 and len(marked) > 20
    assert np.ptp(marked, axis=0).max() < 16  # one compact patch: the altered square
    assert mask[:8, :8].max() == 0 and mask[-8:, -8:].max() == 0
    # two different frames (differing almost everywhere), or no real frame: unknown
    cv2.imwrite(str(tmp_path / "other.png"), 255 - real)
    assert not _swap_mask_one((tmp_path / "fake.png", tmp_path / "other.png", deepfake_crop()))[1]
    assert not _swap_mask_one((tmp_path / "fake.png", None, deepfake_crop()))[1]


def test_evaluate_command_on_a_folder(tmp_path: Path) -> None:
    """A label/kind folder of real images, evaluated through the serving preprocessing
    with the shipped liveness model: report, per-image scores and plot are written."""
    samples = [s for s in read_manifest(DATA_ROOT / "liveness") if s.split == "val" and s.source == "nuaa"]
    folder = tmp_path / "data"
    for label, kind in (("live", "live"), ("attack", "print")):
        picked = [s for s in samples if s.kind == kind][::20][:4]
        (folder / label / kind).mkdir(parents=True)
        for s in picked:
            shutil.copy(s.path, folder / label / kind / s.path.name)
    run("training.evaluate", "liveness", "--data", str(folder), "--split", "all", "--out", str(tmp_path))
    report = json.loads((tmp_path / "liveness-all.json").read_text())
    assert set(report["apcer"]) == {"print"} and report["counts"]["live"] + report["not_judged"] >= 4
    low, high = report["roc_auc_95ci"]
    assert low <= report["roc_auc"] <= high
    assert (tmp_path / "liveness-all.png").stat().st_size > 1000
    with open(tmp_path / "liveness-all-scores.csv", newline="") as f:
        scored = list(csv.DictReader(f))
    assert sorted(Path(r["path"]).name for r in scored) == sorted(p.name for p in folder.rglob("*.jpg"))
    judged = [float(r["score"]) for r in scored if r["score"]]
    assert len(judged) == len(scored) - report["not_judged"] and all(0 <= x <= 1 for x in judged)


def test_iso_metrics_on_known_scores() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.1, 0.05, 0.95])
    kinds = ["live", "live", "live", "live", "print", "print", "replay", "replay"]
    report = liveness_report(scores, kinds, threshold=0.5)
    assert report["bpcer"] == 0.25  # 0.2 rejected
    assert report["apcer"] == {"print": 0.5, "replay": 0.5}
    assert report["acer"] == pytest.approx(0.375)
    assert roc_auc(np.array([0.9, 0.1]), np.array([1, 0])) == 1.0


def test_view_dropout_judges_each_sample_on_one_view_in_training_only() -> None:
    """With view dropout, a training sample is scored by its context view alone or by its
    face view alone; evaluation (and so the export) always uses both."""
    torch.manual_seed(0)
    model = liveness_model(view_dropout=1.0)
    model.load_imagenet()
    crops = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (8, 224, 224, 3), np.uint8))
    linear = model.head[-1]
    with torch.no_grad():
        linear.weight.normal_()  # ImageNet has no such layer: give both halves a say
        model.eval()
        both = model(crops)
        half = linear.weight.shape[1] // 2
        only = {}
        for view, blank in (("context", slice(half, None)), ("face", slice(None, half))):
            saved = linear.weight.clone()
            linear.weight[:, blank] = 0
            only[view] = model(crops)
            linear.weight.copy_(saved)
        model.training = True  # the classifier alone: no dropout, drop-connect or batch statistics
        trained = model(crops)
    assert not torch.allclose(only["context"], only["face"])
    is_context, is_face = (torch.isclose(trained, only[v], atol=1e-5) for v in ("context", "face"))
    assert torch.all(is_context | is_face) and is_context.any() and is_face.any()
    assert not torch.allclose(trained, both)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(crops), both)


def test_evaluation_refuses_what_the_service_refuses() -> None:
    """Cut down to 1.2x their face box (`--reframe`), whole frames become faces without
    surroundings: the liveness evaluation leaves them unjudged, as /liveness answers 422;
    the deepfake evaluation still scores them."""
    nuaa_val = [s for s in read_manifest(DATA_ROOT / "liveness") if s.split == "val" and s.source == "nuaa"]
    files = [s.path for s in nuaa_val[:2]]
    assert score_locally("liveness", files, PROJECT_ROOT / "models")[0][0] is not None
    scores, note = score_locally("liveness", files, PROJECT_ROOT / "models", reframe=1.2)
    assert scores == [None, None] and "face_fills_image" in note
    scores, _ = score_locally("deepfake", files, PROJECT_ROOT / "models", reframe=1.2)
    assert all(isinstance(s, float) for s in scores)


def test_cut_out_evaluation_puts_each_face_over_another_persons_frame() -> None:
    """`--cut_out`: every face is cut out and put over the face of a bona fide image of
    another person of the same set; the composite goes through the served pipeline."""
    nuaa_val = [s for s in read_manifest(DATA_ROOT / "liveness") if s.split == "val" and s.source == "nuaa"]
    samples = nuaa_val[:2] + [s for s in nuaa_val if s.label == "live" and s.group != nuaa_val[0].group][:2]
    scenes = cut_out_scenes(samples)
    group_of = {s.path: s.group for s in samples}
    assert all(group_of[scene] != s.group for scene, s in zip(scenes, samples, strict=True))
    files = [s.path for s in samples[:2]]
    plain, _ = score_locally("liveness", files, PROJECT_ROOT / "models")
    pasted, _ = score_locally("liveness", files, PROJECT_ROOT / "models", scenes=scenes[:2])
    assert all(isinstance(x, float) for x in plain + pasted) and plain != pasted


@pytest.mark.parametrize("synthetic_attacks", [0.0, 1.0])
def test_fusion_training_holds_minifasnets_logit_on_each_real_frame(
    synthetic_attacks: float, monkeypatch
) -> None:
    """--fusion_training: every real frame drawn carries MiniFASNet's logit on that frame (its
    own crops of the same face); bona fide faces of the deepfake set and synthesised attacks,
    which MiniFASNet never sees, carry 0. --synthetic_attacks sets their share of the draws."""
    from training import train
    from training.minifasnet import LOGIT_CLIP, MINIFASNET_CROP, MINIFASNET_FILE

    for name, value in {
        "fusion_training": True,
        "minifasnet_weight": 0.5,
        "limit": 24,
        "cut_outs": 0.0,
        "synthetic_attacks": synthetic_attacks,
    }.items():
        monkeypatch.setattr(train, name, value)
    batches = train.LivenessBatches(np.random.default_rng(0))
    frames = train.face_crops(
        train.split_samples("liveness", "train", np.random.default_rng(0)), (MINIFASNET_CROP,)
    )
    probabilities = np.clip(
        FaceModel(PROJECT_ROOT / "models" / MINIFASNET_FILE)(frames.crops[MINIFASNET_CROP]),
        LOGIT_CLIP,
        1 - LOGIT_CLIP,
    )
    logits = np.log(probabilities / (1 - probabilities))
    live = [s.label == "live" for s in frames.samples]
    np.testing.assert_allclose(batches.live.offsets, logits[live], atol=1e-4)
    np.testing.assert_allclose(batches.attacks.offsets, logits[np.logical_not(live)], atol=1e-4)
    assert not np.any(batches.extra.offsets)
    drawn = [batches.sample() for _ in range(200)]
    attacks = [e.offset for e in drawn if e.label == 0.0]
    real_attack = [any(np.isclose(o, batches.attacks.offsets, atol=1e-4)) and o != 0.0 for o in attacks]
    assert attacks and all(real_attack) if synthetic_attacks == 0.0 else not any(real_attack)
    bona_fide = {e.offset for e in drawn if e.label == 1.0}
    assert 0.0 in bona_fide and len(bona_fide) > 1  # deepfake-set faces and live frames


def test_minifasnet_tuning_without_the_snapshot_stops_before_any_data_is_read(
    tmp_path: Path, monkeypatch
) -> None:
    from training import train

    monkeypatch.setattr(train, "MIRROR_ROOT", tmp_path)
    monkeypatch.setattr(train, "minifasnet_tune_steps", 2)
    monkeypatch.setattr(train, "minifasnet_weight", 0.4)
    with pytest.raises(SystemExit, match="Silent-Face snapshot"):
        train.plan()
    monkeypatch.setattr(train, "minifasnet_weight", 0.0)
    with pytest.raises(SystemExit, match="give minifasnet_weight"):
        train.plan()


def test_tuned_minifasnet_leaves_the_held_out_fold_out_and_moves_alpha_of_the_way(
    tmp_path: Path, monkeypatch
) -> None:
    """A fold run's tuned MiniFASNet: trained on the fold's training frames only (the file
    says how many), the published component exactly at alpha 0, another one at alpha 1."""
    from training import train
    from training.minifasnet import COMMIT, MINIFASNET_CROP, MINIFASNET_FILE, SOURCE, find_snapshot

    if find_snapshot(train.MIRROR_ROOT) is None:
        pytest.skip(f"no snapshot of {SOURCE}@{COMMIT} under {train.MIRROR_ROOT}: MiniFASNet is not tuned")
    for name, value in {"limit": 64, "hold_out_fold": 6, "minifasnet_tune_steps": 2}.items():
        monkeypatch.setattr(train, name, value)
    canvases = np.random.default_rng(0).integers(0, 256, (3, 304, 304, 3), dtype=np.uint8)
    published = FaceModel(PROJECT_ROOT / "models" / MINIFASNET_FILE)(canvases)
    scores = {}
    for alpha in (0.0, 1.0):
        monkeypatch.setattr(train, "minifasnet_tune_alpha", alpha)
        out = tmp_path / f"alpha{alpha}.onnx"
        train.tune_minifasnet(out, np.random.default_rng(0))
        scores[alpha] = FaceModel(out)(canvases)
    np.testing.assert_allclose(scores[0.0], published, atol=1e-5)
    assert np.abs(scores[1.0] - published).max() > 1e-4
    import onnx

    props = {p.key: p.value for p in onnx.load(str(tmp_path / "alpha1.0.onnx")).metadata_props}
    frames = train.face_crops(
        train.split_samples("liveness", "train", np.random.default_rng(0)), (MINIFASNET_CROP,)
    )
    trained = [s for s in frames.samples if s.fold != 6]
    assert len(trained) < len(frames.samples)
    assert props["tuned"] == f"2 steps at lr 0.0001 on {len(trained)} frames, alpha 1"
