"""Leave-one-family-out: training without a family's fakes (`training.train deepfake
--hold_out_family`), its report (`training.evaluate deepfake --lofo`) on a tiny set scored by
fixture models, and the whole `training.lofo` command on a tiny set."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facecheck.models import DEEPFAKE_FILE, FaceModel
from facecheck.preprocess import CropSpec
from facecheck.settings import PROJECT_ROOT
from tests.fixture_models import brightness_model
from training import families, train
from training.data import DATA_ROOT, Sample, face_crops, family_of, read_manifest
from training.evaluate import roc_auc, score_locally

pytestmark = pytest.mark.skipif(
    not (DATA_ROOT / "deepfake" / "manifest.csv").exists(), reason="developer data not found"
)
COLUMNS = ["path", "label", "kind", "group", "source", "split"]


def write_manifest(root: Path, samples: list[Sample], extra: dict[str, list[str]] | None = None) -> None:
    """A manifest.csv at root whose paths are the samples' own files (absolute); `extra`: more
    columns, a value per sample."""
    extra = extra or {}
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS + list(extra))
        for i, s in enumerate(samples):
            row = [str(s.path), s.label, s.kind, s.group, s.source, s.split]
            writer.writerow(row + [values[i] for values in extra.values()])


def pick(samples: list[Sample], split: str, kind: str, n: int, source: str = "") -> list[Sample]:
    return [s for s in samples if s.split == split and s.kind == kind and source in s.source][:n]


@pytest.fixture
def held_out_batches(monkeypatch):
    """DeepfakeBatches of one 300-image train subset (the same whatever is held out), holding
    out the families given."""

    def make(spec: str) -> train.DeepfakeBatches:
        monkeypatch.setattr(train, "task", "deepfake")
        monkeypatch.setattr(train, "backbone", "lite0")
        monkeypatch.setattr(train, "limit", 300)
        monkeypatch.setattr(train, "hold_out_family", spec)
        train.plan()  # the names are checked
        return train.DeepfakeBatches(np.random.default_rng(0))

    return make


def test_held_out_family_leaves_the_pools_and_the_mix(held_out_batches, monkeypatch) -> None:
    every = held_out_batches("")
    assert every.mix == train.DEEPFAKE_MIX and set(every.fakes) == {"faceswap", "gan"}
    assert len(every.pairs) > 0
    # DFDC held out: no face swap left, its share spread over the rest; reals and GANs stay
    no_dfdc = held_out_batches("dfdc")
    assert set(no_dfdc.fakes) == {"gan"} and not no_dfdc.pairs
    np.testing.assert_array_equal(no_dfdc.fakes["gan"].crops, every.fakes["gan"].crops)
    np.testing.assert_array_equal(no_dfdc.real.crops, every.real.crops)
    np.testing.assert_array_equal(no_dfdc.other_camera.crops, every.other_camera.crops)
    rest = 1 - train.DEEPFAKE_MIX["faceswap"]
    assert no_dfdc.mix == pytest.approx(
        {k: 0.0 if k == "faceswap" else v / rest for k, v in train.DEEPFAKE_MIX.items()}
    )
    # a synthetic family and a real one: neither drawn, the pools of the others untouched
    made = []
    monkeypatch.setitem(
        families.SYNTHETIC_FAMILIES,
        "self_blend",
        lambda img, marks, rng, donor: made.append(1) or (img, img[..., 0] * 0.0),
    )
    neither = held_out_batches("stylegan,self_blend")
    assert set(neither.fakes) == {"faceswap"}
    np.testing.assert_array_equal(neither.fakes["faceswap"].crops, every.fakes["faceswap"].crops)
    assert neither.mix["gan"] == neither.mix["self_blend"] == 0 and sum(
        neither.mix.values()
    ) == pytest.approx(1)
    labels = [neither.sample().label for _ in range(200)]
    assert not made and 0 < sum(labels) < 200  # fakes are face swaps only
    [every.sample() for _ in range(50)]
    assert made  # the same registry entry is what makes self-blends when it is not held out


def test_unknown_family_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(train, "task", "deepfake")
    monkeypatch.setattr(train, "hold_out_family", "dfdc,nosuch")
    with pytest.raises(SystemExit, match="unknown families nosuch"):
        train.plan()
    monkeypatch.setattr(train, "task", "liveness")
    monkeypatch.setattr(train, "hold_out_family", "dfdc")
    with pytest.raises(SystemExit, match="deepfake setting"):
        train.plan()


def test_family_column_names_a_fetched_fake_and_kinds_name_the_rest(tmp_path: Path) -> None:
    shared = read_manifest(DATA_ROOT / "deepfake")
    fakes = pick(shared, "val", "faceswap", 2)
    write_manifest(tmp_path, fakes, {"family": ["inswapper", ""]})
    fetched = read_manifest(tmp_path)
    assert [family_of(s) for s in fetched] == ["inswapper", "dfdc"]
    assert {family_of(s) for s in shared} == {"", "dfdc", "stylegan"}
    assert families.real_families(shared) == {"dfdc", "stylegan"}


def test_lofo_folds_are_the_trained_families_and_one_for_the_rest() -> None:
    from training.lofo import default_folds, known_families

    assert train.trained_families() == {"dfdc", "stylegan", "self_blend"} <= known_families()
    known = {"dfdc", "stylegan", "self_blend", "inswapper", "sd15"}
    assert default_folds(known, train.trained_families()) == [
        "dfdc",
        "self_blend",
        "stylegan",
        "inswapper+sd15",
    ]
    assert default_folds({"dfdc"}, {"dfdc"}) == ["dfdc"]


def test_every_synthetic_family_makes_the_same_fakes_each_time() -> None:
    """training.fakes' families are registered (decoder_traces once its autoencoder exists),
    each made through its uniform call, a donor drawn for those that take one."""
    assert {"self_blend", "low_res_swap", "part_splice", "retouch"} <= set(families.SYNTHETIC_FAMILIES)
    reals = pick(read_manifest(DATA_ROOT / "deepfake"), "val", "real", 3)
    fc = face_crops(reals, (CropSpec(scale=1.3, size=224),))
    crops, marks = fc.crops[CropSpec(scale=1.3, size=224)], fc.landmarks[CropSpec(scale=1.3, size=224)]
    for name in families.SYNTHETIC_FAMILIES:
        made = families.synthetic_fakes(name, crops, marks)
        np.testing.assert_array_equal(made, families.synthetic_fakes(name, crops, marks))
        assert made.shape == crops.shape and not np.array_equal(made, crops), name


def tiny_sets(root: Path) -> tuple[Path, Path]:
    """A tiny shared set (FACECHECK_DATA: deepfake and liveness) and a fetched deepfake source
    (FACECHECK_SOURCES) with a `family` column, made of the developer data's own files."""
    shared = read_manifest(DATA_ROOT / "deepfake")
    picked = []
    for split, n in (("train", 10), ("val", 4)):
        for kind, source in (("real", "dfdc"), ("faceswap", "dfdc"), ("real", "sg140k"), ("gan", "sg140k")):
            picked += pick(shared, split, kind, n // 2 if source == "sg140k" else n, source)
    write_manifest(root / "data" / "deepfake", picked)
    liveness = [s for s in read_manifest(DATA_ROOT / "liveness") if s.split == "train" and s.source == "nuaa"]
    write_manifest(root / "data" / "liveness", liveness[::200][:6])
    # fetched: 3 face swaps of another tool, 2 real faces that training does not draw and one
    # that it does (a file of the shared set's train split)
    swaps = pick(shared, "train", "faceswap", 13)[10:]
    webcam = pick(shared, "train", "real", 12)[10:] + pick(shared, "train", "real", 1)
    reals = [Sample(s.path, "real", "real", s.group, "webcam", "train") for s in webcam]
    fetched = [Sample(s.path, "fake", "faceswap", s.group, "tool", "train") for s in swaps] + reals
    write_manifest(root / "sources" / "deepfake", fetched, {"family": ["inswapper"] * 3 + [""] * 3})
    return root / "data", root / "sources"


def run_with(env: dict[str, str], *args: str, timeout: int = 300) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_lofo_report_scores_each_family_with_the_model_that_never_saw_it(tmp_path: Path) -> None:
    """Fixture models (score: the crop's brightness), one threshold each: every family's
    fakes and the real faces are scored by its own model; the report gives each family's AUC
    with its interval, detection rate and false positives per real source, and the worst."""
    data, fetched = tiny_sets(tmp_path)
    crop = CropSpec(scale=1.3, size=224)
    lofo = tmp_path / "lofo" / "tiny"
    thresholds = {"dfdc": 0.3, "stylegan+self_blend": 0.4, "inswapper": 0.5, "part_splice+retouch": 0.6}
    for name, threshold in thresholds.items():
        brightness_model(lofo / f"family-{name}" / DEEPFAKE_FILE, "deepfake", crop, threshold)
    env = {"FACECHECK_DATA": str(data), "FACECHECK_SOURCES": str(fetched)}
    out = run_with(env, "training.evaluate", "deepfake", "--lofo", str(lofo), "--out", str(tmp_path))
    report = json.loads((tmp_path / "deepfake-lofo-tiny.json").read_text())
    per_family = report["per_family"]
    assert set(per_family) == {"dfdc", "stylegan", "self_blend", "inswapper", "part_splice", "retouch"}
    assert per_family["stylegan"]["model"] == "family-stylegan+self_blend"
    assert per_family["self_blend"]["model_held_out"] == ["stylegan", "self_blend"]
    # the real faces: the shared val reals and the fetched ones that training does not draw
    val_reals = [s for s in read_manifest(data / "deepfake") if s.split == "val" and s.label == "real"]
    fetched_reals = [s for s in read_manifest(fetched / "deepfake") if s.label == "real"][:2]
    reals = val_reals + fetched_reals
    dfdc_val = [s for s in read_manifest(data / "deepfake") if s.split == "val" and s.kind == "faceswap"]
    for family, fakes in (("dfdc", dfdc_val), ("inswapper", read_manifest(fetched / "deepfake")[:3])):
        model_dir = lofo / f"family-{family}"
        fake_raw = score_locally("deepfake", [s.path for s in fakes], model_dir)[0]
        real_raw = score_locally("deepfake", [s.path for s in reals], model_dir)[0]
        fake_scores, real_scores = ([x for x in raw if x is not None] for raw in (fake_raw, real_raw))
        scores = np.array(fake_scores + real_scores, np.float64)
        entry = per_family[family]
        assert entry["threshold"] == pytest.approx(thresholds[family])
        assert entry["counts"] == {"fakes": len(fake_scores), "reals": len(real_scores)}
        assert entry["not_judged"] == len(fakes) - len(fake_scores) and len(fake_scores) >= 2
        assert entry["roc_auc"] == pytest.approx(roc_auc(scores, np.arange(len(scores)) < len(fake_scores)))
        assert entry["detection_rate"] == pytest.approx(np.mean(np.array(fake_scores) >= thresholds[family]))
        webcam = np.mean(np.array(real_raw[-2:]) >= thresholds[family])
        assert entry["false_positive_rate_per_real_source"]["webcam"] == pytest.approx(webcam)
        assert set(entry["false_positive_rate_per_real_source"]) == {
            "dfdc_faces224",
            "sg140k_stylegan_ffhq",
            "webcam",
        }
    # self-blends are made from the val real faces' crops and scored as crops, which are the
    # served ones: the model scores an unaltered crop as the service scores its file
    for family in ("self_blend", "part_splice", "retouch"):
        made = per_family[family]
        assert made["synthetic"] and made["counts"]["fakes"] == len(val_reals)
        assert made["crop_vs_served_max_abs"] < 1e-5
    for entry in per_family.values():
        low, high = entry["roc_auc_95ci"]
        assert low <= entry["roc_auc"] <= high
    worst = min(per_family, key=lambda f: per_family[f]["roc_auc"])
    assert report["worst_family"] == worst and f"worst held-out family: {worst}" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("family "))
    assert lines[header + 1].split()[0] == worst  # the table lists the worst first
    with open(tmp_path / "deepfake-lofo-tiny-scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * len(reals) + len(dfdc_val) + 2 + 3 * len(val_reals) + 3  # stylegan: 2 val fakes
    # a family held out by two models would be scored twice: refused
    brightness_model(lofo / "family-dfdc+inswapper" / DEEPFAKE_FILE, "deepfake", crop)
    command = [
        sys.executable,
        "-m",
        "training.evaluate",
        "deepfake",
        "--lofo",
        str(lofo),
        "--out",
        str(tmp_path),
    ]
    refused = subprocess.run(
        command, cwd=PROJECT_ROOT, env={**os.environ, **env}, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "dfdc, inswapper held out by more than one model" in refused.stderr


def test_lofo_command_trains_a_model_per_family_then_reports(tmp_path: Path) -> None:
    """The whole command on a tiny set, the proxy recipe for two steps: a model per held-out
    family (one of them a fold of two), the report; run again, it trains nothing."""
    data, _ = tiny_sets(tmp_path)
    env = {"FACECHECK_DATA": str(data), "FACECHECK_SOURCES": str(tmp_path / "no-sources")}
    command = ["training.lofo", "smoke", "--families=dfdc,stylegan+self_blend", "--proxy"]
    command += [f"--lofo_dir={tmp_path / 'lofo'}", f"--reports={tmp_path / 'reports'}"]
    command += ["--steps=2", "--eval_every=2", "--batch_size=4", f"--checkpoint_dir={tmp_path / 'ck'}"]
    run_with(env, *command, timeout=600)
    runs = tmp_path / "lofo" / "smoke"
    for folder, held in (
        ("family-dfdc", ["dfdc"]),
        ("family-stylegan+self_blend", ["self_blend", "stylegan"]),
    ):
        summary = json.loads((runs / folder / "deepfake.train.json").read_text())
        assert summary["hold_out_family"] == held and summary["backbone"] == "lite0"
        assert FaceModel(runs / folder / DEEPFAKE_FILE).crop.size == 224
    report = json.loads((tmp_path / "reports" / "deepfake-lofo-smoke.json").read_text())
    assert set(report["per_family"]) == {"dfdc", "stylegan", "self_blend"}
    assert report["worst_family"] in report["per_family"]
    again = run_with(env, *command, timeout=300)
    assert again.count("exists") == 2 and "trained in" not in again


def test_synthetic_families_share_their_share_evenly(monkeypatch) -> None:
    assert train.run_mix() == train.DEEPFAKE_MIX  # the defaults: the same floats as ever
    monkeypatch.setattr(train, "synthetic_families", "self_blend,retouch")
    monkeypatch.setattr(train, "synthetic_share", 0.4)
    mix = train.run_mix()
    assert mix["self_blend"] == mix["retouch"] == pytest.approx(0.2)
    assert sum(mix.values()) == pytest.approx(1.0)
    assert mix["real"] / mix["gan"] == pytest.approx(train.DEEPFAKE_MIX["real"] / train.DEEPFAKE_MIX["gan"])
    monkeypatch.setattr(train, "hold_out_family", "retouch")
    held = train.training_mix(set())
    assert held["retouch"] == 0.0 and sum(held.values()) == pytest.approx(1.0)


def test_head_only_refits_the_last_layer_of_the_init_file(tmp_path: Path) -> None:
    """--head_only: the shipped file's network, its last linear layer fitted on drawn examples
    of this run's mix; every other weight as loaded."""
    init = PROJECT_ROOT / "models" / DEEPFAKE_FILE
    command = ["training.train", "deepfake", f"--init={init}", "--head_only=32", "--limit=48"]
    command += ["--synthetic_families=self_blend,retouch", "--synthetic_share=0.4", f"--out={tmp_path}"]
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True"}
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["head_only"] == 32 and summary["stages"] == [] and len(summary["history"]) == 1
    import onnx
    from onnx import numpy_helper

    def weights(path: Path) -> dict[str, np.ndarray]:
        return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}

    before, after = weights(init), weights(tmp_path / DEEPFAKE_FILE)
    changed = [n for n in before if n in after and not np.array_equal(before[n], after[n])]
    assert 1 <= len(changed) <= 2  # the last layer's weight and bias
    assert all(before[n].size <= 1280 for n in changed)


def test_fetched_share_draws_fetched_sources_and_holds_a_familys_sources_out_whole(
    held_out_batches, monkeypatch, tmp_path: Path
) -> None:
    """--fetched_share: the fetched sources' fakes (each family a pool) and real faces join the
    draws at that share, half each; holding a family out leaves its repositories out whole,
    their real faces too."""
    shared = read_manifest(DATA_ROOT / "deepfake")
    swaps, gans = pick(shared, "val", "faceswap", 3), pick(shared, "val", "gan", 3)
    reals = pick(shared, "val", "real", 4)
    fetched = [Sample(s.path, "fake", "faceswap", s.group, "tool_a", "train") for s in swaps]
    fetched += [Sample(s.path, "fake", "diffusion", s.group, "tool_b", "train") for s in gans]
    fetched += [Sample(s.path, "real", "real", s.group, "tool_a", "train") for s in reals[:2]]
    fetched += [Sample(s.path, "real", "real", s.group, "tool_b", "train") for s in reals[2:]]
    # a source that only tests (split "test"): never drawn, its family judged as unseen
    fetched += [Sample(s.path, "fake", "faceswap", s.group, "tool_c", "test") for s in swaps[:1]]
    families_column = ["inswapper"] * 3 + ["sd15"] * 3 + [""] * 4 + ["simswap"]
    write_manifest(tmp_path / "deepfake", fetched, {"family": families_column})
    monkeypatch.setattr("training.data.SOURCES_ROOT", tmp_path)
    assert "sd15" not in train.trained_families()  # fetched fakes only test
    monkeypatch.setattr(train, "fetched_share", 0.4)
    assert train.fetched_training_sources() == ["tool_a", "tool_b"]
    assert {"inswapper", "sd15", "dfdc"} <= train.trained_families()  # each its own lofo fold
    assert "simswap" not in train.trained_families()
    every = held_out_batches("")
    assert every.mix["fetched_fake"] == every.mix["fetched_real"] == pytest.approx(0.2)
    assert sum(every.mix.values()) == pytest.approx(1.0)
    assert every.mix["real"] == pytest.approx(0.6 * train.DEEPFAKE_MIX["real"])
    spec = train.deepfake_crop()
    found = {
        name: len(face_crops(group, (spec,)).samples)
        for name, group in (("inswapper", swaps), ("sd15", gans))
    }
    assert {f: len(p.crops) for f, p in every.fetched_fakes.items()} == found and min(found.values()) > 0
    assert every.fetched_real is not None and len(every.fetched_real.crops) == len(
        face_crops(reals, (spec,)).samples
    )
    for what, label in (("fetched_fake", 1.0), ("fetched_real", 0.0)):
        every.mix = {what: 1.0}
        assert {every.sample().label for _ in range(20)} == {label}
    no_sd15 = held_out_batches("sd15")
    assert train.fetched_training_sources() == ["tool_a"]
    assert set(no_sd15.fetched_fakes) == {"inswapper"}
    assert no_sd15.fetched_real is not None
    assert len(no_sd15.fetched_real.crops) == len(face_crops(reals[:2], (spec,)).samples)
    kept = no_sd15.fetched_fakes["inswapper"].crops
    np.testing.assert_array_equal(kept, every.fetched_fakes["inswapper"].crops)
    no_fetched_fakes = held_out_batches("sd15,inswapper")
    assert no_fetched_fakes.fetched_fakes == {} and no_fetched_fakes.mix["fetched_fake"] == 0.0
    assert no_fetched_fakes.fetched_real is None and sum(no_fetched_fakes.mix.values()) == pytest.approx(1.0)


def test_lofo_report_judges_a_model_on_no_real_face_it_trained_on(tmp_path: Path) -> None:
    """A model that drew a fetched source's real faces (its summary's fetched_sources_trained)
    is judged on the other real faces only."""
    data, fetched = tiny_sets(tmp_path)
    lofo = tmp_path / "lofo" / "tiny"
    crop = CropSpec(scale=1.3, size=224)
    brightness_model(lofo / "family-inswapper" / DEEPFAKE_FILE, "deepfake", crop, 0.5)
    summary = {"fetched_sources_trained": ["webcam"]}
    (lofo / "family-inswapper" / "deepfake.train.json").write_text(json.dumps(summary))
    env = {"FACECHECK_DATA": str(data), "FACECHECK_SOURCES": str(fetched)}
    run_with(env, "training.evaluate", "deepfake", "--lofo", str(lofo), "--out", str(tmp_path))
    entry = json.loads((tmp_path / "deepfake-lofo-tiny.json").read_text())["per_family"]["inswapper"]
    assert entry["real_sources_trained_on"] == ["webcam"]
    assert set(entry["false_positive_rate_per_real_source"]) == {"dfdc_faces224", "sg140k_stylegan_ffhq"}
    val_reals = [s for s in read_manifest(data / "deepfake") if s.split == "val" and s.label == "real"]
    assert entry["counts"]["reals"] + entry["reals_not_judged"] == len(val_reals)
