from __future__ import annotations

import bentoml

from facecheck.models import DEEPFAKE_FILE
from runners.base import OnnxRunner, runner_config


# Two single-threaded processes, not one process with two ONNX Runtime threads: at the end of
# every parallel section the calling thread spin-waits for the other (`pause`: 12.5 % of the
# 2-thread runner's CPU under load, perf), and the other is often off-core, preempted by a
# front worker; the service then left about a tenth of the 2 cores idle. bench.cpu_split,
# /deepfake, three alternating pairs (runs of 2 in both): 52.3, 50.0, 54.2 against 53.2,
# 45.5, 48.0 req/s, 198 % against 187-189 % CPU used; the price is p95 (810-950 against
# 710-840 ms) and one more process (RSS +250 MB).
@bentoml.service(name="deepfake_runner", **runner_config("deepfake", workers=2))
class DeepfakeRunner(OnnxRunner):
    """Deepfake detection: crop -> probability that the face is AI-made or manipulated."""

    model_file = DEEPFAKE_FILE
