"""Leave-one-source-out for the liveness recipe: one model per fold, each trained without
that fold's sources, then every source scored by the model that never saw it.

    python -m training.loso NAME [--ship] [--bpcer=0.05] [training.train settings, e.g. --steps=800]

Fold models go to .cache/loso/NAME/fold<k>/ (a fold whose model exists is not trained
again: a stopped run continues); the report is `training.evaluate liveness --loso`'s,
written to reports/liveness-loso-NAME.json. The recipe is judged by its worst source.
--ship then trains the same recipe on every fold into models/ (or --out) with the report's
threshold: the --bpcer point of the pooled bona fide frames of every camera, each scored by
the fold model that never saw its camera."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from facecheck.models import LIVENESS_FILE
from facecheck.settings import PROJECT_ROOT
from training.data import liveness_samples

LOSO_DIR = PROJECT_ROOT / ".cache" / "loso"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", help="the recipe's name: its fold models go to .cache/loso/NAME/")
    parser.add_argument(
        "--ship", action="store_true", help="then train on every fold, with the pooled threshold"
    )
    parser.add_argument("--bpcer", default="0.05", help="pooled held-out bona fide rejected at the threshold")
    parser.add_argument("--loso_dir", type=Path, default=LOSO_DIR, help="where NAME/fold<k>/ go")
    parser.add_argument(
        "--out", type=Path, default=PROJECT_ROOT / "models", help="--ship: the model's folder"
    )
    parser.add_argument("--reports", type=Path, default=PROJECT_ROOT / "reports")
    args, settings = parser.parse_known_args()  # the rest are training.train settings
    if any(s.startswith(("--hold_out_fold=", "--loso_report=")) for s in settings):
        parser.error("--hold_out_fold and --loso_report are set here, per fold")
    name, bpcer, runs = args.name, args.bpcer, args.loso_dir / args.name
    folds = sorted({s.fold for s in liveness_samples() if s.fold})
    for fold in folds:
        out = runs / f"fold{fold}"
        if (out / LIVENESS_FILE).exists():
            print(f"fold {fold}: {out / LIVENESS_FILE} exists", flush=True)
            continue
        started = time.time()
        command = ["training.train", "liveness", f"--hold_out_fold={fold}", f"--out={out}", *settings]
        subprocess.run([sys.executable, "-m", *command], cwd=PROJECT_ROOT, check=True)
        print(f"fold {fold}: trained in {time.time() - started:.0f}s", flush=True)
    reports = args.reports
    evaluate = [
        "training.evaluate",
        "liveness",
        "--loso",
        str(runs),
        "--bpcer",
        bpcer,
        "--out",
        str(reports),
    ]
    subprocess.run([sys.executable, "-m", *evaluate], cwd=PROJECT_ROOT, check=True)
    if args.ship:
        report = reports / f"liveness-loso-{name}.json"
        command = ["training.train", "liveness", f"--loso_report={report}", f"--out={args.out}", *settings]
        subprocess.run([sys.executable, "-m", *command], cwd=PROJECT_ROOT, check=True)


if __name__ == "__main__":
    main()
