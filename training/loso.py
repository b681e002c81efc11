"""Leave-one-source-out for the liveness recipe: one model per fold, each trained without
that fold's sources, then every source scored by the model that never saw it.

    python -m training.loso NAME [--ship] [--bpcer=0.05] [training.train settings, e.g. --steps=800]
    python -m training.loso NAME --task=deepfake [--ship] [training.train settings]

Fold models go to .cache/loso/NAME/fold<k>/ (a fold whose model exists is not trained
again: a stopped run continues); the report is `training.evaluate liveness --loso`'s,
written to reports/liveness-loso-NAME.json. The recipe is judged by its worst source.
--ship then trains the same recipe on every fold into models/ (or --out) with the report's
threshold: the --bpcer point of the pooled bona fide frames of every camera, each scored by
the fold model that never saw its camera.

The sources of fold training.sources.NEW_CAMERAS_FOLD are never trained on (split "test"):
its fold model is trained on every other fold, like the shipped one, and the report gives
those cameras apart, outside the threshold and the pooled figures.

--task=deepfake does the same for the deepfake recipe's real faces: fold models trained with
the fetched webcams among their real faces (--webcam_reals=1) but without their fold's, each
fold's frames (live, replayed, printed: none AI-made) judged by the model that never saw that
camera, at its own threshold (set on val as usual): the genuine faces it flags per source,
reported to reports/deepfake-loso-NAME.json. --ship trains the recipe on every fold.
--bpcer is a liveness setting."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from facecheck.models import DEEPFAKE_FILE, LIVENESS_FILE
from facecheck.settings import PROJECT_ROOT
from training.data import liveness_samples

LOSO_DIR = PROJECT_ROOT / ".cache" / "loso"


def base_parser(doc: str, runs: str, default: Path) -> argparse.ArgumentParser:
    """The arguments training.loso and training.lofo share: NAME, where its models go
    (--<runs>_dir), where the report goes (--reports)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help=f"the recipe's name: its models go to .cache/{runs}/NAME/")
    parser.add_argument(f"--{runs}_dir", type=Path, default=default, help="where NAME/ goes")
    parser.add_argument("--reports", type=Path, default=PROJECT_ROOT / "reports")
    return parser


def run_module(*args: str) -> None:
    subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, check=True)


def train_each(task: str, runs: Path, held_out: dict[str, str], settings: list[str]) -> None:
    """One model per entry of `held_out` (folder -> the training.train setting that leaves its
    part out) into runs/<folder>/; a folder that holds its model already is not trained again."""
    filename = LIVENESS_FILE if task == "liveness" else DEEPFAKE_FILE
    for folder, setting in held_out.items():
        out = runs / folder
        if (out / filename).exists():
            print(f"{folder}: {out / filename} exists", flush=True)
            continue
        started = time.time()
        run_module("training.train", task, setting, f"--out={out}", *settings)
        print(f"{folder}: trained in {time.time() - started:.0f}s", flush=True)


def main() -> None:
    parser = base_parser(__doc__, "loso", LOSO_DIR)
    parser.add_argument(
        "--ship", action="store_true", help="then train on every fold (liveness: with the pooled threshold)"
    )
    parser.add_argument("--task", choices=["liveness", "deepfake"], default="liveness")
    parser.add_argument("--bpcer", default="0.05", help="pooled held-out bona fide rejected at the threshold")
    parser.add_argument(
        "--out", type=Path, default=PROJECT_ROOT / "models", help="--ship: the model's folder"
    )
    args, settings = parser.parse_known_args()  # the rest are training.train settings
    if any(s.startswith(("--hold_out_fold=", "--loso_report=")) for s in settings):
        parser.error("--hold_out_fold and --loso_report are set here, per fold")
    task, name, bpcer, runs = args.task, args.name, args.bpcer, args.loso_dir / args.name
    if task == "deepfake":
        settings = ["--webcam_reals=1", *settings]
    folds = sorted({s.fold for s in liveness_samples() if s.fold})
    train_each(task, runs, {f"fold{fold}": f"--hold_out_fold={fold}" for fold in folds}, settings)
    reports = args.reports
    run_module("training.evaluate", task, "--loso", str(runs), "--bpcer", bpcer, "--out", str(reports))
    if args.ship and task == "deepfake":
        run_module("training.train", task, f"--out={args.out}", *settings)
    elif args.ship:
        report = reports / f"liveness-loso-{name}.json"
        run_module("training.train", "liveness", f"--loso_report={report}", f"--out={args.out}", *settings)


if __name__ == "__main__":
    main()
