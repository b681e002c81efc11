from __future__ import annotations

import bentoml

from facecheck.models import DEEPFAKE_FILE
from runners.base import RUNNER_CONFIG, OnnxRunner


@bentoml.service(name="deepfake_runner", **RUNNER_CONFIG)
class DeepfakeRunner(OnnxRunner):
    """Deepfake detection: crop -> probability that the face is AI-made or manipulated."""

    model_file = DEEPFAKE_FILE
