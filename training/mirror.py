"""Mirror-average a trained model file and calibrate its threshold again: the graph then
scores each crop and its mirror image and returns the mean of the two probabilities
(`training.export.add_mirror_averaging`). Training does the same at export with `--mirror=1`.

    python -m training.mirror liveness --out=/tmp/m   (/tmp/m/liveness.onnx, re-calibrated)
    python -m training.mirror deepfake --out=/tmp/m"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from training import train
from training.export import add_mirror_averaging


def main() -> None:
    if sys.argv[1:2] not in (["liveness"], ["deepfake"]):
        raise SystemExit(__doc__)
    train.apply_overrides(sys.argv[1:])
    path = Path(train.out) / f"{train.task}.onnx"
    x, y = train.val_crops(*train.val_crop_args(), np.random.default_rng(train.seed))
    add_mirror_averaging(path)
    threshold = train.calibrate_threshold(path, x, y)
    summary_path = path.with_suffix(".train.json")
    summary = json.loads(summary_path.read_text()) | {"threshold": threshold, "mirror_averaged": True}
    summary_path.write_text(json.dumps(summary, indent=2))
    print(f"{path}: mirror-averaged, threshold {threshold:.6f}")


if __name__ == "__main__":
    main()
