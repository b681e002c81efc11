from __future__ import annotations

import bentoml

from facecheck.models import LIVENESS_FILE
from runners.base import RUNNER_CONFIG, OnnxRunner


@bentoml.service(name="liveness_runner", **RUNNER_CONFIG)
class LivenessRunner(OnnxRunner):
    """Presentation-attack detection: crop -> probability that it is bona fide."""

    model_file = LIVENESS_FILE
