from __future__ import annotations

import bentoml

from facecheck.models import LIVENESS_FILE
from runners.base import OnnxRunner, runner_config


# Two single-threaded processes since the file carries MiniFASNet (about 20 ms a canvas): one
# process held the model to one core and the service to 0.59-0.64 of the bare pipeline, two
# reach 0.73-0.79 (docs/performance.md, "Two liveness runner processes").
@bentoml.service(name="liveness_runner", **runner_config("liveness", workers=2))
class LivenessRunner(OnnxRunner):
    """Presentation-attack detection: crop -> probability that it is bona fide."""

    model_file = LIVENESS_FILE
