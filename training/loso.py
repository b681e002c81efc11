"""Leave-one-source-out for the liveness recipe: one model per fold, each trained without
that fold's sources, then every source scored by the model that never saw it.

    python -m training.loso NAME [--ship] [training.train settings, e.g. --steps=800 --sources=0]

Fold models go to .cache/loso/NAME/fold<k>/ (a fold whose model exists is not trained
again: a stopped run continues); the report is `training.evaluate liveness --loso`'s,
written to reports/liveness-loso-NAME.json. The recipe is judged by its worst source.
--ship then trains the same recipe on every fold into models/ (or --out) with the report's
threshold: the pooled bona fide frames of every camera, each scored by the fold model that
never saw its camera."""

from __future__ import annotations

import subprocess
import sys
import time

from facecheck.models import LIVENESS_FILE
from facecheck.settings import PROJECT_ROOT
from training.data import liveness_samples

LOSO_DIR = PROJECT_ROOT / ".cache" / "loso"


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("--"):
        raise SystemExit(__doc__)
    name, settings = sys.argv[1], [a for a in sys.argv[2:] if a != "--ship"]
    folds = sorted({s.fold for s in liveness_samples() if s.fold})
    for fold in folds:
        out = LOSO_DIR / name / f"fold{fold}"
        if (out / LIVENESS_FILE).exists():
            print(f"fold {fold}: {out / LIVENESS_FILE} exists", flush=True)
            continue
        started = time.time()
        command = ["training.train", "liveness", f"--hold_out_fold={fold}", f"--out={out}", *settings]
        subprocess.run([sys.executable, "-m", *command], cwd=PROJECT_ROOT, check=True)
        print(f"fold {fold}: trained in {time.time() - started:.0f}s", flush=True)
    reports = PROJECT_ROOT / "reports"
    evaluate = ["training.evaluate", "liveness", "--loso", str(LOSO_DIR / name), "--out", str(reports)]
    subprocess.run([sys.executable, "-m", *evaluate], cwd=PROJECT_ROOT, check=True)
    if "--ship" in sys.argv:
        report = reports / f"liveness-loso-{name}.json"
        command = ["training.train", "liveness", f"--loso_report={report}", *settings]
        subprocess.run([sys.executable, "-m", *command], cwd=PROJECT_ROOT, check=True)


if __name__ == "__main__":
    main()
