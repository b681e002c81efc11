"""Two leave-one-family-out runs on the same images: each held-out family's AUC under the
recipe's fold model and under a baseline's, against the real faces that fold model never drew.

    python -m training.compare_lofo reports/deepfake-lofo-NEW-scores.csv reports/deepfake-lofo-BASE-scores.csv

(either may be gzipped: .csv.gz)

A recipe that draws the fetched sources judges each fold model on fewer real faces (none of a
repository it drew: training.evaluate), so the two reports' AUCs are over different real faces;
this puts the baseline on the new run's. The baseline must have scored every one of those
fakes (a run that held out, or never drew, the same families). Real faces it never scored
(an older run, made before a source's reals were added) are left out of both AUCs, and the
count left out is printed."""

from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

import numpy as np

from training.evaluate import roc_auc


def read_scores(path: Path) -> dict[tuple[str, str], dict[str, float]]:
    """(held-out family, image path) -> {model: score}; real faces have family ""."""
    scores: dict[tuple[str, str], dict[str, float]] = {}
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["score"]:
                key = (row["held_out_family"], row["path"])
                scores.setdefault(key, {})[row["model"]] = float(row["score"])
    return scores


def auc_of(scores: dict, model: str, fakes: list, reals: list) -> float:
    """`model`'s AUC of the `fakes` against the `reals` (keys of `scores`)."""
    values = [scores[key][model] for key in fakes + reals]
    return roc_auc(np.array(values, np.float64), np.arange(len(values)) < len(fakes))


def compare(new: Path, baseline: Path) -> dict[str, dict[str, float]]:
    """Per held-out family of `new`: its fold model's AUC and the baseline's on the same fakes
    and real faces, and how many of each."""
    new_scores, base_scores = read_scores(new), read_scores(baseline)
    models = {(family, model) for (family, _), by_model in new_scores.items() if family for model in by_model}
    out = {}
    for family, model in sorted(models):
        fakes = [key for key, by in new_scores.items() if key[0] == family and model in by]
        reals = [key for key, by in new_scores.items() if key[0] == "" and model in by]
        # the baseline's model that held this family out, on the same images
        base_model = next(iter(base_scores.get(fakes[0], {})), "")
        missing = [key for key in fakes if base_model not in base_scores.get(key, {})]
        if missing:
            raise SystemExit(f"{baseline} has no score for {len(missing)} of {family}'s fakes: {missing[0]}")
        shared = [key for key in reals if base_model in base_scores.get(key, {})]
        if not shared:
            raise SystemExit(f"{baseline} scored none of the real faces {family}'s fold model was judged on")
        reals_left_out = len(reals) - len(shared)
        reals = shared
        out[family] = {
            "fakes": len(fakes),
            "reals": len(reals),
            "reals_left_out": reals_left_out,
            "auc": auc_of(new_scores, model, fakes, reals),
            "baseline_auc": auc_of(base_scores, base_model, fakes, reals),
        }
    return out


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    rows = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{'family':18s} {'fakes':>6s} {'reals':>6s} {'AUC':>6s} {'baseline':>9s} {'reals left out':>15s}")
    for family, r in sorted(rows.items(), key=lambda kv: kv[1]["auc"]):
        print(
            f"{family:18s} {r['fakes']:6d} {r['reals']:6d} {r['auc']:6.3f} {r['baseline_auc']:9.3f}"
            f" {r['reals_left_out']:15d}"
        )


if __name__ == "__main__":
    main()
