from __future__ import annotations

import bentoml

from facecheck.models import DEEPFAKE_FILE
from runners.base import OnnxRunner, runner_config


# Two single-threaded processes, not one process with two ONNX Runtime threads: at the end of
# every parallel section the calling thread spin-waits for the other (`pause`: 12.5 % of the
# 2-thread runner's CPU under load, perf), and the other is often off-core, preempted by a
# front worker. bench.cpu_split, /deepfake, three alternating pairs: 22.7 against 23.6-26.1
# ms of runner CPU per request, 57.1-57.4 against 50.0-56.3 req/s.
@bentoml.service(name="deepfake_runner", **runner_config("deepfake", workers=2))
class DeepfakeRunner(OnnxRunner):
    """Deepfake detection: crop -> probability that the face is AI-made or manipulated."""

    model_file = DEEPFAKE_FILE
