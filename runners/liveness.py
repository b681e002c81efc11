from __future__ import annotations

import bentoml

from facecheck.models import LIVENESS_FILE
from runners.base import OnnxRunner, runner_config


@bentoml.service(name="liveness_runner", **runner_config("liveness", workers=1))
class LivenessRunner(OnnxRunner):
    """Presentation-attack detection: crop -> probability that it is bona fide."""

    model_file = LIVENESS_FILE
