"""What every model runner shares: load one ONNX file, score batches of crops."""

from __future__ import annotations

import logging
from typing import Annotated

import bentoml
import numpy as np
from bentoml.validators import ContentType

from facecheck.models import load_model
from facecheck.settings import Settings, int_from_env

logger = logging.getLogger("facecheck.runners")

# Adaptive batching: BentoML's dispatcher sizes batches from the latencies it measures;
# max_latency_ms is only its load-shedding bound (a crop queued longer gets a 503), set far
# above what a burst queues; the front's own timeout bounds a request (docs/performance.md,
# "Settings in the code").
MAX_BATCH_SIZE = 16
MAX_LATENCY_MS = 10_000
# ...but ONNX Runtime runs at most 2 crops at a time: its arena keeps the largest run's
# activations, and a run of 2 costs no more per crop (docs/performance.md, "Settings in the code").
MAX_RUN = 2
# The front's client to a runner recycles its connection pool every `max_requests` calls and
# closes the old pool under calls still in flight (HTTP 500s under load): never recycle
# (README, "How it works").
RUNNER_CONNECTION = {"max_requests": 2**31 - 1, "max_age": 10.0**9}
RUNNER_CONFIG = {
    "workers": 1,
    "traffic": {"timeout": 30},
    "runner_connection": RUNNER_CONNECTION,
    # internal hops: the front logs and measures each request once (docs/performance.md,
    # "Settings in the code")
    "logging": {"access": {"enabled": False}},
    "metrics": {"enabled": False},
    # nothing exports traces; excluded, the tracing middleware skips its per-call spans
    "tracing": {"excluded_urls": [".*"]},
}


def runner_setting(model: str, name: str, default: int) -> int:
    """FACECHECK_<MODEL>_RUNNER_<NAME> (at least 1), else `default`."""
    return int_from_env(f"FACECHECK_{model.upper()}_RUNNER_{name}", default, 1)


def runner_config(model: str, workers: int) -> dict:
    """RUNNER_CONFIG with this many worker processes (FACECHECK_<MODEL>_RUNNER_WORKERS)."""
    return {**RUNNER_CONFIG, "workers": runner_setting(model, "WORKERS", workers)}


class OnnxRunner:
    model_file: str = ""

    def __init__(self) -> None:
        # one ONNX Runtime thread per process; more processes scale a runner (runners/deepfake.py)
        threads = runner_setting(self.model_file.split(".")[0], "THREADS", 1)
        self.model = load_model(Settings.from_env().models_dir, self.model_file, threads, MAX_RUN)
        if self.model is None:
            logger.error("%s not found: this check answers 503 until it is installed", self.model_file)

    # A declared media type: otherwise BentoML derives it from the output's JSON schema,
    # rebuilt for every response (docs/performance.md, "Settings in the code").
    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    def score(self, crops: np.ndarray) -> Annotated[np.ndarray, ContentType("application/json")]:
        """N x S x S x 3 uint8 crops -> N probabilities."""
        if self.model is None:
            raise bentoml.exceptions.ServiceUnavailable(f"{self.model_file} is not installed")
        return self.model(crops)

    @bentoml.api
    def ready(self) -> bool:
        return self.model is not None
