from __future__ import annotations

import bentoml

from facecheck.models import DEEPFAKE_FILE
from runners.base import OnnxRunner, runner_config


# Two single-threaded processes, not one with two ONNX Runtime threads: a 2-thread process
# spin-waits for its other thread, often preempted by a front worker, and leaves part of the
# cores idle; the price is p95 and one more process's memory (docs/performance.md,
# "Runner settings").
@bentoml.service(name="deepfake_runner", **runner_config("deepfake", workers=2))
class DeepfakeRunner(OnnxRunner):
    """Deepfake detection: crop -> probability that the face is AI-made or manipulated."""

    model_file = DEEPFAKE_FILE
