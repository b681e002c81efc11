"""training.compare_lofo: a baseline's AUC on the very images each fold model was judged on."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from training.compare_lofo import compare


def write_scores(path: Path, rows: list[tuple[str, str, str, float | None]]) -> Path:
    """A training.evaluate --lofo score file: (model, held-out family, image, score)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "held_out_family", "path", "source", "kind", "score"])
        for model, family, image, score in rows:
            writer.writerow(
                [model, family, image, "src", "fake" if family else "real", "" if score is None else score]
            )
    return path


def test_the_baseline_is_judged_on_the_fold_models_real_faces(tmp_path: Path) -> None:
    # the new recipe's model of family a drew r3's repository, so it was not scored on r3;
    # r4 was not judged (no face)
    new = write_scores(
        tmp_path / "new.csv",
        [
            ("family-a", "", "r1", 0.1),
            ("family-a", "", "r2", 0.6),
            ("family-a", "", "r4", None),
            ("family-a", "a", "a1", 0.9),
            ("family-a", "a", "a2", 0.5),
            ("family-b", "", "r1", 0.2),
            ("family-b", "", "r2", 0.3),
            ("family-b", "", "r3", 0.4),
            ("family-b", "b", "b1", 0.35),
        ],
    )
    base = write_scores(
        tmp_path / "base.csv",
        [
            ("all", "", "r1", 0.5),
            ("all", "", "r2", 0.2),
            ("all", "", "r3", 0.95),  # would lower family a's baseline AUC, were it counted
            ("all", "a", "a1", 0.4),
            ("all", "a", "a2", 0.6),
            ("all", "b", "b1", 0.9),
        ],
    )
    rows = compare(new, base)
    # a: new 0.9 beats both reals, 0.5 beats r1 only -> 3/4; baseline: 0.4 beats r2, 0.6 both -> 3/4
    assert rows["a"] == {
        "fakes": 2,
        "reals": 2,
        "reals_left_out": 0,
        "auc": pytest.approx(0.75),
        "baseline_auc": pytest.approx(0.75),
    }
    # b: new 0.35 beats r1, r2, not r3 -> 2/3; baseline 0.9 beats r1, r2, not r3 -> 2/3
    assert rows["b"]["reals"] == 3 and rows["b"]["auc"] == pytest.approx(2 / 3)
    assert rows["b"]["baseline_auc"] == pytest.approx(2 / 3)


def test_score_files_may_be_gzipped(tmp_path: Path) -> None:
    new = write_scores(tmp_path / "new.csv", [("family-a", "", "r1", 0.1), ("family-a", "a", "a1", 0.9)])
    base = write_scores(tmp_path / "base.csv", [("all", "", "r1", 0.5), ("all", "a", "a1", 0.4)])
    packed = tmp_path / "base.csv.gz"
    packed.write_bytes(gzip.compress(base.read_bytes()))
    assert (
        compare(new, packed)
        == compare(new, base)
        == {"a": {"fakes": 1, "reals": 1, "reals_left_out": 0, "auc": 1.0, "baseline_auc": 0.0}}
    )


def test_a_baseline_missing_a_fake_is_refused(tmp_path: Path) -> None:
    new = write_scores(tmp_path / "new.csv", [("family-a", "", "r1", 0.1), ("family-a", "a", "a1", 0.9)])
    base = write_scores(tmp_path / "base.csv", [("all", "", "r1", 0.4)])
    with pytest.raises(SystemExit, match="no score for 1 of a's fakes"):
        compare(new, base)


def test_reals_the_baseline_never_scored_leave_both_aucs(tmp_path: Path) -> None:
    # an older baseline, made before r2's source was added: r2 counts in neither AUC
    new = write_scores(
        tmp_path / "new.csv",
        [("family-a", "", "r1", 0.1), ("family-a", "", "r2", 0.95), ("family-a", "a", "a1", 0.9)],
    )
    base = write_scores(tmp_path / "base.csv", [("all", "", "r1", 0.5), ("all", "a", "a1", 0.4)])
    assert compare(new, base) == {
        "a": {"fakes": 1, "reals": 1, "reals_left_out": 1, "auc": 1.0, "baseline_auc": 0.0}
    }
    only_new = write_scores(tmp_path / "none.csv", [("all", "", "r9", 0.5), ("all", "a", "a1", 0.4)])
    with pytest.raises(SystemExit, match="scored none of the real faces"):
        compare(new, only_new)
