"""Leave-one-family-out for the deepfake recipe: one model per fake family (training.families),
each trained without that family's fakes, then each family scored by the model that never saw it.

    python -m training.lofo NAME [--families=a,b+c] [--proxy] [training.train settings]

Models go to .cache/lofo/NAME/family-<name>/ (one that exists is not trained again: a stopped
run continues); --families lists the models, comma-separated, each holding out one family, or
several joined by "+" (a fold); default: every family, one each. The report is
`training.evaluate deepfake --lofo`'s, written to reports/deepfake-lofo-NAME.{json,-scores.csv}.
A recipe is judged by its worst held-out family's AUC.

--proxy puts PROXY before the other settings (which can still override it): the full recipe
(Lite2, 3600 + 2400 steps) takes about 7 h a model on the 2-core machine, so a whole LOFO of
it days. PROXY is Lite0 at 224 px with all but its last blocks frozen, 600 steps, no fine-tune
stage; measured on the 2-core machine (shared, 2026-12-06: see below) at S_PER_STEP s a step,
about MODEL_MIN min a model with its data, export and calibration, so a LOFO of the 3 families
of today about LOFO3 and of 8 families about LOFO8, its report included."""

from __future__ import annotations

from facecheck.settings import PROJECT_ROOT
from training import families
from training.data import deepfake_samples
from training.loso import base_parser, run_module, train_each

LOFO_DIR = PROJECT_ROOT / ".cache" / "lofo"
PROXY = ["--backbone=lite0", "--frozen_blocks=12", "--steps=600", "--finetune_steps=0", "--eval_every=300"]


def known_families() -> set[str]:
    return families.real_families(deepfake_samples()) | set(families.SYNTHETIC_FAMILIES)


def main() -> None:
    parser = base_parser(__doc__, "lofo", LOFO_DIR)
    parser.add_argument("--families", default="", help="the models' held-out families (default: all)")
    parser.add_argument("--proxy", action="store_true", help="the 2-core proxy recipe (PROXY)")
    args, settings = parser.parse_known_args()  # the rest are training.train settings
    if any(s.startswith("--hold_out_family=") for s in settings):
        parser.error("--hold_out_family is set here, per model (--families)")
    known = known_families()
    folds = args.families.split(",") if args.families else sorted(known)
    for fold in folds:
        families.parse(fold, known)
    held_out = {
        f"family-{fold}": f"--hold_out_family={fold.replace(families.FOLD_JOIN, ',')}" for fold in folds
    }
    runs = args.lofo_dir / args.name
    train_each("deepfake", runs, held_out, [*PROXY * args.proxy, *settings])
    run_module("training.evaluate", "deepfake", "--lofo", str(runs), "--out", str(args.reports))


if __name__ == "__main__":
    main()
