"""The manifest builder for fetched repositories (`python -m training.sources`), on a real git
repository made here in the collectors' layouts, and the leave-one-source-out evaluation on
fold models (copies of the shipped liveness file) over real images."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecheck.models import DEEPFAKE_FILE, LIVENESS_FILE, FaceModel
from facecheck.settings import PROJECT_ROOT
from training import sources
from training.data import DATA_ROOT, read_manifest
from training.evaluate import bona_fide_threshold, score_locally
from training.export import set_metadata
from training.sources import Repository


def scene(seed: int) -> np.ndarray:
    """A 64x48 frame unlike any other seed's."""
    return np.random.default_rng(seed).integers(0, 256, (48, 64, 3), np.uint8)


def write_jpeg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def make_repository(root: Path, files: dict[str, bytes | np.ndarray]) -> str:
    """A git repository at root/<owner+name>/repo holding `files`; its commit."""
    work = root / "work"
    for rel, content in files.items():
        if isinstance(content, np.ndarray):
            write_jpeg(work / rel, content)
        else:
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_bytes(content)
    git_dir = root / "owner+name" / "repo"
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    git = ["git", "--git-dir", str(git_dir), "--work-tree", str(work)]
    subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "data"], check=True, env=env)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def build(tmp_path: Path, repo: Repository, monkeypatch) -> list[dict[str, str]]:
    monkeypatch.setitem(sources.REPOSITORIES, "liveness", (repo,))
    sources.build("liveness", tmp_path / "mirror", tmp_path / "out")
    with open(tmp_path / "out" / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_folders_label_copies_are_dropped_and_still_frames_thinned(tmp_path: Path, monkeypatch) -> None:
    live, attack = scene(1), scene(2)
    still = np.clip(live.astype(int) + 1, 0, 255).astype(np.uint8)  # the next frame of a still scene
    commit = make_repository(
        tmp_path / "mirror",
        {
            "Dataset/Real/1001.jpg": live,
            "Dataset/Real/1001.txt": b"0 0.5 0.5 0.2 0.2\n",  # the collector's stale class: the folder wins
            "Dataset/Real/1002.jpg": still,
            "Dataset/Real/1003.jpg": scene(3),
            "Dataset/Fake/2001.jpg": attack,
            "Dataset/All/2001.jpg": attack,  # the same bytes in another folder
            "Dataset/DataCollect/3001.jpg": scene(4),  # unsorted collector output: left out
            "Dataset/Real/notes.md": b"not an image",
            "runs/detect/val.jpg": scene(5),  # outside Dataset/
        },
    )
    rows = build(tmp_path, Repository("owner/name", "demo", 3, licence="MIT"), monkeypatch)
    by_label = {label: [r for r in rows if r["label"] == label] for label in ("live", "attack")}
    assert len(by_label["live"]) == 2  # 1001 and 1003; 1002 is 1001 again
    assert {r["repo_path"] for r in by_label["live"]} == {"Dataset/Real/1001.jpg", "Dataset/Real/1003.jpg"}
    assert [r["repo_path"] for r in by_label["attack"]] == ["Dataset/All/2001.jpg"]  # one of two copies
    assert {r["kind"] for r in by_label["attack"]} == {"replay"}
    for r in rows:
        assert (r["repo"], r["commit"], r["licence"], r["fold"], r["source"]) == (
            "owner/name",
            commit,
            "MIT",
            "3",
            "demo",
        )
        assert r["split"] == "train"
        saved = cv2.imread(str(tmp_path / "out" / r["path"]))
        assert saved is not None and saved.shape == (48, 64, 3)  # the file's own bytes


def test_yolo_classes_label_where_there_are_no_folders(tmp_path: Path, monkeypatch) -> None:
    make_repository(
        tmp_path / "mirror",
        {
            "Dataset/SplitData/train/images/1.jpg": scene(1),
            "Dataset/SplitData/train/labels/1.txt": b"1 0.5 0.5 0.3 0.3\n",
            "Dataset/SplitData/val/images/2.jpg": scene(2),
            "Dataset/SplitData/val/labels/2.txt": b"0 0.5 0.5 0.3 0.3\n",
            "Dataset/SplitData/val/images/3.jpg": scene(3),
            "Dataset/SplitData/val/labels/3.txt": b"",  # no face marked: no label
        },
    )
    rows = build(tmp_path, Repository("owner/name", "demo", 1, yolo_labels=True), monkeypatch)
    assert sorted((r["repo_path"].split("/")[-1], r["label"]) for r in rows) == [
        ("1.jpg", "live"),
        ("2.jpg", "attack"),
    ]
    assert {r["licence"] for r in rows} == {sources.NO_LICENCE}


def test_a_test_source_is_held_out_and_never_trained_on(tmp_path: Path, monkeypatch) -> None:
    from training import train

    make_repository(tmp_path / "mirror", {"Dataset/Real/1.jpg": scene(1), "Dataset/Fake/2.jpg": scene(2)})
    repo = Repository("owner/name", "new_camera", sources.NEW_CAMERAS_FOLD, split="test")
    rows = build(tmp_path, repo, monkeypatch)
    assert {(r["split"], r["fold"]) for r in rows} == {("test", str(sources.NEW_CAMERAS_FOLD))}
    samples = read_manifest(tmp_path / "out")
    assert {(s.split, s.fold) for s in samples} == {("test", sources.NEW_CAMERAS_FOLD)}
    # the training pools draw the train split only: a test source is scored, never learnt
    monkeypatch.setattr(train, "liveness_samples", lambda with_sources=True: samples)
    rng = np.random.default_rng(0)
    assert train.split_samples("liveness", "train", rng) == []
    assert len(train.split_samples("liveness", "test", rng)) == 2


def test_a_live_camera_labels_every_image_of_its_folders_live_and_tests_only(
    tmp_path: Path, monkeypatch
) -> None:
    commit = make_repository(
        tmp_path / "mirror",
        {
            "data/images/awake.1.jpg": scene(1),
            "data/images/drowsy.2.jpg": scene(2),
            "dataset/Amy/image_0.jpg": scene(3),
            "dataset/Z/image_0.jpg": scene(4),  # a template's sample photo: excluded
            "runs/detect/out.jpg": scene(5),  # outside the folders
        },
    )
    repo = sources.live_camera(
        "owner/name", "cam", commit, ("data/images/", "dataset/"), "MIT", ("dataset/Z/",)
    )
    rows = build(tmp_path, repo, monkeypatch)
    assert sorted(r["repo_path"] for r in rows) == [
        "data/images/awake.1.jpg",
        "data/images/drowsy.2.jpg",
        "dataset/Amy/image_0.jpg",
    ]
    assert {(r["label"], r["kind"], r["split"], r["fold"], r["licence"], r["commit"]) for r in rows} == {
        ("live", "live", "test", str(sources.NEW_CAMERAS_FOLD), "MIT", commit)
    }


def test_a_missing_snapshot_says_how_to_fetch_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sources.REPOSITORIES, "liveness", (Repository("someone/absent", "absent", 1),))
    with pytest.raises(SystemExit, match="fetch github:someone/absent"):
        sources.build("liveness", tmp_path, tmp_path / "out")


def evaluate_loso(task: str, tmp_path: Path, loso: Path) -> subprocess.CompletedProcess:
    """`training.evaluate TASK --loso` over tmp_path's data/ and sources/, reports to tmp_path."""
    env = {**os.environ, "FACECHECK_DATA": str(tmp_path / "data")}
    env["FACECHECK_SOURCES"] = str(tmp_path / "sources")
    result = subprocess.run(
        [sys.executable, "-m", "training.evaluate", task, "--loso", str(loso), "--out", str(tmp_path)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.skipif(not (DATA_ROOT / "liveness" / "manifest.csv").exists(), reason="developer data not found")
def test_leave_one_source_out_scores_each_source_with_its_fold_model(tmp_path: Path) -> None:
    """Two sources in two folds, each fold's model a copy of the shipped file with its own
    threshold: every image is scored as the fold model scores it, the threshold is the
    pooled bona fide 5 % point, and the report names each source's fold. A third source of
    new cameras (split "test") is scored by its own fold's model and reported apart: it takes
    no part in the threshold or the pooled figures."""
    nuaa = [s for s in read_manifest(DATA_ROOT / "liveness") if s.source == "nuaa" and s.split == "val"]
    picked = [s for s in nuaa if s.kind == "live"][::15][:4] + [s for s in nuaa if s.kind == "print"][::15][
        :4
    ]
    data, fetched = tmp_path / "data" / "liveness", tmp_path / "sources" / "liveness"
    for root, half, columns in ((data, picked[::2], ""), (fetched, picked[1::2], ",2")):
        root.mkdir(parents=True)
        lines = ["path,label,kind,group,source,split" + ",fold" * bool(columns)]
        for s in half:
            shutil.copy(s.path, root / s.path.name)
            source = "nuaa" if root is data else "webcam"
            lines.append(f"{s.path.name},{s.label},{s.kind},{s.group},{source},val{columns}")
        if root is fetched:  # the same frames again, as a camera no model trains on
            for s in picked[::2]:
                shutil.copy(s.path, root / f"new_{s.path.name}")
                lines.append(f"new_{s.path.name},{s.label},{s.kind},{s.group},newcam,test,7")
        (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    loso = tmp_path / "loso"
    for fold in (1, 2, 7):
        (loso / f"fold{fold}").mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / "models" / LIVENESS_FILE, loso / f"fold{fold}" / LIVENESS_FILE)
    result = evaluate_loso("liveness", tmp_path, loso)
    report = json.loads((tmp_path / "liveness-loso-loso.json").read_text())
    assert {k: v["fold"] for k, v in report["per_source"].items()} == {"nuaa": 1, "webcam": 2, "newcam": 7}
    expected = score_locally("liveness", [fetched / s.path.name for s in picked[1::2]], loso / "fold2")[0]
    expected += score_locally("liveness", [data / s.path.name for s in picked[::2]], loso / "fold1")[0]
    live = [
        sc
        for sc, s in zip(expected, picked[1::2] + picked[::2], strict=True)
        if sc is not None and s.kind == "live"
    ]
    assert report["threshold"] == pytest.approx(
        bona_fide_threshold(np.array(live), 0.05, bona_fide_high=True)
    )
    assert sum(report["counts"].values()) == sum(sc is not None for sc in expected)
    new_cameras = report["new_cameras"]
    assert new_cameras["sources"] == ["newcam"]
    assert new_cameras["counts"] == report["per_source"]["newcam"]["counts"]
    assert new_cameras["bpcer"] == report["per_source"]["newcam"]["bpcer"]
    assert "webcam" in result.stdout and "worst source" in result.stdout and "new cameras" in result.stdout
    with open(tmp_path / "liveness-loso-loso-scores.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(picked) + len(picked[::2])


@pytest.mark.skipif(not (DATA_ROOT / "liveness" / "manifest.csv").exists(), reason="developer data not found")
def test_deepfake_loso_judges_each_camera_by_its_fold_model_at_that_models_threshold(tmp_path: Path) -> None:
    """The deepfake false positives on cameras a model never saw: NUAA frames as two sources in
    two folds, each fold model a copy of the shipped deepfake file with its own threshold (the
    second one's at the median score, so that its source has frames on both sides). Each
    source's share flagged is its frames' scores under its own fold model's threshold."""
    nuaa = [s for s in read_manifest(DATA_ROOT / "liveness") if s.source == "nuaa" and s.split == "val"]
    picked = [s for s in nuaa if s.kind == "live"][::10][:6]
    picked += [s for s in nuaa if s.kind == "print"][::10][:2]
    fetched = tmp_path / "sources" / "liveness"
    fetched.mkdir(parents=True)
    lines = ["path,label,kind,group,source,split,fold"]
    for i, s in enumerate(picked):
        shutil.copy(s.path, fetched / s.path.name)
        source, fold = ("cam2", 2) if i % 2 else ("cam3", 3)
        lines.append(f"{s.path.name},{s.label},{s.kind},{s.group},{source},train,{fold}")
    (fetched / "manifest.csv").write_text("\n".join(lines) + "\n")
    data = tmp_path / "data" / "liveness"  # a shared set with no fold: nothing of it is scored
    data.mkdir(parents=True)
    (data / "manifest.csv").write_text("path,label,kind,group,source,split\n")
    loso = tmp_path / "loso"
    for fold in (2, 3):
        (loso / f"fold{fold}").mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / "models" / DEEPFAKE_FILE, loso / f"fold{fold}" / DEEPFAKE_FILE)
    cam3 = [fetched / s.path.name for s in picked[::2]]
    cam3_scores = [x for x in score_locally("deepfake", cam3, loso / "fold3")[0] if x is not None]
    median = float(np.median(cam3_scores))
    set_metadata(loso / "fold3" / DEEPFAKE_FILE, {"threshold": f"{median:.6f}"})
    (loso / "fold3" / "deepfake.train.json").write_text(json.dumps({"history": [{"val_auc": 0.5}]}))
    result = evaluate_loso("deepfake", tmp_path, loso)
    report = json.loads((tmp_path / "deepfake-loso-loso.json").read_text())
    assert {k: v["fold"] for k, v in report["per_source"].items()} == {"cam2": 2, "cam3": 3}
    assert report["folds"]["3"] == {"threshold": pytest.approx(median, abs=1e-6), "val_auc": 0.5}
    assert report["folds"]["2"]["val_auc"] is None
    flagged_all = []
    for source, fold, files in (("cam2", 2, picked[1::2]), ("cam3", 3, picked[::2])):
        model = loso / f"fold{fold}"
        raw = score_locally("deepfake", [fetched / s.path.name for s in files], model)[0]
        threshold = FaceModel(model / DEEPFAKE_FILE).threshold
        judged = [(x >= threshold, s.kind) for x, s in zip(raw, files, strict=True) if x is not None]
        flagged = [f for f, _ in judged]
        live = [f for f, kind in judged if kind == "live"]
        assert report["per_source"][source]["flagged"] == pytest.approx(np.mean(flagged))
        assert report["per_source"][source]["flagged_live"] == pytest.approx(np.mean(live))
        flagged_all += flagged
    assert 0 < report["per_source"]["cam3"]["flagged"] < 1
    assert report["flagged"] == pytest.approx(np.mean(flagged_all))
    assert report["worst_source_flagged_live"] == max(
        r["flagged_live"] for r in report["per_source"].values()
    )
    assert "cam3" in result.stdout and "worst source" in result.stdout


def test_print_runs_name_the_attack_frames_that_show_paper(tmp_path: Path, monkeypatch) -> None:
    make_repository(
        tmp_path / "mirror",
        {
            f"Dataset/Fake/{stamp}.jpg": scene(stamp)
            for stamp in (1715275500, 1715275559, 1715275600, 1715275700)
        },
    )
    repo = Repository("owner/name", "demo", 1, print_runs=(("1715275559", "1715275600"),))
    rows = build(tmp_path, repo, monkeypatch)
    kinds = {r["repo_path"].split("/")[-1]: r["kind"] for r in rows}
    assert kinds == {
        "1715275500.jpg": "replay",
        "1715275559.jpg": "print",
        "1715275600.jpg": "print",
        "1715275700.jpg": "replay",
    }


def run_without_sources(command: list[str], tmp_path: Path) -> None:
    """`python -m COMMAND` on the shared set alone (no fetched sources): its one fold, NUAA."""
    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=PROJECT_ROOT,
        env={**os.environ, "FACECHECK_SOURCES": str(tmp_path / "no-sources")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.skipif(not (DATA_ROOT / "liveness" / "manifest.csv").exists(), reason="developer data not found")
def test_loso_command_trains_a_model_per_fold_and_ships_with_the_pooled_threshold(tmp_path: Path) -> None:
    """The whole command on the shared set alone (its one fold, NUAA), a few steps each: the
    fold model, the report scoring NUAA with it, and a shipped file carrying that report's
    threshold and a copy of the report."""
    smoke = [
        "--steps=2",
        "--limit=24",
        "--eval_every=2",
        "--batch_size=4",
        f"--checkpoint_dir={tmp_path / 'ck'}",
        "--minifasnet_tune_steps=0",  # the shared set alone leaves no training frame beside NUAA's fold
    ]
    command = ["training.loso", "smoke", "--ship", "--bpcer=0.1", f"--loso_dir={tmp_path / 'loso'}"]
    command += [f"--out={tmp_path / 'models'}", f"--reports={tmp_path / 'reports'}", *smoke]
    run_without_sources(command, tmp_path)
    assert (tmp_path / "loso" / "smoke" / "fold1" / LIVENESS_FILE).exists()
    report = json.loads((tmp_path / "reports" / "liveness-loso-smoke.json").read_text())
    assert set(report["per_source"]) == {"nuaa"} and report["per_source"]["nuaa"]["fold"] == 1
    assert report["threshold_rule"] == "pooled held-out bona fide at BPCER 0.1"
    shipped = FaceModel(tmp_path / "models" / LIVENESS_FILE)
    assert shipped.threshold == pytest.approx(report["threshold"], abs=1e-5)
    assert json.loads((tmp_path / "models" / "liveness.loso.json").read_text()) == report
    summary = json.loads((tmp_path / "models" / "liveness.train.json").read_text())
    assert summary["hold_out_fold"] == 0 and summary["loso_report"].endswith("liveness-loso-smoke.json")


@pytest.mark.skipif(not (DATA_ROOT / "liveness" / "manifest.csv").exists(), reason="developer data not found")
def test_deepfake_loso_command_holds_each_folds_webcams_out_and_ships_with_all(tmp_path: Path) -> None:
    """The deepfake recipe's command on the shared set alone (its one fold, NUAA), each model
    the shipped file with its last layer refitted on a few draws: a fold model without NUAA's
    frames among its real faces, the report judging NUAA with it, then a file with them."""
    command = ["training.loso", "smoke", "--task=deepfake", "--ship", f"--loso_dir={tmp_path / 'loso'}"]
    command += [f"--out={tmp_path / 'models'}", f"--reports={tmp_path / 'reports'}"]
    command += [f"--init={PROJECT_ROOT / 'models' / DEEPFAKE_FILE}", "--head_only=16", "--limit=24"]
    run_without_sources(command, tmp_path)
    fold_summary = json.loads((tmp_path / "loso" / "smoke" / "fold1" / "deepfake.train.json").read_text())
    assert fold_summary["webcam_reals"] and fold_summary["hold_out_fold"] == 1
    report = json.loads((tmp_path / "reports" / "deepfake-loso-smoke.json").read_text())
    assert set(report["per_source"]) == {"nuaa"} and report["per_source"]["nuaa"]["fold"] == 1
    fold_model = FaceModel(tmp_path / "loso" / "smoke" / "fold1" / DEEPFAKE_FILE)
    assert report["folds"]["1"]["threshold"] == pytest.approx(fold_model.threshold)
    summary = json.loads((tmp_path / "models" / "deepfake.train.json").read_text())
    assert summary["webcam_reals"] and summary["hold_out_fold"] == 0 and summary["head_only"] == 16


def test_loso_table_takes_a_source_of_live_frames_only() -> None:
    """A source with no attacks (one camera's live frames) has no APCER and no AUC: the
    table still ranks it by its BPCER, and the worst-source figures skip its missing AUC."""
    from training.evaluate import liveness_report, loso_summary

    report = {
        "per_source": {
            "live_only": liveness_report(np.array([0.9, 0.2, 0.8]), ["live"] * 3, 0.5),
            "both": liveness_report(np.array([0.9, 0.7, 0.1]), ["live", "replay", "replay"], 0.5),
        }
    }
    lines = loso_summary(report)
    assert lines[1].split()[0] == "both"  # its APCER of 50 % is the worst figure
    assert lines[2].split()[0] == "live_only" and "33.3%" in lines[2]


def test_deepfake_classes_name_label_kind_and_family(tmp_path: Path, monkeypatch) -> None:
    """The deepfake task: each folder prefix names label, kind and family; reals are family
    `real`; copies across classes are left out; rows record licence and have no fold; groups
    follow the repository's layout."""
    swap = scene(2)
    commit = make_repository(
        tmp_path / "mirror",
        {
            "out/swapped/alice_01.jpg": swap,
            "out/swapped/alice_02.jpg": scene(3),
            "out/sd15/face_7.png": scene(4),
            "faces/real/alice_01.jpg": scene(1),
            "faces/real/bob_01.jpg": scene(5),
            "faces/real/copy.jpg": swap,  # the same bytes as a fake: neither kept
            "docs/banner.jpg": scene(6),  # outside the named folders
        },
    )
    repo = Repository(
        "owner/name",
        "demo",
        None,
        licence="CC BY 4.0",
        classes=(
            ("out/swapped/", "fake", "faceswap", "inswapper"),
            ("out/sd15/", "fake", "diffusion", "sd15"),
            ("faces/real/", "real", "real", "real"),
        ),
        group_by=r"/([a-z]+)_\d+\.",
    )
    monkeypatch.setitem(sources.REPOSITORIES, "deepfake", (repo,))
    sources.build("deepfake", tmp_path / "mirror", tmp_path / "out")
    with open(tmp_path / "out" / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == sources.DEEPFAKE_COLUMNS
        rows = {r["repo_path"]: r for r in reader}
    assert {p: (r["label"], r["kind"], r["family"]) for p, r in rows.items()} == {
        "out/swapped/alice_02.jpg": ("fake", "faceswap", "inswapper"),
        "out/sd15/face_7.png": ("fake", "diffusion", "sd15"),
        "faces/real/alice_01.jpg": ("real", "real", "real"),
        "faces/real/bob_01.jpg": ("real", "real", "real"),
    }
    assert (
        rows["out/swapped/alice_02.jpg"]["group"] == rows["faces/real/alice_01.jpg"]["group"] == "demo:alice"
    )
    assert rows["faces/real/bob_01.jpg"]["group"] == "demo:bob"
    for r in rows.values():
        assert (r["repo"], r["commit"], r["licence"], r["fold"], r["split"]) == (
            "owner/name",
            commit,
            "CC BY 4.0",
            "",
            "train",
        )
        assert (tmp_path / "out" / r["path"]).read_bytes()[:2] in (b"\xff\xd8", b"\x89P")


def test_deepfake_cap_is_per_family_and_groups_default_to_the_image(tmp_path: Path, monkeypatch) -> None:
    make_repository(
        tmp_path / "mirror",
        {
            **{f"gan/{i}.jpg": scene(10 + i) for i in range(5)},
            **{f"sd/{i}.jpg": scene(20 + i) for i in range(5)},
            **{f"real/{i}.jpg": scene(30 + i) for i in range(2)},
        },
    )
    repo = Repository(
        "owner/name",
        "demo",
        None,
        max_per_kind=3,
        classes=(
            ("gan/", "fake", "gan", "stylegan2"),
            ("sd/", "fake", "gan", "other_gan"),  # the same kind, another family: its own cap
            ("real/", "real", "real", "real"),
        ),
        group_by="image",
    )
    monkeypatch.setitem(sources.REPOSITORIES, "deepfake", (repo,))
    rows = sources.build("deepfake", tmp_path / "mirror", tmp_path / "out")
    counts = {f: sum(r["family"] == f for r in rows) for f in ("stylegan2", "other_gan", "real")}
    assert counts == {"stylegan2": 3, "other_gan": 3, "real": 2}
    assert len({r["group"] for r in rows}) == len(rows) and rows[0]["group"].startswith("demo:")
    assert {r["licence"] for r in rows} == {sources.NO_LICENCE}


def test_faces_only_keeps_the_images_with_a_face(tmp_path: Path, monkeypatch, live_frame) -> None:
    """A gallery of mixed scenes: with faces_only, a picture without a face is left out."""
    make_repository(tmp_path / "mirror", {"ai/person.jpg": live_frame, "ai/noise.jpg": scene(7)})
    repo = Repository(
        "owner/name",
        "demo",
        None,
        classes=(("ai/", "fake", "diffusion", "some_t2i"),),
        group_by="image",
        faces_only=True,
    )
    monkeypatch.setitem(sources.REPOSITORIES, "deepfake", (repo,))
    rows = sources.build("deepfake", tmp_path / "mirror", tmp_path / "out")
    assert [r["repo_path"] for r in rows] == ["ai/person.jpg"]


def picture(seed: int, height: int = 220, width: int = 220) -> np.ndarray:
    """A smooth picture, bright enough to stand out of a dark figure, unlike any other seed's."""
    coarse = np.random.default_rng(seed).integers(40, 256, (3, 4, 3), np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)


def figure(pictures: list[list[np.ndarray]]) -> np.ndarray:
    """Pictures set in rows on a black ground, a white caption above each, as plotting tools
    draw them."""
    height = 40 + max(p.shape[0] for row in pictures for p in row) + 40
    width = 30 + sum(p.shape[1] + 30 for p in pictures[0])
    out = np.zeros((height * len(pictures), width, 3), np.uint8)
    for r, row in enumerate(pictures):
        left = 30
        for p in row:
            top = r * height + 40
            cv2.putText(
                out, "SDXL_image_0001.jpg", (left, top - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255,) * 3
            )
            out[top : top + p.shape[0], left : left + p.shape[1]] = p
            left += p.shape[1] + 30
    return out


def png_bytes(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def test_tiles_are_a_figures_pictures_each_kept_once(tmp_path: Path, monkeypatch) -> None:
    """unpack="tiles": each picture of a figure is cut out exactly, without its caption; a
    sliver narrower than the others is not a picture; a picture shown in two figures is kept
    once."""
    first = [[picture(1), picture(2), picture(3)], [picture(4), picture(5), picture(6, width=90)]]
    second = [[picture(1), picture(7)]]
    make_repository(
        tmp_path / "mirror",
        {"figures/a.png": png_bytes(figure(first)), "figures/b.png": png_bytes(figure(second))},
    )
    repo = Repository(
        "owner/name",
        "demo",
        None,
        classes=(("figures/", "fake", "diffusion", "some_t2i"),),
        unpack="tiles",
    )
    monkeypatch.setitem(sources.REPOSITORIES, "deepfake", (repo,))
    rows = sources.build("deepfake", tmp_path / "mirror", tmp_path / "out")
    kept = {r["repo_path"]: cv2.imread(str(tmp_path / "out" / r["path"])) for r in rows}
    expected = {
        "figures/a.png#r0c0": picture(1),
        "figures/a.png#r0c1": picture(2),
        "figures/a.png#r0c2": picture(3),
        "figures/a.png#r1c0": picture(4),
        "figures/a.png#r1c1": picture(5),
        "figures/b.png#r0c1": picture(7),
    }
    assert sorted(kept) == sorted(expected)
    for name, image in expected.items():
        assert np.array_equal(kept[name], image), name
    assert {(r["label"], r["kind"], r["family"]) for r in rows} == {("fake", "diffusion", "some_t2i")}


def test_grid_cells_take_their_row_or_columns_class(tmp_path: Path, monkeypatch) -> None:
    """unpack="grid": a results figure is cut into its cells exactly, white separator lines
    left out; cells of the rows and columns named in grid_real are real faces (a swap's source
    and target), the others take the file's class."""
    cells = {(r, c): picture(10 * r + c, 60, 50) for r in range(3) for c in range(4)}
    rows_of_cells = [np.hstack([cells[r, c] for c in range(4)]) for r in range(3)]
    grid = np.vstack(rows_of_cells)
    grid = np.insert(grid, [50] * 3, 255, axis=1)  # a white line after the first column
    grid = np.insert(grid, [60] * 3, 255, axis=0)  # and after the first row
    make_repository(tmp_path / "mirror", {"docs/results.png": png_bytes(grid)})
    repo = Repository(
        "owner/name",
        "demo",
        None,
        classes=(("docs/results.png", "fake", "faceswap", "some_swap"),),
        unpack="grid",
        grid=(3, 4),
        grid_real=("r0", "c0"),
    )
    monkeypatch.setitem(sources.REPOSITORIES, "deepfake", (repo,))
    rows = sources.build("deepfake", tmp_path / "mirror", tmp_path / "out")
    assert len(rows) == 12
    for row in rows:
        r, c = map(int, re.fullmatch(r"docs/results.png#r(\d+)c(\d+)", row["repo_path"]).groups())
        assert np.array_equal(cv2.imread(str(tmp_path / "out" / row["path"])), cells[r, c]), (r, c)
        real = r == 0 or c == 0
        expected = ("real", "real", "real") if real else ("fake", "faceswap", "some_swap")
        assert (row["label"], row["kind"], row["family"]) == expected, (r, c)


def side_by_side_video(path: Path, swapped: bool, frames: int = 40) -> None:
    """A video whose frames show a picture left and, right, the same picture with its middle
    replaced (swapped), or another picture altogether (not swapped)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 120))
    for t in range(frames):
        left = picture(100 + t // 4, 120, 160)
        right = left.copy() if swapped else picture(500 + t // 4, 120, 160)
        right[40:80, 50:110] = 255 - right[40:80, 50:110]
        writer.write(np.hstack([left, right]))
    writer.release()


def test_side_by_side_videos_give_real_left_halves_and_fake_right_ones(tmp_path: Path, monkeypatch) -> None:
    """unpack="side_by_side": each frame read gives its left half as a real face and its right
    half in the file's class; a video whose halves are two different pictures is not read as
    one; a file the snapshot lacks (over the fetch size limit) is left out, the rest built."""
    work = tmp_path / "videos"
    work.mkdir()
    side_by_side_video(work / "a.mp4", swapped=True)
    side_by_side_video(work / "b.mp4", swapped=False)
    (work / "c.mp4").write_bytes(b"a large video")
    make_repository(
        tmp_path / "mirror",
        {f"demo/{name}": (work / name).read_bytes() for name in ("a.mp4", "b.mp4", "c.mp4")},
    )
    git_dir = tmp_path / "mirror" / "owner+name" / "repo"
    missing = subprocess.run(
        ["git", "--git-dir", str(git_dir), "rev-parse", "HEAD:demo/c.mp4"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (git_dir / "objects" / missing[:2] / missing[2:]).unlink()
    repo = Repository(
        "owner/name",
        "demo",
        None,
        classes=(("demo/", "fake", "faceswap", "live_swap"),),
        group_by=r"([^/]+)\.mp4$",
        unpack="side_by_side",
    )
    monkeypatch.setitem(sources.REPOSITORIES, "deepfake", (repo,))
    rows = sources.build("deepfake", tmp_path / "mirror", tmp_path / "out")
    assert rows and {r["group"] for r in rows} == {"demo:a"}
    assert {r["repo_path"].split("#")[0] for r in rows} == {"demo/a.mp4"}
    real = [r for r in rows if r["repo_path"].endswith("-real")]
    fake = [r for r in rows if r["repo_path"].endswith("-fake")]
    # 12 frames read (FRAMES_PER_VIDEO), 10 pictures: two pairs of them show one picture twice
    assert len(real) == len(fake) == 10
    assert {(r["label"], r["kind"], r["family"]) for r in real} == {("real", "real", "real")}
    assert {(r["label"], r["kind"], r["family"]) for r in fake} == {("fake", "faceswap", "live_swap")}
    for r in real + fake:
        t = int(r["repo_path"].split("#t")[1].split("-")[0])
        half = cv2.imread(str(tmp_path / "out" / r["path"])).astype(float)
        shown = picture(100 + t // 4, 120, 160).astype(float)
        assert half.shape == shown.shape
        middle = np.abs(half[40:80, 50:110] - shown[40:80, 50:110]).mean()
        assert (middle < 20) == (r in real), (r["repo_path"], middle)  # only the right half was changed
