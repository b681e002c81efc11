"""Leave-one-family-out for the deepfake recipe: one model per fake family (training.families),
each trained without that family's fakes, then each family scored by the model that never saw it.

    python -m training.lofo NAME [--families=a,b+c] [--proxy] [training.train settings]

Models go to .cache/lofo/NAME/family-<name>/ (one that exists is not trained again: a stopped
run continues); --families lists the models, comma-separated, each holding out one family, or
several joined by "+" (a fold). Default (default_folds): a model per family that training
draws fakes of (train.trained_families), and one more for all the others (fetched sources and
synthetic families that the run does not draw): a run holding them out is the same run. With
--fetched_share the fetched sources' families are drawn, so each gets its model, and a model
is judged on no real face of a repository it drew (training.evaluate). The report is
`training.evaluate deepfake --lofo`'s, written to reports/deepfake-lofo-NAME.{json,-scores.csv}.
A recipe is judged by its worst held-out family's AUC.

--proxy puts PROXY before the other settings (which can still override them). The full recipe
(Lite2, 3600 + 2400 steps, about 4.2 s a step) takes about 7 h a model on the 2-core machine,
so a LOFO of it more than a day (4 models: about 28 h). PROXY is Lite0 at 224 px, its first 12
of 16 blocks frozen, 600 steps, no fine-tune stage. Measured 2026-12-06 on the 2-core machine,
shared with other jobs (load 2-4), in-process, 20 steps after 3 warm-up ones: 2.6 s a step (2.5
CPU s; 6 blocks frozen: 4.3 s, all 16: 2.3 CPU s, the frozen blocks' forward pass dominating).
A model: 600 steps (26 min), two val passes, export and calibration: about 30 min; the first
model of a machine also cuts the 224 px crops once (about 14,500 images, a few minutes). The
report: 8 ms a served file and 12 ms a synthetic crop with a Lite0 file, about a minute a
model. A LOFO of the 3 families that training draws today: about 1.5 h; the default adds a
fourth model, for the families no run draws (the fetched sources; training.fakes' families
without a DEEPFAKE_MIX share): about 2 h; of about 8 families, one model each: about 4 h.
Whether the proxy ranks recipes as full runs do (the issue asks for two comparisons) is not
measured yet.
"""

from __future__ import annotations

from facecheck.settings import PROJECT_ROOT
from training import families, train
from training.data import deepfake_samples
from training.loso import base_parser, run_module, train_each

LOFO_DIR = PROJECT_ROOT / ".cache" / "lofo"
PROXY = ["--backbone=lite0", "--frozen_blocks=12", "--steps=600", "--finetune_steps=0", "--eval_every=300"]


def known_families() -> set[str]:
    return families.real_families(deepfake_samples()) | set(families.SYNTHETIC_FAMILIES)


def default_folds(known: set[str], trained: set[str]) -> list[str]:
    """Each trained family alone, then one fold of all the known families that no run trains on."""
    untrained = families.FOLD_JOIN.join(sorted(known - trained))
    return sorted(known & trained) + [untrained] * bool(untrained)


def main() -> None:
    parser = base_parser(__doc__, "lofo", LOFO_DIR)
    parser.add_argument("--families", default="", help="the models' held-out families (default: all)")
    parser.add_argument("--proxy", action="store_true", help="the 2-core proxy recipe (PROXY)")
    args, settings = parser.parse_known_args()  # the rest are training.train settings
    if any(s.startswith("--hold_out_family=") for s in settings):
        parser.error("--hold_out_family is set here, per model (--families)")
    known = known_families()
    folds = args.families.split(",") if args.families else default_folds(known, train.trained_families())
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
