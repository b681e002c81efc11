from __future__ import annotations

import bentoml

from facecheck.models import DEEPFAKE_FILE
from runners.base import RUNNER_CONFIG, OnnxRunner


@bentoml.service(name="deepfake_runner", **RUNNER_CONFIG)
class DeepfakeRunner(OnnxRunner):
    """Deepfake detection: crop -> probability that the face is AI-made or manipulated."""

    model_file = DEEPFAKE_FILE
    # 10 ms per face: one thread would cap this one process at one core while the fronts
    # wait on it (bench: deepfake 68.6 -> 78.6 req/s; both checks unchanged at 60-61)
    threads = 2
